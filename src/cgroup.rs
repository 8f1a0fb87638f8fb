//! Control groups, seen from the host: where the target lives, whether it is frozen,
//! and how a session joins it (v1: the `tasks` file of every hierarchy; v2: the
//! directory it is forked into). Paths come from the target's `/proc/<pid>/cgroup`,
//! read through the pinned proc directory, and are checked to stay under the
//! container's own scope.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::sys;

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Hierarchy ID (0 for the v2 unified hierarchy).
    pub hierarchy: u32,
    /// Controllers (v1), e.g. `["cpu", "cpuacct"]`, or `["name=systemd"]`; empty for v2.
    pub controllers: Vec<String>,
    /// Path inside the hierarchy, e.g. `/docker/<id>`.
    pub path: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read the cgroups of pid {pid}: {source}")]
    Read { pid: i32, source: sys::SysError },
    #[error("pid {pid} is not in the cgroup of container {id} (it is in {path})\nhint: the container may have restarted; try again")]
    Foreign { pid: i32, id: String, path: String },
    #[error("cannot open {path} to join the container's cgroup: {source}\nhint: pass --no-cgroup to stay in dlx's own cgroup")]
    Open { path: String, source: sys::SysError },
}

/// Parse `/proc/<pid>/cgroup`.
pub fn parse(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(Membership {
                hierarchy,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// Read the memberships of `pid` through its pinned proc directory.
pub fn read(
    proc_dir: std::os::fd::BorrowedFd<'_>,
    pid: i32,
) -> Result<Vec<Membership>, CgroupError> {
    let raw = sys::read_at(proc_dir, "cgroup", 64 * 1024)
        .map_err(|source| CgroupError::Read { pid, source })?;
    Ok(parse(&String::from_utf8_lossy(&raw)))
}

/// Check that a container's init lives in the container's own cgroup: some path
/// names the container ID, and every path is either that or the hierarchy root
/// (hybrid hosts leave the v2 hierarchy at `/`). A container that can write its
/// cgroupfs could otherwise point dlx at somebody else's cgroup.
pub fn check_belongs(memberships: &[Membership], pid: i32, id: &str) -> Result<(), CgroupError> {
    let foreign = |path: &str| CgroupError::Foreign {
        pid,
        id: id.to_string(),
        path: path.to_string(),
    };
    if !memberships.iter().any(|m| m.path.contains(id)) {
        return Err(foreign(
            memberships
                .first()
                .map(|m| m.path.as_str())
                .unwrap_or("no cgroup"),
        ));
    }
    // Podman's and CRI-O's conmon live in a scope named after the container too
    // (`libpod-conmon-<id>.scope`), but are not the container.
    let monitor = |path: &str| {
        path.split('/')
            .any(|c| c.starts_with("libpod-conmon-") || c.starts_with("crio-conmon-"))
    };
    match memberships
        .iter()
        .find(|m| m.path != "/" && (!m.path.contains(id) || monitor(&m.path)))
    {
        Some(m) => Err(foreign(&m.path)),
        None => Ok(()),
    }
}

/// A mounted cgroup hierarchy on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub dir: PathBuf,
    /// v1 controllers/names from the super options; empty for v2.
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// The cgroup hierarchies mounted in dlx's own mount namespace (from mountinfo).
pub fn mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let dir = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let _source = r.next()?;
            let options = r.next().unwrap_or("");
            match fstype {
                "cgroup2" => Some(Mount {
                    dir: PathBuf::from(unescape(dir)),
                    controllers: Vec::new(),
                    v2: true,
                }),
                "cgroup" => Some(Mount {
                    dir: PathBuf::from(unescape(dir)),
                    controllers: options
                        .split(',')
                        .filter(|o| {
                            !matches!(*o, "rw" | "ro")
                                && !o.starts_with("release_agent")
                                && *o != "clone_children"
                        })
                        .map(str::to_string)
                        .collect(),
                    v2: false,
                }),
                _ => None,
            }
        })
        .collect()
}

fn unescape(path: &str) -> String {
    path.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The host directory of `membership`, if its hierarchy is mounted.
pub fn dir_of(membership: &Membership, mounts: &[Mount]) -> Option<PathBuf> {
    let mount = if is_v2(membership) {
        mounts.iter().find(|m| m.v2)?
    } else {
        mounts.iter().find(|m| {
            !m.v2
                && membership
                    .controllers
                    .iter()
                    .all(|c| m.controllers.contains(c))
        })?
    };
    Some(mount.dir.join(membership.path.trim_start_matches('/')))
}

/// Is the target frozen (paused)? Joining a frozen cgroup would freeze dlx too.
pub fn is_frozen(memberships: &[Membership], mounts: &[Mount]) -> bool {
    memberships.iter().any(|m| {
        let Some(dir) = dir_of(m, mounts) else {
            return false;
        };
        if m.controllers.iter().any(|c| c == "freezer") {
            read_small(&dir.join("freezer.state")).is_some_and(|s| s.trim() != "THAWED")
        } else if is_v2(m) {
            read_small(&dir.join("cgroup.events"))
                .is_some_and(|s| s.lines().any(|l| l.trim() == "frozen 1"))
        } else {
            false
        }
    })
}

fn read_small(path: &Path) -> Option<String> {
    sys::read_file(path.to_str()?, 4096)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// What a session needs to join the container's cgroups.
///
/// Why not `cgroup.procs` everywhere: writing a pid there takes the kernel's global
/// `cgroup_threadgroup_rwsem` for writing, and unless the host mounted cgroup2 with
/// `favordynmods`, that first waits for an RCU grace period whenever no other move
/// happened within the last one, all the while holding `cgroup_mutex` (10 to 20 ms
/// on an idle 2-CPU host, and every other session's join queues behind it). A
/// thread moving itself (`0` into a v1 hierarchy's `tasks`) and a fork placed by
/// `clone3(CLONE_INTO_CGROUP)` take neither lock. The enterer is single-threaded, so
/// moving its one thread moves all of it.
#[derive(Debug, Default)]
pub struct Join {
    /// The v1 hierarchies' `tasks` files, for the enterer to write `0` into.
    pub tasks: Vec<OwnedFd>,
    /// The v2 cgroup, when the container's differs from dlx's.
    pub v2: Option<V2Join>,
}

/// The container's v2 cgroup: its directory, to fork the enterer straight into, and
/// its `cgroup.procs`, for kernels or cgroups where that is refused.
#[derive(Debug)]
pub struct V2Join {
    pub dir: OwnedFd,
    pub procs: OwnedFd,
}

/// Open what joining the container's cgroups takes, in every hierarchy where the
/// target's cgroup differs from dlx's own.
pub fn open_join(
    target: &[Membership],
    own: &[Membership],
    mounts: &[Mount],
) -> Result<Join, CgroupError> {
    let mut join = Join::default();
    for m in target {
        let same = own.iter().any(|o| {
            o.hierarchy == m.hierarchy && o.controllers == m.controllers && o.path == m.path
        });
        if same {
            continue;
        }
        let Some(dir) = dir_of(m, mounts) else {
            continue;
        };
        let open = |path: &Path, how: fn(&str) -> Result<OwnedFd, sys::SysError>| {
            let path = path.to_string_lossy().into_owned();
            how(&path).map_err(|source| CgroupError::Open { path, source })
        };
        if is_v2(m) {
            join.v2 = Some(V2Join {
                dir: open(&dir, sys::open_dir)?,
                procs: open(&dir.join("cgroup.procs"), sys::open_write)?,
            });
        } else {
            join.tasks.push(open(&dir.join("tasks"), sys::open_write)?);
        }
    }
    Ok(join)
}

fn is_v2(m: &Membership) -> bool {
    m.hierarchy == 0 && m.controllers.is_empty()
}

/// The container's freezer, and dlx's own place in the same hierarchy: what a
/// handover (`crate::handover`) freezes, and where the processes that must keep
/// running meanwhile wait it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freezer {
    /// The container's directory in the hierarchy.
    dir: PathBuf,
    /// dlx's own directory in the hierarchy.
    home: PathBuf,
    /// The hierarchy as `/proc/<pid>/cgroup` names it, and the container's path there.
    membership: Membership,
    v2: bool,
}

/// The freezer of the container whose memberships are `target` (dlx's own are `own`):
/// v1's freezer controller, else v2's `cgroup.freeze`. `None` when neither is mounted
/// or the container sits at the hierarchy's root.
pub fn freezer(target: &[Membership], own: &[Membership], mounts: &[Mount]) -> Option<Freezer> {
    let v1 = |m: &&Membership| m.controllers.iter().any(|c| c == "freezer");
    let (membership, is_v2) = match target.iter().find(v1) {
        Some(m) => (m, false),
        None => (target.iter().find(|m| is_v2(m))?, true),
    };
    if membership.path == "/" {
        return None;
    }
    let ours = own
        .iter()
        .find(|o| o.hierarchy == membership.hierarchy && o.controllers == membership.controllers)?;
    Some(Freezer {
        dir: dir_of(membership, mounts)?,
        home: dir_of(ours, mounts)?,
        membership: membership.clone(),
        v2: is_v2,
    })
}

impl Freezer {
    /// The container's directory (what a handover locks).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the container is frozen now.
    pub fn is_frozen(&self) -> bool {
        match self.v2 {
            false => {
                read_small(&self.dir.join("freezer.state")).is_some_and(|s| s.trim() == "FROZEN")
            }
            true => read_small(&self.dir.join("cgroup.events"))
                .is_some_and(|s| s.lines().any(|l| l.trim() == "frozen 1")),
        }
    }

    /// Ask the kernel to freeze (or thaw) the container; [`Freezer::is_frozen`] says
    /// when every task has stopped.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), sys::SysError> {
        let (file, value): (&str, &[u8]) = match (self.v2, frozen) {
            (false, true) => ("freezer.state", b"FROZEN"),
            (false, false) => ("freezer.state", b"THAWED"),
            (true, true) => ("cgroup.freeze", b"1"),
            (true, false) => ("cgroup.freeze", b"0"),
        };
        sys::write_file(&self.dir.join(file).to_string_lossy(), value)
    }

    /// Whether process `pid` is in the container's cgroup of this hierarchy.
    pub fn holds(&self, pid: i32) -> bool {
        sys::open_proc_dir(pid)
            .ok()
            .and_then(|dir| read(dir.as_fd(), pid).ok())
            .is_some_and(|memberships| memberships.contains(&self.membership))
    }

    /// Move process `pid` out of the container's cgroup of this hierarchy into dlx's,
    /// or back (`out` false).
    pub fn move_process(&self, pid: i32, out: bool) -> Result<(), sys::SysError> {
        let dir = if out { &self.home } else { &self.dir };
        sys::write_file(
            &dir.join("cgroup.procs").to_string_lossy(),
            pid.to_string().as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str =
        "12:pids:/docker/abc123\n4:memory:/docker/abc123\n1:name=systemd:/docker/abc123\n0::/\n";

    #[test]
    fn parses_v1_and_v2_lines() {
        let m = parse(V1);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].controllers, vec!["pids"]);
        assert_eq!(m[2].controllers, vec!["name=systemd"]);
        assert_eq!(
            m[3],
            Membership {
                hierarchy: 0,
                controllers: vec![],
                path: "/".into()
            }
        );
    }

    #[test]
    fn a_container_init_must_live_under_its_own_id() {
        assert!(check_belongs(&parse(V1), 7, "abc123").is_ok());
        let moved = "4:memory:/docker/abc123\n12:pids:/elsewhere\n";
        assert!(check_belongs(&parse(moved), 7, "abc123").is_err());
        assert!(check_belongs(&parse("0::/system.slice/other.scope\n"), 7, "abc123").is_err());
        // Podman: the container's scope, not its conmon's.
        assert!(check_belongs(
            &parse("0::/machine.slice/libpod-abc123.scope/container\n"),
            7,
            "abc123"
        )
        .is_ok());
        assert!(check_belongs(
            &parse("1:name=systemd:/machine.slice/libpod-conmon-abc123.scope\n"),
            7,
            "abc123"
        )
        .is_err());
        assert!(check_belongs(
            &parse("0::/kubepods.slice/crio-conmon-abc123.scope\n"),
            7,
            "abc123"
        )
        .is_err());
    }

    #[test]
    fn finds_hierarchy_dirs_from_mountinfo() {
        let info = "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                    31 25 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                    32 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        let mounts = mounts(info);
        let m = parse(V1);
        assert_eq!(
            dir_of(&m[1], &mounts).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/docker/abc123")
        );
        assert_eq!(
            dir_of(&m[2], &mounts).unwrap(),
            PathBuf::from("/sys/fs/cgroup/systemd/docker/abc123")
        );
        assert_eq!(
            dir_of(&m[3], &mounts).unwrap(),
            PathBuf::from("/sys/fs/cgroup/unified/")
        );
        assert_eq!(dir_of(&m[0], &mounts), None);
    }

    #[test]
    fn the_freezer_is_v1s_controller_else_v2s_cgroup_freeze() {
        let info = "37 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        let mounts = mounts(info);
        let own = parse("6:freezer:/\n0::/user.slice\n");
        let hybrid = parse("6:freezer:/docker/abc\n0::/\n");
        let f = freezer(&hybrid, &own, &mounts).unwrap();
        assert_eq!(f.dir(), Path::new("/sys/fs/cgroup/freezer/docker/abc"));
        assert_eq!(f.home, PathBuf::from("/sys/fs/cgroup/freezer/"));
        assert!(!f.v2);
        let unified = parse("0::/system.slice/docker-abc.scope\n");
        let f = freezer(&unified, &own, &mounts).unwrap();
        assert_eq!(
            f.dir(),
            Path::new("/sys/fs/cgroup/unified/system.slice/docker-abc.scope")
        );
        assert_eq!(f.home, PathBuf::from("/sys/fs/cgroup/unified/user.slice"));
        assert!(f.v2);
        // A container at the root of its only hierarchy has nothing of its own to freeze.
        assert_eq!(freezer(&parse("0::/\n"), &own, &mounts), None);
        // Nor does one whose freezer hierarchy is not mounted.
        assert_eq!(freezer(&hybrid, &own, &[]), None);
    }

    /// The join moves a thread through v1's `tasks` (no global lock) and forks into
    /// v2's directory; `cgroup.procs` only as v2's fallback. Hierarchies where the
    /// container sits where dlx does are left alone.
    #[test]
    fn joins_v1_through_tasks_and_v2_through_its_directory() {
        use std::os::fd::AsFd;
        let root = tempfile::tempdir().unwrap();
        let dir = |rel: &str| {
            let d = root.path().join(rel);
            std::fs::create_dir_all(&d).unwrap();
            for f in ["tasks", "cgroup.procs"] {
                std::fs::write(d.join(f), "").unwrap();
            }
            d
        };
        let memory = dir("memory/docker/abc");
        dir("pids");
        let unified = dir("unified/docker/abc");
        let info = format!(
            "30 25 0:26 / {r}/memory rw - cgroup cgroup rw,memory\n\
             31 25 0:27 / {r}/pids rw - cgroup cgroup rw,pids\n\
             32 25 0:28 / {r}/unified rw - cgroup2 cgroup2 rw\n",
            r = root.path().display()
        );
        let mounts = mounts(&info);
        let own = parse("4:memory:/\n12:pids:/\n0::/\n");
        let target = parse("4:memory:/docker/abc\n12:pids:/\n0::/docker/abc\n");

        let join = open_join(&target, &own, &mounts).unwrap();
        let path = |fd: std::os::fd::BorrowedFd<'_>| {
            std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&fd)
            ))
            .unwrap()
        };
        assert_eq!(
            join.tasks.len(),
            1,
            "pids is shared with dlx: no file for it"
        );
        assert_eq!(path(join.tasks[0].as_fd()), memory.join("tasks"));
        let v2 = join.v2.unwrap();
        assert_eq!(path(v2.dir.as_fd()), unified);
        assert_eq!(path(v2.procs.as_fd()), unified.join("cgroup.procs"));

        // A container in dlx's own cgroups needs nothing opened.
        let nothing = open_join(&own, &own, &mounts).unwrap();
        assert!(nothing.tasks.is_empty() && nothing.v2.is_none());
        // A missing file is an error naming it, with the way out.
        std::fs::remove_file(memory.join("tasks")).unwrap();
        let err = open_join(&target, &own, &mounts).unwrap_err().to_string();
        assert!(
            err.contains("memory/docker/abc/tasks") && err.contains("--no-cgroup"),
            "{err}"
        );
    }
}
