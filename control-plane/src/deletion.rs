//! The background job that deletes accounts whose grace period after a data deletion request has
//! passed. It runs when the control plane starts and then every minute, so a scheduled deletion
//! survives restarts.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::artifacts::ArtifactStore;
use crate::marketplace::FileStorage;
use crate::snapshot::Feed;
use crate::store::SharedStore;

/// Interval between runs of the deletion job.
pub const DELETION_INTERVAL: Duration = Duration::from_secs(60);

/// Deletes every account whose deletion is due, each in its own transaction, and returns how
/// many were deleted. A failed account is logged and retried on the next run.
pub async fn run_due_deletions(
    store: &SharedStore,
    feed: &Feed,
    artifacts: &ArtifactStore,
    files: &dyn FileStorage,
) -> anyhow::Result<usize> {
    let due = store.deletion().due_deletions(crate::store::now()).await?;
    let mut deleted = 0;
    for user_id in due {
        let purge = match store.deletion().purge_user(user_id).await {
            Ok(purge) => purge,
            Err(error) => {
                tracing::error!(%user_id, %error, "failed to delete an account; retrying on the next run");
                continue;
            }
        };
        deleted += 1;
        if let Some(version) = purge.version {
            feed.notify(version);
        }
        // A document can be shared by deployments of other organizations, so only documents no
        // remaining deployment refers to are removed.
        for sha256 in &purge.documents {
            if let Err(error) = artifacts.remove_unused(sha256).await {
                tracing::error!(%user_id, %sha256, %error, "failed to delete a stored document");
            }
        }
        // The same bytes can be published by another organization, so only files no remaining
        // package version refers to are removed.
        // NOTE: a publish of the same bytes between this check and the delete loses its file.
        for (kind, sha256) in &purge.package_files {
            let removed = match store.deletion().package_file_in_use(kind, sha256).await {
                Ok(true) => Ok(()),
                Ok(false) => files.delete(kind, sha256).await,
                Err(error) => Err(error.into()),
            };
            if let Err(error) = removed {
                tracing::error!(%user_id, %kind, %sha256, %error, "failed to delete a marketplace file");
            }
        }
        tracing::info!(
            %user_id,
            version = ?purge.version,
            documents = purge.documents.len(),
            package_files = purge.package_files.len(),
            anonymised_audit_entries = purge.anonymised_audit_entries,
            "deleted an account after its grace period"
        );
    }
    Ok(deleted)
}

/// Runs [`run_due_deletions`] every [`DELETION_INTERVAL`], first one interval from now, until
/// `stop` changes. `ControlPlane::start` runs the first pass itself.
pub(crate) async fn run_periodically(
    store: SharedStore,
    feed: Arc<Feed>,
    artifacts: Arc<ArtifactStore>,
    files: Arc<dyn FileStorage>,
    mut stop: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + DELETION_INTERVAL, DELETION_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if let Err(error) = run_due_deletions(&store, &feed, &artifacts, files.as_ref()).await {
                    tracing::error!(error = format!("{error:#}"), "the account deletion job failed; retrying in a minute");
                }
            }
            _ = stop.changed() => break,
        }
    }
}
