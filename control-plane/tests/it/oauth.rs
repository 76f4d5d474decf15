//! Sign-in with GitHub and Google against a fake OAuth provider on loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mockforge_control_plane::config::OAuthProvider;
use mockforge_control_plane::ControlPlaneConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::backend_tests;
use crate::harness::{assert_error, TestServer};

const CODE: &str = "fake-authorization-code";
const ACCESS_TOKEN: &str = "fake-access-token";

/// What the fake provider returns and the PKCE challenge it checks the verifier against.
#[derive(Default)]
struct FakeProvider {
    code_challenge: Option<String>,
    github_user: Value,
    github_emails: Value,
    google_user: Value,
}

type Shared = Arc<Mutex<FakeProvider>>;

async fn token(State(fake): State<Shared>, body: String) -> (AxumStatus, Json<Value>) {
    let form: Vec<(String, String)> = reqwest::Url::parse(&format!("http://form/?{body}"))
        .unwrap()
        .query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let field = |name: &str| form.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone()).unwrap_or_default();
    let verifier = field("code_verifier");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let expected = fake.lock().unwrap().code_challenge.clone();
    let valid = field("grant_type") == "authorization_code"
        && field("code") == CODE
        && field("client_id") == "test-client"
        && field("client_secret") == "test-secret"
        && field("redirect_uri").ends_with("/callback")
        && Some(challenge) == expected;
    if !valid {
        return (AxumStatus::BAD_REQUEST, Json(json!({ "error": "invalid_grant" })));
    }
    (AxumStatus::OK, Json(json!({ "access_token": ACCESS_TOKEN, "token_type": "bearer" })))
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|value| value.to_str().ok()) == Some(&format!("Bearer {ACCESS_TOKEN}"))
}

async fn respond(headers: HeaderMap, body: Value) -> (AxumStatus, Json<Value>) {
    if authorized(&headers) {
        (AxumStatus::OK, Json(body))
    } else {
        (AxumStatus::UNAUTHORIZED, Json(json!({ "message": "Bad credentials" })))
    }
}

async fn github_user(State(fake): State<Shared>, headers: HeaderMap) -> (AxumStatus, Json<Value>) {
    let body = fake.lock().unwrap().github_user.clone();
    respond(headers, body).await
}

async fn github_emails(State(fake): State<Shared>, headers: HeaderMap) -> (AxumStatus, Json<Value>) {
    let body = fake.lock().unwrap().github_emails.clone();
    respond(headers, body).await
}

async fn google_user(State(fake): State<Shared>, headers: HeaderMap) -> (AxumStatus, Json<Value>) {
    let body = fake.lock().unwrap().google_user.clone();
    respond(headers, body).await
}

async fn fake_provider() -> (SocketAddr, Shared) {
    let fake: Shared = Arc::new(Mutex::new(FakeProvider {
        github_user: json!({ "id": 42, "login": "octo cat", "email": null }),
        github_emails: json!([
            { "email": "old@example.com", "verified": true, "primary": false },
            { "email": "octo@example.com", "verified": true, "primary": true },
        ]),
        google_user: json!({ "sub": "1234", "email": "gina@example.com", "email_verified": true }),
        ..FakeProvider::default()
    }));
    let router = Router::new()
        .route("/token", post(token))
        .route("/user", get(github_user))
        .route("/user/emails", get(github_emails))
        .route("/userinfo", get(google_user))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (address, fake)
}

fn configure(config: &mut ControlPlaneConfig, provider: SocketAddr, names: &[&str]) {
    for name in names {
        let base = format!("http://{provider}");
        let mut endpoints = match *name {
            "github" => OAuthProvider::github("test-client", "test-secret"),
            _ => OAuthProvider::google("test-client", "test-secret"),
        };
        endpoints.authorize_url = format!("{base}/authorize");
        endpoints.token_url = format!("{base}/token");
        endpoints.user_info_url = format!("{base}/{}", if *name == "github" { "user" } else { "userinfo" });
        if endpoints.emails_url.is_some() {
            endpoints.emails_url = Some(format!("{base}/user/emails"));
        }
        config.oauth_providers.insert((*name).to_owned(), endpoints);
    }
}

/// Requests the authorize redirect, stores its PKCE challenge in the fake provider and returns
/// the query parameters of the redirect.
async fn authorize(server: &TestServer, fake: &Shared, name: &str) -> Vec<(String, String)> {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client.get(server.url(&format!("/api/v1/auth/oauth/{name}/authorize"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = reqwest::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/authorize");
    let parameters: Vec<(String, String)> = location.query_pairs().map(|(key, value)| (key.into_owned(), value.into_owned())).collect();
    let challenge = parameters.iter().find(|(key, _)| key == "code_challenge").map(|(_, value)| value.clone());
    fake.lock().unwrap().code_challenge = challenge;
    parameters
}

fn parameter(parameters: &[(String, String)], name: &str) -> String {
    parameters.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone()).unwrap_or_else(|| panic!("no {name} in {parameters:?}"))
}

async fn callback(server: &TestServer, name: &str, state: &str) -> (StatusCode, Value) {
    let path = format!("/api/v1/auth/oauth/{name}/callback?code={CODE}&state={state}");
    server.request(Method::GET, &path, None, None).await
}

backend_tests! {
    async fn oauth_github_creates_then_links(backend) {
        let (provider, fake) = fake_provider().await;
        let server = TestServer::start(backend, |config| configure(config, provider, &["github"])).await;

        let parameters = authorize(&server, &fake, "github").await;
        assert_eq!(parameter(&parameters, "response_type"), "code");
        assert_eq!(parameter(&parameters, "client_id"), "test-client");
        assert_eq!(parameter(&parameters, "code_challenge_method"), "S256");
        assert_eq!(parameter(&parameters, "redirect_uri"), "http://localhost:8080/api/v1/auth/oauth/github/callback");
        let state = parameter(&parameters, "state");

        let (status, body) = callback(&server, "github", &state).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["username"], "octo-cat");
        let user_id = body["user_id"].as_str().unwrap().to_owned();
        let token = body["token"].as_str().unwrap().to_owned();
        let (status, organizations) = server.get("/api/v1/organizations", &token).await;
        assert_eq!(status, StatusCode::OK, "{organizations}");
        assert_eq!(organizations.as_array().unwrap().len(), 1);

        // The state works once.
        let (status, body) = callback(&server, "github", &state).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "state");

        // A second sign-in finds the same account by its e-mail address.
        let state = parameter(&authorize(&server, &fake, "github").await, "state");
        let (status, body) = callback(&server, "github", &state).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["user_id"], user_id.as_str());
    }

    async fn oauth_links_registered_account(backend) {
        let (provider, fake) = fake_provider().await;
        let server = TestServer::start(backend, |config| configure(config, provider, &["github", "google"])).await;
        let account = server.register("gina").await;

        let state = parameter(&authorize(&server, &fake, "google").await, "state");
        let (status, body) = callback(&server, "google", &state).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["user_id"], account.user_id.as_str());
    }

    async fn oauth_rejects_bad_sign_ins(backend) {
        let (provider, fake) = fake_provider().await;
        let server = TestServer::start(backend, |config| configure(config, provider, &["github"])).await;

        for path in ["/api/v1/auth/oauth/google/authorize", "/api/v1/auth/oauth/gitlab/authorize", "/api/v1/auth/oauth/google/callback?code=x&state=y"] {
            let (status, body) = server.request(Method::GET, path, None, None).await;
            assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
            assert_eq!(body["details"]["resource"], "OAuth provider", "{path}: {body}");
        }

        let (status, body) = callback(&server, "github", "unknown-state").await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "state");

        let (status, body) = server.request(Method::GET, "/api/v1/auth/oauth/github/callback?error=access_denied", None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        // A wrong PKCE verifier fails at the token endpoint.
        let state = parameter(&authorize(&server, &fake, "github").await, "state");
        fake.lock().unwrap().code_challenge = Some("not-the-challenge".to_owned());
        let (status, body) = callback(&server, "github", &state).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        fake.lock().unwrap().github_emails = json!([{ "email": "octo@example.com", "verified": false, "primary": true }]);
        let state = parameter(&authorize(&server, &fake, "github").await, "state");
        let (status, body) = callback(&server, "github", &state).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        assert!(body["error"].as_str().unwrap().contains("verified e-mail"), "{body}");
    }
}
