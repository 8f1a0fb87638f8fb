//! One module per verb. Each `run` takes resolved settings and returns an
//! [`ExitStatus`]; errors are printed here, once, and become exit code 125.

mod build;
mod doctor;
mod exec;
pub mod ps;
mod toolbox;

mod fanout;
mod generate;

use std::os::fd::AsFd;

use crate::cli::{Cli, Command};
use crate::exit::ExitStatus;
use crate::output;

/// Dispatch a parsed command line.
pub fn run(cli: Cli) -> ExitStatus {
    output::set_quiet(cli.quiet);
    let result = match cli.command {
        Command::Exec(args) if args.fanout.requested() => fanout::run(args),
        Command::Exec(args) => exec::run(args),
        Command::Shell(args) => {
            let stdin_is_tty = crate::sys::is_tty(std::io::stdin().as_fd());
            exec::run(args.into_exec(stdin_is_tty))
        }
        Command::Build(args) => build::run(args),
        Command::Ps(args) => ps::run(args),
        Command::Toolbox(args) => toolbox::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Completions(args) => generate::completions(args),
        Command::Man(args) => generate::man(args),
    };
    match result {
        Ok(status) => status,
        Err(err) => {
            output::error(&err);
            ExitStatus::Error
        }
    }
}
