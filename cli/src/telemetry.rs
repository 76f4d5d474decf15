//! Log output of the `mockforge` commands.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Default filter: our crates at info, chatty dependencies at warn.
const DEFAULT_FILTER: &str = "info,sqlx=warn,pingora=warn,pingora_core=warn,pingora_proxy=warn,hyper=warn";

/// Installs the global `tracing` subscriber. `MOCKFORGE_LOG` (same syntax as `RUST_LOG`)
/// overrides the default filter.
pub fn init() {
    let filter = EnvFilter::try_from_env("MOCKFORGE_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // A second call (for example from tests running commands in one process) keeps the first subscriber.
    // Colour codes help a terminal only. In a file or a log collector they are noise.
    let ansi = std::io::stdout().is_terminal();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).try_init();
}
