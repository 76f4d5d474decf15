//! Telemetry batches sent to a fake sink, and Prometheus metrics on the admin listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mockforge_edge::EdgeConfig;
use mockforge_snapshot::{PlanLimits, TelemetryBatch, TelemetrySink};
use reqwest::StatusCode;

use crate::support::{free_plan, record, test_config, FakeFeed, FakeSink, TestEdge, PETSTORE};

/// Starts `report_to` for a test edge and returns its task.
fn report(edge: &TestEdge, sink: &Arc<FakeSink>) -> tokio::task::JoinHandle<()> {
    let reporter = edge.edge.clone();
    let sink: Arc<dyn TelemetrySink> = sink.clone();
    tokio::spawn(async move { reporter.report_to(sink).await })
}

/// Shuts the edge down and waits for the reporter's final batch.
async fn shutdown_and_wait(edge: TestEdge, reporter: tokio::task::JoinHandle<()>) {
    edge.shutdown().await;
    tokio::time::timeout(Duration::from_secs(10), reporter)
        .await
        .expect("report_to did not return after shutdown")
        .unwrap();
}

fn total_requests(batches: &[TelemetryBatch]) -> u64 {
    batches
        .iter()
        .flat_map(|batch| &batch.usage)
        .map(|usage| usage.requests)
        .sum()
}

fn status_total(batches: &[TelemetryBatch], status: u16) -> u64 {
    batches
        .iter()
        .flat_map(|batch| &batch.usage)
        .filter_map(|usage| usage.status_counts.get(&status))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_count_every_request() {
    let petstore = record("acme", "petstore", PETSTORE);
    let feed = FakeFeed::new([petstore.clone()]);
    let config = EdgeConfig {
        telemetry_interval: Duration::from_millis(50),
        ..test_config()
    };
    let edge = TestEdge::start_with(feed, config).await;
    let sink = Arc::new(FakeSink::default());
    let reporter = report(&edge, &sink);
    let client = edge.client();

    for _ in 0..7 {
        let response = client
            .get(edge.url("acme.localhost", "/petstore/pets?limit=5"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    for _ in 0..3 {
        let response = client
            .get(edge.url("acme.localhost", "/petstore/nowhere"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let mut response_bytes = 0;
    for _ in 0..2 {
        let response = client
            .get(edge.url("acme.localhost", "/petstore/pets/1"))
            .body("0123456789")
            .send()
            .await
            .unwrap();
        response_bytes += response.bytes().await.unwrap().len() as u64;
    }
    shutdown_and_wait(edge, reporter).await;

    let batches = sink.batches();
    assert_eq!(total_requests(&batches), 12);
    assert_eq!(status_total(&batches, 200), 9);
    assert_eq!(status_total(&batches, 404), 3);
    let usage: Vec<_> = batches.iter().flat_map(|batch| &batch.usage).collect();
    assert!(usage.iter().all(|usage| usage.deployment_id == petstore.id));
    assert!(usage.iter().all(|usage| usage.org_id == petstore.org_id));
    let bytes_in: u64 = usage.iter().map(|usage| usage.bytes_in).sum();
    assert_eq!(bytes_in, 20);
    let bytes_out: u64 = usage.iter().map(|usage| usage.bytes_out).sum();
    assert!(bytes_out >= response_bytes);
    let bucket_total: u64 = usage
        .iter()
        .flat_map(|usage| &usage.latency_buckets)
        .sum();
    assert_eq!(bucket_total, 12);

    let logs: Vec<_> = batches.iter().flat_map(|batch| &batch.logs).collect();
    assert_eq!(logs.len(), 12);
    assert!(logs.iter().all(|log| !log.path.contains('?')), "{logs:?}");
    assert_eq!(
        logs.iter().filter(|log| log.path == "/pets").count(),
        7,
        "{logs:?}"
    );
    assert!(logs.iter().all(|log| !log.request_id.is_empty()));
    assert!(logs.iter().all(|log| log.method == "GET"));
    assert!(batches.iter().all(|batch| batch.node == "test-node"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_batch_arrives_after_shutdown() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let config = EdgeConfig {
        telemetry_interval: Duration::from_secs(3600),
        ..test_config()
    };
    let edge = TestEdge::start_with(feed, config).await;
    let sink = Arc::new(FakeSink::default());
    let reporter = report(&edge, &sink);
    let client = edge.client();
    for _ in 0..5 {
        client
            .get(edge.url("acme.localhost", "/petstore/pets"))
            .header("x-request-id", "last-requests")
            .send()
            .await
            .unwrap();
    }
    assert!(sink.batches().is_empty(), "no batch before the interval");
    shutdown_and_wait(edge, reporter).await;

    let batches = sink.batches();
    assert_eq!(batches.len(), 1);
    assert_eq!(total_requests(&batches), 5);
    assert_eq!(batches[0].logs.len(), 5);
    assert!(batches[0]
        .logs
        .iter()
        .all(|log| log.request_id == "last-requests"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_flush_is_merged_into_next() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let config = EdgeConfig {
        telemetry_interval: Duration::from_millis(30),
        ..test_config()
    };
    let edge = TestEdge::start_with(feed, config).await;
    let sink = Arc::new(FakeSink::default());
    sink.fail_next_calls(2);
    let reporter = report(&edge, &sink);
    let client = edge.client();

    for _ in 0..4 {
        client
            .get(edge.url("acme.localhost", "/petstore/pets"))
            .send()
            .await
            .unwrap();
    }
    // Wait until both failures happened, sending one request per interval to make batches.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut sent = 4;
    while sink.calls() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the reporter stopped retrying");
        client
            .get(edge.url("acme.localhost", "/petstore/pets"))
            .send()
            .await
            .unwrap();
        sent += 1;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    shutdown_and_wait(edge, reporter).await;

    assert_eq!(total_requests(&sink.batches()), sent);
}

/// Fetches `/metrics` from the admin listener.
async fn scrape(admin: SocketAddr) -> String {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listener_serves_metrics() {
    let feed = FakeFeed::new([
        record("acme", "petstore", PETSTORE),
        record("acme", "limited", PETSTORE),
    ]);
    let config = EdgeConfig {
        admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        plans: free_plan(PlanLimits {
            requests_per_minute: Some(4),
            ..PlanLimits::default()
        }),
        ..test_config()
    };
    let edge = TestEdge::start_with(feed, config).await;
    let client = edge.client();
    for _ in 0..3 {
        client
            .get(edge.url("acme.localhost", "/petstore/pets"))
            .send()
            .await
            .unwrap();
    }
    client
        .get(edge.url("acme.localhost", "/petstore/missing"))
        .send()
        .await
        .unwrap();
    let limited = client
        .get(edge.url("acme.localhost", "/limited/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    client
        .get(edge.url("nobody.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();

    let expected = [
        r#"mockforge_edge_requests_total{deployment="petstore",org="acme",status_class="2xx"} 3"#,
        r#"mockforge_edge_requests_total{deployment="petstore",org="acme",status_class="4xx"} 1"#,
        r#"mockforge_edge_request_duration_seconds_count{deployment="petstore",org="acme"} 4"#,
        r#"mockforge_edge_rate_limited_total{deployment="limited",org="acme",window="minute"} 1"#,
        r#"mockforge_edge_unrouted_requests_total{status_class="4xx"} 1"#,
        "mockforge_edge_snapshot_version 1",
        "mockforge_edge_deployments_served 2",
        "mockforge_edge_snapshot_build_seconds ",
    ];
    // The logging phase runs after the response is sent, so the last request may be counted
    // a moment after the client saw its response.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut text = scrape(edge.admin_addr()).await;
    while !expected.iter().all(|line| text.contains(line))
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        text = scrape(edge.admin_addr()).await;
    }
    for line in expected {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("/pets"), "raw paths must not become labels");

    let other = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{}/other", edge.admin_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    edge.shutdown().await;
}

/// Polls `Edge::metrics_text` until it contains `line`, because the logging phase counts a
/// request a moment after the client saw its response.
async fn wait_for_metric(edge: &TestEdge, line: &str) -> String {
    let text = poll_metrics(edge, |text| text.contains(line)).await;
    assert!(text.contains(line), "missing {line:?} in:\n{text}");
    text
}

/// Polls `Edge::metrics_text` for up to 5 seconds until `done` accepts it, and returns the last
/// text read.
async fn poll_metrics(edge: &TestEdge, done: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut text = edge.edge.metrics_text();
    while !done(&text) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        text = edge.edge.metrics_text();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_deployment_leaves_metrics() {
    let petstore = record("acme", "petstore", PETSTORE);
    let feed = FakeFeed::new([petstore.clone(), record("acme", "kept", PETSTORE)]);
    let edge = TestEdge::start(feed.clone()).await;
    let client = edge.client();
    for path in ["/petstore/pets", "/petstore/pets", "/kept/pets"] {
        let response = client
            .get(edge.url("acme.localhost", path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "path {path}");
    }
    wait_for_metric(
        &edge,
        r#"mockforge_edge_requests_total{deployment="petstore",org="acme",status_class="2xx"} 2"#,
    )
    .await;
    wait_for_metric(
        &edge,
        r#"mockforge_edge_requests_total{deployment="kept",org="acme",status_class="2xx"} 1"#,
    )
    .await;

    let version = feed.remove(petstore.id);
    edge.wait_for_version(version, Duration::from_secs(5)).await;
    // The edge removes the series right after it publishes the snapshot.
    let text = poll_metrics(&edge, |text| !text.contains(r#"deployment="petstore""#)).await;
    assert!(
        !text.contains(r#"deployment="petstore""#),
        "series of the removed deployment in:\n{text}"
    );
    assert!(
        text.contains(
            r#"mockforge_edge_requests_total{deployment="kept",org="acme",status_class="2xx"} 1"#
        ),
        "series of the kept deployment missing in:\n{text}"
    );

    // The same deployment served again starts its series from zero.
    let version = feed.upsert(petstore);
    edge.wait_for_version(version, Duration::from_secs(5)).await;
    let response = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    wait_for_metric(
        &edge,
        r#"mockforge_edge_request_duration_seconds_count{deployment="petstore",org="acme"} 1"#,
    )
    .await;
    wait_for_metric(
        &edge,
        r#"mockforge_edge_requests_total{deployment="petstore",org="acme",status_class="2xx"} 1"#,
    )
    .await;

    edge.shutdown().await;
}
