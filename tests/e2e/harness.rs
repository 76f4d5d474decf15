//! Starting the `mockforge` binary, a loopback file server for OpenAPI documents, and small
//! HTTP helpers.

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const BINARY: &str = env!("CARGO_BIN_EXE_mockforge");

/// Environment variables of the binary that a developer's shell might set; tests remove them.
const INHERITED_SETTINGS: &[&str] = &[
    "MOCKFORGE_CONFIG",
    "MOCKFORGE_DATA_DIR",
    "MOCKFORGE_API_LISTEN",
    "MOCKFORGE_EDGE_LISTEN",
    "MOCKFORGE_DATABASE_URL",
    "MOCKFORGE_REDIS_URL",
    "MOCKFORGE_PUBLIC_EDGE_URL",
    "MOCKFORGE_ADMIN_EMAILS",
    "MOCKFORGE_JWT_SECRET",
];

pub fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh directory under the system temp directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds a `mockforge` command without the caller's MockForge settings in its environment.
pub fn mockforge() -> Command {
    let mut command = Command::new(BINARY);
    for variable in INHERITED_SETTINGS {
        command.env_remove(variable);
    }
    command.env("MOCKFORGE_LOG", "info");
    // Tests run several servers at once, so each metrics listener takes a free port.
    command.env("MOCKFORGE_EDGE_ADMIN_LISTEN", "127.0.0.1:0");
    command
}

/// A running `mockforge serve` process.
pub struct Server {
    child: Child,
    pub api: String,
    pub edge_port: u16,
    log: PathBuf,
    _data: TempDir,
}

impl Server {
    /// Starts `mockforge serve` with its own data directory and waits until it is ready.
    pub async fn start() -> Server {
        let data = TempDir::new("mockforge-e2e");
        let api_port = free_port();
        let edge_port = free_port();
        let log = data.0.join("server.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = mockforge()
            .arg("serve")
            .env("MOCKFORGE_DATA_DIR", data.0.join("data"))
            .env("MOCKFORGE_API_LISTEN", format!("127.0.0.1:{api_port}"))
            .env("MOCKFORGE_EDGE_LISTEN", format!("127.0.0.1:{edge_port}"))
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start mockforge serve");
        let server = Server { child, api: format!("http://127.0.0.1:{api_port}"), edge_port, log, _data: data };

        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(format!("{}/health/ready", server.api)).send().await {
                if response.status() == 200 {
                    return server;
                }
            }
            assert!(Instant::now() < deadline, "mockforge serve did not become ready:\n{}", server.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Returns the edge's loopback address, for calling a mock URL with its Host header.
    pub fn edge(&self) -> String {
        format!("http://127.0.0.1:{}", self.edge_port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An API client that carries a bearer token.
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    client: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api { base: base.to_string(), token: None, client: reqwest::Client::new() }
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api { base: self.base.clone(), token: Some(token.to_string()), client: self.client.clone() }
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// Sends `GET path` for a polling loop: a 429 from the API's rate limit is waited out for
    /// its `retry_after_seconds`, as a well-behaved client does, and the request is sent again.
    pub async fn poll(&self, path: &str) -> (u16, Value) {
        loop {
            let (status, body) = self.get(path).await;
            if status != 429 {
                return (status, body);
            }
            let retry_after = body["details"]["retry_after_seconds"].as_u64().unwrap_or(1).max(1);
            tokio::time::sleep(Duration::from_secs(retry_after)).await;
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }
}

/// Registers a user and returns an API client authenticated with a new read-write API token.
pub async fn customer(server: &Server, username: &str) -> Api {
    let anonymous = Api::new(&server.api);
    let (status, body) = anonymous
        .post(
            "/api/v1/auth/register",
            json!({"username": username, "email": format!("{username}@example.test"), "password": "correct-horse-battery"}),
        )
        .await;
    assert!(status == 200 || status == 201, "register: {status} {body}");
    let jwt = body["token"].as_str().expect("register returns a token").to_string();

    let (status, body) = anonymous.with_token(&jwt).post("/api/v1/tokens", json!({"name": "e2e", "scopes": ["read", "write"]})).await;
    assert!(status == 200 || status == 201, "create token: {status} {body}");
    let token = body["token"].as_str().expect("token in create response");
    assert!(token.starts_with("mfx_"), "{token}");
    anonymous.with_token(token)
}

/// Polls a deployment until its status is `expected`, and returns the deployment.
pub async fn wait_for_status(api: &Api, id: &str, expected: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api.poll(&format!("/api/v1/deployments/{id}")).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] == expected {
            return body;
        }
        assert!(Instant::now() < deadline, "deployment {id} stayed {} instead of {expected}: {body}", body["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls a hosted mock through the edge's loopback address with the Host header of its public URL.
pub async fn call_mock(server: &Server, mock_url: &str, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let rest = mock_url.strip_prefix("http://").expect("local mock URLs use http");
    let (host, deployment_path) = rest.split_once('/').unwrap_or((rest, ""));
    let response = reqwest::Client::new()
        .get(format!("{}/{deployment_path}{path}", server.edge()))
        .header("Host", host)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// A loopback HTTP server that serves the files of one directory, standing in for the public
/// address a customer's OpenAPI document lives at.
pub struct FileServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl FileServer {
    pub async fn start(root: &Path) -> FileServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let root = Arc::new(root.to_path_buf());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let root = Arc::clone(&root);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => request.extend_from_slice(&buffer[..read]),
                        }
                    }
                    let line = String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_string();
                    let path = line.split(' ').nth(1).unwrap_or("/").trim_start_matches('/').to_string();
                    let file = (!path.contains("..")).then(|| std::fs::read(root.join(&path)).ok()).flatten();
                    let (status, body) = match file {
                        Some(body) => ("200 OK", body),
                        None => ("404 Not Found", b"not found".to_vec()),
                    };
                    let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                });
            }
        });
        FileServer { addr, task }
    }

    pub fn url(&self, file: &str) -> String {
        format!("http://{}/{file}", self.addr)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Returns the path of `file` when the corpus directory contains it. Without the corpus the test is skipped
/// with a note, unless `MOCKFORGE_REQUIRE_CORPUS` is set, as in CI.
pub fn corpus_file(file: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("MOCKFORGE_SPEC_CORPUS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/mockforge/spec-corpus")));
    let path = dir.map(|dir| dir.join(file)).filter(|path| path.is_file());
    if path.is_none() {
        assert!(
            std::env::var_os("MOCKFORGE_REQUIRE_CORPUS").is_none(),
            "corpus document {file} is missing; run scripts/spec-corpus.sh"
        );
        eprintln!("skipped: corpus document {file} is missing; run scripts/spec-corpus.sh to fetch it");
    }
    path
}

pub const PETSTORE: &str = r##"{
  "openapi": "3.0.3",
  "info": {"title": "Petstore", "version": "1.0.0"},
  "paths": {
    "/pets/{petId}": {
      "get": {
        "operationId": "getPet",
        "parameters": [{"name": "petId", "in": "path", "required": true, "schema": {"type": "integer"}}],
        "responses": {
          "200": {"description": "A pet", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Pet"},
            "example": {"id": 1, "name": "Rex", "tag": "dog"}}}},
          "404": {"description": "Not found"}
        }
      }
    },
    "/pets": {
      "get": {
        "operationId": "listPets",
        "responses": {"200": {"description": "Pets", "content": {"application/json": {
          "schema": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"$ref": "#/components/schemas/Pet"}}}}}}
      }
    }
  },
  "components": {"schemas": {"Pet": {
    "type": "object", "required": ["id", "name"],
    "properties": {"id": {"type": "integer", "format": "int64"}, "name": {"type": "string"}, "tag": {"type": "string"}}
  }}}
}"##;

/// Registers a user on the control plane at `api` and returns an API client authenticated with
/// a new read-write API token.
pub async fn customer_at(api: &str, username: &str) -> Api {
    let anonymous = Api::new(api);
    let (status, body) = anonymous
        .post(
            "/api/v1/auth/register",
            json!({"username": username, "email": format!("{username}@example.test"), "password": "correct-horse-battery"}),
        )
        .await;
    assert!(status == 200 || status == 201, "register: {status} {body}");
    let jwt = body["token"].as_str().expect("register returns a token").to_string();
    let (status, body) = anonymous.with_token(&jwt).post("/api/v1/tokens", json!({"name": "e2e", "scopes": ["read", "write"]})).await;
    assert!(status == 200 || status == 201, "create token: {status} {body}");
    anonymous.with_token(body["token"].as_str().expect("token in create response"))
}

/// A `mockforge` process with its output in a log file, killed on drop. It can be killed and
/// started again with the same arguments, appending to the same log.
pub struct Process {
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    pub fn spawn(name: &str, args: &[&str], env: &[(&str, String)], log: PathBuf) -> Process {
        let mut process = Process {
            name: name.to_string(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            env: env.iter().map(|(key, value)| (key.to_string(), value.clone())).collect(),
            log,
            child: None,
        };
        process.start();
        process
    }

    /// Starts the process unless it runs.
    pub fn start(&mut self) {
        if self.child.is_some() {
            return;
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut command = mockforge();
        command.args(&self.args).stdout(Stdio::from(log.try_clone().unwrap())).stderr(Stdio::from(log));
        for (key, value) in &self.env {
            command.env(key, value);
        }
        self.child = Some(command.spawn().unwrap_or_else(|error| panic!("start {}: {error}", self.name)));
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log_text(&self) -> String {
        format!("--- log of {} ---\n{}", self.name, std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A database for one test: a fresh schema in the PostgreSQL database named by
/// `MOCKFORGE_TEST_DATABASE_URL`, dropped by [`TestDatabase::drop_schema`] or on drop, or `None`
/// for the SQLite file of the control plane's data directory.
pub struct TestDatabase {
    pub url: Option<String>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let Some(admin_url) = std::env::var("MOCKFORGE_TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()) else {
            return TestDatabase { url: None, postgres: None };
        };
        let schema = format!("e2e_{:016x}", rand::random::<u64>());
        let pool = sqlx::PgPool::connect(&admin_url).await.expect("connect to MOCKFORGE_TEST_DATABASE_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&pool).await.unwrap();
        pool.close().await;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options[search_path]={schema}");
        TestDatabase { url: Some(url), postgres: Some((admin_url, schema)) }
    }

    /// Drops the PostgreSQL schema. Call it after every process using the schema stopped.
    pub async fn drop_schema(mut self) {
        if let Some((admin_url, schema)) = self.postgres.take() {
            drop_postgres_schema(&admin_url, &schema).await;
        }
    }
}

impl Drop for TestDatabase {
    /// Drops the schema of a test that panicked before [`TestDatabase::drop_schema`], on a
    /// thread of its own because the test's runtime may be the one unwinding.
    fn drop(&mut self) {
        if let Some((admin_url, schema)) = self.postgres.take() {
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(drop_postgres_schema(&admin_url, &schema));
            })
            .join();
            if dropped.is_err() {
                eprintln!("failed to drop a test schema in MOCKFORGE_TEST_DATABASE_URL");
            }
        }
    }
}

async fn drop_postgres_schema(admin_url: &str, schema: &str) {
    let pool = sqlx::PgPool::connect(admin_url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&pool).await.unwrap();
    pool.close().await;
}

/// A private `redis-server` on a free loopback port, without persistence.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let mut server = RedisServer { port: free_port(), child: None };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server on its port (again) and waits until it accepts connections.
    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (install the redis-server package)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `url` until it returns 200, or panics with `context` after `timeout`.
pub async fn wait_until_ok(url: &str, timeout: Duration, context: impl Fn() -> String) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(response) = client.get(url).timeout(Duration::from_secs(2)).send().await {
            if response.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} did not return 200 within {timeout:?}\n{}", context());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
