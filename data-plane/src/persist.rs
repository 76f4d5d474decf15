//! The edge's last applied snapshot on disk, so a restarted edge serves before it reaches the
//! control plane.
//!
//! Layout under the data directory: `snapshot.json` holds the configuration version and the
//! deployment headers, and `documents/{sha256}` holds each referenced document once. Every file
//! is written to a temporary name, synced and renamed, so a crash leaves either the old or the
//! new file. Documents are written before the `snapshot.json` that references them and removed
//! only after it no longer does.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use mockforge_snapshot::{DeploymentHeader, DeploymentRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the `snapshot.json` layout; a file of another format is ignored.
const FORMAT: u32 = 1;
const SNAPSHOT_FILE: &str = "snapshot.json";
const DOCUMENTS_DIR: &str = "documents";

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    format: u32,
    version: u64,
    deployments: Vec<DeploymentHeader>,
}

/// A snapshot read back from disk.
#[derive(Debug)]
pub struct LoadedSnapshot {
    pub version: u64,
    pub records: Vec<DeploymentRecord>,
    /// Deployments left out because their document is missing or does not match its hash.
    pub skipped: usize,
}

/// The snapshot files of one data directory.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    dir: PathBuf,
}

impl SnapshotFile {
    /// Creates the data directory and its `documents` folder if needed.
    pub fn open(dir: impl Into<PathBuf>) -> anyhow::Result<SnapshotFile> {
        let dir = dir.into();
        let documents = dir.join(DOCUMENTS_DIR);
        std::fs::create_dir_all(&documents).with_context(|| format!("failed to create {}", documents.display()))?;
        Ok(SnapshotFile { dir })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(SNAPSHOT_FILE)
    }

    fn document_path(&self, sha256: &str) -> PathBuf {
        self.dir.join(DOCUMENTS_DIR).join(sha256)
    }

    /// Reads the stored snapshot. Returns `None` when there is none or it has another format.
    pub fn load(&self) -> anyhow::Result<Option<LoadedSnapshot>> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).with_context(|| format!("failed to read {}", path.display())),
        };
        let stored: StoredSnapshot =
            serde_json::from_slice(&bytes).with_context(|| format!("{} is not a valid snapshot file", path.display()))?;
        if stored.format != FORMAT {
            tracing::warn!(path = %path.display(), format = stored.format, "ignoring a snapshot file of an unknown format");
            return Ok(None);
        }

        let mut documents: HashMap<String, Arc<str>> = HashMap::new();
        let mut records = Vec::with_capacity(stored.deployments.len());
        let mut skipped = 0;
        for header in stored.deployments {
            let document = match documents.get(&header.document_sha256) {
                Some(document) => Some(document.clone()),
                None => self.read_document(&header.document_sha256),
            };
            match document {
                Some(document) => {
                    documents.insert(header.document_sha256.clone(), document.clone());
                    records.push(header.into_record(document));
                }
                None => {
                    tracing::warn!(deployment_id = %header.id, sha256 = %header.document_sha256, "the stored document of a deployment is missing or corrupt; it is not served until the control plane sends it");
                    skipped += 1;
                }
            }
        }
        Ok(Some(LoadedSnapshot { version: stored.version, records, skipped }))
    }

    /// Reads a document and checks its hash.
    fn read_document(&self, sha256: &str) -> Option<Arc<str>> {
        let text = std::fs::read_to_string(self.document_path(sha256)).ok()?;
        (hex::encode(Sha256::digest(text.as_bytes())) == sha256).then(|| Arc::from(text))
    }

    /// Writes `records` as the snapshot of `version`, then removes documents no record uses.
    pub fn save(&self, version: u64, records: &[DeploymentRecord]) -> anyhow::Result<()> {
        let mut referenced = HashSet::new();
        for record in records {
            if referenced.insert(record.document_sha256.clone()) {
                let path = self.document_path(&record.document_sha256);
                if !path.exists() {
                    write_atomically(&path, record.document.as_bytes())?;
                }
            }
        }

        let stored = StoredSnapshot {
            format: FORMAT,
            version,
            deployments: records.iter().map(DeploymentHeader::of).collect(),
        };
        let bytes = serde_json::to_vec(&stored).context("failed to serialize the snapshot")?;
        write_atomically(&self.path(), &bytes)?;

        let documents = self.dir.join(DOCUMENTS_DIR);
        for entry in std::fs::read_dir(&documents).with_context(|| format!("failed to list {}", documents.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !referenced.contains(&name) {
                if let Err(error) = std::fs::remove_file(entry.path()) {
                    tracing::warn!(%error, path = %entry.path().display(), "failed to remove an unused document");
                }
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and syncs
/// the directory, so readers and crashes see the old or the new content, never a mix.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("the snapshot path has no parent directory")?;
    let name = path.file_name().context("the snapshot path has no file name")?.to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.tmp", rand::random::<u64>()));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.with_context(|| format!("failed to write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn record(document: &str) -> DeploymentRecord {
        DeploymentRecord {
            id: Uuid::new_v4(),
            org_id: Uuid::new_v4(),
            org_slug: "acme".into(),
            slug: "pets".into(),
            plan: "free".into(),
            document: Arc::from(document),
            document_sha256: hex::encode(Sha256::digest(document.as_bytes())),
            config: serde_json::json!({}),
            period_start: None,
            limit_overrides: None,
        }
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = std::env::temp_dir().join(format!("mockforge-persist-{}", rand::random::<u64>()));
        let file = SnapshotFile::open(&dir).unwrap();
        assert!(file.load().unwrap().is_none());

        let first = record("{\"openapi\": \"3.0.3\"}");
        let second = record("{\"openapi\": \"3.1.0\"}");
        file.save(7, &[first.clone(), second.clone()]).unwrap();
        let loaded = file.load().unwrap().unwrap();
        assert_eq!(loaded.version, 7);
        assert_eq!(loaded.records.len(), 2);
        assert_eq!(loaded.skipped, 0);
        assert_eq!(&*loaded.records[1].document, &*second.document);

        // Dropping a deployment removes its document.
        file.save(8, std::slice::from_ref(&first)).unwrap();
        assert!(!file.document_path(&second.document_sha256).exists());
        assert!(file.document_path(&first.document_sha256).exists());

        // A corrupt document skips its deployment.
        std::fs::write(file.document_path(&first.document_sha256), "tampered").unwrap();
        let loaded = file.load().unwrap().unwrap();
        assert_eq!(loaded.records.len(), 0);
        assert_eq!(loaded.skipped, 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
