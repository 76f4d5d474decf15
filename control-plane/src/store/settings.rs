//! Bring-your-own-key settings of organizations. The key is stored encrypted only.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::AuditEntry;

#[derive(Debug, Clone)]
pub struct ByokSettings {
    pub org_id: Uuid,
    pub provider: String,
    /// Base64 of nonce and AES-256-GCM ciphertext; see [`crate::secrets::SecretBox`].
    pub key_encrypted: String,
    pub key_masked: String,
    pub monthly_token_limit: Option<i64>,
    pub updated_at: DateTime<Utc>,
}

#[async_trait::async_trait]
pub trait SettingsStore: Send + Sync {
    async fn byok(&self, org_id: Uuid) -> Result<Option<ByokSettings>, sqlx::Error>;
    /// Inserts or replaces the organization's settings and writes the audit entry, in one
    /// transaction.
    async fn put_byok(&self, settings: &ByokSettings, audit: &AuditEntry) -> Result<(), sqlx::Error>;
    /// Deletes the settings and writes the audit entry, in one transaction. Returns whether
    /// they existed.
    async fn delete_byok(&self, org_id: Uuid, audit: &AuditEntry) -> Result<bool, sqlx::Error>;
}

macro_rules! settings_store {
    ($module:ident, $row:ty, $begin:literal) => {
        pub(crate) mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;

            fn byok(row: &$row) -> Result<ByokSettings, sqlx::Error> {
                Ok(ByokSettings {
                    org_id: row.try_get("org_id")?,
                    provider: row.try_get("provider")?,
                    key_encrypted: row.try_get("key_encrypted")?,
                    key_masked: row.try_get("key_masked")?,
                    monthly_token_limit: row.try_get("monthly_token_limit")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            #[async_trait::async_trait]
            impl SettingsStore for Store {
                async fn byok(&self, org_id: Uuid) -> Result<Option<ByokSettings>, sqlx::Error> {
                    let row = sqlx::query("SELECT * FROM byok_settings WHERE org_id = $1")
                        .bind(org_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(byok).transpose()
                }

                async fn put_byok(&self, settings: &ByokSettings, audit: &AuditEntry) -> Result<(), sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    sqlx::query(
                        "INSERT INTO byok_settings (org_id, provider, key_encrypted, key_masked, monthly_token_limit, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id) DO UPDATE SET provider = excluded.provider, \
                         key_encrypted = excluded.key_encrypted, key_masked = excluded.key_masked, \
                         monthly_token_limit = excluded.monthly_token_limit, updated_at = excluded.updated_at",
                    )
                    .bind(settings.org_id)
                    .bind(&settings.provider)
                    .bind(&settings.key_encrypted)
                    .bind(&settings.key_masked)
                    .bind(settings.monthly_token_limit)
                    .bind(settings.updated_at)
                    .execute(&mut *tx)
                    .await?;
                    crate::store::accounts::$module::insert_audit(&mut tx, audit).await?;
                    tx.commit().await
                }

                async fn delete_byok(&self, org_id: Uuid, audit: &AuditEntry) -> Result<bool, sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let result = sqlx::query("DELETE FROM byok_settings WHERE org_id = $1").bind(org_id).execute(&mut *tx).await?;
                    if result.rows_affected() == 0 {
                        return Ok(false);
                    }
                    crate::store::accounts::$module::insert_audit(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(true)
                }
            }
        }
    };
}

settings_store!(sqlite, sqlx::sqlite::SqliteRow, "BEGIN IMMEDIATE");
settings_store!(postgres, sqlx::postgres::PgRow, "BEGIN");
