//! `GET /api/v1/admin/edges`: the edge nodes, for platform administrators.

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::openapi::schemas::{EdgeList, ErrorBody};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Lists every edge node with its region, version lag and last heartbeat. Only users whose
/// e-mail address is in `admin_emails` (or who registered as administrators) may call it.
#[utoipa::path(
    get,
    path = "/api/v1/admin/edges",
    tag = "admin",
    operation_id = "list_edges",
    summary = "List edge nodes",
    responses(
        (status = 200, description = "Every edge node with its region, version lag and last heartbeat", body = EdgeList),
        (status = 403, description = "The caller is not a platform administrator (`FORBIDDEN`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn list(caller: Caller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let user = state.store.user_by_id(caller.user_id).await?;
    let is_admin = user.is_some_and(|user| {
        user.is_admin || state.config.admin_emails.iter().any(|email| email.trim().eq_ignore_ascii_case(&user.email))
    });
    if !is_admin {
        return Err(ApiError::Forbidden("listing edge nodes requires a platform administrator account".to_owned()));
    }

    let current = state.store.config_version().await?;
    let at = Utc::now();
    let nodes = state.store.nodes().nodes().await?;
    let edges: Vec<Value> = nodes
        .iter()
        .map(|node| {
            let status = match node.last_heartbeat_at {
                None => "never_seen",
                Some(_) if node.is_fresh(at) => "healthy",
                Some(_) => "stale",
            };
            json!({
                "name": node.name,
                "region": node.region,
                "status": status,
                "token_prefix": node.token_prefix,
                "served_version": node.served_version,
                "version_lag": node.served_version.map(|served| current.saturating_sub(served)),
                "deployments": node.deployments.len(),
                "notification": node.notification,
                "last_heartbeat_at": node.last_heartbeat_at,
                "created_at": node.created_at,
            })
        })
        .collect();
    Ok(Json(json!({ "config_version": current, "edges": edges })))
}
