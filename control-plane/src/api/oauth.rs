//! Sign-in with GitHub or Google: the authorization code flow with `state` and PKCE (S256).
//!
//! `authorize` redirects to the provider. `callback` exchanges the code, reads the user's verified
//! e-mail address, and signs in the account with that address or creates one with its personal
//! organization.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;
use uuid::Uuid;

use super::audit::RequestMeta;
use super::openapi::schemas::{ErrorBody, Session};
use super::{auth, security, validate, ApiQuery};
use crate::auth::hash_token;
use crate::config::OAuthProvider;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::oauth::PendingSignIn;
use crate::store::{now, NewAccount, StoreError, User};

/// Time the user has to complete the sign-in at the provider.
const SIGN_IN_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);
/// Time limit for each request to the provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts to find a free username for a new account.
const USERNAME_ATTEMPTS: u32 = 5;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code from the provider.
    code: Option<String>,
    /// The `state` value from the authorize redirect.
    state: Option<String>,
    /// The provider's error code when the user denied access.
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's user: a stable id, a username suggestion and the verified e-mail address.
struct ProviderUser {
    id: String,
    username: String,
    email: String,
}

fn provider<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a OAuthProvider> {
    if name != "github" && name != "google" {
        return Err(ApiError::not_found("OAuth provider", name));
    }
    state.config.oauth_providers.get(name).ok_or_else(|| ApiError::not_found("OAuth provider", name))
}

fn redirect_uri(state: &AppState, name: &str) -> String {
    format!("{}/api/v1/auth/oauth/{name}/callback", state.config.public_api_url.trim_end_matches('/'))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/oauth/{provider}/authorize",
    tag = "auth",
    operation_id = "oauth_authorize",
    summary = "Start OAuth sign-in",
    params(
        ("provider" = String, Path, description = "`github` or `google`"),
    ),
    responses(
        (status = 302, description = "Redirect to the provider's consent page", headers(("Location" = String, description = "The provider's authorization URL with `state` and a PKCE challenge"))),
        (status = 404, description = "The provider is unknown or not configured on this server (`NOT_FOUND`)", body = ErrorBody),
    ),
)]
pub async fn authorize(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    let config = provider(&state, &name)?;
    let state_parameter = random_token();
    let code_verifier = random_token();
    let code_challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()));
    let sign_in = PendingSignIn { provider: name.clone(), code_verifier, expires_at: now() + SIGN_IN_LIFETIME };
    state.store.oauth().insert_sign_in(&hash_token(&state_parameter), &sign_in).await?;

    let mut url = reqwest::Url::parse(&config.authorize_url)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("invalid authorize URL of OAuth provider {name}: {error}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &config.client_id)
        .append_pair("redirect_uri", &redirect_uri(&state, &name))
        .append_pair("scope", &config.scopes.join(" "))
        .append_pair("state", &state_parameter)
        .append_pair("code_challenge", &code_challenge)
        .append_pair("code_challenge_method", "S256");
    Ok((StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response())
}

fn sign_in_failed(name: &str, reason: impl std::fmt::Display) -> ApiError {
    tracing::info!(provider = name, %reason, "OAuth sign-in failed");
    ApiError::Unauthorized(format!("sign-in with {name} failed: {reason}"))
}

/// Sends a provider request and returns its JSON body, failing on a non-2xx status.
async fn provider_json(name: &str, request: reqwest::RequestBuilder) -> ApiResult<Value> {
    let response = request
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, "mockforge-control-plane")
        .timeout(PROVIDER_TIMEOUT)
        .send()
        .await
        .map_err(|error| sign_in_failed(name, format!("request to the provider failed: {error}")))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|error| sign_in_failed(name, format!("the provider returned invalid JSON: {error}")))?;
    if !status.is_success() {
        return Err(sign_in_failed(name, format!("the provider returned HTTP {status}")));
    }
    Ok(body)
}

async fn fetch_user(name: &str, config: &OAuthProvider, client: &reqwest::Client, access_token: &str) -> ApiResult<ProviderUser> {
    let info = provider_json(name, client.get(&config.user_info_url).bearer_auth(access_token)).await?;
    if name == "google" {
        let verified = info["email_verified"].as_bool() == Some(true);
        let email = info["email"].as_str().filter(|_| verified).ok_or_else(|| sign_in_failed(name, "the account has no verified e-mail address"))?;
        let id = info["sub"].as_str().unwrap_or_default().to_owned();
        let username = email.split('@').next().unwrap_or_default().to_owned();
        return Ok(ProviderUser { id, username, email: email.to_owned() });
    }

    let id = info["id"].as_i64().map(|id| id.to_string()).unwrap_or_default();
    let username = info["login"].as_str().unwrap_or_default().to_owned();
    let emails_url = config.emails_url.as_deref().ok_or_else(|| sign_in_failed(name, "no e-mail endpoint is configured"))?;
    let emails = provider_json(name, client.get(emails_url).bearer_auth(access_token)).await?;
    let verified: Vec<&Value> = emails.as_array().map(|list| list.iter().filter(|entry| entry["verified"] == true).collect()).unwrap_or_default();
    let chosen = verified.iter().find(|entry| entry["primary"] == true).or(verified.first());
    let email = chosen
        .and_then(|entry| entry["email"].as_str())
        .ok_or_else(|| sign_in_failed(name, "the account has no verified e-mail address"))?;
    Ok(ProviderUser { id, username, email: email.to_owned() })
}

/// Turns a provider username into a valid one: letters, digits, `-` and `_`, padded or cut to the
/// allowed length.
fn username_base(suggestion: &str) -> String {
    let mut username: String = suggestion
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .take(validate::USERNAME_MAX - 5)
        .collect();
    while username.len() < validate::USERNAME_MIN {
        username.push('_');
    }
    username
}

/// Creates an account with an unusable random password, trying a suffixed username when the
/// name is taken.
async fn create_user(state: &AppState, suggestion: &str, email: &str) -> ApiResult<User> {
    let password_hash = auth::hash_password(random_token()).await?;
    let base = username_base(suggestion);
    let is_admin = state.config.admin_emails.iter().any(|admin| admin.trim().eq_ignore_ascii_case(email));
    for attempt in 0..USERNAME_ATTEMPTS {
        let username = if attempt == 0 { base.clone() } else { format!("{base}-{:04x}", rand::random::<u16>()) };
        let user = User {
            id: Uuid::new_v4(),
            username,
            email: email.to_owned(),
            password_hash: password_hash.clone(),
            is_admin,
            created_at: now(),
        };
        let mut base_slug = validate::slugify(&user.username);
        if base_slug.is_empty() {
            base_slug = "org".to_owned();
        }
        let account = NewAccount { user: &user, org_id: Uuid::new_v4(), base_slug: &base_slug };
        match state.store.create_account(account).await {
            Ok(org) => {
                tracing::info!(user_id = %user.id, org_id = %org.id, "registered a user through OAuth");
                return Ok(user);
            }
            Err(StoreError::Conflict { field: "username" | "slug" }) => continue,
            Err(StoreError::Conflict { field: "email" }) => {
                return Err(ApiError::Conflict { field: "email", value: email.to_owned() });
            }
            Err(StoreError::Conflict { field }) => return Err(ApiError::Conflict { field, value: user.username }),
            Err(StoreError::PlanLimit { .. }) => {
                return Err(ApiError::Internal(anyhow::anyhow!("unexpected plan limit at registration")))
            }
            Err(StoreError::Database(error)) => return Err(error.into()),
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!("no free username after {USERNAME_ATTEMPTS} attempts")))
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/oauth/{provider}/callback",
    tag = "auth",
    operation_id = "oauth_callback",
    summary = "Finish OAuth sign-in",
    params(
        ("provider" = String, Path, description = "`github` or `google`"),
        CallbackQuery,
    ),
    responses(
        (status = 200, description = "A session for the user with the provider's verified e-mail address, created on first sign-in", body = Session),
        (status = 400, description = "The `code` or `state` parameter is missing, or the state is unknown, used, expired or of another provider (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 401, description = "The user denied access, the provider rejected the code, the account has no verified e-mail address, or it is locked for deletion (`UNAUTHORIZED`)", body = ErrorBody),
        (status = 404, description = "The provider is unknown or not configured on this server (`NOT_FOUND`)", body = ErrorBody),
    ),
)]
pub async fn callback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    meta: RequestMeta,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> ApiResult<Json<Value>> {
    let config = provider(&state, &name)?;
    if let Some(error) = &query.error {
        let description = query.error_description.as_deref().unwrap_or_default();
        return Err(sign_in_failed(&name, format!("the provider returned {error} {description}").trim()));
    }
    let state_parameter = query.state.as_deref().filter(|value| !value.is_empty());
    let state_parameter = state_parameter.ok_or_else(|| ApiError::validation("state", "missing; start the sign-in again", None))?;
    let code = query.code.as_deref().filter(|value| !value.is_empty());
    let code = code.ok_or_else(|| ApiError::validation("code", "missing; start the sign-in again", None))?;

    let sign_in = state.store.oauth().take_sign_in(&hash_token(state_parameter)).await?;
    let sign_in = sign_in.ok_or_else(|| ApiError::validation("state", "unknown or already used; start the sign-in again", None))?;
    if sign_in.provider != name {
        return Err(ApiError::validation("state", format!("belongs to a sign-in with {}; start the sign-in again", sign_in.provider), None));
    }
    if sign_in.expires_at <= now() {
        return Err(ApiError::validation("state", "expired after 10 minutes; start the sign-in again", None));
    }

    let client = reqwest::Client::new();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &redirect_uri(&state, &name)),
        ("client_id", &config.client_id),
        ("client_secret", &config.client_secret),
        ("code_verifier", &sign_in.code_verifier),
    ];
    let token = provider_json(&name, client.post(&config.token_url).form(&form)).await?;
    let access_token = token["access_token"]
        .as_str()
        .ok_or_else(|| sign_in_failed(&name, "the token response contains no access_token"))?;
    let provider_user = fetch_user(&name, config, &client, access_token).await?;
    let email = validate::email(&provider_user.email)?;

    let user = match state.store.user_by_email(&email).await? {
        Some(user) => user,
        None => create_user(&state, &provider_user.username, &email).await?,
    };
    if state.store.security().token_generation(user.id).await?.is_none() {
        return Err(ApiError::Unauthorized("the account is locked because its deletion was requested".to_owned()));
    }
    state.store.oauth().mark_email_verified(user.id).await?;
    security::login_succeeded(&state, &user, &meta).await?;
    tracing::info!(user_id = %user.id, provider = name, provider_user_id = provider_user.id, "signed in through OAuth");
    auth::session(&state, &user).await
}
