//! Forwarding through `config_json.proxy` to an upstream that the test runs on loopback.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
    assert_eq!(body["details"]["reason"], "the upstream refused the connection");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_upstream_returns_504() {
    // The upstream accepts connections but never reads a request or responds.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let feed = FakeFeed::new([proxied_record(json!({
        "upstream": format!("http://{silent}"),
        "mode": "all",
        "timeout_ms": 300
    }))]);
    let edge = TestEdge::start_with(feed, private_upstreams_allowed()).await;

    let response = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        edge.client()
            .get(edge.url("acme.localhost", "/petstore/pets"))
            .send(),
    )
    .await
    .expect("the edge waited for the silent upstream past the proxy timeout")
    .unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let body = json_body(response).await;
    assert_eq!(body["code"], "UPSTREAM_TIMEOUT");
    assert_eq!(body["details"]["upstream"], format!("http://{silent}"));
    assert_eq!(body["details"]["timeout_ms"], 300);
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("within 300 ms"), "{message}");
    assert!(message.contains("config_json.proxy.timeout_ms"), "{message}");

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

/// Starts an upstream that reads each request's `Content-Length` body and responds with a body
/// without a length, which ends when the connection closes, naming the request and its body.
/// Returns its address and the number of requests it received.
async fn unframed_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut input = Vec::new();
                let mut buffer = [0u8; 4096];
                let head_end = loop {
                    if let Some(end) = input.windows(4).position(|window| window == b"\r\n\r\n") {
                        break end + 4;
                    }
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => input.extend_from_slice(&buffer[..read]),
                    }
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let head = String::from_utf8_lossy(&input[..head_end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length: "))
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(0);
                while input.len() < head_end + length {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => input.extend_from_slice(&buffer[..read]),
                    }
                }
                let request_line = head.lines().next().unwrap_or_default().to_owned();
                let body = String::from_utf8_lossy(&input[head_end..head_end + length]);
                let response = format!(
                    "HTTP/1.1 201 Created\r\nX-Upstream: unframed\r\nConnection: close\r\n\r\n{request_line}|{length}|{body}"
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_body_and_unframed_response() {
    let (upstream, received) = unframed_upstream().await;
    let feed = FakeFeed::new([proxied_record(json!({
        "upstream": format!("http://{upstream}/v2"),
        "mode": "all"
    }))]);
    let edge = TestEdge::start_with(feed, private_upstreams_allowed()).await;
    let client = edge.client();

    for (client, protocol) in [(client, "HTTP/1.1"), (edge.h2c_client(), "h2c")] {
        let response = client
            .post(edge.url("acme.localhost", "/petstore/pets?dry=1"))
            .header("x-request-id", "forwarded-body")
            .body(r#"{"name":"Rex"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{protocol}");
        assert_eq!(response.headers()["x-upstream"], "unframed", "{protocol}");
        assert_eq!(response.headers()["x-request-id"], "forwarded-body", "{protocol}");
        assert_eq!(
            response.text().await.unwrap(),
            r#"post /v2/pets?dry=1 http/1.1|14|{"name":"Rex"}"#,
            "{protocol}"
        );
    }
    assert_eq!(received.load(Ordering::SeqCst), 2);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upload_over_the_limit_never_reaches_upstream() {
    let (upstream, received) = unframed_upstream().await;
    let feed = FakeFeed::new([proxied_record(json!({
        "upstream": format!("http://{upstream}"),
        "mode": "all"
    }))]);
    let config = EdgeConfig {
        max_request_body_bytes: 1024,
        ..private_upstreams_allowed()
    };
    let edge = TestEdge::start_with(feed, config).await;

    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", edge.addr.port()))
        .await
        .unwrap();
    let chunk = "x".repeat(700);
    let request = format!(
        "POST /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
         2bc\r\n{chunk}\r\n2bc\r\n{chunk}\r\n0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut response),
    )
    .await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains(r#""code":"PAYLOAD_TOO_LARGE""#), "{response}");
    assert!(response.contains(r#""max_bytes":1024"#), "{response}");
    assert_eq!(received.load(Ordering::SeqCst), 0, "the upstream saw the request");

    edge.shutdown().await;
}
