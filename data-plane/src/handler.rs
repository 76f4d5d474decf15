//! The request path without the HTTP server: tenant lookup, engine call and error mapping
//! over plain `http` types.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use mockforge_engine::{MockRequest, MockResponse};

use crate::error::{error_response, EdgeError};
use crate::route::{self, EnginePath, RouteError};
use crate::snapshot::{Lookup, ServedDeployment, Snapshot};

/// Header that carries the request id in both directions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// [`REQUEST_ID_HEADER`] as a header name, which the request path uses because a string name
/// is parsed again on every lookup and insert.
const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Maximum length of an incoming request id that the edge echoes.
const MAX_REQUEST_ID_LEN: usize = 128;

/// A response with the facts the access log needs.
#[derive(Debug)]
pub struct Handled {
    pub response: http::Response<Bytes>,
    pub request_id: String,
    pub org: Option<String>,
    pub deployment: Option<String>,
}

/// Builds the response to one request from `snapshot`. `base_domain` is the domain whose subdomains name
/// organizations, for example `mockforge.dev`.
pub fn handle(
    snapshot: &Snapshot,
    base_domain: &str,
    request: &Parts,
    body: &[u8],
) -> http::Response<Bytes> {
    handle_request(snapshot, base_domain, request, body).response
}

/// Builds the response like [`handle`] and also returns the request id and tenant.
pub fn handle_request(
    snapshot: &Snapshot,
    base_domain: &str,
    request: &Parts,
    body: &[u8],
) -> Handled {
    let request_id = request_id(request);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        org = tracing::field::Empty,
        deployment = tracing::field::Empty,
    );
    let _entered = span.enter();

    let mut handled = match find_target(snapshot, base_domain, request) {
        Target::Single => Handled {
            response: respond_single(snapshot, request, body),
            request_id: String::new(),
            org: None,
            deployment: None,
        },
        Target::Deployment(served, path) => {
            span.record("org", served.org_slug.as_str());
            span.record("deployment", served.slug.as_str());
            Handled {
                response: respond_deployment_in(snapshot, &served, path, request, body),
                request_id: String::new(),
                org: Some(served.org_slug.clone()),
                deployment: Some(served.slug.clone()),
            }
        }
        Target::Unrouted(handled) => {
            if let Some(org) = &handled.org {
                span.record("org", org.as_str());
            }
            if let Some(deployment) = &handled.deployment {
                span.record("deployment", deployment.as_str());
            }
            *handled
        }
    };

    set_request_id(&mut handled.response, &request_id);
    handled.request_id = request_id;
    handled
}

/// The deployment, or single-document mock, that a request addresses in a snapshot.
#[derive(Debug)]
pub enum Target {
    /// The snapshot is in single-document mode.
    Single,
    /// A served deployment, and the start of the engine's path in the request.
    Deployment(Arc<ServedDeployment>, EnginePath),
    /// No served deployment: the error response, with the organization and deployment slugs
    /// the request named, if any. `request_id` is empty.
    Unrouted(Box<Handled>),
}

/// Finds the deployment a request addresses.
pub fn find_target(snapshot: &Snapshot, base_domain: &str, request: &Parts) -> Target {
    if snapshot.single_mock().is_some() {
        return Target::Single;
    }
    let route = match route::resolve(request, base_domain) {
        Ok(route) => route,
        Err(RouteError::NoTenant { host }) => {
            let error = EdgeError::NoTenant {
                host: host.map(str::to_owned),
                base_domain: base_domain.to_owned(),
            };
            return Target::Unrouted(Box::new(unattributed(error, None)));
        }
        Err(RouteError::MissingDeployment { org }) => {
            let error = if snapshot.has_org(org) {
                EdgeError::MissingDeployment {
                    org: org.to_owned(),
                }
            } else {
                EdgeError::UnknownOrg {
                    org: org.to_owned(),
                }
            };
            return Target::Unrouted(Box::new(unattributed(error, Some(org.to_owned()))));
        }
    };

    let error = match snapshot.lookup(route.org, route.deployment) {
        Lookup::Found(served) => {
            return Target::Deployment(served.clone(), EnginePath::locate(request, &route))
        }
        Lookup::UnknownOrg => EdgeError::UnknownOrg {
            org: route.org.to_owned(),
        },
        Lookup::UnknownDeployment => EdgeError::UnknownDeployment {
            org: route.org.to_owned(),
            deployment: route.deployment.to_owned(),
        },
    };
    Target::Unrouted(Box::new(Handled {
        response: error_response(&error),
        request_id: String::new(),
        org: Some(route.org.to_owned()),
        deployment: Some(route.deployment.to_owned()),
    }))
}

/// Calls the single-document mock of `snapshot`, or returns 500 when there is none.
pub fn respond_single(snapshot: &Snapshot, request: &Parts, body: &[u8]) -> http::Response<Bytes> {
    let Some(mock) = snapshot.single_mock() else {
        return error_response(&EdgeError::Internal(
            "the snapshot is not in single-document mode".to_owned(),
        ));
    };
    let (path, query) = route::whole_path(&request.uri);
    let response = mock
        .respond(&mock_request(request, path, query, body))
        .map_err(|error| EdgeError::Mock {
            org: None,
            deployment: None,
            error,
        });
    into_http_response(response)
}

/// Calls the mock of a deployment that [`find_target`] returned for `request`, with the
/// engine's `path` it returned.
pub fn respond_deployment(
    served: &ServedDeployment,
    path: EnginePath,
    request: &Parts,
    body: &[u8],
) -> http::Response<Bytes> {
    let response = served
        .mock
        .respond(&mock_request(
            request,
            path.of(request),
            request.uri.query(),
            body,
        ))
        .map_err(|error| EdgeError::Mock {
            org: Some(served.org_slug.clone()),
            deployment: Some(served.slug.clone()),
            error,
        });
    into_http_response(response)
}

/// Calls the deployment's plugins and mock, or only the mock when the deployment of `snapshot`
/// lists no plugins. Blocks the calling thread while the plugins run, so the edge server awaits
/// the plugins itself instead of calling this.
pub fn respond_deployment_in(
    snapshot: &Snapshot,
    served: &ServedDeployment,
    path: EnginePath,
    request: &Parts,
    body: &[u8],
) -> http::Response<Bytes> {
    match snapshot.plugin_chain(&served.id) {
        Some(chain) => block_on(crate::plugins::respond_with_plugins(
            None, chain, served, path, request, body,
        )),
        None => respond_deployment(served, path, request, body),
    }
}

/// Runs `future` to completion on the calling thread, which parks while the future is pending.
/// Plugin hooks return pending at every epoch tick. Outside a tokio runtime they wake themselves
/// at once. Inside one, tokio defers the wake until the current task returns, which it cannot
/// do while this thread blocks, so the thread also polls again after `REPOLL_INTERVAL`.
fn block_on<F: Future>(future: F) -> F::Output {
    const REPOLL_INTERVAL: Duration = Duration::from_micros(100);

    struct ThreadWaker(std::thread::Thread);

    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }

    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park_timeout(REPOLL_INTERVAL);
    }
}

fn unattributed(error: EdgeError, org: Option<String>) -> Handled {
    Handled {
        response: error_response(&error),
        request_id: String::new(),
        org,
        deployment: None,
    }
}

fn mock_request<'a>(
    request: &'a Parts,
    path: &'a str,
    query: Option<&'a str>,
    body: &'a [u8],
) -> MockRequest<'a> {
    MockRequest {
        method: &request.method,
        path,
        query,
        headers: &request.headers,
        body,
    }
}

/// Turns an engine result into a response, mapping errors through [`error_response`].
fn into_http_response(result: Result<MockResponse, EdgeError>) -> http::Response<Bytes> {
    match result {
        Ok(mock) => {
            let mut response = http::Response::new(mock.body);
            *response.status_mut() = mock.status;
            *response.headers_mut() = mock.headers;
            response
        }
        Err(error) => {
            if matches!(&error, EdgeError::Mock { error, .. } if !is_client_error(error)) {
                tracing::warn!(%error, "the engine failed to respond to a request");
            }
            error_response(&error)
        }
    }
}

/// Returns true for engine errors that describe a fault of the request, not of the edge.
fn is_client_error(error: &mockforge_engine::MockError) -> bool {
    use mockforge_engine::MockError;
    matches!(
        error,
        MockError::NoRoute { .. }
            | MockError::MethodNotAllowed { .. }
            | MockError::BadRequest(_)
            | MockError::NotAcceptable { .. }
    )
}

/// Returns the request's `X-Request-Id` when it is sane, else a new UUID.
///
/// A sane id has 1 to 128 characters from `A-Z a-z 0-9 - _ . :`, so echoing it cannot inject
/// anything into headers or logs.
pub fn request_id(request: &Parts) -> String {
    let incoming = request
        .headers
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_sane_request_id(value));
    match incoming {
        Some(value) => value.to_owned(),
        None => new_request_id(),
    }
}

/// Returns a new random request id, a UUID.
pub fn new_request_id() -> String {
    // The thread-local generator avoids a getrandom system call per request.
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = uuid::Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut text).to_owned()
}

fn is_sane_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Returns the items of a comma-separated header value such as `Connection`, trimmed. A value
/// that is not visible ASCII has none.
pub(crate) fn list_items(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value
        .to_str()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Sets `X-Request-Id` on a response.
pub fn set_request_id(response: &mut http::Response<Bytes>, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts_with_id(id: Option<&str>) -> Parts {
        let mut builder = http::Request::builder().uri("/petstore/pets");
        if let Some(id) = id {
            builder = builder.header(REQUEST_ID_HEADER, id);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn request_id_echoes_sane_value() {
        assert_eq!(
            request_id(&parts_with_id(Some("abc-123_x.y:z"))),
            "abc-123_x.y:z"
        );
    }

    #[test]
    fn request_id_replaces_unsafe_value() {
        let too_long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        for incoming in [
            Some(""),
            Some("has space"),
            Some("semi;colon"),
            Some(too_long.as_str()),
            None,
        ] {
            let id = request_id(&parts_with_id(incoming));
            assert!(
                uuid::Uuid::parse_str(&id).is_ok(),
                "incoming {incoming:?} gave {id}"
            );
        }
    }

    #[test]
    fn empty_snapshot_returns_not_found() {
        let snapshot = Snapshot::default();
        let request = http::Request::builder()
            .uri("/petstore/pets")
            .header(http::header::HOST, "acme.localhost")
            .header(REQUEST_ID_HEADER, "req-1")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let response = handle(&snapshot, "localhost", &request, b"");
        assert_eq!(response.status(), http::StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "req-1");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["code"], "NOT_FOUND");
        assert_eq!(body["details"]["org"], "acme");
    }

    #[test]
    fn unknown_host_returns_not_found() {
        let snapshot = Snapshot::default();
        let request = http::Request::builder()
            .uri("/petstore/pets")
            .header(http::header::HOST, "127.0.0.1:8080")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let response = handle(&snapshot, "localhost", &request, b"");
        assert_eq!(response.status(), http::StatusCode::NOT_FOUND);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["details"]["host"], "127.0.0.1:8080");
        assert!(response.headers().contains_key(REQUEST_ID_HEADER));
    }
}
