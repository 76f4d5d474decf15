//! Hosted mock deployments: create, list, inspect, stop or reactivate, delete, and lifecycle logs.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use mockforge_snapshot::settings::DeploymentSettings;
use mockforge_snapshot::PlanTable;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::audit::{self, RequestMeta};
use super::openapi::schemas::{DeploymentDetail, DeploymentLogEntry, DeploymentStatusChange, DeploymentSummary, ErrorBody, SuccessMessage};
use super::{parse_id, validate, ApiJson, ApiQuery};
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{now, status, Deployment, Organization, StoreError};

/// Body limit for deployment creation, which may carry an inline document.
pub const CREATE_BODY_LIMIT: usize = 32 * 1024 * 1024;
const NAME_MAX: usize = 100;
const DESCRIPTION_MAX: usize = 2000;
const LOG_LIMIT_DEFAULT: i64 = 100;
const LOG_LIMIT_MAX: i64 = 1000;

/// Returns the maximum number of deployments (deleted ones excluded) that `org` may have: its
/// limit override when a platform admin set one, else its plan's limit from the configured plan
/// table. `None` is unlimited, and an unknown plan gets the free plan's limit.
fn max_deployments(plans: &PlanTable, org: &Organization) -> Option<i64> {
    org.effective_limits(plans).max_deployments.map(|limit| limit as i64)
}

/// Exactly one of `openapi_spec_url` and `openapi_spec` is required.
#[derive(Deserialize, ToSchema)]
#[schema(as = CreateDeploymentRequest)]
pub struct CreateRequest {
    /// Required: 1 to 100 characters.
    #[schema(value_type = String, min_length = 1, max_length = 100)]
    name: Option<String>,
    /// A DNS label, unique in the organization; derived from the name by default.
    #[schema(max_length = 63, pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")]
    slug: Option<String>,
    /// At most 2000 characters.
    #[schema(max_length = 2000)]
    description: Option<String>,
    #[schema(value_type = Option<Uuid>)]
    project_id: Option<String>,
    /// An http or https URL to fetch the OpenAPI document from. Private and reserved addresses
    /// are rejected.
    openapi_spec_url: Option<String>,
    #[schema(schema_with = super::openapi::schemas::inline_document_schema)]
    openapi_spec: Option<Value>,
    /// Deployment settings, an object: mock options, `chaos`, `proxy` and `plugins`. An unknown
    /// key or an invalid value is a 400 `INVALID_CONFIG` error.
    #[schema(value_type = Option<Object>)]
    config_json: Option<Value>,
    /// A marketplace template, `name@version`, whose settings `config_json` overrides.
    template: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `deploying`, `active`, `failed` or `stopped`.
    status: Option<String>,
    #[param(value_type = Option<Uuid>)]
    project_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = DeploymentStatusRequest)]
pub struct StatusRequest {
    /// `active` or `stopped`.
    status: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Maximum number of entries, newest first: 1 to 1000, default 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// `info`, `warn` or `error`.
    level: Option<String>,
}

fn detail_json(state: &AppState, d: &Deployment) -> Value {
    json!({
        "id": d.id,
        "org_id": d.org_id,
        "project_id": d.project_id,
        "name": d.name,
        "slug": d.slug,
        "description": d.description,
        "status": d.status,
        "health_status": d.health_status,
        "url": state.config.deployment_url(&d.org_slug, &d.slug),
        "config_json": d.config_json,
        "document_sha256": d.document_sha256,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    })
}

fn summary_json(state: &AppState, d: &Deployment) -> Value {
    json!({
        "id": d.id,
        "project_id": d.project_id,
        "name": d.name,
        "slug": d.slug,
        "status": d.status,
        "health_status": d.health_status,
        "url": state.config.deployment_url(&d.org_slug, &d.slug),
        "created_at": d.created_at,
    })
}

/// Returns the document text from exactly one of `openapi_spec_url` and `openapi_spec`.
/// Source of the OpenAPI document: a URL to fetch or the inline text. The create handler checks
/// it before the plan limit and the fetch.
enum DocumentSource {
    Url(String),
    Inline(String),
}

fn document_source(request: &CreateRequest) -> ApiResult<DocumentSource> {
    match (&request.openapi_spec_url, &request.openapi_spec) {
        (Some(_), Some(_)) => Err(ApiError::validation(
            "openapi_spec_url",
            "give either openapi_spec_url or openapi_spec, not both",
            None,
        )),
        (None, None) => {
            Err(ApiError::validation("openapi_spec_url", "either openapi_spec_url or openapi_spec is required", None))
        }
        (Some(url), None) => {
            crate::fetch::parse_document_url(url)?;
            Ok(DocumentSource::Url(url.clone()))
        }
        (None, Some(object @ Value::Object(_))) => {
            serde_json::to_string(object).map(DocumentSource::Inline).map_err(|error| ApiError::Internal(error.into()))
        }
        (None, Some(Value::String(text))) => Ok(DocumentSource::Inline(text.clone())),
        (None, Some(other)) => Err(ApiError::validation(
            "openapi_spec",
            format!("must be a JSON object or a JSON or YAML string, got {}", json_type(other)),
            None,
        )
        .expecting("a JSON object or a JSON or YAML string")),
    }
}

async fn document_text(state: &AppState, source: &DocumentSource) -> ApiResult<String> {
    let limit = state.config.max_document_bytes;
    let text = match source {
        DocumentSource::Url(url) => state.fetcher.fetch(url).await?,
        DocumentSource::Inline(text) => text.clone(),
    };
    if text.len() as u64 > limit {
        return Err(ApiError::DocumentTooLarge { limit });
    }
    Ok(text)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct ValidCreate {
    name: String,
    slug: String,
    description: Option<String>,
    project_id: Option<Uuid>,
    config: Value,
    source: DocumentSource,
}

fn validate_create(request: &CreateRequest) -> ApiResult<ValidCreate> {
    let name = request.name.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let name_chars = name.chars().count();
    if name_chars == 0 || name_chars > NAME_MAX {
        return Err(ApiError::validation(
            "name",
            format!("is required and must be 1 to {NAME_MAX} characters long"),
            request.name.clone().map(Value::from),
        ));
    }
    let slug = match &request.slug {
        Some(slug) => {
            if !validate::is_dns_label(slug) {
                return Err(ApiError::validation(
                    "slug",
                    "must be a DNS label: 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
                    Value::from(slug.as_str()),
                ));
            }
            slug.clone()
        }
        None => {
            let derived = validate::slugify(&name);
            if derived.is_empty() {
                return Err(ApiError::validation(
                    "slug",
                    "cannot be derived from the name because it has no letters or digits; give a slug",
                    Value::from(name.as_str()),
                ));
            }
            derived
        }
    };
    let description = request.description.clone();
    let description_chars = description.as_ref().map_or(0, |text| text.chars().count());
    if description_chars > DESCRIPTION_MAX {
        // The text itself may be long, so the error reports only its length.
        return Err(ApiError::validation(
            "description",
            format!("must be at most {DESCRIPTION_MAX} characters long, got {description_chars}"),
            None,
        ));
    }
    let project_id = match &request.project_id {
        Some(text) => Some(Uuid::parse_str(text).map_err(|_| {
            ApiError::validation("project_id", "must be a UUID", Value::from(text.as_str()))
        })?),
        None => None,
    };
    let config = match &request.config_json {
        None | Some(Value::Null) => json!({}),
        Some(value @ Value::Object(_)) => value.clone(),
        Some(other) => {
            return Err(ApiError::validation(
                "config_json",
                format!("must be an object, got {}", json_type(other)),
                other.clone(),
            )
            .expecting("a JSON object of deployment settings"))
        }
    };
    let source = document_source(request)?;
    Ok(ValidCreate { name, slug, description, project_id, config, source })
}

#[utoipa::path(
    post,
    path = "/api/v1/deployments",
    tag = "deployments",
    operation_id = "create_deployment",
    summary = "Create a deployment",
    description = "Compiles the OpenAPI document and publishes the mock to the edges.",
    request_body(content = CreateRequest),
    responses(
        (status = 201, description = "The deployment, with status `deploying` until an edge serves it", body = DeploymentDetail),
        (status = 400, description = "Invalid input, the document does not compile, or `config_json` has an unknown key, an invalid value or an unknown operationId (`VALIDATION_ERROR`, `INVALID_JSON`, `INVALID_OPENAPI_DOCUMENT`, `INVALID_CONFIG`, `DOCUMENT_FETCH_FAILED`, `ADDRESS_NOT_ALLOWED`, `DOCUMENT_TOO_LARGE`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `write` scope (`INSUFFICIENT_SCOPE`), or the plan allows no more deployments (`PLAN_LIMIT_EXCEEDED`)", body = ErrorBody),
        (status = 409, description = "The slug is taken in the organization (`CONFLICT`)", body = ErrorBody),
        (status = 413, description = "The body exceeds 32 MiB (`PAYLOAD_TOO_LARGE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    ApiJson(request): ApiJson<CreateRequest, CREATE_BODY_LIMIT>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Write)?;
    let mut valid = validate_create(&request)?;
    valid.config = super::marketplace::apply_template(&state, request.template.as_deref(), valid.config).await?;
    // The settings after the template merge are checked here, and their operation lists once the
    // document compiles.
    let mut settings =
        DeploymentSettings::from_config(&valid.config).map_err(|problems| ApiError::InvalidConfig { problems })?;
    super::marketplace::pin_plugins(&state, &mut valid.config).await?;

    // Cheap checks first, so a request that cannot succeed does not fetch or compile anything.
    // The store repeats both inside its transaction.
    let limit = max_deployments(&state.config.plans, &caller.org);
    if let Some(limit) = limit {
        if state.store.count_deployments(caller.org.id).await? >= limit {
            return Err(plan_limit(&caller.org, limit));
        }
    }
    if state.store.deployment_slug_taken(caller.org.id, &valid.slug).await? {
        return Err(ApiError::Conflict { field: "slug", value: valid.slug });
    }

    let text: Arc<str> = Arc::from(document_text(&state, &valid.source).await?);
    let compile_input = Arc::clone(&text);
    let options = settings.options.clone();
    let compiled = tokio::task::spawn_blocking(move || mockforge_engine::compile(&compile_input, options))
        .await
        .map_err(|error| ApiError::Internal(anyhow::Error::new(error).context("the compile task failed")))?;
    let warnings = match compiled {
        Ok(compiled) => {
            settings.resolve_operations(&compiled.mock).map_err(|problems| ApiError::InvalidConfig { problems })?;
            compiled.warnings
        }
        Err(error) => return Err(ApiError::InvalidDocument { problems: error.diagnostics }),
    };

    crate::quota::check_document_upload(&state, &caller.org, &text).await?;
    let document_sha256 = crate::artifacts::ArtifactStore::sha256(&text);
    let timestamp = now();
    let deployment = Deployment {
        id: Uuid::new_v4(),
        org_id: caller.org.id,
        project_id: valid.project_id,
        name: valid.name,
        slug: valid.slug,
        description: valid.description,
        status: status::DEPLOYING.to_owned(),
        health_status: "unknown".to_owned(),
        document_sha256,
        config_json: valid.config,
        created_at: timestamp,
        updated_at: timestamp,
        org_slug: caller.org.slug.clone(),
        org_plan: caller.org.plan.clone(),
        org_created_at: caller.org.created_at,
        // Read from the subscription when the store loads the deployment.
        org_period_start: None,
        org_limit_overrides: caller.org.limit_overrides.clone(),
    };
    let audit = audit::entry(
        &caller,
        &meta,
        "deployment_created",
        format!("Deployment {} created", deployment.slug),
        json!({ "deployment_id": deployment.id, "name": deployment.name, "slug": deployment.slug }),
    );
    let version = state.store.create_deployment(&deployment, &text, limit, &audit).await.map_err(|error| match error {
        StoreError::Conflict { .. } => ApiError::Conflict { field: "slug", value: deployment.slug.clone() },
        StoreError::PlanLimit { limit } => plan_limit(&caller.org, limit),
        StoreError::Database(error) => error.into(),
    })?;
    state.feed.notify(version);
    tracing::info!(
        deployment_id = %deployment.id,
        org_id = %deployment.org_id,
        slug = %deployment.slug,
        version,
        warnings = warnings.len(),
        "created a deployment"
    );
    Ok((StatusCode::CREATED, Json(detail_json(&state, &deployment))))
}

fn plan_limit(org: &Organization, limit: i64) -> ApiError {
    let plan = &org.plan;
    let overridden = org.limit_overrides.as_ref().is_some_and(|overrides| overrides.max_deployments.is_some());
    let message = if overridden {
        format!("organization {} allows at most {limit} deployments (a limit set by a platform admin); delete one", org.slug)
    } else {
        format!("the {plan} plan allows at most {limit} deployments; delete one or upgrade the plan")
    };
    ApiError::PlanLimitExceeded { message, plan: plan.to_owned(), limit: limit as u64 }
}

#[utoipa::path(
    get,
    path = "/api/v1/deployments",
    tag = "deployments",
    operation_id = "list_deployments",
    summary = "List deployments",
    params(
        ListQuery,
    ),
    responses(
        (status = 200, description = "The organization's deployments", body = [DeploymentSummary]),
        (status = 400, description = "A filter is invalid (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    if let Some(value) = &query.status {
        if !status::RUNNING.contains(&value.as_str()) && value != status::STOPPED {
            return Err(ApiError::InvalidParameter {
                parameter: "status filter",
                message: format!("unknown status {value:?}; expected deploying, active, failed or stopped"),
                value: Some(value.clone()),
            });
        }
    }
    let project_id = match &query.project_id {
        Some(text) => Some(parse_id("project_id filter", text)?),
        None => None,
    };
    let deployments = state.store.deployments(caller.org.id, query.status.as_deref(), project_id).await?;
    Ok(Json(Value::Array(deployments.iter().map(|d| summary_json(&state, d)).collect())))
}

#[utoipa::path(
    get,
    path = "/api/v1/deployments/{deployment_id}",
    tag = "deployments",
    operation_id = "get_deployment",
    summary = "Get a deployment",
    params(
        ("deployment_id" = Uuid, Path, description = "The deployment"),
    ),
    responses(
        (status = 200, description = "The deployment", body = DeploymentDetail),
        (status = 400, description = "The id is not a UUID (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
        (status = 404, description = "The deployment does not exist in the organization (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let id = parse_id("deployment id", &id)?;
    let deployment = state.store.deployment(id, caller.org.id).await?.ok_or_else(|| ApiError::not_found("deployment", id))?;
    Ok(Json(detail_json(&state, &deployment)))
}

#[utoipa::path(
    put,
    path = "/api/v1/deployments/{deployment_id}/status",
    tag = "deployments",
    operation_id = "update_deployment_status",
    summary = "Stop or reactivate a deployment",
    params(
        ("deployment_id" = Uuid, Path, description = "The deployment"),
    ),
    request_body(content = StatusRequest),
    responses(
        (status = 200, description = "The new status", body = DeploymentStatusChange),
        (status = 400, description = "Invalid input (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `write` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
        (status = 404, description = "The deployment does not exist in the organization (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn update_status(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<StatusRequest>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Write)?;
    let id = parse_id("deployment id", &id)?;
    if request.status != status::ACTIVE && request.status != status::STOPPED {
        return Err(ApiError::validation(
            "status",
            format!("unsupported status {:?}; expected active or stopped", request.status),
            Value::from(request.status),
        ));
    }
    let audit = audit::entry(
        &caller,
        &meta,
        "deployment_status_changed",
        format!("Deployment {id} set to {}", request.status),
        json!({ "deployment_id": id, "status": request.status }),
    );
    let change = state
        .store
        .set_deployment_status(id, caller.org.id, &request.status, &audit)
        .await?
        .ok_or_else(|| ApiError::not_found("deployment", id))?;
    if let Some(version) = change.version {
        state.feed.notify(version);
        tracing::info!(deployment_id = %id, status = %change.deployment.status, version, "changed a deployment's status");
    }
    let d = change.deployment;
    Ok(Json(json!({ "id": d.id, "status": d.status, "updated_at": d.updated_at })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/deployments/{deployment_id}",
    tag = "deployments",
    operation_id = "delete_deployment",
    summary = "Delete a deployment",
    params(
        ("deployment_id" = Uuid, Path, description = "The deployment"),
    ),
    responses(
        (status = 200, description = "The deployment is deleted and leaves the edges", body = SuccessMessage),
        (status = 400, description = "The id is not a UUID (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `write` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
        (status = 404, description = "The deployment does not exist in the organization (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Write)?;
    let id = parse_id("deployment id", &id)?;
    let audit = audit::entry(&caller, &meta, "deployment_deleted", format!("Deployment {id} deleted"), json!({ "deployment_id": id }));
    let version = state.store.delete_deployment(id, caller.org.id, &audit).await?.ok_or_else(|| ApiError::not_found("deployment", id))?;
    state.feed.notify(version);
    tracing::info!(deployment_id = %id, version, "deleted a deployment");
    Ok(Json(json!({ "success": true, "message": "Deployment deleted successfully" })))
}

#[utoipa::path(
    get,
    path = "/api/v1/deployments/{deployment_id}/logs",
    tag = "deployments",
    operation_id = "get_deployment_logs",
    summary = "Get deployment logs",
    params(
        ("deployment_id" = Uuid, Path, description = "The deployment"),
        LogsQuery,
    ),
    responses(
        (status = 200, description = "Lifecycle events and requests served by edges, merged newest first", body = [DeploymentLogEntry]),
        (status = 400, description = "The id or a query parameter is invalid (`VALIDATION_ERROR`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `read` scope (`INSUFFICIENT_SCOPE`)", body = ErrorBody),
        (status = 404, description = "The deployment does not exist in the organization (`NOT_FOUND`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<LogsQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Scope::Read)?;
    let id = parse_id("deployment id", &id)?;
    let limit = match &query.limit {
        None => LOG_LIMIT_DEFAULT,
        Some(text) => match text.parse::<i64>() {
            Ok(limit) if (1..=LOG_LIMIT_MAX).contains(&limit) => limit,
            _ => {
                return Err(ApiError::InvalidParameter {
                    parameter: "limit",
                    message: format!("{text:?} is not an integer from 1 to {LOG_LIMIT_MAX}"),
                    value: None,
                })
            }
        },
    };
    if let Some(level) = &query.level {
        if !["info", "warn", "error"].contains(&level.as_str()) {
            return Err(ApiError::InvalidParameter {
                parameter: "level",
                message: format!("unknown level {level:?}; expected info, warn or error"),
                value: None,
            });
        }
    }
    if state.store.deployment(id, caller.org.id).await?.is_none() {
        return Err(ApiError::not_found("deployment", id));
    }
    let level = query.level.as_deref();
    let events = state.store.deployment_logs(id, caller.org.id, level, limit).await?;
    let requests = state.store.usage().request_logs(id, caller.org.id, level, limit).await?;
    // Lifecycle events and served requests, merged newest first.
    let mut entries: Vec<(chrono::DateTime<chrono::Utc>, Value)> = events
        .iter()
        .map(|entry| {
            let body = json!({
                "id": entry.id,
                "level": entry.level,
                "message": entry.message,
                "created_at": entry.created_at,
                "source": "lifecycle",
            });
            (entry.created_at, body)
        })
        .collect();
    entries.extend(requests.iter().map(|entry| {
        let level = match entry.status {
            500.. => "error",
            400..=499 => "warn",
            _ => "info",
        };
        let body = json!({
            "id": entry.id,
            "level": level,
            "message": request_log_message(entry),
            "created_at": entry.created_at,
            "source": "request",
            "method": entry.method,
            "path": entry.path,
            "status": entry.status,
            "latency_ms": entry.latency_ms,
            "request_id": entry.request_id,
        });
        (entry.created_at, body)
    }));
    entries.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    entries.truncate(limit as usize);
    Ok(Json(Value::Array(entries.into_iter().map(|(_, body)| body).collect())))
}

/// Builds the message of a request log: method, path, status and latency, then the edge's
/// explanation (such as a failed plugin) when it sent one.
fn request_log_message(entry: &crate::store::usage::RequestLogEntry) -> String {
    let summary = format!("{} {} {} ({:.1} ms)", entry.method, entry.path, entry.status, entry.latency_ms);
    match &entry.message {
        Some(message) => format!("{summary}: {message}"),
        None => summary,
    }
}
