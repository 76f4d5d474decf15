use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::harness::{assert_error, TestServer, JWT_SECRET, PASSWORD};

fn claims(sub: &str, exp_offset_secs: i64) -> Value {
    let now = Utc::now().timestamp();
    json!({ "sub": sub, "iat": now, "exp": now + exp_offset_secs, "iss": "mockforge", "aud": "mockforge-api" })
}

fn sign(claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

fn unsigned(claims: &Value) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = engine.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = engine.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{payload}.")
}

async fn post_anonymous(server: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    server.request(Method::POST, path, None, Some(&body)).await
}

backend_tests! {
    async fn register_returns_session(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let body = json!({ "username": "johndoe", "email": "John@Example.com", "password": PASSWORD });
        let (status, body) = post_anonymous(&server, "/api/v1/auth/register", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["username"], "johndoe");
        assert!(uuid::Uuid::parse_str(body["user_id"].as_str().unwrap()).is_ok());
        let token = body["token"].as_str().unwrap();
        assert_eq!(token.split('.').count(), 3);

        let data = jsonwebtoken::dangerous::insecure_decode::<Value>(token).unwrap();
        assert_eq!(data.header.alg, Algorithm::HS256);
        assert_eq!(data.claims["sub"], body["user_id"]);
        assert_eq!(data.claims["iss"], "mockforge");
        assert_eq!(data.claims["aud"], "mockforge-api");
        assert!(data.claims["exp"].as_i64().unwrap() > data.claims["iat"].as_i64().unwrap());

        let (status, orgs) = server.get("/api/v1/organizations", token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(orgs.as_array().unwrap().len(), 1);
    }

    async fn register_validation(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let cases = [
            (json!({ "username": "ab", "email": "a@example.com", "password": PASSWORD }), "username"),
            (json!({ "username": "a".repeat(65), "email": "a@example.com", "password": PASSWORD }), "username"),
            (json!({ "username": "bad name", "email": "a@example.com", "password": PASSWORD }), "username"),
            (json!({ "username": "bad.name", "email": "a@example.com", "password": PASSWORD }), "username"),
            (json!({ "username": "valid", "email": "not-an-email", "password": PASSWORD }), "email"),
            (json!({ "username": "valid", "email": "a@example", "password": PASSWORD }), "email"),
            (json!({ "username": "valid", "email": "a@example.com", "password": "short" }), "password"),
        ];
        for (body, field) in cases {
            let (status, response) = post_anonymous(&server, "/api/v1/auth/register", body.clone()).await;
            assert_error(status, &response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(response["details"]["field"], field, "case {body}");
        }
        // A rejected password is never echoed, only its length.
        let body = json!({ "username": "valid", "email": "a@example.com", "password": "short" });
        let (status, response) = post_anonymous(&server, "/api/v1/auth/register", body).await;
        assert_error(status, &response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(response["error"], "invalid password: must be at least 8 characters long, got 5");
        assert_eq!(response["details"], json!({ "field": "password" }));
        // The boundaries are accepted.
        let body = json!({ "username": "a-_", "email": "edge@example.com", "password": "12345678" });
        let (status, response) = post_anonymous(&server, "/api/v1/auth/register", body).await;
        assert_eq!(status, StatusCode::CREATED, "{response}");
        let body = json!({ "username": "b".repeat(64), "email": "long@example.com", "password": PASSWORD });
        let (status, response) = post_anonymous(&server, "/api/v1/auth/register", body).await;
        assert_eq!(status, StatusCode::CREATED, "{response}");
    }

    async fn register_duplicates_conflict(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        server.register("alice").await;

        let body = json!({ "username": "alice2", "email": "ALICE@example.com", "password": PASSWORD });
        let (status, response) = post_anonymous(&server, "/api/v1/auth/register", body).await;
        assert_error(status, &response, StatusCode::CONFLICT, "CONFLICT");
        assert_eq!(response["details"]["field"], "email");

        let body = json!({ "username": "alice", "email": "other@example.com", "password": PASSWORD });
        let (status, response) = post_anonymous(&server, "/api/v1/auth/register", body).await;
        assert_error(status, &response, StatusCode::CONFLICT, "CONFLICT");
        assert_eq!(response["details"]["field"], "username");
    }

    async fn personal_org_slug_collisions(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let first = server.register("John_Doe").await;
        let second = server.register("john--doe").await;
        let third = server.register("John-Doe-").await;

        let org = server.personal_org(&first).await;
        assert_eq!(org["slug"], "john-doe");
        assert_eq!(org["name"], "John_Doe");
        assert_eq!(org["plan"], "free");
        assert_eq!(org["owner_id"].as_str().unwrap(), first.user_id);
        assert_eq!(server.personal_org(&second).await["slug"], "john-doe-2");
        assert_eq!(server.personal_org(&third).await["slug"], "john-doe-3");
    }

    async fn login_success_and_failures(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("carol").await;

        let body = json!({ "email": "CAROL@example.com", "password": PASSWORD });
        let (status, response) = post_anonymous(&server, "/api/v1/auth/login", body).await;
        assert_eq!(status, StatusCode::OK, "{response}");
        assert_eq!(response["user_id"].as_str().unwrap(), account.user_id);
        assert_eq!(response["username"], "carol");
        let (status, _) = server.get("/api/v1/organizations", response["token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);

        let wrong_password = json!({ "email": account.email, "password": "wrong password" });
        let (status, wrong) = post_anonymous(&server, "/api/v1/auth/login", wrong_password).await;
        assert_error(status, &wrong, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let unknown_email = json!({ "email": "nobody@example.com", "password": PASSWORD });
        let (status, unknown) = post_anonymous(&server, "/api/v1/auth/login", unknown_email).await;
        assert_error(status, &unknown, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        assert_eq!(wrong["error"], unknown["error"]);
    }

    async fn refresh_within_grace(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("dave").await;

        let (status, body) = post_anonymous(&server, "/api/v1/auth/token/refresh", json!({ "token": account.token })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["user_id"].as_str().unwrap(), account.user_id);
        assert_eq!(body["username"], "dave");

        // Expired six days ago: still refreshable.
        let expired = sign(&claims(&account.user_id, -6 * 24 * 3600), JWT_SECRET);
        let (status, body) = post_anonymous(&server, "/api/v1/auth/token/refresh", json!({ "token": expired })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = server.get("/api/v1/organizations", body["token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);

        // Expired eight days ago: too old.
        let too_old = sign(&claims(&account.user_id, -8 * 24 * 3600), JWT_SECRET);
        let (status, body) = post_anonymous(&server, "/api/v1/auth/token/refresh", json!({ "token": too_old })).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        // A valid signature for a user that does not exist.
        let stranger = sign(&claims(&uuid::Uuid::new_v4().to_string(), 3600), JWT_SECRET);
        let (status, body) = post_anonymous(&server, "/api/v1/auth/token/refresh", json!({ "token": stranger })).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        // A forged signature.
        let forged = sign(&claims(&account.user_id, 3600), "another-secret-0123456789abcdef0123456789");
        let (status, body) = post_anonymous(&server, "/api/v1/auth/token/refresh", json!({ "token": forged })).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }

    async fn rejected_credentials(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("erin").await;
        let path = "/api/v1/organizations";

        let (status, body) = server.request(Method::GET, path, None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        let response = server.client.get(server.url(path)).header("Authorization", "Basic abc").send().await.unwrap();
        let (status, body) = crate::harness::read(response).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        let mut wrong_audience = claims(&account.user_id, 3600);
        wrong_audience["aud"] = json!("someone-else");
        let mut wrong_issuer = claims(&account.user_id, 3600);
        wrong_issuer["iss"] = json!("someone-else");
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims(&account.user_id, 3600),
            &EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap(),
        )
        .unwrap();
        let cases = [
            ("malformed", "not-a-jwt".to_owned()),
            ("bad signature", sign(&claims(&account.user_id, 3600), "another-secret-0123456789abcdef0123456789")),
            ("expired", sign(&claims(&account.user_id, -60), JWT_SECRET)),
            ("alg none", unsigned(&claims(&account.user_id, 3600))),
            ("wrong audience", sign(&wrong_audience, JWT_SECRET)),
            ("wrong issuer", sign(&wrong_issuer, JWT_SECRET)),
            ("HS384", hs384),
            ("unknown API token", "mfx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned()),
        ];
        for (case, token) in cases {
            let (status, body) = server.get(path, &token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "case {case}: {body}");
            assert_eq!(body["code"], "UNAUTHORIZED", "case {case}");
        }

        // The same claims signed correctly are accepted.
        let (status, _) = server.get(path, &sign(&claims(&account.user_id, 3600), JWT_SECRET)).await;
        assert_eq!(status, StatusCode::OK);
    }

    async fn generated_secret_persists(backend) {
        let server = TestServer::start(backend, |config| config.jwt_secret = None).await;
        let account = server.register("nora").await;
        let path = server.data_dir().join("jwt-secret");
        let secret = std::fs::read_to_string(&path).unwrap();
        assert_eq!(secret.len(), 128, "64 random bytes in hex");
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }

        // A token issued before a restart is still valid after it, so the secret was reused.
        let server = server.restart().await;
        assert_eq!(std::fs::read_to_string(&path).unwrap(), secret);
        let (status, body) = server.get("/api/v1/organizations", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn malformed_json_bodies(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let url = server.url("/api/v1/auth/register");

        let response = server.client.post(&url).header("Content-Type", "application/json").body("{not json").send().await.unwrap();
        let (status, body) = crate::harness::read(response).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_JSON");
        assert!(body["error"].as_str().unwrap().contains("line 1"), "{body}");

        let response = server.client.post(&url).header("Content-Type", "text/plain").body("{}").send().await.unwrap();
        let (status, body) = crate::harness::read(response).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_JSON");
        assert!(body["error"].as_str().unwrap().contains("application/json"), "{body}");

        let response = server.client.post(&url).json(&json!({ "username": "frank" })).send().await.unwrap();
        let (status, body) = crate::harness::read(response).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_JSON");
        assert!(body["error"].as_str().unwrap().contains("missing field"), "{body}");

        let huge = json!({ "username": "frank", "email": "f@example.com", "password": "x".repeat(2 * 1024 * 1024) });
        let response = server.client.post(&url).json(&huge).send().await.unwrap();
        let (status, body) = crate::harness::read(response).await;
        assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    }
}
