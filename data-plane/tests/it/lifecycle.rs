//! Following the control plane: deltas, compile failures, feed outages, shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mockforge_edge::{Edge, EdgeConfig};
use mockforge_snapshot::ApplyOutcome;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{
    json_body, outcome_of, record, test_config, FakeFeed, TestEdge, BROKEN, ORDERS, PETSTORE,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_reports_served() {
    let petstore = record("acme", "petstore", PETSTORE);
    let orders = record("acme", "orders", ORDERS);
    let feed = FakeFeed::new([petstore.clone(), orders.clone()]);
    let edge = TestEdge::start(feed.clone()).await;

    let report = feed.report_for(1).await;
    assert_eq!(report.node, "test-node");
    assert_eq!(report.version, 1);
    assert_eq!(outcome_of(&report, petstore.id), Some(ApplyOutcome::Served));
    assert_eq!(outcome_of(&report, orders.id), Some(ApplyOutcome::Served));

    let snapshot = edge.edge.snapshot();
    assert_eq!(snapshot.version(), 1);
    assert_eq!(snapshot.len(), 2);
    let served = snapshot.get(&petstore.id).unwrap();
    assert_eq!(served.org_id, petstore.org_id);
    assert_eq!(served.document_sha256, petstore.document_sha256);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_deployment_returns_not_found() {
    let petstore = record("acme", "petstore", PETSTORE);
    let orders = record("acme", "orders", ORDERS);
    let feed = FakeFeed::new([petstore.clone(), orders.clone()]);
    let edge = TestEdge::start(feed.clone()).await;
    let client = edge.client();
    let url = edge.url("acme.localhost", "/petstore/pets");

    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let removed_at = Instant::now();
    let version = feed.remove(petstore.id);
    edge.wait_for_version(version, Duration::from_secs(1)).await;
    let response = client.get(&url).send().await.unwrap();
    let elapsed = removed_at.elapsed();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(elapsed < Duration::from_secs(1), "removal took {elapsed:?}");
    let body = json_body(response).await;
    assert_eq!(body["details"]["deployment"], "petstore");

    // The other deployment of the organization still responds.
    let response = client
        .get(edge.url("acme.localhost", "/orders/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_document_fails_alone() {
    let petstore = record("acme", "petstore", PETSTORE);
    let broken = record("acme", "broken", BROKEN);
    let feed = FakeFeed::new([petstore.clone(), broken.clone()]);
    let edge = TestEdge::start(feed.clone()).await;

    let report = feed.report_for(1).await;
    assert_eq!(outcome_of(&report, petstore.id), Some(ApplyOutcome::Served));
    match outcome_of(&report, broken.id) {
        Some(ApplyOutcome::Failed { reason }) => {
            assert!(reason.contains("invalid"), "reason {reason}");
        }
        other => panic!("expected a failure for the broken document, got {other:?}"),
    }

    let client = edge.client();
    let response = client
        .get(edge.url("acme.localhost", "/broken/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_update_stops_serving() {
    let petstore = record("acme", "petstore", PETSTORE);
    let feed = FakeFeed::new([petstore.clone()]);
    let edge = TestEdge::start(feed.clone()).await;

    let broken = mockforge_snapshot::DeploymentRecord {
        id: petstore.id,
        ..record("acme", "petstore", BROKEN)
    };
    let version = feed.upsert(broken);
    let report = feed.report_for(version).await;
    assert!(matches!(
        outcome_of(&report, petstore.id),
        Some(ApplyOutcome::Failed { .. })
    ));

    let response = edge
        .client()
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_document_is_served() {
    let deployment = record("acme", "api", PETSTORE);
    let feed = FakeFeed::new([deployment.clone()]);
    let edge = TestEdge::start(feed.clone()).await;
    let client = edge.client();

    let response = client
        .get(edge.url("acme.localhost", "/api/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let updated = mockforge_snapshot::DeploymentRecord {
        id: deployment.id,
        ..record("acme", "api", ORDERS)
    };
    let version = feed.upsert(updated);
    edge.wait_for_version(version, Duration::from_secs(1)).await;

    let response = client
        .get(edge.url("acme.localhost", "/api/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, json!([{"id": "o-1"}]));
    let response = client
        .get(edge.url("acme.localhost", "/api/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_document_keeps_mock() {
    let deployment = record("acme", "petstore", PETSTORE);
    let feed = FakeFeed::new([deployment.clone()]);
    let edge = TestEdge::start(feed.clone()).await;
    let before = edge.edge.snapshot().get(&deployment.id).unwrap().clone();

    // A new plan and slug change the URL but not the compiled document.
    let renamed = mockforge_snapshot::DeploymentRecord {
        plan: "team".to_owned(),
        slug: "pets".to_owned(),
        ..deployment.clone()
    };
    let version = feed.upsert(renamed);
    let report = feed.report_for(version).await;
    assert_eq!(
        outcome_of(&report, deployment.id),
        Some(ApplyOutcome::Served)
    );

    let after = edge.edge.snapshot().get(&deployment.id).unwrap().clone();
    assert!(
        Arc::ptr_eq(&before.mock, &after.mock),
        "the unchanged document was compiled again"
    );
    assert_eq!(after.plan, "team");

    let client = edge.client();
    let response = client
        .get(edge.url("acme.localhost", "/pets/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_outage_keeps_serving() {
    let petstore = record("acme", "petstore", PETSTORE);
    let feed = FakeFeed::new([petstore.clone()]);
    let edge = TestEdge::start(feed.clone()).await;
    let client = edge.client();

    feed.fail_next_calls(3);
    let orders = record("acme", "orders", ORDERS);
    let version = feed.upsert(orders);

    // While the feed fails, the current snapshot still serves requests.
    let response = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    edge.wait_for_version(version, Duration::from_secs(10))
        .await;
    let response = client
        .get(edge.url("acme.localhost", "/orders/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(feed.changes_since_calls() >= 2);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_down_at_start_retries() {
    let petstore = record("acme", "petstore", PETSTORE);
    let feed = FakeFeed::new([petstore.clone()]);
    feed.fail_next_calls(2);
    let edge = TestEdge::start(feed.clone()).await;

    assert_eq!(feed.changes_since_calls(), 3);
    let response = edge
        .client()
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_version_triggers_full_resync() {
    let petstore = record("acme", "petstore", PETSTORE);
    let feed = FakeFeed::new([petstore.clone()]);
    let edge = TestEdge::start(feed.clone()).await;
    let version = feed.upsert(record("acme", "orders", ORDERS));
    edge.wait_for_version(version, Duration::from_secs(1)).await;

    let replacement = record("globex", "orders", ORDERS);
    feed.reset([replacement.clone()]);
    assert_eq!(feed.outcome_for(replacement.id).await, ApplyOutcome::Served);

    let deadline = Instant::now() + Duration::from_secs(2);
    while edge.edge.snapshot().get(&replacement.id).is_none() {
        assert!(
            Instant::now() < deadline,
            "the edge did not resync after the version reset"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let snapshot = edge.edge.snapshot();
    assert_eq!(snapshot.version(), 1);
    assert_eq!(snapshot.len(), 1);

    let client = edge.client();
    let response = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = client
        .get(edge.url("globex.localhost", "/orders/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_mode_serves_every_path() {
    let compiled = mockforge_engine::compile(PETSTORE, mockforge_engine::MockOptions::default())
        .unwrap_or_else(|error| {
            panic!(
                "the test document does not compile: {:?}",
                error.diagnostics
            )
        });
    let edge = Edge::new(test_config());
    edge.serve_single(compiled.mock);
    let handle = edge.start().unwrap();
    let url = format!("http://127.0.0.1:{}/pets/3", handle.local_addr().port());

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, json!({"id": 1, "name": "Rex"}));

    let url = format!("http://127.0.0.1:{}/owners", handle.local_addr().port());
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_body(response).await["code"], "NOT_FOUND");

    tokio::task::spawn_blocking(move || handle.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn occupied_address_fails_to_start() {
    let occupied = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = EdgeConfig {
        listen: occupied.local_addr().unwrap(),
        ..test_config()
    };
    let error = match Edge::new(config).start() {
        Ok(_) => panic!("the edge started on an address in use"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("failed to bind"), "error {error}");
    assert!(
        error.contains(&occupied.local_addr().unwrap().to_string()),
        "error {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_listener() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let edge = TestEdge::start(feed).await;
    let addr = edge.addr;

    let started = Instant::now();
    edge.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the edge still accepts connections"
    );
}
