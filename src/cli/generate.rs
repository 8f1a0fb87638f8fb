//! Flags of the packaging helpers: shell completions and the man page.

use clap::Args;

/// Print a shell completion script on stdout.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  dlx completions bash > /etc/bash_completion.d/dlx\n  \
                        dlx completions zsh > \"${fpath[1]}/_dlx\"\n  \
                        dlx completions fish > ~/.config/fish/completions/dlx.fish"
)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print the man page (roff) on stdout, generated from this command line.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  dlx man | man -l -\n  dlx man exec > dlx-exec.1")]
pub struct ManArgs {
    /// A subcommand whose page to print (dlx-SUBCOMMAND(1)) instead of dlx(1)
    #[arg(value_name = "SUBCOMMAND")]
    pub command: Option<String>,
}
