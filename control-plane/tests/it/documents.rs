//! OpenAPI documents in the database, read through the internal API.

use mockforge_control_plane::nodes::NodeTokens;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::backend_tests;
use crate::harness::{assert_error, create_deployment, TestServer};

/// Returns the status and the raw body of `GET /internal/v1/documents/{sha256}`.
pub async fn fetch_document(server: &TestServer, node_token: &str, sha256: &str) -> (StatusCode, String) {
    let response = server
        .client
        .get(server.url(&format!("/internal/v1/documents/{sha256}")))
        .bearer_auth(node_token)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

backend_tests! {
    async fn document_removed_with_last_deployment(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let node_token = NodeTokens::open(&server.config).await.unwrap().create("edge-docs").await.unwrap();
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;

        let first = create_deployment(&server, &alice.token, "Shared document").await;
        let second = create_deployment(&server, &bob.token, "Shared document").await;
        let sha256 = first["document_sha256"].as_str().unwrap().to_owned();
        assert_eq!(second["document_sha256"], sha256.as_str());
        let (status, document) = fetch_document(&server, &node_token, &sha256).await;
        assert_eq!(status, StatusCode::OK, "{document}");
        assert_eq!(hex::encode(Sha256::digest(document.as_bytes())), sha256);

        // Bob's deployment still refers to the document.
        let (status, body) = server.delete(&format!("/api/v1/deployments/{}", first["id"].as_str().unwrap()), &alice.token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, document) = fetch_document(&server, &node_token, &sha256).await;
        assert_eq!(status, StatusCode::OK, "{document}");

        let (status, body) = server.delete(&format!("/api/v1/deployments/{}", second["id"].as_str().unwrap()), &bob.token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = server.get(&format!("/internal/v1/documents/{sha256}"), &node_token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    }

    async fn local_document_imported_at_start(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let node_token = NodeTokens::open(&server.config).await.unwrap().create("edge-import").await.unwrap();
        let document = r#"{"openapi":"3.0.3","info":{"title":"Legacy","version":"1"},"paths":{}}"#;
        let sha256 = hex::encode(Sha256::digest(document.as_bytes()));
        let local_dir = server.data_dir().join("artifacts").join("documents");
        std::fs::create_dir_all(&local_dir).unwrap();
        let local_file = local_dir.join(format!("{sha256}.json"));
        std::fs::write(&local_file, document).unwrap();
        let mismatched_file = local_dir.join(format!("{}.json", "0".repeat(64)));
        std::fs::write(&mismatched_file, document).unwrap();

        let server = server.restart().await;
        let (status, body) = fetch_document(&server, &node_token, &sha256).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, document);
        assert!(!local_file.exists(), "the imported file {} was not deleted", local_file.display());
        assert!(mismatched_file.exists(), "a file whose content does not match its name was deleted");
        let (status, body) = server.get(&format!("/internal/v1/documents/{}", "0".repeat(64)), &node_token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
}
