//! The pingora service: thin glue between HTTP and [`crate::handler`].
//!
//! `request_filter` writes the response to every request, so no upstream is ever contacted. The
//! listening socket is bound before pingora starts and handed to it as an inherited file
//! descriptor, which makes bind errors synchronous and `local_addr` exact (also for port 0).

use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, CONTENT_LENGTH, DATE, EXPECT};
use http::{Method, StatusCode};
use pingora::apps::HttpServerOptions;
use pingora::http::ResponseHeader;
use pingora::prelude::HttpPeer;
use pingora::proxy::{http_proxy, FailToProxy, HttpProxy, ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::{
    Fds, ListenFds, RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch,
};
use pingora::services::{ServiceReadyNotifier, ServiceWithDependents};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::admin;
use crate::chaos::{ChaosOutcome, FaultKind};
use crate::connections::ConnectionLimit;
use crate::error::{error_response, EdgeError};
use crate::handler::{self, Target};
use crate::limits::Quota;
use crate::proxy::ProxyConfig;
use crate::snapshot::ServedDeployment;
use crate::telemetry::{now_unix_ms, Finished, LogMessage};
use crate::tls::TlsEndpoint;
use crate::Shared;

/// Maximum time a shutdown waits for in-flight requests before the runtimes stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval at which a draining shutdown checks the in-flight count.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// A running edge server. Dropping the handle without [`EdgeHandle::shutdown`] also stops the
/// server, but does not wait for it.
pub struct EdgeHandle {
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    trigger: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    admin_thread: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl EdgeHandle {
    /// Returns the address the server listens on, with the port the system chose for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns the address of the TLS listener, if `config.tls` started one, with the port the
    /// system chose for port 0.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Returns the address of the admin listener, if `config.admin_listen` started one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Stops accepting connections, waits for in-flight requests (at most 10 s), stops
    /// following the control plane and joins the server thread.
    pub fn shutdown(mut self) {
        tracing::info!(addr = %self.local_addr, "shutting down the edge server");
        let _ = self.shared.stopped.send(true);
        let _ = self.trigger.send(true);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(addr = %self.local_addr, "the edge server thread panicked");
            }
        }
        if let Some(thread) = self.admin_thread.take() {
            if thread.join().is_err() {
                tracing::error!("the admin listener thread panicked");
            }
        }
        tracing::info!(addr = %self.local_addr, "edge server stopped");
    }
}

impl Drop for EdgeHandle {
    fn drop(&mut self) {
        let _ = self.trigger.send(true);
    }
}

/// Binds `shared.config.listen` and runs pingora on a new thread.
pub(crate) fn start(shared: Arc<Shared>) -> anyhow::Result<EdgeHandle> {
    let config = &shared.config;
    let listener = std::net::TcpListener::bind(config.listen).with_context(|| {
        format!(
            "failed to bind the edge listen address {}; is another server using it?",
            config.listen
        )
    })?;
    listener
        .set_nonblocking(true)
        .context("failed to make the edge listening socket non-blocking")?;
    let local_addr = listener
        .local_addr()
        .context("failed to read the edge listen address")?;

    let listen_key = local_addr.to_string();
    let mut fds = Fds::new();
    fds.add(listen_key.clone(), listener.into_raw_fd());
    let mut tls = TlsEndpoint::bind(config)?;
    if let Some(tls) = &mut tls {
        tls.add_fd(&mut fds);
    }
    let fds: ListenFds = Arc::new(parking_lot::Mutex::new(fds));

    let (trigger, trigger_rx) = watch::channel(false);
    let (listeners_stop, listeners_stop_rx) = watch::channel(false);
    let in_flight = Arc::new(AtomicUsize::new(0));

    let server_conf = ServerConf {
        threads: config.threads.max(1),
        // The drain in `EdgeShutdownWatch` already waited for in-flight requests.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let threads = server_conf.threads;

    let proxy = EdgeProxy {
        shared: shared.clone(),
        in_flight: in_flight.clone(),
    };
    let shutdown_watch = EdgeShutdownWatch {
        trigger: trigger_rx.clone(),
        listeners_stop,
        in_flight,
    };

    let tls_addr = tls.as_ref().map(TlsEndpoint::local_addr);
    let tls = match tls {
        Some(tls) => {
            tls.reload_on_change(trigger_rx.clone())?;
            Some((tls.listen_key(), tls.settings()?))
        }
        None => None,
    };

    let admin = match config.admin_listen {
        Some(addr) => Some(admin::start(shared.clone(), addr, trigger_rx.clone())?),
        None => None,
    };

    let thread_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("mockforge-edge".to_owned())
        .spawn(move || {
            let mut server = Server::new_with_opt_and_conf(None, server_conf);
            let mut app = http_proxy(&server.configuration, proxy);
            let mut options = HttpServerOptions::default();
            options.h2c = true;
            app.server_options = Some(options);
            let metrics = &thread_shared.telemetry.metrics;
            let app = ConnectionLimit::new(
                app,
                thread_shared.config.max_connections,
                metrics.open_connections.clone(),
                metrics.rejected_connections.clone(),
            );
            let mut service =
                pingora::services::listening::Service::new("mockforge-edge".to_owned(), app);
            service.add_tcp(&listen_key);
            if let Some((tls_key, settings)) = tls {
                service.add_tls_with_settings(&tls_key, None, settings);
            }
            server.add_service(PreboundService {
                inner: service,
                fds,
                stop: listeners_stop_rx,
                threads,
            });
            server.run(RunArgs {
                shutdown_signal: Box::new(shutdown_watch),
            });
            // Every request finished its logging phase, so the final telemetry batch is whole.
            let _ = thread_shared.terminated.send(true);
        })
        .context("failed to spawn the edge server thread")?;

    tracing::info!(
        addr = %local_addr,
        base_domain = %config.base_domain,
        node = %config.node_name,
        threads,
        "edge server listening"
    );
    let (admin_addr, admin_thread) = match admin {
        Some(admin) => (Some(admin.local_addr), Some(admin.thread)),
        None => (None, None),
    };
    Ok(EdgeHandle {
        local_addr,
        tls_addr,
        admin_addr,
        trigger,
        thread: Some(thread),
        admin_thread,
        shared,
    })
}

/// The shutdown signal pingora waits on. It resolves when the handle triggers (or is
/// dropped), after the listeners stopped and in-flight requests finished.
struct EdgeShutdownWatch {
    trigger: watch::Receiver<bool>,
    listeners_stop: watch::Sender<bool>,
    in_flight: Arc<AtomicUsize>,
}

#[async_trait]
impl ShutdownSignalWatch for EdgeShutdownWatch {
    async fn recv(&self) -> ShutdownSignal {
        let mut trigger = self.trigger.clone();
        let _ = trigger.wait_for(|triggered| *triggered).await;

        // Stopping the listeners also closes idle keep-alive connections, while requests that
        // already reached `request_filter` run to completion.
        let _ = self.listeners_stop.send(true);
        // NOTE: a request whose headers are still being read is not counted yet, so it can be
        // cut off when the runtimes stop.
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.in_flight.load(Ordering::Acquire) > 0 {
            if Instant::now() >= deadline {
                tracing::warn!(
                    in_flight = self.in_flight.load(Ordering::Acquire),
                    "requests still running after the drain timeout; stopping anyway"
                );
                break;
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
        ShutdownSignal::GracefulTerminate
    }
}

/// Runs pingora's listening service on the socket bound in [`start`], and stops its listeners
/// on the edge's own signal instead of pingora's.
struct PreboundService {
    inner: pingora::services::listening::Service<ConnectionLimit<HttpProxy<EdgeProxy>>>,
    fds: ListenFds,
    stop: watch::Receiver<bool>,
    threads: usize,
}

#[async_trait]
impl ServiceWithDependents for PreboundService {
    async fn start_service(
        &mut self,
        _inherited_fds: Option<ListenFds>,
        _shutdown: ShutdownWatch,
        listeners_per_fd: usize,
        ready_notifier: ServiceReadyNotifier,
    ) {
        ready_notifier.notify_ready();
        pingora::services::Service::start_service(
            &mut self.inner,
            Some(self.fds.clone()),
            self.stop.clone(),
            listeners_per_fd,
        )
        .await;
    }

    fn name(&self) -> &str {
        "mockforge-edge"
    }

    fn threads(&self) -> Option<usize> {
        Some(self.threads)
    }
}

/// Counts a request as in flight until dropped.
struct InFlightGuard {
    counter: Arc<AtomicUsize>,
    /// Requests in flight including this one, when it started.
    count: usize,
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

/// The pingora application: serves every request from the current snapshot.
pub(crate) struct EdgeProxy {
    shared: Arc<Shared>,
    in_flight: Arc<AtomicUsize>,
}

/// Per-request state for telemetry and the access log.
pub(crate) struct RequestCtx {
    started: Instant,
    started_unix_ms: i64,
    in_flight: Option<InFlightGuard>,
    request_id: Option<String>,
    /// The deployment the request addressed, once found.
    served: Option<Arc<ServedDeployment>>,
    /// True in single-document mode, where no deployment is counted.
    single: bool,
    bytes_in: u64,
    bytes_out: u64,
    /// True when chaos testing closes the connection without a response.
    fault_injected: bool,
    /// The upstream the request is forwarded to, set when `config.proxy` applies.
    upstream: Option<Upstream>,
    /// Rate-limit state added to a forwarded response.
    quota: Option<Quota>,
    /// The response's [`LogMessage`], for the request log.
    log_message: Option<String>,
}

/// A resolved upstream of a forwarded request.
pub(crate) struct Upstream {
    addr: SocketAddr,
    config: Arc<ProxyConfig>,
}

#[async_trait]
impl ProxyHttp for EdgeProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            started_unix_ms: now_unix_ms(),
            in_flight: None,
            request_id: None,
            served: None,
            single: false,
            bytes_in: 0,
            bytes_out: 0,
            fault_injected: false,
            upstream: None,
            quota: None,
            log_message: None,
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        // `request_filter` responds to every request except forwarded ones.
        match &ctx.upstream {
            Some(upstream) => Ok(Box::new(HttpPeer::new(
                upstream.addr,
                upstream.config.tls,
                upstream.config.host.clone(),
            ))),
            None => Err(pingora::Error::explain(
                pingora::ErrorType::InternalError,
                "the request has no upstream because request_filter responded to it",
            )),
        }
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut pingora::http::RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let Some(upstream) = &ctx.upstream else {
            return Ok(());
        };
        let uri = proxied_uri(
            &upstream.config,
            session.req_header(),
            &self.shared.config.base_domain,
        )?;
        upstream_request.set_uri(uri);
        let config = &upstream.config;
        let default_port = if config.tls { 443 } else { 80 };
        let host = if config.port == default_port {
            config.host.clone()
        } else if config.host.contains(':') {
            format!("[{}]:{}", config.host, config.port)
        } else {
            format!("{}:{}", config.host, config.port)
        };
        upstream_request.insert_header(http::header::HOST, host)?;
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if let Some(request_id) = &ctx.request_id {
            upstream_response.insert_header(handler::REQUEST_ID_HEADER, request_id.as_str())?;
        }
        if let Some(quota) = ctx.quota {
            upstream_response.insert_header(RATE_LIMIT_LIMIT, quota.limit)?;
            upstream_response.insert_header(RATE_LIMIT_REMAINING, quota.remaining)?;
            upstream_response.insert_header(RATE_LIMIT_RESET, quota.reset_unix_secs)?;
        }
        Ok(())
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let guard = InFlightGuard::new(&self.in_flight);
        let concurrent = guard.count;
        ctx.in_flight = Some(guard);
        let request_id = handler::request_id(session.req_header());
        // The span is at debug level because an enabled span costs about 2 µs per request with
        // the fmt subscriber (BENCHMARKS.md). Warnings on the request path name the request id
        // themselves.
        let span = tracing::debug_span!(
            "request",
            request_id = %request_id,
            org = tracing::field::Empty,
            deployment = tracing::field::Empty,
        );
        ctx.request_id = Some(request_id);
        self.serve(session, ctx, concurrent)
            .instrument(span)
            .await?;
        // A request with an upstream goes on to pingora's proxy phases.
        Ok(ctx.upstream.is_none())
    }

    /// Writes the response to a request that failed inside pingora (an unreadable body, for
    /// example) in the edge's error format instead of pingora's plain error page.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        error: &pingora::Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = failure_status(error);
        if ctx.fault_injected {
            // Chaos testing chose to close the connection without a response.
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        if code == 0 || session.response_written().is_some() {
            return FailToProxy {
                error_code: code,
                can_reuse_downstream: false,
            };
        }

        let edge_error = if let (Some(upstream), pingora::ErrorSource::Upstream) =
            (&ctx.upstream, error.esource())
        {
            tracing::warn!(
                request_id = ctx.request_id.as_deref().unwrap_or("-"),
                upstream = %upstream.config.display_url(),
                %error,
                "the upstream failed"
            );
            EdgeError::UpstreamFailed {
                upstream: upstream.config.display_url(),
                reason: error.etype().as_str().to_owned(),
            }
        } else if code < 500 {
            EdgeError::InvalidRequest(format!(
                "the request could not be read ({})",
                error.etype().as_str()
            ))
        } else {
            tracing::error!(
                request_id = ctx.request_id.as_deref().unwrap_or("-"),
                %error,
                "failed to respond to a request"
            );
            EdgeError::Internal("the edge failed to respond to the request".to_owned())
        };
        let mut response = error_response(&edge_error);
        *response.status_mut() =
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let request_id = ctx
            .request_id
            .get_or_insert_with(|| handler::request_id(session.req_header()));
        handler::set_request_id(&mut response, request_id);

        session.set_keepalive(None);
        if let Err(write_error) = write_response(session, response).await {
            tracing::debug!(error = %write_error, "failed to send an error response");
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(
        &self,
        session: &mut Session,
        error: Option<&pingora::Error>,
        ctx: &mut RequestCtx,
    ) {
        ctx.in_flight = None;
        if ctx.upstream.is_some() {
            ctx.bytes_in = session.body_bytes_read() as u64;
            ctx.bytes_out = session.body_bytes_sent() as u64;
        }
        let request = session.req_header();
        let status = session
            .response_written()
            .map_or(0, |response| response.status.as_u16());
        let latency = ctx.started.elapsed();
        let request_id = ctx.request_id.as_deref().unwrap_or("-");
        let telemetry = &self.shared.telemetry;
        match &ctx.served {
            Some(served) => telemetry.record(
                served,
                &Finished {
                    method: request.method.as_str(),
                    path: handler::deployment_path(request, &self.shared.config.base_domain),
                    status,
                    latency,
                    at_unix_ms: ctx.started_unix_ms,
                    request_id,
                    bytes_in: ctx.bytes_in,
                    bytes_out: ctx.bytes_out,
                    message: ctx.log_message.as_deref(),
                },
            ),
            None if !ctx.single => telemetry.record_unrouted(status),
            None => {}
        }
        tracing::debug!(
            request_id,
            org = ctx.served.as_ref().map_or("-", |served| served.org_slug.as_str()),
            deployment = ctx.served.as_ref().map_or("-", |served| served.slug.as_str()),
            method = %request.method,
            path = request.uri.path(),
            status,
            duration_ms = latency.as_millis() as u64,
            error = error.map(|error| error.to_string()),
            "request"
        );
    }
}

impl EdgeProxy {
    /// Serves one request from the current snapshot: limits, body, chaos, mock and response.
    async fn serve(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        concurrent: usize,
    ) -> pingora::Result<()> {
        let config = &self.shared.config;
        if concurrent > config.max_concurrent_requests {
            let error = EdgeError::Overloaded {
                max_requests: config.max_concurrent_requests,
            };
            return self.respond_error(session, ctx, &error, None).await;
        }
        if header_bytes(session.req_header()) > config.max_header_bytes {
            let error = EdgeError::HeadersTooLarge {
                max_bytes: config.max_header_bytes,
            };
            session.set_keepalive(None);
            return self.respond_error(session, ctx, &error, None).await;
        }

        let snapshot = self.shared.snapshot.load_full();
        let served = match handler::find_target(&snapshot, &config.base_domain, session.req_header()) {
            Target::Unrouted(handled) => {
                let mut response = handled.response;
                self.finish_response(ctx, &mut response, None);
                return write_response(session, response).await;
            }
            Target::Single => {
                ctx.single = true;
                let Some(body) = self.read_body(session, ctx, config.max_request_body_bytes).await? else {
                    return Ok(());
                };
                let mut response = handler::respond_single(&snapshot, session.req_header(), &body);
                self.finish_response(ctx, &mut response, None);
                return write_response(session, response).await;
            }
            Target::Deployment(served) => served,
        };
        let span = tracing::Span::current();
        span.record("org", served.org_slug.as_str());
        span.record("deployment", served.slug.as_str());
        ctx.served = Some(served.clone());

        let quota = match self
            .shared
            .limiter
            .check(served.org_id, served.id, &served.limits, served.period_start)
        {
            Ok(quota) => quota,
            Err(rejection) => {
                self.shared
                    .telemetry
                    .record_rate_limited(&served, rejection.window);
                let quota = Quota {
                    limit: rejection.limit,
                    remaining: 0,
                    reset_unix_secs: rejection.reset_unix_secs,
                };
                return self
                    .respond_error(session, ctx, &rejection.to_error(), Some(quota))
                    .await;
            }
        };

        let max_body = served
            .limits
            .max_request_body_bytes
            .map_or(config.max_request_body_bytes, |plan_max| {
                config.max_request_body_bytes.min(plan_max.try_into().unwrap_or(usize::MAX))
            });

        if let Some(proxy) = served.proxy.clone() {
            let path = handler::deployment_path(session.req_header(), &config.base_domain);
            if proxy.forwards(&served.mock, &session.req_header().method, path) {
                if let Some(ended) = self.inject_chaos(session, ctx, &served, quota, true).await {
                    return ended;
                }
                return self
                    .start_forwarding(session, ctx, proxy, quota, max_body)
                    .await;
            }
        }
        let Some(body) = self.read_body(session, ctx, max_body).await? else {
            return Ok(());
        };
        if let Some(ended) = self.inject_chaos(session, ctx, &served, quota, false).await {
            return ended;
        }

        let mut response = match snapshot.plugin_chain(&served.id) {
            Some(chain) => {
                crate::plugins::respond_with_plugins(
                    Some(&self.shared.plugins),
                    chain,
                    &served,
                    &config.base_domain,
                    session.req_header(),
                    &body,
                )
                .await
            }
            None => handler::respond_deployment(
                &served,
                &config.base_domain,
                session.req_header(),
                &body,
            ),
        };
        self.finish_response(ctx, &mut response, quota);
        write_response(session, response).await
    }

    /// Applies the deployment's chaos settings: waits the injected latency, then responds with
    /// an injected error or drops the connection. Returns `None` when the request goes on to
    /// the mock or the upstream, else the result that ends it. A forwarded request's body is
    /// still unread, so an injected error closes its connection (`body_unread`).
    async fn inject_chaos(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        served: &ServedDeployment,
        quota: Option<Quota>,
        body_unread: bool,
    ) -> Option<pingora::Result<()>> {
        let path = handler::deployment_path(session.req_header(), &self.shared.config.base_domain);
        let chaos = served
            .chaos
            .as_ref()
            .filter(|chaos| chaos.applies_to(&served.mock, &session.req_header().method, path))?;
        let plan = chaos.plan(&mut rand::thread_rng());
        if let Some(delay) = plan.delay {
            tokio::time::sleep(delay).await;
        }
        match plan.outcome {
            ChaosOutcome::Pass => None,
            ChaosOutcome::Error(status) => {
                if body_unread {
                    session.set_keepalive(None);
                }
                let error = EdgeError::ChaosInjected { status };
                Some(self.respond_error(session, ctx, &error, quota).await)
            }
            ChaosOutcome::Fault(kind) => {
                if kind == FaultKind::Reset {
                    crate::connections::reset_on_close(session);
                }
                ctx.fault_injected = true;
                let fault = match kind {
                    FaultKind::Reset => "a connection reset",
                    FaultKind::EmptyResponse => "an empty response",
                };
                ctx.log_message = Some(format!("chaos testing injected {fault}"));
                session.set_keepalive(None);
                Some(Err(pingora::Error::explain(
                    pingora::ErrorType::ConnectionClosed,
                    format!("chaos testing injected a {kind:?} fault"),
                )))
            }
        }
    }

    /// Resolves the upstream of a forwarded request and stores it in `ctx`, or responds 502
    /// (or 413 for a body over the limit) when the request cannot be forwarded.
    async fn start_forwarding(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        proxy: Arc<ProxyConfig>,
        quota: Option<Quota>,
        max_body: usize,
    ) -> pingora::Result<()> {
        // TODO: limit chunked request bodies while they stream to the upstream; only a declared
        // Content-Length is checked here.
        let declared = session
            .req_header()
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max_body as u64) {
            session.set_keepalive(None);
            let error = EdgeError::PayloadTooLarge {
                max_bytes: max_body,
            };
            return self.respond_error(session, ctx, &error, quota).await;
        }

        match proxy.resolve(self.shared.config.allow_private_upstreams).await {
            Ok(addr) => {
                ctx.upstream = Some(Upstream {
                    addr,
                    config: proxy,
                });
                ctx.quota = quota;
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(
                    request_id = ctx.request_id.as_deref().unwrap_or("-"),
                    upstream = %proxy.display_url(),
                    %reason,
                    "cannot forward a request"
                );
                let error = EdgeError::UpstreamFailed {
                    upstream: proxy.display_url(),
                    reason,
                };
                self.respond_error(session, ctx, &error, quota).await
            }
        }
    }

    /// Reads the request body within `config.request_timeout`. Returns `None` after sending a
    /// 413 or 408 response itself.
    async fn read_body(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        max_bytes: usize,
    ) -> pingora::Result<Option<Bytes>> {
        let timeout = self.shared.config.request_timeout;
        let error = match tokio::time::timeout(timeout, read_body(session, max_bytes)).await {
            Ok(Ok(Some(body))) => {
                ctx.bytes_in = body.len() as u64;
                return Ok(Some(body));
            }
            Ok(Err(error)) => return Err(error),
            Ok(Ok(None)) => EdgeError::PayloadTooLarge { max_bytes },
            Err(_) => EdgeError::RequestTimeout {
                timeout_ms: timeout.as_millis() as u64,
            },
        };
        // The rest of the body is unread, so the connection cannot carry another request.
        session.set_keepalive(None);
        self.respond_error(session, ctx, &error, None).await?;
        Ok(None)
    }

    async fn respond_error(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        error: &EdgeError,
        quota: Option<Quota>,
    ) -> pingora::Result<()> {
        let mut response = error_response(error);
        self.finish_response(ctx, &mut response, quota);
        write_response(session, response).await
    }

    /// Adds `X-Request-Id` and the `X-RateLimit-*` headers and records the body size.
    fn finish_response(
        &self,
        ctx: &mut RequestCtx,
        response: &mut http::Response<Bytes>,
        quota: Option<Quota>,
    ) {
        if let Some(request_id) = &ctx.request_id {
            handler::set_request_id(response, request_id);
        }
        if let Some(quota) = quota {
            let headers = response.headers_mut();
            headers.insert(RATE_LIMIT_LIMIT, HeaderValue::from(quota.limit));
            headers.insert(RATE_LIMIT_REMAINING, HeaderValue::from(quota.remaining));
            headers.insert(RATE_LIMIT_RESET, HeaderValue::from(quota.reset_unix_secs));
        }
        ctx.bytes_out = response.body().len() as u64;
        ctx.log_message = response.extensions_mut().remove::<LogMessage>().map(|message| message.0);
    }
}

/// Builds the upstream URI of a forwarded request: the upstream's base path, the path below the
/// deployment and the query.
fn proxied_uri(
    config: &ProxyConfig,
    request: &pingora::http::RequestHeader,
    base_domain: &str,
) -> pingora::Result<http::Uri> {
    let path = handler::deployment_path(request, base_domain);
    let mut target = format!("{}{}", config.base_path, path);
    if let Some(query) = request.uri.query() {
        target.push('?');
        target.push_str(query);
    }
    target.parse().map_err(|error| {
        pingora::Error::because(
            pingora::ErrorType::InternalError,
            "failed to build the upstream request path",
            error,
        )
    })
}

/// Headers that report the tightest rate limit of the deployment's plan.
pub const RATE_LIMIT_LIMIT: &str = "x-ratelimit-limit";
pub const RATE_LIMIT_REMAINING: &str = "x-ratelimit-remaining";
/// When the whole limit is available again, in Unix seconds.
pub const RATE_LIMIT_RESET: &str = "x-ratelimit-reset";

/// Returns the size of the request line and headers as sent, approximately: method, target,
/// and each `name: value` line with its line break.
fn header_bytes(request: &pingora::http::RequestHeader) -> usize {
    let line = request.method.as_str().len() + request.uri.to_string().len() + 12;
    request
        .headers
        .iter()
        .fold(line, |total, (name, value)| {
            total + name.as_str().len() + value.len() + 4
        })
}

/// Chooses the status of a failed request like pingora's default `fail_to_proxy`: the status
/// an error carries, 400 for bad input, 500 for internal faults and 0 when the client is gone.
fn failure_status(error: &pingora::Error) -> u16 {
    use pingora::{ErrorSource, ErrorType};
    match error.etype() {
        ErrorType::HTTPStatus(code) => *code,
        ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed
            if error.esource() == &ErrorSource::Downstream =>
        {
            0
        }
        _ => match error.esource() {
            ErrorSource::Downstream => 400,
            ErrorSource::Upstream => 502,
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// Reads the whole request body. Returns `None` when it exceeds `max_bytes`, judged by
/// `Content-Length` before reading when the header is present.
///
/// A client that sent `Expect: 100-continue` gets `100 Continue` once the declared length is
/// accepted, because no upstream is there to send it.
async fn read_body(session: &mut Session, max_bytes: usize) -> pingora::Result<Option<Bytes>> {
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
        session
            .as_downstream_mut()
            .write_continue_response()
            .await?;
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

/// Writes a complete response, adding `Content-Length` and `Date`.
async fn write_response(
    session: &mut Session,
    response: http::Response<Bytes>,
) -> pingora::Result<()> {
    let is_head = session.req_header().method == Method::HEAD;
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let mut header = ResponseHeader::from(parts);

    if has_body_framing(status) {
        header.insert_header(CONTENT_LENGTH, HeaderValue::from(body.len()))?;
    }
    header.insert_header(DATE, http_date())?;

    let head_only = is_head || body.is_empty();
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Returns false for statuses that must not carry `Content-Length` (1xx, 204 and 304).
fn has_body_framing(status: StatusCode) -> bool {
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
