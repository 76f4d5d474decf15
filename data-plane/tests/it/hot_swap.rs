//! Snapshot replacement under load: every response stays correct while the snapshot changes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mockforge_snapshot::DeploymentRecord;
use serde_json::json;

use crate::support::{record, FakeFeed, TestEdge};

const DEPLOYMENTS: usize = 1000;
const ORGS: usize = 10;
const SWAPS: usize = 100;
const SWAP_INTERVAL: Duration = Duration::from_millis(100);
const CLIENTS: usize = 4;
/// Upper bound on requests per client, so the load stays bounded on a fast machine.
const MAX_REQUESTS_PER_CLIENT: u64 = 200_000;

/// A document whose only route returns the deployment's own name, so a response from the wrong
/// deployment is caught.
fn document(name: &str) -> String {
    json!({
        "openapi": "3.0.3",
        "info": {"title": name, "version": "1"},
        "paths": {"/whoami": {"get": {"responses": {"200": {
            "description": "the deployment name",
            "content": {"application/json": {"example": {"deployment": name}}}
        }}}}}
    })
    .to_string()
}

fn records() -> Vec<DeploymentRecord> {
    (0..DEPLOYMENTS)
        .map(|index| {
            let name = format!("d{index}");
            record(&format!("org{}", index % ORGS), &name, &document(&name))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_swaps_under_load() {
    let mut records = records();
    let feed = FakeFeed::new(records.clone());
    // The load would slow down timing-sensitive tests that run at the same time.
    let edge = TestEdge::start_alone(feed.clone()).await;
    assert_eq!(edge.edge.snapshot().len(), DEPLOYMENTS);

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for client_index in 0..CLIENTS {
        let client = edge.client();
        let port = edge.addr.port();
        let stop = stop.clone();
        let served = served.clone();
        clients.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut index = client_index;
            for _ in 0..MAX_REQUESTS_PER_CLIENT {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("d{index}");
                let url = format!(
                    "http://127.0.0.1:{port}/_m/org{}/{name}/whoami",
                    index % ORGS
                );
                match client.get(&url).send().await {
                    Ok(response) if response.status() == 200 => {
                        let body: serde_json::Value = response.json().await.unwrap();
                        if body["deployment"] != name.as_str() {
                            failures.push(format!("{url}: wrong body {body}"));
                        }
                    }
                    Ok(response) => failures.push(format!("{url}: status {}", response.status())),
                    Err(error) => failures.push(format!("{url}: {error}")),
                }
                served.fetch_add(1, Ordering::Relaxed);
                index = (index + 7) % DEPLOYMENTS;
            }
            failures
        }));
    }

    // Each swap changes one deployment's plan and another's configuration, so the edge builds a
    // new 1,000-deployment snapshot and compiles one document each time.
    let mut last_version = feed.version();
    for swap in 0..SWAPS {
        let plan_change = &mut records[swap % DEPLOYMENTS];
        plan_change.plan = if swap % 2 == 0 { "pro" } else { "free" }.to_owned();
        feed.upsert(plan_change.clone());
        let config_change = &mut records[(swap * 13 + 1) % DEPLOYMENTS];
        config_change.config = json!({ "cors_enabled": swap % 2 == 0 });
        last_version = feed.upsert(config_change.clone());
        tokio::time::sleep(SWAP_INTERVAL).await;
    }
    edge.wait_for_version(last_version, Duration::from_secs(10))
        .await;
    stop.store(true, Ordering::Relaxed);

    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    let total = served.load(Ordering::Relaxed);
    eprintln!("{total} requests across {SWAPS} snapshot swaps of {DEPLOYMENTS} deployments");
    assert!(total > 0, "no request was sent");
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(edge.edge.snapshot().len(), DEPLOYMENTS);

    edge.shutdown().await;
}
