//! `dlx exec --filter … | --all -- CMD`: one protected dlx has a child list the
//! matching containers and finds the toolbox once, then forks one session per
//! container (bounded), which asks the engine about its own container and enters it,
//! and relays their prefixed output, forwarding the signals sent to it. See
//! `crate::fanout` for the pieces.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::exec;
use crate::audit;
use crate::cli::ExecArgs;
use crate::engine::{self, ContainerSummary, Docker, Engine, EngineError, EngineKind, Selection};
use crate::exit::ExitStatus;
use crate::fanout::{self, Ended, FanoutError, FanoutSettings, Prefixer};
use crate::ns::NsKind;
use crate::output;
use crate::settings::{ExecSettings, TargetSpec};
use crate::sys::{self, Fork, LinuxSys, Sys};
use crate::target::{self, Resolved, Via};
use crate::toolbox::{self, Toolbox};

pub fn run(mut args: ExecArgs) -> Result<ExitStatus> {
    let fan = FanoutSettings::resolve(&args)?;
    let argv: Vec<_> = std::env::args_os().skip(1).collect();
    fanout::ensure_no_target(&argv, &fan.command)?;
    // Every session gets the same settings but its target, set as it starts.
    args.target = Some("fan-out".into());
    args.command = fan.command.clone();
    let settings = ExecSettings::resolve(args, |k| std::env::var(k).ok())?;

    exec::protect()?;
    let kind = engine_kind(&settings)?;
    exec::ensure_single_threaded()?;
    let listed = match list_apart(kind, &fan, &settings)? {
        Ok(listed) => listed,
        Err(status) => return Ok(status),
    };
    if listed.is_empty() {
        return Err(FanoutError::NoMatch(fan.selection()).into());
    }
    let mut targets = VecDeque::from(listed);
    tracing::info!(count = targets.len(), "fan-out");
    // Found once here, not by every session, and only when the sessions enter the
    // containers' filesystems (`--ns` without mnt and `--host-tools` do not), as in
    // `dlx exec`: otherwise a missing toolbox would be fetched for nothing.
    let enters_fs = !settings.host_tools
        && settings
            .namespaces
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&NsKind::Mnt));
    let toolbox = match enters_fs {
        true => toolbox::prepare(&settings.toolbox, &toolbox::PrepareOptions::for_host()?)?,
        false => None,
    };
    let host = exec::Host::read()?;
    // Every session is a fork of this process (assembling a toolbox may have run
    // threads).
    exec::ensure_single_threaded()?;
    let signals = sys::block_signals()?;
    let parallelism = fanout::parallelism();
    let escape = [
        sys::is_tty(std::io::stdout().as_fd()),
        sys::is_tty(std::io::stderr().as_fd()),
    ];

    let mut running: Vec<Running> = Vec::new();
    let mut ended: Vec<(usize, Ended)> = Vec::new();
    let mut interrupted: Option<i32> = None;
    let mut next_index = 0;
    let mut chunk = vec![0u8; fanout::LINE_MAX];
    let mut stdout_open = true;
    loop {
        // Start sessions while there is room, unless a signal said to stop.
        while interrupted.is_none() && running.len() < parallelism {
            let Some(container) = targets.pop_front() else {
                break;
            };
            let mut session = settings.clone();
            session.target = TargetSpec::Container(container.id.clone());
            running.push(start(
                &session, kind, container, &toolbox, &host, next_index, escape,
            )?);
            next_index += 1;
        }
        if running.is_empty() {
            break;
        }

        // Wait for output, a child's end, or a signal.
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let mut slots = Vec::new();
        for (i, r) in running.iter().enumerate() {
            for (j, stream) in r.streams.iter().enumerate() {
                if let Some((fd, _)) = stream {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    slots.push((i, j));
                }
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(sys::SysError::new("poll", "fan-out", e).into()),
        }
        let signalled = fds[0].revents().is_some_and(|r| !r.is_empty());
        let ready: Vec<(usize, usize)> = fds[1..]
            .iter()
            .zip(&slots)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, slot)| *slot)
            .collect();
        drop(fds);

        for (i, j) in ready {
            let out = relay_once(&mut running[i].streams[j], &mut chunk);
            if j == 0 && stdout_open && write_out(&out).is_err() {
                // Our reader went away (`| head`): stop reading the children's
                // stdout, so they meet EPIPE the way a single session would.
                stdout_open = false;
            } else if j == 1 {
                let _ = write_err(&out);
            }
            if !stdout_open {
                running[i].streams[0] = None;
            }
        }
        if signalled {
            if let Some(sig) = on_signals(&signals, &running)? {
                interrupted.get_or_insert(sig);
            }
        }
        reap(&mut running);
        // A session is over when its process ended and its output is all relayed.
        let mut k = 0;
        while k < running.len() {
            if running[k].end.is_some() && running[k].streams.iter().all(Option::is_none) {
                let r = running.remove(k);
                ended.push((r.index, r.ended()));
            } else {
                k += 1;
            }
        }
    }

    // Containers never started (a signal came first) are named too.
    let sig = interrupted.unwrap_or(libc::SIGTERM);
    for container in targets {
        ended.push((
            next_index,
            Ended {
                name: container.name,
                code: ExitStatus::signaled(sig).code(),
                took: std::time::Duration::ZERO,
            },
        ));
        next_index += 1;
    }
    ended.sort_by_key(|(i, _)| *i);
    let ended: Vec<Ended> = ended.into_iter().map(|(_, e)| e).collect();
    for line in fanout::summary(&ended) {
        output::notice(line);
    }
    Ok(match interrupted {
        Some(sig) => ExitStatus::signaled(sig),
        None => ExitStatus::exited(i32::from(fanout::worst(&ended))),
    })
}

/// Which engine lists the containers and answers each session about its own:
/// Docker (the default) or Podman's compatible API; the filters are the Docker API's.
fn engine_kind(settings: &ExecSettings) -> Result<EngineKind, EngineError> {
    match settings.engine {
        Selection::Auto | Selection::Only(EngineKind::Docker) => Ok(EngineKind::Docker),
        Selection::Only(EngineKind::Podman) => Ok(EngineKind::Podman),
        Selection::Only(EngineKind::Containerd) | Selection::NoEngine => {
            Err(EngineError::Unsupported {
                what: "--filter and --all",
            })
        }
    }
}

/// A connection of this process's own to the engine `kind` (Docker or Podman).
fn connect(kind: EngineKind, settings: &ExecSettings) -> Result<Docker, EngineError> {
    engine::docker_api(kind == EngineKind::Podman, &settings.endpoints)
}

/// The matching containers, listed by a child process of this one, which alone
/// hears the engine's answer and passes back each container's ID, name and image.
/// The answer in full (every container's command line, labels, mounts) never enters
/// this process, of which every session is a copy, and so is each session's command
/// until it execs. `Err`: the child failed (and said why) or was killed, and dlx
/// ends with that status.
fn list_apart(
    kind: EngineKind,
    fan: &FanoutSettings,
    settings: &ExecSettings,
) -> Result<Result<Vec<ContainerSummary>, ExitStatus>> {
    let (list_r, list_w) = sys::pipe()?;
    let pid = match sys::fork_single_threaded()? {
        Fork::Child => {
            drop(list_r);
            let listed = connect(kind, settings)
                .and_then(|engine| engine.list(&fan.filters))
                .map_err(anyhow::Error::from)
                .and_then(|list| Ok(serde_json::to_vec(&list)?));
            let code = match listed {
                Ok(bytes) => match sys::write_all(list_w.as_fd(), &bytes) {
                    Ok(()) => 0,
                    Err(_) => ExitStatus::Error.code(),
                },
                Err(e) => {
                    output::error(&e);
                    ExitStatus::Error.code()
                }
            };
            sys::exit_now(code.into())
        }
        Fork::Parent(pid) => pid,
    };
    drop(list_w);
    let mut bytes = Vec::new();
    let read = std::fs::File::from(list_r).read_to_end(&mut bytes);
    match waitpid(Pid::from_raw(pid), None) {
        Ok(WaitStatus::Exited(_, 0)) => {}
        Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Err(ExitStatus::signaled(sig as i32))),
        _ => return Ok(Err(ExitStatus::Error)),
    }
    read.context("cannot read the list of containers")?;
    Ok(Ok(
        serde_json::from_slice(&bytes).context("cannot read the list of containers")?
    ))
}

/// In a session's own process, through its own connection (closed before entering):
/// what the engine says about one container, its environment above all, reaches that
/// container's session alone.
fn inspect(
    kind: EngineKind,
    settings: &ExecSettings,
    container: &ContainerSummary,
) -> Result<Resolved> {
    // The listing has just had an answer: no ping first.
    let engine = connect(kind, settings)?.known_to_answer();
    let info = engine.inspect(&container.id)?;
    Ok(target::runnable(info, Via::Engine(kind), &container.id)?)
}

/// One running session: its process, and its stdout and stderr until they end.
struct Running {
    index: usize,
    name: String,
    pid: i32,
    started: Instant,
    streams: [Option<(OwnedFd, Prefixer)>; 2],
    end: Option<u8>,
}

impl Running {
    fn ended(&self) -> Ended {
        Ended {
            name: self.name.clone(),
            code: self.end.unwrap_or(ExitStatus::Error.code()),
            took: self.started.elapsed(),
        }
    }
}

/// Fork the session for `container`: the child becomes a `dlx exec` of it, its
/// stdout and stderr pipes to us, its stdin empty. `escape`: whether dlx's stdout and
/// stderr are terminals, where the lines show their control characters escaped.
fn start(
    settings: &ExecSettings,
    kind: EngineKind,
    container: ContainerSummary,
    toolbox: &Option<Toolbox>,
    host: &exec::Host,
    index: usize,
    escape: [bool; 2],
) -> Result<Running> {
    let (out_r, out_w) = sys::pipe()?;
    let (err_r, err_w) = sys::pipe()?;
    let null: OwnedFd = std::fs::File::open("/dev/null")
        .context("cannot open /dev/null")?
        .into();
    let started = Instant::now();
    match sys::fork_single_threaded()? {
        Fork::Child => {
            drop((out_r, err_r));
            session(
                settings,
                kind,
                &container,
                toolbox,
                host,
                [null, out_w, err_w],
            )
        }
        Fork::Parent(pid) => Ok(Running {
            index,
            name: container.name.clone(),
            pid,
            started,
            streams: [
                Some((out_r, Prefixer::new(&container.name, escape[0]))),
                Some((err_r, Prefixer::new(&container.name, escape[1]))),
            ],
            end: None,
        }),
    }
}

/// The forked child: one container's whole `dlx exec`, from asking the engine about
/// it to the end, audited, then its exit.
fn session(
    settings: &ExecSettings,
    kind: EngineKind,
    container: &ContainerSummary,
    toolbox: &Option<Toolbox>,
    host: &exec::Host,
    stdio: [OwnedFd; 3],
) -> ! {
    use std::os::fd::AsRawFd;
    // Only these three descriptors: nothing of the other sessions.
    let raw = [
        stdio[0].as_raw_fd(),
        stdio[1].as_raw_fd(),
        stdio[2].as_raw_fd(),
    ];
    if LinuxSys.install_stdio(raw).is_err() || sys::close_range_from(3).is_err() {
        sys::exit_now(ExitStatus::Error.code().into());
    }
    std::mem::forget(stdio); // closed already, by number
    let mut audit = audit::Session::begin(&settings.audit_log, &container.id, &settings.command);
    let result = inspect(kind, settings, container)
        .and_then(|r| exec::enter(settings, r, &mut audit, &|| Ok(toolbox.clone()), host));
    audit.finish(&result);
    let status = result.unwrap_or_else(|e| {
        output::error(&e);
        ExitStatus::Error
    });
    sys::exit_now(status.code().into())
}

/// Read what one stream has; the prefixed whole lines it completes come back. At
/// its end the stream is closed (and its last line finished).
fn relay_once(stream: &mut Option<(OwnedFd, Prefixer)>, chunk: &mut [u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some((fd, prefixer)) = stream {
        match sys::read_some(fd.as_fd(), chunk) {
            Ok(0) | Err(_) => {
                prefixer.finish(&mut out);
                *stream = None;
            }
            Ok(n) => prefixer.feed(&chunk[..n], &mut out),
        }
    }
    out
}

fn write_out(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if bytes.is_empty() {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).and_then(|()| stdout.flush())
}

fn write_err(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::io::stderr().lock().write_all(bytes)
}

/// Handle what the signalfd holds. A signal sent to dlx by someone (`kill`) is
/// passed on to every session, which passes it to its command; one the terminal
/// raised (^C) already reached the sessions, which share dlx's process group. Either
/// way a terminating signal stops new sessions from starting: it is returned.
fn on_signals(signals: &SignalFd, running: &[Running]) -> Result<Option<i32>> {
    let mut stop = None;
    while let Some(info) = signals
        .read_signal()
        .map_err(|e| sys::SysError::new("read", "signalfd", e))?
    {
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if sig == Signal::SIGCHLD {
            continue;
        }
        if info.ssi_code <= 0 {
            // SI_USER, SI_QUEUE, SI_TKILL: sent to us in particular.
            for r in running.iter().filter(|r| r.end.is_none()) {
                let _ = nix::sys::signal::kill(Pid::from_raw(r.pid), sig);
            }
        }
        if matches!(
            sig,
            Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP | Signal::SIGQUIT
        ) {
            stop = Some(sig as i32);
        }
    }
    Ok(stop)
}

/// Collect the status of every session process that ended.
fn reap(running: &mut [Running]) {
    for r in running.iter_mut().filter(|r| r.end.is_none()) {
        match waitpid(Pid::from_raw(r.pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => {
                r.end = Some(u8::try_from(code & 0xff).unwrap_or(255))
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                r.end = Some(ExitStatus::signaled(sig as i32).code())
            }
            Ok(_) => {}
            Err(_) => r.end = Some(ExitStatus::Error.code()),
        }
    }
}
