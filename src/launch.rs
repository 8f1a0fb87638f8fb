//! The privileged entry sequence, as two linear functions.
//!
//! dlx (P, on the host) forks an *enterer* (E). E runs [`enter`]: it moves into the
//! container's cgroup, joins the namespaces through the pidfd, lets P verify the
//! join, takes on the container's identity and capabilities, and forks the *command*
//! process (F). F runs [`become_command`]: it resets what a fresh process has and
//! execs the command. E exits at once, so F is re-parented to P (a subreaper) and P
//! waits for it directly.
//!
//! Why E and F: joining a PID namespace only places *children* there, and
//! everything a container can see must happen after the privilege drop. E is never
//! visible in the container (it stays in the host's PID namespace); F appears there
//! only once it already has the container's uid, capabilities and no host descriptor
//! but its stdio pipes and the report pipe (close-on-exec).
//!
//! Everything E and F need (strings, descriptors) is prepared by P beforehand; they
//! only make system calls, all through [`Sys`].

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use crate::ns::NsKind;
use crate::sys::{CapSets, Fork, Ids, NsFlags, Rlimit, Sys, SysError};

/// Everything the entering processes need, prepared by P.
pub struct Plan {
    pub pidfd: OwnedFd,
    /// Namespaces joined in one atomic `setns` (all but cgroup and user).
    pub ns_flags: NsFlags,
    pub join_cgroup_ns: bool,
    pub join_user_ns: bool,
    /// The session's private view of the container's filesystem (toolbox sessions);
    /// `None` runs in the container's own mount namespace.
    pub view: Option<View>,
    /// Host cgroup files to write ourselves ("0") into: v1 `tasks`, and v2's
    /// `cgroup.procs` unless the fork already placed us there (empty: stay in dlx's).
    pub cgroup_files: Vec<OwnedFd>,
    pub rlimits: Vec<Rlimit>,
    /// (`/proc/thread-self/attr/...` path, label bytes) for the exec transition.
    pub exec_label: Option<(CString, Vec<u8>)>,
    pub ids: Ids,
    /// `None` with `--privileged`: keep dlx's capabilities.
    pub caps: Option<CapSets>,
    pub workdir: CString,
    /// Paths to try, in order (the command itself when it has a `/`, else PATH).
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// The command's stdin, stdout and stderr (pipe ends).
    pub stdio: [OwnedFd; 3],
    /// Write end of the report pipe (close-on-exec).
    pub report: OwnedFd,
    /// Read end of the sync pipe: P writes one byte when E may go on.
    pub go: OwnedFd,
    pub tty: bool,
}

/// What the private view holds (see `sys::enter_private_view`).
pub struct View {
    /// Detached read-only clone of the toolbox, made on the host.
    pub toolbox: Option<OwnedFd>,
    /// The container's tree read-only too (forensic sessions).
    pub read_only: bool,
}

/// Where the report descriptor sits once E has cleared out every other descriptor.
pub const REPORT_FD: RawFd = 3;

/// Steps named in failure reports, so P can say where things stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    ParentDeathSignal = 1,
    Cgroup,
    Rlimit,
    ExecLabel,
    Namespaces,
    CgroupNamespace,
    Verify,
    View,
    UserNamespace,
    Keyring,
    NoNewPrivs,
    Guard,
    Bounding,
    Identity,
    Workdir,
    Capabilities,
    Stdio,
    Fork,
    Session,
    Exec,
}

impl Step {
    const ALL: [Step; 20] = [
        Step::ParentDeathSignal,
        Step::Cgroup,
        Step::Rlimit,
        Step::ExecLabel,
        Step::Namespaces,
        Step::CgroupNamespace,
        Step::Verify,
        Step::View,
        Step::UserNamespace,
        Step::Keyring,
        Step::NoNewPrivs,
        Step::Guard,
        Step::Bounding,
        Step::Identity,
        Step::Workdir,
        Step::Capabilities,
        Step::Stdio,
        Step::Fork,
        Step::Session,
        Step::Exec,
    ];

    fn from_u8(v: u8) -> Option<Step> {
        Step::ALL.into_iter().find(|s| *s as u8 == v)
    }

    /// What the step does, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Step::ParentDeathSignal => "set the parent-death signal",
            Step::Cgroup => "join the container's cgroup",
            Step::Rlimit => "apply the container's resource limits",
            Step::ExecLabel => "set the container's security label",
            Step::Namespaces => "join the container's namespaces",
            Step::CgroupNamespace => "join the container's cgroup namespace",
            Step::UserNamespace => "join the container's user namespace",
            Step::Verify => "verify the joined namespaces",
            Step::View => "build the session's private view of the container's filesystem",
            Step::Keyring => "create a session keyring",
            Step::NoNewPrivs => "set no_new_privs",
            Step::Guard => "install the attach guard (a seccomp filter)",
            Step::Bounding => "limit the capability bounding set",
            Step::Identity => "switch to the container user",
            Step::Workdir => "enter the working directory",
            Step::Capabilities => "set the container's capabilities",
            Step::Stdio => "set up stdin, stdout and stderr",
            Step::Fork => "start the command process",
            Step::Session => "start a new session",
            Step::Exec => "execute the command",
        }
    }
}

/// A message from E or F to P over the report pipe: fixed size, so a read never
/// splits one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// E has joined the namespaces and waits for P to verify them.
    Joined,
    /// E started F, whose pid (in P's namespace) is given.
    Spawned(i32),
    /// A step failed with this errno.
    Failed(Step, i32),
    /// F could not execute the command; `found` says whether some candidate existed.
    ExecFailed { errno: i32, found: bool },
}

pub const REPORT_LEN: usize = 12;

impl Report {
    pub fn encode(self) -> [u8; REPORT_LEN] {
        let (kind, step, a, b) = match self {
            Report::Joined => (1u8, 0u8, 0i32, 0i32),
            Report::Spawned(pid) => (2, 0, pid, 0),
            Report::Failed(step, errno) => (3, step as u8, errno, 0),
            Report::ExecFailed { errno, found } => (4, Step::Exec as u8, errno, i32::from(found)),
        };
        let mut out = [0u8; REPORT_LEN];
        out[0] = kind;
        out[1] = step;
        out[4..8].copy_from_slice(&a.to_ne_bytes());
        out[8..12].copy_from_slice(&b.to_ne_bytes());
        out
    }

    pub fn decode(buf: &[u8; REPORT_LEN]) -> Option<Report> {
        let a = i32::from_ne_bytes(buf[4..8].try_into().ok()?);
        let b = i32::from_ne_bytes(buf[8..12].try_into().ok()?);
        match buf[0] {
            1 => Some(Report::Joined),
            2 => Some(Report::Spawned(a)),
            3 => Some(Report::Failed(Step::from_u8(buf[1])?, a)),
            4 => Some(Report::ExecFailed {
                errno: a,
                found: b != 0,
            }),
            _ => None,
        }
    }
}

/// A step failure inside E or F.
#[derive(Debug)]
pub struct Failure {
    pub step: Step,
    pub error: SysError,
}

fn at(step: Step) -> impl FnOnce(SysError) -> Failure {
    move |error| Failure { step, error }
}

/// The enterer's sequence (E). Returns `Fork::Parent(pid of F)` in E and
/// `Fork::Child` in F, which must then call [`become_command`].
pub fn enter(plan: &Plan, sys: &dyn Sys) -> Result<Fork, Failure> {
    // Die with dlx: an orphaned enterer must never linger in a container.
    sys.set_parent_death_signal()
        .map_err(at(Step::ParentDeathSignal))?;

    // Host-side work first, while our mount namespace, procfs and cgroupfs are still
    // the host's: the cgroup descriptors and /proc/thread-self refer to host
    // objects, and after the user namespace join we would lack the privilege.
    for file in &plan.cgroup_files {
        sys.join_cgroup(file.as_fd()).map_err(at(Step::Cgroup))?;
    }
    for limit in &plan.rlimits {
        // Raising a hard limit needs CAP_SYS_RESOURCE, which some hosts withhold;
        // a limit we cannot raise stays at dlx's (lower) value.
        if let Err(e) = sys.set_rlimit(*limit) {
            tracing::debug!(resource = limit.resource, error = %e, "rlimit not copied");
        }
    }
    if let Some((attr, label)) = &plan.exec_label {
        sys.set_exec_label(attr, label)
            .map_err(at(Step::ExecLabel))?;
    }

    // Join through the pidfd: atomic (all or none) and immune to PID reuse. The
    // cgroup namespace comes after the cgroup move so its root is the container's
    // cgroup.
    if !plan.ns_flags.is_empty() {
        sys.setns(plan.pidfd.as_fd(), plan.ns_flags)
            .map_err(at(Step::Namespaces))?;
    }
    if plan.join_cgroup_ns {
        sys.setns(plan.pidfd.as_fd(), NsKind::Cgroup.flag())
            .map_err(at(Step::CgroupNamespace))?;
    }

    // Let P check from the host, by inode, that we are where we meant to be (the
    // container's own mount namespace, before we copy it).
    sys.report(plan.report.as_raw_fd(), &Report::Joined.encode())
        .map_err(at(Step::Verify))?;
    if !sys.wait_go(plan.go.as_raw_fd()).map_err(at(Step::Verify))? {
        return Err(Failure {
            step: Step::Verify,
            error: SysError::new("verify", "namespaces", Errno::ECANCELED),
        });
    }

    // The private view (toolbox sessions): copied while we are still in the initial
    // user namespace, so the copy belongs to it and nobody in the container can
    // change or enter-and-alter it.
    if let Some(view) = &plan.view {
        let toolbox = view.toolbox.as_ref().map(|fd| fd.as_fd());
        sys.enter_private_view(toolbox, view.read_only)
            .map_err(at(Step::View))?;
    }
    // The user namespace last (same pinned pidfd): afterwards our capabilities count
    // only inside it.
    if plan.join_user_ns {
        sys.setns(plan.pidfd.as_fd(), NsKind::User.flag())
            .map_err(at(Step::UserNamespace))?;
    }

    // Become the container's process. Keyrings are not namespaced: a new anonymous
    // session keyring keeps root's host keys out of reach.
    sys.join_new_session_keyring().map_err(at(Step::Keyring))?;
    // no_new_privs: setuid binaries planted in the container gain nothing (and the
    // attach guard needs no privilege).
    sys.set_no_new_privs().map_err(at(Step::NoNewPrivs))?;
    // The attach guard: every ptrace attach request of the session stops for P to
    // decide (`crate::handover`), so that the toolbox's strace can get P's hold on a
    // session process without anybody else getting it first.
    sys.guard_attaches().map_err(at(Step::Guard))?;
    // runc's order: bounding set first (needs CAP_SETPCAP), then keep permitted
    // capabilities across the uid change, then the ids, then the final sets.
    if let Some(caps) = &plan.caps {
        sys.limit_bounding_set(caps.bounding)
            .map_err(at(Step::Bounding))?;
    }
    sys.set_keep_caps(true).map_err(at(Step::Identity))?;
    sys.set_ids(&plan.ids).map_err(at(Step::Identity))?;
    // As the user: a directory the user may not enter fails as under docker exec.
    sys.chdir_in_root(&plan.workdir)
        .map_err(at(Step::Workdir))?;
    if let Some(caps) = &plan.caps {
        sys.set_caps(caps).map_err(at(Step::Capabilities))?;
    }

    // Nothing of the host past this point: stdio becomes the pipes, the report pipe
    // moves to fd 3 (close-on-exec) and every other descriptor (pidfd, cgroup files,
    // sync pipe) is closed.
    let stdio = [
        plan.stdio[0].as_raw_fd(),
        plan.stdio[1].as_raw_fd(),
        plan.stdio[2].as_raw_fd(),
    ];
    sys.install_stdio(stdio).map_err(at(Step::Stdio))?;
    sys.move_fd(plan.report.as_raw_fd(), REPORT_FD)
        .map_err(at(Step::Stdio))?;
    sys.close_from(REPORT_FD + 1).map_err(at(Step::Stdio))?;

    // F is born in the container's PID namespace.
    let forked = sys.fork().map_err(at(Step::Fork))?;
    if let Fork::Parent(pid) = forked {
        sys.report(REPORT_FD, &Report::Spawned(pid).encode())
            .map_err(at(Step::Fork))?;
    }
    Ok(forked)
}

/// The command process's sequence (F): returns only when the command could not be
/// executed, with the report to send.
pub fn become_command(plan: &Plan, sys: &dyn Sys) -> Report {
    if let Err(e) = sys.reset_signals_and_umask() {
        return Report::Failed(Step::Session, e.errno as i32);
    }
    if let Err(e) = sys.setsid() {
        return Report::Failed(Step::Session, e.errno as i32);
    }
    if plan.tty {
        if let Err(e) = sys.set_controlling_tty() {
            return Report::Failed(Step::Session, e.errno as i32);
        }
    }
    exec_first(plan, sys)
}

/// Try each candidate path like execvp(3): a missing one moves on; one that exists
/// but cannot run is remembered, so the status is 126 rather than 127.
fn exec_first(plan: &Plan, sys: &dyn Sys) -> Report {
    let mut found_errno: Option<Errno> = None;
    let mut last = Errno::ENOENT;
    for path in &plan.candidates {
        let errno = sys.execve(path, &plan.argv, &plan.envp);
        match errno {
            Errno::ENOENT | Errno::ENOTDIR => last = errno,
            other => {
                found_errno.get_or_insert(other);
            }
        }
    }
    match found_errno {
        Some(errno) => Report::ExecFailed {
            errno: errno as i32,
            found: true,
        },
        None => Report::ExecFailed {
            errno: last as i32,
            found: false,
        },
    }
}

/// The paths to try for `command` given the container's `PATH`.
pub fn candidates(command: &str, path: &str) -> Vec<String> {
    if command.contains('/') {
        return vec![command.to_string()];
    }
    path.split(':')
        .map(|dir| if dir.is_empty() { "." } else { dir })
        .map(|dir| format!("{}/{command}", dir.trim_end_matches('/')))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::FakeSys;

    fn plan(caps: Option<CapSets>) -> Plan {
        let fd = || OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        Plan {
            pidfd: fd(),
            ns_flags: NsKind::Mnt.flag() | NsKind::Pid.flag() | NsKind::Net.flag(),
            join_cgroup_ns: true,
            join_user_ns: true,
            view: Some(View {
                toolbox: Some(fd()),
                read_only: false,
            }),
            cgroup_files: vec![fd(), fd()],
            rlimits: vec![Rlimit {
                resource: 7,
                soft: 1024,
                hard: 4096,
            }],
            exec_label: Some((
                CString::new("/proc/thread-self/attr/exec").unwrap(),
                b"exec docker-default".to_vec(),
            )),
            ids: Ids {
                uid: 65532,
                gid: 65532,
                groups: vec![],
            },
            caps,
            workdir: CString::new("/home/nonroot").unwrap(),
            candidates: vec![CString::new("/bin/ls").unwrap()],
            argv: vec![CString::new("ls").unwrap()],
            envp: vec![],
            stdio: [fd(), fd(), fd()],
            report: fd(),
            go: fd(),
            tty: false,
        }
    }

    const CAPS: CapSets = CapSets {
        bounding: 0xa80425fb,
        effective: 0xa80425fb,
        permitted: 0xa80425fb,
    };

    #[test]
    fn host_side_work_precedes_every_namespace_join() {
        let sys = FakeSys::default();
        enter(&plan(Some(CAPS)), &sys).unwrap();
        let first_setns = sys.position("setns");
        for host_op in [
            "set_parent_death_signal",
            "join_cgroup",
            "set_rlimit",
            "set_exec_label",
        ] {
            assert!(
                sys.position(host_op) < first_setns,
                "{host_op} after setns: {:?}",
                sys.calls.borrow()
            );
        }
    }

    #[test]
    fn user_namespace_is_joined_last() {
        let sys = FakeSys::default();
        enter(&plan(Some(CAPS)), &sys).unwrap();
        let setns: Vec<String> = sys
            .calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with("setns"))
            .cloned()
            .collect();
        assert_eq!(setns.len(), 3);
        assert_eq!(setns[2], format!("setns({:#x})", libc::CLONE_NEWUSER));
        assert_eq!(setns[1], format!("setns({:#x})", libc::CLONE_NEWCGROUP));
    }

    #[test]
    fn privileges_drop_in_runc_order_and_before_the_fork() {
        let sys = FakeSys::default();
        enter(&plan(Some(CAPS)), &sys).unwrap();
        let order = [
            "wait_go",
            "set_no_new_privs",
            "guard_attaches",
            "limit_bounding_set",
            "set_keep_caps",
            "set_ids",
            "chdir_in_root",
            "set_caps",
            "install_stdio",
            "close_from",
            "fork",
        ];
        let positions: Vec<usize> = order.iter().map(|op| sys.position(op)).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "order: {:?}",
            sys.calls.borrow()
        );
        // F's pid reaches P only after the fork.
        assert_eq!(sys.calls.borrow().last().unwrap(), "report(2)");
    }

    #[test]
    fn privileged_keeps_capabilities() {
        let sys = FakeSys::default();
        enter(&plan(None), &sys).unwrap();
        assert!(!sys
            .names()
            .iter()
            .any(|n| n == "limit_bounding_set" || n == "set_caps"));
        assert!(sys.names().iter().any(|n| n == "set_no_new_privs"));
    }

    #[test]
    fn nothing_happens_in_the_container_when_verification_is_refused() {
        let sys = FakeSys {
            go: Some(false),
            ..FakeSys::default()
        };
        let err = enter(&plan(Some(CAPS)), &sys).unwrap_err();
        assert_eq!(err.step, Step::Verify);
        assert!(!sys.names().iter().any(|n| n == "set_ids" || n == "fork"));
    }

    #[test]
    fn private_view_is_built_after_verification_and_before_user_ns_and_drop() {
        let sys = FakeSys::default();
        enter(&plan(Some(CAPS)), &sys).unwrap();
        let order = [
            "wait_go",
            "enter_private_view",
            "setns",
            "set_no_new_privs",
            "set_ids",
        ];
        let calls = sys.calls.borrow().clone();
        let user = format!("setns({:#x})", libc::CLONE_NEWUSER);
        let pos = |op: &str| {
            if op == "setns" {
                calls.iter().position(|c| *c == user).unwrap()
            } else {
                sys.position(op)
            }
        };
        let positions: Vec<usize> = order.iter().map(|op| pos(op)).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{calls:?}");
        assert!(calls.contains(&"enter_private_view(toolbox=true,ro=false)".to_string()));
    }

    #[test]
    fn no_private_view_without_a_toolbox_session() {
        let sys = FakeSys::default();
        let mut p = plan(Some(CAPS));
        p.view = None;
        enter(&p, &sys).unwrap();
        assert!(!sys.names().iter().any(|n| n == "enter_private_view"));
    }

    #[test]
    fn a_failed_private_view_stops_before_the_user_namespace() {
        let sys = FakeSys {
            fail_at: Some("enter_private_view"),
            ..FakeSys::default()
        };
        let err = enter(&plan(Some(CAPS)), &sys).unwrap_err();
        assert_eq!(err.step, Step::View);
        assert_eq!(sys.names().last().unwrap(), "enter_private_view");
    }

    #[test]
    fn a_failed_join_stops_the_sequence() {
        let sys = FakeSys {
            fail_at: Some("setns"),
            ..FakeSys::default()
        };
        let err = enter(&plan(Some(CAPS)), &sys).unwrap_err();
        assert_eq!(err.step, Step::Namespaces);
        assert_eq!(sys.names().last().unwrap(), "setns");
    }

    #[test]
    fn command_process_resets_and_reports_not_found() {
        let sys = FakeSys::default();
        let report = become_command(&plan(Some(CAPS)), &sys);
        assert_eq!(
            report,
            Report::ExecFailed {
                errno: Errno::ENOENT as i32,
                found: false
            }
        );
        assert_eq!(
            sys.names(),
            vec!["reset_signals_and_umask", "setsid", "execve"]
        );
    }

    #[test]
    fn reports_round_trip() {
        for r in [
            Report::Joined,
            Report::Spawned(77),
            Report::Failed(Step::Workdir, 13),
            Report::ExecFailed {
                errno: 2,
                found: true,
            },
        ] {
            assert_eq!(Report::decode(&r.encode()), Some(r));
        }
    }

    #[test]
    fn candidates_follow_path() {
        assert_eq!(candidates("/bin/ls", "/usr/bin"), vec!["/bin/ls"]);
        assert_eq!(
            candidates("ls", "/usr/bin:/bin/"),
            vec!["/usr/bin/ls", "/bin/ls"]
        );
    }
}
