//! The marketplace: publish, search, inspect and download plugins, templates and scenarios.
//!
//! Publishing needs the `write` scope. Searching, reading and downloading need no credentials.
//! A name belongs to the organization that first published it (another organization gets 403),
//! and a published version never changes (publishing it again gets 409).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::openapi::schemas::{
    ErrorBody, PackageDetail, PackageFile, PackageVersionDetail, PluginSearchResults, PluginVerification, PublishPackageForm,
    PublishPluginForm, Published, ScenarioSearchResults, TemplateSearchResults,
};
use super::{ApiBody, ApiJson};
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::marketplace::{self as files, FileStorage};
use crate::state::AppState;
use crate::store::marketplace::{kind, NewVersion, Package, PackageVersion, PublishError, Search};

const NAME_FIELD_MAX: usize = 63;
const CATEGORY_MAX: usize = 50;
const DESCRIPTION_MAX: usize = 2000;
const SEARCH_LIMIT_DEFAULT: i64 = 20;
const SEARCH_LIMIT_MAX: i64 = 100;
/// Room for the multipart text fields and boundaries on top of the largest file.
const MULTIPART_OVERHEAD: usize = 256 * 1024;

/// Routes of the marketplace, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    let upload_limit = DefaultBodyLimit::max(files::PAID_MAX_FILE_BYTES + MULTIPART_OVERHEAD);
    OpenApiRouter::new()
        .routes(routes!(publish_plugin).layer(upload_limit))
        .routes(routes!(search_plugins))
        .routes(routes!(get_plugin))
        .routes(routes!(get_plugin_version))
        .routes(routes!(download_plugin))
        .routes(routes!(verify_plugin))
        .routes(routes!(publish_template).layer(upload_limit))
        .routes(routes!(search_templates))
        .routes(routes!(get_template))
        .routes(routes!(download_template))
        .routes(routes!(publish_scenario).layer(upload_limit))
        .routes(routes!(search_scenarios))
        .routes(routes!(get_scenario))
        .routes(routes!(get_scenario_version))
        .routes(routes!(download_scenario))
}

fn storage(state: &AppState) -> &dyn FileStorage {
    state.file_storage.as_ref()
}

/// Returns the API path that downloads a version.
fn download_url(kind_name: &str, name: &str, version: &str) -> String {
    match kind_name {
        kind::TEMPLATE => format!("/api/v1/templates/{name}/{version}/download"),
        kind::SCENARIO => format!("/api/v1/scenarios/{name}/versions/{version}/download"),
        _ => format!("/api/v1/plugins/{name}/versions/{version}/download"),
    }
}

// ---------------------------------------------------------------------------------------------
// Input validation

fn validate_name(name: &str) -> ApiResult<()> {
    if name.len() > NAME_FIELD_MAX || !super::validate::is_dns_label(name) {
        return Err(ApiError::validation(
            "name",
            "must be 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
            Value::from(name),
        ));
    }
    Ok(())
}

fn parse_version(version: &str) -> ApiResult<semver::Version> {
    semver::Version::parse(version).map_err(|error| {
        ApiError::validation(
            "version",
            format!("must be a semantic version such as 1.2.3: {error}"),
            Value::from(version),
        )
    })
}

fn validate_category(category: &str) -> ApiResult<()> {
    let valid = !category.is_empty()
        && category.len() <= CATEGORY_MAX
        && category.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(ApiError::validation(
            "category",
            format!("must be 1 to {CATEGORY_MAX} characters of a-z, 0-9 and '-'"),
            Value::from(category),
        ));
    }
    Ok(())
}

fn validate_description(description: &str) -> ApiResult<()> {
    let length = description.chars().count();
    if length > DESCRIPTION_MAX {
        return Err(ApiError::validation(
            "description",
            format!("must be at most {DESCRIPTION_MAX} characters long, got {length}"),
            None,
        ));
    }
    Ok(())
}

/// The parts of a multipart upload: text fields and one file.
#[derive(Default)]
struct Upload {
    fields: std::collections::HashMap<String, String>,
    file: Option<Vec<u8>>,
}

impl Upload {
    fn text(&self, field: &'static str) -> ApiResult<&str> {
        self.fields
            .get(field)
            .map(String::as_str)
            .ok_or_else(|| ApiError::validation(field, "is required", None))
    }
}

/// Reads a multipart body whose file part is named `file_field`, rejecting a file larger than
/// `max_file_bytes`.
async fn read_upload(mut multipart: Multipart, file_field: &'static str, max_file_bytes: usize) -> ApiResult<Upload> {
    let mut upload = Upload::default();
    let mut too_large = false;
    loop {
        let field = multipart.next_field().await.map_err(multipart_error)?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(multipart_error)?;
        if name == file_field {
            // Keep reading to the end of the body, so the client gets the 413 response instead
            // of a connection closed while it still sends.
            too_large |= bytes.len() > max_file_bytes;
            if !too_large {
                upload.file = Some(bytes.to_vec());
            }
        } else {
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| ApiError::validation("multipart", format!("field {name:?} is not UTF-8 text"), None))?;
            upload.fields.insert(name, text);
        }
    }
    if too_large {
        return Err(ApiError::PayloadTooLarge { limit: max_file_bytes as u64 });
    }
    Ok(upload)
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge { limit: (files::PAID_MAX_FILE_BYTES + MULTIPART_OVERHEAD) as u64 };
    }
    ApiError::validation("multipart", format!("invalid multipart/form-data body: {}", error.body_text()), None)
}

// ---------------------------------------------------------------------------------------------
// Publishing

/// Validated facts of a publication before its file is stored.
struct Publication {
    kind: &'static str,
    name: String,
    version: semver::Version,
    description: String,
    category: String,
    file: Vec<u8>,
    manifest: Option<Value>,
}

async fn publish(state: &AppState, caller: &Caller, publication: Publication) -> ApiResult<(StatusCode, Json<Value>)> {
    crate::quota::check_upload(state, &caller.org, publication.file.len() as u64).await?;
    let sha256 = storage(state).put(publication.kind, &publication.file).await?;
    let new = NewVersion {
        kind: publication.kind,
        name: &publication.name,
        version: &publication.version,
        description: &publication.description,
        category: &publication.category,
        org_id: caller.org.id,
        author: &caller.org.slug,
        sha256: &sha256,
        size_bytes: publication.file.len() as i64,
        manifest: publication.manifest.as_ref(),
        published_by: caller.user_id,
    };
    match state.store.marketplace().publish(&new).await {
        Ok(()) => {}
        Err(PublishError::NotOwner { owner }) => {
            return Err(ApiError::Forbidden(format!(
                "{} {} belongs to organization {owner}; only it can publish new versions",
                publication.kind, publication.name
            )))
        }
        Err(PublishError::VersionExists) => {
            return Err(ApiError::Conflict {
                field: "version",
                value: format!("{}@{}", publication.name, publication.version),
            })
        }
        Err(PublishError::Database(error)) => return Err(error.into()),
    }
    tracing::info!(
        kind = publication.kind,
        name = %publication.name,
        version = %publication.version,
        org_id = %caller.org.id,
        sha256,
        "published a marketplace package"
    );
    let label = match publication.kind {
        kind::PLUGIN => "Plugin",
        kind::TEMPLATE => "Template",
        _ => "Scenario",
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": publication.name,
            "version": publication.version.to_string(),
            "checksum": format!("sha256:{sha256}"),
            "message": format!("{label} published successfully"),
        })),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/plugins/publish",
    tag = "marketplace",
    operation_id = "publish_plugin",
    summary = "Publish a plugin",
    description = "A published version never changes. The first organization to publish a name owns it.",
    request_body(content = PublishPluginForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The plugin version is published", body = Published),
        (status = 400, description = "Invalid input (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `write` scope, or another organization owns the name (`INSUFFICIENT_SCOPE`, `FORBIDDEN`)", body = ErrorBody),
        (status = 409, description = "The version is already published (`CONFLICT`)", body = ErrorBody),
        (status = 413, description = "The body exceeds the upload limit (`PAYLOAD_TOO_LARGE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn publish_plugin(State(state): State<AppState>, caller: Caller, multipart: Multipart) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Write)?;
    let max_bytes = files::max_file_bytes(&caller.org.plan);
    let upload = read_upload(multipart, "wasm_file", max_bytes).await?;
    let name = upload.text("name")?.trim().to_owned();
    validate_name(&name)?;
    let version = parse_version(upload.text("version")?.trim())?;
    let description = upload.fields.get("description").cloned().unwrap_or_default();
    validate_description(&description)?;
    let category = upload.text("category")?.trim().to_owned();
    validate_category(&category)?;
    let Some(file) = upload.file else {
        return Err(ApiError::validation("wasm_file", "is required", None));
    };

    let checked = file.clone();
    let verdict = tokio::task::spawn_blocking(move || files::validate_plugin(&checked))
        .await
        .map_err(|error| ApiError::Internal(anyhow::Error::new(error).context("the plugin validation task failed")))?;
    if let Err(reason) = verdict {
        return Err(ApiError::validation(
            "wasm_file",
            format!("the file is not a WebAssembly component of a supported MockForge plugin world: {reason}"),
            None,
        ));
    }

    let publication = Publication { kind: kind::PLUGIN, name, version, description, category, file, manifest: None };
    publish(&state, &caller, publication).await
}

#[utoipa::path(
    post,
    path = "/api/v1/templates/publish",
    tag = "marketplace",
    operation_id = "publish_template",
    summary = "Publish a template",
    description = "A published version never changes. The first organization to publish a name owns it.",
    request_body(content = PublishPackageForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The template version is published", body = Published),
        (status = 400, description = "Invalid input, or the settings have an unknown key or an invalid value (`VALIDATION_ERROR`, `INVALID_JSON`, `INVALID_CONFIG`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `write` scope, or another organization owns the name (`INSUFFICIENT_SCOPE`, `FORBIDDEN`)", body = ErrorBody),
        (status = 409, description = "The version is already published (`CONFLICT`)", body = ErrorBody),
        (status = 413, description = "The body exceeds the upload limit (`PAYLOAD_TOO_LARGE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn publish_template(State(state): State<AppState>, caller: Caller, multipart: Multipart) -> ApiResult<(StatusCode, Json<Value>)> {
    publish_package(state, caller, multipart, kind::TEMPLATE).await
}

#[utoipa::path(
    post,
    path = "/api/v1/scenarios/publish",
    tag = "marketplace",
    operation_id = "publish_scenario",
    summary = "Publish a scenario",
    description = "A published version never changes. The first organization to publish a name owns it.",
    request_body(content = PublishPackageForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The scenario version is published", body = Published),
        (status = 400, description = "Invalid input (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
        (status = 403, description = "The API token lacks the `write` scope, or another organization owns the name (`INSUFFICIENT_SCOPE`, `FORBIDDEN`)", body = ErrorBody),
        (status = 409, description = "The version is already published (`CONFLICT`)", body = ErrorBody),
        (status = 413, description = "The body exceeds the upload limit (`PAYLOAD_TOO_LARGE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn publish_scenario(State(state): State<AppState>, caller: Caller, multipart: Multipart) -> ApiResult<(StatusCode, Json<Value>)> {
    publish_package(state, caller, multipart, kind::SCENARIO).await
}

/// Publishes a template or scenario: a JSON `manifest` field and a `package` tar.gz file.
async fn publish_package(
    state: AppState,
    caller: Caller,
    multipart: Multipart,
    package_kind: &'static str,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Scope::Write)?;
    let max_bytes = files::max_file_bytes(&caller.org.plan);
    let upload = read_upload(multipart, "package", max_bytes).await?;
    let manifest: Value = serde_json::from_str(upload.text("manifest")?)
        .map_err(|error| ApiError::validation("manifest", format!("is not valid JSON: {error}"), None))?;
    let valid = validate_manifest(&manifest, package_kind)?;
    let Some(file) = upload.file else {
        return Err(ApiError::validation("package", "is required", None));
    };

    let checked = file.clone();
    let max_unpacked = max_bytes as u64 * files::MAX_UNPACKED_RATIO;
    let verdict = tokio::task::spawn_blocking(move || files::validate_package(&checked, max_unpacked))
        .await
        .map_err(|error| ApiError::Internal(anyhow::Error::new(error).context("the package validation task failed")))?;
    if let Err(reason) = verdict {
        return Err(ApiError::validation("package", format!("is not a valid package: {reason}"), None));
    }

    let publication = Publication {
        kind: package_kind,
        name: valid.name,
        version: valid.version,
        description: valid.description,
        category: valid.category,
        file,
        manifest: Some(manifest),
    };
    publish(&state, &caller, publication).await
}

/// The fields every manifest has.
struct ManifestFields {
    name: String,
    version: semver::Version,
    description: String,
    category: String,
}

/// Validates a template or scenario manifest.
///
/// Both have `name`, `version` (semver), `description` and `category` strings. A template also
/// has `settings`, an object of deployment settings (a `config_json`). A scenario also has
/// `steps`, a non-empty list of objects with `method` and `path` strings.
fn validate_manifest(manifest: &Value, package_kind: &str) -> ApiResult<ManifestFields> {
    let Value::Object(object) = manifest else {
        return Err(ApiError::validation("manifest", "must be a JSON object", None));
    };
    let text = |field: &'static str| -> ApiResult<String> {
        match object.get(field) {
            Some(Value::String(text)) => Ok(text.trim().to_owned()),
            _ => Err(ApiError::validation("manifest", format!("`{field}` must be a string"), None)),
        }
    };
    let name = text("name")?;
    validate_name(&name)?;
    let version = parse_version(&text("version")?)?;
    let description = text("description")?;
    validate_description(&description)?;
    let category = text("category")?;
    validate_category(&category)?;

    match package_kind {
        kind::TEMPLATE => {
            let settings = object.get("settings");
            let Some(settings @ Value::Object(_)) = settings else {
                return Err(ApiError::validation("manifest", "`settings` must be an object of deployment settings", None));
            };
            // The operation lists need a document, so they are checked when a deployment uses
            // the template.
            if let Err(problems) = mockforge_snapshot::settings::DeploymentSettings::from_config(settings) {
                return Err(ApiError::InvalidConfig { problems });
            }
        }
        _ => {
            let steps = object.get("steps").and_then(Value::as_array).filter(|steps| !steps.is_empty());
            let Some(steps) = steps else {
                return Err(ApiError::validation("manifest", "`steps` must be a non-empty list", None));
            };
            for (index, step) in steps.iter().enumerate() {
                let valid = step.get("method").is_some_and(Value::is_string) && step.get("path").is_some_and(Value::is_string);
                if !valid {
                    return Err(ApiError::validation(
                        "manifest",
                        format!("`steps[{index}]` must be an object with `method` and `path` strings"),
                        None,
                    ));
                }
            }
        }
    }
    Ok(ManifestFields { name, version, description, category })
}

// ---------------------------------------------------------------------------------------------
// Search and reads

#[derive(Deserialize, Default, ToSchema)]
#[schema(as = MarketplaceSearchRequest)]
pub struct SearchRequest {
    /// Words to find in names and descriptions; every package by default.
    query: Option<String>,
    /// Only packages of this category.
    category: Option<String>,
    /// Page size: 1 to 100, default 20.
    #[schema(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Number of matches to skip, default 0.
    #[schema(minimum = 0)]
    offset: Option<i64>,
}

async fn search(state: &AppState, package_kind: &str, request: SearchRequest) -> ApiResult<(Vec<Package>, i64)> {
    let limit = request.limit.unwrap_or(SEARCH_LIMIT_DEFAULT);
    if !(1..=SEARCH_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::validation("limit", format!("must be 1 to {SEARCH_LIMIT_MAX}"), Value::from(limit)));
    }
    let offset = request.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::validation("offset", "must be 0 or more", Value::from(offset)));
    }
    let search = Search {
        kind: package_kind,
        query: request.query.as_deref().unwrap_or_default().trim(),
        category: request.category.as_deref().unwrap_or_default().trim(),
        limit,
        offset,
    };
    Ok(state.store.marketplace().search(&search).await?)
}

fn search_item(package: &Package) -> Value {
    json!({
        "name": package.name,
        "version": package.latest_version,
        "description": package.description,
        "category": package.category,
        "author": package.author,
        "downloads": package.downloads_total,
        // Ratings are not collected yet.
        "rating": Value::Null,
        "verified": package.verified,
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/plugins/search",
    tag = "marketplace",
    operation_id = "search_plugins",
    summary = "Search plugins",
    request_body(content = SearchRequest),
    responses(
        (status = 200, description = "A page of matches, most downloaded first, and the total count", body = PluginSearchResults),
        (status = 400, description = "`limit` or `offset` is out of range, or the body is not JSON (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
    ),
)]
pub async fn search_plugins(State(state): State<AppState>, ApiJson(request): ApiJson<SearchRequest>) -> ApiResult<Json<Value>> {
    let (packages, total) = search(&state, kind::PLUGIN, request).await?;
    Ok(Json(json!({ "plugins": packages.iter().map(search_item).collect::<Vec<_>>(), "total": total })))
}

#[utoipa::path(
    post,
    path = "/api/v1/templates/search",
    tag = "marketplace",
    operation_id = "search_templates",
    summary = "Search templates",
    request_body(content = SearchRequest),
    responses(
        (status = 200, description = "A page of matches, most downloaded first, and the total count", body = TemplateSearchResults),
        (status = 400, description = "`limit` or `offset` is out of range, or the body is not JSON (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
    ),
)]
pub async fn search_templates(State(state): State<AppState>, ApiJson(request): ApiJson<SearchRequest>) -> ApiResult<Json<Value>> {
    let (packages, total) = search(&state, kind::TEMPLATE, request).await?;
    Ok(Json(json!({ "templates": packages.iter().map(search_item).collect::<Vec<_>>(), "total": total })))
}

#[utoipa::path(
    post,
    path = "/api/v1/scenarios/search",
    tag = "marketplace",
    operation_id = "search_scenarios",
    summary = "Search scenarios",
    request_body(content = SearchRequest),
    responses(
        (status = 200, description = "A page of matches, most downloaded first, and the total count", body = ScenarioSearchResults),
        (status = 400, description = "`limit` or `offset` is out of range, or the body is not JSON (`VALIDATION_ERROR`, `INVALID_JSON`)", body = ErrorBody),
    ),
)]
pub async fn search_scenarios(State(state): State<AppState>, ApiJson(request): ApiJson<SearchRequest>) -> ApiResult<Json<Value>> {
    let (packages, total) = search(&state, kind::SCENARIO, request).await?;
    Ok(Json(json!({ "scenarios": packages.iter().map(search_item).collect::<Vec<_>>(), "total": total })))
}

async fn package_detail(state: &AppState, package_kind: &'static str, name: &str) -> ApiResult<Json<Value>> {
    let marketplace = state.store.marketplace();
    let Some(package) = marketplace.package(package_kind, name).await? else {
        return Err(ApiError::not_found(package_kind, name));
    };
    let versions = marketplace.versions(package_kind, name).await?;
    Ok(Json(json!({
        "name": package.name,
        "description": package.description,
        "category": package.category,
        "author": package.author,
        "latest_version": package.latest_version,
        "downloads_total": package.downloads_total,
        "rating_avg": Value::Null,
        "rating_count": 0,
        "verified": package.verified,
        "versions": versions.iter().map(|version| json!({
            "version": version.version,
            "published_at": version.published_at,
            "downloads": version.downloads,
        })).collect::<Vec<_>>(),
        "created_at": package.created_at,
        "updated_at": package.updated_at,
    })))
}

async fn find_version(state: &AppState, package_kind: &'static str, name: &str, version: &str) -> ApiResult<PackageVersion> {
    state
        .store
        .marketplace()
        .version(package_kind, name, version)
        .await?
        .ok_or_else(|| ApiError::not_found(package_kind, format!("{name}@{version}")))
}

fn version_detail(version: &PackageVersion) -> Value {
    let mut detail = json!({
        "name": version.name,
        "version": version.version,
        "description": version.description,
        "download_url": download_url(&version.kind, &version.name, &version.version),
        "checksum": format!("sha256:{}", version.sha256),
        "size_bytes": version.size_bytes,
        "downloads": version.downloads,
        "published_at": version.published_at,
    });
    if let Some(manifest) = &version.manifest {
        detail["manifest"] = manifest.clone();
    }
    detail
}

#[utoipa::path(
    get,
    path = "/api/v1/plugins/{name}",
    tag = "marketplace",
    operation_id = "get_plugin",
    summary = "Get a plugin",
    params(
        ("name" = String, Path, description = "The package name"),
    ),
    responses(
        (status = 200, description = "The plugin and its versions", body = PackageDetail),
        (status = 404, description = "No such package or version (`NOT_FOUND`)", body = ErrorBody),
    ),
)]
pub async fn get_plugin(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    package_detail(&state, kind::PLUGIN, &name).await
}

#[utoipa::path(
    get,
    path = "/api/v1/scenarios/{name}",
    tag = "marketplace",
    operation_id = "get_scenario",
    summary = "Get a scenario",
    params(
        ("name" = String, Path, description = "The package name"),
    ),
    responses(
        (status = 200, description = "The scenario and its versions", body = PackageDetail),
        (status = 404, description = "No such package or version (`NOT_FOUND`)", body = ErrorBody),
    ),
)]
pub async fn get_scenario(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    package_detail(&state, kind::SCENARIO, &name).await
}

#[utoipa::path(
    get,
    path = "/api/v1/plugins/{name}/versions/{version}",
    tag = "marketplace",
    operation_id = "get_plugin_version",
    summary = "Get a plugin version",
    params(
        ("name" = String, Path, description = "The package name"),
        ("version" = String, Path, description = "A semantic version such as 1.2.3"),
    ),
    responses(
        (status = 200, description = "The version", body = PackageVersionDetail),
        (status = 404, description = "No such package or version (`NOT_FOUND`)", body = ErrorBody),
    ),
)]
pub async fn get_plugin_version(State(state): State<AppState>, Path((name, version)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    Ok(Json(version_detail(&find_version(&state, kind::PLUGIN, &name, &version).await?)))
}

#[utoipa::path(
    get,
    path = "/api/v1/templates/{name}/{version}",
    tag = "marketplace",
    operation_id = "get_template",
    summary = "Get a template version",
    params(
        ("name" = String, Path, description = "The package name"),
        ("version" = String, Path, description = "A semantic version such as 1.2.3"),
    ),
    responses(
        (status = 200, description = "The version with its manifest", body = PackageVersionDetail),
        (status = 404, description = "No such package or version (`NOT_FOUND`)", body = ErrorBody),
    ),
)]
pub async fn get_template(State(state): State<AppState>, Path((name, version)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    Ok(Json(version_detail(&find_version(&state, kind::TEMPLATE, &name, &version).await?)))
}

#[utoipa::path(
    get,
    path = "/api/v1/scenarios/{name}/versions/{version}",
    tag = "marketplace",
    operation_id = "get_scenario_version",
    summary = "Get a scenario version",
    params(
        ("name" = String, Path, description = "The package name"),
        ("version" = String, Path, description = "A semantic version such as 1.2.3"),
    ),
    responses(
        (status = 200, description = "The version with its manifest", body = PackageVersionDetail),
        (status = 404, description = "No such package or version (`NOT_FOUND`)", body = ErrorBody),
    ),
)]
pub async fn get_scenario_version(State(state): State<AppState>, Path((name, version)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    Ok(Json(version_detail(&find_version(&state, kind::SCENARIO, &name, &version).await?)))
}

/// Sends a version's file and counts the download.
async fn download(state: &AppState, package_kind: &'static str, name: &str, version: &str) -> ApiResult<Response> {
    let found = find_version(state, package_kind, name, version).await?;
    let Some(bytes) = storage(state).get(package_kind, &found.sha256).await? else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "the file of {package_kind} {name}@{version} (sha256 {}) is missing from storage",
            found.sha256
        )));
    };
    state.store.marketplace().count_download(package_kind, name, version).await?;
    let (content_type, extension) = match package_kind {
        kind::PLUGIN => ("application/wasm", "wasm"),
        _ => ("application/gzip", "tar.gz"),
    };
    let disposition = format!("attachment; filename=\"{name}-{version}.{extension}\"");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::HeaderName::from_static("x-checksum"), format!("sha256:{}", found.sha256)),
        ],
        Body::from(bytes),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/plugins/{name}/versions/{version}/download",
    tag = "marketplace",
    operation_id = "download_plugin",
    summary = "Download a plugin version",
    params(
        ("name" = String, Path, description = "The package name"),
        ("version" = String, Path, description = "A semantic version such as 1.2.3"),
    ),
    responses(
        (status = 200, description = "The file; each download is counted", body = PackageFile, content_type = "application/wasm", headers(("X-Checksum" = String, description = "`sha256:` and the hex digest of the file"), ("Content-Disposition" = String, description = "`attachment` with the file name"))),
        (status = 404, description = "No such package or version (`NOT_FOUND`)", body = ErrorBody),
    ),
)]
pub async fn download_plugin(State(state): State<AppState>, Path((name, version)): Path<(String, String)>) -> ApiResult<Response> {
    download(&state, kind::PLUGIN, &name, &version).await
}

#[utoipa::path(
    get,
    path = "/api/v1/templates/{name}/{version}/download",
    tag = "marketplace",
    operation_id = "download_template",
    summary = "Download a template version",
    params(
        ("name" = String, Path, description = "The package name"),
        ("version" = String, Path, description = "A semantic version such as 1.2.3"),
    ),
    responses(
        (status = 200, description = "The file; each download is counted", body = PackageFile, content_type = "application/gzip", headers(("X-Checksum" = String, description = "`sha256:` and the hex digest of the file"), ("Content-Disposition" = String, description = "`attachment` with the file name"))),
        (status = 404, description = "No such package or version (`NOT_FOUND`)", body = ErrorBody),
    ),
)]
pub async fn download_template(State(state): State<AppState>, Path((name, version)): Path<(String, String)>) -> ApiResult<Response> {
    download(&state, kind::TEMPLATE, &name, &version).await
}

#[utoipa::path(
    get,
    path = "/api/v1/scenarios/{name}/versions/{version}/download",
    tag = "marketplace",
    operation_id = "download_scenario",
    summary = "Download a scenario version",
    params(
        ("name" = String, Path, description = "The package name"),
        ("version" = String, Path, description = "A semantic version such as 1.2.3"),
    ),
    responses(
        (status = 200, description = "The file; each download is counted", body = PackageFile, content_type = "application/gzip", headers(("X-Checksum" = String, description = "`sha256:` and the hex digest of the file"), ("Content-Disposition" = String, description = "`attachment` with the file name"))),
        (status = 404, description = "No such package or version (`NOT_FOUND`)", body = ErrorBody),
    ),
)]
pub async fn download_scenario(State(state): State<AppState>, Path((name, version)): Path<(String, String)>) -> ApiResult<Response> {
    download(&state, kind::SCENARIO, &name, &version).await
}

#[derive(Deserialize, ToSchema)]
#[schema(as = PluginVerifyRequest)]
pub struct VerifyRequest {
    /// The new mark; default true.
    verified: Option<bool>,
}

/// Sets or clears the verified mark of a plugin. Only platform administrators (`admin_emails`
/// or accounts registered as administrators) may call it. The body is optional and defaults to
/// `{"verified": true}`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/plugins/{name}/verify",
    tag = "admin",
    operation_id = "verify_plugin",
    summary = "Verify a plugin",
    description = "Sets or clears the verified mark of a plugin. The body is optional and defaults to `{\"verified\": true}`.",
    params(
        ("name" = String, Path, description = "The package name"),
    ),
    request_body(content = Option<VerifyRequest>),
    responses(
        (status = 200, description = "The new verified mark", body = PluginVerification),
        (status = 400, description = "The body is not JSON (`INVALID_JSON`)", body = ErrorBody),
        (status = 403, description = "The caller is not a platform administrator (`FORBIDDEN`)", body = ErrorBody),
        (status = 404, description = "No such plugin (`NOT_FOUND`)", body = ErrorBody),
        (status = 413, description = "The body exceeds 1 MiB (1048576 bytes); `details.max_bytes` is the limit (`PAYLOAD_TOO_LARGE`)", body = ErrorBody),
    ),
    security(("bearer_jwt" = []), ("api_token" = [])),
)]
pub async fn verify_plugin(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiBody(body): ApiBody,
) -> ApiResult<Json<Value>> {
    let user = state.store.user_by_id(caller.user_id).await?;
    let is_admin = user.is_some_and(|user| {
        user.is_admin || state.config.admin_emails.iter().any(|email| email.trim().eq_ignore_ascii_case(&user.email))
    });
    if !is_admin {
        return Err(ApiError::Forbidden("verifying plugins requires a platform administrator account".to_owned()));
    }
    let request: VerifyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        VerifyRequest { verified: None }
    } else {
        serde_json::from_slice(&body).map_err(|error| ApiError::InvalidJson(error.to_string()))?
    };
    let verified = request.verified.unwrap_or(true);
    if !state.store.marketplace().set_verified(kind::PLUGIN, &name, verified).await? {
        return Err(ApiError::not_found(kind::PLUGIN, &name));
    }
    tracing::info!(plugin = %name, verified, user_id = %caller.user_id, "changed the verified mark of a plugin");
    Ok(Json(json!({ "name": name, "verified": verified })))
}

// ---------------------------------------------------------------------------------------------
// Deployment settings

/// Merges the settings of `template` (`name@version`) under `config`: a key of `config` wins,
/// and nested objects merge key by key.
pub async fn apply_template(state: &AppState, template: Option<&str>, config: Value) -> ApiResult<Value> {
    let Some(reference) = template else {
        return Ok(config);
    };
    let Some((name, version)) = reference.split_once('@') else {
        return Err(ApiError::validation("template", "must be `name@version`", Value::from(reference)));
    };
    let found = state.store.marketplace().version(kind::TEMPLATE, name, version).await?;
    let Some(found) = found else {
        return Err(ApiError::validation("template", format!("template {reference} not found"), Value::from(reference)));
    };
    let settings = found.manifest.as_ref().and_then(|manifest| manifest.get("settings")).cloned().unwrap_or(json!({}));
    Ok(merge(settings, config))
}

fn merge(base: Value, overlay: Value) -> Value {
    match (base, overlay) {
        (Value::Object(mut base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                let merged = match base.remove(&key) {
                    Some(existing) => merge(existing, value),
                    None => value,
                };
                base.insert(key, merged);
            }
            Value::Object(base)
        }
        (_, overlay) => overlay,
    }
}

/// Checks `config.plugins` (`[{"name", "version", "config"}]`): every plugin must be published
/// and implement the plugin world. Writes each plugin's `checksum` into its entry, which pins the
/// file the edges load.
pub async fn pin_plugins(state: &AppState, config: &mut Value) -> ApiResult<()> {
    let Some(plugins) = config.get_mut("plugins") else {
        return Ok(());
    };
    if plugins.is_null() {
        return Ok(());
    }
    let Some(entries) = plugins.as_array_mut() else {
        return Err(ApiError::validation("config_json", "`plugins` must be a list of {\"name\", \"version\", \"config\"} objects", None));
    };
    for (index, entry) in entries.iter_mut().enumerate() {
        let name = entry.get("name").and_then(Value::as_str).map(str::to_owned);
        let version = entry.get("version").and_then(Value::as_str).map(str::to_owned);
        let (Some(name), Some(version)) = (name, version) else {
            return Err(ApiError::validation(
                "config_json",
                format!("`plugins[{index}]` must have `name` and `version` strings"),
                Some(entry.clone()),
            ));
        };
        let Some(found) = state.store.marketplace().version(kind::PLUGIN, &name, &version).await? else {
            return Err(ApiError::validation(
                "config_json",
                format!("`plugins[{index}]`: plugin {name}@{version} not found in the marketplace"),
                Some(entry.clone()),
            ));
        };
        let Some(wasm) = storage(state).get(kind::PLUGIN, &found.sha256).await? else {
            return Err(ApiError::Internal(anyhow::anyhow!("the file of plugin {name}@{version} is missing from storage")));
        };
        let verdict = tokio::task::spawn_blocking(move || files::validate_plugin(&wasm))
            .await
            .map_err(|error| ApiError::Internal(anyhow::Error::new(error).context("the plugin validation task failed")))?;
        if let Err(reason) = verdict {
            return Err(ApiError::validation(
                "config_json",
                format!("`plugins[{index}]`: plugin {name}@{version} does not implement the plugin world: {reason}"),
                Some(entry.clone()),
            ));
        }
        if let Value::Object(object) = entry {
            object.insert("checksum".to_owned(), Value::from(format!("sha256:{}", found.sha256)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_lets_overlay_win() {
        let merged = merge(
            json!({"cors_enabled": true, "chaos": {"error_rate": 0.1, "latency_ms": 5}}),
            json!({"chaos": {"error_rate": 0.5}, "seed": 1}),
        );
        assert_eq!(merged, json!({"cors_enabled": true, "chaos": {"error_rate": 0.5, "latency_ms": 5}, "seed": 1}));
    }

    #[test]
    fn manifest_requires_kind_fields() {
        let template = json!({"name": "t", "version": "1.0.0", "description": "d", "category": "c", "settings": {}});
        assert!(validate_manifest(&template, kind::TEMPLATE).is_ok());
        assert!(validate_manifest(&template, kind::SCENARIO).is_err());
        let scenario = json!({"name": "s", "version": "1.0.0", "description": "d", "category": "c",
            "steps": [{"method": "GET", "path": "/pets"}]});
        assert!(validate_manifest(&scenario, kind::SCENARIO).is_ok());
        let bad_version = json!({"name": "s", "version": "1.0", "description": "d", "category": "c", "steps": []});
        assert!(validate_manifest(&bad_version, kind::SCENARIO).is_err());
    }

    #[test]
    fn template_settings_are_checked() {
        let template = |settings: Value| {
            json!({"name": "t", "version": "1.0.0", "description": "d", "category": "c", "settings": settings})
        };
        let cases = [
            (json!({"chaoss": {}}), "/config_json/chaoss"),
            (json!({"chaos": {"error_rate": 2}}), "/config_json/chaos/error_rate"),
            (json!({"chaos": {"fault": {"kind": "reset", "ratio": 1}}}), "/config_json/chaos/fault/ratio"),
            (json!({"proxy": {"upstream": "ftp://x"}}), "/config_json/proxy/upstream"),
            (json!({"plugins": [{"name": "a", "version": "1.0.0", "extra": 1}]}), "/config_json/plugins/0/extra"),
        ];
        for (settings, pointer) in cases {
            match validate_manifest(&template(settings.clone()), kind::TEMPLATE) {
                Err(ApiError::InvalidConfig { problems }) => assert_eq!(problems[0].pointer, pointer, "{settings}"),
                Err(other) => panic!("{settings}: unexpected error {other}"),
                Ok(_) => panic!("{settings} was accepted"),
            }
        }
        let chaos = json!({"chaos": {"error_rate": 0.1, "operations": ["listPets"]}});
        assert!(validate_manifest(&template(chaos), kind::TEMPLATE).is_ok());
    }
}
