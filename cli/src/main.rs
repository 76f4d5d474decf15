use clap::Parser;

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
