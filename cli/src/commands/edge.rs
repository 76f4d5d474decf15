//! `mockforge edge`: an edge node in its own process, following a remote control plane.
//!
//! On start the edge serves the snapshot it last wrote to its data directory, then catches up
//! with the control plane over the internal API. It keeps serving while the control plane or
//! Redis is down.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use mockforge_edge::quota_sync::QuotaSyncSettings;
use mockforge_edge::remote::{RemoteFeed, RemoteSettings};
use mockforge_edge::Edge;

use crate::settings::{Profile, SettingArgs, Settings};

/// Interval between two heartbeats to the control plane.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Time the follower and the telemetry reporter get to finish after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Args, Debug)]
pub struct EdgeArgs {
    /// Base URL of the control plane to follow, for example http://control-plane:8080.
    #[arg(long = "control-plane", env = "MOCKFORGE_CONTROL_PLANE_URL", value_name = "URL")]
    pub control_plane: Option<String>,
    /// Node token that authenticates this edge to the control plane (`mfn_...`).
    #[arg(long, env = "MOCKFORGE_NODE_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub node_token: Option<String>,
    /// Region name reported to the control plane, for example `eu-1`.
    #[arg(long, env = "MOCKFORGE_REGION", value_name = "NAME")]
    pub region: Option<String>,
    /// Name of this node in logs and reports [default: the region].
    #[arg(long, env = "MOCKFORGE_NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,
    /// Interval, in milliseconds, at which the edge sends its 30-day request counts to Redis
    /// and reads the other edges' counts. Applies with `--redis-url` only.
    #[arg(long, env = "MOCKFORGE_QUOTA_FLUSH_INTERVAL_MS", value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub quota_flush_interval_ms: u64,
    /// Settings shared with the other commands: `--data-dir` stores the snapshot on disk,
    /// `--edge-listen` is the address of hosted mocks, `--public-edge-url` sets the base domain,
    /// `--redis-url` subscribes to version announcements, `--admin-listen` serves metrics, and
    /// `--config` may add `[plans.NAME]`.
    #[command(flatten)]
    pub settings: SettingArgs,
}

/// Validated edge options.
struct EdgeOptions {
    control_plane: String,
    node_token: String,
    region: String,
    node_name: String,
    quota_flush_interval: Duration,
    settings: Settings,
}

pub fn run(args: EdgeArgs) -> anyhow::Result<()> {
    let options = validate(args)?;
    crate::telemetry::init();
    super::runtime()?.block_on(run_edge(options))
}

fn validate(args: EdgeArgs) -> anyhow::Result<EdgeOptions> {
    let settings = Settings::resolve(&args.settings, Profile::ControlPlane)?;
    let control_plane = args
        .control_plane
        .context("missing --control-plane URL (or MOCKFORGE_CONTROL_PLANE_URL), for example http://127.0.0.1:8080")?;
    anyhow::ensure!(
        control_plane.starts_with("http://") || control_plane.starts_with("https://"),
        "invalid --control-plane {control_plane:?}: expected an http:// or https:// URL"
    );
    let node_token = args.node_token.context(
        "missing --node-token (or MOCKFORGE_NODE_TOKEN); create one with `mockforge control-plane node-token create --name NAME`",
    )?;
    anyhow::ensure!(
        node_token.starts_with(mockforge_control_plane::nodes::NODE_TOKEN_PREFIX),
        "invalid --node-token: node tokens start with {}; API tokens are not accepted",
        mockforge_control_plane::nodes::NODE_TOKEN_PREFIX
    );
    let region = args.region.context("missing --region NAME (or MOCKFORGE_REGION), for example eu-1")?;
    anyhow::ensure!(!region.trim().is_empty(), "invalid --region: the region name is empty");
    let node_name = args.node_name.unwrap_or_else(|| region.clone());
    let quota_flush_interval = Duration::from_millis(args.quota_flush_interval_ms);
    Ok(EdgeOptions { control_plane, node_token, region, node_name, quota_flush_interval, settings })
}

async fn run_edge(options: EdgeOptions) -> anyhow::Result<()> {
    let settings = &options.settings;
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create the data directory {}", settings.data_dir.display()))?;

    let edge = Edge::new(settings.edge_config(&options.node_name));
    let feed = RemoteFeed::start(RemoteSettings {
        control_plane_url: options.control_plane.clone(),
        node_token: options.node_token.clone(),
        region: options.region.clone(),
        redis_url: settings.redis_url.clone(),
        data_dir: settings.data_dir.clone(),
    })?;
    let handle = edge
        .start()
        .with_context(|| format!("cannot start the edge on {} (--edge-listen)", settings.edge_listen))?;
    // Plugins are enabled before the follower starts, so the first snapshot can load them.
    edge.enable_plugins(
        Arc::new(feed.plugin_source(settings.data_dir.join("plugins"))),
        mockforge_edge::plugins::PluginHostConfig {
            cache_dir: Some(settings.data_dir.join("plugin-cache")),
            ..Default::default()
        },
    );

    let follower = {
        let edge = edge.clone();
        let feed = feed.clone();
        tokio::spawn(async move { edge.follow(feed).await })
    };
    let reporter = {
        let edge = edge.clone();
        let sink: Arc<dyn mockforge_snapshot::TelemetrySink> = feed.clone();
        tokio::spawn(async move { edge.report_to(sink).await })
    };
    let heartbeats = tokio::spawn(feed.clone().send_heartbeats(edge.clone(), HEARTBEAT_INTERVAL));
    // Without Redis each edge enforces the 30-day quota on its own counts.
    let quota_sync = settings.redis_url.clone().map(|redis_url| {
        let edge = edge.clone();
        let settings = QuotaSyncSettings {
            flush_interval: options.quota_flush_interval,
            ..QuotaSyncSettings::new(redis_url)
        };
        tokio::spawn(async move { edge.sync_quotas(settings).await })
    });

    tracing::info!(
        node = %options.node_name,
        region = %options.region,
        control_plane = %options.control_plane,
        edge = %settings.edge_listen,
        data_dir = %settings.data_dir.display(),
        redis = settings.redis_url.is_some(),
        "edge node is running: hosted mocks on http://{}",
        settings.edge_listen
    );

    super::shutdown_signal().await;
    heartbeats.abort();
    handle.shutdown();
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
        let _ = follower.await;
        let _ = reporter.await;
        if let Some(quota_sync) = quota_sync {
            let _ = quota_sync.await;
        }
    })
    .await;
    if finished.is_err() {
        tracing::warn!("the follower, the telemetry reporter or the quota sync did not finish within {SHUTDOWN_GRACE:?}");
    }
    tracing::info!(node = %options.node_name, "edge node stopped");
    Ok(())
}
