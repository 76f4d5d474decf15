//! The control plane's [`TelemetrySink`]: stores the usage, metrics and request logs that edges
//! report.

use mockforge_snapshot::{FeedError, TelemetryBatch, TelemetrySink, LATENCY_BUCKETS_MS};

use crate::store::SharedStore;

/// Maximum request logs in one batch.
pub const BATCH_LOGS_MAX: usize = 10_000;

pub struct Telemetry {
    store: SharedStore,
    /// Request logs kept per deployment; older ones are deleted as new ones arrive.
    log_limit: i64,
}

impl Telemetry {
    pub fn new(store: SharedStore, log_limit: i64) -> Telemetry {
        Telemetry { store, log_limit }
    }
}

fn validate(batch: &TelemetryBatch) -> Result<(), FeedError> {
    if batch.node.trim().is_empty() {
        return Err(FeedError::Rejected("the telemetry batch has no node name".to_owned()));
    }
    if batch.window_end_unix_ms < batch.window_start_unix_ms {
        return Err(FeedError::Rejected(format!(
            "the telemetry window ends ({}) before it starts ({})",
            batch.window_end_unix_ms, batch.window_start_unix_ms
        )));
    }
    if batch.logs.len() > BATCH_LOGS_MAX {
        return Err(FeedError::Rejected(format!(
            "the telemetry batch has {} request logs; the maximum is {BATCH_LOGS_MAX}",
            batch.logs.len()
        )));
    }
    let buckets = LATENCY_BUCKETS_MS.len() + 1;
    if let Some(usage) = batch.usage.iter().find(|usage| usage.latency_buckets.len() > buckets) {
        return Err(FeedError::Rejected(format!(
            "deployment {} reports {} latency buckets; expected at most {buckets}",
            usage.deployment_id,
            usage.latency_buckets.len()
        )));
    }
    Ok(())
}

#[async_trait::async_trait]
impl TelemetrySink for Telemetry {
    async fn report_telemetry(&self, batch: TelemetryBatch) -> Result<(), FeedError> {
        validate(&batch)?;
        match self.store.usage().store_telemetry(&batch, self.log_limit).await {
            Ok(true) => {
                tracing::debug!(node = %batch.node, usage = batch.usage.len(), logs = batch.logs.len(), "stored a telemetry batch");
                Ok(())
            }
            Ok(false) => {
                tracing::debug!(node = %batch.node, window_start = batch.window_start_unix_ms, "ignored a telemetry batch stored before");
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, node = %batch.node, "failed to store a telemetry batch");
                Err(FeedError::Unavailable(format!("failed to store the telemetry batch: {error}")))
            }
        }
    }
}
