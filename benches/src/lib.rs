//! Fixtures shared by the edge benchmarks and load tools: a petstore document, deployment
//! records, snapshots built from them and an in-memory control plane.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockforge_edge::{ServedDeployment, Snapshot};
use mockforge_snapshot::{
    ApplyReport, DeploymentRecord, FeedError, PlanLimits, PlanTable, SnapshotDelta, SnapshotFeed,
};
use tokio::sync::watch;
use uuid::Uuid;

/// Petstore API: `/pets` and `/pets/{petId}` return examples, `/owners/{ownerId}` has only a
/// schema, so its body is generated. The load script serves the same file.
pub const PETSTORE: &str = include_str!("../load/petstore.yaml");

/// The body nginx returns in the load comparison: the same bytes as `GET /pets`.
pub const PETS_BODY: &str =
    r#"[{"id":1,"name":"Rex","tag":"dog"},{"id":2,"name":"Tom","tag":"cat"}]"#;

/// Plan name of [`bench_plans`].
pub const BENCH_PLAN: &str = "bench";

/// Returns a plan table whose `bench` plan sets every request limit high enough never to
/// reject benchmark traffic, so the limiter runs on every request without changing the outcome.
pub fn bench_plans() -> PlanTable {
    PlanTable::new(BTreeMap::from([(
        BENCH_PLAN.to_owned(),
        PlanLimits {
            requests_per_minute: Some(u64::MAX / 4),
            requests_per_30d: Some(u64::MAX / 4),
            deployment_rps: Some(u64::MAX / 4),
            max_request_body_bytes: Some(1024 * 1024),
            max_deployments: None,
            max_storage_bytes: None,
            plugin_call_timeout_ms: None,
            plugin_memory_bytes: None,
        },
    )]))
}

/// Builds a petstore record for `org`/`slug` on the bench plan.
pub fn petstore_record(org: &str, slug: &str) -> DeploymentRecord {
    DeploymentRecord {
        id: Uuid::new_v4(),
        org_id: Uuid::new_v5(&Uuid::NAMESPACE_DNS, org.as_bytes()),
        org_slug: org.to_owned(),
        slug: slug.to_owned(),
        plan: BENCH_PLAN.to_owned(),
        document: Arc::from(PETSTORE),
        document_sha256: format!("{:064x}", fxhash(PETSTORE)),
        config: serde_json::json!({}),
        period_start: None,
        limit_overrides: None,
    }
}

/// Hashes a document well enough to tell documents apart in benchmarks (FNV-1a, not SHA-256).
fn fxhash(text: &str) -> u128 {
    text.bytes()
        .fold(0xcbf2_9ce4_8422_2325_u128, |hash, byte| {
            (hash ^ u128::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Compiles the petstore document.
pub fn petstore_mock() -> mockforge_engine::Mock {
    mockforge_engine::compile(PETSTORE, mockforge_engine::MockOptions::default())
        .unwrap_or_else(|error| panic!("the petstore document does not compile: {error:?}"))
        .mock
}

/// Builds a snapshot with `count` petstore deployments named `p{i}` in organizations
/// `org{i % 100}`, sharing one compiled mock.
pub fn petstore_snapshot(count: usize) -> Snapshot {
    let mock = Arc::new(petstore_mock());
    let deployments = (0..count).map(|index| {
        let record = petstore_record(&format!("org{}", index % 100), &format!("p{index}"));
        Arc::new(ServedDeployment {
            id: record.id,
            org_id: record.org_id,
            org_slug: record.org_slug,
            slug: record.slug,
            plan: record.plan,
            document_sha256: record.document_sha256,
            config: record.config,
            mock: mock.clone(),
            limits: PlanLimits::default(),
            period_start: record.period_start,
            chaos: None,
            proxy: None,
        })
    });
    Snapshot::new(1, deployments)
}

/// Builds the request head of a GET in path form.
pub fn get(path: &str) -> http::request::Parts {
    http::Request::builder()
        .uri(path)
        .header(http::header::HOST, "127.0.0.1")
        .header(http::header::ACCEPT, "application/json")
        .body(())
        .expect("valid request")
        .into_parts()
        .0
}

/// The feed's records, each with the version it last changed at.
struct FeedState {
    version: u64,
    records: Vec<(u64, DeploymentRecord)>,
}

/// An in-memory control plane with real deltas that accepts every report.
pub struct StaticFeed {
    state: watch::Sender<FeedState>,
    reports: Mutex<Vec<ApplyReport>>,
}

impl StaticFeed {
    pub fn new(records: Vec<DeploymentRecord>) -> Arc<StaticFeed> {
        let state = FeedState {
            version: 1,
            records: records.into_iter().map(|record| (1, record)).collect(),
        };
        Arc::new(StaticFeed {
            state: watch::channel(state).0,
            reports: Mutex::new(Vec::new()),
        })
    }

    /// Replaces the record with the same id and returns the new version.
    pub fn replace(&self, record: DeploymentRecord) -> u64 {
        let mut version = 0;
        self.state.send_modify(|state| {
            state.version += 1;
            version = state.version;
            if let Some(existing) = state
                .records
                .iter_mut()
                .find(|(_, existing)| existing.id == record.id)
            {
                *existing = (version, record.clone());
            }
        });
        version
    }

    /// Returns the number of apply reports received.
    pub fn report_count(&self) -> usize {
        self.reports.lock().expect("reports lock").len()
    }
}

#[async_trait::async_trait]
impl SnapshotFeed for StaticFeed {
    async fn changes_since(&self, version: u64) -> Result<SnapshotDelta, FeedError> {
        let state = self.state.borrow();
        let full = version == 0;
        Ok(SnapshotDelta {
            version: state.version,
            full,
            upserts: state
                .records
                .iter()
                .filter(|(changed, _)| full || *changed > version)
                .map(|(_, record)| record.clone())
                .collect(),
            removals: Vec::new(),
        })
    }

    async fn wait_for_change(&self, version: u64, timeout: Duration) -> Result<u64, FeedError> {
        let mut state = self.state.subscribe();
        let changed = state.wait_for(|state| state.version != version);
        let _ = tokio::time::timeout(timeout, changed).await;
        let current = state.borrow().version;
        Ok(current)
    }

    async fn report_applied(&self, report: ApplyReport) -> Result<(), FeedError> {
        self.reports.lock().expect("reports lock").push(report);
        Ok(())
    }
}
