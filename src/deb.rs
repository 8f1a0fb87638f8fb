//! Reading Debian binary packages (`.deb`): the `ar` container, the control
//! members (`control`, `md5sums`) with their tar metadata, and a streaming reader
//! over the `data.tar.{xz,zst,gz}` (or plain) payload.
//!
//! The whole file is read into memory once; members are slices of it. Nothing is
//! written to disk and no maintainer script is ever looked at beyond its name.

use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

/// Errors while reading a .deb; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("failed to read package {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("package {path} is not a .deb (bad ar archive: {reason})")]
    Format { path: PathBuf, reason: String },
    #[error("package {path} has no {member} member")]
    MissingMember { path: PathBuf, member: &'static str },
    #[error("package {path} uses unsupported compression for {member}")]
    Compression { path: PathBuf, member: String },
    #[error("failed to read {member} of package {path}")]
    Member {
        path: PathBuf,
        member: String,
        #[source]
        source: io::Error,
    },
    #[error("control file of package {path} is not valid UTF-8")]
    ControlEncoding { path: PathBuf },
}

/// Ownership, mode and time of a member of `control.tar`, kept so the files written
/// to `/var/lib/dpkg/status.d` carry the package's own metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMeta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

/// A control-tar member: its bytes and metadata.
#[derive(Debug, Clone)]
pub struct ControlMember {
    pub data: Vec<u8>,
    pub meta: MemberMeta,
}

/// A parsed .deb held in memory.
#[derive(Debug)]
pub struct Deb {
    path: PathBuf,
    bytes: Vec<u8>,
    control: ControlMember,
    md5sums: Option<ControlMember>,
    fields: Vec<(String, String)>,
    data_name: String,
    data_range: (usize, usize),
}

impl Deb {
    /// Read and parse the package at `path`.
    pub fn open(path: &Path) -> Result<Deb, DebError> {
        let bytes = std::fs::read(path).map_err(|source| DebError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Deb::from_bytes(path, bytes)
    }

    /// Parse a package already in memory; `path` is used in messages only.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Deb, DebError> {
        let members = ar_members(path, &bytes)?;
        let find = |prefix: &str| members.iter().find(|m| m.name.starts_with(prefix));
        let control_m = find("control.tar").ok_or_else(|| DebError::MissingMember {
            path: path.to_path_buf(),
            member: "control.tar",
        })?;
        let data_m = find("data.tar").ok_or_else(|| DebError::MissingMember {
            path: path.to_path_buf(),
            member: "data.tar",
        })?;

        let control_bytes = &bytes[control_m.start..control_m.end];
        let reader = decompressor(path, &control_m.name, control_bytes)?;
        let (control, md5sums) = read_control_tar(path, &control_m.name, reader)?;
        let control = control.ok_or_else(|| DebError::MissingMember {
            path: path.to_path_buf(),
            member: "control",
        })?;
        let text = std::str::from_utf8(&control.data).map_err(|_| DebError::ControlEncoding {
            path: path.to_path_buf(),
        })?;
        let fields = parse_fields(text);
        let data_name = data_m.name.clone();
        let data_range = (data_m.start, data_m.end);
        Ok(Deb {
            path: path.to_path_buf(),
            bytes,
            control,
            md5sums,
            fields,
            data_name,
            data_range,
        })
    }

    /// Where the package was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `control` member, verbatim (what `dpkg-deb --field` prints).
    pub fn control(&self) -> &ControlMember {
        &self.control
    }

    /// The `md5sums` member, verbatim, when the package has one.
    pub fn md5sums(&self) -> Option<&ControlMember> {
        self.md5sums.as_ref()
    }

    /// The value of control field `name` (case-insensitive), continuation lines joined
    /// with `\n`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Package:`; empty when absent (never for a well-formed package).
    pub fn package(&self) -> &str {
        self.field("Package").unwrap_or("")
    }

    /// `Version:`; empty when absent.
    pub fn version(&self) -> &str {
        self.field("Version").unwrap_or("")
    }

    /// `Architecture:`; empty when absent.
    pub fn architecture(&self) -> &str {
        self.field("Architecture").unwrap_or("")
    }

    /// A tar reader over the decompressed data member.
    pub fn data(&self) -> Result<tar::Archive<Box<dyn Read + '_>>, DebError> {
        let (start, end) = self.data_range;
        let reader = decompressor(&self.path, &self.data_name, &self.bytes[start..end])?;
        Ok(tar::Archive::new(reader))
    }

    /// `sha256` hex digest of the whole .deb file.
    pub fn sha256(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&self.bytes))
    }

    /// Name of the data member (`data.tar.xz`, ...), for messages.
    pub fn data_member_name(&self) -> &str {
        &self.data_name
    }
}

struct ArMember {
    name: String,
    start: usize,
    end: usize,
}

/// Split an `ar` archive into its members (common/GNU format; names end with `/`).
fn ar_members(path: &Path, bytes: &[u8]) -> Result<Vec<ArMember>, DebError> {
    let bad = |reason: &str| DebError::Format {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if !bytes.starts_with(b"!<arch>\n") {
        return Err(bad("missing !<arch> magic"));
    }
    let mut at = 8;
    let mut members = Vec::new();
    while at < bytes.len() {
        if bytes.len() - at < 60 {
            return Err(bad("truncated member header"));
        }
        let header = &bytes[at..at + 60];
        if &header[58..60] != b"`\n" {
            return Err(bad("bad member header terminator"));
        }
        let name = String::from_utf8_lossy(&header[0..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        let size: usize = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| bad("bad member size"))?;
        let start = at + 60;
        let end = start
            .checked_add(size)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| bad("member runs past the end of the file"))?;
        members.push(ArMember { name, start, end });
        at = end + (size % 2);
    }
    Ok(members)
}

/// A decompressing reader chosen by the member name's suffix.
fn decompressor<'a>(
    path: &Path,
    member: &str,
    bytes: &'a [u8],
) -> Result<Box<dyn Read + 'a>, DebError> {
    let cursor = Cursor::new(bytes);
    let reader: Box<dyn Read + 'a> = if member.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new(cursor))
    } else if member.ends_with(".zst") {
        Box::new(
            zstd::stream::read::Decoder::new(cursor).map_err(|source| DebError::Member {
                path: path.to_path_buf(),
                member: member.to_string(),
                source,
            })?,
        )
    } else if member.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(cursor))
    } else if member.ends_with(".tar") {
        Box::new(cursor)
    } else {
        return Err(DebError::Compression {
            path: path.to_path_buf(),
            member: member.to_string(),
        });
    };
    Ok(reader)
}

type ControlPair = (Option<ControlMember>, Option<ControlMember>);

fn read_control_tar(path: &Path, member: &str, reader: impl Read) -> Result<ControlPair, DebError> {
    let err = |source: io::Error| DebError::Member {
        path: path.to_path_buf(),
        member: member.to_string(),
        source,
    };
    let mut archive = tar::Archive::new(reader);
    let mut control = None;
    let mut md5sums = None;
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = name.trim_start_matches("./");
        let slot = match name {
            "control" => &mut control,
            "md5sums" => &mut md5sums,
            _ => continue,
        };
        let header = entry.header();
        let meta = MemberMeta {
            mode: header.mode().map_err(err)?,
            uid: header.uid().map_err(err)?,
            gid: header.gid().map_err(err)?,
            mtime: header.mtime().map_err(err)?,
        };
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(err)?;
        *slot = Some(ControlMember { data, meta });
    }
    Ok((control, md5sums))
}

/// Parse one deb822 paragraph into (field, value) pairs, in order.
pub fn parse_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim_start());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"!<arch>\n".to_vec();
        for (name, data) in members {
            let header = format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                format!("{name}/"),
                0,
                0,
                0,
                100644,
                data.len()
            );
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    fn tar_of(files: &[(&str, &[u8], u64)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data, mtime) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(*mtime);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_control_md5sums_and_data() {
        let control =
            b"Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nDescription: hi\n there\n";
        let control_tar = gz(&tar_of(&[
            ("./control", control, 1234),
            ("./md5sums", b"abc  usr/bin/hello\n", 5678),
            ("./postinst", b"#!/bin/sh\n", 1),
        ]));
        let data_tar = xz(&tar_of(&[("./usr/bin/hello", b"ELF", 9)]));
        let bytes = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", &control_tar),
            ("data.tar.xz", &data_tar),
        ]);
        let deb = Deb::from_bytes(Path::new("hello.deb"), bytes).unwrap();
        assert_eq!(deb.package(), "hello");
        assert_eq!(deb.version(), "1.0-1");
        assert_eq!(deb.field("description"), Some("hi\nthere"));
        assert_eq!(deb.control().data, control);
        assert_eq!(deb.control().meta.mtime, 1234);
        assert_eq!(deb.md5sums().unwrap().meta.mtime, 5678);
        let mut archive = deb.data().unwrap();
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect();
        assert_eq!(names, ["usr/bin/hello"]);
    }

    #[test]
    fn rejects_non_ar_input() {
        let err = Deb::from_bytes(Path::new("x.deb"), b"PK\x03\x04".to_vec()).unwrap_err();
        assert!(err.to_string().contains("x.deb"), "{err}");
    }

    #[test]
    fn missing_data_member_is_named() {
        let bytes = ar(&[("debian-binary", b"2.0\n")]);
        let err = Deb::from_bytes(Path::new("y.deb"), bytes).unwrap_err();
        assert_eq!(err.to_string(), "package y.deb has no control.tar member");
    }
}
