//! The pingora server that runs [`crate::http1::EdgeServer`]: start, listeners and shutdown.
//!
//! The listening socket is bound before pingora starts and handed to it as an inherited file
//! descriptor, which makes bind errors synchronous and `local_addr` exact (also for port 0).

use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{
    Fds, ListenFds, RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch,
};
use pingora::services::{ServiceReadyNotifier, ServiceWithDependents};
use tokio::sync::watch;

use crate::admin;
use crate::app::EdgeApp;
use crate::http1::EdgeServer;
use crate::connections::ConnectionLimit;
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

    let app = EdgeServer::new(EdgeApp::new(shared.clone(), in_flight.clone()));
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

        // Stopping the listeners also closes idle keep-alive connections, while requests whose
        // head was read run to completion.
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
    inner: pingora::services::listening::Service<ConnectionLimit<EdgeServer>>,
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
