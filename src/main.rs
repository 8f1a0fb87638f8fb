//! The `dlx` binary: parse, set up logging, dispatch, map the outcome to an exit code.
//! Everything else lives in the library (`src/lib.rs` has the tour).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = match dlx::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Usage errors are dlx's own failures (125, as docker says); help and
        // --version print and succeed.
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                dlx::exit::ExitStatus::Error.into()
            } else {
                std::process::ExitCode::SUCCESS
            };
        }
    };
    dlx::logging::init(cli.verbose, cli.quiet);
    let status = dlx::commands::run(cli);
    status.into()
}
