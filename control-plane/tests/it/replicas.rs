//! Two control-plane replicas on one PostgreSQL database, each with its own data directory: an
//! edge that follows replica B receives what replica A commits. These tests run only on PostgreSQL,
//! when `MOCKFORGE_TEST_DATABASE_URL` is set, and fail when it is set but unreachable.

use std::time::{Duration, Instant};

use mockforge_control_plane::nodes::NodeTokens;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::harness::{create_deployment, petstore, Backend, TestServer};

/// Maximum time between a commit on one replica and the wake-up of a long-poll on another.
const WAKE_LIMIT: Duration = Duration::from_secs(1);

fn redis_url() -> Option<String> {
    std::env::var("MOCKFORGE_TEST_REDIS_URL").ok().filter(|url| !url.is_empty())
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// Creates a deployment through replica A and checks, through replica B's internal API, the
/// long-poll wake-up, the snapshot and the document.
async fn replica_follows_other_replica(redis_url: Option<String>) {
    let Some(backend) = Backend::postgres() else {
        eprintln!("MOCKFORGE_TEST_DATABASE_URL is not set; skipped the multi-replica test");
        return;
    };
    let replica_a = TestServer::start(backend, |config| config.redis_url = redis_url.clone()).await;
    let replica_b = replica_a.start_replica(|_| {}).await;
    assert_ne!(replica_a.data_dir(), replica_b.data_dir());

    let node_tokens = NodeTokens::open(&replica_b.config).await.unwrap();
    let node_token = node_tokens.create(&format!("edge-{}", suffix())).await.unwrap();
    let account = replica_a.register(&format!("replica{}", suffix())).await;

    let (status, initial) = replica_b.get("/internal/v1/snapshot?since=0", &node_token).await;
    assert_eq!(status, StatusCode::OK, "{initial}");
    assert_eq!(initial["upserts"], Value::Array(Vec::new()), "{initial}");
    let initial_version = initial["version"].as_u64().expect("snapshot version");

    // The long-poll on replica B starts before replica A commits anything.
    let wait_path = format!("/internal/v1/wait?version={initial_version}&timeout_ms=10000");
    let waiting = {
        let client = replica_b.client.clone();
        let url = replica_b.url(&wait_path);
        let token = node_token.clone();
        tokio::spawn(async move {
            let response = client.get(url).bearer_auth(token).send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the long-poll returned before any change");

    let created = create_deployment(&replica_a, &account.token, "Shared").await;
    let committed_at = Instant::now();
    let (status, reply, returned_at) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["version"].as_u64(), Some(initial_version + 1), "{reply}");
    let delay = returned_at.saturating_duration_since(committed_at);
    assert!(delay < WAKE_LIMIT, "replica B woke its long-poll {delay:?} after the commit on replica A");

    let since_path = format!("/internal/v1/snapshot?since={initial_version}");
    let (status, delta) = replica_b.get(&since_path, &node_token).await;
    assert_eq!(status, StatusCode::OK, "{delta}");
    assert_eq!(delta["version"].as_u64(), Some(initial_version + 1), "{delta}");
    let upserts = delta["upserts"].as_array().expect("upserts");
    assert_eq!(upserts.len(), 1, "{delta}");
    assert_eq!(upserts[0]["id"], created["id"], "{delta}");
    let sha256 = created["document_sha256"].as_str().expect("document_sha256").to_owned();
    assert_eq!(upserts[0]["document_sha256"], sha256.as_str(), "{delta}");

    let response = replica_b
        .client
        .get(replica_b.url(&format!("/internal/v1/documents/{sha256}")))
        .bearer_auth(&node_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let document = response.text().await.unwrap();
    assert_eq!(hex::encode(Sha256::digest(document.as_bytes())), sha256);
    assert_eq!(serde_json::from_str::<Value>(&document).unwrap(), petstore());
    let local_documents = replica_a.data_dir().join("artifacts").join("documents");
    let local_files = std::fs::read_dir(&local_documents).map(|entries| entries.count()).unwrap_or(0);
    assert_eq!(local_files, 0, "replica A wrote the document to {}", local_documents.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_reaches_replica_without_redis() {
    replica_follows_other_replica(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_reaches_replica_with_redis() {
    let Some(url) = redis_url() else {
        eprintln!("MOCKFORGE_TEST_REDIS_URL is not set; skipped the multi-replica Redis test");
        return;
    };
    replica_follows_other_replica(Some(url)).await;
}
