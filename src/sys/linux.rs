//! The only file in dlx that calls the kernel directly, and the only one allowed to
//! say `unsafe`. Safe wrappers from `nix` and `rustix` are used where they exist; the
//! few raw calls (fork, close_range, keyctl, setrlimit) each carry a `// SAFETY:` note.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use rustix::fs::{Mode as RxMode, OFlags, ResolveFlags};

use super::{CapSets, Fork, Ids, NsFlags, Rlimit, Sys, SysError};

pub(super) fn rx(err: rustix::io::Errno) -> Errno {
    Errno::from_raw(err.raw_os_error())
}

/// The real kernel.
pub struct LinuxSys;

impl Sys for LinuxSys {
    fn set_parent_death_signal(&self) -> Result<(), SysError> {
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
            .map_err(|e| SysError::new("prctl(PR_SET_PDEATHSIG)", "self", e))
    }

    fn join_cgroup(&self, procs: BorrowedFd<'_>) -> Result<(), SysError> {
        // "0" means the writer itself: the calling thread in a v1 `tasks` file, the
        // whole process in `cgroup.procs`.
        nix::unistd::write(procs, b"0").map(|_| ()).map_err(|e| {
            SysError::new(
                "write",
                format!("cgroup.procs (fd {})", procs.as_raw_fd()),
                e,
            )
        })
    }

    fn set_rlimit(&self, limit: Rlimit) -> Result<(), SysError> {
        let value = libc::rlimit {
            rlim_cur: limit.soft,
            rlim_max: limit.hard,
        };
        // SAFETY: `value` is a valid, initialised rlimit that outlives the call; the
        // resource number comes from the table in `crate::pin` and an unknown one only
        // yields EINVAL.
        let rc = unsafe { libc::setrlimit(limit.resource as libc::__rlimit_resource_t, &value) };
        Errno::result(rc)
            .map(drop)
            .map_err(|e| SysError::new("setrlimit", format!("resource {}", limit.resource), e))
    }

    fn setns(&self, pidfd: BorrowedFd<'_>, flags: NsFlags) -> Result<(), SysError> {
        nix::sched::setns(pidfd, flags)
            .map_err(|e| SysError::new("setns", format!("{flags:?} via pidfd"), e))
    }

    fn enter_private_view(
        &self,
        toolbox: Option<BorrowedFd<'_>>,
        read_only: bool,
    ) -> Result<(), SysError> {
        super::view::enter_private_view(&super::view::ViewSpec { toolbox, read_only })
    }

    fn report(&self, fd: RawFd, record: &[u8]) -> Result<(), SysError> {
        // SAFETY: the report pipe stays open for the life of this process; the borrow
        // does not outlive the call.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        nix::unistd::write(fd, record)
            .map(drop)
            .map_err(|e| SysError::new("write", "report pipe", e))
    }

    fn wait_go(&self, fd: RawFd) -> Result<bool, SysError> {
        let mut byte = [0u8; 1];
        loop {
            match nix::unistd::read(fd_borrow(fd), &mut byte) {
                Ok(n) => return Ok(n == 1),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(SysError::new("read", "sync pipe", e)),
            }
        }
    }

    fn join_new_session_keyring(&self) -> Result<(), SysError> {
        // SAFETY: KEYCTL_JOIN_SESSION_KEYRING with a NULL name creates an anonymous
        // keyring; no pointer is dereferenced by the kernel.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                libc::KEYCTL_JOIN_SESSION_KEYRING,
                std::ptr::null::<u8>(),
            )
        };
        match Errno::result(rc) {
            Ok(_) => Ok(()),
            // Kernels built without keys, or seccomp'd hosts: nothing to leak then.
            Err(Errno::ENOSYS) => Ok(()),
            Err(e) => Err(SysError::new(
                "keyctl(JOIN_SESSION_KEYRING)",
                "new keyring",
                e,
            )),
        }
    }

    fn chdir_in_root(&self, path: &CStr) -> Result<(), SysError> {
        let what = || path.to_string_lossy().into_owned();
        let root = rustix::fs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            RxMode::empty(),
        )
        .map_err(|e| SysError::new("open", "/", rx(e)))?;
        let dir = rustix::fs::openat2(
            &root,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            RxMode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| SysError::new("open", what(), rx(e)))?;
        rustix::process::fchdir(&dir).map_err(|e| SysError::new("fchdir", what(), rx(e)))?;
        // A directory outside our root reads back as "(unreachable)/..." (CVE-2024-21626).
        let cwd = rustix::process::getcwd(Vec::new())
            .map_err(|e| SysError::new("getcwd", what(), rx(e)))?;
        if !cwd.to_bytes().starts_with(b"/") {
            return Err(SysError::new("getcwd", what(), Errno::EXDEV));
        }
        Ok(())
    }

    fn set_no_new_privs(&self) -> Result<(), SysError> {
        nix::sys::prctl::set_no_new_privs()
            .map_err(|e| SysError::new("prctl(PR_SET_NO_NEW_PRIVS)", "self", e))
    }

    fn guard_attaches(&self) -> Result<(), SysError> {
        let program = attach_guard_program();
        let prog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `program`, which outlives the call; the kernel
        // copies the filter. no_new_privs is set, so no privilege is needed.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            return Err(SysError::new(
                "prctl(PR_SET_SECCOMP)",
                "attach guard",
                Errno::last(),
            ));
        }
        Ok(())
    }

    fn limit_bounding_set(&self, keep: u64) -> Result<(), SysError> {
        for cap in caps::all() {
            if keep & cap.bitmask() == 0 {
                caps::drop(None, caps::CapSet::Bounding, cap).map_err(|_| {
                    SysError::new("prctl(PR_CAPBSET_DROP)", cap.to_string(), Errno::last())
                })?;
            }
        }
        Ok(())
    }

    fn set_keep_caps(&self, keep: bool) -> Result<(), SysError> {
        nix::sys::prctl::set_keepcaps(keep)
            .map_err(|e| SysError::new("prctl(PR_SET_KEEPCAPS)", "self", e))
    }

    fn set_ids(&self, ids: &Ids) -> Result<(), SysError> {
        use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
        let groups: Vec<Gid> = ids.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        setgroups(&groups)
            .map_err(|e| SysError::new("setgroups", format!("{:?}", ids.groups), e))?;
        let gid = Gid::from_raw(ids.gid);
        setresgid(gid, gid, gid).map_err(|e| SysError::new("setresgid", ids.gid.to_string(), e))?;
        let uid = Uid::from_raw(ids.uid);
        setresuid(uid, uid, uid).map_err(|e| SysError::new("setresuid", ids.uid.to_string(), e))
    }

    fn set_caps(&self, sets: &CapSets) -> Result<(), SysError> {
        let mask = |bits: u64| -> caps::CapsHashSet {
            caps::all()
                .into_iter()
                .filter(|c| bits & c.bitmask() != 0)
                .collect()
        };
        let fail = |op: &'static str| SysError::new(op, "self", Errno::last());
        // Effective first: it must stay a subset of permitted at every step.
        caps::set(
            None,
            caps::CapSet::Effective,
            &mask(sets.effective & sets.permitted),
        )
        .map_err(|_| fail("capset(effective)"))?;
        caps::set(None, caps::CapSet::Permitted, &mask(sets.permitted))
            .map_err(|_| fail("capset(permitted)"))?;
        caps::clear(None, caps::CapSet::Inheritable).map_err(|_| fail("capset(inheritable)"))?;
        caps::clear(None, caps::CapSet::Ambient)
            .map_err(|_| fail("prctl(PR_CAP_AMBIENT_CLEAR_ALL)"))
    }

    fn install_stdio(&self, fds: [RawFd; 3]) -> Result<(), SysError> {
        for (target, fd) in fds.into_iter().enumerate() {
            let target = target as RawFd;
            if fd == target {
                // Already in place: just make sure it survives exec.
                clear_cloexec(target)?;
                continue;
            }
            // SAFETY: dup2 onto 0..=2 only replaces those descriptors; both numbers are
            // plain integers the kernel validates.
            Errno::result(unsafe { libc::dup2(fd, target) })
                .map_err(|e| SysError::new("dup2", format!("fd {fd} -> {target}"), e))?;
        }
        Ok(())
    }

    fn place_fds(&self, fds: &[(RawFd, bool)]) -> Result<(), SysError> {
        // Copies first, above every target number, so that placing one descriptor
        // never overwrites another still to be placed.
        let first_free = 3 + fds.len() as RawFd;
        let mut copies = Vec::with_capacity(fds.len());
        for (fd, _) in fds {
            let copy = rustix::io::fcntl_dupfd_cloexec(fd_borrow(*fd), first_free)
                .map_err(|e| SysError::new("fcntl(F_DUPFD_CLOEXEC)", format!("fd {fd}"), rx(e)))?;
            copies.push(copy);
        }
        for (i, (copy, (_, keep))) in copies.iter().zip(fds).enumerate() {
            let to = 3 + i as RawFd;
            let flags = if *keep { 0 } else { libc::O_CLOEXEC };
            // SAFETY: dup3 duplicates a descriptor we own onto a number below
            // `first_free`, which holds nothing that is still needed.
            Errno::result(unsafe { libc::dup3(copy.as_raw_fd(), to, flags) }).map_err(|e| {
                SysError::new("dup3", format!("fd {} -> {to}", copy.as_raw_fd()), e)
            })?;
        }
        drop(copies);
        close_range_from(first_free)
    }

    fn exec_program(&self, program: RawFd, argv: &[CString], envp: &[CString]) -> SysError {
        // execveat itself, not libc's fexecve, which falls back to a path under
        // /proc: the container's /proc, by now.
        let ptrs = |items: &[CString]| -> Vec<*const libc::c_char> {
            items
                .iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let (argv, envp) = (ptrs(argv), ptrs(envp));
        // SAFETY: both arrays are NULL-terminated and point into CStrings that the
        // caller keeps alive for the call; the path is an empty C string, used with
        // AT_EMPTY_PATH on a descriptor of ours.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_execveat,
                program,
                c"".as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        // It returns only when it failed, with -1.
        debug_assert_eq!(rc, -1);
        SysError::new("execveat", format!("fd {program}"), Errno::last())
    }
}

fn fd_borrow<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: used only for descriptors this process keeps open for its whole life
    // (0-2, the report and sync pipes), so the borrow cannot dangle.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn clear_cloexec(fd: RawFd) -> Result<(), SysError> {
    rustix::io::fcntl_setfd(fd_borrow(fd), rustix::io::FdFlags::empty())
        .map_err(|e| SysError::new("fcntl(F_SETFD)", format!("fd {fd}"), rx(e)))
}

/// fork(2), for a process that is known to be single-threaded.
pub fn fork_single_threaded() -> Result<Fork, SysError> {
    // SAFETY: callers guarantee the process has exactly one thread (checked by
    // `ensure_single_threaded` before the first fork), so the child inherits no lock
    // held by another thread and may allocate freely.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Fork::Parent(child.as_raw())),
        Ok(nix::unistd::ForkResult::Child) => Ok(Fork::Child),
        Err(e) => Err(SysError::new("fork", "self", e)),
    }
}

/// `struct clone_args` of clone3(2), up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Fork with the child born in the cgroup v2 directory `cgroup` (clone3 with
/// CLONE_INTO_CGROUP), so that it never has to move there (see `cgroup::Join` for
/// what a move costs). Without a directory, or where the kernel or the cgroup
/// refuses (before 5.7, or a cgroup with controllers for its children), this is a
/// plain fork. Returns the fork and whether the child was placed.
pub fn fork_into_cgroup(cgroup: Option<BorrowedFd<'_>>) -> Result<(Fork, bool), SysError> {
    let Some(cgroup) = cgroup else {
        return fork_single_threaded().map(|fork| (fork, false));
    };
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed, alive for the call.
    // Without CLONE_VM and with no stack this is fork(2): the child goes on from here
    // on a copy of this stack and memory. The caller guarantees a single thread (as
    // for `fork_single_threaded`), so no lock is held by a thread the child lacks.
    // What glibc's fork would add is not needed: dlx registers no atfork handler, and
    // the thread ID glibc caches stays the parent's in the child, which only the
    // enterer's code runs: it never reads that ID (and glibc's abort() signals the
    // calling thread by the ID the kernel gives, not the cached one).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(rc) {
        Ok(0) => Ok((Fork::Child, true)),
        Ok(pid) => Ok((Fork::Parent(pid as i32), true)),
        Err(e) => {
            tracing::debug!(error = %e, "clone3(CLONE_INTO_CGROUP) refused; forking and moving instead");
            fork_single_threaded().map(|fork| (fork, false))
        }
    }
}

/// Close every descriptor from `first` up.
pub fn close_range_from(first: RawFd) -> Result<(), SysError> {
    close_range_from_except(first, &[])
}

/// Close every descriptor from `first` up but those in `keep`.
pub fn close_range_from_except(first: RawFd, keep: &[BorrowedFd<'_>]) -> Result<(), SysError> {
    let mut kept: Vec<RawFd> = keep.iter().map(|fd| fd.as_raw_fd()).collect();
    kept.sort_unstable();
    let mut from = first as libc::c_uint;
    for fd in kept.into_iter().filter(|&fd| fd >= first) {
        let fd = fd as libc::c_uint;
        if fd > from {
            close_range(from, fd - 1)?;
        }
        from = fd + 1;
    }
    close_range(from, libc::c_uint::MAX)
}

/// Close the descriptors `first..=last`.
fn close_range(first: libc::c_uint, last: libc::c_uint) -> Result<(), SysError> {
    // SAFETY: close_range only closes descriptors; callers own every descriptor in
    // the range and hold no Rust object that would use one afterwards.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    Errno::result(rc)
        .map(drop)
        .map_err(|e| SysError::new("close_range", format!("{first}..={last}"), e))
}

/// Leave the process the way a process entering a hostile namespace must be: not
/// dumpable (so nothing in the container can ptrace it or open its /proc files), no
/// core dumps, and a private umask for anything dlx writes.
pub fn harden_self() -> Result<(), SysError> {
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| SysError::new("prctl(PR_SET_DUMPABLE)", "self", e))?;
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
        .map_err(|e| SysError::new("setrlimit", "RLIMIT_CORE", e))?;
    nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
    Ok(())
}

/// Become the reaper of orphaned descendants, so the command (a grandchild) is ours
/// to wait for once the intermediate process exits.
pub fn become_subreaper() -> Result<(), SysError> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| SysError::new("prctl(PR_SET_CHILD_SUBREAPER)", "self", e))
}

/// The number of threads of this process.
pub fn thread_count() -> Result<usize, SysError> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .map_err(|e| SysError::new("readdir", "/proc/self/task", io_errno(&e)))
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// `pidfd_open(pid)`.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, SysError> {
    let p = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| SysError::new("pidfd_open", format!("pid {pid}"), Errno::EINVAL))?;
    rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
        .map_err(|e| SysError::new("pidfd_open", format!("pid {pid}"), rx(e)))
}

/// Is the process behind `pidfd` still alive (not exited, not even a zombie)?
pub fn pidfd_alive(pidfd: BorrowedFd<'_>) -> Result<bool, SysError> {
    // SAFETY: signal 0 performs only the existence and permission checks.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<u8>(),
            0,
        )
    };
    match Errno::result(rc) {
        Ok(_) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(SysError::new("pidfd_send_signal", "pinned pid", e)),
    }
}

/// Send `signal` to the process behind `pidfd`.
pub fn pidfd_kill(pidfd: BorrowedFd<'_>, signal: i32) -> Result<(), SysError> {
    // SAFETY: a plain signal number and a NULL siginfo; the kernel validates both.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<u8>(),
            0,
        )
    };
    Errno::result(rc)
        .map(drop)
        .map_err(|e| SysError::new("pidfd_send_signal", format!("signal {signal}"), e))
}

/// Open `/proc/<pid>` of the host procfs as an `O_PATH` directory. Everything dlx
/// reads about the target goes through this descriptor.
pub fn open_proc_dir(pid: i32) -> Result<OwnedFd, SysError> {
    let path = format!("/proc/{pid}");
    rustix::fs::open(
        path.as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        RxMode::empty(),
    )
    .map_err(|e| SysError::new("open", path, rx(e)))
}

/// The host's `/proc` itself (an O_PATH directory descriptor).
pub fn open_host_proc() -> Result<OwnedFd, SysError> {
    rustix::fs::open(
        "/proc",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        RxMode::empty(),
    )
    .map_err(|e| SysError::new("open", "/proc", rx(e)))
}

/// What [`read_limited`] reads at first: the `/proc` files dlx reads fit.
const READ_START: u64 = 8 << 10;

/// Read a small file relative to `dir` (at most `limit` bytes).
pub fn read_at(dir: BorrowedFd<'_>, name: &str, limit: u64) -> Result<Vec<u8>, SysError> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        RxMode::empty(),
    )
    .map_err(|e| SysError::new("open", name.to_string(), rx(e)))?;
    read_limited(fd, limit, name)
}

/// Read at most `limit` bytes of `fd`; `what` names it in errors. The buffer starts
/// at a page or two, not empty: `/proc` files say they are empty (size 0), and
/// `read_to_end` would then read them 32, 32, 64, ... bytes at a time (eight reads
/// of a process's `status` instead of two).
pub fn read_limited(fd: OwnedFd, limit: u64, what: &str) -> Result<Vec<u8>, SysError> {
    let mut buf = Vec::with_capacity(limit.min(READ_START) as usize);
    std::fs::File::from(fd)
        .take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| SysError::new("read", what.to_string(), io_errno(&e)))?;
    Ok(buf)
}

/// The (device, inode) identity of the namespace file `ns/<kind>` under `dir`.
pub fn ns_identity(dir: BorrowedFd<'_>, kind: &str) -> Result<(u64, u64), SysError> {
    let name = format!("ns/{kind}");
    let st = rustix::fs::statat(dir, name.as_str(), rustix::fs::AtFlags::empty())
        .map_err(|e| SysError::new("stat", name.clone(), rx(e)))?;
    Ok((st.st_dev, st.st_ino))
}

/// Open a path for writing (a cgroup file on the host).
pub fn open_write(path: &str) -> Result<OwnedFd, SysError> {
    rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, RxMode::empty())
        .map_err(|e| SysError::new("open", path.to_string(), rx(e)))
}

/// Open a host directory (a v2 cgroup, to fork into).
pub fn open_dir(path: &str) -> Result<OwnedFd, SysError> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        RxMode::empty(),
    )
    .map_err(|e| SysError::new("open", path.to_string(), rx(e)))
}

/// Write `data` to an existing host file in one write (a cgroup control file).
pub fn write_file(path: &str, data: &[u8]) -> Result<(), SysError> {
    let fd = open_write(path)?;
    let n = rustix::io::write(&fd, data)
        .map_err(|e| SysError::new("write", path.to_string(), rx(e)))?;
    if n != data.len() {
        return Err(SysError::new("write", path.to_string(), Errno::EIO));
    }
    Ok(())
}

/// Take an exclusive advisory lock on host directory `path`, held until the returned
/// descriptor is dropped (waits for other holders).
pub fn lock_dir(path: &str) -> Result<OwnedFd, SysError> {
    let fd = open_dir(path)?;
    flock(fd.as_fd(), rustix::fs::FlockOperation::LockExclusive, path)?;
    Ok(fd)
}

/// `flock(2)` on `fd` (the file `what`), again when a signal interrupts the wait. A
/// non-blocking operation on a file someone else holds fails with `EWOULDBLOCK`.
pub fn flock(
    fd: BorrowedFd<'_>,
    operation: rustix::fs::FlockOperation,
    what: &str,
) -> Result<(), SysError> {
    loop {
        match rustix::fs::flock(fd, operation) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(SysError::new("flock", what.to_string(), rx(e))),
        }
    }
}

/// Read a small host file (at most `limit` bytes).
pub fn read_file(path: &str, limit: u64) -> Result<Vec<u8>, SysError> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, RxMode::empty())
        .map_err(|e| SysError::new("open", path.to_string(), rx(e)))?;
    read_limited(fd, limit, path)
}

/// Read a regular file of the container, `path` resolved inside the container's root
/// `root` (so `..` and symlinks cannot leave it, magic links are refused), at most
/// `limit` bytes. `Ok(None)` when it does not exist, or is not a regular file: the
/// container owns the path, and opening a FIFO or a device can act (a FIFO's writer
/// goes on, a watchdog starts, a tape rewinds), so it is first reached without
/// opening (`O_PATH`) and opened only once the kernel says it is a regular file.
pub fn read_in_root(
    root: BorrowedFd<'_>,
    path: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, SysError> {
    let what = || format!("container {path}");
    let reached = match rustix::fs::openat2(
        root,
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        RxMode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(SysError::new("open", what(), rx(e))),
    };
    let st = rustix::fs::fstat(&reached).map_err(|e| SysError::new("stat", what(), rx(e)))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        tracing::warn!(path = %what(), "not a regular file: left unopened, taken as absent");
        return Ok(None);
    }
    let fd = reopen(
        reached.as_fd(),
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
        &what(),
    )?;
    read_limited(fd, limit, &what()).map(Some)
}

/// Open for real (`flags`, close-on-exec) the very inode an `O_PATH` descriptor
/// `reached` holds, once it has been checked, through our own descriptor table: no
/// path is resolved again, so nothing can be swapped in between.
fn reopen(reached: BorrowedFd<'_>, flags: OFlags, what: &str) -> Result<OwnedFd, SysError> {
    let own = format!("/proc/self/fd/{}", reached.as_raw_fd());
    rustix::fs::open(own.as_str(), flags | OFlags::CLOEXEC, RxMode::empty())
        .map_err(|e| SysError::new("open", what.to_string(), rx(e)))
}

/// The mode (`st_mode`) of `path` inside the container root `root`, resolved as
/// [`read_in_root`] resolves it (symlinks followed without leaving the root, magic
/// links refused), without opening it for reading. `Ok(None)` when it does not exist.
pub fn mode_in_root(root: BorrowedFd<'_>, path: &str) -> Result<Option<u32>, SysError> {
    let fd = match rustix::fs::openat2(
        root,
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        RxMode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => {
            return Ok(None)
        }
        Err(e) => return Err(SysError::new("open", format!("container {path}"), rx(e))),
    };
    let st = rustix::fs::fstat(&fd)
        .map_err(|e| SysError::new("stat", format!("container {path}"), rx(e)))?;
    Ok(Some(st.st_mode))
}

/// Open `/proc/<pid>/root` as an `O_PATH` directory, through the pinned proc dir.
pub fn open_root(proc_dir: BorrowedFd<'_>) -> Result<OwnedFd, SysError> {
    rustix::fs::openat(
        proc_dir,
        "root",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        RxMode::empty(),
    )
    .map_err(|e| SysError::new("open", "root", rx(e)))
}

/// Open `path` for appending: created with mode 0600 when missing, never truncated,
/// never through a symlink in its last component.
pub fn open_append(path: &std::path::Path) -> Result<OwnedFd, SysError> {
    rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        RxMode::from_raw_mode(0o600),
    )
    .map_err(|e| SysError::new("open", path.display().to_string(), rx(e)))
}

/// Write `buf` with exactly one write(2). A short write is reported (EIO), never
/// continued: with `O_APPEND` one call is one record, so concurrent appenders never
/// interleave inside a record.
pub fn write_once(fd: BorrowedFd<'_>, buf: &[u8], what: &str) -> Result<(), SysError> {
    match rustix::io::write(fd, buf) {
        Ok(n) if n == buf.len() => Ok(()),
        Ok(_) => Err(SysError::new(
            "write",
            format!("{what} (short write)"),
            Errno::EIO,
        )),
        Err(e) => Err(SysError::new("write", what.to_string(), rx(e))),
    }
}

/// A system call whose presence `dlx doctor` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    PidfdOpen,
    OpenTree,
    MountSetattr,
    Openat2,
    CloseRange,
}

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// The kernel has the call.
    Yes,
    /// ENOSYS: the kernel is too old (or a seccomp filter pretends it is).
    Missing,
    /// EPERM: a seccomp filter refuses it.
    Blocked,
}

impl Probe {
    pub const ALL: [Probe; 5] = [
        Probe::PidfdOpen,
        Probe::OpenTree,
        Probe::MountSetattr,
        Probe::Openat2,
        Probe::CloseRange,
    ];

    /// The call's name, as in its man page.
    pub fn name(self) -> &'static str {
        match self {
            Probe::PidfdOpen => "pidfd_open",
            Probe::OpenTree => "open_tree",
            Probe::MountSetattr => "mount_setattr",
            Probe::Openat2 => "openat2",
            Probe::CloseRange => "close_range",
        }
    }
}

/// Call `probe` with arguments that do nothing, and tell ENOSYS from anything else.
pub fn probe(probe: Probe) -> Support {
    let rc: Result<(), Errno> = match probe {
        Probe::PidfdOpen => pidfd_open(std::process::id() as i32)
            .map(drop)
            .map_err(|e| e.errno),
        Probe::Openat2 => rustix::fs::openat2(
            rustix::fs::CWD,
            "/",
            OFlags::PATH | OFlags::CLOEXEC,
            RxMode::empty(),
            ResolveFlags::empty(),
        )
        .map(drop)
        .map_err(rx),
        Probe::OpenTree => {
            // SAFETY: dfd -1 with an empty path and no flags: the lookup fails
            // (ENOENT) before anything is cloned; the path is a static C string.
            let rc = unsafe { libc::syscall(libc::SYS_open_tree, -1, c"".as_ptr(), 0) };
            Errno::result(rc).map(drop)
        }
        Probe::MountSetattr => {
            // SAFETY: a zero size with a NULL attribute pointer is refused (EINVAL)
            // before the kernel reads anything or looks at the (invalid) descriptor.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_mount_setattr,
                    -1,
                    c"".as_ptr(),
                    0,
                    std::ptr::null::<u8>(),
                    0,
                )
            };
            Errno::result(rc).map(drop)
        }
        Probe::CloseRange => {
            // SAFETY: first > last, so the kernel refuses the range (EINVAL) and
            // closes nothing.
            let rc = unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, 0u32, 0u32) };
            Errno::result(rc).map(drop)
        }
    };
    match rc {
        Err(Errno::ENOSYS) => Support::Missing,
        Err(Errno::EPERM) => Support::Blocked,
        _ => Support::Yes,
    }
}

/// A pipe whose both ends are close-on-exec.
pub fn pipe() -> Result<(OwnedFd, OwnedFd), SysError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SysError::new("pipe2", "", e))
}

/// A connected pair of sequenced-packet Unix sockets, close-on-exec: each message
/// arrives whole and alone, so several processes may send on copies of one end.
pub fn packet_pair() -> Result<(OwnedFd, OwnedFd), SysError> {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| SysError::new("socketpair", "", rx(e)))
}

/// Send `bytes` as one message on `socket`, with a copy of `fd` attached.
pub fn send_with_fd(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fd: BorrowedFd<'_>,
) -> Result<(), SysError> {
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let iov = [std::io::IoSlice::new(bytes)];
    loop {
        match sendmsg(socket, &iov, &mut control, SendFlags::NOSIGNAL) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(SysError::new("sendmsg", "", rx(e))),
            Ok(_) => return Ok(()),
        }
    }
}

/// One message from `socket` into `buf` (its length), and the one descriptor it
/// carried, received close-on-exec; `None` once every sender is gone. A message
/// that did not fit `buf`, or that carried more than one descriptor, is refused
/// (EMSGSIZE); its descriptors are closed.
pub fn recv_with_fd(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<Option<(usize, Option<OwnedFd>)>, SysError> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let got = loop {
        match recvmsg(socket, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(SysError::new("recvmsg", "", rx(e))),
            Ok(got) => break got,
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    let cut = got
        .flags
        .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC);
    if cut || fds.len() > 1 {
        return Err(SysError::new("recvmsg", "", Errno::EMSGSIZE));
    }
    if got.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    Ok(Some((got.bytes, fds.pop())))
}

/// Write all of `buf` to `fd`, retrying on EINTR.
pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read into `buf`, retrying on EINTR; 0 means end of file.
pub fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match nix::unistd::read(fd, buf) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Set or clear `O_NONBLOCK` on `fd`.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> Result<(), SysError> {
    let flags =
        rustix::fs::fcntl_getfl(fd).map_err(|e| SysError::new("fcntl(F_GETFL)", "", rx(e)))?;
    let flags = if on {
        flags | OFlags::NONBLOCK
    } else {
        flags - OFlags::NONBLOCK
    };
    rustix::fs::fcntl_setfl(fd, flags).map_err(|e| SysError::new("fcntl(F_SETFL)", "", rx(e)))
}

/// Signals dlx passes on to the command.
pub const FORWARDED_SIGNALS: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// Block the forwarded signals (plus SIGCHLD and SIGPIPE) and return a signalfd that
/// receives them. Children inherit the mask; `Sys::reset_signals_and_umask` clears it
/// before exec.
pub fn block_signals() -> Result<nix::sys::signalfd::SignalFd, SysError> {
    let mut set = SigSet::empty();
    for s in FORWARDED_SIGNALS {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| SysError::new("sigprocmask", "self", e))?;
    // Writes to a closed pipe must come back as EPIPE, not kill dlx.
    // SAFETY: SIG_IGN installs no handler code.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn) }
        .map_err(|e| SysError::new("signal", "SIGPIPE", e))?;
    nix::sys::signalfd::SignalFd::with_flags(
        &set,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| SysError::new("signalfd", "self", e))
}

/// How a waited-for child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    Exited(i32),
    Signaled(i32),
}

/// Wait for one child to end.
pub fn wait_child(pid: i32) -> Result<ChildEnd, SysError> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(ChildEnd::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(ChildEnd::Signaled(sig as i32)),
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(SysError::new("waitpid", format!("pid {pid}"), e)),
        }
    }
}

/// Is `fd` a terminal?
pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    rustix::termios::isatty(fd)
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Set mount attributes (`MOUNT_ATTR_*` bits) on the mount `tree` refers to, and with
/// `recursive` on every mount below it too.
pub(super) fn mount_setattr(
    tree: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
) -> Result<(), SysError> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `attr` is a valid mount_attr of the size passed, alive for the call;
    // the path is an empty C string used with AT_EMPTY_PATH on a descriptor we own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc)
        .map(drop)
        .map_err(|e| SysError::new("mount_setattr", "detached mount", e))
}

/// A sealed, execute-only memfd holding the program `bytes`, to exec through the
/// descriptor: nobody can write, grow or shrink it, and a process running it as
/// anybody but its owner (host root) cannot read it, so its memory is not dumpable
/// and belongs to the initial user namespace (see `launch`).
pub fn sealed_program(name: &str, bytes: &[u8]) -> Result<OwnedFd, SysError> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let what = || format!("memfd {name}");
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    // MFD_EXEC says so explicitly where the kernel knows it (6.3); older ones refuse
    // the flag and make every memfd executable.
    let memfd = match rustix::fs::memfd_create(name, flags | MemfdFlags::EXEC) {
        Err(rustix::io::Errno::INVAL) => rustix::fs::memfd_create(name, flags),
        other => other,
    }
    .map_err(|e| SysError::new("memfd_create", what(), rx(e)))?;
    write_all(memfd.as_fd(), bytes).map_err(|e| SysError::new("write", what(), e))?;
    rustix::fs::fchmod(&memfd, RxMode::XUSR | RxMode::XGRP | RxMode::XOTH)
        .map_err(|e| SysError::new("fchmod", what(), rx(e)))?;
    rustix::fs::fcntl_add_seals(
        &memfd,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )
    .map_err(|e| SysError::new("fcntl(F_ADD_SEALS)", what(), rx(e)))?;
    Ok(memfd)
}

/// The program `bytes` as the file `dir/name` (written once, mode 0555), reached
/// through a detached read-only clone of it, for hosts that refuse executable
/// memfds (`vm.memfd_noexec=2`): nobody can open it for writing through the clone.
/// What the clone shows is checked against `bytes`, so what runs is what dlx carries.
///
/// The mode is set, not left to the umask (dlx's own is 077): the launcher is
/// executed by the session's user, without capabilities when the container has
/// none, so it must be executable by anybody. A copy with another mode (earlier
/// builds left theirs 0500, under dlx's umask) is written again.
pub fn cached_program(dir: &Path, name: &str, bytes: &[u8]) -> Result<OwnedFd, SysError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    const MODE: u32 = 0o555;
    let path = dir.join(name);
    let fail = |op, e: std::io::Error| SysError::new(op, path.display().to_string(), io_errno(&e));
    let usable = std::fs::symlink_metadata(&path)
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o7777 == MODE)
        && std::fs::read(&path).ok().as_deref() == Some(bytes);
    if !usable {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail("mkdir", e))?;
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        // The owner's only while it is written; executable by anybody once whole.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o500)
            .open(&tmp)
            .map_err(|e| fail("create", e))?;
        file.write_all(bytes).map_err(|e| fail("write", e))?;
        file.set_permissions(std::fs::Permissions::from_mode(MODE))
            .map_err(|e| fail("chmod", e))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|e| fail("rename", e))?;
    }
    let clone = super::view::clone_read_only(&path)?;
    let what = path.display().to_string();
    let seen = read_limited(
        reopen(clone.as_fd(), OFlags::RDONLY, &what)?,
        bytes.len() as u64 + 1,
        &what,
    )?;
    if seen != bytes {
        return Err(SysError::new("verify", what, Errno::EBADMSG));
    }
    Ok(clone)
}

/// End this process at once: no destructors, no atexit handlers, no stdio flush
/// (a forked child must not flush or free what its parent owns).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes a plain integer and never returns.
    unsafe { libc::_exit(code) }
}

/// `ptrace` as each ABI a process of this machine may call it with numbers it:
/// (`AUDIT_ARCH_*`, syscall number).
#[cfg(target_arch = "x86_64")]
const PTRACE_SYSCALLS: &[(u32, u32)] = &[
    (0xC000_003E, libc::SYS_ptrace as u32), // x86_64
    (0xC000_003E, 0x4000_0000 | 521),       // x32
    (0x4000_0003, 26),                      // i386
];
#[cfg(target_arch = "aarch64")]
const PTRACE_SYSCALLS: &[(u32, u32)] = &[
    (0xC000_00B7, libc::SYS_ptrace as u32), // aarch64
    (0x4000_0028, 26),                      // arm
];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const PTRACE_SYSCALLS: &[(u32, u32)] = &[];

/// The ptrace requests that make a tracer: the guard stops these for dlx.
const ATTACH_REQUESTS: [u32; 3] = [
    libc::PTRACE_TRACEME,
    libc::PTRACE_ATTACH,
    0x4206, // PTRACE_SEIZE
];

/// The attach guard, as a classic BPF program over `struct seccomp_data`: for
/// `ptrace(r, ...)` with `r` in [`ATTACH_REQUESTS`] (any ABI in [`PTRACE_SYSCALLS`]),
/// `SECCOMP_RET_TRACE` (the tracer, dlx, is stopped to decide; with no tracer that
/// asked for it the call fails with ENOSYS); everything else is allowed.
pub fn attach_guard_program() -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    // The low 32 bits of args[0] (the request).
    #[cfg(target_endian = "little")]
    const REQUEST: u32 = 16;
    #[cfg(target_endian = "big")]
    const REQUEST: u32 = 20;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut p = Vec::new();
    // One block of four per ABI; a match jumps to the request check after them.
    let check = 4 * PTRACE_SYSCALLS.len() + 1;
    for (arch, nr) in PTRACE_SYSCALLS {
        p.push(op(LD_W_ABS, 0, 0, ARCH));
        p.push(op(JEQ_K, 0, 2, *arch));
        p.push(op(LD_W_ABS, 0, 0, NR));
        let here = p.len();
        p.push(op(JEQ_K, (check - here - 1) as u8, 0, *nr));
    }
    p.push(op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    p.push(op(LD_W_ABS, 0, 0, REQUEST));
    let n = ATTACH_REQUESTS.len();
    for (i, request) in ATTACH_REQUESTS.iter().enumerate() {
        // Jump over the remaining checks and the allow, to the trace.
        p.push(op(JEQ_K, (n - i) as u8, 0, *request));
    }
    p.push(op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    p.push(op(RET_K, 0, 0, libc::SECCOMP_RET_TRACE));
    p
}

/// A ptrace attach request a traced process is stopped at (by the attach guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachRequest {
    /// `PTRACE_ATTACH` or `PTRACE_SEIZE` of `pid`, in the caller's PID namespace.
    Attach { pid: i32 },
    /// `PTRACE_TRACEME`: the caller asks its parent to trace it.
    TraceMe,
}

/// The attach request traced process `pid` is stopped at, if its stop is the attach
/// guard's (`None` for any other seccomp stop).
pub fn attach_request(pid: i32) -> Result<Option<AttachRequest>, SysError> {
    let info = nix::sys::ptrace::syscall_info(nix::unistd::Pid::from_raw(pid))
        .map_err(|e| SysError::new("ptrace(PTRACE_GET_SYSCALL_INFO)", format!("pid {pid}"), e))?;
    if info.op != libc::PTRACE_SYSCALL_INFO_SECCOMP {
        return Ok(None);
    }
    // SAFETY: `op` says the kernel filled in the `seccomp` member of the union.
    let seccomp = unsafe { info.u.seccomp };
    let is_ptrace = PTRACE_SYSCALLS
        .iter()
        .any(|(arch, nr)| *arch == info.arch && u64::from(*nr) == seccomp.nr);
    if !is_ptrace {
        return Ok(None);
    }
    // The request is an `int` (truncated as the kernel truncates it for 32-bit ABIs).
    let request = seccomp.args[0] as u32;
    Ok(match request {
        libc::PTRACE_TRACEME => Some(AttachRequest::TraceMe),
        r if ATTACH_REQUESTS.contains(&r) => Some(AttachRequest::Attach {
            pid: seccomp.args[1] as i32,
        }),
        _ => None,
    })
}

/// An event in a traced child, as the entry guard sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traced {
    /// `pid` forked; the new child's pid is given (it starts traced too).
    Forked { pid: i32, child: i32 },
    /// `pid` completed an execve.
    Execed(i32),
    /// `pid` stopped (signal-delivery or group stop) with this signal; 0 for an
    /// event stop.
    Stopped { pid: i32, signal: i32 },
    /// `pid` stopped at the attach guard (see [`attach_request`]).
    Seccomp(i32),
    /// `pid` stopped at a syscall exit (after [`trace_to_syscall_exit`]).
    Syscall(i32),
    /// `pid` ended.
    Ended { pid: i32, end: ChildEnd },
}

/// What dlx asks of every process it traces: every process and thread it starts is
/// traced from birth too, execs are reported, the attach guard's stops reach dlx,
/// syscall stops are told apart from SIGTRAP, and every traced process dies with dlx.
fn trace_options() -> nix::sys::ptrace::Options {
    use nix::sys::ptrace::Options;
    Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_TRACESECCOMP
        | Options::PTRACE_O_TRACESYSGOOD
        | Options::PTRACE_O_EXITKILL
}

/// Trace `pid` (a child that waits for us) so that the process it forks is traced by
/// us from its first instruction, and killed if dlx dies.
pub fn trace_forks(pid: i32) -> Result<(), SysError> {
    nix::sys::ptrace::seize(nix::unistd::Pid::from_raw(pid), trace_options())
        .map_err(|e| SysError::new("ptrace(PTRACE_SEIZE)", format!("pid {pid}"), e))
}

/// Wait for the next event of any traced child.
pub fn wait_traced() -> Result<Traced, SysError> {
    wait_traced_of(None)
}

/// Wait for the next event of traced process `pid` (others stay queued).
pub fn wait_traced_pid(pid: i32) -> Result<Traced, SysError> {
    wait_traced_of(Some(pid))
}

fn wait_traced_of(pid: Option<i32>) -> Result<Traced, SysError> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let which = pid.map(nix::unistd::Pid::from_raw);
    loop {
        let status = match waitpid(which, Some(WaitPidFlag::__WALL)) {
            Ok(s) => s,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(SysError::new("waitpid", "traced children", e)),
        };
        return Ok(match status {
            WaitStatus::Exited(p, code) => Traced::Ended {
                pid: p.as_raw(),
                end: ChildEnd::Exited(code),
            },
            WaitStatus::Signaled(p, sig, _) => Traced::Ended {
                pid: p.as_raw(),
                end: ChildEnd::Signaled(sig as i32),
            },
            WaitStatus::PtraceEvent(p, _, event) if event == libc::PTRACE_EVENT_FORK => {
                let child = nix::sys::ptrace::getevent(p).map_err(|e| {
                    SysError::new("ptrace(PTRACE_GETEVENTMSG)", format!("pid {p}"), e)
                })?;
                Traced::Forked {
                    pid: p.as_raw(),
                    child: child as i32,
                }
            }
            WaitStatus::PtraceEvent(p, _, event) if event == libc::PTRACE_EVENT_EXEC => {
                Traced::Execed(p.as_raw())
            }
            WaitStatus::PtraceEvent(p, _, event) if event == libc::PTRACE_EVENT_SECCOMP => {
                Traced::Seccomp(p.as_raw())
            }
            WaitStatus::PtraceEvent(p, _, _) => Traced::Stopped {
                pid: p.as_raw(),
                signal: 0,
            },
            WaitStatus::PtraceSyscall(p) => Traced::Syscall(p.as_raw()),
            WaitStatus::Stopped(p, sig) => Traced::Stopped {
                pid: p.as_raw(),
                signal: sig as i32,
            },
            _ => continue,
        });
    }
}

/// Let a stopped traced child go on, delivering `signal` (0 for none).
pub fn trace_continue(pid: i32, signal: i32) -> Result<(), SysError> {
    let sig = Signal::try_from(signal).ok();
    nix::sys::ptrace::cont(nix::unistd::Pid::from_raw(pid), sig)
        .map_err(|e| SysError::new("ptrace(PTRACE_CONT)", format!("pid {pid}"), e))
}

/// Let a stopped traced child go on to the end of the system call it is in, where it
/// stops again ([`Traced::Syscall`]).
pub fn trace_to_syscall_exit(pid: i32) -> Result<(), SysError> {
    nix::sys::ptrace::syscall(nix::unistd::Pid::from_raw(pid), None)
        .map_err(|e| SysError::new("ptrace(PTRACE_SYSCALL)", format!("pid {pid}"), e))
}

/// Stop traced process `pid` wherever it is (it reports a [`Traced::Stopped`]).
pub fn trace_interrupt(pid: i32) -> Result<(), SysError> {
    nix::sys::ptrace::interrupt(nix::unistd::Pid::from_raw(pid))
        .map_err(|e| SysError::new("ptrace(PTRACE_INTERRUPT)", format!("pid {pid}"), e))
}

/// Stop tracing stopped process `pid`, delivering `signal` (0 for none). A process
/// in a group stop stays stopped.
pub fn trace_detach(pid: i32, signal: i32) -> Result<(), SysError> {
    let sig = Signal::try_from(signal).ok();
    nix::sys::ptrace::detach(nix::unistd::Pid::from_raw(pid), sig)
        .map_err(|e| SysError::new("ptrace(PTRACE_DETACH)", format!("pid {pid}"), e))
}

/// A new pseudo-terminal pair (master, slave), both close-on-exec, the slave sized
/// like `size_from` when that is a terminal. With `root` (a container's root) it
/// comes from the devpts instance at `dev/pts` there, as under `docker exec -t`, so
/// the command's terminal has a name in the container (`tty`, `ps`, ttyname(3));
/// else from the host's.
pub fn open_pty(
    root: Option<BorrowedFd<'_>>,
    size_from: Option<BorrowedFd<'_>>,
) -> Result<(OwnedFd, OwnedFd), SysError> {
    use rustix::pty::OpenptFlags;
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = match root {
        Some(root) => open_container_ptmx(root)?,
        None => rustix::pty::openpt(flags)
            .map_err(|e| SysError::new("posix_openpt", "/dev/ptmx", rx(e)))?,
    };
    rustix::pty::unlockpt(&master).map_err(|e| SysError::new("unlockpt", "pty", rx(e)))?;
    // The slave through the master, not by its name: nothing can swap it meanwhile.
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, flags)
        .map_err(|e| SysError::new("ioctl(TIOCGPTPEER)", "pty", rx(e)))?;
    if let Some(size) = size_from.and_then(|fd| rustix::termios::tcgetwinsize(fd).ok()) {
        rustix::termios::tcsetwinsize(&master, size)
            .map_err(|e| SysError::new("ioctl(TIOCSWINSZ)", "pty", rx(e)))?;
    }
    Ok((master, slave))
}

/// Open the `ptmx` of the container's devpts instance for reading and writing. The
/// container owns that path, and opening a device can act (a watchdog, a tape), so
/// it is first reached without opening (`O_PATH`, no symlink followed, never out of
/// the root) and opened only once the kernel says it is a devpts's own `ptmx`.
fn open_container_ptmx(root: BorrowedFd<'_>) -> Result<OwnedFd, SysError> {
    const PTMX: &str = "container /dev/pts/ptmx";
    // include/uapi/linux/magic.h; `ptmx` is character device 5:2.
    const DEVPTS_SUPER_MAGIC: rustix::fs::FsWord = 0x1cd1;
    let path = rustix::fs::openat2(
        root,
        "dev/pts/ptmx",
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        RxMode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| SysError::new("open", PTMX, rx(e)))?;
    let fs = rustix::fs::fstatfs(&path).map_err(|e| SysError::new("fstatfs", PTMX, rx(e)))?;
    let st = rustix::fs::fstat(&path).map_err(|e| SysError::new("fstat", PTMX, rx(e)))?;
    let is_ptmx = fs.f_type == DEVPTS_SUPER_MAGIC
        && rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice
        && (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev)) == (5, 2);
    if !is_ptmx {
        return Err(SysError::new("check", PTMX, Errno::ENOTTY));
    }
    reopen(path.as_fd(), OFlags::RDWR | OFlags::NOCTTY, PTMX)
}

/// Copy the window size of terminal `from` to the pty master `to`.
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), SysError> {
    let size = rustix::termios::tcgetwinsize(from)
        .map_err(|e| SysError::new("ioctl(TIOCGWINSZ)", "terminal", rx(e)))?;
    rustix::termios::tcsetwinsize(to, size)
        .map_err(|e| SysError::new("ioctl(TIOCSWINSZ)", "pty", rx(e)))
}

/// A terminal put in raw mode; dropping it restores the saved settings.
pub struct RawMode {
    fd: OwnedFd,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    /// Put the terminal `fd` in raw mode.
    pub fn enter(fd: BorrowedFd<'_>) -> Result<RawMode, SysError> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let fd = fd
            .try_clone_to_owned()
            .map_err(|e| SysError::new("dup", "terminal", io_errno(&e)))?;
        let saved = tcgetattr(&fd).map_err(|e| SysError::new("tcgetattr", "terminal", e))?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&fd, SetArg::TCSADRAIN, &raw)
            .map_err(|e| SysError::new("tcsetattr", "terminal", e))?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            &self.fd,
            nix::sys::termios::SetArg::TCSADRAIN,
            &self.saved,
        );
    }
}

/// Keep tracing `pid` (stopped at its exec event) for the rest of its life and let
/// it run. Holding the trace is what keeps anybody else from attaching: a process has
/// one tracer. Every process and thread it starts is traced from birth too, each of
/// their execs is reported, and each stops at the attach guard for dlx to decide
/// (`crate::handover`). Every traced process dies with dlx.
pub fn trace_hold(pid: i32) -> Result<(), SysError> {
    nix::sys::ptrace::setoptions(nix::unistd::Pid::from_raw(pid), trace_options())
        .map_err(|e| SysError::new("ptrace(PTRACE_SETOPTIONS)", format!("pid {pid}"), e))?;
    trace_continue(pid, 0)
}

/// The program a process runs, as a path in its own root (`/proc/<pid>/exe`).
pub fn exe_path(pid: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Handle every pending stop of the session's traced processes without blocking, the
/// way untraced processes would have behaved: signals are delivered, a group stop
/// (SIGSTOP, ^Z) stays stopped until SIGCONT, new processes and threads run on. A stop
/// at the attach guard goes to `on_attach`, which must let the process go on, and
/// returns the ends it consumed on the way. Returns how `command` ended, once it has.
pub fn service_traced(
    command: i32,
    on_attach: &mut dyn FnMut(i32) -> Vec<(i32, ChildEnd)>,
) -> Result<Option<ChildEnd>, SysError> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let mut ended = None;
    loop {
        let status = match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(s) => s,
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Ok(ended),
            Err(e) => return Err(SysError::new("waitpid", "session processes", e)),
        };
        match status {
            WaitStatus::StillAlive => return Ok(ended),
            WaitStatus::Exited(p, code) if p.as_raw() == command => {
                ended = Some(ChildEnd::Exited(code))
            }
            WaitStatus::Signaled(p, sig, _) if p.as_raw() == command => {
                ended = Some(ChildEnd::Signaled(sig as i32))
            }
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => {}
            // Signal-delivery stop: deliver the signal.
            WaitStatus::Stopped(p, sig) => {
                let _ = nix::sys::ptrace::cont(p, sig);
            }
            WaitStatus::PtraceEvent(p, sig, event) if event == libc::PTRACE_EVENT_STOP => {
                let group_stop = matches!(
                    sig,
                    Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU
                );
                // SAFETY: PTRACE_LISTEN on our own stopped tracee takes no pointers.
                let listened = group_stop
                    && unsafe { libc::ptrace(libc::PTRACE_LISTEN, p.as_raw(), 0usize, 0usize) }
                        == 0;
                // Otherwise the first stop of a new process or thread: let it run.
                if !listened {
                    let _ = nix::sys::ptrace::cont(p, None);
                }
            }
            WaitStatus::PtraceEvent(p, _, event) if event == libc::PTRACE_EVENT_SECCOMP => {
                for (pid, end) in on_attach(p.as_raw()) {
                    if pid == command {
                        ended = Some(end);
                    }
                }
            }
            // Fork, vfork, clone: the new one is traced already; the parent goes on.
            WaitStatus::PtraceEvent(p, _, _) | WaitStatus::PtraceSyscall(p) => {
                let _ = nix::sys::ptrace::cont(p, None);
            }
            WaitStatus::Continued(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message and its descriptor arrive together and whole; a message too long
    /// for the buffer is refused rather than cut; every sender gone reads as the end.
    #[test]
    fn packet_pair_carries_one_descriptor_per_whole_message() {
        let (a, b) = packet_pair().unwrap();
        let (pipe_r, pipe_w) = pipe().unwrap();
        send_with_fd(a.as_fd(), b"abc", pipe_w.as_fd()).unwrap();
        send_with_fd(a.as_fd(), &[7u8; 64], pipe_w.as_fd()).unwrap();
        drop(pipe_w);
        let mut buf = [0u8; 16];
        let (len, fd) = recv_with_fd(b.as_fd(), &mut buf).unwrap().unwrap();
        assert_eq!(&buf[..len], b"abc");
        // The received copy is the pipe's write end: what goes in comes out.
        let fd = fd.unwrap();
        write_all(fd.as_fd(), b"x").unwrap();
        let mut got = [0u8; 1];
        assert_eq!(read_some(pipe_r.as_fd(), &mut got), Ok(1));
        assert_eq!(&got, b"x");
        let close_on_exec = rustix::io::fcntl_getfd(&fd).unwrap();
        assert!(close_on_exec.contains(rustix::io::FdFlags::CLOEXEC));
        // 64 bytes into 16: refused, and its descriptor closed.
        let err = recv_with_fd(b.as_fd(), &mut buf).unwrap_err();
        assert_eq!(err.errno, Errno::EMSGSIZE);
        drop((a, fd));
        assert!(recv_with_fd(b.as_fd(), &mut buf).unwrap().is_none());
        // Every write end is closed now (ours and the refused message's copy).
        assert_eq!(read_some(pipe_r.as_fd(), &mut got), Ok(0));
    }

    /// Descriptors below the first and those kept stay open; every other one closes.
    #[test]
    fn close_range_from_except_keeps_what_it_is_told_to() {
        let mut fds: Vec<OwnedFd> = (0..4)
            .map(|_| std::fs::File::open("/dev/null").unwrap().into())
            .collect();
        fds.sort_by_key(|fd| fd.as_raw_fd());
        let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        let is_open = |fd: RawFd| {
            // SAFETY: F_GETFD only reads the descriptor's flags.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            flags != -1
        };
        // In a child: closing descriptors of this (multithreaded) test process would
        // pull them from under other tests.
        let keep = [fds[2].as_fd()];
        // SAFETY: the child makes only system calls (close_range, fcntl; the one
        // allocation, of the kept descriptors, is small) and leaves by _exit.
        let forked = unsafe { nix::unistd::fork() };
        match forked.unwrap() {
            nix::unistd::ForkResult::Child => {
                let closed = close_range_from_except(raw[1], &keep);
                let code = u8::from(closed.is_ok())
                    | u8::from(is_open(raw[0])) << 1
                    | u8::from(!is_open(raw[1])) << 2
                    | u8::from(is_open(raw[2])) << 3
                    | u8::from(!is_open(raw[3])) << 4;
                // SAFETY: _exit ends the child at once, running nothing of the parent's.
                unsafe { libc::_exit(code.into()) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0b11111));
            }
        }
        // The parent's own descriptors are untouched.
        assert!(raw.iter().all(|&fd| is_open(fd)));
        fds.clear();
    }

    /// Run a classic BPF program of loads, equality jumps and returns over a
    /// `seccomp_data` of (nr, arch, args[0]).
    fn run(program: &[libc::sock_filter], nr: u32, arch: u32, request: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        data[16..24].copy_from_slice(&request.to_ne_bytes());
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let op = program[pc];
            match op.code as u32 {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let k = op.k as usize;
                    a = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
                    pc += 1;
                }
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += 1 + if a == op.k { op.jt } else { op.jf } as usize;
                }
                c if c == libc::BPF_RET | libc::BPF_K => return op.k,
                other => panic!("unexpected op {other:#x}"),
            }
        }
    }

    #[test]
    fn the_attach_guard_traces_attach_requests_of_every_abi_and_nothing_else() {
        let p = attach_guard_program();
        let (trace, allow) = (libc::SECCOMP_RET_TRACE, libc::SECCOMP_RET_ALLOW);
        for (arch, nr) in PTRACE_SYSCALLS {
            for request in [0u64, 16, 0x4206] {
                assert_eq!(
                    run(&p, *nr, *arch, request),
                    trace,
                    "{arch:#x} {nr} {request}"
                );
            }
            // PTRACE_PEEKDATA, PTRACE_CONT, PTRACE_INTERRUPT, PTRACE_DETACH: a tracer's
            // work goes on untouched.
            for request in [2u64, 7, 0x4207, 17] {
                assert_eq!(
                    run(&p, *nr, *arch, request),
                    allow,
                    "{arch:#x} {nr} {request}"
                );
            }
        }
        // Another syscall with the same first argument, or ptrace's number under
        // another ABI, is allowed.
        let (arch, nr) = PTRACE_SYSCALLS[0];
        assert_eq!(run(&p, nr + 1, arch, 16), allow);
        assert_eq!(run(&p, nr, 0x1234, 16), allow);
    }
}
