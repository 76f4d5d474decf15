//! Runs a hosted-mode edge on loopback for load tests: one organization `acme` with a petstore
//! deployment `petstore`, reachable as `http://{listen}/_m/acme/petstore/pets`, on a plan whose
//! limits are checked on every request but never reached.
//!
//! Usage: `edge_server [LISTEN_ADDR [THREADS]]` (default `127.0.0.1:18083` and one worker
//! thread per CPU core). Stops on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mockforge_benches::{bench_plans, petstore_record, StaticFeed};
use mockforge_edge::{Edge, EdgeConfig};
use mockforge_snapshot::SnapshotFeed;

/// The allocator of the `mockforge` binary, so the load test measures what ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18083".to_owned())
        .parse()
        .context("the first argument must be a socket address such as 127.0.0.1:18083")?;
    let threads = match std::env::args().nth(2) {
        Some(threads) => threads
            .parse()
            .context("the second argument must be a number of worker threads")?,
        None => EdgeConfig::default().threads,
    };

    // The log output of `mockforge edge`, because an enabled subscriber changes the cost of
    // every request.
    mockforge_cli::telemetry::init();
    let edge = Edge::new(EdgeConfig {
        listen,
        node_name: "bench".to_owned(),
        plans: bench_plans(),
        threads,
        ..EdgeConfig::default()
    });
    let handle = edge.start()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let feed = StaticFeed::new(vec![petstore_record("acme", "petstore")]);
        let followed: Arc<dyn SnapshotFeed> = feed.clone();
        let follower = edge.clone();
        tokio::spawn(async move { follower.follow(followed).await });
        while feed.report_count() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!("edge ready on http://{}/_m/acme/petstore/pets", handle.local_addr());

        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        anyhow::Ok(())
    })?;
    handle.shutdown();
    Ok(())
}
