//! Platform statistics for platform admins (`admin_emails`).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;

use super::billing::require_platform_admin;
use super::openapi::schemas::{Analytics, ErrorBody, PlatformStats};
use super::ApiQuery;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

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
