//! `dlx doctor`: why entering a target would fail or be limited, and what helps.
//!
//! Two halves, so the judgement is unit-tested without a kernel or an engine:
//! [`HostFacts`] and [`TargetFacts`] are *gathered* (procfs reads, syscall probes
//! through [`crate::sys`], the engine, the same pin `dlx exec` uses), then
//! [`checks`] turns them into lines, each `ok`, `warn` (entering works, with a limit)
//! or `fail` (entering would fail), with the flag or step that helps.

use std::fmt;
use std::os::fd::AsFd;

use crate::cgroup::{self, Mount};
use crate::ns::NsKind;
use crate::pin::{self, Expect, LsmLabel};
use crate::settings::TargetSpec;
use crate::sys::{self, Probe, Rlimit, Support};
use crate::target::{self, Resolved};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub detail: String,
    /// What helps, when the check is not ok.
    pub hint: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            level: Level::Ok,
            detail: detail.into(),
            hint: None,
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            level: Level::Warn,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
    fn fail(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            level: Level::Fail,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
    /// A failure from an error message that may carry its own `\nhint: ` line.
    fn fail_from(name: &'static str, message: &str, fallback_hint: &str) -> Check {
        let (detail, hint) = match message.split_once("\nhint: ") {
            Some((d, h)) => (d, h),
            None => (message, fallback_hint),
        };
        Check::fail(name, detail, hint)
    }
}

/// What dlx knows about itself and its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    pub euid: u32,
    /// dlx's effective capabilities (bit N = capability N).
    pub cap_eff: u64,
    /// `kernel.yama.ptrace_scope`; `None` when Yama is not active.
    pub yama_ptrace_scope: Option<u32>,
    /// dlx's own AppArmor profile, when it runs confined.
    pub own_apparmor: Option<String>,
    /// dlx's `/proc/self/uid_map`.
    pub own_uid_map: String,
    pub cgroup_mounts: Vec<Mount>,
    /// `uname -r`.
    pub kernel: String,
    pub syscalls: Vec<(Probe, Support)>,
    /// dlx's own resource limits.
    pub own_rlimits: Vec<Rlimit>,
}

/// What dlx knows about the target.
#[derive(Debug)]
pub struct TargetFacts {
    /// The engine's answer (or the `pid:N`), or why there is none (with its hint).
    pub resolved: Result<Resolved, String>,
    /// The pin and what it read; `None` when the target did not resolve.
    pub pinned: Option<Result<PinFacts, String>>,
}

/// What pinning the target's process showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinFacts {
    pub pid: i32,
    /// Its cgroup is frozen although the engine says it runs.
    pub frozen: bool,
    /// It shares dlx's PID namespace (`--pid=host`).
    pub shares_pid_ns: bool,
    /// Its `uid_map`, when its user namespace is not dlx's.
    pub userns_uid_map: Option<String>,
    pub lsm: Option<LsmLabel>,
    /// The first shell found in its root.
    pub shell: Option<String>,
    /// Whether dlx can open the container's cgroup files (why not, if not).
    pub cgroup_join: Result<(), String>,
    pub rlimits: Vec<Rlimit>,
}

/// The capabilities `dlx exec` uses, and what for.
const NEEDED_CAPS: [(u32, &str, &str); 8] = [
    (
        1,
        "CAP_DAC_OVERRIDE",
        "open the container's cgroup and files",
    ),
    (5, "CAP_KILL", "check and signal the pinned process"),
    (6, "CAP_SETGID", "take the container user's groups"),
    (7, "CAP_SETUID", "take the container's user"),
    (8, "CAP_SETPCAP", "drop capabilities from the bounding set"),
    (18, "CAP_SYS_CHROOT", "join a mount namespace"),
    (
        19,
        "CAP_SYS_PTRACE",
        "read other users' /proc and guard the entering process",
    ),
    (21, "CAP_SYS_ADMIN", "join namespaces"),
];
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_RESOURCE: u32 = 24;

/// Shells looked for in the image, first found wins.
const SHELLS: [&str; 6] = [
    "/bin/sh",
    "/bin/bash",
    "/bin/ash",
    "/busybox/sh",
    "/usr/bin/sh",
    "/bin/busybox",
];

fn has_cap(caps: u64, cap: u32) -> bool {
    caps & (1u64 << cap) != 0
}

/// Every check, host first, then the target.
pub fn checks(host: &HostFacts, target: &TargetFacts) -> Vec<Check> {
    let mut out = host_checks(host);
    out.extend(target_checks(host, target));
    out
}

fn host_checks(h: &HostFacts) -> Vec<Check> {
    let mut out = Vec::new();
    let missing: Vec<&(u32, &str, &str)> = NEEDED_CAPS
        .iter()
        .filter(|(bit, _, _)| !has_cap(h.cap_eff, *bit))
        .collect();

    out.push(match (h.euid, missing.is_empty()) {
        (0, _) => Check::ok("root", "running as root (uid 0)"),
        (uid, true) => Check::warn(
            "root",
            format!("running as uid {uid}, with the needed capabilities"),
            "run dlx as root (`sudo dlx …`) so it can read every container's files",
        ),
        (uid, false) => Check::fail(
            "root",
            format!("running as uid {uid}"),
            "run dlx as root (`sudo dlx …`)",
        ),
    });

    out.push(if missing.is_empty() {
        Check::ok(
            "capabilities",
            "SYS_ADMIN, SYS_PTRACE, SYS_CHROOT, SETUID, SETGID, SETPCAP, DAC_OVERRIDE, KILL effective",
        )
    } else {
        let names: Vec<String> = missing
            .iter()
            .map(|(_, name, why)| format!("{name} ({why})"))
            .collect();
        Check::fail(
            "capabilities",
            format!("missing {}", names.join(", ")),
            "run dlx as root with its full capability set: not under `capsh --drop`, not in an unprivileged container (a dlx container needs `--privileged --pid=host`)",
        )
    });

    out.push(match h.yama_ptrace_scope {
        None => Check::ok("yama", "Yama is not active (no ptrace_scope)"),
        Some(s @ (0 | 1)) => Check::ok("yama", format!("ptrace_scope {s}: dlx may trace its own entering process")),
        Some(2) if has_cap(h.cap_eff, CAP_SYS_PTRACE) => Check::ok(
            "yama",
            "ptrace_scope 2 (admin only): dlx holds CAP_SYS_PTRACE",
        ),
        Some(2) => Check::fail(
            "yama",
            "ptrace_scope 2 (admin only) and dlx lacks CAP_SYS_PTRACE",
            "run dlx as root with CAP_SYS_PTRACE",
        ),
        Some(s) => Check::fail(
            "yama",
            format!("ptrace_scope {s}: no process may trace another, and dlx traces the process it sends into the container"),
            "ptrace_scope 3 cannot be lowered until a reboot; boot with `kernel.yama.ptrace_scope=1` (sysctl.d), or use `docker exec`",
        ),
    });

    let v1 = h.cgroup_mounts.iter().any(|m| !m.v2);
    let v2 = h.cgroup_mounts.iter().find(|m| m.v2);
    out.push(match (v1, v2) {
        (true, Some(m)) => Check::ok(
            "cgroup",
            format!("v1, hybrid (v2 also mounted at {})", m.dir.display()),
        ),
        (true, None) => Check::ok("cgroup", "v1"),
        (false, Some(_)) => Check::ok("cgroup", "v2 (unified)"),
        (false, None) => Check::warn(
            "cgroup",
            "no cgroup hierarchy is mounted in dlx's mount namespace",
            "pass --no-cgroup to `dlx exec`, or mount the host's /sys/fs/cgroup",
        ),
    });

    out.push(kernel_check(h));

    if let Some(profile) = &h.own_apparmor {
        out.push(Check::warn(
            "apparmor",
            format!("dlx itself runs under AppArmor profile {profile}, which may forbid setns, ptrace or mounts"),
            format!("run dlx unconfined (`aa-exec -p unconfined -- dlx …`), or allow it in {profile}"),
        ));
    }
    out
}

/// `(major, minor)` of a `uname -r` release such as `6.1.0-18-amd64`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn kernel_check(h: &HostFacts) -> Check {
    let support = |p: Probe| {
        h.syscalls
            .iter()
            .find(|(q, _)| *q == p)
            .map_or(Support::Yes, |(_, s)| *s)
    };
    let blocked: Vec<&str> = h
        .syscalls
        .iter()
        .filter(|(_, s)| *s == Support::Blocked)
        .map(|(p, _)| p.name())
        .collect();
    if !blocked.is_empty() {
        return Check::fail(
            "kernel",
            format!("{} refused by a seccomp filter", blocked.join(", ")),
            "run dlx outside any seccomp filter (for a dlx container: `--security-opt seccomp=unconfined`)",
        );
    }
    let required = [Probe::PidfdOpen, Probe::Openat2, Probe::CloseRange];
    let missing: Vec<&str> = required
        .iter()
        .filter(|p| support(**p) == Support::Missing)
        .map(|p| p.name())
        .collect();
    let pidfd_setns = kernel_version(&h.kernel).is_none_or(|v| v >= (5, 8));
    if !missing.is_empty() || !pidfd_setns {
        let mut what = missing.clone();
        if !pidfd_setns {
            what.push("setns on a pidfd");
        }
        return Check::fail(
            "kernel",
            format!("Linux {} lacks {}", h.kernel, what.join(", ")),
            "dlx needs Linux 5.9 or later (pidfd_open 5.3, openat2 5.6, setns on a pidfd 5.8, close_range 5.9); `docker exec` works on older kernels",
        );
    }
    let mount_api = [Probe::OpenTree, Probe::MountSetattr];
    let old: Vec<&str> = mount_api
        .iter()
        .filter(|p| support(**p) == Support::Missing)
        .map(|p| p.name())
        .collect();
    if !old.is_empty() {
        return Check::warn(
            "kernel",
            format!(
                "Linux {} lacks {}: dlx cannot build a session's private view (the toolbox, --forensic)",
                h.kernel,
                old.join(", ")
            ),
            "Linux 5.12 or later gives the new mount API; until then run the container's own commands with --toolbox none",
        );
    }
    Check::ok(
        "kernel",
        format!("Linux {}: pidfd_open, setns on a pidfd, openat2, close_range, open_tree, mount_setattr", h.kernel),
    )
}

fn target_checks(h: &HostFacts, t: &TargetFacts) -> Vec<Check> {
    let resolved = match &t.resolved {
        Ok(r) => r,
        Err(message) => {
            return vec![Check::fail_from(
                "state",
                message,
                "check the target's name with `docker ps`",
            )]
        }
    };
    let label = resolved.label();
    let mut out = vec![match &resolved.container {
        Some(c) => Check::ok(
            "state",
            format!(
                "container {} is running, init is host pid {}",
                c.name, resolved.pid
            ),
        ),
        None => Check::ok("state", format!("pid {} (no engine asked)", resolved.pid)),
    }];
    let p = match &t.pinned {
        None => return out,
        Some(Err(message)) => {
            let hint = match (resolved.via, resolved.engine_command("ps")) {
                (crate::target::Via::Engine(_), Some(ps)) => format!("try again; check {ps}"),
                _ => "try again; the process may have ended".to_string(),
            };
            out.push(Check::fail_from("pin", message, &hint));
            return out;
        }
        Some(Ok(p)) => p,
    };
    if p.frozen {
        out[0] = Check::fail(
            "state",
            format!("{label} is paused (its cgroup is frozen)"),
            resolved.thaw_hint(),
        );
    }
    out.push(Check::ok(
        "pin",
        match &resolved.container {
            Some(_) => format!(
                "pid {} pinned by pidfd; it is the container's init, in the container's cgroup",
                p.pid
            ),
            None => format!("pid {} pinned by pidfd", p.pid),
        },
    ));
    out.push(Check::ok(
        "pid namespace",
        if p.shares_pid_ns {
            "shares dlx's PID namespace (`--pid=host`): the command sees every host process"
                .to_string()
        } else {
            "its own; the command runs as a process of it".to_string()
        },
    ));
    let own_is_init = is_identity_map(&h.own_uid_map);
    out.push(match (&p.userns_uid_map, own_is_init) {
        (_, false) => Check::warn(
            "user namespace",
            format!("dlx runs in a user namespace (uid_map {}): it can enter only containers that namespace owns", one_line(&h.own_uid_map)),
            "run dlx in the host's initial user namespace (as real root)",
        ),
        (None, true) => Check::ok("user namespace", "the host's (no remapping)"),
        (Some(map), true) => Check::warn(
            "user namespace",
            format!("its own (uid_map {}): root in the session is root only there, and host files of unmapped owners show as nobody", one_line(map)),
            "to act as host root on its files, leave the user namespace out: `--ns mnt,uts,ipc,net,pid,cgroup`",
        ),
    });
    out.push(match &p.lsm {
        None => Check::ok("lsm", "no AppArmor or SELinux label confines the container"),
        Some(LsmLabel::AppArmor(profile)) => Check::ok(
            "lsm",
            format!("AppArmor profile {profile}: the session runs under it too"),
        ),
        Some(LsmLabel::SELinux(label)) => Check::ok(
            "lsm",
            format!("SELinux label {label}: the session runs under it too"),
        ),
    });
    out.push(match &p.cgroup_join {
        Ok(()) => Check::ok("cgroup join", "the session can join the container's cgroup"),
        Err(message) => Check::fail_from(
            "cgroup join",
            message,
            "pass --no-cgroup to stay in dlx's own cgroup",
        ),
    });
    out.push(limits_check(h, p));
    out.push(match &p.shell {
        Some(path) => Check::ok("shell", format!("{path} exists in the image")),
        None => Check::warn(
            "shell",
            "no shell in the image (distroless): only the image's own binaries can run",
            format!(
                "run a binary of the image by absolute path, e.g. `dlx exec {} -- /path/to/tool`",
                target_word(resolved)
            ),
        ),
    });
    out
}

fn limits_check(h: &HostFacts, p: &PinFacts) -> Check {
    if has_cap(h.cap_eff, CAP_SYS_RESOURCE) {
        return Check::ok(
            "limits",
            "the container's resource limits are copied to the session",
        );
    }
    let capped: Vec<&str> = p
        .rlimits
        .iter()
        .filter(|t| {
            h.own_rlimits
                .iter()
                .any(|o| o.resource == t.resource && o.hard < t.hard)
        })
        .map(|t| rlimit_name(t.resource))
        .collect();
    if capped.is_empty() {
        Check::ok(
            "limits",
            "the container's resource limits are within dlx's own (no CAP_SYS_RESOURCE needed)",
        )
    } else {
        Check::warn(
            "limits",
            format!(
                "without CAP_SYS_RESOURCE, these stay at dlx's lower hard limits: {}",
                capped.join(", ")
            ),
            "give dlx CAP_SYS_RESOURCE, or raise its own hard limits first (`ulimit -H`)",
        )
    }
}

fn rlimit_name(resource: i32) -> &'static str {
    const NAMES: [(u32, &str); 15] = [
        (libc::RLIMIT_CPU, "cpu"),
        (libc::RLIMIT_FSIZE, "fsize"),
        (libc::RLIMIT_DATA, "data"),
        (libc::RLIMIT_STACK, "stack"),
        (libc::RLIMIT_CORE, "core"),
        (libc::RLIMIT_RSS, "rss"),
        (libc::RLIMIT_NPROC, "nproc"),
        (libc::RLIMIT_NOFILE, "nofile"),
        (libc::RLIMIT_MEMLOCK, "memlock"),
        (libc::RLIMIT_AS, "as"),
        (libc::RLIMIT_LOCKS, "locks"),
        (libc::RLIMIT_SIGPENDING, "sigpending"),
        (libc::RLIMIT_MSGQUEUE, "msgqueue"),
        (libc::RLIMIT_NICE, "nice"),
        (libc::RLIMIT_RTPRIO, "rtprio"),
    ];
    NAMES
        .iter()
        .find(|(r, _)| i64::from(*r) == i64::from(resource))
        .map_or("other", |(_, n)| n)
}

/// How the target is typed on a command line.
fn target_word(resolved: &Resolved) -> String {
    match &resolved.container {
        Some(c) => c.name.clone(),
        None => format!("pid:{}", resolved.pid),
    }
}

/// Is `uid_map` the initial user namespace's (`0 0 4294967295`)?
fn is_identity_map(uid_map: &str) -> bool {
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

fn one_line(map: &str) -> String {
    map.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The report as text: one line per check, a hint line under each that is not ok,
/// and a verdict.
pub fn render(checks: &[Check], label: &str) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{:<4}  {:<width$}  {}\n",
            c.level, c.name, c.detail
        ));
        if let (Some(hint), true) = (&c.hint, c.level != Level::Ok) {
            out.push_str(&format!("{:<4}  {:<width$}  hint: {hint}\n", "", ""));
        }
    }
    let count = |l: Level| checks.iter().filter(|c| c.level == l).count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    out.push_str(&match (count(Level::Fail), count(Level::Warn)) {
        (0, 0) => format!("dlx can enter {label}\n"),
        (0, w) => format!("dlx can enter {label}, with {}\n", plural(w, "warning")),
        (f, _) => format!("dlx cannot enter {label}: {} failed\n", plural(f, "check")),
    });
    out
}

/// Whether entering would work.
pub fn passes(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.level != Level::Fail)
}

/// Gather what dlx can see of itself and its host.
pub fn gather_host() -> HostFacts {
    let text = |path: &str| {
        sys::read_file(path, 1 << 20)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let status = text("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let own_apparmor = if std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        text("/proc/self/attr/apparmor/current")
            .or_else(|| text("/proc/self/attr/current"))
            .map(|l| {
                let l = l.trim_end_matches(['\n', '\0']).trim();
                l.split(" (").next().unwrap_or(l).to_string()
            })
            .filter(|p| !p.is_empty() && p != "unconfined")
    } else {
        None
    };
    HostFacts {
        euid: nix::unistd::geteuid().as_raw(),
        cap_eff,
        yama_ptrace_scope: text("/proc/sys/kernel/yama/ptrace_scope")
            .and_then(|s| s.trim().parse().ok()),
        own_apparmor,
        own_uid_map: text("/proc/self/uid_map").unwrap_or_default(),
        cgroup_mounts: cgroup::mounts(&text("/proc/self/mountinfo").unwrap_or_default()),
        kernel: rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned(),
        syscalls: Probe::ALL.iter().map(|&p| (p, sys::probe(p))).collect(),
        own_rlimits: pin::parse_limits(&text("/proc/self/limits").unwrap_or_default()),
    }
}

/// Resolve and pin the target the way `dlx exec` does, and look at it.
pub fn gather_target(
    spec: &TargetSpec,
    host: &HostFacts,
    sources: &target::Sources<'_>,
) -> TargetFacts {
    let resolved = match target::resolve(spec, sources) {
        Ok(r) => r,
        Err(e) => {
            return TargetFacts {
                resolved: Err(e.to_string()),
                pinned: None,
            }
        }
    };
    let pinned = examine_pinned(&resolved, host);
    TargetFacts {
        resolved: Ok(resolved),
        pinned: Some(pinned),
    }
}

fn examine_pinned(resolved: &Resolved, host: &HostFacts) -> Result<PinFacts, String> {
    let expect = Expect {
        container_id: resolved.container.as_ref().map(|c| c.id.as_str()),
    };
    let pinned = pin::pin(resolved.pid, expect).map_err(|e| e.to_string())?;
    let own = pin::own_namespaces().map_err(|e| e.to_string())?;
    let ns_of = |list: &[(NsKind, crate::ns::NsId)], kind| {
        list.iter().find(|(k, _)| *k == kind).map(|(_, id)| *id)
    };
    let differs = |kind| ns_of(&pinned.namespaces, kind) != ns_of(&own, kind);
    let userns_uid_map = differs(NsKind::User).then(|| {
        pinned
            .id_map("uid_map")
            .unwrap_or_else(|e| format!("unreadable: {e}"))
    });
    let shell = SHELLS.iter().find(|path| {
        matches!(
            sys::mode_in_root(pinned.root.as_fd(), path),
            Ok(Some(mode)) if mode & libc::S_IFMT == libc::S_IFREG && mode & 0o111 != 0
        )
    });
    let own_cgroups = sys::read_file("/proc/self/cgroup", 64 * 1024)
        .map(|b| cgroup::parse(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    Ok(PinFacts {
        pid: pinned.pid,
        frozen: cgroup::is_frozen(&pinned.cgroups, &host.cgroup_mounts),
        shares_pid_ns: !differs(NsKind::Pid),
        userns_uid_map,
        lsm: pinned.lsm.clone(),
        shell: shell.map(|s| s.to_string()),
        cgroup_join: cgroup::open_join(&pinned.cgroups, &own_cgroups, &host.cgroup_mounts)
            .map(drop)
            .map_err(|e| e.to_string()),
        rlimits: pinned.rlimits.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeEngine;
    use crate::engine::RunState;
    use crate::engine::{Engine, EngineError};
    use std::path::PathBuf;

    fn host() -> HostFacts {
        HostFacts {
            euid: 0,
            cap_eff: 0x1ff_ffff_ffff,
            yama_ptrace_scope: None,
            own_apparmor: None,
            own_uid_map: "         0          0 4294967295\n".into(),
            cgroup_mounts: vec![Mount {
                dir: PathBuf::from("/sys/fs/cgroup"),
                controllers: Vec::new(),
                v2: true,
            }],
            kernel: "6.1.0-18-amd64".into(),
            syscalls: Probe::ALL.iter().map(|&p| (p, Support::Yes)).collect(),
            own_rlimits: Vec::new(),
        }
    }

    fn pinned() -> PinFacts {
        PinFacts {
            pid: 4242,
            frozen: false,
            shares_pid_ns: false,
            userns_uid_map: None,
            lsm: None,
            shell: None,
            cgroup_join: Ok(()),
            rlimits: Vec::new(),
        }
    }

    fn running(p: PinFacts) -> TargetFacts {
        TargetFacts {
            resolved: Ok(Resolved {
                pid: 4242,
                container: Some(FakeEngine::container("web", "aaaa1111", 4242)),
                via: crate::target::Via::Engine(crate::engine::EngineKind::Docker),
            }),
            pinned: Some(Ok(p)),
        }
    }

    fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} check in {checks:#?}"))
    }

    #[test]
    fn a_healthy_host_and_container_pass() {
        let checks = checks(&host(), &running(pinned()));
        assert!(passes(&checks), "{checks:#?}");
        // A distroless image: entering works, with a warning and a hint.
        let shell = find(&checks, "shell");
        assert_eq!(shell.level, Level::Warn);
        assert!(shell.hint.as_deref().unwrap().contains("dlx exec web --"));
        let text = render(&checks, "container web");
        assert!(
            text.ends_with("dlx can enter container web, with 1 warning\n"),
            "{text}"
        );
    }

    #[test]
    fn missing_privileges_fail_with_what_helps() {
        let mut h = host();
        h.euid = 1000;
        h.cap_eff = 0;
        let checks = checks(&h, &running(pinned()));
        assert!(!passes(&checks));
        assert_eq!(find(&checks, "root").level, Level::Fail);
        let caps = find(&checks, "capabilities");
        assert!(caps.detail.contains("CAP_SYS_ADMIN") && caps.detail.contains("CAP_SYS_PTRACE"));
        assert!(caps.hint.is_some());
    }

    #[test]
    fn yama_scopes_are_judged() {
        let level = |scope, caps| {
            let mut h = host();
            h.yama_ptrace_scope = scope;
            h.cap_eff = caps;
            find(&host_checks(&h), "yama").level
        };
        assert_eq!(level(None, 0), Level::Ok);
        assert_eq!(level(Some(1), 0), Level::Ok);
        assert_eq!(level(Some(2), 1 << CAP_SYS_PTRACE), Level::Ok);
        assert_eq!(level(Some(2), 0), Level::Fail);
        assert_eq!(level(Some(3), u64::MAX), Level::Fail);
    }

    #[test]
    fn old_or_filtered_kernels_are_named() {
        let mut h = host();
        h.syscalls = vec![(Probe::PidfdOpen, Support::Missing)];
        let k = kernel_check(&h);
        assert_eq!(k.level, Level::Fail);
        assert!(k.detail.contains("pidfd_open") && k.hint.unwrap().contains("5.9"));

        h.syscalls = vec![(Probe::MountSetattr, Support::Missing)];
        assert_eq!(kernel_check(&h).level, Level::Warn);

        h.syscalls = vec![(Probe::OpenTree, Support::Blocked)];
        let k = kernel_check(&h);
        assert_eq!(k.level, Level::Fail);
        assert!(k.hint.unwrap().contains("seccomp=unconfined"));

        h.syscalls = Vec::new();
        h.kernel = "5.4.0-150-generic".into();
        assert!(kernel_check(&h).detail.contains("setns on a pidfd"));
    }

    #[test]
    fn target_states_come_from_the_engine_with_its_hints() {
        let mut paused = FakeEngine::container("db", "bbbb2222", 20);
        paused.state = RunState::Paused;
        let connect = |_kind| -> Result<Box<dyn Engine>, EngineError> {
            Ok(Box::new(FakeEngine::new(vec![paused.clone()])))
        };
        let none = FakeEngine::new(vec![]);
        let quiet = |_: String| {};
        let sources = target::Sources {
            selection: crate::engine::Selection::Only(crate::engine::EngineKind::Docker),
            connect: &connect,
            cgroups: &none,
            notice: &quiet,
        };
        let h = host();
        let t = gather_target(&"db".parse().unwrap(), &h, &sources);
        let state = &checks(&h, &t)[host_checks(&h).len()];
        assert_eq!((state.name, state.level), ("state", Level::Fail));
        assert!(state.detail.contains("paused"));
        assert!(state.hint.as_deref().unwrap().contains("docker unpause db"));

        let t = gather_target(&"nope".parse().unwrap(), &h, &sources);
        let all = checks(&h, &t);
        assert!(!passes(&all));
        let state = find(&all, "state");
        assert!(state.detail.contains("no such container: nope"));
        assert!(state.hint.as_deref().unwrap().contains("dlx ps"));
    }

    #[test]
    fn a_frozen_cgroup_is_a_paused_container_with_its_engines_unpause() {
        let mut p = pinned();
        p.frozen = true;
        let hint = |t: &TargetFacts| {
            let checks = checks(&host(), t);
            let state = find(&checks, "state");
            assert_eq!(state.level, Level::Fail);
            state.hint.clone().unwrap()
        };
        let mut t = running(p);
        assert!(hint(&t).starts_with("`docker unpause web` first"));
        // Found by Podman, or by no engine at all: the hint follows.
        let set_via = |t: &mut TargetFacts, via| t.resolved.as_mut().unwrap().via = via;
        set_via(
            &mut t,
            crate::target::Via::Engine(crate::engine::EngineKind::Podman),
        );
        assert!(hint(&t).starts_with("`podman unpause web` first"));
        t.resolved.as_mut().unwrap().container = None;
        set_via(&mut t, crate::target::Via::Pid);
        assert!(hint(&t).starts_with("thaw its cgroup first;"));
    }

    #[test]
    fn user_namespaces_and_cgroup_joins_are_explained() {
        let mut p = pinned();
        p.userns_uid_map = Some("0 100000 65536\n".into());
        p.cgroup_join = Err("cannot open /sys/fs/cgroup/x/cgroup.procs: EACCES\nhint: pass --no-cgroup to stay in dlx's own cgroup".into());
        let checks = checks(&host(), &running(p));
        let userns = find(&checks, "user namespace");
        assert_eq!(userns.level, Level::Warn);
        assert!(userns.detail.contains("0 100000 65536"));
        assert!(userns.hint.as_deref().unwrap().contains("--ns"));
        let cg = find(&checks, "cgroup join");
        assert_eq!(cg.level, Level::Fail);
        assert_eq!(
            cg.hint.as_deref(),
            Some("pass --no-cgroup to stay in dlx's own cgroup")
        );
    }

    #[test]
    fn limits_above_dlx_s_own_need_sys_resource() {
        let mut h = host();
        h.cap_eff &= !(1 << CAP_SYS_RESOURCE);
        let nofile = |hard| Rlimit {
            resource: libc::RLIMIT_NOFILE as i32,
            soft: 1024,
            hard,
        };
        h.own_rlimits = vec![nofile(4096)];
        let mut p = pinned();
        p.rlimits = vec![nofile(1 << 20)];
        let check = limits_check(&h, &p);
        assert_eq!(check.level, Level::Warn);
        assert!(check.detail.contains("nofile"));
        p.rlimits = vec![nofile(1024)];
        assert_eq!(limits_check(&h, &p).level, Level::Ok);
    }

    #[test]
    fn the_host_is_probed_for_real() {
        let h = gather_host();
        assert!(!h.kernel.is_empty());
        // This suite runs on kernels that have every call dlx needs.
        assert!(
            h.syscalls.iter().all(|(_, s)| *s == Support::Yes),
            "{:?}",
            h.syscalls
        );
        assert_eq!(kernel_check(&h).level, Level::Ok);
    }

    #[test]
    fn dlx_s_own_process_can_be_examined() {
        let h = gather_host();
        let spec = TargetSpec::Pid(std::process::id() as i32);
        let connect = |_kind| -> Result<Box<dyn Engine>, EngineError> { panic!("engine asked") };
        let none = FakeEngine::new(vec![]);
        let quiet = |_: String| {};
        let sources = target::Sources {
            selection: crate::engine::Selection::Auto,
            connect: &connect,
            cgroups: &none,
            notice: &quiet,
        };
        let t = gather_target(&spec, &h, &sources);
        let p = t.pinned.unwrap().unwrap();
        assert!(p.shares_pid_ns && p.userns_uid_map.is_none() && !p.frozen);
    }
}
