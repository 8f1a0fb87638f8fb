//! The host side of a running session (P): follow the entry sequence through the
//! report pipe, verify the joined namespaces, then relay stdio and signals until the
//! command ends, and turn its end into dlx's exit status.
//!
//! The command never gets dlx's own descriptors: its stdin, stdout and stderr are
//! pipes that P copies to and from its own, unbuffered. A redirected stdout (a host
//! file) therefore never becomes reachable through `/proc/<pid>/fd` in the container.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;

use crate::handover::Handover;
use crate::launch::{Report, Step, REPORT_LEN};
use crate::sys::{self, ChildEnd, SysError};

/// How the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command ran and exited with this status.
    Exited(i32),
    /// The command ran and was killed by this signal.
    Signaled(i32),
    /// The command could not be executed.
    ExecFailed { errno: i32, found: bool },
    /// A step of the entry sequence failed.
    StepFailed(Step, i32),
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the entering process ended unexpectedly ({0:?})")]
    EntererDied(ChildEnd),
    #[error("the entering process is not in the container's {ns} namespace after joining it\nhint: the runtime may have given the container a namespace dlx cannot reach; try --ns to join fewer")]
    WrongNamespace { ns: String },
    #[error("unexpected report from the entering process")]
    Protocol,
    #[error(transparent)]
    Sys(#[from] SysError),
}

/// The descriptors P keeps, facing the command: pipe ends, or a pty master (then
/// `stdout` and `stdin` are the master, and `stderr` is None).
pub struct Pipes {
    /// Where P writes the command's input (None: stdin is closed for the command).
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: Option<OwnedFd>,
    /// With a pty: the master, to follow the operator's window size.
    pub pty: Option<OwnedFd>,
}

fn read_report(fd: BorrowedFd<'_>) -> Result<Option<Report>, SessionError> {
    let mut buf = [0u8; REPORT_LEN];
    let mut got = 0;
    while got < REPORT_LEN {
        match sys::read_some(fd, &mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(SessionError::Protocol),
            Ok(n) => got += n,
            Err(e) => return Err(SysError::new("read", "report pipe", e).into()),
        }
    }
    Report::decode(&buf).map(Some).ok_or(SessionError::Protocol)
}

/// The command process, once the entry sequence is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub pid: i32,
    /// Set when it already ended (its exec failed) while still guarded.
    pub ended: Option<ChildEnd>,
    /// A failed exec the command process reported before the enterer's last word.
    pub exec_failed: Option<Outcome>,
}

/// Follow the enterer (pid `enterer`) through the entry sequence. `verify` is called
/// once it has joined, with its pid, and must say whether it sits in the right
/// namespaces; only then does it get to go on. Returns the command process, or how
/// the sequence failed.
///
/// The guard: before letting the enterer go on, dlx traces it so that the command
/// process the launcher forks is traced by dlx from its first instruction. A process
/// has one tracer at most, so nobody in the container, not even a root holding
/// CAP_SYS_PTRACE, can attach to it: not while it still runs the launcher, and not
/// afterwards either, since dlx holds the trace (with no events) until it ends.
pub fn start(
    enterer: i32,
    report: BorrowedFd<'_>,
    go: OwnedFd,
    verify: impl FnOnce(i32) -> Result<(), SessionError>,
) -> Result<Result<Started, Outcome>, SessionError> {
    match read_report(report)? {
        Some(Report::Joined) => {}
        Some(Report::Failed(step, errno)) => {
            sys::wait_child(enterer)?;
            return Ok(Err(Outcome::StepFailed(step, errno)));
        }
        None => return Err(SessionError::EntererDied(sys::wait_child(enterer)?)),
        Some(_) => return Err(SessionError::Protocol),
    }
    if let Err(e) = verify(enterer) {
        drop(go); // EOF: the enterer stops without touching the container
        sys::wait_child(enterer)?;
        return Err(e);
    }
    let guarded = match sys::trace_forks(enterer) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot guard the command process with ptrace; it is exposed until it execs");
            false
        }
    };
    sys::write_all(go.as_fd(), b"g").map_err(|e| SysError::new("write", "sync pipe", e))?;
    drop(go);

    let (enterer_end, command, command_end) = if guarded {
        follow_guarded(enterer)?
    } else {
        (sys::wait_child(enterer)?, None, None)
    };
    // The enterer's last word: the command's pid, or the step that failed. The
    // command process runs as soon as it is forked, so a failed exec of its own may
    // reach the pipe before the enterer reports the fork.
    let mut last = read_report(report)?;
    let mut exec_failed = None;
    if let Some(Report::ExecFailed { errno, found }) = last {
        exec_failed = Some(Outcome::ExecFailed { errno, found });
        last = read_report(report)?;
    }
    match (last, enterer_end) {
        (Some(Report::Spawned(pid)), ChildEnd::Exited(0)) => Ok(Ok(Started {
            pid: command.unwrap_or(pid),
            ended: command_end,
            exec_failed,
        })),
        (Some(Report::Failed(step, errno)), _) => Ok(Err(Outcome::StepFailed(step, errno))),
        (_, end) => Err(SessionError::EntererDied(end)),
    }
}

/// Trace the enterer and its child until the enterer has exited and the child has
/// either completed its exec (then it is released) or ended.
fn follow_guarded(enterer: i32) -> Result<(ChildEnd, Option<i32>, Option<ChildEnd>), SessionError> {
    let mut enterer_end = None;
    let mut command = None;
    let mut command_end = None;
    let mut released = false;
    loop {
        match sys::wait_traced()? {
            sys::Traced::Forked { pid, child } if pid == enterer => {
                command = Some(child);
                sys::trace_continue(enterer, 0)?;
            }
            // The enterer became the launcher.
            sys::Traced::Execed(pid) if pid == enterer => {
                if let Err(e) = sys::trace_continue(pid, 0) {
                    tracing::debug!(pid, error = %e, "traced process vanished");
                }
            }
            sys::Traced::Execed(pid) => {
                // It runs the container's own program now; dlx keeps holding the
                // trace, and takes every process it starts, so that nobody else can
                // attach to any of them either.
                command.get_or_insert(pid);
                sys::trace_hold(pid)?;
                released = true;
                // From here on the command's own events wait for `relay`; only the
                // enterer's exit is still to come.
                if enterer_end.is_none() {
                    enterer_end = Some(sys::wait_child(enterer)?);
                }
            }
            // dlx's own code makes no ptrace request and no syscall stop was asked for.
            sys::Traced::Seccomp(pid) | sys::Traced::Syscall(pid) => {
                if let Err(e) = sys::trace_continue(pid, 0) {
                    tracing::debug!(pid, error = %e, "traced process vanished");
                }
            }
            sys::Traced::Stopped { pid, signal } => {
                // The child's first stop, or a signal arriving meanwhile: deliver it.
                if let Err(e) = sys::trace_continue(pid, signal) {
                    tracing::debug!(pid, error = %e, "traced process vanished");
                }
            }
            sys::Traced::Ended { pid, end } if pid == enterer => enterer_end = Some(end),
            sys::Traced::Ended { pid, end } => {
                command.get_or_insert(pid);
                command_end = Some(end);
            }
            other => tracing::debug!(?other, "unexpected trace event"),
        }
        match enterer_end {
            // Failed before forking: there is no command to wait for.
            Some(end) if command.is_none() => return Ok((end, None, None)),
            Some(end) if released || command_end.is_some() => {
                return Ok((end, command, command_end))
            }
            _ => {}
        }
    }
}

/// Relay stdio and signals until the command ends. `forward_stdin` says whether
/// dlx's own stdin is passed on (`-i`); `handover` decides the session's attach
/// requests.
pub fn relay(
    command: Started,
    report: OwnedFd,
    pipes: Pipes,
    signals: &SignalFd,
    forward_stdin: bool,
    transcript: Option<BorrowedFd<'_>>,
    handover: &Handover,
) -> Result<Outcome, SessionError> {
    let mut on_attach = |caller| handover.on_attach(caller);
    // A command that already ended while guarded has nothing left to wait for.
    let pidfd = match command.ended {
        None => Some(sys::pidfd_open(command.pid)?),
        Some(_) => None,
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();

    let mut report = Some(report);
    let mut out = Some(pipes.stdout);
    let mut err = pipes.stderr;
    let pty = pipes.pty;
    let mut to_child = pipes.stdin;
    let mut reading_stdin = forward_stdin && to_child.is_some();
    if let Some(w) = &to_child {
        sys::set_nonblocking(w.as_fd(), true)?;
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut exec_failed: Option<Outcome> = command.exec_failed;
    let mut buf = vec![0u8; 64 * 1024];

    let end = loop {
        let Some(pidfd) = &pidfd else {
            break command.ended.unwrap_or(ChildEnd::Exited(0));
        };
        // The poll set, and which slot is which.
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(7);
        let mut kinds: Vec<u8> = Vec::with_capacity(7);
        fds.push(PollFd::new(signals.as_fd(), PollFlags::POLLIN));
        kinds.push(b's');
        fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
        kinds.push(b'p');
        if let Some(r) = &report {
            fds.push(PollFd::new(r.as_fd(), PollFlags::POLLIN));
            kinds.push(b'r');
        }
        if let Some(o) = &out {
            fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
            kinds.push(b'o');
        }
        if let Some(e) = &err {
            fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
            kinds.push(b'e');
        }
        if let Some(w) = &to_child {
            if !pending.is_empty() {
                fds.push(PollFd::new(w.as_fd(), PollFlags::POLLOUT));
                kinds.push(b'w');
            } else if reading_stdin {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                kinds.push(b'i');
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(SysError::new("poll", "session", e).into()),
        }
        let ready: Vec<u8> = fds
            .iter()
            .zip(&kinds)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, k)| *k)
            .collect();
        drop(fds);

        let mut ended: Option<ChildEnd> = None;
        for kind in ready {
            match kind {
                b's' => {
                    let child_changed =
                        forward_signals(signals, pidfd.as_fd(), pty.as_ref().map(|p| p.as_fd()));
                    if child_changed && ended.is_none() {
                        ended = sys::service_traced(command.pid, &mut on_attach)?;
                    }
                }
                b'p' if ended.is_none() => {
                    ended = sys::service_traced(command.pid, &mut on_attach)?;
                }
                b'r' => {
                    let r = report
                        .as_ref()
                        .map(|r| read_report(r.as_fd()))
                        .transpose()?
                        .flatten();
                    match r {
                        Some(Report::ExecFailed { errno, found }) => {
                            exec_failed = Some(Outcome::ExecFailed { errno, found })
                        }
                        Some(Report::Failed(step, errno)) => {
                            exec_failed = Some(Outcome::StepFailed(step, errno))
                        }
                        // EOF: every write end is gone, so the exec succeeded.
                        _ => report = None,
                    }
                }
                b'o' => copy_once(&mut out, &mut buf, stdout.as_fd(), transcript),
                b'e' => copy_once(&mut err, &mut buf, stderr.as_fd(), transcript),
                b'i' => match sys::read_some(stdin.as_fd(), &mut buf) {
                    Ok(0) | Err(_) => {
                        reading_stdin = false;
                        to_child = None; // EOF reaches the command
                    }
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                },
                b'w' => {
                    if let Some(w) = &to_child {
                        match nix::unistd::write(w.as_fd(), &pending) {
                            Ok(n) => {
                                pending.drain(..n);
                            }
                            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                            Err(_) => {
                                // The command closed its stdin: stop feeding it.
                                pending.clear();
                                reading_stdin = false;
                                to_child = None;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(end) = ended {
            break end;
        }
    };

    // The command is gone: pass on whatever it wrote and is still buffered, without
    // waiting for descendants that may hold the pipes open.
    for (pipe, sink) in [(&mut out, stdout.as_fd()), (&mut err, stderr.as_fd())] {
        if let Some(p) = pipe.as_ref() {
            let _ = sys::set_nonblocking(p.as_fd(), true);
        }
        while drain_once(pipe, &mut buf, sink, transcript) {}
    }
    if let Some(r) = report.take() {
        let _ = sys::set_nonblocking(r.as_fd(), true);
        if let Ok(Some(Report::ExecFailed { errno, found })) = read_report(r.as_fd()) {
            exec_failed = Some(Outcome::ExecFailed { errno, found });
        }
    }
    if let Some(outcome) = exec_failed {
        return Ok(outcome);
    }
    Ok(match end {
        ChildEnd::Exited(code) => Outcome::Exited(code),
        ChildEnd::Signaled(sig) => Outcome::Signaled(sig),
    })
}

/// Copy one chunk from `pipe` to `sink`; on EOF or a dead sink the pipe is dropped
/// (closing our end, so a writer to a closed stdout gets SIGPIPE as it would alone).
/// A `transcript` (forensic sessions) gets a copy of everything, best effort.
fn copy_once(
    pipe: &mut Option<OwnedFd>,
    buf: &mut [u8],
    sink: BorrowedFd<'_>,
    transcript: Option<BorrowedFd<'_>>,
) {
    let Some(p) = pipe.as_ref() else { return };
    match sys::read_some(p.as_fd(), buf) {
        Ok(0) => *pipe = None,
        Ok(n) => {
            if let Some(t) = transcript {
                let _ = sys::write_all(t, &buf[..n]);
            }
            if sys::write_all(sink, &buf[..n]).is_err() {
                *pipe = None;
            }
        }
        Err(Errno::EAGAIN) => {}
        Err(_) => *pipe = None,
    }
}

/// Like [`copy_once`] on a non-blocking pipe; false when nothing more is there now.
fn drain_once(
    pipe: &mut Option<OwnedFd>,
    buf: &mut [u8],
    sink: BorrowedFd<'_>,
    transcript: Option<BorrowedFd<'_>>,
) -> bool {
    let Some(p) = pipe.as_ref() else { return false };
    match sys::read_some(p.as_fd(), buf) {
        Ok(0) | Err(_) => {
            *pipe = None;
            false
        }
        Ok(n) => {
            if let Some(t) = transcript {
                let _ = sys::write_all(t, &buf[..n]);
            }
            sys::write_all(sink, &buf[..n]).is_ok()
        }
    }
}

/// Pass every pending forwardable signal on to the command. With a pty, a window
/// change is applied to the pty instead (the kernel then signals the session's
/// foreground job). Returns whether a SIGCHLD said the command changed state.
fn forward_signals(signals: &SignalFd, pidfd: BorrowedFd<'_>, pty: Option<BorrowedFd<'_>>) -> bool {
    let mut child_changed = false;
    while let Ok(Some(info)) = signals.read_signal() {
        let signo = info.ssi_signo as i32;
        if signo == libc::SIGCHLD {
            child_changed = true;
            continue;
        }
        if signo == libc::SIGWINCH {
            if let Some(master) = pty {
                let _ = sys::copy_window_size(std::io::stdout().as_fd(), master)
                    .or_else(|_| sys::copy_window_size(std::io::stdin().as_fd(), master));
            }
            continue;
        }
        tracing::debug!(signo, "forwarding signal");
        if let Err(e) = sys::pidfd_kill(pidfd, signo) {
            tracing::debug!(error = %e, "signal not forwarded");
        }
    }
    child_changed
}
