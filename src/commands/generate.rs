//! `dlx completions SHELL` and `dlx man [SUBCOMMAND]`: generated from the clap
//! definition, so help, completions and the man page never disagree.

use anyhow::{bail, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::ExitStatus;
use crate::output;

pub fn completions(args: CompletionsArgs) -> Result<ExitStatus> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "dlx", &mut script);
    output::data(&script)?;
    Ok(ExitStatus::Success)
}

pub fn man(args: ManArgs) -> Result<ExitStatus> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Building gives subcommands their `dlx-<name>` display names.
    cmd.build();
    let page = match &args.command {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
                bail!(
                    "no subcommand {name:?}\nhint: dlx has man pages for {}",
                    names.join(", ")
                )
            }
        },
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page).render(&mut roff)?;
    output::data(&roff)?;
    Ok(ExitStatus::Success)
}
