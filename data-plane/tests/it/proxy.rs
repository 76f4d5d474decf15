//! Forwarding through `config_json.proxy` to an upstream that the test runs on loopback.

use std::net::SocketAddr;

use mockforge_edge::EdgeConfig;
use mockforge_snapshot::{ApplyOutcome, DeploymentRecord};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    json_body, record, test_config, FakeFeed, TestEdge, PETSTORE, PETSTORE_WITH_IDS,
};

/// Starts an upstream that responds to every request with 200 and the request line and `Host`
/// header as its body, and returns its address.
async fn echo_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => head.extend_from_slice(&buffer[..read]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let request_line = head.lines().next().unwrap_or_default();
                let host = head
                    .lines()
                    .find_map(|line| line.strip_prefix("host: ").or(line.strip_prefix("Host: ")))
                    .unwrap_or_default();
                let body = format!("{request_line}|{host}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

fn proxied_record(proxy: serde_json::Value) -> DeploymentRecord {
    let mut record = record("acme", "petstore", PETSTORE);
    record.config = json!({ "proxy": proxy });
    record
}

fn proxied_record_with_ids(proxy: serde_json::Value) -> DeploymentRecord {
    let mut record = record("acme", "petstore", PETSTORE_WITH_IDS);
    record.config = json!({ "proxy": proxy });
    record
}

fn private_upstreams_allowed() -> EdgeConfig {
    EdgeConfig {
        allow_private_upstreams: true,
        ..test_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_requests_reach_upstream() {
    let upstream = echo_upstream().await;
    let feed = FakeFeed::new([proxied_record(json!({
        "upstream": format!("http://{upstream}/base"),
        "mode": "unmatched"
    }))]);
    let edge = TestEdge::start_with(feed, private_upstreams_allowed()).await;
    let client = edge.client();

    let mocked = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(mocked.status(), StatusCode::OK);
    let body = json_body(mocked).await;
    assert_eq!(body[0]["name"], "Rex", "a matched route is mocked");

    let forwarded = client
        .get(edge.url("acme.localhost", "/petstore/orders/7?full=1"))
        .header("x-request-id", "forwarded-1")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), StatusCode::OK);
    assert_eq!(forwarded.headers()["x-request-id"], "forwarded-1");
    let text = forwarded.text().await.unwrap();
    assert_eq!(
        text,
        format!("GET /base/orders/7?full=1 HTTP/1.1|{upstream}")
    );

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_all_forwards_matched_routes() {
    let upstream = echo_upstream().await;
    let feed = FakeFeed::new([proxied_record(json!({
        "upstream": format!("http://{upstream}"),
        "mode": "all"
    }))]);
    let edge = TestEdge::start_with(feed, private_upstreams_allowed()).await;
    let text = edge
        .client()
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("GET /pets HTTP/1.1|"), "{text}");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_applies_to_forwarded_requests() {
    let upstream = echo_upstream().await;
    let mut record = record("acme", "petstore", PETSTORE_WITH_IDS);
    record.config = json!({
        "proxy": {"upstream": format!("http://{upstream}"), "mode": "all"},
        "chaos": {"error_rate": 1.0, "error_statuses": [503], "operations": ["getPet"]}
    });
    let edge = TestEdge::start_with(FakeFeed::new([record]), private_upstreams_allowed()).await;
    let client = edge.client();

    let injected = client
        .get(edge.url("acme.localhost", "/petstore/pets/7"))
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json_body(injected).await;
    assert_eq!(body["code"], "CHAOS_INJECTED");

    let forwarded = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), StatusCode::OK);
    let text = forwarded.text().await.unwrap();
    assert_eq!(text, format!("GET /pets HTTP/1.1|{upstream}"), "operations outside chaos reach the upstream");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_upstream_is_rejected() {
    let upstream = echo_upstream().await;
    let feed = FakeFeed::new([proxied_record(json!({
        "upstream": format!("http://{upstream}"),
        "mode": "all"
    }))]);
    let edge = TestEdge::start(feed).await;
    let response = edge
        .client()
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = json_body(response).await;
    assert_eq!(body["code"], "UPSTREAM_ERROR");
    let reason = body["details"]["reason"].as_str().unwrap();
    assert!(reason.contains("non-public address"), "{reason}");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_returns_502() {
    // Bind and drop a listener so the port is very likely closed.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let feed = FakeFeed::new([proxied_record(json!({
        "upstream": format!("http://{closed}"),
        "mode": "all"
    }))]);
    let edge = TestEdge::start_with(feed, private_upstreams_allowed()).await;
    let response = edge
        .client()
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = json_body(response).await;
    assert_eq!(body["code"], "UPSTREAM_ERROR");
    assert_eq!(body["details"]["upstream"], format!("http://{closed}"));

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_operations_reach_upstream() {
    let upstream = echo_upstream().await;
    let feed = FakeFeed::new([proxied_record_with_ids(json!({
        "upstream": format!("http://{upstream}/base"),
        "operations": ["getPet"]
    }))]);
    let edge = TestEdge::start_with(feed, private_upstreams_allowed()).await;
    let client = edge.client();

    let forwarded = client
        .get(edge.url("acme.localhost", "/petstore/pets/7"))
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), StatusCode::OK);
    let text = forwarded.text().await.unwrap();
    assert_eq!(text, format!("GET /base/pets/7 HTTP/1.1|{upstream}"));

    let mocked = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(mocked.status(), StatusCode::OK);
    let body = json_body(mocked).await;
    assert_eq!(body[0]["name"], "Rex", "an unlisted operation is mocked");

    let unmatched = client
        .get(edge.url("acme.localhost", "/petstore/orders/7"))
        .send()
        .await
        .unwrap();
    assert_eq!(unmatched.status(), StatusCode::NOT_FOUND);
    let body = json_body(unmatched).await;
    assert!(body["code"].is_string(), "an unmatched request is not forwarded: {body}");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_proxy_operation_fails_deployment() {
    let broken = proxied_record_with_ids(json!({
        "upstream": "http://127.0.0.1:9/",
        "mode": "operations",
        "operations": ["removePet"]
    }));
    let feed = FakeFeed::new([broken.clone()]);
    let edge = TestEdge::start_with(feed.clone(), private_upstreams_allowed()).await;
    let ApplyOutcome::Failed { reason } = feed.outcome_for(broken.id).await else {
        panic!("a deployment with an unknown operation id was served");
    };
    assert!(
        reason.starts_with("the proxy configuration is invalid: /config_json/proxy/operations/0"),
        "{reason}"
    );
    assert!(reason.contains("\"removePet\""), "{reason}");
    assert!(
        reason.contains("valid operation ids: \"listPets\", \"getPet\""),
        "{reason}"
    );

    edge.shutdown().await;
}
