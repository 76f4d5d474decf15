//! Everything stored about one user, for the data export. Secrets (password hash, token hashes,
//! encrypted provider keys) are left out.

use serde_json::{json, Value};
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

#[derive(Debug, Clone, Default)]
pub struct UserRecords {
    pub api_tokens: Vec<Value>,
    pub audit_logs: Vec<Value>,
    pub suspicious_activities: Vec<Value>,
    pub support_tickets: Vec<Value>,
    pub login_addresses: Vec<Value>,
}

#[async_trait::async_trait]
pub trait GdprStore: Send + Sync {
    async fn user_records(&self, user_id: Uuid) -> Result<UserRecords, sqlx::Error>;
}

macro_rules! gdpr_store {
    ($module:ident) => {
        pub(crate) mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;

            #[async_trait::async_trait]
            impl GdprStore for Store {
                async fn user_records(&self, user_id: Uuid) -> Result<UserRecords, sqlx::Error> {
                    let mut records = UserRecords::default();
                    let rows = sqlx::query(
                        "SELECT id, org_id, name, token_prefix, scopes, last_used_at, expires_at, created_at \
                         FROM api_tokens WHERE user_id = $1 ORDER BY created_at",
                    )
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?;
                    for row in rows {
                        let scopes: String = row.try_get("scopes")?;
                        records.api_tokens.push(json!({
                            "id": row.try_get::<Uuid, _>("id")?,
                            "org_id": row.try_get::<Uuid, _>("org_id")?,
                            "name": row.try_get::<String, _>("name")?,
                            "token_prefix": row.try_get::<String, _>("token_prefix")?,
                            "scopes": scopes.split_whitespace().collect::<Vec<_>>(),
                            "last_used_at": row.try_get::<Option<chrono::DateTime<chrono::Utc>>, _>("last_used_at")?,
                            "expires_at": row.try_get::<Option<chrono::DateTime<chrono::Utc>>, _>("expires_at")?,
                            "created_at": row.try_get::<chrono::DateTime<chrono::Utc>, _>("created_at")?,
                        }));
                    }
                    let rows = sqlx::query(
                        "SELECT id, org_id, event_type, description, metadata, ip_address, user_agent, created_at \
                         FROM audit_logs WHERE user_id = $1 ORDER BY seq",
                    )
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?;
                    for row in rows {
                        records.audit_logs.push(json!({
                            "id": row.try_get::<Uuid, _>("id")?,
                            "org_id": row.try_get::<Uuid, _>("org_id")?,
                            "event_type": row.try_get::<String, _>("event_type")?,
                            "description": row.try_get::<String, _>("description")?,
                            "metadata": row.try_get::<Json<Value>, _>("metadata")?.0,
                            "ip_address": row.try_get::<Option<String>, _>("ip_address")?,
                            "user_agent": row.try_get::<Option<String>, _>("user_agent")?,
                            "created_at": row.try_get::<chrono::DateTime<chrono::Utc>, _>("created_at")?,
                        }));
                    }
                    let rows = sqlx::query(
                        "SELECT id, org_id, activity_type, severity, description, ip_address, resolved, created_at \
                         FROM suspicious_activities WHERE user_id = $1 ORDER BY seq",
                    )
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?;
                    for row in rows {
                        records.suspicious_activities.push(json!({
                            "id": row.try_get::<Uuid, _>("id")?,
                            "org_id": row.try_get::<Uuid, _>("org_id")?,
                            "activity_type": row.try_get::<String, _>("activity_type")?,
                            "severity": row.try_get::<String, _>("severity")?,
                            "description": row.try_get::<String, _>("description")?,
                            "ip_address": row.try_get::<Option<String>, _>("ip_address")?,
                            "resolved": row.try_get::<bool, _>("resolved")?,
                            "created_at": row.try_get::<chrono::DateTime<chrono::Utc>, _>("created_at")?,
                        }));
                    }
                    let rows = sqlx::query(
                        "SELECT ticket_number, org_id, category, priority, subject, message, created_at \
                         FROM support_tickets WHERE user_id = $1 ORDER BY created_at",
                    )
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?;
                    for row in rows {
                        records.support_tickets.push(json!({
                            "ticket_id": row.try_get::<String, _>("ticket_number")?,
                            "org_id": row.try_get::<Uuid, _>("org_id")?,
                            "category": row.try_get::<String, _>("category")?,
                            "priority": row.try_get::<String, _>("priority")?,
                            "subject": row.try_get::<String, _>("subject")?,
                            "message": row.try_get::<String, _>("message")?,
                            "created_at": row.try_get::<chrono::DateTime<chrono::Utc>, _>("created_at")?,
                        }));
                    }
                    let rows = sqlx::query("SELECT ip_address, first_seen_at FROM login_addresses WHERE user_id = $1 ORDER BY first_seen_at")
                        .bind(user_id)
                        .fetch_all(&self.pool)
                        .await?;
                    for row in rows {
                        records.login_addresses.push(json!({
                            "ip_address": row.try_get::<String, _>("ip_address")?,
                            "first_seen_at": row.try_get::<chrono::DateTime<chrono::Utc>, _>("first_seen_at")?,
                        }));
                    }
                    Ok(records)
                }
            }
        }
    };
}

gdpr_store!(sqlite);
gdpr_store!(postgres);
