//! The session's private view of the container's filesystem.
//!
//! A session that brings tools needs a place for them at `/.dlx`, but creating
//! anything in the container (a directory, even on its `/dev` tmpfs) is a trace, and a
//! `--read-only` root has no room anyway. So the enterer builds a *shadow root* in a
//! private copy of the container's mount namespace: a fresh tmpfs holding each
//! top-level entry of the container's `/` (the copy's own mounts such as `/proc`,
//! `/dev` and volumes moved there, plain directories as bind clones with every mount
//! below them), the same symlinks, and the toolbox at `/.dlx`; then it pivots into
//! it. The container's processes never see any of it: nothing is created on their
//! filesystems and propagation is cut before the first mount. This module holds no
//! `unsafe`; it only strings together the safe mount-API wrappers of `rustix` in the
//! one order that works.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{FileType, Mode, OFlags, CWD};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountPropagationFlags, MoveMountFlags,
    OpenTreeFlags, UnmountFlags,
};

use super::linux::{mount_setattr, rx};
use super::SysError;

/// Where the toolbox appears in the session, as a name in the shadow root.
pub const TOOLBOX_NAME: &str = ".dlx";

/// What the private view holds besides the container's own tree.
pub struct ViewSpec<'a> {
    /// A detached, read-only clone of the toolbox tree, attached at `/.dlx`.
    pub toolbox: Option<BorrowedFd<'a>>,
    /// Make every clone of the container's tree read-only (forensic sessions).
    pub read_only: bool,
}

/// One top-level entry of the container's `/`, captured before anything moves.
enum Entry {
    /// A directory or file, with what is mounted there: the mount itself when the
    /// entry is one, else a detached clone.
    Tree {
        name: String,
        dir: bool,
        mode: u32,
        tree: OwnedFd,
        /// `tree` is the mount itself, not a clone.
        attached: bool,
    },
    Symlink {
        name: String,
        target: std::ffi::OsString,
    },
}

fn err(op: &'static str, what: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> SysError {
    let what = what.into();
    move |e| SysError::new(op, what, rx(e))
}

/// `name` in `dir` (`""`: `dir` itself), links not followed: its type and mode, and
/// the ID of the mount it is on where the kernel says (5.8 and later).
fn mount_stat(dir: BorrowedFd<'_>, name: &str) -> Result<(u32, Option<u64>), SysError> {
    use rustix::fs::{AtFlags, StatxFlags};
    let st = rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::EMPTY_PATH,
        StatxFlags::TYPE | StatxFlags::MODE | StatxFlags::MNT_ID,
    )
    .map_err(err("statx", format!("/{name}")))?;
    let mount = StatxFlags::from_bits_retain(st.stx_mask)
        .contains(StatxFlags::MNT_ID)
        .then_some(st.stx_mnt_id);
    Ok((u32::from(st.stx_mode), mount))
}

/// Enter a private copy of the current (the container's) mount namespace whose root
/// is a shadow of the container's root plus the toolbox. Call with the container's
/// mount namespace joined and before joining its user namespace: the copy is then
/// owned by the initial user namespace, so nobody in the container can change it.
pub fn enter_private_view(spec: &ViewSpec<'_>) -> Result<(), SysError> {
    // 1. Our own copy of the mount table. A copy made by root keeps shared peer
    //    groups (only a less privileged copy is demoted), so before anything else cut
    //    propagation everywhere: a volume mounted rshared would otherwise carry our
    //    mounts back into the container and the host.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| SysError::new("unshare(CLONE_NEWNS)", "private view", e))?;
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(err("mount(MS_REC|MS_PRIVATE)", "/"))?;

    // 2. Capture the container's root: each top-level entry as the mount at it or a
    //    detached clone of everything mounted at or below it, symlinks as their
    //    targets. Nothing moves yet.
    let root = rustix::fs::open(
        "/",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(err("open", "/"))?;
    let (root_mode, root_mount) = mount_stat(root.as_fd(), "")?;
    let root_mode = root_mode & 0o7777;
    let mut entries = Vec::new();
    // A duplicate of `root` to list it, not a reopen (what `Dir::read_from` does): on
    // a FUSE root (Docker's fuse-overlayfs driver) each open of a directory is a
    // round trip to its daemon.
    let listing = rustix::io::fcntl_dupfd_cloexec(&root, 0).map_err(err("dup", "/"))?;
    let mut dir = rustix::fs::Dir::new(listing).map_err(err("opendir", "/"))?;
    while let Some(item) = dir.read() {
        let item = item.map_err(err("readdir", "/"))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." || name == TOOLBOX_NAME {
            continue;
        }
        let (raw_mode, mount) = mount_stat(root.as_fd(), &name)?;
        let kind = FileType::from_raw_mode(raw_mode);
        let mode = raw_mode & 0o7777;
        match kind {
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&root, name.as_str(), Vec::new())
                    .map_err(err("readlink", format!("/{name}")))?;
                entries.push(Entry::Symlink {
                    name,
                    target: std::os::unix::ffi::OsStringExt::from_vec(target.into_bytes()),
                });
            }
            FileType::Directory | FileType::RegularFile => {
                // A mount of its own (`/proc`, `/dev`, `/sys`, a volume) is in our copy
                // of the namespace already: it is taken as it is, with every mount
                // below it, to be moved. Anything else is a plain part of the root,
                // cloned as a bind mount (with whatever is mounted below it,
                // `/etc/hosts` say). Moving spares the kernel copying those mounts a
                // second time, and unmounting the first copies with the old root.
                let own_mount = matches!((mount, root_mount), (Some(m), Some(r)) if m != r);
                let flags = match own_mount {
                    true => OpenTreeFlags::empty(),
                    false => OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::AT_RECURSIVE,
                };
                let tree = rustix::mount::open_tree(
                    &root,
                    name.as_str(),
                    flags | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(err("open_tree", format!("/{name}")))?;
                if spec.read_only {
                    mount_setattr(
                        tree.as_fd(),
                        true,
                        MountAttrFlags::MOUNT_ATTR_RDONLY.bits().into(),
                    )?;
                }
                entries.push(Entry::Tree {
                    name,
                    dir: kind == FileType::Directory,
                    mode,
                    tree,
                    attached: own_mount,
                });
            }
            // Sockets, fifos and device nodes do not belong at the top of a root.
            _ => tracing::debug!(name, "top-level entry of unusual type left out of the view"),
        }
    }
    drop(dir);

    // 3. The shadow root: a small tmpfs, attached over `/` in our namespace only (a
    //    mount point must be in the caller's namespace for anything to be moved onto
    //    it), then filled through its descriptor.
    let fs = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(err("fsopen", "tmpfs"))?;
    rustix::mount::fsconfig_set_string(&fs, "mode", format!("{root_mode:o}"))
        .map_err(err("fsconfig", "tmpfs mode"))?;
    rustix::mount::fsconfig_set_string(&fs, "size", "1m").map_err(err("fsconfig", "tmpfs size"))?;
    rustix::mount::fsconfig_create(&fs).map_err(err("fsconfig(FSCONFIG_CMD_CREATE)", "tmpfs"))?;
    let shadow = rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .map_err(err("fsmount", "tmpfs"))?;
    drop(fs);
    rustix::mount::move_mount(
        &shadow,
        "",
        CWD,
        "/",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(err("move_mount", "shadow root"))?;

    // 4. Recreate each entry and move its mount or clone onto it.
    for entry in entries {
        match entry {
            Entry::Symlink { name, target } => {
                rustix::fs::symlinkat(target.as_os_str(), &shadow, name.as_str())
                    .map_err(err("symlink", format!("/{name}")))?;
            }
            Entry::Tree {
                name,
                dir,
                mode,
                tree,
                attached,
            } => {
                if dir {
                    rustix::fs::mkdirat(&shadow, name.as_str(), Mode::from_raw_mode(mode))
                        .map_err(err("mkdir", format!("/{name}")))?;
                } else {
                    rustix::fs::openat(
                        &shadow,
                        name.as_str(),
                        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
                        Mode::from_raw_mode(mode),
                    )
                    .map_err(err("create", format!("/{name}")))?;
                }
                let place = |tree: &OwnedFd| {
                    rustix::mount::move_mount(
                        tree,
                        "",
                        &shadow,
                        name.as_str(),
                        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
                    )
                };
                match place(&tree) {
                    // The container's mount namespace belongs to its own user
                    // namespace (userns-remapped, rootless, Podman's --userns):
                    // our copy then locks every mount to its parent, and a locked
                    // mount cannot move. A clone of it (with all below it, read-only
                    // as it is) can.
                    Err(rustix::io::Errno::INVAL) if attached => {
                        let clone = rustix::mount::open_tree(
                            &tree,
                            "",
                            OpenTreeFlags::OPEN_TREE_CLONE
                                | OpenTreeFlags::AT_RECURSIVE
                                | OpenTreeFlags::AT_EMPTY_PATH
                                | OpenTreeFlags::OPEN_TREE_CLOEXEC,
                        )
                        .map_err(err("open_tree", format!("/{name}")))?;
                        place(&clone)
                    }
                    other => other,
                }
                .map_err(err("move_mount", format!("/{name}")))?;
            }
        }
    }

    // 5. The toolbox, already read-only, nosuid and nodev (set on the host, where it
    //    was cloned), at `/.dlx`.
    if let Some(toolbox) = spec.toolbox {
        rustix::fs::mkdirat(&shadow, TOOLBOX_NAME, Mode::from_raw_mode(0o755))
            .map_err(err("mkdir", "/.dlx"))?;
        rustix::mount::move_mount(
            toolbox,
            "",
            &shadow,
            TOOLBOX_NAME,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(err("move_mount", "toolbox at /.dlx"))?;
    }

    // 6. Nothing new may appear at the top level (it would live only in this view and
    //    vanish with it): the shadow itself is read-only. Then make it our root and
    //    drop the old one; `pivot_root(".", ".")` stacks the old root on the new one,
    //    where a lazy unmount removes it.
    mount_setattr(
        shadow.as_fd(),
        false,
        MountAttrFlags::MOUNT_ATTR_RDONLY.bits().into(),
    )?;
    rustix::process::fchdir(&shadow).map_err(err("fchdir", "shadow root"))?;
    rustix::process::pivot_root(".", ".").map_err(err("pivot_root", "shadow root"))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH)
        .map_err(err("umount2(MNT_DETACH)", "old root"))?;
    rustix::process::chdir("/").map_err(err("chdir", "/"))?;
    Ok(())
}

/// Clone the host directory `dir` as a detached, read-only, nosuid, nodev tree, ready
/// to be attached in a container's private view. The clone is a mount of its own: a
/// file reached through it cannot be opened for writing by anybody, whatever its
/// permissions, and remounting it writable needs a mount namespace the container
/// cannot enter.
pub fn clone_read_only(dir: &std::path::Path) -> Result<OwnedFd, SysError> {
    let what = dir.display().to_string();
    let tree = rustix::mount::open_tree(
        CWD,
        dir,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| SysError::new("open_tree", what.clone(), rx(e)))?;
    let attrs = MountAttrFlags::MOUNT_ATTR_RDONLY
        | MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NODEV;
    mount_setattr(tree.as_fd(), true, attrs.bits().into())?;
    Ok(tree)
}
