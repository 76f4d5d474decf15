//! Request forms and response bodies of the marketplace routes.
//!
//! Handlers read multipart forms field by field and build responses with `serde_json::json!`,
//! so the structs exist for the document only.

use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa::ToSchema;

/// Multipart form that publishes a plugin version.
#[derive(ToSchema)]
pub struct PublishPluginForm {
    /// 1 to 63 characters of a-z, 0-9 and '-'.
    pub name: String,
    /// A semantic version such as 1.2.3.
    pub version: String,
    /// At most 2000 characters.
    pub description: Option<String>,
    /// 1 to 50 characters of a-z, 0-9 and '-'.
    pub category: String,
    /// A WebAssembly component that implements the MockForge plugin world. The maximum size
    /// depends on the organization's plan.
    #[schema(value_type = String, format = Binary)]
    pub wasm_file: Vec<u8>,
}

/// Multipart form that publishes a template or scenario version.
#[derive(ToSchema)]
pub struct PublishPackageForm {
    /// JSON text with `name`, `version`, `description` and `category` strings. A template also
    /// has `settings` (deployment settings) and a scenario has a non-empty `steps` list of
    /// objects with `method` and `path`.
    pub manifest: String,
    /// A tar.gz archive. The maximum size depends on the organization's plan.
    #[schema(value_type = String, format = Binary)]
    pub package: Vec<u8>,
}

#[derive(ToSchema)]
pub struct Published {
    pub name: String,
    pub version: String,
    /// `sha256:` and the hex digest of the file.
    pub checksum: String,
    pub message: String,
}

/// A package in search results.
#[derive(ToSchema)]
pub struct PackageSummary {
    pub name: String,
    /// The latest version.
    pub version: String,
    pub description: String,
    pub category: String,
    /// Slug of the publishing organization.
    pub author: String,
    pub downloads: i64,
    /// Always `null`: ratings are not collected yet.
    pub rating: Option<f64>,
    pub verified: bool,
}

/// Search results: `total` matches, of which `limit` from `offset` are returned.
#[derive(ToSchema)]
pub struct PluginSearchResults {
    pub plugins: Vec<PackageSummary>,
    pub total: i64,
}

/// Search results: `total` matches, of which `limit` from `offset` are returned.
#[derive(ToSchema)]
pub struct TemplateSearchResults {
    pub templates: Vec<PackageSummary>,
    pub total: i64,
}

/// Search results: `total` matches, of which `limit` from `offset` are returned.
#[derive(ToSchema)]
pub struct ScenarioSearchResults {
    pub scenarios: Vec<PackageSummary>,
    pub total: i64,
}

#[derive(ToSchema)]
pub struct PackageDetail {
    pub name: String,
    pub description: String,
    pub category: String,
    pub author: String,
    pub latest_version: String,
    pub downloads_total: i64,
    /// Always `null`: ratings are not collected yet.
    pub rating_avg: Option<f64>,
    pub rating_count: i64,
    pub verified: bool,
    pub versions: Vec<PackageVersionSummary>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct PackageVersionSummary {
    pub version: String,
    pub published_at: DateTime<Utc>,
    pub downloads: i64,
}

#[derive(ToSchema)]
pub struct PackageVersionDetail {
    pub name: String,
    pub version: String,
    pub description: String,
    /// The API path that downloads the file.
    pub download_url: String,
    /// `sha256:` and the hex digest of the file.
    pub checksum: String,
    pub size_bytes: i64,
    pub downloads: i64,
    pub published_at: DateTime<Utc>,
    /// Templates and scenarios only: the published manifest.
    #[schema(value_type = Option<Object>)]
    pub manifest: Option<Value>,
}

/// The bytes of a downloaded plugin or package.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct PackageFile(pub Vec<u8>);

#[derive(ToSchema)]
pub struct PluginVerification {
    pub name: String,
    pub verified: bool,
}
