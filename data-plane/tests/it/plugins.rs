//! Plugins on a real edge: the example plugins change real responses, and hostile plugins fail
//! their own requests with 502 `PLUGIN_FAILED` while other deployments keep working.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mockforge_edge::plugins::PluginChain;
use mockforge_edge::{Edge, EdgeConfig};
use mockforge_plugins::examples::plugin_file;
use mockforge_plugins::PluginHostConfig;
use mockforge_snapshot::{
    ApplyOutcome, DeploymentRecord, FeedError, PlanLimits, PlanTable, PluginSource, RequestLog, SnapshotFeed,
    TelemetrySink,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{
    json_body, record, shared_load, test_config, FakeFeed, FakeSink, LoadGuard, ORDERS, PETSTORE, PETSTORE_WITH_IDS,
    TEST_HOSTS,
};

/// Plugin files by checksum, as the control plane would serve them.
#[derive(Default)]
struct FakeSource {
    files: HashMap<String, Arc<[u8]>>,
}

impl FakeSource {
    /// Adds a built example plugin and returns its checksum.
    fn add(&mut self, name: &str) -> String {
        let wasm = plugin_file(name);
        let checksum = mockforge_plugins::checksum(&wasm);
        self.files.insert(checksum.clone(), Arc::from(wasm));
        checksum
    }
}

#[async_trait::async_trait]
impl PluginSource for FakeSource {
    async fn plugin(&self, checksum: &str) -> Result<Arc<[u8]>, FeedError> {
        self.files
            .get(checksum)
            .cloned()
            .ok_or_else(|| FeedError::Rejected(format!("no plugin with checksum {checksum}")))
    }
}

/// Builds a deployment of `document` whose configuration lists one plugin.
fn with_plugin(org: &str, slug: &str, document: &str, name: &str, checksum: &str, config: serde_json::Value) -> DeploymentRecord {
    let mut record = record(org, slug, document);
    record.config = json!({
        "plugins": [{ "name": name, "version": "1.0.0", "checksum": checksum, "config": config }]
    });
    record
}

struct PluginEdge {
    addr: SocketAddr,
    feed: Arc<FakeFeed>,
    handle: Option<mockforge_edge::EdgeHandle>,
    edge: Edge,
    _load: LoadGuard,
}

impl PluginEdge {
    async fn start(source: FakeSource, records: Vec<DeploymentRecord>) -> PluginEdge {
        PluginEdge::start_with(test_config(), source, records).await
    }

    async fn start_with(config: EdgeConfig, source: FakeSource, records: Vec<DeploymentRecord>) -> PluginEdge {
        let load = shared_load().await;
        let feed = FakeFeed::new(records);
        let edge = Edge::new(config);
        edge.enable_plugins(Arc::new(source), PluginHostConfig::default());
        let handle = edge.start().expect("the edge failed to start");
        let follower = edge.clone();
        let followed: Arc<dyn SnapshotFeed> = feed.clone();
        tokio::spawn(async move { follower.follow(followed).await });
        // Compiling plugins takes several seconds in a debug build.
        feed.report_within(feed.version(), Duration::from_secs(60)).await;
        PluginEdge {
            addr: handle.local_addr(),
            feed,
            handle: Some(handle),
            edge,
            _load: load,
        }
    }

    fn client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10));
        for host in TEST_HOSTS {
            builder = builder.resolve(host, self.addr);
        }
        builder.build().unwrap()
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.addr.port())
    }

    async fn shutdown(mut self) {
        if let Some(handle) = self.handle.take() {
            tokio::task::spawn_blocking(move || handle.shutdown()).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_plugins_change_responses() {
    let mut source = FakeSource::default();
    let add_header = source.add("add-header");
    let api_key = source.add("require-api-key");
    let rewrite = source.add("rewrite-json-field");
    let every_nth = source.add("every-nth-429");
    let records = vec![
        with_plugin("acme", "headers", PETSTORE, "add-header", &add_header, json!({"name": "x-plugin", "value": "on"})),
        with_plugin("acme", "keyed", PETSTORE, "require-api-key", &api_key, json!({"keys": ["k-1"]})),
        with_plugin("acme", "rewrite", PETSTORE, "rewrite-json-field", &rewrite, json!({"pointer": "/name", "value": "Fido"})),
        with_plugin("acme", "limited", PETSTORE, "every-nth-429", &every_nth, json!({"every": 2})),
    ];
    let edge = PluginEdge::start(source, records).await;
    let client = edge.client();

    let response = client.get(edge.url("acme.localhost", "/headers/pets/1")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-plugin"], "on");
    assert_eq!(json_body(response).await, json!({"id": 1, "name": "Rex"}));

    let response = client.get(edge.url("acme.localhost", "/keyed/pets/1")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_body(response).await["code"], "UNAUTHORIZED");
    let response = client
        .get(edge.url("acme.localhost", "/keyed/pets/1"))
        .header("x-api-key", "k-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let response = client.get(edge.url("acme.localhost", "/rewrite/pets/1")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, json!({"id": 1, "name": "Fido"}));

    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = client.get(edge.url("acme.localhost", "/limited/pets")).send().await.unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 429, 200, 429]);

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_see_operation_id() {
    let mut source = FakeSource::default();
    let add_header = source.add("add-header");
    let legacy = source.add("legacy-pass-through");
    let echo = json!({"name": "x-operation", "value": "id={operationId};route={route}"});
    let records = vec![
        with_plugin("acme", "ids", PETSTORE_WITH_IDS, "add-header", &add_header, echo.clone()),
        with_plugin("acme", "no-ids", PETSTORE, "add-header", &add_header, echo),
        with_plugin(
            "acme",
            "only-get-pet",
            PETSTORE_WITH_IDS,
            "add-header",
            &add_header,
            json!({"name": "x-only", "value": "get-pet", "operations": ["getPet"]}),
        ),
        with_plugin("acme", "legacy", PETSTORE_WITH_IDS, "legacy-pass-through", &legacy, json!(null)),
    ];
    let edge = PluginEdge::start(source, records).await;
    let client = edge.client();

    let cases = [
        ("/ids/pets/1", StatusCode::OK, "id=getPet;route=GET /pets/{petId}"),
        ("/ids/pets", StatusCode::OK, "id=listPets;route=GET /pets"),
        ("/ids/owners", StatusCode::NOT_FOUND, "id=;route="),
        ("/no-ids/pets/1", StatusCode::OK, "id=;route=GET /pets/{petId}"),
    ];
    for (path, status, expected) in cases {
        let response = client.get(edge.url("acme.localhost", path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(response.headers()["x-operation"], expected, "{path}");
    }

    let response = client.get(edge.url("acme.localhost", "/only-get-pet/pets/1")).send().await.unwrap();
    assert_eq!(response.headers()["x-only"], "get-pet");
    assert_eq!(json_body(response).await, json!({"id": 1, "name": "Rex"}));
    let response = client.get(edge.url("acme.localhost", "/only-get-pet/pets")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("x-only").is_none(), "listPets is not listed: {:?}", response.headers());

    // The 0.1.0 plugin returns the request through `modify` and reports the route it got.
    let response = client.get(edge.url("acme.localhost", "/legacy/pets/1")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-legacy-operation"], "GET /pets/{petId}");
    assert_eq!(json_body(response).await, json!({"id": 1, "name": "Rex"}));
    let response = client.get(edge.url("acme.localhost", "/legacy/owners")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-legacy-operation"], "none");

    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_fail_alone() {
    let hostile = ["hostile-loop", "hostile-alloc", "hostile-recursion", "hostile-trap", "hostile-garbage"];
    let mut source = FakeSource::default();
    let mut records = vec![record("globex", "orders", ORDERS)];
    for name in hostile {
        let checksum = source.add(name);
        records.push(with_plugin("acme", name, PETSTORE, name, &checksum, json!(null)));
    }
    let edge = PluginEdge::start(source, records).await;
    let client = edge.client();

    for name in hostile {
        let started = Instant::now();
        let response = client.get(edge.url("acme.localhost", &format!("/{name}/pets"))).send().await.unwrap();
        let elapsed = started.elapsed();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY, "{name}");
        let body = json_body(response).await;
        assert_eq!(body["code"], "PLUGIN_FAILED", "{name}: {body}");
        assert_eq!(body["details"]["plugin"], name, "{name}: {body}");
        assert_eq!(body["details"]["hook"], "on-request", "{name}: {body}");
        assert!(elapsed < Duration::from_secs(2), "{name} took {elapsed:?}");

        let response = client.get(edge.url("globex.localhost", "/orders/orders")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "after {name}");
    }

    let metrics = edge.edge.metrics_text();
    assert!(metrics.contains("mockforge_edge_plugin_failures_total{kind=\"timeout\"} 1"), "{metrics}");
    assert!(metrics.contains("mockforge_edge_plugin_failures_total{kind=\"trap\"} 2"), "{metrics}");
    assert!(metrics.contains("mockforge_edge_plugin_failures_total{kind=\"out_of_memory\"} 1"), "{metrics}");
    assert!(metrics.contains("mockforge_edge_plugin_failures_total{kind=\"invalid_result\"} 1"), "{metrics}");
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looping_plugin_yields_worker() {
    const LOOPING_REQUESTS: usize = 8;
    let mut source = FakeSource::default();
    let looping = source.add("hostile-loop");
    let records = vec![
        with_plugin("acme", "looping", PETSTORE, "hostile-loop", &looping, json!(null)),
        record("globex", "orders", ORDERS),
    ];
    let config = EdgeConfig {
        threads: 1,
        ..test_config()
    };
    let edge = PluginEdge::start_with(config, source, records).await;
    let client = edge.client();
    // Concurrent requests open one connection each, so the looping requests below reuse open
    // connections and reach the edge together.
    let warm_up = (0..=LOOPING_REQUESTS).map(|_| client.get(edge.url("globex.localhost", "/orders/orders")).send());
    let mut bodies = Vec::new();
    for response in futures_util::future::join_all(warm_up).await {
        bodies.push(json_body(response.unwrap()).await);
    }
    let expected_orders = bodies.pop().unwrap();
    assert_ne!(expected_orders, serde_json::Value::Null);

    let started = Instant::now();
    let looping_requests: Vec<_> = (0..LOOPING_REQUESTS)
        .map(|_| {
            let request = client.get(edge.url("acme.localhost", "/looping/pets")).send();
            tokio::spawn(async move {
                let response = request.await.unwrap();
                let finished = Instant::now();
                (response.status(), json_body(response).await, finished)
            })
        })
        .collect();
    // The looping requests share the only worker thread and each runs for its 10 ms deadline,
    // so they are still running after this pause.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let other_started = Instant::now();
    let response = client.get(edge.url("globex.localhost", "/orders/orders")).send().await.unwrap();
    let other_status = response.status();
    let other_body = json_body(response).await;
    let other_finished = Instant::now();

    let mut looping_finished = Vec::new();
    for request in looping_requests {
        let (status, body, finished) = request.await.unwrap();
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_eq!(body["code"], "PLUGIN_FAILED", "{body}");
        assert_eq!(body["details"]["plugin"], "hostile-loop", "{body}");
        assert_eq!(body["details"]["reason"], "the plugin timed out after 10 ms", "{body}");
        looping_finished.push(finished);
    }
    assert_eq!(other_status, StatusCode::OK, "{other_body}");
    assert_eq!(other_body, expected_orders);

    // A worker that ran each looping hook to its deadline in one go would finish the first
    // looping request before it reads the other deployment's request.
    let first_looping = looping_finished.iter().min().copied().unwrap();
    let looping_latency = first_looping - started;
    let other_latency = other_finished - other_started;
    assert!(
        other_finished < first_looping,
        "the other deployment's request finished {:?} after the first looping request",
        other_finished - first_looping
    );
    assert!(
        other_latency < looping_latency,
        "the other deployment's request took {other_latency:?}, the fastest looping request {looping_latency:?}"
    );
    let metrics = edge.edge.metrics_text();
    let expected_metric = format!("mockforge_edge_plugin_failures_total{{kind=\"timeout\"}} {LOOPING_REQUESTS}");
    assert!(metrics.contains(&expected_metric), "{metrics}");
    edge.shutdown().await;
}

/// Builds a snapshot with one petstore deployment, `acme/looping`, that runs `hostile-loop`.
fn looping_snapshot() -> mockforge_edge::Snapshot {
    let mock = mockforge_engine::compile(PETSTORE, mockforge_engine::MockOptions::default())
        .unwrap_or_else(|error| panic!("the petstore document does not compile: {error:?}"))
        .mock;
    let record = record("acme", "looping", PETSTORE);
    let served = Arc::new(mockforge_edge::ServedDeployment {
        id: record.id,
        org_id: record.org_id,
        org_slug: record.org_slug,
        slug: record.slug,
        plan: record.plan,
        document_sha256: record.document_sha256,
        config: record.config,
        mock: Arc::new(mock),
        limits: mockforge_snapshot::PlanLimits::default(),
        period_start: record.period_start,
        chaos: None,
        proxy: None,
    });
    let host = mockforge_plugins::PluginHost::new(PluginHostConfig::default()).expect("the plugin host starts");
    let wasm = plugin_file("hostile-loop");
    let loaded = host.load(&mockforge_plugins::checksum(&wasm), &wasm).expect("hostile-loop loads");
    let attached = loaded.attach("null".to_owned());
    let chain = PluginChain::from_attached([("hostile-loop".to_owned(), "1.0.0".to_owned(), attached)]);
    mockforge_edge::Snapshot::new(1, [served.clone()]).with_plugins(HashMap::from([(served.id, Arc::new(chain))]))
}

#[test]
fn blocking_handle_inside_runtime() {
    let snapshot = looping_snapshot();
    let request = http::Request::builder()
        .uri("/looping/pets")
        .header(http::header::HOST, "acme.localhost")
        .body(())
        .unwrap()
        .into_parts()
        .0;

    // `handle` blocks the runtime's only thread while the plugin yields at every epoch tick.
    // The runtime runs on its own thread, so a hang fails the test instead of stalling it.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let response = runtime.block_on(async { mockforge_edge::handle(&snapshot, "localhost", &request, b"") });
        let _ = sender.send(response);
    });
    let response = receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("handle did not return inside a tokio task");

    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["code"], "PLUGIN_FAILED", "{body}");
    assert_eq!(body["details"]["reason"], "the plugin timed out after 10 ms", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_plugin_fails_deployment() {
    let missing = mockforge_plugins::checksum(b"no such plugin");
    let broken = with_plugin("acme", "broken", PETSTORE, "ghost", &missing, json!({}));
    let broken_id = broken.id;
    let edge = PluginEdge::start(FakeSource::default(), vec![broken, record("globex", "orders", ORDERS)]).await;

    match edge.feed.outcome_for(broken_id).await {
        ApplyOutcome::Failed { reason } => assert!(reason.contains("ghost@1.0.0"), "{reason}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    let client = edge.client();
    let response = client.get(edge.url("acme.localhost", "/broken/pets")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = client.get(edge.url("globex.localhost", "/orders/orders")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_failure_writes_error_log() {
    let mut source = FakeSource::default();
    let trap = source.add("hostile-trap");
    let alloc = source.add("hostile-alloc");
    let pass_through = source.add("pass-through");
    let trapping = with_plugin("acme", "trapping", PETSTORE, "hostile-trap", &trap, json!(null));
    let exhausting = with_plugin("acme", "exhausting", PETSTORE, "hostile-alloc", &alloc, json!(null));
    let passing = with_plugin("acme", "passing", PETSTORE, "pass-through", &pass_through, json!(null));
    let ids = [trapping.id, exhausting.id, passing.id];
    let edge = PluginEdge::start(source, vec![trapping, exhausting, passing]).await;
    let sink = Arc::new(FakeSink::default());
    let reporter = {
        let edge = edge.edge.clone();
        let sink: Arc<dyn TelemetrySink> = sink.clone();
        tokio::spawn(async move { edge.report_to(sink).await })
    };
    let client = edge.client();

    let mut request_ids = Vec::new();
    for (slug, status) in [("trapping", StatusCode::BAD_GATEWAY), ("exhausting", StatusCode::BAD_GATEWAY), ("passing", StatusCode::OK)] {
        let response = client.get(edge.url("acme.localhost", &format!("/{slug}/pets/1"))).send().await.unwrap();
        assert_eq!(response.status(), status, "{slug}");
        let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        request_ids.push(request_id);
    }
    edge.shutdown().await;
    tokio::time::timeout(Duration::from_secs(10), reporter)
        .await
        .expect("report_to did not return after shutdown")
        .unwrap();

    let batches = sink.batches();
    let logs: Vec<&RequestLog> = batches.iter().flat_map(|batch| &batch.logs).collect();
    let log_of = |id| {
        let matching: Vec<&&RequestLog> = logs.iter().filter(|log| log.deployment_id == id).collect();
        assert_eq!(matching.len(), 1, "{logs:?}");
        *matching[0]
    };

    let trapped = log_of(ids[0]);
    assert_eq!(trapped.status, 502);
    assert_eq!(trapped.method, "GET");
    assert_eq!(trapped.path, "/pets/1");
    assert_eq!(trapped.request_id, request_ids[0]);
    let message = trapped.message.as_deref().expect("the failed request's log has a message");
    assert!(
        message.starts_with("plugin hostile-trap version 1.0.0 failed in on-request (trap): the plugin trapped"),
        "{message}"
    );

    let exhausted = log_of(ids[1]);
    assert_eq!(exhausted.status, 502);
    assert_eq!(exhausted.request_id, request_ids[1]);
    assert_eq!(
        exhausted.message.as_deref(),
        Some(
            "plugin hostile-alloc version 1.0.0 failed in on-request (out_of_memory): \
             the plugin exceeded its memory limit of 16777216 bytes"
        )
    );

    let passed = log_of(ids[2]);
    assert_eq!(passed.status, 200);
    assert_eq!(passed.message, None);
}

/// Builds a plan table with `free` (no plugin limits, so the edge's defaults apply) and the
/// plans of `plans`.
fn plans_with(plans: &[(&str, PlanLimits)]) -> PlanTable {
    let mut table = std::collections::BTreeMap::from([("free".to_owned(), PlanLimits::default())]);
    for (name, limits) in plans {
        table.insert((*name).to_owned(), limits.clone());
    }
    PlanTable::new(table)
}

/// Builds a deployment of the petstore on `plan` that runs plugin `name`.
fn on_plan(org: &str, slug: &str, plan: &str, name: &str, checksum: &str) -> DeploymentRecord {
    let mut record = with_plugin(org, slug, PETSTORE, name, checksum, json!(null));
    record.plan = plan.to_owned();
    record
}

/// Requests `path` on `host` and returns the `details.reason` of the expected 502
/// `PLUGIN_FAILED` response.
async fn plugin_failure_reason(edge: &PluginEdge, host: &str, path: &str) -> String {
    let response = edge.client().get(edge.url(host, path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY, "{host}{path}");
    let body = json_body(response).await;
    assert_eq!(body["code"], "PLUGIN_FAILED", "{host}{path}: {body}");
    assert_eq!(body["details"]["hook"], "on-request", "{host}{path}: {body}");
    body["details"]["reason"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_call_timeouts_apply_per_org() {
    let mut source = FakeSource::default();
    let looping = source.add("hostile-loop");
    let config = EdgeConfig {
        plans: plans_with(&[
            ("short", PlanLimits { plugin_call_timeout_ms: Some(5), ..Default::default() }),
            ("long", PlanLimits { plugin_call_timeout_ms: Some(40), ..Default::default() }),
        ]),
        ..test_config()
    };
    let records = vec![
        on_plan("acme", "looping", "short", "hostile-loop", &looping),
        on_plan("globex", "looping", "long", "hostile-loop", &looping),
    ];
    let edge = PluginEdge::start_with(config, source, records).await;

    let short = plugin_failure_reason(&edge, "acme.localhost", "/looping/pets").await;
    assert_eq!(short, "the plugin timed out after 5 ms");
    let long = plugin_failure_reason(&edge, "globex.localhost", "/looping/pets").await;
    assert_eq!(long, "the plugin timed out after 40 ms");

    let metrics = edge.edge.metrics_text();
    assert!(metrics.contains("mockforge_edge_plugin_failures_total{kind=\"timeout\"} 2"), "{metrics}");
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_memory_limits_apply_per_org() {
    let mut source = FakeSource::default();
    let alloc = source.add("hostile-alloc");
    let config = EdgeConfig {
        plans: plans_with(&[("tiny", PlanLimits { plugin_memory_bytes: Some(4 * 1024 * 1024), ..Default::default() })]),
        ..test_config()
    };
    let records = vec![
        on_plan("acme", "exhausting", "tiny", "hostile-alloc", &alloc),
        on_plan("globex", "exhausting", "free", "hostile-alloc", &alloc),
    ];
    let edge = PluginEdge::start_with(config, source, records).await;

    let tiny = plugin_failure_reason(&edge, "acme.localhost", "/exhausting/pets").await;
    assert_eq!(tiny, "the plugin exceeded its memory limit of 4194304 bytes");
    let default = plugin_failure_reason(&edge, "globex.localhost", "/exhausting/pets").await;
    assert_eq!(default, "the plugin exceeded its memory limit of 16777216 bytes", "the edge's default applies");
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_plans_set_plugin_limits() {
    let mut source = FakeSource::default();
    let alloc = source.add("hostile-alloc");
    let looping = source.add("hostile-loop");
    let config = EdgeConfig { plans: PlanTable::default(), ..test_config() };
    let records = vec![
        on_plan("acme", "exhausting", "pro", "hostile-alloc", &alloc),
        on_plan("acme", "looping", "pro", "hostile-loop", &looping),
        on_plan("globex", "exhausting", "free", "hostile-alloc", &alloc),
        on_plan("globex", "looping", "free", "hostile-loop", &looping),
    ];
    let edge = PluginEdge::start_with(config, source, records).await;

    // 64 MiB is above the edge's default of 16 MiB, so the pool must have been sized for it.
    let pro = plugin_failure_reason(&edge, "acme.localhost", "/exhausting/pets").await;
    assert_eq!(pro, "the plugin exceeded its memory limit of 67108864 bytes");
    let pro = plugin_failure_reason(&edge, "acme.localhost", "/looping/pets").await;
    assert_eq!(pro, "the plugin timed out after 50 ms");
    let free = plugin_failure_reason(&edge, "globex.localhost", "/exhausting/pets").await;
    assert_eq!(free, "the plugin exceeded its memory limit of 16777216 bytes");
    let free = plugin_failure_reason(&edge, "globex.localhost", "/looping/pets").await;
    assert_eq!(free, "the plugin timed out after 10 ms");
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_change_rebuilds_chain() {
    let mut source = FakeSource::default();
    let looping = source.add("hostile-loop");
    let config = EdgeConfig {
        plans: plans_with(&[
            ("short", PlanLimits { plugin_call_timeout_ms: Some(5), ..Default::default() }),
            ("long", PlanLimits { plugin_call_timeout_ms: Some(40), ..Default::default() }),
        ]),
        ..test_config()
    };
    let record = on_plan("acme", "looping", "short", "hostile-loop", &looping);
    let edge = PluginEdge::start_with(config, source, vec![record.clone()]).await;
    let before = plugin_failure_reason(&edge, "acme.localhost", "/looping/pets").await;
    assert_eq!(before, "the plugin timed out after 5 ms");

    // Only the plan changes, so `config.plugins` is the same value as before.
    let upgraded = DeploymentRecord { plan: "long".to_owned(), ..record };
    let version = edge.feed.upsert(upgraded);
    let report = edge.feed.report_within(version, Duration::from_secs(60)).await;
    assert!(
        report.outcomes.iter().all(|(_, outcome)| matches!(outcome, ApplyOutcome::Served)),
        "{report:?}"
    );

    let after = plugin_failure_reason(&edge, "acme.localhost", "/looping/pets").await;
    assert_eq!(after, "the plugin timed out after 40 ms");
    edge.shutdown().await;
}
