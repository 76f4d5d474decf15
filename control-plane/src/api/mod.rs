//! HTTP routes, one module per resource, and the extractors that turn malformed input into
//! [`ApiError`]s.

mod admin;
pub(crate) mod audit;
mod admin_edges;
mod auth;
mod billing;
mod deployments;
mod gdpr;
mod health;
mod legal;
mod internal;
mod marketplace;
mod oauth;
mod organizations;
mod security;
mod settings;
mod tokens;
mod usage;
mod verification;
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
        .route("/api/v1/auth/logout", post(security::logout))
        .route("/api/v1/auth/verify-email", get(verification::verify_email))
        .route("/api/v1/auth/resend-verification", post(verification::resend_verification))
        .route("/api/v1/auth/oauth/{provider}/authorize", get(oauth::authorize))
        .route("/api/v1/auth/oauth/{provider}/callback", get(oauth::callback))
        .route("/api/v1/security/suspicious-activities", get(security::list))
        .route("/api/v1/security/suspicious-activities/{activity_id}/resolve", post(security::resolve))
        .route("/api/v1/organizations", get(organizations::list))
        .route("/api/v1/organizations/{org_id}", get(organizations::get))
        .route("/api/v1/organizations/{org_id}/members", get(organizations::members))
        .route("/api/v1/organizations/{org_id}/audit-logs", get(audit::list))
        .route("/api/v1/tokens", post(tokens::create).get(tokens::list))
        .route("/api/v1/tokens/rotation-status", get(tokens::rotation_status))
        .route("/api/v1/tokens/{token_id}", axum::routing::delete(tokens::delete))
        .route("/api/v1/tokens/{token_id}/rotate", post(tokens::rotate))
        .route("/api/v1/deployments", post(deployments::create).get(deployments::list))
        .route("/api/v1/deployments/{deployment_id}", get(deployments::get).delete(deployments::delete))
        .route("/api/v1/deployments/{deployment_id}/status", put(deployments::update_status))
        .route("/api/v1/deployments/{deployment_id}/logs", get(deployments::logs))
        .route("/api/v1/deployments/{deployment_id}/metrics", get(usage::metrics))
        .route("/api/v1/usage", get(usage::current))
        .route("/api/v1/usage/history", get(usage::history))
        .route("/api/v1/legal/terms", get(legal::terms))
        .route("/api/v1/legal/privacy", get(legal::privacy))
        .route("/api/v1/legal/dpa", get(legal::dpa))
        .route("/api/v1/faq", get(legal::faq))
        .route("/api/v1/support/contact", post(legal::contact))
        .route("/api/v1/settings/byok", get(settings::get).put(settings::put).delete(settings::delete))
        .route("/api/v1/billing/subscription", get(billing::subscription))
        .route("/api/v1/billing/checkout", post(billing::checkout))
        .route("/api/v1/billing/webhook", post(billing::webhook))
        .route("/api/v1/admin/organizations/{org_id}/plan", put(billing::admin_set_plan))
        .route("/api/v1/gdpr/export", get(gdpr::export))
        .route("/api/v1/gdpr/delete", post(gdpr::delete))
        .route("/api/v1/admin/stats", get(admin::stats))
        .route("/api/v1/admin/analytics", get(admin::analytics))
        .route("/api/v1/admin/edges", get(admin_edges::list))
        .merge(internal::router())
        .merge(marketplace::router())
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::ratelimit::limit))
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
