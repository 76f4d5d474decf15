//! Usage counters, request logs and Prometheus metrics per deployment.
//!
//! Each deployment's counters and request-log ring sit behind an `Arc` in a `DashMap` keyed by
//! deployment id, split into one shard per worker thread on cache lines of its own. A request
//! touches only its thread's shard, so workers do not contend on counters or on the log lock.
//! The counters only grow. [`Telemetry::take_batch`] sums the shards and ships the difference
//! from the previous batch, and a Prometheus scrape sums them too (see [`series`]), so every
//! request is counted in exactly one batch even while requests keep arriving.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use mockforge_snapshot::{DeploymentUsage, RequestLog, TelemetryBatch, LATENCY_BUCKETS_MS};
use parking_lot::Mutex;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use uuid::Uuid;

use crate::snapshot::ServedDeployment;
use crate::FastHasher;
use series::{DeploymentCollector, Series, Totals};

mod series;

/// Request logs kept per deployment between two flushes; older ones are dropped first.
pub const LOGS_PER_DEPLOYMENT: usize = 200;
/// Request logs an undelivered batch keeps while it waits to be merged into the next one.
pub const MAX_PENDING_LOGS: usize = 50_000;

/// Shards per deployment at most, whatever the number of worker threads.
const MAX_SHARDS: usize = 16;
const FIRST_STATUS: u16 = 100;
const STATUS_SLOTS: usize = 500;
const LATENCY_SLOTS: usize = LATENCY_BUCKETS_MS.len() + 1;

/// One finished request, as the `logging` phase saw it.
pub struct Finished<'a> {
    pub method: &'a str,
    /// Path below the deployment, without the query string.
    pub path: &'a str,
    pub status: u16,
    pub latency: Duration,
    pub at_unix_ms: i64,
    pub request_id: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The response's [`LogMessage`], if it had one.
    pub message: Option<String>,
}

/// Response extension with an explanation for the request log, set by the code that built the
/// response, for example the plugin chain when a plugin failed.
#[derive(Debug, Clone)]
pub(crate) struct LogMessage(pub(crate) String);

/// Every deployment's counters, by deployment id.
type StatsMap = DashMap<Uuid, Arc<DeploymentStats>, FastHasher>;

/// Counters of one deployment.
struct DeploymentStats {
    deployment_id: Uuid,
    org_id: Uuid,
    shards: Box<[StatsShard]>,
    /// The totals that earlier batches carried, so the next batch carries the difference. Only
    /// [`Telemetry::take_batch`] locks it.
    shipped: Mutex<Totals>,
    /// True while `series` is set, so a request reads a flag instead of taking the lock.
    has_series: AtomicBool,
    /// The deployment's Prometheus series: `None` until the first request and again after the
    /// deployment left the snapshot, so a request recreates the series from zero.
    series: Mutex<Option<Series>>,
}

/// One worker thread's share of a deployment's counters, aligned so that two shards never share
/// a cache line. The counters only grow.
#[repr(align(128))]
struct StatsShard {
    requests: AtomicU64,
    /// Responses by status code from 100 to 599, at index `status - 100`.
    statuses: Box<[AtomicU64]>,
    /// Requests that ended without a response (status 0).
    no_response: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_SLOTS],
    latency_micros_sum: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    logs: Mutex<VecDeque<RequestLog>>,
}

impl StatsShard {
    fn new() -> StatsShard {
        StatsShard {
            requests: AtomicU64::new(0),
            statuses: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            no_response: AtomicU64::new(0),
            latency_buckets: Default::default(),
            latency_micros_sum: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            logs: Mutex::new(VecDeque::new()),
        }
    }
}

/// Returns the calling thread's shard index below `shards`. Threads get indexes in the order
/// they first record, so an edge's worker threads get distinct shards unless several edges run
/// in one process. Threads that share a shard still count correctly, they only contend.
fn shard_index(shards: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.with(|index| index % shards)
}

/// The edge's Prometheus registry and metric families.
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    rate_limited: IntCounterVec,
    unrouted: IntCounterVec,
    snapshot_version: IntGauge,
    snapshot_build_seconds: Gauge,
    deployments_served: IntGauge,
    /// Client connections open right now, counted by [`crate::connections`].
    pub(crate) open_connections: IntGauge,
    /// Connections closed with 503 because `max_connections` were open.
    pub(crate) rejected_connections: IntCounter,
}

impl Metrics {
    /// Creates the metric families, with the per-deployment series of `deployments`.
    fn new(deployments: Arc<StatsMap>) -> Metrics {
        let registry = Registry::new();
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "mockforge_edge_rate_limited_total",
                "Requests rejected with 429, by deployment and limit window",
            ),
            &["org", "deployment", "window"],
        )
        .expect("valid metric");
        let unrouted = IntCounterVec::new(
            Opts::new(
                "mockforge_edge_unrouted_requests_total",
                "Requests counted under no deployment, by status class: those that matched no served \
             deployment, heads that could not be read, and requests rejected before routing \
             because the edge was overloaded",
            ),
            &["status_class"],
        )
        .expect("valid metric");
        let snapshot_version = IntGauge::new(
            "mockforge_edge_snapshot_version",
            "Configuration version of the served snapshot",
        )
        .expect("valid metric");
        let snapshot_build_seconds = Gauge::new(
            "mockforge_edge_snapshot_build_seconds",
            "Time the last snapshot took to build, including compiling changed documents",
        )
        .expect("valid metric");
        let deployments_served = IntGauge::new(
            "mockforge_edge_deployments_served",
            "Deployments in the served snapshot",
        )
        .expect("valid metric");
        let open_connections = IntGauge::new(
            "mockforge_edge_open_connections",
            "Client connections open on the edge listener",
        )
        .expect("valid metric");
        let rejected_connections = IntCounter::new(
            "mockforge_edge_rejected_connections_total",
            "Connections answered with 503 and closed because max_connections were open",
        )
        .expect("valid metric");

        for collector in [
            Box::new(DeploymentCollector::new(deployments)) as Box<dyn prometheus::core::Collector>,
            Box::new(rate_limited.clone()),
            Box::new(unrouted.clone()),
            Box::new(snapshot_version.clone()),
            Box::new(snapshot_build_seconds.clone()),
            Box::new(deployments_served.clone()),
            Box::new(open_connections.clone()),
            Box::new(rejected_connections.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            rate_limited,
            unrouted,
            snapshot_version,
            snapshot_build_seconds,
            deployments_served,
            open_connections,
            rejected_connections,
        }
    }

    /// Records a published snapshot.
    pub(crate) fn snapshot_published(&self, version: u64, build: Duration, deployments: usize) {
        self.snapshot_version.set(version as i64);
        self.snapshot_build_seconds.set(build.as_secs_f64());
        self.deployments_served.set(deployments as i64);
    }

    /// Renders every metric in the Prometheus text format.
    pub(crate) fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|error| format!("# failed to encode metrics: {error}\n"))
    }
}

/// Telemetry of one edge.
pub(crate) struct Telemetry {
    deployments: Arc<StatsMap>,
    /// Shards per deployment: the number of worker threads.
    shards: usize,
    pub(crate) metrics: Metrics,
    /// A batch whose delivery failed, merged into the next one.
    pending: Mutex<Option<TelemetryBatch>>,
    window_start_unix_ms: AtomicU64,
}

impl Telemetry {
    /// Creates the telemetry of an edge whose requests run on `threads` worker threads.
    pub(crate) fn new(threads: usize) -> Telemetry {
        let deployments = Arc::new(StatsMap::default());
        Telemetry {
            deployments: deployments.clone(),
            shards: threads.clamp(1, MAX_SHARDS),
            metrics: Metrics::new(deployments),
            pending: Mutex::new(None),
            window_start_unix_ms: AtomicU64::new(now_unix_ms() as u64),
        }
    }

    /// Counts one finished request to `served`.
    pub(crate) fn record(&self, served: &ServedDeployment, finished: Finished<'_>) {
        let stats = self.stats(served);
        if !stats.has_series.load(Ordering::Acquire) {
            create_series(&stats, served);
        }
        let shard = &stats.shards[shard_index(stats.shards.len())];
        shard.requests.fetch_add(1, Ordering::Relaxed);
        let status_slot = finished
            .status
            .checked_sub(FIRST_STATUS)
            .and_then(|index| shard.statuses.get(index as usize));
        match status_slot {
            Some(slot) => slot.fetch_add(1, Ordering::Relaxed),
            None => shard.no_response.fetch_add(1, Ordering::Relaxed),
        };
        let latency_ms = finished.latency.as_secs_f64() * 1000.0;
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|bound| latency_ms <= *bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        shard.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        shard
            .latency_micros_sum
            .fetch_add(finished.latency.as_micros() as u64, Ordering::Relaxed);
        shard
            .bytes_in
            .fetch_add(finished.bytes_in, Ordering::Relaxed);
        shard
            .bytes_out
            .fetch_add(finished.bytes_out, Ordering::Relaxed);

        let log = RequestLog {
            deployment_id: stats.deployment_id,
            method: finished.method.to_owned(),
            path: finished.path.to_owned(),
            status: finished.status,
            latency_ms,
            at_unix_ms: finished.at_unix_ms,
            request_id: finished.request_id,
            message: finished.message,
        };
        let mut logs = shard.logs.lock();
        if logs.len() >= LOGS_PER_DEPLOYMENT.div_ceil(stats.shards.len()) {
            logs.pop_front();
        }
        logs.push_back(log);
    }

    /// Counts a request that matched no deployment.
    pub(crate) fn record_unrouted(&self, status: u16) {
        self.metrics
            .unrouted
            .with_label_values(&[STATUS_CLASSES[status_class_index(status)]])
            .inc();
    }

    /// Counts a request rejected by a rate limit.
    pub(crate) fn record_rate_limited(&self, served: &ServedDeployment, window: &str) {
        self.metrics
            .rate_limited
            .with_label_values(&[served.org_slug.as_str(), served.slug.as_str(), window])
            .inc();
    }

    /// Removes the Prometheus series of a deployment that left the snapshot, so `/metrics`
    /// stops listing it and a later deployment with the same slugs starts from zero.
    ///
    /// A request that was already running when the snapshot changed recreates the series when
    /// it finishes.
    pub(crate) fn remove_deployment_series(&self, left: &ServedDeployment) {
        let org = left.org_slug.as_str();
        let deployment = left.slug.as_str();
        // `remove_label_values` fails for series that were never created, which is expected.
        for window in RATE_LIMIT_WINDOWS {
            let _ = self
                .metrics
                .rate_limited
                .remove_label_values(&[org, deployment, window]);
        }
        if let Some(stats) = self.deployments.get(&left.id) {
            let mut series = stats.series.lock();
            *series = None;
            stats.has_series.store(false, Ordering::Release);
        }
    }

    /// Returns the Prometheus series of a deployment, creating them on its first request.
    fn stats(&self, served: &ServedDeployment) -> Arc<DeploymentStats> {
        if let Some(stats) = self.deployments.get(&served.id) {
            return stats.clone();
        }
        self.deployments
            .entry(served.id)
            .or_insert_with(|| {
                Arc::new(DeploymentStats {
                    deployment_id: served.id,
                    org_id: served.org_id,
                    shards: (0..self.shards).map(|_| StatsShard::new()).collect(),
                    shipped: Mutex::new(Totals::default()),
                    has_series: AtomicBool::new(false),
                    series: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Takes everything counted since the last batch, merged with an undelivered one.
    // TODO: drop the counters of deployments that left the snapshot and stayed idle.
    pub(crate) fn take_batch(&self, node: &str) -> TelemetryBatch {
        let window_end = now_unix_ms();
        let window_start = self
            .window_start_unix_ms
            .swap(window_end as u64, Ordering::AcqRel) as i64;
        let mut batch = TelemetryBatch {
            node: node.to_owned(),
            window_start_unix_ms: window_start,
            window_end_unix_ms: window_end,
            usage: Vec::new(),
            logs: Vec::new(),
        };
        for entry in self.deployments.iter() {
            let stats = entry.value();
            for shard in stats.shards.iter() {
                batch.logs.extend(shard.logs.lock().drain(..));
            }
            let requests: u64 = stats
                .shards
                .iter()
                .map(|shard| shard.requests.load(Ordering::Acquire))
                .sum();
            let mut shipped = stats.shipped.lock();
            if requests == shipped.requests {
                continue;
            }
            let current = Totals::read(&stats.shards);
            let window = current.since(&shipped);
            *shipped = current;
            drop(shipped);
            batch
                .usage
                .push(window.into_usage(stats.deployment_id, stats.org_id));
        }
        batch.logs.sort_by_key(|log| log.at_unix_ms);

        if let Some(pending) = self.pending.lock().take() {
            batch = merge(pending, batch);
        }
        batch
    }

    /// Keeps a batch that failed to deliver, to send with the next one.
    pub(crate) fn keep_pending(&self, batch: TelemetryBatch) {
        let mut pending = self.pending.lock();
        let merged = match pending.take() {
            Some(older) => merge(older, batch),
            None => batch,
        };
        *pending = Some(merged);
    }
}

/// Creates the Prometheus series of a deployment, starting from zero.
fn create_series(stats: &DeploymentStats, served: &ServedDeployment) {
    let mut series = stats.series.lock();
    if series.is_none() {
        *series = Some(Series {
            org: served.org_slug.clone(),
            deployment: served.slug.clone(),
            base: Totals::read(&stats.shards),
        });
    }
    stats.has_series.store(true, Ordering::Release);
}

const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// Values of the `window` label of `mockforge_edge_rate_limited_total`, as the rate limits in
/// [`crate::limits`] name them.
const RATE_LIMIT_WINDOWS: [&str; 3] = ["second", "minute", "30d"];

/// Maps a status to its index in [`STATUS_CLASSES`]; 0 (no response) is `none`.
fn status_class_index(status: u16) -> usize {
    match status {
        100..=599 => (status / 100 - 1) as usize,
        _ => 5,
    }
}

/// Merges an older batch into a newer one: usage adds up per deployment, logs are appended and
/// the oldest are dropped beyond [`MAX_PENDING_LOGS`].
pub(crate) fn merge(older: TelemetryBatch, newer: TelemetryBatch) -> TelemetryBatch {
    let mut usage: BTreeMap<Uuid, DeploymentUsage> = BTreeMap::new();
    for item in older.usage.into_iter().chain(newer.usage) {
        match usage.get_mut(&item.deployment_id) {
            Some(total) => {
                total.requests += item.requests;
                for (status, count) in item.status_counts {
                    *total.status_counts.entry(status).or_default() += count;
                }
                for (total_bucket, bucket) in
                    total.latency_buckets.iter_mut().zip(&item.latency_buckets)
                {
                    *total_bucket += bucket;
                }
                total.latency_ms_sum += item.latency_ms_sum;
                total.bytes_in += item.bytes_in;
                total.bytes_out += item.bytes_out;
            }
            None => {
                usage.insert(item.deployment_id, item);
            }
        }
    }
    let mut logs = older.logs;
    logs.extend(newer.logs);
    if logs.len() > MAX_PENDING_LOGS {
        let dropped = logs.len() - MAX_PENDING_LOGS;
        tracing::warn!(
            dropped,
            "dropping the oldest request logs of undelivered telemetry"
        );
        logs.drain(..dropped);
    }
    TelemetryBatch {
        node: newer.node,
        window_start_unix_ms: older.window_start_unix_ms,
        window_end_unix_ms: newer.window_end_unix_ms,
        usage: usage.into_values().collect(),
        logs,
    }
}

pub(crate) fn now_unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(id: u128, requests: u64) -> DeploymentUsage {
        DeploymentUsage {
            deployment_id: Uuid::from_u128(id),
            org_id: Uuid::from_u128(100),
            requests,
            status_counts: BTreeMap::from([(200, requests)]),
            latency_buckets: vec![requests; LATENCY_SLOTS],
            latency_ms_sum: requests as f64,
            bytes_in: requests,
            bytes_out: 2 * requests,
        }
    }

    #[test]
    fn shards_of_two_threads_add_up() {
        let telemetry = Telemetry::new(2);
        let served = crate::snapshot::tests::deployment(7, "acme", "petstore");
        std::thread::scope(|scope| {
            for (thread, status) in [(0i64, 200u16), (1, 404)] {
                let (telemetry, served) = (&telemetry, &served);
                scope.spawn(move || {
                    for request in 0..150i64 {
                        telemetry.record(
                            served,
                            Finished {
                                method: "GET",
                                path: "/pets",
                                status,
                                latency: Duration::from_micros(300),
                                at_unix_ms: request * 2 + thread,
                                request_id: format!("r-{thread}-{request}"),
                                bytes_in: 1,
                                bytes_out: 10,
                                message: None,
                            },
                        );
                    }
                });
            }
        });

        let batch = telemetry.take_batch("node-1");
        assert_eq!(batch.usage.len(), 1);
        let usage = &batch.usage[0];
        assert_eq!(usage.requests, 300);
        assert_eq!(
            usage.status_counts,
            BTreeMap::from([(200, 150), (404, 150)])
        );
        assert_eq!(
            usage.latency_buckets[0], 300,
            "all requests in the first bucket"
        );
        assert_eq!(usage.bytes_in, 300);
        assert_eq!(usage.bytes_out, 3000);
        assert!((usage.latency_ms_sum - 90.0).abs() < 1e-9);
        // Each thread's shard keeps its newest half of the ring's capacity.
        assert_eq!(batch.logs.len(), LOGS_PER_DEPLOYMENT);
        assert!(batch
            .logs
            .windows(2)
            .all(|pair| pair[0].at_unix_ms <= pair[1].at_unix_ms));
        assert_eq!(batch.logs.last().unwrap().request_id, "r-1-149");

        let empty = telemetry.take_batch("node-1");
        assert!(empty.usage.is_empty());
        assert!(empty.logs.is_empty());
    }

    fn finished(status: u16, latency_ms: u64) -> Finished<'static> {
        Finished {
            method: "GET",
            path: "/pets",
            status,
            latency: Duration::from_millis(latency_ms),
            at_unix_ms: 0,
            request_id: "r-1".to_owned(),
            bytes_in: 0,
            bytes_out: 10,
            message: None,
        }
    }

    #[test]
    fn series_render_from_shards() {
        let telemetry = Telemetry::new(2);
        let served = crate::snapshot::tests::deployment(7, "acme", "petstore");
        for (status, latency_ms) in [(200, 1), (200, 3000), (503, 1), (0, 1)] {
            telemetry.record(&served, finished(status, latency_ms));
        }

        let text = telemetry.metrics.render();
        for line in [
            r#"mockforge_edge_requests_total{deployment="petstore",org="acme",status_class="2xx"} 2"#,
            r#"mockforge_edge_requests_total{deployment="petstore",org="acme",status_class="5xx"} 1"#,
            r#"mockforge_edge_requests_total{deployment="petstore",org="acme",status_class="none"} 1"#,
            r#"mockforge_edge_errors_total{deployment="petstore",org="acme"} 2"#,
            r#"mockforge_edge_request_duration_seconds_count{deployment="petstore",org="acme"} 4"#,
            r#"mockforge_edge_request_duration_seconds_bucket{deployment="petstore",org="acme",le="+Inf"} 4"#,
            r#"mockforge_edge_request_duration_seconds_sum{deployment="petstore",org="acme"} 3.003"#,
            "# TYPE mockforge_edge_requests_total counter",
            "# TYPE mockforge_edge_request_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|metric| metric == line),
                "missing {line:?} in:\n{text}"
            );
        }
        let fast = text
            .lines()
            .find(|line| line.contains(r#"_bucket{deployment="petstore",org="acme",le="0.001"}"#))
            .unwrap_or_else(|| panic!("no 1 ms bucket in:\n{text}"));
        assert!(fast.ends_with(" 3"), "{fast}");
        assert!(!text.contains(r#"status_class="4xx""#), "{text}");

        // Series removed with the deployment disappear, and come back from zero, while the
        // usage batch still carries every request.
        telemetry.remove_deployment_series(&served);
        assert!(!telemetry.metrics.render().contains("petstore"));
        telemetry.record(&served, finished(404, 1));
        let text = telemetry.metrics.render();
        let line = r#"mockforge_edge_requests_total{deployment="petstore",org="acme",status_class="4xx"} 1"#;
        assert!(
            text.lines().any(|metric| metric == line),
            "missing {line:?} in:\n{text}"
        );
        assert!(!text.contains(r#"status_class="2xx""#), "{text}");

        let batch = telemetry.take_batch("node-1");
        assert_eq!(batch.usage.len(), 1);
        let usage = &batch.usage[0];
        assert_eq!(usage.requests, 5);
        assert_eq!(
            usage.status_counts,
            BTreeMap::from([(200, 2), (404, 1), (503, 1)])
        );
        assert_eq!(usage.bytes_out, 50);
        // Taking a batch leaves the Prometheus counters alone.
        assert!(telemetry
            .metrics
            .render()
            .lines()
            .any(|metric| metric == line));
    }

    #[test]
    fn merge_adds_usage_per_deployment() {
        let older = TelemetryBatch {
            node: "n".into(),
            window_start_unix_ms: 1,
            window_end_unix_ms: 2,
            usage: vec![usage(1, 3), usage(2, 1)],
            logs: Vec::new(),
        };
        let newer = TelemetryBatch {
            node: "n".into(),
            window_start_unix_ms: 2,
            window_end_unix_ms: 3,
            usage: vec![usage(1, 4)],
            logs: Vec::new(),
        };
        let merged = merge(older, newer);
        assert_eq!(merged.window_start_unix_ms, 1);
        assert_eq!(merged.window_end_unix_ms, 3);
        assert_eq!(merged.usage.len(), 2);
        let first = &merged.usage[0];
        assert_eq!(first.requests, 7);
        assert_eq!(first.status_counts[&200], 7);
        assert_eq!(first.latency_buckets, vec![7; LATENCY_SLOTS]);
        assert_eq!(first.bytes_out, 14);
    }

    #[test]
    fn status_classes() {
        assert_eq!(STATUS_CLASSES[status_class_index(204)], "2xx");
        assert_eq!(STATUS_CLASSES[status_class_index(429)], "4xx");
        assert_eq!(STATUS_CLASSES[status_class_index(503)], "5xx");
        assert_eq!(STATUS_CLASSES[status_class_index(0)], "none");
    }
}
