//! Types that travel between the control plane and edge nodes.
//!
//! The control plane is the source of truth for which deployments an edge serves. Every
//! serving-relevant change bumps a global configuration version; an edge requests every change
//! after the version it serves and reports back which deployments it compiled. These types are the
//! whole contract between the two sides: neither imports the other's internals.

mod plans;
mod plugins;
mod remote;
pub mod settings;
mod telemetry;

pub use plans::{PlanLimits, PlanTable, FALLBACK_PLAN};
pub use plugins::PluginSource;
pub use remote::{DeploymentHeader, Heartbeat, NotificationMode, RemoteDelta, VersionReply, REDIS_VERSION_CHANNEL};
pub use telemetry::{DeploymentUsage, RequestLog, TelemetryBatch, TelemetrySink, LATENCY_BUCKETS_MS};

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One deployment as an edge needs it to serve requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    /// DNS label of the organization: the `{org}` in `{org}.{base domain}`.
    pub org_slug: String,
    /// DNS label of the deployment: the first path segment of its mock URL.
    pub slug: String,
    /// Name of the organization's plan, a key of the plan table.
    pub plan: String,
    /// The OpenAPI document as uploaded (JSON or YAML text).
    pub document: Arc<str>,
    /// Hex SHA-256 of `document`, so an edge can skip recompiling an unchanged document.
    pub document_sha256: String,
    /// The deployment's `config_json`, passed to the engine as mock options.
    pub config: serde_json::Value,
    /// Start of one of the organization's 30-day request quota periods, in Unix seconds. The
    /// periods follow each other from this instant in both directions. `None` (also the value
    /// in snapshots written before the field existed) makes the edge count 30-day periods from
    /// the Unix epoch.
    #[serde(default)]
    pub period_start: Option<i64>,
    /// Limits that a platform admin set for the organization, applied over the plan's limits
    /// (see [`PlanLimits::overridden_by`]). `None` (also the value in snapshots written before
    /// the field existed) applies the plan's limits unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_overrides: Option<PlanLimits>,
}

/// Everything that changed after a given configuration version.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotDelta {
    /// The configuration version this delta brings the edge to.
    pub version: u64,
    /// True when `upserts` is the complete set of served deployments, so the edge drops every
    /// deployment it serves that is not listed.
    pub full: bool,
    /// Deployments to serve, new or changed.
    pub upserts: Vec<DeploymentRecord>,
    /// Deployments to stop serving (stopped or deleted).
    pub removals: Vec<Uuid>,
}

/// Result of applying one deployment of a delta on an edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ApplyOutcome {
    /// The document compiled and the deployment is served.
    Served,
    /// The document did not compile; the edge does not serve the deployment.
    Failed { reason: String },
}

/// An edge's report after applying a delta.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyReport {
    /// Name of the edge node, for example `local` or `eu-1`.
    pub node: String,
    /// The configuration version the edge now serves.
    pub version: u64,
    pub outcomes: Vec<(Uuid, ApplyOutcome)>,
}

/// Errors a feed returns to the edge that follows it.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the control plane is unavailable: {0}")]
    Unavailable(String),
    #[error("the control plane rejected the request: {0}")]
    Rejected(String),
}

/// The control plane's interface to the edges that follow it.
///
/// `mockforge serve` implements it in process; separate edge processes reach the same
/// operations over HTTP.
#[async_trait::async_trait]
pub trait SnapshotFeed: Send + Sync + 'static {
    /// Returns every change after `version`; `version` 0 returns a full snapshot.
    async fn changes_since(&self, version: u64) -> Result<SnapshotDelta, FeedError>;

    /// Waits until the configuration version is greater than `version`, or `timeout` passes,
    /// and returns the current version.
    async fn wait_for_change(&self, version: u64, timeout: Duration) -> Result<u64, FeedError>;

    /// Records which deployments of a delta the edge now serves and which it rejected.
    async fn report_applied(&self, report: ApplyReport) -> Result<(), FeedError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_json() -> serde_json::Value {
        serde_json::json!({
            "id": "6f1c2a1e-8a55-4c1b-9d7e-1f3a4b5c6d7e",
            "org_id": "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
            "org_slug": "acme",
            "slug": "petstore",
            "plan": "free",
            "document": "openapi: 3.0.3",
            "document_sha256": "00",
            "config": {},
        })
    }

    #[test]
    fn record_without_overrides_parses() {
        let record: DeploymentRecord = serde_json::from_value(record_json()).unwrap();
        assert_eq!(record.limit_overrides, None);
        let json = serde_json::to_value(&record).unwrap();
        assert!(json.get("limit_overrides").is_none(), "{json}");
    }

    #[test]
    fn record_overrides_round_trip() {
        let mut json = record_json();
        json["limit_overrides"] = serde_json::json!({ "requests_per_minute": 5 });
        let record: DeploymentRecord = serde_json::from_value(json).unwrap();
        let expected = PlanLimits { requests_per_minute: Some(5), ..PlanLimits::default() };
        assert_eq!(record.limit_overrides.as_ref(), Some(&expected));

        let header = DeploymentHeader::of(&record);
        assert_eq!(header.limit_overrides.as_ref(), Some(&expected));
        let text = serde_json::to_string(&header).unwrap();
        let parsed: DeploymentHeader = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.into_record(Arc::from("")).limit_overrides, Some(expected));
    }
}
