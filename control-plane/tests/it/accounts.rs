//! Rate limits, the audit log and API token rotation.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::harness::{assert_error, create_deployment, read, TestServer};

fn header(response: &reqwest::Response, name: &str) -> u64 {
    response.headers().get(name).unwrap_or_else(|| panic!("missing {name} header")).to_str().unwrap().parse().unwrap()
}

/// Waits for the next one-minute window when fewer than 15 seconds of the current one are left,
/// so a test's counts do not straddle two windows.
async fn wait_for_fresh_window() {
    let second = chrono::Utc::now().timestamp() % 60;
    if second >= 45 {
        tokio::time::sleep(std::time::Duration::from_secs((60 - second) as u64 + 1)).await;
    }
}

fn redis_url() -> Option<String> {
    std::env::var("MOCKFORGE_TEST_REDIS_URL").ok().filter(|url| !url.is_empty())
}

/// Sends authenticated GETs until the organization's limit is used up and checks the 429.
/// `used` requests of this window were already counted.
async fn exhaust_limit(server: &TestServer, token: &str, limit: u64, used: u64) {
    for expected_remaining in (0..limit - used).rev() {
        let response = server.client.get(server.url("/api/v1/tokens")).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "x-ratelimit-limit"), limit);
        assert_eq!(header(&response, "x-ratelimit-remaining"), expected_remaining);
    }
    let response = server.client.get(server.url("/api/v1/tokens")).bearer_auth(token).send().await.unwrap();
    let retry_after = header(&response, "retry-after");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(header(&response, "x-ratelimit-remaining"), 0);
    let (status, body) = read(response).await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");
    assert_eq!(body["details"]["limit"], limit);
}

async fn audit_log(server: &TestServer, token: &str, org_id: &str, query: &str) -> Vec<Value> {
    let (status, body) = server.get(&format!("/api/v1/organizations/{org_id}/audit-logs{query}"), token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

backend_tests! {
    async fn rate_limit_headers_and_429(backend) {
        wait_for_fresh_window().await;
        let server = TestServer::start(backend, |config| {
            config.anonymous_requests_per_minute = 1000;
        })
        .await;
        let account = server.register("rita").await;

        // Free plan: 60 requests per minute per organization; registration counted against the IP.
        let response = server.client.get(server.url("/api/v1/tokens")).bearer_auth(&account.token).send().await.unwrap();
        assert_eq!(header(&response, "x-ratelimit-limit"), 60);
        assert_eq!(header(&response, "x-ratelimit-remaining"), 59);
        let now = chrono::Utc::now().timestamp() as u64;
        let reset = header(&response, "x-ratelimit-reset");
        assert!(reset > now, "reset {reset}, now {now}");
        assert!(reset <= now + 61, "reset {reset}, now {now}");
        exhaust_limit(&server, &account.token, 60, 1).await;

        // Another organization has its own counter.
        let other = server.register("sven").await;
        let (status, _) = server.get("/api/v1/tokens", &other.token).await;
        assert_eq!(status, StatusCode::OK);
    }

    async fn rate_limit_per_plan_and_ip(backend) {
        wait_for_fresh_window().await;
        let server = TestServer::start(backend, |config| {
            config.anonymous_requests_per_minute = 3;
            config.default_api_requests_per_minute = 1000;
            let mut free = config.plans.limits("free").unwrap().clone();
            free.requests_per_minute = Some(5);
            config.plans = mockforge_snapshot::PlanTable::with_configured([("free".to_owned(), free)].into());
        })
        .await;
        let account = server.register("tara").await;
        // The registration used one anonymous request; two are left for this IP.
        for remaining in [1, 0] {
            let response = server.client.get(server.url("/api/v1/status")).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(header(&response, "x-ratelimit-limit"), 3);
            assert_eq!(header(&response, "x-ratelimit-remaining"), remaining);
        }
        let (status, body) = server.request(Method::GET, "/api/v1/status", None, None).await;
        assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");
        // An invalid token counts as anonymous.
        let (status, body) = server.get("/api/v1/tokens", "not-a-valid-jwt").await;
        assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");

        // Authenticated requests count against the organization, not the IP.
        exhaust_limit(&server, &account.token, 5, 0).await;
        // Health probes are not limited.
        let response = server.client.get(server.url("/health")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("x-ratelimit-limit").is_none());
    }

    async fn rate_limit_shared_in_redis(backend) {
        let Some(url) = redis_url() else {
            eprintln!("MOCKFORGE_TEST_REDIS_URL is not set; skipped");
            return;
        };
        wait_for_fresh_window().await;
        let server = TestServer::start(backend, |config| {
            config.redis_url = Some(url.clone());
            config.anonymous_requests_per_minute = 1000;
        })
        .await;
        let account = server.register("ursula").await;
        let response = server.client.get(server.url("/api/v1/tokens")).bearer_auth(&account.token).send().await.unwrap();
        assert_eq!(header(&response, "x-ratelimit-remaining"), 59);

        // A second replica on the same database and Redis sees the same counter.
        let replica = server.restart().await;
        let response = replica.client.get(replica.url("/api/v1/tokens")).bearer_auth(&account.token).send().await.unwrap();
        assert_eq!(header(&response, "x-ratelimit-remaining"), 58);
    }

    async fn audit_log_records_mutations(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("victor").await;
        let org_id = server.personal_org(&account).await["id"].as_str().unwrap().to_owned();

        let response = server
            .client
            .post(server.url("/api/v1/tokens"))
            .bearer_auth(&account.token)
            .header("user-agent", "audit-test/1.0")
            .json(&json!({ "name": "Audited", "scopes": ["read"] }))
            .send()
            .await
            .unwrap();
        let (status, created) = read(response).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let (_, tokens) = server.get("/api/v1/tokens", &account.token).await;
        let token_id = tokens[0]["id"].as_str().unwrap().to_owned();
        let (status, _) = server.delete(&format!("/api/v1/tokens/{token_id}"), &account.token).await;
        assert_eq!(status, StatusCode::OK);

        let deployment = create_deployment(&server, &account.token, "Audited").await;
        let deployment_id = deployment["id"].as_str().unwrap();
        let path = format!("/api/v1/deployments/{deployment_id}/status");
        let (status, _) = server.put(&path, &account.token, &json!({ "status": "stopped" })).await;
        assert_eq!(status, StatusCode::OK);
        // A status that is already set changes nothing and records nothing.
        let (status, _) = server.put(&path, &account.token, &json!({ "status": "stopped" })).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = server.delete(&format!("/api/v1/deployments/{deployment_id}"), &account.token).await;
        assert_eq!(status, StatusCode::OK);

        let entries = audit_log(&server, &account.token, &org_id, "").await;
        let types: Vec<&str> = entries.iter().map(|entry| entry["event_type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            ["deployment_deleted", "deployment_status_changed", "deployment_created", "token_deleted", "token_created"]
        );
        let created = &entries[4];
        assert_eq!(created["org_id"], org_id.as_str());
        assert_eq!(created["user_id"], account.user_id.as_str());
        assert_eq!(created["ip_address"], "127.0.0.1");
        assert_eq!(created["user_agent"], "audit-test/1.0");
        assert_eq!(created["metadata"]["name"], "Audited");
        assert_eq!(created["metadata"]["token_id"], token_id.as_str());
        assert!(created["description"].as_str().unwrap().contains("Audited"));
        assert!(created["created_at"].is_string());
        assert!(created["id"].is_string());
        assert_eq!(entries[3]["metadata"]["token_id"], token_id.as_str());
        assert_eq!(entries[0]["metadata"]["deployment_id"], deployment_id);
        assert_eq!(entries[1]["metadata"]["status"], "stopped");
    }

    async fn audit_log_filters_and_paging(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("wanda").await;
        let org_id = server.personal_org(&account).await["id"].as_str().unwrap().to_owned();
        for _ in 0..3 {
            server.api_token(&account, &["read"]).await;
        }
        create_deployment(&server, &account.token, "Filtered").await;

        assert_eq!(audit_log(&server, &account.token, &org_id, "").await.len(), 4);
        let tokens = audit_log(&server, &account.token, &org_id, "?event_type=token_created").await;
        assert_eq!(tokens.len(), 3);
        let page = audit_log(&server, &account.token, &org_id, "?limit=2&offset=1").await;
        assert_eq!(page.len(), 2);
        assert_eq!(page[0]["event_type"], "token_created");
        let by_user = audit_log(&server, &account.token, &org_id, &format!("?user_id={}", account.user_id)).await;
        assert_eq!(by_user.len(), 4);
        let nobody = audit_log(&server, &account.token, &org_id, &format!("?user_id={}", uuid::Uuid::new_v4())).await;
        assert!(nobody.is_empty());

        for (query, parameter) in [
            ("?limit=0", "limit"),
            ("?limit=abc", "limit"),
            ("?limit=1001", "limit"),
            ("?offset=-1", "offset"),
            ("?user_id=nope", "user_id filter"),
        ] {
            let (status, body) = server.get(&format!("/api/v1/organizations/{org_id}/audit-logs{query}"), &account.token).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["parameter"], parameter, "{query}");
        }
        let (status, body) = server.get("/api/v1/organizations/not-a-uuid/audit-logs", &account.token).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }

    async fn audit_log_access_control(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let owner = server.register("xena").await;
        let stranger = server.register("yusuf").await;
        let org_id = server.personal_org(&owner).await["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/organizations/{org_id}/audit-logs");

        let (status, body) = server.request(Method::GET, &path, None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let (status, body) = server.get(&path, &stranger.token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        let stranger_token = server.api_token(&stranger, &["admin"]).await;
        let (status, body) = server.get(&path, &stranger_token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");

        let read = server.api_token(&owner, &["read"]).await;
        let (status, body) = server.get(&path, &read).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
        let admin = server.api_token(&owner, &["admin"]).await;
        let (status, body) = server.get(&path, &admin).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // The stranger's own log does not show the owner's entries.
        let stranger_org = server.personal_org(&stranger).await["id"].as_str().unwrap().to_owned();
        let entries = audit_log(&server, &stranger.token, &stranger_org, "").await;
        assert!(entries.iter().all(|entry| entry["org_id"] == stranger_org.as_str()));
        assert_eq!(entries.len(), 1);
    }

    async fn token_rotate_keeps_scopes(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("zoe").await;
        let org_id = server.personal_org(&account).await["id"].as_str().unwrap().to_owned();
        let request = json!({ "name": "CI/CD Token", "scopes": ["read", "write"], "expires_at": "2099-01-01T00:00:00Z" });
        let (_, created) = server.post("/api/v1/tokens", &account.token, &request).await;
        let old_id = created["id"].as_str().unwrap().to_owned();
        let old_secret = created["token"].as_str().unwrap().to_owned();

        let path = format!("/api/v1/tokens/{old_id}/rotate");
        let (status, rotated) = server.post(&path, &account.token, &json!({ "delete_old": false })).await;
        assert_eq!(status, StatusCode::OK, "{rotated}");
        assert_eq!(rotated["old_token_id"], old_id.as_str());
        assert_eq!(rotated["old_token_deleted"], false);
        assert_eq!(rotated["new_token_name"], "CI/CD Token (Rotated)");
        let new_secret = rotated["new_token"].as_str().unwrap().to_owned();
        assert!(new_secret.starts_with("mfx_"));
        let (status, _) = server.get("/api/v1/deployments", &new_secret).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = server.get("/api/v1/deployments", &old_secret).await;
        assert_eq!(status, StatusCode::OK);

        let (_, list) = server.get("/api/v1/tokens", &account.token).await;
        let new_entry = list.as_array().unwrap().iter().find(|token| token["id"] == rotated["new_token_id"]).unwrap().clone();
        assert_eq!(new_entry["scopes"], json!(["read", "write"]));
        assert!(new_entry["expires_at"].as_str().unwrap().starts_with("2099-01-01"));
        assert!(new_entry.get("token").is_none());

        let path = format!("/api/v1/tokens/{}/rotate", rotated["new_token_id"].as_str().unwrap());
        let (status, second) = server.post(&path, &account.token, &json!({ "new_name": "Second", "delete_old": true })).await;
        assert_eq!(status, StatusCode::OK, "{second}");
        assert_eq!(second["new_token_name"], "Second");
        assert_eq!(second["old_token_deleted"], true);
        let (status, body) = server.get("/api/v1/deployments", &new_secret).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        let entries = audit_log(&server, &account.token, &org_id, "?event_type=token_rotated").await;
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["metadata"]["old_token_deleted"], true);
        for entry in &entries {
            assert!(!entry.to_string().contains("mfx_"), "audit entry leaks a token: {entry}");
        }
    }

    async fn token_rotate_errors(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("abel").await;
        let stranger = server.register("bruno").await;
        let (_, created) = server.post("/api/v1/tokens", &account.token, &json!({ "name": "t", "scopes": ["read"] })).await;
        let id = created["id"].as_str().unwrap();
        let path = format!("/api/v1/tokens/{id}/rotate");

        let (status, body) = server.post(&path, &account.token, &json!({ "new_name": "", "delete_old": true })).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "new_name");
        let (status, body) = server.post(&path, &account.token, &json!({ "new_name": "x".repeat(101) })).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        let (status, body) = server.post(&path, &account.token, &json!({ "delete_old": "yes" })).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_JSON");
        let (status, body) = server.post("/api/v1/tokens/nope/rotate", &account.token, &json!({})).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        let missing = format!("/api/v1/tokens/{}/rotate", uuid::Uuid::new_v4());
        let (status, body) = server.post(&missing, &account.token, &json!({})).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");

        // Another tenant's token id is unknown.
        let (status, body) = server.post(&path, &stranger.token, &json!({ "delete_old": true })).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        let (status, body) = server.request(Method::POST, &path, None, Some(&json!({}))).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let write = server.api_token(&account, &["write"]).await;
        let (status, body) = server.post(&path, &write, &json!({})).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
        // The old token still works after every rejected rotation.
        let (_, list) = server.get("/api/v1/tokens", &account.token).await;
        assert_eq!(list.as_array().unwrap().len(), 2);
    }

    async fn rotation_status_lists_old_tokens(backend) {
        let server = TestServer::start(backend, |config| config.token_rotation_age_days = 30).await;
        let account = server.register("carla").await;
        let stranger = server.register("dmitri").await;
        server.api_token(&account, &["read"]).await;
        server.api_token(&stranger, &["read"]).await;

        let (status, list) = server.get("/api/v1/tokens/rotation-status", &account.token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list, json!([]));

        server.backdate_tokens(31).await;
        let (status, list) = server.get("/api/v1/tokens/rotation-status", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 1, "only the caller's organization: {list:?}");
        assert_eq!(list[0]["age_days"], 31);
        assert_eq!(list[0]["needs_rotation"], true);
        assert_eq!(list[0]["name"], "test token");
        assert!(list[0]["token_prefix"].as_str().unwrap().starts_with("mfx_"));
        assert!(list[0].get("token").is_none());
        assert!(list[0]["expires_at"].is_null());

        let (_, tokens) = server.get("/api/v1/tokens", &account.token).await;
        assert_eq!(tokens[0]["needs_rotation"], true);
        let (status, body) = server.request(Method::GET, "/api/v1/tokens/rotation-status", None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
}
