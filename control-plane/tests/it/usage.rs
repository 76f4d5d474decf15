//! Telemetry from edges: deployment metrics, request logs and organization usage.

use std::collections::BTreeMap;

use chrono::Utc;
use mockforge_snapshot::{DeploymentUsage, RequestLog, TelemetryBatch};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::backend_tests;
use crate::harness::{assert_error, create_deployment, TestServer};

pub(crate) fn usage(deployment_id: Uuid, org_id: Uuid, statuses: &[(u16, u64)], latency_ms_sum: f64) -> DeploymentUsage {
    let status_counts: BTreeMap<u16, u64> = statuses.iter().copied().collect();
    let requests = status_counts.values().sum();
    DeploymentUsage {
        deployment_id,
        org_id,
        requests,
        status_counts,
        latency_buckets: vec![requests],
        latency_ms_sum,
        bytes_in: 100,
        bytes_out: 1000,
    }
}

fn log(deployment_id: Uuid, status: u16, at_unix_ms: i64, request_id: &str) -> RequestLog {
    RequestLog {
        deployment_id,
        method: "GET".to_owned(),
        path: "/pets".to_owned(),
        status,
        latency_ms: 2.5,
        at_unix_ms,
        request_id: request_id.to_owned(),
        message: None,
    }
}

pub(crate) fn batch(node: &str, start_ms: i64, usage: Vec<DeploymentUsage>, logs: Vec<RequestLog>) -> TelemetryBatch {
    TelemetryBatch {
        node: node.to_owned(),
        window_start_unix_ms: start_ms,
        window_end_unix_ms: start_ms + 10_000,
        usage,
        logs,
    }
}

backend_tests! {
    async fn metrics_add_up_across_edges(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("edith").await;
        let deployment = create_deployment(&server, &account.token, "Metered").await;
        let id: Uuid = deployment["id"].as_str().unwrap().parse().unwrap();
        let org_id: Uuid = deployment["org_id"].as_str().unwrap().parse().unwrap();
        let start_ms = recent_window_start_ms(120_000);

        let first = batch("edge-a", start_ms, vec![usage(id, org_id, &[(200, 90), (404, 5)], 950.0)], vec![]);
        server.telemetry.report_telemetry(first.clone()).await.unwrap();
        let second = batch("edge-b", start_ms, vec![usage(id, org_id, &[(200, 4), (500, 1)], 50.0)], vec![]);
        server.telemetry.report_telemetry(second).await.unwrap();
        // A retried batch is stored once.
        server.telemetry.report_telemetry(first).await.unwrap();

        let (status, metrics) = server.get(&format!("/api/v1/deployments/{id}/metrics"), &account.token).await;
        assert_eq!(status, StatusCode::OK, "{metrics}");
        assert_eq!(metrics["requests_total"], 100);
        assert_eq!(metrics["status_codes"], json!({ "200": 94, "404": 5, "500": 1 }));
        assert_eq!(metrics["average_response_time_ms"], 10.0);
        assert_eq!(metrics["error_rate"], 0.06);
        assert_eq!(metrics["bytes_out"], 2000);
        let per_minute = metrics["requests_per_minute"].as_f64().unwrap();
        assert!((per_minute - 100.0 / 60.0).abs() < 0.01, "{per_minute}");
        assert!(metrics["period_start"].is_string(), "{metrics}");
        assert!(metrics["period_end"].is_string(), "{metrics}");

        // A range that ends before the traffic shows nothing.
        let end = (Utc::now() - chrono::Duration::minutes(10)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (status, metrics) = server.get(&format!("/api/v1/deployments/{id}/metrics?end_time={end}"), &account.token).await;
        assert_eq!(status, StatusCode::OK, "{metrics}");
        assert_eq!(metrics["requests_total"], 0);
        assert_eq!(metrics["error_rate"], 0.0);
        assert_eq!(metrics["status_codes"], json!({}));

        let (status, usage) = server.get("/api/v1/usage", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        assert_eq!(usage["requests"], 100);
    }

    async fn metrics_validation_and_isolation(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("felix").await;
        let stranger = server.register("gina").await;
        let deployment = create_deployment(&server, &account.token, "Private").await;
        let id = deployment["id"].as_str().unwrap();
        let path = format!("/api/v1/deployments/{id}/metrics");

        for (query, parameter) in [
            ("?start_time=yesterday", "start_time"),
            ("?end_time=2025-13-01T00:00:00Z", "end_time"),
            ("?start_time=2025-01-02T00:00:00Z&end_time=2025-01-01T00:00:00Z", "start_time"),
            ("?start_time=2024-01-01T00:00:00Z&end_time=2025-01-01T00:00:00Z", "start_time"),
        ] {
            let (status, body) = server.get(&format!("{path}{query}"), &account.token).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["parameter"], parameter, "{query}");
        }
        let (status, body) = server.get(&path, &stranger.token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        let (status, body) = server.request(Method::GET, &path, None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let write = server.api_token(&account, &["write"]).await;
        let (status, body) = server.get(&path, &write).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
        let (status, body) = server.get("/api/v1/deployments/nope/metrics", &account.token).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

        // An edge that reports another organization's id for a deployment cannot move usage.
        let stranger_org: Uuid = server.personal_org(&stranger).await["id"].as_str().unwrap().parse().unwrap();
        let deployment_id: Uuid = id.parse().unwrap();
        let report = batch("edge-a", recent_window_start_ms(60_000), vec![usage(deployment_id, stranger_org, &[(200, 7)], 7.0)], vec![]);
        server.telemetry.report_telemetry(report).await.unwrap();
        let (_, usage) = server.get("/api/v1/usage", &stranger.token).await;
        assert_eq!(usage["requests"], 0);
        let (_, usage) = server.get("/api/v1/usage", &account.token).await;
        assert_eq!(usage["requests"], 7);
    }

    async fn request_logs_merge_with_events(backend) {
        let server = TestServer::start(backend, |config| config.request_log_limit = 5).await;
        let account = server.register("hugo").await;
        let stranger = server.register("ines").await;
        let deployment = create_deployment(&server, &account.token, "Logged").await;
        let id: Uuid = deployment["id"].as_str().unwrap().parse().unwrap();
        let now_ms = Utc::now().timestamp_millis();
        let logs = vec![
            log(id, 200, now_ms + 1000, "r1"),
            log(id, 404, now_ms + 2000, "r2"),
            log(id, 503, now_ms + 3000, "r3"),
            RequestLog {
                message: Some("plugin guard version 1.0.0 failed in on-request (trap): the plugin trapped".to_owned()),
                ..log(id, 502, now_ms + 4000, "r4")
            },
        ];
        server.telemetry.report_telemetry(batch("edge-a", now_ms, vec![], logs)).await.unwrap();

        let path = format!("/api/v1/deployments/{id}/logs");
        let (status, entries) = server.get(&path, &account.token).await;
        assert_eq!(status, StatusCode::OK, "{entries}");
        let entries = entries.as_array().unwrap();
        assert_eq!(entries.len(), 5, "four requests and the creation event: {entries:?}");
        assert_eq!(entries[0]["request_id"], "r4");
        assert_eq!(entries[1]["request_id"], "r3");
        assert_eq!(entries[1]["level"], "error");
        assert_eq!(entries[1]["message"], "GET /pets 503 (2.5 ms)");
        assert_eq!(entries[1]["source"], "request");
        assert_eq!(entries[2]["level"], "warn");
        assert_eq!(entries[3]["level"], "info");
        assert_eq!(entries[4]["message"], "Deployment created");
        assert_eq!(entries[4]["source"], "lifecycle");

        let (_, errors) = server.get(&format!("{path}?level=error"), &account.token).await;
        let errors = errors.as_array().unwrap();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0]["request_id"], "r4");
        assert_eq!(errors[0]["level"], "error");
        assert_eq!(errors[0]["status"], 502);
        assert_eq!(
            errors[0]["message"],
            "GET /pets 502 (2.5 ms): plugin guard version 1.0.0 failed in on-request (trap): the plugin trapped"
        );

        let (_, warn) = server.get(&format!("{path}?level=warn"), &account.token).await;
        assert_eq!(warn.as_array().unwrap().len(), 1);
        assert_eq!(warn[0]["status"], 404);
        let (_, limited) = server.get(&format!("{path}?limit=2"), &account.token).await;
        assert_eq!(limited.as_array().unwrap().len(), 2);

        // Only the newest request logs are kept.
        let more = (0..6).map(|n| log(id, 200, now_ms + 10_000 + n, &format!("later-{n}"))).collect();
        server.telemetry.report_telemetry(batch("edge-a", now_ms + 10_000, vec![], more)).await.unwrap();
        let (_, info) = server.get(&format!("{path}?level=info&limit=100"), &account.token).await;
        let requests: Vec<_> = info.as_array().unwrap().iter().filter(|entry| entry["source"] == "request").collect();
        assert_eq!(requests.len(), 5);
        assert_eq!(requests[0]["request_id"], "later-5");

        let (status, body) = server.get(&path, &stranger.token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    }

    async fn telemetry_rejects_bad_batches(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let mut bad = batch("edge-a", 2000, vec![], vec![]);
        bad.window_end_unix_ms = 1000;
        assert!(server.telemetry.report_telemetry(bad).await.is_err());
        let nameless = batch(" ", 2000, vec![], vec![]);
        assert!(server.telemetry.report_telemetry(nameless).await.is_err());
        let mut buckets = usage(Uuid::new_v4(), Uuid::new_v4(), &[(200, 1)], 1.0);
        buckets.latency_buckets = vec![0; 20];
        assert!(server.telemetry.report_telemetry(batch("edge-a", 2000, vec![buckets], vec![])).await.is_err());
        // Usage of an unknown deployment is skipped, not an error.
        let unknown = usage(Uuid::new_v4(), Uuid::new_v4(), &[(200, 1)], 1.0);
        server.telemetry.report_telemetry(batch("edge-a", 2000, vec![unknown], vec![])).await.unwrap();
    }

    async fn usage_history_starts_at_creation(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("olga").await;
        server.backdate_organizations(95).await;

        // Periods start at the UTC midnight of the creation day, so 95 days span four periods.
        let (status, history) = server.get("/api/v1/usage/history?months=24", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{history}");
        let history = history.as_array().unwrap();
        assert_eq!(history.len(), 4, "{history:?}");
        let created_at = Utc::now() - chrono::Duration::days(95);
        let oldest_start: chrono::DateTime<Utc> = history[3]["period_start"].as_str().unwrap().parse().unwrap();
        let oldest_end: chrono::DateTime<Utc> = history[3]["period_end"].as_str().unwrap().parse().unwrap();
        assert!(oldest_start <= created_at, "{oldest_start} is after the creation at {created_at}");
        assert!(created_at <= oldest_end, "{oldest_end} is before the creation at {created_at}");

        let (_, history) = server.get("/api/v1/usage/history?months=2", &account.token).await;
        assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    }

    async fn usage_current_and_history(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("jonas").await;
        let deployment = create_deployment(&server, &account.token, "Stored").await;
        create_deployment(&server, &account.token, "Same document").await;
        let id: Uuid = deployment["id"].as_str().unwrap().parse().unwrap();
        let org_id: Uuid = deployment["org_id"].as_str().unwrap().parse().unwrap();
        let report = batch("edge-a", Utc::now().timestamp_millis(), vec![usage(id, org_id, &[(200, 12)], 12.0)], vec![]);
        server.telemetry.report_telemetry(report).await.unwrap();

        let (status, usage) = server.get("/api/v1/usage", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        assert_eq!(usage["requests"], 12);
        assert!(usage["requests_limit"].is_null(), "the free plan has no 30-day request quota: {usage}");
        // Both deployments share one stored document.
        let document = serde_json::to_string(&crate::harness::petstore()).unwrap();
        assert_eq!(usage["storage_bytes"], document.len());
        assert_eq!(usage["ai_tokens_used"], 0);
        let start: chrono::DateTime<Utc> = usage["period_start"].as_str().unwrap().parse().unwrap();
        let end: chrono::DateTime<Utc> = usage["period_end"].as_str().unwrap().parse().unwrap();
        assert_eq!(end - start, chrono::Duration::days(30) - chrono::Duration::seconds(1));
        let now = Utc::now();
        assert!(start <= now, "{start} is after {now}");
        assert!(now <= end, "{end} is before {now}");

        let (status, history) = server.get("/api/v1/usage/history", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{history}");
        let history = history.as_array().unwrap();
        // The organization was created in the current period, so no earlier period is listed.
        assert_eq!(history.len(), 1, "{history:?}");
        assert_eq!(history[0]["requests"], 12);
        assert_eq!(history[0]["period_start"], usage["period_start"]);
        let (_, history) = server.get("/api/v1/usage/history?months=24", &account.token).await;
        assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
        for months in ["0", "25", "six"] {
            let (status, body) = server.get(&format!("/api/v1/usage/history?months={months}"), &account.token).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["parameter"], "months");
            assert_eq!(body["details"]["value"], months);
        }

        // Another organization sees only its own usage.
        let other = server.register("kira").await;
        let (_, other_usage) = server.get("/api/v1/usage", &other.token).await;
        assert_eq!(other_usage["requests"], 0);
        assert_eq!(other_usage["storage_bytes"], 0);
        let (status, body) = server.request(Method::GET, "/api/v1/usage", None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
}

/// Returns the time `ago_ms` milliseconds before now, but not before today's UTC midnight.
/// Usage periods start on the UTC day the organization was created, so a window on the
/// previous day would fall outside the period when a test runs just after midnight.
fn recent_window_start_ms(ago_ms: i64) -> i64 {
    let now = Utc::now();
    let today_ms = now.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
    (now.timestamp_millis() - ago_ms).max(today_ms)
}
