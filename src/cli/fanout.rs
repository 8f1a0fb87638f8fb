//! `dlx exec` fan-out flags: choose many containers instead of one TARGET.

use clap::Args;

/// Which containers a fan-out session runs in.
#[derive(Debug, Args)]
#[command(next_help_heading = "Fan-out (instead of TARGET)")]
pub struct FanoutArgs {
    /// Run CMD in every running container that matches: label=KEY[=VALUE], name=PART
    /// or image=IMAGE (repeatable: all must match); the containers of --engine, else
    /// of the first engine with matches (Docker, Podman, containerd)
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,

    /// Run CMD in every running container
    #[arg(long, conflicts_with = "filter")]
    pub all: bool,
}

impl FanoutArgs {
    /// Were many containers asked for?
    pub fn requested(&self) -> bool {
        self.all || !self.filter.is_empty()
    }
}
