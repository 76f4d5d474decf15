//! Registration, login and JWT refresh.

use std::sync::OnceLock;

use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::RequestMeta;
use super::openapi::schemas::{ErrorBody, Session};
use super::{security, validate, ApiJson};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{now, NewAccount, StoreError, User};

/// Registration attempts when concurrent registrations race for the same organization slug.
const SLUG_ATTEMPTS: u32 = 3;

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 3 to 64 characters.
    #[schema(min_length = 3, max_length = 64)]
    username: String,
    /// An e-mail address of at most 254 characters, stored in lower case.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// At least 8 characters.
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// A JWT that is valid or expired less than 7 days ago.
    token: String,
}

/// Hashes a password with Argon2id (argon2 crate defaults) on the blocking pool.
pub(super) async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| anyhow::anyhow!("failed to hash a password: {error}"))
    })
    .await
    .context("the password hashing task failed")?
}

async fn verify_password(password: String, hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|error| anyhow::anyhow!("stored password hash is invalid: {error}"))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .context("the password verification task failed")?
}

/// Returns the hash of a random password. Login verifies against it when the e-mail is unknown,
/// so both login failures take about the same time.
async fn dummy_hash() -> anyhow::Result<String> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash.clone());
    }
    let hash = hash_password(Uuid::new_v4().to_string()).await?;
    Ok(DUMMY.get_or_init(|| hash).clone())
}

/// Issues a JWT at the user's current token generation.
pub(super) async fn session(state: &AppState, user: &User) -> ApiResult<Json<Value>> {
    let generation = state.store.security().token_generation(user.id).await?.unwrap_or_default();
    let token = state.jwt.issue_with_generation(user.id, generation)?;
    Ok(Json(json!({ "token": token, "user_id": user.id, "username": user.username })))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    operation_id = "register",
    summary = "Register",
    description = "Creates a user, a personal organization on the free plan and a session, and sends a verification e-mail.",
    request_body(content = RegisterRequest),
    responses(
        (status = 201, description = "The account, its personal organization and a session were created", body = Session),
        (status = 400, description = "Invalid input (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 409, description = "The username or e-mail address is already taken (`CONFLICT`)", body = ErrorBody),
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    validate::username(&request.username)?;
    let email = validate::email(&request.email)?;
    validate::password(&request.password)?;

    let password_hash = hash_password(request.password).await?;
    let is_admin = state.config.admin_emails.iter().any(|admin| admin.trim().eq_ignore_ascii_case(&email));
    let user = User {
        id: Uuid::new_v4(),
        username: request.username,
        email,
        password_hash,
        is_admin,
        created_at: now(),
    };
    let mut base_slug = validate::slugify(&user.username);
    if base_slug.is_empty() {
        base_slug = "org".to_owned();
    }
    let org_id = Uuid::new_v4();
    // A concurrent registration can take the chosen slug between the store's read and insert.
    // The store then reports a slug conflict, and another attempt picks the next free suffix.
    let mut attempt = 1;
    let created = loop {
        let account = NewAccount { user: &user, org_id, base_slug: &base_slug };
        match state.store.create_account(account).await {
            Err(StoreError::Conflict { field: "slug" }) if attempt < SLUG_ATTEMPTS => {
                tracing::info!(%base_slug, attempt, "organization slug taken concurrently; retrying");
                attempt += 1;
            }
            other => break other,
        }
    };
    let org = created.map_err(|error| match error {
        StoreError::Conflict { field: "email" } => ApiError::Conflict { field: "email", value: user.email.clone() },
        StoreError::Conflict { field: "username" } => {
            ApiError::Conflict { field: "username", value: user.username.clone() }
        }
        StoreError::Conflict { field } => ApiError::Conflict { field, value: base_slug.clone() },
        StoreError::PlanLimit { .. } => ApiError::Internal(anyhow::anyhow!("unexpected plan limit at registration")),
        StoreError::Database(error) => error.into(),
    })?;
    tracing::info!(user_id = %user.id, org_id = %org.id, org_slug = %org.slug, "registered a user");
    // The account works without a verified address, so a failed e-mail does not fail the
    // registration. The user can request another link with /auth/resend-verification.
    if let Err(error) = super::verification::send_verification(&state, &user).await {
        tracing::error!(user_id = %user.id, error = format!("{error:#}"), "failed to send the verification e-mail after registration");
    }
    Ok((StatusCode::CREATED, session(&state, &user).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    operation_id = "login",
    summary = "Log in",
    description = "After 5 failed attempts for one e-mail address or 10 from one IP address within 15 minutes, login is locked with 429 and `Retry-After` until the oldest failure is 15 minutes old.",
    request_body(content = LoginRequest),
    responses(
        (status = 200, description = "A new session", body = Session),
        (status = 400, description = "Invalid input (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 401, description = "The e-mail address or password is wrong, or the account is locked for deletion (`UNAUTHORIZED`)", body = ErrorBody),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Json<Value>> {
    let failed = || ApiError::Unauthorized("invalid e-mail or password".to_owned());
    let email = request.email.trim().to_lowercase();
    security::check_login_lock(&state, &email, &meta).await?;
    let user = state.store.user_by_email(&email).await?;
    let Some(user) = user else {
        let _ = verify_password(request.password, dummy_hash().await?).await;
        security::login_failed(&state, &email, &meta, None).await?;
        return Err(failed());
    };
    if !verify_password(request.password, user.password_hash.clone()).await? {
        tracing::info!(user_id = %user.id, "login failed: wrong password");
        security::login_failed(&state, &email, &meta, Some(&user)).await?;
        return Err(failed());
    }
    if state.store.security().token_generation(user.id).await?.is_none() {
        tracing::info!(user_id = %user.id, "login rejected: the account is scheduled for deletion");
        return Err(ApiError::Unauthorized("the account is locked because its deletion was requested".to_owned()));
    }
    security::login_succeeded(&state, &user, &meta).await?;
    session(&state, &user).await
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/token/refresh",
    tag = "auth",
    operation_id = "refresh_token",
    summary = "Refresh a JWT",
    request_body(content = RefreshRequest),
    responses(
        (status = 200, description = "A new session", body = Session),
        (status = 400, description = "Invalid input (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 401, description = "The token is invalid, revoked or expired more than 7 days ago (`UNAUTHORIZED`)", body = ErrorBody),
    ),
)]
pub async fn refresh(State(state): State<AppState>, ApiJson(request): ApiJson<RefreshRequest>) -> ApiResult<Json<Value>> {
    let (user_id, generation) = state.jwt.verify_for_refresh_claims(&request.token)?;
    crate::auth::check_generation(&state, user_id, generation).await?;
    let user = state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("invalid token: the user no longer exists".to_owned()))?;
    session(&state, &user).await
}
