//! Plugin components for an edge in another process than the control plane: fetched from
//! `GET /internal/v1/plugins/{checksum}` with the node token, checked against their checksum,
//! and kept on disk so a restarted edge loads them without the control plane.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mockforge_snapshot::{FeedError, PluginSource};
use sha2::{Digest, Sha256};

use crate::remote::Http;

/// Maximum size of a plugin component: the largest upload the control plane accepts (20 MiB on
/// paid plans).
pub const MAX_PLUGIN_BYTES: usize = 20 * 1024 * 1024;
/// Time limit of one plugin download.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// A [`PluginSource`] over the control plane's internal API, with a disk cache of
/// `{cache_dir}/{sha256}.wasm` files.
pub struct RemotePluginSource {
    http: Http,
    cache_dir: PathBuf,
    max_bytes: usize,
}

impl RemotePluginSource {
    pub(crate) fn new(http: Http, cache_dir: PathBuf) -> RemotePluginSource {
        RemotePluginSource { http, cache_dir, max_bytes: MAX_PLUGIN_BYTES }
    }

    /// Sets the maximum size of a downloaded component, [`MAX_PLUGIN_BYTES`] by default.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> RemotePluginSource {
        self.max_bytes = max_bytes;
        self
    }

    /// Returns the cached file of `sha256`, or `None` when it is missing or does not match its
    /// checksum (a damaged file is deleted).
    async fn cached(&self, sha256: &str) -> Option<Vec<u8>> {
        let path = self.cache_dir.join(format!("{sha256}.wasm"));
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "failed to read a cached plugin; fetching it again");
                return None;
            }
        };
        if hex::encode(Sha256::digest(&bytes)) == sha256 {
            return Some(bytes);
        }
        tracing::warn!(path = %path.display(), "a cached plugin does not match its checksum; deleting it and fetching it again");
        let _ = tokio::fs::remove_file(&path).await;
        None
    }

    /// Writes `bytes` to the cache through a temporary file and a rename, so a reader never sees
    /// a partial file. A failure is logged: the edge still has the bytes in memory.
    async fn store(&self, sha256: &str, bytes: &[u8]) {
        let path = self.cache_dir.join(format!("{sha256}.wasm"));
        let temp = self.cache_dir.join(format!(".{sha256}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let result = async {
            tokio::fs::create_dir_all(&self.cache_dir).await?;
            tokio::fs::write(&temp, bytes).await?;
            tokio::fs::rename(&temp, &path).await
        }
        .await;
        if let Err(error) = result {
            let _ = tokio::fs::remove_file(&temp).await;
            tracing::warn!(%error, path = %path.display(), "failed to cache a plugin on disk");
        }
    }

    async fn download(&self, checksum: &str, sha256: &str) -> Result<Vec<u8>, FeedError> {
        let operation = "fetch a plugin";
        let request = self.http.client.get(self.http.url(&format!("/internal/v1/plugins/{checksum}"))).timeout(DOWNLOAD_TIMEOUT);
        let mut response = self.http.send(request, operation).await?;
        let too_large = || FeedError::Rejected(format!("plugin {checksum} is larger than {} bytes", self.max_bytes));
        if response.content_length().is_some_and(|length| length > self.max_bytes as u64) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| FeedError::Unavailable(format!("{operation}: {error}")))?
        {
            if bytes.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != sha256 {
            return Err(FeedError::Unavailable(format!("plugin {checksum} arrived with SHA-256 {actual}")));
        }
        Ok(bytes)
    }
}

#[async_trait::async_trait]
impl PluginSource for RemotePluginSource {
    async fn plugin(&self, checksum: &str) -> Result<Arc<[u8]>, FeedError> {
        let Some(sha256) = mockforge_plugins::checksum_hex(checksum) else {
            return Err(FeedError::Rejected(format!("invalid plugin checksum {checksum:?}; expected sha256: and 64 hex digits")));
        };
        if let Some(bytes) = self.cached(sha256).await {
            return Ok(Arc::from(bytes));
        }
        let bytes = self.download(checksum, sha256).await?;
        tracing::info!(%checksum, bytes = bytes.len(), "fetched a plugin from the control plane");
        self.store(sha256, &bytes).await;
        Ok(Arc::from(bytes))
    }
}
