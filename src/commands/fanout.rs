//! `dlx exec --filter … | --all -- CMD`: list the matching containers, run one
//! `dlx exec <id> -- CMD` child per container (bounded), relay their prefixed
//! output, then sum up. See `crate::fanout` for the pieces.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::ExecArgs;
use crate::engine::{ContainerSummary, Docker, Engine};
use crate::exit::ExitStatus;
use crate::fanout::{self, Ended, FanoutError, FanoutSettings};
use crate::output;

pub fn run(args: ExecArgs) -> Result<ExitStatus> {
    let settings = FanoutSettings::resolve(&args, |k| std::env::var(k).ok())?;
    let argv: Vec<_> = std::env::args_os().skip(1).collect();
    // Checked once here, so no child is started with a command line it would misread.
    fanout::child_argv(&argv, &settings.command, "ID")?;

    // The engine (and its runtime) is gone before any child starts.
    let containers = {
        let engine = Docker::connect(
            settings.docker_host.as_deref(),
            settings.api_version.as_deref(),
        )?;
        engine.list(&settings.filters)?
    };
    if containers.is_empty() {
        return Err(FanoutError::NoMatch(settings.selection()).into());
    }
    tracing::info!(count = containers.len(), "fan-out");
    let exe = std::env::current_exe().context("cannot find dlx's own binary")?;

    let ended = fanout::run_bounded(&containers, fanout::parallelism(), |c| {
        let started = Instant::now();
        let code = match session(&exe, &argv, &settings.command, c) {
            Ok(code) => code,
            Err(e) => {
                output::notice(format!("{} | cannot run dlx exec: {e:#}", c.name));
                ExitStatus::Error.code()
            }
        };
        Ended {
            name: c.name.clone(),
            code,
            took: started.elapsed(),
        }
    });

    for line in fanout::summary(&ended) {
        output::notice(line);
    }
    Ok(ExitStatus::exited(i32::from(fanout::worst(&ended))))
}

/// One container's `dlx exec` child, its output relayed with the name prefixed;
/// returns its exit code (128+N when killed by signal N).
fn session(
    exe: &std::path::Path,
    argv: &[std::ffi::OsString],
    command: &[String],
    container: &ContainerSummary,
) -> Result<u8> {
    let mut child = Command::new(exe)
        .args(fanout::child_argv(argv, command, &container.id)?)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let name = container.name.as_str();
    std::thread::scope(|scope| {
        if let Some(err) = stderr {
            scope.spawn(move || fanout::relay_lines(name, err, || std::io::stderr().lock()));
        }
        if let Some(out) = stdout {
            // A closed stdout (`| head`) ends the relay; the child then meets EPIPE.
            let _ = fanout::relay_lines(name, out, || std::io::stdout().lock());
        }
    });
    let status = child.wait().context("cannot wait for dlx exec")?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(255),
        (None, Some(sig)) => ExitStatus::signaled(sig).code(),
        (None, None) => ExitStatus::Error.code(),
    })
}
