//! Bring-your-own-key settings of the organization a request acts on. Only the masked key
//! leaves the server.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::audit::{self, RequestMeta};
use super::openapi::schemas::{ErrorBody, SuccessMessage};
use super::ApiJson;
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::secrets::mask;
use crate::state::AppState;
use crate::store::now;
use crate::store::settings::ByokSettings;

/// AI providers whose keys can be stored.
pub const PROVIDERS: [&str; 3] = ["openai", "anthropic", "google"];
const KEY_MIN: usize = 8;
const KEY_MAX: usize = 512;
const TOKEN_LIMIT_MAX: i64 = 1_000_000_000_000;

#[derive(Deserialize, ToSchema)]
#[schema(as = ByokRequest)]
pub struct PutRequest {
    /// `openai`, `anthropic` or `google`.
    provider: String,
    /// 8 to 512 characters without whitespace. Required unless a key for the same provider is
    /// stored, which is then kept.
    #[schema(min_length = 8, max_length = 512)]
    api_key: Option<String>,
    /// 1 to 10^12 tokens; no limit when absent or null.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    monthly_token_limit: Option<i64>,
}

fn settings_json(settings: Option<&ByokSettings>) -> Value {
    match settings {
        Some(settings) => json!({
            "enabled": true,
            "provider": settings.provider,
            "api_key_masked": settings.key_masked,
            "monthly_token_limit": settings.monthly_token_limit,
            "updated_at": settings.updated_at,
        }),
        None => {
            json!({ "enabled": false, "provider": Value::Null, "api_key_masked": Value::Null, "monthly_token_limit": Value::Null })
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/settings/byok",
    tag = "settings",
    operation_id = "get_byok",
    summary = "Get the BYOK configuration",
    responses(
        (status = 200, description = "The configuration with the masked key; `enabled` is false when none is stored", body = super::openapi::schemas::ByokSettings),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let settings = state.store.settings().byok(caller.org.id).await?;
    Ok(Json(settings_json(settings.as_ref())))
}

#[utoipa::path(
    put,
    path = "/api/v1/settings/byok",
    tag = "settings",
    operation_id = "put_byok",
    summary = "Set the BYOK configuration",
    description = "The key is stored encrypted with AES-256-GCM.",
    request_body(content = PutRequest),
    responses(
        (status = 200, description = "The stored configuration with the masked key", body = super::openapi::schemas::ByokSettings),
        (status = 400, description = "Invalid input (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `admin` scope, or the user is not an owner or admin of the organization", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    ApiJson(request): ApiJson<PutRequest>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    if !PROVIDERS.contains(&request.provider.as_str()) {
        return Err(ApiError::validation(
            "provider",
            format!("unknown provider {:?}; expected one of: {}", request.provider, PROVIDERS.join(", ")),
            Value::from(request.provider.as_str()),
        ));
    }
    if let Some(limit) = request.monthly_token_limit {
        if !(1..=TOKEN_LIMIT_MAX).contains(&limit) {
            return Err(ApiError::validation(
                "monthly_token_limit",
                format!("must be an integer from 1 to {TOKEN_LIMIT_MAX}, or null for no limit"),
                Value::from(limit),
            ));
        }
    }
    let existing = state.store.settings().byok(caller.org.id).await?;
    let (key_encrypted, key_masked) = match (&request.api_key, existing) {
        (Some(key), _) => {
            // The key itself is never echoed back, not even in an error.
            let length = key.chars().count();
            if !(KEY_MIN..=KEY_MAX).contains(&length) || key.chars().any(char::is_whitespace) {
                return Err(ApiError::validation(
                    "api_key",
                    format!(
                        "must be {KEY_MIN} to {KEY_MAX} characters long without whitespace, got {length} characters"
                    ),
                    None,
                ));
            }
            (state.secrets.encrypt(caller.org.id, key)?, mask(key))
        }
        (None, Some(existing)) if existing.provider == request.provider => {
            (existing.key_encrypted, existing.key_masked)
        }
        (None, _) => {
            return Err(ApiError::validation("api_key", "is required when setting up a provider", None));
        }
    };
    let settings = ByokSettings {
        org_id: caller.org.id,
        provider: request.provider.clone(),
        key_encrypted,
        key_masked,
        monthly_token_limit: request.monthly_token_limit,
        updated_at: now(),
    };
    let entry = audit::entry(
        &caller,
        &meta,
        "byok_updated",
        format!("BYOK configuration set for {}", settings.provider),
        json!({ "provider": settings.provider, "api_key_masked": settings.key_masked, "monthly_token_limit": settings.monthly_token_limit }),
    );
    state.store.settings().put_byok(&settings, &entry).await?;
    tracing::info!(org_id = %caller.org.id, provider = %settings.provider, key = %settings.key_masked, "stored a BYOK configuration");
    Ok(Json(settings_json(Some(&settings))))
}

#[utoipa::path(
    delete,
    path = "/api/v1/settings/byok",
    tag = "settings",
    operation_id = "delete_byok",
    summary = "Delete the BYOK configuration",
    responses(
        (status = 200, description = "The configuration is deleted", body = SuccessMessage),
        (status = 403, description = "The API token lacks the `admin` scope, or the user is not an owner or admin of the organization", body = ErrorBody),
        (status = 404, description = "No configuration is stored (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn delete(State(state): State<AppState>, caller: Caller, meta: RequestMeta) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let entry = audit::entry(&caller, &meta, "byok_deleted", "BYOK configuration deleted".to_owned(), json!({}));
    if !state.store.settings().delete_byok(caller.org.id, &entry).await? {
        return Err(ApiError::not_found("BYOK configuration of organization", caller.org.id));
    }
    tracing::info!(org_id = %caller.org.id, "deleted a BYOK configuration");
    Ok(Json(json!({ "success": true, "message": "BYOK configuration deleted" })))
}
