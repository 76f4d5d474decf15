//! Test fixtures: an in-memory control plane, OpenAPI documents and a running edge.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockforge_edge::{Edge, EdgeConfig, EdgeHandle};
use mockforge_snapshot::{
    ApplyOutcome, ApplyReport, DeploymentRecord, FeedError, PlanLimits, PlanTable, SnapshotDelta,
    SnapshotFeed, TelemetryBatch, TelemetrySink,
};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use uuid::Uuid;

/// Base domain every test edge uses.
pub const BASE_DOMAIN: &str = "localhost";

/// Organization hosts the test client resolves to the edge.
pub const TEST_HOSTS: [&str; 3] = ["acme.localhost", "globex.localhost", "nobody.localhost"];

/// Pets API with a list, an item route and examples.
pub const PETSTORE: &str = r#"openapi: 3.0.3
info:
  title: Pets
  version: "1.0"
paths:
  /pets:
    get:
      responses:
        "200":
          description: All pets
          content:
            application/json:
              example:
                - id: 1
                  name: Rex
  /pets/{petId}:
    get:
      parameters:
        - name: petId
          in: path
          required: true
          schema:
            type: integer
      responses:
        "200":
          description: One pet
          content:
            application/json:
              example:
                id: 1
                name: Rex
"#;

/// Pets API like [`PETSTORE`], with `operationId`s `listPets` and `getPet`.
pub const PETSTORE_WITH_IDS: &str = r#"openapi: 3.0.3
info:
  title: Pets
  version: "1.0"
paths:
  /pets:
    get:
      operationId: listPets
      responses:
        "200":
          description: All pets
          content:
            application/json:
              example:
                - id: 1
                  name: Rex
  /pets/{petId}:
    get:
      operationId: getPet
      parameters:
        - name: petId
          in: path
          required: true
          schema:
            type: integer
      responses:
        "200":
          description: One pet
          content:
            application/json:
              example:
                id: 1
                name: Rex
"#;

/// Orders API with one route, in JSON.
pub const ORDERS: &str = r#"{
  "openapi": "3.0.3",
  "info": {"title": "Orders", "version": "1.0"},
  "paths": {
    "/orders": {
      "get": {
        "responses": {
          "200": {
            "description": "All orders",
            "content": {"application/json": {"example": [{"id": "o-1"}]}}
          }
        }
      }
    }
  }
}"#;

/// Text that is no OpenAPI document.
pub const BROKEN: &str = "this is not an OpenAPI document";

/// Builds a record with the document's real SHA-256.
pub fn record(org: &str, slug: &str, document: &str) -> DeploymentRecord {
    DeploymentRecord {
        id: Uuid::new_v4(),
        org_id: org_id(org),
        org_slug: org.to_owned(),
        slug: slug.to_owned(),
        plan: "free".to_owned(),
        document: Arc::from(document),
        document_sha256: hex::encode(Sha256::digest(document.as_bytes())),
        config: serde_json::json!({}),
        period_start: None,
        limit_overrides: None,
    }
}

/// Derives a stable organization id from its slug.
fn org_id(org: &str) -> Uuid {
    let digest = Sha256::digest(org.as_bytes());
    Uuid::from_slice(&digest[..16]).unwrap()
}

/// The control plane's data: records with the version they last changed at.
#[derive(Default)]
struct FeedState {
    version: u64,
    records: BTreeMap<Uuid, (u64, DeploymentRecord)>,
    removed: Vec<(u64, Uuid)>,
}

/// An in-memory [`SnapshotFeed`] with real deltas.
pub struct FakeFeed {
    state: watch::Sender<FeedState>,
    reports: Mutex<Vec<ApplyReport>>,
    report_count: watch::Sender<usize>,
    failing_calls: AtomicUsize,
    changes_since_calls: AtomicUsize,
}

impl FakeFeed {
    pub fn new(records: impl IntoIterator<Item = DeploymentRecord>) -> Arc<FakeFeed> {
        let mut state = FeedState {
            version: 1,
            ..FeedState::default()
        };
        for record in records {
            state.records.insert(record.id, (1, record));
        }
        Arc::new(FakeFeed {
            state: watch::channel(state).0,
            reports: Mutex::new(Vec::new()),
            report_count: watch::channel(0).0,
            failing_calls: AtomicUsize::new(0),
            changes_since_calls: AtomicUsize::new(0),
        })
    }

    pub fn version(&self) -> u64 {
        self.state.borrow().version
    }

    /// Adds or replaces a record and returns the new version.
    pub fn upsert(&self, record: DeploymentRecord) -> u64 {
        let mut version = 0;
        self.state.send_modify(|state| {
            state.version += 1;
            version = state.version;
            state.records.insert(record.id, (state.version, record));
        });
        version
    }

    /// Removes a record and returns the new version.
    pub fn remove(&self, id: Uuid) -> u64 {
        let mut version = 0;
        self.state.send_modify(|state| {
            state.version += 1;
            version = state.version;
            state.records.remove(&id);
            state.removed.push((state.version, id));
        });
        version
    }

    /// Replaces all data with `records` at version 1, like a control plane restored from an
    /// old backup.
    pub fn reset(&self, records: impl IntoIterator<Item = DeploymentRecord>) {
        self.state.send_modify(|state| {
            *state = FeedState {
                version: 1,
                ..FeedState::default()
            };
            for record in records {
                state.records.insert(record.id, (1, record));
            }
        });
    }

    /// Makes the next `calls` feed calls fail as if the control plane were down.
    pub fn fail_next_calls(&self, calls: usize) {
        self.failing_calls.store(calls, Ordering::SeqCst);
    }

    pub fn changes_since_calls(&self) -> usize {
        self.changes_since_calls.load(Ordering::SeqCst)
    }

    pub fn reports(&self) -> Vec<ApplyReport> {
        self.reports.lock().unwrap().clone()
    }

    /// Waits up to 10 s for a report of `version` or later.
    pub async fn report_for(&self, version: u64) -> ApplyReport {
        self.report_within(version, Duration::from_secs(10)).await
    }

    /// Waits up to `limit` for a report of `version` or later.
    pub async fn report_within(&self, version: u64, limit: Duration) -> ApplyReport {
        let mut count = self.report_count.subscribe();
        let found = tokio::time::timeout(limit, async {
            loop {
                if let Some(report) = self
                    .reports()
                    .into_iter()
                    .find(|report| report.version >= version)
                {
                    return report;
                }
                count.changed().await.unwrap();
            }
        })
        .await;
        found
            .unwrap_or_else(|_| panic!("no report for version {version}; got {:?}", self.reports()))
    }

    /// Waits up to 10 s for a report that lists deployment `id`, and returns its outcome.
    pub async fn outcome_for(&self, id: Uuid) -> ApplyOutcome {
        let mut count = self.report_count.subscribe();
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(outcome) = self
                    .reports()
                    .iter()
                    .rev()
                    .find_map(|report| outcome_of(report, id))
                {
                    return outcome;
                }
                count.changed().await.unwrap();
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no report lists {id}; got {:?}", self.reports()))
    }

    fn take_failure(&self) -> Result<(), FeedError> {
        let failed = self
            .failing_calls
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |calls| {
                calls.checked_sub(1)
            })
            .is_ok();
        if failed {
            Err(FeedError::Unavailable(
                "the fake control plane is down".to_owned(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl SnapshotFeed for FakeFeed {
    async fn changes_since(&self, version: u64) -> Result<SnapshotDelta, FeedError> {
        self.changes_since_calls.fetch_add(1, Ordering::SeqCst);
        self.take_failure()?;
        let state = self.state.borrow();
        let full = version == 0;
        let upserts = state
            .records
            .values()
            .filter(|(changed, _)| full || *changed > version)
            .map(|(_, record)| record.clone())
            .collect();
        let removals = if full {
            Vec::new()
        } else {
            state
                .removed
                .iter()
                .filter(|(removed, id)| *removed > version && !state.records.contains_key(id))
                .map(|(_, id)| *id)
                .collect()
        };
        Ok(SnapshotDelta {
            version: state.version,
            full,
            upserts,
            removals,
        })
    }

    async fn wait_for_change(&self, version: u64, timeout: Duration) -> Result<u64, FeedError> {
        self.take_failure()?;
        let mut state = self.state.subscribe();
        // Any other version ends the wait, so a reset to an older version is reported at once.
        let changed = state.wait_for(|state| state.version != version);
        let _ = tokio::time::timeout(timeout, changed).await;
        let current = state.borrow().version;
        Ok(current)
    }

    async fn report_applied(&self, report: ApplyReport) -> Result<(), FeedError> {
        self.reports.lock().unwrap().push(report);
        self.report_count.send_modify(|count| *count += 1);
        Ok(())
    }
}

/// Returns the outcome a report lists for a deployment.
pub fn outcome_of(report: &ApplyReport, id: Uuid) -> Option<ApplyOutcome> {
    report
        .outcomes
        .iter()
        .find(|(outcome_id, _)| *outcome_id == id)
        .map(|(_, outcome)| outcome.clone())
}

/// Settings for a test edge on a free loopback port. The `free` plan of its plan table has no
/// limits, so tests that are not about limits never hit one.
pub fn test_config() -> EdgeConfig {
    EdgeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        base_domain: BASE_DOMAIN.to_owned(),
        node_name: "test-node".to_owned(),
        max_request_body_bytes: 64 * 1024,
        threads: 1,
        plans: free_plan(PlanLimits::default()),
        ..EdgeConfig::default()
    }
}

/// Keeps a load test apart from timing-sensitive tests in the same binary. Every test edge
/// keeps a read guard while it runs. A load test takes the write guard, which waits for the
/// running edges and makes new ones wait until the load test ends.
static LOAD: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A guard held for a test edge's whole life.
pub type LoadGuard = Box<dyn std::any::Any + Send + Sync>;

/// Waits until no load test runs, and keeps new ones from starting while the guard lives.
pub async fn shared_load() -> LoadGuard {
    Box::new(LOAD.read().await)
}

/// Waits until no other test edge runs, and keeps new ones from starting while the guard lives.
pub async fn exclusive_load() -> LoadGuard {
    Box::new(LOAD.write().await)
}

/// An edge that serves on loopback and follows a fake feed.
pub struct TestEdge {
    pub edge: Edge,
    pub feed: Arc<FakeFeed>,
    pub addr: SocketAddr,
    handle: Option<EdgeHandle>,
    follow: tokio::task::JoinHandle<()>,
    _load: LoadGuard,
}

impl TestEdge {
    /// Starts an edge, follows `feed` and waits until the feed's current version is applied.
    pub async fn start(feed: Arc<FakeFeed>) -> TestEdge {
        Self::start_with(feed, test_config()).await
    }

    pub async fn start_with(feed: Arc<FakeFeed>, config: EdgeConfig) -> TestEdge {
        let load = shared_load().await;
        Self::start_holding(feed, config, load).await
    }

    /// Starts an edge for a load test, which runs while no other test edge does.
    pub async fn start_alone(feed: Arc<FakeFeed>) -> TestEdge {
        let load = exclusive_load().await;
        Self::start_holding(feed, test_config(), load).await
    }

    async fn start_holding(feed: Arc<FakeFeed>, config: EdgeConfig, load: LoadGuard) -> TestEdge {
        let edge = Edge::new(config);
        let handle = edge.start().expect("the edge failed to start");
        let addr = handle.local_addr();
        let follower = edge.clone();
        let followed: Arc<dyn SnapshotFeed> = feed.clone();
        let follow = tokio::spawn(async move { follower.follow(followed).await });
        let test_edge = TestEdge {
            edge,
            feed,
            addr,
            handle: Some(handle),
            follow,
            _load: load,
        };
        test_edge.feed.report_for(test_edge.feed.version()).await;
        test_edge
    }

    /// Returns `http://{host}:{port}{path}`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.addr.port())
    }

    /// Returns an HTTP/1.1 client that resolves [`TEST_HOSTS`] to this edge.
    pub fn client(&self) -> reqwest::Client {
        self.client_builder().build().unwrap()
    }

    /// Returns a client that speaks HTTP/2 without TLS from the first byte.
    pub fn h2c_client(&self) -> reqwest::Client {
        self.client_builder()
            .http2_prior_knowledge()
            .build()
            .unwrap()
    }

    fn client_builder(&self) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10));
        for host in TEST_HOSTS {
            builder = builder.resolve(host, self.addr);
        }
        builder
    }

    /// Waits up to `limit` until the edge serves a snapshot of `version` or later.
    pub async fn wait_for_version(&self, version: u64, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.edge.snapshot().version() < version {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the edge still serves version {} after {limit:?}; expected {version}",
                self.edge.snapshot().version()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Returns the admin listener's address; panics when the config set none.
    pub fn admin_addr(&self) -> SocketAddr {
        self.handle
            .as_ref()
            .and_then(EdgeHandle::admin_addr)
            .expect("the test edge has no admin listener")
    }

    /// Returns the TLS listener's address; panics when the config set none.
    pub fn tls_addr(&self) -> SocketAddr {
        self.handle
            .as_ref()
            .and_then(EdgeHandle::tls_addr)
            .expect("the test edge has no TLS listener")
    }

    /// Takes the server handle, for tests that shut the server down themselves.
    pub fn take_handle(&mut self) -> EdgeHandle {
        self.handle.take().expect("the handle was already taken")
    }

    /// Shuts the server down and waits for the sync loop to end.
    pub async fn shutdown(mut self) {
        let handle = self.take_handle();
        tokio::task::spawn_blocking(move || handle.shutdown())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), &mut self.follow)
            .await
            .expect("the sync loop did not stop after shutdown")
            .unwrap();
    }
}

/// Parses a response body as JSON.
pub async fn json_body(response: reqwest::Response) -> serde_json::Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("body is not JSON ({error}): {text}"))
}

/// Sends `request` on a new connection as it is and returns everything the edge sends until
/// it closes the connection, which must happen within 5 seconds.
pub async fn exchange_raw(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .unwrap_or_else(|_| panic!("the edge kept the connection open after {request:?}"))
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// Splits a raw response at the blank line and parses its body as JSON.
pub fn raw_json_body(response: &str) -> serde_json::Value {
    let (_, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no blank line after the head: {response}"));
    serde_json::from_str(body).unwrap_or_else(|error| panic!("body is not JSON ({error}): {body}"))
}

/// Returns a plan table whose `free` plan has `limits`.
pub fn free_plan(limits: PlanLimits) -> PlanTable {
    PlanTable::new(BTreeMap::from([("free".to_owned(), limits)]))
}

/// A [`TelemetrySink`] that keeps every batch and can fail its first calls.
#[derive(Default)]
pub struct FakeSink {
    batches: Mutex<Vec<TelemetryBatch>>,
    failing_calls: AtomicUsize,
    calls: AtomicUsize,
}

impl FakeSink {
    /// Makes the next `calls` deliveries fail.
    pub fn fail_next_calls(&self, calls: usize) {
        self.failing_calls.store(calls, Ordering::SeqCst);
    }

    /// Returns the delivered batches.
    pub fn batches(&self) -> Vec<TelemetryBatch> {
        self.batches.lock().unwrap().clone()
    }

    /// Returns the number of delivery attempts, failed ones included.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TelemetrySink for FakeSink {
    async fn report_telemetry(&self, batch: TelemetryBatch) -> Result<(), FeedError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let failed = self
            .failing_calls
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |calls| {
                calls.checked_sub(1)
            })
            .is_ok();
        if failed {
            return Err(FeedError::Unavailable("the fake sink is down".to_owned()));
        }
        self.batches.lock().unwrap().push(batch);
        Ok(())
    }
}
