//! A fast path for the request shape that dominates mock traffic: an HTTP/1.1 `GET`, `HEAD`,
//! `OPTIONS` or `DELETE` without a body, served by the mock alone. It parses request heads with
//! `httparse` and writes each response in one buffer, which costs a fraction of pingora's
//! per-request session (BENCHMARKS.md).
//!
//! Every other request goes to pingora's HTTP/1 server ([`EdgeApp`]) together with the bytes
//! already read, and the connection comes back to the fast path after the response. HTTP/2
//! connections (h2c, or ALPN `h2` over TLS) go to pingora from the start.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, DATE, EXPECT, HOST, TRANSFER_ENCODING,
    UPGRADE,
};
use http::{Method, Version};
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::futures::Notified;

use crate::app::{has_body_framing, http_date, EdgeApp, RequestCtx};
use crate::error::{error_response, EdgeError};
use crate::handler;

/// Headers a request head may have on the fast path; a request with more goes to pingora.
const MAX_HEADERS: usize = 64;
/// Time an idle connection may wait for its next request. pingora's HTTP/1 sessions use the
/// same read timeout by default. A started request head has the request timeout instead.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time a client may take to accept a response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time and bytes a rejected connection's remaining input is read for before it closes.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
const LINGER_MAX_BYTES: usize = 1024 * 1024;
/// Initial capacity of a connection's read buffer, enough for a typical request head.
const BUFFER_CAPACITY: usize = 4096;
/// The first bytes of an HTTP/2 connection with prior knowledge (RFC 9113, section 3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The edge's connection handler: the HTTP/1 fast path in front of [`EdgeApp`].
pub(crate) struct EdgeServer {
    app: Arc<EdgeApp>,
}

impl EdgeServer {
    pub(crate) fn new(app: EdgeApp) -> EdgeServer {
        EdgeServer { app: Arc::new(app) }
    }
}

#[async_trait]
impl ServerApp for EdgeServer {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        match speaks_http2(&mut stream).await {
            Some(true) => self.app.process_new(stream, shutdown).await,
            Some(false) => {
                self.serve_http1(stream, shutdown).await;
                None
            }
            None => None,
        }
    }

    async fn cleanup(&self) {
        self.app.http_cleanup().await;
    }
}

/// A parsed request head that the fast path can serve.
struct PlainHead {
    /// Length of the head in the buffer, including the blank line.
    len: usize,
    request: http::request::Parts,
    /// True when the client asked to close the connection after the response.
    close: bool,
}

/// The outcome of parsing the start of the buffer.
// A short-lived stack value: boxing the head would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Plain(PlainHead),
    /// The head is incomplete, so more bytes are needed.
    Partial,
    /// Anything else: a body, another method or version, a head over the limits or one that
    /// does not parse. pingora serves it, with its own error responses.
    Other,
}

impl EdgeServer {
    /// Serves requests on an HTTP/1 connection until it closes. A request that the fast path
    /// does not serve goes to pingora, and the connection comes back after its response.
    async fn serve_http1(&self, mut stream: Stream, shutdown: &ShutdownWatch) {
        let config = &self.app.shared().config;
        let mut buffer = BytesMut::with_capacity(BUFFER_CAPACITY);
        // One registration for the whole connection instead of one per request.
        let mut stop = std::pin::pin!(self.app.stop_notified());
        stop.as_mut().enable();
        let mut head_deadline: Option<Instant> = None;
        loop {
            let head = match parse_head(&buffer, config.max_header_bytes) {
                Parsed::Plain(head) => head,
                Parsed::Partial if buffer.len() < config.max_header_bytes => {
                    // An idle connection waits up to IDLE_TIMEOUT for its next request, and a
                    // started head must be complete within the request timeout of its first
                    // bytes.
                    let timeout = if buffer.is_empty() {
                        IDLE_TIMEOUT
                    } else {
                        let deadline = *head_deadline
                            .get_or_insert_with(|| Instant::now() + config.request_timeout);
                        deadline.saturating_duration_since(Instant::now())
                    };
                    if self.app.is_stopping() && buffer.is_empty() {
                        return;
                    }
                    match read_more(&mut stream, &mut buffer, stop.as_mut(), timeout).await {
                        HeadRead::Data => continue,
                        HeadRead::TimedOut if !buffer.is_empty() => {
                            let error = EdgeError::RequestTimeout {
                                timeout_ms: config.request_timeout.as_millis() as u64,
                            };
                            return self.reject_head(stream, &error).await;
                        }
                        HeadRead::TimedOut | HeadRead::Closed => return,
                    }
                }
                Parsed::Partial => {
                    let error = EdgeError::HeadersTooLarge {
                        max_bytes: config.max_header_bytes,
                    };
                    return self.reject_head(stream, &error).await;
                }
                Parsed::Other => {
                    head_deadline = None;
                    let Some(next) = self.serve_with_pingora(stream, buffer, shutdown).await else {
                        return;
                    };
                    (stream, buffer) = next;
                    continue;
                }
            };
            head_deadline = None;

            let guard = self.app.start_request();
            let mut ctx = RequestCtx::new(handler::request_id(&head.request));
            // pingora's path writes the overload response, and serves what the mock alone
            // cannot.
            let response = (guard.count <= config.max_concurrent_requests)
                .then(|| self.app.respond_plain(&head.request, &mut ctx))
                .flatten();
            let Some(response) = response else {
                drop(guard);
                let Some(next) = self.serve_with_pingora(stream, buffer, shutdown).await else {
                    return;
                };
                (stream, buffer) = next;
                continue;
            };
            buffer.advance(head.len);

            let close = head.close || *shutdown.borrow() || self.app.is_stopping();
            let status = response.status().as_u16();
            let encoded = encode_response(response, head.request.method == Method::HEAD, close);
            let write = async {
                stream.write_all(&encoded).await?;
                stream.flush().await
            };
            let written = pingora_timeout::fast_timeout::fast_timeout(WRITE_TIMEOUT, write).await;
            drop(guard);
            match written {
                Ok(Ok(())) => self.app.log(&head.request, status, ctx, None),
                Ok(Err(error)) => {
                    let error = format!("failed to write the response: {error}");
                    self.app.log(&head.request, 0, ctx, Some(&error));
                    return;
                }
                Err(_) => {
                    let error = format!(
                        "the client did not accept the response within {} s",
                        WRITE_TIMEOUT.as_secs()
                    );
                    self.app.log(&head.request, 0, ctx, Some(&error));
                    return;
                }
            }
            if close {
                // A shutdown instead of a plain close, so unread input cannot turn the close
                // into a reset that destroys the response.
                let _ =
                    pingora_timeout::fast_timeout::fast_timeout(WRITE_TIMEOUT, stream.shutdown())
                        .await;
                return;
            }
        }
    }

    /// Responds to a request head that cannot be read with `error` and closes the connection.
    async fn reject_head(&self, mut stream: Stream, error: &EdgeError) {
        let mut response = error_response(error);
        let request_id = handler::new_request_id();
        handler::set_request_id(&mut response, &request_id);
        let status = response.status().as_u16();
        tracing::debug!(request_id = %request_id, status, %error, "rejected a request head");
        self.app.shared().telemetry.record_unrouted(status);

        let encoded = encode_response(response, false, true);
        let write = async {
            stream.write_all(&encoded).await?;
            stream.shutdown().await
        };
        if let Err(error) = pingora_timeout::fast_timeout::fast_timeout(WRITE_TIMEOUT, write)
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
        {
            tracing::debug!(request_id = %request_id, %error, "failed to send the rejection");
            return;
        }

        // Closing a socket with unread input sends a reset, which can destroy the response
        // before the client reads it, so the rest of the request is read and dropped first.
        let mut discard = [0u8; 4096];
        let linger = async {
            let mut left = LINGER_MAX_BYTES;
            while left > 0 {
                match stream.read(&mut discard).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => left = left.saturating_sub(read),
                }
            }
        };
        let _ = pingora_timeout::fast_timeout::fast_timeout(LINGER_TIMEOUT, linger).await;
    }

    /// Serves the next request with pingora's HTTP/1 server, starting with the bytes already
    /// read. Returns the connection and the bytes read past that request, or `None` when the
    /// connection cannot carry another request.
    async fn serve_with_pingora(
        &self,
        stream: Stream,
        buffer: BytesMut,
        shutdown: &ShutdownWatch,
    ) -> Option<(Stream, BytesMut)> {
        let mut session = ServerSession::new_http1(stream);
        // Bytes read past a request with a body are kept as the start of the next request
        // (RFC 9112, section 9.3.2), so a pipelined request is not lost.
        session.set_pipelining_enabled(true);
        if !buffer.is_empty() {
            session.set_pipelined_prefix(buffer);
        }
        // pingora only reuses a connection with a keep-alive timeout set, and writes without a
        // timeout unless one is set.
        if !*shutdown.borrow() {
            session.set_keepalive(Some(IDLE_TIMEOUT.as_secs()));
        }
        session.set_write_timeout(Some(WRITE_TIMEOUT));

        let (reusable, _settings) = self.app.serve_session(session, shutdown).await?;
        let (stream, overread) = reusable.into_parts();
        let mut buffer = overread.unwrap_or_default();
        buffer.reserve(BUFFER_CAPACITY);
        Some((stream, buffer))
    }
}

/// The outcome of reading more of a request head.
enum HeadRead {
    Data,
    /// The connection closed or failed, or the listeners stopped while it was idle.
    Closed,
    TimedOut,
}

/// Reads more bytes of a request head within `timeout`. `stop` ends the wait on an idle
/// connection when the listeners stop.
async fn read_more(
    stream: &mut Stream,
    buffer: &mut BytesMut,
    stop: Pin<&mut Notified<'_>>,
    timeout: Duration,
) -> HeadRead {
    let idle = buffer.is_empty();
    let read = tokio::select! {
        biased;
        read = pingora_timeout::fast_timeout::fast_timeout(timeout, stream.read_buf(buffer)) => read,
        // Only an idle connection closes when the listeners stop, a started request is read.
        _ = stop, if idle => return HeadRead::Closed,
    };
    match read {
        Ok(Ok(0)) => HeadRead::Closed,
        Ok(Ok(_)) => HeadRead::Data,
        Ok(Err(error)) => {
            tracing::debug!(%error, "failed to read a request head");
            HeadRead::Closed
        }
        Err(_) => {
            tracing::debug!(
                timeout_ms = timeout.as_millis() as u64,
                "reading a request head timed out"
            );
            HeadRead::TimedOut
        }
    }
}

/// Returns whether a connection speaks HTTP/2: ALPN `h2` over TLS, or the HTTP/2 preface in
/// cleartext. Returns `None` when the client closed the connection or sent nothing in time.
async fn speaks_http2(stream: &mut Stream) -> Option<bool> {
    if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
        return Some(true);
    }
    if stream.get_ssl_digest().is_some() {
        return Some(false);
    }
    // pingora's peek reads exactly the requested number of bytes and then puts them back, so
    // each peek requests more only while the bytes still match the preface. An HTTP/1 request
    // line differs from it by its third byte at the latest (`PRI` is no HTTP/1 method, and
    // WebDAV's `PROPFIND` and `PROPPATCH` differ at `O`), so a short request does not wait.
    for len in [1, 2, 3, HTTP2_PREFACE.len()] {
        let mut head = [0u8; HTTP2_PREFACE.len()];
        let peeked = pingora_timeout::fast_timeout::fast_timeout(
            IDLE_TIMEOUT,
            stream.try_peek(&mut head[..len]),
        )
        .await;
        if !matches!(peeked, Ok(Ok(true))) {
            return None;
        }
        if head[..len] != HTTP2_PREFACE[..len] {
            return Some(false);
        }
    }
    Some(true)
}

/// Parses the request head at the start of `buffer`.
fn parse_head(buffer: &[u8], max_head_bytes: usize) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(buffer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        // A head with more headers than the fast path takes is read whole before pingora gets
        // it, so it has the same time and size limits as any other head.
        Err(httparse::Error::TooManyHeaders) if !has_blank_line(buffer) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    if len > max_head_bytes || parsed.version != Some(1) {
        return Parsed::Other;
    }
    let method = match parsed.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        Some("OPTIONS") => Method::OPTIONS,
        Some("DELETE") => Method::DELETE,
        _ => return Parsed::Other,
    };
    let Some(target) = parsed.path.filter(|target| target.starts_with('/')) else {
        return Parsed::Other;
    };
    let Ok(uri) = http::Uri::from_maybe_shared(Bytes::copy_from_slice(target.as_bytes())) else {
        return Parsed::Other;
    };

    let mut request = http::Request::new(()).into_parts().0;
    request.method = method;
    request.uri = uri;
    request.version = Version::HTTP_11;
    request.headers.reserve(parsed.headers.len());
    let mut close = false;
    for header in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(header.value),
        ) else {
            return Parsed::Other;
        };
        if name == CONTENT_LENGTH {
            if value.as_bytes() != b"0" {
                return Parsed::Other;
            }
        } else if name == TRANSFER_ENCODING || name == EXPECT || name == UPGRADE {
            return Parsed::Other;
        } else if name == CONNECTION {
            close |= has_token(&value, "close");
        } else if name == HOST
            && (request.headers.contains_key(HOST) || value.as_bytes().contains(&b'@'))
        {
            // pingora rejects these with 400, and the tenant must not depend on which copy
            // counts.
            return Parsed::Other;
        }
        request.headers.append(name, value);
    }
    Parsed::Plain(PlainHead {
        len,
        request,
        close,
    })
}

/// Returns true when `buffer` contains the blank line that ends a request head.
fn has_blank_line(buffer: &[u8]) -> bool {
    buffer.windows(3).any(|triple| triple == b"\n\r\n")
        || buffer.windows(2).any(|pair| pair == b"\n\n")
}

/// Returns true when a comma-separated header value lists `token`, ignoring case.
fn has_token(value: &HeaderValue, token: &str) -> bool {
    handler::list_items(value).any(|item| item.eq_ignore_ascii_case(token))
}

/// Encodes a complete HTTP/1.1 response with `Content-Length` and `Date`, and
/// `Connection: close` when `close` is set, else `Connection: keep-alive`. A response to `HEAD`
/// keeps its headers only.
pub(crate) fn encode_response(
    response: http::Response<Bytes>,
    head_only: bool,
    close: bool,
) -> Vec<u8> {
    let (parts, body) = response.into_parts();
    let status = parts.status;

    let mut encoded = Vec::with_capacity(256 + body.len());
    encoded.extend_from_slice(b"HTTP/1.1 ");
    encoded.extend_from_slice(status.as_str().as_bytes());
    encoded.push(b' ');
    encoded.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    encoded.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == CONTENT_LENGTH || name == CONNECTION || name == DATE {
            continue;
        }
        push_header(&mut encoded, wire_name(name).as_bytes(), value.as_bytes());
    }

    let framed = has_body_framing(status);
    // A response to HEAD keeps the length the mock stated for the body it leaves out.
    let declared = parts.headers.get(CONTENT_LENGTH).filter(|_| head_only);
    match declared {
        Some(length) if framed => push_header(&mut encoded, b"Content-Length", length.as_bytes()),
        _ if framed => {
            let mut length = itoa::Buffer::new();
            let digits = length.format(body.len());
            push_header(&mut encoded, b"Content-Length", digits.as_bytes());
        }
        _ => {}
    }
    push_header(&mut encoded, b"Date", http_date().as_bytes());
    // pingora's HTTP/1 server states the connection's fate on every response, so both paths do.
    let connection: &[u8] = if close { b"close" } else { b"keep-alive" };
    push_header(&mut encoded, b"Connection", connection);
    encoded.extend_from_slice(b"\r\n");
    if framed && !head_only {
        encoded.extend_from_slice(&body);
    }
    encoded
}

/// Returns the name a header has on the wire. pingora 0.9 writes the common names below in
/// title case and every other name in lowercase, so both paths of a connection write the same.
fn wire_name(name: &HeaderName) -> &str {
    match *name {
        http::header::ACCEPT_RANGES => "Accept-Ranges",
        http::header::AGE => "Age",
        http::header::CACHE_CONTROL => "Cache-Control",
        CONNECTION => "Connection",
        http::header::CONTENT_TYPE => "Content-Type",
        http::header::CONTENT_ENCODING => "Content-Encoding",
        CONTENT_LENGTH => "Content-Length",
        DATE => "Date",
        TRANSFER_ENCODING => "Transfer-Encoding",
        HOST => "Host",
        http::header::SERVER => "Server",
        http::header::SET_COOKIE => "Set-Cookie",
        _ => name.as_str(),
    }
}

fn push_header(encoded: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    encoded.extend_from_slice(name);
    encoded.extend_from_slice(b": ");
    encoded.extend_from_slice(value);
    encoded.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(head: &[u8]) -> PlainHead {
        match parse_head(head, 64 * 1024) {
            Parsed::Plain(head) => head,
            Parsed::Partial => panic!("partial head"),
            Parsed::Other => panic!("head not served on the fast path"),
        }
    }

    #[test]
    fn get_without_body_is_plain() {
        let bytes = b"GET /petstore/pets?limit=2 HTTP/1.1\r\nHost: acme.localhost\r\nX-Request-Id: r-1\r\n\r\nGET /next";
        let head = plain(bytes);
        assert_eq!(head.len, bytes.len() - "GET /next".len());
        assert_eq!(head.request.method, Method::GET);
        assert_eq!(head.request.uri, "/petstore/pets?limit=2");
        assert_eq!(head.request.headers["host"], "acme.localhost");
        assert_eq!(head.request.headers["x-request-id"], "r-1");
        assert!(!head.close);
    }

    #[test]
    fn connection_close_is_noticed() {
        let head = plain(b"HEAD / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n");
        assert!(head.close);
        assert_eq!(head.request.method, Method::HEAD);
    }

    #[test]
    fn other_requests_go_to_pingora() {
        for head in [
            &b"POST /pets HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"[..],
            b"GET /pets HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
            b"GET /pets HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /pets HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET /pets HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"GET /pets HTTP/1.0\r\n\r\n",
            b"GET http://acme.localhost/pets HTTP/1.1\r\n\r\n",
            b"GET /pets HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"GET /pets HTTP/1.1\r\nHost: a.localhost\r\nHost: b.localhost\r\n\r\n",
            b"GET /pets HTTP/1.1\r\nHost: user@a.localhost\r\n\r\n",
        ] {
            assert!(
                matches!(parse_head(head, 64 * 1024), Parsed::Other),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn many_headers_are_read_whole() {
        let mut head = b"GET /pets HTTP/1.1\r\nHost: acme.localhost\r\n".to_vec();
        for index in 0..MAX_HEADERS {
            head.extend_from_slice(format!("x-filler-{index}: a\r\n").as_bytes());
        }
        assert!(matches!(parse_head(&head, 64 * 1024), Parsed::Partial));
        head.extend_from_slice(b"\r\n");
        assert!(matches!(parse_head(&head, 64 * 1024), Parsed::Other));
    }

    #[test]
    fn incomplete_and_oversized_heads() {
        assert!(matches!(
            parse_head(b"GET /pets HTTP/1.1\r\nHost: a", 1024),
            Parsed::Partial
        ));
        let long = format!("GET /pets HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(200));
        assert!(matches!(parse_head(long.as_bytes(), 100), Parsed::Other));
    }

    #[test]
    fn response_is_encoded_with_length_and_date() {
        let mut response = http::Response::new(Bytes::from_static(b"[1,2]"));
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        let encoded = String::from_utf8(encode_response(response.clone(), false, false)).unwrap();
        assert!(
            encoded.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"),
            "{encoded}"
        );
        assert!(encoded.contains("\r\nContent-Length: 5\r\n"), "{encoded}");
        assert!(encoded.contains("\r\nDate: "), "{encoded}");
        assert!(
            encoded.contains("\r\nConnection: keep-alive\r\n"),
            "{encoded}"
        );
        assert!(encoded.ends_with("\r\n\r\n[1,2]"), "{encoded}");

        let head_only = String::from_utf8(encode_response(response, true, true)).unwrap();
        assert!(
            head_only.contains("\r\nContent-Length: 5\r\n"),
            "{head_only}"
        );
        assert!(
            head_only.ends_with("Connection: close\r\n\r\n"),
            "{head_only}"
        );
    }

    #[test]
    fn no_content_has_no_length_or_body() {
        let mut response = http::Response::new(Bytes::from_static(b"stray"));
        *response.status_mut() = http::StatusCode::NO_CONTENT;
        let encoded = String::from_utf8(encode_response(response, false, false)).unwrap();
        assert!(
            encoded.starts_with("HTTP/1.1 204 No Content\r\n"),
            "{encoded}"
        );
        assert!(!encoded.contains("Content-Length"), "{encoded}");
        assert!(encoded.ends_with("\r\n\r\n"), "{encoded}");
    }

    #[test]
    fn declared_date_is_replaced() {
        let mut response = http::Response::new(Bytes::new());
        response.headers_mut().insert(
            DATE,
            HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        let encoded = String::from_utf8(encode_response(response, false, false)).unwrap();
        assert_eq!(encoded.matches("Date: ").count(), 1, "{encoded}");
        assert!(!encoded.contains("1970"), "{encoded}");
    }
}
