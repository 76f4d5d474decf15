//! The data export of the calling user.

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::audit::{self, RequestMeta};
use super::openapi::schemas::{DataExport, DeleteAccountRequest, DeletionScheduled, ErrorBody};
use super::ApiJson;
use crate::auth::{Caller, Credential};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Returns everything stored about the calling user, secrets excluded. Deployments are those of
/// the organizations the user belongs to.
#[utoipa::path(
    get,
    path = "/api/v1/gdpr/export",
    tag = "gdpr",
    operation_id = "export_data",
    summary = "Export my data",
    responses(
        (status = 200, description = "Everything stored about the user, secrets excluded", body = DataExport),
        (status = 403, description = "The request uses an API token; a login session (JWT) is required (`FORBIDDEN`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = [])),
)]
pub async fn export(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    if !matches!(caller.credential, Credential::Jwt) {
        return Err(ApiError::Forbidden("the data export requires a login session (JWT), not an API token".to_owned()));
    }
    let user = state
        .store
        .user_by_id(caller.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("invalid token: the user no longer exists".to_owned()))?;
    let organizations = state.store.organizations_of(user.id).await?;
    let mut orgs = Vec::new();
    let mut deployments = Vec::new();
    for org in &organizations {
        let role = state.store.membership(org.id, user.id).await?.map(|(_, role)| role);
        orgs.push(json!({
            "id": org.id, "name": org.name, "slug": org.slug, "plan": org.plan, "role": role, "created_at": org.created_at,
        }));
        for deployment in state.store.deployments(org.id, None, None).await? {
            deployments.push(json!({
                "id": deployment.id,
                "org_id": deployment.org_id,
                "name": deployment.name,
                "slug": deployment.slug,
                "description": deployment.description,
                "status": deployment.status,
                "config_json": deployment.config_json,
                "document_sha256": deployment.document_sha256,
                "created_at": deployment.created_at,
                "updated_at": deployment.updated_at,
            }));
        }
    }
    let records = state.store.gdpr().user_records(user.id).await?;
    tracing::info!(user_id = %user.id, "exported a user's data");
    Ok(Json(json!({
        "user_data": { "id": user.id, "username": user.username, "email": user.email, "created_at": user.created_at },
        "organizations": orgs,
        "deployments": deployments,
        "api_tokens": records.api_tokens,
        "audit_logs": records.audit_logs,
        "suspicious_activities": records.suspicious_activities,
        "support_tickets": records.support_tickets,
        "login_addresses": records.login_addresses,
        "exported_at": Utc::now(),
    })))
}

/// Locks the calling user's account at once and schedules its deletion after the grace period.
/// The body must be `{"confirm": true}`.
#[utoipa::path(
    post,
    path = "/api/v1/gdpr/delete",
    tag = "gdpr",
    operation_id = "delete_account",
    summary = "Delete my account",
    request_body(content = DeleteAccountRequest),
    responses(
        (status = 200, description = "The account is locked now and deleted after the grace period", body = DeletionScheduled),
        (status = 400, description = "`confirm` is not `true` (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The request uses an API token; a login session (JWT) is required (`FORBIDDEN`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    if !matches!(caller.credential, Credential::Jwt) {
        return Err(ApiError::Forbidden("deleting the account requires a login session (JWT), not an API token".to_owned()));
    }
    let confirm = body.get("confirm").cloned().unwrap_or(Value::Null);
    if confirm != Value::Bool(true) {
        return Err(ApiError::validation("confirm", "must be true to confirm that the account and its data are deleted", confirm));
    }
    let grace_period = chrono::Duration::from_std(state.config.gdpr_grace_period)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("gdpr_grace_period is out of range: {error}")))?;
    let scheduled_at = crate::store::now() + grace_period;
    let entry = audit::entry(
        &caller,
        &meta,
        "account_deletion_requested",
        "Account deletion requested".to_owned(),
        json!({ "deletion_scheduled_at": scheduled_at }),
    );
    if !state.store.deletion().schedule_deletion(caller.user_id, scheduled_at, &entry).await? {
        // The JWT check rejects a locked account first, so this only happens in a race.
        return Err(ApiError::Unauthorized("the account is locked because its deletion was requested".to_owned()));
    }
    tracing::info!(user_id = %caller.user_id, %scheduled_at, "locked an account and scheduled its deletion");
    Ok(Json(json!({
        "message": "Data deletion initiated. This action cannot be undone.",
        "deletion_scheduled_at": scheduled_at,
    })))
}
