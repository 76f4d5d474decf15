//! Starts a real control plane on a loopback port with a fresh database per test: a SQLite file
//! in a temporary directory, or a fresh schema in the PostgreSQL database named by
//! `MOCKFORGE_TEST_DATABASE_URL`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mockforge_control_plane::{ControlPlane, ControlPlaneConfig};
use mockforge_snapshot::SnapshotFeed;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
pub const PASSWORD: &str = "correct horse battery";

/// Runs each listed test body once on SQLite and once on PostgreSQL. The PostgreSQL variant
/// passes without running when `MOCKFORGE_TEST_DATABASE_URL` is not set.
#[macro_export]
macro_rules! backend_tests {
    ($(async fn $name:ident($backend:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($backend: $crate::harness::Backend) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run($crate::harness::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    match $crate::harness::Backend::postgres() {
                        Some(backend) => run(backend).await,
                        None => eprintln!("MOCKFORGE_TEST_DATABASE_URL is not set; skipped the PostgreSQL run"),
                    }
                }
            }
        )*
    };
}

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    pub fn postgres() -> Option<Backend> {
        std::env::var("MOCKFORGE_TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()).map(Backend::Postgres)
    }
}

/// Resources that outlive one server start: the data directory and the PostgreSQL schema.
struct Resources {
    data_dir: PathBuf,
    database_url: Option<String>,
    postgres: Option<(String, String)>,
}

impl Drop for Resources {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some((admin_url, schema)) = self.postgres.take() {
            // Drop runs inside the test's runtime, so the schema is dropped from a fresh thread.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async move {
                    if let Ok(pool) = sqlx::PgPool::connect(&admin_url).await {
                        let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub feed: Arc<dyn SnapshotFeed>,
    pub telemetry: Arc<dyn mockforge_snapshot::TelemetrySink>,
    pub config: ControlPlaneConfig,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    resources: Arc<Resources>,
}

impl TestServer {
    /// Starts a server with a fresh database; `configure` adjusts the configuration.
    pub async fn start(backend: Backend, configure: impl FnOnce(&mut ControlPlaneConfig)) -> TestServer {
        let data_dir = std::env::temp_dir().join(format!("mockforge-cp-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let (database_url, postgres) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres(admin_url) => {
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let pool = sqlx::PgPool::connect(&admin_url).await.expect("connect to MOCKFORGE_TEST_DATABASE_URL");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&pool).await.unwrap();
                pool.close().await;
                let separator = if admin_url.contains('?') { '&' } else { '?' };
                let url = format!("{admin_url}{separator}options[search_path]={schema}");
                (Some(url), Some((admin_url, schema)))
            }
        };
        let resources = Arc::new(Resources { data_dir, database_url, postgres });

        let mut config = ControlPlaneConfig::new(resources.data_dir.clone());
        config.database_url = resources.database_url.clone();
        config.jwt_secret = Some(JWT_SECRET.to_owned());
        config.public_edge_url = "http://{org}.localhost:8081".to_owned();
        configure(&mut config);
        Self::launch(config, resources).await
    }

    async fn launch(config: ControlPlaneConfig, resources: Arc<Resources>) -> TestServer {
        let control_plane = ControlPlane::start(config.clone()).await.expect("control plane starts");
        let feed = control_plane.snapshot_feed();
        let telemetry = control_plane.telemetry_sink();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(control_plane.serve(listener, async move {
            let _ = signal.await;
        }));
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();
        TestServer { addr, client, feed, telemetry, config, shutdown: Some(shutdown), task: Some(task), resources }
    }

    /// Stops the server gracefully and starts a new one on the same data directory and database.
    pub async fn restart(mut self) -> TestServer {
        self.stop().await;
        let resources = self.resources.clone();
        Self::launch(self.config.clone(), resources).await
    }

    /// Starts a second control plane on this server's database with its own data directory, as
    /// another replica would run. `configure` adjusts a copy of this server's configuration.
    pub async fn start_replica(&self, configure: impl FnOnce(&mut ControlPlaneConfig)) -> TestServer {
        let data_dir = std::env::temp_dir().join(format!("mockforge-cp-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir).unwrap();
        // The first server's resources own the database schema and drop it.
        let resources = Arc::new(Resources { data_dir, database_url: self.resources.database_url.clone(), postgres: None });
        let mut config = self.config.clone();
        config.data_dir = resources.data_dir.clone();
        configure(&mut config);
        Self::launch(config, resources).await
    }

    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        read(response).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::DELETE, path, Some(token), None).await
    }

    /// Registers `username` with e-mail `{username}@example.com` and returns the session.
    pub async fn register(&self, username: &str) -> Account {
        let email = format!("{}@example.com", username.to_lowercase());
        let body = json!({ "username": username, "email": email, "password": PASSWORD });
        let (status, body) = self.request(reqwest::Method::POST, "/api/v1/auth/register", None, Some(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "registration of {username} failed: {body}");
        Account {
            token: body["token"].as_str().unwrap().to_owned(),
            user_id: body["user_id"].as_str().unwrap().to_owned(),
            email,
        }
    }

    /// Returns the id of the caller's personal organization.
    pub async fn personal_org(&self, account: &Account) -> Value {
        let (status, body) = self.get("/api/v1/organizations", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body[0].clone()
    }

    /// Creates an API token with `scopes` and returns the full token.
    pub async fn api_token(&self, account: &Account, scopes: &[&str]) -> String {
        let (status, body) =
            self.post("/api/v1/tokens", &account.token, &json!({ "name": "test token", "scopes": scopes })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Sets `created_at` of every API token to `days` days ago, directly in the database.
    pub async fn backdate_tokens(&self, days: i64) {
        let created_at = chrono::Utc::now() - chrono::Duration::days(days);
        match &self.resources.database_url {
            Some(url) => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                sqlx::query("UPDATE api_tokens SET created_at = $1").bind(created_at).execute(&pool).await.unwrap();
                pool.close().await;
            }
            None => {
                let url = format!("sqlite://{}", self.resources.data_dir.join("mockforge.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                sqlx::query("UPDATE api_tokens SET created_at = $1").bind(created_at).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    }

    /// Sets `created_at` of every organization to `days` days ago, directly in the database.
    pub async fn backdate_organizations(&self, days: i64) {
        let created_at = chrono::Utc::now() - chrono::Duration::days(days);
        let statement = "UPDATE organizations SET created_at = $1";
        match &self.resources.database_url {
            Some(url) => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                sqlx::query(statement).bind(created_at).execute(&pool).await.unwrap();
                pool.close().await;
            }
            None => {
                let url = format!("sqlite://{}", self.resources.data_dir.join("mockforge.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                sqlx::query(statement).bind(created_at).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.resources.data_dir.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub struct Account {
    pub token: String,
    pub user_id: String,
    pub email: String,
}

pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Asserts the error format and returns the body.
pub fn assert_error(status: StatusCode, body: &Value, expected_status: StatusCode, expected_code: &str) {
    assert_eq!(status, expected_status, "unexpected status, body: {body}");
    assert_eq!(body["code"], expected_code, "unexpected code, body: {body}");
    assert!(body["error"].as_str().is_some_and(|message| !message.is_empty()), "missing message: {body}");
    assert!(body["details"].is_object(), "details must be an object: {body}");
}

/// Returns a small valid OpenAPI 3.0 document.
pub fn petstore() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Pets", "version": "1.0.0" },
        "paths": {
            "/pets": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "all pets",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": { "type": "object", "properties": { "id": { "type": "integer" } } }
                                    },
                                    "example": [{ "id": 1 }]
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// Creates a deployment from the inline petstore document and returns the response body.
pub async fn create_deployment(server: &TestServer, token: &str, name: &str) -> Value {
    let body = json!({ "name": name, "openapi_spec": petstore() });
    let (status, body) = server.post("/api/v1/deployments", token, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Starts a loopback HTTP server for OpenAPI documents and returns its address. Routes:
/// `/openapi.json` (the petstore document), `/openapi.yaml`, `/redirect` (to `/openapi.json`),
/// `/loop` (redirects to itself), `/missing` (404) and `/large` (1 MiB of JSON).
pub async fn spec_server() -> SocketAddr {
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::get;

    let app = axum::Router::new()
        .route("/openapi.json", get(|| async { axum::Json(petstore()) }))
        .route(
            "/openapi.yaml",
            get(|| async {
                "openapi: 3.0.3\ninfo:\n  title: Pets\n  version: 1.0.0\npaths:\n  /pets:\n    get:\n      responses:\n        '200':\n          description: ok\n"
            }),
        )
        .route("/redirect", get(|| async { Redirect::temporary("/openapi.json") }))
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route("/missing", get(|| async { (axum::http::StatusCode::NOT_FOUND, "no such document").into_response() }))
        .route("/large", get(|| async { format!("{{\"padding\": \"{}\"}}", "x".repeat(1024 * 1024)) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}
