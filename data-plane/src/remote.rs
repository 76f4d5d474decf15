//! An edge's link to a control plane in another process: a [`SnapshotFeed`] and a
//! [`TelemetrySink`] over the internal HTTP API (`/internal/v1/...`, node token auth).
//!
//! - Deltas carry document hashes; the edge fetches only the documents it lacks.
//! - New versions are announced by Redis pub/sub when `--redis-url` is set and subscribed, and
//!   found by long-poll requests otherwise. A version check at the end of every wait is the safety
//!   net for lost messages, and the version is read again after every (re)subscription.
//! - Every fetched delta is written to disk ([`SnapshotFile`]) before the edge applies it, and
//!   the first `changes_since(0)` returns the stored snapshot, so a restarted edge serves before
//!   it reaches the control plane.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use mockforge_snapshot::{
    ApplyReport, DeploymentRecord, FeedError, Heartbeat, NotificationMode, RemoteDelta, SnapshotDelta, SnapshotFeed,
    TelemetryBatch, TelemetrySink, VersionReply, REDIS_VERSION_CHANNEL,
};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::persist::SnapshotFile;
use crate::Edge;

/// Maximum duration of one long-poll request. The control plane caps it at 60 s.
const LONG_POLL: Duration = Duration::from_secs(25);
/// Extra time over a long-poll's own timeout before the request counts as failed.
const LONG_POLL_GRACE: Duration = Duration::from_secs(10);
/// Time limit of every other request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Delay between attempts while the control plane or Redis is unreachable.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// How long `changes_since` keeps retrying an unreachable control plane before it fails.
const FETCH_RETRY_WINDOW: Duration = Duration::from_secs(25);
/// Documents fetched at once.
const DOCUMENT_FETCHES: usize = 8;

/// Connection settings of an edge: the control plane, its credentials, Redis and the data directory.
#[derive(Debug, Clone)]
pub struct RemoteSettings {
    /// Base URL of the control plane, for example `http://control-plane:8080`.
    pub control_plane_url: String,
    /// Node token (`mfn_...`) created with `mockforge control-plane node-token create`.
    pub node_token: String,
    /// Region reported in heartbeats.
    pub region: String,
    /// Redis to subscribe to for version announcements; `None` uses long-poll requests only.
    pub redis_url: Option<String>,
    /// Directory of the snapshot kept on disk.
    pub data_dir: PathBuf,
}

/// The HTTP side: base URL, token and client.
#[derive(Clone)]
pub(crate) struct Http {
    base: String,
    token: String,
    pub(crate) client: reqwest::Client,
    /// True while the control plane is unreachable, so an outage is logged once.
    down: Arc<AtomicBool>,
}

impl Http {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder, operation: &str) -> Result<reqwest::Response, FeedError> {
        let response = request.bearer_auth(&self.token).send().await.map_err(|error| {
            self.mark_down(operation, &error);
            FeedError::Unavailable(format!("{operation} failed: {error}"))
        })?;
        self.mark_up();
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| value["error"].as_str().map(str::to_owned))
            .unwrap_or(body);
        if status == reqwest::StatusCode::UNAUTHORIZED {
            tracing::error!(%message, "the control plane rejected the node token; check --node-token");
        }
        if status.is_server_error() {
            Err(FeedError::Unavailable(format!("{operation} failed with {status}: {message}")))
        } else {
            Err(FeedError::Rejected(format!("{operation} failed with {status}: {message}")))
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str, timeout: Duration, operation: &str) -> Result<T, FeedError> {
        let response = self.send(self.client.get(self.url(path)).timeout(timeout), operation).await?;
        response.json().await.map_err(|error| FeedError::Unavailable(format!("{operation}: invalid response: {error}")))
    }

    async fn post_json<T: serde::Serialize>(&self, path: &str, body: &T, operation: &str) -> Result<(), FeedError> {
        self.send(self.client.post(self.url(path)).timeout(REQUEST_TIMEOUT).json(body), operation).await.map(|_| ())
    }

    /// Returns the control plane's configuration version without waiting.
    async fn current_version(&self) -> Result<u64, FeedError> {
        let reply: VersionReply =
            self.get_json("/internal/v1/wait?version=0&timeout_ms=0", REQUEST_TIMEOUT, "read the configuration version").await?;
        Ok(reply.version)
    }

    async fn long_poll(&self, version: u64, wait: Duration) -> Result<u64, FeedError> {
        let path = format!("/internal/v1/wait?version={version}&timeout_ms={}", wait.as_millis());
        let reply: VersionReply = self.get_json(&path, wait + LONG_POLL_GRACE, "wait for a new configuration version").await?;
        Ok(reply.version)
    }

    async fn document(&self, sha256: String) -> Result<(String, Arc<str>), FeedError> {
        let operation = "fetch a document";
        let response = self.send(self.client.get(self.url(&format!("/internal/v1/documents/{sha256}"))).timeout(REQUEST_TIMEOUT), operation).await?;
        let text = response.text().await.map_err(|error| FeedError::Unavailable(format!("{operation}: {error}")))?;
        let actual = hex::encode(Sha256::digest(text.as_bytes()));
        if actual != sha256 {
            return Err(FeedError::Unavailable(format!("document {sha256} arrived with SHA-256 {actual}")));
        }
        Ok((sha256, Arc::from(text)))
    }

    fn mark_down(&self, operation: &str, error: &reqwest::Error) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(%error, control_plane = %self.base, "failed to {operation}: the control plane is unreachable; serving the current snapshot and retrying");
        }
    }

    fn mark_up(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!(control_plane = %self.base, "the control plane is reachable again");
        }
    }
}

/// Version announcements from Redis.
struct Announcements {
    /// True while the Redis subscription is up.
    subscribed: watch::Sender<bool>,
    /// The last version announced, or read after subscribing.
    version: watch::Sender<u64>,
}

/// The deployments the edge holds, with their documents, mirrored from the deltas it fetched.
#[derive(Default)]
struct Mirror {
    version: u64,
    records: HashMap<Uuid, DeploymentRecord>,
    /// The snapshot read from disk at start, returned by the first `changes_since(0)`.
    from_disk: Option<SnapshotDelta>,
    /// Version of the snapshot from disk, whose apply report is not sent.
    disk_version: Option<u64>,
    /// True when a fetched delta is not on disk yet.
    unsaved: bool,
}

/// A control plane in another process, seen as a [`SnapshotFeed`] and [`TelemetrySink`].
pub struct RemoteFeed {
    http: Http,
    region: String,
    file: SnapshotFile,
    mirror: Mutex<Mirror>,
    announcements: Arc<Announcements>,
    redis_task: Option<JoinHandle<()>>,
}

impl RemoteFeed {
    /// Reads the snapshot stored in `settings.data_dir` and, with a Redis URL, starts the
    /// subscriber task. Must run inside a tokio runtime. The control plane is not contacted yet.
    pub fn start(settings: RemoteSettings) -> anyhow::Result<Arc<RemoteFeed>> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("mockforge-edge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let http = Http {
            base: settings.control_plane_url.trim_end_matches('/').to_owned(),
            token: settings.node_token,
            client,
            down: Arc::new(AtomicBool::new(false)),
        };

        let file = SnapshotFile::open(&settings.data_dir)?;
        let mut mirror = Mirror::default();
        match file.load() {
            Ok(Some(loaded)) => {
                tracing::info!(
                    path = %file.path().display(),
                    version = loaded.version,
                    deployments = loaded.records.len(),
                    skipped = loaded.skipped,
                    "loaded the last snapshot from disk"
                );
                mirror.version = loaded.version;
                mirror.records = loaded.records.iter().map(|record| (record.id, record.clone())).collect();
                mirror.disk_version = Some(loaded.version);
                mirror.from_disk = Some(SnapshotDelta { version: loaded.version, full: true, upserts: loaded.records, removals: Vec::new() });
            }
            Ok(None) => tracing::info!(path = %file.path().display(), "no snapshot on disk; waiting for the control plane"),
            Err(error) => tracing::warn!(error = format!("{error:#}"), "failed to read the snapshot on disk; waiting for the control plane"),
        }

        let announcements =
            Arc::new(Announcements { subscribed: watch::channel(false).0, version: watch::channel(0).0 });
        let redis_task = settings
            .redis_url
            .map(|url| tokio::spawn(follow_redis(url, http.clone(), announcements.clone())));

        Ok(Arc::new(RemoteFeed { http, region: settings.region, file, mirror: Mutex::new(mirror), announcements, redis_task }))
    }

    /// Returns a [`PluginSource`](mockforge_snapshot::PluginSource) that fetches plugin
    /// components from the control plane with this feed's node token and keeps them in
    /// `cache_dir`.
    pub fn plugin_source(&self, cache_dir: PathBuf) -> crate::remote_plugins::RemotePluginSource {
        crate::remote_plugins::RemotePluginSource::new(self.http.clone(), cache_dir)
    }

    /// Returns the path by which the edge learns about new versions right now.
    pub fn notification_mode(&self) -> NotificationMode {
        if *self.announcements.subscribed.borrow() {
            NotificationMode::Redis
        } else {
            NotificationMode::LongPoll
        }
    }

    /// Sends a heartbeat with what `edge` serves every `interval`, until the task is aborted.
    pub async fn send_heartbeats(self: Arc<Self>, edge: Edge, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let snapshot = edge.snapshot();
            let heartbeat = Heartbeat {
                node: edge.config().node_name.clone(),
                region: self.region.clone(),
                version: snapshot.version(),
                deployments: snapshot.deployments().map(|deployment| deployment.id).collect(),
                notification: self.notification_mode(),
            };
            if let Err(error) = self.http.post_json("/internal/v1/heartbeat", &heartbeat, "send a heartbeat").await {
                tracing::debug!(%error, "heartbeat not delivered");
            }
        }
    }

    /// Fetches the delta after `version` and the documents it lacks.
    async fn fetch(&self, mirror: &mut Mirror, version: u64) -> Result<SnapshotDelta, FeedError> {
        let announced_before = *self.announcements.version.borrow();
        let remote: RemoteDelta =
            self.http.get_json(&format!("/internal/v1/snapshot?since={version}"), REQUEST_TIMEOUT, "fetch changes").await?;

        let mut documents: HashMap<String, Arc<str>> =
            mirror.records.values().map(|record| (record.document_sha256.clone(), record.document.clone())).collect();
        let missing: HashSet<String> = remote
            .upserts
            .iter()
            .filter(|header| !documents.contains_key(&header.document_sha256))
            .map(|header| header.document_sha256.clone())
            .collect();
        let fetched = missing.len();
        let fetched_documents: Vec<(String, Arc<str>)> = futures_util::stream::iter(missing)
            .map(|sha256| self.http.document(sha256))
            .buffer_unordered(DOCUMENT_FETCHES)
            .try_collect()
            .await?;
        documents.extend(fetched_documents);

        let mut upserts = Vec::with_capacity(remote.upserts.len());
        for header in remote.upserts {
            let document = documents.get(&header.document_sha256).cloned().unwrap_or_else(|| Arc::from(""));
            upserts.push(header.into_record(document));
        }

        if remote.full {
            mirror.records.clear();
        }
        for id in &remote.removals {
            mirror.records.remove(id);
        }
        for record in &upserts {
            mirror.records.insert(record.id, record.clone());
        }
        mirror.version = remote.version;
        mirror.unsaved = true;

        // An announcement above the version just fetched that did not change during the fetch
        // comes from a database the control plane no longer uses (a restored backup). Forget it,
        // or every wait would return at once.
        self.announcements.version.send_if_modified(|announced| {
            let stale = *announced == announced_before && *announced > remote.version;
            if stale {
                *announced = remote.version;
            }
            stale
        });

        tracing::debug!(version = remote.version, full = remote.full, upserts = upserts.len(), removals = remote.removals.len(), documents_fetched = fetched, "fetched changes");
        Ok(SnapshotDelta { version: remote.version, full: remote.full, upserts, removals: remote.removals })
    }

    /// Writes the mirrored deployments to disk if a fetched delta is not there yet.
    async fn save(&self, mirror: &mut Mirror) {
        if !mirror.unsaved {
            return;
        }
        mirror.unsaved = false;
        let version = mirror.version;
        let records: Vec<DeploymentRecord> = mirror.records.values().cloned().collect();
        let file = self.file.clone();
        let deployments = records.len();
        match tokio::task::spawn_blocking(move || file.save(version, &records)).await {
            Ok(Ok(())) => tracing::debug!(version, deployments, "wrote the snapshot to disk"),
            Ok(Err(error)) => tracing::error!(error = format!("{error:#}"), version, "failed to write the snapshot to disk"),
            Err(error) => tracing::error!(%error, version, "the snapshot writer did not finish"),
        }
    }

    /// Waits for a Redis announcement above `version`, for the subscription to drop, or for
    /// `deadline`. Returns the announced version, or `None` when the subscription dropped.
    async fn wait_for_announcement(&self, version: u64, deadline: Instant) -> Option<Option<u64>> {
        let mut announced = self.announcements.version.subscribe();
        let mut subscribed = self.announcements.subscribed.subscribe();
        tokio::select! {
            result = announced.wait_for(|current| *current > version) => Some(result.ok().map(|current| *current)),
            _ = subscribed.wait_for(|up| !*up) => None,
            _ = tokio::time::sleep_until(deadline) => Some(None),
        }
    }
}

impl Drop for RemoteFeed {
    fn drop(&mut self) {
        if let Some(task) = &self.redis_task {
            task.abort();
        }
    }
}

#[async_trait::async_trait]
impl SnapshotFeed for RemoteFeed {
    async fn changes_since(&self, version: u64) -> Result<SnapshotDelta, FeedError> {
        let mut mirror = self.mirror.lock().await;
        if version == 0 {
            if let Some(delta) = mirror.from_disk.take() {
                return Ok(delta);
            }
        }
        // While the control plane is unreachable, retry here at a steady pace rather than let
        // the sync loop's backoff grow, so the edge catches up soon after it comes back.
        let deadline = Instant::now() + FETCH_RETRY_WINDOW;
        loop {
            match self.fetch(&mut mirror, version).await {
                Err(FeedError::Unavailable(_)) if Instant::now() + RETRY_DELAY < deadline => {
                    tokio::time::sleep(RETRY_DELAY).await;
                }
                // The delta is written before the edge applies it, so whatever the edge serves
                // is on disk when it restarts.
                Ok(delta) => {
                    self.save(&mut mirror).await;
                    return Ok(delta);
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn wait_for_change(&self, version: u64, timeout: Duration) -> Result<u64, FeedError> {
        let deadline = Instant::now() + timeout;
        loop {
            let subscribed = *self.announcements.subscribed.borrow();
            if subscribed {
                match self.wait_for_announcement(version, deadline).await {
                    Some(Some(announced)) => return Ok(announced),
                    // The safety net: ask the control plane in case a message was lost.
                    Some(None) => return self.http.current_version().await,
                    // The subscription dropped: continue with long-poll requests.
                    None => continue,
                }
            }

            let remaining = deadline.saturating_duration_since(Instant::now());
            let mut subscribed = self.announcements.subscribed.subscribe();
            let polled = tokio::select! {
                polled = self.http.long_poll(version, remaining.min(LONG_POLL)) => Some(polled),
                // Redis is back: read the version again, then wait on the subscription.
                _ = subscribed.wait_for(|up| *up) => None,
            };
            match polled {
                Some(Ok(current)) if current != version || Instant::now() >= deadline => return Ok(current),
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    if Instant::now() + RETRY_DELAY >= deadline {
                        return Err(error);
                    }
                    let mut subscribed = self.announcements.subscribed.subscribe();
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_DELAY) => {}
                        _ = subscribed.wait_for(|up| *up) => {}
                    }
                }
                None => {
                    let current = self.http.current_version().await?;
                    if current != version {
                        return Ok(current);
                    }
                }
            }
        }
    }

    async fn report_applied(&self, report: ApplyReport) -> Result<(), FeedError> {
        {
            let mut mirror = self.mirror.lock().await;
            if mirror.disk_version == Some(report.version) && mirror.from_disk.is_none() {
                // The report of the snapshot read from disk: the control plane saw these outcomes
                // before the restart, and the catch-up delta brings its own report.
                mirror.disk_version = None;
                return Ok(());
            }
            mirror.disk_version = None;
        }
        self.http.post_json("/internal/v1/report", &report, "send the apply report").await
    }
}

#[async_trait::async_trait]
impl TelemetrySink for RemoteFeed {
    async fn report_telemetry(&self, batch: TelemetryBatch) -> Result<(), FeedError> {
        self.http.post_json("/internal/v1/telemetry", &batch, "send telemetry").await
    }
}

/// Keeps a Redis subscription to the version channel, reconnecting after every loss.
async fn follow_redis(url: String, http: Http, announcements: Arc<Announcements>) {
    let client = match redis::Client::open(url.as_str()) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "invalid Redis URL; following the control plane with long-poll requests only");
            return;
        }
    };
    let mut failures: u64 = 0;
    loop {
        let connected = tokio::time::timeout(REQUEST_TIMEOUT, client.get_async_pubsub()).await;
        let subscribed = match connected {
            Ok(Ok(mut pubsub)) => match pubsub.subscribe(REDIS_VERSION_CHANNEL).await {
                Ok(()) => Ok(pubsub),
                Err(error) => Err(error.to_string()),
            },
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("timed out after {REQUEST_TIMEOUT:?}")),
        };
        match subscribed {
            Ok(pubsub) => {
                failures = 0;
                announcements.subscribed.send_replace(true);
                tracing::info!(channel = REDIS_VERSION_CHANNEL, "subscribed to configuration versions on Redis");
                // A change committed before the subscription has no message to come: read the
                // version now.
                if let Ok(current) = http.current_version().await {
                    announcements.version.send_replace(current);
                }
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let Ok(text) = message.get_payload::<String>() else { continue };
                    match text.trim().parse::<u64>() {
                        Ok(version) => {
                            announcements.version.send_replace(version);
                        }
                        Err(_) => tracing::warn!(payload = %text, "ignored a Redis message that is not a configuration version"),
                    }
                }
                announcements.subscribed.send_replace(false);
                tracing::warn!("lost the Redis subscription; using long-poll requests until it is back");
            }
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(%error, "failed to subscribe to Redis; using long-poll requests and retrying");
                } else {
                    tracing::debug!(%error, failures, "failed to subscribe to Redis");
                }
            }
        }
        tokio::time::sleep(RETRY_DELAY).await;
    }
}
