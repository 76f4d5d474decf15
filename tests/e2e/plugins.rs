//! Plugins end to end: publish a plugin to the marketplace of `mockforge serve`, attach it to a
//! deployment and see its effect on the hosted mock, a hostile plugin fail only its own
//! deployment, and both plugin world versions run while other components are rejected.

use std::time::{Duration, Instant};

use mockforge_plugins::examples::plugin_file;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

use crate::harness::{call_mock, customer, wait_for_status, Api, Server, PETSTORE};

pub(crate) async fn publish(api: &Api, name: &str) {
    let form = Form::new()
        .text("name", name.to_owned())
        .text("version", "1.0.0")
        .text("description", "end-to-end test plugin")
        .text("category", "testing")
        .part("wasm_file", Part::bytes(plugin_file(name)).file_name(format!("{name}.wasm")));
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/plugins/publish", api.base))
        .bearer_auth(api.token.as_deref().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 201, "publishing {name}: {body}");
}

async fn deploy(api: &Api, slug: &str, plugins: Value) -> String {
    let spec: Value = serde_json::from_str(PETSTORE).unwrap();
    let request = json!({ "name": slug, "slug": slug, "openapi_spec": spec, "config_json": { "plugins": plugins } });
    let (status, created) = api.post("/api/v1/deployments", request).await;
    assert!(status == 200 || status == 201, "{status} {created}");
    let id = created["id"].as_str().unwrap().to_owned();
    wait_for_status(api, &id, "active").await["url"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn published_plugins_run_on_edge() {
    let server = Server::start().await;
    let api = customer(&server, "plugger").await;
    publish(&api, "add-header").await;
    publish(&api, "hostile-loop").await;

    let with_header = deploy(&api, "with-header", json!([
        { "name": "add-header", "version": "1.0.0", "config": { "name": "x-from-plugin", "value": "hello" } }
    ]))
    .await;
    let looping = deploy(&api, "looping", json!([{ "name": "hostile-loop", "version": "1.0.0" }])).await;

    let (status, headers, body) = call_mock(&server, &with_header, "/pets/1").await;
    assert_eq!(status, 200, "{body}\n{}", server.log_text());
    assert_eq!(headers["x-from-plugin"], "hello");

    let started = Instant::now();
    let (status, _, body) = call_mock(&server, &looping, "/pets/1").await;
    assert_eq!(status, 502, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "PLUGIN_FAILED", "{body}");

    let (status, headers, _) = call_mock(&server, &with_header, "/pets/1").await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-from-plugin"], "hello");
}

#[tokio::test]
async fn plugin_worlds_on_edge() {
    let server = Server::start().await;
    let api = customer(&server, "worlds").await;
    publish(&api, "add-header").await;
    publish(&api, "legacy-pass-through").await;

    let current = deploy(&api, "current-world", json!([
        { "name": "add-header", "version": "1.0.0",
          "config": { "name": "x-operation", "value": "{operationId} {route}" } }
    ]))
    .await;
    let legacy = deploy(&api, "legacy-world", json!([{ "name": "legacy-pass-through", "version": "1.0.0" }])).await;

    let (status, headers, body) = call_mock(&server, &current, "/pets/1").await;
    assert_eq!(status, 200, "{body}\n{}", server.log_text());
    assert_eq!(headers["x-operation"], "getPet GET /pets/{petId}");
    let (status, headers, body) = call_mock(&server, &current, "/pets").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-operation"], "listPets GET /pets");

    let (status, headers, body) = call_mock(&server, &legacy, "/pets/1").await;
    assert_eq!(status, 200, "{body}\n{}", server.log_text());
    assert_eq!(headers["x-legacy-operation"], "GET /pets/{petId}");
    let pet: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(pet, json!({"id": 1, "name": "Rex", "tag": "dog"}));

    let form = Form::new()
        .text("name", "wrong-world")
        .text("version", "1.0.0")
        .text("category", "testing")
        .part("wasm_file", Part::bytes(plugin_file("wrong-world")).file_name("wrong-world.wasm"));
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/plugins/publish", api.base))
        .bearer_auth(api.token.as_deref().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "VALIDATION_ERROR", "{body}");
    assert_eq!(body["details"]["field"], "wasm_file", "{body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("(mockforge:plugin/plugin@0.2.0 or mockforge:plugin/plugin@0.1.0): no export `on-request` found"),
        "{body}"
    );
}
