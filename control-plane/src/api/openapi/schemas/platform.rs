//! Response bodies of health, deployment, usage, billing, settings, legal, admin and
//! marketplace routes.
//!
//! Handlers build these bodies with `serde_json::json!`, so the structs exist for the document
//! only. Objects whose keys depend on configuration (plan limits, analytics sections) are
//! documented as open objects.

use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    pub version: String,
}

/// The state of a liveness or readiness probe: `alive` or `ready`.
#[derive(ToSchema)]
pub struct ProbeStatus {
    pub status: String,
}

#[derive(ToSchema)]
pub struct DetailedHealth {
    /// `ok`, or `degraded` (with status 503) when a check reports `error`.
    pub status: String,
    pub version: String,
    pub timestamp: DateTime<Utc>,
    pub checks: HealthChecks,
}

/// Each check is `ok`, `not_configured` or `error`.
#[derive(ToSchema)]
pub struct HealthChecks {
    pub database: String,
    pub redis: String,
    pub storage: String,
}

#[derive(ToSchema)]
pub struct StatusPage {
    /// `operational` or `degraded`.
    pub overall: String,
    pub services: Vec<ServiceStatus>,
    pub timestamp: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct ServiceStatus {
    pub name: String,
    /// `operational`, `not_configured` or `outage`.
    pub status: String,
    pub message: Option<String>,
}

/// A deployment with its settings.
#[derive(ToSchema)]
pub struct DeploymentDetail {
    pub id: Uuid,
    pub org_id: Uuid,
    pub project_id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// `deploying`, `active`, `failed` or `stopped`.
    pub status: String,
    /// `unknown` until an edge reports on the deployment.
    pub health_status: String,
    /// The address where the mock is served.
    pub url: String,
    /// Mock options, with any template settings merged in.
    #[schema(value_type = Object)]
    pub config_json: Value,
    /// SHA-256 of the stored OpenAPI document.
    pub document_sha256: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A deployment in a list.
#[derive(ToSchema)]
pub struct DeploymentSummary {
    pub id: Uuid,
    pub project_id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub status: String,
    pub health_status: String,
    pub url: String,
    pub created_at: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct DeploymentStatusChange {
    pub id: Uuid,
    pub status: String,
    pub updated_at: DateTime<Utc>,
}

/// A lifecycle event or a request served by an edge.
#[derive(ToSchema)]
pub struct DeploymentLogEntry {
    pub id: Uuid,
    /// `info`, `warn` or `error`. Request entries are `info` below status 400, `warn` for 4xx
    /// and `error` for 5xx.
    pub level: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
    /// `lifecycle` or `request`.
    pub source: String,
    /// Request entries only.
    pub method: Option<String>,
    /// Request entries only.
    pub path: Option<String>,
    /// Request entries only: the response status.
    pub status: Option<u16>,
    /// Request entries only.
    pub latency_ms: Option<f64>,
    /// Request entries only.
    pub request_id: Option<String>,
}

/// Request counts and latency of one deployment in a time range.
#[derive(ToSchema)]
pub struct DeploymentMetrics {
    pub requests_total: i64,
    pub requests_per_minute: f64,
    pub average_response_time_ms: f64,
    /// Share of responses with status 400 or above, from 0 to 1.
    pub error_rate: f64,
    /// Response count per status code, keyed by the code as a string.
    #[schema(value_type = Object)]
    pub status_codes: Value,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
}

/// Usage of the organization in one 30-day request quota period. The periods follow each other
/// from the subscription's `current_period_start`, or without one from the UTC day the
/// organization was created.
#[derive(ToSchema)]
pub struct UsagePeriod {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub requests: i64,
    pub bytes_out: i64,
    /// Stored document bytes, reported for the current period only.
    pub storage_bytes: Option<i64>,
    pub ai_tokens_used: i64,
    /// Current period only: the organization's request quota (its plan's or its limit
    /// override), `null` when unlimited.
    pub requests_limit: Option<i64>,
    /// Current period only: `null` when unlimited.
    pub storage_limit_bytes: Option<i64>,
    /// Current period only.
    pub ai_tokens_limit: Option<i64>,
}

#[derive(ToSchema)]
pub struct Subscription {
    pub org_id: Uuid,
    pub plan: String,
    /// The Stripe subscription status, `active` without a subscription.
    pub status: String,
    /// Start of the Stripe billing period, which also starts the request quota periods.
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    /// Usage of the current period, as returned by `GET /api/v1/usage`: `period_start`,
    /// `period_end`, `requests`, `requests_limit`, `storage_bytes`, `storage_limit_bytes`,
    /// `ai_tokens_used`, `ai_tokens_limit`.
    #[schema(value_type = Object)]
    pub usage: Value,
    /// The organization's limits: the plan's limits from the plan table with the limit overrides
    /// that a platform admin set applied. `null` is unlimited, except for
    /// `plugin_call_timeout_ms` and `plugin_memory_bytes`, where it means the edge's default.
    #[schema(value_type = Object)]
    pub limits: Value,
}

#[derive(ToSchema)]
pub struct CheckoutSession {
    /// The Stripe Checkout page to send the user to.
    pub checkout_url: String,
    pub session_id: String,
}

#[derive(ToSchema)]
pub struct WebhookReceipt {
    pub received: bool,
    /// False for events that change nothing, for unknown organizations and for duplicates.
    pub processed: bool,
    /// Present and true when the event id was processed before.
    pub duplicate: Option<bool>,
}

#[derive(ToSchema)]
pub struct PlanChange {
    pub org_id: Uuid,
    pub plan: String,
}

/// Limits with the keys of a `[plans.NAME]` table. In a response every key is present, and
/// `null` is unlimited, except for `plugin_call_timeout_ms` and `plugin_memory_bytes`, where it
/// means the edge's default.
#[derive(ToSchema)]
pub struct LimitValues {
    /// Requests per minute to all of an organization's mocks.
    pub requests_per_minute: Option<i64>,
    /// Requests per 30-day quota period to all of an organization's mocks.
    pub requests_per_30d: Option<i64>,
    /// Deployments an organization may have at once (stopped ones count, deleted ones do not).
    pub max_deployments: Option<i64>,
    /// Requests per second to one deployment.
    pub deployment_rps: Option<i64>,
    /// Maximum request body in bytes.
    pub max_request_body_bytes: Option<i64>,
    /// Storage quota of an organization in bytes.
    pub max_storage_bytes: Option<i64>,
    /// Time one plugin hook call may run, in milliseconds.
    pub plugin_call_timeout_ms: Option<i64>,
    /// Maximum linear memory of one plugin instance, in bytes.
    pub plugin_memory_bytes: Option<i64>,
}

/// The limit overrides of one organization. Each key present replaces the plan's limit and an
/// omitted key keeps it. Values are non-negative integers, and an unknown key or `null` is
/// rejected.
#[derive(ToSchema)]
pub struct LimitOverridesRequest {
    #[schema(minimum = 0)]
    pub requests_per_minute: Option<i64>,
    #[schema(minimum = 0)]
    pub requests_per_30d: Option<i64>,
    #[schema(minimum = 0)]
    pub max_deployments: Option<i64>,
    #[schema(minimum = 0)]
    pub deployment_rps: Option<i64>,
    #[schema(minimum = 0)]
    pub max_request_body_bytes: Option<i64>,
    #[schema(minimum = 0)]
    pub max_storage_bytes: Option<i64>,
    #[schema(minimum = 0)]
    pub plugin_call_timeout_ms: Option<i64>,
    #[schema(minimum = 0)]
    pub plugin_memory_bytes: Option<i64>,
}

/// An organization's plan, its plan's limits, the overrides a platform admin set and the
/// limits that apply (the plan's limits with the overrides applied).
#[derive(ToSchema)]
pub struct OrganizationLimits {
    pub org_id: Uuid,
    pub plan: String,
    /// Limits of the plan, of the free plan when the plan table does not contain the plan name.
    pub plan_limits: LimitValues,
    /// Only the keys that are overridden; `null` when no override is set.
    #[schema(value_type = Option<Object>)]
    pub overrides: Option<Value>,
    pub effective_limits: LimitValues,
}

/// The organization's bring-your-own-key settings. Only the masked key is returned.
#[derive(ToSchema)]
pub struct ByokSettings {
    pub enabled: bool,
    pub provider: Option<String>,
    pub api_key_masked: Option<String>,
    pub monthly_token_limit: Option<i64>,
    /// Absent when no configuration is stored.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A Markdown document from the server's legal directory.
#[derive(ToSchema)]
pub struct LegalDocument {
    pub title: String,
    /// Markdown text.
    pub content: String,
    /// The document's `Last updated:` line, or the file's modification date.
    pub last_updated: String,
}

#[derive(ToSchema)]
pub struct Faq {
    pub categories: Vec<String>,
    pub items: Vec<FaqItem>,
}

#[derive(ToSchema)]
pub struct FaqItem {
    /// The category slug and the question's number in it, for example `billing-1`.
    pub id: String,
    pub question: String,
    pub answer: String,
    pub category: String,
}

#[derive(ToSchema)]
pub struct SupportTicket {
    /// `TKT-nnnnnn`.
    pub ticket_id: String,
    pub message: String,
}

#[derive(ToSchema)]
pub struct PlatformStats {
    pub total_users: i64,
    pub total_organizations: i64,
    pub total_deployments: i64,
    pub total_plugins: i64,
}

/// Platform analytics: the sections selected by `metric` (all by default) and the period.
#[derive(ToSchema)]
pub struct Analytics {
    /// `total`, `new_this_month`, `active_this_month`.
    #[schema(value_type = Option<Object>)]
    pub users: Option<Value>,
    /// Organization count per plan.
    #[schema(value_type = Option<Object>)]
    pub subscriptions: Option<Value>,
    /// `total_requests`, `total_storage_gb`.
    #[schema(value_type = Option<Object>)]
    pub usage: Option<Value>,
    /// `running_deployments`, `byok_organizations`.
    #[schema(value_type = Option<Object>)]
    pub features: Option<Value>,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct EdgeList {
    /// The current configuration version of the snapshot feed.
    pub config_version: u64,
    /// One object per registered edge node: `name`, `region`, `status`, `token_prefix`,
    /// `served_version`, `version_lag`, `deployments`, `notification`, `last_heartbeat_at`,
    /// `created_at`.
    #[schema(value_type = Vec<Object>)]
    pub edges: Value,
}
