//! HTTP routes, one module per resource, and the extractors that turn malformed input into
//! [`ApiError`]s.

mod auth;
mod deployments;
mod health;
mod organizations;
mod tokens;
pub(crate) mod validate;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method, Uri};
use axum::routing::{get, post, put};
use axum::Router;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Maximum JSON request body, except for deployment creation.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Builds the API router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/health/detailed", get(health::detailed))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/api/v1/status", get(health::status))
        .route("/api/v1/auth/register", post(auth::register))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/token/refresh", post(auth::refresh))
        .route("/api/v1/organizations", get(organizations::list))
        .route("/api/v1/organizations/{org_id}", get(organizations::get))
        .route("/api/v1/organizations/{org_id}/members", get(organizations::members))
        .route("/api/v1/tokens", post(tokens::create).get(tokens::list))
        .route("/api/v1/tokens/{token_id}", axum::routing::delete(tokens::delete))
        .route("/api/v1/deployments", post(deployments::create).get(deployments::list))
        .route("/api/v1/deployments/{deployment_id}", get(deployments::get).delete(deployments::delete))
        .route("/api/v1/deployments/{deployment_id}/status", put(deployments::update_status))
        .route("/api/v1/deployments/{deployment_id}/logs", get(deployments::logs))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn route_not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::RouteNotFound { method: method.to_string(), path: uri.path().to_owned() }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_owned() }
}

/// A JSON body of at most `LIMIT` bytes. Every failure (wrong content type, syntax, types, size)
/// becomes an [`ApiError`] that carries the parser's message.
pub struct ApiJson<T, const LIMIT: usize = JSON_BODY_LIMIT>(pub T);

impl<T, S, const LIMIT: usize> FromRequest<S> for ApiJson<T, LIMIT>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::InvalidJson(format!(
                "expected Content-Type: application/json, got {:?}",
                if essence.is_empty() { "nothing" } else { essence }
            )));
        }
        let bytes = axum::body::to_bytes(request.into_body(), LIMIT)
            .await
            .map_err(|_| ApiError::PayloadTooLarge { limit: LIMIT as u64 })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|error| ApiError::InvalidJson(error.to_string()))
    }
}

/// Query parameters whose parse errors become [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|query| ApiQuery(query.0))
            .map_err(|rejection| ApiError::InvalidParameter { parameter: "query string", message: rejection.body_text() })
    }
}

/// Parses a resource id from a path segment.
pub fn parse_id(parameter: &'static str, text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::InvalidParameter { parameter, message: format!("{text:?} is not a UUID") })
}
