use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::json;
use sha2::Digest;

use crate::backend_tests;
use crate::harness::{assert_error, create_deployment, TestServer};

backend_tests! {
    async fn token_create_list_delete(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("ken").await;

        let expires_at = "2099-12-31T23:59:59Z";
        let request = json!({ "name": "CI/CD Token", "scopes": ["read", "write"], "expires_at": expires_at });
        let (status, created) = server.post("/api/v1/tokens", &account.token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let token = created["token"].as_str().unwrap();
        assert!(token.starts_with("mfx_"));
        // 32 bytes in URL-safe base64 without padding are 43 characters.
        assert_eq!(token.len(), 4 + 43);
        assert!(token[4..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(created["token_prefix"].as_str().unwrap(), &token[..8]);
        assert_eq!(created["name"], "CI/CD Token");
        assert_eq!(created["scopes"], json!(["read", "write"]));
        assert_eq!(created["expires_at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(), expires_at.parse::<DateTime<Utc>>().unwrap());
        assert!(created["created_at"].is_string());
        let id = created["id"].as_str().unwrap().to_owned();

        let (status, list) = server.get("/api/v1/tokens", &account.token).await;
        assert_eq!(status, StatusCode::OK);
        let entry = &list[0];
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(entry["id"], created["id"]);
        assert_eq!(entry["token_prefix"], created["token_prefix"]);
        assert_eq!(entry["age_days"], 0);
        assert_eq!(entry["needs_rotation"], false);
        assert!(entry["last_used_at"].is_null());
        assert!(entry.get("token").is_none(), "the full token must not be listed: {entry}");
        assert!(!list.to_string().contains(token));

        let (status, deleted) = server.delete(&format!("/api/v1/tokens/{id}"), &account.token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(deleted, json!({ "success": true, "message": "API token deleted successfully" }));
        let (status, body) = server.get("/api/v1/organizations", token).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let (status, body) = server.delete(&format!("/api/v1/tokens/{id}"), &account.token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    }

    async fn token_stored_only_as_hash(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("leo").await;
        let token = server.api_token(&account, &["read"]).await;
        let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        // Only SQLite keeps its database in the data directory. In WAL mode recent writes are in
        // the `-wal` file.
        if let Ok(mut bytes) = std::fs::read(server.data_dir().join("mockforge.db")) {
            bytes.extend(std::fs::read(server.data_dir().join("mockforge.db-wal")).unwrap_or_default());
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&token));
            assert!(text.contains(&hash));
        }
    }

    async fn token_validation(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("mia").await;
        let cases = [
            (json!({ "name": "t", "scopes": ["read", "superuser"] }), "scopes"),
            (json!({ "name": "t", "scopes": [] }), "scopes"),
            (json!({ "name": "", "scopes": ["read"] }), "name"),
            (json!({ "name": "t", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z" }), "expires_at"),
            (json!({ "name": "t", "scopes": ["read"], "expires_at": "tomorrow" }), "expires_at"),
        ];
        for (body, field) in cases {
            let (status, response) = server.post("/api/v1/tokens", &account.token, &body).await;
            assert_error(status, &response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(response["details"]["field"], field, "case {body}");
        }
    }

    async fn token_scopes_enforced(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("nick").await;
        let read = server.api_token(&account, &["read"]).await;
        let write = server.api_token(&account, &["write"]).await;
        let admin = server.api_token(&account, &["admin"]).await;
        let deployment = json!({ "name": "Scoped", "openapi_spec": crate::harness::petstore() });

        let (status, _) = server.get("/api/v1/deployments", &read).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = server.post("/api/v1/deployments", &read, &deployment).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
        assert_eq!(body["details"]["required_scope"], "write");
        assert!(body["error"].as_str().unwrap().contains("write"));

        let (status, body) = server.get("/api/v1/deployments", &write).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
        assert_eq!(body["details"]["required_scope"], "read");
        let (status, created) = server.post("/api/v1/deployments", &write, &deployment).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");

        for token in [&read, &write] {
            let (status, body) = server.post("/api/v1/tokens", token, &json!({ "name": "x", "scopes": ["read"] })).await;
            assert_error(status, &body, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
            assert_eq!(body["details"]["required_scope"], "admin");
        }
        let (status, body) = server.post("/api/v1/tokens", &admin, &json!({ "name": "x", "scopes": ["read"] })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().unwrap();
        let (status, body) = server.delete(&format!("/api/v1/tokens/{id}"), &write).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
        let (status, _) = server.delete(&format!("/api/v1/tokens/{id}"), &admin).await;
        assert_eq!(status, StatusCode::OK);
    }

    async fn expired_token_rejected(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("olivia").await;
        let expires_at = (Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
        let request = json!({ "name": "short", "scopes": ["read"], "expires_at": expires_at });
        let (status, created) = server.post("/api/v1/tokens", &account.token, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let token = created["token"].as_str().unwrap();
        let (status, _) = server.get("/api/v1/deployments", token).await;
        assert_eq!(status, StatusCode::OK);

        tokio::time::sleep(Duration::from_millis(2500)).await;
        let (status, body) = server.get("/api/v1/deployments", token).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        assert!(body["error"].as_str().unwrap().contains("expired"), "{body}");
    }

    async fn other_tenant_token_is_404(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let owner = server.register("peggy").await;
        let stranger = server.register("quentin").await;
        let (_, created) = server.post("/api/v1/tokens", &owner.token, &json!({ "name": "t", "scopes": ["read"] })).await;
        let id = created["id"].as_str().unwrap();

        let (status, body) = server.delete(&format!("/api/v1/tokens/{id}"), &stranger.token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        let (_, list) = server.get("/api/v1/tokens", &stranger.token).await;
        assert_eq!(list, json!([]));
        let (_, list) = server.get("/api/v1/tokens", &owner.token).await;
        assert_eq!(list.as_array().unwrap().len(), 1);
    }

    async fn old_token_needs_rotation(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("sam").await;
        server.api_token(&account, &["read"]).await;

        server.backdate_tokens(90).await;
        let (_, list) = server.get("/api/v1/tokens", &account.token).await;
        assert_eq!(list[0]["age_days"], 90);
        assert_eq!(list[0]["needs_rotation"], false);

        server.backdate_tokens(91).await;
        let (_, list) = server.get("/api/v1/tokens", &account.token).await;
        assert_eq!(list[0]["age_days"], 91);
        assert_eq!(list[0]["needs_rotation"], true);
    }

    async fn last_used_survives_restart(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("rupert").await;
        let token = server.api_token(&account, &["read"]).await;
        create_deployment(&server, &account.token, "Used").await;

        let before = Utc::now();
        let (status, _) = server.get("/api/v1/deployments", &token).await;
        assert_eq!(status, StatusCode::OK);

        // The pending use shows up before any flush.
        let (_, list) = server.get("/api/v1/tokens", &account.token).await;
        let last_used: DateTime<Utc> = list[0]["last_used_at"].as_str().expect("last_used_at set").parse().unwrap();
        assert!(last_used >= before - chrono::Duration::seconds(1));

        // A graceful stop flushes it to the database.
        let server = server.restart().await;
        let (_, list) = server.get("/api/v1/tokens", &account.token).await;
        let stored: DateTime<Utc> = list[0]["last_used_at"].as_str().expect("last_used_at stored").parse().unwrap();
        assert_eq!(stored, last_used);
    }
}
