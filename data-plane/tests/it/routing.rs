//! Requests through the real server: tenant routing, error bodies and headers.

use mockforge_edge::REQUEST_ID_HEADER;
use reqwest::header::{ALLOW, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{json_body, record, FakeFeed, TestEdge, ORDERS, PETSTORE};

async fn acme_edge() -> TestEdge {
    let feed = FakeFeed::new([
        record("acme", "petstore", PETSTORE),
        record("globex", "orders", ORDERS),
    ]);
    TestEdge::start(feed).await
}

fn assert_error_format(body: &serde_json::Value, code: &str) {
    assert_eq!(body["code"], code, "body {body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|message| !message.is_empty()),
        "body {body}"
    );
    assert!(body["details"].is_object(), "body {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_form_serves_mock() {
    let edge = acme_edge().await;
    let client = edge.client();

    let response = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(json_body(response).await, json!([{"id": 1, "name": "Rex"}]));

    let response = client
        .get(edge.url("acme.localhost", "/petstore/pets/7"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, json!({"id": 1, "name": "Rex"}));

    let response = client
        .get(edge.url("globex.localhost", "/orders/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, json!([{"id": "o-1"}]));

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_form_ignores_case() {
    let edge = acme_edge().await;
    let response = edge
        .client()
        .get(edge.url("127.0.0.1", "/petstore/pets"))
        .header("host", format!("ACME.LocalHost:{}", edge.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_form_serves_mock() {
    let edge = acme_edge().await;
    let client = edge.client();

    let response = client
        .get(edge.url("127.0.0.1", "/_m/acme/petstore/pets?limit=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, json!([{"id": 1, "name": "Rex"}]));

    // The path form works whatever the host names.
    let response = client
        .get(edge.url("nobody.localhost", "/_m/globex/orders/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_org_is_not_found() {
    let edge = acme_edge().await;
    let client = edge.client();

    for url in [
        edge.url("nobody.localhost", "/petstore/pets"),
        edge.url("127.0.0.1", "/_m/nobody/petstore/pets"),
    ] {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "url {url}");
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "application/json",
            "url {url}"
        );
        let body = json_body(response).await;
        assert_error_format(&body, "NOT_FOUND");
        assert_eq!(body["details"]["org"], "nobody", "url {url}");
        assert!(
            body["error"].as_str().unwrap().contains("nobody"),
            "url {url}: {body}"
        );
    }

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_deployment_is_not_found() {
    let edge = acme_edge().await;
    let response = edge
        .client()
        .get(edge.url("acme.localhost", "/billing/invoices"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let body = json_body(response).await;
    assert_error_format(&body, "NOT_FOUND");
    assert_eq!(body["details"]["org"], "acme");
    assert_eq!(body["details"]["deployment"], "billing");
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_without_org_is_not_found() {
    let edge = acme_edge().await;
    let response = edge
        .client()
        .get(edge.url("127.0.0.1", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = json_body(response).await;
    assert_error_format(&body, "NOT_FOUND");
    let host = format!("127.0.0.1:{}", edge.addr.port());
    assert_eq!(body["details"]["host"], host.as_str());
    assert_eq!(
        body["error"],
        format!("no organization in host {host}; use {{org}}.localhost or /_m/{{org}}/{{deployment}}/")
    );
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_is_not_found() {
    let edge = acme_edge().await;
    let response = edge
        .client()
        .get(edge.url("acme.localhost", "/petstore/owners"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let body = json_body(response).await;
    assert_error_format(&body, "NOT_FOUND");
    assert_eq!(body["details"]["path"], "/owners");
    assert_eq!(body["details"]["deployment"], "petstore");
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_not_allowed_lists_allow() {
    let edge = acme_edge().await;
    let response = edge
        .client()
        .delete(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers()[ALLOW].to_str().unwrap().to_owned();
    assert!(
        allow.split(", ").any(|method| method == "GET"),
        "Allow: {allow}"
    );
    let body = json_body(response).await;
    assert_error_format(&body, "METHOD_NOT_ALLOWED");
    assert_eq!(body["details"]["method"], "DELETE");
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_on_every_response() {
    let edge = acme_edge().await;
    let client = edge.client();

    let response = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .header(REQUEST_ID_HEADER, "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[REQUEST_ID_HEADER], "trace-42");

    let response = client
        .get(edge.url("acme.localhost", "/petstore/owners"))
        .header(REQUEST_ID_HEADER, "bad id with spaces")
        .send()
        .await
        .unwrap();
    let generated = response.headers()[REQUEST_ID_HEADER].to_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(generated).is_ok(),
        "generated id {generated}"
    );

    let response = client
        .get(edge.url("nobody.localhost", "/x"))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key(REQUEST_ID_HEADER));

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_rejected() {
    let edge = acme_edge().await;
    let body = vec![b'x'; 64 * 1024 + 1];
    let response = edge
        .client()
        .post(edge.url("acme.localhost", "/petstore/pets"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.headers().contains_key(REQUEST_ID_HEADER));
    let body = json_body(response).await;
    assert_error_format(&body, "PAYLOAD_TOO_LARGE");
    assert_eq!(body["details"]["max_bytes"], 64 * 1024);
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_serves_many_requests() {
    let edge = acme_edge().await;
    let client = edge.client();
    for _ in 0..20 {
        let response = client
            .get(edge.url("acme.localhost", "/petstore/pets"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.version(), reqwest::Version::HTTP_11);
        assert!(response.headers().contains_key("date"));
        response.bytes().await.unwrap();
    }
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_serves_mock() {
    let edge = acme_edge().await;
    let client = edge.h2c_client();

    let response = client
        .get(edge.url("acme.localhost", "/petstore/pets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key(REQUEST_ID_HEADER));
    assert_eq!(json_body(response).await, json!([{"id": 1, "name": "Rex"}]));

    let response = client
        .get(edge.url("acme.localhost", "/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    edge.shutdown().await;
}
