//! Sends telemetry batches to a [`TelemetrySink`] on an interval and once more at shutdown.

use std::sync::Arc;
use std::time::Duration;

use mockforge_snapshot::{TelemetryBatch, TelemetrySink};

use crate::Shared;

/// Attempts to deliver the final batch after the server stopped.
const FINAL_ATTEMPTS: u32 = 3;
/// Delay between two attempts to deliver the final batch.
const FINAL_RETRY_DELAY: Duration = Duration::from_millis(200);

pub(crate) async fn report_to(shared: Arc<Shared>, sink: Arc<dyn TelemetrySink>) {
    let mut terminated = shared.terminated.subscribe();
    let interval = shared.config.telemetry_interval.max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        node = %shared.config.node_name,
        interval_ms = interval.as_millis() as u64,
        "reporting telemetry"
    );

    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let batch = shared.telemetry.take_batch(&shared.config.node_name);
                if is_empty(&batch) {
                    continue;
                }
                if let Err(error) = sink.report_telemetry(batch.clone()).await {
                    tracing::warn!(
                        %error,
                        deployments = batch.usage.len(),
                        logs = batch.logs.len(),
                        "failed to send telemetry; merging it into the next batch"
                    );
                    shared.telemetry.keep_pending(batch);
                }
            }
            _ = wait_terminated(&mut terminated) => break,
        }
    }

    let batch = shared.telemetry.take_batch(&shared.config.node_name);
    if is_empty(&batch) {
        return;
    }
    for attempt in 1..=FINAL_ATTEMPTS {
        match sink.report_telemetry(batch.clone()).await {
            Ok(()) => {
                tracing::info!(
                    deployments = batch.usage.len(),
                    "sent the final telemetry batch"
                );
                return;
            }
            Err(error) if attempt < FINAL_ATTEMPTS => {
                tracing::warn!(%error, attempt, "failed to send the final telemetry batch; retrying");
                tokio::time::sleep(FINAL_RETRY_DELAY).await;
            }
            Err(error) => {
                let requests: u64 = batch.usage.iter().map(|usage| usage.requests).sum();
                tracing::error!(
                    %error,
                    requests,
                    "dropping the final telemetry batch after {FINAL_ATTEMPTS} failed attempts"
                );
            }
        }
    }
}

/// Resolves when the server stopped or the sender is dropped.
async fn wait_terminated(terminated: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = terminated.wait_for(|terminated| *terminated).await;
}

fn is_empty(batch: &TelemetryBatch) -> bool {
    batch.usage.is_empty() && batch.logs.is_empty()
}
