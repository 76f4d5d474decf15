-- Start of the subscription's current billing period, from Stripe. It anchors the organization's
-- 30-day request quota periods, and NULL keeps them anchored at the organization's creation day.
ALTER TABLE subscriptions ADD COLUMN current_period_start TEXT;
