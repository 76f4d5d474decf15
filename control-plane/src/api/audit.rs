//! The organization audit log: the [`RequestMeta`] extractor that every mutation records, the
//! constructor of audit entries and the listing endpoint for organization admins.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use uuid::Uuid;

use super::openapi::schemas::{AuditLogEntry, ErrorBody};
use super::{parse_id, ApiQuery};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{now, AuditEntry, AuditQuery};

const LIMIT_DEFAULT: i64 = 50;
const LIMIT_MAX: i64 = 1000;
/// Maximum user agent length stored; longer values are cut at a character boundary.
const USER_AGENT_MAX: usize = 512;

/// Where a request came from: the connection's peer address and the `User-Agent` header.
///
/// The address is the TCP peer, so behind a proxy it is the proxy's address. `X-Forwarded-For`
/// is ignored because any client can set it.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestMeta::from_parts(parts))
    }
}

impl RequestMeta {
    pub fn from_parts(parts: &Parts) -> RequestMeta {
        // `ConnectInfo` is present when the router is served by `ControlPlane::serve` or with
        // `into_make_service_with_connect_info`.
        let ip_address = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|text| text.chars().take(USER_AGENT_MAX).collect());
        RequestMeta { ip_address, user_agent }
    }
}

/// Builds an audit entry for an action of `caller` in the caller's organization.
pub fn entry(
    caller: &Caller,
    meta: &RequestMeta,
    event_type: &str,
    description: String,
    metadata: Value,
) -> AuditEntry {
    entry_for(caller.org.id, Some(caller.user_id), meta, event_type, description, metadata)
}

/// Builds an audit entry for an action in organization `org_id`.
pub fn entry_for(
    org_id: Uuid,
    user_id: Option<Uuid>,
    meta: &RequestMeta,
    event_type: &str,
    description: String,
    metadata: Value,
) -> AuditEntry {
    AuditEntry {
        id: Uuid::new_v4(),
        org_id,
        user_id,
        event_type: event_type.to_owned(),
        description,
        metadata,
        ip_address: meta.ip_address.clone(),
        user_agent: meta.user_agent.clone(),
        created_at: now(),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Maximum number of entries, newest first: 1 to 1000, default 50.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Number of entries to skip, default 0.
    #[param(value_type = Option<i64>, minimum = 0)]
    offset: Option<String>,
    /// Only entries of this type, for example `token_created`.
    event_type: Option<String>,
    /// Only entries of this user.
    #[param(value_type = Option<Uuid>)]
    user_id: Option<String>,
}

fn parse_integer(
    parameter: &'static str,
    text: Option<&str>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> ApiResult<i64> {
    let Some(text) = text else { return Ok(default) };
    match text.parse::<i64>() {
        Ok(value) if range.contains(&value) => Ok(value),
        _ => Err(ApiError::InvalidParameter {
            parameter,
            message: format!("{text:?} is not an integer from {} to {}", range.start(), range.end()),
            value: None,
        }),
    }
}

/// Requires the caller to be an owner or admin of `org_id` (JWT), or an API token of that
/// organization with the `admin` scope. Another tenant's id is 404.
pub(crate) async fn require_org_admin(state: &AppState, caller: &Caller, org_id: Uuid) -> ApiResult<()> {
    if caller.is_api_token() {
        if caller.org.id != org_id {
            return Err(ApiError::not_found("organization", org_id));
        }
        return caller.require_admin();
    }
    let (org, role) = state
        .store
        .membership(org_id, caller.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization", org_id))?;
    if role != "owner" && role != "admin" {
        return Err(ApiError::Forbidden(format!(
            "this request requires the owner or admin role in organization {}, but your role is {role}",
            org.slug
        )));
    }
    Ok(())
}

#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/audit-logs",
    tag = "organizations",
    operation_id = "list_audit_logs",
    summary = "List audit logs",
    description = "Pages with `limit` and `offset`. Owners and admins only.",
    params(
        ("org_id" = Uuid, Path, description = "The organization"),
        ListQuery,
    ),
    responses(
        (status = 200, description = "Audit entries, newest first", body = [AuditLogEntry]),
        (status = 400, description = "The organization id or a query parameter is invalid (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The caller is not an owner or admin of the organization, or the API token lacks the `admin` scope", body = ErrorBody),
        (status = 404, description = "The organization does not exist or the caller is not a member; an API token sees only its own organization (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let org_id = parse_id("organization id", &org_id)?;
    require_org_admin(&state, &caller, org_id).await?;
    let limit = parse_integer("limit", query.limit.as_deref(), LIMIT_DEFAULT, 1..=LIMIT_MAX)?;
    let offset = parse_integer("offset", query.offset.as_deref(), 0, 0..=i64::MAX)?;
    let user_id = match &query.user_id {
        Some(text) => Some(parse_id("user_id filter", text)?),
        None => None,
    };
    let event_type = query.event_type.filter(|text| !text.is_empty());
    let filter = AuditQuery { event_type, user_id, limit, offset };
    let entries = state.store.accounts().audit_logs(org_id, &filter).await?;
    let body = entries
        .iter()
        .map(|entry| {
            json!({
                "id": entry.id,
                "org_id": entry.org_id,
                "user_id": entry.user_id,
                "event_type": entry.event_type,
                "description": entry.description,
                "metadata": entry.metadata,
                "ip_address": entry.ip_address,
                "user_agent": entry.user_agent,
                "created_at": entry.created_at,
            })
        })
        .collect();
    Ok(Json(Value::Array(body)))
}
