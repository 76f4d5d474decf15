//! Bring-your-own-key settings.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::harness::{assert_error, TestServer};

const PROVIDER_KEY: &str = "sk-test-provider-key-5f4e3d2c1b";

backend_tests! {
    async fn byok_set_get_delete(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("tilda").await;
        let org_id = server.personal_org(&account).await["id"].as_str().unwrap().to_owned();

        let (status, body) = server.get("/api/v1/settings/byok", &account.token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["enabled"], false);

        let request = json!({ "provider": "openai", "api_key": PROVIDER_KEY, "monthly_token_limit": 100000 });
        let (status, body) = server.put("/api/v1/settings/byok", &account.token, &request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["enabled"], true);
        assert_eq!(body["provider"], "openai");
        assert_eq!(body["api_key_masked"], "sk-...***");
        assert_eq!(body["monthly_token_limit"], 100000);
        assert!(!body.to_string().contains(PROVIDER_KEY));

        let (_, body) = server.get("/api/v1/settings/byok", &account.token).await;
        assert_eq!(body["api_key_masked"], "sk-...***");
        assert!(!body.to_string().contains(PROVIDER_KEY));
        let (_, usage) = server.get("/api/v1/usage", &account.token).await;
        assert_eq!(usage["ai_tokens_limit"], 100000);

        // The limit can change without sending the key again.
        let (status, body) = server.put("/api/v1/settings/byok", &account.token, &json!({ "provider": "openai", "monthly_token_limit": 5 })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["monthly_token_limit"], 5);
        assert_eq!(body["api_key_masked"], "sk-...***");

        // The key is stored encrypted only.
        if let Ok(mut bytes) = std::fs::read(server.data_dir().join("mockforge.db")) {
            bytes.extend(std::fs::read(server.data_dir().join("mockforge.db-wal")).unwrap_or_default());
            assert!(!String::from_utf8_lossy(&bytes).contains(PROVIDER_KEY));
        }
        let master_key = server.data_dir().join("master-key");
        assert!(master_key.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&master_key).unwrap().permissions().mode() & 0o777, 0o600);
        }

        let (_, entries) = server.get(&format!("/api/v1/organizations/{org_id}/audit-logs?event_type=byok_updated"), &account.token).await;
        assert_eq!(entries.as_array().unwrap().len(), 2);
        assert!(!entries.to_string().contains(PROVIDER_KEY));

        let (status, body) = server.delete("/api/v1/settings/byok", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["success"], true);
        let (_, body) = server.get("/api/v1/settings/byok", &account.token).await;
        assert_eq!(body["enabled"], false);
        let (status, body) = server.delete("/api/v1/settings/byok", &account.token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    }

    async fn byok_validation_and_access(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("udo").await;
        let stranger = server.register("vera").await;
        let cases = [
            (json!({ "provider": "skynet", "api_key": PROVIDER_KEY }), "provider"),
            (json!({ "provider": "openai", "api_key": "short" }), "api_key"),
            (json!({ "provider": "openai", "api_key": "has white space 123" }), "api_key"),
            (json!({ "provider": "openai" }), "api_key"),
            (json!({ "provider": "openai", "api_key": PROVIDER_KEY, "monthly_token_limit": 0 }), "monthly_token_limit"),
        ];
        for (request, field) in cases {
            let (status, body) = server.put("/api/v1/settings/byok", &account.token, &request).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["field"], field, "{request}");
            assert!(!body.to_string().contains("white space"), "the key is not echoed: {body}");
        }
        let (status, body) = server.put("/api/v1/settings/byok", &account.token, &json!({ "provider": 5 })).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_JSON");

        let request = json!({ "provider": "anthropic", "api_key": PROVIDER_KEY });
        let read_token = server.api_token(&account, &["read", "write"]).await;
        let (status, body) = server.put("/api/v1/settings/byok", &read_token, &request).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
        let (status, body) = server.request(Method::GET, "/api/v1/settings/byok", None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        let (status, _) = server.put("/api/v1/settings/byok", &account.token, &request).await;
        assert_eq!(status, StatusCode::OK);
        // Settings belong to one organization.
        let (_, body) = server.get("/api/v1/settings/byok", &stranger.token).await;
        assert_eq!(body["enabled"], false);
        let (status, _) = server.delete("/api/v1/settings/byok", &stranger.token).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, body) = server.get("/api/v1/settings/byok", &read_token).await;
        assert_eq!(body["provider"], "anthropic");
    }
}
