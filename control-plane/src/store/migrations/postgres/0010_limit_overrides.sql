-- Limits that a platform admin set for one organization, as a JSON object with the keys of a
-- `[plans.NAME]` table. Each key it contains replaces the plan's limit. NULL applies the plan's
-- limits unchanged.
ALTER TABLE organizations ADD COLUMN limit_overrides JSONB;
