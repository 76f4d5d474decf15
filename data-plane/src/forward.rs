//! Forwarding a request to its deployment's upstream (`config_json.proxy`) over pingora's
//! HTTP/1.1 client connector, which pools upstream connections per address.
//!
//! The request body is read whole before forwarding, within the deployment's body limit, so a
//! chunked upload cannot exceed the limit on its way to the upstream. The upstream's response
//! is streamed back as it arrives. An upstream that sends no response header within the
//! deployment's `proxy.timeout_ms` gets a 504.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderName, CONNECTION, CONTENT_LENGTH, EXPECT, HOST, TE, TRANSFER_ENCODING, UPGRADE,
};
use http::{Method, Version};
use pingora::connectors::http::v1::Connector;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora::protocols::http::ServerSession;
use pingora::upstreams::peer::HttpPeer;

use crate::app::{quota_headers, respond_error, Ending, RequestCtx};
use crate::error::EdgeError;
use crate::handler;
use crate::limits::Quota;
use crate::proxy::ProxyConfig;
use crate::route::EnginePath;

/// Time to open a connection to an upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time an upstream may stay silent while it sends its response body. The response header has
/// the deployment's `proxy.timeout_ms` from the start of forwarding.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Time an idle upstream connection stays in the pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Hop-by-hop headers (RFC 9110, section 7.6.1) that each side of the edge sets for itself,
/// besides the fields `Connection` names.
const HOP_BY_HOP: [&str; 4] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
];
/// Times a request is sent when pooled upstream connections fail on first use.
const MAX_ATTEMPTS: usize = 3;

/// Forwards requests to upstreams, reusing idle upstream connections.
pub(crate) struct Forwarder {
    connector: Connector,
}

impl Forwarder {
    pub(crate) fn new() -> Forwarder {
        Forwarder {
            connector: Connector::new(None),
        }
    }

    /// Forwards the request with its whole `body` and streams the upstream's response back,
    /// or responds with 502 in the error format when the upstream cannot be reached or fails before
    /// its response header.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn forward(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
        proxy: &Arc<ProxyConfig>,
        path: EnginePath,
        allow_private: bool,
        body: Bytes,
        quota: Option<Quota>,
    ) -> pingora::Result<Ending> {
        let request = upstream_request(proxy, session.req_header(), path, body.len())?;
        let exchanged = tokio::time::timeout(
            proxy.timeout,
            self.resolve_and_exchange(proxy, allow_private, request, body),
        )
        .await;
        let (mut upstream, peer) = match exchanged {
            Ok(Ok(exchanged)) => exchanged,
            Ok(Err(reason)) => return upstream_failed(session, ctx, proxy, reason, quota).await,
            Err(_) => {
                let error = EdgeError::UpstreamTimeout {
                    upstream: proxy.display_url(),
                    timeout_ms: proxy.timeout.as_millis() as u64,
                };
                tracing::warn!(
                    request_id = %ctx.request_id,
                    org = ctx.org_slug(),
                    deployment = ctx.deployment_slug(),
                    upstream = %proxy.display_url(),
                    timeout_ms = proxy.timeout.as_millis() as u64,
                    "the upstream did not send a response header in time"
                );
                return respond_error(session, ctx, &error, quota).await;
            }
        };

        let Some(upstream_header) = upstream.resp_header() else {
            let reason = "the upstream sent no response header".to_owned();
            return upstream_failed(session, ctx, proxy, reason, quota).await;
        };
        let header =
            downstream_header(upstream_header, session.is_http2(), &ctx.request_id, quota)?;
        session.write_response_header(Box::new(header)).await?;
        loop {
            match upstream.read_body_bytes().await {
                Ok(Some(chunk)) => {
                    ctx.bytes_out += chunk.len() as u64;
                    session.write_response_body(chunk, false).await?;
                }
                Ok(None) => break,
                Err(error) => {
                    // The status is already sent, so closing the connection is the only way to
                    // signal an incomplete body.
                    tracing::warn!(
                        request_id = %ctx.request_id,
                        org = ctx.org_slug(),
                        deployment = ctx.deployment_slug(),
                        upstream = %proxy.display_url(),
                        %error,
                        "the upstream failed while sending its response body"
                    );
                    ctx.log_message = Some(format!(
                        "the upstream {} failed while sending its response body",
                        proxy.display_url()
                    ));
                    return Ok(Ending::Fault);
                }
            }
        }
        session.write_response_body(Bytes::new(), true).await?;
        self.connector
            .release_http_session(upstream, &peer, Some(POOL_IDLE_TIMEOUT))
            .await;
        Ok(Ending::Responded)
    }

    /// Resolves the upstream's address, sends the request and reads the final response header.
    /// Returns the reason for the 502 response when any step fails.
    async fn resolve_and_exchange(
        &self,
        proxy: &ProxyConfig,
        allow_private: bool,
        request: RequestHeader,
        body: Bytes,
    ) -> Result<(UpstreamSession, HttpPeer), String> {
        let addr = proxy.resolve(allow_private).await?;
        let mut peer = HttpPeer::new(addr, proxy.tls, proxy.host.clone());
        peer.options.connection_timeout = Some(CONNECT_TIMEOUT);
        peer.options.read_timeout = Some(READ_TIMEOUT);
        peer.options.write_timeout = Some(READ_TIMEOUT);
        match self.exchange(&peer, request, body).await {
            Ok(upstream) => Ok((upstream, peer)),
            Err(error) => {
                tracing::debug!(%error, "the upstream exchange failed");
                Err(failure_reason(error.etype()))
            }
        }
    }

    /// Sends the request to the upstream and reads its final (non-informational) response
    /// header.
    async fn exchange(
        &self,
        peer: &HttpPeer,
        request: RequestHeader,
        body: Bytes,
    ) -> pingora::Result<UpstreamSession> {
        let idempotent = matches!(
            request.method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
        );
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (mut upstream, reused) = self.connector.get_http_session(peer).await?;
            match send(&mut upstream, request.clone(), &body).await {
                Ok(()) => return Ok(upstream),
                // A pooled connection the upstream closed while it was idle fails on first use,
                // so an idempotent request is sent again on the next connection.
                Err(error) if reused && idempotent && attempts < MAX_ATTEMPTS => {
                    tracing::debug!(%error, attempts, "a pooled upstream connection failed; retrying");
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Sends the request on `upstream` and reads its final (non-informational) response header.
async fn send(
    upstream: &mut UpstreamSession,
    request: RequestHeader,
    body: &Bytes,
) -> pingora::Result<()> {
    upstream.write_request_header(Box::new(request)).await?;
    if !body.is_empty() {
        upstream.write_body(body).await?;
    }
    upstream.finish_body().await?;
    loop {
        upstream.read_response().await?;
        let informational = upstream
            .resp_header()
            .is_some_and(|header| header.status.is_informational() && header.status != 101);
        if !informational {
            return Ok(());
        }
    }
}

/// Describes an upstream failure in plain words for the 502 response.
fn failure_reason(kind: &pingora::ErrorType) -> String {
    use pingora::ErrorType;
    let reason = match kind {
        ErrorType::ConnectTimedout => "the connection to the upstream timed out",
        ErrorType::ConnectRefused => "the upstream refused the connection",
        ErrorType::ConnectNoRoute => "no network route leads to the upstream",
        ErrorType::TLSHandshakeFailure | ErrorType::HandshakeError => {
            "the TLS handshake with the upstream failed"
        }
        ErrorType::TLSHandshakeTimedout => "the TLS handshake with the upstream timed out",
        ErrorType::InvalidCert => "the upstream's TLS certificate is invalid",
        ErrorType::ReadTimedout => "the upstream did not respond in time",
        ErrorType::WriteTimedout => "the upstream did not accept the request in time",
        ErrorType::ConnectionClosed => "the upstream closed the connection before responding",
        ErrorType::InvalidHTTPHeader => "the upstream sent an invalid response header",
        ErrorType::ReadError | ErrorType::WriteError => "the connection to the upstream failed",
        other => return format!("the upstream exchange failed ({})", other.as_str()),
    };
    reason.to_owned()
}

/// Logs why a request could not be forwarded and responds with 502 in the error format.
async fn upstream_failed(
    session: &mut ServerSession,
    ctx: &mut RequestCtx,
    proxy: &ProxyConfig,
    reason: String,
    quota: Option<Quota>,
) -> pingora::Result<Ending> {
    tracing::warn!(
        request_id = %ctx.request_id,
        org = ctx.org_slug(),
        deployment = ctx.deployment_slug(),
        upstream = %proxy.display_url(),
        %reason,
        "failed to forward a request to the upstream"
    );
    let error = EdgeError::UpstreamFailed {
        upstream: proxy.display_url(),
        reason,
    };
    respond_error(session, ctx, &error, quota).await
}

/// Builds the upstream request: the downstream request with the upstream's path, `Host` and a
/// `Content-Length` for the body read, without hop-by-hop headers.
fn upstream_request(
    proxy: &ProxyConfig,
    downstream: &RequestHeader,
    path: EnginePath,
    body_len: usize,
) -> pingora::Result<RequestHeader> {
    let mut target = format!("{}{}", proxy.base_path, path.of(downstream));
    if let Some(query) = downstream.uri.query() {
        target.push('?');
        target.push_str(query);
    }
    let uri: http::Uri = target.parse().map_err(|error| {
        pingora::Error::because(
            pingora::ErrorType::InternalError,
            "failed to build the upstream request path",
            error,
        )
    })?;

    let had_body = downstream.headers.contains_key(CONTENT_LENGTH)
        || downstream.headers.contains_key(TRANSFER_ENCODING);
    let mut request = downstream.clone();
    request.set_uri(uri);
    request.set_version(Version::HTTP_11);
    for name in connection_fields(&downstream.headers) {
        request.remove_header(&name);
    }
    for name in [
        CONNECTION,
        TE,
        TRANSFER_ENCODING,
        UPGRADE,
        EXPECT,
        CONTENT_LENGTH,
    ] {
        request.remove_header(&name);
    }
    for name in HOP_BY_HOP {
        request.remove_header(&HeaderName::from_static(name));
    }
    if body_len > 0 || had_body {
        request.insert_header(CONTENT_LENGTH, body_len)?;
    }
    let default_port = if proxy.tls { 443 } else { 80 };
    let host = if proxy.port == default_port {
        proxy.host.clone()
    } else if proxy.host.contains(':') {
        format!("[{}]:{}", proxy.host, proxy.port)
    } else {
        format!("{}:{}", proxy.host, proxy.port)
    };
    request.insert_header(HOST, host)?;
    Ok(request)
}

/// Returns the header fields that `Connection` names, which apply to one hop only.
fn connection_fields(headers: &http::HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(handler::list_items)
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect()
}

/// Builds the response header for the client from the upstream's: hop-by-hop headers removed,
/// chunked framing for a body without a length on HTTP/1.1, and the request id and rate-limit
/// headers added.
fn downstream_header(
    upstream: &ResponseHeader,
    http2: bool,
    request_id: &str,
    quota: Option<Quota>,
) -> pingora::Result<ResponseHeader> {
    let mut header = upstream.clone();
    header.set_version(if http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    });
    for name in connection_fields(&upstream.headers) {
        header.remove_header(&name);
    }
    for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE] {
        header.remove_header(&name);
    }
    for name in HOP_BY_HOP {
        header.remove_header(&HeaderName::from_static(name));
    }
    let bodiless = upstream.status.is_informational()
        || upstream.status == http::StatusCode::NO_CONTENT
        || upstream.status == http::StatusCode::NOT_MODIFIED;
    if !http2 && !bodiless && !header.headers.contains_key(CONTENT_LENGTH) {
        header.insert_header(TRANSFER_ENCODING, "chunked")?;
    }
    header.insert_header(handler::REQUEST_ID_HEADER, request_id)?;
    for (name, value) in quota.map(quota_headers).into_iter().flatten() {
        header.insert_header(name, value)?;
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(base_path: &str, port: u16) -> ProxyConfig {
        let config = serde_json::json!({
            "proxy": {"upstream": format!("http://upstream.example:{port}{base_path}")},
        });
        let settings = crate::proxy::ProxySettings::from_config(&config)
            .unwrap()
            .unwrap();
        ProxyConfig::new(settings)
    }

    #[test]
    fn upstream_request_takes_path_host_and_length() {
        let mut downstream =
            RequestHeader::build("POST", b"/_m/acme/petstore/pets?limit=2", None).unwrap();
        downstream.insert_header("host", "edge.local").unwrap();
        downstream
            .insert_header("transfer-encoding", "chunked")
            .unwrap();
        downstream
            .insert_header("connection", "keep-alive, x-hop")
            .unwrap();
        downstream.insert_header("x-hop", "dropped").unwrap();
        downstream
            .insert_header("proxy-authorization", "Basic secret")
            .unwrap();
        downstream.insert_header("x-custom", "kept").unwrap();

        let path = located(&downstream);
        let request = upstream_request(&proxy("/v1", 8080), &downstream, path, 5).unwrap();
        assert_eq!(request.uri.to_string(), "/v1/pets?limit=2");
        assert_eq!(request.headers["host"], "upstream.example:8080");
        assert_eq!(request.headers["content-length"], "5");
        assert_eq!(request.headers["x-custom"], "kept");
        assert!(!request.headers.contains_key("transfer-encoding"));
        assert!(!request.headers.contains_key("connection"));
        assert!(!request.headers.contains_key("x-hop"));
        assert!(!request.headers.contains_key("proxy-authorization"));
    }

    /// Resolves a path-form request and returns where its engine path starts.
    fn located(request: &RequestHeader) -> EnginePath {
        let route = crate::route::resolve(request, "localhost").unwrap();
        EnginePath::locate(request, &route)
    }

    #[test]
    fn failure_reasons_are_plain_words() {
        let reason = failure_reason(&pingora::ErrorType::ConnectRefused);
        assert_eq!(reason, "the upstream refused the connection");
        let other = failure_reason(&pingora::ErrorType::BindError);
        assert_eq!(other, "the upstream exchange failed (BindError)");
    }

    #[test]
    fn bodiless_request_gets_no_length() {
        let downstream = RequestHeader::build("GET", b"/_m/acme/petstore/pets", None).unwrap();
        let path = located(&downstream);
        let request = upstream_request(&proxy("", 80), &downstream, path, 0).unwrap();
        assert_eq!(request.uri.to_string(), "/pets");
        assert_eq!(request.headers["host"], "upstream.example");
        assert!(!request.headers.contains_key("content-length"));
    }

    #[test]
    fn response_without_length_is_chunked_on_http1_only() {
        let mut upstream = ResponseHeader::build(200, None).unwrap();
        upstream.insert_header("connection", "close").unwrap();
        upstream
            .insert_header("content-type", "text/plain")
            .unwrap();
        let quota = Quota {
            limit: 10,
            remaining: 9,
            reset_unix_secs: 60,
        };

        let http1 = downstream_header(&upstream, false, "req-1", Some(quota)).unwrap();
        assert_eq!(http1.headers["transfer-encoding"], "chunked");
        assert!(!http1.headers.contains_key("connection"));
        assert_eq!(http1.headers["x-request-id"], "req-1");
        assert_eq!(http1.headers["x-ratelimit-remaining"], "9");
        assert_eq!(http1.headers["content-type"], "text/plain");

        let http2 = downstream_header(&upstream, true, "req-1", None).unwrap();
        assert!(!http2.headers.contains_key("transfer-encoding"));
        assert!(!http2.headers.contains_key("x-ratelimit-limit"));
    }

    #[test]
    fn response_with_length_keeps_it() {
        let mut upstream = ResponseHeader::build(200, None).unwrap();
        upstream.insert_header("content-length", "12").unwrap();
        let header = downstream_header(&upstream, false, "req-1", None).unwrap();
        assert_eq!(header.headers["content-length"], "12");
        assert!(!header.headers.contains_key("transfer-encoding"));
    }
}
