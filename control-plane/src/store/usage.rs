//! Telemetry storage: per-deployment per-minute metrics, per-organization daily request counts
//! and the newest request logs of each deployment.
//!
//! Several edges report for the same deployment and minute, so every write adds to the stored
//! counts (`INSERT … ON CONFLICT … DO UPDATE SET n = n + excluded.n`) and needs no read first.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mockforge_snapshot::TelemetryBatch;
use sqlx::Row;
use uuid::Uuid;

use super::now;

/// Sums of a deployment's metrics over a time range.
#[derive(Debug, Clone, Default)]
pub struct MetricsTotals {
    pub requests: u64,
    pub latency_ms_sum: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub status_counts: BTreeMap<u16, u64>,
}

/// One stored request log.
#[derive(Debug, Clone)]
pub struct RequestLogEntry {
    pub id: Uuid,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub latency_ms: f64,
    pub request_id: String,
    pub created_at: DateTime<Utc>,
    /// The edge's explanation of the outcome, for example a failed plugin, when it sent one.
    pub message: Option<String>,
}

/// Request counts of an organization.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrgUsage {
    pub requests: u64,
    pub bytes_out: u64,
}

#[async_trait::async_trait]
pub trait UsageStore: Send + Sync {
    /// Adds one batch in one transaction, keeping at most `log_limit` request logs per
    /// deployment. Returns `false`, changing nothing, when the same node already reported the
    /// same window. Usage of unknown deployments is skipped.
    async fn store_telemetry(&self, batch: &TelemetryBatch, log_limit: i64) -> Result<bool, sqlx::Error>;

    /// Sums a deployment's metrics over the minutes `[from_minute, to_minute)` (Unix seconds).
    async fn metrics(
        &self,
        deployment_id: Uuid,
        org_id: Uuid,
        from_minute: i64,
        to_minute: i64,
    ) -> Result<MetricsTotals, sqlx::Error>;

    /// Returns a deployment's request logs, newest first. `level` selects `info` (status below
    /// 400), `warn` (4xx) or `error` (5xx).
    async fn request_logs(
        &self,
        deployment_id: Uuid,
        org_id: Uuid,
        level: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RequestLogEntry>, sqlx::Error>;

    /// Sums an organization's requests over the minutes that start in `[from, to)` (Unix
    /// seconds), so periods need not start at midnight.
    async fn org_usage(&self, org_id: Uuid, from: i64, to: i64) -> Result<OrgUsage, sqlx::Error>;
}

/// The status range of a log level.
fn status_range(level: Option<&str>) -> (i32, i32) {
    match level {
        Some("info") => (0, 399),
        Some("warn") => (400, 499),
        Some("error") => (500, 999),
        _ => (0, 999),
    }
}

macro_rules! usage_store {
    ($module:ident, $db:ty, $begin:literal) => {
        pub(crate) mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;

            #[async_trait::async_trait]
            impl UsageStore for Store {
                async fn store_telemetry(&self, batch: &TelemetryBatch, log_limit: i64) -> Result<bool, sqlx::Error> {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let inserted = sqlx::query(
                        "INSERT INTO telemetry_batches (node, window_start_unix_ms, window_end_unix_ms, received_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(&batch.node)
                    .bind(batch.window_start_unix_ms)
                    .bind(batch.window_end_unix_ms)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                    if inserted.rows_affected() == 0 {
                        return Ok(false);
                    }

                    // A window's usage is counted in the minute and the day in which it starts.
                    let start_seconds = batch.window_start_unix_ms.div_euclid(1000);
                    let minute = start_seconds - start_seconds.rem_euclid(60);
                    let day = start_seconds.div_euclid(86_400);
                    let mut owners: BTreeMap<Uuid, Option<Uuid>> = BTreeMap::new();
                    let ids = batch.usage.iter().map(|usage| usage.deployment_id).chain(batch.logs.iter().map(|log| log.deployment_id));
                    for id in ids {
                        if owners.contains_key(&id) {
                            continue;
                        }
                        // The owner comes from the database, not from the edge's report.
                        let row = sqlx::query("SELECT org_id FROM deployments WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await?;
                        let owner = row.map(|row| row.try_get::<Uuid, _>("org_id")).transpose()?;
                        owners.insert(id, owner);
                    }

                    for usage in &batch.usage {
                        let Some(org_id) = owners.get(&usage.deployment_id).copied().flatten() else {
                            tracing::debug!(deployment_id = %usage.deployment_id, node = %batch.node, "skipped usage of an unknown deployment");
                            continue;
                        };
                        sqlx::query(
                            "INSERT INTO deployment_metrics (deployment_id, org_id, minute, requests, latency_ms_sum, bytes_in, bytes_out) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (deployment_id, minute) DO UPDATE SET \
                             requests = deployment_metrics.requests + excluded.requests, \
                             latency_ms_sum = deployment_metrics.latency_ms_sum + excluded.latency_ms_sum, \
                             bytes_in = deployment_metrics.bytes_in + excluded.bytes_in, \
                             bytes_out = deployment_metrics.bytes_out + excluded.bytes_out",
                        )
                        .bind(usage.deployment_id)
                        .bind(org_id)
                        .bind(minute)
                        .bind(usage.requests as i64)
                        .bind(usage.latency_ms_sum)
                        .bind(usage.bytes_in as i64)
                        .bind(usage.bytes_out as i64)
                        .execute(&mut *tx)
                        .await?;
                        for (status, count) in &usage.status_counts {
                            sqlx::query(
                                "INSERT INTO deployment_status_counts (deployment_id, minute, status, count) VALUES ($1, $2, $3, $4) \
                                 ON CONFLICT (deployment_id, minute, status) DO UPDATE SET \
                                 count = deployment_status_counts.count + excluded.count",
                            )
                            .bind(usage.deployment_id)
                            .bind(minute)
                            .bind(i32::from(*status))
                            .bind(*count as i64)
                            .execute(&mut *tx)
                            .await?;
                        }
                        for (bucket, count) in usage.latency_buckets.iter().enumerate().filter(|(_, count)| **count > 0) {
                            sqlx::query(
                                "INSERT INTO deployment_latency_buckets (deployment_id, minute, bucket, count) VALUES ($1, $2, $3, $4) \
                                 ON CONFLICT (deployment_id, minute, bucket) DO UPDATE SET \
                                 count = deployment_latency_buckets.count + excluded.count",
                            )
                            .bind(usage.deployment_id)
                            .bind(minute)
                            .bind(bucket as i32)
                            .bind(*count as i64)
                            .execute(&mut *tx)
                            .await?;
                        }
                        sqlx::query(
                            "INSERT INTO org_usage_daily (org_id, day, requests, bytes_out) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (org_id, day) DO UPDATE SET \
                             requests = org_usage_daily.requests + excluded.requests, \
                             bytes_out = org_usage_daily.bytes_out + excluded.bytes_out",
                        )
                        .bind(org_id)
                        .bind(day)
                        .bind(usage.requests as i64)
                        .bind(usage.bytes_out as i64)
                        .execute(&mut *tx)
                        .await?;
                    }

                    let mut logged: Vec<Uuid> = Vec::new();
                    for log in &batch.logs {
                        let Some(org_id) = owners.get(&log.deployment_id).copied().flatten() else { continue };
                        let at = DateTime::<Utc>::from_timestamp_millis(log.at_unix_ms).unwrap_or_else(now);
                        sqlx::query(
                            "INSERT INTO request_logs (id, deployment_id, org_id, method, path, status, latency_ms, request_id, created_at, message) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        )
                        .bind(Uuid::new_v4())
                        .bind(log.deployment_id)
                        .bind(org_id)
                        .bind(&log.method)
                        .bind(&log.path)
                        .bind(i32::from(log.status))
                        .bind(log.latency_ms)
                        .bind(&log.request_id)
                        .bind(at)
                        .bind(log.message.as_deref())
                        .execute(&mut *tx)
                        .await?;
                        if !logged.contains(&log.deployment_id) {
                            logged.push(log.deployment_id);
                        }
                    }
                    for deployment_id in logged {
                        sqlx::query(
                            "DELETE FROM request_logs WHERE deployment_id = $1 AND seq <= \
                             (SELECT seq FROM request_logs WHERE deployment_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
                        )
                        .bind(deployment_id)
                        .bind(log_limit)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(true)
                }

                async fn metrics(
                    &self,
                    deployment_id: Uuid,
                    org_id: Uuid,
                    from_minute: i64,
                    to_minute: i64,
                ) -> Result<MetricsTotals, sqlx::Error> {
                    let row = sqlx::query(
                        "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests, \
                         CAST(COALESCE(SUM(latency_ms_sum), 0) AS DOUBLE PRECISION) AS latency_ms_sum, \
                         CAST(COALESCE(SUM(bytes_in), 0) AS BIGINT) AS bytes_in, \
                         CAST(COALESCE(SUM(bytes_out), 0) AS BIGINT) AS bytes_out \
                         FROM deployment_metrics WHERE deployment_id = $1 AND org_id = $2 AND minute >= $3 AND minute < $4",
                    )
                    .bind(deployment_id)
                    .bind(org_id)
                    .bind(from_minute)
                    .bind(to_minute)
                    .fetch_one(&self.pool)
                    .await?;
                    let mut totals = MetricsTotals {
                        requests: row.try_get::<i64, _>("requests")? as u64,
                        latency_ms_sum: row.try_get("latency_ms_sum")?,
                        bytes_in: row.try_get::<i64, _>("bytes_in")? as u64,
                        bytes_out: row.try_get::<i64, _>("bytes_out")? as u64,
                        status_counts: BTreeMap::new(),
                    };
                    let rows = sqlx::query(
                        "SELECT status, CAST(SUM(count) AS BIGINT) AS n FROM deployment_status_counts \
                         WHERE deployment_id = $1 AND minute >= $3 AND minute < $4 \
                         AND deployment_id IN (SELECT id FROM deployments WHERE id = $1 AND org_id = $2) \
                         GROUP BY status ORDER BY status",
                    )
                    .bind(deployment_id)
                    .bind(org_id)
                    .bind(from_minute)
                    .bind(to_minute)
                    .fetch_all(&self.pool)
                    .await?;
                    for row in rows {
                        let status: i32 = row.try_get("status")?;
                        let count: i64 = row.try_get("n")?;
                        totals.status_counts.insert(status as u16, count as u64);
                    }
                    Ok(totals)
                }

                async fn request_logs(
                    &self,
                    deployment_id: Uuid,
                    org_id: Uuid,
                    level: Option<&str>,
                    limit: i64,
                ) -> Result<Vec<RequestLogEntry>, sqlx::Error> {
                    let (lowest, highest) = status_range(level);
                    let rows = sqlx::query(
                        "SELECT id, method, path, status, latency_ms, request_id, created_at, message FROM request_logs \
                         WHERE deployment_id = $1 AND org_id = $2 AND status >= $3 AND status <= $4 \
                         ORDER BY created_at DESC, seq DESC LIMIT $5",
                    )
                    .bind(deployment_id)
                    .bind(org_id)
                    .bind(lowest)
                    .bind(highest)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(RequestLogEntry {
                                id: row.try_get("id")?,
                                method: row.try_get("method")?,
                                path: row.try_get("path")?,
                                status: row.try_get::<i32, _>("status")? as u16,
                                latency_ms: row.try_get("latency_ms")?,
                                request_id: row.try_get("request_id")?,
                                created_at: row.try_get("created_at")?,
                                message: row.try_get("message")?,
                            })
                        })
                        .collect()
                }

                async fn org_usage(&self, org_id: Uuid, from: i64, to: i64) -> Result<OrgUsage, sqlx::Error> {
                    let row = sqlx::query(
                        "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests, \
                         CAST(COALESCE(SUM(bytes_out), 0) AS BIGINT) AS bytes_out \
                         FROM deployment_metrics WHERE org_id = $1 AND minute >= $2 AND minute < $3",
                    )
                    .bind(org_id)
                    .bind(from)
                    .bind(to)
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(OrgUsage {
                        requests: row.try_get::<i64, _>("requests")? as u64,
                        bytes_out: row.try_get::<i64, _>("bytes_out")? as u64,
                    })
                }
            }
        }
    };
}

usage_store!(sqlite, sqlx::Sqlite, "BEGIN IMMEDIATE");
usage_store!(postgres, sqlx::Postgres, "BEGIN");
