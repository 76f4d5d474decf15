//! API rate limits: fixed one-minute windows, counted in Redis when configured (so replicas share
//! the counts) and in memory otherwise.
//!
//! Authenticated requests count against their organization with the limit of its plan, and
//! requests without valid credentials against the client IP address. Every `/api/` response
//! carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix seconds
//! at which the window ends). A request over the limit gets 429 with `Retry-After`.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Length of one counting window in seconds.
pub const WINDOW_SECONDS: u64 = 60;
/// In-memory counters kept before stale windows are dropped.
const MEMORY_ENTRIES_MAX: usize = 10_000;

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub limit: u64,
    pub remaining: u64,
    /// Unix seconds at which the current window ends.
    pub reset: u64,
    pub allowed: bool,
}

/// Request counters per key and window.
pub struct RateLimiter {
    redis: Option<redis::aio::ConnectionManager>,
    memory: DashMap<String, (u64, u64)>,
}

impl RateLimiter {
    pub fn new(redis: Option<redis::aio::ConnectionManager>) -> RateLimiter {
        RateLimiter { redis, memory: DashMap::new() }
    }

    /// Counts one request for `key` and decides whether it is within `limit` per window.
    pub async fn check(&self, key: &str, limit: u64) -> Decision {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or_default();
        let window = now / WINDOW_SECONDS;
        let reset = (window + 1) * WINDOW_SECONDS;
        let count = match &self.redis {
            Some(redis) => match count_in_redis(redis.clone(), key, window).await {
                Ok(count) => count,
                Err(error) => {
                    // Counting locally keeps the API available while Redis is down, at the
                    // cost of each replica counting on its own.
                    tracing::warn!(%error, "failed to count a request in Redis; counting in memory");
                    self.count_in_memory(key, window)
                }
            },
            None => self.count_in_memory(key, window),
        };
        Decision { limit, remaining: limit.saturating_sub(count), reset, allowed: count <= limit }
    }

    fn count_in_memory(&self, key: &str, window: u64) -> u64 {
        if self.memory.len() > MEMORY_ENTRIES_MAX {
            self.memory.retain(|_, (entry_window, _)| *entry_window == window);
        }
        let mut entry = self.memory.entry(key.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 += 1;
        entry.1
    }
}

async fn count_in_redis(mut redis: redis::aio::ConnectionManager, key: &str, window: u64) -> redis::RedisResult<u64> {
    let key = format!("mockforge:ratelimit:{key}:{window}");
    // INCR and EXPIRE in one MULTI block, so no counter is left without an expiry.
    let (count, _): (u64, i64) = redis::pipe()
        .atomic()
        .incr(&key, 1u64)
        .expire(&key, (2 * WINDOW_SECONDS) as i64)
        .query_async(&mut redis)
        .await?;
    Ok(count)
}

fn set_headers(headers: &mut HeaderMap, decision: &Decision) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(decision.reset));
}

/// Returns the per-minute API limit of an organization on `plan`. An unknown plan gets the free
/// plan's limits.
// NOTE: a `requests_per_minute` limit override of the organization applies to its mocks on the
// edges, not to this API limit.
pub fn plan_limit(state: &AppState, plan: &str) -> u64 {
    state
        .config
        .plans
        .effective_limits(plan, None)
        .requests_per_minute
        .unwrap_or(state.config.default_api_requests_per_minute)
}

/// Middleware that counts every `/api/` request and rejects those over the limit. An
/// authenticated caller is stored in the request extensions, so the handler does not
/// authenticate again. Paths outside `/api/` and the Stripe webhook are not limited.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Stripe delivers webhooks in bursts from a few addresses, and each one is signed.
    let path = request.uri().path();
    if !path.starts_with("/api/") || path == "/api/v1/billing/webhook" {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let mut key = None;
    if parts.headers.contains_key(axum::http::header::AUTHORIZATION) {
        // A failed authentication counts against the IP address, and the handler returns the
        // authentication error.
        if let Ok(caller) = Caller::from_request_parts(&mut parts, &state).await {
            key = Some((format!("org:{}", caller.org.id), plan_limit(&state, &caller.org.plan)));
            parts.extensions.insert(caller);
        }
    }
    let (key, limit) = key.unwrap_or_else(|| {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip().to_string())
            .unwrap_or_else(|| "unknown".to_owned());
        (format!("ip:{ip}"), state.config.anonymous_requests_per_minute)
    });

    let decision = state.rate_limiter.check(&key, limit).await;
    let mut response = if decision.allowed {
        next.run(Request::from_parts(parts, body)).await
    } else {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or_default();
        let retry_after = decision.reset.saturating_sub(now).max(1);
        tracing::info!(%key, limit, "rejected a request over the rate limit");
        ApiError::RateLimited {
            message: format!("rate limit of {limit} requests per minute exceeded; retry in {retry_after} seconds"),
            limit,
            retry_after,
        }
        .into_response()
    };
    set_headers(response.headers_mut(), &decision);
    response
}
