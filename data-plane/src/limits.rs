//! Plan limits enforced per request: requests per second per deployment, requests per minute and
//! per 30 days per organization.
//!
//! Counters live in `DashMap`s keyed by deployment or organization id and are updated with
//! atomic compare-and-swap, so no lock is shared by all requests. The per-second and per-minute
//! limits use GCRA (the generic cell rate algorithm): each key stores one theoretical arrival
//! time, which allows a burst of the whole limit and then one request per `period / limit`.
//!
//! NOTE: every edge node counts on its own, so an organization served by several nodes gets the
//! limit once per node.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use mockforge_snapshot::{DeploymentRecord, PlanLimits, PlanTable};
use uuid::Uuid;

use crate::error::EdgeError;

/// Plan whose limits apply to a deployment whose plan name the table does not contain.
pub const FALLBACK_PLAN: &str = "free";

/// Length of the request-count period, in seconds.
// TODO: take the billing period start from the control plane; until then the periods are
// consecutive 30-day windows since the Unix epoch.
const PERIOD_30D_SECS: u64 = 30 * 24 * 60 * 60;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Returns the limits that apply to a deployment. Every limit lookup goes through this function.
///
/// An unknown plan name gets the limits of [`FALLBACK_PLAN`], or none when the table has no such
/// plan either.
// TODO: apply per-organization overrides from the control plane here.
pub fn limits_for(plans: &PlanTable, record: &DeploymentRecord) -> PlanLimits {
    if let Some(limits) = plans.limits(&record.plan) {
        return limits.clone();
    }
    tracing::warn!(
        org = %record.org_slug,
        deployment = %record.slug,
        plan = %record.plan,
        fallback = FALLBACK_PLAN,
        "the deployment's plan is not in the plan table; applying the fallback plan's limits"
    );
    plans.limits(FALLBACK_PLAN).cloned().unwrap_or_default()
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

/// Request count of one organization in the current 30-day period.
#[derive(Default)]
struct PeriodCounter {
    period_index: AtomicU64,
    count: AtomicU64,
}

impl PeriodCounter {
    /// Counts one request in period `index` unless the count reached `limit`. Returns the new
    /// count, or `None` when the limit is used up.
    fn admit(&self, index: u64, limit: u64) -> Option<u64> {
        let seen = self.period_index.load(Ordering::Acquire);
        if seen != index
            && self
                .period_index
                .compare_exchange(seen, index, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // A request that raced with the reset may be counted in either period.
            self.count.store(0, Ordering::Release);
        }
        let count = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        if count > limit {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(count)
    }
}

#[derive(Default)]
struct OrgCounters {
    per_minute: Gcra,
    per_period: PeriodCounter,
}

/// Rate limits of every organization and deployment this edge serves.
pub struct RateLimiter {
    epoch: Instant,
    epoch_unix_nanos: u64,
    orgs: DashMap<Uuid, OrgCounters>,
    deployments: DashMap<Uuid, Gcra>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        let epoch_unix_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        RateLimiter {
            epoch: Instant::now(),
            epoch_unix_nanos,
            orgs: DashMap::new(),
            deployments: DashMap::new(),
        }
    }
}

impl RateLimiter {
    /// Admits one request to `deployment_id` of `org_id` now.
    ///
    /// Limits are checked in the order deployment per second, organization per minute and
    /// organization per 30 days. A request rejected by a later limit still used a unit of the
    /// earlier ones. Returns `Ok(None)` when the plan sets none of the three limits.
    pub fn check(
        &self,
        org_id: Uuid,
        deployment_id: Uuid,
        limits: &PlanLimits,
    ) -> Result<Option<Quota>, Rejection> {
        self.check_at(org_id, deployment_id, limits, self.epoch.elapsed())
    }

    /// Like [`RateLimiter::check`] at `elapsed` since the limiter was created, for tests.
    pub fn check_at(
        &self,
        org_id: Uuid,
        deployment_id: Uuid,
        limits: &PlanLimits,
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
        let org = self.org(org_id);
        if let Some(limit) = limits.requests_per_minute {
            let quota = self.check_gcra(&org.per_minute, now, limit, 60 * NANOS_PER_SEC, "minute")?;
            tightest = Some(tighter(tightest, quota));
        }
        if let Some(limit) = limits.requests_per_30d {
            let unix_secs = (self.epoch_unix_nanos + now) / NANOS_PER_SEC;
            let index = unix_secs / PERIOD_30D_SECS;
            let reset_unix_secs = (index + 1) * PERIOD_30D_SECS;
            match org.per_period.admit(index, limit) {
                Some(count) => {
                    let quota = Quota {
                        limit,
                        remaining: limit - count,
                        reset_unix_secs,
                    };
                    tightest = Some(tighter(tightest, quota));
                }
                None => {
                    return Err(Rejection {
                        limit,
                        window: "30d",
                        retry_after_secs: reset_unix_secs - unix_secs,
                        reset_unix_secs,
                    })
                }
            }
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

    fn org(&self, org_id: Uuid) -> dashmap::mapref::one::Ref<'_, Uuid, OrgCounters> {
        if let Some(org) = self.orgs.get(&org_id) {
            return org;
        }
        self.orgs.entry(org_id).or_default().downgrade()
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
            let quota = limiter.check_at(ORG, DEPLOYMENT, &plan, at).unwrap().unwrap();
            assert_eq!(quota.limit, 5);
            assert_eq!(quota.remaining, expected_remaining);
        }
        let rejection = limiter.check_at(ORG, DEPLOYMENT, &plan, at).unwrap_err();
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
                .check_at(ORG, DEPLOYMENT, &plan, Duration::from_secs(10))
                .unwrap();
        }
        assert!(limiter
            .check_at(ORG, DEPLOYMENT, &plan, Duration::from_secs(10))
            .is_err());
        let quota = limiter
            .check_at(ORG, DEPLOYMENT, &plan, Duration::from_secs(11))
            .unwrap()
            .unwrap();
        assert_eq!(quota.remaining, 0);
    }

    #[test]
    fn organizations_are_independent() {
        let limiter = RateLimiter::default();
        let plan = limits(None, Some(1), None);
        let at = Duration::from_secs(1);
        limiter.check_at(ORG, DEPLOYMENT, &plan, at).unwrap();
        assert!(limiter.check_at(ORG, DEPLOYMENT, &plan, at).is_err());
        let other_org = Uuid::from_u128(3);
        assert!(limiter.check_at(other_org, DEPLOYMENT, &plan, at).is_ok());
    }

    #[test]
    fn deployment_rps_is_per_deployment() {
        let limiter = RateLimiter::default();
        let plan = limits(Some(2), None, None);
        let at = Duration::from_secs(1);
        limiter.check_at(ORG, DEPLOYMENT, &plan, at).unwrap();
        limiter.check_at(ORG, DEPLOYMENT, &plan, at).unwrap();
        let rejection = limiter.check_at(ORG, DEPLOYMENT, &plan, at).unwrap_err();
        assert_eq!(rejection.window, "second");
        assert_eq!(rejection.retry_after_secs, 1);
        let other = Uuid::from_u128(9);
        assert!(limiter.check_at(ORG, other, &plan, at).is_ok());
    }

    #[test]
    fn period_limit_counts_and_rejects() {
        let limiter = RateLimiter::default();
        let plan = limits(None, None, Some(3));
        let at = Duration::from_secs(1);
        for expected_remaining in [2, 1, 0] {
            let quota = limiter.check_at(ORG, DEPLOYMENT, &plan, at).unwrap().unwrap();
            assert_eq!(quota.remaining, expected_remaining);
            assert_eq!(quota.reset_unix_secs % PERIOD_30D_SECS, 0);
        }
        let rejection = limiter.check_at(ORG, DEPLOYMENT, &plan, at).unwrap_err();
        assert_eq!(rejection.window, "30d");
        assert!(rejection.retry_after_secs <= PERIOD_30D_SECS);
    }

    #[test]
    fn tightest_limit_fills_headers() {
        let limiter = RateLimiter::default();
        let plan = limits(Some(10), Some(3), None);
        let quota = limiter
            .check_at(ORG, DEPLOYMENT, &plan, Duration::from_secs(1))
            .unwrap()
            .unwrap();
        assert_eq!(quota.limit, 3);
        assert_eq!(quota.remaining, 2);
    }

    #[test]
    fn no_limits_gives_no_quota() {
        let limiter = RateLimiter::default();
        let quota = limiter
            .check_at(ORG, DEPLOYMENT, &PlanLimits::default(), Duration::ZERO)
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
        };
        let table = PlanTable::default();
        assert_eq!(&limits_for(&table, &record), table.limits("free").unwrap());

        let empty = PlanTable::new(BTreeMap::new());
        assert_eq!(limits_for(&empty, &record), PlanLimits::default());
    }
}
