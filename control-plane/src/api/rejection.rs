//! Conversion of the plain-text rejections of axum's extractors (`Path`, `Query`, `Json`, `Form`,
//! `Multipart`, body size limits) into the API's JSON error format.
//!
//! Handlers use [`super::ApiJson`], [`super::ApiQuery`] and [`super::ApiBody`], which reject with
//! an [`ApiError`] directly. This middleware covers the extractors that still reject with axum's
//! `text/plain` response, so no error leaves the API in another format.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Request body limit of the routes without one of their own: axum's default, set explicitly so
/// a 413 rewritten here can name it.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Maximum rejection text read back from a response.
const MAX_REJECTION_TEXT: usize = 64 * 1024;

/// Rewrites an error response with a `text/plain` body, which only axum's extractor rejections
/// produce, into an [`ApiError`] response with the same status.
pub async fn json_rejections(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let plain_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain_text {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), MAX_REJECTION_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    tracing::debug!(status = status.as_u16(), rejection = %text, "converted an extractor rejection to the JSON error format");
    rejection_error(status, text).into_response()
}

fn rejection_error(status: StatusCode, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: DEFAULT_BODY_LIMIT as u64 },
        status if status.is_server_error() => ApiError::Internal(anyhow::anyhow!("extractor rejection: {text}")),
        status => ApiError::Rejected { status, message: text },
    }
}

