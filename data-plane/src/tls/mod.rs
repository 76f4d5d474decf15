//! The edge's TLS listener: certificates chosen by SNI and reloaded when their files change.
//!
//! A wildcard certificate for `*.{base_domain}` serves every organization subdomain. Custom
//! certificates in a directory override it for exact server names (custom domains, or one
//! organization's subdomain). ALPN offers HTTP/2 and HTTP/1.1.

use std::net::SocketAddr;
use std::os::fd::IntoRawFd as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use pingora::listeners::tls::TlsSettings;
use pingora::server::Fds;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use crate::EdgeConfig;

mod certs;
mod reload;

use certs::CertStore;
use reload::Fingerprint;

/// Default interval between two checks of the certificate files for changes: 5 s.
pub const DEFAULT_TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Settings of the TLS listener.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Address the TLS listener binds, for example `0.0.0.0:8443`. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// PEM certificate chain for `*.{base_domain}`, the end-entity certificate first.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// Directory of custom certificates: `NAME.crt` (PEM chain) with `NAME.key` (PEM key),
    /// served for the server name `NAME`. A `NAME` without a dot is an organization slug and
    /// serves `NAME.{base_domain}`.
    pub cert_dir: Option<PathBuf>,
    /// Interval between two checks of the files' modification times. A change reloads every
    /// certificate without a restart.
    pub reload_interval: Duration,
}

impl TlsConfig {
    /// Returns settings for a listener on `listen` with the wildcard pair `cert` and `key`, no
    /// custom certificates and the default reload interval.
    pub fn new(listen: SocketAddr, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsConfig {
            listen,
            cert: cert.into(),
            key: key.into(),
            cert_dir: None,
            reload_interval: DEFAULT_TLS_RELOAD_INTERVAL,
        }
    }
}

/// Chooses the certificate of a TLS handshake by its server name (SNI).
#[derive(Debug)]
struct SniResolver {
    certs: Arc<ArcSwap<CertStore>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certs.load().select(client_hello.server_name()))
    }
}

/// A bound TLS listener with its loaded certificates, before pingora serves it.
pub(crate) struct TlsEndpoint {
    config: TlsConfig,
    base_domain: String,
    local_addr: SocketAddr,
    listener: Option<std::net::TcpListener>,
    certs: Arc<ArcSwap<CertStore>>,
    /// The state of the files that `certs` was loaded from.
    loaded: Fingerprint,
}

impl TlsEndpoint {
    /// Loads the certificates of `config.tls` and binds its listen address. Returns `None` when
    /// the TLS listener is off.
    ///
    /// Fails with an error that names the file when a certificate or key cannot be loaded, and
    /// when the address cannot be bound.
    pub(crate) fn bind(config: &EdgeConfig) -> anyhow::Result<Option<TlsEndpoint>> {
        let Some(tls) = &config.tls else {
            return Ok(None);
        };
        let base_domain = config.base_domain.to_ascii_lowercase();
        let loaded = Fingerprint::of(tls);
        let certs = CertStore::load(tls, &base_domain)?;
        let custom_certificates = certs.custom_count();

        let listener = std::net::TcpListener::bind(tls.listen).with_context(|| {
            format!(
                "failed to bind the edge TLS listen address {}; is another server using it?",
                tls.listen
            )
        })?;
        listener
            .set_nonblocking(true)
            .context("failed to make the edge TLS listening socket non-blocking")?;
        let local_addr = listener
            .local_addr()
            .context("failed to read the edge TLS listen address")?;
        tracing::info!(
            addr = %local_addr,
            cert = %tls.cert.display(),
            custom_certificates,
            "edge TLS listener bound"
        );
        Ok(Some(TlsEndpoint {
            config: tls.clone(),
            base_domain,
            local_addr,
            listener: Some(listener),
            certs: Arc::new(ArcSwap::from_pointee(certs)),
            loaded,
        }))
    }

    /// Returns the bound address, with the port the system chose for port 0.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns the key under which [`TlsEndpoint::add_fd`] stores the socket.
    pub(crate) fn listen_key(&self) -> String {
        self.local_addr.to_string()
    }

    /// Moves the listening socket into `fds`, where pingora finds it by [`Self::listen_key`].
    pub(crate) fn add_fd(&mut self, fds: &mut Fds) {
        if let Some(listener) = self.listener.take() {
            fds.add(self.listen_key(), listener.into_raw_fd());
        }
    }

    /// Starts reloading the certificates after their files change, until `stop` turns true.
    pub(crate) fn reload_on_change(&self, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        reload::spawn(
            self.config.clone(),
            self.base_domain.clone(),
            self.certs.clone(),
            self.loaded.clone(),
            stop,
        )
    }

    /// Returns pingora TLS settings that choose certificates by SNI and offer h2 and
    /// http/1.1 by ALPN.
    pub(crate) fn settings(&self) -> anyhow::Result<TlsSettings> {
        // No paths are read, because the resolver supplies every certificate.
        let mut settings = TlsSettings::intermediate("", "")
            .map_err(|error| anyhow::anyhow!("failed to create the TLS settings: {error}"))?;
        settings.set_cert_resolver(Arc::new(SniResolver {
            certs: self.certs.clone(),
        }));
        settings.enable_h2();
        Ok(settings)
    }
}
