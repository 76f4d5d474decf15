//! Measures one edge with many petstore deployments: resident memory per deployment, the time
//! to build the first snapshot (compiling every document) and the time to apply a change to one
//! deployment. Prints the figures; it asserts nothing.
//!
//! Usage: `scale [DEPLOYMENTS]` (default 10000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mockforge_benches::{bench_plans, petstore_record, StaticFeed};
use mockforge_edge::{Edge, EdgeConfig};
use mockforge_snapshot::SnapshotFeed;

/// Single-deployment changes to time.
const CHANGES: usize = 20;

fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .map_or(Ok(10_000), |arg| arg.parse())
        .context("the first argument must be a number of deployments")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(count))
}

async fn measure(count: usize) -> anyhow::Result<()> {
    let mut records: Vec<_> = (0..count)
        .map(|index| {
            let mut record = petstore_record(&format!("org{}", index % 1000), &format!("p{index}"));
            // A distinct document per deployment, so each one is compiled and stored on its own.
            let document = format!("{}\n# deployment {index}\n", mockforge_benches::PETSTORE);
            record.document_sha256 = format!("{index:064x}");
            record.document = Arc::from(document);
            record
        })
        .collect();
    let edge = Edge::new(EdgeConfig {
        node_name: "scale".to_owned(),
        plans: bench_plans(),
        ..EdgeConfig::default()
    });

    let rss_before = resident_bytes()?;
    let feed = StaticFeed::new(records.clone());
    let followed: Arc<dyn SnapshotFeed> = feed.clone();
    let follower = edge.clone();
    let started = Instant::now();
    tokio::spawn(async move { follower.follow(followed).await });
    wait_for_version(&edge, 1).await;
    let initial_build = started.elapsed();
    let rss_after = resident_bytes()?;
    anyhow::ensure!(edge.snapshot().len() == count, "not every deployment is served");

    let mut change_times = Vec::with_capacity(CHANGES);
    for change in 0..CHANGES {
        let record = &mut records[change * 37 % count];
        record.config = serde_json::json!({ "cors_enabled": change % 2 == 0 });
        let started = Instant::now();
        let version = feed.replace(record.clone());
        wait_for_version(&edge, version).await;
        change_times.push(started.elapsed());
    }
    change_times.sort();

    let per_deployment = rss_after.saturating_sub(rss_before) / count as u64;
    println!("deployments: {count}");
    println!(
        "resident memory: {:.1} MiB before, {:.1} MiB after ({per_deployment} bytes per deployment)",
        mib(rss_before),
        mib(rss_after)
    );
    println!(
        "first snapshot (compile all, build, publish): {:.2} s",
        initial_build.as_secs_f64()
    );
    println!(
        "single-deployment change applied: median {:.1} ms, max {:.1} ms over {CHANGES} changes",
        millis(change_times[CHANGES / 2]),
        millis(change_times[CHANGES - 1])
    );
    Ok(())
}

async fn wait_for_version(edge: &Edge, version: u64) {
    while edge.snapshot().version() < version {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Reads the process's resident set size from `/proc/self/status` (Linux only).
fn resident_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS line in /proc/self/status")?;
    Ok(kib * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
