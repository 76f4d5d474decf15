//! Shared state of the HTTP handlers.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::artifacts::ArtifactStore;
use crate::auth::{JwtKeys, TokenUsage};
use crate::config::ControlPlaneConfig;
use crate::fetch::Fetcher;
use crate::ratelimit::RateLimiter;
use crate::snapshot::Feed;
use crate::store::SharedStore;

#[derive(Clone)]
pub struct AppState {
    pub store: SharedStore,
    pub config: Arc<ControlPlaneConfig>,
    pub jwt: Arc<JwtKeys>,
    pub token_usage: TokenUsage,
    pub feed: Arc<Feed>,
    pub redis: Option<redis::aio::ConnectionManager>,
    pub fetcher: Arc<Fetcher>,
    pub artifacts: Arc<ArtifactStore>,
    pub rate_limiter: Arc<RateLimiter>,
    /// Stores telemetry batches from edges.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// Encrypts stored provider API keys.
    pub secrets: Arc<crate::secrets::SecretBox>,
    /// Set once migrations have run; `/health/ready` returns 503 until then.
    pub ready: Arc<AtomicBool>,
    /// Sends e-mail through SMTP or into the outbox.
    pub mailer: Arc<crate::mail::Mailer>,
    /// Marketplace files: plugin components and template and scenario packages.
    pub file_storage: Arc<dyn crate::marketplace::FileStorage>,
}
