//! The privileged entry sequence, as one linear function, and the launcher it ends in.
//!
//! dlx (P, on the host) forks an *enterer* (E). E runs [`enter`]: it moves into the
//! container's cgroup, joins the namespaces through the pidfd, lets P verify the
//! join, takes on the container's identity and capabilities, and then execs the
//! *launcher* (`launcher.c`, a small static program with no libc) in place of dlx.
//! The launcher forks the *command* process (F), reports its pid and exits; F resets
//! what a fresh process has and execs the command. E ends as soon as F is forked, so
//! F is re-parented to P (a subreaper) and P waits for it directly.
//!
//! Why E and F: joining a PID namespace only places *children* there, and
//! everything a container can see must happen after the privilege drop. E is never
//! visible in the container (it stays in the host's PID namespace); F appears there
//! only once it already has the container's uid, capabilities and no host descriptor
//! but its stdio pipes and the report pipe (close-on-exec).
//!
//! Why the launcher: F is the one process of a session that the container sees
//! before the command runs. Forked from the launcher, it holds nothing of dlx: not
//! dlx's binary (CVE-2019-5736: its `/proc/<pid>/exe` is the launcher, in a sealed,
//! execute-only memfd), not the memory of the session's dlx (the operator's
//! environment, what the engine said about the container). So dlx itself needs no
//! protected copy of its own binary and runs as it was started.
//!
//! Everything E needs (strings, descriptors) is prepared by P beforehand; E only
//! makes system calls, all through [`Sys`].

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use crate::ns::NsKind;
use crate::sys::{CapSets, Ids, NsFlags, Rlimit, Sys, SysError};

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
    pub ids: Ids,
    /// `None` with `--privileged`: keep dlx's capabilities.
    pub caps: Option<CapSets>,
    pub workdir: CString,
    /// The launcher ([`LAUNCHER`] in a sealed memfd, or a read-only clone of a
    /// cached copy), its arguments ([`launcher_argv`]) and the command's environment.
    pub launcher: OwnedFd,
    pub launcher_argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// The host's `/proc`, through which the launcher writes the command's LSM exec
    /// label (only with one).
    pub proc_dir: Option<OwnedFd>,
    /// The command's stdin, stdout and stderr (pipe ends).
    pub stdio: [OwnedFd; 3],
    /// Write end of the report pipe: E's and the launcher's (fd 3), and the command
    /// process's until its exec closes it.
    pub report: OwnedFd,
    /// Read end of the sync pipe: P writes one byte when E may go on.
    pub go: OwnedFd,
}

/// What the private view holds (see `sys::enter_private_view`).
pub struct View {
    /// Detached read-only clone of the toolbox, made on the host.
    pub toolbox: Option<OwnedFd>,
    /// The container's tree read-only too (forensic sessions).
    pub read_only: bool,
}

/// Where the report descriptor sits once E has cleared out every other descriptor
/// (the launcher writes to it by number).
pub const REPORT_FD: RawFd = 3;

/// The launcher, built from `launcher.c` by build.rs.
pub const LAUNCHER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dlx-launcher"));

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
    Launch,
    Fork,
    Session,
    Exec,
}

impl Step {
    const ALL: [Step; 21] = [
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
        Step::Launch,
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
            Step::Launch => "start dlx's launcher",
            Step::Fork => "start the command process",
            Step::Session => "start a new session",
            Step::Exec => "execute the command",
        }
    }
}

/// A message from E (or the launcher it became) or F to P over the report pipe:
/// fixed size, so a read never splits one. `launcher.c` writes the same records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// E has joined the namespaces and waits for P to verify them.
    Joined,
    /// The launcher started F, whose pid (in P's namespace) is given.
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

/// The enterer's sequence (E), ending in the exec of the launcher. Returns only when
/// a step failed, with that step.
pub fn enter(plan: &Plan, sys: &dyn Sys) -> Failure {
    match enter_steps(plan, sys) {
        Err(failure) => failure,
        Ok(never) => match never {},
    }
}

fn enter_steps(plan: &Plan, sys: &dyn Sys) -> Result<std::convert::Infallible, Failure> {
    // Die with dlx: an orphaned enterer must never linger in a container.
    sys.set_parent_death_signal()
        .map_err(at(Step::ParentDeathSignal))?;

    // Host-side work first, while our mount namespace and cgroupfs are still the
    // host's: the cgroup descriptors refer to host objects, and after the user
    // namespace join we would lack the privilege.
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

    // Nothing of the host reaches F. Stdio becomes the pipes. The report pipe moves
    // to fd 3 and, with a label, the host's /proc to fd 4, both kept across the exec
    // for the launcher, which closes /proc before it forks F, and in F makes fd 3
    // close-on-exec. The launcher's own descriptor closes at its exec, every other
    // one (pidfd, cgroup files, sync pipe) here.
    let stdio = [
        plan.stdio[0].as_raw_fd(),
        plan.stdio[1].as_raw_fd(),
        plan.stdio[2].as_raw_fd(),
    ];
    sys.install_stdio(stdio).map_err(at(Step::Stdio))?;
    let mut fds = vec![(plan.report.as_raw_fd(), true)];
    fds.extend(plan.proc_dir.as_ref().map(|d| (d.as_raw_fd(), true)));
    fds.push((plan.launcher.as_raw_fd(), false));
    sys.place_fds(&fds).map_err(at(Step::Stdio))?;

    // Become the launcher, which forks F into the container's PID namespace.
    let launcher = REPORT_FD + fds.len() as RawFd - 1;
    Err(sys.exec_program(launcher, &plan.launcher_argv, &plan.envp)).map_err(at(Step::Launch))
}

/// The launcher's arguments (see `launcher.c`): whether F takes its stdin as its
/// controlling terminal, the LSM exec attribute below `/proc` and the label to write
/// there, the paths to try, and the command's argv.
pub fn launcher_argv(
    tty: bool,
    exec_label: Option<(&str, &str)>,
    candidates: &[String],
    argv: &[String],
) -> Result<Vec<CString>, std::ffi::NulError> {
    let (attr, label) = exec_label.unwrap_or(("", ""));
    let head = [
        "dlx-launcher",
        if tty { "t" } else { "-" },
        attr,
        label,
        &candidates.len().to_string(),
    ];
    head.iter()
        .map(|s| s.to_string())
        .chain(candidates.iter().cloned())
        .chain(argv.iter().cloned())
        .map(CString::new)
        .collect()
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
    use std::os::fd::BorrowedFd;

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
            ids: Ids {
                uid: 65532,
                gid: 65532,
                groups: vec![],
            },
            caps,
            workdir: CString::new("/home/nonroot").unwrap(),
            launcher: fd(),
            launcher_argv: launcher_argv(false, None, &["/bin/ls".into()], &["ls".into()]).unwrap(),
            envp: vec![],
            proc_dir: Some(fd()),
            stdio: [fd(), fd(), fd()],
            report: fd(),
            go: fd(),
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
        assert_eq!(enter(&plan(Some(CAPS)), &sys).step, Step::Launch);
        let first_setns = sys.position("setns");
        for host_op in ["set_parent_death_signal", "join_cgroup", "set_rlimit"] {
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
        assert_eq!(enter(&plan(Some(CAPS)), &sys).step, Step::Launch);
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
    fn privileges_drop_in_runc_order_and_before_the_launcher() {
        let sys = FakeSys::default();
        assert_eq!(enter(&plan(Some(CAPS)), &sys).step, Step::Launch);
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
            "place_fds",
            "exec_program",
        ];
        let positions: Vec<usize> = order.iter().map(|op| sys.position(op)).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "order: {:?}",
            sys.calls.borrow()
        );
        // The report pipe and the host's /proc are kept for the launcher, the
        // launcher's own descriptor is not; nothing comes after its exec.
        let calls = sys.calls.borrow();
        assert_eq!(calls[calls.len() - 2], "place_fds([true, true, false])");
        assert_eq!(calls.last().unwrap(), "exec_program(dlx-launcher)");
    }

    #[test]
    fn privileged_keeps_capabilities() {
        let sys = FakeSys::default();
        assert_eq!(enter(&plan(None), &sys).step, Step::Launch);
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
        let err = enter(&plan(Some(CAPS)), &sys);
        assert_eq!(err.step, Step::Verify);
        assert!(!sys
            .names()
            .iter()
            .any(|n| n == "set_ids" || n == "exec_program"));
    }

    #[test]
    fn private_view_is_built_after_verification_and_before_user_ns_and_drop() {
        let sys = FakeSys::default();
        assert_eq!(enter(&plan(Some(CAPS)), &sys).step, Step::Launch);
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
        assert_eq!(enter(&p, &sys).step, Step::Launch);
        assert!(!sys.names().iter().any(|n| n == "enter_private_view"));
    }

    #[test]
    fn a_failed_private_view_stops_before_the_user_namespace() {
        let sys = FakeSys {
            fail_at: Some("enter_private_view"),
            ..FakeSys::default()
        };
        let err = enter(&plan(Some(CAPS)), &sys);
        assert_eq!(err.step, Step::View);
        assert_eq!(sys.names().last().unwrap(), "enter_private_view");
    }

    #[test]
    fn a_failed_join_stops_the_sequence() {
        let sys = FakeSys {
            fail_at: Some("setns"),
            ..FakeSys::default()
        };
        let err = enter(&plan(Some(CAPS)), &sys);
        assert_eq!(err.step, Step::Namespaces);
        assert_eq!(sys.names().last().unwrap(), "setns");
    }

    /// The real launcher, run by `sh`, which ignores SIGPIPE first (as dlx
    /// does) and gives it the report file as fd 3 and `proc`, if any, as fd 4. Back
    /// come what F's command printed and the reports, once F is done.
    fn launch(args: &[&str], proc: Option<&std::path::Path>) -> (String, Vec<Report>) {
        // The sealed memfd dlx execs, reached by path through this process's
        // descriptor (a file written here could still be open for writing in a
        // process another test just forked: ETXTBSY).
        static LAUNCHER_FD: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();
        let fd = LAUNCHER_FD
            .get_or_init(|| crate::sys::sealed_program("dlx-launcher", LAUNCHER).unwrap());
        launch_from(fd.as_fd(), args, proc)
    }

    fn launch_from(
        launcher: BorrowedFd<'_>,
        args: &[&str],
        proc: Option<&std::path::Path>,
    ) -> (String, Vec<Report>) {
        let launcher = format!("/proc/{}/fd/{}", std::process::id(), launcher.as_raw_fd());
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join("reports");
        let proc = proc.map(|p| p.display().to_string());
        let script = match proc {
            Some(_) => r#"trap '' PIPE; exec "$0" "$@" 3>"$REPORTS" 4<"$PROC""#,
            None => r#"trap '' PIPE; exec "$0" "$@" 3>"$REPORTS""#,
        };
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", script])
            .arg(&launcher)
            .args(args)
            .env("REPORTS", &reports)
            .env("PROC", proc.unwrap_or_default())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let bytes = std::fs::read(&reports).unwrap();
        let reports = bytes
            .chunks(REPORT_LEN)
            .map(|c| Report::decode(c.try_into().unwrap()).unwrap())
            .collect();
        (String::from_utf8(out.stdout).unwrap(), reports)
    }

    /// F's own report, beside the launcher's `Spawned` (F runs at once, so its
    /// report may come first, as `session::start` knows).
    fn f_report(reports: &[Report]) -> Vec<Report> {
        let spawned = reports
            .iter()
            .filter(|r| matches!(r, Report::Spawned(pid) if *pid > 0))
            .count();
        assert_eq!(spawned, 1, "{reports:?}");
        reports
            .iter()
            .filter(|r| !matches!(r, Report::Spawned(_)))
            .copied()
            .collect()
    }

    #[test]
    fn launcher_starts_the_command_as_a_fresh_process_in_its_own_session() {
        let check = r#"grep -E '^(SigIgn|SigBlk|Umask)' /proc/self/status
            [ -e /proc/self/fd/3 ] && echo report-pipe-open
            [ "$(cut -d' ' -f6 /proc/self/stat)" = $$ ] && echo session-leader"#;
        let (out, reports) = launch(&["-", "", "", "1", "/bin/sh", "sh", "-c", check], None);
        // SIGPIPE ignored by dlx, and nothing else, comes back to its default.
        assert_eq!(
            out,
            "Umask:\t0022\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nsession-leader\n"
        );
        assert_eq!(f_report(&reports), []);
    }

    #[test]
    fn launcher_reports_exec_failures_as_execvp_would() {
        let (_, reports) = launch(
            &["-", "", "", "2", "/nonexistent/x", "/nonexistent/y", "x"],
            None,
        );
        assert_eq!(
            f_report(&reports),
            [Report::ExecFailed {
                errno: Errno::ENOENT as i32,
                found: false
            }]
        );
        // A file that exists but cannot run wins over a later missing one: 126.
        let (_, reports) = launch(
            &["-", "", "", "2", "/etc/passwd", "/nonexistent/y", "x"],
            None,
        );
        assert_eq!(
            f_report(&reports),
            [Report::ExecFailed {
                errno: Errno::EACCES as i32,
                found: true
            }]
        );
    }

    #[test]
    fn launcher_writes_the_exec_label_through_the_proc_it_is_given() {
        let proc = tempfile::tempdir().unwrap();
        let attr = proc.path().join("thread-self/attr");
        std::fs::create_dir_all(&attr).unwrap();
        std::fs::write(attr.join("exec"), "").unwrap();
        let args = [
            "-",
            "thread-self/attr/exec",
            "exec docker-default",
            "1",
            "/bin/true",
            "true",
        ];
        let (_, reports) = launch(&args, Some(proc.path()));
        assert_eq!(f_report(&reports), []);
        assert_eq!(
            std::fs::read(attr.join("exec")).unwrap(),
            b"exec docker-default"
        );

        // No such attribute: nothing is started, and the step is named.
        let args = ["-", "thread-self/attr/nope", "x", "1", "/bin/true", "true"];
        let (_, reports) = launch(&args, Some(proc.path()));
        assert_eq!(
            reports,
            [Report::Failed(Step::ExecLabel, Errno::ENOENT as i32)]
        );
    }

    #[test]
    fn launcher_numbers_its_steps_as_step_does() {
        // `t` with a stdin that is no terminal: the controlling terminal fails.
        let (_, reports) = launch(&["t", "", "", "1", "/bin/true", "true"], None);
        assert_eq!(
            f_report(&reports),
            [Report::Failed(Step::Session, Errno::ENOTTY as i32)]
        );
    }

    #[test]
    fn launcher_started_otherwise_does_nothing() {
        for args in [
            &[][..],
            &["-", "", "", "1", "/bin/true"][..],
            &["-", "", "", "x", "/bin/true", "true"][..],
            &["-", "", "", "0", "true"][..],
        ] {
            let (_, reports) = launch(args, None);
            assert_eq!(reports, [], "{args:?}");
        }
    }

    #[test]
    fn launcher_runs_from_a_read_only_cached_copy_where_memfds_cannot_execute() {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().join("bin");
        let clone = crate::sys::cached_program(&dir, "dlx-launcher-x", LAUNCHER).unwrap();
        let (out, reports) = launch_from(
            clone.as_fd(),
            &["-", "", "", "1", "/bin/sh", "sh", "-c", "echo ran"],
            None,
        );
        assert_eq!((out.as_str(), f_report(&reports)), ("ran\n", vec![]));
        // Nobody writes it through the clone, root included.
        let through = format!("/proc/self/fd/{}", clone.as_raw_fd());
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&through)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
        // A copy changed in the cache is written again before it is used.
        drop(clone);
        std::fs::write(dir.join("dlx-launcher-x"), b"#!/bin/sh\n").unwrap();
        let clone = crate::sys::cached_program(&dir, "dlx-launcher-x", LAUNCHER).unwrap();
        let (out, _) = launch_from(
            clone.as_fd(),
            &["-", "", "", "1", "/bin/true", "true"],
            None,
        );
        assert_eq!(out, "");
        assert_eq!(std::fs::read(dir.join("dlx-launcher-x")).unwrap(), LAUNCHER);
    }

    #[test]
    fn regression_cached_launcher_left_0500_by_the_umask_is_made_0555() {
        // Written under dlx's umask 077 it was 0500: a session without capabilities,
        // as a non-root user, could not execute it.
        use std::os::unix::fs::PermissionsExt;
        let cache = tempfile::tempdir().unwrap();
        let path = cache.path().join("dlx-launcher-x");
        std::fs::write(&path, LAUNCHER).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o500)).unwrap();
        let _clone = crate::sys::cached_program(cache.path(), "dlx-launcher-x", LAUNCHER).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o555);
    }

    #[test]
    fn launcher_argv_is_laid_out_as_launcher_c_reads_it() {
        let argv = launcher_argv(
            true,
            Some(("thread-self/attr/exec", "exec p")),
            &["/a/ls".into(), "/b/ls".into()],
            &["ls".into(), "-l".into()],
        )
        .unwrap();
        let argv: Vec<&str> = argv.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            argv,
            [
                "dlx-launcher",
                "t",
                "thread-self/attr/exec",
                "exec p",
                "2",
                "/a/ls",
                "/b/ls",
                "ls",
                "-l"
            ]
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
