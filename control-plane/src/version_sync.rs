//! Wakes this replica's waiting long-polls when another control-plane replica on the same
//! database commits a configuration version.
//!
//! With Redis configured, every replica subscribes to [`VERSION_CHANNEL`], where every replica
//! publishes its commits. Without Redis, or while the subscription is down, a replica that has
//! waiting long-polls reads `config_version` from the database every [`POLL_INTERVAL`]: one
//! query per replica, whatever the number of waiters. A lost Redis message delays a wake-up until
//! the long-poll's timeout, when the handler reads the database again and returns the change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use crate::snapshot::{Feed, VERSION_CHANNEL};

/// Interval between two database reads of the configuration version while long-polls wait and
/// no Redis subscription is up.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Delay before subscribing to Redis again after a failure.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);
/// Maximum time to connect to Redis for the subscription.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the database poller and, when `redis_url` is set, the Redis subscriber. Both stop
/// when `stop` changes.
pub(crate) fn spawn(feed: Arc<Feed>, redis_url: Option<String>, stop: watch::Receiver<bool>) {
    let subscribed = Arc::new(AtomicBool::new(false));
    if let Some(url) = redis_url {
        tokio::spawn(follow_redis(feed.clone(), url, subscribed.clone(), stop.clone()));
    }
    tokio::spawn(poll_database(feed, subscribed, stop));
}

/// Reads the configuration version from the database and wakes the waiters it concerns.
async fn refresh(feed: &Feed) {
    match feed.store().config_version().await {
        Ok(version) => feed.advance(version),
        Err(error) => tracing::warn!(%error, "failed to read the configuration version"),
    }
}

async fn poll_database(feed: Arc<Feed>, subscribed: Arc<AtomicBool>, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => break,
        }
        if feed.waiters() > 0 && !subscribed.load(Ordering::Acquire) {
            refresh(&feed).await;
        }
    }
}

async fn follow_redis(feed: Arc<Feed>, url: String, subscribed: Arc<AtomicBool>, mut stop: watch::Receiver<bool>) {
    let client = match redis::Client::open(url.as_str()) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "invalid Redis URL; polling the database for configuration versions");
            return;
        }
    };
    let mut failures: u64 = 0;
    loop {
        tokio::select! {
            error = follow_channel(&feed, &client, &subscribed, &mut failures) => {
                subscribed.store(false, Ordering::Release);
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = format!("{error:#}"), "lost the Redis version subscription; polling the database until it is back");
                } else {
                    tracing::debug!(error = format!("{error:#}"), failures, "failed to subscribe to Redis versions");
                }
            }
            _ = stop.changed() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(RESUBSCRIBE_DELAY) => {}
            _ = stop.changed() => break,
        }
    }
    subscribed.store(false, Ordering::Release);
}

/// Subscribes to [`VERSION_CHANNEL`] and refreshes the version on every message. Returns the
/// error that ended the subscription.
// NOTE: a connection that stops delivering without closing (a silent network partition) keeps
// the subscription marked as up, so waiters then wake only at their timeout.
async fn follow_channel(feed: &Feed, client: &redis::Client, subscribed: &AtomicBool, failures: &mut u64) -> anyhow::Error {
    let mut pubsub = match tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await {
        Ok(Ok(pubsub)) => pubsub,
        Ok(Err(error)) => return anyhow::Error::new(error).context("failed to connect to Redis"),
        Err(_) => return anyhow::anyhow!("timed out after {CONNECT_TIMEOUT:?} connecting to Redis"),
    };
    if let Err(error) = pubsub.subscribe(VERSION_CHANNEL).await {
        return anyhow::Error::new(error).context("failed to subscribe to the version channel");
    }
    subscribed.store(true, Ordering::Release);
    *failures = 0;
    tracing::info!(channel = VERSION_CHANNEL, "subscribed to configuration versions on Redis");
    // Versions committed while no subscription was up have no message to come.
    refresh(feed).await;

    let mut messages = pubsub.into_on_message();
    while messages.next().await.is_some() {
        // The payload is only a hint: control planes on other databases may share the channel,
        // so the version is read from this replica's database.
        refresh(feed).await;
    }
    anyhow::anyhow!("the Redis connection closed")
}
