//! `mockforge serve`: the control plane and one edge node in one process.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use mockforge_control_plane::ControlPlane;
use mockforge_edge::Edge;

use crate::settings::{Profile, SettingArgs, Settings};

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub settings: SettingArgs,
}

/// Name under which the in-process edge reports to the control plane.
const LOCAL_NODE: &str = "local";
/// Time the telemetry reporter gets to send its last batch after the edge stops.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.settings, Profile::AllInOne)?;
    crate::telemetry::init();
    super::runtime()?.block_on(serve(settings))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create the data directory {}", settings.data_dir.display()))?;

    let control_plane = ControlPlane::start(super::control_plane_config(&settings)).await?;
    let api_listener = tokio::net::TcpListener::bind(settings.api_listen)
        .await
        .with_context(|| format!("cannot listen on {} (--api-listen)", settings.api_listen))?;

    let edge = Edge::new(settings.edge_config(LOCAL_NODE));
    let edge_handle = edge.start().with_context(|| format!("cannot start the edge on {} (--edge-listen)", settings.edge_listen))?;

    edge.enable_plugins(
        control_plane.plugin_source(),
        mockforge_edge::plugins::PluginHostConfig {
            cache_dir: Some(settings.data_dir.join("plugin-cache")),
            ..Default::default()
        },
    );
    let feed = control_plane.snapshot_feed();
    let follower = {
        let edge = edge.clone();
        tokio::spawn(async move { edge.follow(Arc::clone(&feed)).await })
    };
    let reporter = {
        let edge = edge.clone();
        let sink = control_plane.telemetry_sink();
        tokio::spawn(async move { edge.report_to(sink).await })
    };
    if let Some(admin) = edge_handle.admin_addr() {
        tracing::info!(%admin, "edge metrics on http://{admin}/metrics");
    }

    tracing::info!(
        api = %settings.api_listen,
        edge = %settings.edge_listen,
        public_edge_url = %settings.public_edge_url,
        data_dir = %settings.data_dir.display(),
        database = if settings.database_url.is_some() { "configured" } else { "sqlite (data directory)" },
        redis = settings.redis_url.is_some(),
        "MockForge is running: control-plane API on http://{}, hosted mocks on {}",
        settings.api_listen,
        settings.public_edge_url,
    );

    let result = control_plane.serve(api_listener, super::shutdown_signal()).await;

    // The edge's last telemetry batch goes to the control plane's store, so the reporter ends
    // before the store closes.
    edge_handle.shutdown();
    follower.abort();
    if tokio::time::timeout(SHUTDOWN_GRACE, reporter).await.is_err() {
        tracing::warn!("the telemetry reporter did not finish within {SHUTDOWN_GRACE:?}");
    }
    tracing::info!("MockForge stopped");
    result
}
