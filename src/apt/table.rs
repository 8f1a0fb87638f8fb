//! A compact name → paragraph table of one verified Packages index, so a warm build
//! finds the few packages it needs without reading, hashing or scanning the whole index
//! (tens of megabytes, tens of thousands of paragraphs) again.
//!
//! A table is built once from a decompressed index whose SHA-256 the signed Release
//! lists, and kept as a derived cache entry named after that digest
//! (`packages-table/<sha256>`, see [`super::cache`]). For each paragraph it holds what
//! selection needs (name, version, architecture, Provides, Priority), where the
//! paragraph lies in the index, and the paragraph's own SHA-256. Records are sorted by
//! name; a second list maps each provided name to the records providing it.
//!
//! When the table is read back from the cache, paragraphs are read from the cached
//! index at their offsets and checked against their digests before they are parsed, so
//! no byte of the index is used unverified; a mismatch deletes the damaged cache
//! entries and fails with a hint to run again.
//!
//! Layout (little-endian): a header (magic, index SHA-256 and size, counts), the
//! records, the provides list, then one UTF-8 string pool the records point into.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::cache::{Cache, CacheError};
use super::packages::{self, Entry, IndexError};
use super::relation;
use super::release::IndexFile;

/// Kind (directory) of the derived cache entries holding tables.
pub const CACHE_KIND: &str = "packages-table";

const MAGIC: &[u8; 8] = b"dlxpkt01";
/// magic, index sha256, index size, record count, provides count, string pool size.
const HEADER: usize = 8 + 32 + 8 + 4 + 4 + 4;
/// offset u64, length u32, five strings (offset u32, length u32), sha256.
const RECORD: usize = 8 + 4 + 5 * 8 + 32;
/// provided name (offset u32, length u32), record u32.
const PROVIDES: usize = 8 + 4;
/// Length of an absent optional string.
const NONE: u32 = u32::MAX;

/// The string fields of a record, in storage order.
#[derive(Clone, Copy)]
enum Field {
    Name = 0,
    Version = 1,
    Arch = 2,
    Provides = 3,
    Priority = 4,
}

/// Where the index text comes from.
enum Text {
    /// Held in memory, verified as a whole (a table just built).
    Memory(Arc<str>),
    /// The cached index file; each paragraph is checked against its digest on read.
    File {
        file: File,
        path: PathBuf,
        cache: Cache,
        sha256: String,
    },
}

/// The table of one suite's Packages index, and access to its paragraphs.
pub struct Table {
    bytes: Vec<u8>,
    records: usize,
    provides: usize,
    strings_at: usize,
    suite: Arc<str>,
    url: Arc<str>,
    text: Text,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("suite", &self.suite)
            .field("url", &self.url)
            .field("records", &self.records)
            .field("cached", &matches!(self.text, Text::File { .. }))
            .finish()
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Serialise `entries` (scanned from `text`, whose digest and size `plain` gives).
fn encode(
    text: &str,
    entries: &[Entry],
    plain: &IndexFile,
    url: &str,
) -> Result<Vec<u8>, IndexError> {
    let too_big = || IndexError::Parse {
        url: url.to_string(),
        reason: "index too large for a package table".to_string(),
    };
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // Stable: a name listed twice keeps index order.
    order.sort_by(|&a, &b| entries[a].name.cmp(&entries[b].name));
    let mut strings: Vec<u8> = Vec::new();
    let mut add = |s: Option<&str>| -> Result<[u32; 2], IndexError> {
        let Some(s) = s else {
            return Ok([0, NONE]);
        };
        let at = u32::try_from(strings.len()).map_err(|_| too_big())?;
        let len = u32::try_from(s.len()).map_err(|_| too_big())?;
        strings.extend_from_slice(s.as_bytes());
        Ok([at, len])
    };
    let mut records = Vec::with_capacity(entries.len() * RECORD);
    let mut provided: Vec<(String, u32)> = Vec::new();
    for (i, &e) in order.iter().enumerate() {
        let e = &entries[e];
        let range = e.text_range().ok_or_else(too_big)?;
        let paragraph = &text[range.clone()];
        records.extend_from_slice(&(range.start as u64).to_le_bytes());
        let len = u32::try_from(range.len()).map_err(|_| too_big())?;
        records.extend_from_slice(&len.to_le_bytes());
        for s in [
            Some(e.name.as_str()),
            Some(e.version.as_str()),
            Some(e.arch.as_str()),
            e.provides.as_deref(),
            e.priority.as_deref(),
        ] {
            for n in add(s)? {
                records.extend_from_slice(&n.to_le_bytes());
            }
        }
        records.extend_from_slice(&Sha256::digest(paragraph.as_bytes()));
        if let Some(text) = &e.provides {
            // A malformed Provides only loses that package's virtual names, as in
            // `Index::new`.
            if let Ok(rels) = relation::parse(text) {
                for dep in rels.into_iter().flatten() {
                    provided.push((dep.name, i as u32));
                }
            }
        }
    }
    provided.sort();
    provided.dedup();
    let mut provides = Vec::with_capacity(provided.len() * PROVIDES);
    for (name, record) in &provided {
        for n in add(Some(name))? {
            provides.extend_from_slice(&n.to_le_bytes());
        }
        provides.extend_from_slice(&record.to_le_bytes());
    }
    let mut out = Vec::with_capacity(HEADER + records.len() + provides.len() + strings.len());
    out.extend_from_slice(MAGIC);
    let digest = hex::decode(&plain.sha256).map_err(|_| too_big())?;
    out.extend_from_slice(&digest);
    out.extend_from_slice(&plain.size.to_le_bytes());
    for n in [entries.len(), provided.len(), strings.len()] {
        let n = u32::try_from(n).map_err(|_| too_big())?;
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(&records);
    out.extend_from_slice(&provides);
    out.extend_from_slice(&strings);
    Ok(out)
}

impl Table {
    /// Build the table of a verified, decompressed index held in memory. `plain` is
    /// its signed size and digest when the Release lists them (the table can then be
    /// cached under that digest), else a placeholder is recorded.
    pub fn build(
        text: Arc<str>,
        suite: &str,
        url: &str,
        plain: Option<&IndexFile>,
    ) -> Result<Table, IndexError> {
        let entries = packages::scan(text.clone(), suite, url)?;
        let placeholder = IndexFile {
            size: text.len() as u64,
            sha256: "0".repeat(64),
        };
        let bytes = encode(&text, &entries, plain.unwrap_or(&placeholder), url)?;
        Table::from_bytes(bytes, None, suite, url, Text::Memory(text)).ok_or_else(|| {
            IndexError::Parse {
                url: url.to_string(),
                reason: "internal error: the package table did not read back".to_string(),
            }
        })
    }

    /// The serialised table, to store with [`Cache::put_derived`].
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The cached table of the index `plain`, reading paragraphs from the cached index
    /// blob; `None` when either is missing or does not fit the other (a table that
    /// does not read back is deleted).
    pub fn open_cached(
        cache: &Cache,
        plain: &IndexFile,
        suite: &str,
        url: &str,
    ) -> Result<Option<Table>, CacheError> {
        let Some(bytes) = cache.derived(CACHE_KIND, &plain.sha256)? else {
            return Ok(None);
        };
        let path = cache.blob_path(&plain.sha256);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CacheError::Io {
                    op: "open cache entry",
                    path,
                    source,
                })
            }
        };
        // The blob was verified when it was written; its size is the cheap check that
        // it is still the file the table describes. Paragraphs are verified on read.
        if !file.metadata().is_ok_and(|m| m.len() == plain.size) {
            return Ok(None);
        }
        let text = Text::File {
            file,
            path,
            cache: cache.clone(),
            sha256: plain.sha256.clone(),
        };
        let table = Table::from_bytes(bytes, Some(plain), suite, url, text);
        if table.is_none() {
            tracing::warn!(sha256 = %plain.sha256, "unreadable package table removed");
            cache.remove_derived(CACHE_KIND, &plain.sha256)?;
        }
        Ok(table)
    }

    /// Check the layout (and, when given, that it describes `plain`); every string must
    /// lie in the pool on character boundaries.
    fn from_bytes(
        bytes: Vec<u8>,
        plain: Option<&IndexFile>,
        suite: &str,
        url: &str,
        text: Text,
    ) -> Option<Table> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return None;
        }
        if let Some(plain) = plain {
            if hex::encode(&bytes[8..40]) != plain.sha256 || u64_at(&bytes, 40) != plain.size {
                return None;
            }
        }
        let records = u32_at(&bytes, 48) as usize;
        let provides = u32_at(&bytes, 52) as usize;
        let strings = u32_at(&bytes, 56) as usize;
        let strings_at = HEADER + records * RECORD + provides * PROVIDES;
        if bytes.len() != strings_at + strings {
            return None;
        }
        // The entry's checksum already guards against damage; accessors stay total
        // (a string out of bounds reads as empty) rather than checking every record.
        let table = Table {
            bytes,
            records,
            provides,
            strings_at,
            suite: suite.into(),
            url: url.into(),
            text,
        };
        Some(table)
    }

    fn record_at(&self, r: usize) -> usize {
        HEADER + r * RECORD
    }

    /// The string whose (offset, length) pair is stored at byte `at`.
    fn string_at(&self, at: usize) -> Option<&str> {
        let off = u32_at(&self.bytes, at) as usize;
        let len = u32_at(&self.bytes, at + 4);
        if len == NONE {
            return None;
        }
        let start = self.strings_at.checked_add(off)?;
        let bytes = self.bytes.get(start..start.checked_add(len as usize)?)?;
        std::str::from_utf8(bytes).ok()
    }

    fn field(&self, r: usize, f: Field) -> Option<&str> {
        self.string_at(self.record_at(r) + 12 + f as usize * 8)
    }

    /// Number of paragraphs.
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub fn suite(&self) -> &str {
        &self.suite
    }

    /// `Package` of record `r`.
    pub fn name(&self, r: usize) -> &str {
        self.field(r, Field::Name).unwrap_or_default()
    }

    /// `Version` of record `r`.
    pub fn version(&self, r: usize) -> &str {
        self.field(r, Field::Version).unwrap_or_default()
    }

    /// `Architecture` of record `r`.
    pub fn arch(&self, r: usize) -> &str {
        self.field(r, Field::Arch).unwrap_or_default()
    }

    /// `Provides` of record `r`.
    pub fn provides_field(&self, r: usize) -> Option<&str> {
        self.field(r, Field::Provides)
    }

    /// `Priority` of record `r`.
    pub fn priority(&self, r: usize) -> Option<&str> {
        self.field(r, Field::Priority)
    }

    /// The records of package `name`, in index order.
    pub fn find(&self, name: &str) -> Range<usize> {
        let start = partition(self.records, |r| self.name(r) < name);
        let end = start + partition(self.records - start, |i| self.name(start + i) == name);
        start..end
    }

    /// The records whose Provides names `name`.
    pub fn providers(&self, name: &str) -> Vec<usize> {
        let base = HEADER + self.records * RECORD;
        let at = |p: usize| base + p * PROVIDES;
        let provided = |p: usize| self.string_at(at(p)).unwrap_or_default();
        let start = partition(self.provides, |p| provided(p) < name);
        (start..self.provides)
            .take_while(|&p| provided(p) == name)
            .map(|p| u32_at(&self.bytes, at(p) + 8) as usize)
            .collect()
    }

    /// Number of distinct package names.
    pub fn names(&self) -> usize {
        (0..self.records)
            .filter(|&r| r == 0 || self.name(r - 1) != self.name(r))
            .count()
    }

    /// The paragraph text of record `r`, verified against its digest when it is read
    /// from the cached index.
    pub fn paragraph(&self, r: usize) -> Result<String, IndexError> {
        let at = self.record_at(r);
        let offset = u64_at(&self.bytes, at);
        let len = u32_at(&self.bytes, at + 8) as usize;
        match &self.text {
            Text::Memory(text) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                text.get(start..start.saturating_add(len))
                    .map(str::to_string)
                    .ok_or_else(|| IndexError::Parse {
                        url: self.url.to_string(),
                        reason: format!("package table points outside the index at byte {offset}"),
                    })
            }
            Text::File {
                file,
                path,
                cache,
                sha256,
            } => {
                let mut buf = vec![0u8; len];
                let read = file.read_exact_at(&mut buf, offset);
                let want = &self.bytes[at + RECORD - 32..at + RECORD];
                if read.is_err() || Sha256::digest(&buf).as_slice() != want {
                    // Remove both, so the next run fetches and verifies the index anew.
                    tracing::warn!(path = %path.display(), offset, "cached index does not match its package table");
                    let _ = std::fs::remove_file(path);
                    let _ = cache.remove_derived(CACHE_KIND, sha256);
                    return Err(IndexError::Damaged {
                        path: path.clone(),
                        offset,
                    });
                }
                String::from_utf8(buf).map_err(|_| IndexError::Utf8 {
                    url: self.url.to_string(),
                })
            }
        }
    }

    /// The index URL (for messages).
    pub fn url(&self) -> &Arc<str> {
        &self.url
    }

    /// The suite name as shared by the entries.
    pub fn suite_arc(&self) -> &Arc<str> {
        &self.suite
    }
}

/// The first `i` in `0..n` for which `pred` is false (`pred` true then false).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Entries for the records of `table` named `name` (helper for the index).
pub fn entries(table: &Arc<Table>, name: &str) -> Vec<Entry> {
    table
        .find(name)
        .map(|r| Entry::from_table(table.clone(), r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apt::resolve::Index;
    use crate::apt::Package;

    const MAIN: &str = include_str!("testdata/trixie-Packages");
    const SECURITY: &str = include_str!("testdata/trixie-security-Packages");
    const SUITES: [(&str, &str); 2] = [("trixie", MAIN), ("trixie-security", SECURITY)];

    fn plain(text: &str) -> IndexFile {
        IndexFile {
            size: text.len() as u64,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
        }
    }

    /// The index as `Archive::open` built it before tables: every paragraph scanned.
    fn full() -> Index {
        let entries = SUITES
            .iter()
            .flat_map(|(suite, text)| packages::scan((*text).into(), suite, "u").unwrap());
        Index::new(entries, "test index".into())
    }

    fn in_memory() -> Index {
        let tables = SUITES
            .iter()
            .map(|(suite, text)| Table::build((*text).into(), suite, "u", Some(&plain(text))))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        Index::from_tables(tables, "test index".into())
    }

    /// Tables written to a cache beside the indexes, then read back from it.
    fn cached(cache: &Cache) -> Index {
        let tables = SUITES
            .iter()
            .map(|(suite, text)| {
                let p = plain(text);
                assert_eq!(cache.put(text.as_bytes()).unwrap(), p.sha256);
                let built = Table::build((*text).into(), suite, "u", Some(&p)).unwrap();
                cache
                    .put_derived(CACHE_KIND, &p.sha256, built.bytes())
                    .unwrap();
                Table::open_cached(cache, &p, suite, "u").unwrap().unwrap()
            })
            .collect();
        Index::from_tables(tables, "test index".into())
    }

    fn names() -> Vec<String> {
        let mut names: Vec<String> = SUITES
            .iter()
            .flat_map(|(_, text)| text.lines())
            .filter_map(|l| l.strip_prefix("Package: "))
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// What selection sees of `name`: every version with its full record.
    fn view(ix: &Index, name: &str) -> Vec<(String, String, Package)> {
        ix.versions(name)
            .iter()
            .map(|e| {
                (
                    e.version.clone(),
                    e.suite().to_string(),
                    e.package().unwrap(),
                )
            })
            .collect()
    }

    fn resolved(ix: &Index, roots: &[&str]) -> Result<Vec<String>, String> {
        ix.resolve(roots, "amd64")
            .map(|ps| {
                ps.iter()
                    .map(|p| format!("{}={} {}", p.name, p.version, p.suite))
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn lookup_equals_full_parse() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let full = full();
        let names = names();
        assert!(names.len() > 30, "the fixture has real variety");
        for ix in [in_memory(), cached(&cache)] {
            assert_eq!(ix.len(), full.len());
            let virtuals = ["awk", "debconf-2.0", "libssl3", "libgcc1", "perlapi-5.40.0"];
            for name in names
                .iter()
                .map(String::as_str)
                .chain(virtuals)
                .chain(["nope"])
            {
                assert_eq!(view(&ix, name), view(&full, name), "{name}");
            }
            let all: Vec<&str> = names.iter().map(String::as_str).collect();
            assert_eq!(ix.select(&all).unwrap(), full.select(&all).unwrap());
            for roots in [
                &["libssl3t64"][..],
                &["base-files", "gawk"],
                &["debconf", "openssl", "libstdc++6"],
                &["dpkg", "perl-base", "install-info"],
                &["no-such-package"],
            ] {
                assert_eq!(resolved(&ix, roots), resolved(&full, roots), "{roots:?}");
            }
        }
        // The security suite's newer libssl3t64 wins, read back from its own index.
        let ix = cached(&cache);
        let best = ix.candidate("libssl3t64").unwrap();
        assert_eq!(best.suite(), "trixie-security");
        assert_eq!(best.package().unwrap().name, "libssl3t64");
    }

    #[test]
    fn damaged_cached_index_is_refused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let ix = cached(&cache);
        let p = plain(MAIN);
        let blob = cache.blob_path(&p.sha256);
        let mut bytes = std::fs::read(&blob).unwrap();
        let at = MAIN.find("Package: tzdata\n").unwrap() + 20;
        bytes[at] ^= 1;
        std::fs::write(&blob, &bytes).unwrap();
        let e = ix.candidate("tzdata").unwrap().package().unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "the cached index {} does not match",
                blob.display()
            )),
            "{msg}"
        );
        assert!(
            msg.contains("hint: the damaged cache entry was removed"),
            "{msg}"
        );
        assert!(!blob.exists());
        assert_eq!(cache.derived(CACHE_KIND, &p.sha256).unwrap(), None);
        // Every paragraph is checked on its own: an intact one still reads.
        assert_eq!(
            ix.candidate("netbase").unwrap().package().unwrap().name,
            "netbase"
        );
    }

    #[test]
    fn a_table_is_used_only_for_its_own_index() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let p = plain(MAIN);
        assert!(Table::open_cached(&cache, &p, "trixie", "u")
            .unwrap()
            .is_none());
        cached(&cache);
        let mut other = p.clone();
        other.size += 1;
        assert!(Table::open_cached(&cache, &other, "trixie", "u")
            .unwrap()
            .is_none());
        // A table stored under the wrong digest is refused and removed.
        let s = plain(SECURITY);
        let body = cache.derived(CACHE_KIND, &p.sha256).unwrap().unwrap();
        cache.put_derived(CACHE_KIND, &s.sha256, &body).unwrap();
        assert!(Table::open_cached(&cache, &s, "trixie-security", "u")
            .unwrap()
            .is_none());
        assert_eq!(cache.derived(CACHE_KIND, &s.sha256).unwrap(), None);
    }
}
