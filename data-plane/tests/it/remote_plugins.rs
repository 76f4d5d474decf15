//! Plugin components fetched from a control plane in another process: a loopback server
//! serves `GET /internal/v1/plugins/{checksum}` in its place.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use mockforge_edge::remote::{RemoteFeed, RemoteSettings};
use mockforge_snapshot::{FeedError, PluginSource};
use sha2::{Digest, Sha256};

const NODE_TOKEN: &str = "mfn_remote_plugins_test";

/// The control plane's side: the body it returns for every checksum, whether it fails with 500,
/// and the `Authorization` header of each request.
#[derive(Default)]
struct Served {
    body: Mutex<Vec<u8>>,
    down: Mutex<bool>,
    authorizations: Mutex<Vec<String>>,
}

async fn plugin(State(served): State<Arc<Served>>, Path(_checksum): Path<String>, headers: HeaderMap) -> (StatusCode, Vec<u8>) {
    let authorization = headers.get("authorization").map(|value| value.to_str().unwrap().to_owned()).unwrap_or_default();
    served.authorizations.lock().unwrap().push(authorization);
    if *served.down.lock().unwrap() {
        return (StatusCode::INTERNAL_SERVER_ERROR, b"{\"error\":\"down\"}".to_vec());
    }
    (StatusCode::OK, served.body.lock().unwrap().clone())
}

async fn start(served: Arc<Served>) -> (String, PathBuf, Arc<RemoteFeed>) {
    let app = Router::new().route("/internal/v1/plugins/{checksum}", get(plugin)).with_state(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let data_dir = std::env::temp_dir().join(format!("mockforge-remote-plugins-{}", uuid::Uuid::new_v4().simple()));
    let feed = RemoteFeed::start(RemoteSettings {
        control_plane_url: format!("http://{addr}"),
        node_token: NODE_TOKEN.to_owned(),
        region: "test".to_owned(),
        redis_url: None,
        data_dir: data_dir.clone(),
    })
    .unwrap();
    (format!("http://{addr}"), data_dir, feed)
}

fn checksum_of(bytes: &[u8]) -> (String, String) {
    let sha256 = hex::encode(Sha256::digest(bytes));
    (format!("sha256:{sha256}"), sha256)
}

#[tokio::test]
async fn remote_plugin_fetched_and_cached() {
    let wasm = b"\0asm component bytes".to_vec();
    let served = Arc::new(Served::default());
    *served.body.lock().unwrap() = wasm.clone();
    let (_, data_dir, feed) = start(served.clone()).await;
    let source = feed.plugin_source(data_dir.join("plugins"));
    let (checksum, sha256) = checksum_of(&wasm);

    let bytes = source.plugin(&checksum).await.unwrap();
    assert_eq!(bytes.as_ref(), wasm.as_slice());
    assert_eq!(*served.authorizations.lock().unwrap(), vec![format!("Bearer {NODE_TOKEN}")]);
    let cached = data_dir.join("plugins").join(format!("{sha256}.wasm"));
    assert_eq!(std::fs::read(&cached).unwrap(), wasm);

    // The second read comes from disk, even with the control plane down.
    *served.down.lock().unwrap() = true;
    let bytes = source.plugin(&checksum).await.unwrap();
    assert_eq!(bytes.as_ref(), wasm.as_slice());
    assert_eq!(served.authorizations.lock().unwrap().len(), 1);

    // A damaged cache file is fetched again.
    std::fs::write(&cached, b"damaged").unwrap();
    let error = source.plugin(&checksum).await.unwrap_err();
    assert!(matches!(error, FeedError::Unavailable(_)), "{error:?}");
    assert_eq!(served.authorizations.lock().unwrap().len(), 2);
    assert!(!cached.exists(), "the damaged file is deleted");

    std::fs::remove_dir_all(data_dir).unwrap();
}

#[tokio::test]
async fn remote_plugin_checks_checksum_and_size() {
    let served = Arc::new(Served::default());
    *served.body.lock().unwrap() = b"other bytes".to_vec();
    let (_, data_dir, feed) = start(served.clone()).await;
    let source = feed.plugin_source(data_dir.join("plugins")).with_max_bytes(16);

    let (checksum, sha256) = checksum_of(b"expected bytes");
    let error = source.plugin(&checksum).await.unwrap_err().to_string();
    assert!(error.contains("arrived with SHA-256"), "{error}");
    assert!(!data_dir.join("plugins").join(format!("{sha256}.wasm")).exists());

    let large = vec![7u8; 17];
    *served.body.lock().unwrap() = large.clone();
    let (checksum, _) = checksum_of(&large);
    let error = source.plugin(&checksum).await.unwrap_err();
    assert!(matches!(&error, FeedError::Rejected(message) if message.contains("larger than 16 bytes")), "{error:?}");

    let error = source.plugin("md5:abc").await.unwrap_err();
    assert!(matches!(&error, FeedError::Rejected(message) if message.contains("\"md5:abc\"")), "{error:?}");
    assert_eq!(served.authorizations.lock().unwrap().len(), 2, "an invalid checksum is not requested");

    let _ = std::fs::remove_dir_all(data_dir);
}
