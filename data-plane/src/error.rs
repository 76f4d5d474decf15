//! The edge's error responses.
//!
//! Every failure a client can see goes through [`error_response`], so all of them share one
//! JSON format: `{"error": "<message>", "code": "<CODE>", "details": {...}}`.

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::StatusCode;
use mockforge_engine::MockError;
use serde_json::{json, Value};

/// A failure to produce a mock response for a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EdgeError {
    /// The request names no organization: its host is not `{org}.{base domain}` and its path
    /// is not in the `/_m/{org}/{deployment}` form.
    #[error(
        "no organization in {}; use {{org}}.{base_domain} or /_m/{{org}}/{{deployment}}/",
        describe_host(.host.as_deref())
    )]
    NoTenant {
        host: Option<String>,
        base_domain: String,
    },
    /// No served deployment belongs to the organization. A stopped or deleted deployment is not
    /// served, so the edge cannot tell an unknown organization from one with nothing active.
    #[error("organization {org:?} has no active deployment; check the organization slug and the deployment's status")]
    UnknownOrg { org: String },
    /// The organization is known but the request has no deployment segment.
    #[error("no deployment in the path; use /{{deployment}}/... for organization {org:?}")]
    MissingDeployment { org: String },
    /// The organization has no served deployment with this slug.
    #[error("deployment {deployment:?} of organization {org:?} is not active; check the slug and the deployment's status")]
    UnknownDeployment { org: String, deployment: String },
    /// The engine did not produce a response.
    #[error("{error}")]
    Mock {
        org: Option<String>,
        deployment: Option<String>,
        error: MockError,
    },
    /// The server could not read or parse the request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request body exceeds the configured maximum.
    #[error("the request body exceeds the maximum of {max_bytes} bytes")]
    PayloadTooLarge { max_bytes: usize },
    /// A rate limit of the deployment's plan is used up.
    #[error("rate limit exceeded: {limit} requests per {window}; retry in {retry_after_seconds} s")]
    RateLimited {
        limit: u64,
        /// `second` (per deployment), `minute` or `30d` (per organization).
        window: &'static str,
        retry_after_seconds: u64,
    },
    /// The request headers exceed the configured maximum.
    #[error("the request headers exceed the maximum of {max_bytes} bytes")]
    HeadersTooLarge { max_bytes: usize },
    /// The client did not send the whole request in time.
    #[error("the request was not received within {timeout_ms} ms")]
    RequestTimeout { timeout_ms: u64 },
    /// The edge runs its maximum number of concurrent requests.
    #[error("the edge is serving its maximum of {max_requests} concurrent requests; retry later")]
    Overloaded { max_requests: usize },
    /// The edge has its maximum number of open connections.
    #[error("the edge has its maximum of {max_connections} open connections; retry later")]
    TooManyConnections { max_connections: usize },
    /// The deployment's chaos configuration chose to fail this request.
    #[error("chaos testing injected status {status}")]
    ChaosInjected { status: StatusCode },
    /// A plugin of the deployment failed: it trapped, timed out, ran out of memory or returned
    /// an invalid result.
    #[error("plugin {plugin}@{version} failed in {hook}: {reason}")]
    PluginFailed {
        plugin: String,
        version: String,
        /// `on-request` or `on-response`.
        hook: &'static str,
        reason: String,
    },
    /// The deployment's upstream could not be reached or did not respond.
    #[error("the upstream {upstream} failed: {reason}")]
    UpstreamFailed { upstream: String, reason: String },
    /// The deployment's upstream did not send its response header within the proxy timeout.
    #[error(
        "the upstream {upstream} did not send a response header within {timeout_ms} ms; check \
         the upstream or raise config_json.proxy.timeout_ms (at most 60000)"
    )]
    UpstreamTimeout { upstream: String, timeout_ms: u64 },
    /// A fault in the edge itself. The message is sent to the client, so it must not contain
    /// secrets.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Names the host of a request without an organization for [`EdgeError::NoTenant`].
fn describe_host(host: Option<&str>) -> String {
    match host {
        Some(host) => format!("host {host}"),
        None => "the request, which has no Host header".to_owned(),
    }
}

/// Error codes of the error format.
const NOT_FOUND: &str = "NOT_FOUND";
const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
const BAD_REQUEST: &str = "BAD_REQUEST";
const NOT_ACCEPTABLE: &str = "NOT_ACCEPTABLE";
const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
const RATE_LIMIT_EXCEEDED: &str = "RATE_LIMIT_EXCEEDED";
const HEADERS_TOO_LARGE: &str = "HEADERS_TOO_LARGE";
const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
const OVERLOADED: &str = "OVERLOADED";
const CHAOS_INJECTED: &str = "CHAOS_INJECTED";
const UPSTREAM_ERROR: &str = "UPSTREAM_ERROR";
const UPSTREAM_TIMEOUT: &str = "UPSTREAM_TIMEOUT";
const PLUGIN_FAILED: &str = "PLUGIN_FAILED";

/// Builds the response for a failure: status, error-format JSON body, `Content-Type`, an
/// `Allow` header for 405 and `Retry-After` for 429 and 503. The caller adds transport headers
/// and `X-Request-Id`.
pub fn error_response(error: &EdgeError) -> http::Response<Bytes> {
    let (status, code, details) = classify(error);
    let body = json!({
        "error": error.to_string(),
        "code": code,
        "details": details,
    });

    let mut response = http::Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));

    match error {
        EdgeError::Mock {
            error: MockError::MethodNotAllowed { allow, .. },
            ..
        } => {
            if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                response.headers_mut().insert(ALLOW, value);
            }
        }
        EdgeError::RateLimited {
            retry_after_seconds,
            ..
        } => {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
        EdgeError::Overloaded { .. } | EdgeError::TooManyConnections { .. } => {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

/// Maps a failure to its status, error code and `details` object.
fn classify(error: &EdgeError) -> (StatusCode, &'static str, Value) {
    match error {
        EdgeError::NoTenant { host, base_domain } => (
            StatusCode::NOT_FOUND,
            NOT_FOUND,
            json!({ "host": host, "base_domain": base_domain }),
        ),
        EdgeError::UnknownOrg { org } => (StatusCode::NOT_FOUND, NOT_FOUND, json!({ "org": org })),
        EdgeError::MissingDeployment { org } => {
            (StatusCode::NOT_FOUND, NOT_FOUND, json!({ "org": org }))
        }
        EdgeError::UnknownDeployment { org, deployment } => (
            StatusCode::NOT_FOUND,
            NOT_FOUND,
            json!({ "org": org, "deployment": deployment }),
        ),
        EdgeError::Mock {
            org,
            deployment,
            error,
        } => classify_mock_error(org, deployment, error),
        EdgeError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, BAD_REQUEST, json!({})),
        EdgeError::PayloadTooLarge { max_bytes } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            PAYLOAD_TOO_LARGE,
            json!({ "max_bytes": max_bytes }),
        ),
        EdgeError::RateLimited {
            limit,
            window,
            retry_after_seconds,
        } => (
            StatusCode::TOO_MANY_REQUESTS,
            RATE_LIMIT_EXCEEDED,
            json!({ "limit": limit, "window": window, "retry_after_seconds": retry_after_seconds }),
        ),
        EdgeError::HeadersTooLarge { max_bytes } => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            HEADERS_TOO_LARGE,
            json!({ "max_bytes": max_bytes }),
        ),
        EdgeError::RequestTimeout { timeout_ms } => (
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
            json!({ "timeout_ms": timeout_ms }),
        ),
        EdgeError::Overloaded { max_requests } => (
            StatusCode::SERVICE_UNAVAILABLE,
            OVERLOADED,
            json!({ "max_concurrent_requests": max_requests }),
        ),
        EdgeError::TooManyConnections { max_connections } => (
            StatusCode::SERVICE_UNAVAILABLE,
            OVERLOADED,
            json!({ "max_connections": max_connections }),
        ),
        EdgeError::ChaosInjected { status } => (
            *status,
            CHAOS_INJECTED,
            json!({ "status": status.as_u16() }),
        ),
        EdgeError::PluginFailed {
            plugin,
            version,
            hook,
            reason,
        } => (
            StatusCode::BAD_GATEWAY,
            PLUGIN_FAILED,
            json!({ "plugin": plugin, "version": version, "hook": hook, "reason": reason }),
        ),
        EdgeError::UpstreamFailed { upstream, reason } => (
            StatusCode::BAD_GATEWAY,
            UPSTREAM_ERROR,
            json!({ "upstream": upstream, "reason": reason }),
        ),
        EdgeError::UpstreamTimeout {
            upstream,
            timeout_ms,
        } => (
            StatusCode::GATEWAY_TIMEOUT,
            UPSTREAM_TIMEOUT,
            json!({ "upstream": upstream, "timeout_ms": timeout_ms }),
        ),
        EdgeError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR, json!({})),
    }
}

fn classify_mock_error(
    org: &Option<String>,
    deployment: &Option<String>,
    error: &MockError,
) -> (StatusCode, &'static str, Value) {
    let mut details = serde_json::Map::new();
    if let Some(org) = org {
        details.insert("org".into(), json!(org));
    }
    if let Some(deployment) = deployment {
        details.insert("deployment".into(), json!(deployment));
    }

    // The engine may add variants; unknown ones become 500 so they are noticed.
    #[allow(unreachable_patterns)]
    let (status, code) = match error {
        MockError::NoRoute { method, path } => {
            details.insert("method".into(), json!(method));
            details.insert("path".into(), json!(path));
            (StatusCode::NOT_FOUND, NOT_FOUND)
        }
        MockError::MethodNotAllowed {
            method,
            path,
            allow,
        } => {
            details.insert("method".into(), json!(method));
            details.insert("path".into(), json!(path));
            details.insert("allow".into(), json!(allow));
            (StatusCode::METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED)
        }
        MockError::BadRequest(_) => (StatusCode::BAD_REQUEST, BAD_REQUEST),
        MockError::NotAcceptable { accept, available } => {
            details.insert("accept".into(), json!(accept));
            details.insert("available".into(), json!(available));
            (StatusCode::NOT_ACCEPTABLE, NOT_ACCEPTABLE)
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR),
    };
    (status, code, Value::Object(details))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(response: &http::Response<Bytes>) -> Value {
        serde_json::from_slice(response.body()).unwrap()
    }

    #[test]
    fn unknown_deployment_is_not_found() {
        let response = error_response(&EdgeError::UnknownDeployment {
            org: "acme".into(),
            deployment: "petstore".into(),
        });
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let body = body_json(&response);
        assert_eq!(body["code"], "NOT_FOUND");
        assert_eq!(body["details"]["org"], "acme");
        assert_eq!(body["details"]["deployment"], "petstore");
        assert!(body["error"].as_str().unwrap().contains("petstore"));
    }

    #[test]
    fn method_not_allowed_sets_allow() {
        let error = MockError::MethodNotAllowed {
            method: "DELETE".into(),
            path: "/pets".into(),
            allow: vec!["GET".into(), "POST".into()],
        };
        let response = error_response(&EdgeError::Mock {
            org: Some("acme".into()),
            deployment: Some("petstore".into()),
            error,
        });
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[ALLOW], "GET, POST");
        let body = body_json(&response);
        assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
        assert_eq!(body["details"]["allow"], json!(["GET", "POST"]));
        assert_eq!(body["details"]["path"], "/pets");
    }

    #[test]
    fn bad_request_and_no_route() {
        let response = error_response(&EdgeError::Mock {
            org: None,
            deployment: None,
            error: MockError::BadRequest("missing field name".into()),
        });
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_json(&response)["code"], "BAD_REQUEST");

        let response = error_response(&EdgeError::Mock {
            org: None,
            deployment: None,
            error: MockError::NoRoute {
                method: "GET".into(),
                path: "/nope".into(),
            },
        });
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = body_json(&response);
        assert_eq!(body["code"], "NOT_FOUND");
        assert_eq!(body["details"]["path"], "/nope");
    }

    #[test]
    fn rate_limited_sets_retry_after() {
        let response = error_response(&EdgeError::RateLimited {
            limit: 60,
            window: "minute",
            retry_after_seconds: 7,
        });
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "7");
        let body = body_json(&response);
        assert_eq!(body["code"], "RATE_LIMIT_EXCEEDED");
        assert_eq!(body["details"]["limit"], 60);
        assert_eq!(body["details"]["window"], "minute");
        assert_eq!(body["details"]["retry_after_seconds"], 7);
    }

    #[test]
    fn no_tenant_message_shows_host_plainly() {
        let error = EdgeError::NoTenant {
            host: Some("127.0.0.1:18381".into()),
            base_domain: "localhost".into(),
        };
        assert_eq!(
            error.to_string(),
            "no organization in host 127.0.0.1:18381; use {org}.localhost or /_m/{org}/{deployment}/"
        );
        let body = body_json(&error_response(&error));
        assert_eq!(body["code"], "NOT_FOUND");
        assert_eq!(body["details"]["host"], "127.0.0.1:18381");
        assert_eq!(body["details"]["base_domain"], "localhost");
    }

    #[test]
    fn no_tenant_message_without_host() {
        let error = EdgeError::NoTenant {
            host: None,
            base_domain: "localhost".into(),
        };
        assert_eq!(
            error.to_string(),
            "no organization in the request, which has no Host header; \
             use {org}.localhost or /_m/{org}/{deployment}/"
        );
        assert_eq!(
            body_json(&error_response(&error))["details"]["host"],
            Value::Null
        );
    }

    #[test]
    fn payload_too_large() {
        let response = error_response(&EdgeError::PayloadTooLarge { max_bytes: 16 });
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = body_json(&response);
        assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
        assert_eq!(body["details"]["max_bytes"], 16);
    }
}
