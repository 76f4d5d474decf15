//! Billing: the organization's subscription, Stripe checkout, the Stripe webhook and the
//! platform admins' direct plan change.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{self, RequestMeta};
use super::openapi::schemas::{CheckoutSession, ErrorBody, PlanChange, Subscription, WebhookReceipt};
use super::{parse_id, ApiBody, ApiJson};
use crate::auth::{Caller, Credential, Scope};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::billing::{BillingChange, BillingOutcome};
use crate::store::Organization;

/// Maximum Stripe event body, in bytes.
pub const WEBHOOK_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Maximum age of a webhook signature timestamp, either way.
pub const WEBHOOK_TOLERANCE_SECONDS: i64 = 300;
const STRIPE_TIMEOUT: Duration = Duration::from_secs(15);
const FREE_PLAN: &str = "free";

#[derive(Deserialize, ToSchema)]
pub struct CheckoutRequest {
    /// A plan with a configured Stripe price, for example `pro` or `team`.
    plan: String,
    /// Absolute http or https URL that Stripe returns to after payment.
    success_url: String,
    /// Absolute http or https URL that Stripe returns to on cancel.
    cancel_url: String,
}

#[derive(Deserialize, ToSchema)]
pub struct PlanRequest {
    /// A plan of the plan table, for example `free`, `pro` or `team`.
    plan: String,
}

/// Builds the `limits` object of the subscription response from the organization's effective
/// limits (its plan's limits with its limit overrides applied).
fn plan_limits_json(state: &AppState, org: &Organization) -> Value {
    let limits = org.effective_limits(&state.config.plans);
    json!({
        "max_deployments": limits.max_deployments,
        "requests_per_minute": limits.requests_per_minute,
        "requests_per_30d": limits.requests_per_30d,
        "deployment_rps": limits.deployment_rps,
        "max_request_body_bytes": limits.max_request_body_bytes,
        "max_storage_bytes": limits.max_storage_bytes,
        "storage_gb": limits.max_storage_bytes.map(crate::quota::gibibytes),
        // `null` here means the edge's default (10 ms, 16 MiB), not unlimited.
        "plugin_call_timeout_ms": limits.plugin_call_timeout_ms,
        "plugin_memory_bytes": limits.plugin_memory_bytes,
        "hosted_mocks": true,
        // TODO: projects, collaborators and AI quotas are not in the plan table yet.
        "max_projects": Value::Null,
        "max_collaborators": Value::Null,
        "ai_tokens_per_month": Value::Null,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/billing/subscription",
    tag = "billing",
    operation_id = "get_subscription",
    summary = "Get the subscription",
    responses(
        (status = 200, description = "The organization's plan, subscription status, usage and limits", body = Subscription),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn subscription(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let subscription = state.store.billing().subscription(caller.org.id).await?;
    let usage = super::usage::usage_summary(&state, &caller).await?;
    let status = subscription.as_ref().map(|row| row.status.clone()).unwrap_or_else(|| "active".to_owned());
    Ok(Json(json!({
        "org_id": caller.org.id,
        "plan": caller.org.plan,
        "status": status,
        "current_period_start": subscription.as_ref().and_then(|row| row.current_period_start),
        "current_period_end": subscription.as_ref().and_then(|row| row.current_period_end),
        "usage": {
            "period_start": usage["period_start"],
            "period_end": usage["period_end"],
            "requests": usage["requests"],
            "requests_limit": usage["requests_limit"],
            "storage_bytes": usage["storage_bytes"],
            "storage_limit_bytes": usage["storage_limit_bytes"],
            "ai_tokens_used": usage["ai_tokens_used"],
            "ai_tokens_limit": usage["ai_tokens_limit"],
        },
        "limits": plan_limits_json(&state, &caller.org),
    })))
}

fn validate_url(field: &'static str, text: &str) -> ApiResult<()> {
    match reqwest::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(ApiError::validation(field, "must be an absolute http or https URL", Value::from(text))),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/billing/checkout",
    tag = "billing",
    operation_id = "create_checkout_session",
    summary = "Create a checkout session",
    request_body(content = CheckoutRequest),
    responses(
        (status = 200, description = "A Stripe Checkout session to send the user to", body = CheckoutSession),
        (status = 400, description = "Invalid input (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `admin` scope, or the user is not an owner or admin of the organization", body = ErrorBody),
        (status = 503, description = "Billing is not configured on this server, or Stripe is unreachable or rejected the session (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    ApiJson(request): ApiJson<CheckoutRequest>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let Some(secret_key) = state.config.stripe_secret_key.clone() else {
        return Err(ApiError::Unavailable(
            "billing is not configured on this server: no Stripe secret key is set; ask a platform admin to change the plan".to_owned(),
        ));
    };
    let Some(price) = state.config.stripe_price_ids.get(&request.plan).cloned() else {
        let mut paid: Vec<&str> = state.config.stripe_price_ids.keys().map(String::as_str).collect();
        paid.sort_unstable();
        return Err(ApiError::validation(
            "plan",
            format!("unknown or unpurchasable plan {:?}; expected one of: {}", request.plan, paid.join(", ")),
            Value::from(request.plan.as_str()),
        ));
    };
    validate_url("success_url", &request.success_url)?;
    validate_url("cancel_url", &request.cancel_url)?;

    let org_id = caller.org.id.to_string();
    let mut form: Vec<(&str, String)> = vec![
        ("mode", "subscription".to_owned()),
        ("line_items[0][price]", price),
        ("line_items[0][quantity]", "1".to_owned()),
        ("success_url", request.success_url.clone()),
        ("cancel_url", request.cancel_url.clone()),
        ("client_reference_id", org_id.clone()),
        ("metadata[org_id]", org_id.clone()),
        ("metadata[plan]", request.plan.clone()),
        ("subscription_data[metadata][org_id]", org_id.clone()),
        ("subscription_data[metadata][plan]", request.plan.clone()),
    ];
    let subscription = state.store.billing().subscription(caller.org.id).await?;
    if let Some(customer) = subscription.and_then(|row| row.stripe_customer_id) {
        form.push(("customer", customer));
    }
    let url = format!("{}/v1/checkout/sessions", state.config.stripe_api_base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(STRIPE_TIMEOUT)
        .build()
        .map_err(|error| ApiError::Internal(anyhow::Error::new(error).context("failed to build the Stripe client")))?;
    let response = client.post(&url).bearer_auth(&secret_key).form(&form).send().await.map_err(|error| {
        tracing::error!(error = %error.without_url(), org_id = %caller.org.id, "the Stripe checkout request failed");
        ApiError::Unavailable("the payment provider is unreachable; try again later".to_owned())
    })?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message").to_owned();
        tracing::error!(%status, %message, org_id = %caller.org.id, "Stripe rejected a checkout session");
        return Err(ApiError::Unavailable(format!("the payment provider rejected the checkout session: {message}")));
    }
    let (Some(session_id), Some(checkout_url)) = (body["id"].as_str(), body["url"].as_str()) else {
        return Err(ApiError::Internal(anyhow::anyhow!("the Stripe checkout session has no id or url")));
    };

    let entry = audit::entry(
        &caller,
        &meta,
        "billing_checkout",
        format!("Checkout session created for {} plan", request.plan),
        json!({ "plan": request.plan, "session_id": session_id }),
    );
    state.store.accounts().record_audit(&entry).await?;
    tracing::info!(org_id = %caller.org.id, plan = %request.plan, %session_id, "created a Stripe checkout session");
    Ok(Json(json!({ "checkout_url": checkout_url, "session_id": session_id })))
}

/// Verifies a `Stripe-Signature` header (`t=…,v1=…[,v1=…]`) over `payload`: an HMAC-SHA256 of
/// `{t}.{payload}` under `secret` must match one `v1` value, and `t` must be within
/// [`WEBHOOK_TOLERANCE_SECONDS`] of `now`.
pub fn verify_signature(header: &str, payload: &[u8], secret: &str, now: i64) -> Result<(), String> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else { continue };
        match key {
            "t" => timestamp = value.parse::<i64>().ok(),
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("the Stripe-Signature header has no valid timestamp t=")?;
    if signatures.is_empty() {
        return Err("the Stripe-Signature header has no v1 signature".to_owned());
    }
    if (now - timestamp).abs() > WEBHOOK_TOLERANCE_SECONDS {
        return Err(format!(
            "the Stripe-Signature timestamp {timestamp} is more than {WEBHOOK_TOLERANCE_SECONDS} seconds from the server time {now}"
        ));
    }
    for signature in signatures {
        let Ok(expected) = hex::decode(signature) else { continue };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|error| error.to_string())?;
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err("no v1 signature in the Stripe-Signature header matches the payload".to_owned())
}

fn unix_time(value: &Value) -> Option<DateTime<Utc>> {
    value.as_i64().and_then(|seconds| DateTime::from_timestamp(seconds, 0))
}

/// Returns the plan of a Stripe subscription object: `metadata.plan`, else the plan whose
/// configured price is the first item's price.
fn subscription_plan(state: &AppState, object: &Value) -> Option<String> {
    if let Some(plan) = object["metadata"]["plan"].as_str() {
        return Some(plan.to_owned());
    }
    let price = object["items"]["data"][0]["price"]["id"].as_str()?;
    state.config.stripe_price_ids.iter().find(|(_, id)| id.as_str() == price).map(|(plan, _)| plan.clone())
}

async fn event_org(state: &AppState, object: &Value, subscription_id: Option<&str>) -> ApiResult<Option<Uuid>> {
    let from_metadata = object["metadata"]["org_id"]
        .as_str()
        .or_else(|| object["client_reference_id"].as_str())
        .and_then(|text| Uuid::parse_str(text).ok());
    if from_metadata.is_some() {
        return Ok(from_metadata);
    }
    let customer = object["customer"].as_str();
    Ok(state.store.billing().org_for_stripe(subscription_id, customer).await?)
}

/// The start and end of a Stripe billing period. `None` keeps the stored value.
type Period = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Turns a Stripe event into a billing change, or `None` for events that change nothing.
async fn billing_change(state: &AppState, event_type: &str, object: &Value) -> ApiResult<Option<BillingChange>> {
    let customer = object["customer"].as_str().map(str::to_owned);
    let change = |org_id, plan: Option<String>, status: Option<&str>, subscription: Option<String>, period: Period| {
        BillingChange {
            event: None,
            org_id,
            plan,
            status: status.map(str::to_owned),
            stripe_customer_id: customer.clone(),
            stripe_subscription_id: subscription,
            current_period_start: period.0,
            current_period_end: period.1,
            audit: None,
        }
    };
    let result = match event_type {
        "checkout.session.completed" => {
            let subscription = object["subscription"].as_str().map(str::to_owned);
            let plan = object["metadata"]["plan"].as_str().map(str::to_owned);
            event_org(state, object, subscription.as_deref())
                .await?
                .map(|org| change(org, plan, Some("active"), subscription, (None, None)))
        }
        "customer.subscription.created" | "customer.subscription.updated" => {
            let subscription = object["id"].as_str().map(str::to_owned);
            let status = object["status"].as_str().unwrap_or("active");
            // Only a subscription in good standing grants its plan; others keep the current one
            // until Stripe cancels them.
            let plan = if matches!(status, "active" | "trialing") { subscription_plan(state, object) } else { None };
            // Stripe API versions from 2025-03-31 carry the period on the items only.
            let item = &object["items"]["data"][0];
            let period = (
                unix_time(&object["current_period_start"]).or_else(|| unix_time(&item["current_period_start"])),
                unix_time(&object["current_period_end"]).or_else(|| unix_time(&item["current_period_end"])),
            );
            event_org(state, object, subscription.as_deref())
                .await?
                .map(|org| change(org, plan, Some(status), subscription, period))
        }
        "customer.subscription.deleted" => {
            let subscription = object["id"].as_str().map(str::to_owned);
            event_org(state, object, subscription.as_deref())
                .await?
                .map(|org| change(org, Some(FREE_PLAN.to_owned()), Some("canceled"), subscription, (None, None)))
        }
        "invoice.payment_succeeded" | "invoice.payment_failed" => {
            let subscription = object["subscription"]
                .as_str()
                .or_else(|| object["parent"]["subscription_details"]["subscription"].as_str())
                .map(str::to_owned);
            let status = if event_type == "invoice.payment_succeeded" { "active" } else { "past_due" };
            // Stripe renews the subscription's period whether or not the invoice is paid.
            let line_period = &object["lines"]["data"][0]["period"];
            let period = (unix_time(&line_period["start"]), unix_time(&line_period["end"]));
            let org = match state.store.billing().org_for_stripe(subscription.as_deref(), customer.as_deref()).await? {
                Some(org) => Some(org),
                None => event_org(state, object, subscription.as_deref()).await?,
            };
            org.map(|org| change(org, None, Some(status), subscription, period))
        }
        _ => None,
    };
    Ok(result)
}

#[utoipa::path(
    post,
    path = "/api/v1/billing/webhook",
    tag = "billing",
    operation_id = "stripe_webhook",
    summary = "Receive a Stripe event",
    description = "Called by Stripe, authenticated by the signature, and not rate-limited. `checkout.session.completed` and `customer.subscription.*` events change the plan.",
    params(
        ("Stripe-Signature" = String, Header, description = "`t=<unix time>,v1=<HMAC-SHA256 hex>`, signed with the webhook secret"),
    ),
    request_body(content = Object, description = "A Stripe event"),
    responses(
        (status = 200, description = "The event was received; each event id is processed once", body = WebhookReceipt),
        (status = 400, description = "The `Stripe-Signature` header is missing, invalid or older than 5 minutes, or the body is not a Stripe event (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 413, description = "The body exceeds 2 MiB (2097152 bytes); `details.max_bytes` is the limit (`PAYLOAD_TOO_LARGE`)", body = ErrorBody),
        (status = 503, description = "No webhook secret is configured on this server (`SERVICE_UNAVAILABLE`)", body = ErrorBody),
    ),
)]
pub async fn webhook(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiBody(payload): ApiBody<WEBHOOK_BODY_LIMIT>,
) -> ApiResult<Json<Value>> {
    let Some(secret) = state.config.stripe_webhook_secret.as_deref() else {
        return Err(ApiError::Unavailable(
            "billing is not configured on this server: no Stripe webhook secret is set".to_owned(),
        ));
    };
    let header = headers
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| ApiError::validation("Stripe-Signature", "the Stripe-Signature header is missing", None))?;
    if let Err(reason) = verify_signature(header, &payload, secret, Utc::now().timestamp()) {
        tracing::warn!(%reason, ip = ?meta.ip_address, "rejected a Stripe webhook");
        return Err(ApiError::validation("Stripe-Signature", reason, None));
    }
    let event: Value = serde_json::from_slice(&payload).map_err(|error| ApiError::InvalidJson(error.to_string()))?;
    let (Some(event_id), Some(event_type)) = (event["id"].as_str(), event["type"].as_str()) else {
        return Err(ApiError::validation("event", "the event has no id or type", None));
    };
    let object = &event["data"]["object"];

    let Some(mut change) = billing_change(&state, event_type, object).await? else {
        let first = state.store.billing().record_stripe_event(event_id, event_type).await?;
        tracing::info!(%event_id, %event_type, duplicate = !first, "recorded a Stripe event that changes nothing");
        return Ok(Json(json!({ "received": true, "processed": false })));
    };
    change.event = Some((event_id.to_owned(), event_type.to_owned()));
    let description = match &change.plan {
        Some(plan) => format!("Stripe event {event_type}: plan {plan}"),
        None => format!("Stripe event {event_type}"),
    };
    change.audit = Some(audit::entry_for(
        change.org_id,
        None,
        &meta,
        "billing_subscription_changed",
        description,
        json!({ "event_id": event_id, "event_type": event_type, "plan": change.plan, "status": change.status }),
    ));
    let outcome = state.store.billing().apply_billing_change(&change).await?;
    match outcome {
        BillingOutcome::Duplicate => {
            tracing::info!(%event_id, %event_type, "ignored a Stripe event processed before");
            Ok(Json(json!({ "received": true, "processed": false, "duplicate": true })))
        }
        BillingOutcome::UnknownOrganization => {
            tracing::warn!(%event_id, %event_type, org_id = %change.org_id, "a Stripe event names an unknown organization");
            Ok(Json(json!({ "received": true, "processed": false })))
        }
        BillingOutcome::Applied { version } => {
            if let Some(version) = version {
                state.feed.notify(version);
            }
            tracing::info!(%event_id, %event_type, org_id = %change.org_id, plan = ?change.plan, "processed a Stripe event");
            Ok(Json(json!({ "received": true, "processed": true })))
        }
    }
}

/// Returns whether the caller is a platform admin: a JWT of a user whose e-mail is in
/// `admin_emails`. API tokens never act as platform admins.
pub(crate) async fn require_platform_admin(state: &AppState, caller: &Caller) -> ApiResult<()> {
    let forbidden = || ApiError::Forbidden("this request requires a platform admin account".to_owned());
    if !matches!(caller.credential, Credential::Jwt) {
        return Err(forbidden());
    }
    let user = state.store.user_by_id(caller.user_id).await?.ok_or_else(forbidden)?;
    let listed = state.config.admin_emails.iter().any(|admin| admin.trim().eq_ignore_ascii_case(&user.email));
    if listed {
        Ok(())
    } else {
        Err(forbidden())
    }
}

#[utoipa::path(
    put,
    path = "/api/v1/admin/organizations/{org_id}/plan",
    tag = "admin",
    operation_id = "set_organization_plan",
    summary = "Set an organization's plan",
    description = "Platform administrators (`admin_emails`) with a JWT only.",
    params(
        ("org_id" = Uuid, Path, description = "The organization"),
    ),
    request_body(content = PlanRequest),
    responses(
        (status = 200, description = "The plan is changed without Stripe", body = PlanChange),
        (status = 400, description = "Invalid input (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 403, description = "The caller is not a platform administrator (`FORBIDDEN`)", body = ErrorBody),
        (status = 404, description = "The organization does not exist (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = [])),
)]
pub async fn admin_set_plan(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(org_id): Path<String>,
    ApiJson(request): ApiJson<PlanRequest>,
) -> ApiResult<Json<Value>> {
    require_platform_admin(&state, &caller).await?;
    let org_id = parse_id("organization id", &org_id)?;
    if state.config.plans.limits(&request.plan).is_none() {
        let names: Vec<&str> = state.config.plans.names().collect();
        return Err(ApiError::validation(
            "plan",
            format!("unknown plan {:?}; expected one of: {}", request.plan, names.join(", ")),
            Value::from(request.plan.as_str()),
        ));
    }
    let change = BillingChange {
        event: None,
        org_id,
        plan: Some(request.plan.clone()),
        status: Some("active".to_owned()),
        stripe_customer_id: None,
        stripe_subscription_id: None,
        current_period_start: None,
        current_period_end: None,
        audit: Some(audit::entry_for(
            org_id,
            Some(caller.user_id),
            &meta,
            "billing_plan_set_by_admin",
            format!("Plan set to {} by a platform admin", request.plan),
            json!({ "plan": request.plan }),
        )),
    };
    match state.store.billing().apply_billing_change(&change).await? {
        BillingOutcome::Applied { version } => {
            if let Some(version) = version {
                state.feed.notify(version);
            }
            tracing::info!(%org_id, plan = %request.plan, admin = %caller.user_id, "a platform admin set an organization's plan");
            Ok(Json(json!({ "org_id": org_id, "plan": request.plan })))
        }
        _ => Err(ApiError::not_found("organization", org_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(payload);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn signature_checks() {
        let payload = br#"{"id":"evt_1"}"#;
        let now = 1_700_000_000;
        let good = sign("whsec_a", now, payload);
        assert!(verify_signature(&format!("t={now},v1={good}"), payload, "whsec_a", now).is_ok());
        // Any of several v1 signatures may match, for example during secret rolling.
        let other = sign("whsec_b", now, payload);
        assert!(verify_signature(&format!("t={now},v1={other},v1={good}"), payload, "whsec_a", now).is_ok());
        assert!(verify_signature(&format!("t={now},v1={other}"), payload, "whsec_a", now).is_err());
        assert!(verify_signature(&format!("t={now},v1={good}"), b"{}", "whsec_a", now).is_err());
        assert!(verify_signature(&format!("t={now},v1={good}"), payload, "whsec_a", now + 301).is_err());
        assert!(verify_signature(&format!("t={now},v1={good}"), payload, "whsec_a", now + 300).is_ok());
        assert!(verify_signature(&format!("v1={good}"), payload, "whsec_a", now).is_err());
        assert!(verify_signature(&format!("t={now}"), payload, "whsec_a", now).is_err());
        assert!(verify_signature(&format!("t={now},v0={good}"), payload, "whsec_a", now).is_err());
    }
}
