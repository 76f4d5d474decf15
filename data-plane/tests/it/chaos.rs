//! Chaos testing from `config_json.chaos`: latency, injected errors, connection faults and the
//! `operations` filter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mockforge_snapshot::{ApplyOutcome, DeploymentRecord, TelemetrySink};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    json_body, record, FakeFeed, FakeSink, TestEdge, PETSTORE, PETSTORE_WITH_IDS,
};

fn chaos_record(chaos: serde_json::Value) -> DeploymentRecord {
    let mut record = record("acme", "petstore", PETSTORE);
    record.config = json!({ "chaos": chaos });
    record
}

fn chaos_record_with_ids(chaos: serde_json::Value) -> DeploymentRecord {
    let mut record = record("acme", "petstore", PETSTORE_WITH_IDS);
    record.config = json!({ "chaos": chaos });
    record
}

/// Sends one request over a new connection and reads until the edge closes it.
async fn read_after_fault(edge: &TestEdge) -> std::io::Result<Vec<u8>> {
    let mut stream = tokio::net::TcpStream::connect(edge.addr).await.unwrap();
    stream
        .write_all(b"GET /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
        .await
        .expect("the fault left the connection open")
        .map(|_| received)
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
async fn reset_fault_resets_connection() {
    let feed = FakeFeed::new([chaos_record(json!({"fault": {"kind": "reset", "rate": 1.0}}))]);
    let edge = TestEdge::start(feed).await;
    for _ in 0..3 {
        match read_after_fault(&edge).await {
            Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}"),
            Ok(received) => panic!(
                "the connection closed without a reset after {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_response_fault_closes_cleanly() {
    let feed = FakeFeed::new([chaos_record(
        json!({"fault": {"kind": "empty_response", "rate": 1.0}}),
    )]);
    let edge = TestEdge::start(feed).await;
    let sink = Arc::new(FakeSink::default());
    let reporter = {
        let edge = edge.edge.clone();
        let sink: Arc<dyn TelemetrySink> = sink.clone();
        tokio::spawn(async move { edge.report_to(sink).await })
    };
    let received = read_after_fault(&edge)
        .await
        .expect("the empty_response fault reset the connection instead of closing it");
    assert!(received.is_empty(), "{}", String::from_utf8_lossy(&received));

    edge.shutdown().await;
    tokio::time::timeout(Duration::from_secs(10), reporter)
        .await
        .expect("report_to did not return after shutdown")
        .unwrap();
    let batches = sink.batches();
    let logs: Vec<_> = batches.iter().flat_map(|batch| &batch.logs).collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].status, 0);
    assert_eq!(
        logs[0].message.as_deref(),
        Some("chaos testing injected an empty response")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_applies_to_listed_operations() {
    let feed = FakeFeed::new([chaos_record_with_ids(json!({
        "error_rate": 1.0,
        "error_statuses": [503],
        "operations": ["getPet"]
    }))]);
    let edge = TestEdge::start(feed).await;
    let client = edge.client();

    let listed = client
        .get(edge.url("acme.localhost", "/petstore/pets/7"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json_body(listed).await;
    assert_eq!(body["code"], "CHAOS_INJECTED");
    assert_eq!(body["details"]["status"], 503);

    let unlisted = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(unlisted.status(), StatusCode::OK);
    let body = json_body(unlisted).await;
    assert_eq!(body[0]["name"], "Rex");

    let unmatched = client
        .get(edge.url("acme.localhost", "/petstore/owners"))
        .send()
        .await
        .unwrap();
    assert_eq!(unmatched.status(), StatusCode::NOT_FOUND);
    let body = json_body(unmatched).await;
    assert_ne!(body["code"], "CHAOS_INJECTED");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_chaos_operation_fails_deployment() {
    let broken = chaos_record_with_ids(json!({
        "error_rate": 1.0,
        "operations": ["getPet", "deletePet"]
    }));
    let feed = FakeFeed::new([broken.clone()]);
    let edge = TestEdge::start(feed.clone()).await;
    let ApplyOutcome::Failed { reason } = feed.outcome_for(broken.id).await else {
        panic!("a deployment with an unknown operation id was served");
    };
    assert!(
        reason.contains("/config_json/chaos/operations/1"),
        "{reason}"
    );
    assert!(reason.contains("\"deletePet\""), "{reason}");
    assert!(
        reason.contains("valid operation ids: \"listPets\", \"getPet\""),
        "{reason}"
    );

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_fail_deployment() {
    let mut misspelt = record("acme", "petstore", PETSTORE);
    misspelt.config = json!({ "chaoss": { "error_rate": 1.0 } });
    let mut unknown_fault_key = record("acme", "faulty", PETSTORE);
    unknown_fault_key.config = json!({ "chaos": { "fault": { "kind": "reset", "probability": 1.0 } } });
    let feed = FakeFeed::new([misspelt.clone(), unknown_fault_key.clone()]);
    let edge = TestEdge::start(feed.clone()).await;

    let ApplyOutcome::Failed { reason } = feed.outcome_for(misspelt.id).await else {
        panic!("a deployment with an unknown top-level key was served");
    };
    assert!(
        reason.starts_with(
            "the deployment configuration is invalid: 1 problem(s): /config_json/chaoss: \
             unknown key `chaoss`; did you mean `chaos`? The known keys are validation, "
        ),
        "{reason}"
    );
    let ApplyOutcome::Failed { reason } = feed.outcome_for(unknown_fault_key.id).await else {
        panic!("a deployment with an unknown key in chaos.fault was served");
    };
    assert_eq!(
        reason,
        "the chaos configuration is invalid: /config_json/chaos/fault/probability: unknown key `probability`; the known keys are kind and rate"
    );
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
