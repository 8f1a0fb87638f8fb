//! Namespaces: which ones a session joins, and how a join is checked.
//!
//! A namespace is identified by the (device, inode) of its `/proc/<pid>/ns/<kind>`
//! file. dlx joins every kind whose identity differs from its own (or the subset named
//! by `--ns`), then checks, from the host, that the entering process really sits in
//! the target's namespaces (a runtime can silently give a new one: k3s#3381).

use std::fmt;
use std::str::FromStr;

use nix::sched::CloneFlags;

/// The kinds of namespace, in the order they are listed and joined. `user` comes last:
/// once in the container's user namespace dlx's capabilities count only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NsKind {
    Mnt,
    Uts,
    Ipc,
    Net,
    Pid,
    Time,
    Cgroup,
    User,
}

impl NsKind {
    pub const ALL: [NsKind; 8] = [
        NsKind::Mnt,
        NsKind::Uts,
        NsKind::Ipc,
        NsKind::Net,
        NsKind::Pid,
        NsKind::Time,
        NsKind::Cgroup,
        NsKind::User,
    ];

    /// The name under `/proc/<pid>/ns/`.
    pub fn name(self) -> &'static str {
        match self {
            NsKind::Mnt => "mnt",
            NsKind::Uts => "uts",
            NsKind::Ipc => "ipc",
            NsKind::Net => "net",
            NsKind::Pid => "pid",
            NsKind::Time => "time",
            NsKind::Cgroup => "cgroup",
            NsKind::User => "user",
        }
    }

    /// The file that shows the namespace a process has *joined*: for pid and time,
    /// `setns` changes only what children get, so the check reads `*_for_children`.
    pub fn joined_name(self) -> &'static str {
        match self {
            NsKind::Pid => "pid_for_children",
            NsKind::Time => "time_for_children",
            other => other.name(),
        }
    }

    /// The `setns` flag.
    pub fn flag(self) -> CloneFlags {
        match self {
            NsKind::Mnt => CloneFlags::CLONE_NEWNS,
            NsKind::Uts => CloneFlags::CLONE_NEWUTS,
            NsKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NsKind::Net => CloneFlags::CLONE_NEWNET,
            NsKind::Pid => CloneFlags::CLONE_NEWPID,
            // nix has no constant for it; the kernel's value is CLONE_NEWTIME.
            NsKind::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
            NsKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            NsKind::User => CloneFlags::CLONE_NEWUSER,
        }
    }
}

impl fmt::Display for NsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown name in `--ns`.
#[derive(Debug, thiserror::Error)]
#[error("unknown namespace {0:?}\nhint: use mnt, uts, ipc, net, pid, time, cgroup or user")]
pub struct UnknownNs(String);

impl FromStr for NsKind {
    type Err = UnknownNs;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "mnt" | "mount" => Ok(NsKind::Mnt),
            "uts" => Ok(NsKind::Uts),
            "ipc" => Ok(NsKind::Ipc),
            "net" | "network" => Ok(NsKind::Net),
            "pid" => Ok(NsKind::Pid),
            "time" => Ok(NsKind::Time),
            "cgroup" => Ok(NsKind::Cgroup),
            "user" => Ok(NsKind::User),
            other => Err(UnknownNs(other.to_string())),
        }
    }
}

/// A namespace identity: (device, inode) of its nsfs file.
pub type NsId = (u64, u64);

/// One namespace to join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Join {
    pub kind: NsKind,
    pub target: NsId,
}

/// Decide what to join: the kinds in `wanted` (all when `None`) whose identity in the
/// target differs from dlx's own. A kind the kernel lacks (no `ns/time` before 5.6)
/// is absent from both lists and so never joined.
pub fn plan(
    target: &[(NsKind, NsId)],
    own: &[(NsKind, NsId)],
    wanted: Option<&[NsKind]>,
) -> Vec<Join> {
    target
        .iter()
        .filter(|(kind, _)| wanted.is_none_or(|w| w.contains(kind)))
        .filter(|(kind, id)| {
            own.iter()
                .find(|(k, _)| k == kind)
                .is_none_or(|(_, own_id)| own_id != id)
        })
        .map(|&(kind, target)| Join { kind, target })
        .collect()
}

/// The `setns` flags of `joins`, without the kinds that must be joined on their own.
pub fn flags(joins: &[Join], except: &[NsKind]) -> CloneFlags {
    joins
        .iter()
        .filter(|j| !except.contains(&j.kind))
        .fold(CloneFlags::empty(), |acc, j| acc | j.kind.flag())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[(NsKind, u64)]) -> Vec<(NsKind, NsId)> {
        list.iter().map(|&(k, ino)| (k, (4, ino))).collect()
    }

    #[test]
    fn joins_only_what_differs() {
        let target = ids(&[
            (NsKind::Mnt, 10),
            (NsKind::Net, 11),
            (NsKind::User, 1),
            (NsKind::Cgroup, 2),
        ]);
        let own = ids(&[
            (NsKind::Mnt, 20),
            (NsKind::Net, 21),
            (NsKind::User, 1),
            (NsKind::Cgroup, 2),
        ]);
        let joins = plan(&target, &own, None);
        assert_eq!(
            joins.iter().map(|j| j.kind).collect::<Vec<_>>(),
            vec![NsKind::Mnt, NsKind::Net]
        );
    }

    #[test]
    fn ns_list_restricts_the_plan() {
        let target = ids(&[(NsKind::Mnt, 10), (NsKind::Net, 11), (NsKind::Uts, 12)]);
        let own = ids(&[(NsKind::Mnt, 20), (NsKind::Net, 21), (NsKind::Uts, 22)]);
        let joins = plan(&target, &own, Some(&[NsKind::Net, NsKind::Uts]));
        assert_eq!(
            joins.iter().map(|j| j.kind).collect::<Vec<_>>(),
            vec![NsKind::Net, NsKind::Uts]
        );
    }

    #[test]
    fn flags_leave_out_user_and_cgroup() {
        let joins: Vec<Join> = NsKind::ALL
            .iter()
            .map(|&kind| Join {
                kind,
                target: (0, 0),
            })
            .collect();
        let f = flags(&joins, &[NsKind::User, NsKind::Cgroup]);
        assert!(f.contains(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID));
        assert!(!f.intersects(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWCGROUP));
    }

    #[test]
    fn names_parse_back() {
        for kind in NsKind::ALL {
            assert_eq!(kind.name().parse::<NsKind>().unwrap(), kind);
        }
        assert!("bogus"
            .parse::<NsKind>()
            .unwrap_err()
            .to_string()
            .contains("hint:"));
    }
}
