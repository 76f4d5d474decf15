//! Login lock, suspicious activities and logout.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::harness::{assert_error, read, TestServer, PASSWORD};

async fn login_from(
    server: &TestServer,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> (StatusCode, Value, Option<u64>) {
    let response = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    let retry_after = response.headers().get("retry-after").map(|value| value.to_str().unwrap().parse().unwrap());
    let (status, body) = read(response).await;
    (status, body, retry_after)
}

async fn login(server: &TestServer, email: &str, password: &str) -> (StatusCode, Value, Option<u64>) {
    login_from(server, &server.client, email, password).await
}

async fn activities(server: &TestServer, token: &str, query: &str) -> Vec<Value> {
    let (status, body) = server.get(&format!("/api/v1/security/suspicious-activities{query}"), token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

/// A client whose connections come from another loopback address.
fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().no_proxy().local_address(std::net::IpAddr::from(address)).build().unwrap()
}

/// Posts a JSON body of `size` bytes (`{}` padded with spaces) with `token`.
async fn post_padded(server: &TestServer, path: &str, token: &str, size: usize) -> (StatusCode, Value) {
    let body = format!("{{}}{}", " ".repeat(size - 2));
    let request = server.client.post(server.url(path)).bearer_auth(token).header("content-type", "application/json").body(body);
    read(request.send().await.unwrap()).await
}

backend_tests! {
    async fn raw_body_routes_reject_oversized_bodies(backend) {
        let server = TestServer::start(backend, |config| config.admin_emails = vec!["root@example.com".to_owned()]).await;
        let root = server.register("root").await;
        let limit = 1024 * 1024;
        let routes = [
            format!("/api/v1/security/suspicious-activities/{}/resolve", uuid::Uuid::new_v4()),
            "/api/v1/admin/plugins/add-header/verify".to_owned(),
        ];
        for path in &routes {
            let (status, body) = post_padded(&server, path, &root.token, limit + 1).await;
            assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
            assert_eq!(body["details"]["max_bytes"], limit, "{path}");
            assert!(body["error"].as_str().unwrap().contains("1048576"), "{path}: {body}");
        }
        // A body at the limit passes the size check and reaches the handler.
        let (status, body) = post_padded(&server, &routes[0], &root.token, limit).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    }

    async fn login_locks_after_five_failures(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("hanna").await;
        for attempt in 1..=5 {
            let (status, body, _) = login(&server, &account.email, "wrong password").await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
            assert!(!body.to_string().contains("wrong password"), "attempt {attempt}: {body}");
        }
        // Locked: even the right password is rejected.
        let (status, body, retry_after) = login(&server, &account.email, PASSWORD).await;
        assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");
        let retry_after = retry_after.expect("Retry-After header");
        assert!((800..=900).contains(&retry_after), "Retry-After {retry_after}");
        // The e-mail comparison ignores case.
        let (status, _, _) = login(&server, &account.email.to_uppercase(), PASSWORD).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

        // Another account from the same address is not locked yet.
        let other = server.register("ivo").await;
        let (status, body, _) = login(&server, &other.email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let found = activities(&server, &account.token, "").await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0]["activity_type"], "multiple_failed_logins");
        assert_eq!(found[0]["severity"], "high");
        assert_eq!(found[0]["user_id"], account.user_id.as_str());
        assert_eq!(found[0]["metadata"]["email"], account.email.as_str());
        assert_eq!(found[0]["ip_address"], "127.0.0.1");
        assert_eq!(found[0]["resolved"], false);
        assert!(activities(&server, &other.token, "").await.is_empty());
    }

    async fn login_locks_per_ip(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("jana").await;
        for n in 0..10 {
            let (status, _, _) = login(&server, &format!("nobody{n}@example.com"), "guess").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, body, retry_after) = login(&server, &account.email, PASSWORD).await;
        assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED");
        assert!(retry_after.is_some());
        // Another address can still log in.
        let (status, body, _) = login_from(&server, &client_from([127, 0, 0, 2]), &account.email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn new_login_address_is_reported(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("karl").await;
        let (status, _, _) = login(&server, &account.email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = login(&server, &account.email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        assert!(activities(&server, &account.token, "").await.is_empty());

        let (status, _, _) = login_from(&server, &client_from([127, 0, 0, 3]), &account.email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        let found = activities(&server, &account.token, "").await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["activity_type"], "new_login_ip");
        assert_eq!(found[0]["severity"], "low");
        assert_eq!(found[0]["ip_address"], "127.0.0.3");
    }

    async fn rapid_token_creation_is_reported(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("lena").await;
        for _ in 0..10 {
            server.api_token(&account, &["read"]).await;
        }
        assert!(activities(&server, &account.token, "").await.is_empty());
        server.api_token(&account, &["read"]).await;
        server.api_token(&account, &["read"]).await;
        let found = activities(&server, &account.token, "").await;
        assert_eq!(found.len(), 1, "reported once: {found:?}");
        assert_eq!(found[0]["activity_type"], "rapid_token_creation");
        assert_eq!(found[0]["severity"], "medium");
    }

    async fn suspicious_activity_filters_and_resolve(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("mona").await;
        let stranger = server.register("nils").await;
        let org_id = server.personal_org(&account).await["id"].as_str().unwrap().to_owned();
        for _ in 0..5 {
            login(&server, &account.email, "wrong").await;
        }
        for _ in 0..11 {
            server.api_token(&account, &["read"]).await;
        }
        assert_eq!(activities(&server, &account.token, "").await.len(), 2);
        let high = activities(&server, &account.token, "?severity=high").await;
        assert_eq!(high.len(), 1);
        assert_eq!(activities(&server, &account.token, "?severity=critical").await.len(), 0);
        assert_eq!(activities(&server, &account.token, "?limit=1").await.len(), 1);
        assert_eq!(activities(&server, &account.token, &format!("?org_id={org_id}")).await.len(), 2);
        assert_eq!(activities(&server, &account.token, &format!("?user_id={}", account.user_id)).await.len(), 2);
        assert_eq!(activities(&server, &account.token, &format!("?user_id={}", stranger.user_id)).await.len(), 0);
        for (query, parameter) in [
            ("?severity=extreme", "severity"),
            ("?limit=0", "limit"),
            ("?limit=x", "limit"),
            ("?org_id=nope", "org_id filter"),
            ("?user_id=nope", "user_id filter"),
        ] {
            let (status, body) = server.get(&format!("/api/v1/security/suspicious-activities{query}"), &account.token).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["parameter"], parameter, "{query}");
        }

        // Another tenant can neither list nor resolve them.
        let (status, body) = server.get(&format!("/api/v1/security/suspicious-activities?org_id={org_id}"), &stranger.token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        let id = high[0]["id"].as_str().unwrap();
        let path = format!("/api/v1/security/suspicious-activities/{id}/resolve");
        let (status, body) = server.post(&path, &stranger.token, &json!({})).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        let read_token = server.api_token(&account, &["read"]).await;
        let (status, body) = server.get("/api/v1/security/suspicious-activities", &read_token).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
        let (status, body) = server.request(Method::GET, "/api/v1/security/suspicious-activities", None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        let (status, body) = server.post(&path, &account.token, &json!({ "resolved_by_user_id": stranger.user_id })).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "resolved_by_user_id");
        let (status, body) = server.post(&path, &account.token, &json!({ "resolved_by_user_id": "x" })).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        let missing = format!("/api/v1/security/suspicious-activities/{}/resolve", uuid::Uuid::new_v4());
        let (status, body) = server.post(&missing, &account.token, &json!({})).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");

        let (status, body) = server.post(&path, &account.token, &json!({ "resolved_by_user_id": account.user_id })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(body["activity_id"], id);
        let resolved = activities(&server, &account.token, "?severity=high").await;
        assert_eq!(resolved[0]["resolved"], true);
        assert_eq!(resolved[0]["resolved_by"], account.user_id.as_str());
        // Without a body.
        let response = server.client.post(server.url(&path)).bearer_auth(&account.token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let (_, entries) = server.get(&format!("/api/v1/organizations/{org_id}/audit-logs?event_type=suspicious_activity_resolved"), &account.token).await;
        assert_eq!(entries.as_array().unwrap().len(), 2);
    }

    async fn logout_revokes_jwts(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("olga").await;
        let (_, session, _) = login(&server, &account.email, PASSWORD).await;
        let second = session["token"].as_str().unwrap().to_owned();
        let api_token = server.api_token(&account, &["read", "write", "admin"]).await;

        let (status, body) = server.request(Method::POST, "/api/v1/auth/logout", Some(&api_token), None).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        let (status, body) = server.request(Method::POST, "/api/v1/auth/logout", None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        let (status, body) = server.request(Method::POST, "/api/v1/auth/logout", Some(&account.token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for token in [&account.token, &second] {
            let (status, body) = server.get("/api/v1/organizations", token).await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
            assert!(body["error"].as_str().unwrap().contains("revoked"), "{body}");
            let (status, body) = server.request(Method::POST, "/api/v1/auth/token/refresh", None, Some(&json!({ "token": token }))).await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        }
        // API tokens are not sessions and keep working.
        let (status, _) = server.get("/api/v1/organizations", &api_token).await;
        assert_eq!(status, StatusCode::OK);

        let (status, session, _) = login(&server, &account.email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        let fresh = session["token"].as_str().unwrap();
        let (status, _) = server.get("/api/v1/organizations", fresh).await;
        assert_eq!(status, StatusCode::OK);
        let (status, refreshed) = server.request(Method::POST, "/api/v1/auth/token/refresh", None, Some(&json!({ "token": fresh }))).await;
        assert_eq!(status, StatusCode::OK, "{refreshed}");
    }
}
