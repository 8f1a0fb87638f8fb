//! `--toolbox DIR`: a directory of the operator's own (static) tools.
//!
//! Layout: when DIR has a `bin/` directory, DIR is mounted at `/.dlx` and the tools
//! are `/.dlx/bin/*` (the same shape as the default toolbox, so a copy of it works);
//! otherwise DIR itself is the tool directory, mounted at `/.dlx`, and the tools are
//! `/.dlx/*`.
//!
//! Its programs will run inside containers, often as root, so the directory is refused
//! when anyone but root (or the user dlx runs as) could change what it holds: DIR and
//! everything under it must be owned by root or that user and not group- or
//! other-writable, and so must DIR's ancestors unless they are sticky (`/tmp`).
//! Symbolic links are not followed and their own modes do not matter.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Source, Toolbox, ToolboxError, BIN, MOUNT_POINT};

/// Entries walked at most, so a mistaken `--toolbox /` fails fast.
const WALK_LIMIT: usize = 100_000;

/// Check `dir` and describe it as a toolbox; `euid` is the user dlx runs as.
pub fn check(dir: &Path, euid: u32) -> Result<Toolbox, ToolboxError> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| ToolboxError::Io { op, path, source }
    };
    let root = match fs::canonicalize(dir) {
        Ok(root) => root,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ToolboxError::DirMissing {
                path: dir.to_path_buf(),
            })
        }
        Err(e) => return Err(io("resolve", dir)(e)),
    };
    let meta = fs::metadata(&root).map_err(io("inspect", &root))?;
    if !meta.is_dir() {
        return Err(ToolboxError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    for ancestor in root.ancestors().skip(1) {
        let meta = fs::metadata(ancestor).map_err(io("inspect", ancestor))?;
        let sticky = meta.mode() & 0o1000 != 0;
        if !sticky {
            trusted(ancestor, &meta, euid)?;
        }
    }
    let mut pending: Vec<PathBuf> = vec![root.clone()];
    let mut seen = 0usize;
    while let Some(path) = pending.pop() {
        seen += 1;
        if seen > WALK_LIMIT {
            return Err(ToolboxError::DirTooLarge {
                path: root,
                limit: WALK_LIMIT,
            });
        }
        let meta = fs::symlink_metadata(&path).map_err(io("inspect", &path))?;
        if meta.file_type().is_symlink() {
            continue;
        }
        trusted(&path, &meta, euid)?;
        if meta.is_dir() {
            for entry in fs::read_dir(&path).map_err(io("read", &path))? {
                pending.push(entry.map_err(io("read", &path))?.path());
            }
        }
    }
    let bin = if root.join("bin").is_dir() {
        BIN
    } else {
        MOUNT_POINT
    };
    Ok(Toolbox {
        root,
        bin,
        source: Source::Dir,
        hold: None,
    })
}

fn trusted(path: &Path, meta: &fs::Metadata, euid: u32) -> Result<(), ToolboxError> {
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 || (meta.uid() != 0 && meta.uid() != euid) {
        return Err(ToolboxError::Writable {
            path: path.to_path_buf(),
            uid: meta.uid(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn euid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    /// A private parent (0755) so the test does not depend on where temp dirs live.
    fn scratch() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        chmod(t.path(), 0o755);
        t
    }

    #[test]
    fn a_bin_directory_is_used_else_the_directory_itself() {
        let t = scratch();
        let flat = t.path().join("flat");
        fs::create_dir(&flat).unwrap();
        chmod(&flat, 0o755);
        fs::write(flat.join("tool"), b"x").unwrap();
        chmod(&flat.join("tool"), 0o755);
        let tb = check(&flat, euid()).unwrap();
        assert_eq!(
            (tb.root.as_path(), tb.bin),
            (fs::canonicalize(&flat).unwrap().as_path(), "/.dlx")
        );
        fs::create_dir(flat.join("bin")).unwrap();
        chmod(&flat.join("bin"), 0o755);
        assert_eq!(check(&flat, euid()).unwrap().bin, "/.dlx/bin");
        assert_eq!(check(&flat, euid()).unwrap().source, Source::Dir);
    }

    #[test]
    fn missing_files_and_writable_trees_are_refused_with_a_hint() {
        let t = scratch();
        let dir = t.path().join("tools");
        fs::create_dir_all(dir.join("bin")).unwrap();
        chmod(&dir, 0o755);
        chmod(&dir.join("bin"), 0o755);
        let tool = dir.join("bin/tool");
        fs::write(&tool, b"x").unwrap();
        chmod(&tool, 0o755);
        assert!(check(&dir, euid()).is_ok());

        let e = check(&t.path().join("nope"), euid()).unwrap_err();
        assert!(matches!(e, ToolboxError::DirMissing { .. }), "{e}");
        let e = check(&tool, euid()).unwrap_err();
        assert!(matches!(e, ToolboxError::NotADirectory { .. }), "{e}");

        for (path, mode) in [
            (&tool, 0o757),
            (&tool, 0o775),
            (&dir.join("bin"), 0o777),
            (&dir, 0o775),
        ] {
            chmod(path, mode);
            let e = check(&dir, euid()).unwrap_err().to_string();
            assert!(
                e.contains(&path.display().to_string()) && e.contains("hint:"),
                "{e}"
            );
            chmod(path, 0o755);
        }
        // an ancestor others may write (not sticky) lets them swap the directory
        chmod(t.path(), 0o777);
        assert!(check(&dir, euid()).is_err());
        chmod(t.path(), 0o1777);
        assert!(check(&dir, euid()).is_ok());
        chmod(t.path(), 0o755);
        // owned by someone else
        if euid() == 0 {
            std::os::unix::fs::lchown(&tool, Some(1000), None).unwrap();
            let e = check(&dir, euid()).unwrap_err().to_string();
            assert!(e.contains("1000"), "{e}");
        }
        // a symlink's own mode does not matter
        std::os::unix::fs::lchown(&tool, Some(euid()), None).unwrap();
        std::os::unix::fs::symlink("tool", dir.join("bin/alias")).unwrap();
        assert!(check(&dir, euid()).is_ok());
    }
}
