//! No engine at all: find containers in the host's `/proc/*/cgroup`.
//!
//! Every engine puts a container's processes in a cgroup whose path names the
//! container's 64-hex ID (cgroup v1: one line per hierarchy; v2: one `0::` line):
//!
//! | Engine / driver            | path component                                   |
//! |----------------------------|--------------------------------------------------|
//! | Docker, cgroupfs           | `/docker/<id>`                                   |
//! | Docker, systemd            | `docker-<id>.scope`                              |
//! | containerd CRI, systemd    | `cri-containerd-<id>.scope` (in `kubepods…`)    |
//! | containerd CRI, cgroupfs   | `/kubepods/<qos>/pod<uid>/<id>`                  |
//! | CRI-O                      | `crio-<id>.scope` (not `crio-conmon-<id>.scope`) |
//! | Podman                     | `libpod-<id>.scope`, `/libpod_parent/libpod-<id>` (not `libpod-conmon-…`) |
//! | ctr, `--cgroup-parent`     | `/<namespace>/<id>`, anything ending in `<id>`   |
//!
//! The innermost such component wins (sub-cgroups such as `init.scope` and nested
//! engines come after it). Of a container's processes, its init is the one that is
//! PID 1 of its own PID namespace (`NSpid` ends in 1); with the host's PID namespace,
//! the lowest PID. The process is pinned and its cgroup checked again afterwards
//! (`crate::pin`), so what is read here only has to find the right candidate.
//!
//! What only an engine knows is not guessed from the process: the environment is
//! empty (`/proc/<pid>/environ` is the container's to write, and dlx never trusts
//! it), the user is the init's real uid:gid, the working directory is `/`.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::PathBuf;

use super::{ContainerInfo, Engine, EngineError, RunState};
use crate::sys;

/// A container found in the cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: String,
    /// Its init process (host PID).
    pub pid: i32,
}

/// The host's processes, as the cgroups show them.
pub struct Cgroups {
    proc: PathBuf,
}

impl Default for Cgroups {
    fn default() -> Self {
        Cgroups::new()
    }
}

impl Cgroups {
    /// Scan the host's `/proc`.
    pub fn new() -> Cgroups {
        Cgroups::at("/proc")
    }

    /// Scan a directory laid out like `/proc` (tests).
    pub fn at(proc: impl Into<PathBuf>) -> Cgroups {
        Cgroups { proc: proc.into() }
    }

    /// Every container with a process on this host, with its init, by ID.
    pub fn scan(&self) -> Vec<Found> {
        let mut members: BTreeMap<String, Vec<(i32, Vec<i32>)>> = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(&self.proc) else {
            return Vec::new();
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            // Processes come and go while we read: a vanished one is skipped.
            let Ok(cgroup) = std::fs::read_to_string(entry.path().join("cgroup")) else {
                continue;
            };
            let Some(id) = container_of(&cgroup) else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
                continue;
            };
            members
                .entry(id.to_string())
                .or_default()
                .push((pid, status_field(&status, "NSpid")));
        }
        members
            .into_iter()
            .filter_map(|(id, procs)| choose_init(&procs).map(|pid| Found { id, pid }))
            .collect()
    }

    /// What can be said of container `found` without its engine.
    fn describe(&self, found: &Found) -> ContainerInfo {
        let status = std::fs::read_to_string(self.proc.join(found.pid.to_string()).join("status"))
            .unwrap_or_default();
        let real = |key| status_field(&status, key).first().copied().unwrap_or(0);
        ContainerInfo {
            id: found.id.clone(),
            name: super::short_id(&found.id).to_string(),
            image: String::new(),
            state: RunState::Running,
            pid: found.pid,
            user: format!("{}:{}", real("Uid"), real("Gid")),
            working_dir: "/".into(),
            env: Vec::new(),
            hostname: self.hostname(found.pid).unwrap_or_default(),
            group_add: Vec::new(),
            privileged: false,
        }
    }

    /// The container's `/etc/hostname` (the engine bind-mounts it there), read
    /// inside its root; only a plausible host name is kept.
    fn hostname(&self, pid: i32) -> Option<String> {
        if self.proc != std::path::Path::new("/proc") {
            return None;
        }
        let dir = sys::open_proc_dir(pid).ok()?;
        let root = sys::open_root(dir.as_fd()).ok()?;
        let raw = sys::read_in_root(root.as_fd(), "/etc/hostname", 256).ok()??;
        let name = String::from_utf8(raw).ok()?.trim().to_string();
        let plausible = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        plausible.then_some(name)
    }
}

impl Engine for Cgroups {
    fn inspect(&self, target: &str) -> Result<ContainerInfo, EngineError> {
        let not_found = || EngineError::NotInCgroups {
            target: target.to_string(),
        };
        if target.is_empty() || !target.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let prefix = target.to_ascii_lowercase();
        let matches: Vec<Found> = self
            .scan()
            .into_iter()
            .filter(|f| f.id.starts_with(&prefix))
            .collect();
        match matches.as_slice() {
            [one] => Ok(self.describe(one)),
            [] => Err(not_found()),
            many => Err(EngineError::Ambiguous {
                prefix: target.to_string(),
                candidates: many
                    .iter()
                    .map(|f| super::candidate(&f.id, &format!("pid {}", f.pid)))
                    .collect(),
            }),
        }
    }

    fn list_running(&self) -> Result<Vec<ContainerInfo>, EngineError> {
        Ok(self.scan().iter().map(|f| self.describe(f)).collect())
    }
}

/// Does `target` look like a container ID or ID prefix (what the cgroups can find)?
pub fn looks_like_id(target: &str) -> bool {
    !target.is_empty() && target.len() <= 64 && target.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container a process belongs to, from the text of its `/proc/<pid>/cgroup`:
/// the innermost container ID any line names.
pub fn container_of(cgroup: &str) -> Option<&str> {
    cgroup
        .lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .find_map(container_in_path)
}

/// The innermost container ID a cgroup path names.
pub fn container_in_path(path: &str) -> Option<&str> {
    path.split('/').rev().find_map(container_in_component)
}

/// The container ID of one path component, in any engine's spelling.
fn container_in_component(component: &str) -> Option<&str> {
    // conmon, the monitor Podman and CRI-O run beside each container, has the ID in
    // its own scope but is not the container.
    if component.starts_with("libpod-conmon-") || component.starts_with("crio-conmon-") {
        return None;
    }
    let bare = component.strip_suffix(".scope").unwrap_or(component);
    let id = ["docker-", "cri-containerd-", "crio-", "libpod-"]
        .iter()
        .find_map(|p| bare.strip_prefix(p))
        .unwrap_or(bare);
    let is_id = id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    is_id.then_some(id)
}

/// The numbers of a `/proc/<pid>/status` line (`Uid`, `Gid`, `NSpid`).
fn status_field(status: &str, key: &str) -> Vec<i32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A container's init among its processes `(host pid, NSpid)`: PID 1 of its own PID
/// namespace (the outermost such, should the container nest PID namespaces), else,
/// in the host's PID namespace, the lowest PID.
pub fn choose_init(procs: &[(i32, Vec<i32>)]) -> Option<i32> {
    procs
        .iter()
        .filter(|(_, nspid)| nspid.len() > 1 && nspid.last() == Some(&1))
        .min_by_key(|(pid, nspid)| (nspid.len(), *pid))
        .or_else(|| procs.iter().min_by_key(|(pid, _)| *pid))
        .map(|(pid, _)| *pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f3a9c2be1d07a55c0de1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e";

    #[test]
    fn every_engine_spelling_yields_the_id() {
        let paths = [
            format!("/docker/{ID}"),
            format!("/system.slice/docker-{ID}.scope"),
            format!("/system.slice/docker-{ID}.scope/init.scope"),
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b_3c4d.slice/cri-containerd-{ID}.scope"),
            format!("/kubepods/besteffort/pod1a2b3c4d-0000-1111-2222-333344445555/{ID}"),
            format!("/kubepods.slice/kubepods-pod1a2b.slice/crio-{ID}.scope"),
            format!("/machine.slice/libpod-{ID}.scope"),
            format!("/machine.slice/libpod-{ID}.scope/container"),
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
            format!("/libpod_parent/libpod-{ID}"),
            format!("/default/{ID}"),
            format!("/my-parent/{ID}"),
        ];
        for p in &paths {
            assert_eq!(container_in_path(p), Some(ID), "{p}");
        }
    }

    #[test]
    fn monitors_hosts_and_lookalikes_are_not_containers() {
        for p in [
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
            format!("/kubepods.slice/crio-conmon-{ID}.scope"),
            "/".to_string(),
            "/user.slice/user-0.slice/session-1.scope".into(),
            "/system.slice/docker.service".into(),
            format!("/docker/{}", &ID[..63]),
            format!("/docker/{}", ID.to_uppercase()),
            format!("/docker/{ID}0"),
        ] {
            assert_eq!(container_in_path(&p), None, "{p}");
        }
    }

    #[test]
    fn nested_engines_give_the_innermost_id() {
        let inner = "a".repeat(64);
        assert_eq!(
            container_in_path(&format!("/docker/{ID}/docker/{inner}")),
            Some(inner.as_str())
        );
    }

    #[test]
    fn v1_and_v2_files_are_read() {
        let v1 = format!(
            "12:pids:/docker/{ID}\n11:cpu,cpuacct:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n"
        );
        assert_eq!(container_of(&v1), Some(ID));
        let v2 = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(container_of(&v2), Some(ID));
        // Hybrid host, only the v2 line names it.
        let hybrid = format!("3:cpu:/\n0::/machine.slice/libpod-{ID}.scope/container\n");
        assert_eq!(container_of(&hybrid), Some(ID));
        assert_eq!(container_of("0::/init.scope\n1:name=systemd:/\n"), None);
        // A conmon line never makes its process the container's.
        let conmon = format!("1:name=systemd:/machine.slice/libpod-conmon-{ID}.scope\n");
        assert_eq!(container_of(&conmon), None);
    }

    #[test]
    fn init_is_pid_one_of_its_namespace_else_the_lowest() {
        // A session dlx started (NSpid ends in 7) and the init (ends in 1).
        let procs = vec![
            (900, vec![900, 7]),
            (950, vec![950, 1]),
            (960, vec![960, 8]),
        ];
        assert_eq!(choose_init(&procs), Some(950));
        // Nested PID namespace inside the container: the outer init wins.
        let nested = vec![(700, vec![700, 5, 1]), (650, vec![650, 1])];
        assert_eq!(choose_init(&nested), Some(650));
        // --pid=host: no NSpid beyond the host's.
        let host = vec![(4000, vec![4000]), (3999, vec![3999])];
        assert_eq!(choose_init(&host), Some(3999));
        assert_eq!(choose_init(&[]), None);
    }

    /// A directory laid out like `/proc`.
    fn fake_proc(entries: &[(i32, String, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (pid, cgroup, status) in entries {
            let p = dir.path().join(pid.to_string());
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("cgroup"), cgroup).unwrap();
            std::fs::write(p.join("status"), status).unwrap();
        }
        std::fs::create_dir(dir.path().join("self")).unwrap();
        dir
    }

    #[test]
    fn prefixes_resolve_to_the_init_with_engine_free_defaults() {
        let other = format!("4f{}", "b".repeat(62));
        let proc = fake_proc(&[
            (
                10,
                format!("0::/system.slice/docker-{ID}.scope\n"),
                "Name:\tapp\nUid:\t65532\t65532\t65532\t65532\nGid:\t65533\t65533\t65533\t65533\nNSpid:\t10\t1\n",
            ),
            (
                11,
                format!("0::/system.slice/docker-{ID}.scope\n"),
                "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nNSpid:\t11\t2\n",
            ),
            (
                12,
                format!("0::/machine.slice/libpod-conmon-{ID}.scope\n"),
                "Uid:\t0\t0\t0\t0\nNSpid:\t12\n",
            ),
            (
                20,
                format!("12:pids:/docker/{other}\n0::/\n"),
                "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nNSpid:\t20\t1\n",
            ),
            (30, "0::/init.scope\n".into(), "NSpid:\t30\n"),
        ]);
        let engine = Cgroups::at(proc.path());
        let info = engine.inspect("4f3a").unwrap();
        assert_eq!((info.id.as_str(), info.pid), (ID, 10));
        assert_eq!(info.user, "65532:65533");
        assert_eq!((info.working_dir.as_str(), info.env.len()), ("/", 0));
        assert_eq!(info.state, RunState::Running);

        let err = engine.inspect("4f").unwrap_err();
        assert!(matches!(err, EngineError::Ambiguous { .. }), "{err}");
        assert!(matches!(
            engine.inspect("web"),
            Err(EngineError::NotInCgroups { .. })
        ));
        assert!(matches!(
            engine.inspect("ffff"),
            Err(EngineError::NotInCgroups { .. })
        ));
        let all = engine.list_running().unwrap();
        assert_eq!(
            all.iter().map(|c| c.pid).collect::<Vec<_>>(),
            vec![10, 20],
            "one row per container, conmon and host processes left out"
        );
    }

    #[test]
    fn ids_are_told_from_names() {
        assert!(looks_like_id("4f3a"));
        assert!(looks_like_id(ID));
        assert!(!looks_like_id("web"));
        assert!(!looks_like_id(""));
    }
}
