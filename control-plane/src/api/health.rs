//! Health probes and the public status page.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::openapi::schemas::{DetailedHealth, ErrorBody, Health, ProbeStatus, StatusPage};
use crate::error::ApiError;
use crate::state::AppState;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    operation_id = "get_health",
    summary = "Health check",
    responses(
        (status = 200, description = "The server is up", body = Health),
    ),
)]
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": VERSION }))
}

#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    operation_id = "get_liveness",
    summary = "Liveness probe",
    responses(
        (status = 200, description = "The process is alive", body = ProbeStatus),
    ),
)]
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    operation_id = "get_readiness",
    summary = "Readiness probe",
    responses(
        (status = 200, description = "Migrations have finished and the database is reachable", body = ProbeStatus),
        (status = 503, description = "Migrations are running or the database is unreachable (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if !state.ready.load(Ordering::Acquire) {
        return Err(ApiError::Unavailable("database migrations have not finished".to_owned()));
    }
    if check_database(&state).await != Check::Ok {
        return Err(ApiError::Unavailable("the database is unreachable".to_owned()));
    }
    Ok(Json(json!({ "status": "ready" })))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Ok,
    NotConfigured,
    Error,
}

impl Check {
    fn as_str(self) -> &'static str {
        match self {
            Check::Ok => "ok",
            Check::NotConfigured => "not_configured",
            Check::Error => "error",
        }
    }
}

async fn check_database(state: &AppState) -> Check {
    match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Check::Ok,
        Ok(Err(error)) => {
            tracing::warn!(%error, "database health check failed");
            Check::Error
        }
        Err(_) => {
            tracing::warn!("database health check timed out");
            Check::Error
        }
    }
}

async fn check_redis(state: &AppState) -> Check {
    let Some(redis) = &state.redis else { return Check::NotConfigured };
    let mut connection = redis.clone();
    let command = redis::cmd("PING");
    let ping = command.query_async::<String>(&mut connection);
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => Check::Ok,
        Ok(Err(error)) => {
            tracing::warn!(%error, "Redis health check failed");
            Check::Error
        }
        Err(_) => {
            tracing::warn!("Redis health check timed out");
            Check::Error
        }
    }
}

/// Writes and removes a probe file in the data directory.
async fn check_storage(state: &AppState) -> Check {
    let probe = state.config.data_dir.join(format!(".health-{}", uuid::Uuid::new_v4()));
    match tokio::fs::write(&probe, b"ok").await {
        Ok(()) => {
            let _ = tokio::fs::remove_file(&probe).await;
            Check::Ok
        }
        Err(error) => {
            tracing::warn!(%error, path = %probe.display(), "storage health check failed");
            Check::Error
        }
    }
}

async fn run_checks(state: &AppState) -> (Check, Check, Check) {
    tokio::join!(check_database(state), check_redis(state), check_storage(state))
}

#[utoipa::path(
    get,
    path = "/health/detailed",
    tag = "health",
    operation_id = "get_detailed_health",
    summary = "Detailed health check",
    description = "Checks the database, Redis and a write to the data directory.",
    responses(
        (status = 200, description = "Every check is `ok` or `not_configured`", body = DetailedHealth),
        (status = 503, description = "A check reports `error`; the body has the same shape with status `degraded`", body = DetailedHealth),
    ),
)]
pub async fn detailed(State(state): State<AppState>) -> Response {
    let (database, redis, storage) = run_checks(&state).await;
    let healthy = ![database, redis, storage].contains(&Check::Error);
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "version": VERSION,
        "timestamp": chrono::Utc::now(),
        "checks": { "database": database.as_str(), "redis": redis.as_str(), "storage": storage.as_str() },
    });
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

fn service(name: &str, check: Check) -> Value {
    let (status, message) = match check {
        Check::Ok => ("operational", Value::Null),
        Check::NotConfigured => ("not_configured", Value::from(format!("{name} is not configured"))),
        Check::Error => ("outage", Value::from(format!("{name} is unreachable"))),
    };
    json!({ "name": name, "status": status, "message": message })
}

#[utoipa::path(
    get,
    path = "/api/v1/status",
    tag = "health",
    operation_id = "get_status",
    summary = "System status",
    description = "Public status page: `overall` is `degraded` when a service is unreachable.",
    responses(
        (status = 200, description = "The state of each service", body = StatusPage),
    ),
)]
pub async fn status(State(state): State<AppState>) -> Json<Value> {
    let (database, redis, storage) = run_checks(&state).await;
    let overall = if [database, redis, storage].contains(&Check::Error) { "degraded" } else { "operational" };
    Json(json!({
        "overall": overall,
        "services": [
            service("Database", database),
            service("Redis", redis),
            service("Object Storage", storage),
            service("API Service", Check::Ok),
        ],
        "timestamp": chrono::Utc::now(),
    }))
}
