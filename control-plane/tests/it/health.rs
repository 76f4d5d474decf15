use reqwest::{Method, StatusCode};

use crate::backend_tests;
use crate::harness::{assert_error, TestServer};

backend_tests! {
    async fn health_endpoints(backend) {
        let server = TestServer::start(backend, |_| {}).await;

        let (status, body) = server.request(Method::GET, "/health", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
        assert!(body["version"].is_string());

        let (status, body) = server.request(Method::GET, "/health/live", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "alive");

        let (status, body) = server.request(Method::GET, "/health/ready", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ready");

        let (status, body) = server.request(Method::GET, "/health/detailed", None, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "ok");
        assert_eq!(body["checks"]["database"], "ok");
        assert_eq!(body["checks"]["redis"], "not_configured");
        assert_eq!(body["checks"]["storage"], "ok");
        assert!(body["timestamp"].is_string());
    }

    async fn status_page(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let (status, body) = server.request(Method::GET, "/api/v1/status", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["overall"], "operational");
        let services = body["services"].as_array().unwrap();
        let names: Vec<_> = services.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Database", "Redis", "Object Storage", "API Service"]);
        assert_eq!(services[0]["status"], "operational");
        assert_eq!(services[1]["status"], "not_configured");
        assert!(body["timestamp"].is_string());
    }

    async fn storage_check_reports_error(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        // A data directory that is no longer a directory cannot take the probe file. The
        // directory is renamed rather than removed, because background tasks may be writing
        // into it at this moment.
        let moved = server.data_dir().with_extension("moved");
        std::fs::rename(server.data_dir(), &moved).unwrap();
        std::fs::write(server.data_dir(), b"not a directory").unwrap();
        let (status, body) = server.request(Method::GET, "/health/detailed", None, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["checks"]["storage"], "error");
        std::fs::remove_file(server.data_dir()).unwrap();
        std::fs::rename(&moved, server.data_dir()).unwrap();
    }

    async fn unknown_route_is_404(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let (status, body) = server.request(Method::GET, "/api/v1/nothing-here", None, None).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert_eq!(body["details"]["path"], "/api/v1/nothing-here");
    }

    async fn extractor_rejections_are_json(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("ines").await;
        // `%FF` is not UTF-8, so the path parameter cannot be decoded.
        let (status, body) = server.get("/api/v1/deployments/%FF", &account.token).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(body["error"].as_str().unwrap().contains("UTF-8"), "{body}");
    }

    async fn wrong_method_is_405(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let (status, body) = server.request(Method::DELETE, "/api/v1/auth/login", None, None).await;
        assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
        assert_eq!(body["details"]["method"], "DELETE");
        let response = server.client.delete(server.url("/api/v1/auth/login")).send().await.unwrap();
        assert_eq!(response.headers().get("allow").map(|value| value.to_str().unwrap()), Some("POST"));
    }
}
