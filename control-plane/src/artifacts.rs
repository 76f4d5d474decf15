//! Content-addressed storage of OpenAPI documents under `{data_dir}/artifacts/documents`.

use std::path::PathBuf;

use anyhow::Context;
use sha2::{Digest, Sha256};

pub struct ArtifactStore {
    dir: PathBuf,
}

impl ArtifactStore {
    pub fn new(data_dir: &std::path::Path) -> anyhow::Result<Self> {
        let dir = data_dir.join("artifacts").join("documents");
        std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        Ok(Self { dir })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.json"))
    }

    /// Stores a document and returns its hex SHA-256. The file is written to a temporary name
    /// and renamed, so a reader never sees a partial document.
    pub async fn put(&self, document: &str) -> anyhow::Result<String> {
        let sha256 = hex::encode(Sha256::digest(document.as_bytes()));
        let path = self.path(&sha256);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(sha256);
        }
        let temp = self.dir.join(format!(".{sha256}.{}.tmp", uuid::Uuid::new_v4()));
        tokio::fs::write(&temp, document.as_bytes())
            .await
            .with_context(|| format!("failed to write {}", temp.display()))?;
        if let Err(error) = tokio::fs::rename(&temp, &path).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(error).with_context(|| format!("failed to rename {} to {}", temp.display(), path.display()));
        }
        Ok(sha256)
    }

    /// Returns the size in bytes of a stored document, or `None` when it is missing.
    pub async fn size(&self, sha256: &str) -> Option<u64> {
        tokio::fs::metadata(self.path(sha256)).await.ok().map(|metadata| metadata.len())
    }

    /// Deletes a stored document. A missing document is not an error.
    pub async fn remove(&self, sha256: &str) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.path(sha256)).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }

    /// Reads a stored document by hash.
    pub async fn get(&self, sha256: &str) -> anyhow::Result<String> {
        let path = self.path(sha256);
        tokio::fs::read_to_string(&path).await.with_context(|| format!("failed to read artifact {}", path.display()))
    }
}
