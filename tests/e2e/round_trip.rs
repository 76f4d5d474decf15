//! The main job end to end: register, create an API token, deploy a document from a URL and
//! call the hosted mock.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{call_mock, corpus_file, customer, wait_for_status, FileServer, Server, TempDir, PETSTORE};

#[tokio::test]
async fn petstore_round_trip() {
    let server = Server::start().await;
    let files = TempDir::new("mockforge-files");
    std::fs::write(files.0.join("petstore.json"), PETSTORE).unwrap();
    let file_server = FileServer::start(&files.0).await;
    let api = customer(&server, "alice").await;

    let (status, created) = api
        .post(
            "/api/v1/deployments",
            json!({"name": "Pet Store", "slug": "pets-api", "openapi_spec_url": file_server.url("petstore.json")}),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {created}");
    assert_eq!(created["slug"], "pets-api");
    let expected_url = format!("http://alice.localhost:{}/pets-api", server.edge_port);
    assert_eq!(created["url"], expected_url.as_str());
    let id = created["id"].as_str().unwrap().to_string();

    let deployment = wait_for_status(&api, &id, "active").await;
    assert_eq!(deployment["url"], expected_url.as_str());

    // The example of the operation, through the subdomain URL.
    let (status, headers, body) = call_mock(&server, &expected_url, "/pets/1").await;
    assert_eq!(status, 200, "{body}");
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
    assert!(headers.contains_key("x-request-id"));
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, json!({"id": 1, "name": "Rex", "tag": "dog"}));

    // A body generated from the schema: two pets, each with the required properties.
    let (status, _, body) = call_mock(&server, &expected_url, "/pets").await;
    assert_eq!(status, 200, "{body}");
    let pets: Value = serde_json::from_str(&body).unwrap();
    let pets = pets.as_array().expect("array body");
    assert_eq!(pets.len(), 2);
    for pet in pets {
        assert!(pet["id"].is_i64(), "{pet}");
        assert!(pet["name"].is_string(), "{pet}");
    }
    let (_, _, again) = call_mock(&server, &expected_url, "/pets").await;
    assert_eq!(serde_json::from_str::<Value>(&again).unwrap(), Value::Array(pets.clone()), "same request, same body");

    // The path form for clients that cannot set a Host header.
    let response = reqwest::get(format!("{}/_m/alice/pets-api/pets/1", server.edge())).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["name"], "Rex");

    // Unknown route, deployment and organization: 404 in the error format.
    let (status, _, body) = call_mock(&server, &expected_url, "/owners").await;
    assert_eq!(status, 404);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["code"], "NOT_FOUND", "{error}");
    assert!(error["error"].is_string() && error.get("details").is_some(), "{error}");
    let (status, _, _) = call_mock(&server, &format!("http://alice.localhost:{}/other", server.edge_port), "/pets/1").await;
    assert_eq!(status, 404);
    let (status, _, _) = call_mock(&server, &format!("http://nobody.localhost:{}/pets-api", server.edge_port), "/pets/1").await;
    assert_eq!(status, 404);

    // Stopping the deployment takes it off the edge within a second; reactivating brings it back.
    let (status, body) = api.put(&format!("/api/v1/deployments/{id}/status"), json!({"status": "stopped"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "stopped");
    wait_for_mock_status(&server, &expected_url, 404, Duration::from_secs(1)).await;

    let (status, body) = api.put(&format!("/api/v1/deployments/{id}/status"), json!({"status": "active"})).await;
    assert_eq!(status, 200, "{body}");
    wait_for_mock_status(&server, &expected_url, 200, Duration::from_secs(5)).await;

    let (status, body) = api.delete(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    wait_for_mock_status(&server, &expected_url, 404, Duration::from_secs(1)).await;
    let (status, _) = api.get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn github_document_round_trip() {
    let Some(document) = corpus_file("github-30.json") else { return };
    let server = Server::start().await;
    let file_server = FileServer::start(document.parent().unwrap()).await;
    let api = customer(&server, "octo").await;

    let (status, created) = api
        .post("/api/v1/deployments", json!({"name": "GitHub", "slug": "github", "openapi_spec_url": file_server.url("github-30.json")}))
        .await;
    assert!(status == 200 || status == 201, "{status} {created}");
    let id = created["id"].as_str().unwrap().to_string();
    let deployment = wait_for_status(&api, &id, "active").await;
    let url = deployment["url"].as_str().unwrap().to_string();

    let (status, headers, body) = call_mock(&server, &url, "/repos/octocat/hello-world").await;
    assert_eq!(status, 200, "{body}");
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
    let repository: Value = serde_json::from_str(&body).unwrap();
    assert!(repository["full_name"].is_string(), "{repository}");
    assert!(repository["owner"]["login"].is_string(), "{repository}");

    // A literal path beats a templated sibling: /user is the authenticated user, not a lookup.
    let (status, _, body) = call_mock(&server, &url, "/user").await;
    assert_eq!(status, 200, "{body}");
    let user: Value = serde_json::from_str(&body).unwrap();
    assert!(user["login"].is_string(), "{user}");
}

async fn wait_for_mock_status(server: &Server, url: &str, expected: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (status, _, body) = call_mock(server, url, "/pets/1").await;
        if status == expected {
            return;
        }
        assert!(Instant::now() < deadline, "mock answered {status} instead of {expected} after {within:?}: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
