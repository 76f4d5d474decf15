//! The MockForge edge node.
//!
//! An edge serves every tenant's compiled mocks from an immutable [`Snapshot`] held in an
//! `ArcSwap`. [`Edge::follow`] keeps the snapshot in line with the control plane, and
//! [`Edge::start`] runs the pingora HTTP server that serves requests from it: HTTP/1.1 and
//! h2c, and HTTPS when [`EdgeConfig::tls`] is set (see [`tls`]).
//!
//! A request reaches a deployment either as `http://{org}.{base_domain}/{deployment}/...` or
//! as `http://{any host}/_m/{org}/{deployment}/...`; see [`route`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use mockforge_snapshot::{PlanTable, TelemetrySink};
use tokio::sync::watch;

mod admin;
mod app;
pub mod chaos;
mod connections;
pub mod error;
mod forward;
mod http1;
pub mod handler;
pub mod limits;
pub mod persist;
pub mod proxy;
pub mod plugins;
pub mod quota_sync;
mod reporter;
pub mod remote;
pub mod remote_plugins;
pub mod route;
pub mod server;
pub mod snapshot;
mod sync;
mod telemetry;
pub mod tls;

pub use error::{error_response, EdgeError};
pub use handler::{handle, handle_request, Handled, REQUEST_ID_HEADER};
pub use server::EdgeHandle;
pub use snapshot::{Lookup, ServedDeployment, Snapshot};
pub use tls::TlsConfig;

/// The hasher of the maps every request reads, keyed by deployment and organization ids and
/// slugs from the snapshot. foldhash, seeded per process, costs a fraction of the standard
/// SipHash, which took about 3% of the edge's instructions per request (callgrind,
/// BENCHMARKS.md).
pub(crate) type FastHasher = foldhash::fast::RandomState;

/// Default maximum request body size: 10 MiB.
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Default maximum size of the request line and headers together: 64 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Default time a client has to send a request head, and then its body: 30 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default maximum number of requests served at once: 10,000.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 10_000;
/// Default maximum number of open client connections: 10,000.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default interval between two telemetry batches: 5 s.
pub const DEFAULT_TELEMETRY_INTERVAL: Duration = Duration::from_secs(5);

/// Returns the default number of worker threads: the number of CPU cores the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Settings of an edge node.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Address the HTTP server binds, for example `0.0.0.0:8080`. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Domain whose subdomains name organizations, for example `localhost` or
    /// `mockforge.dev`.
    pub base_domain: String,
    /// Name of this node in apply reports, for example `local` or `eu-1`.
    pub node_name: String,
    /// Maximum request body size in bytes; larger requests get 413. A plan's
    /// `max_request_body_bytes` can only lower it.
    pub max_request_body_bytes: usize,
    /// Number of pingora worker threads; by default one per CPU core ([`default_threads`]).
    pub threads: usize,
    /// Limits of every plan, looked up by a deployment's plan name.
    pub plans: PlanTable,
    /// Maximum size in bytes of the request line and headers; larger requests get 431.
    /// pingora itself closes connections whose headers exceed 1 MiB.
    pub max_header_bytes: usize,
    /// Time a client has to send a request head from its first byte, and then the request
    /// body. Slower requests get 408. HTTP/2 heads have pingora's own timeouts.
    pub request_timeout: Duration,
    /// Maximum number of requests served at once; more get 503 with `Retry-After`.
    pub max_concurrent_requests: usize,
    /// Maximum number of open client connections, idle keep-alive ones included. A connection
    /// over the limit gets an HTTP/1.1 503 with `Retry-After` and is closed.
    pub max_connections: usize,
    /// Interval between two telemetry batches sent by [`Edge::report_to`].
    pub telemetry_interval: Duration,
    /// Address of the admin listener that serves Prometheus metrics at `/metrics`, or `None`
    /// for no admin listener.
    pub admin_listen: Option<SocketAddr>,
    /// Allows `config_json.proxy` upstreams on loopback, private and other non-public
    /// addresses. Off by default, so tenants cannot reach the edge's own network.
    pub allow_private_upstreams: bool,
    /// The TLS listener next to the plain one, or `None` for plain HTTP only.
    pub tls: Option<TlsConfig>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_domain: "localhost".to_owned(),
            node_name: "local".to_owned(),
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY_BYTES,
            threads: default_threads(),
            plans: PlanTable::default(),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            telemetry_interval: DEFAULT_TELEMETRY_INTERVAL,
            admin_listen: None,
            allow_private_upstreams: false,
            tls: None,
        }
    }
}

/// State shared by the server, the sync loop and every clone of [`Edge`].
pub(crate) struct Shared {
    pub(crate) config: EdgeConfig,
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// Turns true when a server started by this edge shuts down, which ends [`Edge::follow`].
    pub(crate) stopped: watch::Sender<bool>,
    /// Turns true after a server started by this edge finished its last request, which makes
    /// [`Edge::report_to`] send its final batch.
    pub(crate) terminated: watch::Sender<bool>,
    pub(crate) limiter: limits::RateLimiter,
    pub(crate) telemetry: telemetry::Telemetry,
    pub(crate) plugins: plugins::EdgePlugins,
}

/// An edge node. Clones share the same snapshot.
#[derive(Clone)]
pub struct Edge {
    shared: Arc<Shared>,
}

impl Edge {
    /// Creates an edge that serves an empty snapshot until [`Edge::follow`] or
    /// [`Edge::serve_single`] fills it.
    pub fn new(config: EdgeConfig) -> Edge {
        let (stopped, _) = watch::channel(false);
        let (terminated, _) = watch::channel(false);
        let telemetry = telemetry::Telemetry::new(config.threads);
        let plugins = plugins::EdgePlugins::new(&telemetry.metrics.registry);
        let shared = Shared {
            config,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            stopped,
            terminated,
            limiter: limits::RateLimiter::default(),
            telemetry,
            plugins,
        };
        Edge {
            shared: Arc::new(shared),
        }
    }

    pub fn config(&self) -> &EdgeConfig {
        &self.shared.config
    }

    /// Returns the snapshot requests are served from right now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// Follows the control plane through `feed`, publishing a new snapshot after every change.
    ///
    /// Returns when a server started by this edge shuts down. Feed errors are logged and
    /// retried, and never stop serving the current snapshot. Do not combine with
    /// [`Edge::serve_single`], because the first delta replaces the single-document snapshot.
    pub async fn follow(&self, feed: Arc<dyn mockforge_snapshot::SnapshotFeed>) {
        sync::follow(self.shared.clone(), feed).await;
    }

    /// Lets the edge serve deployments with plugins: `source` supplies the plugin files, and
    /// `config` sets the sandbox settings. Its call timeout and memory limit are the defaults
    /// for plans without `plugin_call_timeout_ms` or `plugin_memory_bytes`, and the pooling
    /// allocator is sized for the largest memory limit of `config` and the plan table. Call it
    /// before [`Edge::follow`]; without it a deployment that lists plugins fails to apply. The
    /// host settings apply only until the first plugin is loaded.
    pub fn enable_plugins(
        &self,
        source: Arc<dyn mockforge_snapshot::PluginSource>,
        config: mockforge_plugins::PluginHostConfig,
    ) {
        self.shared.plugins.enable(source, config, &self.shared.config.plans);
    }

    /// Switches to single-document mode: `mock` responds to every request, whatever its host
    /// and path, with no tenant lookup.
    pub fn serve_single(&self, mock: mockforge_engine::Mock) {
        self.shared.snapshot.store(Arc::new(Snapshot::single(mock)));
        self.shared
            .telemetry
            .metrics
            .snapshot_published(0, Duration::ZERO, 0);
    }

    /// Sends a telemetry batch to `sink` every `config.telemetry_interval`, and a final one
    /// after a server started by this edge shut down.
    ///
    /// Returns after the final batch. A batch that fails to deliver is merged into the next
    /// one. The final batch is retried a few times and then dropped with an error log.
    pub async fn report_to(&self, sink: Arc<dyn TelemetrySink>) {
        reporter::report_to(self.shared.clone(), sink).await;
    }

    /// Shares the organizations' 30-day request counts with the other edges through Redis, so
    /// the quota applies across edges. Flushes every `settings.flush_interval` and once more
    /// after a server started by this edge shut down, then returns. Without it the edge
    /// counts on its own.
    pub async fn sync_quotas(&self, settings: quota_sync::QuotaSyncSettings) {
        quota_sync::run(self.shared.clone(), settings).await;
    }

    /// Renders the edge's Prometheus metrics in the text exposition format, as the admin
    /// listener serves them at `/metrics`.
    pub fn metrics_text(&self) -> String {
        self.shared.telemetry.metrics.render()
    }

    /// Binds `config.listen` (and `config.tls.listen`) and runs the HTTP server on its own
    /// thread.
    ///
    /// Fails when an address cannot be bound, for example because another process uses it, and
    /// when a TLS certificate or key file cannot be loaded.
    pub fn start(&self) -> anyhow::Result<EdgeHandle> {
        server::start(self.shared.clone())
    }
}
