//! Marketplace persistence: plugins, templates and scenarios share one package table and one
//! version table, distinguished by `kind`.
//!
//! A package name belongs to the organization that first published it, and a version, once
//! published, never changes.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use super::now;

/// Package kinds as stored.
pub mod kind {
    pub const PLUGIN: &str = "plugin";
    pub const TEMPLATE: &str = "template";
    pub const SCENARIO: &str = "scenario";
}

/// A named package with the facts of its latest version.
#[derive(Debug, Clone)]
pub struct Package {
    pub kind: String,
    pub name: String,
    pub org_id: Uuid,
    /// Slug of the owning organization.
    pub author: String,
    pub description: String,
    pub category: String,
    pub verified: bool,
    pub latest_version: String,
    pub downloads_total: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One published version.
#[derive(Debug, Clone)]
pub struct PackageVersion {
    pub kind: String,
    pub name: String,
    pub version: String,
    pub description: String,
    /// Hex SHA-256 of the stored file.
    pub sha256: String,
    pub size_bytes: i64,
    pub manifest: Option<Value>,
    pub published_by: Uuid,
    pub published_at: DateTime<Utc>,
    pub downloads: i64,
}

/// Everything a publication writes.
pub struct NewVersion<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    /// A valid semantic version.
    pub version: &'a semver::Version,
    pub description: &'a str,
    pub category: &'a str,
    pub org_id: Uuid,
    pub author: &'a str,
    pub sha256: &'a str,
    pub size_bytes: i64,
    pub manifest: Option<&'a Value>,
    pub published_by: Uuid,
}

/// Reason a publication was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the name belongs to organization {owner}")]
    NotOwner { owner: String },
    #[error("the version is already published")]
    VersionExists,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Search filters and paging.
pub struct Search<'a> {
    pub kind: &'a str,
    /// Matched case-insensitively against name and description; empty matches everything.
    pub query: &'a str,
    /// Exact category; empty matches every category.
    pub category: &'a str,
    pub limit: i64,
    pub offset: i64,
}

#[async_trait::async_trait]
pub trait MarketplaceStore: Send + Sync {
    /// Publishes a version, creating the package on first publication, in one transaction.
    async fn publish(&self, version: &NewVersion<'_>) -> Result<(), PublishError>;
    /// Returns one page of matching packages, most downloaded first, and the number of matches.
    async fn search(&self, search: &Search<'_>) -> Result<(Vec<Package>, i64), sqlx::Error>;
    async fn package(&self, kind: &str, name: &str) -> Result<Option<Package>, sqlx::Error>;
    /// Returns every version of a package, newest publication first.
    async fn versions(&self, kind: &str, name: &str) -> Result<Vec<PackageVersion>, sqlx::Error>;
    async fn version(&self, kind: &str, name: &str, version: &str) -> Result<Option<PackageVersion>, sqlx::Error>;
    /// Adds one download to a version and its package. Returns false for an unknown version.
    async fn count_download(&self, kind: &str, name: &str, version: &str) -> Result<bool, sqlx::Error>;
    /// Sets the verified mark of a package. Returns false for an unknown package.
    async fn set_verified(&self, kind: &str, name: &str, verified: bool) -> Result<bool, sqlx::Error>;
    /// Sums the file sizes of every version of the organization's packages, in bytes.
    async fn org_storage_bytes(&self, org_id: Uuid) -> Result<i64, sqlx::Error>;
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern and wraps the text in `%`.
fn like_pattern(query: &str) -> String {
    let mut pattern = String::with_capacity(query.len() + 2);
    pattern.push('%');
    for c in query.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Returns true when `candidate` has greater semver precedence than `current`. An unparsable
/// `current` counts as lower.
fn is_newer(candidate: &semver::Version, current: &str) -> bool {
    semver::Version::parse(current).map_or(true, |current| candidate > &current)
}

/// The `WHERE` clause of a search: `$1` kind, `$2` LIKE pattern, `$3` category or empty.
macro_rules! search_filter {
    () => {
        " WHERE kind = $1 \
         AND ($2 = '%%' OR LOWER(name) LIKE $2 ESCAPE '\\' OR LOWER(description) LIKE $2 ESCAPE '\\') \
         AND ($3 = '' OR category = $3)"
    };
}

macro_rules! marketplace_store {
    ($module:ident, $row:ty, $begin:literal) => {
        mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;

            fn package(row: &$row) -> Result<Package, sqlx::Error> {
                Ok(Package {
                    kind: row.try_get("kind")?,
                    name: row.try_get("name")?,
                    org_id: row.try_get("org_id")?,
                    author: row.try_get("author")?,
                    description: row.try_get("description")?,
                    category: row.try_get("category")?,
                    verified: row.try_get("verified")?,
                    latest_version: row.try_get("latest_version")?,
                    downloads_total: row.try_get("downloads_total")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn version(row: &$row) -> Result<PackageVersion, sqlx::Error> {
                let manifest: Option<Json<Value>> = row.try_get("manifest")?;
                Ok(PackageVersion {
                    kind: row.try_get("kind")?,
                    name: row.try_get("name")?,
                    version: row.try_get("version")?,
                    description: row.try_get("description")?,
                    sha256: row.try_get("sha256")?,
                    size_bytes: row.try_get("size_bytes")?,
                    manifest: manifest.map(|json| json.0),
                    published_by: row.try_get("published_by")?,
                    published_at: row.try_get("published_at")?,
                    downloads: row.try_get("downloads")?,
                })
            }

            fn is_unique_violation(error: &sqlx::Error) -> bool {
                matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
            }

            #[async_trait::async_trait]
            impl MarketplaceStore for Store {
                async fn publish(&self, new: &NewVersion<'_>) -> Result<(), PublishError> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let timestamp = now();
                    let existing = sqlx::query(
                        "SELECT p.org_id, p.author, p.latest_version FROM marketplace_packages p \
                         WHERE p.kind = $1 AND p.name = $2",
                    )
                    .bind(new.kind)
                    .bind(new.name)
                    .fetch_optional(&mut *tx)
                    .await?;

                    let version_text = new.version.to_string();
                    match existing {
                        Some(row) => {
                            let owner: Uuid = row.try_get("org_id")?;
                            if owner != new.org_id {
                                let author: String = row.try_get("author")?;
                                return Err(PublishError::NotOwner { owner: author });
                            }
                            let latest: String = row.try_get("latest_version")?;
                            if is_newer(new.version, &latest) {
                                sqlx::query(
                                    "UPDATE marketplace_packages SET latest_version = $3, description = $4, \
                                     category = $5, updated_at = $6 WHERE kind = $1 AND name = $2",
                                )
                                .bind(new.kind)
                                .bind(new.name)
                                .bind(&version_text)
                                .bind(new.description)
                                .bind(new.category)
                                .bind(timestamp)
                                .execute(&mut *tx)
                                .await?;
                            }
                        }
                        None => {
                            sqlx::query(
                                "INSERT INTO marketplace_packages (kind, name, org_id, author, description, category, \
                                 latest_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                            )
                            .bind(new.kind)
                            .bind(new.name)
                            .bind(new.org_id)
                            .bind(new.author)
                            .bind(new.description)
                            .bind(new.category)
                            .bind(&version_text)
                            .bind(timestamp)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }

                    let inserted = sqlx::query(
                        "INSERT INTO marketplace_versions (kind, name, version, description, sha256, size_bytes, \
                         manifest, published_by, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(new.kind)
                    .bind(new.name)
                    .bind(&version_text)
                    .bind(new.description)
                    .bind(new.sha256)
                    .bind(new.size_bytes)
                    .bind(new.manifest.map(Json))
                    .bind(new.published_by)
                    .bind(timestamp)
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => {}
                        Err(error) if is_unique_violation(&error) => return Err(PublishError::VersionExists),
                        Err(error) => return Err(error.into()),
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn search(&self, search: &Search<'_>) -> Result<(Vec<Package>, i64), sqlx::Error> {
                    let pattern = like_pattern(search.query);
                    let rows = sqlx::query(concat!(
                        "SELECT * FROM marketplace_packages",
                        search_filter!(),
                        " ORDER BY downloads_total DESC, name LIMIT $4 OFFSET $5"
                    ))
                    .bind(search.kind)
                    .bind(&pattern)
                    .bind(search.category)
                    .bind(search.limit)
                    .bind(search.offset)
                    .fetch_all(&self.pool)
                    .await?;
                    let total: i64 = sqlx::query(concat!("SELECT COUNT(*) AS total FROM marketplace_packages", search_filter!()))
                        .bind(search.kind)
                        .bind(&pattern)
                        .bind(search.category)
                        .fetch_one(&self.pool)
                        .await?
                        .try_get("total")?;
                    let packages = rows.iter().map(package).collect::<Result<_, _>>()?;
                    Ok((packages, total))
                }

                async fn package(&self, kind: &str, name: &str) -> Result<Option<Package>, sqlx::Error> {
                    let row = sqlx::query("SELECT * FROM marketplace_packages WHERE kind = $1 AND name = $2")
                        .bind(kind)
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(package).transpose()
                }

                async fn versions(&self, kind: &str, name: &str) -> Result<Vec<PackageVersion>, sqlx::Error> {
                    let rows = sqlx::query(
                        "SELECT * FROM marketplace_versions WHERE kind = $1 AND name = $2 ORDER BY published_at DESC, version DESC",
                    )
                    .bind(kind)
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(version).collect()
                }

                async fn version(&self, kind: &str, name: &str, number: &str) -> Result<Option<PackageVersion>, sqlx::Error> {
                    let row = sqlx::query("SELECT * FROM marketplace_versions WHERE kind = $1 AND name = $2 AND version = $3")
                        .bind(kind)
                        .bind(name)
                        .bind(number)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(version).transpose()
                }

                async fn count_download(&self, kind: &str, name: &str, number: &str) -> Result<bool, sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let updated = sqlx::query(
                        "UPDATE marketplace_versions SET downloads = downloads + 1 WHERE kind = $1 AND name = $2 AND version = $3",
                    )
                    .bind(kind)
                    .bind(name)
                    .bind(number)
                    .execute(&mut *tx)
                    .await?;
                    if updated.rows_affected() == 0 {
                        return Ok(false);
                    }
                    sqlx::query("UPDATE marketplace_packages SET downloads_total = downloads_total + 1 WHERE kind = $1 AND name = $2")
                        .bind(kind)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn set_verified(&self, kind: &str, name: &str, verified: bool) -> Result<bool, sqlx::Error> {
                    let updated = sqlx::query("UPDATE marketplace_packages SET verified = $3 WHERE kind = $1 AND name = $2")
                        .bind(kind)
                        .bind(name)
                        .bind(verified)
                        .execute(&self.pool)
                        .await?;
                    Ok(updated.rows_affected() > 0)
                }

                async fn org_storage_bytes(&self, org_id: Uuid) -> Result<i64, sqlx::Error> {
                    // PostgreSQL sums BIGINT into NUMERIC, so the sum is cast back.
                    let row = sqlx::query(
                        "SELECT CAST(COALESCE(SUM(v.size_bytes), 0) AS BIGINT) AS bytes FROM marketplace_versions v \
                         JOIN marketplace_packages p ON p.kind = v.kind AND p.name = v.name WHERE p.org_id = $1",
                    )
                    .bind(org_id)
                    .fetch_one(&self.pool)
                    .await?;
                    row.try_get("bytes")
                }
            }
        }
    };
}

marketplace_store!(sqlite, sqlx::sqlite::SqliteRow, "BEGIN IMMEDIATE");
marketplace_store!(postgres, sqlx::postgres::PgRow, "BEGIN");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("A_b%c\\"), "%a\\_b\\%c\\\\%");
        assert_eq!(like_pattern(""), "%%");
    }

    #[test]
    fn is_newer_compares_precedence() {
        let version = semver::Version::parse("1.10.0").unwrap();
        assert!(is_newer(&version, "1.9.0"));
        assert!(!is_newer(&version, "1.10.0"));
        assert!(!is_newer(&version, "2.0.0-alpha"));
    }
}
