//! Plan limits and request limits: 429, 413, 431, 408 and 503 in the error format.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mockforge_edge::EdgeConfig;
use mockforge_snapshot::PlanLimits;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    exchange_raw, free_plan, json_body, raw_json_body, record, test_config, FakeFeed, TestEdge,
    PETSTORE,
};

fn config_with(limits: PlanLimits) -> EdgeConfig {
    EdgeConfig {
        plans: free_plan(limits),
        ..test_config()
    }
}

fn header_u64(response: &reqwest::Response, name: &str) -> u64 {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_minute_limit_returns_429() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let limits = PlanLimits {
        requests_per_minute: Some(3),
        ..PlanLimits::default()
    };
    let edge = TestEdge::start_with(feed, config_with(limits)).await;
    let client = edge.client();
    let url = edge.url("acme.localhost", "/petstore/pets");

    for expected_remaining in [2, 1, 0] {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_u64(&response, "x-ratelimit-limit"), 3);
        assert_eq!(
            header_u64(&response, "x-ratelimit-remaining"),
            expected_remaining
        );
        assert!(header_u64(&response, "x-ratelimit-reset") >= unix_now());
    }

    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header_u64(&response, "x-ratelimit-remaining"), 0);
    let retry_after = header_u64(&response, "retry-after");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let body = json_body(response).await;
    assert_eq!(body["code"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(body["details"]["limit"], 3);
    assert_eq!(body["details"]["window"], "minute");
    assert_eq!(body["details"]["retry_after_seconds"], retry_after);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_minute_limit_spans_deployments() {
    let feed = FakeFeed::new([
        record("acme", "petstore", PETSTORE),
        record("acme", "second", PETSTORE),
        record("globex", "petstore", PETSTORE),
    ]);
    let limits = PlanLimits {
        requests_per_minute: Some(1),
        ..PlanLimits::default()
    };
    let edge = TestEdge::start_with(feed, config_with(limits)).await;
    let client = edge.client();

    let first = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let same_org = client
        .get(edge.url("acme.localhost", "/second/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(same_org.status(), StatusCode::TOO_MANY_REQUESTS);
    let other_org = client
        .get(edge.url("globex.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(other_org.status(), StatusCode::OK);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rps_limits_one_deployment() {
    let feed = FakeFeed::new([
        record("acme", "petstore", PETSTORE),
        record("acme", "second", PETSTORE),
    ]);
    let limits = PlanLimits {
        deployment_rps: Some(2),
        ..PlanLimits::default()
    };
    let edge = TestEdge::start_with(feed, config_with(limits)).await;
    let client = edge.client();
    let url = edge.url("acme.localhost", "/petstore/pets");

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(client.get(&url).send().await.unwrap().status());
    }
    // The first two always pass; the third passes only if a second went by meanwhile.
    assert_eq!(statuses[..2], [StatusCode::OK, StatusCode::OK]);
    if statuses[2] == StatusCode::TOO_MANY_REQUESTS {
        let response = client.get(&url).send().await.unwrap();
        let body = json_body(response).await;
        assert_eq!(body["details"]["window"], "second");
    }
    let other = client
        .get(edge.url("acme.localhost", "/second/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn period_limit_returns_429() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let limits = PlanLimits {
        requests_per_30d: Some(2),
        ..PlanLimits::default()
    };
    let edge = TestEdge::start_with(feed, config_with(limits)).await;
    let client = edge.client();
    let url = edge.url("acme.localhost", "/petstore/pets");

    for _ in 0..2 {
        assert_eq!(client.get(&url).send().await.unwrap().status(), StatusCode::OK);
    }
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = json_body(response).await;
    assert_eq!(body["details"]["window"], "30d");
    assert_eq!(body["details"]["limit"], 2);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_body_limit_returns_413() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let limits = PlanLimits {
        max_request_body_bytes: Some(16),
        ..PlanLimits::default()
    };
    let edge = TestEdge::start_with(feed, config_with(limits)).await;
    let response = edge
        .client()
        .post(edge.url("acme.localhost", "/petstore/pets"))
        .body(vec![b'x'; 32])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = json_body(response).await;
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(body["details"]["max_bytes"], 16);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_return_431() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let config = EdgeConfig {
        max_header_bytes: 1024,
        ..test_config()
    };
    let edge = TestEdge::start_with(feed, config).await;
    let response = edge
        .client()
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .header("x-padding", "p".repeat(2000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let body = json_body(response).await;
    assert_eq!(body["code"], "HEADERS_TOO_LARGE");
    assert_eq!(body["details"]["max_bytes"], 1024);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_returns_503() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let config = EdgeConfig {
        max_concurrent_requests: 0,
        ..test_config()
    };
    let edge = TestEdge::start_with(feed, config).await;
    let response = edge
        .client()
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body = json_body(response).await;
    assert_eq!(body["code"], "OVERLOADED");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_returns_408() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let config = EdgeConfig {
        request_timeout: Duration::from_millis(200),
        ..test_config()
    };
    let edge = TestEdge::start_with(feed, config).await;
    let response = exchange_raw(
        edge.addr,
        b"POST /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\nContent-Length: 10\r\n\r\nabc",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert_eq!(raw_json_body(&response)["code"], "REQUEST_TIMEOUT");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_head_returns_408() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let config = EdgeConfig {
        request_timeout: Duration::from_millis(300),
        ..test_config()
    };
    let edge = TestEdge::start_with(feed, config).await;

    // An idle keep-alive connection is not bound by the request timeout.
    let mut idle = tokio::net::TcpStream::connect(edge.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    idle.write_all(b"GET /petstore/pets/1 HTTP/1.1\r\nHost: acme.localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut response))
        .await
        .expect("no response on the idle connection")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");

    // A head that stops halfway gets 408 once the request timeout has passed.
    let response =
        exchange_raw(edge.addr, b"GET /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\n").await;
    assert!(response.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{response}");
    assert!(response.contains("\r\nConnection: close\r\n"), "{response}");
    assert!(response.contains("\r\nx-request-id: "), "{response}");
    let body = raw_json_body(&response);
    assert_eq!(body["code"], "REQUEST_TIMEOUT");
    assert_eq!(body["details"]["timeout_ms"], 300);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_oversized_head_returns_431() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let config = EdgeConfig {
        max_header_bytes: 2048,
        ..test_config()
    };
    let edge = TestEdge::start_with(feed, config).await;

    let start = b"GET /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\n".to_vec();
    let mut one_long_header = start.clone();
    one_long_header.extend_from_slice(b"x-filler: ");
    one_long_header.resize(4096, b'a');
    let mut many_headers = start;
    for index in 0..100 {
        many_headers.extend_from_slice(format!("x-filler-{index}: aaaaaaaaaaaaaaaa\r\n").as_bytes());
    }

    for (case, head) in [("one long header", one_long_header), ("many headers", many_headers)] {
        // The head never ends, so only its size can end the request.
        let response = exchange_raw(edge.addr, &head).await;
        assert!(
            response.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{case}: {response}"
        );
        let body = raw_json_body(&response);
        assert_eq!(body["code"], "HEADERS_TOO_LARGE", "{case}");
        assert_eq!(body["details"]["max_bytes"], 2048, "{case}");
    }

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_overrides_replace_plan_limit() {
    let mut overridden = record("acme", "petstore", PETSTORE);
    overridden.limit_overrides = Some(PlanLimits {
        requests_per_minute: Some(5),
        ..PlanLimits::default()
    });
    let feed = FakeFeed::new([overridden, record("globex", "petstore", PETSTORE)]);
    let plan = PlanLimits {
        requests_per_minute: Some(60),
        ..PlanLimits::default()
    };
    let edge = TestEdge::start_with(feed, config_with(plan)).await;
    let client = edge.client();

    let acme = edge.url("acme.localhost", "/petstore/pets");
    for expected_remaining in (0..5).rev() {
        let response = client.get(&acme).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_u64(&response, "x-ratelimit-limit"), 5);
        assert_eq!(
            header_u64(&response, "x-ratelimit-remaining"),
            expected_remaining
        );
    }
    let response = client.get(&acme).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header_u64(&response, "x-ratelimit-limit"), 5);
    let body = json_body(response).await;
    assert_eq!(body["code"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(body["details"]["limit"], 5);
    assert_eq!(body["details"]["window"], "minute");

    // The other organization on the same plan keeps the plan's 60 requests per minute.
    let globex = edge.url("globex.localhost", "/petstore/pets");
    for _ in 0..8 {
        let response = client.get(&globex).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_u64(&response, "x-ratelimit-limit"), 60);
    }

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_overrides_apply_without_new_document() {
    let original = record("acme", "petstore", PETSTORE);
    let feed = FakeFeed::new([original.clone()]);
    let plan = PlanLimits {
        requests_per_minute: Some(60),
        ..PlanLimits::default()
    };
    let edge = TestEdge::start_with(feed.clone(), config_with(plan)).await;
    let client = edge.client();
    let url = edge.url("acme.localhost", "/petstore/pets");

    let response = client.get(&url).send().await.unwrap();
    assert_eq!(header_u64(&response, "x-ratelimit-limit"), 60);

    let overridden = mockforge_snapshot::DeploymentRecord {
        limit_overrides: Some(PlanLimits {
            requests_per_minute: Some(500),
            ..PlanLimits::default()
        }),
        ..original.clone()
    };
    let version = feed.upsert(overridden);
    edge.wait_for_version(version, Duration::from_secs(10)).await;
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_u64(&response, "x-ratelimit-limit"), 500);

    // A record without overrides restores the plan's limit.
    let version = feed.upsert(original);
    edge.wait_for_version(version, Duration::from_secs(10)).await;
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_u64(&response, "x-ratelimit-limit"), 60);

    edge.shutdown().await;
}
