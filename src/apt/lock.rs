//! The lockfile: the exact packages of a build (name, version, arch, suite, pool path,
//! size, SHA-256) plus the distro, the arch, and the digest and signers of each InRelease
//! the selection was made from. Honouring a lock means answering selection from it only:
//! each locked package must still be in the signed index at that version with the same
//! digest (else the lock is stale, or has been edited), and its download must match.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::packages::Package;
use super::resolve::Index;
use super::Distro;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read the lockfile {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse the lockfile {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write the lockfile {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the lockfile is for {lock}, the build is for {build}\nhint: relock for this target")]
    Target { lock: String, build: String },
    #[error("the lockfile is stale: {name} {version} ({arch}) is no longer in the {scope}\nhint: relock to pick up the current versions")]
    Stale {
        name: String,
        version: String,
        arch: String,
        scope: String,
    },
    #[error("the lockfile entry for {name} {version} does not match the signed index: lock sha256 {locked}, size {locked_size}; index sha256 {indexed}, size {indexed_size}\nhint: the lockfile was edited or corrupted; relock")]
    Tampered {
        name: String,
        version: String,
        locked: String,
        locked_size: u64,
        indexed: String,
        indexed_size: u64,
    },
    #[error("package {name} is not in the lockfile\nhint: relock after changing the package list")]
    NotLocked { name: String },
    #[error(transparent)]
    Record(#[from] super::packages::IndexError),
    #[error("unsupported lockfile version {found} in {path}, expected {expected}")]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
}

const LOCK_VERSION: u32 = 1;

/// One verified InRelease the selection came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedRelease {
    pub suite: String,
    pub sha256: String,
    /// Primary fingerprints of the keys whose signatures verified.
    pub signers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub suite: String,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub lock_version: u32,
    pub distro: String,
    pub arch: String,
    pub releases: Vec<LockedRelease>,
    /// Sorted by name.
    pub packages: Vec<LockedPackage>,
}

impl Lock {
    /// A lock of `packages` for `distro`/`arch`, made from `releases`.
    pub fn from_packages(
        distro: Distro,
        arch: &str,
        releases: Vec<LockedRelease>,
        packages: &[Package],
    ) -> Lock {
        let mut pkgs: Vec<LockedPackage> = packages
            .iter()
            .map(|p| LockedPackage {
                name: p.name.clone(),
                version: p.version.clone(),
                arch: p.arch.clone(),
                suite: p.suite.clone(),
                filename: p.filename.clone(),
                size: p.size,
                sha256: p.sha256.clone(),
            })
            .collect();
        pkgs.sort_by(|a, b| a.name.cmp(&b.name));
        pkgs.dedup_by(|a, b| a.name == b.name);
        Lock {
            lock_version: LOCK_VERSION,
            distro: distro.to_string(),
            arch: arch.to_string(),
            releases,
            packages: pkgs,
        }
    }

    pub fn read(path: &Path) -> Result<Lock, LockError> {
        let text = std::fs::read_to_string(path).map_err(|source| LockError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let lock: Lock = serde_json::from_str(&text).map_err(|source| LockError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if lock.lock_version != LOCK_VERSION {
            return Err(LockError::Version {
                path: path.to_path_buf(),
                found: lock.lock_version,
                expected: LOCK_VERSION,
            });
        }
        Ok(lock)
    }

    /// Write as pretty JSON with a trailing newline, atomically (temp file + rename).
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let werr = |source| LockError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut text = serde_json::to_string_pretty(self).expect("a lock always serializes");
        text.push('\n');
        let name = path
            .file_name()
            .map_or_else(|| "lock".into(), |n| n.to_string_lossy().into_owned());
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                werr(e)
            })
    }

    /// Check the lock is for this target.
    pub fn check_target(&self, distro: Distro, arch: &str) -> Result<(), LockError> {
        if self.distro != distro.to_string() || self.arch != arch {
            return Err(LockError::Target {
                lock: format!("{} {}", self.distro, self.arch),
                build: format!("{distro} {arch}"),
            });
        }
        Ok(())
    }

    /// The index restricted to the locked packages, each checked against `index`: present
    /// at the locked version and arch (else [`LockError::Stale`]), and listed there with the
    /// locked size and digest (else [`LockError::Tampered`]).
    pub fn restrict(&self, index: &Index) -> Result<Index, LockError> {
        let mut out = Vec::with_capacity(self.packages.len());
        for l in &self.packages {
            let found = index
                .versions(&l.name)
                .iter()
                .find(|p| p.version == l.version && p.arch == l.arch);
            let Some(p) = found else {
                return Err(LockError::Stale {
                    name: l.name.clone(),
                    version: l.version.clone(),
                    arch: l.arch.clone(),
                    scope: index.scope().to_string(),
                });
            };
            let p = p.package()?;
            if p.sha256 != l.sha256 || p.size != l.size || p.filename != l.filename {
                return Err(LockError::Tampered {
                    name: l.name.clone(),
                    version: l.version.clone(),
                    locked: l.sha256.clone(),
                    locked_size: l.size,
                    indexed: p.sha256.clone(),
                    indexed_size: p.size,
                });
            }
            out.push(p);
        }
        Ok(Index::from_packages(
            &out,
            format!("lockfile (from the {})", index.scope()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apt::packages;

    fn index() -> Index {
        let text = format!(
            "Package: tzdata\nVersion: 2025b-4\nArchitecture: all\nFilename: pool/t.deb\nSize: 10\nSHA256: {}\n\n\
Package: netbase\nVersion: 6.5\nArchitecture: all\nFilename: pool/n.deb\nSize: 20\nSHA256: {}\n",
            "a".repeat(64),
            "b".repeat(64)
        );
        Index::from_packages(
            &packages::parse(&text, "trixie", "t").unwrap(),
            "debian13 amd64 index".into(),
        )
    }

    fn lock() -> Lock {
        let ix = index();
        let pkgs = ix.select(&["tzdata", "netbase"]).unwrap();
        let rel = LockedRelease {
            suite: "trixie".into(),
            sha256: "c".repeat(64),
            signers: vec!["04B54C3CDCA79751B16BC6B5225629DF75B188BD".into()],
        };
        Lock::from_packages(Distro::Debian13, "amd64", vec![rel], &pkgs)
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dlx.lock.json");
        let l = lock();
        assert_eq!(l.packages[0].name, "netbase", "sorted by name");
        l.write(&path).unwrap();
        assert_eq!(Lock::read(&path).unwrap(), l);
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("}\n"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp left"
        );
        l.check_target(Distro::Debian13, "amd64").unwrap();
        assert!(l.check_target(Distro::Debian12, "amd64").is_err());
    }

    #[test]
    fn honoured_lock_answers_from_itself() {
        let restricted = lock().restrict(&index()).unwrap();
        let sel = restricted.select(&["tzdata"]).unwrap();
        assert_eq!(sel[0].version, "2025b-4");
        assert!(restricted.scope().starts_with("lockfile"));
    }

    #[test]
    fn stale_and_tampered_locks_are_refused() {
        let mut stale = lock();
        stale.packages[1].version = "2024a-1".into();
        let e = stale.restrict(&index()).unwrap_err();
        assert!(matches!(e, LockError::Stale { .. }), "{e}");
        assert!(e
            .to_string()
            .contains("tzdata 2024a-1 (all) is no longer in the debian13"));

        let mut tampered = lock();
        tampered.packages[0].sha256 = "d".repeat(64);
        let e = tampered.restrict(&index()).unwrap_err();
        assert!(matches!(e, LockError::Tampered { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&"d".repeat(64)) && msg.contains(&"b".repeat(64)),
            "{msg}"
        );
    }

    #[test]
    fn unreadable_lockfiles_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "{").unwrap();
        let e = Lock::read(&path).unwrap_err();
        assert!(e.to_string().contains("bad.json"));
        let mut l = serde_json::to_value(lock()).unwrap();
        l["lock_version"] = 7.into();
        std::fs::write(&path, l.to_string()).unwrap();
        assert!(matches!(
            Lock::read(&path),
            Err(LockError::Version { found: 7, .. })
        ));
    }
}
