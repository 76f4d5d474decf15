//! Sums of a deployment's shard counters, and the Prometheus collector that renders the
//! per-deployment series from them at scrape time.
//!
//! Requests only add to their worker thread's shard. A scrape sums the shards and subtracts
//! the totals from when the deployment's series were created, so no counter is shared between
//! worker threads.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mockforge_snapshot::{DeploymentUsage, LATENCY_BUCKETS_MS};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Counter, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use uuid::Uuid;

use super::{StatsMap, StatsShard, FIRST_STATUS, LATENCY_SLOTS, STATUS_CLASSES};

/// The sums of a deployment's shard counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Totals {
    pub(super) requests: u64,
    /// Responses by status code, with only the codes that occurred.
    statuses: BTreeMap<u16, u64>,
    /// Requests that ended without a response.
    no_response: u64,
    latency_buckets: [u64; LATENCY_SLOTS],
    latency_micros: u64,
    bytes_in: u64,
    bytes_out: u64,
}

impl Totals {
    /// Sums the counters of `shards`.
    pub(super) fn read(shards: &[StatsShard]) -> Totals {
        let mut totals = Totals::default();
        for shard in shards {
            totals.requests += shard.requests.load(Ordering::Acquire);
            for (index, slot) in shard.statuses.iter().enumerate() {
                let count = slot.load(Ordering::Relaxed);
                if count > 0 {
                    *totals
                        .statuses
                        .entry(FIRST_STATUS + index as u16)
                        .or_default() += count;
                }
            }
            totals.no_response += shard.no_response.load(Ordering::Relaxed);
            for (total, bucket) in totals
                .latency_buckets
                .iter_mut()
                .zip(&shard.latency_buckets)
            {
                *total += bucket.load(Ordering::Relaxed);
            }
            totals.latency_micros += shard.latency_micros_sum.load(Ordering::Relaxed);
            totals.bytes_in += shard.bytes_in.load(Ordering::Relaxed);
            totals.bytes_out += shard.bytes_out.load(Ordering::Relaxed);
        }
        totals
    }

    /// Returns what was counted after `earlier`, a reading of the same shards.
    pub(super) fn since(&self, earlier: &Totals) -> Totals {
        let mut statuses = self.statuses.clone();
        for (status, count) in statuses.iter_mut() {
            *count = count.saturating_sub(earlier.statuses.get(status).copied().unwrap_or(0));
        }
        statuses.retain(|_, count| *count > 0);
        let mut latency_buckets = self.latency_buckets;
        for (bucket, before) in latency_buckets.iter_mut().zip(&earlier.latency_buckets) {
            *bucket = bucket.saturating_sub(*before);
        }
        Totals {
            requests: self.requests.saturating_sub(earlier.requests),
            statuses,
            no_response: self.no_response.saturating_sub(earlier.no_response),
            latency_buckets,
            latency_micros: self.latency_micros.saturating_sub(earlier.latency_micros),
            bytes_in: self.bytes_in.saturating_sub(earlier.bytes_in),
            bytes_out: self.bytes_out.saturating_sub(earlier.bytes_out),
        }
    }

    /// Converts counts of one window into the usage a telemetry batch carries.
    pub(super) fn into_usage(self, deployment_id: Uuid, org_id: Uuid) -> DeploymentUsage {
        DeploymentUsage {
            deployment_id,
            org_id,
            requests: self.requests,
            status_counts: self.statuses,
            latency_buckets: self.latency_buckets.to_vec(),
            latency_ms_sum: self.latency_micros as f64 / 1000.0,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
        }
    }

    /// Counts requests by the classes of [`STATUS_CLASSES`].
    fn by_class(&self) -> [u64; STATUS_CLASSES.len()] {
        let mut classes = [0; STATUS_CLASSES.len()];
        for (status, count) in &self.statuses {
            classes[super::status_class_index(*status)] += count;
        }
        classes[super::status_class_index(0)] += self.no_response;
        classes
    }
}

/// A deployment's Prometheus labels, and the totals when its series were created, so the
/// series start from zero.
#[derive(Debug)]
pub(super) struct Series {
    pub(super) org: String,
    pub(super) deployment: String,
    pub(super) base: Totals,
}

/// Renders `mockforge_edge_requests_total`, `mockforge_edge_request_duration_seconds` and
/// `mockforge_edge_errors_total` from the deployments' shards when the registry is gathered.
pub(super) struct DeploymentCollector {
    deployments: Arc<StatsMap>,
    descs: [Desc; 3],
}

const REQUESTS: (&str, &str) = (
    "mockforge_edge_requests_total",
    "Requests answered per deployment, by status class",
);
const DURATION: (&str, &str) = (
    "mockforge_edge_request_duration_seconds",
    "Time from the start of a request to its logging, per deployment",
);
const ERRORS: (&str, &str) = (
    "mockforge_edge_errors_total",
    "Requests per deployment that ended with a 5xx status or no response",
);

impl DeploymentCollector {
    pub(super) fn new(deployments: Arc<StatsMap>) -> Self {
        let desc = |(name, help): (&str, &str), labels: &[&str]| {
            let labels = labels.iter().map(|label| label.to_string()).collect();
            Desc::new(name.to_owned(), help.to_owned(), labels, HashMap::new())
                .expect("valid metric description")
        };
        DeploymentCollector {
            deployments,
            descs: [
                desc(REQUESTS, &["org", "deployment", "status_class"]),
                desc(DURATION, &["org", "deployment"]),
                desc(ERRORS, &["org", "deployment"]),
            ],
        }
    }
}

impl Collector for DeploymentCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut requests = family(REQUESTS, MetricType::COUNTER);
        let mut duration = family(DURATION, MetricType::HISTOGRAM);
        let mut errors = family(ERRORS, MetricType::COUNTER);
        for entry in self.deployments.iter() {
            let stats = entry.value();
            let series = stats.series.lock();
            let Some(series) = series.as_ref() else {
                continue;
            };
            let counted = Totals::read(&stats.shards).since(&series.base);
            let labels = [
                ("deployment", series.deployment.as_str()),
                ("org", series.org.as_str()),
            ];

            let by_class = counted.by_class();
            for (class, count) in STATUS_CLASSES.iter().zip(by_class) {
                if count > 0 {
                    let mut metric = labelled(&[labels[0], labels[1], ("status_class", class)]);
                    metric.set_counter(counter(count));
                    requests.mut_metric().push(metric);
                }
            }
            let failed = by_class[super::status_class_index(500)] + counted.no_response;
            if failed > 0 {
                let mut metric = labelled(&labels);
                metric.set_counter(counter(failed));
                errors.mut_metric().push(metric);
            }
            let mut metric = labelled(&labels);
            metric.set_histogram(histogram(&counted));
            duration.mut_metric().push(metric);
        }
        vec![requests, duration, errors]
    }
}

fn family((name, help): (&str, &str), kind: MetricType) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family
}

/// Returns a metric with `labels`, which must be sorted by name like the registry's own.
fn labelled(labels: &[(&str, &str)]) -> Metric {
    let pairs = labels
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_string());
            pair.set_value(value.to_string());
            pair
        })
        .collect();
    Metric::from_label(pairs)
}

fn counter(count: u64) -> Counter {
    let mut counter = Counter::default();
    counter.set_value(count as f64);
    counter
}

/// Builds the latency histogram in seconds, with cumulative buckets.
fn histogram(counted: &Totals) -> Histogram {
    let mut cumulative = 0;
    let buckets = LATENCY_BUCKETS_MS
        .iter()
        .zip(&counted.latency_buckets)
        .map(|(bound_ms, count)| {
            cumulative += count;
            let mut bucket = Bucket::default();
            bucket.set_upper_bound(bound_ms / 1000.0);
            bucket.set_cumulative_count(cumulative);
            bucket
        })
        .collect();
    let mut histogram = Histogram::default();
    histogram.set_sample_count(counted.requests);
    histogram.set_sample_sum(counted.latency_micros as f64 / 1_000_000.0);
    histogram.set_bucket(buckets);
    histogram
}
