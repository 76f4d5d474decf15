//! Subscriptions, processed Stripe events and plan changes.
//!
//! A plan change updates `organizations.plan` and records a configuration change for each
//! running deployment of the organization in the same transaction, because the snapshot records
//! that edges receive carry the plan. A change of the billing period start does the same, because
//! the records carry it as the start of the request quota periods. A change of the limit
//! overrides that a platform admin sets for an organization does the same.

use chrono::{DateTime, Utc};
use mockforge_snapshot::PlanLimits;
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use super::{now, AuditEntry};

#[derive(Debug, Clone)]
pub struct Subscription {
    pub org_id: Uuid,
    pub status: String,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// One change to an organization's billing state.
#[derive(Debug, Clone)]
pub struct BillingChange {
    /// The Stripe event id and type, recorded so the event is processed once.
    pub event: Option<(String, String)>,
    pub org_id: Uuid,
    /// The new plan; `None` keeps the current one.
    pub plan: Option<String>,
    /// The new subscription status; `None` keeps the current one (`active` for a new row).
    pub status: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    /// The new billing period start, or `None` to keep the current one.
    pub current_period_start: Option<DateTime<Utc>>,
    /// The new billing period end, or `None` to keep the current one.
    pub current_period_end: Option<DateTime<Utc>>,
    pub audit: Option<AuditEntry>,
}

/// The result of [`BillingStore::apply_billing_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingOutcome {
    /// The event was processed before; nothing changed.
    Duplicate,
    /// The organization does not exist; only the event id was recorded.
    UnknownOrganization,
    /// Applied. `version` is the new configuration version when the plan or the billing period
    /// start changed and the organization has running deployments.
    Applied { version: Option<u64> },
}

#[async_trait::async_trait]
pub trait BillingStore: Send + Sync {
    async fn subscription(&self, org_id: Uuid) -> Result<Option<Subscription>, sqlx::Error>;
    /// Finds the organization of a Stripe subscription or customer id.
    async fn org_for_stripe(
        &self,
        subscription_id: Option<&str>,
        customer_id: Option<&str>,
    ) -> Result<Option<Uuid>, sqlx::Error>;
    /// Applies the change, the event id and the audit entry in one transaction.
    async fn apply_billing_change(&self, change: &BillingChange) -> Result<BillingOutcome, sqlx::Error>;
    /// Records a Stripe event that changes nothing. Returns `false` when it was recorded before.
    async fn record_stripe_event(&self, event_id: &str, event_type: &str) -> Result<bool, sqlx::Error>;
    /// Replaces the organization's limit overrides (`None` clears them), records a configuration
    /// change for each of its running deployments and writes `audit`, in one transaction.
    /// Returns [`BillingOutcome::UnknownOrganization`] without writing anything when the
    /// organization does not exist.
    async fn set_limit_overrides(
        &self,
        org_id: Uuid,
        overrides: Option<&PlanLimits>,
        audit: &AuditEntry,
    ) -> Result<BillingOutcome, sqlx::Error>;
}

macro_rules! billing_store {
    ($module:ident, $db:ty, $row:ty, $begin:literal) => {
        pub(crate) mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;
            type Tx = sqlx::Transaction<'static, $db>;

            fn subscription(row: &$row) -> Result<Subscription, sqlx::Error> {
                Ok(Subscription {
                    org_id: row.try_get("org_id")?,
                    status: row.try_get("status")?,
                    stripe_customer_id: row.try_get("stripe_customer_id")?,
                    stripe_subscription_id: row.try_get("stripe_subscription_id")?,
                    current_period_start: row.try_get("current_period_start")?,
                    current_period_end: row.try_get("current_period_end")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            async fn insert_event(tx: &mut Tx, event_id: &str, event_type: &str) -> Result<bool, sqlx::Error> {
                let result = sqlx::query(
                    "INSERT INTO stripe_events (event_id, event_type, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(event_id)
                .bind(event_type)
                .bind(now())
                .execute(&mut **tx)
                .await?;
                Ok(result.rows_affected() > 0)
            }

            /// Increments the configuration version and records a change of kind `kind` to one
            /// deployment.
            async fn record_change(tx: &mut Tx, deployment_id: Uuid, kind: &str) -> Result<u64, sqlx::Error> {
                let row = sqlx::query("UPDATE config_version SET version = version + 1 WHERE id = 1 RETURNING version")
                    .fetch_one(&mut **tx)
                    .await?;
                let version: i64 = row.try_get("version")?;
                sqlx::query("INSERT INTO config_changes (version, deployment_id, kind, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(version)
                    .bind(deployment_id)
                    .bind(kind)
                    .bind(now())
                    .execute(&mut **tx)
                    .await?;
                Ok(version as u64)
            }

            #[async_trait::async_trait]
            impl BillingStore for Store {
                async fn subscription(&self, org_id: Uuid) -> Result<Option<Subscription>, sqlx::Error> {
                    let row = sqlx::query("SELECT * FROM subscriptions WHERE org_id = $1")
                        .bind(org_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(subscription).transpose()
                }

                async fn org_for_stripe(
                    &self,
                    subscription_id: Option<&str>,
                    customer_id: Option<&str>,
                ) -> Result<Option<Uuid>, sqlx::Error> {
                    let row = sqlx::query(
                        "SELECT org_id FROM subscriptions WHERE ($1 IS NOT NULL AND stripe_subscription_id = $1) \
                         OR ($2 IS NOT NULL AND stripe_customer_id = $2) ORDER BY updated_at DESC LIMIT 1",
                    )
                    .bind(subscription_id)
                    .bind(customer_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(|row| row.try_get("org_id")).transpose()
                }

                async fn record_stripe_event(&self, event_id: &str, event_type: &str) -> Result<bool, sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let inserted = insert_event(&mut tx, event_id, event_type).await?;
                    tx.commit().await?;
                    Ok(inserted)
                }

                async fn apply_billing_change(&self, change: &BillingChange) -> Result<BillingOutcome, sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    if let Some((event_id, event_type)) = &change.event {
                        if !insert_event(&mut tx, event_id, event_type).await? {
                            return Ok(BillingOutcome::Duplicate);
                        }
                    }
                    let row = sqlx::query("SELECT plan FROM organizations WHERE id = $1")
                        .bind(change.org_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some(row) = row else {
                        tx.commit().await?;
                        return Ok(BillingOutcome::UnknownOrganization);
                    };
                    let current_plan: String = row.try_get("plan")?;

                    let existing = sqlx::query("SELECT * FROM subscriptions WHERE org_id = $1")
                        .bind(change.org_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let existing = existing.as_ref().map(subscription).transpose()?;
                    let status = change
                        .status
                        .clone()
                        .or_else(|| existing.as_ref().map(|row| row.status.clone()))
                        .unwrap_or_else(|| "active".to_owned());
                    let customer = change.stripe_customer_id.clone().or_else(|| existing.as_ref().and_then(|row| row.stripe_customer_id.clone()));
                    let stripe_subscription = change
                        .stripe_subscription_id
                        .clone()
                        .or_else(|| existing.as_ref().and_then(|row| row.stripe_subscription_id.clone()));
                    let previous_start = existing.as_ref().and_then(|row| row.current_period_start);
                    let period_start = change.current_period_start.or(previous_start);
                    let period_end = change.current_period_end.or_else(|| existing.as_ref().and_then(|row| row.current_period_end));
                    sqlx::query(
                        "INSERT INTO subscriptions (org_id, status, stripe_customer_id, stripe_subscription_id, current_period_start, \
                         current_period_end, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id) DO UPDATE SET \
                         status = excluded.status, stripe_customer_id = excluded.stripe_customer_id, \
                         stripe_subscription_id = excluded.stripe_subscription_id, current_period_start = excluded.current_period_start, \
                         current_period_end = excluded.current_period_end, updated_at = excluded.updated_at",
                    )
                    .bind(change.org_id)
                    .bind(&status)
                    .bind(&customer)
                    .bind(&stripe_subscription)
                    .bind(period_start)
                    .bind(period_end)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;

                    let new_plan = change.plan.as_deref().filter(|plan| *plan != current_plan);
                    if let Some(plan) = new_plan {
                        sqlx::query("UPDATE organizations SET plan = $2 WHERE id = $1")
                            .bind(change.org_id)
                            .bind(plan)
                            .execute(&mut *tx)
                            .await?;
                    }
                    // Snapshot records carry the plan and the quota period start, so edges must
                    // receive the organization's running deployments again when either changes.
                    let kind = if new_plan.is_some() {
                        Some(crate::store::change::PLAN_CHANGED)
                    } else if period_start != previous_start {
                        Some(crate::store::change::PERIOD_CHANGED)
                    } else {
                        None
                    };
                    let mut version = None;
                    if let Some(kind) = kind {
                        let rows = sqlx::query(
                            "SELECT id FROM deployments WHERE org_id = $1 AND status IN ('deploying', 'active', 'failed') \
                             ORDER BY created_at, id",
                        )
                        .bind(change.org_id)
                        .fetch_all(&mut *tx)
                        .await?;
                        for row in &rows {
                            version = Some(record_change(&mut tx, row.try_get("id")?, kind).await?);
                        }
                    }
                    if let Some(audit) = &change.audit {
                        crate::store::accounts::$module::insert_audit(&mut tx, audit).await?;
                    }
                    tx.commit().await?;
                    Ok(BillingOutcome::Applied { version })
                }

                async fn set_limit_overrides(
                    &self,
                    org_id: Uuid,
                    overrides: Option<&PlanLimits>,
                    audit: &AuditEntry,
                ) -> Result<BillingOutcome, sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let updated = sqlx::query("UPDATE organizations SET limit_overrides = $2 WHERE id = $1")
                        .bind(org_id)
                        .bind(overrides.cloned().map(Json))
                        .execute(&mut *tx)
                        .await?;
                    if updated.rows_affected() == 0 {
                        return Ok(BillingOutcome::UnknownOrganization);
                    }
                    // Snapshot records carry the overrides, so edges must receive the
                    // organization's running deployments again.
                    let rows = sqlx::query(
                        "SELECT id FROM deployments WHERE org_id = $1 AND status IN ('deploying', 'active', 'failed') \
                         ORDER BY created_at, id",
                    )
                    .bind(org_id)
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut version = None;
                    for row in &rows {
                        version = Some(record_change(&mut tx, row.try_get("id")?, crate::store::change::LIMITS_CHANGED).await?);
                    }
                    crate::store::accounts::$module::insert_audit(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(BillingOutcome::Applied { version })
                }
            }
        }
    };
}

billing_store!(sqlite, sqlx::Sqlite, sqlx::sqlite::SqliteRow, "BEGIN IMMEDIATE");
billing_store!(postgres, sqlx::Postgres, sqlx::postgres::PgRow, "BEGIN");
