//! A recording [`Sys`] for unit tests: every call is logged by name (with its
//! argument where it matters) and any call can be made to fail.

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;

use super::{CapSets, Ids, NsFlags, Rlimit, Sys, SysError};

/// Records calls; `fail_at` makes the named call fail with EPERM.
#[derive(Default)]
pub struct FakeSys {
    pub calls: RefCell<Vec<String>>,
    pub fail_at: Option<&'static str>,
    /// What `wait_go` returns.
    pub go: Option<bool>,
}

impl FakeSys {
    fn record(&self, op: &'static str, detail: String) -> Result<(), SysError> {
        let entry = if detail.is_empty() {
            op.to_string()
        } else {
            format!("{op}({detail})")
        };
        self.calls.borrow_mut().push(entry);
        if self.fail_at == Some(op) {
            return Err(SysError::new(op, "fake", Errno::EPERM));
        }
        Ok(())
    }

    /// The recorded calls, by name only.
    pub fn names(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .map(|c| c.split('(').next().unwrap_or_default().to_string())
            .collect()
    }

    /// Index of the first call named `op`; panics when it was never made.
    pub fn position(&self, op: &str) -> usize {
        self.names()
            .iter()
            .position(|n| n == op)
            .unwrap_or_else(|| panic!("{op} never called: {:?}", self.calls.borrow()))
    }
}

impl Sys for FakeSys {
    fn set_parent_death_signal(&self) -> Result<(), SysError> {
        self.record("set_parent_death_signal", String::new())
    }
    fn join_cgroup(&self, procs: BorrowedFd<'_>) -> Result<(), SysError> {
        self.record("join_cgroup", procs.as_raw_fd().to_string())
    }
    fn set_rlimit(&self, limit: Rlimit) -> Result<(), SysError> {
        self.record("set_rlimit", limit.resource.to_string())
    }
    fn setns(&self, _pidfd: BorrowedFd<'_>, flags: NsFlags) -> Result<(), SysError> {
        self.record("setns", format!("{:#x}", flags.bits()))
    }
    fn enter_private_view(
        &self,
        toolbox: Option<BorrowedFd<'_>>,
        read_only: bool,
    ) -> Result<(), SysError> {
        self.record(
            "enter_private_view",
            format!("toolbox={},ro={read_only}", toolbox.is_some()),
        )
    }
    fn report(&self, _fd: RawFd, record: &[u8]) -> Result<(), SysError> {
        self.record(
            "report",
            record.first().map(|b| b.to_string()).unwrap_or_default(),
        )
    }
    fn wait_go(&self, _fd: RawFd) -> Result<bool, SysError> {
        self.record("wait_go", String::new())?;
        Ok(self.go.unwrap_or(true))
    }
    fn join_new_session_keyring(&self) -> Result<(), SysError> {
        self.record("join_new_session_keyring", String::new())
    }
    fn chdir_in_root(&self, path: &CStr) -> Result<(), SysError> {
        self.record("chdir_in_root", path.to_string_lossy().into_owned())
    }
    fn set_no_new_privs(&self) -> Result<(), SysError> {
        self.record("set_no_new_privs", String::new())
    }
    fn guard_attaches(&self) -> Result<(), SysError> {
        self.record("guard_attaches", String::new())
    }
    fn limit_bounding_set(&self, keep: u64) -> Result<(), SysError> {
        self.record("limit_bounding_set", format!("{keep:#x}"))
    }
    fn set_keep_caps(&self, keep: bool) -> Result<(), SysError> {
        self.record("set_keep_caps", keep.to_string())
    }
    fn set_ids(&self, ids: &Ids) -> Result<(), SysError> {
        self.record("set_ids", format!("{}:{}", ids.uid, ids.gid))
    }
    fn set_caps(&self, caps: &CapSets) -> Result<(), SysError> {
        self.record("set_caps", format!("{:#x}", caps.effective))
    }
    fn install_stdio(&self, fds: [RawFd; 3]) -> Result<(), SysError> {
        self.record("install_stdio", format!("{fds:?}"))
    }
    fn place_fds(&self, fds: &[(RawFd, bool)]) -> Result<(), SysError> {
        let kept: Vec<bool> = fds.iter().map(|(_, keep)| *keep).collect();
        self.record("place_fds", format!("{kept:?}"))
    }
    fn exec_program(&self, _program: RawFd, argv: &[CString], _envp: &[CString]) -> SysError {
        let first = argv.first().map(|a| a.to_string_lossy().into_owned());
        let _ = self.record("exec_program", first.unwrap_or_default());
        // The real one never returns when it succeeds; this one fails as if the
        // program were gone.
        SysError::new("execveat", "fake", Errno::ENOENT)
    }
}
