//! The download cache: content-addressed blobs at `<cache>/sha256/<hex>`, plus one small
//! pointer per suite (`<cache>/release/<suite>`) naming the blob of the last InRelease
//! whose signature verified.
//!
//! Every read hashes the blob again; a blob whose content no longer matches its name is
//! deleted and reported as absent, never returned. Writes go to a temporary file in the
//! same directory, are fsynced, and are renamed into place, so a reader (in this or any
//! other dlx process) sees a complete entry or none, and an interrupted download leaves
//! only a temporary file that no reader looks at (stale ones are swept on open). Two
//! processes filling the same entry race harmlessly: both rename identical bytes.
//!
//! Derived entries (`<cache>/<kind>/<key>`) hold what dlx computed from verified
//! inputs, so a warm build need not compute it again: the name → paragraph table of a
//! Packages index, the layer made from a .deb. Each carries the SHA-256 of its body,
//! checked on every read (a torn or damaged entry is deleted and reported as absent);
//! the blobs they name are ordinary content-addressed blobs. They are as trustworthy as
//! the cache directory itself: nothing can check that a derived entry is what its
//! inputs would give without recomputing it.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot {op} {path}: {source}\nhint: check that the cache directory is writable, or set DLX_CACHE_DIR")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CacheError + 'a {
    move |source| CacheError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Temporary files older than this are leftovers of killed processes.
const STALE_TEMP: Duration = Duration::from_secs(24 * 3600);
pub(crate) const TEMP_PREFIX: &str = ".tmp-";
/// Directories of derived entries, swept of stale temporary files on open.
const DERIVED_KINDS: [&str; 2] = ["packages-table", "layer"];

/// A temporary file name unique across processes (pid) and threads (counter).
/// Remove what [`temp_name`] named in `dir` and a crashed run left behind: entries
/// (files or whole trees) older than [`STALE_TEMP`]. Best effort: what cannot be
/// read or removed stays.
pub(crate) fn sweep_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_TEMP);
        if old {
            let path = e.path();
            tracing::debug!(path = %path.display(), "removing a stale temporary entry");
            let _ = fs::remove_file(&path).or_else(|_| fs::remove_dir_all(&path));
        }
    }
}

pub(crate) fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TEMP_PREFIX}{}-{n}", std::process::id())
}

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Open (creating) the cache at `root` and sweep stale temporary files.
    pub fn open(root: &Path) -> Result<Cache, CacheError> {
        let cache = Cache {
            root: root.to_path_buf(),
        };
        for dir in [cache.blob_dir(), cache.pointer_dir()] {
            fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
            sweep_stale_temps(&dir);
        }
        for kind in DERIVED_KINDS {
            sweep_stale_temps(&cache.root.join(kind));
        }
        Ok(cache)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("sha256")
    }

    fn pointer_dir(&self) -> PathBuf {
        self.root.join("release")
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blob_dir().join(sha256)
    }

    /// The path of a verified blob: present, of `size` bytes when given, and hashing to
    /// `sha256`. A blob that fails the check is deleted and `None` returned.
    pub fn get(&self, sha256: &str, size: Option<u64>) -> Result<Option<PathBuf>, CacheError> {
        let path = self.blob_path(sha256);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open cache entry", &path)(e)),
        };
        let (len, actual) = hash_reader(&mut file).map_err(io_err("read cache entry", &path))?;
        if actual != sha256 || size.is_some_and(|s| s != len) {
            tracing::warn!(path = %path.display(), expected = sha256, %actual, "corrupted cache entry removed");
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove corrupted cache entry", &path)(e)),
            }
            return Ok(None);
        }
        tracing::debug!(sha256, "cache hit");
        Ok(Some(path))
    }

    /// The verified bytes of a blob, or `None` (see [`Cache::get`]).
    pub fn read(&self, sha256: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.blob_path(sha256);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read cache entry", &path)(e)),
        };
        if hex::encode(Sha256::digest(&bytes)) != sha256 {
            // Let `get` do the removal (and its logging) on the same criterion.
            self.get(sha256, None)?;
            return Ok(None);
        }
        tracing::debug!(sha256, "cache hit");
        Ok(Some(bytes))
    }

    /// Store bytes already verified by the caller; returns their digest. An entry that
    /// already holds exactly these bytes is left alone (no write, no fsync).
    pub fn put(&self, bytes: &[u8]) -> Result<String, CacheError> {
        let sha = hex::encode(Sha256::digest(bytes));
        if self.holds(&sha, bytes) {
            return Ok(sha);
        }
        let mut t = self.temp()?;
        t.write(bytes)?;
        t.commit(&sha)?;
        Ok(sha)
    }

    /// Store a blob dlx derived itself (a compressed layer); returns its digest. Not
    /// fsynced: a blob torn by a crash fails its digest on read and is made again.
    pub fn put_derived_blob(&self, bytes: &[u8]) -> Result<String, CacheError> {
        let sha = hex::encode(Sha256::digest(bytes));
        if self.holds(&sha, bytes) {
            return Ok(sha);
        }
        let mut t = self.temp()?;
        t.write(bytes)?;
        t.sync = false;
        t.commit(&sha)?;
        Ok(sha)
    }

    /// Whether the blob `sha256` exists with exactly `bytes` in it.
    fn holds(&self, sha256: &str, bytes: &[u8]) -> bool {
        let path = self.blob_path(sha256);
        fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64)
            && fs::read(&path).is_ok_and(|have| have == bytes)
    }

    /// The body of the derived entry `<kind>/<key>`, when present and intact (its
    /// trailing SHA-256 matches); a damaged entry is deleted and `None` returned.
    pub fn derived(&self, kind: &str, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.derived_path(kind, key);
        let mut bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read cache entry", &path)(e)),
        };
        let intact = bytes.len() >= 32 && {
            let (body, sum) = bytes.split_at(bytes.len() - 32);
            Sha256::digest(body).as_slice() == sum
        };
        if !intact {
            tracing::warn!(path = %path.display(), "damaged cache entry removed");
            self.remove_derived(kind, key)?;
            return Ok(None);
        }
        bytes.truncate(bytes.len() - 32);
        tracing::debug!(kind, key, "derived cache hit");
        Ok(Some(bytes))
    }

    /// Write the derived entry `<kind>/<key>` (atomic replace; the body's SHA-256 is
    /// appended). `key` must be a plain file name, such as a hex digest.
    pub fn put_derived(&self, kind: &str, key: &str, body: &[u8]) -> Result<(), CacheError> {
        let dir = self.root.join(kind);
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let final_path = self.derived_path(kind, key);
        let tmp = dir.join(temp_name());
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(body)?;
            f.write_all(&Sha256::digest(body))?;
            fs::rename(&tmp, &final_path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err("write", &final_path)(e)
        })?;
        tracing::debug!(kind, key, "derived cache entry written");
        Ok(())
    }

    /// Delete the derived entry `<kind>/<key>` if it exists.
    pub fn remove_derived(&self, kind: &str, key: &str) -> Result<(), CacheError> {
        let path = self.derived_path(kind, key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove cache entry", &path)(e)),
        }
    }

    fn derived_path(&self, kind: &str, key: &str) -> PathBuf {
        self.root.join(kind).join(key)
    }

    /// A new temporary entry in the blob directory.
    pub fn temp(&self) -> Result<TempEntry, CacheError> {
        let dir = self.blob_dir();
        loop {
            let path = dir.join(temp_name());
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempEntry {
                        path,
                        dir: dir.clone(),
                        file: Some(file),
                        hasher: Sha256::new(),
                        len: 0,
                        sync: true,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err("create temporary file", &path)(e)),
            }
        }
    }

    /// Record `sha256` as the last verified InRelease of `suite` (atomic replace).
    pub fn set_release(&self, suite: &str, sha256: &str) -> Result<(), CacheError> {
        if self.release(suite)?.as_deref() == Some(sha256) {
            return Ok(());
        }
        let dir = self.pointer_dir();
        let final_path = dir.join(suite);
        let tmp = dir.join(temp_name());
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(sha256.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &final_path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err("write", &final_path)(e)
        })
    }

    /// The digest recorded by [`Cache::set_release`], if any.
    pub fn release(&self, suite: &str) -> Result<Option<String>, CacheError> {
        let path = self.pointer_dir().join(suite);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }
}

fn hash_reader(r: &mut impl Read) -> io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hex::encode(h.finalize())))
}

/// A blob being written. Dropped without [`TempEntry::commit`], it removes its file.
pub struct TempEntry {
    path: PathBuf,
    dir: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    len: u64,
    /// fsync the file and the directory on commit (everything but derived blobs).
    sync: bool,
}

impl TempEntry {
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), CacheError> {
        let file = self.file.as_mut().expect("temp entry written after commit");
        file.write_all(chunk)
            .map_err(io_err("write temporary file", &self.path))?;
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// SHA-256 of the bytes written so far.
    pub fn digest(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// fsync and rename to `sha256/<sha256>`; the caller has checked the digest.
    pub fn commit(mut self, sha256: &str) -> Result<PathBuf, CacheError> {
        let file = self.file.take().expect("temp entry committed twice");
        if self.sync {
            file.sync_all()
                .map_err(io_err("sync temporary file", &self.path))?;
        }
        drop(file);
        let dest = self.dir.join(sha256);
        fs::rename(&self.path, &dest).map_err(io_err("rename into", &dest))?;
        // Make the rename itself durable.
        if self.sync {
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
        self.path = PathBuf::new();
        tracing::debug!(sha256, "cache entry written");
        Ok(dest)
    }
}

impl Drop for TempEntry {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    #[test]
    fn put_get_read() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let s = c.put(b"hello").unwrap();
        assert_eq!(s, sha(b"hello"));
        assert_eq!(c.read(&s).unwrap().unwrap(), b"hello");
        assert_eq!(c.get(&s, Some(5)).unwrap().unwrap(), c.blob_path(&s));
        assert!(c.get(&sha(b"other"), None).unwrap().is_none());
    }

    #[test]
    fn corrupted_entry_is_deleted_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let s = c.put(b"hello").unwrap();
        fs::write(c.blob_path(&s), b"hellp").unwrap();
        assert!(c.read(&s).unwrap().is_none());
        assert!(!c.blob_path(&s).exists());
        let s = c.put(b"hello").unwrap();
        fs::write(c.blob_path(&s), b"hellp").unwrap();
        assert!(c.get(&s, None).unwrap().is_none());
        assert!(!c.blob_path(&s).exists());
    }

    #[test]
    fn dropped_temp_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let mut t = c.temp().unwrap();
        t.write(b"partial").unwrap();
        drop(t);
        assert_eq!(fs::read_dir(c.root().join("sha256")).unwrap().count(), 0);
    }

    #[test]
    fn put_leaves_an_identical_entry_alone_and_replaces_a_damaged_one() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let s = c.put(b"hello").unwrap();
        let before = fs::metadata(c.blob_path(&s)).unwrap().modified().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(c.put(b"hello").unwrap(), s);
        let after = fs::metadata(c.blob_path(&s)).unwrap().modified().unwrap();
        assert_eq!(before, after, "not rewritten");
        fs::write(c.blob_path(&s), b"hellp").unwrap();
        c.put(b"hello").unwrap();
        assert_eq!(c.read(&s).unwrap().unwrap(), b"hello");
        let d = c.put_derived_blob(b"layer").unwrap();
        assert_eq!(c.read(&d).unwrap().unwrap(), b"layer");
    }

    #[test]
    fn derived_entries_round_trip_and_damage_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        assert_eq!(c.derived("layer", "k").unwrap(), None);
        c.put_derived("layer", "k", b"body").unwrap();
        assert_eq!(c.derived("layer", "k").unwrap().unwrap(), b"body");
        let path = dir.path().join("layer/k");
        let mut bytes = fs::read(&path).unwrap();
        bytes[1] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(c.derived("layer", "k").unwrap(), None);
        assert!(!path.exists());
        fs::write(&path, b"short").unwrap();
        assert_eq!(c.derived("layer", "k").unwrap(), None);
    }

    #[test]
    fn release_pointer_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        assert_eq!(c.release("trixie").unwrap(), None);
        c.set_release("trixie", "ab").unwrap();
        c.set_release("trixie", "cd").unwrap();
        assert_eq!(c.release("trixie").unwrap().as_deref(), Some("cd"));
    }
}
