use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;

use mockforge_control_plane::nodes::NodeTokens;

use crate::backend_tests;
use crate::documents::fetch_document;
use crate::harness::{assert_error, create_deployment, petstore, spec_server, TestServer};

backend_tests! {
    async fn create_inline_shape(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("sybil").await;
        let org = server.personal_org(&account).await;
        let project_id = uuid::Uuid::new_v4().to_string();
        let request = json!({
            "name": "User API Mock",
            "description": "Mock user API for testing",
            "project_id": project_id,
            "openapi_spec": petstore(),
            "config_json": { "cors_enabled": true, "response_template_expand": true },
        });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["org_id"], org["id"]);
        assert_eq!(body["name"], "User API Mock");
        assert_eq!(body["slug"], "user-api-mock");
        assert_eq!(body["description"], "Mock user API for testing");
        assert_eq!(body["project_id"].as_str().unwrap(), project_id);
        assert_eq!(body["status"], "deploying");
        assert_eq!(body["health_status"], "unknown");
        assert_eq!(body["url"], "http://sybil.localhost:8081/user-api-mock");
        assert_eq!(body["config_json"], json!({ "cors_enabled": true, "response_template_expand": true }));
        assert!(body["created_at"].is_string());

        // The document is stored under its SHA-256.
        let text = serde_json::to_string(&petstore()).unwrap();
        let sha = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        assert_eq!(body["document_sha256"], sha);
        let node_token = NodeTokens::open(&server.config).await.unwrap().create("edge-docs").await.unwrap();
        let (status, stored) = fetch_document(&server, &node_token, &sha).await;
        assert_eq!(status, StatusCode::OK, "{stored}");
        assert_eq!(stored, text);

        let id = body["id"].as_str().unwrap();
        let (status, fetched) = server.get(&format!("/api/v1/deployments/{id}"), &account.token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(fetched["id"], body["id"]);
        assert_eq!(fetched["slug"], "user-api-mock");
        assert_eq!(fetched["config_json"], body["config_json"]);
        assert!(fetched["updated_at"].is_string());
    }

    async fn create_inline_yaml_string(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("trent").await;
        let yaml = "openapi: 3.0.3\ninfo:\n  title: Y\n  version: '1'\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n          description: ok\n";
        let request = json!({ "name": "Yaml", "slug": "yaml-api", "openapi_spec": yaml });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["slug"], "yaml-api");
    }

    async fn create_accepts_large_inline(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("walt").await;
        // Larger than the 1 MiB limit of other JSON bodies.
        let mut document = petstore();
        document["info"]["description"] = json!("d".repeat(2 * 1024 * 1024));
        let request = json!({ "name": "Large", "openapi_spec": document });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    async fn create_from_url(backend) {
        let spec = spec_server().await;
        let server = TestServer::start(backend, |config| config.allow_private_networks = true).await;
        let account = server.register("uma").await;
        for (name, path) in [("From JSON", "/openapi.json"), ("From YAML", "/openapi.yaml"), ("Redirected", "/redirect")] {
            let request = json!({ "name": name, "openapi_spec_url": format!("http://{spec}{path}") });
            let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
            assert_eq!(status, StatusCode::CREATED, "{path}: {body}");
        }
    }

    async fn fetch_failures(backend) {
        let spec = spec_server().await;
        let server = TestServer::start(backend, |config| {
            config.allow_private_networks = true;
            config.max_document_bytes = 64 * 1024;
        })
        .await;
        let account = server.register("victor").await;
        let post = |url: String| {
            let server = &server;
            let token = account.token.clone();
            async move { server.post("/api/v1/deployments", &token, &json!({ "name": "F", "openapi_spec_url": url })).await }
        };

        let (status, body) = post(format!("http://{spec}/missing")).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "DOCUMENT_FETCH_FAILED");
        assert!(body["details"]["reason"].as_str().unwrap().contains("404"), "{body}");

        let (status, body) = post(format!("http://{spec}/loop")).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "DOCUMENT_FETCH_FAILED");
        assert!(body["details"]["reason"].as_str().unwrap().contains("redirect"), "{body}");

        let (status, body) = post(format!("http://{spec}/large")).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "DOCUMENT_TOO_LARGE");
        assert_eq!(body["details"]["max_bytes"], 64 * 1024);

        let (status, body) = post("ftp://127.0.0.1/spec.json".to_owned()).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "openapi_spec_url");

        let large_inline = json!({ "name": "Big", "openapi_spec": "x".repeat(65 * 1024) });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &large_inline).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "DOCUMENT_TOO_LARGE");
    }

    async fn private_addresses_refused(backend) {
        let spec = spec_server().await;
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("wendy").await;
        // Every address here is refused before any connection is made.
        let urls = [
            format!("http://{spec}/openapi.json"),
            format!("http://localhost:{}/openapi.json", spec.port()),
            "http://[::1]:9/openapi.json".to_owned(),
            "http://10.0.0.1:9/openapi.json".to_owned(),
            "http://169.254.169.254/latest".to_owned(),
            "http://0.0.0.0:9/openapi.json".to_owned(),
        ];
        for url in urls {
            let request = json!({ "name": "Private", "openapi_spec_url": url });
            let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "ADDRESS_NOT_ALLOWED");
            let message = body["error"].as_str().unwrap();
            let address = body["details"]["address"].as_str().unwrap();
            assert!(message.contains(address), "{url}: {body}");
        }
        let request = json!({ "name": "Private", "openapi_spec_url": format!("http://{spec}/openapi.json") });
        let (_, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert!(body["details"]["address"].as_str().unwrap().starts_with("127.0.0.1"), "{body}");
    }

    async fn create_validation(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("xavier").await;
        let spec = petstore();
        let cases: Vec<(Value, &str)> = vec![
            (json!({ "openapi_spec": spec }), "name"),
            (json!({ "name": "", "openapi_spec": spec }), "name"),
            (json!({ "name": "n".repeat(101), "openapi_spec": spec }), "name"),
            (json!({ "name": "!!!", "openapi_spec": spec }), "slug"),
            (json!({ "name": "ok", "slug": "Bad_Slug", "openapi_spec": spec }), "slug"),
            (json!({ "name": "ok", "slug": "-lead", "openapi_spec": spec }), "slug"),
            (json!({ "name": "ok", "slug": "trail-", "openapi_spec": spec }), "slug"),
            (json!({ "name": "ok", "slug": "a".repeat(64), "openapi_spec": spec }), "slug"),
            (json!({ "name": "ok", "project_id": "nope", "openapi_spec": spec }), "project_id"),
            (json!({ "name": "ok", "config_json": [1], "openapi_spec": spec }), "config_json"),
            (json!({ "name": "ok" }), "openapi_spec_url"),
            (json!({ "name": "ok", "openapi_spec": spec, "openapi_spec_url": "http://example.invalid/" }), "openapi_spec_url"),
            (json!({ "name": "ok", "openapi_spec": 42 }), "openapi_spec"),
        ];
        for (body, field) in cases {
            let (status, response) = server.post("/api/v1/deployments", &account.token, &body).await;
            assert_error(status, &response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(response["details"]["field"], field, "case {body}");
        }

        let bad_config = json!({ "name": "ok", "openapi_spec": spec, "config_json": { "cors_enabled": "yes" } });
        let (status, response) = server.post("/api/v1/deployments", &account.token, &bad_config).await;
        assert_error(status, &response, StatusCode::BAD_REQUEST, "INVALID_CONFIG");
        assert_eq!(response["details"]["problems"][0]["pointer"], "/config_json/cors_enabled");

        let (_, list) = server.get("/api/v1/deployments", &account.token).await;
        assert_eq!(list, json!([]), "no failed request may create a deployment");
    }

    async fn invalid_document_problems(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("yolanda").await;
        let invalid = json!({ "openapi": "3.0.3", "info": { "title": "x", "version": "1" }, "paths": ["not", "an", "object"] });
        let request = json!({ "name": "Broken", "openapi_spec": invalid });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_OPENAPI_DOCUMENT");
        let problems = body["details"]["problems"].as_array().unwrap();
        assert!(!problems.is_empty(), "{body}");
        assert!(problems.iter().any(|problem| problem["pointer"] == "/paths"), "{body}");
        for problem in problems {
            assert!(problem["severity"].is_string(), "{problem}");
            assert!(problem["pointer"].is_string(), "{problem}");
            assert!(problem["message"].is_string(), "{problem}");
        }

        assert_eq!(
            body["error"],
            "the OpenAPI document is invalid: /paths: `paths` is an array but must be an object",
            "{body}"
        );

        let several = json!({
            "openapi": "3.0.3",
            "info": { "title": "x", "version": "1" },
            "paths": ["not", "an", "object"],
            "components": { "schemas": {
                "A": { "$ref": "#/components/schemas/Missing" },
                "B": { "$ref": "#/components/schemas/AlsoMissing" },
            } },
        });
        let request = json!({ "name": "Broken twice", "openapi_spec": several });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_OPENAPI_DOCUMENT");
        let problems = body["details"]["problems"].as_array().unwrap();
        assert!(problems.len() >= 2, "{body}");
        let first = format!("{}: {}", problems[0]["pointer"].as_str().unwrap(), problems[0]["message"].as_str().unwrap());
        assert_eq!(
            body["error"],
            format!("the OpenAPI document is invalid: {first}; {} more problem(s) in details.problems", problems.len() - 1),
            "{body}"
        );

        let request = json!({ "name": "Garbage", "openapi_spec": "this: [is not: openapi" });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_OPENAPI_DOCUMENT");
    }

    async fn duplicate_slug_conflicts(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("zed").await;
        let other = server.register("amy").await;
        let first = create_deployment(&server, &account.token, "Same Name").await;

        let request = json!({ "name": "Other", "slug": "same-name", "openapi_spec": petstore() });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_error(status, &body, StatusCode::CONFLICT, "CONFLICT");
        assert_eq!(body["details"]["value"], "same-name");

        // Slugs are unique per organization only.
        create_deployment(&server, &other.token, "Same Name").await;

        // Deleting frees the slug.
        let id = first["id"].as_str().unwrap();
        let (status, _) = server.delete(&format!("/api/v1/deployments/{id}"), &account.token).await;
        assert_eq!(status, StatusCode::OK);
        create_deployment(&server, &account.token, "Same Name").await;
    }

    async fn free_plan_limit(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("bob").await;
        let mut ids = Vec::new();
        for name in ["One", "Two", "Three"] {
            ids.push(create_deployment(&server, &account.token, name).await["id"].as_str().unwrap().to_owned());
        }
        // Stopped deployments still count.
        let (status, _) = server.put(&format!("/api/v1/deployments/{}/status", ids[0]), &account.token, &json!({ "status": "stopped" })).await;
        assert_eq!(status, StatusCode::OK);

        let request = json!({ "name": "Four", "openapi_spec": petstore() });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "PLAN_LIMIT_EXCEEDED");
        assert_eq!(body["details"]["plan"], "free");
        assert_eq!(body["details"]["limit"], 3);

        // At the limit, an invalid request still gets its validation error.
        let request = json!({ "name": "x", "openapi_spec_url": "ftp://127.0.0.1/x" });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "openapi_spec_url");
        assert_eq!(body["details"]["value"], "ftp://127.0.0.1/x");
        assert_eq!(body["details"]["expected"], "an http:// or https:// URL");
        let request = json!({ "name": "x", "openapi_spec": petstore(), "config_json": [1, 2] });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "config_json");
        assert_eq!(body["details"]["value"], json!([1, 2]));
        assert_eq!(body["details"]["expected"], "a JSON object of deployment settings");

        // Deleted deployments do not.
        let (status, _) = server.delete(&format!("/api/v1/deployments/{}", ids[1]), &account.token).await;
        assert_eq!(status, StatusCode::OK);
        create_deployment(&server, &account.token, "Four").await;
    }

    async fn list_filters(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("chuck").await;
        let project = uuid::Uuid::new_v4().to_string();
        let request = json!({ "name": "In Project", "project_id": project, "openapi_spec": petstore() });
        let (status, in_project) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_eq!(status, StatusCode::CREATED);
        let stopped = create_deployment(&server, &account.token, "Stopped").await;
        let stopped_id = stopped["id"].as_str().unwrap();
        server.put(&format!("/api/v1/deployments/{stopped_id}/status"), &account.token, &json!({ "status": "stopped" })).await;

        let (status, all) = server.get("/api/v1/deployments", &account.token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(all.as_array().unwrap().len(), 2);
        for field in ["id", "name", "slug", "status", "health_status", "url", "created_at"] {
            assert!(all[0][field].is_string(), "missing {field}: {all}");
        }

        let (_, filtered) = server.get(&format!("/api/v1/deployments?project_id={project}"), &account.token).await;
        assert_eq!(filtered.as_array().unwrap().len(), 1);
        assert_eq!(filtered[0]["id"], in_project["id"]);

        let (_, filtered) = server.get("/api/v1/deployments?status=stopped", &account.token).await;
        assert_eq!(filtered.as_array().unwrap().len(), 1);
        assert_eq!(filtered[0]["id"], stopped["id"]);

        let (_, filtered) = server.get("/api/v1/deployments?status=deploying", &account.token).await;
        assert_eq!(filtered.as_array().unwrap().len(), 1);
        assert_eq!(filtered[0]["id"], in_project["id"]);

        let (status, body) = server.get("/api/v1/deployments?status=deleted", &account.token).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["parameter"], "status filter");
        assert_eq!(body["details"]["value"], "deleted");
        let (status, body) = server.get("/api/v1/deployments?project_id=nope", &account.token).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }

    async fn status_changes_and_logs(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("dan").await;
        let created = create_deployment(&server, &account.token, "Toggle").await;
        let id = created["id"].as_str().unwrap();
        let status_path = format!("/api/v1/deployments/{id}/status");

        let (status, body) = server.put(&status_path, &account.token, &json!({ "status": "stopped" })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], created["id"]);
        assert_eq!(body["status"], "stopped");
        assert!(body["updated_at"].is_string());

        let (status, body) = server.put(&status_path, &account.token, &json!({ "status": "active" })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Reactivated deployments wait for an edge to confirm, like new ones.
        assert_eq!(body["status"], "deploying");

        let (status, body) = server.put(&status_path, &account.token, &json!({ "status": "paused" })).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["value"], "paused");
        assert!(body["error"].as_str().unwrap().contains("paused"));

        let (status, logs) = server.get(&format!("/api/v1/deployments/{id}/logs"), &account.token).await;
        assert_eq!(status, StatusCode::OK);
        let messages: Vec<_> = logs.as_array().unwrap().iter().map(|entry| entry["message"].as_str().unwrap()).collect();
        assert_eq!(messages, ["Deployment reactivated", "Deployment stopped", "Deployment created"]);
        for field in ["id", "level", "message", "created_at"] {
            assert!(logs[0][field].is_string(), "missing {field}: {logs}");
        }

        let (_, logs) = server.get(&format!("/api/v1/deployments/{id}/logs?limit=1"), &account.token).await;
        assert_eq!(logs.as_array().unwrap().len(), 1);
        let (_, logs) = server.get(&format!("/api/v1/deployments/{id}/logs?level=error"), &account.token).await;
        assert_eq!(logs, json!([]));
        let (status, body) = server.get(&format!("/api/v1/deployments/{id}/logs?level=debug"), &account.token).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        let (status, body) = server.get(&format!("/api/v1/deployments/{id}/logs?limit=0"), &account.token).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }

    async fn delete_hides_deployment(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("eve").await;
        let created = create_deployment(&server, &account.token, "Gone").await;
        let id = created["id"].as_str().unwrap();

        let (status, body) = server.delete(&format!("/api/v1/deployments/{id}"), &account.token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({ "success": true, "message": "Deployment deleted successfully" }));

        for path in [format!("/api/v1/deployments/{id}"), format!("/api/v1/deployments/{id}/logs")] {
            let (status, body) = server.get(&path, &account.token).await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        }
        let (status, body) = server.delete(&format!("/api/v1/deployments/{id}"), &account.token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        let (_, list) = server.get("/api/v1/deployments", &account.token).await;
        assert_eq!(list, json!([]));
    }

    async fn other_tenant_deployment_is_404(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let owner = server.register("fay").await;
        let stranger = server.register("gus").await;
        let stranger_api = server.api_token(&stranger, &["read", "write", "admin"]).await;
        let created = create_deployment(&server, &owner.token, "Private").await;
        let id = created["id"].as_str().unwrap();

        for token in [&stranger.token, &stranger_api] {
            let (status, body) = server.get(&format!("/api/v1/deployments/{id}"), token).await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
            let (status, body) = server.get(&format!("/api/v1/deployments/{id}/logs"), token).await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
            let (status, body) =
                server.put(&format!("/api/v1/deployments/{id}/status"), token, &json!({ "status": "stopped" })).await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
            let (status, body) = server.delete(&format!("/api/v1/deployments/{id}"), token).await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
            let (_, list) = server.get("/api/v1/deployments", token).await;
            assert_eq!(list, json!([]));
        }
        let (status, body) = server.get(&format!("/api/v1/deployments/{id}"), &owner.token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "deploying");
    }

    async fn snapshot_record_carries_quota_period_start(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("ivy").await;
        let org = server.personal_org(&account).await;
        let created = create_deployment(&server, &account.token, "Quota").await;

        let snapshot = server.feed.changes_since(0).await.unwrap();
        let record = snapshot
            .upserts
            .iter()
            .find(|record| record.id.to_string() == created["id"].as_str().unwrap())
            .expect("the snapshot lists the new deployment");
        // Quota periods start on the UTC day the organization was created, like usage periods.
        let org_created: chrono::DateTime<chrono::Utc> = org["created_at"].as_str().unwrap().parse().unwrap();
        let day_start = org_created.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
        assert_eq!(record.period_start, Some(day_start));
    }
}
