//! Login failures, known login addresses, suspicious activities and JWT revocation by token
//! generation.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use super::{now, AuditEntry};

/// Failed logins inside the lock window, for one e-mail address and for one IP address.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailureCounts {
    pub email: i64,
    /// The oldest failure for the e-mail address inside the window.
    pub email_oldest: Option<DateTime<Utc>>,
    pub ip: i64,
    pub ip_oldest: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct SuspiciousActivity {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Option<Uuid>,
    pub activity_type: String,
    pub severity: String,
    pub description: String,
    pub metadata: Value,
    pub ip_address: Option<String>,
    pub resolved: bool,
    pub resolved_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct SuspiciousQuery {
    pub user_id: Option<Uuid>,
    pub severity: Option<String>,
    pub limit: i64,
}

#[async_trait::async_trait]
pub trait SecurityStore: Send + Sync {
    /// Counts failed logins since `since` for the e-mail and for the IP address.
    async fn login_failures(
        &self,
        email: &str,
        ip_address: &str,
        since: DateTime<Utc>,
    ) -> Result<FailureCounts, sqlx::Error>;
    /// Records a failed login and deletes failures older than `forget_before`.
    async fn record_login_failure(
        &self,
        email: &str,
        ip_address: &str,
        forget_before: DateTime<Utc>,
    ) -> Result<(), sqlx::Error>;
    /// Deletes the failures of an e-mail address after a successful login.
    async fn clear_login_failures(&self, email: &str) -> Result<(), sqlx::Error>;
    /// Remembers a login address. Returns `(first_login, new_address)`: whether the user had
    /// no remembered address before, and whether this address is new.
    async fn remember_login_address(&self, user_id: Uuid, ip_address: &str) -> Result<(bool, bool), sqlx::Error>;

    async fn record_suspicious(&self, activities: &[SuspiciousActivity]) -> Result<(), sqlx::Error>;
    /// Returns the organization's suspicious activities, newest first.
    async fn suspicious_activities(
        &self,
        org_id: Uuid,
        query: &SuspiciousQuery,
    ) -> Result<Vec<SuspiciousActivity>, sqlx::Error>;
    /// Marks an activity of the organization resolved and writes the audit entry, in one
    /// transaction. Returns `false` for an unknown activity.
    async fn resolve_suspicious(
        &self,
        id: Uuid,
        org_id: Uuid,
        resolved_by: Uuid,
        audit: &AuditEntry,
    ) -> Result<bool, sqlx::Error>;

    /// Returns the user's token generation, `None` for an unknown user or one whose deletion is
    /// scheduled.
    async fn token_generation(&self, user_id: Uuid) -> Result<Option<i64>, sqlx::Error>;
    /// Increments the user's token generation, revoking every JWT issued before, and writes the
    /// audit entries, in one transaction. Returns the new generation.
    async fn revoke_sessions(&self, user_id: Uuid, audit: &[AuditEntry]) -> Result<i64, sqlx::Error>;
}

macro_rules! security_store {
    ($module:ident, $db:ty, $row:ty, $begin:literal) => {
        pub(crate) mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;

            fn activity(row: &$row) -> Result<SuspiciousActivity, sqlx::Error> {
                let metadata: Json<Value> = row.try_get("metadata")?;
                Ok(SuspiciousActivity {
                    id: row.try_get("id")?,
                    org_id: row.try_get("org_id")?,
                    user_id: row.try_get("user_id")?,
                    activity_type: row.try_get("activity_type")?,
                    severity: row.try_get("severity")?,
                    description: row.try_get("description")?,
                    metadata: metadata.0,
                    ip_address: row.try_get("ip_address")?,
                    resolved: row.try_get("resolved")?,
                    resolved_by: row.try_get("resolved_by")?,
                    resolved_at: row.try_get("resolved_at")?,
                    created_at: row.try_get("created_at")?,
                })
            }

            #[async_trait::async_trait]
            impl SecurityStore for Store {
                async fn login_failures(
                    &self,
                    email: &str,
                    ip_address: &str,
                    since: DateTime<Utc>,
                ) -> Result<FailureCounts, sqlx::Error> {
                    let by_email = sqlx::query(
                        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM login_failures WHERE email = $1 AND created_at > $2",
                    )
                    .bind(email)
                    .bind(since)
                    .fetch_one(&self.pool)
                    .await?;
                    let by_ip = sqlx::query(
                        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM login_failures WHERE ip_address = $1 AND created_at > $2",
                    )
                    .bind(ip_address)
                    .bind(since)
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(FailureCounts {
                        email: by_email.try_get("n")?,
                        email_oldest: by_email.try_get("oldest")?,
                        ip: by_ip.try_get("n")?,
                        ip_oldest: by_ip.try_get("oldest")?,
                    })
                }

                async fn record_login_failure(
                    &self,
                    email: &str,
                    ip_address: &str,
                    forget_before: DateTime<Utc>,
                ) -> Result<(), sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    sqlx::query("DELETE FROM login_failures WHERE created_at < $1").bind(forget_before).execute(&mut *tx).await?;
                    sqlx::query("INSERT INTO login_failures (email, ip_address, created_at) VALUES ($1, $2, $3)")
                        .bind(email)
                        .bind(ip_address)
                        .bind(now())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                }

                async fn clear_login_failures(&self, email: &str) -> Result<(), sqlx::Error> {
                    sqlx::query("DELETE FROM login_failures WHERE email = $1").bind(email).execute(&self.pool).await?;
                    Ok(())
                }

                async fn remember_login_address(&self, user_id: Uuid, ip_address: &str) -> Result<(bool, bool), sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let row = sqlx::query(
                        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(CASE WHEN ip_address = $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS known \
                         FROM login_addresses WHERE user_id = $1",
                    )
                    .bind(user_id)
                    .bind(ip_address)
                    .fetch_one(&mut *tx)
                    .await?;
                    let count: i64 = row.try_get("n")?;
                    let known: i64 = row.try_get("known")?;
                    if known == 0 {
                        sqlx::query("INSERT INTO login_addresses (user_id, ip_address, first_seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                            .bind(user_id)
                            .bind(ip_address)
                            .bind(now())
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok((count == 0, known == 0))
                }

                async fn record_suspicious(&self, activities: &[SuspiciousActivity]) -> Result<(), sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    for activity in activities {
                        sqlx::query(
                            "INSERT INTO suspicious_activities (id, org_id, user_id, activity_type, severity, description, metadata, \
                             ip_address, resolved, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE, $9)",
                        )
                        .bind(activity.id)
                        .bind(activity.org_id)
                        .bind(activity.user_id)
                        .bind(&activity.activity_type)
                        .bind(&activity.severity)
                        .bind(&activity.description)
                        .bind(Json(&activity.metadata))
                        .bind(&activity.ip_address)
                        .bind(activity.created_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await
                }

                async fn suspicious_activities(
                    &self,
                    org_id: Uuid,
                    query: &SuspiciousQuery,
                ) -> Result<Vec<SuspiciousActivity>, sqlx::Error> {
                    let rows = sqlx::query(
                        "SELECT * FROM suspicious_activities WHERE org_id = $1 AND ($2 IS NULL OR user_id = $2) \
                         AND ($3 IS NULL OR severity = $3) ORDER BY seq DESC LIMIT $4",
                    )
                    .bind(org_id)
                    .bind(query.user_id)
                    .bind(&query.severity)
                    .bind(query.limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(activity).collect()
                }

                async fn resolve_suspicious(
                    &self,
                    id: Uuid,
                    org_id: Uuid,
                    resolved_by: Uuid,
                    audit: &AuditEntry,
                ) -> Result<bool, sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let result = sqlx::query(
                        "UPDATE suspicious_activities SET resolved = TRUE, resolved_by = $3, resolved_at = $4 WHERE id = $1 AND org_id = $2",
                    )
                    .bind(id)
                    .bind(org_id)
                    .bind(resolved_by)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                    if result.rows_affected() == 0 {
                        return Ok(false);
                    }
                    crate::store::accounts::$module::insert_audit(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn token_generation(&self, user_id: Uuid) -> Result<Option<i64>, sqlx::Error> {
                    // A user whose deletion is scheduled is locked and treated as deleted.
                    let row = sqlx::query("SELECT token_generation FROM users WHERE id = $1 AND deletion_scheduled_at IS NULL")
                        .bind(user_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map(|row| row.try_get("token_generation")).transpose()
                }

                async fn revoke_sessions(&self, user_id: Uuid, audit: &[AuditEntry]) -> Result<i64, sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let row = sqlx::query(
                        "UPDATE users SET token_generation = token_generation + 1 WHERE id = $1 RETURNING token_generation",
                    )
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    for entry in audit {
                        crate::store::accounts::$module::insert_audit(&mut tx, entry).await?;
                    }
                    tx.commit().await?;
                    row.try_get("token_generation")
                }
            }
        }
    };
}

security_store!(sqlite, sqlx::Sqlite, sqlx::sqlite::SqliteRow, "BEGIN IMMEDIATE");
security_store!(postgres, sqlx::Postgres, sqlx::postgres::PgRow, "BEGIN");
