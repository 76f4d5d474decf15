//! The deployment lifecycle from an edge's side, through a fake edge that follows
//! `snapshot_feed()` like the real one does: fetch changes, compile, report, wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockforge_snapshot::{ApplyOutcome, ApplyReport, DeploymentRecord, SnapshotFeed};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::backend_tests;
use crate::harness::{create_deployment, TestServer};

/// What the fake edge currently serves, by deployment id.
type Served = Arc<Mutex<HashMap<Uuid, DeploymentRecord>>>;

/// Follows the feed until the task is aborted. Documents that the engine compiles are served;
/// the others are reported as failed.
fn spawn_fake_edge(feed: Arc<dyn SnapshotFeed>, served: Served) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut version = 0;
        loop {
            let delta = feed.changes_since(version).await.expect("changes_since");
            let mut outcomes = Vec::new();
            {
                let mut served = served.lock().unwrap();
                if delta.full {
                    served.clear();
                }
                for id in &delta.removals {
                    served.remove(id);
                }
                for record in delta.upserts {
                    let options = mockforge_engine::MockOptions::from_config(&record.config).unwrap_or_default();
                    match mockforge_engine::compile(&record.document, options) {
                        Ok(_) => {
                            outcomes.push((record.id, ApplyOutcome::Served));
                            served.insert(record.id, record);
                        }
                        Err(error) => {
                            outcomes.push((record.id, ApplyOutcome::Failed { reason: error.to_string() }));
                            served.remove(&record.id);
                        }
                    }
                }
            }
            version = delta.version;
            if !outcomes.is_empty() {
                feed.report_applied(ApplyReport { node: "fake-edge".into(), version, outcomes }).await.expect("report");
            }
            feed.wait_for_change(version, Duration::from_secs(1)).await.expect("wait_for_change");
        }
    })
}

/// Polls `GET /api/v1/deployments/{id}` until `check` accepts the body, for at most 10 s.
async fn wait_for_deployment(server: &TestServer, token: &str, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = server.get(&format!("/api/v1/deployments/{id}"), token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if check(&body) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "deployment never reached the expected state: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

backend_tests! {
    async fn lifecycle_through_fake_edge(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("hank").await;
        let served: Served = Arc::default();
        let edge = spawn_fake_edge(server.feed.clone(), served.clone());

        let created = create_deployment(&server, &account.token, "Lifecycle").await;
        let id = created["id"].as_str().unwrap().to_owned();
        let uuid: Uuid = id.parse().unwrap();

        let body = wait_for_deployment(&server, &account.token, &id, |d| d["status"] == "active").await;
        assert_eq!(body["health_status"], "healthy");
        {
            let served = served.lock().unwrap();
            let record = &served[&uuid];
            assert_eq!(record.slug, "lifecycle");
            assert_eq!(record.org_slug, "hank");
            assert_eq!(record.plan, "free");
            assert_eq!(record.document_sha256, created["document_sha256"].as_str().unwrap());
            assert_eq!(&*record.document, serde_json::to_string(&crate::harness::petstore()).unwrap());
        }
        let (_, logs) = server.get(&format!("/api/v1/deployments/{id}/logs"), &account.token).await;
        assert_eq!(logs[0]["message"], "Deployment served by edge fake-edge");

        let version_before_stop = server.feed.changes_since(0).await.unwrap().version;
        let (status, _) =
            server.put(&format!("/api/v1/deployments/{id}/status"), &account.token, &json!({ "status": "stopped" })).await;
        assert_eq!(status, StatusCode::OK);
        let delta = server.feed.changes_since(version_before_stop).await.unwrap();
        assert!(!delta.full);
        assert_eq!(delta.version, version_before_stop + 1);
        assert_eq!(delta.removals, vec![uuid]);
        assert!(delta.upserts.is_empty());
        wait_until("the edge drops the stopped deployment", || !served.lock().unwrap().contains_key(&uuid)).await;
        let (_, body) = server.get(&format!("/api/v1/deployments/{id}"), &account.token).await;
        assert_eq!(body["status"], "stopped");

        let (status, _) =
            server.put(&format!("/api/v1/deployments/{id}/status"), &account.token, &json!({ "status": "active" })).await;
        assert_eq!(status, StatusCode::OK);
        let delta = server.feed.changes_since(version_before_stop + 1).await.unwrap();
        assert_eq!(delta.upserts.iter().map(|record| record.id).collect::<Vec<_>>(), vec![uuid]);
        wait_for_deployment(&server, &account.token, &id, |d| d["status"] == "active").await;
        wait_until("the edge serves the reactivated deployment", || served.lock().unwrap().contains_key(&uuid)).await;

        let (status, _) = server.delete(&format!("/api/v1/deployments/{id}"), &account.token).await;
        assert_eq!(status, StatusCode::OK);
        wait_until("the edge drops the deleted deployment", || served.lock().unwrap().is_empty()).await;
        let snapshot = server.feed.changes_since(0).await.unwrap();
        assert!(snapshot.full);
        assert!(snapshot.upserts.is_empty());

        edge.abort();
    }

    async fn full_snapshot_and_versions(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let alice = server.register("ida").await;
        let bob = server.register("jack").await;

        let empty = server.feed.changes_since(0).await.unwrap();
        assert!(empty.full);
        assert_eq!(empty.version, 0);

        let a = create_deployment(&server, &alice.token, "A").await;
        let b = create_deployment(&server, &bob.token, "B").await;
        let c = create_deployment(&server, &bob.token, "C").await;
        let c_id = c["id"].as_str().unwrap();
        server.put(&format!("/api/v1/deployments/{c_id}/status"), &bob.token, &json!({ "status": "stopped" })).await;

        let snapshot = server.feed.changes_since(0).await.unwrap();
        assert!(snapshot.full);
        assert_eq!(snapshot.version, 4, "three creations and one stop");
        let mut ids: Vec<String> = snapshot.upserts.iter().map(|record| record.id.to_string()).collect();
        ids.sort();
        let mut expected = vec![a["id"].as_str().unwrap().to_owned(), b["id"].as_str().unwrap().to_owned()];
        expected.sort();
        assert_eq!(ids, expected, "stopped deployments are not in the snapshot");

        // Nothing changed since the current version.
        let delta = server.feed.changes_since(4).await.unwrap();
        assert_eq!(delta.version, 4);
        assert!(delta.upserts.is_empty());
        assert!(delta.removals.is_empty());

        // A no-op status change does not bump the version.
        server.put(&format!("/api/v1/deployments/{c_id}/status"), &bob.token, &json!({ "status": "stopped" })).await;
        assert_eq!(server.feed.changes_since(4).await.unwrap().version, 4);

        // A version from the future gets a full snapshot.
        assert!(server.feed.changes_since(99).await.unwrap().full);

        // wait_for_change returns at once when a newer version exists, and after the timeout otherwise.
        assert_eq!(server.feed.wait_for_change(3, Duration::from_secs(5)).await.unwrap(), 4);
        let started = std::time::Instant::now();
        assert_eq!(server.feed.wait_for_change(4, Duration::from_millis(200)).await.unwrap(), 4);
        assert!(started.elapsed() >= Duration::from_millis(200));

        // A change wakes a waiting edge.
        let feed = server.feed.clone();
        let waiter = tokio::spawn(async move { feed.wait_for_change(4, Duration::from_secs(10)).await.unwrap() });
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.put(&format!("/api/v1/deployments/{c_id}/status"), &bob.token, &json!({ "status": "active" })).await;
        assert_eq!(waiter.await.unwrap(), 5);
    }

    async fn failed_report_marks_deployment(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("kim").await;
        let created = create_deployment(&server, &account.token, "Fails").await;
        let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();

        let report = ApplyReport {
            node: "eu-1".into(),
            version: 1,
            outcomes: vec![(id, ApplyOutcome::Failed { reason: "no operations".into() })],
        };
        server.feed.report_applied(report).await.unwrap();
        let (_, body) = server.get(&format!("/api/v1/deployments/{id}"), &account.token).await;
        assert_eq!(body["status"], "failed");
        assert_eq!(body["health_status"], "unhealthy");
        let (_, logs) = server.get(&format!("/api/v1/deployments/{id}/logs?level=error"), &account.token).await;
        assert_eq!(logs.as_array().unwrap().len(), 1);
        let message = logs[0]["message"].as_str().unwrap();
        assert!(message.contains("eu-1"), "{message}");
        assert!(message.contains("no operations"), "{message}");

        // Failed deployments stay in the snapshot, so an edge can retry.
        let snapshot = server.feed.changes_since(0).await.unwrap();
        assert_eq!(snapshot.upserts.len(), 1);

        // A late report for a stopped deployment does not bring it back.
        server.put(&format!("/api/v1/deployments/{id}/status"), &account.token, &json!({ "status": "stopped" })).await;
        let report = ApplyReport { node: "eu-1".into(), version: 1, outcomes: vec![(id, ApplyOutcome::Served)] };
        server.feed.report_applied(report).await.unwrap();
        let (_, body) = server.get(&format!("/api/v1/deployments/{id}"), &account.token).await;
        assert_eq!(body["status"], "stopped");
    }
}
