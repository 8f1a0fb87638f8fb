//! `dlx toolbox` flags.

use clap::{Args, Subcommand, ValueEnum};

/// Show the default toolbox: the tools `dlx exec` sessions find at /.dlx.
///
/// The toolbox is assembled from Debian's signed archive (static BusyBox, ss, ip,
/// tcpdump, strace, curl, lsof, and the libraries the dynamic ones need, with their
/// own loader) and kept in the dlx cache by digest. The dynamic tools run without the
/// container's LD_* (and like) variables, and their loader is patched to read no
/// /etc/ld.so.preload. `dlx toolbox fetch` assembles it ahead of time, so a host
/// without network can use it later.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  dlx toolbox fetch\n  dlx toolbox\n  dlx toolbox --format json | jq -r .root"
)]
pub struct ToolboxArgs {
    #[command(subcommand)]
    pub command: Option<ToolboxCommand>,

    /// Output format: text for people, json (toolbox.json plus `root`) for scripts
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum ToolboxCommand {
    /// Assemble the default toolbox now (resolving against the archive) and make it
    /// the one sessions use; prints its directory
    Fetch(FetchArgs),
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Debian mirror to fetch from
    #[arg(long, env = "DLX_MIRROR")]
    pub mirror: Option<String>,
}

/// How `dlx toolbox` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}
