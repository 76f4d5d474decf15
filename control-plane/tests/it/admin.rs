//! Platform admin statistics.

use reqwest::{Method, StatusCode};

use crate::backend_tests;
use crate::harness::{assert_error, create_deployment, TestServer};

backend_tests! {
    async fn admin_stats_and_analytics(backend) {
        let server = TestServer::start(backend, |config| config.admin_emails = vec!["boss@example.com".to_owned()]).await;
        let admin = server.register("boss").await;
        let customer = server.register("yara").await;
        let deployment = create_deployment(&server, &customer.token, "Counted").await;
        server.delete(&format!("/api/v1/deployments/{}", deployment["id"].as_str().unwrap()), &customer.token).await;
        create_deployment(&server, &customer.token, "Kept").await;

        let (status, stats) = server.get("/api/v1/admin/stats", &admin.token).await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        assert_eq!(stats["total_users"], 2);
        assert_eq!(stats["total_organizations"], 2);
        assert_eq!(stats["total_deployments"], 1);
        assert_eq!(stats["total_plugins"], 0);

        let (status, body) = server.get("/api/v1/admin/analytics", &admin.token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["users"]["total"], 2);
        assert_eq!(body["users"]["new_this_month"], 2);
        assert_eq!(body["users"]["active_this_month"], 1, "only the customer changed something: {body}");
        assert_eq!(body["subscriptions"]["free"], 2);
        assert_eq!(body["subscriptions"]["pro"], 0);
        assert_eq!(body["usage"]["total_requests"], 0);
        assert!(body["usage"]["total_storage_gb"].as_f64().unwrap() > 0.0);
        assert_eq!(body["features"]["running_deployments"], 1);

        let (_, only) = server.get("/api/v1/admin/analytics?metric=subscriptions", &admin.token).await;
        assert!(only.get("users").is_none(), "{only}");
        assert!(only.get("subscriptions").is_some(), "{only}");
        let (_, past) = server.get("/api/v1/admin/analytics?start_date=2020-01-01&end_date=2020-02-01", &admin.token).await;
        assert_eq!(past["users"]["new_this_month"], 0);

        for (query, parameter) in [
            ("?metric=money", "metric"),
            ("?start_date=last-week", "start_date"),
            ("?end_date=2020-13-01", "end_date"),
            ("?start_date=2020-02-01&end_date=2020-01-01", "start_date"),
        ] {
            let (status, body) = server.get(&format!("/api/v1/admin/analytics{query}"), &admin.token).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["parameter"], parameter, "{query}");
        }
        for path in ["/api/v1/admin/stats", "/api/v1/admin/analytics"] {
            let (status, body) = server.get(path, &customer.token).await;
            assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
            let (status, body) = server.request(Method::GET, path, None, None).await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        }
    }
}
