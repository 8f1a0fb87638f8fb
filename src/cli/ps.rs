//! `dlx ps` flags.

use clap::{Args, ValueEnum};

use super::EngineArg;

/// List running containers across the engines dlx can reach.
///
/// One row per container: engine, short ID, name, image, host PID of its init, user,
/// whether its image has a shell, and the distroless tier its files look like
/// (static, base-nossl, base, cc, python3, nodejs, java17/21/25, or distro for a full
/// distribution with a package manager). A container that several engines show
/// (Docker's are also in its containerd, namespace moby) is listed once, under the
/// first engine. With no engine answering, dlx lists what the host's cgroups show.
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
