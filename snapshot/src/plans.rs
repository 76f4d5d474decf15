//! Plan limits: what each plan allows, as data. The control plane enforces the
//! organization-level limits (deployments) and edges enforce the request-level ones, both from
//! the same table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Limits of one plan. `None` means no limit, except for the plugin limits, where `None` means
/// the edge's default.
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
    /// Time one plugin hook call may run, in milliseconds. `None` means the edge's default call
    /// timeout (10 ms unless the edge is configured otherwise), not unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_call_timeout_ms: Option<u64>,
    /// Maximum linear memory of one plugin instance, in bytes. `None` means the edge's default
    /// memory limit (16 MiB unless the edge is configured otherwise), not unlimited. Edges cap
    /// the value at 4 GiB, the address space of 32-bit WebAssembly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_memory_bytes: Option<u64>,
}

impl PlanLimits {
    /// The keys of a `[plans.NAME]` table and of a limits object in JSON, in declaration order.
    pub const KEYS: [&'static str; 8] = [
        "requests_per_minute",
        "requests_per_30d",
        "max_deployments",
        "deployment_rps",
        "max_request_body_bytes",
        "max_storage_bytes",
        "plugin_call_timeout_ms",
        "plugin_memory_bytes",
    ];

    /// Returns these limits with every limit that `overrides` sets replaced.
    pub fn overridden_by(&self, overrides: &PlanLimits) -> PlanLimits {
        PlanLimits {
            requests_per_minute: overrides.requests_per_minute.or(self.requests_per_minute),
            requests_per_30d: overrides.requests_per_30d.or(self.requests_per_30d),
            max_deployments: overrides.max_deployments.or(self.max_deployments),
            deployment_rps: overrides.deployment_rps.or(self.deployment_rps),
            max_request_body_bytes: overrides.max_request_body_bytes.or(self.max_request_body_bytes),
            max_storage_bytes: overrides.max_storage_bytes.or(self.max_storage_bytes),
            plugin_call_timeout_ms: overrides.plugin_call_timeout_ms.or(self.plugin_call_timeout_ms),
            plugin_memory_bytes: overrides.plugin_memory_bytes.or(self.plugin_memory_bytes),
        }
    }
}

/// Every plan by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlanTable {
    plans: BTreeMap<String, PlanLimits>,
}

/// Plan whose limits apply to an organization whose plan name the table does not contain.
pub const FALLBACK_PLAN: &str = "free";

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

impl Default for PlanTable {
    /// The plans of MockForge Cloud: free (60 requests per minute, 3 deployments, 100 MiB of
    /// storage), pro (250,000 requests per 30 days, 20 GiB) and team (1,000,000 requests per 30
    /// days, 100 GiB). Plugin hook calls get 10 ms and 16 MiB on free, 50 ms and 64 MiB on pro
    /// and team.
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
                    plugin_call_timeout_ms: Some(10),
                    plugin_memory_bytes: Some(16 * MIB),
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
                    plugin_call_timeout_ms: Some(50),
                    plugin_memory_bytes: Some(64 * MIB),
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
                    plugin_call_timeout_ms: Some(50),
                    plugin_memory_bytes: Some(64 * MIB),
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

    /// Returns the limits that apply to an organization on `plan`: the plan's limits, or those
    /// of [`FALLBACK_PLAN`] for a plan name the table does not contain (none when it has neither),
    /// with the organization's `overrides` applied.
    pub fn effective_limits(&self, plan: &str, overrides: Option<&PlanLimits>) -> PlanLimits {
        let plan_limits = self
            .limits(plan)
            .or_else(|| self.limits(FALLBACK_PLAN))
            .cloned()
            .unwrap_or_default();
        match overrides {
            Some(overrides) => plan_limits.overridden_by(overrides),
            None => plan_limits,
        }
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

    #[test]
    fn default_plans_set_plugin_limits() {
        let table = PlanTable::default();
        let free = table.limits("free").unwrap();
        assert_eq!(free.plugin_call_timeout_ms, Some(10));
        assert_eq!(free.plugin_memory_bytes, Some(16 * MIB));
        for paid in ["pro", "team"] {
            let limits = table.limits(paid).unwrap();
            assert_eq!(limits.plugin_call_timeout_ms, Some(50), "{paid}");
            assert_eq!(limits.plugin_memory_bytes, Some(64 * MIB), "{paid}");
        }
    }

    #[test]
    fn plugin_limit_keys_parse_from_toml() {
        let plans: BTreeMap<String, PlanLimits> = toml::from_str(
            r#"
            [edu]
            requests_per_minute = 100
            plugin_call_timeout_ms = 25
            plugin_memory_bytes = 33554432

            [minimal]
            requests_per_minute = 10
            "#,
        )
        .unwrap();
        let edu = &plans["edu"];
        assert_eq!(edu.plugin_call_timeout_ms, Some(25));
        assert_eq!(edu.plugin_memory_bytes, Some(32 * MIB));
        let minimal = &plans["minimal"];
        assert_eq!(minimal.plugin_call_timeout_ms, None, "an omitted key means the edge's default");
        assert_eq!(minimal.plugin_memory_bytes, None, "an omitted key means the edge's default");
    }

    #[test]
    fn plugin_limit_keys_reject_negative() {
        let error = toml::from_str::<PlanLimits>("plugin_call_timeout_ms = -5").unwrap_err();
        assert!(error.to_string().contains("plugin_call_timeout_ms"), "{error}");
    }

    #[test]
    fn omitted_plugin_limits_are_not_serialized() {
        let json = serde_json::to_value(PlanLimits { requests_per_minute: Some(1), ..Default::default() }).unwrap();
        assert_eq!(json, serde_json::json!({ "requests_per_minute": 1 }));
        let json = serde_json::to_value(PlanLimits { plugin_call_timeout_ms: Some(40), ..Default::default() }).unwrap();
        assert_eq!(json, serde_json::json!({ "plugin_call_timeout_ms": 40 }));
    }

    #[test]
    fn keys_match_serialized_fields() {
        let all = PlanLimits {
            requests_per_minute: Some(1),
            requests_per_30d: Some(2),
            max_deployments: Some(3),
            deployment_rps: Some(4),
            max_request_body_bytes: Some(5),
            max_storage_bytes: Some(6),
            plugin_call_timeout_ms: Some(7),
            plugin_memory_bytes: Some(8),
        };
        let json = serde_json::to_value(all).unwrap();
        let serialized: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(serialized, PlanLimits::KEYS);
    }

    #[test]
    fn override_replaces_plugin_limits() {
        let base = PlanTable::default().limits("free").unwrap().clone();
        let merged = base.overridden_by(&PlanLimits { plugin_call_timeout_ms: Some(40), ..Default::default() });
        assert_eq!(merged.plugin_call_timeout_ms, Some(40));
        assert_eq!(merged.plugin_memory_bytes, Some(16 * MIB), "a key the override omits keeps the plan's value");

        let merged = base.overridden_by(&PlanLimits { plugin_memory_bytes: Some(8 * MIB), ..Default::default() });
        assert_eq!(merged.plugin_memory_bytes, Some(8 * MIB));
        assert_eq!(merged.plugin_call_timeout_ms, Some(10));
    }
}
