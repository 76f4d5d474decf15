//! The open-connection limit: a pingora [`ServerApp`] around the HTTP application that counts
//! each client connection from accept to close and turns away connections over
//! `EdgeConfig::max_connections`.

use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use prometheus::{IntCounter, IntGauge};
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{error_response, EdgeError};
use crate::telemetry::now_unix_ms;

/// Maximum time a rejected connection gets to take the 503 response.
const REJECT_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Maximum time and size of the input read and discarded from a rejected connection before
/// it is closed. Closing a socket with unread input sends a TCP reset, which can destroy the
/// 503 response before the client reads it.
const REJECT_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
const REJECT_DRAIN_MAX_BYTES: usize = 64 * 1024;
/// Minimum interval between two warnings about rejected connections.
const REJECT_WARN_INTERVAL_MS: i64 = 10_000;

/// Counts open connections and rejects those over the limit, then hands the rest to `inner`.
pub(crate) struct ConnectionLimit<A> {
    inner: Arc<A>,
    max_connections: usize,
    open: AtomicUsize,
    open_gauge: IntGauge,
    rejected: IntCounter,
    /// When the last rejection warning was logged, in Unix milliseconds.
    last_warning_ms: AtomicI64,
}

impl<A> ConnectionLimit<A> {
    pub(crate) fn new(
        inner: A,
        max_connections: usize,
        open_gauge: IntGauge,
        rejected: IntCounter,
    ) -> Self {
        ConnectionLimit {
            inner: Arc::new(inner),
            max_connections,
            open: AtomicUsize::new(0),
            open_gauge,
            rejected,
            last_warning_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// Counts a new connection, or returns `None` when `max_connections` are open.
    fn try_open(&self) -> Option<OpenConnection<'_, A>> {
        let max = self.max_connections;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()?;
        self.open_gauge.inc();
        Some(OpenConnection { limit: self })
    }

    /// Sends the 503 response to a connection over the limit and closes it.
    async fn reject(&self, mut stream: Stream) {
        self.rejected.inc();
        self.warn_rejected();

        let error = EdgeError::TooManyConnections {
            max_connections: self.max_connections,
        };
        let response = match read_preface(&mut stream).await {
            Preface::Http2 => encode_http2_refusal(&error.to_string()),
            Preface::Other => encode_closing_response(error_response(&error)),
        };
        let written = tokio::time::timeout(REJECT_WRITE_TIMEOUT, async {
            stream.write_all(&response).await?;
            stream.flush().await?;
            stream.shutdown().await
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::debug!("failed to send the connection-limit response");
            return;
        }

        let mut buffer = [0u8; 4096];
        let mut drained = 0;
        let _ = tokio::time::timeout(REJECT_DRAIN_TIMEOUT, async {
            while drained < REJECT_DRAIN_MAX_BYTES {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => drained += read,
                }
            }
        })
        .await;
    }

    /// Logs a warning about rejected connections at most once per
    /// [`REJECT_WARN_INTERVAL_MS`].
    fn warn_rejected(&self) {
        let now = now_unix_ms();
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < REJECT_WARN_INTERVAL_MS {
            return;
        }
        if self
            .last_warning_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                max_connections = self.max_connections,
                rejected_total = self.rejected.get(),
                "rejecting connections because the edge has its maximum open"
            );
        }
    }
}

/// One counted connection, released when dropped, also when the connection's task is
/// cancelled.
struct OpenConnection<'a, A> {
    limit: &'a ConnectionLimit<A>,
}

impl<A> Drop for OpenConnection<'_, A> {
    fn drop(&mut self) {
        self.limit.open.fetch_sub(1, Ordering::AcqRel);
        self.limit.open_gauge.dec();
    }
}

#[async_trait]
impl<A> ServerApp for ConnectionLimit<A>
where
    A: ServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Some(_open) = self.try_open() else {
            self.reject(stream).await;
            return None;
        };
        // The connection counts until the inner application lets go of the stream, so reused
        // streams are served here instead of being returned to pingora's loop.
        let mut reused = self.inner.process_new(stream, shutdown).await;
        while let Some(stream) = reused {
            reused = self.inner.process_new(stream, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

/// The first bytes an HTTP/2 client sends, over TLS after ALPN `h2` and in cleartext (h2c)
/// with prior knowledge (RFC 9113, section 3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// HTTP/2 frame types and the error code sent to a refused connection (RFC 9113, sections 6
/// and 7).
const FRAME_SETTINGS: u8 = 0x4;
const FRAME_GOAWAY: u8 = 0x7;
const REFUSED_STREAM: u32 = 0x7;

/// The protocol a rejected client speaks, recognised by its first bytes.
enum Preface {
    Http2,
    Other,
}

/// Reads the client's first bytes until they match or leave the HTTP/2 preface. The bytes read
/// are discarded, like the rest of a rejected connection's input.
async fn read_preface(stream: &mut Stream) -> Preface {
    let mut head = [0u8; HTTP2_PREFACE.len()];
    let mut filled = 0;
    let read = tokio::time::timeout(REJECT_DRAIN_TIMEOUT, async {
        while filled < head.len() {
            match stream.read(&mut head[filled..]).await {
                Ok(0) | Err(_) => return Preface::Other,
                Ok(read) => filled += read,
            }
            if head[..filled] != HTTP2_PREFACE[..filled] {
                return Preface::Other;
            }
        }
        Preface::Http2
    })
    .await;
    read.unwrap_or(Preface::Other)
}

/// Encodes the server's connection preface (an empty SETTINGS frame) and a GOAWAY frame that
/// refuses every stream, with `message` as its debug data. A last stream id of 0 means that no
/// request was processed, so the client may retry.
fn encode_http2_refusal(message: &str) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(9 + 9 + 8 + message.len());
    encode_frame_header(&mut encoded, 0, FRAME_SETTINGS);

    let debug_data = message.as_bytes();
    encode_frame_header(&mut encoded, 8 + debug_data.len(), FRAME_GOAWAY);
    encoded.extend_from_slice(&0u32.to_be_bytes());
    encoded.extend_from_slice(&REFUSED_STREAM.to_be_bytes());
    encoded.extend_from_slice(debug_data);
    encoded
}

/// Appends a 9-byte frame header for `frame_type` with no flags on stream 0.
fn encode_frame_header(encoded: &mut Vec<u8>, length: usize, frame_type: u8) {
    let length = u32::try_from(length).expect("a refusal frame is far below 16 MiB");
    encoded.extend_from_slice(&length.to_be_bytes()[1..]);
    encoded.push(frame_type);
    encoded.push(0);
    encoded.extend_from_slice(&0u32.to_be_bytes());
}

/// Encodes a complete HTTP/1.1 response with `Content-Length`, `Date` and
/// `Connection: close`.
fn encode_closing_response(response: http::Response<Bytes>) -> Vec<u8> {
    crate::http1::encode_response(response, false, true)
}

/// Makes closing the request's connection send a TCP reset instead of a FIN, by setting
/// SO_LINGER to 0 on the socket. Returns false for HTTP/2 requests, which share their
/// connection, and when the option cannot be set.
pub(crate) fn reset_on_close(session: &ServerSession) -> bool {
    let Some(stream) = session.stream() else {
        return false;
    };
    // pingora's `UniqueID` of a TCP or TLS-over-TCP stream is the socket's file descriptor.
    let fd: RawFd = stream.id();
    // SAFETY: `fd` belongs to `stream`, which the session keeps open while this borrow lives.
    let socket = unsafe { BorrowedFd::borrow_raw(fd) };
    match SockRef::from(&socket).set_linger(Some(Duration::ZERO)) {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(%error, "failed to set SO_LINGER for a connection reset");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_response_is_complete() {
        let error = EdgeError::TooManyConnections { max_connections: 3 };
        let encoded = encode_closing_response(error_response(&error));
        let text = String::from_utf8(encoded).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nConnection: close"), "{head}");
        assert!(head.contains("\r\nretry-after: 1"), "{head}");
        assert!(
            head.contains(&format!("\r\nContent-Length: {}", body.len())),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "OVERLOADED");
        assert_eq!(body["details"]["max_connections"], 3);
    }
}
