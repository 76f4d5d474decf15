//! The `mockforge` command: runs MockForge Cloud all in one process, its control plane or edge
//! alone, or one OpenAPI document as a local mock.

pub mod commands;
pub mod settings;
pub mod telemetry;

use clap::{Parser, Subcommand};

/// Command-line interface of the `mockforge` binary.
#[derive(Parser, Debug)]
#[command(name = "mockforge", version, about = "Hosted API mocks from OpenAPI documents")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the control plane and one edge node in one process (SQLite and local storage by default).
    Serve(commands::serve::ServeArgs),
    /// Run the control-plane API alone.
    ControlPlane(commands::control_plane::ControlPlaneArgs),
    /// Run an edge node that follows a remote control plane.
    Edge(commands::edge::EdgeArgs),
    /// Serve one OpenAPI document locally, without accounts.
    Mock(commands::mock::MockArgs),
}

/// Runs the parsed command to completion.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::ControlPlane(args) => commands::control_plane::run(args),
        Command::Edge(args) => commands::edge::run(args),
        Command::Mock(args) => commands::mock::run(args),
    }
}
