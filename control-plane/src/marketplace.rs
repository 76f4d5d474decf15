//! Marketplace files: content-addressed storage of plugin components and template and scenario
//! packages, their validation, and the [`PluginSource`] that edges in this process read.

use std::cell::Cell;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use mockforge_plugins::{PluginHost, PluginHostConfig};
use mockforge_snapshot::{FeedError, PluginSource};
use sha2::{Digest, Sha256};

/// Maximum plugin or package size on the free plan: 5 MiB.
pub const FREE_MAX_FILE_BYTES: usize = 5 * 1024 * 1024;
/// Maximum plugin or package size on every other plan: 20 MiB.
pub const PAID_MAX_FILE_BYTES: usize = 20 * 1024 * 1024;
/// Maximum number of entries in a template or scenario package.
pub const MAX_PACKAGE_ENTRIES: usize = 1000;
/// Maximum unpacked size of a package, as a multiple of its packed size limit.
pub const MAX_UNPACKED_RATIO: u64 = 10;

/// Returns the file size limit of a plan.
pub fn max_file_bytes(plan: &str) -> usize {
    if plan == "free" {
        FREE_MAX_FILE_BYTES
    } else {
        PAID_MAX_FILE_BYTES
    }
}

/// Storage of marketplace files, addressed by kind and hex SHA-256: [`LocalStorage`], or
/// [`S3Storage`](crate::s3_storage::S3Storage) when S3 is configured.
#[async_trait::async_trait]
pub trait FileStorage: Send + Sync + 'static {
    /// Stores `bytes` and returns their hex SHA-256. Storing the same bytes twice is a no-op.
    async fn put(&self, kind: &str, bytes: &[u8]) -> anyhow::Result<String>;
    /// Returns the file, or `None` when there is none.
    async fn get(&self, kind: &str, sha256: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Deletes the file. A missing file is not an error.
    async fn delete(&self, kind: &str, sha256: &str) -> anyhow::Result<()>;
}

/// Files under `{data_dir}/artifacts/{kind}s/{sha256}.{wasm|tar.gz}`.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(data_dir: &Path) -> LocalStorage {
        LocalStorage {
            root: data_dir.join("artifacts"),
        }
    }

    fn path(&self, kind: &str, sha256: &str) -> PathBuf {
        self.root.join(file_name(kind, sha256))
    }
}

/// Builds the storage the configuration selects: S3 when `s3_storage` is set, the data
/// directory otherwise.
pub fn storage_from_config(config: &crate::ControlPlaneConfig) -> anyhow::Result<Arc<dyn FileStorage>> {
    match &config.s3_storage {
        Some(s3) => {
            tracing::info!(bucket = %s3.bucket, endpoint = s3.endpoint.as_deref().unwrap_or("AWS"), prefix = %s3.prefix, "marketplace files are stored in S3");
            Ok(Arc::new(crate::s3_storage::S3Storage::new(s3)?))
        }
        None => Ok(Arc::new(LocalStorage::new(&config.data_dir))),
    }
}

/// Returns the relative name of a file: `{kind}s/{sha256}.{wasm|tar.gz}`.
pub(crate) fn file_name(kind: &str, sha256: &str) -> String {
    let extension = if kind == crate::store::marketplace::kind::PLUGIN { "wasm" } else { "tar.gz" };
    format!("{kind}s/{sha256}.{extension}")
}

pub(crate) fn is_hex_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[async_trait::async_trait]
impl FileStorage for LocalStorage {
    async fn put(&self, kind: &str, bytes: &[u8]) -> anyhow::Result<String> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let path = self.path(kind, &sha256);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(sha256);
        }
        let dir = path.parent().context("a file path has a parent folder")?;
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("failed to create {}", dir.display()))?;
        // Write to a temporary name and rename, so a reader never sees a partial file.
        let temp = dir.join(format!(".{sha256}.{}.tmp", uuid::Uuid::new_v4()));
        tokio::fs::write(&temp, bytes)
            .await
            .with_context(|| format!("failed to write {}", temp.display()))?;
        if let Err(error) = tokio::fs::rename(&temp, &path).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(error).with_context(|| format!("failed to rename {} to {}", temp.display(), path.display()));
        }
        Ok(sha256)
    }

    async fn get(&self, kind: &str, sha256: &str) -> anyhow::Result<Option<Vec<u8>>> {
        if !is_hex_sha256(sha256) {
            return Ok(None);
        }
        let path = self.path(kind, sha256);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).with_context(|| format!("failed to read {}", path.display())),
        }
    }

    async fn delete(&self, kind: &str, sha256: &str) -> anyhow::Result<()> {
        if !is_hex_sha256(sha256) {
            return Ok(());
        }
        let path = self.path(kind, sha256);
        match tokio::fs::remove_file(&path).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(error).with_context(|| format!("failed to delete {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}

/// Serves plugin files from marketplace storage to edges in this process.
pub struct StoragePluginSource {
    storage: Arc<dyn FileStorage>,
}

impl StoragePluginSource {
    pub fn new(storage: Arc<dyn FileStorage>) -> StoragePluginSource {
        StoragePluginSource { storage }
    }
}

#[async_trait::async_trait]
impl PluginSource for StoragePluginSource {
    async fn plugin(&self, checksum: &str) -> Result<Arc<[u8]>, FeedError> {
        let Some(hex) = mockforge_plugins::checksum_hex(checksum) else {
            return Err(FeedError::Rejected(format!("invalid plugin checksum {checksum:?}")));
        };
        match self.storage.get(crate::store::marketplace::kind::PLUGIN, hex).await {
            Ok(Some(bytes)) => Ok(Arc::from(bytes)),
            Ok(None) => Err(FeedError::Rejected(format!("no plugin file with checksum {checksum}"))),
            Err(error) => Err(FeedError::Unavailable(format!("{error:#}"))),
        }
    }
}

/// Checks that `wasm` is a component implementing one of the plugin worlds the edges support
/// (`mockforge:plugin/plugin@0.2.0` or `@0.1.0`). Compiles the component, so call it on a
/// blocking thread.
pub fn validate_plugin(wasm: &[u8]) -> Result<(), String> {
    static HOST: OnceLock<Result<PluginHost, String>> = OnceLock::new();
    // One instance slot is enough: validation compiles and type-checks but never instantiates.
    let host = HOST.get_or_init(|| {
        PluginHost::new(PluginHostConfig {
            max_instances: 1,
            ..PluginHostConfig::default()
        })
        .map_err(|error| error.to_string())
    });
    match host {
        Ok(host) => host.validate(wasm).map(|_| ()).map_err(|error| error.to_string()),
        Err(error) => Err(format!("the plugin validator failed to start: {error}")),
    }
}

/// Checks a `tar.gz` package: every entry is a regular file or a folder with a relative path
/// without `..`, there are at most [`MAX_PACKAGE_ENTRIES`] entries, and the unpacked size stays
/// within `max_unpacked_bytes`. Returns the number of files.
pub fn validate_package(bytes: &[u8], max_unpacked_bytes: u64) -> Result<usize, String> {
    // The limit stops a decompression bomb before it fills memory or disk.
    let exceeded = Rc::new(Cell::new(false));
    let reader = LimitedReader {
        inner: flate2::read::GzDecoder::new(bytes),
        remaining: max_unpacked_bytes,
        exceeded: exceeded.clone(),
    };
    let too_large = || format!("the package unpacks to more than {max_unpacked_bytes} bytes");
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|error| format!("the package is not a tar.gz archive: {error}"))?;
    let mut files = 0;
    for (index, entry) in entries.enumerate() {
        if exceeded.get() {
            return Err(too_large());
        }
        if index >= MAX_PACKAGE_ENTRIES {
            return Err(format!("the package has more than {MAX_PACKAGE_ENTRIES} entries"));
        }
        let mut entry = entry.map_err(|error| {
            if exceeded.get() {
                too_large()
            } else {
                format!("the package is not a valid tar.gz archive: {error}")
            }
        })?;
        let path = entry
            .path()
            .map_err(|error| format!("entry {index} has an invalid path: {error}"))?
            .into_owned();
        check_entry_path(&path)?;
        match entry.header().entry_type() {
            tar::EntryType::Regular => files += 1,
            tar::EntryType::Directory => {}
            other => {
                return Err(format!(
                    "entry {} is a {other:?} entry; packages may contain only regular files and folders",
                    path.display()
                ))
            }
        }
        // Reading the entry consumes its data, so the size limit covers every byte.
        std::io::copy(&mut entry, &mut std::io::sink()).map_err(|error| {
            if exceeded.get() {
                too_large()
            } else {
                format!("failed to read entry {}: {error}", path.display())
            }
        })?;
    }
    if exceeded.get() {
        return Err(too_large());
    }
    Ok(files)
}

/// A reader that fails once more than `remaining` bytes were read, and records that it did.
struct LimitedReader<R> {
    inner: R,
    remaining: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        match self.remaining.checked_sub(read as u64) {
            Some(remaining) => {
                self.remaining = remaining;
                Ok(read)
            }
            None => {
                self.exceeded.set(true);
                Err(std::io::Error::other("the unpacked size limit is exceeded"))
            }
        }
    }
}

fn check_entry_path(path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("an entry has an empty path".to_owned());
    }
    for component in path.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("entry {} contains `..`; paths must stay inside the package", path.display()))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("entry {} is an absolute path; paths must be relative", path.display()))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (path, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // `set_path` rejects `..`, so the name is written into the raw header field.
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            if *kind == tar::EntryType::Symlink {
                header.set_link_name("/etc/passwd").unwrap();
            }
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn package_accepts_relative_files() {
        let bytes = package(&[("dir/", tar::EntryType::Directory, b""), ("dir/a.json", tar::EntryType::Regular, b"{}")]);
        assert_eq!(validate_package(&bytes, 64 * 1024), Ok(1));
    }

    #[test]
    fn package_rejects_escapes_and_links() {
        for (path, kind) in [
            ("../evil", tar::EntryType::Regular),
            ("a/../../evil", tar::EntryType::Regular),
            ("/etc/evil", tar::EntryType::Regular),
            ("link", tar::EntryType::Symlink),
            ("hard", tar::EntryType::Link),
        ] {
            let bytes = package(&[(path, kind, b"")]);
            assert!(validate_package(&bytes, 64 * 1024).is_err(), "{path} {kind:?}");
        }
    }

    #[test]
    fn package_rejects_oversized_content() {
        let bytes = package(&[("big", tar::EntryType::Regular, &[0u8; 128 * 1024])]);
        let error = validate_package(&bytes, 64 * 1024).unwrap_err();
        assert_eq!(error, "the package unpacks to more than 65536 bytes");
    }

    #[test]
    fn package_rejects_non_archives() {
        assert!(validate_package(b"plain text", 64 * 1024).is_err());
    }
}
