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
mod internal_plugins;
mod marketplace;
mod oauth;
pub mod openapi;
mod organizations;
mod rejection;
mod request_id;
mod security;
mod settings;
mod tokens;
mod usage;
mod verification;
pub(crate) mod validate;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method, Uri};
use axum::Router;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Maximum JSON request body, except for deployment creation.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Builds the API router: the documented customer routes, the edge API, the fallbacks for
/// unknown routes and methods, and the rate limiter.
pub fn router(state: AppState) -> Router {
    let (customer_routes, _document) = routes().split_for_parts();
    customer_routes
        .merge(internal::router())
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(rejection::json_rejections))
        .layer(axum::extract::DefaultBodyLimit::max(rejection::DEFAULT_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::ratelimit::limit))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_id::make_span))
        .layer(axum::middleware::from_fn(request_id::assign))
        .with_state(state)
}

/// Registers every customer route with its handler's OpenAPI operation, so the router and
/// [`openapi::document`] cannot list different routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::detailed))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(health::status))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(security::logout))
        .routes(routes!(verification::verify_email))
        .routes(routes!(verification::resend_verification))
        .routes(routes!(oauth::authorize))
        .routes(routes!(oauth::callback))
        .routes(routes!(security::list))
        .routes(routes!(security::resolve))
        .routes(routes!(organizations::list))
        .routes(routes!(organizations::get))
        .routes(routes!(organizations::members))
        .routes(routes!(audit::list))
        .routes(routes!(tokens::create, tokens::list))
        .routes(routes!(tokens::rotation_status))
        .routes(routes!(tokens::delete))
        .routes(routes!(tokens::rotate))
        .routes(routes!(deployments::create, deployments::list))
        .routes(routes!(deployments::get, deployments::delete))
        .routes(routes!(deployments::update_status))
        .routes(routes!(deployments::logs))
        .routes(routes!(usage::metrics))
        .routes(routes!(usage::current))
        .routes(routes!(usage::history))
        .routes(routes!(legal::terms))
        .routes(routes!(legal::privacy))
        .routes(routes!(legal::dpa))
        .routes(routes!(legal::faq))
        .routes(routes!(legal::contact))
        .routes(routes!(settings::get, settings::put, settings::delete))
        .routes(routes!(billing::subscription))
        .routes(routes!(billing::checkout))
        .routes(routes!(billing::webhook))
        .routes(routes!(billing::admin_set_plan))
        .routes(routes!(gdpr::export))
        .routes(routes!(gdpr::delete))
        .routes(routes!(admin::stats))
        .routes(routes!(admin::analytics))
        .routes(routes!(admin::get_limits, admin::set_limits, admin::delete_limits))
        .routes(routes!(admin_edges::list))
        .merge(marketplace::routes())
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

/// A raw request body of at most `LIMIT` bytes. A larger one is rejected with
/// [`ApiError::PayloadTooLarge`].
pub struct ApiBody<const LIMIT: usize = JSON_BODY_LIMIT>(pub axum::body::Bytes);

impl<S, const LIMIT: usize> FromRequest<S> for ApiBody<LIMIT>
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        axum::body::to_bytes(request.into_body(), LIMIT)
            .await
            .map(ApiBody)
            .map_err(|_| ApiError::PayloadTooLarge { limit: LIMIT as u64 })
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
            .map_err(|rejection| ApiError::InvalidParameter { parameter: "query string", message: rejection.body_text(), value: None })
    }
}

/// Parses a resource id from a path segment.
pub fn parse_id(parameter: &'static str, text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::InvalidParameter { parameter, message: format!("{text:?} is not a UUID"), value: None })
}
