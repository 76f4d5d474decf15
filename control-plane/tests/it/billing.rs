//! Billing: subscription, checkout through a fake Stripe on loopback, signed webhooks and the
//! platform admins' plan change.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::backend_tests;
use crate::harness::{assert_error, create_deployment, read, TestServer};

const STRIPE_KEY: &str = "sk_test_fake_0123456789";
const WEBHOOK_SECRET: &str = "whsec_test_secret_abcdef";

/// Requests the fake Stripe received: the Authorization header and the form body.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// Starts a fake Stripe API on loopback. `POST /v1/checkout/sessions` returns a session unless
/// the price is `price_rejected`, which gets a Stripe-style 400.
async fn fake_stripe() -> (SocketAddr, Received) {
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;

    let received: Received = Arc::default();
    let log = received.clone();
    let app = axum::Router::new().route(
        "/v1/checkout/sessions",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                log.lock().unwrap().push((auth, body.clone()));
                if body.contains("price_rejected") {
                    let error = json!({ "error": { "message": "No such price: 'price_rejected'" } });
                    return (axum::http::StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
                }
                axum::Json(json!({ "id": "cs_test_123", "url": "https://checkout.stripe.test/c/pay/cs_test_123" }))
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, received)
}

fn configure_stripe(config: &mut mockforge_control_plane::ControlPlaneConfig, stripe: SocketAddr) {
    config.stripe_secret_key = Some(STRIPE_KEY.to_owned());
    config.stripe_webhook_secret = Some(WEBHOOK_SECRET.to_owned());
    config.stripe_api_base = format!("http://{stripe}");
    config.stripe_price_ids =
        [("pro".to_owned(), "price_pro".to_owned()), ("team".to_owned(), "price_rejected".to_owned())].into();
}

fn signature(secret: &str, timestamp: i64, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{payload}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn send_webhook(server: &TestServer, payload: &str, header: Option<String>) -> (StatusCode, Value) {
    let mut request = server.client.post(server.url("/api/v1/billing/webhook")).body(payload.to_owned());
    if let Some(header) = header {
        request = request.header("stripe-signature", header);
    }
    read(request.send().await.unwrap()).await
}

async fn signed_webhook(server: &TestServer, event: &Value) -> (StatusCode, Value) {
    let payload = event.to_string();
    let header = signature(WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &payload);
    send_webhook(server, &payload, Some(header)).await
}

const DAY: i64 = 24 * 60 * 60;

/// Returns the Unix seconds of an RFC 3339 timestamp in a response.
fn timestamp(value: &Value) -> i64 {
    let text = value.as_str().unwrap_or_else(|| panic!("expected a timestamp, got {value}"));
    text.parse::<chrono::DateTime<chrono::Utc>>().unwrap().timestamp()
}

async fn subscription(server: &TestServer, token: &str) -> Value {
    let (status, body) = server.get("/api/v1/billing/subscription", token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

backend_tests! {
    async fn subscription_defaults_to_free(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("bea").await;
        let org_id = server.personal_org(&account).await["id"].clone();
        let body = subscription(&server, &account.token).await;
        assert_eq!(body["org_id"], org_id);
        assert_eq!(body["plan"], "free");
        assert_eq!(body["status"], "active");
        assert!(body["current_period_end"].is_null());
        assert_eq!(body["limits"]["max_deployments"], 3);
        assert_eq!(body["limits"]["requests_per_minute"], 60);
        assert_eq!(body["limits"]["hosted_mocks"], true);
        assert_eq!(body["limits"]["plugin_call_timeout_ms"], 10);
        assert_eq!(body["limits"]["plugin_memory_bytes"], 16_777_216);
        assert_eq!(body["usage"]["requests"], 0);
        assert_eq!(body["usage"]["ai_tokens_used"], 0);
        let (status, body) = server.request(Method::GET, "/api/v1/billing/subscription", None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }

    async fn checkout_without_stripe_is_503(backend) {
        let server = TestServer::start(backend, |_| {}).await;
        let account = server.register("cato").await;
        let request = json!({ "plan": "pro", "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no" });
        let (status, body) = server.post("/api/v1/billing/checkout", &account.token, &request).await;
        assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
        assert!(body["error"].as_str().unwrap().contains("billing is not configured"), "{body}");
        let (status, body) = send_webhook(&server, "{}", Some("t=1,v1=00".to_owned())).await;
        assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    }

    async fn checkout_through_fake_stripe(backend) {
        let (stripe, received) = fake_stripe().await;
        let server = TestServer::start(backend, |config| configure_stripe(config, stripe)).await;
        let account = server.register("dora").await;
        let org_id = server.personal_org(&account).await["id"].as_str().unwrap().to_owned();
        let request = json!({ "plan": "pro", "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no" });
        let (status, body) = server.post("/api/v1/billing/checkout", &account.token, &request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["session_id"], "cs_test_123");
        assert_eq!(body["checkout_url"], "https://checkout.stripe.test/c/pay/cs_test_123");
        {
            let received = received.lock().unwrap();
            assert_eq!(received.len(), 1);
            assert_eq!(received[0].0, format!("Bearer {STRIPE_KEY}"));
            let form = &received[0].1;
            assert!(form.contains("mode=subscription"), "{form}");
            assert!(form.contains("price_pro"), "{form}");
            assert!(form.contains(&format!("client_reference_id={org_id}")), "{form}");
        }
        let (_, entries) = server.get(&format!("/api/v1/organizations/{org_id}/audit-logs?event_type=billing_checkout"), &account.token).await;
        assert_eq!(entries[0]["metadata"], json!({ "plan": "pro", "session_id": "cs_test_123" }));

        let cases = [
            (json!({ "plan": "enterprise", "success_url": "https://a.test/", "cancel_url": "https://a.test/" }), "plan"),
            (json!({ "plan": "free", "success_url": "https://a.test/", "cancel_url": "https://a.test/" }), "plan"),
            (json!({ "plan": "pro", "success_url": "not a url", "cancel_url": "https://a.test/" }), "success_url"),
            (json!({ "plan": "pro", "success_url": "https://a.test/", "cancel_url": "ftp://a.test/" }), "cancel_url"),
        ];
        for (request, field) in cases {
            let (status, body) = server.post("/api/v1/billing/checkout", &account.token, &request).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["field"], field, "{request}");
        }
        let (status, body) = server.post("/api/v1/billing/checkout", &account.token, &json!({ "plan": "pro" })).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_JSON");
        let rejected = json!({ "plan": "team", "success_url": "https://a.test/", "cancel_url": "https://a.test/" });
        let (status, body) = server.post("/api/v1/billing/checkout", &account.token, &rejected).await;
        assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
        assert!(body["error"].as_str().unwrap().contains("No such price"), "{body}");

        let read_token = server.api_token(&account, &["read", "write"]).await;
        let (status, body) = server.post("/api/v1/billing/checkout", &read_token, &request).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE");
    }

    async fn webhook_drives_subscription(backend) {
        let (stripe, _) = fake_stripe().await;
        let server = TestServer::start(backend, |config| configure_stripe(config, stripe)).await;
        let account = server.register("emil").await;
        let org_id = server.personal_org(&account).await["id"].as_str().unwrap().to_owned();
        let deployment = create_deployment(&server, &account.token, "Planned").await;
        let before = server.feed.changes_since(0).await.unwrap().version;

        let completed = json!({
            "id": "evt_checkout_1",
            "type": "checkout.session.completed",
            "data": { "object": {
                "id": "cs_test_123", "client_reference_id": org_id, "customer": "cus_1", "subscription": "sub_1",
                "metadata": { "org_id": org_id, "plan": "pro" }
            } }
        });
        let (status, body) = signed_webhook(&server, &completed).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["processed"], true);
        assert_eq!(server.personal_org(&account).await["plan"], "pro");
        // The plan reaches the edges through the snapshot.
        let delta = server.feed.changes_since(before).await.unwrap();
        assert!(delta.version > before);
        assert_eq!(delta.upserts.len(), 1);
        assert_eq!(delta.upserts[0].id.to_string(), deployment["id"].as_str().unwrap());
        assert_eq!(delta.upserts[0].plan, "pro");
        let after_checkout = delta.version;

        // A redelivered event changes nothing.
        let (status, body) = signed_webhook(&server, &completed).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["duplicate"], true);
        assert_eq!(server.feed.changes_since(0).await.unwrap().version, after_checkout);

        let period_end = 1_900_000_000i64;
        let updated = json!({
            "id": "evt_sub_updated", "type": "customer.subscription.updated",
            "data": { "object": { "id": "sub_1", "customer": "cus_1", "status": "active", "current_period_end": period_end,
                "items": { "data": [{ "price": { "id": "price_pro" } }] } } }
        });
        let (status, _) = signed_webhook(&server, &updated).await;
        assert_eq!(status, StatusCode::OK);
        let body = subscription(&server, &account.token).await;
        assert_eq!(body["plan"], "pro");
        assert_eq!(body["status"], "active");
        let end: chrono::DateTime<chrono::Utc> = body["current_period_end"].as_str().unwrap().parse().unwrap();
        assert_eq!(end.timestamp(), period_end);
        assert_eq!(body["limits"]["max_deployments"], 25);
        assert_eq!(body["limits"]["plugin_call_timeout_ms"], 50);
        assert_eq!(body["limits"]["plugin_memory_bytes"], 67_108_864);
        assert_eq!(body["usage"]["requests_limit"], 250_000);

        let failed = json!({ "id": "evt_inv_failed", "type": "invoice.payment_failed",
            "data": { "object": { "customer": "cus_1", "subscription": "sub_1" } } });
        signed_webhook(&server, &failed).await;
        assert_eq!(subscription(&server, &account.token).await["status"], "past_due");
        let paid = json!({ "id": "evt_inv_paid", "type": "invoice.payment_succeeded",
            "data": { "object": { "customer": "cus_1", "subscription": "sub_1" } } });
        signed_webhook(&server, &paid).await;
        assert_eq!(subscription(&server, &account.token).await["status"], "active");

        let ignored = json!({ "id": "evt_other", "type": "customer.created", "data": { "object": {} } });
        let (status, body) = signed_webhook(&server, &ignored).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["processed"], false);

        let deleted = json!({ "id": "evt_sub_deleted", "type": "customer.subscription.deleted",
            "data": { "object": { "id": "sub_1", "customer": "cus_1", "status": "canceled" } } });
        signed_webhook(&server, &deleted).await;
        let body = subscription(&server, &account.token).await;
        assert_eq!(body["plan"], "free");
        assert_eq!(body["status"], "canceled");
        let delta = server.feed.changes_since(after_checkout).await.unwrap();
        assert_eq!(delta.upserts[0].plan, "free");

        let (_, entries) = server.get(&format!("/api/v1/organizations/{org_id}/audit-logs?event_type=billing_subscription_changed"), &account.token).await;
        assert_eq!(entries.as_array().unwrap().len(), 5);
    }

    async fn billing_period_anchors_quota_periods(backend) {
        let (stripe, _) = fake_stripe().await;
        let server = TestServer::start(backend, |config| configure_stripe(config, stripe)).await;
        let account = server.register("hanna").await;
        let org_id = server.personal_org(&account).await["id"].as_str().unwrap().to_owned();
        let deployment = create_deployment(&server, &account.token, "Metered").await;
        let deployment_id: uuid::Uuid = deployment["id"].as_str().unwrap().parse().unwrap();
        let org_uuid: uuid::Uuid = org_id.parse().unwrap();

        let created = json!({
            "id": "evt_period_created", "type": "customer.subscription.created",
            "data": { "object": { "id": "sub_p", "customer": "cus_p", "status": "active",
                "metadata": { "org_id": org_id, "plan": "pro" } } }
        });
        let (status, body) = signed_webhook(&server, &created).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let before = server.feed.changes_since(0).await.unwrap().version;

        // A billing period that does not start at midnight, with the plan unchanged.
        let now = chrono::Utc::now().timestamp();
        let period_start = now - 10 * DAY - 1234;
        let updated = json!({
            "id": "evt_period_updated", "type": "customer.subscription.updated",
            "data": { "object": { "id": "sub_p", "customer": "cus_p", "status": "active",
                "items": { "data": [{ "price": { "id": "price_pro" },
                    "current_period_start": period_start, "current_period_end": period_start + 30 * DAY }] } } }
        });
        let (status, body) = signed_webhook(&server, &updated).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["processed"], true);
        let delta = server.feed.changes_since(before).await.unwrap();
        assert!(delta.version > before, "a period change must bump the configuration version");
        assert_eq!(delta.upserts.len(), 1);
        assert_eq!(delta.upserts[0].id, deployment_id);
        assert_eq!(delta.upserts[0].period_start, Some(period_start));
        let full = server.feed.changes_since(0).await.unwrap();
        assert_eq!(full.upserts[0].period_start, Some(period_start));

        // Usage counts from the period start: a window before it is not in the current period.
        let inside = crate::usage::usage(deployment_id, org_uuid, &[(200, 5)], 5.0);
        let outside = crate::usage::usage(deployment_id, org_uuid, &[(200, 7)], 7.0);
        let first_minute = (period_start + 60) * 1000;
        server.telemetry.report_telemetry(crate::usage::batch("edge-a", first_minute, vec![inside], vec![])).await.unwrap();
        let before_start = (period_start - 120) * 1000;
        server.telemetry.report_telemetry(crate::usage::batch("edge-a", before_start, vec![outside], vec![])).await.unwrap();

        let (status, usage) = server.get("/api/v1/usage", &account.token).await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        assert_eq!(timestamp(&usage["period_start"]), period_start);
        assert_eq!(timestamp(&usage["period_end"]), period_start + 30 * DAY - 1);
        assert_eq!(usage["requests"], 5);
        // The earlier period is listed only because the organization existed then.
        server.backdate_organizations(60).await;
        let (_, history) = server.get("/api/v1/usage/history?months=2", &account.token).await;
        assert_eq!(timestamp(&history[0]["period_start"]), period_start);
        assert_eq!(history[0]["requests"], 5);
        assert_eq!(timestamp(&history[1]["period_start"]), period_start - 30 * DAY);
        assert_eq!(history[1]["requests"], 7);
        let body = subscription(&server, &account.token).await;
        assert_eq!(timestamp(&body["current_period_start"]), period_start);
        assert_eq!(timestamp(&body["current_period_end"]), period_start + 30 * DAY);
        assert_eq!(timestamp(&body["usage"]["period_start"]), period_start);
        assert_eq!(body["usage"]["requests"], 5);

        // The same period again changes nothing that edges see.
        let unchanged_version = server.feed.changes_since(0).await.unwrap().version;
        let mut repeated = updated.clone();
        repeated["id"] = json!("evt_period_repeated");
        let (status, _) = signed_webhook(&server, &repeated).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(server.feed.changes_since(0).await.unwrap().version, unchanged_version);

        // A paid renewal invoice moves the period to its line's period.
        let renewed_start = now - 2 * DAY - 77;
        let paid = json!({
            "id": "evt_period_paid", "type": "invoice.payment_succeeded",
            "data": { "object": { "customer": "cus_p", "subscription": "sub_p",
                "lines": { "data": [{ "period": { "start": renewed_start, "end": renewed_start + 30 * DAY } }] } } }
        });
        let (status, body) = signed_webhook(&server, &paid).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let delta = server.feed.changes_since(unchanged_version).await.unwrap();
        assert_eq!(delta.upserts.len(), 1);
        assert_eq!(delta.upserts[0].period_start, Some(renewed_start));
        let (_, usage) = server.get("/api/v1/usage", &account.token).await;
        assert_eq!(timestamp(&usage["period_start"]), renewed_start);
        assert_eq!(usage["requests"], 0);
        assert_eq!(timestamp(&subscription(&server, &account.token).await["current_period_start"]), renewed_start);
    }

    async fn webhook_oversized_body_is_413(backend) {
        let (stripe, _) = fake_stripe().await;
        let server = TestServer::start(backend, |config| configure_stripe(config, stripe)).await;
        let limit = 2 * 1024 * 1024;
        let payload = "x".repeat(limit + 1);
        let header = signature(WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &payload);
        let (status, body) = send_webhook(&server, &payload, Some(header)).await;
        assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
        assert_eq!(body["details"]["max_bytes"], limit);
        assert!(body["error"].as_str().unwrap().contains(&limit.to_string()), "{body}");
    }

    async fn webhook_rejects_bad_signatures(backend) {
        let (stripe, _) = fake_stripe().await;
        let server = TestServer::start(backend, |config| configure_stripe(config, stripe)).await;
        let account = server.register("fritz").await;
        let org_id = server.personal_org(&account).await["id"].as_str().unwrap().to_owned();
        let event = json!({ "id": "evt_bad", "type": "checkout.session.completed",
            "data": { "object": { "metadata": { "org_id": org_id, "plan": "pro" } } } });
        let payload = event.to_string();
        let now = chrono::Utc::now().timestamp();

        let cases = [
            (None, "missing header"),
            (Some(signature("whsec_wrong_secret", now, &payload)), "wrong secret"),
            (Some(signature(WEBHOOK_SECRET, now - 301, &payload)), "stale timestamp"),
            (Some(signature(WEBHOOK_SECRET, now, "{\"id\":\"evt_other\"}")), "other payload"),
            (Some("t=abc,v1=00".to_owned()), "malformed"),
        ];
        for (header, case) in cases {
            let (status, body) = send_webhook(&server, &payload, header).await;
            assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
            assert_eq!(body["details"]["field"], "Stripe-Signature", "{case}");
        }
        assert_eq!(server.personal_org(&account).await["plan"], "free");

        // The same event, correctly signed, still processes: rejected deliveries were not recorded.
        let (status, body) = signed_webhook(&server, &event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(server.personal_org(&account).await["plan"], "pro");
    }

    async fn admin_sets_plan(backend) {
        let server = TestServer::start(backend, |config| config.admin_emails = vec!["root@example.com".to_owned()]).await;
        let admin = server.register("root").await;
        let customer = server.register("gert").await;
        let org_id = server.personal_org(&customer).await["id"].as_str().unwrap().to_owned();
        create_deployment(&server, &customer.token, "Upgraded").await;
        let before = server.feed.changes_since(0).await.unwrap().version;
        let path = format!("/api/v1/admin/organizations/{org_id}/plan");

        let (status, body) = server.put(&path, &customer.token, &json!({ "plan": "team" })).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
        let admin_token = server.api_token(&admin, &["admin"]).await;
        let (status, body) = server.put(&path, &admin_token, &json!({ "plan": "team" })).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
        let (status, body) = server.request(Method::PUT, &path, None, Some(&json!({ "plan": "team" }))).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let (status, body) = server.put(&path, &admin.token, &json!({ "plan": "platinum" })).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "plan");
        let unknown = format!("/api/v1/admin/organizations/{}/plan", uuid::Uuid::new_v4());
        let (status, body) = server.put(&unknown, &admin.token, &json!({ "plan": "team" })).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");

        let (status, body) = server.put(&path, &admin.token, &json!({ "plan": "team" })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["plan"], "team");
        assert_eq!(server.personal_org(&customer).await["plan"], "team");
        let delta = server.feed.changes_since(before).await.unwrap();
        assert_eq!(delta.upserts[0].plan, "team");
        let (_, entries) = server.get(&format!("/api/v1/organizations/{org_id}/audit-logs"), &customer.token).await;
        assert_eq!(entries[0]["event_type"], "billing_plan_set_by_admin");
        assert_eq!(entries[0]["user_id"], admin.user_id.as_str());
    }
}
