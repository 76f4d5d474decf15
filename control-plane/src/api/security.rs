//! Login lock, suspicious activities and logout.
//!
//! More than [`EMAIL_FAILURES_MAX`] failed logins for one e-mail address, or more than
//! [`IP_FAILURES_MAX`] from one IP address, within [`LOCK_WINDOW`] lock further logins for that
//! address with 429 until the oldest failure leaves the window. Each lock records a suspicious
//! activity in every organization of the user the e-mail address belongs to.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::audit::{self, RequestMeta};
use super::openapi::schemas::{ErrorBody, ResolvedActivity, SuccessMessage};
use super::{parse_id, ApiBody, ApiQuery};
use crate::auth::{Caller, Credential};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::security::{SuspiciousActivity, SuspiciousQuery};
use crate::store::{now, User};

/// Failed logins allowed per e-mail address inside the window.
pub const EMAIL_FAILURES_MAX: i64 = 5;
/// Failed logins allowed per IP address inside the window.
pub const IP_FAILURES_MAX: i64 = 10;
pub const LOCK_WINDOW: Duration = Duration::minutes(15);
/// API tokens an organization may create in one hour before it is reported.
pub const TOKENS_PER_HOUR_MAX: i64 = 10;
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];
const LIMIT_DEFAULT: i64 = 50;
const LIMIT_MAX: i64 = 1000;

fn client_ip(meta: &RequestMeta) -> String {
    meta.ip_address.clone().unwrap_or_else(|| "unknown".to_owned())
}

/// Rejects a login attempt while the e-mail or IP address is locked.
pub async fn check_login_lock(state: &AppState, email: &str, meta: &RequestMeta) -> ApiResult<()> {
    let ip = client_ip(meta);
    let now = Utc::now();
    let counts = state.store.security().login_failures(email, &ip, now - LOCK_WINDOW).await?;
    let locked_until =
        if counts.email >= EMAIL_FAILURES_MAX { counts.email_oldest.map(|oldest| oldest + LOCK_WINDOW) } else { None };
    let locked_until = if counts.ip >= IP_FAILURES_MAX {
        let ip_until = counts.ip_oldest.map(|oldest| oldest + LOCK_WINDOW);
        locked_until.max(ip_until)
    } else {
        locked_until
    };
    let Some(until) = locked_until else { return Ok(()) };
    let retry_after = (until - now).num_seconds().max(1) as u64;
    Err(ApiError::RateLimited {
        message: format!(
            "too many failed logins: at most {EMAIL_FAILURES_MAX} per e-mail address and {IP_FAILURES_MAX} per IP address \
             in {} minutes; retry in {retry_after} seconds",
            LOCK_WINDOW.num_minutes()
        ),
        limit: if counts.email >= EMAIL_FAILURES_MAX { EMAIL_FAILURES_MAX as u64 } else { IP_FAILURES_MAX as u64 },
        retry_after,
    })
}

fn activity(
    org_id: Uuid,
    user_id: Option<Uuid>,
    kind: &str,
    severity: &str,
    description: String,
    metadata: Value,
    ip: Option<String>,
) -> SuspiciousActivity {
    SuspiciousActivity {
        id: Uuid::new_v4(),
        org_id,
        user_id,
        activity_type: kind.to_owned(),
        severity: severity.to_owned(),
        description,
        metadata,
        ip_address: ip,
        resolved: false,
        resolved_by: None,
        resolved_at: None,
        created_at: now(),
    }
}

/// Records a failed login. When it starts a lock, records a suspicious activity in each
/// organization of `user`.
pub async fn login_failed(state: &AppState, email: &str, meta: &RequestMeta, user: Option<&User>) -> ApiResult<()> {
    let ip = client_ip(meta);
    let since = Utc::now() - LOCK_WINDOW;
    state.store.security().record_login_failure(email, &ip, since).await?;
    let counts = state.store.security().login_failures(email, &ip, since).await?;
    let email_locked = counts.email == EMAIL_FAILURES_MAX;
    let ip_locked = counts.ip == IP_FAILURES_MAX;
    if !email_locked && !ip_locked {
        return Ok(());
    }
    tracing::warn!(ip_address = %ip, email_locked, ip_locked, "locked logins after repeated failures");
    let Some(user) = user else { return Ok(()) };
    let orgs = state.store.organizations_of(user.id).await?;
    let description = if email_locked {
        format!("{EMAIL_FAILURES_MAX} failed logins for the account within {} minutes", LOCK_WINDOW.num_minutes())
    } else {
        format!("{IP_FAILURES_MAX} failed logins from one IP address within {} minutes", LOCK_WINDOW.num_minutes())
    };
    let activities: Vec<_> = orgs
        .iter()
        .map(|org| {
            activity(
                org.id,
                Some(user.id),
                "multiple_failed_logins",
                "high",
                description.clone(),
                json!({ "email": email, "ip_address": ip, "failures_for_email": counts.email, "failures_from_ip": counts.ip }),
                Some(ip.clone()),
            )
        })
        .collect();
    state.store.security().record_suspicious(&activities).await?;
    Ok(())
}

/// Clears the e-mail's failures and reports a login from an address the user has not logged in
/// from before.
pub async fn login_succeeded(state: &AppState, user: &User, meta: &RequestMeta) -> ApiResult<()> {
    state.store.security().clear_login_failures(&user.email).await?;
    let Some(ip) = meta.ip_address.clone() else { return Ok(()) };
    let (first_login, new_address) = state.store.security().remember_login_address(user.id, &ip).await?;
    if first_login || !new_address {
        return Ok(());
    }
    let orgs = state.store.organizations_of(user.id).await?;
    let activities: Vec<_> = orgs
        .iter()
        .map(|org| {
            activity(
                org.id,
                Some(user.id),
                "new_login_ip",
                "low",
                "Login from an IP address not seen before for this account".to_owned(),
                json!({ "ip_address": ip, "user_agent": meta.user_agent }),
                Some(ip.clone()),
            )
        })
        .collect();
    state.store.security().record_suspicious(&activities).await?;
    Ok(())
}

/// Reports an organization that created more than [`TOKENS_PER_HOUR_MAX`] API tokens in the
/// last hour, once when the count passes the limit.
pub async fn check_token_creation_rate(state: &AppState, caller: &Caller, meta: &RequestMeta) -> ApiResult<()> {
    let query = crate::store::AuditQuery {
        event_type: Some("token_created".to_owned()),
        user_id: None,
        // One more than the trigger count, so later creations in the hour count past it.
        limit: TOKENS_PER_HOUR_MAX + 2,
        offset: 0,
    };
    let recent = state.store.accounts().audit_logs(caller.org.id, &query).await?;
    let hour_ago = Utc::now() - Duration::hours(1);
    let count = recent.iter().filter(|entry| entry.created_at > hour_ago).count() as i64;
    if count != TOKENS_PER_HOUR_MAX + 1 {
        return Ok(());
    }
    let record = activity(
        caller.org.id,
        Some(caller.user_id),
        "rapid_token_creation",
        "medium",
        format!("More than {TOKENS_PER_HOUR_MAX} API tokens created within one hour"),
        json!({ "tokens_last_hour": count }),
        meta.ip_address.clone(),
    );
    state.store.security().record_suspicious(&[record]).await?;
    Ok(())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The organization whose activities to list; the caller's organization by default.
    #[param(value_type = Option<Uuid>)]
    org_id: Option<String>,
    /// Only activities of this user.
    #[param(value_type = Option<Uuid>)]
    user_id: Option<String>,
    /// `low`, `medium`, `high` or `critical`.
    severity: Option<String>,
    /// Maximum number of activities, newest first: 1 to 1000, default 50.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// Optional body of the resolve request.
#[derive(Deserialize, Default, ToSchema)]
#[schema(as = ResolveActivityRequest)]
pub struct ResolveRequest {
    /// Must be the calling user's id when present.
    #[schema(value_type = Option<Uuid>)]
    resolved_by_user_id: Option<String>,
}

fn activity_json(activity: &SuspiciousActivity) -> Value {
    json!({
        "id": activity.id,
        "org_id": activity.org_id,
        "user_id": activity.user_id,
        "activity_type": activity.activity_type,
        "severity": activity.severity,
        "description": activity.description,
        "metadata": activity.metadata,
        "ip_address": activity.ip_address,
        "resolved": activity.resolved,
        "resolved_by": activity.resolved_by,
        "resolved_at": activity.resolved_at,
        "created_at": activity.created_at,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/security/suspicious-activities",
    tag = "security",
    operation_id = "list_suspicious_activities",
    summary = "List suspicious activities",
    description = "Failed-login locks, logins from a new IP address and more than 10 tokens created in an hour. Owners and admins only.",
    params(
        ListQuery,
    ),
    responses(
        (status = 200, description = "Activities, newest first", body = [super::openapi::schemas::SuspiciousActivity]),
        (status = 400, description = "A query parameter is invalid (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The caller is not an owner or admin of the organization, or the API token lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "The organization does not exist or the caller is not a member (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let org_id = match &query.org_id {
        Some(text) => parse_id("org_id filter", text)?,
        None => caller.org.id,
    };
    audit::require_org_admin(&state, &caller, org_id).await?;
    let user_id = match &query.user_id {
        Some(text) => Some(parse_id("user_id filter", text)?),
        None => None,
    };
    if let Some(severity) = &query.severity {
        if !SEVERITIES.contains(&severity.as_str()) {
            return Err(ApiError::InvalidParameter {
                parameter: "severity",
                message: format!("unknown severity {severity:?}; expected low, medium, high or critical"),
                value: None,
            });
        }
    }
    let limit = match &query.limit {
        None => LIMIT_DEFAULT,
        Some(text) => match text.parse::<i64>() {
            Ok(limit) if (1..=LIMIT_MAX).contains(&limit) => limit,
            _ => {
                return Err(ApiError::InvalidParameter {
                    parameter: "limit",
                    message: format!("{text:?} is not an integer from 1 to {LIMIT_MAX}"),
                    value: None,
                })
            }
        },
    };
    let filter = SuspiciousQuery { user_id, severity: query.severity.clone(), limit };
    let activities = state.store.security().suspicious_activities(org_id, &filter).await?;
    Ok(Json(Value::Array(activities.iter().map(activity_json).collect())))
}

#[utoipa::path(
    post,
    path = "/api/v1/security/suspicious-activities/{activity_id}/resolve",
    tag = "security",
    operation_id = "resolve_suspicious_activity",
    summary = "Resolve a suspicious activity",
    params(
        ("activity_id" = Uuid, Path, description = "The activity to resolve"),
    ),
    request_body(content = Option<ResolveRequest>),
    responses(
        (status = 200, description = "The activity is marked resolved by the caller", body = ResolvedActivity),
        (status = 400, description = "Invalid input (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `admin` scope, or the user is not an owner or admin of the organization", body = ErrorBody),
        (status = 404, description = "The activity does not exist in the organization (`NOT_FOUND`)", body = ErrorBody),
        (status = 413, description = "The body exceeds 1 MiB (1048576 bytes); `details.max_bytes` is the limit (`PAYLOAD_TOO_LARGE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(activity_id): Path<String>,
    ApiBody(body): ApiBody,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let activity_id = parse_id("activity id", &activity_id)?;
    // The body is optional.
    let request: ResolveRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ResolveRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|error| ApiError::InvalidJson(error.to_string()))?
    };
    if let Some(text) = &request.resolved_by_user_id {
        let resolver = Uuid::parse_str(text)
            .map_err(|_| ApiError::validation("resolved_by_user_id", "must be a UUID", Value::from(text.as_str())))?;
        if resolver != caller.user_id {
            return Err(ApiError::validation(
                "resolved_by_user_id",
                "must be the id of the calling user, or left out",
                Value::from(text.as_str()),
            ));
        }
    }
    let entry = audit::entry(
        &caller,
        &meta,
        "suspicious_activity_resolved",
        format!("Suspicious activity {activity_id} resolved"),
        json!({ "activity_id": activity_id }),
    );
    let resolved =
        state.store.security().resolve_suspicious(activity_id, caller.org.id, caller.user_id, &entry).await?;
    if !resolved {
        return Err(ApiError::not_found("suspicious activity", activity_id));
    }
    Ok(Json(json!({
        "success": true,
        "message": "Suspicious activity resolved successfully",
        "activity_id": activity_id,
    })))
}

/// Revokes every JWT of the calling user, on all devices.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    operation_id = "logout",
    summary = "Log out everywhere",
    responses(
        (status = 200, description = "Every JWT of the user issued before is revoked", body = SuccessMessage),
        (status = 400, description = "The request uses an API token; delete the token instead (`VALIDATION_ERROR`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = [])),
)]
pub async fn logout(State(state): State<AppState>, caller: Caller, meta: RequestMeta) -> ApiResult<Json<Value>> {
    if !matches!(caller.credential, Credential::Jwt) {
        return Err(ApiError::validation(
            "Authorization",
            "logout ends JWT sessions; delete an API token with DELETE /api/v1/tokens/{id} instead",
            None,
        ));
    }
    let orgs = state.store.organizations_of(caller.user_id).await?;
    let entries: Vec<_> = orgs
        .iter()
        .map(|org| {
            audit::entry_for(
                org.id,
                Some(caller.user_id),
                &meta,
                "user_logout",
                "User logged out of all sessions".to_owned(),
                json!({}),
            )
        })
        .collect();
    state.store.security().revoke_sessions(caller.user_id, &entries).await?;
    tracing::info!(user_id = %caller.user_id, "revoked every session of a user");
    Ok(Json(json!({ "success": true, "message": "Logged out; every token issued before is revoked" })))
}
