//! Redis checks, run when `MOCKFORGE_TEST_REDIS_URL` is set.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};

use crate::backend_tests;
use crate::harness::{create_deployment, TestServer};

fn redis_url() -> Option<String> {
    std::env::var("MOCKFORGE_TEST_REDIS_URL").ok().filter(|url| !url.is_empty())
}

backend_tests! {
    async fn redis_health_and_publish(backend) {
        let Some(url) = redis_url() else {
            eprintln!("MOCKFORGE_TEST_REDIS_URL is not set; skipped");
            return;
        };
        let server = TestServer::start(backend, |config| config.redis_url = Some(url.clone())).await;

        let (status, body) = server.request(Method::GET, "/health/detailed", None, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["checks"]["redis"], "ok");
        let (_, body) = server.request(Method::GET, "/api/v1/status", None, None).await;
        assert_eq!(body["services"][1]["status"], "operational");

        let client = redis::Client::open(url.as_str()).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.subscribe("mockforge:config-version").await.unwrap();
        let account = server.register("lara").await;
        create_deployment(&server, &account.token, "Published").await;
        let version = server.feed.changes_since(0).await.unwrap().version;

        // Other tests may publish on the same channel at the same time: wait for this version.
        let mut messages = pubsub.on_message();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let message = tokio::time::timeout_at(deadline, messages.next())
                .await
                .expect("no version published within 10 s")
                .expect("subscription closed");
            let published: String = message.get_payload().unwrap();
            if published == version.to_string() {
                break;
            }
        }
    }
}
