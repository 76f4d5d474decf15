//! Follows a [`SnapshotFeed`]: fetches deltas, compiles changed deployments, publishes new
//! snapshots and reports the outcome to the control plane.
//!
//! Feed errors never affect serving: the current snapshot stays published while the loop
//! retries with capped exponential backoff.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mockforge_engine::{Diagnostic, Mock, MockOptions};
use mockforge_snapshot::settings::{self, ChaosSettings, ProxySettings};
use mockforge_snapshot::{
    ApplyOutcome, ApplyReport, DeploymentRecord, FeedError, SnapshotDelta, SnapshotFeed,
};
use tokio::sync::watch;
use uuid::Uuid;

use crate::chaos::ChaosConfig;
use crate::proxy::ProxyConfig;
use crate::limits::limits_for;
use crate::snapshot::{ServedDeployment, Snapshot};
use crate::Shared;

/// How long one `wait_for_change` call may block.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// First and maximum delay between retries after a feed error.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Attempts to deliver one apply report before it is dropped.
const REPORT_ATTEMPTS: u32 = 3;
/// Maximum number of compiler diagnostics quoted in a failure reason.
const MAX_REASON_DIAGNOSTICS: usize = 10;

/// A deployment whose document did not compile, remembered so an unchanged record is not
/// compiled again.
struct FailedDeployment {
    document_sha256: String,
    config: serde_json::Value,
    reason: String,
}

/// The follower's state between deltas.
#[derive(Default)]
struct SyncState {
    failed: HashMap<Uuid, FailedDeployment>,
}

/// Doubling delay between retries, capped at [`MAX_BACKOFF`].
struct Backoff {
    next: Duration,
    attempt: u32,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            next: INITIAL_BACKOFF,
            attempt: 0,
        }
    }

    fn reset(&mut self) {
        *self = Backoff::new();
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        self.attempt += 1;
        delay
    }
}

/// Follows `feed` until `stop` turns true or its sender is dropped.
pub(crate) async fn follow(shared: Arc<Shared>, feed: Arc<dyn SnapshotFeed>) {
    let mut stop = shared.stopped.subscribe();
    let mut state = SyncState::default();
    let mut backoff = Backoff::new();
    let mut fetch_needed = true;
    tracing::info!(node = %shared.config.node_name, "following the control plane");

    loop {
        if is_stopped(&stop) {
            break;
        }

        if fetch_needed {
            let version = shared.snapshot.load().version();
            let fetched = tokio::select! {
                fetched = feed.changes_since(version) => fetched,
                _ = wait_stopped(&mut stop) => break,
            };
            match fetched {
                Ok(delta) => {
                    let report = apply_delta(&shared, &mut state, delta).await;
                    send_report(feed.as_ref(), report, &mut stop).await;
                    backoff.reset();
                    fetch_needed = false;
                }
                Err(error) => {
                    if !retry_after(
                        &mut backoff,
                        "fetch changes from the control plane",
                        &error,
                        &mut stop,
                    )
                    .await
                    {
                        break;
                    }
                    continue;
                }
            }
        }

        let version = shared.snapshot.load().version();
        let waited = tokio::select! {
            waited = feed.wait_for_change(version, WAIT_TIMEOUT) => waited,
            _ = wait_stopped(&mut stop) => break,
        };
        if waited.is_ok() {
            backoff.reset();
        }
        match waited {
            Ok(current) if current > version => fetch_needed = true,
            Ok(current) if current < version => {
                // The control plane went back in time, for example after restoring a backup.
                // Only a full snapshot can bring the edge back in line.
                tracing::warn!(
                    served_version = version,
                    current,
                    "the control plane reports an older configuration version; requesting a full snapshot"
                );
                shared
                    .snapshot
                    .store(Arc::new(rebase(&shared.snapshot.load(), 0)));
                fetch_needed = true;
            }
            Ok(_) => {}
            Err(error) => {
                if !retry_after(
                    &mut backoff,
                    "wait for changes from the control plane",
                    &error,
                    &mut stop,
                )
                .await
                {
                    break;
                }
            }
        }
    }
    tracing::info!(node = %shared.config.node_name, "stopped following the control plane");
}

/// Logs a feed error and sleeps for the next backoff delay. Returns false if the edge stopped
/// meanwhile.
async fn retry_after(
    backoff: &mut Backoff,
    operation: &str,
    error: &FeedError,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let delay = backoff.next_delay();
    tracing::warn!(
        %error,
        attempt = backoff.attempt,
        retry_in_ms = delay.as_millis() as u64,
        "failed to {operation}; serving the current snapshot meanwhile"
    );
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = wait_stopped(stop) => false,
    }
}

/// Delivers a report, retrying a few times. A report that cannot be delivered is dropped.
async fn send_report(
    feed: &dyn SnapshotFeed,
    report: ApplyReport,
    stop: &mut watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new();
    for attempt in 1..=REPORT_ATTEMPTS {
        match feed.report_applied(report.clone()).await {
            Ok(()) => return,
            Err(error) if attempt < REPORT_ATTEMPTS => {
                if !retry_after(
                    &mut backoff,
                    "send the apply report to the control plane",
                    &error,
                    stop,
                )
                .await
                {
                    return;
                }
            }
            Err(error) => {
                // TODO: keep undelivered outcomes and send them with the next report.
                tracing::warn!(
                    %error,
                    version = report.version,
                    outcomes = report.outcomes.len(),
                    "dropping an apply report after {REPORT_ATTEMPTS} failed attempts"
                );
            }
        }
    }
}

fn is_stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// Resolves when the edge stops or the stop sender is dropped.
async fn wait_stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Returns a copy of `snapshot` that claims `version`, keeping every deployment.
fn rebase(snapshot: &Snapshot, version: u64) -> Snapshot {
    Snapshot::new(version, snapshot.deployments().cloned())
        .with_plugins(snapshot.plugin_chains().clone())
}

/// Applies one delta: compiles what changed, publishes the new snapshot and returns the report.
async fn apply_delta(shared: &Shared, state: &mut SyncState, delta: SnapshotDelta) -> ApplyReport {
    let started = Instant::now();
    let current = shared.snapshot.load_full();
    let SnapshotDelta {
        version,
        full,
        upserts,
        removals,
    } = delta;

    let mut served: HashMap<Uuid, Arc<ServedDeployment>> = if full {
        HashMap::new()
    } else {
        current
            .deployments()
            .map(|deployment| (deployment.id, deployment.clone()))
            .collect()
    };
    if full {
        let listed: std::collections::HashSet<Uuid> =
            upserts.iter().map(|record| record.id).collect();
        state.failed.retain(|id, _| listed.contains(id));
    }
    for id in &removals {
        served.remove(id);
        state.failed.remove(id);
    }

    let mut outcomes = Vec::with_capacity(upserts.len());
    let mut to_compile = Vec::new();
    for record in upserts {
        if let Some(existing) = current
            .get(&record.id)
            .filter(|existing| is_unchanged(existing, &record))
        {
            let deployment = with_record_metadata(
                shared,
                &record,
                existing.mock.clone(),
                EdgeSettings {
                    chaos: existing.chaos.clone(),
                    proxy: existing.proxy.clone(),
                },
            );
            served.insert(record.id, Arc::new(deployment));
            outcomes.push((record.id, ApplyOutcome::Served));
            continue;
        }
        if let Some(failed) = state.failed.get(&record.id) {
            if failed.document_sha256 == record.document_sha256 && failed.config == record.config {
                served.remove(&record.id);
                outcomes.push((
                    record.id,
                    ApplyOutcome::Failed {
                        reason: failed.reason.clone(),
                    },
                ));
                continue;
            }
        }
        to_compile.push(record);
    }

    let compiled_count = to_compile.len();
    let mut failed_count = 0;
    for (record, result) in compile_all(to_compile).await {
        match result {
            Ok((mock, settings)) => {
                state.failed.remove(&record.id);
                let deployment =
                    with_record_metadata(shared, &record, Arc::new(mock), settings);
                served.insert(record.id, Arc::new(deployment));
                outcomes.push((record.id, ApplyOutcome::Served));
            }
            Err(reason) => {
                failed_count += 1;
                tracing::warn!(
                    deployment_id = %record.id,
                    org = %record.org_slug,
                    deployment = %record.slug,
                    %reason,
                    "a deployment failed to compile and is not served"
                );
                served.remove(&record.id);
                state.failed.insert(
                    record.id,
                    FailedDeployment {
                        document_sha256: record.document_sha256.clone(),
                        config: record.config.clone(),
                        reason: reason.clone(),
                    },
                );
                outcomes.push((record.id, ApplyOutcome::Failed { reason }));
            }
        }
    }

    let plugin_chains =
        crate::plugins::attach_all(&shared.plugins, &current, &mut served, &mut outcomes).await;
    let snapshot = Snapshot::new(version, served.into_values()).with_plugins(plugin_chains);
    let deployments = snapshot.len();
    let snapshot = Arc::new(snapshot);
    shared.snapshot.store(snapshot.clone());
    for left in current
        .deployments()
        .filter(|old| !serves_same_labels(&snapshot, old))
    {
        shared.telemetry.remove_deployment_series(left);
    }
    shared
        .telemetry
        .metrics
        .snapshot_published(version, started.elapsed(), deployments);
    tracing::info!(
        version,
        full,
        deployments,
        compiled = compiled_count,
        failed = failed_count,
        removed = removals.len(),
        build_ms = started.elapsed().as_millis() as u64,
        "published a new snapshot"
    );

    ApplyReport {
        node: shared.config.node_name.clone(),
        version,
        outcomes,
    }
}

/// Returns true when `snapshot` still serves `old` under the same organization and deployment
/// slugs, which are the labels of its Prometheus series.
fn serves_same_labels(snapshot: &Snapshot, old: &ServedDeployment) -> bool {
    snapshot
        .get(&old.id)
        .is_some_and(|new| new.org_slug == old.org_slug && new.slug == old.slug)
}

/// Returns true when `record` would compile to the mock `existing` already holds.
fn is_unchanged(existing: &ServedDeployment, record: &DeploymentRecord) -> bool {
    existing.document_sha256 == record.document_sha256 && existing.config == record.config
}

fn with_record_metadata(
    shared: &Shared,
    record: &DeploymentRecord,
    mock: Arc<Mock>,
    settings: EdgeSettings,
) -> ServedDeployment {
    ServedDeployment {
        limits: limits_for(&shared.config.plans, record),
        period_start: record.period_start,
        chaos: settings.chaos,
        proxy: settings.proxy,
        id: record.id,
        org_id: record.org_id,
        org_slug: record.org_slug.clone(),
        slug: record.slug.clone(),
        plan: record.plan.clone(),
        document_sha256: record.document_sha256.clone(),
        config: record.config.clone(),
        mock,
    }
}

/// Compiles records on the blocking thread pool, one chunk per available core.
async fn compile_all(records: Vec<DeploymentRecord>) -> Vec<(DeploymentRecord, CompileResult)> {
    if records.is_empty() {
        return Vec::new();
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(records.len());
    let chunk_size = records.len().div_ceil(workers);

    let mut chunks: Vec<Vec<DeploymentRecord>> = Vec::with_capacity(workers);
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        chunks.push(records.by_ref().take(chunk_size).collect());
    }

    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            tokio::task::spawn_blocking(move || {
                chunk
                    .into_iter()
                    .map(|record| {
                        let result = compile_record(&record);
                        (record, result)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();

    let mut results = Vec::new();
    for task in tasks {
        match task.await {
            Ok(chunk) => results.extend(chunk),
            // compile_record catches panics, so only a cancelled runtime gets here.
            Err(error) => tracing::error!(%error, "a compile task did not finish"),
        }
    }
    results
}

/// A compiled mock with its edge settings, or the reason the deployment is not served.
type CompileResult = Result<(Mock, EdgeSettings), String>;

/// Settings the edge itself reads from a deployment's configuration, next to the engine's
/// mock options.
struct EdgeSettings {
    chaos: Option<Arc<ChaosConfig>>,
    proxy: Option<Arc<ProxyConfig>>,
}

/// Checks the `operations` lists against the compiled document, which fails the deployment when
/// one names an unknown operation, and returns the settings the edge serves with.
fn edge_settings(
    mock: &Mock,
    mut chaos: Option<ChaosSettings>,
    mut proxy: Option<ProxySettings>,
) -> Result<EdgeSettings, String> {
    if let Some(chaos) = &mut chaos {
        chaos.resolve_operations(mock)?;
    }
    if let Some(proxy) = &mut proxy {
        proxy.resolve_operations(mock)?;
    }
    Ok(EdgeSettings {
        chaos: chaos.map(|chaos| Arc::new(ChaosConfig::new(chaos))),
        proxy: proxy.map(|proxy| Arc::new(ProxyConfig::new(proxy))),
    })
}

/// Compiles one record. A panic in the engine becomes a failure, so one bad document cannot
/// stop the sync loop.
fn compile_record(record: &DeploymentRecord) -> CompileResult {
    // The settings are checked before the document, as on the control plane. Invalid settings
    // fail the deployment like an invalid document.
    let options = mock_options(&record.config)?;
    let chaos = ChaosSettings::from_config(&record.config)?;
    let proxy = ProxySettings::from_config(&record.config)?;
    let document = record.document.clone();
    let compiled = std::panic::catch_unwind(AssertUnwindSafe(|| {
        mockforge_engine::compile(&document, options)
    }));
    match compiled {
        Ok(Ok(compiled)) => {
            if !compiled.warnings.is_empty() {
                tracing::debug!(
                    deployment_id = %record.id,
                    warnings = compiled.warnings.len(),
                    "a deployment compiled with warnings"
                );
            }
            let settings = edge_settings(&compiled.mock, chaos, proxy)?;
            Ok((compiled.mock, settings))
        }
        Ok(Err(error)) => Err(compile_failure_reason(&error)),
        Err(_) => Err("the engine panicked while compiling the document".to_owned()),
    }
}

/// Reads a deployment's mock options from its configuration and checks that the configuration
/// has no unknown keys, at the top level or in a `plugins` entry.
fn mock_options(config: &serde_json::Value) -> Result<MockOptions, String> {
    let mut diagnostics = settings::unknown_keys(config);
    match MockOptions::from_config(config) {
        Ok(options) if diagnostics.is_empty() => return Ok(options),
        Ok(_) => {}
        Err(problems) => diagnostics.extend(problems),
    }
    let summary = format!(
        "the deployment configuration is invalid: {} problem(s)",
        diagnostics.len()
    );
    Err(failure_reason(summary, &diagnostics))
}

/// Formats a compile error with its first diagnostics, for example
/// `the OpenAPI document is invalid: 1 problem(s): /paths: must be an object`.
fn compile_failure_reason(error: &mockforge_engine::CompileError) -> String {
    failure_reason(error.to_string(), &error.diagnostics)
}

/// Appends up to [`MAX_REASON_DIAGNOSTICS`] diagnostics to `summary`.
fn failure_reason(summary: String, diagnostics: &[Diagnostic]) -> String {
    let mut reason = summary;
    for (index, diagnostic) in diagnostics.iter().take(MAX_REASON_DIAGNOSTICS).enumerate() {
        reason.push_str(if index == 0 { ": " } else { "; " });
        if diagnostic.pointer.is_empty() {
            reason.push_str(&diagnostic.message);
        } else {
            reason.push_str(&format!("{}: {}", diagnostic.pointer, diagnostic.message));
        }
    }
    if diagnostics.len() > MAX_REASON_DIAGNOSTICS {
        reason.push_str(&format!(
            "; and {} more",
            diagnostics.len() - MAX_REASON_DIAGNOSTICS
        ));
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_cap() {
        let mut backoff = Backoff::new();
        assert_eq!(backoff.next_delay(), INITIAL_BACKOFF);
        assert_eq!(backoff.next_delay(), INITIAL_BACKOFF * 2);
        for _ in 0..20 {
            backoff.next_delay();
        }
        assert_eq!(backoff.next_delay(), MAX_BACKOFF);
        backoff.reset();
        assert_eq!(backoff.next_delay(), INITIAL_BACKOFF);
    }

    #[test]
    fn failure_reason_lists_diagnostics() {
        use mockforge_engine::{CompileError, Severity};
        let error = CompileError {
            diagnostics: vec![
                Diagnostic {
                    severity: Severity::Error,
                    pointer: "/paths".into(),
                    message: "must be an object".into(),
                },
                Diagnostic {
                    severity: Severity::Error,
                    pointer: String::new(),
                    message: "no openapi field".into(),
                },
            ],
        };
        let reason = compile_failure_reason(&error);
        assert!(
            reason.ends_with(": /paths: must be an object; no openapi field"),
            "{reason}"
        );
    }

    #[test]
    fn invalid_config_is_a_failure() {
        let reason = mock_options(&serde_json::json!("not an object")).unwrap_err();
        assert!(
            reason.starts_with("the deployment configuration is invalid"),
            "{reason}"
        );
        assert!(mock_options(&serde_json::Value::Null).is_ok());
    }

    #[test]
    fn unknown_key_is_a_failure() {
        let config = serde_json::json!({"chaoss": {"error_rate": 0.5}, "cors_enabled": 1});
        let reason = mock_options(&config).unwrap_err();
        assert!(
            reason.starts_with(
                "the deployment configuration is invalid: 2 problem(s): /config_json/chaoss: \
                 unknown key `chaoss`; did you mean `chaos`?"
            ),
            "{reason}"
        );
        assert!(reason.contains("; /config_json/cors_enabled: "), "{reason}");
    }
}
