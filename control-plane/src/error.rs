//! The API error type and its JSON form `{"error", "code", "details"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Every error a handler returns. Client-fault variants carry the offending value and what was
/// expected, so the response shows the caller what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `value` is left out for secrets, and `expected` describes the accepted form.
    #[error("invalid {field}: {message}")]
    Validation { field: &'static str, message: String, value: Option<Value>, expected: Option<&'static str> },

    #[error("invalid JSON body: {0}")]
    InvalidJson(String),

    /// `value` is the rejected text, when the parameter is not a secret.
    #[error("invalid {parameter}: {message}")]
    InvalidParameter { parameter: &'static str, message: String, value: Option<String> },

    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: u64 },

    /// A client-error rejection of an axum extractor, with its message and status.
    #[error("invalid request: {message}")]
    Rejected { status: StatusCode, message: String },

    #[error("the OpenAPI document is invalid: {}", summarize_problems(problems))]
    InvalidDocument { problems: Vec<mockforge_engine::Diagnostic> },

    #[error("invalid config_json: {}", summarize_problems(problems))]
    InvalidConfig { problems: Vec<mockforge_engine::Diagnostic> },

    #[error("failed to fetch {url}: {reason}")]
    FetchFailed { url: String, reason: String },

    #[error("rejected {url}: address {address} is in a private or reserved range, and fetching from private networks is not allowed")]
    BlockedAddress { url: String, address: String },

    #[error("the OpenAPI document exceeds the limit of {limit} bytes")]
    DocumentTooLarge { limit: u64 },

    #[error("{0}")]
    Unauthorized(String),

    #[error("{0}")]
    Forbidden(String),

    #[error("this request requires the `{scope}` scope, which the API token does not have")]
    InsufficientScope { scope: &'static str },

    #[error("{message}")]
    PlanLimitExceeded { message: String, plan: String, limit: u64 },

    /// `limit_source` is `plan`, or `organization` for a limit a platform admin set.
    #[error("{message}")]
    StorageQuotaExceeded {
        message: String,
        plan: String,
        limit_source: &'static str,
        used_bytes: u64,
        limit_bytes: u64,
        upload_bytes: u64,
    },

    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },

    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },

    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },

    #[error("{field} {value} is already taken")]
    Conflict { field: &'static str, value: String },

    #[error("{0}")]
    Unavailable(String),

    /// 429 with a `Retry-After` header of `retry_after` seconds.
    #[error("{message}")]
    RateLimited { message: String, limit: u64, retry_after: u64 },

    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Formats the first problem as `pointer: message`, followed by the number of other problems
/// in `details.problems` when there are several, so the top-level message names a real problem.
fn summarize_problems(problems: &[mockforge_engine::Diagnostic]) -> String {
    let Some(first) = problems.first() else { return "no problems were reported".to_owned() };
    let mut summary = if first.pointer.is_empty() {
        first.message.clone()
    } else {
        format!("{}: {}", first.pointer, first.message)
    };
    if problems.len() > 1 {
        summary.push_str(&format!("; {} more problem(s) in details.problems", problems.len() - 1));
    }
    summary
}

impl ApiError {
    pub fn validation(field: &'static str, message: impl Into<String>, value: impl Into<Option<Value>>) -> Self {
        ApiError::Validation { field, message: message.into(), value: value.into(), expected: None }
    }

    /// Adds the accepted form to the details of a validation error. Other variants are returned unchanged.
    pub fn expecting(mut self, form: &'static str) -> Self {
        if let ApiError::Validation { expected, .. } = &mut self {
            *expected = Some(form);
        }
        self
    }

    pub fn not_found(resource: &'static str, id: impl ToString) -> Self {
        ApiError::NotFound { resource, id: id.to_string() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. }
            | ApiError::InvalidJson(_)
            | ApiError::InvalidParameter { .. }
            | ApiError::InvalidDocument { .. }
            | ApiError::InvalidConfig { .. }
            | ApiError::FetchFailed { .. }
            | ApiError::BlockedAddress { .. }
            | ApiError::DocumentTooLarge { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Rejected { status, .. } => *status,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_)
            | ApiError::InsufficientScope { .. }
            | ApiError::PlanLimitExceeded { .. }
            | ApiError::StorageQuotaExceeded { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } | ApiError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } | ApiError::InvalidParameter { .. } | ApiError::Rejected { .. } => {
                "VALIDATION_ERROR"
            }
            ApiError::InvalidJson(_) => "INVALID_JSON",
            ApiError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            ApiError::InvalidDocument { .. } => "INVALID_OPENAPI_DOCUMENT",
            ApiError::InvalidConfig { .. } => "INVALID_CONFIG",
            ApiError::FetchFailed { .. } => "DOCUMENT_FETCH_FAILED",
            ApiError::BlockedAddress { .. } => "ADDRESS_NOT_ALLOWED",
            ApiError::DocumentTooLarge { .. } => "DOCUMENT_TOO_LARGE",
            ApiError::Unauthorized(_) => "UNAUTHORIZED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::InsufficientScope { .. } => "INSUFFICIENT_SCOPE",
            ApiError::PlanLimitExceeded { .. } => "PLAN_LIMIT_EXCEEDED",
            ApiError::StorageQuotaExceeded { .. } => "STORAGE_QUOTA_EXCEEDED",
            ApiError::NotFound { .. } | ApiError::RouteNotFound { .. } => "NOT_FOUND",
            ApiError::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            ApiError::Conflict { .. } => "CONFLICT",
            ApiError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            ApiError::RateLimited { .. } => "RATE_LIMIT_EXCEEDED",
            ApiError::Internal(_) => "INTERNAL_ERROR",
        }
    }

    fn details(&self) -> Value {
        match self {
            ApiError::Validation { field, value, expected, .. } => {
                let mut details = json!({ "field": field });
                if let Some(value) = value {
                    details["value"] = value.clone();
                }
                if let Some(expected) = expected {
                    details["expected"] = Value::from(*expected);
                }
                details
            }
            ApiError::InvalidParameter { parameter, value: Some(value), .. } => {
                json!({ "parameter": parameter, "value": value })
            }
            ApiError::InvalidParameter { parameter, value: None, .. } => json!({ "parameter": parameter }),
            ApiError::PayloadTooLarge { limit } | ApiError::DocumentTooLarge { limit } => json!({ "max_bytes": limit }),
            ApiError::InvalidDocument { problems } | ApiError::InvalidConfig { problems } => {
                json!({ "problems": problems })
            }
            ApiError::FetchFailed { url, reason } => json!({ "url": url, "reason": reason }),
            ApiError::BlockedAddress { url, address } => json!({ "url": url, "address": address }),
            ApiError::InsufficientScope { scope } => json!({ "required_scope": scope }),
            ApiError::PlanLimitExceeded { plan, limit, .. } => json!({ "plan": plan, "limit": limit }),
            ApiError::StorageQuotaExceeded { plan, limit_source, used_bytes, limit_bytes, upload_bytes, .. } => json!({
                "plan": plan,
                "limit_source": limit_source,
                "used_bytes": used_bytes,
                "limit_bytes": limit_bytes,
                "upload_bytes": upload_bytes,
            }),
            ApiError::NotFound { resource, id } => json!({ "resource": resource, "id": id }),
            ApiError::RouteNotFound { method, path } | ApiError::MethodNotAllowed { method, path } => {
                json!({ "method": method, "path": path })
            }
            ApiError::Conflict { field, value } => json!({ "field": field, "value": value }),
            ApiError::RateLimited { limit, retry_after, .. } => {
                json!({ "limit": limit, "retry_after_seconds": retry_after })
            }
            _ => json!({}),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(error).context("database query failed"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed with an internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let body = json!({ "error": message, "code": self.code(), "details": self.details() });
        let mut response = (status, Json(body)).into_response();
        if let ApiError::RateLimited { retry_after, .. } = &self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(*retry_after));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
