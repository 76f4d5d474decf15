//! `mockforge control-plane`: the customer API alone.

use anyhow::Context;
use clap::Args;
use mockforge_control_plane::ControlPlane;

use crate::settings::{Profile, SettingArgs, Settings};

#[derive(Args, Debug)]
pub struct ControlPlaneArgs {
    #[command(flatten)]
    pub settings: SettingArgs,
    /// An operator task on the control plane's database instead of running the API.
    #[command(subcommand)]
    pub command: Option<ControlPlaneCommand>,
}

#[derive(clap::Subcommand, Debug)]
pub enum ControlPlaneCommand {
    /// Create, list or revoke the node tokens that edge nodes authenticate with.
    NodeToken(super::node_token::NodeTokenArgs),
}

pub fn run(args: ControlPlaneArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.settings, Profile::ControlPlane)?;
    if let Some(ControlPlaneCommand::NodeToken(command)) = args.command {
        return super::node_token::run(command, &settings);
    }
    crate::telemetry::init();
    super::runtime()?.block_on(async move {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create the data directory {}", settings.data_dir.display()))?;
        let control_plane = ControlPlane::start(super::control_plane_config(&settings)).await?;
        let listener = tokio::net::TcpListener::bind(settings.api_listen)
            .await
            .with_context(|| format!("cannot listen on {} (--api-listen)", settings.api_listen))?;
        tracing::info!(api = %settings.api_listen, "control plane is running on http://{}", settings.api_listen);
        control_plane.serve(listener, super::shutdown_signal()).await
    })
}
