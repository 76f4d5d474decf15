//! `mockforge serve`: the control plane and one edge node in one process.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use mockforge_control_plane::ControlPlane;
use mockforge_edge::{Edge, EdgeConfig};

use crate::settings::{Profile, SettingArgs, Settings};

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub settings: SettingArgs,
}

/// Name under which the in-process edge reports to the control plane.
const LOCAL_NODE: &str = "local";

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

    let edge = Edge::new(EdgeConfig {
        listen: settings.edge_listen,
        base_domain: settings.base_domain.clone(),
        node_name: LOCAL_NODE.to_string(),
        ..EdgeConfig::default()
    });
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

    follower.abort();
    edge_handle.shutdown();
    tracing::info!("MockForge stopped");
    result
}
