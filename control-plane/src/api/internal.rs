//! The internal API that edge nodes in other processes follow, under `/internal/v1/`.
//!
//! Every route requires a node token ([`AuthenticatedNode`]); customer tokens get 401. Responses
//! larger than [`COMPRESS_ABOVE_BYTES`] are compressed with gzip when the request's
//! `Accept-Encoding` allows it.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use mockforge_snapshot::{
    ApplyReport, DeploymentHeader, FeedError, Heartbeat, RemoteDelta, SnapshotFeed, TelemetryBatch, TelemetrySink,
    VersionReply,
};
use serde::Deserialize;
use tower_http::compression::predicate::SizeAbove;
use tower_http::compression::CompressionLayer;

use super::{ApiJson, ApiQuery};
use crate::error::{ApiError, ApiResult};
use crate::nodes::AuthenticatedNode;
use crate::state::AppState;
use crate::store::{status, Deployment};

/// Responses at least this large are compressed.
pub const COMPRESS_ABOVE_BYTES: u16 = 1024;
/// Long-poll time when the request names none.
const DEFAULT_WAIT: Duration = Duration::from_secs(25);
/// Maximum long-poll time a request may set.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Maximum body of a telemetry batch.
const TELEMETRY_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Builds the internal routes. They share the API's state and listener.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/internal/v1/snapshot", get(snapshot))
        .route("/internal/v1/documents/{sha256}", get(document))
        .route("/internal/v1/plugins/{checksum}", get(super::internal_plugins::plugin))
        .route("/internal/v1/wait", get(wait))
        .route("/internal/v1/report", post(report))
        .route("/internal/v1/telemetry", post(telemetry))
        .route("/internal/v1/heartbeat", post(heartbeat))
        .layer(CompressionLayer::new().gzip(true).compress_when(SizeAbove::new(COMPRESS_ABOVE_BYTES)))
}

#[derive(Deserialize)]
pub struct SnapshotQuery {
    since: Option<u64>,
}

#[derive(Deserialize)]
pub struct WaitQuery {
    version: u64,
    timeout_ms: Option<u64>,
}

fn header_of(deployment: Deployment) -> DeploymentHeader {
    DeploymentHeader {
        period_start: Some(crate::snapshot::quota_period_start(&deployment)),
        id: deployment.id,
        org_id: deployment.org_id,
        org_slug: deployment.org_slug,
        slug: deployment.slug,
        plan: deployment.org_plan,
        document_sha256: deployment.document_sha256,
        config: deployment.config_json,
        limit_overrides: deployment.org_limit_overrides,
    }
}

/// `GET /internal/v1/snapshot?since=V`: every change after `V`, or a full snapshot for 0 and for
/// a version the database has not reached (an edge that followed another database).
async fn snapshot(
    node: AuthenticatedNode,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SnapshotQuery>,
) -> ApiResult<Json<RemoteDelta>> {
    let since = query.since.unwrap_or(0);
    // The version is read before the deployments, so a change committed in between is delivered
    // again by the next request rather than lost.
    let current = state.store.config_version().await?;
    if since == 0 || since > current {
        let deployments = state.store.running_deployments().await?;
        tracing::debug!(node = %node.name, since, version = current, deployments = deployments.len(), "sending a full snapshot");
        let upserts = deployments.into_iter().map(header_of).collect();
        return Ok(Json(RemoteDelta { version: current, full: true, upserts, removals: Vec::new() }));
    }

    let mut delta = RemoteDelta { version: current, ..RemoteDelta::default() };
    if since == current {
        return Ok(Json(delta));
    }
    for id in state.store.changed_deployments(since, current).await? {
        match state.store.deployment_any(id).await? {
            Some(deployment) if status::is_running(&deployment.status) => delta.upserts.push(header_of(deployment)),
            _ => delta.removals.push(id),
        }
    }
    Ok(Json(delta))
}

/// `GET /internal/v1/documents/{sha256}`: an OpenAPI document by the hex SHA-256 of its text.
async fn document(
    _node: AuthenticatedNode,
    State(state): State<AppState>,
    Path(sha256): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let valid = sha256.len() == 64 && sha256.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if !valid {
        return Err(ApiError::InvalidParameter {
            parameter: "sha256",
            message: format!("{sha256:?} is not a lowercase hex SHA-256"),
            value: None,
        });
    }
    match state.artifacts.get(&sha256).await? {
        Some(document) => Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], document)),
        None => {
            tracing::warn!(%sha256, "an edge requested a document that is not stored");
            Err(ApiError::not_found("document", sha256))
        }
    }
}

/// `GET /internal/v1/wait?version=V&timeout_ms=N`: returns as soon as the configuration version
/// differs from `V`, or after the timeout, with the current version.
async fn wait(
    _node: AuthenticatedNode,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> ApiResult<Json<VersionReply>> {
    let timeout = query.timeout_ms.map_or(DEFAULT_WAIT, Duration::from_millis).min(MAX_WAIT);
    // The database is read first, so a version committed before the request (or by another
    // replica) returns at once. Later commits of other replicas wake the wait through
    // `version_sync` (Redis, or polling the database).
    let current = state.store.config_version().await?;
    if current != query.version || timeout.is_zero() {
        return Ok(Json(VersionReply { version: current }));
    }
    state.feed.wait_for_change(query.version, timeout).await.map_err(feed_error)?;
    let current = state.store.config_version().await?;
    Ok(Json(VersionReply { version: current }))
}

/// `POST /internal/v1/report`: what the edge did with each deployment of a delta. The node name
/// in the body is replaced by the name of the node token.
async fn report(
    node: AuthenticatedNode,
    State(state): State<AppState>,
    ApiJson(mut report): ApiJson<ApplyReport>,
) -> ApiResult<StatusCode> {
    report.node = node.name;
    state.feed.report_applied(report).await.map_err(feed_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /internal/v1/telemetry`: one batch of usage, metrics and request logs, stored all or
/// nothing. The node name in the body is replaced by the name of the node token.
async fn telemetry(
    node: AuthenticatedNode,
    State(state): State<AppState>,
    ApiJson(mut batch): ApiJson<TelemetryBatch, TELEMETRY_BODY_LIMIT>,
) -> ApiResult<StatusCode> {
    batch.node = node.name;
    match state.telemetry.report_telemetry(batch).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(FeedError::Rejected(message)) => {
            Err(ApiError::InvalidParameter { parameter: "telemetry batch", message, value: None })
        }
        Err(error) => Err(feed_error(error)),
    }
}

/// `POST /internal/v1/heartbeat`: the node's region, served version and served deployments.
async fn heartbeat(
    node: AuthenticatedNode,
    State(state): State<AppState>,
    ApiJson(heartbeat): ApiJson<Heartbeat>,
) -> ApiResult<StatusCode> {
    state.store.nodes().record_heartbeat(node.id, &heartbeat).await?;
    tracing::debug!(node = %node.name, region = %heartbeat.region, version = heartbeat.version, "edge heartbeat");
    Ok(StatusCode::NO_CONTENT)
}

fn feed_error(error: FeedError) -> ApiError {
    ApiError::Unavailable(error.to_string())
}
