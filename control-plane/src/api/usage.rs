//! What customers see of edge telemetry: deployment metrics and organization usage per 30-day
//! period.
//!
//! Usage periods are 30 days long and start on the UTC day the organization was created.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{parse_id, ApiQuery};
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Default metrics range when `start_time` is not given.
const METRICS_DEFAULT_RANGE: Duration = Duration::hours(1);
/// Maximum metrics range.
const METRICS_MAX_DAYS: i64 = 90;
const PERIOD_DAYS: i64 = 30;
const SECONDS_PER_DAY: i64 = 86_400;
const HISTORY_DEFAULT: i64 = 6;
const HISTORY_MAX: i64 = 24;

#[derive(Deserialize)]
pub struct MetricsQuery {
    start_time: Option<String>,
    end_time: Option<String>,
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    months: Option<String>,
}

fn parse_time(parameter: &'static str, text: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc)).map_err(|error| {
        ApiError::InvalidParameter {
            parameter,
            message: format!("{text:?} is not an ISO 8601 (RFC 3339) timestamp such as 2025-01-20T12:00:00Z: {error}"),
        }
    })
}

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
        });
    }
    if end - start > Duration::days(METRICS_MAX_DAYS) {
        return Err(ApiError::InvalidParameter {
            parameter: "start_time",
            message: format!("the range from start_time to end_time must be at most {METRICS_MAX_DAYS} days"),
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

/// Returns the first day (days since the Unix epoch) of the usage period `periods_back` periods
/// before the current one.
fn period_start_day(created_at: DateTime<Utc>, now: DateTime<Utc>, periods_back: i64) -> i64 {
    let anchor = created_at.timestamp().div_euclid(SECONDS_PER_DAY);
    let today = now.timestamp().div_euclid(SECONDS_PER_DAY);
    let current = (today - anchor).max(0) / PERIOD_DAYS;
    anchor + (current - periods_back) * PERIOD_DAYS
}

fn day_start(day: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(day * SECONDS_PER_DAY, 0).unwrap_or_default()
}

/// Sums the sizes of the distinct OpenAPI documents of the organization's deployments.
async fn storage_bytes(state: &AppState, caller: &Caller) -> ApiResult<u64> {
    let deployments = state.store.deployments(caller.org.id, None, None).await?;
    let documents: BTreeSet<&str> = deployments.iter().map(|deployment| deployment.document_sha256.as_str()).collect();
    let mut total = 0;
    for sha256 in documents {
        total += state.artifacts.size(sha256).await.unwrap_or(0);
    }
    Ok(total)
}

pub async fn current(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    Ok(Json(usage_summary(&state, &caller).await?))
}

/// Builds the current period's usage of the caller's organization.
pub(crate) async fn usage_summary(state: &AppState, caller: &Caller) -> ApiResult<Value> {
    let from_day = period_start_day(caller.org.created_at, Utc::now(), 0);
    let usage = state.store.usage().org_usage(caller.org.id, from_day, from_day + PERIOD_DAYS).await?;
    let plans = &state.config.plans;
    let limits = plans.limits(&caller.org.plan).or_else(|| plans.limits("free"));
    let requests_limit = limits.and_then(|limits| limits.requests_per_30d);
    let byok = state.store.settings().byok(caller.org.id).await?;
    let ai_tokens_limit = byok.and_then(|settings| settings.monthly_token_limit);
    Ok(json!({
        "requests": usage.requests,
        "requests_limit": requests_limit,
        "bytes_out": usage.bytes_out,
        "storage_bytes": storage_bytes(state, caller).await?,
        // TODO: the plan table has no storage quota yet, so no limit is reported.
        "storage_limit_bytes": Value::Null,
        // TODO: count AI tokens once AI features exist.
        "ai_tokens_used": 0,
        "ai_tokens_limit": ai_tokens_limit,
        "period_start": day_start(from_day),
        "period_end": day_start(from_day + PERIOD_DAYS) - Duration::seconds(1),
    }))
}

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
                })
            }
        },
    };
    let now = Utc::now();
    let storage = storage_bytes(&state, &caller).await?;
    let mut periods = Vec::new();
    for back in 0..months {
        let from_day = period_start_day(caller.org.created_at, now, back);
        let usage = state.store.usage().org_usage(caller.org.id, from_day, from_day + PERIOD_DAYS).await?;
        // Storage is not recorded over time, so only the current period reports it.
        let storage_bytes = if back == 0 { Value::from(storage) } else { Value::Null };
        periods.push(json!({
            "period_start": day_start(from_day),
            "period_end": day_start(from_day + PERIOD_DAYS) - Duration::seconds(1),
            "requests": usage.requests,
            "bytes_out": usage.bytes_out,
            "storage_bytes": storage_bytes,
            "ai_tokens_used": 0,
        }));
    }
    Ok(Json(Value::Array(periods)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_on_creation_day() {
        let created = DateTime::parse_from_rfc3339("2025-01-10T15:00:00Z").unwrap().with_timezone(&Utc);
        let anchor = created.timestamp() / SECONDS_PER_DAY;
        let same_day = DateTime::parse_from_rfc3339("2025-01-10T23:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(period_start_day(created, same_day, 0), anchor);
        let day_30 = created + Duration::days(30);
        assert_eq!(period_start_day(created, day_30, 0), anchor + 30);
        assert_eq!(period_start_day(created, day_30, 1), anchor);
        let day_29 = created + Duration::days(29);
        assert_eq!(period_start_day(created, day_29, 0), anchor);
    }
}
