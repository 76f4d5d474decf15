//! Edge nodes: the node tokens that authenticate edges to the internal API, the heartbeats they
//! send, and the deployment health derived from those heartbeats.
//!
//! A node token (`mfn_…`) is created by an operator with `mockforge control-plane node-token
//! create`, printed once and stored as a SHA-256 hash, like API tokens. Node tokens and customer
//! tokens are not interchangeable: the internal API accepts only the former, the customer API
//! only the latter.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use chrono::{DateTime, Utc};
use mockforge_snapshot::Heartbeat;
use rand::RngCore;
use sqlx::types::Json;
use sqlx::Row;
use tokio::sync::watch;
use uuid::Uuid;

use crate::auth::hash_token;
use crate::config::ControlPlaneConfig;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{now, status, SharedStore, StoreError};

/// Prefix of every node token.
pub const NODE_TOKEN_PREFIX: &str = "mfn_";
/// Number of leading characters of a node token kept for display, for example `mfn_abcd`.
const DISPLAY_PREFIX_LEN: usize = 8;
/// A node whose last heartbeat is older than this no longer counts as serving anything.
pub const HEARTBEAT_STALE_AFTER: Duration = Duration::from_secs(30);
/// Interval between two recomputations of deployment health from heartbeats.
pub const HEALTH_SWEEP_INTERVAL: Duration = Duration::from_secs(5);
const NAME_MAX: usize = 63;

/// An edge node as stored: its token and its last heartbeat.
#[derive(Debug, Clone)]
pub struct EdgeNode {
    pub id: Uuid,
    pub name: String,
    /// Leading characters of the token, for display.
    pub token_prefix: String,
    pub created_at: DateTime<Utc>,
    pub region: Option<String>,
    /// Configuration version of the snapshot the node served at its last heartbeat.
    pub served_version: Option<u64>,
    /// Deployments the node served at its last heartbeat.
    pub deployments: Vec<Uuid>,
    /// `redis` or `long_poll`, from the last heartbeat.
    pub notification: Option<String>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
}

impl EdgeNode {
    /// Returns true when the node sent a heartbeat within [`HEARTBEAT_STALE_AFTER`] of `at`.
    pub fn is_fresh(&self, at: DateTime<Utc>) -> bool {
        let stale_after = chrono::Duration::from_std(HEARTBEAT_STALE_AFTER).unwrap_or_default();
        self.last_heartbeat_at.is_some_and(|last| at - last <= stale_after)
    }
}

/// Storage of edge nodes, implemented by both SQL stores.
#[async_trait::async_trait]
pub trait NodeStore: Send + Sync {
    /// Inserts a node. A taken name is [`StoreError::Conflict`] on `name`.
    async fn insert_node(&self, id: Uuid, name: &str, token_prefix: &str, token_hash: &str) -> Result<(), StoreError>;
    /// Returns every node, ordered by name.
    async fn nodes(&self) -> Result<Vec<EdgeNode>, sqlx::Error>;
    async fn node_by_token_hash(&self, token_hash: &str) -> Result<Option<EdgeNode>, sqlx::Error>;
    /// Deletes a node and its token. Returns whether it existed.
    async fn delete_node(&self, name: &str) -> Result<bool, sqlx::Error>;
    async fn record_heartbeat(&self, id: Uuid, heartbeat: &Heartbeat) -> Result<(), sqlx::Error>;
    /// Sets the `health_status` of deployments, each to its paired value.
    async fn set_health_statuses(&self, changes: &[(Uuid, &'static str)]) -> Result<(), sqlx::Error>;
}

fn insert_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict { field: "name" },
        _ => StoreError::Database(error),
    }
}

macro_rules! node_store {
    ($store:ty, $row:ty) => {
        impl $store {
            fn node(row: &$row) -> Result<EdgeNode, sqlx::Error> {
                let deployments: Json<Vec<Uuid>> = row.try_get("deployments")?;
                let served_version: Option<i64> = row.try_get("served_version")?;
                Ok(EdgeNode {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    token_prefix: row.try_get("token_prefix")?,
                    created_at: row.try_get("created_at")?,
                    region: row.try_get("region")?,
                    served_version: served_version.map(|version| version as u64),
                    deployments: deployments.0,
                    notification: row.try_get("notification")?,
                    last_heartbeat_at: row.try_get("last_heartbeat_at")?,
                })
            }
        }

        #[async_trait::async_trait]
        impl NodeStore for $store {
            async fn insert_node(&self, id: Uuid, name: &str, token_prefix: &str, token_hash: &str) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO edge_nodes (id, name, token_prefix, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(name)
                .bind(token_prefix)
                .bind(token_hash)
                .bind(now())
                .execute(&self.pool)
                .await
                .map_err(insert_error)?;
                Ok(())
            }

            async fn nodes(&self) -> Result<Vec<EdgeNode>, sqlx::Error> {
                let rows = sqlx::query("SELECT * FROM edge_nodes ORDER BY name").fetch_all(&self.pool).await?;
                rows.iter().map(Self::node).collect()
            }

            async fn node_by_token_hash(&self, token_hash: &str) -> Result<Option<EdgeNode>, sqlx::Error> {
                let row = sqlx::query("SELECT * FROM edge_nodes WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::node).transpose()
            }

            async fn delete_node(&self, name: &str) -> Result<bool, sqlx::Error> {
                let result = sqlx::query("DELETE FROM edge_nodes WHERE name = $1").bind(name).execute(&self.pool).await?;
                Ok(result.rows_affected() > 0)
            }

            async fn record_heartbeat(&self, id: Uuid, heartbeat: &Heartbeat) -> Result<(), sqlx::Error> {
                let notification = match heartbeat.notification {
                    mockforge_snapshot::NotificationMode::Redis => "redis",
                    mockforge_snapshot::NotificationMode::LongPoll => "long_poll",
                };
                sqlx::query(
                    "UPDATE edge_nodes SET region = $2, served_version = $3, deployments = $4, notification = $5, \
                     last_heartbeat_at = $6 WHERE id = $1",
                )
                .bind(id)
                .bind(&heartbeat.region)
                .bind(heartbeat.version as i64)
                .bind(Json(&heartbeat.deployments))
                .bind(notification)
                .bind(now())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn set_health_statuses(&self, changes: &[(Uuid, &'static str)]) -> Result<(), sqlx::Error> {
                if changes.is_empty() {
                    return Ok(());
                }
                let mut tx = self.pool.begin().await?;
                for (id, health) in changes {
                    sqlx::query("UPDATE deployments SET health_status = $2 WHERE id = $1 AND health_status <> $2")
                        .bind(*id)
                        .bind(*health)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }
        }
    };
}

node_store!(crate::store::sql::sqlite::SqlStore, sqlx::sqlite::SqliteRow);
node_store!(crate::store::sql::postgres::SqlStore, sqlx::postgres::PgRow);

/// Generates a node token: `mfn_` followed by 32 random bytes in URL-safe base64 without padding.
pub fn generate_node_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{NODE_TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Checks a node name: 1 to 63 lowercase letters, digits and hyphens, not starting or ending
/// with a hyphen, like a DNS label.
pub fn validate_node_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= NAME_MAX
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    anyhow::ensure!(
        valid,
        "invalid node name {name:?}: expected 1 to {NAME_MAX} lowercase letters, digits and hyphens, such as eu-1"
    );
    Ok(())
}

/// Operator commands on node tokens, with their own database connection.
pub struct NodeTokens {
    store: SharedStore,
}

impl NodeTokens {
    /// Connects to the control plane's database and applies pending migrations.
    pub async fn open(config: &ControlPlaneConfig) -> anyhow::Result<NodeTokens> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("failed to create the data directory {}", config.data_dir.display()))?;
        let (store, _) = crate::store::connect(&config.database_url()).await?;
        store.migrate().await.context("database migration failed")?;
        Ok(NodeTokens { store })
    }

    /// Creates a node and returns its token, which is not stored and cannot be shown again.
    pub async fn create(&self, name: &str) -> anyhow::Result<String> {
        validate_node_name(name)?;
        let token = generate_node_token();
        let prefix = &token[..DISPLAY_PREFIX_LEN];
        match self.store.nodes().insert_node(Uuid::new_v4(), name, prefix, &hash_token(&token)).await {
            Ok(()) => Ok(token),
            Err(StoreError::Conflict { .. }) => {
                anyhow::bail!("a node named {name:?} already exists; revoke it first or choose another name")
            }
            Err(error) => Err(anyhow::Error::new(error).context("failed to store the node token")),
        }
    }

    pub async fn list(&self) -> anyhow::Result<Vec<EdgeNode>> {
        self.store.nodes().nodes().await.context("failed to list nodes")
    }

    /// Deletes the node and its token. Returns false when no node has that name.
    pub async fn revoke(&self, name: &str) -> anyhow::Result<bool> {
        self.store.nodes().delete_node(name).await.context("failed to revoke the node token")
    }
}

/// The edge node a request to the internal API comes from.
#[derive(Debug, Clone)]
pub struct AuthenticatedNode {
    pub id: Uuid,
    pub name: String,
}

impl FromRequestParts<AppState> for AuthenticatedNode {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let token = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).unwrap_or_default().trim();
        if !token.starts_with(NODE_TOKEN_PREFIX) {
            return Err(ApiError::Unauthorized(
                "the internal API requires a node token: send `Authorization: Bearer mfn_...`".to_owned(),
            ));
        }
        let node = state.store.nodes().node_by_token_hash(&hash_token(token)).await?;
        let node = node.ok_or_else(|| ApiError::Unauthorized("invalid or revoked node token".to_owned()))?;
        Ok(AuthenticatedNode { id: node.id, name: node.name })
    }
}

/// Recomputes deployment health every [`HEALTH_SWEEP_INTERVAL`] until `stop` turns true.
pub(crate) async fn sweep_health_periodically(store: SharedStore, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(HEALTH_SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if let Err(error) = sweep_health(&store).await {
                    tracing::warn!(%error, "failed to update deployment health from edge heartbeats");
                }
            }
            _ = stop.changed() => break,
        }
    }
}

/// Sets each running deployment's health from heartbeats: `healthy` when a node with a fresh
/// heartbeat serves it, `unknown` when none does. Failed deployments keep `unhealthy`, and a
/// deployment changed within [`HEARTBEAT_STALE_AFTER`] is left alone until heartbeats catch up.
///
/// Does nothing while no node has ever sent a heartbeat, as in `mockforge serve`, where the
/// in-process edge reports through the feed alone.
async fn sweep_health(store: &SharedStore) -> Result<(), sqlx::Error> {
    let nodes = store.nodes().nodes().await?;
    if nodes.iter().all(|node| node.last_heartbeat_at.is_none()) {
        return Ok(());
    }
    let at = Utc::now();
    let served: HashSet<Uuid> =
        nodes.iter().filter(|node| node.is_fresh(at)).flat_map(|node| node.deployments.iter().copied()).collect();
    let settled_before = at - chrono::Duration::from_std(HEARTBEAT_STALE_AFTER).unwrap_or_default();

    let mut changes = Vec::new();
    for deployment in store.running_deployments().await? {
        if deployment.status == status::FAILED {
            continue;
        }
        let health = if served.contains(&deployment.id) {
            "healthy"
        } else if deployment.updated_at < settled_before {
            "unknown"
        } else {
            continue;
        };
        if deployment.health_status != health {
            changes.push((deployment.id, health));
        }
    }
    if !changes.is_empty() {
        tracing::info!(deployments = changes.len(), "updating deployment health from edge heartbeats");
    }
    store.nodes().set_health_statuses(&changes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_dns_labels() {
        assert!(validate_node_name("eu-1").is_ok());
        assert!(validate_node_name("").is_err());
        assert!(validate_node_name("EU").is_err());
        assert!(validate_node_name("-eu").is_err());
        assert!(validate_node_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn node_tokens_have_their_own_prefix() {
        let token = generate_node_token();
        assert!(token.starts_with(NODE_TOKEN_PREFIX));
        assert!(!token.starts_with(crate::auth::TOKEN_PREFIX));
        assert_eq!(token.len(), 4 + 43);
    }
}
