//! Control plane settings and the JWT secret that persists across restarts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use mockforge_snapshot::PlanTable;
use rand::RngCore;

/// Settings for [`crate::ControlPlane::start`].
#[derive(Debug, Clone)]
pub struct ControlPlaneConfig {
    /// Directory for the SQLite database, the JWT secret and the artifact store.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`. `None` selects `sqlite://{data_dir}/mockforge.db?mode=rwc`.
    pub database_url: Option<String>,
    /// Redis for publishing configuration versions. `None` disables Redis.
    pub redis_url: Option<String>,
    /// Public edge URL template, for example `http://{org}.localhost:8081`. `{org}` is replaced by
    /// the organization slug and `/{deployment slug}` is appended to form a deployment URL.
    pub public_edge_url: String,
    /// E-mail addresses whose accounts are platform administrators.
    pub admin_emails: Vec<String>,
    /// HS256 signing secret. `None` generates 64 random bytes (hex) into `{data_dir}/jwt-secret`
    /// with mode 0600 on first start and reuses that file afterwards.
    pub jwt_secret: Option<String>,
    /// Allow fetching OpenAPI documents from private, loopback and other reserved addresses.
    pub allow_private_networks: bool,
    /// Maximum size of an OpenAPI document in bytes, fetched or inline.
    pub max_document_bytes: u64,
    /// Total time limit for fetching one OpenAPI document.
    pub fetch_timeout: Duration,
    /// Limits of each plan: deployments, and API requests per minute for plans that set
    /// `requests_per_minute`.
    pub plans: PlanTable,
    /// API requests per minute per organization for plans without `requests_per_minute`.
    pub default_api_requests_per_minute: u64,
    /// API requests per minute per client IP address for requests without valid credentials.
    pub anonymous_requests_per_minute: u64,
    /// API tokens older than this many days are listed as needing rotation.
    pub token_rotation_age_days: i64,
    /// Request logs kept per deployment; the oldest are deleted first.
    pub request_log_limit: i64,
    /// Stripe secret API key for checkout sessions. `None` disables checkout.
    pub stripe_secret_key: Option<String>,
    /// Signing secret of the Stripe webhook endpoint (`whsec_…`). `None` rejects webhooks.
    pub stripe_webhook_secret: Option<String>,
    /// Base URL of the Stripe API.
    pub stripe_api_base: String,
    /// Stripe price id of each paid plan, for example `pro` to `price_…`.
    pub stripe_price_ids: BTreeMap<String, String>,
    /// Secret of at least 32 bytes from which the key that encrypts stored provider API keys is
    /// derived. `None` generates one into `{data_dir}/master-key` with mode 0600 on first start.
    pub master_key: Option<String>,
    /// Directory of the Markdown documents `terms.md`, `privacy.md`, `dpa.md` and `faq.md`,
    /// read on every request so they can change without a restart.
    pub legal_dir: PathBuf,
    /// Address that receives support requests.
    pub support_email: String,
    /// SMTP server for outgoing e-mail, for example `smtp://mail.example.com:587` (plain, or
    /// `?tls=required` for STARTTLS) or `smtps://…`. `None` writes every message to
    /// `{data_dir}/outbox/` instead.
    pub smtp_url: Option<String>,
    /// Sender of outgoing e-mail, `Name <address>` or a bare address.
    pub mail_from: String,
    /// Base URL of this API as customers reach it, used in links sent by e-mail.
    pub public_api_url: String,
    /// Time between a data deletion request, which locks the account at once, and the deletion.
    pub gdpr_grace_period: Duration,
    /// OAuth sign-in providers by name, `github` or `google`. A provider not listed here returns
    /// 404 on its OAuth routes.
    pub oauth_providers: BTreeMap<String, OAuthProvider>,
    /// S3-compatible bucket for marketplace files. `None` stores them under
    /// `{data_dir}/artifacts/`.
    pub s3_storage: Option<crate::s3_storage::S3StorageConfig>,
}

/// Client credentials and endpoints of an OAuth 2.0 provider.
#[derive(Debug, Clone)]
pub struct OAuthProvider {
    pub client_id: String,
    pub client_secret: String,
    pub authorize_url: String,
    pub token_url: String,
    /// Returns the signed-in user: GitHub's `/user` or Google's OpenID Connect userinfo.
    pub user_info_url: String,
    /// GitHub's `/user/emails`, which lists the addresses with their verification state. Unused
    /// for Google, whose userinfo carries `email_verified`.
    pub emails_url: Option<String>,
    pub scopes: Vec<String>,
}

impl OAuthProvider {
    /// GitHub's public endpoints with the given OAuth app credentials.
    pub fn github(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            authorize_url: "https://github.com/login/oauth/authorize".to_owned(),
            token_url: "https://github.com/login/oauth/access_token".to_owned(),
            user_info_url: "https://api.github.com/user".to_owned(),
            emails_url: Some("https://api.github.com/user/emails".to_owned()),
            scopes: vec!["read:user".to_owned(), "user:email".to_owned()],
        }
    }

    /// Google's public endpoints with the given OAuth client credentials.
    pub fn google(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
            token_url: "https://oauth2.googleapis.com/token".to_owned(),
            user_info_url: "https://openidconnect.googleapis.com/v1/userinfo".to_owned(),
            emails_url: None,
            scopes: vec!["openid".to_owned(), "email".to_owned(), "profile".to_owned()],
        }
    }
}

/// Default maximum document size: 32 MiB.
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 32 * 1024 * 1024;

impl ControlPlaneConfig {
    /// Creates a configuration with defaults for everything but the data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            redis_url: None,
            public_edge_url: "http://{org}.localhost:8081".to_owned(),
            admin_emails: Vec::new(),
            jwt_secret: None,
            allow_private_networks: false,
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            fetch_timeout: Duration::from_secs(10),
            plans: PlanTable::default(),
            default_api_requests_per_minute: 600,
            anonymous_requests_per_minute: 60,
            token_rotation_age_days: 90,
            request_log_limit: 1000,
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            stripe_api_base: "https://api.stripe.com".to_owned(),
            stripe_price_ids: BTreeMap::new(),
            master_key: None,
            legal_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/legal")),
            support_email: "support@mockforge.dev".to_owned(),
            smtp_url: None,
            mail_from: "MockForge <no-reply@mockforge.dev>".to_owned(),
            public_api_url: "http://localhost:8080".to_owned(),
            gdpr_grace_period: Duration::from_secs(24 * 60 * 60),
            oauth_providers: BTreeMap::new(),
            s3_storage: None,
        }
    }

    pub(crate) fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("mockforge.db").display()),
        }
    }

    /// Builds the public URL of a deployment.
    pub(crate) fn deployment_url(&self, org_slug: &str, deployment_slug: &str) -> String {
        let base = self.public_edge_url.replace("{org}", org_slug);
        format!("{}/{}", base.trim_end_matches('/'), deployment_slug)
    }
}

/// Returns the configured JWT secret, or reads (creating on first use) `{data_dir}/jwt-secret`.
pub(crate) fn load_jwt_secret(config: &ControlPlaneConfig) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.jwt_secret {
        anyhow::ensure!(secret.len() >= 32, "the JWT secret must be at least 32 bytes long, got {}", secret.len());
        return Ok(secret.as_bytes().to_vec());
    }
    let path = config.data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = text.trim();
            anyhow::ensure!(secret.len() >= 32, "the JWT secret in {} is shorter than 32 bytes; delete the file to generate a new one", path.display());
            Ok(secret.as_bytes().to_vec())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => create_secret_file(&path),
        Err(error) => Err(error).with_context(|| format!("failed to read {}", path.display())),
    }
}

pub(crate) fn create_secret_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;

    let mut bytes = [0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("failed to create {}", path.display()))?;
    file.write_all(secret.as_bytes()).with_context(|| format!("failed to write {}", path.display()))?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated a new secret file");
    Ok(secret.into_bytes())
}
