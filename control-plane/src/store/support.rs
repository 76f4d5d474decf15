//! Support tickets.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AuditEntry;

#[derive(Debug, Clone)]
pub struct SupportTicket {
    pub id: Uuid,
    pub ticket_number: String,
    pub org_id: Uuid,
    pub user_id: Option<Uuid>,
    pub category: String,
    pub priority: String,
    pub subject: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

#[async_trait::async_trait]
pub trait SupportStore: Send + Sync {
    /// Inserts the ticket and its audit entry in one transaction. Returns `false` when the
    /// ticket number is taken, so the caller can pick another.
    async fn insert_ticket(&self, ticket: &SupportTicket, audit: &AuditEntry) -> Result<bool, sqlx::Error>;
}

macro_rules! support_store {
    ($module:ident, $begin:literal) => {
        pub(crate) mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;

            #[async_trait::async_trait]
            impl SupportStore for Store {
                async fn insert_ticket(&self, ticket: &SupportTicket, audit: &AuditEntry) -> Result<bool, sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let result = sqlx::query(
                        "INSERT INTO support_tickets (id, ticket_number, org_id, user_id, category, priority, subject, message, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (ticket_number) DO NOTHING",
                    )
                    .bind(ticket.id)
                    .bind(&ticket.ticket_number)
                    .bind(ticket.org_id)
                    .bind(ticket.user_id)
                    .bind(&ticket.category)
                    .bind(&ticket.priority)
                    .bind(&ticket.subject)
                    .bind(&ticket.message)
                    .bind(ticket.created_at)
                    .execute(&mut *tx)
                    .await?;
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

support_store!(sqlite, "BEGIN IMMEDIATE");
support_store!(postgres, "BEGIN");
