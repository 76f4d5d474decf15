//! Platform statistics and per-organization limit overrides for platform admins
//! (`admin_emails`).

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use mockforge_snapshot::PlanLimits;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;

use super::audit::{self, RequestMeta};
use super::billing::require_platform_admin;
use super::openapi::schemas::{Analytics, ErrorBody, LimitOverridesRequest, OrganizationLimits, PlatformStats};
use super::{parse_id, ApiJson, ApiQuery};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::billing::BillingOutcome;
use crate::store::Organization;

const METRICS: [&str; 4] = ["users", "subscriptions", "usage", "features"];
const DEFAULT_RANGE: Duration = Duration::days(30);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// ISO 8601 date or timestamp; 30 days before `end_date` by default.
    start_date: Option<String>,
    /// ISO 8601 date or timestamp; now by default.
    end_date: Option<String>,
    /// One section only: `users`, `subscriptions`, `usage` or `features`.
    metric: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/stats",
    tag = "admin",
    operation_id = "get_admin_stats",
    summary = "Get platform statistics",
    responses(
        (status = 200, description = "Totals across the platform", body = PlatformStats),
        (status = 403, description = "The caller is not a platform administrator (`FORBIDDEN`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = [])),
)]
pub async fn stats(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    require_platform_admin(&state, &caller).await?;
    let stats = state.store.admin().platform_stats().await?;
    Ok(Json(json!({
        "total_users": stats.users,
        "total_organizations": stats.organizations,
        "total_deployments": stats.deployments,
        "total_plugins": stats.plugins,
    })))
}

/// Parses an ISO 8601 date (`2025-01-20`, as midnight UTC) or timestamp.
fn parse_date(parameter: &'static str, text: &str) -> ApiResult<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
        .ok_or_else(|| ApiError::InvalidParameter {
            parameter,
            message: format!("{text:?} is not an ISO 8601 date such as 2025-01-20 or 2025-01-20T12:00:00Z"),
            value: None,
        })
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/analytics",
    tag = "admin",
    operation_id = "get_admin_analytics",
    summary = "Get platform analytics",
    params(
        AnalyticsQuery,
    ),
    responses(
        (status = 200, description = "The selected sections and the period", body = Analytics),
        (status = 400, description = "A date or the metric is invalid, or the start is not before the end (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The caller is not a platform administrator (`FORBIDDEN`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = [])),
)]
pub async fn analytics(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AnalyticsQuery>,
) -> ApiResult<Json<Value>> {
    require_platform_admin(&state, &caller).await?;
    let end = match &query.end_date {
        Some(text) => parse_date("end_date", text)?,
        None => Utc::now(),
    };
    let start = match &query.start_date {
        Some(text) => parse_date("start_date", text)?,
        None => end - DEFAULT_RANGE,
    };
    if start >= end {
        return Err(ApiError::InvalidParameter {
            parameter: "start_date",
            message: format!("start_date {} must be before end_date {}", start.to_rfc3339(), end.to_rfc3339()),
            value: None,
        });
    }
    if let Some(metric) = &query.metric {
        if !METRICS.contains(&metric.as_str()) {
            return Err(ApiError::InvalidParameter {
                parameter: "metric",
                message: format!("unknown metric {metric:?}; expected one of: {}", METRICS.join(", ")),
                value: None,
            });
        }
    }

    let analytics = state.store.admin().analytics(start, end).await?;
    let mut subscriptions: Map<String, Value> =
        state.config.plans.names().map(|plan| (plan.to_owned(), Value::from(0))).collect();
    for (plan, count) in &analytics.organizations_by_plan {
        subscriptions.insert(plan.clone(), Value::from(*count));
    }
    let storage_gb = state.store.documents().total_document_bytes().await? as f64 / 1e9;
    let sections = [
        (
            "users",
            json!({ "total": analytics.users_total, "new_this_month": analytics.users_new, "active_this_month": analytics.users_active }),
        ),
        ("subscriptions", Value::Object(subscriptions)),
        ("usage", json!({ "total_requests": analytics.requests, "total_storage_gb": storage_gb })),
        (
            "features",
            json!({ "running_deployments": analytics.running_deployments, "byok_organizations": analytics.byok_organizations }),
        ),
    ];
    let mut body: Map<String, Value> = sections
        .into_iter()
        .filter(|(name, _)| query.metric.as_deref().is_none_or(|metric| metric == *name))
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    body.insert("period_start".to_owned(), json!(start));
    body.insert("period_end".to_owned(), json!(end));
    Ok(Json(Value::Object(body)))
}

/// Builds a limits object with every key of [`PlanLimits::KEYS`], `null` for an unset limit.
fn limit_values(limits: &PlanLimits) -> Value {
    let mut values = serde_json::to_value(limits).unwrap_or_else(|_| Value::Object(Map::new()));
    if let Value::Object(object) = &mut values {
        for key in PlanLimits::KEYS {
            object.entry(key).or_insert(Value::Null);
        }
        // Declaration order, whatever the order of insertion was.
        let sorted: Map<String, Value> =
            PlanLimits::KEYS.iter().map(|key| ((*key).to_owned(), object[*key].clone())).collect();
        *object = sorted;
    }
    values
}

/// Builds the body of the limit override endpoints.
fn organization_limits_json(state: &AppState, org: &Organization) -> Value {
    let plans = &state.config.plans;
    json!({
        "org_id": org.id,
        "plan": org.plan,
        "plan_limits": limit_values(&plans.effective_limits(&org.plan, None)),
        "overrides": org.limit_overrides,
        "effective_limits": limit_values(&org.effective_limits(plans)),
    })
}

/// Checks a limit overrides body key by key, so an error names the key, and parses it. Every key
/// must be one of [`PlanLimits::KEYS`] with a non-negative integer value.
fn parse_overrides(body: &Value) -> ApiResult<PlanLimits> {
    const INTEGER: &str = "a non-negative integer";
    let Some(object) = body.as_object() else {
        return Err(ApiError::validation("body", "the limit overrides must be a JSON object", body.clone())
            .expecting("a JSON object whose keys are plan limit names"));
    };
    for (key, value) in object {
        let Some(field) = PlanLimits::KEYS.iter().copied().find(|known| known == key) else {
            return Err(ApiError::validation(
                "body",
                format!("unknown key {key:?}; expected one of: {}", PlanLimits::KEYS.join(", ")),
                Value::from(key.as_str()),
            )
            .expecting("a plan limit name"));
        };
        if value.as_u64().is_none() {
            let message = if value.is_null() {
                format!("{key} must be {INTEGER}; omit the key to keep the plan's limit")
            } else {
                format!("{key} must be {INTEGER}, got {value}")
            };
            return Err(ApiError::validation(field, message, value.clone()).expecting(INTEGER));
        }
    }
    serde_json::from_value(body.clone()).map_err(|error| ApiError::InvalidJson(error.to_string()))
}

/// Loads an organization by its id from a path segment, or returns 404.
async fn organization_or_404(state: &AppState, org_id: &str) -> ApiResult<Organization> {
    let id = parse_id("organization id", org_id)?;
    state.store.organization(id).await?.ok_or_else(|| ApiError::not_found("organization", id))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/organizations/{org_id}/limits",
    tag = "admin",
    operation_id = "get_organization_limits",
    summary = "Get an organization's limits",
    description = "Platform administrators (`admin_emails`) with a JWT only.",
    params(
        ("org_id" = Uuid, Path, description = "The organization"),
    ),
    responses(
        (status = 200, description = "The plan, its limits, the overrides and the limits that apply", body = OrganizationLimits),
        (status = 400, description = "The organization id is not a UUID (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The caller is not a platform administrator (`FORBIDDEN`)", body = ErrorBody),
        (status = 404, description = "The organization does not exist (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = [])),
)]
pub async fn get_limits(State(state): State<AppState>, caller: Caller, Path(org_id): Path<String>) -> ApiResult<Json<Value>> {
    require_platform_admin(&state, &caller).await?;
    let org = organization_or_404(&state, &org_id).await?;
    Ok(Json(organization_limits_json(&state, &org)))
}

#[utoipa::path(
    put,
    path = "/api/v1/admin/organizations/{org_id}/limits",
    tag = "admin",
    operation_id = "set_organization_limits",
    summary = "Set an organization's limit overrides",
    description = "Platform administrators (`admin_emails`) with a JWT only. The body replaces the organization's \
                   overrides as a whole. Edges apply the new limits with the next configuration version.",
    params(
        ("org_id" = Uuid, Path, description = "The organization"),
    ),
    request_body(content = LimitOverridesRequest),
    responses(
        (status = 200, description = "The overrides are stored", body = OrganizationLimits),
        (status = 400, description = "An unknown key, a value that is not a non-negative integer, invalid JSON or an organization id that is not a UUID (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 403, description = "The caller is not a platform administrator (`FORBIDDEN`)", body = ErrorBody),
        (status = 404, description = "The organization does not exist (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = [])),
)]
pub async fn set_limits(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    require_platform_admin(&state, &caller).await?;
    let id = parse_id("organization id", &org_id)?;
    let overrides = parse_overrides(&body)?;
    // An empty object overrides nothing, which is stored like no overrides.
    let stored = (overrides != PlanLimits::default()).then_some(&overrides);
    let audit = audit::entry_for(
        id,
        Some(caller.user_id),
        &meta,
        "plan_limits_overridden",
        "Plan limits overridden by a platform admin".to_owned(),
        json!({ "overrides": stored }),
    );
    apply_overrides(&state, &caller, id, stored, &audit).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/organizations/{org_id}/limits",
    tag = "admin",
    operation_id = "delete_organization_limits",
    summary = "Clear an organization's limit overrides",
    description = "Platform administrators (`admin_emails`) with a JWT only. The organization gets its plan's limits again.",
    params(
        ("org_id" = Uuid, Path, description = "The organization"),
    ),
    responses(
        (status = 200, description = "The overrides are cleared", body = OrganizationLimits),
        (status = 400, description = "The organization id is not a UUID (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The caller is not a platform administrator (`FORBIDDEN`)", body = ErrorBody),
        (status = 404, description = "The organization does not exist (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = [])),
)]
pub async fn delete_limits(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Value>> {
    require_platform_admin(&state, &caller).await?;
    let id = parse_id("organization id", &org_id)?;
    let audit = audit::entry_for(
        id,
        Some(caller.user_id),
        &meta,
        "plan_limit_overrides_cleared",
        "Plan limit overrides cleared by a platform admin".to_owned(),
        json!({ "overrides": Value::Null }),
    );
    apply_overrides(&state, &caller, id, None, &audit).await
}

/// Stores the overrides, announces the new configuration version to edges and returns the
/// organization's limits.
async fn apply_overrides(
    state: &AppState,
    caller: &Caller,
    org_id: uuid::Uuid,
    overrides: Option<&PlanLimits>,
    audit: &crate::store::AuditEntry,
) -> ApiResult<Json<Value>> {
    match state.store.billing().set_limit_overrides(org_id, overrides, audit).await? {
        BillingOutcome::Applied { version } => {
            if let Some(version) = version {
                state.feed.notify(version);
            }
            tracing::info!(%org_id, ?overrides, admin = %caller.user_id, "a platform admin set an organization's limit overrides");
        }
        _ => return Err(ApiError::not_found("organization", org_id)),
    }
    let org = state.store.organization(org_id).await?.ok_or_else(|| ApiError::not_found("organization", org_id))?;
    Ok(Json(organization_limits_json(state, &org)))
}
