//! The error body that every failed request returns.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Body of every error response.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "error": "invalid name: is required and must be 1 to 100 characters long",
    "code": "VALIDATION_ERROR",
    "details": { "field": "name", "value": "" }
}))]
pub struct ErrorBody {
    /// Message naming what failed, the rejected value and what is expected.
    pub error: String,
    pub code: ErrorCode,
    /// Facts about the failure that depend on `code`: `field` and `value` for
    /// `VALIDATION_ERROR`, `resource` and `id` for `NOT_FOUND`, `required_scope` for
    /// `INSUFFICIENT_SCOPE`, `plan` and `limit` for `PLAN_LIMIT_EXCEEDED`, `max_bytes` for
    /// `PAYLOAD_TOO_LARGE` and `DOCUMENT_TOO_LARGE`, `limit` and
    /// `retry_after_seconds` for `RATE_LIMIT_EXCEEDED`, `problems` for `INVALID_OPENAPI_DOCUMENT`.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// Machine-readable error code.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 400: a field, path or query parameter is invalid. Also 415 or 422 when a body of the
    /// wrong media type or shape is rejected before the handler runs.
    ValidationError,
    /// 400: the body is not JSON or does not match the expected shape.
    InvalidJson,
    /// 413: the body exceeds the route's size limit.
    PayloadTooLarge,
    /// 400: the OpenAPI document does not compile.
    InvalidOpenapiDocument,
    /// 400: `config_json` (or a template's settings) has an unknown key, an invalid value or an
    /// `operations` list that names an operationId the document does not declare.
    InvalidConfig,
    /// 400: `openapi_spec_url` could not be fetched.
    DocumentFetchFailed,
    /// 400: `openapi_spec_url` resolves to a private or reserved address.
    AddressNotAllowed,
    /// 400: the OpenAPI document exceeds the size limit.
    DocumentTooLarge,
    /// 401: credentials are missing, invalid, expired or revoked.
    Unauthorized,
    /// 403: the caller's role or account type does not allow the request.
    Forbidden,
    /// 403: the API token lacks the scope that the route requires.
    InsufficientScope,
    /// 403: the organization's plan does not allow more of the resource.
    PlanLimitExceeded,
    /// 404: the resource or the route does not exist.
    NotFound,
    /// 405: the route does not accept the method.
    MethodNotAllowed,
    /// 409: a unique value (name, slug, e-mail address, version) is already taken.
    Conflict,
    /// 429: the rate limit or a login lock applies; `Retry-After` gives the seconds to wait.
    RateLimitExceeded,
    /// 503: a dependency (database, payment provider) is unavailable or not configured.
    ServiceUnavailable,
    /// 500: an unexpected server-side failure.
    InternalError,
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    use super::*;
    use crate::error::ApiError;

    /// Returns the values that the `ErrorCode` schema allows.
    fn documented_codes() -> Vec<String> {
        let schema = serde_json::to_value(ErrorCode::schema()).unwrap();
        let values = schema["enum"].as_array().or_else(|| schema["oneOf"].as_array()).cloned().unwrap_or_default();
        values
            .iter()
            .map(|value| value.as_str().map(str::to_owned).unwrap_or_else(|| value["enum"][0].as_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn error_codes_are_documented() {
        let documented = documented_codes();
        let errors = [
            ApiError::validation("name", "is required", None),
            ApiError::InvalidJson("expected value".to_owned()),
            ApiError::InvalidParameter { parameter: "limit", message: "not an integer".to_owned(), value: None },
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::Rejected { status: axum::http::StatusCode::UNPROCESSABLE_ENTITY, message: "bad path".to_owned() },
            ApiError::InvalidDocument { problems: Vec::new() },
            ApiError::InvalidConfig { problems: Vec::new() },
            ApiError::FetchFailed { url: "http://127.0.0.1/".to_owned(), reason: "refused".to_owned() },
            ApiError::BlockedAddress { url: "http://127.0.0.1/".to_owned(), address: "127.0.0.1".to_owned() },
            ApiError::DocumentTooLarge { limit: 1 },
            ApiError::Unauthorized("missing token".to_owned()),
            ApiError::Forbidden("not an admin".to_owned()),
            ApiError::InsufficientScope { scope: "write" },
            ApiError::PlanLimitExceeded { message: "full".to_owned(), plan: "free".to_owned(), limit: 3 },
            ApiError::not_found("deployment", "1"),
            ApiError::RouteNotFound { method: "GET".to_owned(), path: "/x".to_owned() },
            ApiError::MethodNotAllowed { method: "PUT".to_owned(), path: "/health".to_owned() },
            ApiError::Conflict { field: "slug", value: "pets".to_owned() },
            ApiError::Unavailable("down".to_owned()),
            ApiError::RateLimited { message: "slow down".to_owned(), limit: 60, retry_after: 1 },
            ApiError::Internal(anyhow::anyhow!("broken")),
        ];
        assert_eq!(documented.len(), 18, "documented codes: {documented:?}");
        for error in errors {
            assert!(documented.iter().any(|code| code == error.code()), "code {} of {error:?} is not in ErrorCode", error.code());
        }
    }
}
