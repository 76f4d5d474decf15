//! E-mail verification tokens, stored as hex SHA-256 hashes and usable once.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

/// Result of redeeming a verification token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The token was valid, and its user is now verified.
    Verified { user_id: Uuid },
    Unknown,
    AlreadyUsed,
    Expired,
}

#[async_trait::async_trait]
pub trait VerificationStore: Send + Sync {
    /// Stores a new token for the user and deletes the user's unused older tokens, in one
    /// transaction, so only the newest link works.
    async fn replace_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error>;
    /// Marks the token used and its user verified, in one transaction, if the token is known,
    /// unused and not expired at `at`.
    async fn redeem_token(&self, token_hash: &str, at: DateTime<Utc>) -> Result<Redemption, sqlx::Error>;
    /// Returns when the user verified their e-mail address, `None` if not yet.
    async fn email_verified_at(&self, user_id: Uuid) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
}

macro_rules! verification_store {
    ($module:ident, $begin:literal) => {
        pub(crate) mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;

            #[async_trait::async_trait]
            impl VerificationStore for Store {
                async fn replace_token(
                    &self,
                    user_id: Uuid,
                    token_hash: &str,
                    expires_at: DateTime<Utc>,
                ) -> Result<(), sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    sqlx::query("DELETE FROM email_verification_tokens WHERE user_id = $1 AND used_at IS NULL")
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO email_verification_tokens (token_hash, user_id, expires_at, used_at, created_at) \
                         VALUES ($1, $2, $3, NULL, $4)",
                    )
                    .bind(token_hash)
                    .bind(user_id)
                    .bind(expires_at)
                    .bind(crate::store::now())
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await
                }

                async fn redeem_token(&self, token_hash: &str, at: DateTime<Utc>) -> Result<Redemption, sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let row = sqlx::query(
                        "SELECT user_id, expires_at, used_at FROM email_verification_tokens WHERE token_hash = $1",
                    )
                    .bind(token_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        return Ok(Redemption::Unknown);
                    };
                    let user_id: Uuid = row.try_get("user_id")?;
                    let expires_at: DateTime<Utc> = row.try_get("expires_at")?;
                    let used_at: Option<DateTime<Utc>> = row.try_get("used_at")?;
                    if used_at.is_some() {
                        return Ok(Redemption::AlreadyUsed);
                    }
                    if expires_at <= at {
                        return Ok(Redemption::Expired);
                    }

                    // The `used_at IS NULL` condition makes a concurrent second redemption of the
                    // same token change nothing.
                    let updated = sqlx::query(
                        "UPDATE email_verification_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
                    )
                    .bind(at)
                    .bind(token_hash)
                    .execute(&mut *tx)
                    .await?;
                    if updated.rows_affected() == 0 {
                        return Ok(Redemption::AlreadyUsed);
                    }
                    sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL")
                        .bind(at)
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(Redemption::Verified { user_id })
                }

                async fn email_verified_at(&self, user_id: Uuid) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
                    let row = sqlx::query("SELECT email_verified_at FROM users WHERE id = $1")
                        .bind(user_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    match row {
                        Some(row) => row.try_get("email_verified_at"),
                        None => Ok(None),
                    }
                }
            }
        }
    };
}

// PostgreSQL's default READ COMMITTED lets two transactions read the same unused token, so the
// conditional UPDATE above decides which one redeems it.
verification_store!(sqlite, "BEGIN IMMEDIATE");
verification_store!(postgres, "BEGIN");
