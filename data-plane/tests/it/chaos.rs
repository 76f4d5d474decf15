//! Chaos testing from `config_json.chaos`: latency, injected errors and connection faults.

use std::time::{Duration, Instant};

use mockforge_snapshot::{ApplyOutcome, DeploymentRecord};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{json_body, record, FakeFeed, TestEdge, PETSTORE};

fn chaos_record(chaos: serde_json::Value) -> DeploymentRecord {
    let mut record = record("acme", "petstore", PETSTORE);
    record.config = json!({ "chaos": chaos });
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_latency_delays_response() {
    let feed = FakeFeed::new([chaos_record(json!({"latency": {"fixed_ms": 150}}))]);
    let edge = TestEdge::start(feed).await;
    let started = Instant::now();
    let response = edge
        .client()
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(elapsed >= Duration::from_millis(150), "took {elapsed:?}");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_rate_one_always_fails() {
    let feed = FakeFeed::new([chaos_record(
        json!({"error_rate": 1.0, "error_statuses": [503]}),
    )]);
    let edge = TestEdge::start(feed).await;
    let client = edge.client();
    for _ in 0..20 {
        let response = client
            .get(edge.url("acme.localhost", "/petstore/pets"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = json_body(response).await;
        assert_eq!(body["code"], "CHAOS_INJECTED");
    }

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_close_connection() {
    for kind in ["reset", "empty_response"] {
        let feed = FakeFeed::new([chaos_record(json!({"fault": {"kind": kind, "rate": 1.0}}))]);
        let edge = TestEdge::start(feed).await;
        let mut stream = tokio::net::TcpStream::connect(edge.addr).await.unwrap();
        stream
            .write_all(b"GET /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\n\r\n")
            .await
            .unwrap();
        let mut received = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
            .await
            .unwrap_or_else(|_| panic!("the {kind} fault left the connection open"));
        // A reset surfaces as an error, a clean close as end of stream; neither sends bytes.
        if read.is_ok() {
            assert!(
                received.is_empty(),
                "{kind}: {}",
                String::from_utf8_lossy(&received)
            );
        }
        edge.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_chaos_fails_deployment() {
    let broken = chaos_record(json!({"error_rate": 2}));
    let feed = FakeFeed::new([broken.clone()]);
    let edge = TestEdge::start(feed.clone()).await;
    match feed.outcome_for(broken.id).await {
        ApplyOutcome::Failed { reason } => {
            assert!(
                reason.contains("/config_json/chaos/error_rate"),
                "{reason}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let response = edge
        .client()
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    edge.shutdown().await;
}
