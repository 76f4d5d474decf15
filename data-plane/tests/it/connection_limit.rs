//! The open-connection limit: connections over `max_connections` get 503 and are closed.

use std::time::Duration;

use mockforge_edge::EdgeConfig;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::connection::read_response;
use crate::support::{json_body, record, test_config, FakeFeed, TestEdge, PETSTORE};

const GET_PETS: &[u8] = b"GET /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\n\r\n";

/// Waits up to 5 s until the edge's metrics contain `line`.
async fn wait_for_metric(edge: &TestEdge, line: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = edge.edge.metrics_text();
        if metrics.lines().any(|metric| metric == line) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no metric line {line:?} in:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Opens a keep-alive connection and proves it is served with one request.
async fn open_served_connection(edge: &TestEdge) -> BufReader<TcpStream> {
    let mut reader = BufReader::new(TcpStream::connect(edge.addr).await.unwrap());
    reader.get_mut().write_all(GET_PETS).await.unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut reader))
        .await
        .expect("no response on a connection under the limit");
    assert!(status.starts_with("HTTP/1.1 200"), "status {status}");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body[0]["name"], "Rex");
    reader
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_over_limit_gets_503() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let config = EdgeConfig {
        max_connections: 2,
        ..test_config()
    };
    let edge = TestEdge::start_with(feed, config).await;

    let first = open_served_connection(&edge).await;
    let second = open_served_connection(&edge).await;
    wait_for_metric(&edge, "mockforge_edge_open_connections 2").await;

    let mut third = TcpStream::connect(edge.addr).await.unwrap();
    third.write_all(GET_PETS).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut response))
        .await
        .expect("the edge left a connection over the limit open")
        .expect("the connection over the limit was reset instead of answered");
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let mut head_lines = head.lines();
    assert_eq!(head_lines.next(), Some("HTTP/1.1 503 Service Unavailable"));
    let headers: Vec<String> = head_lines.map(str::to_ascii_lowercase).collect();
    assert!(
        headers.contains(&"retry-after: 1".to_owned()),
        "{headers:?}"
    );
    assert!(
        headers.contains(&"connection: close".to_owned()),
        "{headers:?}"
    );
    assert!(
        headers.contains(&"content-type: application/json".to_owned()),
        "{headers:?}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "OVERLOADED");
    assert_eq!(body["details"]["max_connections"], 2);
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("maximum of 2 open connections"),
        "{message}"
    );
    wait_for_metric(&edge, "mockforge_edge_rejected_connections_total 1").await;

    // Closing one connection frees its slot for the next client.
    drop(first);
    wait_for_metric(&edge, "mockforge_edge_open_connections 1").await;
    let response = edge
        .client()
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body[0]["name"], "Rex");

    drop(second);
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_connection_over_limit_gets_goaway() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let config = EdgeConfig {
        max_connections: 1,
        ..test_config()
    };
    let edge = TestEdge::start_with(feed, config).await;
    let first = open_served_connection(&edge).await;
    wait_for_metric(&edge, "mockforge_edge_open_connections 1").await;

    // An h2c client with prior knowledge: the preface, then an empty SETTINGS frame.
    let mut second = TcpStream::connect(edge.addr).await.unwrap();
    second.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    second.write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), second.read_to_end(&mut received))
        .await
        .expect("the edge left an HTTP/2 connection over the limit open")
        .expect("the HTTP/2 connection over the limit was reset instead of answered");

    // The server preface: an empty SETTINGS frame on stream 0.
    assert_eq!(received[..9], [0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
    // Then GOAWAY (type 7) on stream 0, last stream id 0, error code REFUSED_STREAM (7).
    let goaway = &received[9..];
    let length = u32::from_be_bytes([0, goaway[0], goaway[1], goaway[2]]) as usize;
    assert_eq!(goaway[3], 0x7, "frame type");
    assert_eq!(goaway[5..9], [0, 0, 0, 0], "stream id");
    assert_eq!(goaway[9..13], [0, 0, 0, 0], "last stream id");
    assert_eq!(goaway[13..17], [0, 0, 0, 7], "error code");
    assert_eq!(goaway.len(), 9 + length, "nothing follows the GOAWAY frame");
    let debug_data = std::str::from_utf8(&goaway[17..]).unwrap();
    assert_eq!(
        debug_data,
        "the edge has its maximum of 1 open connections; retry later"
    );
    wait_for_metric(&edge, "mockforge_edge_rejected_connections_total 1").await;

    drop(first);
    edge.shutdown().await;
}
