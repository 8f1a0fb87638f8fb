//! Command-line definitions (clap derive structs only). The doc comments are the
//! `--help` text. Nothing here reaches the engine or the kernel: `settings` resolves
//! these into typed settings first.

mod build;
mod doctor;
mod exec;
mod fanout;
mod generate;

pub use build::BuildArgs;
pub use doctor::DoctorArgs;
pub use exec::ExecArgs;
pub use fanout::FanoutArgs;
pub use generate::{CompletionsArgs, ManArgs};

use clap::{Parser, Subcommand};

/// Debug shell-less containers safely, and build distroless images from Debian's
/// signed archive.
#[derive(Debug, Parser)]
#[command(name = "dlx", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace); `DLX_LOG` overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command inside a running container, as the container itself
    Exec(ExecArgs),
    /// Build a distroless image from Debian's signed package archive
    Build(BuildArgs),
    /// Check whether dlx can enter a container, and what would help if not
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, ...)
    Completions(CompletionsArgs),
    /// Print dlx's man page (roff)
    Man(ManArgs),
}
