//! Per-organization limit overrides set by platform admins: the admin endpoints, the limits the
//! control plane enforces and reports, and the snapshot records that carry them to edges.

use mockforge_snapshot::PlanLimits;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::harness::{assert_error, create_deployment, petstore, TestServer};

const ADMIN_EMAIL: &str = "chief@example.com";

fn limits_path(org_id: &str) -> String {
    format!("/api/v1/admin/organizations/{org_id}/limits")
}

/// Returns the overrides of the organization's records in a snapshot delta.
fn record_overrides(delta: &mockforge_snapshot::SnapshotDelta, org_id: &str) -> Vec<Option<PlanLimits>> {
    delta
        .upserts
        .iter()
        .filter(|record| record.org_id.to_string() == org_id)
        .map(|record| record.limit_overrides.clone())
        .collect()
}

backend_tests! {
    async fn limit_endpoints_check_access_input(backend) {
        let server = TestServer::start(backend, |config| config.admin_emails = vec![ADMIN_EMAIL.to_owned()]).await;
        let admin = server.register("chief").await;
        let customer = server.register("olga").await;
        let org_id = server.personal_org(&customer).await["id"].as_str().unwrap().to_owned();
        let path = limits_path(&org_id);
        let valid = json!({ "requests_per_minute": 5 });

        let (status, body) = server.get(&path, &customer.token).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
        let (status, body) = server.put(&path, &customer.token, &valid).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
        let (status, body) = server.delete(&path, &customer.token).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
        let admin_token = server.api_token(&admin, &["admin"]).await;
        let (status, body) = server.put(&path, &admin_token, &valid).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
        let (status, body) = server.request(Method::GET, &path, None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

        let unknown = limits_path(&uuid::Uuid::new_v4().to_string());
        let (status, body) = server.get(&unknown, &admin.token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert_eq!(body["details"]["resource"], "organization");
        let (status, body) = server.put(&unknown, &admin.token, &valid).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        let (status, body) = server.delete(&unknown, &admin.token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        let (status, body) = server.get(&limits_path("not-a-uuid"), &admin.token).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

        let (status, body) = server.put(&path, &admin.token, &json!({ "requests_per_minute": 5, "bogus_limit": 1 })).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["value"], "bogus_limit");
        assert!(body["error"].as_str().unwrap().contains("bogus_limit"), "{body}");
        assert!(body["error"].as_str().unwrap().contains("requests_per_minute"), "the message lists the known keys: {body}");

        for (request, key, value) in [
            (json!({ "requests_per_minute": "5" }), "requests_per_minute", json!("5")),
            (json!({ "max_deployments": -1 }), "max_deployments", json!(-1)),
            (json!({ "max_storage_bytes": 1.5 }), "max_storage_bytes", json!(1.5)),
            (json!({ "deployment_rps": null }), "deployment_rps", Value::Null),
        ] {
            let (status, body) = server.put(&path, &admin.token, &request).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["field"], key, "{request}");
            assert_eq!(body["details"]["value"], value, "{request}");
            assert_eq!(body["details"]["expected"], "a non-negative integer", "{request}");
            assert!(body["error"].as_str().unwrap().contains(key), "{body}");
        }
        let (status, body) = server.put(&path, &admin.token, &json!([5])).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "body");

        // Rejected requests change nothing.
        let (status, body) = server.get(&path, &admin.token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["overrides"], Value::Null);
    }

    async fn admin_overrides_apply_and_clear(backend) {
        let server = TestServer::start(backend, |config| config.admin_emails = vec![ADMIN_EMAIL.to_owned()]).await;
        let admin = server.register("chief").await;
        let customer = server.register("olga").await;
        let neighbour = server.register("nils").await;
        let org_id = server.personal_org(&customer).await["id"].as_str().unwrap().to_owned();
        let neighbour_org = server.personal_org(&neighbour).await["id"].as_str().unwrap().to_owned();
        let path = limits_path(&org_id);
        create_deployment(&server, &customer.token, "First").await;
        create_deployment(&server, &neighbour.token, "Next door").await;

        let (status, initial) = server.get(&path, &admin.token).await;
        assert_eq!(status, StatusCode::OK, "{initial}");
        assert_eq!(initial["org_id"], org_id.as_str());
        assert_eq!(initial["plan"], "free");
        assert_eq!(initial["plan_limits"]["requests_per_minute"], 60);
        assert_eq!(initial["plan_limits"]["max_deployments"], 3);
        assert_eq!(initial["plan_limits"]["requests_per_30d"], Value::Null, "an unset limit is listed as null");
        assert_eq!(initial["overrides"], Value::Null);
        assert_eq!(initial["effective_limits"], initial["plan_limits"]);

        let before = server.feed.changes_since(0).await.unwrap().version;
        let overrides = json!({ "requests_per_minute": 5, "max_deployments": 5, "max_storage_bytes": 50_000_000 });
        let (status, body) = server.put(&path, &admin.token, &overrides).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["overrides"], overrides);
        assert_eq!(body["plan_limits"], initial["plan_limits"], "the plan's limits stay as configured");
        assert_eq!(body["effective_limits"]["requests_per_minute"], 5);
        assert_eq!(body["effective_limits"]["max_deployments"], 5);
        assert_eq!(body["effective_limits"]["max_storage_bytes"], 50_000_000);
        assert_eq!(body["effective_limits"]["deployment_rps"], initial["plan_limits"]["deployment_rps"]);
        let (status, fetched) = server.get(&path, &admin.token).await;
        assert_eq!(status, StatusCode::OK, "{fetched}");
        assert_eq!(fetched, body);

        // The new configuration version carries the overrides in the organization's records only.
        let expected = PlanLimits {
            requests_per_minute: Some(5),
            max_deployments: Some(5),
            max_storage_bytes: Some(50_000_000),
            ..PlanLimits::default()
        };
        let delta = server.feed.changes_since(before).await.unwrap();
        assert!(delta.version > before, "setting overrides must publish a new configuration version");
        assert_eq!(record_overrides(&delta, &org_id), vec![Some(expected.clone())]);
        assert!(record_overrides(&delta, &neighbour_org).is_empty(), "the other organization did not change");
        let full = server.feed.changes_since(0).await.unwrap();
        assert_eq!(record_overrides(&full, &org_id), vec![Some(expected)]);
        assert_eq!(record_overrides(&full, &neighbour_org), vec![None]);

        let (_, entries) = server.get(&format!("/api/v1/organizations/{org_id}/audit-logs"), &customer.token).await;
        assert_eq!(entries[0]["event_type"], "plan_limits_overridden");
        assert_eq!(entries[0]["user_id"], admin.user_id.as_str());

        let (status, subscription) = server.get("/api/v1/billing/subscription", &customer.token).await;
        assert_eq!(status, StatusCode::OK, "{subscription}");
        assert_eq!(subscription["limits"]["requests_per_minute"], 5);
        assert_eq!(subscription["limits"]["max_deployments"], 5);
        assert_eq!(subscription["limits"]["max_storage_bytes"], 50_000_000);
        assert_eq!(subscription["usage"]["storage_limit_bytes"], 50_000_000);
        let (status, usage) = server.get("/api/v1/usage", &customer.token).await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        assert_eq!(usage["storage_limit_bytes"], 50_000_000);
        let (_, neighbour_subscription) = server.get("/api/v1/billing/subscription", &neighbour.token).await;
        assert_eq!(neighbour_subscription["limits"]["max_deployments"], 3);
        assert_eq!(neighbour_subscription["limits"]["requests_per_minute"], 60);

        // The free plan allows 3 deployments and the override 5.
        for name in ["Second", "Third", "Fourth", "Fifth"] {
            create_deployment(&server, &customer.token, name).await;
        }
        let (status, body) = server.post("/api/v1/deployments", &customer.token, &json!({ "name": "Sixth", "openapi_spec": petstore() })).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "PLAN_LIMIT_EXCEEDED");
        assert_eq!(body["details"]["limit"], 5);
        assert!(body["error"].as_str().unwrap().contains("platform admin"), "{body}");
        for name in ["Two", "Three"] {
            create_deployment(&server, &neighbour.token, name).await;
        }
        let (status, body) = server.post("/api/v1/deployments", &neighbour.token, &json!({ "name": "Four", "openapi_spec": petstore() })).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "PLAN_LIMIT_EXCEEDED");
        assert_eq!(body["details"]["limit"], 3);

        let before_delete = server.feed.changes_since(0).await.unwrap().version;
        let (status, cleared) = server.delete(&path, &admin.token).await;
        assert_eq!(status, StatusCode::OK, "{cleared}");
        assert_eq!(cleared["overrides"], Value::Null);
        assert_eq!(cleared["effective_limits"], initial["plan_limits"]);
        let delta = server.feed.changes_since(before_delete).await.unwrap();
        assert_eq!(record_overrides(&delta, &org_id), vec![None; 5]);
        let (_, entries) = server.get(&format!("/api/v1/organizations/{org_id}/audit-logs"), &customer.token).await;
        assert_eq!(entries[0]["event_type"], "plan_limit_overrides_cleared");
        let (_, subscription) = server.get("/api/v1/billing/subscription", &customer.token).await;
        assert_eq!(subscription["limits"]["max_deployments"], 3);
        assert_eq!(subscription["limits"]["requests_per_minute"], 60);
        let (status, body) = server.post("/api/v1/deployments", &customer.token, &json!({ "name": "Sixth", "openapi_spec": petstore() })).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "PLAN_LIMIT_EXCEEDED");
        assert_eq!(body["details"]["limit"], 3);

        // An empty object overrides nothing.
        let (status, body) = server.put(&path, &admin.token, &json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["overrides"], Value::Null);
    }

    async fn storage_override_limits_uploads(backend) {
        let server = TestServer::start(backend, |config| config.admin_emails = vec![ADMIN_EMAIL.to_owned()]).await;
        let admin = server.register("chief").await;
        let customer = server.register("olga").await;
        let org_id = server.personal_org(&customer).await["id"].as_str().unwrap().to_owned();

        let (status, body) = server.put(&limits_path(&org_id), &admin.token, &json!({ "max_storage_bytes": 10 })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = server.post("/api/v1/deployments", &customer.token, &json!({ "name": "Big", "openapi_spec": petstore() })).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "STORAGE_QUOTA_EXCEEDED");
        assert_eq!(body["details"]["limit_bytes"], 10);
        assert_eq!(body["details"]["limit_source"], "organization");
        let message = body["error"].as_str().unwrap();
        assert!(message.contains("storage quota of organization olga"), "{message}");
        assert!(message.contains("set by a platform admin"), "{message}");
        assert!(!message.contains("upgrade the plan"), "{message}");

        let (status, body) = server.delete(&limits_path(&org_id), &admin.token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        create_deployment(&server, &customer.token, "Big").await;
    }
}
