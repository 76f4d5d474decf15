//! Persistence: one [`Store`] trait with a SQLite and a PostgreSQL implementation.
//!
//! Both implementations share their Rust code through the `sql_store!` macro in `sql.rs` and
//! differ in their migrations (native `uuid`, `timestamptz` and `jsonb` columns on PostgreSQL)
//! and in how a write transaction begins. Every query on a tenant's resource filters by
//! `org_id` in SQL, so another organization's id behaves like an unknown id.

pub mod accounts;
pub mod admin;
pub mod anonymise;
pub mod billing;
pub mod deletion;
pub mod documents;
pub mod gdpr;
pub mod marketplace;
pub mod oauth;
pub mod security;
pub mod settings;
pub mod support;
pub mod sql;
pub mod usage;
pub mod verification;

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use mockforge_snapshot::{PlanLimits, PlanTable};
use serde_json::Value;
use uuid::Uuid;

pub use accounts::{AccountStore, AuditEntry, AuditQuery};
pub use admin::AdminStore;
pub use billing::BillingStore;
pub use gdpr::GdprStore;
pub use security::SecurityStore;
pub use settings::SettingsStore;
pub use support::SupportStore;
pub use sql::connect;
pub use usage::UsageStore;

/// Current time rounded to microseconds, the precision PostgreSQL keeps, so a value reads back
/// equal on both databases.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub plan: String,
    pub owner_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// Limits that a platform admin set for this organization. Each limit they set replaces the
    /// plan's limit, and `None` applies the plan's limits unchanged.
    pub limit_overrides: Option<PlanLimits>,
}

impl Organization {
    /// Returns the limits that apply to the organization: the limits of its plan (of the free
    /// plan for a plan name the table does not contain) with `limit_overrides` applied.
    pub fn effective_limits(&self, plans: &PlanTable) -> PlanLimits {
        plans.effective_limits(&self.plan, self.limit_overrides.as_ref())
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: Uuid,
    pub username: String,
    pub email: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub token_prefix: String,
    /// Hex SHA-256 of the full token. The token itself is never stored.
    pub token_hash: String,
    pub scopes: Vec<String>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Deployment status values as stored.
pub mod status {
    pub const DEPLOYING: &str = "deploying";
    pub const ACTIVE: &str = "active";
    pub const FAILED: &str = "failed";
    pub const STOPPED: &str = "stopped";
    pub const DELETED: &str = "deleted";

    /// Statuses whose desired state is "served by the edges".
    pub const RUNNING: [&str; 3] = [DEPLOYING, ACTIVE, FAILED];

    pub fn is_running(status: &str) -> bool {
        RUNNING.contains(&status)
    }
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: Uuid,
    pub org_id: Uuid,
    pub project_id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub status: String,
    pub health_status: String,
    pub document_sha256: String,
    pub config_json: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Slug of the owning organization, read by a join.
    pub org_slug: String,
    /// Plan of the owning organization, read by a join.
    pub org_plan: String,
    /// Creation time of the owning organization, read by a join. It anchors the organization's
    /// 30-day quota periods while `org_period_start` is `None`.
    pub org_created_at: DateTime<Utc>,
    /// Start of the owning organization's current billing period (`subscriptions`), read by a
    /// join. It anchors the organization's 30-day quota periods when set.
    pub org_period_start: Option<DateTime<Utc>>,
    /// Limit overrides of the owning organization, read by a join.
    pub org_limit_overrides: Option<PlanLimits>,
}

#[derive(Debug, Clone)]
pub struct LogEntry {
    pub id: Uuid,
    pub level: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

/// The kind of a row in `config_changes`.
pub mod change {
    pub const CREATED: &str = "created";
    pub const STOPPED: &str = "stopped";
    pub const REACTIVATED: &str = "reactivated";
    pub const DELETED: &str = "deleted";
    /// The owning organization's plan changed, which changes the deployment's limits.
    pub const PLAN_CHANGED: &str = "plan_changed";
    /// The owning organization's billing period start changed, which moves its quota periods.
    pub const PERIOD_CHANGED: &str = "period_changed";
    /// The owning organization's limit overrides changed, which changes the deployment's limits.
    pub const LIMITS_CHANGED: &str = "limits_changed";
}

/// Store failures that handlers turn into client errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint rejected the write. `field` names the column.
    #[error("{field} is already taken")]
    Conflict { field: &'static str },
    #[error("the plan limit of {limit} deployments is reached")]
    PlanLimit { limit: i64 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Everything registration writes, in one transaction.
pub struct NewAccount<'a> {
    pub user: &'a User,
    pub org_id: Uuid,
    /// Preferred organization slug. The store appends `-2`, `-3`, … on collision.
    pub base_slug: &'a str,
}

/// Result of a status change.
pub struct StatusChange {
    pub deployment: Deployment,
    /// The new configuration version, when the change was serving-relevant.
    pub version: Option<u64>,
}

pub type SharedStore = Arc<dyn Store>;

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations.
    async fn migrate(&self) -> anyhow::Result<()>;
    /// The audit log and the writes that record an audit entry in their own transaction.
    fn accounts(&self) -> &dyn AccountStore;
    /// Telemetry from edges: metrics, usage and request logs.
    fn usage(&self) -> &dyn UsageStore;
    /// Subscriptions, Stripe events and plan changes.
    fn billing(&self) -> &dyn BillingStore;
    /// Login failures, suspicious activities and JWT revocation.
    fn security(&self) -> &dyn SecurityStore;
    /// Bring-your-own-key settings.
    fn settings(&self) -> &dyn SettingsStore;
    /// Support tickets.
    fn support(&self) -> &dyn SupportStore;
    /// Platform-wide counts.
    fn admin(&self) -> &dyn AdminStore;
    /// Everything stored about one user, for the data export.
    fn gdpr(&self) -> &dyn GdprStore;
    /// E-mail verification tokens and the verified state of users.
    fn verification(&self) -> &dyn verification::VerificationStore;
    /// Account deletion on request: locking and the purge after the grace period.
    fn deletion(&self) -> &dyn deletion::DeletionStore;
    /// Pending OAuth sign-ins.
    fn oauth(&self) -> &dyn oauth::OAuthStore;
    /// OpenAPI documents, keyed by SHA-256.
    fn documents(&self) -> &dyn documents::DocumentStore;
    async fn ping(&self) -> Result<(), sqlx::Error>;

    /// Creates the user, their personal organization and the owner membership in one
    /// transaction and returns the organization.
    async fn create_account(&self, account: NewAccount<'_>) -> Result<Organization, StoreError>;
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, sqlx::Error>;
    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, sqlx::Error>;

    async fn organizations_of(&self, user_id: Uuid) -> Result<Vec<Organization>, sqlx::Error>;
    /// Returns the organization and the user's role in it, if the user is a member.
    async fn membership(&self, org_id: Uuid, user_id: Uuid) -> Result<Option<(Organization, String)>, sqlx::Error>;
    async fn personal_organization(&self, user_id: Uuid) -> Result<Option<Organization>, sqlx::Error>;
    async fn organization(&self, org_id: Uuid) -> Result<Option<Organization>, sqlx::Error>;
    async fn members(&self, org_id: Uuid) -> Result<Vec<Member>, sqlx::Error>;

    async fn tokens(&self, org_id: Uuid) -> Result<Vec<ApiToken>, sqlx::Error>;
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, sqlx::Error>;
    /// Deletes a token of the organization and returns whether it existed.
    async fn delete_token(&self, id: Uuid, org_id: Uuid) -> Result<bool, sqlx::Error>;
    /// Writes a batch of `last_used_at` values in one transaction.
    async fn touch_tokens(&self, usage: &[(Uuid, DateTime<Utc>)]) -> Result<(), sqlx::Error>;

    /// Counts the organization's deployments that are not deleted.
    async fn count_deployments(&self, org_id: Uuid) -> Result<i64, sqlx::Error>;
    async fn deployment_slug_taken(&self, org_id: Uuid, slug: &str) -> Result<bool, sqlx::Error>;
    /// Inserts a deployment with its "created" log entry and configuration change, enforcing
    /// `max_deployments` inside the transaction, and writes `document` (unless a document with
    /// the deployment's hash exists) and `audit` in the same transaction. Returns the new
    /// configuration version.
    async fn create_deployment(
        &self,
        deployment: &Deployment,
        document: &str,
        max_deployments: Option<i64>,
        audit: &AuditEntry,
    ) -> Result<u64, StoreError>;
    async fn deployments(
        &self,
        org_id: Uuid,
        status: Option<&str>,
        project_id: Option<Uuid>,
    ) -> Result<Vec<Deployment>, sqlx::Error>;
    /// Returns a deployment of the organization unless it is deleted.
    async fn deployment(&self, id: Uuid, org_id: Uuid) -> Result<Option<Deployment>, sqlx::Error>;
    /// Stops (`stopped`) or reactivates (`active`) a deployment. Returns `None` for an unknown
    /// or deleted deployment. A change writes `audit` in its transaction.
    async fn set_deployment_status(
        &self,
        id: Uuid,
        org_id: Uuid,
        target: &str,
        audit: &AuditEntry,
    ) -> Result<Option<StatusChange>, sqlx::Error>;
    /// Soft-deletes a deployment, deletes its document unless another deployment that is not
    /// deleted refers to it, writes `audit` in the same transaction and returns the new
    /// configuration version.
    async fn delete_deployment(&self, id: Uuid, org_id: Uuid, audit: &AuditEntry) -> Result<Option<u64>, sqlx::Error>;
    /// Returns the newest log entries first.
    async fn deployment_logs(
        &self,
        id: Uuid,
        org_id: Uuid,
        level: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LogEntry>, sqlx::Error>;

    async fn config_version(&self) -> Result<u64, sqlx::Error>;
    /// Deployments whose desired state is running, of every organization.
    async fn running_deployments(&self) -> Result<Vec<Deployment>, sqlx::Error>;
    /// Ids of deployments changed in the versions `(after, upto]`.
    async fn changed_deployments(&self, after: u64, upto: u64) -> Result<Vec<Uuid>, sqlx::Error>;
    /// Returns a deployment by id in any organization and any status.
    async fn deployment_any(&self, id: Uuid) -> Result<Option<Deployment>, sqlx::Error>;
    /// Records that an edge serves the deployment; ignored unless its desired state is running.
    async fn mark_served(&self, id: Uuid, node: &str) -> Result<bool, sqlx::Error>;
    /// Records that an edge failed to compile the deployment.
    async fn mark_failed(&self, id: Uuid, node: &str, reason: &str) -> Result<bool, sqlx::Error>;

    /// Edge nodes and their heartbeats.
    fn nodes(&self) -> &dyn crate::nodes::NodeStore;

    /// Marketplace packages: plugins, templates and scenarios.
    fn marketplace(&self) -> &dyn marketplace::MarketplaceStore;
}
