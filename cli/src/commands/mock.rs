//! `mockforge mock FILE`: one OpenAPI document served locally, without accounts.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use mockforge_edge::{Edge, EdgeConfig};
use mockforge_engine::{MockOptions, Severity};

#[derive(Args, Debug)]
pub struct MockArgs {
    /// OpenAPI document (JSON or YAML).
    pub file: PathBuf,
    /// Address to serve the mock on.
    #[arg(long, env = "MOCKFORGE_MOCK_LISTEN", default_value = "127.0.0.1:4010", value_name = "ADDR")]
    pub listen: SocketAddr,
}

pub fn run(args: MockArgs) -> anyhow::Result<()> {
    crate::telemetry::init();
    let document = std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;

    let compiled = match mockforge_engine::compile(&document, MockOptions::default()) {
        Ok(compiled) => compiled,
        Err(error) => {
            for problem in &error.diagnostics {
                eprintln!("{}: {}: {}", args.file.display(), problem.pointer, problem.message);
            }
            anyhow::bail!("{} is not a valid OpenAPI document ({} problem(s))", args.file.display(), error.diagnostics.len());
        }
    };
    for warning in compiled.warnings.iter().filter(|diagnostic| diagnostic.severity == Severity::Warning) {
        tracing::warn!(pointer = %warning.pointer, "{}", warning.message);
    }
    let title = compiled.mock.title().to_string();
    let operations = compiled.mock.operation_count();

    let edge = Edge::new(EdgeConfig { listen: args.listen, node_name: "mock".into(), ..EdgeConfig::default() });
    edge.serve_single(compiled.mock);
    let handle = edge.start().with_context(|| format!("cannot serve on {} (--listen)", args.listen))?;
    tracing::info!(operations, "serving {title} on http://{}", handle.local_addr());

    super::runtime()?.block_on(super::shutdown_signal());
    handle.shutdown();
    Ok(())
}
