//! Response bodies of accounts, organizations, API tokens, audit logs, security and GDPR routes.
//!
//! Handlers build these bodies with `serde_json::json!`, so the structs exist for the document
//! only.

use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// A JWT session, returned by registration, login, refresh and OAuth sign-in.
#[derive(ToSchema)]
pub struct Session {
    /// HS256 JWT, valid for 24 hours and refreshable up to 7 days after expiry.
    pub token: String,
    pub user_id: Uuid,
    pub username: String,
}

/// A confirmation message.
#[derive(ToSchema)]
pub struct Message {
    pub message: String,
}

/// The result of a deletion or another action without a resource to return.
#[derive(ToSchema)]
pub struct SuccessMessage {
    pub success: bool,
    pub message: String,
}

#[derive(ToSchema)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    /// Plan name, for example `free`, `pro` or `team`.
    pub plan: String,
    pub owner_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// A member of an organization.
#[derive(ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub username: String,
    pub email: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

/// An API token without its secret.
#[derive(ToSchema)]
pub struct ApiTokenSummary {
    pub id: Uuid,
    pub name: String,
    /// The first 8 characters of the token, for example `mfx_abcd`.
    pub token_prefix: String,
    /// A subset of `read`, `write` and `admin`.
    pub scopes: Vec<String>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub age_days: i64,
    /// True when the token is older than the configured rotation age.
    pub needs_rotation: bool,
}

/// A new API token with its secret, which is returned only once.
#[derive(ToSchema)]
pub struct CreatedToken {
    /// The secret `mfx_...` token to send as `Authorization: Bearer`.
    pub token: String,
    pub id: Uuid,
    pub name: String,
    pub token_prefix: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The token that replaces a rotated one, with its secret, which is returned only once.
#[derive(ToSchema)]
pub struct RotatedToken {
    pub new_token: String,
    pub new_token_id: Uuid,
    pub new_token_name: String,
    pub old_token_id: Uuid,
    pub old_token_deleted: bool,
}

#[derive(ToSchema)]
pub struct AuditLogEntry {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Option<Uuid>,
    /// For example `token_created`, `deployment_created` or `byok_updated`.
    pub event_type: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct SuspiciousActivity {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Option<Uuid>,
    /// `multiple_failed_logins`, `new_login_ip` or `rapid_token_creation`.
    pub activity_type: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub ip_address: Option<String>,
    pub resolved: bool,
    pub resolved_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct ResolvedActivity {
    pub success: bool,
    pub message: String,
    pub activity_id: Uuid,
}

/// Body of the account deletion request.
#[derive(ToSchema)]
pub struct DeleteAccountRequest {
    /// Must be `true`.
    pub confirm: bool,
}

#[derive(ToSchema)]
pub struct DeletionScheduled {
    pub message: String,
    /// When the account and its data are deleted. Login is rejected from the request on.
    pub deletion_scheduled_at: DateTime<Utc>,
}

/// Everything stored about the calling user, secrets excluded.
#[derive(ToSchema)]
pub struct DataExport {
    /// `id`, `username`, `email` and `created_at` of the user.
    #[schema(value_type = Object)]
    pub user_data: Value,
    #[schema(value_type = Vec<Object>)]
    pub organizations: Value,
    #[schema(value_type = Vec<Object>)]
    pub deployments: Value,
    #[schema(value_type = Vec<Object>)]
    pub api_tokens: Value,
    #[schema(value_type = Vec<Object>)]
    pub audit_logs: Value,
    #[schema(value_type = Vec<Object>)]
    pub suspicious_activities: Value,
    #[schema(value_type = Vec<Object>)]
    pub support_tickets: Value,
    #[schema(value_type = Vec<Object>)]
    pub login_addresses: Value,
    pub exported_at: DateTime<Utc>,
}
