//! API tokens of the organization a request acts on.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{self, RequestMeta};
use super::openapi::schemas::{ApiTokenSummary, CreatedToken, ErrorBody, RotatedToken, SuccessMessage};
use super::{parse_id, ApiJson};
use crate::auth::{generate_api_token, hash_token, Caller, Scope, DISPLAY_PREFIX_LEN};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{now, ApiToken};

const NAME_MAX: usize = 100;

#[derive(Deserialize, ToSchema)]
pub struct RotateTokenRequest {
    /// Name of the new token, 1 to 100 characters; the old name with ` (Rotated)` by default.
    new_name: Option<String>,
    /// Deletes the old token in the same transaction; default false.
    #[serde(default)]
    delete_old: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateTokenRequest {
    /// 1 to 100 characters.
    name: String,
    /// At least one of `read`, `write` and `admin`.
    scopes: Vec<String>,
    /// An RFC 3339 timestamp in the future; the token never expires without it.
    #[schema(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    expires_at: Option<String>,
}

fn parse_expiry(text: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    let Some(text) = text else { return Ok(None) };
    let parsed = DateTime::parse_from_rfc3339(text).map_err(|error| {
        ApiError::validation("expires_at", format!("must be an RFC 3339 timestamp: {error}"), Value::from(text))
    })?;
    let expires_at = parsed.with_timezone(&Utc);
    if expires_at <= Utc::now() {
        return Err(ApiError::validation("expires_at", "must be in the future", Value::from(text)));
    }
    Ok(Some(expires_at))
}

fn parse_scopes(requested: &[String]) -> ApiResult<Vec<String>> {
    if requested.is_empty() {
        return Err(ApiError::validation("scopes", "must list at least one of read, write, admin", None));
    }
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested {
        if !Scope::ALL.contains(&scope.as_str()) {
            return Err(ApiError::validation(
                "scopes",
                format!("unknown scope {scope:?}; expected read, write or admin"),
                Value::from(scope.as_str()),
            ));
        }
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    Ok(scopes)
}

fn validate_name(field: &'static str, text: &str) -> ApiResult<String> {
    let name = text.trim().to_owned();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(ApiError::validation(field, format!("must be 1 to {NAME_MAX} characters long"), Value::from(text)));
    }
    Ok(name)
}

/// Generates a token of the caller's organization and returns it with its one-time secret.
fn new_token(caller: &Caller, name: String, scopes: Vec<String>, expires_at: Option<DateTime<Utc>>) -> (ApiToken, String) {
    let secret = generate_api_token();
    let token = ApiToken {
        id: Uuid::new_v4(),
        org_id: caller.org.id,
        user_id: caller.user_id,
        name,
        token_prefix: secret[..DISPLAY_PREFIX_LEN].to_owned(),
        token_hash: hash_token(&secret),
        scopes,
        last_used_at: None,
        expires_at,
        created_at: now(),
    };
    (token, secret)
}

#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    operation_id = "create_token",
    summary = "Create an API token",
    description = "More than 10 tokens created in an hour record a suspicious activity.",
    request_body(content = CreateTokenRequest),
    responses(
        (status = 201, description = "The token with its secret, which is shown only once", body = CreatedToken),
        (status = 400, description = "Invalid input (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `admin` scope, or the user is not an owner or admin of the organization", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    ApiJson(request): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_admin()?;
    let name = validate_name("name", &request.name)?;
    let scopes = parse_scopes(&request.scopes)?;
    let expires_at = parse_expiry(request.expires_at.as_deref())?;

    let (token, secret) = new_token(&caller, name, scopes, expires_at);
    let audit = audit::entry(
        &caller,
        &meta,
        "token_created",
        format!("API token {} created", token.name),
        json!({ "token_id": token.id, "name": token.name, "scopes": token.scopes }),
    );
    state.store.accounts().insert_token_audited(&token, &audit).await?;
    super::security::check_token_creation_rate(&state, &caller, &meta).await?;
    tracing::info!(token_id = %token.id, org_id = %token.org_id, user_id = %token.user_id, "created an API token");
    let body = json!({
        "token": secret,
        "id": token.id,
        "name": token.name,
        "token_prefix": token.token_prefix,
        "scopes": token.scopes,
        "expires_at": token.expires_at,
        "created_at": token.created_at,
    });
    Ok((StatusCode::CREATED, Json(body)))
}

/// Returns the latest use of a token: the stored value or a newer one not yet flushed.
fn last_used(state: &AppState, token: &ApiToken) -> Option<DateTime<Utc>> {
    let pending = state.token_usage.get(&token.id).map(|entry| *entry.value());
    match (token.last_used_at, pending) {
        (Some(stored), Some(pending)) => Some(stored.max(pending)),
        (stored, pending) => stored.or(pending),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    operation_id = "list_tokens",
    summary = "List API tokens",
    responses(
        (status = 200, description = "The organization's tokens without secrets", body = [ApiTokenSummary]),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let tokens = state.store.tokens(caller.org.id).await?;
    let now = Utc::now();
    let body = tokens
        .iter()
        .map(|token| {
            let last_used_at = last_used(&state, token);
            let age_days = (now - token.created_at).num_days();
            json!({
                "id": token.id,
                "name": token.name,
                "token_prefix": token.token_prefix,
                "scopes": token.scopes,
                "last_used_at": last_used_at,
                "expires_at": token.expires_at,
                "created_at": token.created_at,
                "age_days": age_days,
                "needs_rotation": age_days > state.config.token_rotation_age_days,
            })
        })
        .collect();
    Ok(Json(Value::Array(body)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{token_id}",
    tag = "tokens",
    operation_id = "delete_token",
    summary = "Delete an API token",
    params(
        ("token_id" = Uuid, Path, description = "The API token"),
    ),
    responses(
        (status = 200, description = "The token is deleted", body = SuccessMessage),
        (status = 400, description = "The id is not a UUID (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `admin` scope, or the user is not an owner or admin of the organization", body = ErrorBody),
        (status = 404, description = "The token does not exist in the organization (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(token_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let token_id = parse_id("token id", &token_id)?;
    let audit = audit::entry(&caller, &meta, "token_deleted", format!("API token {token_id} deleted"), json!({ "token_id": token_id }));
    if !state.store.accounts().delete_token_audited(token_id, caller.org.id, &audit).await? {
        return Err(ApiError::not_found("API token", token_id));
    }
    state.token_usage.remove(&token_id);
    tracing::info!(%token_id, org_id = %caller.org.id, "deleted an API token");
    Ok(Json(json!({ "success": true, "message": "API token deleted successfully" })))
}

/// Replaces a token by a new one with the same scopes and expiry, optionally deleting the old one.
#[utoipa::path(
    post,
    path = "/api/v1/tokens/{token_id}/rotate",
    tag = "tokens",
    operation_id = "rotate_token",
    summary = "Rotate an API token",
    description = "Creates a token with the same scopes and expiry and optionally deletes the old one.",
    params(
        ("token_id" = Uuid, Path, description = "The API token"),
    ),
    request_body(content = RotateTokenRequest),
    responses(
        (status = 200, description = "The new token with its secret, which is shown only once", body = RotatedToken),
        (status = 400, description = "The id or body is invalid, or the token has expired (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `admin` scope, or the user is not an owner or admin of the organization", body = ErrorBody),
        (status = 404, description = "The token does not exist in the organization (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(token_id): Path<String>,
    ApiJson(request): ApiJson<RotateTokenRequest>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let token_id = parse_id("token id", &token_id)?;
    let old = state
        .store
        .tokens(caller.org.id)
        .await?
        .into_iter()
        .find(|token| token.id == token_id)
        .ok_or_else(|| ApiError::not_found("API token", token_id))?;
    let name = match &request.new_name {
        Some(text) => validate_name("new_name", text)?,
        None => {
            // The default name keeps within NAME_MAX by shortening the old name.
            let suffix = " (Rotated)";
            let keep = NAME_MAX - suffix.len();
            format!("{}{suffix}", old.name.chars().take(keep).collect::<String>())
        }
    };
    if old.expires_at.is_some_and(|expires_at| expires_at <= Utc::now()) {
        return Err(ApiError::validation(
            "token_id",
            "the token has expired and cannot be rotated; create a new token",
            Value::from(token_id.to_string()),
        ));
    }
    let (token, secret) = new_token(&caller, name, old.scopes.clone(), old.expires_at);
    let audit = audit::entry(
        &caller,
        &meta,
        "token_rotated",
        format!("API token {} rotated", old.name),
        json!({ "old_token_id": old.id, "new_token_id": token.id, "old_token_deleted": request.delete_old }),
    );
    let rotated = state.store.accounts().rotate_token(old.id, caller.org.id, &token, request.delete_old, &audit).await?;
    if !rotated {
        // Deleted concurrently between the read and the transaction.
        return Err(ApiError::not_found("API token", token_id));
    }
    if request.delete_old {
        state.token_usage.remove(&old.id);
    }
    tracing::info!(old_token_id = %old.id, new_token_id = %token.id, org_id = %caller.org.id, "rotated an API token");
    Ok(Json(json!({
        "new_token": secret,
        "new_token_id": token.id,
        "new_token_name": token.name,
        "old_token_id": old.id,
        "old_token_deleted": request.delete_old,
    })))
}

/// Lists the organization's tokens older than the rotation age, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/tokens/rotation-status",
    tag = "tokens",
    operation_id = "list_tokens_needing_rotation",
    summary = "List tokens needing rotation",
    responses(
        (status = 200, description = "Tokens older than the rotation age (90 days by default), oldest first", body = [ApiTokenSummary]),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn rotation_status(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let threshold = state.config.token_rotation_age_days;
    let now = Utc::now();
    let mut tokens: Vec<ApiToken> = state
        .store
        .tokens(caller.org.id)
        .await?
        .into_iter()
        .filter(|token| (now - token.created_at).num_days() > threshold)
        .collect();
    tokens.sort_by_key(|token| token.created_at);
    let body = tokens
        .iter()
        .map(|token| {
            json!({
                "id": token.id,
                "name": token.name,
                "token_prefix": token.token_prefix,
                "scopes": token.scopes,
                "last_used_at": last_used(&state, token),
                "created_at": token.created_at,
                "age_days": (now - token.created_at).num_days(),
                "expires_at": token.expires_at,
                "needs_rotation": true,
            })
        })
        .collect();
    Ok(Json(Value::Array(body)))
}
