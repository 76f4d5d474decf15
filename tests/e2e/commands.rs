//! Command-line behaviour: settings errors, `mockforge mock` and `mockforge edge`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{free_port, mockforge, TempDir, PETSTORE};

#[test]
fn invalid_settings_are_all_reported() {
    let dir = TempDir::new("mockforge-settings");
    let config = dir.0.join("mockforge.toml");
    std::fs::write(&config, "data_dir = \"/tmp/x\"\n[fetch]\ntimeout_seconds = 0\n").unwrap();

    let output = mockforge()
        .args(["serve", "--api-listen", "localhost"])
        .env("MOCKFORGE_EDGE_LISTEN", "127.0.0.1:99999")
        .env("MOCKFORGE_CONFIG", &config)
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--api-listen / MOCKFORGE_API_LISTEN: invalid value \"localhost\""), "{stderr}");
    assert!(stderr.contains("--edge-listen / MOCKFORGE_EDGE_LISTEN: invalid value \"127.0.0.1:99999\""), "{stderr}");
    assert!(stderr.contains("`fetch.timeout_seconds` in"), "{stderr}");
    assert!(stderr.contains("expected a positive number of seconds"), "{stderr}");
}

#[test]
fn edge_command_requires_control_plane() {
    let output = mockforge().arg("edge").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing --control-plane"), "{stderr}");

    let output = mockforge()
        .args(["edge", "--control-plane", "http://127.0.0.1:9", "--region", "eu-1", "--node-token", "mfx_customer"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("node tokens start with mfn_"), "{stderr}");
}

#[tokio::test]
async fn mock_command_serves_one_document() {
    let dir = TempDir::new("mockforge-mock");
    let document = dir.0.join("petstore.json");
    std::fs::write(&document, PETSTORE).unwrap();
    let port = free_port();

    let mut child = mockforge()
        .arg("mock")
        .arg(&document)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let response = loop {
        match client.get(format!("http://127.0.0.1:{port}/pets/7")).send().await {
            Ok(response) => break response,
            Err(error) => {
                assert!(Instant::now() < deadline, "mockforge mock did not start: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"id": 1, "name": "Rex", "tag": "dog"}));

    let response = client.delete(format!("http://127.0.0.1:{port}/pets/7")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.headers()["allow"].to_str().unwrap().contains("GET"));

    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn mock_command_rejects_invalid_document() {
    let dir = TempDir::new("mockforge-mock-invalid");
    let document = dir.0.join("broken.yaml");
    std::fs::write(&document, "openapi: 3.0.3\ninfo: {title: x, version: '1'}\npaths: 12\n").unwrap();

    let output = mockforge().arg("mock").arg(&document).output().unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/paths"), "{stderr}");
    assert!(stderr.contains("is not a valid OpenAPI document"), "{stderr}");
}
