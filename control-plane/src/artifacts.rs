//! OpenAPI documents by the hex SHA-256 of their text, stored in the database (`documents`
//! table) so that every control-plane replica on one database serves them.
//!
//! Control planes before the `documents` table kept documents under
//! `{data_dir}/artifacts/documents/{sha256}.json`. [`ArtifactStore::import_local_documents`]
//! copies such files into the database at startup and then deletes them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::store::SharedStore;

pub struct ArtifactStore {
    store: SharedStore,
    local_dir: PathBuf,
}

impl ArtifactStore {
    pub fn new(store: SharedStore, data_dir: &Path) -> Self {
        Self { store, local_dir: data_dir.join("artifacts").join("documents") }
    }

    /// Returns the hex SHA-256 of a document, the key it is stored under.
    pub fn sha256(document: &str) -> String {
        hex::encode(Sha256::digest(document.as_bytes()))
    }

    /// Reads a stored document by hash. Returns `None` when no document has that hash.
    pub async fn get(&self, sha256: &str) -> Result<Option<String>, sqlx::Error> {
        self.store.documents().document(sha256).await
    }

    /// Returns the size in bytes of a stored document, or `None` when it is missing.
    pub async fn size(&self, sha256: &str) -> Result<Option<u64>, sqlx::Error> {
        self.store.documents().document_size(sha256).await
    }

    /// Deletes a stored document unless a deployment that is not deleted refers to it. Returns
    /// whether it was deleted.
    pub async fn remove_unused(&self, sha256: &str) -> Result<bool, sqlx::Error> {
        self.store.documents().delete_unused_document(sha256).await
    }

    /// Copies every `{sha256}.json` file of the local document directory into the database and
    /// deletes the file once its row is committed. Returns the number of files imported.
    pub async fn import_local_documents(&self) -> anyhow::Result<usize> {
        let mut entries = match tokio::fs::read_dir(&self.local_dir).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(error).with_context(|| format!("failed to list {}", self.local_dir.display())),
        };
        let mut imported = 0;
        while let Some(entry) = entries.next_entry().await.with_context(|| format!("failed to list {}", self.local_dir.display()))? {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|name| name.to_str()).and_then(|name| name.strip_suffix(".json")) else {
                continue;
            };
            // Hidden names are temporary files of an interrupted write.
            if name.starts_with('.') {
                continue;
            }
            let document = tokio::fs::read_to_string(&path).await.with_context(|| format!("failed to read {}", path.display()))?;
            let sha256 = Self::sha256(&document);
            if sha256 != name {
                tracing::warn!(path = %path.display(), %sha256, "skipped a local document whose content does not match its file name");
                continue;
            }
            self.store.documents().insert_document(&sha256, &document).await.with_context(|| format!("failed to import {}", path.display()))?;
            tokio::fs::remove_file(&path).await.with_context(|| format!("failed to delete the imported {}", path.display()))?;
            imported += 1;
        }
        Ok(imported)
    }
}
