//! The API's OpenAPI 3.1 document, served at `GET /api/v1/openapi.json`.
//!
//! Every route of the customer API is registered with `utoipa_axum::routes!` from a handler
//! annotated with `#[utoipa::path]`, so the router and the document come from the same list.
//! [`conventions`] then adds what every operation shares: the 401, 429 and 500 responses, the
//! `X-RateLimit-*` headers and the `X-Organization-Id` header.

mod conventions;
pub mod schemas;

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

/// Security scheme of user sessions: `Authorization: Bearer <JWT>`.
pub const BEARER_JWT: &str = "bearer_jwt";
/// Security scheme of programs: `Authorization: Bearer mfx_...`.
pub const API_TOKEN: &str = "api_token";

const DESCRIPTION: &str = "\
The MockForge Cloud customer API: accounts, organizations, API tokens, hosted mock deployments, \
usage, billing, the marketplace, settings, security, GDPR, legal documents and administration.

Authentication: send `Authorization: Bearer <token>` with a JWT from login (scheme `bearer_jwt`) \
or an `mfx_` API token (scheme `api_token`). An API token acts on its own organization and needs \
the scope a route names (`read`, `write` or `admin`). A JWT carries every scope and acts on the \
user's personal organization, or on the organization named by `X-Organization-Id` when the user \
is a member of it.

Rate limits: every `/api/` response except the Stripe webhook carries `X-RateLimit-Limit`, \
`X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix seconds). Authenticated requests count \
per organization with the plan's requests per minute, other requests per client IP address, in \
fixed one-minute windows. Over the limit the API returns 429 `RATE_LIMIT_EXCEEDED` with \
`Retry-After` in seconds.

Errors: every error body is `{\"error\", \"code\", \"details\"}` (schema `ErrorBody`). Invalid \
input is rejected with 400 `VALIDATION_ERROR` or `INVALID_JSON`, never 422. JSON bodies are \
limited to 1 MiB and deployment creation to 32 MiB (413 `PAYLOAD_TOO_LARGE`).

Pagination: audit logs take `limit` and `offset`, suspicious activities and deployment logs \
take `limit`, and marketplace searches take `limit` and `offset` in the body and return \
`total`. Other lists return every item.

The edge API under `/internal/v1/` is for edge nodes and is not part of this document.";

/// The document's fixed parts. Paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(title = "MockForge Cloud API", description = DESCRIPTION, license(name = "Apache-2.0", identifier = "Apache-2.0")),
    servers((url = "/", description = "The server that serves this document")),
    components(schemas(schemas::ErrorBody, schemas::ErrorCode)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Health probes and the public status page"),
        (name = "auth", description = "Registration, login, sessions, OAuth sign-in and e-mail verification"),
        (name = "organizations", description = "Organizations, members and audit logs"),
        (name = "tokens", description = "API tokens of the organization"),
        (name = "deployments", description = "Hosted mock deployments, their logs and metrics"),
        (name = "usage", description = "Usage of the organization per 30-day period"),
        (name = "billing", description = "Plans, Stripe Checkout and the Stripe webhook"),
        (name = "marketplace", description = "Plugins, templates and scenarios"),
        (name = "settings", description = "Bring-your-own-key settings"),
        (name = "security", description = "Sessions and suspicious activities"),
        (name = "gdpr", description = "Data export and account deletion"),
        (name = "legal", description = "Legal documents, FAQ and support requests"),
        (name = "admin", description = "Platform administration"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        let mut jwt = Http::new(HttpAuthScheme::Bearer);
        jwt.bearer_format = Some("JWT".to_owned());
        jwt.description = Some("A session JWT from register, login, refresh or OAuth sign-in, valid for 24 hours.".to_owned());
        components.add_security_scheme(BEARER_JWT, SecurityScheme::Http(jwt));
        let mut token = Http::new(HttpAuthScheme::Bearer);
        token.bearer_format = Some("mfx_ API token".to_owned());
        token.description = Some("An organization's API token with the scopes `read`, `write` and `admin`.".to_owned());
        components.add_security_scheme(API_TOKEN, SecurityScheme::Http(token));
    }
}

/// Builds the complete document from the API's routes.
pub fn document() -> Document {
    let mut document = super::routes().into_openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    conventions::apply(&mut document);
    document
}

/// Serves the OpenAPI document of this API. It needs no credentials.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    operation_id = "get_openapi_document",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        // serde_json fails only on maps with non-string keys, and every map of the document has
        // string keys.
        serde_json::to_string(&document()).unwrap_or_else(|error| {
            tracing::error!(%error, "failed to serialize the OpenAPI document");
            String::from("{}")
        })
    });
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}
