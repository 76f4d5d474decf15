//! Plan limits: what each plan allows, as data. The control plane enforces the
//! organization-level limits (deployments) and edges enforce the request-level ones, both from
//! the same table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Limits of one plan. `None` means no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    /// Requests per minute to all of an organization's mocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    /// Requests per 30-day billing period to all of an organization's mocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_30d: Option<u64>,
    /// Deployments an organization may have at once (stopped ones count, deleted ones do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deployments: Option<u64>,
    /// Requests per second to one deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_rps: Option<u64>,
    /// Maximum request body in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_body_bytes: Option<u64>,
    /// Storage quota of an organization in bytes: its deployments' OpenAPI documents and the
    /// files of its marketplace packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_storage_bytes: Option<u64>,
}

impl PlanLimits {
    /// Returns these limits with every limit that `overrides` sets replaced.
    pub fn overridden_by(&self, overrides: &PlanLimits) -> PlanLimits {
        PlanLimits {
            requests_per_minute: overrides.requests_per_minute.or(self.requests_per_minute),
            requests_per_30d: overrides.requests_per_30d.or(self.requests_per_30d),
            max_deployments: overrides.max_deployments.or(self.max_deployments),
            deployment_rps: overrides.deployment_rps.or(self.deployment_rps),
            max_request_body_bytes: overrides.max_request_body_bytes.or(self.max_request_body_bytes),
            max_storage_bytes: overrides.max_storage_bytes.or(self.max_storage_bytes),
        }
    }
}

/// Every plan by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlanTable {
    plans: BTreeMap<String, PlanLimits>,
}

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

impl Default for PlanTable {
    /// The plans of MockForge Cloud: free (60 requests per minute, 3 deployments, 100 MiB of
    /// storage), pro (250,000 requests per 30 days, 20 GiB) and team (1,000,000 requests per 30
    /// days, 100 GiB).
    fn default() -> Self {
        let plans = BTreeMap::from([
            (
                "free".to_string(),
                PlanLimits {
                    requests_per_minute: Some(60),
                    requests_per_30d: None,
                    max_deployments: Some(3),
                    deployment_rps: Some(10),
                    max_request_body_bytes: Some(MIB),
                    max_storage_bytes: Some(100 * MIB),
                },
            ),
            (
                "pro".to_string(),
                PlanLimits {
                    requests_per_minute: None,
                    requests_per_30d: Some(250_000),
                    max_deployments: Some(25),
                    deployment_rps: Some(100),
                    max_request_body_bytes: Some(10 * MIB),
                    max_storage_bytes: Some(20 * GIB),
                },
            ),
            (
                "team".to_string(),
                PlanLimits {
                    requests_per_minute: None,
                    requests_per_30d: Some(1_000_000),
                    max_deployments: Some(100),
                    deployment_rps: Some(500),
                    max_request_body_bytes: Some(25 * MIB),
                    max_storage_bytes: Some(100 * GIB),
                },
            ),
        ]);
        PlanTable { plans }
    }
}

impl PlanTable {
    /// Builds a table from explicit plans only.
    pub fn new(plans: BTreeMap<String, PlanLimits>) -> PlanTable {
        PlanTable { plans }
    }

    /// Returns the default table with each plan of `configured` replacing the plan of the same
    /// name whole (a key it omits means no limit) or adding a new plan.
    pub fn with_configured(configured: BTreeMap<String, PlanLimits>) -> PlanTable {
        let mut table = PlanTable::default();
        table.plans.extend(configured);
        table
    }

    /// Returns the limits of `plan`, or `None` for an unknown plan name.
    pub fn limits(&self, plan: &str) -> Option<&PlanLimits> {
        self.plans.get(plan)
    }

    /// Returns the plan names in alphabetical order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.plans.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plans_follow_pricing() {
        let table = PlanTable::default();
        assert_eq!(table.limits("free").unwrap().requests_per_minute, Some(60));
        assert_eq!(table.limits("free").unwrap().max_deployments, Some(3));
        assert_eq!(table.limits("pro").unwrap().requests_per_30d, Some(250_000));
        assert_eq!(table.limits("team").unwrap().requests_per_30d, Some(1_000_000));
        assert!(table.limits("enterprise").is_none());
    }

    #[test]
    fn default_plans_set_storage_quota() {
        let table = PlanTable::default();
        assert_eq!(table.limits("free").unwrap().max_storage_bytes, Some(104_857_600));
        assert_eq!(table.limits("pro").unwrap().max_storage_bytes, Some(21_474_836_480));
        assert_eq!(table.limits("team").unwrap().max_storage_bytes, Some(107_374_182_400));
    }

    #[test]
    fn storage_quota_key_deserializes() {
        let limits: PlanLimits = serde_json::from_value(serde_json::json!({ "max_storage_bytes": 2048 })).unwrap();
        assert_eq!(limits.max_storage_bytes, Some(2048));
        let unlimited: PlanLimits = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(unlimited.max_storage_bytes, None, "an omitted key means no limit");
    }

    #[test]
    fn configured_plan_replaces_whole_plan() {
        let configured = BTreeMap::from([("free".to_string(), PlanLimits { requests_per_minute: Some(5), ..Default::default() })]);
        let table = PlanTable::with_configured(configured);
        let free = table.limits("free").unwrap();
        assert_eq!(free.requests_per_minute, Some(5));
        assert_eq!(free.max_deployments, None, "an omitted key means no limit");
        assert_eq!(free.max_storage_bytes, None, "an omitted key means no limit");
        assert!(table.limits("pro").is_some());
    }

    #[test]
    fn override_replaces_set_limits_only() {
        let base = PlanTable::default().limits("free").unwrap().clone();
        let merged = base.overridden_by(&PlanLimits { max_deployments: Some(10), ..Default::default() });
        assert_eq!(merged.max_deployments, Some(10));
        assert_eq!(merged.requests_per_minute, Some(60));
        assert_eq!(merged.max_storage_bytes, Some(100 * MIB));
    }
}
