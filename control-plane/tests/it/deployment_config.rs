//! Checks of `config_json` at deployment creation: unknown keys, `chaos` and `proxy` values,
//! and `operations` lists resolved against the compiled document.

use mockforge_plugins::examples::plugin_file;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::harness::{assert_error, petstore, TestServer};
use crate::marketplace::{good_package, publish_package, publish_plugin};

const KNOWN_KEYS: &str = "validation, cors_enabled, response_template_expand, ignore_trailing_slash, \
                          strict_accept, chaos, proxy and plugins";

/// Returns a document that declares the operationIds `listPets` and `getPet`.
fn pets_with_ids() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Pets", "version": "1.0.0" },
        "paths": {
            "/pets": { "get": { "operationId": "listPets", "responses": { "200": { "description": "ok" } } } },
            "/pets/{id}": {
                "get": {
                    "operationId": "getPet",
                    "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } } ],
                    "responses": { "200": { "description": "ok" } }
                }
            }
        }
    })
}

/// Creates a deployment with `config`, asserts a 400 `INVALID_CONFIG` and returns the body.
async fn reject(server: &TestServer, token: &str, document: Value, config: Value) -> Value {
    let request = json!({ "name": "checked", "openapi_spec": document, "config_json": config });
    let (status, body) = server.post("/api/v1/deployments", token, &request).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_CONFIG");
    body
}

/// Asserts that no deployment was written: the list is empty and the edges see none.
async fn assert_nothing_written(server: &TestServer, token: &str) {
    let (status, list) = server.get("/api/v1/deployments", token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list, json!([]), "a rejected request created a deployment");
    let snapshot = server.feed.changes_since(0).await.unwrap();
    assert!(snapshot.upserts.is_empty(), "the edges see {:?}", snapshot.upserts);
}

backend_tests! {
    async fn misspelt_key_is_rejected(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("chaoss").await;
        let body = reject(&server, &account.token, petstore(), json!({ "chaoss": { "error_rate": 0.5 } })).await;

        let message = body["error"].as_str().unwrap();
        assert!(message.starts_with("invalid config_json: /config_json/chaoss: unknown key `chaoss`"), "{message}");
        assert!(message.contains("did you mean `chaos`?"), "{message}");
        let problems = body["details"]["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{body}");
        assert_eq!(problems[0]["pointer"], "/config_json/chaoss");
        assert_eq!(
            problems[0]["message"],
            format!("unknown key `chaoss`; did you mean `chaos`? The known keys are {KNOWN_KEYS}")
        );
        assert_eq!(problems[0]["severity"], "error");

        let body = reject(&server, &account.token, petstore(), json!({ "timeout_ms": 5 })).await;
        assert_eq!(
            body["details"]["problems"][0]["message"],
            format!("unknown key `timeout_ms`; the known keys are {KNOWN_KEYS}")
        );
        assert_nothing_written(&server, &account.token).await;
    }

    async fn invalid_chaos_is_rejected(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("monkey").await;
        let body = reject(&server, &account.token, petstore(), json!({ "chaos": { "error_rate": 2 } })).await;
        assert_eq!(body["error"], "invalid config_json: /config_json/chaos/error_rate: must be a number from 0 to 1, not 2");
        assert_eq!(body["details"]["problems"][0]["pointer"], "/config_json/chaos/error_rate");
        assert_eq!(body["details"]["problems"][0]["message"], "must be a number from 0 to 1, not 2");

        let body = reject(&server, &account.token, petstore(), json!({ "proxy": { "upstream": "ftp://api.example.com" } })).await;
        assert_eq!(body["details"]["problems"][0]["pointer"], "/config_json/proxy/upstream");
        assert_eq!(body["details"]["problems"][0]["message"], "\"ftp://api.example.com\" must start with http:// or https://");

        // Every problem inside chaos and proxy is listed, not only the first.
        let config = json!({
            "chaos": { "error_rate": 2, "fault": { "kind": "explode" } },
            "proxy": { "upstream": "ftp://api.example.com", "mode": "some" }
        });
        let body = reject(&server, &account.token, petstore(), config).await;
        let pointers: Vec<&str> = body["details"]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|problem| problem["pointer"].as_str().unwrap())
            .collect();
        assert_eq!(
            pointers,
            [
                "/config_json/chaos/error_rate",
                "/config_json/chaos/fault/kind",
                "/config_json/proxy/mode",
                "/config_json/proxy/upstream",
            ],
            "{body}"
        );
        assert_nothing_written(&server, &account.token).await;
    }

    async fn unknown_fault_key_is_rejected(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("faulty").await;
        let config = json!({ "chaos": { "fault": { "kind": "reset", "rate": 0.1, "probability": 0.5 } } });
        let body = reject(&server, &account.token, petstore(), config).await;
        assert_eq!(body["details"]["problems"][0]["pointer"], "/config_json/chaos/fault/probability");
        assert_eq!(
            body["details"]["problems"][0]["message"],
            "unknown key `probability`; the known keys are kind and rate"
        );
        assert_nothing_written(&server, &account.token).await;
    }

    async fn unknown_plugin_entry_key_is_rejected(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("plugged").await;
        let config = json!({ "plugins": [ { "name": "add-header", "version": "1.0.0", "settings": {} } ] });
        let body = reject(&server, &account.token, petstore(), config).await;
        assert_eq!(body["details"]["problems"][0]["pointer"], "/config_json/plugins/0/settings");
        assert_eq!(
            body["details"]["problems"][0]["message"],
            "unknown key `settings`; the known keys are name, version, config and checksum"
        );
        assert_nothing_written(&server, &account.token).await;
    }

    async fn unknown_operation_is_rejected(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("opsy").await;
        let config = json!({ "proxy": { "upstream": "https://api.example.com", "operations": ["getPet", "deletePet"] } });
        let body = reject(&server, &account.token, pets_with_ids(), config).await;
        let problems = body["details"]["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{body}");
        assert_eq!(problems[0]["pointer"], "/config_json/proxy/operations/1");
        assert_eq!(
            problems[0]["message"],
            "the document has no operation with operationId \"deletePet\"; valid operation ids: \"listPets\", \"getPet\""
        );

        // For a document without operationIds, the message states that it declares none.
        let config = json!({ "chaos": { "error_rate": 0.5, "operations": ["listPets"] } });
        let body = reject(&server, &account.token, petstore(), config).await;
        assert_eq!(body["details"]["problems"][0]["pointer"], "/config_json/chaos/operations/0");
        assert_eq!(
            body["details"]["problems"][0]["message"],
            "the document has no operation with operationId \"listPets\"; the document declares no operationId"
        );
        assert_nothing_written(&server, &account.token).await;
    }

    async fn documented_example_is_accepted(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("exemplary").await;
        let (status, body) = publish_plugin(&server, &account.token, "add-header", "1.0.0", plugin_file("add-header")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        // The example at the top of docs/deployment-config.md.
        let config = json!({
            "validation": "warn",
            "cors_enabled": true,
            "response_template_expand": true,
            "ignore_trailing_slash": true,
            "strict_accept": false,
            "chaos": {
                "latency": { "min_ms": 50, "max_ms": 400, "distribution": "normal" },
                "error_rate": 0.1,
                "error_statuses": [500, 503],
                "fault": { "kind": "reset", "rate": 0.02 },
                "operations": ["listPets", "getPet"]
            },
            "proxy": { "upstream": "https://api.example.com/v1", "mode": "unmatched" },
            "plugins": [
                { "name": "add-header", "version": "1.0.0", "config": { "name": "x-team", "value": "pets" } }
            ]
        });
        let request = json!({ "name": "full", "openapi_spec": pets_with_ids(), "config_json": config });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["config_json"]["chaos"], config["chaos"]);
        assert_eq!(body["config_json"]["proxy"], config["proxy"]);
        assert!(body["config_json"]["plugins"][0]["checksum"].as_str().is_some_and(|checksum| checksum.starts_with("sha256:")), "{body}");
        let (_, list) = server.get("/api/v1/deployments", &account.token).await;
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    }

    async fn template_settings_are_checked(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("templar").await;

        let mut manifest = crate::marketplace::template_manifest("typo", "1.0.0");
        manifest["settings"] = json!({ "cors_enabld": false });
        let (status, body) = publish_package(&server, &account.token, "templates", &manifest, good_package()).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_CONFIG");
        assert_eq!(body["details"]["problems"][0]["pointer"], "/config_json/cors_enabld");
        assert!(body["error"].as_str().unwrap().contains("did you mean `cors_enabled`?"), "{body}");

        // Operation lists need the document, so they are checked when the template is used.
        let mut manifest = crate::marketplace::template_manifest("slow-pets", "1.0.0");
        manifest["settings"] = json!({ "chaos": { "latency": { "fixed_ms": 10 }, "operations": ["getPet"] } });
        let (status, body) = publish_package(&server, &account.token, "templates", &manifest, good_package()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let request = json!({ "name": "merged", "openapi_spec": petstore(), "template": "slow-pets@1.0.0" });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_CONFIG");
        assert_eq!(body["details"]["problems"][0]["pointer"], "/config_json/chaos/operations/0");

        // The merged settings are checked: here `fixed_ms` from the template meets `min_ms`.
        let request = json!({
            "name": "merged",
            "openapi_spec": pets_with_ids(),
            "template": "slow-pets@1.0.0",
            "config_json": { "chaos": { "latency": { "min_ms": 1 } } },
        });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_CONFIG");
        assert_eq!(body["details"]["problems"][0]["pointer"], "/config_json/chaos/latency/min_ms");
        assert_eq!(
            body["details"]["problems"][0]["message"],
            "cannot be combined with fixed_ms; use fixed_ms alone, or min_ms, max_ms and distribution"
        );
        assert_nothing_written(&server, &account.token).await;

        let request = json!({ "name": "merged", "openapi_spec": pets_with_ids(), "template": "slow-pets@1.0.0" });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["config_json"]["chaos"]["operations"], json!(["getPet"]));
    }
}
