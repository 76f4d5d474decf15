//! Marketplace files in an S3-compatible bucket, through the `object_store` crate.
//!
//! Objects use the same layout as [`LocalStorage`](crate::marketplace::LocalStorage):
//! `{prefix}/{kind}s/{sha256}.{wasm|tar.gz}`.

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

use crate::marketplace::{file_name, is_hex_sha256, FileStorage};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bucket settings of the S3 backend. The endpoint is operator configuration, never tenant
/// input, so requests to it need no SSRF guard (unlike the fetches of customers' documents).
#[derive(Clone, PartialEq, Eq)]
pub struct S3StorageConfig {
    pub bucket: String,
    /// Base URL of the S3 API, for example `http://minio:9000` (plain HTTP is allowed). `None`
    /// selects AWS, `https://s3.{region}.amazonaws.com`.
    pub endpoint: Option<String>,
    pub region: String,
    /// Path-style requests (`{endpoint}/{bucket}/{key}`), which MinIO and most other
    /// S3-compatible servers need. With `false`, `endpoint` must already name the bucket host.
    pub path_style: bool,
    /// Key prefix of every object, without leading or trailing `/`. Empty for none.
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for S3StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The credentials stay out of logs and error messages.
        f.debug_struct("S3StorageConfig")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Marketplace files in an S3 bucket.
#[derive(Debug)]
pub struct S3Storage {
    store: AmazonS3,
    prefix: String,
}

impl S3Storage {
    /// Builds the client. Nothing is sent to the bucket until the first request.
    pub fn new(config: &S3StorageConfig) -> anyhow::Result<S3Storage> {
        // Static keys are required: without them `object_store` would ask the instance metadata
        // service for credentials.
        anyhow::ensure!(
            !config.access_key_id.is_empty() && !config.secret_access_key.is_empty(),
            "S3 storage of bucket {:?} needs an access key id and a secret access key",
            config.bucket
        );
        let plain_http = config.endpoint.as_deref().is_some_and(|endpoint| endpoint.starts_with("http://"));
        let options = ClientOptions::new()
            .with_allow_http(plain_http)
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT);
        let mut builder = AmazonS3Builder::new();
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let store = builder
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_client_options(options)
            .build()
            .with_context(|| format!("invalid S3 storage settings for bucket {:?}", config.bucket))?;
        Ok(S3Storage { store, prefix: config.prefix.trim_matches('/').to_owned() })
    }

    fn key(&self, kind: &str, sha256: &str) -> ObjectPath {
        let name = file_name(kind, sha256);
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }
}

#[async_trait::async_trait]
impl FileStorage for S3Storage {
    async fn put(&self, kind: &str, bytes: &[u8]) -> anyhow::Result<String> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let key = self.key(kind, &sha256);
        match self.store.head(&key).await {
            Ok(_) => return Ok(sha256),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(error).with_context(|| format!("failed to check S3 object {key}")),
        }
        // A single PUT replaces the object whole, so a reader never sees a partial file.
        self.store
            .put(&key, PutPayload::from(bytes.to_vec()))
            .await
            .with_context(|| format!("failed to write S3 object {key}"))?;
        tracing::debug!(%key, bytes = bytes.len(), "stored a marketplace file in S3");
        Ok(sha256)
    }

    async fn get(&self, kind: &str, sha256: &str) -> anyhow::Result<Option<Vec<u8>>> {
        if !is_hex_sha256(sha256) {
            return Ok(None);
        }
        let key = self.key(kind, sha256);
        let result = match self.store.get(&key).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error).with_context(|| format!("failed to read S3 object {key}")),
        };
        let bytes = result.bytes().await.with_context(|| format!("failed to read S3 object {key}"))?;
        Ok(Some(bytes.to_vec()))
    }

    async fn delete(&self, kind: &str, sha256: &str) -> anyhow::Result<()> {
        if !is_hex_sha256(sha256) {
            return Ok(());
        }
        let key = self.key(kind, sha256);
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error).with_context(|| format!("failed to delete S3 object {key}")),
        }
    }
}
