//! Authentication: JWTs for users, `mfx_` API tokens for programs, scopes, and the
//! [`Caller`] extractor that resolves the organization a request acts on.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use dashmap::DashMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Organization;

pub const JWT_ISSUER: &str = "mockforge";
pub const JWT_AUDIENCE: &str = "mockforge-api";
/// Lifetime of an issued JWT.
pub const JWT_LIFETIME: Duration = Duration::hours(24);
/// How long after expiry a JWT can still be exchanged for a new one.
pub const REFRESH_GRACE: Duration = Duration::days(7);

/// Prefix of every API token.
pub const TOKEN_PREFIX: &str = "mfx_";
/// Number of leading characters of a token kept for display, for example `mfx_abcd`.
pub const DISPLAY_PREFIX_LEN: usize = 8;

/// JWT claims.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: String,
    /// The user's token generation at issue time. A JWT whose generation is below the user's
    /// current one is revoked. Tokens issued before generations existed carry 0.
    #[serde(default)]
    pub gen: i64,
}

/// HS256 signing and verification keys.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> anyhow::Result<Self> {
        Ok(Self { encoding: EncodingKey::from_secret(secret)?, decoding: DecodingKey::from_secret(secret)? })
    }

    /// Issues a JWT for the user with token generation 0, valid for [`JWT_LIFETIME`].
    pub fn issue(&self, user_id: Uuid) -> anyhow::Result<String> {
        self.issue_with_generation(user_id, 0)
    }

    /// Issues a JWT for the user at token generation `generation`, valid for [`JWT_LIFETIME`].
    pub fn issue_with_generation(&self, user_id: Uuid, generation: i64) -> anyhow::Result<String> {
        let now = Utc::now();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now.timestamp(),
            exp: (now + JWT_LIFETIME).timestamp(),
            iss: JWT_ISSUER.to_owned(),
            aud: JWT_AUDIENCE.to_owned(),
            gen: generation,
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    fn validation(check_exp: bool) -> Validation {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[JWT_ISSUER]);
        validation.set_audience(&[JWT_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.validate_exp = check_exp;
        validation.leeway = 0;
        validation
    }

    /// Verifies signature, algorithm, issuer, audience and expiry and returns the user id.
    pub fn verify(&self, token: &str) -> Result<Uuid, ApiError> {
        self.verify_claims(token).map(|(user_id, _)| user_id)
    }

    /// Like [`JwtKeys::verify`], and also returns the token generation.
    pub fn verify_claims(&self, token: &str) -> Result<(Uuid, i64), ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &Self::validation(true)).map_err(|error| {
            let message = match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired; log in again or refresh it",
                _ => "invalid token",
            };
            ApiError::Unauthorized(message.to_owned())
        })?;
        Ok((parse_subject(&data.claims.sub)?, data.claims.gen))
    }

    /// Verifies a token for refresh: everything but expiry, which may be up to
    /// [`REFRESH_GRACE`] in the past.
    pub fn verify_for_refresh(&self, token: &str) -> Result<Uuid, ApiError> {
        self.verify_for_refresh_claims(token).map(|(user_id, _)| user_id)
    }

    /// Like [`JwtKeys::verify_for_refresh`], and also returns the token generation.
    pub fn verify_for_refresh_claims(&self, token: &str) -> Result<(Uuid, i64), ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &Self::validation(false))
            .map_err(|_| ApiError::Unauthorized("invalid token".to_owned()))?;
        if data.claims.exp + REFRESH_GRACE.num_seconds() < Utc::now().timestamp() {
            return Err(ApiError::Unauthorized(
                "the token expired more than 7 days ago and cannot be refreshed; log in again".to_owned(),
            ));
        }
        Ok((parse_subject(&data.claims.sub)?, data.claims.gen))
    }
}

fn parse_subject(sub: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(sub).map_err(|_| ApiError::Unauthorized("invalid token".to_owned()))
}

/// An API token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// GET requests.
    Read,
    /// Mutations.
    Write,
    /// Organization administration, including API tokens.
    Admin,
}

impl Scope {
    pub const ALL: [&'static str; 3] = ["read", "write", "admin"];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

/// Generates a new API token: `mfx_` followed by 32 random bytes in URL-safe base64 without
/// padding.
pub fn generate_api_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Hex SHA-256 of a token, the only form in which tokens are stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Pending `last_used_at` values, written to the database in batches by a background task.
pub type TokenUsage = Arc<DashMap<Uuid, DateTime<Utc>>>;

/// Credential the caller authenticated with.
#[derive(Debug, Clone)]
pub enum Credential {
    Jwt,
    ApiToken { token_id: Uuid, scopes: Vec<String> },
}

/// The authenticated caller and the organization the request acts on.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub org: Organization,
    /// The user's role in `org` (`owner`, `admin` or `member`). API tokens act as `admin`.
    pub role: String,
    pub credential: Credential,
}

impl Caller {
    /// Fails with 403 `INSUFFICIENT_SCOPE` when an API token lacks `scope`. A JWT carries every
    /// scope.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        match &self.credential {
            Credential::Jwt => Ok(()),
            Credential::ApiToken { scopes, .. } => {
                if scopes.iter().any(|s| s == scope.as_str()) {
                    Ok(())
                } else {
                    Err(ApiError::InsufficientScope { scope: scope.as_str() })
                }
            }
        }
    }

    /// Requires the `admin` scope and, for users, the owner or admin role in the organization.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.require(Scope::Admin)?;
        if matches!(self.credential, Credential::Jwt) && self.role != "owner" && self.role != "admin" {
            return Err(ApiError::Forbidden(format!(
                "this request requires the owner or admin role in organization {}, but your role is {}",
                self.org.slug, self.role
            )));
        }
        Ok(())
    }

    pub fn is_api_token(&self) -> bool {
        matches!(self.credential, Credential::ApiToken { .. })
    }
}

/// Header that selects the organization a JWT request acts on.
pub const ORGANIZATION_HEADER: &str = "x-organization-id";

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization header; send `Authorization: Bearer <token>`".into()))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not valid ASCII".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header must use the Bearer scheme".into()))?
        .trim();
    if token.is_empty() {
        return Err(ApiError::Unauthorized("the bearer token is empty".into()));
    }
    Ok(token)
}

fn requested_org(parts: &Parts) -> Result<Option<Uuid>, ApiError> {
    let Some(value) = parts.headers.get(ORGANIZATION_HEADER) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    Uuid::parse_str(text).map(Some).map_err(|_| ApiError::InvalidParameter {
        parameter: "X-Organization-Id header",
        message: format!("{text:?} is not a UUID"),
        value: None,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // The rate limiter authenticates first and stores the caller.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = bearer(parts)?;
        let requested = requested_org(parts)?;
        if token.starts_with(TOKEN_PREFIX) {
            authenticate_api_token(state, token, requested).await
        } else {
            authenticate_jwt(state, token, requested).await
        }
    }
}

async fn authenticate_api_token(state: &AppState, token: &str, requested: Option<Uuid>) -> Result<Caller, ApiError> {
    let invalid = || ApiError::Unauthorized("invalid API token".to_owned());
    let record = state.store.token_by_hash(&hash_token(token)).await?.ok_or_else(invalid)?;
    let now = Utc::now();
    if record.expires_at.is_some_and(|expires_at| expires_at <= now) {
        return Err(ApiError::Unauthorized("the API token has expired; create a new one".to_owned()));
    }
    // An API token always acts on its own organization; naming another one is treated like
    // naming an organization the caller is not a member of.
    if let Some(org_id) = requested.filter(|id| *id != record.org_id) {
        return Err(ApiError::not_found("organization", org_id));
    }
    let org = state.store.organization(record.org_id).await?.ok_or_else(invalid)?;
    state.token_usage.insert(record.id, crate::store::now());
    Ok(Caller {
        user_id: record.user_id,
        org,
        role: "admin".to_owned(),
        credential: Credential::ApiToken { token_id: record.id, scopes: record.scopes },
    })
}

async fn authenticate_jwt(state: &AppState, token: &str, requested: Option<Uuid>) -> Result<Caller, ApiError> {
    let (user_id, generation) = state.jwt.verify_claims(token)?;
    check_generation(state, user_id, generation).await?;
    let (org, role) = match requested {
        Some(org_id) => state
            .store
            .membership(org_id, user_id)
            .await?
            .ok_or_else(|| ApiError::not_found("organization", org_id))?,
        None => {
            let org = state
                .store
                .personal_organization(user_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("user {user_id} has no personal organization"))?;
            (org, "owner".to_owned())
        }
    };
    Ok(Caller { user_id, org, role, credential: Credential::Jwt })
}

/// Rejects a JWT of a deleted user or one issued before the user's sessions were revoked.
pub(crate) async fn check_generation(state: &AppState, user_id: Uuid, generation: i64) -> Result<(), ApiError> {
    match state.store.security().token_generation(user_id).await? {
        None => Err(ApiError::Unauthorized("invalid token: the user no longer exists".to_owned())),
        Some(current) if generation < current => {
            Err(ApiError::Unauthorized("the token was revoked by a logout or an account change; log in again".to_owned()))
        }
        Some(_) => Ok(()),
    }
}
