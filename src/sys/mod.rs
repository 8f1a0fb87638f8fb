//! The kernel floor. Every kernel side effect dlx makes goes through this module, and
//! only `linux.rs` below it may say `unsafe` (each block with a `// SAFETY:` comment).
//!
//! Two kinds of calls live here:
//! - [`Sys`]: the calls of the privileged entry sequence (`crate::launch`), behind a
//!   trait so the order of that sequence is unit-tested against a recording fake;
//! - plain functions for the host-side preparation (pidfds, procfs reads through a
//!   pinned directory, pipes, signals, waiting), which run before anything is entered.

mod linux;
mod view;

#[cfg(test)]
pub mod fake;

pub use linux::*;
pub use view::{clone_read_only, TOOLBOX_NAME};

use std::ffi::{CStr, CString};
use std::os::fd::{BorrowedFd, RawFd};

/// A failed system call, naming the operation and what it acted on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {what}: {errno}")]
pub struct SysError {
    /// The call, e.g. `setns`.
    pub op: &'static str,
    /// The object it acted on, e.g. `pid 4242` or a path.
    pub what: String,
    /// What the kernel said.
    pub errno: nix::errno::Errno,
}

impl SysError {
    pub fn new(op: &'static str, what: impl Into<String>, errno: nix::errno::Errno) -> Self {
        SysError {
            op,
            what: what.into(),
            errno,
        }
    }
}

/// Namespace kinds, as `setns` flags.
pub type NsFlags = nix::sched::CloneFlags;

/// Result of [`Sys::fork`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    /// In the parent, with the child's pid (as seen from the parent's pid namespace).
    Parent(i32),
    /// In the child.
    Child,
}

/// One resource limit to copy from the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: i32,
    pub soft: u64,
    pub hard: u64,
}

/// The user and groups a command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// The capability sets the command gets, as bit masks (bit N = capability N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
}

/// The calls of the privileged entry sequence, in the order `crate::launch` makes them.
pub trait Sys {
    /// Ask for SIGKILL when the parent (dlx) dies.
    fn set_parent_death_signal(&self) -> Result<(), SysError>;
    /// Move this process into a cgroup by writing to its (host) `cgroup.procs`.
    fn join_cgroup(&self, procs: BorrowedFd<'_>) -> Result<(), SysError>;
    /// Set one resource limit.
    fn set_rlimit(&self, limit: Rlimit) -> Result<(), SysError>;
    /// Join the namespaces `flags` of the process behind `pidfd`, all or none.
    fn setns(&self, pidfd: BorrowedFd<'_>, flags: NsFlags) -> Result<(), SysError>;
    /// Move into a private copy of the (joined) mount namespace whose root shadows
    /// the container's, with `toolbox` attached at `/.dlx`; `read_only` makes the
    /// container's tree read-only in it. See `view.rs`.
    fn enter_private_view(
        &self,
        toolbox: Option<BorrowedFd<'_>>,
        read_only: bool,
    ) -> Result<(), SysError>;
    /// Tell the parent how far we got (a fixed-size record on the report pipe).
    fn report(&self, fd: RawFd, record: &[u8]) -> Result<(), SysError>;
    /// Block until the parent says go (one byte on the sync pipe); false on EOF.
    fn wait_go(&self, fd: RawFd) -> Result<bool, SysError>;
    /// Join a new anonymous session keyring (keyrings are not namespaced).
    fn join_new_session_keyring(&self) -> Result<(), SysError>;
    /// Change directory to `path`, resolved inside the current root (no escape via
    /// `..` or symlinks), and check the result is reachable.
    fn chdir_in_root(&self, path: &CStr) -> Result<(), SysError>;
    /// Set `no_new_privs`.
    fn set_no_new_privs(&self) -> Result<(), SysError>;
    /// Install the seccomp filter that stops every ptrace attach request
    /// (`PTRACE_ATTACH`, `PTRACE_SEIZE`, `PTRACE_TRACEME`) of this process and all it
    /// starts for dlx, its tracer, to decide (see `crate::handover`).
    fn guard_attaches(&self) -> Result<(), SysError>;
    /// Drop every capability outside `keep` from the bounding set.
    fn limit_bounding_set(&self, keep: u64) -> Result<(), SysError>;
    /// Keep permitted capabilities across the uid change that follows.
    fn set_keep_caps(&self, keep: bool) -> Result<(), SysError>;
    /// setgroups, setresgid, setresuid.
    fn set_ids(&self, ids: &Ids) -> Result<(), SysError>;
    /// Set effective, permitted and inheritable (empty) sets; clear the ambient set.
    fn set_caps(&self, caps: &CapSets) -> Result<(), SysError>;
    /// Make `fds` this process's 0, 1 and 2.
    fn install_stdio(&self, fds: [RawFd; 3]) -> Result<(), SysError>;
    /// Make `fds` this process's 3, 4, … in order, each kept across exec or not as
    /// its flag says, and close every other descriptor from 3 up.
    fn place_fds(&self, fds: &[(RawFd, bool)]) -> Result<(), SysError>;
    /// execveat(2) of the program `program` refers to; returns only on failure.
    fn exec_program(&self, program: RawFd, argv: &[CString], envp: &[CString]) -> SysError;
}
