//! The edge's HTTP application: reads each request from pingora's server session and responds
//! from the current snapshot, or forwards the request (see [`crate::forward`]).
//!
//! The application implements pingora's `HttpServerApp` itself instead of going through the
//! `ProxyHttp` pipeline: almost every request is served by the mock, and the pipeline's
//! per-request session and phase futures cost more than the mock's own work (BENCHMARKS.md).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, DATE, EXPECT};
use http::{Method, StatusCode};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::server::ReusableHttpStream;
use pingora::protocols::http::{HttpTask, ServerSession};
use pingora::server::ShutdownWatch;
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::chaos::{ChaosOutcome, FaultKind};
use crate::error::{error_response, EdgeError};
use crate::forward::Forwarder;
use crate::handler::{self, Target};
use crate::limits::{Quota, Rejection};
use crate::route::EnginePath;
use crate::snapshot::ServedDeployment;
use crate::telemetry::{now_unix_ms, Finished, LogMessage};
use crate::Shared;

/// Headers that report the tightest rate limit of the deployment's plan. They are header names
/// rather than strings, because a string name is parsed again on every insert.
pub const RATE_LIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub const RATE_LIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// When the whole limit is available again, in Unix seconds.
pub const RATE_LIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The outcome of a request, for the connection it came on.
pub(crate) enum Ending {
    /// A response was written; the connection may carry another request.
    Responded,
    /// Chaos testing closes the connection without a response.
    Fault,
}

/// The pingora application: serves every request from the current snapshot.
pub(crate) struct EdgeApp {
    shared: Arc<Shared>,
    in_flight: Arc<AtomicUsize>,
    options: HttpServerOptions,
    forwarder: Forwarder,
    /// Set when the listeners stop, so idle keep-alive connections close.
    stopping: AtomicBool,
    stop: Notify,
}

/// Per-request state for telemetry and the request log.
pub(crate) struct RequestCtx {
    started: Instant,
    started_unix_ms: i64,
    pub(crate) request_id: String,
    /// The deployment the request addressed, once found.
    served: Option<Arc<ServedDeployment>>,
    /// The start of the engine's path in the request, set together with `served`.
    engine_path: Option<EnginePath>,
    /// True in single-document mode, where no deployment is counted.
    single: bool,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    /// The response's [`LogMessage`], for the request log.
    pub(crate) log_message: Option<String>,
}

impl RequestCtx {
    /// Returns the slug of the addressed deployment's organization, or `-` before it is found.
    pub(crate) fn org_slug(&self) -> &str {
        self.served
            .as_ref()
            .map_or("-", |served| served.org_slug.as_str())
    }

    /// Returns the slug of the addressed deployment, or `-` before it is found.
    pub(crate) fn deployment_slug(&self) -> &str {
        self.served
            .as_ref()
            .map_or("-", |served| served.slug.as_str())
    }

    pub(crate) fn new(request_id: String) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            started_unix_ms: now_unix_ms(),
            request_id,
            served: None,
            engine_path: None,
            single: false,
            bytes_in: 0,
            bytes_out: 0,
            log_message: None,
        }
    }
}

impl EdgeApp {
    pub(crate) fn new(shared: Arc<Shared>, in_flight: Arc<AtomicUsize>) -> EdgeApp {
        let mut options = HttpServerOptions::default();
        options.h2c = true;
        EdgeApp {
            shared,
            in_flight,
            options,
            forwarder: Forwarder::new(),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Returns true once the listeners stopped.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Counts a request as in flight until the guard is dropped.
    pub(crate) fn start_request(&self) -> InFlightGuard {
        InFlightGuard::new(&self.in_flight)
    }

    /// Returns a future that resolves when the listeners stop, for a caller that waits for the
    /// stop many times. The future resolves only for a stop after its creation, so check
    /// [`EdgeApp::is_stopping`] once it is enabled.
    pub(crate) fn stop_notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.stop.notified()
    }

    /// Resolves when the listeners stopped.
    pub(crate) async fn stopped(&self) {
        let notified = self.stop.notified();
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }
}

#[async_trait]
impl HttpServerApp for EdgeApp {
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let (reusable, settings) = self.serve_session(session, shutdown).await?;
        Some(ReusedHttpStream::from_reusable_stream(reusable, settings))
    }

    async fn http_cleanup(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify_waiters();
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }
}

impl EdgeApp {
    /// Reads one request from `session` and serves it. Returns the connection with the bytes
    /// already read of the next request, or `None` when the connection cannot carry another.
    pub(crate) async fn serve_session(
        &self,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<(ReusableHttpStream, HttpPersistentSettings)> {
        let read = tokio::select! {
            // Biased, so a request already buffered is served before the stop is seen.
            biased;
            read = session.read_request() => read,
            _ = self.stopped() => return None,
        };
        match read {
            Ok(true) => {}
            Ok(false) => return None,
            Err(error) => {
                tracing::debug!(%error, "failed to read a request head");
                if matches!(error.etype(), pingora::ErrorType::InvalidHTTPHeader) {
                    let error = EdgeError::InvalidRequest(
                        "the request head could not be parsed; check the request line and the \
                         `name: value` syntax of each header"
                            .to_owned(),
                    );
                    let mut response = error_response(&error);
                    handler::set_request_id(&mut response, &handler::new_request_id());
                    // `write_response` reads the request's method, which a session without a
                    // parsed head does not have, so the error path of pingora's session writes.
                    let (parts, body) = response.into_parts();
                    let mut header = ResponseHeader::from(parts);
                    let framed = header.insert_header(CONTENT_LENGTH, body.len());
                    let dated = header.insert_header(DATE, http_date());
                    if framed.and(dated).is_ok() {
                        if let Err(error) = session.write_error_response(header, body).await {
                            tracing::debug!(%error, "failed to send the invalid-head response");
                        }
                    }
                }
                session.shutdown().await;
                return None;
            }
        }
        if *shutdown.borrow() || self.stopping.load(Ordering::Acquire) {
            session.set_keepalive(None);
        }

        let guard = self.start_request();
        let mut ctx = RequestCtx::new(handler::request_id(session.req_header()));
        // The span is at debug level because an enabled span costs about 2 µs per request with
        // the fmt subscriber (BENCHMARKS.md). Warnings on the request path name the request id
        // themselves.
        let span = tracing::debug_span!(
            "request",
            request_id = %ctx.request_id,
            org = tracing::field::Empty,
            deployment = tracing::field::Empty,
        );
        let ended = self
            .serve(&mut session, &mut ctx, guard.count)
            .instrument(span)
            .await;
        drop(guard);
        let error = ended.as_ref().err().map(|error| error.to_string());
        let status = session
            .response_written()
            .map_or(0, |response| response.status.as_u16());
        self.log(session.req_header(), status, ctx, error.as_deref());

        match ended {
            Ok(Ending::Responded) => {}
            Ok(Ending::Fault) | Err(_) => return None,
        }
        let settings = HttpPersistentSettings::for_session(&session);
        match session.finish().await {
            Ok(reusable) => reusable.map(|reusable| (reusable, settings)),
            Err(error) => {
                tracing::debug!(%error, "failed to finish a response");
                None
            }
        }
    }

    /// Serves one request from the current snapshot: limits, body, chaos, mock and response.
    async fn serve(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
        concurrent: usize,
    ) -> pingora::Result<Ending> {
        let config = &self.shared.config;
        if concurrent > config.max_concurrent_requests {
            let error = EdgeError::Overloaded {
                max_requests: config.max_concurrent_requests,
            };
            return respond_error(session, ctx, &error, None).await;
        }
        if header_bytes(session.req_header()) > config.max_header_bytes {
            let error = EdgeError::HeadersTooLarge {
                max_bytes: config.max_header_bytes,
            };
            session.set_keepalive(None);
            return respond_error(session, ctx, &error, None).await;
        }

        let snapshot = self.shared.snapshot.load_full();
        let (served, path) =
            match handler::find_target(&snapshot, &config.base_domain, session.req_header()) {
                Target::Unrouted(handled) => {
                    let mut response = handled.response;
                    finish_response(ctx, &mut response, None);
                    return write_response(session, response).await;
                }
                Target::Single => {
                    ctx.single = true;
                    let Some(body) = self
                        .read_body(session, ctx, config.max_request_body_bytes)
                        .await?
                    else {
                        return Ok(Ending::Responded);
                    };
                    let mut response =
                        handler::respond_single(&snapshot, session.req_header(), &body);
                    finish_response(ctx, &mut response, None);
                    return write_response(session, response).await;
                }
                Target::Deployment(served, path) => (served, path),
            };
        let span = tracing::Span::current();
        span.record("org", served.org_slug.as_str());
        span.record("deployment", served.slug.as_str());
        ctx.served = Some(served.clone());
        ctx.engine_path = Some(path);

        let quota = match self.admit(&served) {
            Ok(quota) => quota,
            Err(rejection) => {
                let quota = rejection.quota();
                return respond_error(session, ctx, &rejection.to_error(), Some(quota)).await;
            }
        };

        let max_body = served.limits.max_request_body_bytes.map_or(
            config.max_request_body_bytes,
            |plan_max| {
                config
                    .max_request_body_bytes
                    .min(plan_max.try_into().unwrap_or(usize::MAX))
            },
        );

        let forwarded = served.proxy.as_ref().is_some_and(|proxy| {
            let request = session.req_header();
            proxy.forwards(&served.mock, &request.method, path.of(request))
        });
        let Some(body) = self.read_body(session, ctx, max_body).await? else {
            return Ok(Ending::Responded);
        };
        if let Some(ended) = self.inject_chaos(session, ctx, &served, path, quota).await {
            return ended;
        }
        if let (true, Some(proxy)) = (forwarded, &served.proxy) {
            return self
                .forwarder
                .forward(
                    session,
                    ctx,
                    proxy,
                    path,
                    config.allow_private_upstreams,
                    body,
                    quota,
                )
                .await;
        }

        let mut response = match snapshot.plugin_chain(&served.id) {
            Some(chain) => {
                crate::plugins::respond_with_plugins(
                    Some(&self.shared.plugins),
                    chain,
                    &served,
                    path,
                    session.req_header(),
                    &body,
                )
                .await
            }
            None => handler::respond_deployment(&served, path, session.req_header(), &body),
        };
        finish_response(ctx, &mut response, quota);
        write_response(session, response).await
    }

    /// Responds to a request without a body from the mock alone. Returns `None`, having
    /// counted nothing, when the request needs more: chaos testing, plugins or forwarding.
    pub(crate) fn respond_plain(
        &self,
        request: &http::request::Parts,
        ctx: &mut RequestCtx,
    ) -> Option<http::Response<Bytes>> {
        let config = &self.shared.config;
        let snapshot = self.shared.snapshot.load();
        let (served, path) = match handler::find_target(&snapshot, &config.base_domain, request) {
            Target::Unrouted(handled) => {
                let mut response = handled.response;
                finish_response(ctx, &mut response, None);
                return Some(response);
            }
            Target::Single => {
                ctx.single = true;
                let mut response = handler::respond_single(&snapshot, request, &[]);
                finish_response(ctx, &mut response, None);
                return Some(response);
            }
            Target::Deployment(served, path) => (served, path),
        };
        let engine_path = path.of(request);
        let needs_more =
            snapshot.plugin_chain(&served.id).is_some()
                || served.chaos.as_ref().is_some_and(|chaos| {
                    chaos.applies_to(&served.mock, &request.method, engine_path)
                })
                || served.proxy.as_ref().is_some_and(|proxy| {
                    proxy.forwards(&served.mock, &request.method, engine_path)
                });
        if needs_more {
            return None;
        }

        ctx.served = Some(served.clone());
        ctx.engine_path = Some(path);
        let response = match self.admit(&served) {
            Ok(quota) => {
                let mut response = handler::respond_deployment(&served, path, request, &[]);
                finish_response(ctx, &mut response, quota);
                response
            }
            Err(rejection) => {
                let quota = rejection.quota();
                let mut response = error_response(&rejection.to_error());
                finish_response(ctx, &mut response, Some(quota));
                response
            }
        };
        Some(response)
    }

    /// Counts the request against the deployment's rate limits. Returns the tightest quota, or
    /// the rejection, which is also counted in the metrics.
    fn admit(&self, served: &ServedDeployment) -> Result<Option<Quota>, Rejection> {
        self.shared
            .limiter
            .check(
                served.org_id,
                served.id,
                &served.limits,
                served.period_start,
            )
            .inspect_err(|rejection| {
                self.shared
                    .telemetry
                    .record_rate_limited(served, rejection.window);
            })
    }

    /// Applies the deployment's chaos settings: waits the injected latency, then responds with
    /// an injected error or drops the connection. Returns `None` when the request goes on to
    /// the mock or the upstream, else the result that ends it.
    async fn inject_chaos(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
        served: &ServedDeployment,
        path: EnginePath,
        quota: Option<Quota>,
    ) -> Option<pingora::Result<Ending>> {
        let request = session.req_header();
        let chaos = served
            .chaos
            .as_ref()
            .filter(|chaos| chaos.applies_to(&served.mock, &request.method, path.of(request)))?;
        let plan = chaos.plan(&mut rand::thread_rng());
        if let Some(delay) = plan.delay {
            tokio::time::sleep(delay).await;
        }
        match plan.outcome {
            ChaosOutcome::Pass => None,
            ChaosOutcome::Error(status) => {
                let error = EdgeError::ChaosInjected { status };
                Some(respond_error(session, ctx, &error, quota).await)
            }
            ChaosOutcome::Fault(kind) => {
                let fault = match kind {
                    FaultKind::Reset => {
                        crate::connections::reset_on_close(session);
                        "a connection reset"
                    }
                    FaultKind::EmptyResponse => "an empty response",
                };
                ctx.log_message = Some(format!("chaos testing injected {fault}"));
                session.set_keepalive(None);
                Some(Ok(Ending::Fault))
            }
        }
    }

    /// Reads the request body within `config.request_timeout`. Returns `None` after sending a
    /// 413 or 408 response itself.
    async fn read_body(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
        max_bytes: usize,
    ) -> pingora::Result<Option<Bytes>> {
        if session.is_body_empty() {
            // Most requests carry no body; this skips arming the read timer.
            return Ok(Some(Bytes::new()));
        }
        let timeout = self.shared.config.request_timeout;
        let error = match tokio::time::timeout(timeout, read_body(session, max_bytes)).await {
            Ok(Ok(Some(body))) => {
                ctx.bytes_in = body.len() as u64;
                return Ok(Some(body));
            }
            Ok(Err(error)) => {
                // The body could not be read, so respond with 400 and close the connection.
                tracing::debug!(request_id = %ctx.request_id, %error, "failed to read a request body");
                session.set_keepalive(None);
                let error = EdgeError::InvalidRequest(format!(
                    "the request body could not be read ({})",
                    error.etype().as_str()
                ));
                respond_error(session, ctx, &error, None).await?;
                return Ok(None);
            }
            Ok(Ok(None)) => EdgeError::PayloadTooLarge { max_bytes },
            Err(_) => EdgeError::RequestTimeout {
                timeout_ms: timeout.as_millis() as u64,
            },
        };
        // The rest of the body is unread, so the connection cannot carry another request.
        session.set_keepalive(None);
        respond_error(session, ctx, &error, None).await?;
        Ok(None)
    }

    /// Writes the request's debug log line and counts it. `status` is 0 when no response was
    /// sent.
    pub(crate) fn log(
        &self,
        request: &http::request::Parts,
        status: u16,
        ctx: RequestCtx,
        error: Option<&str>,
    ) {
        let latency = ctx.started.elapsed();
        tracing::debug!(
            request_id = %ctx.request_id,
            org = ctx.org_slug(),
            deployment = ctx.deployment_slug(),
            method = %request.method,
            path = request.uri.path(),
            status,
            duration_ms = latency.as_millis() as u64,
            error,
            "request"
        );
        let telemetry = &self.shared.telemetry;
        match &ctx.served {
            Some(served) => telemetry.record(
                served,
                Finished {
                    method: request.method.as_str(),
                    path: ctx
                        .engine_path
                        .map_or(request.uri.path(), |path| path.of(request)),
                    status,
                    latency,
                    at_unix_ms: ctx.started_unix_ms,
                    request_id: ctx.request_id,
                    bytes_in: ctx.bytes_in,
                    bytes_out: ctx.bytes_out,
                    message: ctx.log_message,
                },
            ),
            None if !ctx.single => telemetry.record_unrouted(status),
            None => {}
        }
    }
}

/// Counts a request as in flight until dropped.
pub(crate) struct InFlightGuard {
    counter: Arc<AtomicUsize>,
    /// Requests in flight including this one, when it started.
    pub(crate) count: usize,
}

impl InFlightGuard {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        let count = counter.fetch_add(1, Ordering::AcqRel) + 1;
        InFlightGuard {
            counter: counter.clone(),
            count,
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Writes an error response in the API's error format.
pub(crate) async fn respond_error(
    session: &mut ServerSession,
    ctx: &mut RequestCtx,
    error: &EdgeError,
    quota: Option<Quota>,
) -> pingora::Result<Ending> {
    let mut response = error_response(error);
    finish_response(ctx, &mut response, quota);
    write_response(session, response).await
}

/// Adds `X-Request-Id` and the `X-RateLimit-*` headers and records the body size.
pub(crate) fn finish_response(
    ctx: &mut RequestCtx,
    response: &mut http::Response<Bytes>,
    quota: Option<Quota>,
) {
    handler::set_request_id(response, &ctx.request_id);
    if let Some(quota) = quota {
        set_quota_headers(response.headers_mut(), quota);
    }
    ctx.bytes_out = response.body().len() as u64;
    ctx.log_message = response
        .extensions_mut()
        .remove::<LogMessage>()
        .map(|message| message.0);
}

/// Sets the `X-RateLimit-*` headers.
pub(crate) fn set_quota_headers(headers: &mut http::HeaderMap, quota: Quota) {
    for (name, value) in quota_headers(quota) {
        headers.insert(name, value);
    }
}

/// Returns the `X-RateLimit-*` headers of a quota.
pub(crate) fn quota_headers(quota: Quota) -> [(HeaderName, HeaderValue); 3] {
    [
        (RATE_LIMIT_LIMIT, HeaderValue::from(quota.limit)),
        (RATE_LIMIT_REMAINING, HeaderValue::from(quota.remaining)),
        (RATE_LIMIT_RESET, HeaderValue::from(quota.reset_unix_secs)),
    ]
}

/// Returns the size of the request line and headers as sent, approximately: method, target,
/// and each `name: value` line with its line break.
fn header_bytes(request: &pingora::http::RequestHeader) -> usize {
    let target = request
        .uri
        .path_and_query()
        .map_or(1, |target| target.as_str().len())
        + request
            .uri
            .authority()
            .map_or(0, |authority| authority.as_str().len());
    let line = request.method.as_str().len() + target + 12;
    request.headers.iter().fold(line, |total, (name, value)| {
        total + name.as_str().len() + value.len() + 4
    })
}

/// Reads the whole request body. Returns `None` when it exceeds `max_bytes`, judged by
/// `Content-Length` before reading when the header is present.
///
/// A client that sent `Expect: 100-continue` gets `100 Continue` once the declared length is
/// accepted.
async fn read_body(
    session: &mut ServerSession,
    max_bytes: usize,
) -> pingora::Result<Option<Bytes>> {
    let headers = &session.req_header().headers;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let continue_expected = expects_continue(headers);
    if declared.is_some_and(|length| length > max_bytes as u64) {
        return Ok(None);
    }
    if continue_expected {
        session.write_continue_response().await?;
    }

    let mut body = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > max_bytes {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// Returns true when the request carries `Expect: 100-continue`.
fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get(EXPECT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("100-continue"))
}

/// Writes a complete response, adding `Content-Length` and `Date`, in one write.
pub(crate) async fn write_response(
    session: &mut ServerSession,
    response: http::Response<Bytes>,
) -> pingora::Result<Ending> {
    let is_head = session.req_header().method == Method::HEAD;
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let mut header = ResponseHeader::from(parts);

    // A response to HEAD keeps the length the mock stated for the body it leaves out.
    let declared = is_head && header.headers.contains_key(CONTENT_LENGTH);
    if has_body_framing(status) && !declared {
        header.insert_header(CONTENT_LENGTH, HeaderValue::from(body.len()))?;
    }
    header.insert_header(DATE, http_date())?;

    let mut tasks = Vec::with_capacity(2);
    if is_head || body.is_empty() {
        tasks.push(HttpTask::Header(Box::new(header), true));
    } else {
        tasks.push(HttpTask::Header(Box::new(header), false));
        tasks.push(HttpTask::Body(Some(body), true));
    }
    session.response_duplex_vec(tasks).await?;
    Ok(Ending::Responded)
}

/// Returns false for statuses that must not carry `Content-Length` (1xx, 204 and 304).
pub(crate) fn has_body_framing(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// Returns the current time as an IMF-fixdate for `Date` (RFC 9110, section 5.6.7), formatted
/// at most once per second and thread.
pub(crate) fn http_date() -> HeaderValue {
    thread_local! {
        static CACHED: std::cell::RefCell<(i64, HeaderValue)> =
            const { std::cell::RefCell::new((i64::MIN, HeaderValue::from_static(""))) };
    }
    let now = chrono::Utc::now();
    let second = now.timestamp();
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let formatted = now.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            if let Ok(value) = HeaderValue::from_str(&formatted) {
                *cached = (second, value);
            }
        }
        cached.1.clone()
    })
}
