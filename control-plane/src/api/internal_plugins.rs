//! `GET /internal/v1/plugins/{checksum}`: plugin components for edges in other processes.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;

use crate::error::{ApiError, ApiResult};
use crate::nodes::AuthenticatedNode;
use crate::state::AppState;
use crate::store::marketplace::kind;

/// Returns the plugin component whose checksum is `sha256:{hex}`. Requires a node token.
pub async fn plugin(
    node: AuthenticatedNode,
    State(state): State<AppState>,
    Path(checksum): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let Some(sha256) = mockforge_plugins::checksum_hex(&checksum) else {
        return Err(ApiError::InvalidParameter {
            parameter: "checksum",
            message: format!("{checksum:?} is not a plugin checksum; expected sha256: followed by 64 lowercase hex digits"),
            value: None,
        });
    };
    match state.file_storage.get(kind::PLUGIN, sha256).await? {
        Some(wasm) => {
            tracing::debug!(node = %node.name, %checksum, bytes = wasm.len(), "sent a plugin component to an edge");
            Ok(([(header::CONTENT_TYPE, "application/wasm")], wasm))
        }
        None => Err(ApiError::not_found("plugin", checksum)),
    }
}
