//! Marketplace files in an S3-compatible bucket (the in-memory fake of `fake_s3`), and the
//! internal plugin endpoint that edges in other processes fetch plugin components from.

use mockforge_control_plane::nodes::NodeTokens;
use mockforge_control_plane::s3_storage::S3StorageConfig;
use mockforge_plugins::examples::plugin_file;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::backend_tests;
use crate::fake_s3::FakeS3;
use crate::harness::{assert_error, read, TestServer};

const ACCESS_KEY_ID: &str = "AKIDMOCKFORGETEST";
const SECRET_ACCESS_KEY: &str = "fake-secret-access-key-for-tests";

async fn publish(server: &TestServer, token: &str, name: &str, wasm: Vec<u8>) -> serde_json::Value {
    let form = Form::new()
        .text("name", name.to_owned())
        .text("version", "1.0.0")
        .text("description", format!("{name}: a test plugin"))
        .text("category", "headers")
        .part("wasm_file", Part::bytes(wasm).file_name("plugin.wasm"));
    let response = server.client.post(server.url("/api/v1/plugins/publish")).bearer_auth(token).multipart(form).send().await.unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Returns the status, content type and body of `GET /internal/v1/plugins/{checksum}`.
async fn fetch_plugin(server: &TestServer, token: &str, checksum: &str) -> (StatusCode, String, Vec<u8>) {
    let response =
        server.client.get(server.url(&format!("/internal/v1/plugins/{checksum}"))).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    let content_type = response.headers().get("content-type").map(|value| value.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn fake_s3_rejects_unsigned_requests() {
    let s3 = FakeS3::start("bucket", ACCESS_KEY_ID).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client.put(format!("{}/bucket/key", s3.endpoint())).body("data").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(s3.object("key").is_none());
    assert_eq!(s3.requests(), vec![(Method::PUT, "/bucket/key".to_owned(), false)]);
}

backend_tests! {
    async fn plugin_published_to_s3(backend) {
        let s3 = FakeS3::start("mockforge-test", ACCESS_KEY_ID).await;
        let endpoint = s3.endpoint();
        let server = TestServer::start(backend, |config| {
            config.s3_storage = Some(S3StorageConfig {
                bucket: "mockforge-test".to_owned(),
                endpoint: Some(endpoint),
                region: "eu-central-1".to_owned(),
                path_style: true,
                prefix: "/tenant-files/".to_owned(),
                access_key_id: ACCESS_KEY_ID.to_owned(),
                secret_access_key: SECRET_ACCESS_KEY.to_owned(),
            });
        })
        .await;
        let alice = server.register("alice").await;
        let wasm = plugin_file("add-header");
        let checksum = mockforge_plugins::checksum(&wasm);
        let sha256 = hex::encode(Sha256::digest(&wasm));

        let published = publish(&server, &alice.token, "add-header", wasm.clone()).await;
        assert_eq!(published["checksum"], checksum.as_str());

        // The object is in the bucket under the prefix, and nothing is in the data directory.
        let key = format!("tenant-files/plugins/{sha256}.wasm");
        assert_eq!(s3.keys(), vec![key.clone()]);
        assert_eq!(s3.object(&key).as_deref(), Some(wasm.as_slice()));
        assert!(!server.data_dir().join("artifacts/plugins").join(format!("{sha256}.wasm")).exists());

        let (status, version) = server.get("/api/v1/plugins/add-header/versions/1.0.0", &alice.token).await;
        assert_eq!(status, StatusCode::OK, "{version}");
        assert_eq!(version["checksum"], checksum.as_str());
        let download_url = version["download_url"].as_str().unwrap().to_owned();

        let response = server.client.get(server.url(&download_url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/wasm");
        let downloaded = response.bytes().await.unwrap().to_vec();
        assert_eq!(format!("sha256:{}", hex::encode(Sha256::digest(&downloaded))), checksum);
        assert_eq!(downloaded, wasm);

        // Edges in other processes read the same object.
        let node_token = NodeTokens::open(&server.config).await.unwrap().create("edge-s3").await.unwrap();
        let (status, content_type, bytes) = fetch_plugin(&server, &node_token, &checksum).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "application/wasm");
        assert_eq!(bytes, wasm);

        let requests = s3.requests();
        let object_path = format!("/mockforge-test/{key}");
        assert!(requests.contains(&(Method::PUT, object_path.clone(), true)), "{requests:?}");
        assert!(requests.contains(&(Method::GET, object_path, true)), "{requests:?}");
        assert!(requests.iter().all(|(_, _, signed)| *signed), "every request carries a SigV4 header: {requests:?}");
    }

    async fn internal_plugin_endpoint_checks_access(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let alice = server.register("alice").await;
        let wasm = plugin_file("pass-through");
        let checksum = mockforge_plugins::checksum(&wasm);
        publish(&server, &alice.token, "pass-through", wasm.clone()).await;
        let node_token = NodeTokens::open(&server.config).await.unwrap().create("edge-plugins").await.unwrap();

        let (status, content_type, bytes) = fetch_plugin(&server, &node_token, &checksum).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "application/wasm");
        assert_eq!(bytes, wasm);

        let path = format!("/internal/v1/plugins/{checksum}");
        let (status, body) = server.get(&path, &alice.token).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        let unknown = format!("sha256:{}", "0".repeat(64));
        let (status, body) = server.get(&format!("/internal/v1/plugins/{unknown}"), &node_token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert!(body["error"].as_str().unwrap().contains(&unknown), "{body}");

        let (status, body) = server.get("/internal/v1/plugins/md5:abc", &node_token).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(body["error"].as_str().unwrap().contains("md5:abc"), "{body}");
    }
}
