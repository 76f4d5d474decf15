//! `mockforge control-plane node-token`: the tokens edge nodes authenticate with.

use clap::{Args, Subcommand};
use mockforge_control_plane::nodes::NodeTokens;

use crate::settings::Settings;

#[derive(Args, Debug)]
pub struct NodeTokenArgs {
    #[command(subcommand)]
    pub action: NodeTokenAction,
}

#[derive(Subcommand, Debug)]
pub enum NodeTokenAction {
    /// Create a node token and print it once; only its hash is stored.
    Create {
        /// Node name, a DNS label such as `eu-1`.
        #[arg(long)]
        name: String,
    },
    /// List nodes with their region and last heartbeat.
    List,
    /// Revoke a node's token; the node gets 401 from then on.
    Revoke {
        /// Name given at creation.
        name: String,
    },
}

/// Runs a node-token command against the database of `settings`.
pub fn run(args: NodeTokenArgs, settings: &Settings) -> anyhow::Result<()> {
    // Logs go to stderr at warn, so stdout carries only the output a script reads.
    let filter = tracing_subscriber::EnvFilter::try_from_env("MOCKFORGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
    super::runtime()?.block_on(async move {
        let tokens = NodeTokens::open(&super::control_plane_config(settings)).await?;
        match args.action {
            NodeTokenAction::Create { name } => {
                let token = tokens.create(&name).await?;
                eprintln!("Created node {name}. Store the token now: it cannot be shown again.");
                println!("{token}");
            }
            NodeTokenAction::List => {
                let nodes = tokens.list().await?;
                println!("{:<24} {:<16} {:<10} {:<12} {:<26}", "NAME", "REGION", "TOKEN", "VERSION", "LAST HEARTBEAT");
                for node in nodes {
                    println!(
                        "{:<24} {:<16} {:<10} {:<12} {:<26}",
                        node.name,
                        node.region.as_deref().unwrap_or("-"),
                        node.token_prefix,
                        node.served_version.map_or_else(|| "-".to_owned(), |version| version.to_string()),
                        node.last_heartbeat_at.map_or_else(|| "never".to_owned(), |at| at.to_rfc3339()),
                    );
                }
            }
            NodeTokenAction::Revoke { name } => {
                if !tokens.revoke(&name).await? {
                    anyhow::bail!("no node named {name:?}; `mockforge control-plane node-token list` shows the nodes");
                }
                eprintln!("Revoked the token of node {name}.");
            }
        }
        Ok(())
    })
}
