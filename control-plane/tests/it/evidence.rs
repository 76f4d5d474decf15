//! Cross-cutting checks: no secret reaches the logs, and every endpoint that takes an id treats
//! another organization's id as unknown.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::Sha256;

use crate::backend_tests;
use crate::harness::{assert_error, create_deployment, TestServer, JWT_SECRET, PASSWORD};

/// Everything every test in this binary logs after the first call, at every level.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
            let writer = SharedWriter(buffer.clone());
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in the test binary");
            buffer
        })
        .clone()
}

#[derive(Clone)]
struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const WEBHOOK_SECRET: &str = "whsec_evidence_secret_9f8e7d";
const STRIPE_KEY: &str = "sk_test_evidence_key_1a2b3c";
const WRONG_PASSWORD: &str = "not-the-password-4711";

async fn fake_stripe() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/v1/checkout/sessions",
        axum::routing::post(|| async {
            axum::Json(json!({ "id": "cs_evidence", "url": "https://checkout.stripe.test/cs_evidence" }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

backend_tests! {
    async fn secrets_never_logged(backend) {
        let logs = captured_logs();
        let stripe = fake_stripe().await;
        let server = TestServer::start(backend, |config| {
            config.stripe_secret_key = Some(STRIPE_KEY.to_owned());
            config.stripe_webhook_secret = Some(WEBHOOK_SECRET.to_owned());
            config.stripe_api_base = format!("http://{stripe}");
            config.stripe_price_ids = [("pro".to_owned(), "price_pro".to_owned())].into();
        })
        .await;
        let account = server.register("quirin").await;
        let org_id = server.personal_org(&account).await["id"].as_str().unwrap().to_owned();
        let mut secrets = vec![PASSWORD.to_owned(), WRONG_PASSWORD.to_owned(), JWT_SECRET.to_owned(), WEBHOOK_SECRET.to_owned(), STRIPE_KEY.to_owned(), account.token.clone()];

        let login = json!({ "email": account.email, "password": WRONG_PASSWORD });
        let (status, _) = server.request(Method::POST, "/api/v1/auth/login", None, Some(&login)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let login = json!({ "email": account.email, "password": PASSWORD });
        let (status, session) = server.request(Method::POST, "/api/v1/auth/login", None, Some(&login)).await;
        assert_eq!(status, StatusCode::OK);
        let jwt = session["token"].as_str().unwrap().to_owned();
        secrets.push(jwt.clone());
        let (status, refreshed) = server.request(Method::POST, "/api/v1/auth/token/refresh", None, Some(&json!({ "token": jwt }))).await;
        assert_eq!(status, StatusCode::OK);
        secrets.push(refreshed["token"].as_str().unwrap().to_owned());

        let (_, created) = server.post("/api/v1/tokens", &jwt, &json!({ "name": "logged?", "scopes": ["read", "write", "admin"] })).await;
        let api_token = created["token"].as_str().unwrap().to_owned();
        secrets.push(api_token.clone());
        let deployment = create_deployment(&server, &api_token, "Secretive").await;
        let (status, _) = server.get(&format!("/api/v1/deployments/{}", deployment["id"].as_str().unwrap()), &api_token).await;
        assert_eq!(status, StatusCode::OK);
        let (_, rotated) = server.post(&format!("/api/v1/tokens/{}/rotate", created["id"].as_str().unwrap()), &jwt, &json!({ "delete_old": true })).await;
        secrets.push(rotated["new_token"].as_str().unwrap().to_owned());
        let (status, _) = server.get("/api/v1/tokens", &api_token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let request = json!({ "plan": "pro", "success_url": "https://a.test/ok", "cancel_url": "https://a.test/no" });
        let (status, _) = server.post("/api/v1/billing/checkout", &jwt, &request).await;
        assert_eq!(status, StatusCode::OK);
        let event = json!({ "id": "evt_evidence", "type": "checkout.session.completed",
            "data": { "object": { "metadata": { "org_id": org_id, "plan": "pro" } } } }).to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.{event}").as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        secrets.push(signature.clone());
        for header in [format!("t={timestamp},v1={signature}"), format!("t={timestamp},v1={}", "0".repeat(64))] {
            server
                .client
                .post(server.url("/api/v1/billing/webhook"))
                .header("stripe-signature", header)
                .body(event.clone())
                .send()
                .await
                .unwrap();
        }
        let byok_key = "sk-evidence-byok-key-77aa88bb";
        secrets.push(byok_key.to_owned());
        let (status, _) = server.put("/api/v1/settings/byok", &jwt, &json!({ "provider": "openai", "api_key": byok_key })).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = server.put("/api/v1/settings/byok", &jwt, &json!({ "provider": "openai", "api_key": "bad key with spaces" })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        secrets.push("bad key with spaces".to_owned());
        let (status, _) = server.request(Method::POST, "/api/v1/auth/logout", Some(&jwt), None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = server.get("/api/v1/tokens", &jwt).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
        assert!(text.contains("created an API token"), "the capture must see the control plane's logs");
        assert!(text.contains("processed a Stripe event"));
        for (index, secret) in secrets.iter().enumerate() {
            assert!(!text.contains(secret.as_str()), "secret number {index} appears in the logs");
        }
    }

    async fn other_tenant_ids_are_404(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let owner = server.register("rosa").await;
        let stranger = server.register("silas").await;
        let org_id = server.personal_org(&owner).await["id"].as_str().unwrap().to_owned();
        let deployment = create_deployment(&server, &owner.token, "Owned").await;
        let deployment_id = deployment["id"].as_str().unwrap().to_owned();
        let (_, token) = server.post("/api/v1/tokens", &owner.token, &json!({ "name": "owned", "scopes": ["read"] })).await;
        let token_id = token["id"].as_str().unwrap().to_owned();
        for _ in 0..5 {
            let login = json!({ "email": owner.email, "password": "wrong" });
            server.request(Method::POST, "/api/v1/auth/login", None, Some(&login)).await;
        }
        let (_, found) = server.get("/api/v1/security/suspicious-activities", &owner.token).await;
        let activity_id = found[0]["id"].as_str().unwrap().to_owned();

        let stranger_api = server.api_token(&stranger, &["read", "write", "admin"]).await;
        let cases = [
            (Method::GET, format!("/api/v1/organizations/{org_id}"), None),
            (Method::GET, format!("/api/v1/organizations/{org_id}/members"), None),
            (Method::GET, format!("/api/v1/organizations/{org_id}/audit-logs"), None),
            (Method::GET, format!("/api/v1/security/suspicious-activities?org_id={org_id}"), None),
            (Method::POST, format!("/api/v1/security/suspicious-activities/{activity_id}/resolve"), Some(json!({}))),
            (Method::DELETE, format!("/api/v1/tokens/{token_id}"), None),
            (Method::POST, format!("/api/v1/tokens/{token_id}/rotate"), Some(json!({ "delete_old": true }))),
            (Method::GET, format!("/api/v1/deployments/{deployment_id}"), None),
            (Method::PUT, format!("/api/v1/deployments/{deployment_id}/status"), Some(json!({ "status": "stopped" }))),
            (Method::GET, format!("/api/v1/deployments/{deployment_id}/logs"), None),
            (Method::GET, format!("/api/v1/deployments/{deployment_id}/metrics"), None),
            (Method::DELETE, format!("/api/v1/deployments/{deployment_id}"), None),
        ];
        for credential in [&stranger.token, &stranger_api] {
            for (method, path, body) in &cases {
                let (status, response) = server.request(method.clone(), path, Some(credential), body.as_ref()).await;
                assert_error(status, &response, StatusCode::NOT_FOUND, "NOT_FOUND");
                assert!(response["details"]["resource"].is_string(), "{method} {path}: {response}");
            }
            // Naming the other organization in the header is 404 as well.
            let response = server
                .client
                .get(server.url("/api/v1/deployments"))
                .bearer_auth(credential)
                .header("x-organization-id", &org_id)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
        }
        // Nothing changed for the owner.
        let (status, body) = server.get(&format!("/api/v1/deployments/{deployment_id}"), &owner.token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "deploying");
        let (_, tokens) = server.get("/api/v1/tokens", &owner.token).await;
        assert_eq!(tokens.as_array().unwrap().len(), 1);
        let (_, found) = server.get("/api/v1/security/suspicious-activities", &owner.token).await;
        assert_eq!(found[0]["resolved"], false);
    }
}
