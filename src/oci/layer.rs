//! Deterministic layer tars: a small tar writer that stores paths exactly as given
//! (`./etc/passwd`, `./tmp/`), GNU long-name records when needed, every header
//! field set explicitly, and gzip with a pinned backend (zlib-rs), level and no
//! timestamp. Same entries in, same bytes and digests out.

use std::collections::HashSet;
use std::io::{self, Write};

use sha2::{Digest, Sha256};

use super::OciError;

/// The gzip level every layer is compressed with. Changing it changes every digest.
pub const GZIP_LEVEL: u32 = 6;

/// Kind of a tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    Hardlink(String),
}

/// One entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path as stored, e.g. `./etc/passwd` or `./etc/` (directories end with `/`).
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub mtime: u64,
}

impl Entry {
    /// A root-owned directory; `path` gets a trailing `/` if it lacks one.
    pub fn dir(path: &str, mode: u32, mtime: u64) -> Entry {
        let path = if path.ends_with('/') {
            path.to_string()
        } else {
            format!("{path}/")
        };
        Entry::new(path, Kind::Dir, mode, mtime)
    }

    /// A root-owned regular file.
    pub fn file(path: &str, mode: u32, mtime: u64, data: Vec<u8>) -> Entry {
        Entry::new(path.to_string(), Kind::File(data), mode, mtime)
    }

    /// A root-owned symbolic link.
    pub fn symlink(path: &str, target: &str, mtime: u64) -> Entry {
        Entry::new(
            path.to_string(),
            Kind::Symlink(target.to_string()),
            0o777,
            mtime,
        )
    }

    fn new(path: String, kind: Kind, mode: u32, mtime: u64) -> Entry {
        Entry {
            path,
            kind,
            mode,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime,
        }
    }

    /// Set owner ids.
    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Set owner names.
    pub fn names(mut self, uname: &str, gname: &str) -> Entry {
        self.uname = uname.to_string();
        self.gname = gname.to_string();
        self
    }
}

/// A finished, compressed layer.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The gzip-compressed tar (the blob).
    pub blob: Vec<u8>,
    /// `sha256:<hex>` of `blob`.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// History text for this layer.
    pub created_by: String,
}

/// Writes entries in the order given into an uncompressed tar.
pub struct LayerWriter {
    tar: Vec<u8>,
    seen: HashSet<String>,
}

impl Default for LayerWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerWriter {
    pub fn new() -> LayerWriter {
        LayerWriter {
            tar: Vec::new(),
            seen: HashSet::new(),
        }
    }

    /// Whether an entry with this path (directories compared without the trailing
    /// `/`) has been written.
    pub fn contains(&self, path: &str) -> bool {
        self.seen.contains(path.trim_end_matches('/'))
    }

    /// Append `entry`. A second entry for the same path is an error, except for
    /// directories, where the first one wins and later ones are dropped.
    pub fn push(&mut self, entry: &Entry) -> Result<(), OciError> {
        let key = entry.path.trim_end_matches('/').to_string();
        if !self.seen.insert(key) {
            if entry.kind == Kind::Dir {
                return Ok(());
            }
            return Err(OciError::DuplicateEntry {
                path: entry.path.clone(),
            });
        }
        let bad = |what: &str| OciError::TarEntry {
            path: entry.path.clone(),
            reason: what.to_string(),
        };
        let (type_byte, size, link) = match &entry.kind {
            Kind::Dir => (tar::EntryType::Directory, 0, None),
            Kind::File(data) => (tar::EntryType::Regular, data.len() as u64, None),
            Kind::Symlink(target) => (tar::EntryType::Symlink, 0, Some(target.as_str())),
            Kind::Hardlink(target) => (tar::EntryType::Link, 0, Some(target.as_str())),
        };
        if entry.path.len() > 100 {
            self.long_record(b'L', entry.path.as_bytes());
        }
        if let Some(link) = link {
            if link.len() > 100 {
                self.long_record(b'K', link.as_bytes());
            }
        }
        let mut header = tar::Header::new_gnu();
        {
            let gnu = header.as_gnu_mut().ok_or_else(|| bad("not a gnu header"))?;
            copy_truncated(&mut gnu.name, entry.path.as_bytes());
            if let Some(link) = link {
                copy_truncated(&mut gnu.linkname, link.as_bytes());
            }
        }
        header.set_entry_type(type_byte);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_size(size);
        header.set_mtime(entry.mtime);
        header
            .set_username(&entry.uname)
            .map_err(|_| bad("user name too long"))?;
        header
            .set_groupname(&entry.gname)
            .map_err(|_| bad("group name too long"))?;
        header.set_device_major(0).map_err(|_| bad("device"))?;
        header.set_device_minor(0).map_err(|_| bad("device"))?;
        header.set_cksum();
        self.tar.extend_from_slice(header.as_bytes());
        if let Kind::File(data) = &entry.kind {
            self.tar.extend_from_slice(data);
            self.pad();
        }
        Ok(())
    }

    /// A GNU `././@LongLink` record carrying a name or link target over 100 bytes.
    fn long_record(&mut self, kind: u8, value: &[u8]) {
        let mut data = value.to_vec();
        data.push(0);
        let mut header = tar::Header::new_gnu();
        if let Some(gnu) = header.as_gnu_mut() {
            copy_truncated(&mut gnu.name, b"././@LongLink");
        }
        header.set_entry_type(tar::EntryType::new(kind));
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.tar.extend_from_slice(header.as_bytes());
        self.tar.extend_from_slice(&data);
        self.pad();
    }

    fn pad(&mut self) {
        let rem = self.tar.len() % 512;
        if rem != 0 {
            self.tar.resize(self.tar.len() + 512 - rem, 0);
        }
    }

    /// Close the tar (two zero blocks), compress it and compute both digests.
    pub fn finish(self, created_by: &str) -> Result<Layer, OciError> {
        let (tar, diff_id) = self.into_tar();
        compress(&tar, diff_id, created_by)
    }

    /// Close the tar and return it uncompressed with its `sha256:` digest (the
    /// diff_id), for a caller that may hold its compressed form already; [`compress`]
    /// finishes the layer as [`LayerWriter::finish`] would.
    pub fn into_tar(mut self) -> (Vec<u8>, String) {
        self.tar.resize(self.tar.len() + 1024, 0);
        let diff_id = sha256_digest(&self.tar);
        (self.tar, diff_id)
    }
}

/// The layer of a closed tar whose digest is `diff_id` (see [`LayerWriter::into_tar`]).
pub fn compress(tar: &[u8], diff_id: String, created_by: &str) -> Result<Layer, OciError> {
    let blob = gzip(tar).map_err(OciError::Compress)?;
    let digest = sha256_digest(&blob);
    Ok(Layer {
        blob,
        digest,
        diff_id,
        created_by: created_by.to_string(),
    })
}

fn copy_truncated(slot: &mut [u8], value: &[u8]) {
    let n = value.len().min(slot.len());
    slot[..n].copy_from_slice(&value[..n]);
}

/// gzip with the pinned level, header mtime 0, no file name, OS byte "unknown".
pub fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(
            Vec::with_capacity(data.len() / 2),
            flate2::Compression::new(GZIP_LEVEL),
        );
    encoder.write_all(data)?;
    encoder.finish()
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries_of(layer: &Layer) -> Vec<(String, u32, u64, u64, u64)> {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&layer.blob[..])
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(sha256_digest(&raw), layer.diff_id);
        let mut archive = tar::Archive::new(&raw[..]);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn paths_modes_owners_and_times_are_kept() {
        let mut w = LayerWriter::new();
        w.push(&Entry::dir("./tmp", 0o1777, 0)).unwrap();
        w.push(&Entry::dir("./home/nonroot/", 0o700, 0).owner(65532, 65532))
            .unwrap();
        w.push(&Entry::file(
            "./etc/nsswitch.conf",
            0o644,
            1514722362,
            b"x\n".to_vec(),
        ))
        .unwrap();
        let long = format!("./usr/share/{}", "a".repeat(150));
        w.push(&Entry::symlink(&long, &format!("/{}", "b".repeat(120)), 0))
            .unwrap();
        let layer = w.finish("test").unwrap();
        let entries = entries_of(&layer);
        assert_eq!(entries[0], ("./tmp/".into(), 0o1777, 0, 0, 0));
        assert_eq!(
            entries[1],
            ("./home/nonroot/".into(), 0o700, 65532, 65532, 0)
        );
        assert_eq!(
            entries[2],
            ("./etc/nsswitch.conf".into(), 0o644, 0, 0, 1514722362)
        );
        assert_eq!(entries[3].0, long);
    }

    #[test]
    fn same_entries_give_same_digests() {
        let build = || {
            let mut w = LayerWriter::new();
            w.push(&Entry::file("./a", 0o644, 0, vec![7; 5000]))
                .unwrap();
            w.finish("a").unwrap()
        };
        let (a, b) = (build(), build());
        assert_eq!(a.blob, b.blob);
        assert_eq!(a.digest, b.digest);
        // gzip header: magic, deflate, no flags, mtime 0, OS 255
        assert_eq!(&a.blob[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    }

    #[test]
    fn duplicate_file_is_refused_duplicate_dir_dropped() {
        let mut w = LayerWriter::new();
        w.push(&Entry::dir("./etc/", 0o755, 0)).unwrap();
        w.push(&Entry::dir("./etc", 0o700, 0)).unwrap();
        w.push(&Entry::file("./etc/x", 0o644, 0, vec![])).unwrap();
        assert!(w.push(&Entry::file("./etc/x", 0o644, 0, vec![])).is_err());
        let entries = entries_of(&w.finish("t").unwrap());
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].1, 0o755);
    }
}
