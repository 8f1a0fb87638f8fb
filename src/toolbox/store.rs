//! The toolbox cache, beside the package cache: `<cache>/toolbox/<digest>/` holds one
//! assembled tree, named by the digest of everything it was made from, and
//! `<cache>/toolbox/current-<arch>` names the tree to use (one line, the digest).
//!
//! A tree is written under a temporary name in the same directory and renamed into
//! place, so readers see a whole tree or none; two processes assembling the same
//! digest race harmlessly (the loser keeps the winner's tree). Reading the pointer and
//! checking its tree is a handful of system calls and no network: that is the path
//! `dlx exec` takes on every session.
//!
//! A session holds a shared `flock` on its tree's description while it may mount the
//! tree ([`Store::hold`]). Moving a pointer leaves the previous tree behind (some 30
//! MiB each security update or dlx version), so [`Store::collect`] removes every tree
//! no pointer names, once it gets an exclusive lock on it: a tree in use stays.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::layout::{Layout, Linkage, Node};
use super::ToolboxError;
use crate::apt::cache::{sweep_stale_temps, temp_name};

/// Bump when the same packages and manifest would give a different tree: trees of
/// other versions are not used (not even when the archive cannot be reached), and a
/// new tree is assembled beside them. 2: the loader reads no preload file, and the
/// wrappers unset the loader's and libraries' variables. 3: objects search no default
/// library directory (`DF_1_NODEFLIB`). 4: tools linked with libcrypto read the
/// toolbox's OpenSSL configuration (`etc/openssl.cnf`). 5: libc's locale, gconv and
/// message catalog directories, and libsasl2's plugin directory, are moved out of the
/// container's `/usr`. 6: the wrappers hand the loader the guard (`lib/dlx-guard.so`).
pub const ASSEMBLER_VERSION: u32 = 6;

/// What the name of each architecture's pointer file starts with.
const POINTER_PREFIX: &str = "current-";

/// The description file at the top of every tree.
pub const DESCRIPTION: &str = "toolbox.json";

/// Largest description read back.
const DESCRIPTION_LIMIT: u64 = 4 << 20;

/// A package the tree was assembled from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRecord {
    pub name: String,
    pub version: String,
    /// SHA-256 of the `.deb`, as the signed index lists it.
    pub sha256: String,
    pub suite: String,
}

/// A tool of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRecord {
    pub name: String,
    pub package: String,
    pub version: String,
    /// The binary's path in its package.
    pub source: String,
    pub linkage: Linkage,
}

/// `toolbox.json`: what a tree is and what it was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// Hex SHA-256 of the assembly inputs (see [`digest`]); the tree's directory name.
    pub digest: String,
    pub assembler: u32,
    pub manifest_sha256: String,
    pub distro: String,
    pub arch: String,
    /// Where the tree is meant to be mounted, and its `bin` there.
    pub mount: String,
    pub bin: String,
    /// The loader's file name in `lib/`.
    pub loader: Option<String>,
    /// The file the loader reads instead of `/etc/ld.so.preload`, one that no toolbox
    /// holds (see [`super::layout::seal_loader`]).
    #[serde(default)]
    pub preload: Option<String>,
    /// The audit module the wrappers hand the loader, which refuses every object
    /// outside `lib/` (see [`super::GUARD`]).
    #[serde(default)]
    pub guard: Option<String>,
    /// What the wrappers unset before starting a tool: names, and prefixes as
    /// `PREFIX*` (see [`super::layout::unset_line`]).
    #[serde(default)]
    pub unset: Vec<String>,
    /// Bytes of regular files.
    pub size: u64,
    pub tools: Vec<ToolRecord>,
    pub applets: Vec<String>,
    pub libraries: Vec<String>,
    pub packages: Vec<PackageRecord>,
}

/// The digest of an assembly: the assembler version, the guard's bytes (what this
/// build of dlx compiled), the manifest, the distro, the architecture and the exact
/// packages (name, version, .deb SHA-256, sorted by name).
pub fn digest(
    manifest_sha256: &str,
    distro: &str,
    arch: &str,
    packages: &[PackageRecord],
) -> String {
    let mut sorted: Vec<&PackageRecord> = packages.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut text = format!(
        "dlx toolbox\nassembler {ASSEMBLER_VERSION}\nguard {}\nmanifest {manifest_sha256}\ndistro {distro}\narch {arch}\n",
        hex::encode(Sha256::digest(super::GUARD_OBJECT))
    );
    for p in sorted {
        text.push_str(&format!("package {} {} {}\n", p.name, p.version, p.sha256));
    }
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn is_digest(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A tree on disk and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub root: PathBuf,
    pub description: Description,
}

/// A shared lock on a tree: while one is held, [`Store::collect`] leaves the tree
/// alone. Clones share the lock, which ends with the last of them.
#[derive(Debug, Clone)]
pub struct Hold(std::sync::Arc<File>);

impl PartialEq for Hold {
    fn eq(&self, other: &Hold) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Hold {}

/// What the pointer leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    /// No pointer, or it names no intact tree.
    Missing,
    /// An intact tree of the current manifest and assembler.
    Valid(Installed),
    /// An intact tree made by another dlx (older manifest or assembler).
    Stale(Installed),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ToolboxError + 'a {
    move |source| ToolboxError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The toolbox part of the cache.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    /// Who must own the trees: the user dlx runs as.
    euid: u32,
}

impl Store {
    /// The store under the dlx cache root `cache_root`.
    pub fn new(cache_root: &Path) -> Store {
        Store {
            dir: cache_root.join("toolbox"),
            euid: nix::unistd::geteuid().as_raw(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the tree of `digest` lives (whether or not it exists).
    pub fn tree(&self, digest: &str) -> PathBuf {
        self.dir.join(digest)
    }

    fn pointer(&self, arch: &str) -> PathBuf {
        self.dir.join(format!("{POINTER_PREFIX}{arch}"))
    }

    /// Follow the pointer for `arch` and check its tree; no network, no hashing of
    /// the tree's contents.
    pub fn current(&self, arch: &str, manifest_sha256: &str) -> Result<Current, ToolboxError> {
        let pointer = self.pointer(arch);
        let text = match fs::read_to_string(&pointer) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Current::Missing),
            Err(e) => return Err(io_err("read", &pointer)(e)),
        };
        let digest = text.trim();
        if !is_digest(digest) {
            tracing::warn!(path = %pointer.display(), "ignoring a malformed toolbox pointer");
            return Ok(Current::Missing);
        }
        Ok(match self.open(digest, arch)? {
            None => Current::Missing,
            Some(found) if found.description.manifest_sha256 == manifest_sha256 => {
                Current::Valid(found)
            }
            Some(found) => Current::Stale(found),
        })
    }

    /// The intact tree of `digest` for `arch`, if there is one. A tree that anyone but
    /// its owner (the user dlx runs as) could change is an error, not a miss: its
    /// programs are about to run inside containers.
    pub fn open(&self, digest: &str, arch: &str) -> Result<Option<Installed>, ToolboxError> {
        // Whoever may write the store directory may rename trees and pointers in it.
        match fs::metadata(&self.dir) {
            Ok(meta) => self.check_owner(&self.dir, &meta)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("inspect", &self.dir)(e)),
        }
        let root = self.tree(digest);
        let meta = match fs::symlink_metadata(&root) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("inspect", &root)(e)),
        };
        if !meta.is_dir() {
            return Ok(None);
        }
        self.check_owner(&root, &meta)?;
        let path = root.join(DESCRIPTION);
        let mut text = Vec::new();
        match File::open(&path) {
            Ok(file) => file
                .take(DESCRIPTION_LIMIT)
                .read_to_end(&mut text)
                .map_err(io_err("read", &path))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let description: Description = match serde_json::from_slice(&text) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable toolbox description");
                return Ok(None);
            }
        };
        let intact = description.digest == digest
            && description.arch == arch
            && description.assembler == ASSEMBLER_VERSION;
        Ok(intact.then_some(Installed { root, description }))
    }

    fn check_owner(&self, path: &Path, meta: &fs::Metadata) -> Result<(), ToolboxError> {
        if meta.uid() != self.euid || meta.mode() & 0o022 != 0 {
            return Err(ToolboxError::UnsafeTree {
                path: path.to_path_buf(),
                uid: meta.uid(),
                mode: meta.mode() & 0o7777,
            });
        }
        Ok(())
    }

    /// Lock `installed` against [`Store::collect`] for as long as the hold lives.
    /// `None` when the tree was collected after it was found: look again.
    pub fn hold(&self, installed: &Installed) -> Result<Option<Hold>, ToolboxError> {
        let path = installed.root.join(DESCRIPTION);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        crate::sys::flock(
            file.as_fd(),
            rustix::fs::FlockOperation::LockShared,
            &path.to_string_lossy(),
        )
        .map_err(|e| io_err("lock", &path)(io::Error::from(e.errno)))?;
        // A collected tree is moved aside before it is removed: the file locked must
        // still be the one in place.
        let locked = file.metadata().map_err(io_err("inspect", &path))?;
        let in_place = fs::metadata(&path)
            .is_ok_and(|now| (now.dev(), now.ino()) == (locked.dev(), locked.ino()));
        Ok(in_place.then(|| Hold(std::sync::Arc::new(file))))
    }

    /// Remove every tree that no `current-<arch>` pointer names and no session holds
    /// (see [`Store::hold`]); returns those removed. Best effort: a tree that cannot
    /// be locked or moved stays for the next time.
    pub fn collect(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut named = std::collections::HashSet::new();
        let mut trees = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(POINTER_PREFIX) {
                // An unreadable pointer may name any tree: keep them all.
                let Ok(text) = fs::read_to_string(entry.path()) else {
                    return Vec::new();
                };
                named.insert(text.trim().to_string());
            } else if is_digest(&name) {
                trees.push(name);
            }
        }
        let mut removed = Vec::new();
        for digest in trees.iter().filter(|d| !named.contains(*d)) {
            let root = self.tree(digest);
            // A tree without a description is broken, and nobody can hold it.
            let lock = File::open(root.join(DESCRIPTION)).ok();
            if let Some(file) = &lock {
                let exclusive = rustix::fs::FlockOperation::NonBlockingLockExclusive;
                if let Err(e) = crate::sys::flock(file.as_fd(), exclusive, digest) {
                    tracing::debug!(path = %root.display(), error = %e, "toolbox tree in use: kept");
                    continue;
                }
            }
            // Out of sight first, so that a session finding it after this sees it
            // gone; what a failed removal leaves goes with the stale temporaries.
            let aside = self.dir.join(temp_name());
            if let Err(e) = fs::rename(&root, &aside) {
                tracing::debug!(path = %root.display(), error = %e, "toolbox tree not removed");
                continue;
            }
            drop(lock);
            if let Err(e) = fs::remove_dir_all(&aside) {
                tracing::debug!(path = %aside.display(), error = %e, "toolbox tree left for the sweep");
            }
            tracing::info!(path = %root.display(), "removed an unused toolbox tree");
            removed.push(root);
        }
        removed
    }

    /// Make `current-<arch>` name `digest`.
    pub fn set_current(&self, arch: &str, digest: &str) -> Result<(), ToolboxError> {
        let tmp = self.dir.join(temp_name());
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        file.write_all(format!("{digest}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_err("write", &tmp))?;
        let pointer = self.pointer(arch);
        fs::rename(&tmp, &pointer).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err("replace", &pointer)(e)
        })
    }

    /// Write `layout` and `description` as the tree of `description.digest`, unless an
    /// intact one is already there.
    pub fn install(
        &self,
        layout: &Layout,
        description: &Description,
    ) -> Result<Installed, ToolboxError> {
        self.prepare_dir()?;
        let digest = &description.digest;
        if let Some(found) = self.open(digest, &description.arch)? {
            return Ok(found);
        }
        let tmp = self.dir.join(temp_name());
        let written = write_tree(&tmp, layout, description, self.euid == 0);
        if let Err(e) = written {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let root = self.tree(digest);
        for attempt in 0..2 {
            match fs::rename(&tmp, &root) {
                Ok(()) => {
                    return Ok(Installed {
                        root,
                        description: description.clone(),
                    })
                }
                Err(e) if attempt == 0 && root.exists() => {
                    // Another dlx finished first (keep its tree), or a broken tree is
                    // in the way (move it aside and retry).
                    if let Some(found) = self.open(digest, &description.arch)? {
                        let _ = fs::remove_dir_all(&tmp);
                        return Ok(found);
                    }
                    tracing::warn!(path = %root.display(), error = %e, "replacing a broken toolbox tree");
                    let aside = self.dir.join(temp_name());
                    fs::rename(&root, &aside).map_err(io_err("move aside", &root))?;
                    let _ = fs::remove_dir_all(&aside);
                }
                Err(e) => {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(io_err("rename into place", &root)(e));
                }
            }
        }
        unreachable!("the second rename attempt returns")
    }

    /// Create the store directory (0755) and sweep stale temporary trees.
    fn prepare_dir(&self) -> Result<(), ToolboxError> {
        if !self.dir.is_dir() {
            fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o755))
                .map_err(io_err("set the mode of", &self.dir))?;
        }
        sweep_stale_temps(&self.dir);
        Ok(())
    }
}

/// Write the tree at `root` (which must not exist): directories 0755, executables
/// 0755, other files 0644, whatever the umask; owned by root:root when `chown`.
pub fn write_tree(
    root: &Path,
    layout: &Layout,
    description: &Description,
    chown: bool,
) -> Result<(), ToolboxError> {
    fs::create_dir(root).map_err(io_err("create", root))?;
    let mut json = serde_json::to_vec_pretty(description).map_err(ToolboxError::Json)?;
    json.push(b'\n');
    let description_node = Node::File {
        data: json,
        executable: false,
    };
    let nodes = layout
        .nodes
        .iter()
        .map(|(p, n)| (p.as_str(), n))
        .chain([(DESCRIPTION, &description_node)]);
    for (rel, node) in nodes {
        let path = root.join(rel);
        match node {
            Node::Dir => {
                fs::create_dir(&path).map_err(io_err("create", &path))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                    .map_err(io_err("set the mode of", &path))?;
            }
            Node::File { data, executable } => {
                let mode = if *executable { 0o755 } else { 0o644 };
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&path)
                    .map_err(io_err("create", &path))?;
                file.write_all(data)
                    .and_then(|()| file.set_permissions(fs::Permissions::from_mode(mode)))
                    .and_then(|()| file.sync_all())
                    .map_err(io_err("write", &path))?;
            }
            Node::Symlink(target) => {
                std::os::unix::fs::symlink(target, &path).map_err(io_err("create", &path))?;
            }
        }
        if chown {
            std::os::unix::fs::lchown(&path, Some(0), Some(0)).map_err(io_err("chown", &path))?;
        }
    }
    fs::set_permissions(root, fs::Permissions::from_mode(0o755))
        .map_err(io_err("set the mode of", root))?;
    if chown {
        std::os::unix::fs::lchown(root, Some(0), Some(0)).map_err(io_err("chown", root))?;
    }
    File::open(root)
        .and_then(|dir| dir.sync_all())
        .map_err(io_err("sync", root))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apt::cache::TEMP_PREFIX;

    fn record(name: &str, version: &str) -> PackageRecord {
        PackageRecord {
            name: name.into(),
            version: version.into(),
            sha256: "ab".repeat(32),
            suite: "trixie".into(),
        }
    }

    #[test]
    fn digest_covers_every_input_but_not_package_order() {
        let pkgs = vec![record("curl", "8.14.1-2"), record("libc6", "2.41-12")];
        let d = digest("m1", "debian13", "amd64", &pkgs);
        assert!(is_digest(&d));
        let reversed: Vec<_> = pkgs.iter().rev().cloned().collect();
        assert_eq!(digest("m1", "debian13", "amd64", &reversed), d);
        assert_ne!(digest("m2", "debian13", "amd64", &pkgs), d);
        assert_ne!(digest("m1", "debian12", "amd64", &pkgs), d);
        assert_ne!(digest("m1", "debian13", "arm64", &pkgs), d);
        let mut newer = pkgs.clone();
        newer[1].version = "2.41-12+deb13u1".into();
        assert_ne!(digest("m1", "debian13", "amd64", &newer), d);
        let mut other_deb = pkgs.clone();
        other_deb[0].sha256 = "cd".repeat(32);
        assert_ne!(digest("m1", "debian13", "amd64", &other_deb), d);
        assert_ne!(digest("m1", "debian13", "amd64", &pkgs[..1]), d);
    }

    pub fn description(digest: &str, manifest: &str) -> Description {
        Description {
            digest: digest.into(),
            assembler: ASSEMBLER_VERSION,
            manifest_sha256: manifest.into(),
            distro: "debian13".into(),
            arch: "amd64".into(),
            mount: super::super::MOUNT_POINT.into(),
            bin: super::super::BIN.into(),
            loader: None,
            preload: None,
            guard: None,
            unset: vec![],
            size: 0,
            tools: vec![],
            applets: vec!["sh".into()],
            libraries: vec![],
            packages: vec![record("busybox-static", "1:1.37.0-6")],
        }
    }

    fn small_layout() -> Layout {
        let mut layout = Layout::default();
        for d in ["bin", "lib", "libexec"] {
            layout.nodes.insert(d.into(), Node::Dir);
        }
        layout.nodes.insert(
            "bin/busybox".into(),
            Node::File {
                data: b"bb".to_vec(),
                executable: true,
            },
        );
        layout
            .nodes
            .insert("bin/sh".into(), Node::Symlink("busybox".into()));
        layout.nodes.insert(
            "lib/libc.so.6".into(),
            Node::File {
                data: b"libc".to_vec(),
                executable: false,
            },
        );
        layout
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    /// Only trees that no pointer names and nobody holds are removed; a hold on a tree
    /// that was collected (moved aside) is refused, so the caller looks again.
    #[test]
    fn unused_trees_are_collected_and_held_or_named_ones_kept() {
        let cache = tempfile::tempdir().unwrap();
        let store = Store::new(cache.path());
        let [old, held, amd64, arm64] = ["1", "2", "3", "4"].map(|c| c.repeat(64));
        let mut installed = Vec::new();
        for d in [&old, &held, &amd64, &arm64] {
            installed.push(
                store
                    .install(&small_layout(), &description(d, "m"))
                    .unwrap(),
            );
        }
        store.set_current("amd64", &amd64).unwrap();
        store.set_current("arm64", &arm64).unwrap();
        let hold = store.hold(&installed[1]).unwrap().expect("in place");
        // a broken digest directory (no description) goes too; other names stay
        fs::create_dir(store.tree(&"5".repeat(64))).unwrap();
        fs::write(store.dir().join("unrelated"), "x").unwrap();

        let mut removed = store.collect();
        removed.sort();
        assert_eq!(removed, vec![store.tree(&old), store.tree(&"5".repeat(64))]);
        assert!(!store.tree(&old).exists());
        for kept in [&held, &amd64, &arm64] {
            assert!(store.open(kept, "amd64").unwrap().is_some(), "{kept}");
        }
        assert!(store.dir().join("unrelated").exists());
        // nothing left aside
        let names: Vec<String> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.starts_with(".")), "{names:?}");

        // Released, the held tree goes at the next collection.
        drop(hold);
        assert_eq!(store.collect(), vec![store.tree(&held)]);
        // A tree removed after it was found cannot be held.
        assert_eq!(store.hold(&installed[1]).unwrap(), None);
    }

    #[test]
    fn trees_are_written_with_fixed_modes_and_found_through_the_pointer() {
        let cache = tempfile::tempdir().unwrap();
        let store = Store::new(cache.path());
        let d = "0".repeat(64);
        assert_eq!(store.current("amd64", "m").unwrap(), Current::Missing);
        let installed = store
            .install(&small_layout(), &description(&d, "m"))
            .unwrap();
        let root = &installed.root;
        assert_eq!(root, &cache.path().join("toolbox").join(&d));
        assert_eq!(mode(root), 0o755);
        assert_eq!(mode(&root.join("bin")), 0o755);
        assert_eq!(mode(&root.join("bin/busybox")), 0o755);
        assert_eq!(mode(&root.join("lib/libc.so.6")), 0o644);
        assert_eq!(mode(&root.join(DESCRIPTION)), 0o644);
        assert_eq!(
            fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        if nix::unistd::geteuid().is_root() {
            let meta = fs::symlink_metadata(root.join("bin/sh")).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (0, 0));
        }
        // not current until the pointer says so
        assert_eq!(store.current("amd64", "m").unwrap(), Current::Missing);
        store.set_current("amd64", &d).unwrap();
        assert_eq!(
            store.current("amd64", "m").unwrap(),
            Current::Valid(installed.clone())
        );
        assert!(matches!(
            store.current("amd64", "other").unwrap(),
            Current::Stale(_)
        ));
        assert_eq!(store.current("arm64", "m").unwrap(), Current::Missing);
        // installing the same digest again keeps the tree
        let again = store
            .install(&small_layout(), &description(&d, "m"))
            .unwrap();
        assert_eq!(again, installed);
        // no temporary left behind
        let names: Vec<String> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(TEMP_PREFIX)),
            "{names:?}"
        );
    }

    #[test]
    fn broken_or_foreign_trees_are_not_used() {
        let cache = tempfile::tempdir().unwrap();
        let store = Store::new(cache.path());
        let d = "1".repeat(64);
        let installed = store
            .install(&small_layout(), &description(&d, "m"))
            .unwrap();
        store.set_current("amd64", &d).unwrap();
        // a description of another digest
        let desc = installed.root.join(DESCRIPTION);
        let text = fs::read_to_string(&desc).unwrap();
        fs::set_permissions(&desc, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&desc, text.replace(&d, &"2".repeat(64))).unwrap();
        assert_eq!(store.current("amd64", "m").unwrap(), Current::Missing);
        // install replaces the broken tree
        let fixed = store
            .install(&small_layout(), &description(&d, "m"))
            .unwrap();
        assert!(matches!(
            store.current("amd64", "m").unwrap(),
            Current::Valid(_)
        ));
        // a tree others may write is refused loudly
        fs::set_permissions(&fixed.root, fs::Permissions::from_mode(0o777)).unwrap();
        let err = store.current("amd64", "m").unwrap_err().to_string();
        assert!(err.contains(&d) && err.contains("hint:"), "{err}");
        fs::set_permissions(&fixed.root, fs::Permissions::from_mode(0o755)).unwrap();
        // and so is a store directory others may write (they could swap trees)
        fs::set_permissions(store.dir(), fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            store.current("amd64", "m"),
            Err(ToolboxError::UnsafeTree { .. })
        ));
        fs::set_permissions(store.dir(), fs::Permissions::from_mode(0o755)).unwrap();
        // a malformed pointer is a miss
        fs::write(store.dir().join("current-amd64"), "../../etc\n").unwrap();
        assert_eq!(store.current("amd64", "m").unwrap(), Current::Missing);
    }
}
