//! Account deletion on request (GDPR): the account is locked at once and its data deleted after a
//! grace period.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::AuditEntry;

/// Effects of a purge that reach beyond the database.
#[derive(Debug, Clone, Default)]
pub struct Purge {
    /// The configuration version after removing the deleted deployments, if there were any.
    pub version: Option<u64>,
    /// SHA-256 of the OpenAPI documents of the deleted deployments.
    pub documents: Vec<String>,
}

#[async_trait::async_trait]
pub trait DeletionStore: Send + Sync {
    /// Locks the account: sets `deletion_scheduled_at`, increments the token generation (revoking
    /// every JWT) and deletes the user's API tokens, with `audit`, in one transaction. Returns
    /// `false` when a deletion is already scheduled.
    async fn schedule_deletion(&self, user_id: Uuid, at: DateTime<Utc>, audit: &AuditEntry) -> Result<bool, sqlx::Error>;
    /// Ids of users whose deletion is due at `now`.
    async fn due_deletions(&self, now: DateTime<Utc>) -> Result<Vec<Uuid>, sqlx::Error>;
    /// Deletes the user in one transaction: the organizations they own without another owner
    /// (with deployments, tokens, telemetry and audit log), their memberships, tokens and login
    /// records. Their audit entries elsewhere lose the user id, IP address and user agent.
    async fn purge_user(&self, user_id: Uuid) -> Result<Purge, sqlx::Error>;
    /// Returns whether any deployment still refers to the document.
    async fn document_in_use(&self, sha256: &str) -> Result<bool, sqlx::Error>;
}

/// Statements that delete an organization's rows, children first. Each takes the organization id
/// as `$1`.
const DELETE_ORGANIZATION: &[&str] = &[
    "DELETE FROM deployment_status_counts WHERE deployment_id IN (SELECT id FROM deployments WHERE org_id = $1)",
    "DELETE FROM deployment_latency_buckets WHERE deployment_id IN (SELECT id FROM deployments WHERE org_id = $1)",
    "DELETE FROM deployment_metrics WHERE org_id = $1",
    "DELETE FROM deployment_logs WHERE org_id = $1",
    "DELETE FROM request_logs WHERE org_id = $1",
    "DELETE FROM deployments WHERE org_id = $1",
    "DELETE FROM org_usage_daily WHERE org_id = $1",
    "DELETE FROM subscriptions WHERE org_id = $1",
    "DELETE FROM suspicious_activities WHERE org_id = $1",
    "DELETE FROM byok_settings WHERE org_id = $1",
    "DELETE FROM support_tickets WHERE org_id = $1",
    "DELETE FROM api_tokens WHERE org_id = $1",
    // NOTE: the organization's audit entries go with it, because each entry refers to an
    // existing organization. Entries of the user in other organizations are kept anonymised.
    "DELETE FROM audit_logs WHERE org_id = $1",
    // TODO: the package files in marketplace storage are not deleted yet.
    "DELETE FROM marketplace_versions WHERE EXISTS (SELECT 1 FROM marketplace_packages p \
     WHERE p.kind = marketplace_versions.kind AND p.name = marketplace_versions.name AND p.org_id = $1)",
    "DELETE FROM marketplace_packages WHERE org_id = $1",
    "DELETE FROM organization_members WHERE org_id = $1",
    "DELETE FROM organizations WHERE id = $1",
];

/// Statements that delete or anonymise the user's own rows. Each takes the user id as `$1`.
const DELETE_USER: &[&str] = &[
    "DELETE FROM api_tokens WHERE user_id = $1",
    "DELETE FROM organization_members WHERE user_id = $1",
    "DELETE FROM login_addresses WHERE user_id = $1",
    "DELETE FROM login_failures WHERE email = (SELECT email FROM users WHERE id = $1)",
    "DELETE FROM email_verification_tokens WHERE user_id = $1",
    "DELETE FROM support_tickets WHERE user_id = $1",
    "UPDATE suspicious_activities SET user_id = NULL, ip_address = NULL WHERE user_id = $1",
    "UPDATE suspicious_activities SET resolved_by = NULL WHERE resolved_by = $1",
    "UPDATE audit_logs SET user_id = NULL, ip_address = NULL, user_agent = NULL WHERE user_id = $1",
    "DELETE FROM users WHERE id = $1",
];

macro_rules! deletion_store {
    ($module:ident, $begin:literal) => {
        pub(crate) mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;

            #[async_trait::async_trait]
            impl DeletionStore for Store {
                async fn schedule_deletion(&self, user_id: Uuid, at: DateTime<Utc>, audit: &AuditEntry) -> Result<bool, sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let locked = sqlx::query(
                        "UPDATE users SET deletion_scheduled_at = $2, token_generation = token_generation + 1 \
                         WHERE id = $1 AND deletion_scheduled_at IS NULL",
                    )
                    .bind(user_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    if locked.rows_affected() == 0 {
                        return Ok(false);
                    }
                    sqlx::query("DELETE FROM api_tokens WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                    crate::store::accounts::$module::insert_audit(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn due_deletions(&self, now: DateTime<Utc>) -> Result<Vec<Uuid>, sqlx::Error> {
                    let rows = sqlx::query("SELECT id FROM users WHERE deletion_scheduled_at <= $1")
                        .bind(now)
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(|row| row.try_get("id")).collect()
                }

                async fn purge_user(&self, user_id: Uuid) -> Result<Purge, sqlx::Error> {
                    let mut purge = Purge::default();
                    let mut tx = self.pool.begin_with($begin).await?;
                    let owned = sqlx::query("SELECT id FROM organizations WHERE owner_id = $1")
                        .bind(user_id)
                        .fetch_all(&mut *tx)
                        .await?;
                    for row in owned {
                        let org_id: Uuid = row.try_get("id")?;
                        let other_owner = sqlx::query(
                            "SELECT user_id FROM organization_members WHERE org_id = $1 AND user_id <> $2 AND role = 'owner' \
                             ORDER BY joined_at LIMIT 1",
                        )
                        .bind(org_id)
                        .bind(user_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if let Some(other) = other_owner {
                            let other: Uuid = other.try_get("user_id")?;
                            sqlx::query("UPDATE organizations SET owner_id = $1 WHERE id = $2")
                                .bind(other)
                                .bind(org_id)
                                .execute(&mut *tx)
                                .await?;
                            continue;
                        }

                        let deployments = sqlx::query("SELECT id, status, document_sha256 FROM deployments WHERE org_id = $1")
                            .bind(org_id)
                            .fetch_all(&mut *tx)
                            .await?;
                        for deployment in deployments {
                            let id: Uuid = deployment.try_get("id")?;
                            let status: String = deployment.try_get("status")?;
                            purge.documents.push(deployment.try_get("document_sha256")?);
                            // The change lets edges following the feed remove the deployment.
                            if status != crate::store::status::DELETED {
                                let version = crate::store::sql::$module::record_change(&mut tx, id, crate::store::change::DELETED).await?;
                                purge.version = Some(version);
                            }
                        }
                        for statement in DELETE_ORGANIZATION {
                            sqlx::query(*statement).bind(org_id).execute(&mut *tx).await?;
                        }
                    }
                    for statement in DELETE_USER {
                        sqlx::query(*statement).bind(user_id).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    purge.documents.sort();
                    purge.documents.dedup();
                    Ok(purge)
                }

                async fn document_in_use(&self, sha256: &str) -> Result<bool, sqlx::Error> {
                    let row = sqlx::query("SELECT 1 AS used FROM deployments WHERE document_sha256 = $1 LIMIT 1")
                        .bind(sha256)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(row.is_some())
                }
            }
        }
    };
}

deletion_store!(sqlite, "BEGIN IMMEDIATE");
deletion_store!(postgres, "BEGIN");
