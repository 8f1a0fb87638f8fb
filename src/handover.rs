//! Handing dlx's hold on a session process over to a tracer of the same session.
//!
//! dlx traces every process of a session from birth, so that nobody in the container
//! can attach to any of them: a process has one tracer at most. A tracer the operator
//! runs in the session (the toolbox's strace) must attach to processes dlx holds: the
//! child it starts (and, before that, the child it probes `PTRACE_SEIZE` with), or a
//! session process named with `-p`. A hold cannot pass from one tracer to another
//! atomically: between dlx's detach and strace's attach, whoever attaches first wins,
//! and a container root with CAP_SYS_PTRACE watches for exactly that. So the handover
//! happens with the container frozen: nothing in its cgroup runs, so nothing in it can
//! attach, while the tracer and its target (moved out of the frozen cgroup for the
//! moment) complete the attach. Then they move back and the container thaws.
//!
//! dlx learns of the attach from the attach guard, a seccomp filter every session
//! process carries (`Sys::guard_attaches`): `ptrace(PTRACE_ATTACH | PTRACE_SEIZE |
//! PTRACE_TRACEME)` stops the caller for dlx to decide before the kernel looks at it.
//! A request for a process dlx does not hold (a container process, for `strace -p 1`)
//! goes ahead untouched. A hold is handed only to the toolbox's own programs, checked by
//! the identity of the file they run; anything else gets "Operation not permitted",
//! as it always did. Host-tools sessions live outside the container's PID namespace,
//! where nothing in the container can name them: any of their programs may trace, and
//! nothing is frozen.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cgroup::Freezer;
use crate::sys::{self, AttachRequest, ChildEnd, SysError, Traced};

/// How long the container may take to freeze before the handover is refused.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a `PTRACE_TRACEME` caller may take to become traced by its parent.
const TRACEME_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("refused to let pid {tracer} trace pid {target}: only the toolbox's own programs may trace a process of the session")]
    NotToolbox { tracer: i32, target: i32 },
    #[error("refused to let pid {tracer} trace pid {target}: the container's cgroup cannot be frozen for the handover (no freezer)\nhint: strace -p of a container process, or the container's own tools, still work")]
    NoFreezer { tracer: i32, target: i32 },
    #[error("refused to let pid {tracer} trace pid {target}: the container did not freeze within {timeout:?}")]
    FreezeTimeout {
        tracer: i32,
        target: i32,
        timeout: Duration,
    },
    #[error("handover of pid {target} to pid {tracer} failed: {source}")]
    Sys {
        tracer: i32,
        target: i32,
        source: SysError,
    },
}

/// What dlx needs to decide attach requests of a session's processes.
pub struct Handover {
    /// The toolbox's host directory (`None`: no toolbox, nobody gets a hold).
    toolbox: Option<PathBuf>,
    freezer: Option<Freezer>,
    /// The session lives outside the container's PID namespace (host tools): any of
    /// its programs may trace, with nothing frozen.
    outside: bool,
    /// dlx's pid: the tracer of every process it holds.
    me: i32,
}

/// `/proc/<pid>/status` of a host process (parent, tracer, pids in every PID
/// namespace from dlx's down).
fn status(pid: i32) -> Option<procfs::process::Status> {
    let raw = sys::read_file(&format!("/proc/{pid}/status"), 64 * 1024).ok()?;
    use procfs::FromBufRead;
    procfs::process::Status::from_buf_read(&raw[..]).ok()
}

/// Who is to trace whom, once a request has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    tracer: i32,
    target: i32,
    /// `PTRACE_TRACEME`: the target is the caller, and makes the attach itself.
    traceme: bool,
}

impl Handover {
    /// For a session inside the container's PID namespace: hand over to the
    /// toolbox's programs, with the container's `freezer` frozen.
    pub fn new(toolbox: Option<PathBuf>, freezer: Option<Freezer>) -> Handover {
        Handover {
            toolbox,
            freezer,
            outside: false,
            me: std::process::id() as i32,
        }
    }

    /// For a session outside the container's PID namespace (host tools).
    pub fn outside() -> Handover {
        Handover {
            toolbox: None,
            freezer: None,
            outside: true,
            me: std::process::id() as i32,
        }
    }

    /// Session process `caller` is stopped at the attach guard: hand the target over,
    /// or refuse, or let a request about somebody else go ahead; in every case the
    /// caller goes on. Returns the ends of session processes seen on the way.
    pub fn on_attach(&self, caller: i32) -> Vec<(i32, ChildEnd)> {
        let mut ended = Vec::new();
        let mut resumed = false;
        match self.plan(caller) {
            Ok(None) => {}
            Ok(Some(plan)) => {
                if let Err(e) = self.hand_over(plan, &mut ended, &mut resumed) {
                    crate::output::notice(e.to_string());
                }
            }
            Err(e) => crate::output::notice(e.to_string()),
        }
        if !resumed && !ended.iter().any(|(pid, _)| *pid == caller) {
            if let Err(e) = sys::trace_continue(caller, 0) {
                tracing::debug!(caller, error = %e, "traced process vanished");
            }
        }
        ended
    }

    /// Read `caller`'s request: `Ok(None)` when it is not about a process dlx holds.
    fn plan(&self, caller: i32) -> Result<Option<Plan>, HandoverError> {
        let plan = match sys::attach_request(caller) {
            Ok(Some(AttachRequest::Attach { pid })) => match self.held(caller, pid) {
                Some(target) => Plan {
                    tracer: caller,
                    target,
                    traceme: false,
                },
                None => return Ok(None),
            },
            Ok(Some(AttachRequest::TraceMe)) => Plan {
                tracer: status(caller).map(|s| s.ppid).unwrap_or(0),
                target: caller,
                traceme: true,
            },
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::debug!(caller, error = %e, "attach request unreadable");
                return Ok(None);
            }
        };
        if self.outside {
            return Ok(Some(plan));
        }
        if !self.runs_toolbox_program(plan.tracer) {
            return Err(HandoverError::NotToolbox {
                tracer: plan.tracer,
                target: plan.target,
            });
        }
        Ok(Some(plan))
    }

    /// The host pid of the process dlx traces that `caller` calls `nspid` (in its own
    /// PID namespace), if any.
    fn held(&self, caller: i32, nspid: i32) -> Option<i32> {
        let pidns = |pid: i32| std::fs::metadata(format!("/proc/{pid}/ns/pid")).ok();
        let caller_ns = pidns(caller)?;
        let same_ns = |pid: i32| {
            use std::os::unix::fs::MetadataExt;
            pidns(pid).is_some_and(|m| m.dev() == caller_ns.dev() && m.ino() == caller_ns.ino())
        };
        std::fs::read_dir("/proc")
            .ok()?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .find(|&pid| {
                status(pid).is_some_and(|s| {
                    s.tracerpid == self.me
                        && s.nspid.as_ref().and_then(|ids| ids.last()) == Some(&nspid)
                }) && same_ns(pid)
            })
    }

    /// Whether `pid` runs a file of the toolbox: its exe is the very file (device and
    /// inode) at the same place in the toolbox's host directory.
    fn runs_toolbox_program(&self, pid: i32) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some(root) = &self.toolbox else {
            return false;
        };
        let Some(seen) = sys::exe_path(pid) else {
            return false;
        };
        let Ok(inside) = seen.strip_prefix(crate::toolbox::MOUNT_POINT) else {
            return false;
        };
        let (Ok(exe), Ok(ours)) = (
            std::fs::metadata(format!("/proc/{pid}/exe")),
            std::fs::symlink_metadata(root.join(inside)),
        ) else {
            return false;
        };
        exe.dev() == ours.dev() && exe.ino() == ours.ino()
    }

    /// The handover: let go of the target and let the attach happen (with the
    /// container frozen, unless the session lives outside its PID namespace), then
    /// let the tracer go on.
    fn hand_over(
        &self,
        plan: Plan,
        ended: &mut Vec<(i32, ChildEnd)>,
        resumed: &mut bool,
    ) -> Result<(), HandoverError> {
        let Plan {
            tracer,
            target,
            traceme,
        } = plan;
        let mut release = |ended: &mut Vec<(i32, ChildEnd)>| match traceme {
            false => release_to_attach(plan, ended),
            // A PTRACE_TRACEME caller goes on by itself once let go.
            true => release_to_traceme(plan).inspect(|_| *resumed = true),
        };
        let tracer_stop = match (&self.freezer, self.outside) {
            // Host tools: nothing in the container can even name these processes.
            (_, true) => release(ended).map_err(|source| HandoverError::Sys {
                tracer,
                target,
                source,
            })?,
            (Some(freezer), false) => frozen(freezer, plan, || release(ended))?,
            (None, false) => return Err(HandoverError::NoFreezer { tracer, target }),
        };
        // The tracer goes on only now, with the container running again.
        if let Some(signal) = tracer_stop {
            *resumed = true;
            if let Err(e) = sys::trace_continue(tracer, signal) {
                tracing::debug!(tracer, error = %e, "tracer vanished");
            }
        }
        Ok(())
    }
}

/// Run `release` with the container frozen throughout. The order matters: freeze
/// first (from then on nothing in the container runs), then move the tracer and its
/// target, which must run, out of the frozen cgroup, then `release`, and only then
/// move them back and thaw.
fn frozen(
    freezer: &Freezer,
    plan: Plan,
    release: impl FnOnce() -> Result<Option<i32>, SysError>,
) -> Result<Option<i32>, HandoverError> {
    let Plan { tracer, target, .. } = plan;
    let sys_err = |source| HandoverError::Sys {
        tracer,
        target,
        source,
    };
    // One handover at a time per container: another dlx session must not thaw it
    // under us.
    let _lock = sys::lock_dir(&freezer.dir().to_string_lossy()).map_err(sys_err)?;
    // A session in the container's cgroup (the default) would be frozen too, so the
    // tracer and its target are moved out while it is. A move takes the kernel's
    // global cgroup lock, which first waits out an RCU grace period when no move
    // happened lately (10-20 ms, see `cgroup::Join`). Wait it out now, with a move
    // that changes nothing, so that the container is not frozen meanwhile.
    let movers: Vec<i32> = [tracer, target]
        .into_iter()
        .filter(|&pid| freezer.holds(pid))
        .collect();
    if let Some(&pid) = movers.first() {
        let _ = freezer.move_process(pid, false);
    }
    let start = Instant::now();
    let was_frozen = freezer.is_frozen();
    if !was_frozen {
        freezer.set_frozen(true).map_err(sys_err)?;
        if !wait_until(FREEZE_TIMEOUT, || freezer.is_frozen()) {
            let _ = freezer.set_frozen(false);
            return Err(HandoverError::FreezeTimeout {
                tracer,
                target,
                timeout: FREEZE_TIMEOUT,
            });
        }
    }
    let mut moved = Vec::new();
    let mut result = Ok(None);
    for pid in movers {
        match freezer.move_process(pid, true) {
            Ok(()) => moved.push(pid),
            Err(e) => {
                result = Err(sys_err(e));
                break;
            }
        }
    }
    if result.is_ok() {
        result = release().map_err(sys_err);
    }
    for pid in moved {
        if let Err(e) = freezer.move_process(pid, false) {
            tracing::debug!(pid, error = %e, "not moved back (ended?)");
        }
    }
    if !was_frozen {
        freezer.set_frozen(false).map_err(sys_err)?;
    }
    tracing::debug!(tracer, target, frozen_for = ?start.elapsed(), "handed over");
    result
}

/// `PTRACE_ATTACH`/`PTRACE_SEIZE`: stop the target wherever it is and let go of it,
/// then let the tracer's call run to its end. Returns the signal to resume the tracer
/// with, or `None` when it ended.
fn release_to_attach(
    plan: Plan,
    ended: &mut Vec<(i32, ChildEnd)>,
) -> Result<Option<i32>, SysError> {
    let Plan { tracer, target, .. } = plan;
    match sys::trace_interrupt(target) {
        Err(e) if e.errno == nix::errno::Errno::ESRCH => {}
        Err(e) => return Err(e),
        // Its next stop: the interrupt's, or one that was already on its way.
        Ok(()) => match sys::wait_traced_pid(target)? {
            Traced::Ended { end, .. } => ended.push((target, end)),
            // A signal on its way is delivered as we let go; a process in a group
            // stop stays stopped.
            Traced::Stopped { signal, .. } => sys::trace_detach(target, signal)?,
            Traced::Forked { .. } | Traced::Execed(_) | Traced::Seccomp(_) | Traced::Syscall(_) => {
                sys::trace_detach(target, 0)?
            }
        },
    }
    sys::trace_to_syscall_exit(tracer)?;
    loop {
        match sys::wait_traced_pid(tracer)? {
            Traced::Syscall(_) => return Ok(Some(0)),
            Traced::Ended { end, .. } => {
                ended.push((tracer, end));
                return Ok(None);
            }
            Traced::Stopped { signal, .. } => return Ok(Some(signal)),
            Traced::Forked { .. } | Traced::Execed(_) | Traced::Seccomp(_) => {
                sys::trace_to_syscall_exit(tracer)?
            }
        }
    }
}

/// `PTRACE_TRACEME`: the caller (the target, stopped at the guard) makes the attach
/// itself once dlx lets go of it; wait until its parent traces it. Returns `None`:
/// the tracer (its parent) was never stopped.
fn release_to_traceme(plan: Plan) -> Result<Option<i32>, SysError> {
    let Plan { tracer, target, .. } = plan;
    sys::trace_detach(target, 0)?;
    if !wait_until(TRACEME_TIMEOUT, || {
        status(target).is_none_or(|s| s.tracerpid == tracer)
    }) {
        tracing::debug!(target, tracer, "PTRACE_TRACEME did not complete in time");
    }
    Ok(None)
}

/// Poll `done` with a growing pause until it holds or `timeout` passes.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_gives_up_after_its_timeout() {
        let start = Instant::now();
        assert!(!wait_until(Duration::from_millis(20), || false));
        assert!(start.elapsed() >= Duration::from_millis(20));
        let mut calls = 0;
        assert!(wait_until(Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        }));
    }

    #[test]
    fn nobody_gets_a_hold_without_a_toolbox() {
        let h = Handover::new(None, None);
        assert!(!h.runs_toolbox_program(std::process::id() as i32));
    }
}
