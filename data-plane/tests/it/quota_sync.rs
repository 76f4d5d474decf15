//! The 30-day quota shared by several edges through Redis. The tests run when
//! `MOCKFORGE_TEST_REDIS_URL` is set, and fail when that Redis is unreachable.
//!
//! Each test uses a random organization id, so its count keys never collide with those of
//! parallel runs.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mockforge_edge::quota_sync::{QuotaSyncSettings, DEFAULT_KEY_PREFIX};
use mockforge_edge::EdgeConfig;
use mockforge_snapshot::{DeploymentRecord, PlanLimits};
use redis::aio::MultiplexedConnection;
use reqwest::StatusCode;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::support::{free_plan, json_body, record, test_config, FakeFeed, TestEdge, PETSTORE};

/// Flush interval of the test edges.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Time after which every edge has flushed and read the totals at least once: several flush
/// intervals, because the test machine may be busy.
const SETTLE: Duration = Duration::from_millis(500);
/// Quota of the test plan.
const QUOTA: u64 = 20;
const DAY: i64 = 24 * 60 * 60;

fn redis_url() -> Option<String> {
    std::env::var("MOCKFORGE_TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Connects to the test Redis, failing the test when it is unreachable.
async fn connect(url: &str) -> MultiplexedConnection {
    let client =
        redis::Client::open(url).expect("MOCKFORGE_TEST_REDIS_URL is not a valid Redis URL");
    let connected = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await;
    let mut connection = connected
        .expect("MOCKFORGE_TEST_REDIS_URL is set but connecting to Redis timed out")
        .expect("MOCKFORGE_TEST_REDIS_URL is set but Redis is unreachable");
    let pong: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(pong, "PONG");
    connection
}

/// One organization on a plan of [`QUOTA`] requests per 30 days, with a billing period that
/// started 10 days ago.
struct Tenant {
    record: DeploymentRecord,
    period_start: i64,
    key: String,
}

impl Tenant {
    fn new() -> Tenant {
        let period_start = unix_now() - 10 * DAY;
        let mut record = record("acme", "petstore", PETSTORE);
        record.org_id = Uuid::new_v4();
        record.period_start = Some(period_start);
        let key = format!("{DEFAULT_KEY_PREFIX}:{}:{period_start}", record.org_id);
        Tenant {
            record,
            period_start,
            key,
        }
    }

    fn period_end(&self) -> u64 {
        (self.period_start + 30 * DAY) as u64
    }
}

/// A test edge that flushes its counts to `redis_url`.
struct SyncedEdge {
    edge: TestEdge,
    sync: JoinHandle<()>,
    client: reqwest::Client,
    url: String,
}

impl SyncedEdge {
    async fn start(tenant: &Tenant, redis_url: &str) -> SyncedEdge {
        let config = EdgeConfig {
            plans: free_plan(PlanLimits {
                requests_per_30d: Some(QUOTA),
                ..PlanLimits::default()
            }),
            ..test_config()
        };
        let edge = TestEdge::start_with(FakeFeed::new([tenant.record.clone()]), config).await;
        let settings = QuotaSyncSettings {
            flush_interval: FLUSH_INTERVAL,
            ..QuotaSyncSettings::new(redis_url)
        };
        let syncing = edge.edge.clone();
        let sync = tokio::spawn(async move { syncing.sync_quotas(settings).await });
        let client = edge.client();
        let url = edge.url("acme.localhost", "/petstore/pets");
        SyncedEdge {
            edge,
            sync,
            client,
            url,
        }
    }

    async fn get(&self) -> reqwest::Response {
        self.client.get(&self.url).send().await.unwrap()
    }

    /// Sends one request that must be admitted and returns its `X-RateLimit-Remaining`.
    async fn admitted_remaining(&self, tenant: &Tenant) -> u64 {
        let response = self.get().await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_u64(&response, "x-ratelimit-limit"), QUOTA);
        assert_eq!(
            header_u64(&response, "x-ratelimit-reset"),
            tenant.period_end()
        );
        header_u64(&response, "x-ratelimit-remaining")
    }

    /// Shuts the edge down and waits for its final flush.
    async fn shutdown(self) {
        self.edge.shutdown().await;
        tokio::time::timeout(Duration::from_secs(5), self.sync)
            .await
            .expect("quota sync did not stop after shutdown")
            .unwrap();
    }
}

fn header_u64(response: &reqwest::Response, name: &str) -> u64 {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn redis_total(redis: &mut MultiplexedConnection, key: &str) -> Option<u64> {
    redis::cmd("GET").arg(key).query_async(redis).await.unwrap()
}

/// Waits up to 5 s until the organization's total in Redis is `expected`.
async fn wait_for_total(redis: &mut MultiplexedConnection, key: &str, expected: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let total = redis_total(redis, key).await;
        if total == Some(expected) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the total in Redis is {total:?} after 5 s; expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn delete_key(redis: &mut MultiplexedConnection, key: &str) {
    let _: u64 = redis::cmd("DEL").arg(key).query_async(redis).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remaining_reflects_other_edge_after_flush() {
    let Some(url) = redis_url() else {
        eprintln!("MOCKFORGE_TEST_REDIS_URL is not set; skipped");
        return;
    };
    let mut redis = connect(&url).await;
    let tenant = Tenant::new();
    let first = SyncedEdge::start(&tenant, &url).await;
    let second = SyncedEdge::start(&tenant, &url).await;

    // An edge reads the total of a period only after it served the organization in it.
    assert_eq!(first.admitted_remaining(&tenant).await, 19);
    assert_eq!(second.admitted_remaining(&tenant).await, 19);
    wait_for_total(&mut redis, &tenant.key, 2).await;
    tokio::time::sleep(SETTLE).await;

    for expected in [17, 16, 15, 14, 13] {
        assert_eq!(first.admitted_remaining(&tenant).await, expected);
    }
    wait_for_total(&mut redis, &tenant.key, 7).await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        second.admitted_remaining(&tenant).await,
        12,
        "the second edge counts the 7 flushed requests and its own"
    );

    for expected in [11, 10, 9] {
        assert_eq!(second.admitted_remaining(&tenant).await, expected);
    }
    wait_for_total(&mut redis, &tenant.key, 11).await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(first.admitted_remaining(&tenant).await, 8);

    first.shutdown().await;
    second.shutdown().await;
    assert_eq!(redis_total(&mut redis, &tenant.key).await, Some(12));
    let ttl: i64 = redis::cmd("TTL")
        .arg(&tenant.key)
        .query_async(&mut redis)
        .await
        .unwrap();
    let expected_ttl = tenant.period_end() as i64 + DAY - unix_now();
    assert!(
        (expected_ttl - 5..=expected_ttl).contains(&ttl),
        "TTL {ttl} s; expected about {expected_ttl} s, one day past the period end"
    );
    delete_key(&mut redis, &tenant.key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_edges_admit_about_the_quota() {
    let Some(url) = redis_url() else {
        eprintln!("MOCKFORGE_TEST_REDIS_URL is not set; skipped");
        return;
    };
    let mut redis = connect(&url).await;
    let tenant = Tenant::new();
    let edges = [
        SyncedEdge::start(&tenant, &url).await,
        SyncedEdge::start(&tenant, &url).await,
    ];

    // An edge counts the other's requests at most two flush intervals late: one until the other
    // flushes and one until it reads the total. With a request every 2 intervals, alternating,
    // each edge gets one request in that time, and so admits at most one request over the
    // quota. Each edge's first request also cannot see the other's, being its first read.
    let pause = FLUSH_INTERVAL * 2;
    let max_admitted = QUOTA + 2;
    let mut admitted = 0;
    let mut last_rejection = None;
    for index in 0..(2 * QUOTA + 10) {
        let edge = &edges[index as usize % 2];
        let before = unix_now();
        let response = edge.get().await;
        match response.status() {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => last_rejection = Some((before, response)),
            status => panic!("unexpected status {status}"),
        }
        tokio::time::sleep(pause).await;
    }
    assert!(
        (QUOTA..=max_admitted).contains(&admitted),
        "the edges admitted {admitted} requests; expected {QUOTA} to {max_admitted}"
    );

    let (before, response) = last_rejection.expect("no request was rejected");
    let after = unix_now();
    assert_eq!(header_u64(&response, "x-ratelimit-limit"), QUOTA);
    assert_eq!(header_u64(&response, "x-ratelimit-remaining"), 0);
    assert_eq!(
        header_u64(&response, "x-ratelimit-reset"),
        tenant.period_end()
    );
    let retry_after = header_u64(&response, "retry-after");
    // One second of slack each way for the edge's clock, which reads the system time once
    // and then advances with the monotonic clock.
    let earliest = tenant.period_end() - after as u64 - 1;
    let latest = tenant.period_end() - before as u64 + 1;
    assert!(
        (earliest..=latest).contains(&retry_after),
        "Retry-After {retry_after}; expected {earliest} to {latest} s until the period end"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "429 responses use the error format"
    );
    let body = json_body(response).await;
    assert_eq!(
        body,
        json!({
            "error": format!("rate limit exceeded: {QUOTA} requests per 30d; retry in {retry_after} s"),
            "code": "RATE_LIMIT_EXCEEDED",
            "details": {"limit": QUOTA, "window": "30d", "retry_after_seconds": retry_after},
        })
    );

    let [first, second] = edges;
    first.shutdown().await;
    second.shutdown().await;
    assert_eq!(
        redis_total(&mut redis, &tenant.key).await,
        Some(admitted),
        "Redis counts every admitted request once"
    );
    delete_key(&mut redis, &tenant.key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_keeps_local_counts() {
    let Some(url) = redis_url() else {
        eprintln!("MOCKFORGE_TEST_REDIS_URL is not set; skipped");
        return;
    };
    let mut redis = connect(&url).await;
    let proxy = SwitchProxy::start(&url).await;
    let tenant = Tenant::new();
    let edge = SyncedEdge::start(&tenant, &proxy.url).await;

    for expected in [19, 18] {
        assert_eq!(edge.admitted_remaining(&tenant).await, expected);
    }
    wait_for_total(&mut redis, &tenant.key, 2).await;

    // Redis becomes unreachable: the edge keeps counting on its own.
    proxy.set_up(false);
    for expected in (0..18).rev() {
        assert_eq!(edge.admitted_remaining(&tenant).await, expected);
    }
    let response = edge.get().await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(json_body(response).await["details"]["window"], "30d");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        redis_total(&mut redis, &tenant.key).await,
        Some(2),
        "nothing reaches Redis through the closed proxy"
    );

    // Redis is back: the requests counted during the outage reach it.
    proxy.set_up(true);
    wait_for_total(&mut redis, &tenant.key, QUOTA).await;
    let response = edge.get().await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    edge.shutdown().await;
    assert_eq!(redis_total(&mut redis, &tenant.key).await, Some(QUOTA));
    delete_key(&mut redis, &tenant.key).await;
}

/// A TCP proxy on loopback in front of the test Redis that can refuse and cut connections, to
/// play a Redis outage.
struct SwitchProxy {
    /// The Redis URL that goes through the proxy.
    url: String,
    up: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl SwitchProxy {
    async fn start(redis_url: &str) -> SwitchProxy {
        let client = redis::Client::open(redis_url).unwrap();
        let target = match client.get_connection_info().addr() {
            redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            other => panic!("the outage test needs a TCP Redis URL; got {other:?}"),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, _) = watch::channel(true);
        let task = tokio::spawn(forward(listener, target, up.clone()));
        SwitchProxy {
            url: replace_host(redis_url, addr),
            up,
            task,
        }
    }

    /// Accepts and forwards connections when `up`, otherwise closes every connection.
    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for SwitchProxy {
    fn drop(&mut self) {
        self.up.send_replace(false);
        self.task.abort();
    }
}

async fn forward(listener: TcpListener, target: String, up: watch::Sender<bool>) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            return;
        };
        if !*up.borrow() {
            continue;
        }
        let mut down = up.subscribe();
        let target = target.clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(&target).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = down.wait_for(|up| !*up) => {}
            }
        });
    }
}

/// Returns `url` with its host and port replaced by `addr`, keeping credentials and database.
fn replace_host(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("the Redis URL has no scheme");
    let (authority, path) = match rest.find('/') {
        Some(index) => rest.split_at(index),
        None => (rest, ""),
    };
    let credentials = match authority.rfind('@') {
        Some(index) => &authority[..=index],
        None => "",
    };
    format!("{scheme}://{credentials}{addr}{path}")
}
