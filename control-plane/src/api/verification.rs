//! E-mail verification: the link sent at registration and on request, and its redemption.

use axum::extract::State;
use axum::Json;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;

use super::openapi::schemas::{ErrorBody, Message};
use super::ApiQuery;
use crate::auth::{hash_token, Caller};
use crate::error::{ApiError, ApiResult};
use crate::mail::OutgoingMail;
use crate::state::AppState;
use crate::store::verification::Redemption;
use crate::store::{now, User};

/// Lifetime of a verification link.
pub const VERIFICATION_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// The token from the verification e-mail. Required: a missing token is a 400.
    token: Option<String>,
}

/// Stores a new verification token for the user (replacing unused older ones) and sends the
/// link by e-mail.
pub(crate) async fn send_verification(state: &AppState, user: &User) -> anyhow::Result<()> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let expires_at = now() + VERIFICATION_TOKEN_LIFETIME;
    state.store.verification().replace_token(user.id, &hash_token(&token), expires_at).await?;

    let link = format!(
        "{}/api/v1/auth/verify-email?token={token}",
        state.config.public_api_url.trim_end_matches('/')
    );
    let body = format!(
        "Hello {},\r\n\r\nPlease confirm your e-mail address for MockForge Cloud by opening this link:\r\n\r\n{link}\r\n\r\nThe link is valid for 24 hours and can be used once.\r\n",
        user.username
    );
    let mail = OutgoingMail {
        to: user.email.clone(),
        reply_to: None,
        subject: "Verify your e-mail address".to_owned(),
        body,
    };
    state.mailer.send_logged("email_verification", &mail).await?;
    tracing::info!(user_id = %user.id, %expires_at, "issued an e-mail verification token");
    Ok(())
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/verify-email",
    tag = "auth",
    operation_id = "verify_email",
    summary = "Verify an e-mail address",
    description = "Redeems the link from the verification e-mail. A link is valid for 24 hours and can be used once.",
    params(
        VerifyQuery,
    ),
    responses(
        (status = 200, description = "The address is verified", body = Message),
        (status = 400, description = "The token is missing, unknown, used or expired (`VALIDATION_ERROR` on `token`)", body = ErrorBody),
    ),
)]
pub async fn verify_email(State(state): State<AppState>, ApiQuery(query): ApiQuery<VerifyQuery>) -> ApiResult<Json<Value>> {
    let token = query.token.as_deref().map(str::trim).unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::validation("token", "missing; pass the token from the verification e-mail", None));
    }
    let rejected = |message: &str| ApiError::validation("token", message.to_owned(), None);
    match state.store.verification().redeem_token(&hash_token(token), now()).await? {
        Redemption::Verified { user_id } => {
            tracing::info!(%user_id, "verified an e-mail address");
            Ok(Json(json!({ "message": "Email verified successfully" })))
        }
        Redemption::Unknown => Err(rejected("no such verification token; request a new verification e-mail")),
        Redemption::AlreadyUsed => Err(rejected("already used; request a new verification e-mail")),
        Redemption::Expired => Err(rejected("expired (links are valid for 24 hours); request a new verification e-mail")),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/resend-verification",
    tag = "auth",
    operation_id = "resend_verification",
    summary = "Resend the verification e-mail",
    responses(
        (status = 200, description = "A new link was sent; older links stop working", body = Message),
        (status = 400, description = "The address is already verified (`VALIDATION_ERROR` on `email`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn resend_verification(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let user = state
        .store
        .user_by_id(caller.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("invalid token: the user no longer exists".to_owned()))?;
    if state.store.verification().email_verified_at(user.id).await?.is_some() {
        return Err(ApiError::validation("email", "the e-mail address is already verified", Value::from(user.email.as_str())));
    }
    send_verification(&state, &user).await.map_err(ApiError::Internal)?;
    Ok(Json(json!({ "message": "Verification email sent" })))
}
