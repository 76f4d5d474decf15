//! Pending OAuth sign-ins: the `state` parameter and PKCE code verifier of each authorization
//! request, usable once.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

/// A pending sign-in, read back when the provider redirects to the callback.
#[derive(Debug, Clone)]
pub struct PendingSignIn {
    pub provider: String,
    pub code_verifier: String,
    pub expires_at: DateTime<Utc>,
}

#[async_trait::async_trait]
pub trait OAuthStore: Send + Sync {
    /// Stores a pending sign-in under the hex SHA-256 of its `state` and deletes expired ones.
    async fn insert_sign_in(&self, state_hash: &str, sign_in: &PendingSignIn) -> Result<(), sqlx::Error>;
    /// Deletes and returns the pending sign-in, so each `state` works once.
    async fn take_sign_in(&self, state_hash: &str) -> Result<Option<PendingSignIn>, sqlx::Error>;
    /// Records that the provider confirmed the user's e-mail address.
    async fn mark_email_verified(&self, user_id: Uuid) -> Result<(), sqlx::Error>;
}

macro_rules! oauth_store {
    ($module:ident, $begin:literal) => {
        pub(crate) mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;

            #[async_trait::async_trait]
            impl OAuthStore for Store {
                async fn insert_sign_in(&self, state_hash: &str, sign_in: &PendingSignIn) -> Result<(), sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    sqlx::query("DELETE FROM oauth_sign_ins WHERE expires_at <= $1")
                        .bind(crate::store::now())
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO oauth_sign_ins (state_hash, provider, code_verifier, expires_at) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(state_hash)
                    .bind(&sign_in.provider)
                    .bind(&sign_in.code_verifier)
                    .bind(sign_in.expires_at)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await
                }

                async fn take_sign_in(&self, state_hash: &str) -> Result<Option<PendingSignIn>, sqlx::Error> {
                    let row = sqlx::query(
                        "DELETE FROM oauth_sign_ins WHERE state_hash = $1 RETURNING provider, code_verifier, expires_at",
                    )
                    .bind(state_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    Ok(Some(PendingSignIn {
                        provider: row.try_get("provider")?,
                        code_verifier: row.try_get("code_verifier")?,
                        expires_at: row.try_get("expires_at")?,
                    }))
                }

                async fn mark_email_verified(&self, user_id: Uuid) -> Result<(), sqlx::Error> {
                    sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL")
                        .bind(crate::store::now())
                        .bind(user_id)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }
            }
        }
    };
}

oauth_store!(sqlite, "BEGIN IMMEDIATE");
oauth_store!(postgres, "BEGIN");
