//! Shares each organization's 30-day request count between edges through Redis.
//!
//! Every flush interval the edge sends the requests it admitted since the last flush as one
//! pipelined batch: `INCRBY {prefix}:{org_id}:{period_start} {delta}` and an `EXPIREAT` per
//! quota period. The `INCRBY` replies are the totals over all edges, which the
//! [`RateLimiter`](crate::limits::RateLimiter) then checks against, adding the requests this
//! edge admitted since. No request waits for Redis.
//!
//! While Redis is unreachable the edge enforces the quota with the last totals it read and its
//! own count, and keeps the unflushed counts until a flush succeeds.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use tokio::time::Instant;

use crate::limits::PendingCount;
use crate::Shared;

/// Default interval between two flushes: 1 s.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default prefix of the Redis keys of request counts.
pub const DEFAULT_KEY_PREFIX: &str = "mockforge:quota";
/// Time a count key stays in Redis after its period ended, so edges that flush late still add
/// to the same key: 1 day.
const KEY_GRACE_SECS: i64 = 24 * 60 * 60;
/// Time limit of connecting to Redis and of one flush.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// Shortest flush interval accepted, so a zero setting cannot turn into a busy loop.
const MIN_FLUSH_INTERVAL: Duration = Duration::from_millis(10);

/// Settings of the quota exchange through Redis.
#[derive(Debug, Clone)]
pub struct QuotaSyncSettings {
    /// Redis shared by every edge, for example `redis://redis:6379`.
    pub redis_url: String,
    /// Interval between two flushes. An edge counts the other edges' requests up to about two
    /// intervals late: one until they flush and one until it reads the total.
    pub flush_interval: Duration,
    /// Prefix of the count keys, `{prefix}:{org_id}:{period_start}`.
    pub key_prefix: String,
}

impl QuotaSyncSettings {
    /// Returns the settings for `redis_url` with the default interval and key prefix.
    pub fn new(redis_url: impl Into<String>) -> QuotaSyncSettings {
        QuotaSyncSettings {
            redis_url: redis_url.into(),
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
        }
    }
}

/// Flushes every `settings.flush_interval` until a server started by this edge shut down, then
/// flushes once more.
pub(crate) async fn run(shared: Arc<Shared>, settings: QuotaSyncSettings) {
    let client = match redis::Client::open(settings.redis_url.as_str()) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(
                %error,
                "invalid Redis URL for quota sync; every edge enforces the 30-day quota on its own"
            );
            return;
        }
    };
    let interval = settings.flush_interval.max(MIN_FLUSH_INTERVAL);
    tracing::info!(
        node = %shared.config.node_name,
        interval_ms = interval.as_millis() as u64,
        key_prefix = %settings.key_prefix,
        "sharing 30-day request counts through Redis"
    );

    let mut flusher = Flusher {
        shared,
        client,
        key_prefix: settings.key_prefix,
        connection: None,
        outage: None,
    };
    let mut terminated = flusher.shared.terminated.subscribe();
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopped = tokio::select! {
            _ = ticker.tick() => false,
            _ = terminated.wait_for(|terminated| *terminated) => true,
        };
        if stopped {
            break;
        }
        flusher.flush().await;
    }
    // Every request finished, so this flush sends the edge's last counts.
    flusher.flush().await;
}

/// A flush failure streak, logged once when it starts and once when it ends.
struct Outage {
    since: Instant,
    failures: u64,
}

struct Flusher {
    shared: Arc<Shared>,
    client: redis::Client,
    key_prefix: String,
    /// The connection of the last successful flush; `None` after a failure.
    connection: Option<MultiplexedConnection>,
    outage: Option<Outage>,
}

impl Flusher {
    /// Sends the unflushed counts and reads the totals of every current quota period.
    async fn flush(&mut self) {
        let shared = self.shared.clone();
        let limiter = &shared.limiter;
        let now = unix_now_secs();
        let counts = limiter.pending_counts(now);
        if counts.is_empty() {
            limiter.prune_ended_periods(now);
            return;
        }
        match self.send(&counts).await {
            Ok(totals) => {
                for (count, total) in counts.iter().zip(totals) {
                    limiter.apply_flush(*count, total);
                }
                limiter.prune_ended_periods(now);
                self.mark_up(&counts);
            }
            Err(error) => {
                self.connection = None;
                self.mark_down(&error, &counts);
            }
        }
    }

    /// Runs one pipelined batch and returns the total of each count, in order.
    // NOTE: a batch that times out may still have been applied by Redis. Its counts are sent
    // again, so the totals can end up too high (more rejections), never too low.
    async fn send(&mut self, counts: &[PendingCount]) -> Result<Vec<u64>, String> {
        let mut pipeline = redis::pipe();
        for count in counts {
            let key = format!(
                "{}:{}:{}",
                self.key_prefix, count.key.org_id, count.key.start
            );
            pipeline.cmd("INCRBY").arg(&key).arg(count.delta);
            pipeline
                .cmd("EXPIREAT")
                .arg(&key)
                .arg(count.key.end().saturating_add(KEY_GRACE_SECS))
                .ignore();
        }

        let connection = self.connection().await?;
        let totals: Vec<u64> =
            tokio::time::timeout(REDIS_TIMEOUT, pipeline.query_async(connection))
                .await
                .map_err(|_| format!("the flush timed out after {REDIS_TIMEOUT:?}"))?
                .map_err(|error| error.to_string())?;
        if totals.len() != counts.len() {
            return Err(format!(
                "Redis returned {} totals for {} counts",
                totals.len(),
                counts.len()
            ));
        }
        Ok(totals)
    }

    async fn connection(&mut self) -> Result<&mut MultiplexedConnection, String> {
        if self.connection.is_none() {
            let connected = tokio::time::timeout(
                REDIS_TIMEOUT,
                self.client.get_multiplexed_async_connection(),
            )
            .await
            .map_err(|_| format!("connecting timed out after {REDIS_TIMEOUT:?}"))?
            .map_err(|error| error.to_string())?;
            self.connection = Some(connected);
        }
        Ok(self
            .connection
            .as_mut()
            .expect("the connection was just set"))
    }

    fn mark_down(&mut self, error: &str, counts: &[PendingCount]) {
        match &mut self.outage {
            Some(outage) => {
                outage.failures += 1;
                tracing::debug!(%error, failures = outage.failures, "quota flush to Redis failed again");
            }
            None => {
                self.outage = Some(Outage {
                    since: Instant::now(),
                    failures: 1,
                });
                tracing::warn!(
                    %error,
                    node = %self.shared.config.node_name,
                    periods = counts.len(),
                    unflushed_requests = unflushed_requests(counts),
                    "failed to flush request counts to Redis; enforcing the 30-day quota with local counts and retrying every interval"
                );
            }
        }
    }

    fn mark_up(&mut self, counts: &[PendingCount]) {
        if let Some(outage) = self.outage.take() {
            tracing::info!(
                node = %self.shared.config.node_name,
                outage_ms = outage.since.elapsed().as_millis() as u64,
                failures = outage.failures,
                periods = counts.len(),
                flushed_requests = unflushed_requests(counts),
                "flushed request counts to Redis again"
            );
        }
    }
}

fn unflushed_requests(counts: &[PendingCount]) -> u64 {
    counts.iter().map(|count| count.delta).sum()
}

fn unix_now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}
