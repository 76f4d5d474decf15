//! What customers see of edge telemetry: deployment metrics and organization usage per 30-day
//! period.
//!
//! Usage periods are the organization's 30-day request quota periods (see [`crate::quota_period`]):
//! anchored at the subscription's billing period start, else at the UTC day the organization was
//! created.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;

use super::openapi::schemas::{DeploymentMetrics, ErrorBody, UsagePeriod};
use super::{parse_id, ApiQuery};
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::quota_period;
use crate::state::AppState;

/// Default metrics range when `start_time` is not given.
const METRICS_DEFAULT_RANGE: Duration = Duration::hours(1);
/// Maximum metrics range.
const METRICS_MAX_DAYS: i64 = 90;
const HISTORY_DEFAULT: i64 = 6;
const HISTORY_MAX: i64 = 24;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// RFC 3339 start of the range; one hour before `end_time` by default. The range is at
    /// most 90 days.
    #[param(value_type = Option<DateTime<Utc>>)]
    start_time: Option<String>,
    /// RFC 3339 end of the range; now by default.
    #[param(value_type = Option<DateTime<Utc>>)]
    end_time: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Maximum number of 30-day periods: 1 to 24, default 6. Periods before the organization was
    /// created are not listed.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 24)]
    months: Option<String>,
}

fn parse_time(parameter: &'static str, text: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc)).map_err(|error| {
        ApiError::InvalidParameter {
            parameter,
            message: format!("{text:?} is not an ISO 8601 (RFC 3339) timestamp such as 2025-01-20T12:00:00Z: {error}"),
            value: None,
        }
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/deployments/{deployment_id}/metrics",
    tag = "deployments",
    operation_id = "get_deployment_metrics",
    summary = "Get deployment metrics",
    params(
        ("deployment_id" = Uuid, Path, description = "The deployment"),
        MetricsQuery,
    ),
    responses(
        (status = 200, description = "Request counts, latency and errors in the range, from per-minute telemetry of the edges", body = DeploymentMetrics),
        (status = 400, description = "The id or a time is invalid, or the range is empty or longer than 90 days (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
        (status = 404, description = "The deployment does not exist in the organization (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn metrics(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let id = parse_id("deployment id", &id)?;
    let end = match &query.end_time {
        Some(text) => parse_time("end_time", text)?,
        None => Utc::now(),
    };
    let start = match &query.start_time {
        Some(text) => parse_time("start_time", text)?,
        None => end - METRICS_DEFAULT_RANGE,
    };
    if start >= end {
        return Err(ApiError::InvalidParameter {
            parameter: "start_time",
            message: format!("start_time {} must be before end_time {}", start.to_rfc3339(), end.to_rfc3339()),
            value: None,
        });
    }
    if end - start > Duration::days(METRICS_MAX_DAYS) {
        return Err(ApiError::InvalidParameter {
            parameter: "start_time",
            message: format!("the range from start_time to end_time must be at most {METRICS_MAX_DAYS} days"),
            value: None,
        });
    }
    if state.store.deployment(id, caller.org.id).await?.is_none() {
        return Err(ApiError::not_found("deployment", id));
    }

    // Metrics are stored per minute, so the range covers every minute that starts in it.
    let from_minute = start.timestamp().div_euclid(60) * 60;
    let to_minute = end.timestamp();
    let totals = state.store.usage().metrics(id, caller.org.id, from_minute, to_minute).await?;
    let minutes = ((end - start).num_seconds() as f64 / 60.0).max(1.0);
    let errors: u64 = totals.status_counts.range(400..).map(|(_, count)| count).sum();
    let (average, error_rate) = if totals.requests == 0 {
        (0.0, 0.0)
    } else {
        (totals.latency_ms_sum / totals.requests as f64, errors as f64 / totals.requests as f64)
    };
    let status_codes: Map<String, Value> =
        totals.status_counts.iter().map(|(status, count)| (status.to_string(), Value::from(*count))).collect();
    Ok(Json(json!({
        "requests_total": totals.requests,
        "requests_per_minute": totals.requests as f64 / minutes,
        "average_response_time_ms": average,
        "error_rate": error_rate,
        "status_codes": status_codes,
        "bytes_in": totals.bytes_in,
        "bytes_out": totals.bytes_out,
        "period_start": start,
        "period_end": end,
    })))
}

/// Returns the anchor of the caller's organization's quota periods, in Unix seconds.
async fn period_anchor(state: &AppState, caller: &Caller) -> ApiResult<i64> {
    let subscription = state.store.billing().subscription(caller.org.id).await?;
    let billing_start = subscription.and_then(|row| row.current_period_start);
    Ok(quota_period::anchor(billing_start, caller.org.created_at))
}

fn unix_time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// Returns the bytes the caller's organization stores, as the storage quota counts them.
async fn storage_bytes(state: &AppState, caller: &Caller) -> ApiResult<u64> {
    crate::quota::storage_bytes(state, caller.org.id).await
}

#[utoipa::path(
    get,
    path = "/api/v1/usage",
    tag = "usage",
    operation_id = "get_current_usage",
    summary = "Get current usage",
    responses(
        (status = 200, description = "Usage of the current 30-day period and the plan's limits", body = UsagePeriod),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn current(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    Ok(Json(usage_summary(&state, &caller).await?))
}

/// Builds the current period's usage of the caller's organization.
pub(crate) async fn usage_summary(state: &AppState, caller: &Caller) -> ApiResult<Value> {
    let anchor = period_anchor(state, caller).await?;
    let (start, end) = quota_period::period_at(anchor, Utc::now().timestamp(), 0);
    let usage = state.store.usage().org_usage(caller.org.id, start, end).await?;
    let plans = &state.config.plans;
    let limits = caller.org.effective_limits(plans);
    let requests_limit = limits.requests_per_30d;
    let byok = state.store.settings().byok(caller.org.id).await?;
    let ai_tokens_limit = byok.and_then(|settings| settings.monthly_token_limit);
    Ok(json!({
        "requests": usage.requests,
        "requests_limit": requests_limit,
        "bytes_out": usage.bytes_out,
        "storage_bytes": storage_bytes(state, caller).await?,
        "storage_limit_bytes": limits.max_storage_bytes,
        // TODO: count AI tokens once AI features exist.
        "ai_tokens_used": 0,
        "ai_tokens_limit": ai_tokens_limit,
        "period_start": unix_time(start),
        "period_end": unix_time(end - 1),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/usage/history",
    tag = "usage",
    operation_id = "get_usage_history",
    summary = "Get usage history",
    params(
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "One entry per period, the current period first, back to the period in which the organization was created", body = [UsagePeriod]),
        (status = 400, description = "`months` is invalid (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let months = match &query.months {
        None => HISTORY_DEFAULT,
        Some(text) => match text.parse::<i64>() {
            Ok(months) if (1..=HISTORY_MAX).contains(&months) => months,
            _ => {
                return Err(ApiError::InvalidParameter {
                    parameter: "months",
                    message: format!("{text:?} is not an integer from 1 to {HISTORY_MAX}"),
                    value: Some(text.clone()),
                })
            }
        },
    };
    let now = Utc::now().timestamp();
    let anchor = period_anchor(&state, &caller).await?;
    let storage = storage_bytes(&state, &caller).await?;
    let org_created_at = caller.org.created_at.timestamp();
    let mut periods = Vec::new();
    for back in 0..months {
        let (start, end) = quota_period::period_at(anchor, now, back);
        // The list stops at the period that contains the organization's creation, because
        // earlier periods cannot have usage. The current period is always listed.
        if back > 0 && end <= org_created_at {
            break;
        }
        let usage = state.store.usage().org_usage(caller.org.id, start, end).await?;
        // Storage is not recorded over time, so only the current period reports it.
        let storage_bytes = if back == 0 { Value::from(storage) } else { Value::Null };
        periods.push(json!({
            "period_start": unix_time(start),
            "period_end": unix_time(end - 1),
            "requests": usage.requests,
            "bytes_out": usage.bytes_out,
            "storage_bytes": storage_bytes,
            "ai_tokens_used": 0,
        }));
    }
    Ok(Json(Value::Array(periods)))
}
