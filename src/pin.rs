//! Pinning the target process so a recycled PID is never entered.
//!
//! The engine gives a PID; by the time dlx acts the container may have restarted and
//! the number may belong to somebody else. So: (1) `pidfd_open` the PID; (2) open its
//! `/proc/<pid>` directory; (3) read and validate everything through that directory
//! (cgroup names the container, it is the init of its PID namespace, the start time);
//! (4) check through the pidfd that the process is still alive. If it is, the PID was
//! never reused between (1) and (4), so (3) described the pinned process. Namespaces
//! are later joined through the pidfd itself, never through a path.

use std::os::fd::{AsFd, OwnedFd};

use procfs::prelude::*;

use crate::cgroup::{self, CgroupError, Membership};
use crate::ns::{NsId, NsKind};
use crate::sys::{self, CapSets, Rlimit, SysError};

/// Everything dlx knows about the target process, read through the pin.
#[derive(Debug)]
pub struct Pinned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub proc_dir: OwnedFd,
    /// `O_PATH` handle on the target's root directory.
    pub root: OwnedFd,
    pub start_time: u64,
    pub namespaces: Vec<(NsKind, NsId)>,
    /// The container's bounding, effective and permitted sets.
    pub caps: CapSets,
    /// Its real uid, gid and groups as the host sees them (see
    /// [`Pinned::ids_in_own_user_ns`]).
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub cgroups: Vec<Membership>,
    pub rlimits: Vec<Rlimit>,
    /// The LSM label the target runs under, when an LSM confines it.
    pub lsm: Option<LsmLabel>,
}

/// A Linux security module label to carry over to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LsmLabel {
    AppArmor(String),
    SELinux(String),
}

/// What the process must be for the pin to hold.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The container ID its cgroup must name (None for `pid:N` targets).
    pub container_id: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(
        "process {pid} does not exist\nhint: the container may have stopped; check `docker ps`"
    )]
    Gone { pid: i32 },
    #[error("process {pid} exited while dlx was pinning it\nhint: the container may be restarting; try again")]
    ExitedDuringPin { pid: i32 },
    #[error("permission denied pinning process {pid}\nhint: dlx must run as root (or with CAP_SYS_ADMIN, CAP_SYS_PTRACE and CAP_SYS_CHROOT)")]
    Permission { pid: i32 },
    #[error("cannot pin process {pid}: {source}")]
    Sys { pid: i32, source: SysError },
    #[error("cannot parse {file} of process {pid}")]
    Parse { pid: i32, file: &'static str },
    #[error("process {pid} is not the init process of container {id}\nhint: the container may have restarted; try again")]
    NotInit { pid: i32, id: String },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

fn sys_err(pid: i32, source: SysError) -> PinError {
    match source.errno {
        nix::errno::Errno::ESRCH | nix::errno::Errno::ENOENT => PinError::Gone { pid },
        nix::errno::Errno::EPERM | nix::errno::Errno::EACCES => PinError::Permission { pid },
        _ => PinError::Sys { pid, source },
    }
}

/// Pin `pid` and read its state. See the module docs for why the steps are ordered so.
pub fn pin(pid: i32, expect: Expect<'_>) -> Result<Pinned, PinError> {
    // (1) The pidfd: from here on, this exact process.
    let pidfd = sys::pidfd_open(pid).map_err(|e| sys_err(pid, e))?;
    // (2) Its proc directory: all reads go through this handle, not through paths.
    let proc_dir = sys::open_proc_dir(pid).map_err(|e| sys_err(pid, e))?;
    let dir = proc_dir.as_fd();

    // (3) Read and validate.
    let stat_raw = sys::read_at(dir, "stat", 8192).map_err(|e| sys_err(pid, e))?;
    let stat = procfs::process::Stat::from_read(&stat_raw[..])
        .map_err(|_| PinError::Parse { pid, file: "stat" })?;
    let status_raw = sys::read_at(dir, "status", 64 * 1024).map_err(|e| sys_err(pid, e))?;
    let status =
        procfs::process::Status::from_buf_read(&status_raw[..]).map_err(|_| PinError::Parse {
            pid,
            file: "status",
        })?;
    let cgroups = cgroup::read(dir, pid)?;

    let mut namespaces = Vec::new();
    for kind in NsKind::ALL {
        match sys::ns_identity(dir, kind.name()) {
            Ok(id) => namespaces.push((kind, id)),
            // A kind this kernel does not have.
            Err(e) if e.errno == nix::errno::Errno::ENOENT => {}
            Err(e) => return Err(sys_err(pid, e)),
        }
    }

    if let Some(id) = expect.container_id {
        cgroup::check_belongs(&cgroups, pid, id)?;
        // In its own PID namespace a container's init is pid 1 there. (A container
        // sharing the host's PID namespace has a single NSpid entry.)
        let nspid = status.nspid.clone().unwrap_or_default();
        if nspid.len() > 1 && nspid.last() != Some(&1) {
            return Err(PinError::NotInit {
                pid,
                id: id.to_string(),
            });
        }
    }

    let caps = CapSets {
        bounding: status.capbnd.unwrap_or(0),
        effective: status.capeff,
        permitted: status.capprm,
    };
    let rlimits = read_limits(dir, pid)?;
    let lsm = read_lsm(dir);
    let root = sys::open_root(dir).map_err(|e| sys_err(pid, e))?;

    // (4) Still the same process? Then nothing above described an impostor.
    if !sys::pidfd_alive(pidfd.as_fd()).map_err(|e| sys_err(pid, e))? {
        return Err(PinError::ExitedDuringPin { pid });
    }
    tracing::debug!(
        pid,
        start_time = stat.starttime,
        ?namespaces,
        "pinned target"
    );
    Ok(Pinned {
        pid,
        pidfd,
        proc_dir,
        root,
        start_time: stat.starttime,
        namespaces,
        caps,
        uid: status.ruid,
        gid: status.rgid,
        groups: status.groups.clone(),
        cgroups,
        rlimits,
        lsm,
    })
}

impl Pinned {
    /// Its `uid_map` or `gid_map` (`name`): lines of `inside outside count`.
    pub fn id_map(&self, name: &str) -> Result<String, SysError> {
        sys::read_at(self.proc_dir.as_fd(), name, 64 * 1024)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Its real uid, gid and groups as its own user namespace numbers them (the
    /// host's when it shares the host's).
    pub fn ids_in_own_user_ns(&self) -> Result<(u32, u32, Vec<u32>), PinError> {
        let map = |name| self.id_map(name).map_err(|e| sys_err(self.pid, e));
        let (uid_map, gid_map) = (map("uid_map")?, map("gid_map")?);
        Ok((
            id_in_ns(&uid_map, self.uid),
            id_in_ns(&gid_map, self.gid),
            self.groups.iter().map(|g| id_in_ns(&gid_map, *g)).collect(),
        ))
    }

    /// Re-check, just before entering, that the pinned process has not exited.
    pub fn still_alive(&self) -> Result<(), PinError> {
        match sys::pidfd_alive(self.pidfd.as_fd()) {
            Ok(true) => Ok(()),
            Ok(false) => Err(PinError::ExitedDuringPin { pid: self.pid }),
            Err(e) => Err(sys_err(self.pid, e)),
        }
    }
}

/// dlx's own namespace identities, for the join plan.
pub fn own_namespaces() -> Result<Vec<(NsKind, NsId)>, SysError> {
    let own = sys::open_proc_dir(std::process::id() as i32)?;
    Ok(NsKind::ALL
        .iter()
        .filter_map(|&k| {
            sys::ns_identity(own.as_fd(), k.name())
                .ok()
                .map(|id| (k, id))
        })
        .collect())
}

/// The id that host id `id` is inside a user namespace whose `uid_map` or `gid_map`
/// is `map` (lines of `inside outside count`); the overflow id 65534 when unmapped,
/// as the kernel shows it.
fn id_in_ns(map: &str, id: u32) -> u32 {
    map.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace().map(|n| n.parse::<u64>().ok());
            Some((it.next()??, it.next()??, it.next()??))
        })
        .find(|(_, outside, count)| (*outside..outside + count).contains(&u64::from(id)))
        .and_then(|(inside, outside, _)| u32::try_from(inside + (u64::from(id) - outside)).ok())
        .unwrap_or(65534)
}

/// The limits of `/proc/<pid>/limits`, as setrlimit arguments.
fn read_limits(dir: std::os::fd::BorrowedFd<'_>, pid: i32) -> Result<Vec<Rlimit>, PinError> {
    let raw = sys::read_at(dir, "limits", 16 * 1024).map_err(|e| sys_err(pid, e))?;
    Ok(parse_limits(&String::from_utf8_lossy(&raw)))
}

/// Parse the text of `/proc/<pid>/limits`. RLIMIT_CORE is left out on purpose: the
/// session never dumps core while it holds anything of dlx's.
pub fn parse_limits(text: &str) -> Vec<Rlimit> {
    const NAMES: [(&str, i32); 15] = [
        ("Max cpu time", libc::RLIMIT_CPU as i32),
        ("Max file size", libc::RLIMIT_FSIZE as i32),
        ("Max data size", libc::RLIMIT_DATA as i32),
        ("Max stack size", libc::RLIMIT_STACK as i32),
        ("Max resident set", libc::RLIMIT_RSS as i32),
        ("Max processes", libc::RLIMIT_NPROC as i32),
        ("Max open files", libc::RLIMIT_NOFILE as i32),
        ("Max locked memory", libc::RLIMIT_MEMLOCK as i32),
        ("Max address space", libc::RLIMIT_AS as i32),
        ("Max file locks", libc::RLIMIT_LOCKS as i32),
        ("Max pending signals", libc::RLIMIT_SIGPENDING as i32),
        ("Max msgqueue size", libc::RLIMIT_MSGQUEUE as i32),
        ("Max nice priority", libc::RLIMIT_NICE as i32),
        ("Max realtime priority", libc::RLIMIT_RTPRIO as i32),
        ("Max realtime timeout", libc::RLIMIT_RTTIME as i32),
    ];
    let value = |s: &str| {
        if s == "unlimited" {
            Some(libc::RLIM_INFINITY)
        } else {
            s.parse().ok()
        }
    };
    text.lines()
        .filter_map(|line| {
            let (name, resource) = NAMES.iter().find(|(n, _)| line.starts_with(n))?;
            let mut fields = line[name.len()..].split_whitespace();
            let soft = value(fields.next()?)?;
            let hard = value(fields.next()?)?;
            Some(Rlimit {
                resource: *resource,
                soft,
                hard,
            })
        })
        .collect()
}

/// The target's LSM label, when an LSM is active and confines it.
fn read_lsm(dir: std::os::fd::BorrowedFd<'_>) -> Option<LsmLabel> {
    let read = |name: &str| {
        sys::read_at(dir, name, 4096)
            .ok()
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .trim_end_matches(['\n', '\0'])
                    .trim()
                    .to_string()
            })
            .filter(|s| !s.is_empty())
    };
    if std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        let label = read("attr/apparmor/current").or_else(|| read("attr/current"))?;
        // "docker-default (enforce)" -> "docker-default"
        let profile = label.split(" (").next().unwrap_or(&label).to_string();
        return (profile != "unconfined").then_some(LsmLabel::AppArmor(profile));
    }
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        return read("attr/current").map(LsmLabel::SELinux);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_into_the_targets_user_namespace() {
        let shared = "         0          0 4294967295\n";
        assert_eq!(id_in_ns(shared, 200_000), 200_000);
        let remapped = "         0     200000      65536\n";
        assert_eq!(id_in_ns(remapped, 200_000), 0);
        assert_eq!(id_in_ns(remapped, 201_000), 1000);
        assert_eq!(id_in_ns(remapped, 0), 65534);
        let split = "0 1000 1\n1 100000 65536\n";
        assert_eq!(id_in_ns(split, 1000), 0);
        assert_eq!(id_in_ns(split, 100_001), 2);
        assert_eq!(id_in_ns("", 5), 65534);
    }

    #[test]
    fn limits_parse_and_skip_core() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max core file size        0                    unlimited            bytes     \n\
                    Max open files            1024                 1048576              files     \n";
        let limits = parse_limits(text);
        assert_eq!(limits.len(), 2);
        assert_eq!(
            limits[1],
            Rlimit {
                resource: libc::RLIMIT_NOFILE as i32,
                soft: 1024,
                hard: 1_048_576
            }
        );
        assert_eq!(limits[0].soft, libc::RLIM_INFINITY);
    }
}
