//! `dlx exec`: the whole pipeline, in the order it must happen. Each step is one call
//! into the module that owns it; the privileged part is `crate::launch`.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use sha2::Digest;

use crate::audit;
use crate::cgroup;
use crate::cli::ExecArgs;
use crate::engine::{self, Cgroups};
use crate::exit::ExitStatus;
use crate::handover::Handover;
use crate::identity;
use crate::launch::{self, Plan, Report, Step};
use crate::ns::{self, NsKind};
use crate::pin::{self, Expect, LsmLabel, Pinned};
use crate::session::{self, Outcome, Pipes, SessionError};
use crate::settings::{self, ExecSettings, TargetSpec};
use crate::sys::{self, CapSets, Fork, Ids, LinuxSys, Sys};
use crate::target::{self, Resolved};
use crate::toolbox;

/// The namespaces `--host-tools` shares with the container.
const HOST_TOOLS_NS: [NsKind; 3] = [NsKind::Net, NsKind::Uts, NsKind::Ipc];

/// Largest container `/etc/passwd` or `/etc/group` dlx reads.
const ACCOUNT_FILE_LIMIT: u64 = 4 << 20;

pub fn run(args: ExecArgs) -> Result<ExitStatus> {
    let settings = ExecSettings::resolve(args, |k| std::env::var(k).ok())?;
    // Every session is recorded, including one that fails to start.
    let mut audit = audit::Session::begin(
        &settings.audit_log,
        &target_text(&settings.target),
        &settings.command,
    );
    let result = protect().and_then(|()| {
        let resolved = resolve(&settings)?;
        let toolbox = || {
            Ok(toolbox::prepare(
                &settings.toolbox,
                &toolbox::PrepareOptions::for_host()?,
            )?)
        };
        enter(&settings, resolved, &mut audit, &toolbox, &Host::read()?)
    });
    audit.finish(&result);
    result
}

/// What every session shares of dlx's own side: its cgroup mounts, its own cgroups
/// and namespaces, and the launcher. A fan-out prepares them once for all its
/// sessions.
pub(super) struct Host {
    mounts: Vec<cgroup::Mount>,
    own_cgroups: Vec<cgroup::Membership>,
    own_ns: Vec<(NsKind, ns::NsId)>,
    /// The launcher every session's enterer execs (see [`launcher`]): sealed, so
    /// one copy serves them all.
    pub(super) launcher: OwnedFd,
}

impl Host {
    pub(super) fn read() -> Result<Host> {
        let mountinfo = sys::read_file("/proc/self/mountinfo", 4 << 20)?;
        let own_cgroups = sys::read_file("/proc/self/cgroup", 64 * 1024)?;
        Ok(Host {
            mounts: cgroup::mounts(&String::from_utf8_lossy(&mountinfo)),
            own_cgroups: cgroup::parse(&String::from_utf8_lossy(&own_cgroups)),
            own_ns: pin::own_namespaces()?,
            launcher: launcher().context("cannot prepare dlx's launcher")?,
        })
    }
}

/// Step 1, before anything else: no inherited descriptors, not dumpable, no core
/// dumps. (No process running dlx's binary is ever visible in the container: the
/// command process is the launcher's, see `crate::launch`.)
pub(super) fn protect() -> Result<()> {
    sys::close_range_from(3).context("cannot close inherited file descriptors")?;
    sys::harden_self().context("cannot harden the dlx process")
}

/// Step 2: resolve the target. Engines (and their runtimes) are dropped inside
/// `target::resolve`; the cgroups are the fallback when they do not answer.
fn resolve(settings: &ExecSettings) -> Result<Resolved> {
    let resolved = target::resolve(
        &settings.target,
        &target::Sources {
            selection: settings.engine,
            connect: &|kind| engine::connect(kind, &settings.endpoints),
            cgroups: &Cgroups::new(),
            notice: &|s| crate::output::notice(s),
        },
    )?;
    tracing::debug!(
        via = resolved.via.name(),
        pid = resolved.pid,
        "target resolved"
    );
    Ok(resolved)
}

/// Steps 3 to 7: enter `resolved` and run the session to its end. `toolbox` brings
/// the toolbox, asked only when the session enters the container's filesystem (a
/// fan-out prepares it once for all its sessions).
pub(super) fn enter(
    settings: &ExecSettings,
    resolved: Resolved,
    audit: &mut audit::Session,
    toolbox: &dyn Fn() -> Result<Option<toolbox::Toolbox>>,
    host: &Host,
) -> Result<ExitStatus> {
    ensure_single_threaded()?;
    audit.resolved(&resolved);

    // 3. Pin it and read its state through the pin.
    let expect = Expect {
        container_id: resolved.container.as_ref().map(|c| c.id.as_str()),
    };
    let pinned = pin::pin(resolved.pid, expect)
        .with_context(|| format!("cannot enter {}", resolved.label()))?;
    let mounts = &host.mounts;
    if cgroup::is_frozen(&pinned.cgroups, mounts) {
        bail!(
            "{} is paused (its cgroup is frozen)\nhint: {}",
            resolved.label(),
            resolved.thaw_hint()
        );
    }

    // 4. Decide everything the session will be, while still on the host. Host tools
    //    share only the container's network, uts and ipc namespaces and keep the
    //    host's filesystem, so they must stay out of its PID namespace and cgroup.
    let wanted = if settings.host_tools {
        Some(&HOST_TOOLS_NS[..])
    } else {
        settings.namespaces.as_deref()
    };
    let joins = ns::plan(&pinned.namespaces, &host.own_ns, wanted);
    tracing::debug!(?joins, "namespaces to join");
    audit.joined(&joins);
    let joins_mnt = joins.iter().any(|j| j.kind == NsKind::Mnt);
    let joins_user = joins.iter().any(|j| j.kind == NsKind::User);
    let (ids, home) = identity_of(settings, &resolved, &pinned, joins_mnt, joins_user)?;
    let container = resolved.container.as_ref().filter(|_| !settings.host_tools);
    let mut env = settings::compose_env(
        container.map(|c| c.env.as_slice()).unwrap_or(&[]),
        container.map(|c| c.hostname.as_str()),
        settings.tty,
        &settings.env,
        &home,
    );

    // The toolbox, and the private view of the container's filesystem it lives in
    // (only when we enter that filesystem at all).
    let toolbox = match joins_mnt {
        true => toolbox()?,
        false => None,
    };
    let view = match (&toolbox, settings.forensic && joins_mnt) {
        (None, false) => None,
        (tree, read_only) => Some(launch::View {
            toolbox: tree
                .as_ref()
                .map(|t| sys::clone_read_only(&t.root))
                .transpose()
                .context("cannot prepare the toolbox mount")?,
            read_only,
        }),
    };
    let mut command = settings.command.clone();
    if let Some(t) = &toolbox {
        settings::with_toolbox_path(&mut env, t.bin, settings.forensic);
        // The toolbox shell dlx starts, and every shell of a forensic session (whose
        // tools must be the trusted ones), start clean of the container's shell
        // start-up variables.
        let default_shell = command.is_empty();
        if default_shell {
            command = t.shell().into_iter().collect();
        }
        if default_shell || settings.forensic {
            let prompt =
                default_shell.then(|| format!("PS1=dlx:{}:\\w\\$ ", resolved.short_name()));
            settings::clean_shell_startup(&mut env, &settings.env, prompt);
        }
    }
    if command.is_empty() {
        bail!(
            "no command given and no toolbox shell for {}\nhint: name a command the container has",
            resolved.label()
        );
    }
    let workdir = settings
        .workdir
        .clone()
        .or_else(|| {
            container
                .map(|c| c.working_dir.clone())
                .filter(|w| !w.is_empty())
        })
        .or_else(|| {
            settings
                .host_tools
                .then(|| std::env::current_dir().ok())
                .flatten()
                .map(|d| d.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "/".into());
    let path = settings::env_value(&env, "PATH")
        .unwrap_or(settings::DEFAULT_PATH)
        .to_string();
    let caps = if settings.host_tools {
        None
    } else if settings.privileged {
        tracing::warn!(target = %resolved.label(), "--privileged: the command keeps dlx's full capability set");
        None
    } else {
        // What docker gives an exec: the container's capability list as bounding,
        // effective and permitted; the kernel then drops them at exec for non-root.
        let b = pinned.caps.bounding;
        Some(CapSets {
            bounding: b,
            effective: b,
            permitted: b,
        })
    };
    let host_side = !settings.host_tools;
    let cgroup_join = match settings.join_cgroup {
        true => cgroup::open_join(&pinned.cgroups, &host.own_cgroups, mounts)?,
        false => cgroup::Join::default(),
    };
    let cgroup_v2 = cgroup_join.v2;
    // Who may get dlx's hold on a session process: the toolbox's own tracers, with
    // the container frozen meanwhile.
    let handover = match settings.host_tools {
        true => Handover::outside(),
        false => Handover::new(
            toolbox.as_ref().map(|t| t.root.clone()),
            cgroup::freezer(&pinned.cgroups, &host.own_cgroups, mounts),
        ),
    };

    // A forensic session keeps a transcript of its output, beside the audit log.
    let transcript = match settings.forensic {
        true => {
            let path = audit.transcript_path();
            if let Some(dir) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let file = sys::open_append(&path)
                .with_context(|| format!("cannot keep the transcript at {}", path.display()))?;
            audit.transcript(&path);
            Some(file)
        }
        false => None,
    };

    // 5. The descriptors: stdio (pipes, or a new pseudo-terminal: the operator's own
    //    terminal never reaches the container), report pipe, sync pipe.
    let (stdio, pipes) = stdio(settings, joins_mnt.then(|| pinned.root.as_fd()))?;
    let (report_r, report_w) = sys::pipe()?;
    let (go_r, go_w) = sys::pipe()?;
    let signals = sys::block_signals()?;
    sys::become_subreaper()?;

    let label = match host_side {
        true => exec_label(pinned.lsm.as_ref()),
        false => None,
    };
    let plan = Plan {
        pidfd: pinned.pidfd.try_clone()?,
        ns_flags: ns::flags(&joins, &[NsKind::Cgroup, NsKind::User]),
        join_cgroup_ns: joins.iter().any(|j| j.kind == NsKind::Cgroup),
        join_user_ns: joins_user,
        view,
        cgroup_files: cgroup_join.tasks,
        rlimits: match host_side {
            true => pinned.rlimits.clone(),
            false => Vec::new(),
        },
        ids,
        caps,
        workdir: CString::new(workdir.clone())?,
        launcher: host.launcher.try_clone()?,
        launcher_argv: launch::launcher_argv(
            settings.tty,
            label.as_ref().map(|(attr, label)| (*attr, label.as_str())),
            &launch::candidates(&command[0], &path),
            &command,
        )?,
        envp: to_cstrings(&env)?,
        proc_dir: match label {
            Some(_) => Some(sys::open_host_proc()?),
            None => None,
        },
        stdio,
        report: report_w,
        go: go_r,
    };

    // 6. Enter. The last check that the target still lives comes right before.
    //    E is born in the container's v2 cgroup where the kernel allows it; else it
    //    moves there itself, as it does in every v1 hierarchy.
    pinned.still_alive()?;
    let enterer = match sys::fork_into_cgroup(cgroup_v2.as_ref().map(|v2| v2.dir.as_fd()))? {
        (Fork::Child, placed) => {
            let mut plan = plan;
            if !placed {
                plan.cgroup_files.extend(cgroup_v2.map(|v2| v2.procs));
            }
            run_enterer(&plan)
        }
        (Fork::Parent(pid), _) => pid,
    };
    drop(cgroup_v2);
    let Plan {
        stdio,
        report: report_w,
        go: go_r,
        ..
    } = plan;
    drop((stdio, report_w, go_r));

    // P verifies what E joined before its private view and user namespace (both come
    // after the check, the latter through the same pinned pidfd).
    let verified: Vec<ns::Join> = joins
        .iter()
        .filter(|j| j.kind != NsKind::User)
        .cloned()
        .collect();
    let started = session::start(enterer, report_r.as_fd(), go_w, |pid| {
        verify_joins(pid, &verified)
    })
    .with_context(|| format!("cannot enter {}", resolved.label()))?;
    let outcome = match started {
        Err(outcome) => outcome,
        Ok(command) => {
            // Raw mode only while the command runs, restored on every way out.
            let stdin = std::io::stdin();
            let _raw = match (&pipes.pty, settings.interactive) {
                (Some(_), true) if sys::is_tty(stdin.as_fd()) => {
                    Some(sys::RawMode::enter(stdin.as_fd())?)
                }
                _ => None,
            };
            session::relay(
                command,
                report_r,
                pipes,
                &signals,
                settings.interactive,
                transcript.as_ref().map(|t| t.as_fd()),
                &handover,
            )?
        }
    };

    // 7. The command's own status, or why there was none.
    let cmd = &command[0];
    Ok(match outcome {
        Outcome::Exited(code) => ExitStatus::exited(code),
        Outcome::Signaled(sig) => ExitStatus::signaled(sig),
        Outcome::ExecFailed { found: false, .. } => {
            crate::output::notice(format!(
                "{cmd}: command not found in {} (searched PATH={path})\nhint: the image may not ship it; give an absolute path that exists in the container",
                resolved.label()
            ));
            ExitStatus::NotFound
        }
        Outcome::ExecFailed { errno, found: true } => {
            crate::output::notice(format!(
                "{cmd}: cannot execute in {}: {}",
                resolved.label(),
                Errno::from_raw(errno).desc()
            ));
            ExitStatus::NotExecutable
        }
        Outcome::StepFailed(step, errno) => {
            return Err(step_error(step, errno, &resolved, &workdir))
        }
    })
}

/// The target as the operator named it.
fn target_text(target: &TargetSpec) -> String {
    match target {
        TargetSpec::Container(name) => name.clone(),
        TargetSpec::Pid(pid) => format!("pid:{pid}"),
    }
}

/// The command's stdio and the descriptors P keeps facing them. A terminal comes
/// from the container's own devpts when the command sees the container's filesystem
/// (`pty_root`), else, or when the container has none dlx trusts, from the host's.
fn stdio(
    settings: &ExecSettings,
    pty_root: Option<BorrowedFd<'_>>,
) -> Result<([std::os::fd::OwnedFd; 3], Pipes)> {
    if settings.tty {
        let stdin = std::io::stdin();
        let size_from = sys::is_tty(stdin.as_fd()).then(|| stdin.as_fd());
        let in_container = pty_root.and_then(|root| {
            sys::open_pty(Some(root), size_from)
                .inspect_err(|e| tracing::info!(error = %e, "no terminal from the container's devpts; the host's instead (it has no name there)"))
                .ok()
        });
        let (master, slave) = match in_container {
            Some(pair) => pair,
            None => sys::open_pty(None, size_from)?,
        };
        let stdio = [slave.try_clone()?, slave.try_clone()?, slave];
        let pipes = Pipes {
            stdin: if settings.interactive {
                Some(master.try_clone()?)
            } else {
                None
            },
            stdout: master.try_clone()?,
            stderr: None,
            pty: Some(master),
        };
        return Ok((stdio, pipes));
    }
    let (stdin_r, stdin_w) = sys::pipe()?;
    let (stdout_r, stdout_w) = sys::pipe()?;
    let (stderr_r, stderr_w) = sys::pipe()?;
    // Without -i the write end is dropped here: the command reads EOF at once.
    let stdin = settings.interactive.then_some(stdin_w);
    Ok((
        [stdin_r, stdout_w, stderr_w],
        Pipes {
            stdin,
            stdout: stdout_r,
            stderr: Some(stderr_r),
            pty: None,
        },
    ))
}

/// The launcher, to exec through a descriptor: a sealed memfd, or, where the host
/// refuses executable memfds (`vm.memfd_noexec=2`), a read-only clone of a copy in
/// dlx's cache, named by its digest.
fn launcher() -> Result<OwnedFd, sys::SysError> {
    match sys::sealed_program("dlx-launcher", launch::LAUNCHER) {
        Err(e) if e.errno == Errno::EACCES => {
            tracing::debug!(error = %e, "no executable memfd; the launcher runs from the cache");
            let digest = hex::encode(sha2::Sha256::digest(launch::LAUNCHER));
            sys::cached_program(
                &crate::apt::default_cache_dir().join("bin"),
                &format!("dlx-launcher-{}", &digest[..16]),
                launch::LAUNCHER,
            )
        }
        other => other,
    }
}

/// E's whole life: the entry sequence, ending in the launcher. Never returns.
fn run_enterer(plan: &Plan) -> ! {
    let sys = LinuxSys;
    let failure = launch::enter(plan, &sys);
    tracing::debug!(step = ?failure.step, error = %failure.error, "entry step failed");
    let report = Report::Failed(failure.step, failure.error.errno as i32).encode();
    // Before E moved the report pipe to fd 3 it has its own number; after, fd 3.
    if sys.report(plan.report.as_raw_fd(), &report).is_err() {
        let _ = sys.report(launch::REPORT_FD, &report);
    }
    sys::exit_now(125)
}

/// Check from the host that the enterer sits in every namespace it was to join.
fn verify_joins(enterer: i32, joins: &[ns::Join]) -> Result<(), SessionError> {
    let dir = sys::open_proc_dir(enterer)?;
    for join in joins {
        let now = sys::ns_identity(dir.as_fd(), join.kind.joined_name())?;
        if now != join.target {
            return Err(SessionError::WrongNamespace {
                ns: join.kind.to_string(),
            });
        }
    }
    tracing::debug!(
        enterer,
        joined = joins.len(),
        "namespaces verified by inode"
    );
    Ok(())
}

/// The user, groups and home the command gets.
fn identity_of(
    settings: &ExecSettings,
    resolved: &Resolved,
    pinned: &Pinned,
    joins_mnt: bool,
    joins_user: bool,
) -> Result<(Ids, String)> {
    // Account files come from the filesystem the command will see.
    let own_root;
    let root = if joins_mnt {
        pinned.root.as_fd()
    } else {
        own_root = sys::open_proc_dir(std::process::id() as i32)
            .and_then(|d| sys::open_root(d.as_fd()))?;
        own_root.as_fd()
    };
    let passwd = sys::read_in_root(root, "/etc/passwd", ACCOUNT_FILE_LIMIT)?;
    let group = sys::read_in_root(root, "/etc/group", ACCOUNT_FILE_LIMIT)?;
    let text = |b: &Option<Vec<u8>>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    let (passwd, group) = (text(&passwd), text(&group));
    let container = resolved.container.as_ref();
    let (spec, bare_groups) = match (&settings.user, container) {
        // Host tools run as the operator.
        _ if settings.host_tools => (
            format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid()),
            None,
        ),
        (Some(u), _) => (u.clone(), None),
        (None, Some(c)) => (c.user.clone(), None),
        // A bare process: run as it runs, numbered as its own user namespace numbers
        // it when the session joins that.
        (None, None) => {
            let (uid, gid, groups) = match joins_user {
                true => pinned.ids_in_own_user_ns()?,
                false => (pinned.uid, pinned.gid, pinned.groups.clone()),
            };
            (format!("{uid}:{gid}"), Some(groups))
        }
    };
    let group_add = container.map(|c| c.group_add.clone()).unwrap_or_default();
    let user = identity::resolve(&spec, passwd.as_deref(), group.as_deref(), &group_add)
        .with_context(|| format!("cannot resolve user {spec:?} in {}", resolved.label()))?;
    let mut groups = user.groups;
    if settings.host_tools {
        groups = nix::unistd::getgroups()
            .map(|g| g.iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default();
    } else if let Some(bare) = bare_groups {
        groups = bare;
    }
    Ok((
        Ids {
            uid: user.uid,
            gid: user.gid,
            groups,
        },
        user.home,
    ))
}

/// Where (below the host's `/proc`) and what the launcher writes so that the command
/// runs under the target's LSM label.
fn exec_label(lsm: Option<&LsmLabel>) -> Option<(&'static str, String)> {
    match lsm {
        None => None,
        Some(LsmLabel::AppArmor(profile)) => {
            let attr = if std::path::Path::new("/proc/thread-self/attr/apparmor/exec").exists() {
                "thread-self/attr/apparmor/exec"
            } else {
                "thread-self/attr/exec"
            };
            Some((attr, format!("exec {profile}")))
        }
        Some(LsmLabel::SELinux(label)) => Some(("thread-self/attr/exec", label.clone())),
    }
}

/// The message for a failed entry step.
fn step_error(step: Step, errno: i32, resolved: &Resolved, workdir: &str) -> anyhow::Error {
    let errno = Errno::from_raw(errno);
    let label = resolved.label();
    match (step, errno) {
        (Step::Workdir, Errno::ENOENT | Errno::ENOTDIR) => {
            anyhow::anyhow!("working directory {workdir} does not exist in {label}\nhint: pass -w with a directory that exists")
        }
        (Step::Workdir, Errno::EACCES) => {
            anyhow::anyhow!("working directory {workdir} is not accessible to the user in {label}\nhint: pass -w, or -u with a user that may enter it")
        }
        (Step::Namespaces | Step::UserNamespace | Step::CgroupNamespace, Errno::ESRCH) => {
            anyhow::anyhow!("{label} exited while dlx was entering it\nhint: the container may be restarting; try again")
        }
        (Step::Cgroup, _) => anyhow::anyhow!(
            "cannot {} of {label}: {}\nhint: pass --no-cgroup to stay in dlx's own cgroup",
            step.describe(),
            errno.desc()
        ),
        _ => anyhow::anyhow!("cannot {} of {label}: {}", step.describe(), errno.desc()),
    }
}

/// Wait (briefly) until the engine's runtime has wound down to one thread: a
/// multithreaded process cannot join a mount or user namespace, and forking one is
/// unsafe.
pub(super) fn ensure_single_threaded() -> Result<()> {
    for _ in 0..50 {
        if sys::thread_count()? == 1 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    bail!(
        "dlx still runs {} threads after talking to the engine; refusing to enter",
        sys::thread_count()?
    )
}

fn to_cstrings(items: &[String]) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_str()).with_context(|| format!("argument contains a NUL byte: {s:?}"))
        })
        .collect()
}
