//! The Debian archive client: from the embedded archive keys to verified `.deb` files on
//! disk.
//!
//! The chain of trust is key → InRelease → Packages → .deb:
//! - [`keys`]: Debian's archive keys, embedded and pinned by fingerprint, plus user keys;
//! - [`release`]: fetch `dists/<suite>/InRelease`, verify its signatures, parse the Release;
//! - [`packages`]: fetch the Packages index the Release lists (by hash), check size and
//!   SHA-256, decompress, parse into [`Package`] records;
//! - [`table`]: a compact name → paragraph table of each index, cached beside it, so a
//!   warm build reads only the paragraphs it selects (each checked against its digest);
//! - [`resolve`]: pick the highest version across a distro's suites, exactly
//!   ([`Archive::select`]) or with the dependency closure ([`Archive::resolve`]);
//! - [`fetch`] and [`cache`]: download .debs in parallel into a content-addressed cache,
//!   verified while streaming and again on every read;
//! - [`lock`]: write the selection down, and build from it exactly.
//!
//! [`Archive`] is the synchronous entry point; it runs its own tokio runtime.
//!
//! What the cache covers: Packages indexes and .debs are content-addressed and served
//! from the cache whenever a verified entry exists; a decompressed index is used through
//! its package table, paragraph by verified paragraph, instead of being hashed whole. InRelease is always fetched when the
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
pub mod table;
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
    #[error("the mirror has no copy of the {suite} {arch} Packages index that matches its signed Release: {missing} is not there, and {detail}\nhint: the mirror is in the middle of an update or does not carry this architecture completely; try again later, or pass --mirror URL")]
    IndexUnavailable {
        suite: String,
        arch: String,
        missing: String,
        detail: String,
    },
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

        let (releases, tables) = rt.block_on(async {
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
            let mut tables = Vec::new();
            for (_, r, t) in done {
                releases.push(r);
                tables.push(t);
            }
            Ok((releases, tables))
        })?;
        let scope = format!("{} {} index ({})", cfg.distro, cfg.arch, suites.join(", "));
        let index = Index::from_tables(tables, scope);
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

/// Run blocking work (file reads, hashing, decompression) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AptError> + Send + 'static,
) -> Result<T, AptError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// The URLs to try for an index file listed at `path` (under `<base>/dists/<suite>/`):
/// its by-hash name first when the suite offers Acquire-By-Hash, then the plain name.
/// A by-hash name never changes content, so a mirror in the middle of an update cannot
/// serve it mismatching the Release; the plain name is the fallback for mirrors that
/// lack by-hash files.
pub fn index_urls(base: &str, suite: &str, choice: &packages::IndexChoice) -> Vec<String> {
    let dists = format!("{}/dists/{suite}", base.trim_end_matches('/'));
    let mut urls: Vec<String> = choice
        .by_hash_path
        .iter()
        .map(|bh| format!("{dists}/{bh}"))
        .collect();
    urls.push(format!("{dists}/{}", choice.path));
    urls
}

/// A suite's Packages index as a package table: from the cache when the table and the
/// decompressed index are there (nothing else is read), else from the cached index
/// (verified, then scanned), else downloaded (by hash when offered), verified,
/// decompressed and scanned. A table made here is cached under the index's signed
/// digest for the next build.
async fn load_index(
    fetcher: &Fetcher,
    rel: &SuiteRelease,
    arch: &str,
) -> Result<table::Table, AptError> {
    let suite = rel.suite.clone();
    let choice = packages::choose(&rel.verified.release, &suite, arch)?;
    let urls = index_urls(&rel.base, &suite, &choice);
    let plain_url = urls.last().cloned().unwrap_or_default();
    let cache = fetcher.cache().clone();
    if let Some(plain) = choice.plain.clone() {
        let (cache, suite, url) = (cache.clone(), suite.clone(), plain_url.clone());
        let cached = blocking(move || {
            if let Some(t) = table::Table::open_cached(&cache, &plain, &suite, &url)? {
                tracing::debug!(%suite, records = t.len(), "package table from the cache");
                return Ok(Some(t));
            }
            // A warm cache may hold the decompressed index under its signed digest.
            let Some(bytes) = cache.read(&plain.sha256)? else {
                return Ok(None);
            };
            let text =
                String::from_utf8(bytes).map_err(|_| IndexError::Utf8 { url: url.clone() })?;
            let t = table::Table::build(text.into(), &suite, &url, Some(&plain))?;
            cache.put_derived(table::CACHE_KIND, &plain.sha256, t.bytes())?;
            Ok(Some(t))
        })
        .await?;
        if let Some(t) = cached {
            return Ok(t);
        }
    }
    let want = |url: &str| Wanted {
        url: url.to_string(),
        size: choice.file.size,
        sha256: choice.file.sha256.clone(),
    };
    let sha = choice.file.sha256.clone();
    let reader = cache.clone();
    // One verified read serves a cache hit; a miss downloads (verified while streaming).
    let bytes = match blocking(move || Ok(reader.read(&sha)?)).await? {
        Some(b) => b,
        None => {
            let mut path = None;
            for (i, url) in urls.iter().enumerate() {
                match fetcher.file(&want(url), None).await {
                    Ok(p) => {
                        path = Some(p);
                        break;
                    }
                    // A mirror may lack by-hash files; the plain name is checked the same way.
                    Err(FetchError::Status { status: 404, .. }) if i + 1 < urls.len() => {
                        tracing::debug!(%url, "no by-hash index on the mirror, trying the plain name");
                    }
                    // By-hash was missing and the plain name serves another version.
                    Err(e @ (FetchError::Size { .. } | FetchError::Digest { .. })) if i > 0 => {
                        return Err(AptError::IndexUnavailable {
                            suite: suite.clone(),
                            arch: arch.to_string(),
                            missing: urls[0].clone(),
                            detail: crate::output::without_hint(&e),
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let path = path.unwrap_or_default();
            let (reader, sha) = (cache.clone(), choice.file.sha256.clone());
            let again = blocking(move || Ok(reader.read(&sha)?)).await?;
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
    let (compression, plain_file) = (choice.compression, choice.plain.clone());
    blocking(move || {
        let text = packages::decompress(&bytes, compression, &plain_url)?;
        // Keep the decompressed index and its table for the next build, but only when
        // it is exactly what the signed Release says it is.
        if let Some(file) = &plain_file {
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
            if digest != file.sha256 {
                return Err(IndexError::PlainDigest {
                    url: plain_url.clone(),
                    expected: file.sha256.clone(),
                    actual: digest,
                }
                .into());
            }
            cache.put(text.as_bytes())?;
        }
        let t = table::Table::build(text.into(), &suite, &plain_url, plain_file.as_ref())?;
        if let Some(file) = &plain_file {
            cache.put_derived(table::CACHE_KIND, &file.sha256, t.bytes())?;
        }
        tracing::debug!(%suite, packages = t.len(), "Packages index parsed");
        Ok(t)
    })
    .await
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
    fn index_urls_try_by_hash_first_when_offered() {
        let text = concat!(
            "Codename: trixie-security\nAcquire-By-Hash: yes\nSHA256:\n",
            " 1111111111111111111111111111111111111111111111111111111111111111 10 main/binary-armhf/Packages\n",
            " 2222222222222222222222222222222222222222222222222222222222222222 5 main/binary-armhf/Packages.xz\n",
        );
        let release = release::Release::parse(text, "u").unwrap();
        let choice = packages::choose(&release, "trixie-security", "armhf").unwrap();
        let dists = "http://deb.debian.org/debian-security/dists/trixie-security";
        assert_eq!(
            index_urls(
                "http://deb.debian.org/debian-security/",
                "trixie-security",
                &choice
            ),
            [
                format!(
                    "{dists}/main/binary-armhf/by-hash/SHA256/{}",
                    "2".repeat(64)
                ),
                format!("{dists}/main/binary-armhf/Packages.xz"),
            ]
        );
        let plain =
            release::Release::parse(&text.replace("Acquire-By-Hash: yes\n", ""), "u").unwrap();
        let choice = packages::choose(&plain, "trixie-security", "armhf").unwrap();
        assert_eq!(
            index_urls("http://m/debian-security", "trixie-security", &choice),
            ["http://m/debian-security/dists/trixie-security/main/binary-armhf/Packages.xz"]
        );
    }

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
