//! Usage, metrics and request logs that edges report to the control plane in batches.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::FeedError;

/// Upper bounds in milliseconds of the latency histogram buckets; a last, implicit bucket
/// counts everything slower.
pub const LATENCY_BUCKETS_MS: [f64; 10] = [1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 5000.0];

/// Counts of one edge for one deployment during one reporting window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentUsage {
    pub deployment_id: Uuid,
    pub org_id: Uuid,
    pub requests: u64,
    /// Responses by HTTP status code.
    pub status_counts: BTreeMap<u16, u64>,
    /// Counts per bucket of [`LATENCY_BUCKETS_MS`], plus one final overflow bucket.
    pub latency_buckets: Vec<u64>,
    /// Sum of all latencies in milliseconds, for averages.
    pub latency_ms_sum: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// One served request, as shown in a deployment's logs. Bodies are never included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLog {
    pub deployment_id: Uuid,
    pub method: String,
    /// The path below the deployment, without the query string.
    pub path: String,
    pub status: u16,
    pub latency_ms: f64,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub at_unix_ms: i64,
    pub request_id: String,
    /// The edge's explanation of the outcome when the status alone does not give it, for
    /// example which plugin failed and how. Absent in batches from older edges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Everything one edge reports for one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TelemetryBatch {
    /// Name of the reporting edge node.
    pub node: String,
    /// Start and end of the window, in milliseconds since the Unix epoch.
    pub window_start_unix_ms: i64,
    pub window_end_unix_ms: i64,
    pub usage: Vec<DeploymentUsage>,
    pub logs: Vec<RequestLog>,
}

/// Destination of an edge's telemetry: the control plane, in process or over HTTP.
#[async_trait::async_trait]
pub trait TelemetrySink: Send + Sync + 'static {
    /// Stores one batch. A batch that returns an error is retried by the edge, so
    /// implementations must store a batch all or nothing.
    async fn report_telemetry(&self, batch: TelemetryBatch) -> Result<(), FeedError>;
}
