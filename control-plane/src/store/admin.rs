//! Platform-wide counts for platform admins.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

#[derive(Debug, Clone, Default)]
pub struct PlatformStats {
    pub users: i64,
    pub organizations: i64,
    /// Deployments that are not deleted.
    pub deployments: i64,
    pub plugins: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Analytics {
    pub users_total: i64,
    pub users_new: i64,
    /// Users with at least one audit log entry in the range.
    pub users_active: i64,
    pub organizations_by_plan: BTreeMap<String, i64>,
    pub requests: i64,
    pub byok_organizations: i64,
    pub running_deployments: i64,
}

#[async_trait::async_trait]
pub trait AdminStore: Send + Sync {
    async fn platform_stats(&self) -> Result<PlatformStats, sqlx::Error>;
    /// Counts for the range `[start, end)`.
    async fn analytics(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Analytics, sqlx::Error>;
}

async fn count<'e, E, DB>(executor: E, sql: &'static str) -> Result<i64, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = DB>,
    DB: sqlx::Database,
    i64: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let row = sqlx::query(sql).fetch_one(executor).await?;
    row.try_get(0)
}

macro_rules! admin_store {
    ($module:ident) => {
        pub(crate) mod $module {
            use super::*;

            type Store = crate::store::sql::$module::SqlStore;

            #[async_trait::async_trait]
            impl AdminStore for Store {
                async fn platform_stats(&self) -> Result<PlatformStats, sqlx::Error> {
                    Ok(PlatformStats {
                        users: count(&self.pool, "SELECT COUNT(*) FROM users").await?,
                        organizations: count(&self.pool, "SELECT COUNT(*) FROM organizations").await?,
                        deployments: count(&self.pool, "SELECT COUNT(*) FROM deployments WHERE status <> 'deleted'").await?,
                        plugins: count(&self.pool, "SELECT COUNT(*) FROM marketplace_packages WHERE kind = 'plugin'").await?,
                    })
                }

                async fn analytics(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Analytics, sqlx::Error> {
                    let mut analytics = Analytics {
                        users_total: count(&self.pool, "SELECT COUNT(*) FROM users").await?,
                        byok_organizations: count(&self.pool, "SELECT COUNT(*) FROM byok_settings").await?,
                        running_deployments: count(
                            &self.pool,
                            "SELECT COUNT(*) FROM deployments WHERE status IN ('deploying', 'active', 'failed')",
                        )
                        .await?,
                        ..Analytics::default()
                    };
                    let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE created_at >= $1 AND created_at < $2")
                        .bind(start)
                        .bind(end)
                        .fetch_one(&self.pool)
                        .await?;
                    analytics.users_new = row.try_get("n")?;
                    let row = sqlx::query(
                        "SELECT COUNT(DISTINCT user_id) AS n FROM audit_logs WHERE user_id IS NOT NULL AND created_at >= $1 AND created_at < $2",
                    )
                    .bind(start)
                    .bind(end)
                    .fetch_one(&self.pool)
                    .await?;
                    analytics.users_active = row.try_get("n")?;
                    let rows = sqlx::query("SELECT plan, COUNT(*) AS n FROM organizations GROUP BY plan ORDER BY plan")
                        .fetch_all(&self.pool)
                        .await?;
                    for row in rows {
                        analytics.organizations_by_plan.insert(row.try_get("plan")?, row.try_get("n")?);
                    }
                    let start_day = start.timestamp().div_euclid(86_400);
                    let end_day = (end.timestamp() + 86_399).div_euclid(86_400);
                    let row = sqlx::query(
                        "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS n FROM org_usage_daily WHERE day >= $1 AND day < $2",
                    )
                    .bind(start_day)
                    .bind(end_day)
                    .fetch_one(&self.pool)
                    .await?;
                    analytics.requests = row.try_get("n")?;
                    Ok(analytics)
                }
            }
        }
    };
}

admin_store!(sqlite);
admin_store!(postgres);
