//! Plan limits enforced per request: requests per second per deployment, requests per minute and
//! per 30 days per organization.
//!
//! Counters live in `DashMap`s keyed by deployment or organization id and are updated with
//! atomic compare-and-swap, so no lock is shared by all requests. The per-second and per-minute
//! limits use GCRA (the generic cell rate algorithm): each key stores one theoretical arrival
//! time, which allows a burst of the whole limit and then one request per `period / limit`.
//!
//! The 30-day quota counts requests per organization and quota period (see [`quota_period`]).
//! With [`crate::quota_sync`] running, each period's count is the organization's total over all
//! edges as last read from Redis plus the requests this edge admitted since then. The quota then
//! applies across edges, give or take the traffic of about two flush intervals.
//!
//! NOTE: the per-second and per-minute limits count on each edge on its own, so an organization
//! served by several nodes gets them once per node.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;

use crate::FastHasher;
use mockforge_snapshot::{DeploymentRecord, PlanLimits, PlanTable};
use uuid::Uuid;

use crate::error::EdgeError;

pub use mockforge_snapshot::FALLBACK_PLAN;

/// Length of a request quota period, in seconds.
pub const QUOTA_PERIOD_SECS: i64 = 30 * 24 * 60 * 60;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Returns the limits that apply to a deployment: its plan's limits with the organization's
/// `limit_overrides` applied. Every limit lookup goes through this function.
///
/// An unknown plan name gets the limits of [`FALLBACK_PLAN`], or none when the table has no such
/// plan either. The overrides apply over those fallback limits too.
pub fn limits_for(plans: &PlanTable, record: &DeploymentRecord) -> PlanLimits {
    if plans.limits(&record.plan).is_none() {
        tracing::warn!(
            org = %record.org_slug,
            deployment = %record.slug,
            plan = %record.plan,
            fallback = FALLBACK_PLAN,
            "the deployment's plan is not in the plan table; applying the fallback plan's limits"
        );
    }
    plans.effective_limits(&record.plan, record.limit_overrides.as_ref())
}

/// The state of the tightest limit after a request was admitted, for the `X-RateLimit-*`
/// headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub remaining: u64,
    /// When the whole limit is available again, in Unix seconds.
    pub reset_unix_secs: u64,
}

/// A rejected request: which limit and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    pub limit: u64,
    /// `second`, `minute` or `30d`.
    pub window: &'static str,
    pub retry_after_secs: u64,
    pub reset_unix_secs: u64,
}

impl Rejection {
    /// Returns the quota a rejected request reports: nothing remaining until the reset.
    pub fn quota(&self) -> Quota {
        Quota {
            limit: self.limit,
            remaining: 0,
            reset_unix_secs: self.reset_unix_secs,
        }
    }

    pub fn to_error(self) -> EdgeError {
        EdgeError::RateLimited {
            limit: self.limit,
            window: self.window,
            retry_after_seconds: self.retry_after_secs,
        }
    }
}

/// One GCRA limiter: the theoretical arrival time in nanoseconds since the limiter's epoch.
#[derive(Default)]
struct Gcra {
    tat_nanos: AtomicU64,
}

impl Gcra {
    /// Admits one request at `now` if fewer than `limit` requests fit in the last `period`.
    /// Returns the remaining requests and the time at which the whole limit is back, or the
    /// time to wait.
    fn check(&self, now: u64, limit: u64, period: u64) -> Result<(u64, u64), u64> {
        let interval = (period / limit.max(1)).max(1);
        let mut tat = self.tat_nanos.load(Ordering::Relaxed);
        loop {
            let new_tat = tat.max(now) + interval;
            if new_tat > now + period {
                return Err(new_tat - period - now);
            }
            match self.tat_nanos.compare_exchange_weak(
                tat,
                new_tat,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(((now + period - new_tat) / interval, new_tat)),
                Err(actual) => tat = actual,
            }
        }
    }
}

/// Returns the start and end, in Unix seconds, of the 30-day quota period that contains
/// `now_unix_secs`.
///
/// Periods follow each other every [`QUOTA_PERIOD_SECS`] from `anchor`, both forwards and
/// backwards, so an anchor in the future also works. `None` anchors the periods at the Unix
/// epoch.
pub fn quota_period(anchor: Option<i64>, now_unix_secs: i64) -> (i64, i64) {
    let anchor = i128::from(anchor.unwrap_or(0));
    let now = i128::from(now_unix_secs);
    let period = i128::from(QUOTA_PERIOD_SECS);
    let start = now - (now - anchor).rem_euclid(period);
    // `start` lies within one period before `now`, so it fits in an i64 unless `now` is
    // within 30 days of i64::MIN.
    let start = i64::try_from(start).unwrap_or(i64::MIN);
    (start, start.saturating_add(QUOTA_PERIOD_SECS))
}

/// One organization's quota period: the key of its request count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PeriodKey {
    pub(crate) org_id: Uuid,
    /// Start of the period, in Unix seconds.
    pub(crate) start: i64,
}

impl PeriodKey {
    /// Returns the end of the period, in Unix seconds.
    pub(crate) fn end(&self) -> i64 {
        self.start.saturating_add(QUOTA_PERIOD_SECS)
    }
}

/// Request count of one organization in one quota period.
#[derive(Default)]
struct PeriodCounter {
    /// The organization's total over all edges as last read from Redis, including the requests
    /// of this edge that were flushed. Stays 0 without Redis.
    global: AtomicU64,
    /// Requests this edge admitted that are not flushed to Redis yet. Without Redis, every
    /// request of the period.
    unflushed: AtomicU64,
}

impl PeriodCounter {
    /// Counts one request unless the count reached `limit`. Returns the new count, or `None`
    /// when the limit is used up.
    fn admit(&self, limit: u64) -> Option<u64> {
        // `unflushed` is read before `global`, and `apply_flush` writes them in the opposite
        // order, so a flush that runs at the same time can make the count too high for a
        // moment but never too low.
        let unflushed = self.unflushed.fetch_add(1, Ordering::SeqCst) + 1;
        let count = self.global.load(Ordering::SeqCst).saturating_add(unflushed);
        if count > limit {
            self.unflushed.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(count)
    }
}

/// A request count that a flush sends to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingCount {
    pub(crate) key: PeriodKey,
    /// Requests admitted since the last successful flush; 0 only reads the total.
    pub(crate) delta: u64,
}

/// Rate limits of every organization and deployment this edge serves.
pub struct RateLimiter {
    epoch: Instant,
    epoch_unix_nanos: u64,
    /// Per-minute limiter of each organization.
    orgs: DashMap<Uuid, Gcra, FastHasher>,
    periods: DashMap<PeriodKey, PeriodCounter, FastHasher>,
    deployments: DashMap<Uuid, Gcra, FastHasher>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        let epoch_unix_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        RateLimiter {
            epoch: Instant::now(),
            epoch_unix_nanos,
            orgs: DashMap::default(),
            periods: DashMap::default(),
            deployments: DashMap::default(),
        }
    }
}

impl RateLimiter {
    /// Admits one request to `deployment_id` of `org_id` now.
    ///
    /// Limits are checked in the order deployment per second, organization per minute and
    /// organization per 30 days. A request rejected by a later limit still used a unit of the
    /// earlier ones. `period_start` anchors the 30-day periods (see [`quota_period`]). Returns
    /// `Ok(None)` when the plan sets none of the three limits.
    pub fn check(
        &self,
        org_id: Uuid,
        deployment_id: Uuid,
        limits: &PlanLimits,
        period_start: Option<i64>,
    ) -> Result<Option<Quota>, Rejection> {
        self.check_at(
            org_id,
            deployment_id,
            limits,
            period_start,
            self.epoch.elapsed(),
        )
    }

    /// Like [`RateLimiter::check`] at `elapsed` since the limiter was created, for tests.
    pub fn check_at(
        &self,
        org_id: Uuid,
        deployment_id: Uuid,
        limits: &PlanLimits,
        period_start: Option<i64>,
        elapsed: Duration,
    ) -> Result<Option<Quota>, Rejection> {
        let now = elapsed.as_nanos() as u64;
        let mut tightest: Option<Quota> = None;

        if let Some(limit) = limits.deployment_rps {
            let gcra = self.deployment(deployment_id);
            let quota = self.check_gcra(&gcra, now, limit, NANOS_PER_SEC, "second")?;
            tightest = Some(tighter(tightest, quota));
        }

        if limits.requests_per_minute.is_none() && limits.requests_per_30d.is_none() {
            return Ok(tightest);
        }
        if let Some(limit) = limits.requests_per_minute {
            let per_minute = self.org(org_id);
            let quota = self.check_gcra(&per_minute, now, limit, 60 * NANOS_PER_SEC, "minute")?;
            tightest = Some(tighter(tightest, quota));
        }
        if let Some(limit) = limits.requests_per_30d {
            let quota = self.check_period(org_id, period_start, now, limit)?;
            tightest = Some(tighter(tightest, quota));
        }
        Ok(tightest)
    }

    /// Returns the limiter of a deployment, taking the shard's write lock only on first use.
    fn deployment(&self, deployment_id: Uuid) -> dashmap::mapref::one::Ref<'_, Uuid, Gcra> {
        if let Some(gcra) = self.deployments.get(&deployment_id) {
            return gcra;
        }
        self.deployments
            .entry(deployment_id)
            .or_default()
            .downgrade()
    }

    fn org(&self, org_id: Uuid) -> dashmap::mapref::one::Ref<'_, Uuid, Gcra> {
        if let Some(org) = self.orgs.get(&org_id) {
            return org;
        }
        self.orgs.entry(org_id).or_default().downgrade()
    }

    /// Counts one request against the organization's 30-day quota.
    fn check_period(
        &self,
        org_id: Uuid,
        period_start: Option<i64>,
        now: u64,
        limit: u64,
    ) -> Result<Quota, Rejection> {
        let unix_secs = ((self.epoch_unix_nanos + now) / NANOS_PER_SEC) as i64;
        let (start, end) = quota_period(period_start, unix_secs);
        let key = PeriodKey { org_id, start };
        let reset_unix_secs = u64::try_from(end).unwrap_or(0);
        let admitted = match self.periods.get(&key) {
            Some(counter) => counter.admit(limit),
            None => self.periods.entry(key).or_default().admit(limit),
        };
        match admitted {
            Some(count) => Ok(Quota {
                limit,
                remaining: limit - count,
                reset_unix_secs,
            }),
            None => Err(Rejection {
                limit,
                window: "30d",
                retry_after_secs: u64::try_from(end - unix_secs).unwrap_or(0).max(1),
                reset_unix_secs,
            }),
        }
    }

    /// Returns the count of every quota period a flush must send: the periods with unflushed
    /// requests, and every period that has not ended at `now_unix_secs`, whose total other
    /// edges may have raised.
    // NOTE: a flush sends two commands for every organization this edge served in the current
    // period, even one that is idle now, so the batch grows with the number of organizations.
    pub(crate) fn pending_counts(&self, now_unix_secs: i64) -> Vec<PendingCount> {
        self.periods
            .iter()
            .filter_map(|entry| {
                let delta = entry.value().unflushed.load(Ordering::SeqCst);
                let current = entry.key().end() > now_unix_secs;
                (delta > 0 || current).then_some(PendingCount {
                    key: *entry.key(),
                    delta,
                })
            })
            .collect()
    }

    /// Records a successful flush: `total` is the organization's count over all edges after
    /// Redis added `count.delta`.
    pub(crate) fn apply_flush(&self, count: PendingCount, total: u64) {
        let Some(counter) = self.periods.get(&count.key) else {
            return;
        };
        // A total below the known one means Redis lost the key. The higher count stays, so
        // the quota is never reset early.
        counter.global.fetch_max(total, Ordering::SeqCst);
        counter.unflushed.fetch_sub(count.delta, Ordering::SeqCst);
    }

    /// Drops the counts of periods that ended before `now_unix_secs` and have nothing left to
    /// flush.
    pub(crate) fn prune_ended_periods(&self, now_unix_secs: i64) {
        self.periods.retain(|key, counter| {
            key.end() > now_unix_secs || counter.unflushed.load(Ordering::SeqCst) > 0
        });
    }

    fn check_gcra(
        &self,
        gcra: &Gcra,
        now: u64,
        limit: u64,
        period: u64,
        window: &'static str,
    ) -> Result<Quota, Rejection> {
        match gcra.check(now, limit, period) {
            Ok((remaining, full_at)) => Ok(Quota {
                limit,
                remaining,
                reset_unix_secs: self.unix_secs_ceil(full_at),
            }),
            Err(wait) => Err(Rejection {
                limit,
                window,
                retry_after_secs: wait.div_ceil(NANOS_PER_SEC).max(1),
                reset_unix_secs: self.unix_secs_ceil(now + period),
            }),
        }
    }

    fn unix_secs_ceil(&self, nanos_since_epoch: u64) -> u64 {
        (self.epoch_unix_nanos + nanos_since_epoch).div_ceil(NANOS_PER_SEC)
    }
}

/// Returns the quota with fewer remaining requests.
fn tighter(current: Option<Quota>, candidate: Quota) -> Quota {
    match current {
        Some(current) if current.remaining <= candidate.remaining => current,
        _ => candidate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const ORG: Uuid = Uuid::from_u128(1);
    const DEPLOYMENT: Uuid = Uuid::from_u128(2);

    fn limits(rps: Option<u64>, per_minute: Option<u64>, per_30d: Option<u64>) -> PlanLimits {
        PlanLimits {
            deployment_rps: rps,
            requests_per_minute: per_minute,
            requests_per_30d: per_30d,
            ..PlanLimits::default()
        }
    }

    #[test]
    fn per_minute_allows_burst_then_rejects() {
        let limiter = RateLimiter::default();
        let plan = limits(None, Some(5), None);
        let at = Duration::from_secs(100);
        for expected_remaining in (0..5).rev() {
            let quota = limiter
                .check_at(ORG, DEPLOYMENT, &plan, None, at)
                .unwrap()
                .unwrap();
            assert_eq!(quota.limit, 5);
            assert_eq!(quota.remaining, expected_remaining);
        }
        let rejection = limiter
            .check_at(ORG, DEPLOYMENT, &plan, None, at)
            .unwrap_err();
        assert_eq!(rejection.window, "minute");
        assert_eq!(rejection.limit, 5);
        assert_eq!(rejection.retry_after_secs, 12, "one request every 12 s");
    }

    #[test]
    fn per_minute_refills_over_time() {
        let limiter = RateLimiter::default();
        let plan = limits(None, Some(60), None);
        for _ in 0..60 {
            limiter
                .check_at(ORG, DEPLOYMENT, &plan, None, Duration::from_secs(10))
                .unwrap();
        }
        assert!(limiter
            .check_at(ORG, DEPLOYMENT, &plan, None, Duration::from_secs(10))
            .is_err());
        let quota = limiter
            .check_at(ORG, DEPLOYMENT, &plan, None, Duration::from_secs(11))
            .unwrap()
            .unwrap();
        assert_eq!(quota.remaining, 0);
    }

    #[test]
    fn organizations_are_independent() {
        let limiter = RateLimiter::default();
        let plan = limits(None, Some(1), None);
        let at = Duration::from_secs(1);
        limiter.check_at(ORG, DEPLOYMENT, &plan, None, at).unwrap();
        assert!(limiter.check_at(ORG, DEPLOYMENT, &plan, None, at).is_err());
        let other_org = Uuid::from_u128(3);
        assert!(limiter
            .check_at(other_org, DEPLOYMENT, &plan, None, at)
            .is_ok());
    }

    #[test]
    fn deployment_rps_is_per_deployment() {
        let limiter = RateLimiter::default();
        let plan = limits(Some(2), None, None);
        let at = Duration::from_secs(1);
        limiter.check_at(ORG, DEPLOYMENT, &plan, None, at).unwrap();
        limiter.check_at(ORG, DEPLOYMENT, &plan, None, at).unwrap();
        let rejection = limiter
            .check_at(ORG, DEPLOYMENT, &plan, None, at)
            .unwrap_err();
        assert_eq!(rejection.window, "second");
        assert_eq!(rejection.retry_after_secs, 1);
        let other = Uuid::from_u128(9);
        assert!(limiter.check_at(ORG, other, &plan, None, at).is_ok());
    }

    #[test]
    fn period_limit_counts_and_rejects() {
        let limiter = RateLimiter::default();
        let plan = limits(None, None, Some(3));
        let at = Duration::from_secs(1);
        for expected_remaining in [2, 1, 0] {
            let quota = limiter
                .check_at(ORG, DEPLOYMENT, &plan, None, at)
                .unwrap()
                .unwrap();
            assert_eq!(quota.remaining, expected_remaining);
            assert_eq!(quota.reset_unix_secs % QUOTA_PERIOD_SECS as u64, 0);
        }
        let rejection = limiter
            .check_at(ORG, DEPLOYMENT, &plan, None, at)
            .unwrap_err();
        assert_eq!(rejection.window, "30d");
        assert!(rejection.retry_after_secs <= QUOTA_PERIOD_SECS as u64);
    }

    const DAY: i64 = 24 * 60 * 60;

    /// Returns a limiter whose clock started at `unix_secs`.
    fn limiter_started_at(unix_secs: i64) -> RateLimiter {
        RateLimiter {
            epoch_unix_nanos: unix_secs as u64 * NANOS_PER_SEC,
            ..RateLimiter::default()
        }
    }

    #[test]
    fn quota_period_without_anchor_counts_from_epoch() {
        assert_eq!(quota_period(None, 0), (0, QUOTA_PERIOD_SECS));
        assert_eq!(
            quota_period(None, QUOTA_PERIOD_SECS - 1),
            (0, QUOTA_PERIOD_SECS)
        );
        assert_eq!(
            quota_period(None, QUOTA_PERIOD_SECS),
            (QUOTA_PERIOD_SECS, 2 * QUOTA_PERIOD_SECS)
        );
    }

    #[test]
    fn quota_period_follows_anchor() {
        // 2026-03-14T09:30:00Z, a billing period start that is not on a 30-day epoch boundary.
        let anchor = 1_773_480_600;
        assert_eq!(
            quota_period(Some(anchor), anchor),
            (anchor, anchor + 30 * DAY)
        );
        assert_eq!(
            quota_period(Some(anchor), anchor + 30 * DAY - 1),
            (anchor, anchor + 30 * DAY)
        );
        assert_eq!(
            quota_period(Some(anchor), anchor + 30 * DAY),
            (anchor + 30 * DAY, anchor + 60 * DAY)
        );
        assert_eq!(
            quota_period(Some(anchor), anchor + 95 * DAY),
            (anchor + 90 * DAY, anchor + 120 * DAY)
        );
    }

    #[test]
    fn quota_period_before_anchor_counts_backwards() {
        let anchor = 1_773_480_600;
        assert_eq!(
            quota_period(Some(anchor), anchor - 1),
            (anchor - 30 * DAY, anchor)
        );
        assert_eq!(
            quota_period(Some(anchor), anchor - 31 * DAY),
            (anchor - 60 * DAY, anchor - 30 * DAY)
        );
    }

    #[test]
    fn quota_period_survives_extreme_anchor() {
        let (start, end) = quota_period(Some(i64::MIN), 1_773_480_600);
        assert!(start <= 1_773_480_600, "start {start}");
        assert!(end > 1_773_480_600, "end {end}");
        assert_eq!(end - start, QUOTA_PERIOD_SECS);
    }

    #[test]
    fn period_limit_resets_at_anchored_period_end() {
        let anchor = 1_773_480_600;
        let started = anchor + 10 * DAY;
        let limiter = limiter_started_at(started);
        let plan = limits(None, None, Some(2));

        let quota = limiter
            .check_at(ORG, DEPLOYMENT, &plan, Some(anchor), Duration::ZERO)
            .unwrap()
            .unwrap();
        assert_eq!(quota.reset_unix_secs, (anchor + 30 * DAY) as u64);
        assert_eq!(quota.remaining, 1);
        limiter
            .check_at(ORG, DEPLOYMENT, &plan, Some(anchor), Duration::ZERO)
            .unwrap();
        let rejection = limiter
            .check_at(ORG, DEPLOYMENT, &plan, Some(anchor), Duration::ZERO)
            .unwrap_err();
        assert_eq!(rejection.window, "30d");
        assert_eq!(rejection.reset_unix_secs, (anchor + 30 * DAY) as u64);
        assert_eq!(rejection.retry_after_secs, (20 * DAY) as u64);

        // The next period starts exactly 30 days after the anchor with a fresh count.
        let next = Duration::from_secs((20 * DAY) as u64);
        let quota = limiter
            .check_at(ORG, DEPLOYMENT, &plan, Some(anchor), next)
            .unwrap()
            .unwrap();
        assert_eq!(quota.remaining, 1);
        assert_eq!(quota.reset_unix_secs, (anchor + 60 * DAY) as u64);
    }

    #[test]
    fn period_limit_uses_flushed_total() {
        let limiter = limiter_started_at(1_773_480_600);
        let plan = limits(None, None, Some(10));
        let at = Duration::ZERO;
        for _ in 0..3 {
            limiter.check_at(ORG, DEPLOYMENT, &plan, None, at).unwrap();
        }

        let pending = limiter.pending_counts(1_773_480_600);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].delta, 3);
        // Other edges admitted 5 more requests of the same period.
        limiter.apply_flush(pending[0], 8);
        assert_eq!(limiter.pending_counts(1_773_480_600)[0].delta, 0);

        let quota = limiter
            .check_at(ORG, DEPLOYMENT, &plan, None, at)
            .unwrap()
            .unwrap();
        assert_eq!(quota.remaining, 1, "8 flushed plus 1 unflushed of 10");
        limiter.check_at(ORG, DEPLOYMENT, &plan, None, at).unwrap();
        let rejection = limiter
            .check_at(ORG, DEPLOYMENT, &plan, None, at)
            .unwrap_err();
        assert_eq!(rejection.window, "30d");
    }

    #[test]
    fn failed_flush_keeps_unflushed_count() {
        let limiter = limiter_started_at(1_773_480_600);
        let plan = limits(None, None, Some(10));
        for _ in 0..4 {
            limiter
                .check_at(ORG, DEPLOYMENT, &plan, None, Duration::ZERO)
                .unwrap();
        }
        // A flush that fails applies nothing, so the next one sends the same delta.
        let first = limiter.pending_counts(1_773_480_600);
        let second = limiter.pending_counts(1_773_480_600);
        assert_eq!(first, second);
        assert_eq!(second[0].delta, 4);

        // A lower total from Redis (a lost key) does not lower the count.
        limiter.apply_flush(second[0], 4);
        limiter.apply_flush(
            PendingCount {
                key: second[0].key,
                delta: 0,
            },
            1,
        );
        let quota = limiter
            .check_at(ORG, DEPLOYMENT, &plan, None, Duration::ZERO)
            .unwrap()
            .unwrap();
        assert_eq!(quota.remaining, 5);
    }

    #[test]
    fn ended_periods_are_pruned_after_flush() {
        let started = 1_773_480_600;
        let limiter = limiter_started_at(started);
        let plan = limits(None, None, Some(10));
        limiter
            .check_at(ORG, DEPLOYMENT, &plan, None, Duration::ZERO)
            .unwrap();
        let (_, end) = quota_period(None, started);

        limiter.prune_ended_periods(end);
        let pending = limiter.pending_counts(end);
        assert_eq!(
            pending.len(),
            1,
            "an ended period with unflushed requests is kept"
        );
        limiter.apply_flush(pending[0], 1);
        assert!(limiter.pending_counts(end).is_empty());
        limiter.prune_ended_periods(end);
        assert_eq!(limiter.periods.len(), 0);
    }

    #[test]
    fn tightest_limit_fills_headers() {
        let limiter = RateLimiter::default();
        let plan = limits(Some(10), Some(3), None);
        let quota = limiter
            .check_at(ORG, DEPLOYMENT, &plan, None, Duration::from_secs(1))
            .unwrap()
            .unwrap();
        assert_eq!(quota.limit, 3);
        assert_eq!(quota.remaining, 2);
    }

    #[test]
    fn no_limits_gives_no_quota() {
        let limiter = RateLimiter::default();
        let quota = limiter
            .check_at(
                ORG,
                DEPLOYMENT,
                &PlanLimits::default(),
                None,
                Duration::ZERO,
            )
            .unwrap();
        assert_eq!(quota, None);
    }

    #[test]
    fn unknown_plan_falls_back_to_free() {
        let record = DeploymentRecord {
            id: DEPLOYMENT,
            org_id: ORG,
            org_slug: "acme".into(),
            slug: "petstore".into(),
            plan: "platinum".into(),
            document: std::sync::Arc::from(""),
            document_sha256: String::new(),
            config: serde_json::Value::Null,
            period_start: None,
            limit_overrides: None,
        };
        let table = PlanTable::default();
        assert_eq!(&limits_for(&table, &record), table.limits("free").unwrap());

        let empty = PlanTable::new(BTreeMap::new());
        assert_eq!(limits_for(&empty, &record), PlanLimits::default());
    }

    #[test]
    fn overrides_apply_over_plan() {
        let overrides = PlanLimits {
            requests_per_minute: Some(5),
            max_storage_bytes: Some(1),
            ..PlanLimits::default()
        };
        let record = DeploymentRecord {
            id: DEPLOYMENT,
            org_id: ORG,
            org_slug: "acme".into(),
            slug: "petstore".into(),
            plan: "free".into(),
            document: std::sync::Arc::from(""),
            document_sha256: String::new(),
            config: serde_json::Value::Null,
            period_start: None,
            limit_overrides: Some(overrides),
        };
        let table = PlanTable::default();
        let free = table.limits("free").unwrap();
        let limits = limits_for(&table, &record);
        assert_eq!(limits.requests_per_minute, Some(5));
        assert_eq!(limits.max_storage_bytes, Some(1));
        assert_eq!(
            limits.deployment_rps, free.deployment_rps,
            "a key the overrides omit keeps the plan's value"
        );

        let unknown_plan = DeploymentRecord {
            plan: "platinum".into(),
            ..record
        };
        let limits = limits_for(&table, &unknown_plan);
        assert_eq!(limits.requests_per_minute, Some(5));
        assert_eq!(limits.max_deployments, free.max_deployments);
    }
}
