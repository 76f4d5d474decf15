//! The storage quota of a plan: the reported limit, and uploads of OpenAPI documents and
//! marketplace packages under and over it.

use std::collections::BTreeMap;
use std::path::Path;

use mockforge_snapshot::{PlanLimits, PlanTable};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::harness::{create_deployment, petstore, TestServer};
use crate::marketplace::{good_package, package, publish_package, template_manifest};

/// Returns a plan table whose free plan allows 10 deployments and `max_storage_bytes`.
fn free_plan_with_storage(max_storage_bytes: Option<u64>) -> PlanTable {
    let free = PlanLimits { max_deployments: Some(10), max_storage_bytes, ..PlanLimits::default() };
    PlanTable::with_configured(BTreeMap::from([("free".to_owned(), free)]))
}

/// Counts the files in `dir`, or 0 when it does not exist.
fn file_count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|entries| entries.count()).unwrap_or(0)
}

fn quota_error(used_bytes: u64, limit_bytes: u64, upload_bytes: u64) -> Value {
    json!({
        "error": format!(
            "storing {upload_bytes} more bytes would exceed the storage quota of the free plan: {used_bytes} of \
             {limit_bytes} bytes are used; delete deployments or upgrade the plan"
        ),
        "code": "STORAGE_QUOTA_EXCEEDED",
        "details": {
            "plan": "free",
            "limit_source": "plan",
            "used_bytes": used_bytes,
            "limit_bytes": limit_bytes,
            "upload_bytes": upload_bytes,
        },
    })
}

backend_tests! {
    async fn usage_reports_plan_storage_limit(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("stella").await;

        let (status, usage) = server.get("/api/v1/usage", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        assert_eq!(usage["storage_limit_bytes"], 104_857_600, "{usage}");

        let (status, subscription) = server.get("/api/v1/billing/subscription", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{subscription}");
        assert_eq!(subscription["usage"]["storage_limit_bytes"], 104_857_600, "{subscription}");
        assert_eq!(subscription["limits"]["max_storage_bytes"], 104_857_600, "{subscription}");
        assert_eq!(subscription["limits"]["storage_gb"], 0.09765625, "{subscription}");
    }

    async fn configured_plan_without_quota_reports_null(backend) {
        let server = TestServer::start(backend, |config| config.plans = free_plan_with_storage(None)).await;
        let account = server.register("nora").await;

        let (status, usage) = server.get("/api/v1/usage", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        assert!(usage["storage_limit_bytes"].is_null(), "{usage}");

        let (status, subscription) = server.get("/api/v1/billing/subscription", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{subscription}");
        assert!(subscription["limits"]["max_storage_bytes"].is_null(), "{subscription}");
        assert!(subscription["limits"]["storage_gb"].is_null(), "{subscription}");
    }

    async fn document_over_quota_is_rejected(backend) {
        let stored = serde_json::to_string(&petstore()).unwrap().len() as u64;
        let limit = stored + 100;
        let server = TestServer::start(backend, |config| config.plans = free_plan_with_storage(Some(limit))).await;
        let account = server.register("quinn").await;

        // Under the quota: accepted.
        create_deployment(&server, &account.token, "First").await;
        let (_, usage) = server.get("/api/v1/usage", &account.token).await;
        let used = usage["storage_bytes"].as_u64().unwrap();
        assert!(used > 0, "{usage}");
        assert!(used <= limit, "{usage}");
        assert_eq!(usage["storage_limit_bytes"], limit, "{usage}");

        // The same document again adds no storage, so it is accepted although used + size > limit.
        create_deployment(&server, &account.token, "Same document").await;

        // A different document over the quota: rejected, and nothing is written.
        let mut other = petstore();
        other["info"]["title"] = json!("Another API");
        let text = serde_json::to_string_pretty(&other).unwrap();
        let documents = server.data_dir().join("artifacts").join("documents");
        let files_before = file_count(&documents);
        let request = json!({ "name": "Over quota", "openapi_spec": text });
        let (status, body) = server.post("/api/v1/deployments", &account.token, &request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body, quota_error(used, limit, text.len() as u64));

        assert_eq!(file_count(&documents), files_before, "the rejected document must not be stored");
        let (_, deployments) = server.get("/api/v1/deployments", &account.token).await;
        let names: Vec<&str> = deployments.as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 2, "{deployments}");
        assert!(!names.contains(&"Over quota"), "{deployments}");
        let (_, usage) = server.get("/api/v1/usage", &account.token).await;
        assert_eq!(usage["storage_bytes"], used, "{usage}");
    }

    async fn package_over_quota_is_rejected(backend) {
        let size = good_package().len() as u64;
        // Room for one package and half of another.
        let limit = size + size / 2;
        let server = TestServer::start(backend, |config| config.plans = free_plan_with_storage(Some(limit))).await;
        let account = server.register("piet").await;

        let (status, body) = publish_package(&server, &account.token, "templates", &template_manifest("quota-tpl", "1.0.0"), good_package()).await;
        assert_eq!(status, StatusCode::CREATED, "under the quota the package is accepted: {body}");
        let (_, usage) = server.get("/api/v1/usage", &account.token).await;
        assert_eq!(usage["storage_bytes"], size, "package files count towards storage: {usage}");

        // Different content, so a stored file would show up as a new file.
        let second = package(&[
            ("files/", tar::EntryType::Directory, b""),
            ("files/readme.md", tar::EntryType::Regular, b"# hello, second version"),
        ]);
        let second_size = second.len() as u64;
        assert!(size + second_size > limit);
        let templates = server.data_dir().join("artifacts").join("templates");
        let files_before = file_count(&templates);
        assert_eq!(files_before, 1);
        let (status, body) = publish_package(&server, &account.token, "templates", &template_manifest("quota-tpl", "1.1.0"), second).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body, quota_error(size, limit, second_size));

        assert_eq!(file_count(&templates), files_before);
        let (status, body) = server.request(reqwest::Method::GET, "/api/v1/templates/quota-tpl/1.1.0", None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "the rejected version must not be recorded: {body}");
        let (_, usage) = server.get("/api/v1/usage", &account.token).await;
        assert_eq!(usage["storage_bytes"], size, "{usage}");
    }
}
