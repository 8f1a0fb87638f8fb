//! The Debian archive client: from the embedded archive keys to verified `.deb` files on
//! disk.
//!
//! The chain of trust is key → InRelease → Packages → .deb:
//! - [`keys`]: Debian's archive keys, embedded and pinned by fingerprint, plus user keys;
//! - [`release`]: fetch `dists/<suite>/InRelease`, verify its signatures, parse the Release;
//! - [`packages`]: fetch the Packages index the Release lists (by hash), check size and
//!   SHA-256, decompress, parse into [`Package`] records;
//! - [`resolve`]: pick the highest version across a distro's suites, exactly
//!   ([`Archive::select`]) or with the dependency closure ([`Archive::resolve`]);
//! - [`fetch`] and [`cache`]: download .debs in parallel into a content-addressed cache,
//!   verified while streaming and again on every read;
//! - [`lock`]: write the selection down, and build from it exactly.
//!
//! [`Archive`] is the synchronous entry point; it runs its own tokio runtime.
//!
//! What the cache covers: Packages indexes and .debs are content-addressed and served
//! from the cache whenever a verified entry exists. InRelease is always fetched when the
//! archive is reachable (it is what tells us the current digests); only when the archive
//! cannot be reached at all is the last InRelease that verified for the suite read back
//! from the cache, and then it is verified again (signature, suite, Valid-Until) before
//! use. A bad signature or an HTTP error never falls back to the cache.

pub mod cache;
pub mod deb822;
pub mod fetch;
pub mod keys;
pub mod lock;
pub mod packages;
pub mod relation;
pub mod release;
pub mod resolve;
pub mod sources;
pub mod version;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

pub use deb822::Paragraph;
pub use lock::{Lock, LockError, LockedRelease};
pub use packages::Package;

use cache::{Cache, CacheError};
use fetch::{FetchError, Fetcher, Wanted};
use keys::{KeyError, Keyring};
use packages::IndexError;
use release::{ReleaseError, VerifiedRelease};
use resolve::{Index, ResolveError};

/// Any failure of the archive client.
#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("unknown distro {0:?}\nhint: use debian12 or debian13")]
    UnknownDistro(String),
    #[error("cannot start the download runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("package {name} has an unsafe pool path {filename:?}")]
    BadFilename { name: String, filename: String },
    #[error("package {name} comes from suite {suite}, which is not a suite of {distro}")]
    UnknownSuite {
        name: String,
        suite: String,
        distro: Distro,
    },
}

/// A Debian release dlx builds from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Distro {
    Debian12,
    Debian13,
}

impl Distro {
    pub fn codename(self) -> &'static str {
        match self {
            Distro::Debian12 => "bookworm",
            Distro::Debian13 => "trixie",
        }
    }

    /// `VERSION_ID` as in os-release.
    pub fn version_id(self) -> &'static str {
        match self {
            Distro::Debian12 => "12",
            Distro::Debian13 => "13",
        }
    }

    /// The suites, in priority order for version ties: release, updates, security.
    pub fn suites(self) -> [String; 3] {
        let c = self.codename();
        [
            c.to_string(),
            format!("{c}-updates"),
            format!("{c}-security"),
        ]
    }
}

impl fmt::Display for Distro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "debian{}", self.version_id())
    }
}

impl FromStr for Distro {
    type Err = AptError;
    fn from_str(s: &str) -> Result<Distro, AptError> {
        match s {
            "debian12" | "bookworm" => Ok(Distro::Debian12),
            "debian13" | "trixie" => Ok(Distro::Debian13),
            _ => Err(AptError::UnknownDistro(s.to_string())),
        }
    }
}

/// Where and what to fetch.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// Archive root, e.g. `http://deb.debian.org/debian`.
    pub mirror: String,
    /// Security archive root; derived from `mirror` when `None` (see
    /// [`sources::security_mirror_for`]).
    pub security_mirror: Option<String>,
    pub distro: Distro,
    /// Debian architecture name: amd64, arm64, armhf, ...
    pub arch: String,
    pub cache_dir: PathBuf,
    /// Draw a progress bar for .deb downloads (the caller decides: stderr is a TTY).
    pub progress: bool,
    /// Extra OpenPGP key files trusted in addition to the embedded Debian keys.
    pub extra_keys: Vec<PathBuf>,
}

/// A suite's verified Release and where it came from.
#[derive(Debug, Clone)]
pub struct SuiteRelease {
    pub suite: String,
    /// Archive root the suite was read from.
    pub base: String,
    pub verified: VerifiedRelease,
    /// True when the archive was unreachable and the last verified copy was used.
    pub from_cache: bool,
}

/// The verified indexes of one distro and arch, ready to select and fetch from.
pub struct Archive {
    cfg: ArchiveConfig,
    security_mirror: String,
    rt: tokio::runtime::Runtime,
    fetcher: Fetcher,
    releases: Vec<SuiteRelease>,
    index: Index,
    lock: Option<Lock>,
}

/// InRelease files above this size are refused (Debian's are ~150 KiB).
const INRELEASE_LIMIT: u64 = 64 << 20;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Archive {
    /// Fetch and verify the InRelease and Packages index of every suite of the distro.
    pub fn open(cfg: ArchiveConfig) -> Result<Archive, AptError> {
        let keyring = Keyring::load(&cfg.extra_keys)?;
        let cache = Cache::open(&cfg.cache_dir)?;
        let fetcher = Fetcher::new(cache)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(AptError::Runtime)?;
        let mirror = cfg.mirror.trim_end_matches('/').to_string();
        let security_mirror = cfg
            .security_mirror
            .as_deref()
            .map(|m| m.trim_end_matches('/').to_string())
            .unwrap_or_else(|| sources::security_mirror_for(&mirror));
        let suites = cfg.distro.suites();
        tracing::info!(distro = %cfg.distro, arch = %cfg.arch, %mirror, %security_mirror, "opening archive");

        let (releases, packages) = rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, suite) in suites.iter().enumerate() {
                let base = if suite.ends_with("-security") {
                    security_mirror.clone()
                } else {
                    mirror.clone()
                };
                let (fetcher, keyring, suite, arch) = (
                    fetcher.clone(),
                    keyring.clone(),
                    suite.clone(),
                    cfg.arch.clone(),
                );
                tasks.spawn(async move {
                    let rel = load_release(&fetcher, &keyring, &base, &suite).await?;
                    let pkgs = load_index(&fetcher, &rel, &arch).await?;
                    Ok::<_, AptError>((i, rel, pkgs))
                });
            }
            let mut done = Vec::new();
            while let Some(j) = tasks.join_next().await {
                match j {
                    Ok(Ok(r)) => done.push(r),
                    Ok(Err(e)) => return Err(e),
                    Err(join) => std::panic::resume_unwind(join.into_panic()),
                }
            }
            done.sort_by_key(|(i, _, _)| *i);
            let mut releases = Vec::new();
            let mut packages = Vec::new();
            for (_, r, p) in done {
                releases.push(r);
                packages.extend(p);
            }
            Ok((releases, packages))
        })?;
        let scope = format!("{} {} index ({})", cfg.distro, cfg.arch, suites.join(", "));
        let index = Index::new(packages, scope);
        tracing::info!(packages = index.len(), "archive indexes verified");
        Ok(Archive {
            cfg,
            security_mirror,
            rt,
            fetcher,
            releases,
            index,
            lock: None,
        })
    }

    /// Answer [`Archive::select`] and [`Archive::resolve`] from `lock` only.
    pub fn with_lock(mut self, lock: Lock) -> Archive {
        self.lock = Some(lock);
        self
    }

    /// Replace (or with `None`, drop) the lock selection answers from.
    pub fn set_lock(&mut self, lock: Option<Lock>) {
        self.lock = lock;
    }

    /// The index selection answers from: the whole index, or the lock's packages checked
    /// against it.
    fn effective_index(&self) -> Result<std::borrow::Cow<'_, Index>, AptError> {
        match &self.lock {
            None => Ok(std::borrow::Cow::Borrowed(&self.index)),
            Some(lock) => {
                lock.check_target(self.cfg.distro, &self.cfg.arch)?;
                Ok(std::borrow::Cow::Owned(lock.restrict(&self.index)?))
            }
        }
    }

    fn not_locked(&self, e: ResolveError) -> AptError {
        match (e, &self.lock) {
            (ResolveError::Unknown { name, .. }, Some(_)) => LockError::NotLocked { name }.into(),
            (e, _) => e.into(),
        }
    }

    /// The named packages at their chosen versions, in the order given; no dependencies.
    pub fn select(&self, names: &[&str]) -> Result<Vec<Package>, AptError> {
        let index = self.effective_index()?;
        index.select(names).map_err(|e| self.not_locked(e))
    }

    /// The named packages and their Pre-Depends/Depends closure, sorted by name.
    pub fn resolve(&self, names: &[&str]) -> Result<Vec<Package>, AptError> {
        let index = self.effective_index()?;
        index
            .resolve(names, &self.cfg.arch)
            .map_err(|e| self.not_locked(e))
    }

    /// Download (or find in the cache) each package's .deb, verified; paths in input order.
    pub fn fetch(&self, pkgs: &[Package]) -> Result<Vec<PathBuf>, AptError> {
        let wants = pkgs
            .iter()
            .map(|p| {
                Ok(Wanted {
                    url: self.deb_url(p)?,
                    size: p.size,
                    sha256: p.sha256.clone(),
                })
            })
            .collect::<Result<Vec<_>, AptError>>()?;
        let paths = self
            .rt
            .block_on(self.fetcher.many(&wants, self.cfg.progress))?;
        Ok(paths)
    }

    fn deb_url(&self, p: &Package) -> Result<String, AptError> {
        let f = &p.filename;
        if f.starts_with('/') || f.contains("..") || f.contains("://") || f.contains('?') {
            return Err(AptError::BadFilename {
                name: p.name.clone(),
                filename: f.clone(),
            });
        }
        let base = match self.releases.iter().find(|r| r.suite == p.suite) {
            Some(r) => &r.base,
            None => {
                return Err(AptError::UnknownSuite {
                    name: p.name.clone(),
                    suite: p.suite.clone(),
                    distro: self.cfg.distro,
                })
            }
        };
        Ok(format!("{base}/{f}"))
    }

    /// The verified Release of each suite, in suite order.
    pub fn releases(&self) -> &[SuiteRelease] {
        &self.releases
    }

    /// A lock of `pkgs` recording this archive's distro, arch and verified InReleases.
    pub fn lock_for(&self, pkgs: &[Package]) -> Lock {
        let releases = self
            .releases
            .iter()
            .map(|r| LockedRelease {
                suite: r.suite.clone(),
                sha256: r.verified.sha256.clone(),
                signers: r.verified.signers.clone(),
            })
            .collect();
        Lock::from_packages(self.cfg.distro, &self.cfg.arch, releases, pkgs)
    }

    /// The merged index of all suites (ignores any lock).
    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn config(&self) -> &ArchiveConfig {
        &self.cfg
    }

    pub fn security_mirror(&self) -> &str {
        &self.security_mirror
    }
}

/// Fetch and verify a suite's InRelease. When the archive cannot be reached, the last
/// InRelease that verified for this suite is read from the cache and verified again
/// (signature and Valid-Until), so an offline build uses only verified bytes.
async fn load_release(
    fetcher: &Fetcher,
    keyring: &Keyring,
    base: &str,
    suite: &str,
) -> Result<SuiteRelease, AptError> {
    let url = format!("{base}/dists/{suite}/InRelease");
    let cache = fetcher.cache();
    match fetcher.bytes(&url, INRELEASE_LIMIT).await {
        Ok(bytes) => {
            let verified = release::verify(&bytes, &url, suite, keyring, now())?;
            let sha = cache.put(&bytes)?;
            cache.set_release(suite, &sha)?;
            tracing::info!(%suite, signers = ?verified.signers, sha256 = %sha, "InRelease verified");
            Ok(SuiteRelease {
                suite: suite.to_string(),
                base: base.to_string(),
                verified,
                from_cache: false,
            })
        }
        Err(e) if e.is_unreachable() => {
            let cached = match cache.release(suite)? {
                Some(sha) => cache.read(&sha)?,
                None => None,
            };
            let Some(bytes) = cached else {
                return Err(e.into());
            };
            let label = format!("{url} (cached copy, archive unreachable)");
            let verified = release::verify(&bytes, &label, suite, keyring, now())?;
            tracing::warn!(%suite, %url, sha256 = %verified.sha256, "archive unreachable, using the last verified InRelease from the cache");
            Ok(SuiteRelease {
                suite: suite.to_string(),
                base: base.to_string(),
                verified,
                from_cache: true,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Fetch (by hash when offered), verify, decompress and parse a suite's Packages index.
async fn load_index(
    fetcher: &Fetcher,
    rel: &SuiteRelease,
    arch: &str,
) -> Result<Vec<packages::Entry>, AptError> {
    let suite = &rel.suite;
    let choice = packages::choose(&rel.verified.release, suite, arch)?;
    let dists = format!("{}/dists/{suite}", rel.base);
    let plain = format!("{dists}/{}", choice.path);
    let want = |url: String| Wanted {
        url,
        size: choice.file.size,
        sha256: choice.file.sha256.clone(),
    };
    let cache = fetcher.cache().clone();
    // A warm cache holds the decompressed index under its own signed digest.
    if let Some(plain_file) = choice.plain.clone() {
        let (cache, suite, url) = (cache.clone(), suite.clone(), plain.clone());
        let hit = tokio::task::spawn_blocking(
            move || -> Result<Option<Vec<packages::Entry>>, AptError> {
                let Some(bytes) = cache.read(&plain_file.sha256)? else {
                    return Ok(None);
                };
                let text =
                    String::from_utf8(bytes).map_err(|_| IndexError::Utf8 { url: url.clone() })?;
                Ok(Some(packages::scan(text.into(), &suite, &url)?))
            },
        );
        match hit.await {
            Ok(Ok(Some(pkgs))) => return Ok(pkgs),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return Err(e),
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
    let sha = choice.file.sha256.clone();
    let read = move || cache.read(&sha);
    // One verified read serves a cache hit; a miss downloads (verified while streaming).
    let bytes = match tokio::task::spawn_blocking(read.clone()).await {
        Ok(r) => r?,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    };
    let bytes = match bytes {
        Some(b) => b,
        None => {
            let path = match &choice.by_hash_path {
                Some(bh) => match fetcher.file(&want(format!("{dists}/{bh}")), None).await {
                    // A mirror may lack by-hash files; the plain name is checked the same way.
                    Err(FetchError::Status { status: 404, .. }) => {
                        fetcher.file(&want(plain.clone()), None).await?
                    }
                    other => other?,
                },
                None => fetcher.file(&want(plain.clone()), None).await?,
            };
            let again = match tokio::task::spawn_blocking(read).await {
                Ok(r) => r?,
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            };
            again.ok_or_else(|| CacheError::Io {
                op: "read cache entry",
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "entry vanished or changed after it was verified",
                ),
            })?
        }
    };
    let (suite, compression, plain_file) =
        (suite.clone(), choice.compression, choice.plain.clone());
    let cache = fetcher.cache().clone();
    match tokio::task::spawn_blocking(move || {
        let text = packages::decompress(&bytes, compression, &plain)?;
        // Keep the decompressed index for the next build, but only when it is
        // exactly what the signed Release says it is.
        if let Some(file) = plain_file {
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
            if digest != file.sha256 {
                return Err(IndexError::PlainDigest {
                    url: plain.clone(),
                    expected: file.sha256,
                    actual: digest,
                }
                .into());
            }
            cache.put(text.as_bytes())?;
        }
        let pkgs = packages::scan(text.into(), &suite, &plain)?;
        tracing::debug!(%suite, packages = pkgs.len(), "Packages index parsed");
        Ok(pkgs)
    })
    .await
    {
        Ok(r) => r,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// The Debian mirror named in the host's apt sources, else `http://deb.debian.org/debian`.
pub fn default_mirror() -> String {
    sources::detect_mirror(std::path::Path::new("/"))
        .unwrap_or_else(|| sources::FALLBACK_MIRROR.to_string())
}

/// `$DLX_CACHE_DIR`, else `$XDG_CACHE_HOME/dlx`, else `~/.cache/dlx`.
pub fn default_cache_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(d) = var("DLX_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("dlx");
    }
    match var("HOME") {
        Some(h) => PathBuf::from(h).join(".cache/dlx"),
        None => std::env::temp_dir().join("dlx-cache"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distro_names() {
        let d: Distro = "debian13".parse().unwrap();
        assert_eq!(d, Distro::Debian13);
        assert_eq!(d.codename(), "trixie");
        assert_eq!(d.version_id(), "13");
        assert_eq!(d.to_string(), "debian13");
        assert_eq!(
            Distro::Debian12.suites(),
            ["bookworm", "bookworm-updates", "bookworm-security"]
        );
        let e = "debian11".parse::<Distro>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown distro \"debian11\"\nhint: use debian12 or debian13"
        );
    }
}
