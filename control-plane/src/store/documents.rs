//! OpenAPI documents in the `documents` table, keyed by the hex SHA-256 of their text, so that
//! every control-plane replica on one database reads what any replica stored.
//!
//! A document is inserted in the transaction of the deployment that refers to it and removed
//! once no deployment that is not deleted refers to it. On PostgreSQL both sides lock the
//! document row, so a removal cannot miss a deployment that a concurrent transaction commits.

use sqlx::Row;

/// Documents as stored, implemented by both SQL stores.
#[async_trait::async_trait]
pub trait DocumentStore: Send + Sync {
    /// Returns the document text, or `None` when no document has that hash.
    async fn document(&self, sha256: &str) -> Result<Option<String>, sqlx::Error>;
    /// Returns the size in bytes of a document, or `None` when it is missing.
    async fn document_size(&self, sha256: &str) -> Result<Option<u64>, sqlx::Error>;
    /// Sums the sizes of all stored documents, in bytes.
    async fn total_document_bytes(&self) -> Result<u64, sqlx::Error>;
    /// Inserts a document unless one with the same hash exists.
    async fn insert_document(&self, sha256: &str, body: &str) -> Result<(), sqlx::Error>;
    /// Deletes the document unless a deployment that is not deleted refers to it. Returns
    /// whether it was deleted.
    async fn delete_unused_document(&self, sha256: &str) -> Result<bool, sqlx::Error>;
}

macro_rules! document_store {
    ($module:ident, $db:ty, $begin:literal, $lock_row:literal) => {
        pub(crate) mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;
            type Tx = sqlx::Transaction<'static, $db>;

            /// Inserts the document inside `tx`. An existing row is rewritten with its own hash,
            /// which locks it until `tx` ends, so a concurrent [`delete_if_unused`] waits for the
            /// deployment that `tx` inserts.
            pub(crate) async fn insert(tx: &mut Tx, sha256: &str, body: &str) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO documents (sha256, body, size_bytes, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (sha256) DO UPDATE SET sha256 = excluded.sha256",
                )
                .bind(sha256)
                .bind(body)
                .bind(body.len() as i64)
                .bind(crate::store::now())
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Deletes the document inside `tx` unless a deployment that is not deleted refers
            /// to it. Returns whether it was deleted.
            pub(crate) async fn delete_if_unused(tx: &mut Tx, sha256: &str) -> Result<bool, sqlx::Error> {
                let locked = sqlx::query(concat!("SELECT sha256 FROM documents WHERE sha256 = $1", $lock_row))
                    .bind(sha256)
                    .fetch_optional(&mut **tx)
                    .await?;
                if locked.is_none() {
                    return Ok(false);
                }
                let used = sqlx::query(
                    "SELECT 1 AS used FROM deployments WHERE document_sha256 = $1 AND status <> 'deleted' LIMIT 1",
                )
                .bind(sha256)
                .fetch_optional(&mut **tx)
                .await?;
                if used.is_some() {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM documents WHERE sha256 = $1").bind(sha256).execute(&mut **tx).await?;
                Ok(true)
            }

            #[async_trait::async_trait]
            impl DocumentStore for Store {
                async fn document(&self, sha256: &str) -> Result<Option<String>, sqlx::Error> {
                    let row = sqlx::query("SELECT body FROM documents WHERE sha256 = $1")
                        .bind(sha256)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map(|row| row.try_get("body")).transpose()
                }

                async fn document_size(&self, sha256: &str) -> Result<Option<u64>, sqlx::Error> {
                    let row = sqlx::query("SELECT size_bytes FROM documents WHERE sha256 = $1")
                        .bind(sha256)
                        .fetch_optional(&self.pool)
                        .await?;
                    let size: Option<i64> = row.map(|row| row.try_get("size_bytes")).transpose()?;
                    Ok(size.map(|size| size as u64))
                }

                async fn total_document_bytes(&self) -> Result<u64, sqlx::Error> {
                    let row = sqlx::query("SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS total FROM documents")
                        .fetch_one(&self.pool)
                        .await?;
                    let total: i64 = row.try_get("total")?;
                    Ok(total as u64)
                }

                async fn insert_document(&self, sha256: &str, body: &str) -> Result<(), sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    insert(&mut tx, sha256, body).await?;
                    tx.commit().await
                }

                async fn delete_unused_document(&self, sha256: &str) -> Result<bool, sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let deleted = delete_if_unused(&mut tx, sha256).await?;
                    tx.commit().await?;
                    Ok(deleted)
                }
            }
        }
    };
}

// SQLite: `BEGIN IMMEDIATE` already excludes other writers, so no row lock is needed.
document_store!(sqlite, sqlx::Sqlite, "BEGIN IMMEDIATE", "");
document_store!(postgres, sqlx::Postgres, "BEGIN", " FOR UPDATE");
