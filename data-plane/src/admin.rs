//! The admin listener: Prometheus metrics at `/metrics`, on its own thread and runtime so a
//! scrape never competes with the request path's runtimes for a worker.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::routing::get;
use tokio::sync::watch;

use crate::Shared;

/// A running admin listener.
pub(crate) struct AdminServer {
    pub(crate) local_addr: SocketAddr,
    pub(crate) thread: std::thread::JoinHandle<()>,
}

/// Binds `addr` and serves the admin routes until `stop` turns true or its sender is dropped.
pub(crate) fn start(
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<AdminServer> {
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("failed to bind the admin listen address {addr}; is another server using it?")
    })?;
    listener
        .set_nonblocking(true)
        .context("failed to make the admin listening socket non-blocking")?;
    let local_addr = listener
        .local_addr()
        .context("failed to read the admin listen address")?;

    let thread = std::thread::Builder::new()
        .name("mockforge-admin".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, "failed to start the admin runtime");
                    return;
                }
            };
            runtime.block_on(serve(shared, listener, stop));
        })
        .context("failed to spawn the admin thread")?;
    tracing::info!(addr = %local_addr, "admin listener serving /metrics");
    Ok(AdminServer { local_addr, thread })
}

async fn serve(shared: Arc<Shared>, listener: std::net::TcpListener, mut stop: watch::Receiver<bool>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "failed to register the admin listener");
            return;
        }
    };
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let shared = shared.clone();
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    shared.telemetry.metrics.render(),
                )
            }
        }),
    );
    let shutdown = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%error, "the admin listener failed");
    }
}
