//! Account deletion on request (GDPR): the account is locked at once and its data deleted after a
//! grace period.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use super::anonymise::{anonymise_description, anonymise_metadata, DeletedIdentity};
use super::AuditEntry;

/// Effects of a purge that reach beyond the database.
#[derive(Debug, Clone, Default)]
pub struct Purge {
    /// The configuration version after removing the deleted deployments, if there were any.
    pub version: Option<u64>,
    /// SHA-256 of the OpenAPI documents of the deleted deployments.
    pub documents: Vec<String>,
    /// Number of audit entries that were anonymised.
    pub anonymised_audit_entries: usize,
    /// Marketplace files (kind and hex SHA-256) of the deleted organizations' package versions.
    pub package_files: Vec<(String, String)>,
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
    /// (with deployments, tokens and telemetry), their memberships, tokens and login records.
    /// Audit entries, including those of the deleted organizations, are kept and anonymised in
    /// the same transaction. The user's own entries lose the user id, IP address, user agent and
    /// actor metadata. No entry keeps the user's e-mail address or id.
    async fn purge_user(&self, user_id: Uuid) -> Result<Purge, sqlx::Error>;
    /// Returns whether a published package version still refers to the marketplace file.
    async fn package_file_in_use(&self, kind: &str, sha256: &str) -> Result<bool, sqlx::Error>;
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
    // The organization's audit entries are kept: `audit_logs.org_id` has no foreign key.
    "DELETE FROM marketplace_versions WHERE EXISTS (SELECT 1 FROM marketplace_packages p \
     WHERE p.kind = marketplace_versions.kind AND p.name = marketplace_versions.name AND p.org_id = $1)",
    "DELETE FROM marketplace_packages WHERE org_id = $1",
    "DELETE FROM organization_members WHERE org_id = $1",
    "DELETE FROM organizations WHERE id = $1",
];

/// Statements that delete or anonymise the user's own rows, after their audit entries are
/// anonymised. Each takes the user id as `$1`.
const DELETE_USER: &[&str] = &[
    "DELETE FROM api_tokens WHERE user_id = $1",
    "DELETE FROM organization_members WHERE user_id = $1",
    "DELETE FROM login_addresses WHERE user_id = $1",
    "DELETE FROM login_failures WHERE email = (SELECT email FROM users WHERE id = $1)",
    "DELETE FROM email_verification_tokens WHERE user_id = $1",
    "DELETE FROM support_tickets WHERE user_id = $1",
    "UPDATE suspicious_activities SET user_id = NULL, ip_address = NULL WHERE user_id = $1",
    "UPDATE suspicious_activities SET resolved_by = NULL WHERE resolved_by = $1",
    "DELETE FROM users WHERE id = $1",
];

/// Audit entries to anonymise: the user's own, and any other whose description or metadata
/// contains the user's e-mail address (`$2`) or id (`$3`) as `LIKE` patterns.
// NOTE: the text match scans the whole audit log once per deleted account.
const SELECT_AUDIT_MENTIONS: &str = "SELECT seq, user_id, description, metadata, ip_address, user_agent FROM audit_logs \
     WHERE user_id = $1 \
     OR LOWER(description) LIKE $2 ESCAPE '\\' OR LOWER(CAST(metadata AS TEXT)) LIKE $2 ESCAPE '\\' \
     OR LOWER(description) LIKE $3 ESCAPE '\\' OR LOWER(CAST(metadata AS TEXT)) LIKE $3 ESCAPE '\\'";

const UPDATE_AUDIT_ENTRY: &str =
    "UPDATE audit_logs SET user_id = $2, description = $3, metadata = $4, ip_address = $5, user_agent = $6 WHERE seq = $1";

macro_rules! deletion_store {
    ($module:ident, $db:ty, $begin:literal) => {
        pub(crate) mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;
            type Tx = sqlx::Transaction<'static, $db>;

            /// Anonymises, inside `tx`, every audit entry that identifies the user: their own
            /// entries lose the user id, IP address, user agent and the actor keys of the
            /// metadata, and in every entry the user's e-mail address and id are replaced.
            /// Returns the number of entries changed. Must run before the user row is deleted.
            async fn anonymise_audit_entries(tx: &mut Tx, user_id: Uuid) -> Result<usize, sqlx::Error> {
                let Some(user) = sqlx::query("SELECT email FROM users WHERE id = $1").bind(user_id).fetch_optional(&mut **tx).await? else {
                    return Ok(0);
                };
                let identity = DeletedIdentity { user_id, email: user.try_get("email")? };
                let (email_pattern, id_pattern) = identity.like_patterns();
                let rows = sqlx::query(SELECT_AUDIT_MENTIONS)
                    .bind(user_id)
                    .bind(email_pattern)
                    .bind(id_pattern)
                    .fetch_all(&mut **tx)
                    .await?;
                let mut changed = 0;
                for row in &rows {
                    let seq: i64 = row.try_get("seq")?;
                    let mut entry_user: Option<Uuid> = row.try_get("user_id")?;
                    let mut ip_address: Option<String> = row.try_get("ip_address")?;
                    let mut user_agent: Option<String> = row.try_get("user_agent")?;
                    let description: String = row.try_get("description")?;
                    let Json(mut metadata): Json<serde_json::Value> = row.try_get("metadata")?;
                    let own_entry = entry_user == Some(user_id);
                    if own_entry {
                        entry_user = None;
                        ip_address = None;
                        user_agent = None;
                    }
                    anonymise_metadata(&mut metadata, &identity, own_entry);
                    sqlx::query(UPDATE_AUDIT_ENTRY)
                        .bind(seq)
                        .bind(entry_user)
                        .bind(anonymise_description(&description, &identity))
                        .bind(Json(&metadata))
                        .bind(ip_address)
                        .bind(user_agent)
                        .execute(&mut **tx)
                        .await?;
                    changed += 1;
                }
                Ok(changed)
            }

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
                        let files = sqlx::query(
                            "SELECT v.kind, v.sha256 FROM marketplace_versions v JOIN marketplace_packages p \
                             ON p.kind = v.kind AND p.name = v.name WHERE p.org_id = $1",
                        )
                        .bind(org_id)
                        .fetch_all(&mut *tx)
                        .await?;
                        for file in files {
                            purge.package_files.push((file.try_get("kind")?, file.try_get("sha256")?));
                        }
                        for statement in DELETE_ORGANIZATION {
                            sqlx::query(*statement).bind(org_id).execute(&mut *tx).await?;
                        }
                    }
                    purge.anonymised_audit_entries = anonymise_audit_entries(&mut tx, user_id).await?;
                    for statement in DELETE_USER {
                        sqlx::query(*statement).bind(user_id).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    purge.documents.sort();
                    purge.documents.dedup();
                    purge.package_files.sort();
                    purge.package_files.dedup();
                    Ok(purge)
                }

                async fn package_file_in_use(&self, kind: &str, sha256: &str) -> Result<bool, sqlx::Error> {
                    let row = sqlx::query("SELECT 1 AS used FROM marketplace_versions WHERE kind = $1 AND sha256 = $2 LIMIT 1")
                        .bind(kind)
                        .bind(sha256)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(row.is_some())
                }
            }
        }
    };
}

deletion_store!(sqlite, sqlx::Sqlite, "BEGIN IMMEDIATE");
deletion_store!(postgres, sqlx::Postgres, "BEGIN");
