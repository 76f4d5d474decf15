//! Connection behavior over raw TCP: keep-alive reuse and draining on shutdown.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::{exchange_raw, raw_json_body, record, FakeFeed, TestEdge, PETSTORE};

/// Reads one HTTP/1.1 response with a `Content-Length` body and returns its status line and
/// body.
pub(crate) async fn read_response(reader: &mut BufReader<TcpStream>) -> (String, Vec<u8>) {
    let (status, _headers, body) = read_response_with_headers(reader).await;
    (status, body)
}

/// Reads one HTTP/1.1 response with a `Content-Length` body and returns its status line, its
/// header lines as sent and its body.
async fn read_response_with_headers(
    reader: &mut BufReader<TcpStream>,
) -> (String, Vec<String>, Vec<u8>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).await.unwrap();
    let mut headers = Vec::new();
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap();
            }
        }
        headers.push(line.trim_end().to_owned());
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).await.unwrap();
    (status_line.trim_end().to_owned(), headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_reuses_connection() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let edge = TestEdge::start(feed).await;
    let stream = TcpStream::connect(edge.addr).await.unwrap();
    let mut reader = BufReader::new(stream);

    for path in ["/petstore/pets", "/petstore/pets/2", "/petstore/missing"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: acme.localhost\r\n\r\n");
        reader
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
        let (status, body) = read_response(&mut reader).await;
        let expected = if path == "/petstore/missing" {
            "HTTP/1.1 404"
        } else {
            "HTTP/1.1 200"
        };
        assert!(status.starts_with(expected), "path {path}: status {status}");
        assert!(!body.is_empty(), "path {path}: empty body");
    }

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_request() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let mut edge = TestEdge::start(feed).await;
    let addr = edge.addr;
    let mut stream = TcpStream::connect(addr).await.unwrap();

    // Send the headers and half of the body, so the request is in flight.
    stream
        .write_all(b"GET /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\nContent-Length: 10\r\n\r\n12345")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let handle = edge.take_handle();
    let shutdown = tokio::task::spawn_blocking(move || handle.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown did not wait for the in-flight request"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the edge accepts connections while draining"
    );

    stream.write_all(b"67890").await.unwrap();
    let mut reader = BufReader::new(stream);
    let (status, body) = read_response(&mut reader).await;
    assert!(status.starts_with("HTTP/1.1 200"), "status {status}");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()[0]["name"],
        "Rex"
    );

    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown did not finish after the in-flight request")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_gets_interim_response() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let edge = TestEdge::start(feed).await;
    let stream = TcpStream::connect(edge.addr).await.unwrap();
    let mut reader = BufReader::new(stream);

    reader
        .get_mut()
        .write_all(b"POST /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut interim = String::new();
    tokio::time::timeout(Duration::from_secs(2), reader.read_line(&mut interim))
        .await
        .expect("no 100 Continue before the body was sent")
        .unwrap();
    assert!(
        interim.starts_with("HTTP/1.1 100"),
        "interim response {interim:?}"
    );
    let mut blank = String::new();
    reader.read_line(&mut blank).await.unwrap();
    assert_eq!(blank, "\r\n");

    reader.get_mut().write_all(b"{}").await.unwrap();
    let (status, body) = read_response(&mut reader).await;
    // The document declares no POST on /pets.
    assert!(status.starts_with("HTTP/1.1 405"), "status {status}");
    assert!(!body.is_empty());

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_expect_continue_is_rejected_early() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let edge = TestEdge::start(feed).await;
    let stream = TcpStream::connect(edge.addr).await.unwrap();
    let mut reader = BufReader::new(stream);

    let request = format!(
        "POST /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        1024 * 1024
    );
    reader
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(2), read_response(&mut reader))
        .await
        .expect("no response before the body was sent");
    assert!(status.starts_with("HTTP/1.1 413"), "status {status}");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_response_has_no_body() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let edge = TestEdge::start(feed).await;
    let stream = TcpStream::connect(edge.addr).await.unwrap();
    let mut reader = BufReader::new(stream);

    reader
        .get_mut()
        .write_all(b"HEAD /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        head.push(line);
    }
    assert!(
        head[0].starts_with("HTTP/1.1 "),
        "status line {:?}",
        head[0]
    );

    // The connection carries the next request right after the headers, so no body was sent.
    reader
        .get_mut()
        .write_all(b"GET /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\n\r\n")
        .await
        .unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(2), read_response(&mut reader))
        .await
        .expect("no response to the request after HEAD");
    assert!(status.starts_with("HTTP/1.1 200"), "status {status}");
    assert!(!body.is_empty());
    // HEAD states the length of the body GET gets (RFC 9110, section 8.6).
    let length = format!("content-length: {}\r\n", body.len());
    assert!(
        head.iter().any(|line| line.eq_ignore_ascii_case(&length)),
        "{length:?} missing from {head:?}"
    );

    edge.shutdown().await;
}

/// Sends `requests` in one write and returns the status line and body of each response.
async fn exchange_pipelined(edge: &TestEdge, requests: &str, responses: usize) -> Vec<(String, Vec<u8>)> {
    let mut stream = TcpStream::connect(edge.addr).await.unwrap();
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut received = Vec::new();
    for _ in 0..responses {
        received.push(read_response(&mut reader).await);
    }
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let edge = TestEdge::start(feed).await;
    let requests = "GET /petstore/pets/2 HTTP/1.1\r\nHost: acme.localhost\r\n\r\n\
                    GET /petstore/missing HTTP/1.1\r\nHost: acme.localhost\r\n\r\n\
                    GET /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\n\r\n";
    let responses = exchange_pipelined(&edge, requests, 3).await;

    assert_eq!(responses[0].0, "HTTP/1.1 200 OK");
    let pet: serde_json::Value = serde_json::from_slice(&responses[0].1).unwrap();
    assert_eq!(pet["name"], "Rex", "one pet first");
    assert_eq!(responses[1].0, "HTTP/1.1 404 Not Found");
    let error: serde_json::Value = serde_json::from_slice(&responses[1].1).unwrap();
    assert_eq!(error["code"], "NOT_FOUND");
    assert_eq!(responses[2].0, "HTTP/1.1 200 OK");
    let pets: serde_json::Value = serde_json::from_slice(&responses[2].1).unwrap();
    assert_eq!(pets[0]["name"], "Rex", "the list last");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_with_body_mid_connection_is_served() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let edge = TestEdge::start(feed).await;
    let body = r#"{"name":"Tom"}"#;
    let requests = format!(
        "GET /petstore/pets/1 HTTP/1.1\r\nHost: acme.localhost\r\n\r\n\
         POST /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}\
         GET /petstore/pets/3 HTTP/1.1\r\nHost: acme.localhost\r\n\r\n",
        body.len()
    );
    let responses = exchange_pipelined(&edge, &requests, 3).await;

    // The document declares no POST, so the engine's 405 shows that the request with a body
    // was parsed whole, and the last response that the connection went on after it.
    assert_eq!(responses[0].0, "HTTP/1.1 200 OK");
    assert_eq!(responses[1].0, "HTTP/1.1 405 Method Not Allowed");
    let error: serde_json::Value = serde_json::from_slice(&responses[1].1).unwrap();
    assert_eq!(error["code"], "METHOD_NOT_ALLOWED");
    assert_eq!(responses[2].0, "HTTP/1.1 200 OK");
    let pet: serde_json::Value = serde_json::from_slice(&responses[2].1).unwrap();
    assert_eq!(pet["name"], "Rex");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_alternating_with_bodies() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let edge = TestEdge::start(feed).await;
    let stream = TcpStream::connect(edge.addr).await.unwrap();
    let mut reader = BufReader::new(stream);
    let body = r#"{"name":"Tom"}"#;
    let post = format!(
        "POST /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let get = "GET /petstore/pets/1 HTTP/1.1\r\nHost: acme.localhost\r\n\r\n";

    // Requests without a body and requests with one take different paths through the edge.
    // One connection goes back and forth between them, one request at a time.
    let mut names_by_response = Vec::new();
    for round in 0..3 {
        reader.get_mut().write_all(get.as_bytes()).await.unwrap();
        let (status, headers, pet) = read_response_with_headers(&mut reader).await;
        assert_eq!(status, "HTTP/1.1 200 OK", "GET in round {round}");
        let pet: serde_json::Value = serde_json::from_slice(&pet).unwrap();
        assert_eq!(pet["name"], "Rex", "GET in round {round}");
        names_by_response.push(header_names(&headers));

        reader.get_mut().write_all(post.as_bytes()).await.unwrap();
        let (status, headers, error) = read_response_with_headers(&mut reader).await;
        assert_eq!(
            status, "HTTP/1.1 405 Method Not Allowed",
            "POST in round {round}"
        );
        let error: serde_json::Value = serde_json::from_slice(&error).unwrap();
        assert_eq!(error["code"], "METHOD_NOT_ALLOWED", "POST in round {round}");
        names_by_response.push(header_names(&headers));
    }

    // Both paths spell header names the same way.
    for names in &names_by_response {
        for expected in ["Content-Type", "Content-Length", "Date", "Connection", "x-request-id"] {
            assert!(names.contains(&expected.to_owned()), "{expected} missing from {names:?}");
        }
    }
    assert_eq!(names_by_response[0], names_by_response[2]);
    assert_eq!(names_by_response[0], names_by_response[4]);

    edge.shutdown().await;
}

/// Returns the names of `headers` as sent.
fn header_names(headers: &[String]) -> Vec<String> {
    headers
        .iter()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_and_http10_close_after_response() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let edge = TestEdge::start(feed).await;
    for request in [
        "GET /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\nConnection: close\r\n\r\n",
        "GET /petstore/pets HTTP/1.0\r\nHost: acme.localhost\r\n\r\n",
    ] {
        // The edge closes the connection after the response.
        let response = exchange_raw(edge.addr, request.as_bytes()).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.to_ascii_lowercase().contains("\r\nconnection: close\r\n"), "{response}");
        assert!(response.ends_with(r#"[{"id":1,"name":"Rex"}]"#), "{response}");
    }

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_shorter_than_http2_preface_is_answered() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let edge = TestEdge::start(feed).await;
    // 22 and 23 bytes, shorter than the 24-byte preface: a load balancer's health check, and a
    // WebDAV method that starts with the preface's `PR`.
    for request in ["OPTIONS / HTTP/1.0\r\n\r\n", "PROPFIND / HTTP/1.0\r\n\r\n"] {
        // The edge responds without waiting for more bytes, and then closes the connection.
        let response = exchange_raw(edge.addr, request.as_bytes()).await;
        assert!(response.starts_with("HTTP/1.1 404 Not Found\r\n"), "{request:?}: {response}");
        assert!(response.contains(r#""code":"NOT_FOUND""#), "{request:?}: {response}");
    }

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_over_http2_states_get_length() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let edge = TestEdge::start(feed).await;
    let client = edge.h2c_client();
    let url = edge.url("acme.localhost", "/petstore/pets");

    let get = client.get(&url).send().await.unwrap();
    assert_eq!(get.version(), reqwest::Version::HTTP_2);
    let length = get.bytes().await.unwrap().len();
    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), reqwest::StatusCode::OK);
    assert_eq!(head.headers()["content-length"], length.to_string().as_str());
    assert!(head.bytes().await.unwrap().is_empty());

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_head_gets_400() {
    let feed = FakeFeed::new([record("acme", "petstore", PETSTORE)]);
    let edge = TestEdge::start(feed).await;
    let response = exchange_raw(
        edge.addr,
        b"GET /petstore/pets HTTP/1.1\r\nHost: acme.localhost\r\nno colon here\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{response}");
    let body = raw_json_body(&response);
    assert_eq!(body["code"], "BAD_REQUEST", "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("the request head could not be parsed"), "{message}");
    assert!(message.contains("`name: value` syntax"), "{message}");
    assert!(response.to_ascii_lowercase().contains("\r\nx-request-id: "), "{response}");

    edge.shutdown().await;
}
