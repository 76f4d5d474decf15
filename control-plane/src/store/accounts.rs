//! Account features on top of the core store: the audit log and API token writes that record
//! their audit entry in the same transaction.
//!
//! Like `sql.rs`, the SQLite and PostgreSQL implementations are generated from the same SQL by
//! one macro. `sql.rs` calls [`sqlite::insert_audit`] and [`postgres::insert_audit`] inside its
//! own transactions.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use super::ApiToken;

/// One audit log entry: who changed what in an organization, and from where.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: Uuid,
    pub org_id: Uuid,
    /// The acting user. `None` for system actions and after the user's account is deleted.
    pub user_id: Option<Uuid>,
    pub event_type: String,
    pub description: String,
    pub metadata: Value,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Filters and paging of an audit log listing.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub event_type: Option<String>,
    pub user_id: Option<Uuid>,
    pub limit: i64,
    pub offset: i64,
}

#[async_trait::async_trait]
pub trait AccountStore: Send + Sync {
    /// Returns the organization's audit entries, newest first.
    async fn audit_logs(&self, org_id: Uuid, query: &AuditQuery) -> Result<Vec<AuditEntry>, sqlx::Error>;

    /// Writes an audit entry for an action that changes nothing else in the database.
    async fn record_audit(&self, audit: &AuditEntry) -> Result<(), sqlx::Error>;

    /// Inserts an API token and its audit entry in one transaction.
    async fn insert_token_audited(&self, token: &ApiToken, audit: &AuditEntry) -> Result<(), sqlx::Error>;

    /// Deletes an API token of the organization and writes the audit entry in one transaction.
    /// Returns whether the token existed.
    async fn delete_token_audited(&self, id: Uuid, org_id: Uuid, audit: &AuditEntry) -> Result<bool, sqlx::Error>;

    /// Inserts `new`, deletes the old token when `delete_old` is set, and writes the audit entry,
    /// in one transaction. Returns `false`, writing nothing, when the organization has no token
    /// `old_id`.
    async fn rotate_token(
        &self,
        old_id: Uuid,
        org_id: Uuid,
        new: &ApiToken,
        delete_old: bool,
        audit: &AuditEntry,
    ) -> Result<bool, sqlx::Error>;
}

macro_rules! account_store {
    ($module:ident, $db:ty, $row:ty, $begin:literal) => {
        pub(crate) mod $module {
            use super::*;

            type Tx = sqlx::Transaction<'static, $db>;
            type Store = crate::store::sql::$module::SqlStore;

            /// Writes an audit entry inside `tx`.
            pub(crate) async fn insert_audit(tx: &mut Tx, entry: &AuditEntry) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO audit_logs (id, org_id, user_id, event_type, description, metadata, ip_address, \
                     user_agent, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(entry.id)
                .bind(entry.org_id)
                .bind(entry.user_id)
                .bind(&entry.event_type)
                .bind(&entry.description)
                .bind(Json(&entry.metadata))
                .bind(&entry.ip_address)
                .bind(&entry.user_agent)
                .bind(entry.created_at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            async fn insert_token(tx: &mut Tx, token: &ApiToken) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO api_tokens (id, org_id, user_id, name, token_prefix, token_hash, scopes, \
                     last_used_at, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(token.id)
                .bind(token.org_id)
                .bind(token.user_id)
                .bind(&token.name)
                .bind(&token.token_prefix)
                .bind(&token.token_hash)
                .bind(crate::store::sql::join_scopes(&token.scopes))
                .bind(token.last_used_at)
                .bind(token.expires_at)
                .bind(token.created_at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            fn audit_entry(row: &$row) -> Result<AuditEntry, sqlx::Error> {
                let metadata: Json<Value> = row.try_get("metadata")?;
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    org_id: row.try_get("org_id")?,
                    user_id: row.try_get("user_id")?,
                    event_type: row.try_get("event_type")?,
                    description: row.try_get("description")?,
                    metadata: metadata.0,
                    ip_address: row.try_get("ip_address")?,
                    user_agent: row.try_get("user_agent")?,
                    created_at: row.try_get("created_at")?,
                })
            }

            async fn begin(store: &Store) -> Result<Tx, sqlx::Error> {
                store.pool.begin_with($begin).await
            }

            #[async_trait::async_trait]
            impl AccountStore for Store {
                async fn audit_logs(&self, org_id: Uuid, query: &AuditQuery) -> Result<Vec<AuditEntry>, sqlx::Error> {
                    let rows = sqlx::query(
                        "SELECT * FROM audit_logs WHERE org_id = $1 \
                         AND ($2 IS NULL OR event_type = $2) AND ($3 IS NULL OR user_id = $3) \
                         ORDER BY seq DESC LIMIT $4 OFFSET $5",
                    )
                    .bind(org_id)
                    .bind(&query.event_type)
                    .bind(query.user_id)
                    .bind(query.limit)
                    .bind(query.offset)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(audit_entry).collect()
                }

                async fn record_audit(&self, audit: &AuditEntry) -> Result<(), sqlx::Error> {
                    let mut tx = begin(self).await?;
                    insert_audit(&mut tx, audit).await?;
                    tx.commit().await
                }

                async fn insert_token_audited(&self, token: &ApiToken, audit: &AuditEntry) -> Result<(), sqlx::Error> {
                    let mut tx = begin(self).await?;
                    insert_token(&mut tx, token).await?;
                    insert_audit(&mut tx, audit).await?;
                    tx.commit().await
                }

                async fn delete_token_audited(
                    &self,
                    id: Uuid,
                    org_id: Uuid,
                    audit: &AuditEntry,
                ) -> Result<bool, sqlx::Error> {
                    let mut tx = begin(self).await?;
                    let result = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND org_id = $2")
                        .bind(id)
                        .bind(org_id)
                        .execute(&mut *tx)
                        .await?;
                    if result.rows_affected() == 0 {
                        return Ok(false);
                    }
                    insert_audit(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn rotate_token(
                    &self,
                    old_id: Uuid,
                    org_id: Uuid,
                    new: &ApiToken,
                    delete_old: bool,
                    audit: &AuditEntry,
                ) -> Result<bool, sqlx::Error> {
                    let mut tx = begin(self).await?;
                    let exists = sqlx::query("SELECT id FROM api_tokens WHERE id = $1 AND org_id = $2")
                        .bind(old_id)
                        .bind(org_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if exists.is_none() {
                        return Ok(false);
                    }
                    insert_token(&mut tx, new).await?;
                    if delete_old {
                        sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND org_id = $2")
                            .bind(old_id)
                            .bind(org_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    insert_audit(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(true)
                }
            }
        }
    };
}

account_store!(sqlite, sqlx::Sqlite, sqlx::sqlite::SqliteRow, "BEGIN IMMEDIATE");
account_store!(postgres, sqlx::Postgres, sqlx::postgres::PgRow, "BEGIN");
