//! `X-Request-Id` on every API response: the client's value when it is sane, otherwise a new
//! UUID v4. The id is also set on the request, so the tracing span and handlers see it.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Maximum length of a client-supplied request id, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Sets `X-Request-Id` on the request and copies it to the response.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_sane(value))
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    // Both forms contain only visible ASCII, so the conversion cannot fail.
    let header_value = HeaderValue::from_str(&request_id).expect("request id is visible ASCII");
    request.headers_mut().insert(REQUEST_ID_HEADER, header_value.clone());

    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID_HEADER, header_value);
    response
}

/// Accepts 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII characters (no spaces or control bytes).
fn is_sane(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_REQUEST_ID_LEN && value.bytes().all(|b| b.is_ascii_graphic())
}

/// Creates the tracing span for one request, with its method, path and request id.
pub fn make_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}
