//! The snapshot protocol between the control plane and edge nodes in other processes.
//!
//! A remote edge receives deployment headers without documents and fetches each document it
//! lacks by content hash, so an unchanged document crosses the network once per edge.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DeploymentRecord, PlanLimits};

/// Redis pub/sub channel on which the control plane publishes each new configuration version, as
/// decimal text.
pub const REDIS_VERSION_CHANNEL: &str = "mockforge:config-version";

/// A [`DeploymentRecord`] without its document, which the edge fetches by `document_sha256`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentHeader {
    pub id: Uuid,
    pub org_id: Uuid,
    pub org_slug: String,
    pub slug: String,
    pub plan: String,
    /// Hex SHA-256 of the OpenAPI document.
    pub document_sha256: String,
    pub config: serde_json::Value,
    /// See [`DeploymentRecord::period_start`].
    #[serde(default)]
    pub period_start: Option<i64>,
    /// See [`DeploymentRecord::limit_overrides`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_overrides: Option<PlanLimits>,
}

impl DeploymentHeader {
    /// Returns the header of `record`.
    pub fn of(record: &DeploymentRecord) -> DeploymentHeader {
        DeploymentHeader {
            id: record.id,
            org_id: record.org_id,
            org_slug: record.org_slug.clone(),
            slug: record.slug.clone(),
            plan: record.plan.clone(),
            document_sha256: record.document_sha256.clone(),
            config: record.config.clone(),
            period_start: record.period_start,
            limit_overrides: record.limit_overrides.clone(),
        }
    }

    /// Builds the full record with the document whose hash is `document_sha256`.
    pub fn into_record(self, document: Arc<str>) -> DeploymentRecord {
        DeploymentRecord {
            id: self.id,
            org_id: self.org_id,
            org_slug: self.org_slug,
            slug: self.slug,
            plan: self.plan,
            document,
            document_sha256: self.document_sha256,
            config: self.config,
            period_start: self.period_start,
            limit_overrides: self.limit_overrides,
        }
    }
}

/// The body of `GET /internal/v1/snapshot?since=V`: a [`crate::SnapshotDelta`] whose upserts
/// carry document hashes instead of documents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteDelta {
    /// The configuration version this delta brings the edge to.
    pub version: u64,
    /// True when `upserts` lists every served deployment.
    pub full: bool,
    pub upserts: Vec<DeploymentHeader>,
    pub removals: Vec<Uuid>,
}

/// The body of `GET /internal/v1/wait`: the configuration version when the request returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionReply {
    pub version: u64,
}

/// The path by which an edge learns about new configuration versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationMode {
    /// Redis pub/sub messages, with a slow poll as a safety net.
    Redis,
    /// Long-poll requests to the control plane.
    #[default]
    LongPoll,
}

/// The body of `POST /internal/v1/heartbeat`, sent by each edge every few seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Name the edge uses in its logs; the control plane records the name of the node token.
    pub node: String,
    /// Region the edge serves, for example `eu-west`.
    pub region: String,
    /// The configuration version of the snapshot the edge serves.
    pub version: u64,
    /// Ids of the deployments the edge serves.
    pub deployments: Vec<Uuid>,
    pub notification: NotificationMode,
}
