//! The in-process [`SnapshotFeed`]: edges follow the configuration version and fetch the
//! deployments that changed.
//!
//! Every serving-relevant change increments `config_version` and inserts a `config_changes` row in
//! the transaction of the change itself. After the commit the handler calls [`Feed::notify`],
//! which wakes waiting edges and, with Redis configured, publishes the version on
//! [`VERSION_CHANNEL`]. Commits of other replicas reach the waiters through
//! [`crate::version_sync`].

use std::sync::Arc;
use std::time::Duration;

use mockforge_snapshot::{ApplyOutcome, ApplyReport, DeploymentRecord, FeedError, SnapshotDelta, SnapshotFeed};
use tokio::sync::watch;

use crate::artifacts::ArtifactStore;
use crate::store::{status, Deployment, SharedStore};

/// Redis channel on which each new configuration version is published.
pub const VERSION_CHANNEL: &str = "mockforge:config-version";

pub struct Feed {
    store: SharedStore,
    artifacts: Arc<ArtifactStore>,
    version: watch::Sender<u64>,
    redis: Option<redis::aio::ConnectionManager>,
}

impl Feed {
    pub fn new(
        store: SharedStore,
        artifacts: Arc<ArtifactStore>,
        initial_version: u64,
        redis: Option<redis::aio::ConnectionManager>,
    ) -> Self {
        let (version, _) = watch::channel(initial_version);
        Self { store, artifacts, version, redis }
    }

    /// Announces a committed configuration version.
    pub fn notify(&self, version: u64) {
        self.advance(version);
        if let Some(redis) = &self.redis {
            let mut connection = redis.clone();
            tokio::spawn(async move {
                let published: redis::RedisResult<i64> =
                    redis::cmd("PUBLISH").arg(VERSION_CHANNEL).arg(version).query_async(&mut connection).await;
                if let Err(error) = published {
                    tracing::warn!(%error, version, "failed to publish the configuration version to Redis");
                }
            });
        }
    }

    /// Wakes the waiters of this process when `version` is newer than the last one seen.
    pub(crate) fn advance(&self, version: u64) {
        self.version.send_if_modified(|current| {
            if version > *current {
                *current = version;
                true
            } else {
                false
            }
        });
    }

    /// Returns the number of calls waiting in [`SnapshotFeed::wait_for_change`].
    pub(crate) fn waiters(&self) -> usize {
        self.version.receiver_count()
    }

    pub(crate) fn store(&self) -> &SharedStore {
        &self.store
    }

    async fn record(&self, deployment: Deployment) -> Result<DeploymentRecord, FeedError> {
        let document = self.artifacts.get(&deployment.document_sha256).await.map_err(unavailable)?.ok_or_else(|| {
            tracing::error!(deployment_id = %deployment.id, sha256 = %deployment.document_sha256, "a running deployment's document is not stored");
            FeedError::Unavailable(format!("the document of deployment {} is not stored", deployment.id))
        })?;
        let period_start = quota_period_start(&deployment);
        Ok(DeploymentRecord {
            id: deployment.id,
            org_id: deployment.org_id,
            org_slug: deployment.org_slug,
            slug: deployment.slug,
            plan: deployment.org_plan,
            document: Arc::from(document),
            document_sha256: deployment.document_sha256,
            config: deployment.config_json,
            period_start: Some(period_start),
            limit_overrides: deployment.org_limit_overrides,
        })
    }

    async fn full_snapshot(&self, version: u64) -> Result<SnapshotDelta, FeedError> {
        let deployments = self.store.running_deployments().await.map_err(unavailable)?;
        let mut upserts = Vec::with_capacity(deployments.len());
        for deployment in deployments {
            upserts.push(self.record(deployment).await?);
        }
        Ok(SnapshotDelta { version, full: true, upserts, removals: Vec::new() })
    }
}

/// Returns the start of one of the organization's 30-day quota periods, in Unix seconds (see
/// [`crate::quota_period`]).
pub(crate) fn quota_period_start(deployment: &Deployment) -> i64 {
    crate::quota_period::anchor(deployment.org_period_start, deployment.org_created_at)
}

fn unavailable(error: sqlx::Error) -> FeedError {
    tracing::error!(%error, "snapshot feed query failed");
    FeedError::Unavailable(format!("database query failed: {error}"))
}

#[async_trait::async_trait]
impl SnapshotFeed for Feed {
    async fn changes_since(&self, version: u64) -> Result<SnapshotDelta, FeedError> {
        // The version is read before the deployments, so a change committed in between is
        // delivered again by the next call rather than lost.
        let current = self.store.config_version().await.map_err(unavailable)?;
        // A version from the future belongs to another database: start over with everything.
        if version == 0 || version > current {
            return self.full_snapshot(current).await;
        }
        let mut delta = SnapshotDelta { version: current, full: false, ..SnapshotDelta::default() };
        if version == current {
            return Ok(delta);
        }
        for id in self.store.changed_deployments(version, current).await.map_err(unavailable)? {
            match self.store.deployment_any(id).await.map_err(unavailable)? {
                Some(deployment) if status::is_running(&deployment.status) => {
                    delta.upserts.push(self.record(deployment).await?);
                }
                _ => delta.removals.push(id),
            }
        }
        Ok(delta)
    }

    async fn wait_for_change(&self, version: u64, timeout: Duration) -> Result<u64, FeedError> {
        let mut receiver = self.version.subscribe();
        let _ = tokio::time::timeout(timeout, receiver.wait_for(|current| *current > version)).await;
        let current = *receiver.borrow();
        Ok(current)
    }

    async fn report_applied(&self, report: ApplyReport) -> Result<(), FeedError> {
        for (id, outcome) in &report.outcomes {
            let applied = match outcome {
                ApplyOutcome::Served => self.store.mark_served(*id, &report.node).await,
                ApplyOutcome::Failed { reason } => {
                    tracing::warn!(deployment_id = %id, node = %report.node, %reason, "edge failed to compile a deployment");
                    self.store.mark_failed(*id, &report.node, reason).await
                }
            };
            if !applied.map_err(unavailable)? {
                tracing::debug!(deployment_id = %id, node = %report.node, "ignored a report for a deployment that is not running");
            }
        }
        Ok(())
    }
}
