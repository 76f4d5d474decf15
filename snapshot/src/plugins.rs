//! Plugin files for edges: the control plane stores them, and an edge fetches the ones its
//! deployments use while it builds a snapshot.

use std::sync::Arc;

use crate::FeedError;

/// Where an edge gets the WebAssembly file of a plugin.
///
/// A deployment names its plugins in `config.plugins` as
/// `[{"name", "version", "checksum", "config"}]`, where the control plane writes `checksum`
/// (`sha256:` and 64 hex digits) when the deployment is created.
#[async_trait::async_trait]
pub trait PluginSource: Send + Sync + 'static {
    /// Returns the file whose SHA-256 is `checksum`. A plugin the source does not have is
    /// `FeedError::Rejected`.
    async fn plugin(&self, checksum: &str) -> Result<Arc<[u8]>, FeedError>;
}
