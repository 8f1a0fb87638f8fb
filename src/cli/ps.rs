//! `dlx ps` flags.

use clap::{Args, ValueEnum};

use super::EngineArg;

/// `dlx ps` (the help text is on `Command::Ps`).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  dlx ps\n  dlx ps --engine containerd\n  \
                        dlx ps --no-engine --format json")]
pub struct PsArgs {
    /// Only this engine [default: every engine that answers]
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub engine: Option<EngineArg>,

    /// Ask no engine: list the containers the host's /proc/*/cgroup shows
    #[arg(long, conflicts_with = "engine")]
    pub no_engine: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = PsFormat::Table)]
    pub format: PsFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PsFormat {
    /// Aligned columns, for people
    Table,
    /// A JSON array, for scripts
    Json,
}
