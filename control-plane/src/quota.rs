//! The storage quota of an organization (`max_storage_bytes` of its plan or of its limit
//! overrides). An organization's storage is the sum of the
//! distinct OpenAPI documents of its deployments (deleted ones excluded) and the files of every
//! version of its marketplace packages.

use std::collections::BTreeSet;

use mockforge_snapshot::PlanTable;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::Organization;

/// Returns the storage quota of `org` in bytes: its limit override when a platform admin set
/// one, else its plan's quota. `None` is unlimited, and an unknown plan gets the free plan's
/// quota.
pub fn storage_limit(plans: &PlanTable, org: &Organization) -> Option<u64> {
    org.effective_limits(plans).max_storage_bytes
}

/// Converts bytes to GiB (2^30 bytes), as an integer when the division is exact.
pub fn gibibytes(bytes: u64) -> serde_json::Value {
    const GIB: u64 = 1024 * 1024 * 1024;
    if bytes % GIB == 0 {
        serde_json::Value::from(bytes / GIB)
    } else {
        serde_json::Value::from(bytes as f64 / GIB as f64)
    }
}

/// Returns the hex SHA-256 of the OpenAPI documents of the organization's deployments.
async fn document_hashes(state: &AppState, org_id: Uuid) -> ApiResult<BTreeSet<String>> {
    let deployments = state.store.deployments(org_id, None, None).await?;
    Ok(deployments.into_iter().map(|deployment| deployment.document_sha256).collect())
}

/// Returns the bytes the organization stores.
pub async fn storage_bytes(state: &AppState, org_id: Uuid) -> ApiResult<u64> {
    let mut total = 0;
    for sha256 in document_hashes(state, org_id).await? {
        total += state.artifacts.size(&sha256).await?.unwrap_or(0);
    }
    let packages = state.store.marketplace().org_storage_bytes(org_id).await?;
    Ok(total + u64::try_from(packages).unwrap_or(0))
}

/// Rejects an upload of `upload_bytes` with 403 `STORAGE_QUOTA_EXCEEDED` when it would take the
/// organization over its plan's storage quota. Call it before anything of the upload is written.
// NOTE: the check runs outside the transaction that records the upload, so concurrent uploads
// can together exceed the quota by up to their own size.
pub async fn check_upload(state: &AppState, org: &Organization, upload_bytes: u64) -> ApiResult<()> {
    let Some(limit_bytes) = storage_limit(&state.config.plans, org) else {
        return Ok(());
    };
    let used_bytes = storage_bytes(state, org.id).await?;
    if used_bytes.saturating_add(upload_bytes) <= limit_bytes {
        return Ok(());
    }
    tracing::info!(
        org_id = %org.id,
        plan = %org.plan,
        used_bytes,
        limit_bytes,
        upload_bytes,
        "rejected an upload over the storage quota"
    );
    let overridden = org.limit_overrides.as_ref().is_some_and(|overrides| overrides.max_storage_bytes.is_some());
    let (message, limit_source) = if overridden {
        let message = format!(
            "storing {upload_bytes} more bytes would exceed the storage quota of organization {} (a limit set by a \
             platform admin): {used_bytes} of {limit_bytes} bytes are used; delete deployments first",
            org.slug
        );
        (message, "organization")
    } else {
        let message = format!(
            "storing {upload_bytes} more bytes would exceed the storage quota of the {} plan: {used_bytes} of \
             {limit_bytes} bytes are used; delete deployments or upgrade the plan",
            org.plan
        );
        (message, "plan")
    };
    Err(ApiError::StorageQuotaExceeded { message, plan: org.plan.clone(), limit_source, used_bytes, limit_bytes, upload_bytes })
}

/// Checks the upload of an OpenAPI document like [`check_upload`]. A document that the
/// organization's deployments already use adds no storage and always passes.
pub async fn check_document_upload(state: &AppState, org: &Organization, document: &str) -> ApiResult<()> {
    if storage_limit(&state.config.plans, org).is_none() {
        return Ok(());
    }
    let sha256 = hex::encode(Sha256::digest(document.as_bytes()));
    if document_hashes(state, org.id).await?.contains(&sha256) {
        return Ok(());
    }
    check_upload(state, org, document.len() as u64).await
}

#[cfg(test)]
mod tests {
    use mockforge_snapshot::PlanLimits;

    use super::*;

    #[test]
    fn gibibytes_are_exact_when_whole() {
        assert_eq!(gibibytes(21_474_836_480), serde_json::json!(20));
        assert_eq!(gibibytes(104_857_600), serde_json::json!(0.09765625));
    }

    fn organization(plan: &str, limit_overrides: Option<PlanLimits>) -> Organization {
        Organization {
            id: Uuid::nil(),
            name: "acme".to_owned(),
            slug: "acme".to_owned(),
            plan: plan.to_owned(),
            owner_id: Uuid::nil(),
            created_at: chrono::Utc::now(),
            limit_overrides,
        }
    }

    #[test]
    fn unknown_plan_gets_free_quota() {
        let plans = PlanTable::default();
        assert_eq!(storage_limit(&plans, &organization("enterprise", None)), storage_limit(&plans, &organization("free", None)));
        assert_eq!(storage_limit(&plans, &organization("pro", None)), Some(21_474_836_480));
    }

    #[test]
    fn override_replaces_plan_quota() {
        let plans = PlanTable::default();
        let overrides = PlanLimits { max_storage_bytes: Some(4096), ..PlanLimits::default() };
        assert_eq!(storage_limit(&plans, &organization("pro", Some(overrides))), Some(4096));
        let other_key = PlanLimits { max_deployments: Some(9), ..PlanLimits::default() };
        assert_eq!(storage_limit(&plans, &organization("pro", Some(other_key))), Some(21_474_836_480));
    }
}
