//! Control plane settings and the JWT secret that persists across restarts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
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

fn create_secret_file(path: &Path) -> anyhow::Result<Vec<u8>> {
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
    tracing::info!(path = %path.display(), "generated a new JWT secret");
    Ok(secret.into_bytes())
}
