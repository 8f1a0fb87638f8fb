//! `main/binary-<arch>/Packages` indexes: choose the compressed form the signed Release
//! lists (xz, then gz, then plain), name it by hash when the suite supports
//! Acquire-By-Hash, decompress it, and parse its paragraphs into [`Package`] records that
//! keep the whole paragraph.
//!
//! A full index holds tens of thousands of paragraphs, of which a build needs a handful:
//! [`scan`] records for each paragraph only what selection needs (name, version, arch,
//! Provides, Priority) and where its text lies; [`Entry::package`] parses the whole
//! paragraph into a [`Package`] when it is chosen.

use std::io::Read;
use std::ops::Range;
use std::sync::Arc;

use super::deb822::{self, Paragraph};
use super::release::{IndexFile, Release};
use super::table::Table;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the Release of {suite} lists no main/binary-{arch}/Packages index\nhint: check that {arch} is a debian architecture name (amd64, arm64, armhf, ...) built for this release")]
    Missing { suite: String, arch: String },
    #[error("cannot decompress {url}: {source}")]
    Decompress {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {url}: {reason}")]
    Parse { url: String, reason: String },
    #[error("{url} is not UTF-8 text")]
    Utf8 { url: String },
    #[error("decompressed {url} does not match the signed Release: expected sha256 {expected}, got {actual}")]
    PlainDigest {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("the cached index {path} does not match its package table at byte {offset}\nhint: the damaged cache entry was removed; run the build again to fetch the index anew")]
    Damaged {
        path: std::path::PathBuf,
        offset: u64,
    },
}

/// One binary package from a Packages index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// `Architecture` as listed: the build arch or `all`.
    pub arch: String,
    /// Path of the .deb relative to the archive root (`pool/...`).
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// The suite whose index listed it (e.g. `trixie-security`); it decides which archive
    /// root (main or security) `filename` is relative to.
    pub suite: String,
    /// The whole index paragraph, fields in order.
    pub paragraph: Paragraph,
}

impl Package {
    /// Build a record from an index paragraph; `url` names the index in errors.
    pub fn from_paragraph(
        paragraph: Paragraph,
        suite: &str,
        url: &str,
    ) -> Result<Package, IndexError> {
        let field = |name: &str| {
            paragraph
                .get(name)
                .map(str::to_string)
                .ok_or_else(|| IndexError::Parse {
                    url: url.to_string(),
                    reason: format!(
                        "paragraph of {} has no {name} field",
                        paragraph.get("Package").unwrap_or("an unnamed package")
                    ),
                })
        };
        let name = field("Package")?;
        let size_text = field("Size")?;
        let size = size_text.parse().map_err(|_| IndexError::Parse {
            url: url.to_string(),
            reason: format!("package {name} has a bad Size {size_text:?}"),
        })?;
        let sha256 = field("SHA256")?.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(IndexError::Parse {
                url: url.to_string(),
                reason: format!("package {name} has a bad SHA256 {sha256:?}"),
            });
        }
        Ok(Package {
            version: field("Version")?,
            arch: field("Architecture")?,
            filename: field("Filename")?,
            name,
            size,
            sha256,
            suite: suite.to_string(),
            paragraph,
        })
    }
}

/// Compression of an index file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Xz,
    Gz,
    None,
}

/// The index to fetch for one suite and arch: path under `dists/<suite>/`, its
/// by-hash path when the suite supports it, size, digest, compression.
#[derive(Debug, Clone)]
pub struct IndexChoice {
    pub path: String,
    pub by_hash_path: Option<String>,
    pub file: IndexFile,
    pub compression: Compression,
    /// The signed size and digest of the decompressed index, when the Release lists
    /// it (Debian's do): lets a warm cache skip decompression, and checks it.
    pub plain: Option<IndexFile>,
}

/// Pick the Packages index for `arch` from a verified Release.
pub fn choose(release: &Release, suite: &str, arch: &str) -> Result<IndexChoice, IndexError> {
    let dir = format!("main/binary-{arch}");
    for (name, compression) in [
        ("Packages.xz", Compression::Xz),
        ("Packages.gz", Compression::Gz),
        ("Packages", Compression::None),
    ] {
        let path = format!("{dir}/{name}");
        if let Some(file) = release.sha256.get(&path) {
            return Ok(IndexChoice {
                plain: release.sha256.get(&format!("{dir}/Packages")).cloned(),
                by_hash_path: release
                    .acquire_by_hash
                    .then(|| format!("{dir}/by-hash/SHA256/{}", file.sha256)),
                path,
                file: file.clone(),
                compression,
            });
        }
    }
    Err(IndexError::Missing {
        suite: suite.to_string(),
        arch: arch.to_string(),
    })
}

/// Decompress index bytes.
pub fn decompress(bytes: &[u8], compression: Compression, url: &str) -> Result<String, IndexError> {
    let mut out = Vec::new();
    let res = match compression {
        Compression::Xz => liblzma::read::XzDecoder::new(bytes).read_to_end(&mut out),
        Compression::Gz => flate2::read::GzDecoder::new(bytes).read_to_end(&mut out),
        Compression::None => {
            out.extend_from_slice(bytes);
            Ok(out.len())
        }
    };
    res.map_err(|source| IndexError::Decompress {
        url: url.to_string(),
        source,
    })?;
    String::from_utf8(out).map_err(|e| IndexError::Parse {
        url: url.to_string(),
        reason: format!("not utf-8 at byte {}", e.utf8_error().valid_up_to()),
    })
}

/// Parse an uncompressed Packages index into full records.
pub fn parse(text: &str, suite: &str, url: &str) -> Result<Vec<Package>, IndexError> {
    deb822::parse(text, url)
        .map_err(|e| IndexError::Parse {
            url: url.to_string(),
            reason: e.to_string(),
        })?
        .into_iter()
        .map(|p| Package::from_paragraph(p, suite, url))
        .collect()
}

/// A package as an index lists it, with the fields selection needs; the full record is
/// parsed from the paragraph text on demand.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub provides: Option<String>,
    pub priority: Option<String>,
    suite: Arc<str>,
    url: Arc<str>,
    source: Source,
}

/// Where an entry's paragraph text is.
#[derive(Debug, Clone)]
enum Source {
    /// `text[range]` of an index held in memory.
    Text { text: Arc<str>, range: Range<usize> },
    /// Record `record` of a package table (read, and verified, on demand).
    Table { table: Arc<Table>, record: usize },
}

impl Entry {
    /// The suite whose index listed it.
    pub fn suite(&self) -> &str {
        &self.suite
    }

    /// The full record.
    pub fn package(&self) -> Result<Package, IndexError> {
        let owned;
        let text = match &self.source {
            Source::Text { text, range } => &text[range.clone()],
            Source::Table { table, record } => {
                owned = table.paragraph(*record)?;
                owned.as_str()
            }
        };
        let para = deb822::parse(text, &self.url)
            .map_err(|e| IndexError::Parse {
                url: self.url.to_string(),
                reason: e.to_string(),
            })?
            .into_iter()
            .next()
            .unwrap_or_default();
        Package::from_paragraph(para, &self.suite, &self.url)
    }

    /// An entry standing for an already parsed record.
    pub fn from_package(p: &Package) -> Entry {
        let text: Arc<str> = p.paragraph.to_string().into();
        Entry {
            name: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch.clone(),
            provides: p.paragraph.get("Provides").map(str::to_string),
            priority: p.paragraph.get("Priority").map(str::to_string),
            suite: p.suite.as_str().into(),
            url: "a parsed package record".into(),
            source: Source::Text {
                range: 0..text.len(),
                text,
            },
        }
    }

    /// The entry for record `record` of `table`.
    pub fn from_table(table: Arc<Table>, record: usize) -> Entry {
        Entry {
            name: table.name(record).to_string(),
            version: table.version(record).to_string(),
            arch: table.arch(record).to_string(),
            provides: table.provides_field(record).map(str::to_string),
            priority: table.priority(record).map(str::to_string),
            suite: table.suite_arc().clone(),
            url: table.url().clone(),
            source: Source::Table { table, record },
        }
    }

    /// Where the paragraph lies in the scanned text (entries from [`scan`]).
    pub(super) fn text_range(&self) -> Option<Range<usize>> {
        match &self.source {
            Source::Text { range, .. } => Some(range.clone()),
            Source::Table { .. } => None,
        }
    }

    /// Whether this is record `record` of `table`.
    pub(super) fn is_record(&self, table: &Arc<Table>, record: usize) -> bool {
        matches!(&self.source, Source::Table { table: t, record: r } if Arc::ptr_eq(t, table) && *r == record)
    }
}

/// Split an uncompressed index into [`Entry`]s. Package, Version and Architecture are
/// required here; the other fields are checked when a record is built.
pub fn scan(text: Arc<str>, suite: &str, url: &str) -> Result<Vec<Entry>, IndexError> {
    let (suite, url_arc): (Arc<str>, Arc<str>) = (suite.into(), url.into());
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut fields: [Option<&str>; 5] = [None; 5];
    const NAMES: [&str; 5] = [
        "Package:",
        "Version:",
        "Architecture:",
        "Provides:",
        "Priority:",
    ];
    let mut finish = |start: usize, end: usize, fields: &mut [Option<&str>; 5]| {
        let taken = std::mem::take(fields);
        let need = |i: usize| {
            taken[i]
                .map(str::to_string)
                .ok_or_else(|| IndexError::Parse {
                    url: url.to_string(),
                    reason: format!(
                        "paragraph at byte {start} ({}) has no {} field",
                        taken[0].unwrap_or("unnamed"),
                        NAMES[i].trim_end_matches(':')
                    ),
                })
        };
        out.push(Entry {
            name: need(0)?,
            version: need(1)?,
            arch: need(2)?,
            provides: taken[3].map(str::to_string),
            priority: taken[4].map(str::to_string),
            suite: suite.clone(),
            url: url_arc.clone(),
            source: Source::Text {
                text: text.clone(),
                range: start..end,
            },
        });
        Ok::<(), IndexError>(())
    };
    let mut pos = 0;
    let len = text.len();
    while pos < len {
        let end = memchr::memchr(b'\n', &text.as_bytes()[pos..]).map_or(len, |i| pos + i);
        let line = &text.as_bytes()[pos..end];
        // Most lines are continuation lines: decide on the first byte, cheaply.
        let blank = match line.first() {
            None => true,
            Some(b' ' | b'\t') => line.iter().all(u8::is_ascii_whitespace),
            Some(b'\r') => line.len() == 1,
            Some(_) => false,
        };
        if blank {
            if let Some(s) = start.take() {
                finish(s, pos, &mut fields)?;
            }
        } else {
            start.get_or_insert(pos);
            let i = match line[0].to_ascii_lowercase() {
                b'p' if line.len() > 3 && line[3].eq_ignore_ascii_case(&b'k') => Some(0),
                b'v' => Some(1),
                b'a' => Some(2),
                b'p' if line.len() > 3 && line[3].eq_ignore_ascii_case(&b'v') => Some(3),
                b'p' if line.len() > 3 && line[3].eq_ignore_ascii_case(&b'o') => Some(4),
                _ => None,
            };
            if let Some(i) = i {
                let name = NAMES[i].as_bytes();
                if line.len() > name.len() && line[..name.len()].eq_ignore_ascii_case(name) {
                    fields[i] = Some(text[pos + name.len()..end].trim());
                }
            }
        }
        pos = end + 1;
    }
    if let Some(s) = start {
        finish(s, len, &mut fields)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const INDEX: &str = r"Package: base-files
Version: 13.8+deb13u1
Architecture: amd64
Pre-Depends: awk
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.
Filename: pool/main/b/base-files/base-files_13.8+deb13u1_amd64.deb
Size: 73036
SHA256: 2C3E6A9E0F2F1C0A1C3E6A9E0F2F1C0A1C3E6A9E0F2F1C0A1C3E6A9E0F2F1C0A

Package: tzdata
Version: 2025b-4+deb13u1
Architecture: all
Filename: pool/main/t/tzdata/tzdata_2025b-4+deb13u1_all.deb
Size: 260000
SHA256: 1111111111111111111111111111111111111111111111111111111111111111
";

    #[test]
    fn parses_records_keeping_paragraphs() {
        let pkgs = parse(INDEX, "trixie", "u").unwrap();
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[0].name, "base-files");
        assert_eq!(pkgs[0].size, 73036);
        assert_eq!(pkgs[0].sha256, pkgs[0].sha256.to_ascii_lowercase());
        assert_eq!(pkgs[0].paragraph.get("Pre-Depends"), Some("awk"));
        assert!(pkgs[0].paragraph.get("Description").unwrap().contains('\n'));
        assert_eq!(pkgs[1].arch, "all");
        assert_eq!(pkgs[1].suite, "trixie");
    }

    #[test]
    fn scan_matches_full_parse() {
        let entries = scan(INDEX.into(), "trixie", "u").unwrap();
        let full = parse(INDEX, "trixie", "u").unwrap();
        assert_eq!(entries.len(), 2);
        for (e, p) in entries.iter().zip(&full) {
            assert_eq!(
                (&e.name, &e.version, &e.arch),
                (&p.name, &p.version, &p.arch)
            );
            assert_eq!(&e.package().unwrap(), p);
            assert_eq!(&Entry::from_package(p).package().unwrap(), p);
        }
        let bad = INDEX.replace("Version: 2025b-4+deb13u1\n", "");
        let e = scan(bad.into(), "trixie", "u").unwrap_err();
        assert!(
            e.to_string().contains("(tzdata) has no Version field"),
            "{e}"
        );
    }

    #[test]
    fn missing_fields_are_errors_naming_the_package() {
        let bad = INDEX.replace("Size: 73036\n", "");
        let e = parse(&bad, "trixie", "http://m/Packages.xz").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot parse http://m/Packages.xz: paragraph of base-files has no Size field"
        );
    }

    #[test]
    fn decompresses_xz_and_gz() {
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(INDEX.as_bytes()).unwrap();
        let xz = xz.finish().unwrap();
        assert_eq!(decompress(&xz, Compression::Xz, "u").unwrap(), INDEX);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(INDEX.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decompress(&gz, Compression::Gz, "u").unwrap(), INDEX);
        assert!(decompress(&gz, Compression::Xz, "u").is_err());
    }

    #[test]
    fn chooses_xz_then_gz_then_plain_by_hash() {
        let text = concat!(
            "Codename: trixie\nAcquire-By-Hash: yes\nSHA256:\n",
            " 1111111111111111111111111111111111111111111111111111111111111111 10 main/binary-amd64/Packages\n",
            " 2222222222222222222222222222222222222222222222222222222222222222 5 main/binary-amd64/Packages.gz\n",
        );
        let r = Release::parse(text, "u").unwrap();
        let c = choose(&r, "trixie", "amd64").unwrap();
        assert_eq!(c.compression, Compression::Gz);
        assert_eq!(
            c.by_hash_path.as_deref(),
            Some("main/binary-amd64/by-hash/SHA256/2222222222222222222222222222222222222222222222222222222222222222")
        );
        let e = choose(&r, "trixie", "arm64").unwrap_err();
        assert!(e.to_string().contains("main/binary-arm64/Packages"), "{e}");
    }
}
