//! One control plane and two edge nodes in separate processes on loopback ports: changes reach
//! both edges, edges keep serving through control-plane and Redis outages, and a restarted edge
//! serves its snapshot from disk.
//!
//! The control plane uses a fresh schema in `MOCKFORGE_TEST_DATABASE_URL` when it is set (as in
//! CI) and a SQLite file otherwise.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{
    customer_at, free_port, mockforge, wait_for_status, wait_until_ok, Api, Process, RedisServer, TempDir, TestDatabase,
    PETSTORE,
};

const ADMIN_EMAILS: &str = "admin@example.test";
/// Maximum time a change may take to reach every edge.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(1);

struct EdgeNode {
    name: &'static str,
    port: u16,
    process: Process,
}

impl EdgeNode {
    fn mock_url(&self, org: &str, deployment: &str) -> String {
        format!("http://127.0.0.1:{}/_m/{org}/{deployment}/pets/1", self.port)
    }
}

/// A control plane and two edges, each with its own data directory under one temporary folder.
struct Cluster {
    api: String,
    control_plane: Process,
    edges: Vec<EdgeNode>,
    node_tokens: Vec<String>,
    database: Option<TestDatabase>,
    dir: TempDir,
}

impl Cluster {
    async fn start(redis_url: Option<String>) -> Cluster {
        let dir = TempDir::new("mockforge-multi-node");
        let database = TestDatabase::create().await;
        let api_port = free_port();
        let api = format!("http://127.0.0.1:{api_port}");

        let mut control_plane_env = vec![
            ("MOCKFORGE_DATA_DIR", dir.0.join("control-plane").display().to_string()),
            ("MOCKFORGE_API_LISTEN", format!("127.0.0.1:{api_port}")),
            ("MOCKFORGE_ADMIN_EMAILS", ADMIN_EMAILS.to_string()),
        ];
        if let Some(url) = &database.url {
            control_plane_env.push(("MOCKFORGE_DATABASE_URL", url.clone()));
        }
        if let Some(url) = &redis_url {
            control_plane_env.push(("MOCKFORGE_REDIS_URL", url.clone()));
        }
        let control_plane =
            Process::spawn("control plane", &["control-plane"], &control_plane_env, dir.0.join("control-plane.log"));
        wait_until_ok(&format!("{api}/health/ready"), Duration::from_secs(60), || control_plane.log_text()).await;

        let mut edges = Vec::new();
        let mut node_tokens = Vec::new();
        for name in ["eu-1", "us-1"] {
            let output = mockforge()
                .args(["control-plane", "node-token", "create", "--name", name])
                .envs(control_plane_env.iter().map(|(key, value)| (*key, value.as_str())))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "node-token create {name}: {stderr}");
            let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
            assert!(token.starts_with("mfn_"), "node-token create printed {token:?}; stderr: {stderr}");

            let port = free_port();
            let mut env = vec![
                ("MOCKFORGE_CONTROL_PLANE_URL", api.clone()),
                ("MOCKFORGE_NODE_TOKEN", token.clone()),
                ("MOCKFORGE_REGION", name.to_string()),
                ("MOCKFORGE_DATA_DIR", dir.0.join(name).display().to_string()),
                ("MOCKFORGE_EDGE_LISTEN", format!("127.0.0.1:{port}")),
            ];
            if let Some(url) = &redis_url {
                env.push(("MOCKFORGE_REDIS_URL", url.clone()));
            }
            let process = Process::spawn(&format!("edge {name}"), &["edge"], &env, dir.0.join(format!("{name}.log")));
            edges.push(EdgeNode { name, port, process });
            node_tokens.push(token);
        }
        Cluster { api, control_plane, edges, node_tokens, database: Some(database), dir }
    }

    fn logs(&self) -> String {
        let mut logs = self.control_plane.log_text();
        for edge in &self.edges {
            logs.push('\n');
            logs.push_str(&edge.process.log_text());
        }
        logs
    }

    async fn restart_control_plane(&mut self) {
        self.control_plane.start();
        wait_until_ok(&format!("{}/health/ready", self.api), Duration::from_secs(60), || self.control_plane.log_text()).await;
    }

    /// Stops every process and drops the PostgreSQL schema.
    async fn stop(mut self) {
        for edge in &mut self.edges {
            edge.process.kill();
        }
        self.control_plane.kill();
        if let Some(database) = self.database.take() {
            database.drop_schema().await;
        }
    }
}

/// Returns the response status of `url`, or 0 when the edge is unreachable.
async fn status_of(client: &reqwest::Client, url: &str) -> u16 {
    match client.get(url).timeout(Duration::from_secs(2)).send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// Polls every edge of `edges` until `deployment` of `org` returns `expected` on all of them,
/// and returns the time that took. Panics after `limit`.
async fn wait_on_edges(cluster: &Cluster, edges: &[usize], org: &str, deployment: &str, expected: u16, limit: Duration) -> Duration {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut pending: Vec<usize> = edges.to_vec();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for index in pending {
            if status_of(&client, &cluster.edges[index].mock_url(org, deployment)).await != expected {
                still.push(index);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < limit,
            "{org}/{deployment} did not answer {expected} on edge(s) {:?} within {limit:?}\n{}",
            pending.iter().map(|index| cluster.edges[*index].name).collect::<Vec<_>>(),
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

async fn deploy(api: &Api, slug: &str) -> String {
    let document: Value = serde_json::from_str(PETSTORE).unwrap();
    let (status, body) = api.post("/api/v1/deployments", json!({"name": slug, "slug": slug, "openapi_spec": document})).await;
    assert!(status == 200 || status == 201, "create {slug}: {status} {body}");
    body["id"].as_str().unwrap().to_string()
}

async fn set_status(api: &Api, id: &str, target: &str) {
    let (status, body) = api.put(&format!("/api/v1/deployments/{id}/status"), json!({"status": target})).await;
    assert_eq!(status, 200, "set {id} to {target}: {body}");
}

/// Polls `GET /api/v1/admin/edges` until `check` accepts every edge, and returns the list.
async fn wait_for_edges(admin: &Api, cluster: &Cluster, what: &str, check: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = admin.poll("/api/v1/admin/edges").await;
        assert_eq!(status, 200, "{body}");
        let edges = body["edges"].as_array().cloned().unwrap_or_default();
        if edges.len() == cluster.edges.len() && edges.iter().all(&check) {
            return edges;
        }
        assert!(Instant::now() < deadline, "edges never showed {what}: {body}\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn node_tokens_and_customer_tokens_are_separate() {
    let cluster = Cluster::start(None).await;
    let api = customer_at(&cluster.api, "alice").await;
    let client = reqwest::Client::new();
    let node_token = &cluster.node_tokens[0];

    let internal = format!("{}/internal/v1/snapshot?since=0", cluster.api);
    let response = client.get(&internal).bearer_auth(api.token.as_deref().unwrap()).send().await.unwrap();
    assert_eq!(response.status(), 401, "a customer token on the internal API");
    let response = client.get(&internal).send().await.unwrap();
    assert_eq!(response.status(), 401, "no token on the internal API");
    let response = client.get(&internal).bearer_auth(node_token).send().await.unwrap();
    assert_eq!(response.status(), 200, "a node token on the internal API");
    let delta: Value = response.json().await.unwrap();
    assert_eq!(delta["full"], true);

    let response = client.get(format!("{}/api/v1/deployments", cluster.api)).bearer_auth(node_token).send().await.unwrap();
    assert_eq!(response.status(), 401, "a node token on the customer API");

    let (status, _) = api.get("/api/v1/admin/edges").await;
    assert_eq!(status, 403, "a customer who is not a platform administrator");

    // A document is fetched by hash, compressed when the edge accepts gzip.
    let mut document: Value = serde_json::from_str(PETSTORE).unwrap();
    document["info"]["description"] = Value::String("A pet store. ".repeat(400));
    let (status, created) = api.post("/api/v1/deployments", json!({"name": "pets", "slug": "pets", "openapi_spec": document})).await;
    assert!(status == 200 || status == 201, "create pets: {status} {created}");
    let id = created["id"].as_str().unwrap();
    let (_, deployment) = api.get(&format!("/api/v1/deployments/{id}")).await;
    let sha256 = deployment["document_sha256"].as_str().unwrap();
    let raw_client = reqwest::Client::builder().no_gzip().build().unwrap();
    let response = raw_client
        .get(format!("{}/internal/v1/documents/{sha256}", cluster.api))
        .bearer_auth(node_token)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("content-encoding").map(|value| value.to_str().unwrap()), Some("gzip"));
    let response = client.get(format!("{}/internal/v1/documents/{sha256}", cluster.api)).bearer_auth(node_token).send().await.unwrap();
    assert!(response.text().await.unwrap().contains("Petstore"));

    // An edge that rejects a deployment fails it, with the reason in the deployment logs.
    wait_for_status(&api, id, "active").await;
    let report = json!({"node": "ignored", "version": 1, "outcomes": [[id, {"outcome": "failed", "reason": "no route compiled"}]]});
    let response = client.post(format!("{}/internal/v1/report", cluster.api)).bearer_auth(node_token).json(&report).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let deployment = wait_for_status(&api, id, "failed").await;
    assert_eq!(deployment["health_status"], "unhealthy", "{deployment}");
    let (status, logs) = api.get(&format!("/api/v1/deployments/{id}/logs")).await;
    assert_eq!(status, 200, "{logs}");
    assert!(logs.to_string().contains("Deployment failed on edge eu-1: no route compiled"), "{logs}");

    // A revoked token is rejected.
    let output = mockforge()
        .args(["control-plane", "node-token", "list"])
        .envs(cluster_env(&cluster))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(listing.contains("eu-1"), "{listing}");
    assert!(listing.contains("us-1"), "{listing}");
    let output = mockforge()
        .args(["control-plane", "node-token", "revoke", "eu-1"])
        .envs(cluster_env(&cluster))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let response = client.get(&internal).bearer_auth(node_token).send().await.unwrap();
    assert_eq!(response.status(), 401, "a revoked node token");

    cluster.stop().await;
}

/// Returns the control plane's settings, for `mockforge control-plane node-token` commands.
fn cluster_env(cluster: &Cluster) -> Vec<(String, String)> {
    let data_dir = cluster.dir.0.join("control-plane").display().to_string();
    let mut env = vec![("MOCKFORGE_DATA_DIR".to_string(), data_dir)];
    if let Some(url) = cluster.database.as_ref().and_then(|database| database.url.clone()) {
        env.push(("MOCKFORGE_DATABASE_URL".to_string(), url));
    }
    env
}

#[tokio::test]
async fn edges_follow_changes_and_survive_outages() {
    let mut cluster = Cluster::start(None).await;
    let api = customer_at(&cluster.api, "alice").await;
    let admin = customer_at(&cluster.api, "admin").await;
    let both = [0, 1];

    // A new deployment reaches both edges within a second; stopping it removes it as fast.
    let pets = deploy(&api, "pets").await;
    wait_on_edges(&cluster, &both, "alice", "pets", 200, PROPAGATION_LIMIT).await;
    let deployment = wait_for_status(&api, &pets, "active").await;
    assert_eq!(deployment["health_status"], "healthy", "{deployment}");
    set_status(&api, &pets, "stopped").await;
    wait_on_edges(&cluster, &both, "alice", "pets", 404, PROPAGATION_LIMIT).await;
    set_status(&api, &pets, "active").await;
    wait_on_edges(&cluster, &both, "alice", "pets", 200, PROPAGATION_LIMIT).await;
    let shop = deploy(&api, "shop").await;
    wait_on_edges(&cluster, &both, "alice", "shop", 200, PROPAGATION_LIMIT).await;

    // Platform administrators see both edges, caught up, through their heartbeats.
    let edges = wait_for_edges(&admin, &cluster, "a heartbeat with no version lag", |edge| {
        edge["status"] == "healthy" && edge["version_lag"] == 0
    })
    .await;
    let regions: Vec<&str> = edges.iter().map(|edge| edge["region"].as_str().unwrap()).collect();
    assert_eq!(regions, ["eu-1", "us-1"]);
    assert!(edges.iter().all(|edge| edge["deployments"] == 2), "{edges:?}");
    assert!(edges.iter().all(|edge| edge["notification"] == "long_poll"), "{edges:?}");

    // Without the control plane both edges keep serving every active deployment.
    cluster.control_plane.kill();
    for _ in 0..5 {
        wait_on_edges(&cluster, &both, "alice", "pets", 200, Duration::from_millis(1)).await;
        wait_on_edges(&cluster, &both, "alice", "shop", 200, Duration::from_millis(1)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Once it is back, changes flow again.
    cluster.restart_control_plane().await;
    deploy(&api, "orders").await;
    wait_on_edges(&cluster, &both, "alice", "orders", 200, Duration::from_secs(5)).await;

    // An edge restarted while the control plane is down serves its snapshot from disk, and
    // applies the change it missed once the control plane is back.
    cluster.edges[1].process.kill();
    let (status, body) = api.delete(&format!("/api/v1/deployments/{shop}")).await;
    assert!(status == 200 || status == 204, "delete shop: {status} {body}");
    wait_on_edges(&cluster, &[0], "alice", "shop", 404, PROPAGATION_LIMIT).await;
    cluster.control_plane.kill();
    cluster.edges[1].process.start();
    wait_on_edges(&cluster, &[1], "alice", "pets", 200, Duration::from_secs(10)).await;
    wait_on_edges(&cluster, &[1], "alice", "orders", 200, Duration::from_millis(1)).await;
    wait_on_edges(&cluster, &[1], "alice", "shop", 200, Duration::from_millis(1)).await;
    cluster.restart_control_plane().await;
    wait_on_edges(&cluster, &[1], "alice", "shop", 404, Duration::from_secs(5)).await;
    wait_on_edges(&cluster, &both, "alice", "pets", 200, Duration::from_millis(1)).await;

    cluster.stop().await;
}

#[tokio::test]
async fn redis_outage_falls_back_to_long_poll() {
    let mut redis = RedisServer::start().await;
    let cluster = Cluster::start(Some(redis.url())).await;
    let api = customer_at(&cluster.api, "bob").await;
    let admin = customer_at(&cluster.api, "admin").await;
    let both = [0, 1];

    wait_for_edges(&admin, &cluster, "a Redis subscription", |edge| edge["notification"] == "redis").await;
    deploy(&api, "first").await;
    wait_on_edges(&cluster, &both, "bob", "first", 200, PROPAGATION_LIMIT).await;

    // With Redis down, the edges learn about changes through long-poll requests.
    redis.kill();
    wait_for_edges(&admin, &cluster, "long-poll requests", |edge| edge["notification"] == "long_poll").await;
    deploy(&api, "second").await;
    wait_on_edges(&cluster, &both, "bob", "second", 200, PROPAGATION_LIMIT).await;

    // When Redis is back, they subscribe again and changes still arrive.
    redis.restart().await;
    wait_for_edges(&admin, &cluster, "a renewed Redis subscription", |edge| edge["notification"] == "redis").await;
    deploy(&api, "third").await;
    wait_on_edges(&cluster, &both, "bob", "third", 200, PROPAGATION_LIMIT).await;

    cluster.stop().await;
    redis.kill();
}

/// Makes 100 status changes and returns how long each took to reach both edges, sorted. Four
/// customers make 25 changes each, which keeps each organization under the free plan's API
/// rate limit.
async fn measure_propagation(cluster: &Cluster) -> Vec<Duration> {
    let mut delays = Vec::with_capacity(100);
    for customer in ["carol", "dave", "erin", "frank"] {
        let api = customer_at(&cluster.api, customer).await;
        let id = deploy(&api, "timed").await;
        wait_on_edges(cluster, &[0, 1], customer, "timed", 200, PROPAGATION_LIMIT).await;
        for change in 0..25 {
            let (target, expected) = if change % 2 == 0 { ("stopped", 404) } else { ("active", 200) };
            let started = Instant::now();
            set_status(&api, &id, target).await;
            wait_on_edges(cluster, &[0, 1], customer, "timed", expected, PROPAGATION_LIMIT).await;
            delays.push(started.elapsed());
        }
    }
    delays.sort();
    delays
}

/// Prints the median and maximum of sorted delays and checks the maximum.
fn report_propagation(path: &str, delays: &[Duration]) {
    let median = (delays[49] + delays[50]) / 2;
    let worst = delays[99];
    eprintln!(
        "propagation to 2 edges over 100 changes via {path} (API request to both edges serving): median {:.1} ms, max {:.1} ms",
        median.as_secs_f64() * 1000.0,
        worst.as_secs_f64() * 1000.0
    );
    assert!(worst < PROPAGATION_LIMIT, "maximum propagation {worst:?}");
}

#[tokio::test]
async fn propagation_through_redis() {
    let redis = RedisServer::start().await;
    let cluster = Cluster::start(Some(redis.url())).await;
    let admin = customer_at(&cluster.api, "admin").await;
    wait_for_edges(&admin, &cluster, "a Redis subscription", |edge| edge["notification"] == "redis").await;

    let delays = measure_propagation(&cluster).await;
    report_propagation("Redis pub/sub", &delays);
    cluster.stop().await;
}

#[tokio::test]
async fn propagation_through_long_poll() {
    let cluster = Cluster::start(None).await;
    let delays = measure_propagation(&cluster).await;
    report_propagation("long-poll", &delays);
    cluster.stop().await;
}

#[tokio::test]
async fn traffic_on_both_edges_adds_up() {
    let cluster = Cluster::start(None).await;
    let api = customer_at(&cluster.api, "grace").await;
    let id = deploy(&api, "metered").await;
    // Each edge returns exactly one 200 to this wait, and the metrics count it too.
    wait_on_edges(&cluster, &[0, 1], "grace", "metered", 200, PROPAGATION_LIMIT).await;

    let client = reqwest::Client::new();
    let sent = [7, 5];
    for (edge, count) in cluster.edges.iter().zip(sent) {
        for _ in 0..count {
            let response = client.get(edge.mock_url("grace", "metered")).send().await.unwrap();
            assert_eq!(response.status(), 200);
        }
    }
    let expected = sent.iter().sum::<u64>() + 2;

    // Edges report every 5 s; the control plane adds up the batches of both.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, metrics) = api.poll(&format!("/api/v1/deployments/{id}/metrics")).await;
        assert_eq!(status, 200, "{metrics}");
        if metrics["requests_total"] == expected {
            assert_eq!(metrics["status_codes"]["200"], expected, "{metrics}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "requests_total stayed {} instead of {expected}\n{}",
            metrics["requests_total"],
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    cluster.stop().await;
}

#[tokio::test]
async fn plugins_run_on_remote_edges() {
    let cluster = Cluster::start(None).await;
    let api = customer_at(&cluster.api, "plugger").await;
    crate::plugins::publish(&api, "add-header").await;
    crate::plugins::publish(&api, "rewrite-json-field").await;

    let document: Value = serde_json::from_str(PETSTORE).unwrap();
    let plugins = json!([
        { "name": "add-header", "version": "1.0.0", "config": { "name": "x-from-plugin", "value": "remote" } },
        { "name": "rewrite-json-field", "version": "1.0.0", "config": { "pointer": "/name", "value": "rewritten on the edge" } },
    ]);
    let request = json!({ "name": "plugged", "slug": "plugged", "openapi_spec": document, "config_json": { "plugins": plugins } });
    let (status, created) = api.post("/api/v1/deployments", request).await;
    assert!(status == 200 || status == 201, "create plugged: {status} {created}");
    wait_for_status(&api, created["id"].as_str().unwrap(), "active").await;
    wait_on_edges(&cluster, &[0, 1], "plugger", "plugged", 200, Duration::from_secs(30)).await;

    let client = reqwest::Client::new();
    for edge in &cluster.edges {
        let response = client.get(edge.mock_url("plugger", "plugged")).send().await.unwrap();
        assert_eq!(response.status(), 200, "edge {}", edge.name);
        let header = response.headers().get("x-from-plugin").map(|value| value.to_str().unwrap().to_owned());
        assert_eq!(header.as_deref(), Some("remote"), "edge {}\n{}", edge.name, cluster.logs());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["name"], "rewritten on the edge", "edge {}: {body}", edge.name);
    }

    // Each edge keeps the components it fetched in its data directory.
    for (edge, name) in [("eu-1", "add-header"), ("us-1", "rewrite-json-field")] {
        let wasm = mockforge_plugins::examples::plugin_file(name);
        let sha256 = mockforge_plugins::checksum_hex(&mockforge_plugins::checksum(&wasm)).unwrap().to_owned();
        let cached = std::fs::read(cluster.dir.0.join(edge).join("plugins").join(format!("{sha256}.wasm")));
        assert_eq!(cached.ok(), Some(wasm), "cached {name} on {edge}");
    }

    cluster.stop().await;
}

#[tokio::test]
async fn limit_overrides_reach_remote_edges() {
    let cluster = Cluster::start(None).await;
    let api = customer_at(&cluster.api, "capped").await;
    let id = deploy(&api, "limited").await;
    wait_on_edges(&cluster, &[0, 1], "capped", "limited", 200, Duration::from_secs(30)).await;
    let (_, deployment) = api.get(&format!("/api/v1/deployments/{id}")).await;
    let org_id = deployment["org_id"].as_str().expect("org_id in the deployment").to_owned();

    // Overrides are set by a platform administrator signed in with a password.
    customer_at(&cluster.api, "admin").await;
    let (status, session) = Api::new(&cluster.api)
        .post("/api/v1/auth/login", json!({"email": ADMIN_EMAILS, "password": "correct-horse-battery"}))
        .await;
    assert_eq!(status, 200, "admin login: {session}");
    let admin = Api::new(&cluster.api).with_token(session["token"].as_str().unwrap());
    let (status, body) =
        admin.put(&format!("/api/v1/admin/organizations/{org_id}/limits"), json!({"requests_per_minute": 2})).await;
    assert_eq!(status, 200, "set limits: {body}");

    // Each edge enforces its own per-minute window. Both already served more than two of the
    // organization's requests this minute, so each rejects the next one once the override has
    // arrived.
    let client = reqwest::Client::new();
    for edge in &cluster.edges {
        let deadline = Instant::now() + Duration::from_secs(10);
        let rejection = loop {
            let response = client.get(edge.mock_url("capped", "limited")).send().await.unwrap();
            if response.status() == 429 {
                let retry_after = response.headers().get("retry-after").cloned();
                let body: Value = response.json().await.unwrap();
                break (retry_after, body);
            }
            assert_eq!(response.status(), 200, "edge {}", edge.name);
            assert!(Instant::now() < deadline, "edge {} never applied the override\n{}", edge.name, cluster.logs());
            // Slower than the free plan's 10 requests per second and 60 per minute, so only
            // the override can reject a request.
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let (retry_after, body) = rejection;
        assert_eq!(body["code"], "RATE_LIMIT_EXCEEDED", "edge {}: {body}", edge.name);
        assert_eq!(body["details"]["limit"], 2, "edge {}: {body}", edge.name);
        assert_eq!(body["details"]["window"], "minute", "edge {}: {body}", edge.name);
        assert!(retry_after.is_some(), "edge {} sent no Retry-After", edge.name);
    }

    cluster.stop().await;
}
