//! Finds the tenant a request is for.
//!
//! Two URL forms reach a deployment:
//!
//! - host form: `Host: {org}.{base_domain}`, and the first path segment names the deployment,
//!   as in `http://acme.mockforge.dev/petstore/pets/1`;
//! - path form: `/_m/{org}/{deployment}/...` with any `Host`, for clients that cannot set up
//!   wildcard DNS, as in `http://127.0.0.1:8080/_m/acme/petstore/pets/1`.
//!
//! Everything after the deployment segment is the path handed to the engine, still
//! percent-encoded and without the query string.

use http::request::Parts;
use http::Uri;

/// Prefix of the path form.
pub const PATH_FORM_PREFIX: &str = "/_m/";

/// The deployment a request addresses and the part of its path that goes to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRoute<'a> {
    /// Organization slug as it appears in the request (compare case-insensitively).
    pub org: &'a str,
    /// Deployment slug as it appears in the request (compare case-insensitively).
    pub deployment: &'a str,
    /// Raw path below the deployment, starting with `/`.
    pub path: &'a str,
    /// Raw query string without the `?`.
    pub query: Option<&'a str>,
}

/// The start of the engine's path in a request's URI path, so that the request path finds it
/// again without resolving the tenant a second time. Unlike [`TenantRoute`], it does not borrow
/// the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnginePath {
    /// Byte offset in the URI path. It is the path's length when the engine's path is the `/`
    /// that stands for an empty rest.
    start: usize,
}

impl EnginePath {
    /// Finds the engine's path of `route` in `request`, the request it was resolved from.
    pub fn locate(request: &Parts, route: &TenantRoute<'_>) -> EnginePath {
        let whole = request.uri.path();
        let start = match whole.strip_suffix(route.path) {
            Some(before) => before.len(),
            None => whole.len(),
        };
        EnginePath { start }
    }

    /// Returns the engine's path in `request`, which must be the request this was located in.
    pub fn of(self, request: &Parts) -> &str {
        engine_path(request.uri.path().get(self.start..).unwrap_or_default())
    }
}

/// Reason a request could not be attributed to a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError<'a> {
    /// The host is not a subdomain of the base domain and the path is not in the path form.
    NoTenant { host: Option<&'a str> },
    /// The organization is known from the host or path but no deployment segment follows.
    MissingDeployment { org: &'a str },
}

/// Resolves the deployment and engine path of a request.
///
/// The path form wins over the host form. The authority of the request URI (HTTP/2
/// `:authority` or an absolute-form HTTP/1.1 target) wins over the `Host` header.
pub fn resolve<'a>(
    request: &'a Parts,
    base_domain: &str,
) -> Result<TenantRoute<'a>, RouteError<'a>> {
    let path = request.uri.path();
    let query = request.uri.query();

    if let Some(rest) = path.strip_prefix(PATH_FORM_PREFIX) {
        let (org, after_org) = split_first_segment(rest);
        if org.is_empty() {
            return Err(RouteError::NoTenant {
                host: request_host(request),
            });
        }
        return deployment_route(org, after_org, query);
    }

    let host = request_host(request);
    let Some(org) = host.and_then(|host| org_from_host(host, base_domain)) else {
        return Err(RouteError::NoTenant { host });
    };
    deployment_route(org, path, query)
}

/// Returns the host a request was sent to: the URI authority if present, else the `Host`
/// header. Returns `None` when neither is present or the header is not visible ASCII.
pub fn request_host(request: &Parts) -> Option<&str> {
    if let Some(authority) = request.uri.authority() {
        return Some(authority.as_str());
    }
    request.headers.get(http::header::HOST)?.to_str().ok()
}

/// Extracts the organization slug from a host of the form `{org}.{base_domain}[:port]`.
///
/// The comparison with `base_domain` ignores ASCII case, the port and one trailing dot. Returns
/// `None` for the bare base domain, for other domains and for nested subdomains
/// (`a.b.{base_domain}`), because an organization slug is a single DNS label.
pub fn org_from_host<'a>(host: &'a str, base_domain: &str) -> Option<&'a str> {
    let host = strip_port(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    let base_domain = base_domain.trim_end_matches('.');
    if base_domain.is_empty() || host.len() <= base_domain.len() + 1 {
        return None;
    }

    let split = host.len() - base_domain.len();
    if !host.is_char_boundary(split - 1) || !host.is_char_boundary(split) {
        return None;
    }
    let (org_with_dot, domain) = host.split_at(split);
    if !domain.eq_ignore_ascii_case(base_domain) {
        return None;
    }

    let org = org_with_dot.strip_suffix('.')?;
    if org.is_empty() || org.contains('.') {
        return None;
    }
    Some(org)
}

/// Removes a `:port` suffix from a host. IPv6 literals keep their brackets.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Builds the route for `org` from a path whose first segment is the deployment.
fn deployment_route<'a>(
    org: &'a str,
    path: &'a str,
    query: Option<&'a str>,
) -> Result<TenantRoute<'a>, RouteError<'a>> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (deployment, rest) = split_first_segment(path);
    if deployment.is_empty() {
        return Err(RouteError::MissingDeployment { org });
    }
    Ok(TenantRoute {
        org,
        deployment,
        path: engine_path(rest),
        query,
    })
}

/// Splits `segment/rest` into `segment` and `/rest`. Without a slash the rest is empty.
fn split_first_segment(path: &str) -> (&str, &str) {
    match path.find('/') {
        Some(index) => path.split_at(index),
        None => (path, ""),
    }
}

/// Maps the path below a deployment to the engine's path: an empty rest becomes `/`.
fn engine_path(rest: &str) -> &str {
    if rest.is_empty() {
        "/"
    } else {
        rest
    }
}

/// Returns the raw path and query of a URI for single-document mode, where the whole path
/// goes to the engine.
pub fn whole_path(uri: &Uri) -> (&str, Option<&str>) {
    let path = uri.path();
    (engine_path(path), uri.query())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, host: Option<&str>) -> Parts {
        let mut builder = http::Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header(http::header::HOST, host);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn org_from_host_accepts_subdomain() {
        assert_eq!(org_from_host("acme.localhost", "localhost"), Some("acme"));
        assert_eq!(
            org_from_host("acme.mockforge.dev", "mockforge.dev"),
            Some("acme")
        );
    }

    #[test]
    fn org_from_host_ignores_port_and_case() {
        assert_eq!(
            org_from_host("ACME.LocalHost:8080", "localhost"),
            Some("ACME")
        );
        assert_eq!(
            org_from_host("acme.mockforge.dev.:443", "MockForge.dev"),
            Some("acme")
        );
    }

    #[test]
    fn org_from_host_rejects_other_hosts() {
        assert_eq!(org_from_host("localhost", "localhost"), None);
        assert_eq!(org_from_host("localhost:8080", "localhost"), None);
        assert_eq!(org_from_host(".localhost", "localhost"), None);
        assert_eq!(org_from_host("a.b.localhost", "localhost"), None);
        assert_eq!(org_from_host("acmelocalhost", "localhost"), None);
        assert_eq!(org_from_host("acme.example.com", "mockforge.dev"), None);
        assert_eq!(org_from_host("127.0.0.1:8080", "localhost"), None);
        assert_eq!(org_from_host("[::1]:8080", "localhost"), None);
        assert_eq!(org_from_host("acme.localhost", ""), None);
    }

    #[test]
    fn org_from_host_rejects_split_multibyte_host() {
        assert_eq!(org_from_host("é.localhost", "ocalhost"), None);
        assert_eq!(org_from_host("aé", "a"), None);
    }

    #[test]
    fn resolve_host_form() {
        let request = parts("/petstore/pets/1?limit=2", Some("acme.localhost:8080"));
        let route = resolve(&request, "localhost").unwrap();
        assert_eq!(route.org, "acme");
        assert_eq!(route.deployment, "petstore");
        assert_eq!(route.path, "/pets/1");
        assert_eq!(route.query, Some("limit=2"));
    }

    #[test]
    fn resolve_host_form_deployment_root() {
        for uri in ["/petstore", "/petstore/"] {
            let request = parts(uri, Some("acme.localhost"));
            let route = resolve(&request, "localhost").unwrap();
            assert_eq!(route.deployment, "petstore", "uri {uri}");
            assert_eq!(route.path, "/", "uri {uri}");
            assert_eq!(route.query, None, "uri {uri}");
        }
    }

    #[test]
    fn resolve_host_form_without_deployment() {
        for uri in ["/", "//pets"] {
            let request = parts(uri, Some("acme.localhost"));
            assert_eq!(
                resolve(&request, "localhost"),
                Err(RouteError::MissingDeployment { org: "acme" }),
                "uri {uri}"
            );
        }
    }

    #[test]
    fn engine_path_is_found_again() {
        let cases = [
            (
                "/petstore/pets/1?limit=2",
                Some("acme.localhost"),
                "/pets/1",
            ),
            ("/petstore", Some("acme.localhost"), "/"),
            ("/petstore/", Some("acme.localhost"), "/"),
            ("/_m/acme/petstore/pets/%7Bid%7D", None, "/pets/%7Bid%7D"),
            ("/_m/acme/petstore", None, "/"),
        ];
        for (uri, host, expected) in cases {
            let request = parts(uri, host);
            let route = resolve(&request, "localhost").unwrap();
            assert_eq!(route.path, expected, "{uri}");
            let located = EnginePath::locate(&request, &route);
            assert_eq!(located.of(&request), expected, "{uri}");
        }
    }

    #[test]
    fn resolve_keeps_percent_encoding() {
        let request = parts("/petstore/pets/a%2Fb%20c", Some("acme.localhost"));
        let route = resolve(&request, "localhost").unwrap();
        assert_eq!(route.path, "/pets/a%2Fb%20c");
    }

    #[test]
    fn resolve_path_form_any_host() {
        for host in [Some("127.0.0.1:9000"), Some("other.localhost"), None] {
            let request = parts("/_m/acme/petstore/pets?x=1", host);
            let route = resolve(&request, "localhost").unwrap();
            assert_eq!(route.org, "acme", "host {host:?}");
            assert_eq!(route.deployment, "petstore", "host {host:?}");
            assert_eq!(route.path, "/pets", "host {host:?}");
            assert_eq!(route.query, Some("x=1"), "host {host:?}");
        }
    }

    #[test]
    fn resolve_path_form_deployment_root() {
        let request = parts("/_m/acme/petstore", None);
        let route = resolve(&request, "localhost").unwrap();
        assert_eq!(route.deployment, "petstore");
        assert_eq!(route.path, "/");
    }

    #[test]
    fn resolve_path_form_incomplete() {
        let request = parts("/_m/acme", None);
        assert_eq!(
            resolve(&request, "localhost"),
            Err(RouteError::MissingDeployment { org: "acme" })
        );
        let request = parts("/_m/acme/", None);
        assert_eq!(
            resolve(&request, "localhost"),
            Err(RouteError::MissingDeployment { org: "acme" })
        );
        let request = parts("/_m/", Some("localhost"));
        assert_eq!(
            resolve(&request, "localhost"),
            Err(RouteError::NoTenant {
                host: Some("localhost")
            })
        );
    }

    #[test]
    fn resolve_without_tenant_host() {
        let request = parts("/petstore/pets", Some("127.0.0.1:8080"));
        assert_eq!(
            resolve(&request, "localhost"),
            Err(RouteError::NoTenant {
                host: Some("127.0.0.1:8080")
            })
        );
        let request = parts("/petstore/pets", None);
        assert_eq!(
            resolve(&request, "localhost"),
            Err(RouteError::NoTenant { host: None })
        );
    }

    #[test]
    fn resolve_prefers_uri_authority() {
        let request = parts(
            "http://acme.localhost/petstore/pets",
            Some("other.localhost"),
        );
        let route = resolve(&request, "localhost").unwrap();
        assert_eq!(route.org, "acme");
        assert_eq!(route.path, "/pets");
    }

    #[test]
    fn whole_path_keeps_query_separate() {
        let uri: Uri = "/pets/1?limit=2".parse().unwrap();
        assert_eq!(whole_path(&uri), ("/pets/1", Some("limit=2")));
        let uri: Uri = "http://localhost".parse().unwrap();
        assert_eq!(whole_path(&uri), ("/", None));
    }
}
