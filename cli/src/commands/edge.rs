//! `mockforge edge`: an edge node in its own process, following a remote control plane.

use clap::Args;

#[derive(Args, Debug)]
pub struct EdgeArgs {
    /// Base URL of the control plane to follow.
    #[arg(long = "control-plane", env = "MOCKFORGE_CONTROL_PLANE_URL", value_name = "URL")]
    pub control_plane: Option<String>,
    /// Node token that authenticates this edge to the control plane.
    #[arg(long, env = "MOCKFORGE_NODE_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub node_token: Option<String>,
    /// Region name reported to the control plane, for example `eu-1`.
    #[arg(long, env = "MOCKFORGE_REGION", value_name = "NAME")]
    pub region: Option<String>,
}

pub fn run(_args: EdgeArgs) -> anyhow::Result<()> {
    // TODO: separate edge processes need the control plane's HTTP snapshot protocol and node tokens.
    anyhow::bail!(
        "running an edge node in its own process is not available yet; \
         `mockforge serve` runs the control plane and an edge together"
    )
}
