//! Organizations the caller belongs to and their members.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::openapi::schemas::{ErrorBody, Member, Organization as OrganizationBody};
use super::parse_id;
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::Organization;

fn organization_json(org: &Organization) -> Value {
    json!({
        "id": org.id,
        "name": org.name,
        "slug": org.slug,
        "plan": org.plan,
        "owner_id": org.owner_id,
        "created_at": org.created_at,
    })
}

/// Returns the organization if the caller may see it: a member (JWT) or the token's own
/// organization (API token). Anything else is 404, so ids of other tenants are not revealed.
async fn visible_organization(state: &AppState, caller: &Caller, org_id: Uuid) -> ApiResult<Organization> {
    if caller.is_api_token() {
        return if caller.org.id == org_id { Ok(caller.org.clone()) } else { Err(ApiError::not_found("organization", org_id)) };
    }
    match state.store.membership(org_id, caller.user_id).await? {
        Some((org, _role)) => Ok(org),
        None => Err(ApiError::not_found("organization", org_id)),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/organizations",
    tag = "organizations",
    operation_id = "list_organizations",
    summary = "List organizations",
    responses(
        (status = 200, description = "The user's organizations; for an API token, its own organization", body = [OrganizationBody]),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let orgs = if caller.is_api_token() {
        vec![caller.org.clone()]
    } else {
        state.store.organizations_of(caller.user_id).await?
    };
    Ok(Json(Value::Array(orgs.iter().map(organization_json).collect())))
}

#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}",
    tag = "organizations",
    operation_id = "get_organization",
    summary = "Get an organization",
    params(
        ("org_id" = Uuid, Path, description = "The organization"),
    ),
    responses(
        (status = 200, description = "The organization", body = OrganizationBody),
        (status = 400, description = "The id is not a UUID (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
        (status = 404, description = "The organization does not exist or the caller is not a member; an API token sees only its own organization (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(org_id): Path<String>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let org_id = parse_id("organization id", &org_id)?;
    let org = visible_organization(&state, &caller, org_id).await?;
    Ok(Json(organization_json(&org)))
}

#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/members",
    tag = "organizations",
    operation_id = "list_organization_members",
    summary = "List members",
    params(
        ("org_id" = Uuid, Path, description = "The organization"),
    ),
    responses(
        (status = 200, description = "The members of the organization", body = [Member]),
        (status = 400, description = "The id is not a UUID (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
        (status = 404, description = "The organization does not exist or the caller is not a member; an API token sees only its own organization (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn members(State(state): State<AppState>, caller: Caller, Path(org_id): Path<String>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let org_id = parse_id("organization id", &org_id)?;
    let org = visible_organization(&state, &caller, org_id).await?;
    let members = state.store.members(org.id).await?;
    let body = members
        .iter()
        .map(|member| {
            json!({
                "user_id": member.user_id,
                "username": member.username,
                "email": member.email,
                "role": member.role,
                "joined_at": member.joined_at,
            })
        })
        .collect();
    Ok(Json(Value::Array(body)))
}
