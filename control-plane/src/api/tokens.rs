//! API tokens of the organization a request acts on.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{parse_id, ApiJson};
use crate::auth::{generate_api_token, hash_token, Caller, Scope, DISPLAY_PREFIX_LEN};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{now, ApiToken};

/// Tokens older than this many days are flagged with `needs_rotation`.
pub const ROTATION_AGE_DAYS: i64 = 90;
const NAME_MAX: usize = 100;

#[derive(Deserialize)]
pub struct CreateTokenRequest {
    name: String,
    scopes: Vec<String>,
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

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_admin()?;
    let name = request.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(ApiError::validation("name", format!("must be 1 to {NAME_MAX} characters long"), Value::from(request.name)));
    }
    let scopes = parse_scopes(&request.scopes)?;
    let expires_at = parse_expiry(request.expires_at.as_deref())?;

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
    state.store.insert_token(&token).await?;
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

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let tokens = state.store.tokens(caller.org.id).await?;
    let now = Utc::now();
    let body = tokens
        .iter()
        .map(|token| {
            // A use not yet flushed to the database is newer than the stored value.
            let pending = state.token_usage.get(&token.id).map(|entry| *entry.value());
            let last_used_at = match (token.last_used_at, pending) {
                (Some(stored), Some(pending)) => Some(stored.max(pending)),
                (stored, pending) => stored.or(pending),
            };
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
                "needs_rotation": age_days > ROTATION_AGE_DAYS,
            })
        })
        .collect();
    Ok(Json(Value::Array(body)))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(token_id): Path<String>) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let token_id = parse_id("token id", &token_id)?;
    if !state.store.delete_token(token_id, caller.org.id).await? {
        return Err(ApiError::not_found("API token", token_id));
    }
    state.token_usage.remove(&token_id);
    tracing::info!(%token_id, org_id = %caller.org.id, "deleted an API token");
    Ok(Json(json!({ "success": true, "message": "API token deleted successfully" })))
}
