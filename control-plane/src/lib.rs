//! The MockForge Cloud control plane: the customer REST API for accounts, organizations, API
//! tokens and hosted mock deployments, and the snapshot feed that edges follow.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use mockforge_control_plane::{ControlPlane, ControlPlaneConfig};
//!
//! let control_plane = ControlPlane::start(ControlPlaneConfig::new("/var/lib/mockforge")).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! control_plane.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod api;
pub mod artifacts;
pub mod auth;
pub mod config;
pub mod deletion;
pub mod error;
pub mod fetch;
pub mod mail;
pub mod marketplace;
pub mod nodes;
pub mod quota;
pub mod quota_period;
pub mod ratelimit;
pub mod s3_storage;
pub mod secrets;
pub mod snapshot;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod version_sync;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dashmap::DashMap;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::ControlPlaneConfig;
pub use store::sql::Backend;

use crate::auth::TokenUsage;
use crate::state::AppState;
use crate::store::SharedStore;

/// Interval between writes of API token `last_used_at` values.
pub const TOKEN_USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A started control plane: database migrated, secrets loaded, background tasks running.
pub struct ControlPlane {
    state: AppState,
    backend: Backend,
    stop_flush: watch::Sender<bool>,
    flush_task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl ControlPlane {
    /// Connects to the database (and Redis when configured), applies migrations, loads the JWT
    /// secret and starts the token usage flusher.
    pub async fn start(config: ControlPlaneConfig) -> anyhow::Result<ControlPlane> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("failed to create the data directory {}", config.data_dir.display()))?;
        let jwt_secret = config::load_jwt_secret(&config)?;
        let jwt = auth::JwtKeys::new(&jwt_secret)?;
        let secret_box = secrets::SecretBox::new(&secrets::load_master_secret(&config)?);
        let mailer = mail::Mailer::new(&config)?;
        let file_storage = marketplace::storage_from_config(&config)?;

        let (store, backend) = store::connect(&config.database_url()).await?;
        let ready = Arc::new(AtomicBool::new(false));
        store.migrate().await.context("database migration failed")?;
        ready.store(true, Ordering::Release);

        let redis = match &config.redis_url {
            Some(url) => Some(connect_redis(url).await?),
            None => None,
        };

        let artifacts = Arc::new(artifacts::ArtifactStore::new(store.clone(), &config.data_dir));
        let imported = artifacts.import_local_documents().await.context("failed to import local documents into the database")?;
        if imported > 0 {
            tracing::info!(imported, "imported local documents into the database");
        }
        let fetcher = fetch::Fetcher::new(config.allow_private_networks, config.max_document_bytes, config.fetch_timeout)?;
        let version = store.config_version().await.context("failed to read the configuration version")?;
        let feed = Arc::new(snapshot::Feed::new(store.clone(), artifacts.clone(), version, redis.clone()));

        let token_usage: TokenUsage = Arc::new(DashMap::new());
        let (stop_flush, stop_receiver) = watch::channel(false);
        tokio::spawn(nodes::sweep_health_periodically(store.clone(), stop_receiver.clone()));
        version_sync::spawn(feed.clone(), config.redis_url.clone(), stop_receiver.clone());
        // Deletions that fell due while the control plane was stopped run before it serves.
        let deleted = deletion::run_due_deletions(&store, &feed, &artifacts, file_storage.as_ref()).await.context("the account deletion job failed")?;
        if deleted > 0 {
            tracing::info!(deleted, "deleted accounts whose grace period had passed");
        }
        tokio::spawn(deletion::run_periodically(
            store.clone(),
            feed.clone(),
            artifacts.clone(),
            file_storage.clone(),
            stop_receiver.clone(),
        ));
        let flush_task = tokio::spawn(flush_token_usage_periodically(store.clone(), token_usage.clone(), stop_receiver));

        tracing::info!(?backend, data_dir = %config.data_dir.display(), redis = redis.is_some(), version, "control plane started");
        let rate_limiter = Arc::new(ratelimit::RateLimiter::new(redis.clone()));
        let telemetry = Arc::new(telemetry::Telemetry::new(store.clone(), config.request_log_limit));
        let state = AppState {
            store,
            config: Arc::new(config),
            jwt: Arc::new(jwt),
            token_usage,
            feed,
            redis,
            fetcher: Arc::new(fetcher),
            artifacts,
            rate_limiter,
            telemetry,
            secrets: Arc::new(secret_box),
            ready,
            mailer: Arc::new(mailer),
            file_storage,
        };
        Ok(ControlPlane { state, backend, stop_flush, flush_task: std::sync::Mutex::new(Some(flush_task)) })
    }

    /// Builds the API router with its state.
    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// Returns the feed that edges follow to learn which deployments to serve.
    pub fn snapshot_feed(&self) -> Arc<dyn mockforge_snapshot::SnapshotFeed> {
        self.state.feed.clone()
    }

    /// Returns the sink that stores usage, metrics and request logs reported by edges.
    pub fn telemetry_sink(&self) -> Arc<dyn mockforge_snapshot::TelemetrySink> {
        self.state.telemetry.clone()
    }

    /// Returns the source of plugin files for edges in this process.
    pub fn plugin_source(&self) -> Arc<dyn mockforge_snapshot::PluginSource> {
        Arc::new(marketplace::StoragePluginSource::new(self.state.file_storage.clone()))
    }

    /// Returns the database kind this control plane uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Serves the API until `shutdown` completes, lets open requests finish, then writes pending
    /// token usage.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let address = listener.local_addr().ok();
        tracing::info!(?address, "control plane API listening");
        // Connection addresses feed the audit log and the per-IP rate limit.
        let service = self.router().into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, service).with_graceful_shutdown(shutdown).await;
        self.shutdown().await;
        tracing::info!(?address, "control plane API stopped");
        served.context("the API server failed")
    }

    /// Stops the background tasks and writes pending token usage. `serve` calls this on exit.
    pub async fn shutdown(&self) {
        let _ = self.stop_flush.send(true);
        let task = self.flush_task.lock().ok().and_then(|mut task| task.take());
        if let Some(task) = task {
            if let Err(error) = task.await {
                tracing::error!(%error, "the token usage flusher failed");
            }
        }
    }
}

async fn connect_redis(url: &str) -> anyhow::Result<redis::aio::ConnectionManager> {
    let client = redis::Client::open(url).context("invalid Redis URL")?;
    let manager = tokio::time::timeout(REDIS_CONNECT_TIMEOUT, redis::aio::ConnectionManager::new(client))
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {REDIS_CONNECT_TIMEOUT:?} connecting to Redis"))?
        .context("failed to connect to Redis")?;
    Ok(manager)
}

async fn flush_token_usage_periodically(store: SharedStore, usage: TokenUsage, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(TOKEN_USAGE_FLUSH_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => flush_token_usage(&store, &usage).await,
            _ = stop.changed() => break,
        }
    }
    flush_token_usage(&store, &usage).await;
}

/// Writes every pending `last_used_at` in one transaction. An entry updated while the write runs
/// stays pending for the next flush.
async fn flush_token_usage(store: &SharedStore, usage: &TokenUsage) {
    let batch: Vec<_> = usage.iter().map(|entry| (*entry.key(), *entry.value())).collect();
    if batch.is_empty() {
        return;
    }
    match store.touch_tokens(&batch).await {
        Ok(()) => {
            for (id, used_at) in &batch {
                usage.remove_if(id, |_, current| current == used_at);
            }
            tracing::debug!(tokens = batch.len(), "wrote API token usage");
        }
        Err(error) => tracing::error!(%error, tokens = batch.len(), "failed to write API token usage; retrying later"),
    }
}
