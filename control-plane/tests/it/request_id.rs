//! `X-Request-Id` on API responses.

use reqwest::StatusCode;

use crate::backend_tests;
use crate::harness::TestServer;

backend_tests! {
    async fn request_id_echoes_client_value(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let response = server
            .client
            .get(server.url("/health"))
            .header("X-Request-Id", "client-id_42.a:b")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-request-id"], "client-id_42.a:b");

        // Error responses carry the id too.
        let response = server
            .client
            .get(server.url("/api/v1/no-such-route"))
            .header("X-Request-Id", "lost-route-7")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()["x-request-id"], "lost-route-7");
    }

    async fn request_id_replaces_invalid_value(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let too_long = "a".repeat(129);
        let max_length = "b".repeat(128);
        for (incoming, kept) in [
            (None, false),
            (Some("has space"), false),
            (Some(""), false),
            (Some(too_long.as_str()), false),
            (Some(max_length.as_str()), true),
        ] {
            let mut request = server.client.get(server.url("/api/v1/deployments"));
            if let Some(value) = incoming {
                request = request.header("X-Request-Id", value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{incoming:?}");
            let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
            if kept {
                assert_eq!(Some(id.as_str()), incoming);
            } else {
                let parsed = uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("{id:?} is not a UUID"));
                assert_eq!(parsed.get_version_num(), 4, "{id}");
            }
        }
    }
}
