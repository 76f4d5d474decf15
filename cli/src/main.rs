use clap::Parser;

/// mimalloc's per-thread heaps avoid the lock contention of glibc's malloc between the edge's
/// worker threads. It cut the edge's CPU time per request by about 14% (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = mockforge_cli::Cli::parse();
    match mockforge_cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
