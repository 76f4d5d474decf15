//! The 30-day request quota periods of an organization (`requests_per_30d`).
//!
//! The periods follow each other from an anchor instant in both directions. The anchor is the
//! start of the organization's current Stripe billing period when the subscription has one, else
//! the start of the UTC day the organization was created. Edges receive the anchor as
//! `DeploymentRecord::period_start` and count requests per period with the same arithmetic as
//! [`period_at`], and the usage API reports the same periods.
//!
//! NOTE: a Stripe billing period lasts a calendar month, not 30 days. In a 31-day month the
//! periods roll over on day 31 and again when the renewal event moves the anchor, so the request
//! count restarts twice.

use chrono::{DateTime, Utc};

/// Length of one quota period in seconds: 30 days, the edges' `QUOTA_PERIOD_SECS`.
pub const PERIOD_SECONDS: i64 = 30 * SECONDS_PER_DAY;
const SECONDS_PER_DAY: i64 = 24 * 60 * 60;

/// Returns the anchor of an organization's quota periods in Unix seconds: `billing_period_start`
/// when set, else the start of the UTC day of `org_created_at`.
pub fn anchor(billing_period_start: Option<DateTime<Utc>>, org_created_at: DateTime<Utc>) -> i64 {
    match billing_period_start {
        Some(start) => start.timestamp(),
        None => {
            let created = org_created_at.timestamp();
            created - created.rem_euclid(SECONDS_PER_DAY)
        }
    }
}

/// Returns `[start, end)` in Unix seconds of the period `periods_back` periods before the one
/// that contains `now`.
pub fn period_at(anchor: i64, now: i64, periods_back: i64) -> (i64, i64) {
    let current = now - (now - anchor).rem_euclid(PERIOD_SECONDS);
    let start = current - periods_back * PERIOD_SECONDS;
    (start, start + PERIOD_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn anchor_prefers_billing_period_start() {
        let created = time("2025-01-10T15:00:00Z");
        let billing = time("2025-03-14T09:30:00Z");
        assert_eq!(anchor(Some(billing), created), billing.timestamp());
        assert_eq!(anchor(None, created), time("2025-01-10T00:00:00Z").timestamp());
    }

    #[test]
    fn periods_follow_anchor() {
        let anchor = time("2025-03-14T09:30:00Z").timestamp();
        assert_eq!(period_at(anchor, anchor, 0), (anchor, anchor + PERIOD_SECONDS));
        assert_eq!(period_at(anchor, anchor + PERIOD_SECONDS - 1, 0), (anchor, anchor + PERIOD_SECONDS));
        assert_eq!(period_at(anchor, anchor + PERIOD_SECONDS, 0), (anchor + PERIOD_SECONDS, anchor + 2 * PERIOD_SECONDS));
        assert_eq!(period_at(anchor, anchor + PERIOD_SECONDS, 1), (anchor, anchor + PERIOD_SECONDS));
        // An anchor after `now` counts backwards, as the edges do.
        assert_eq!(period_at(anchor, anchor - 1, 0), (anchor - PERIOD_SECONDS, anchor));
    }
}
