//! `/etc/ld.so.cache` for the image (the python3 tier ships one so that
//! `ldconfig -p`, and through it `ctypes.util.find_library`, see the libraries),
//! written in glibc's current cache format without running ldconfig, so any host
//! builds it for amd64 or arm64.
//!
//! Format: header `glibc-ld.so.cache1.1`, entry count, string table size, an
//! endianness byte, no extensions; 24-byte entries (flags, key and value string
//! offsets from the start of the file, unused os version and hwcap); then the
//! strings. Entries are sorted in descending `_dl_cache_libcmp` order (digit runs
//! compare as numbers), the order ld.so's binary search expects.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use super::tree::{triplet, Tree};

const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// `FLAG_ELF_LIBC6`
const ELF_LIBC6: i32 = 0x0003;

/// Errors while writing the cache.
#[derive(Debug, thiserror::Error)]
pub enum LdCacheError {
    #[error("ld.so.cache is not supported for architecture {arch}")]
    Arch { arch: String },
}

/// Cache flags for a Debian architecture (`FLAG_ELF_LIBC6` | the arch's ABI flag).
fn flags(arch: &str) -> Option<i32> {
    Some(
        ELF_LIBC6
            | match arch {
                "amd64" => 0x0300,
                "arm64" => 0x0a00,
                _ => return None,
            },
    )
}

/// Compare library names the way glibc's cache does: runs of digits as numbers,
/// a digit sorts after a non-digit.
pub fn libcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() {
        let (ca, cb) = (a[i], b.get(j).copied().unwrap_or(0));
        if ca.is_ascii_digit() {
            if !cb.is_ascii_digit() {
                return Ordering::Greater;
            }
            let run = |s: &[u8], mut k: usize| {
                let mut v: u64 = 0;
                while k < s.len() && s[k].is_ascii_digit() {
                    v = v.saturating_mul(10).saturating_add(u64::from(s[k] - b'0'));
                    k += 1;
                }
                (v, k)
            };
            let ((va, ni), (vb, nj)) = (run(a, i), run(b, j));
            if va != vb {
                return va.cmp(&vb);
            }
            (i, j) = (ni, nj);
        } else if cb.is_ascii_digit() {
            return Ordering::Less;
        } else if ca != cb {
            return ca.cmp(&cb);
        } else {
            i += 1;
            j += 1;
        }
    }
    if j < b.len() {
        Ordering::Less
    } else {
        Ordering::Equal
    }
}

/// The directories searched, in ldconfig's order for Debian: the multiarch
/// directories of libc6's ld.so.conf.d file, /usr/local/lib, then the trusted
/// /lib and /usr/lib.
fn directories(arch: &str) -> Vec<String> {
    let t = triplet(arch);
    vec![
        format!("/usr/local/lib/{t}"),
        format!("/lib/{t}"),
        format!("/usr/lib/{t}"),
        "/usr/local/lib".to_string(),
        "/lib".to_string(),
        "/usr/lib".to_string(),
    ]
}

/// Build the cache for the libraries in `tree`; `contents` maps canonical paths
/// of regular files to their bytes (only `*.so*` files are needed).
pub fn build(
    tree: &Tree,
    contents: &HashMap<String, Vec<u8>>,
    arch: &str,
) -> Result<Vec<u8>, LdCacheError> {
    let flags = flags(arch).ok_or_else(|| LdCacheError::Arch {
        arch: arch.to_string(),
    })?;
    let machine = match arch {
        "amd64" => goblin::elf::header::EM_X86_64,
        _ => goblin::elf::header::EM_AARCH64,
    };
    let mut seen_dirs = BTreeSet::new();
    // (key, value path)
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut seen_entries = BTreeSet::new();
    for dir in directories(arch) {
        let Some(canonical) = tree.canonical(&dir) else {
            continue;
        };
        if !seen_dirs.insert(canonical.clone()) {
            continue;
        }
        for name in tree.list(&canonical) {
            if !(name.starts_with("lib") || name.starts_with("ld-")) || !name.contains(".so") {
                continue;
            }
            let Some(target) = tree.canonical(&format!("{canonical}/{name}")) else {
                continue;
            };
            let Some(bytes) = contents.get(&target) else {
                continue;
            };
            let Ok(elf) = goblin::elf::Elf::parse(bytes) else {
                continue;
            };
            if elf.header.e_type != goblin::elf::header::ET_DYN || elf.header.e_machine != machine {
                continue;
            }
            let soname = elf
                .soname
                .map(str::to_string)
                .unwrap_or_else(|| name.clone());
            // the soname link (ldconfig's own entry), and other names that are links
            // to a library (e.g. `libfoo.so`), each once
            let mut keys = vec![soname.clone()];
            if name != soname
                && name.ends_with(".so")
                && tree.is_symlink(&format!("{canonical}/{name}"))
            {
                keys.push(name.clone());
            }
            for key in keys {
                if tree.canonical(&format!("{canonical}/{key}")).as_deref() != Some(target.as_str())
                {
                    continue;
                }
                if seen_entries.insert(key.clone()) {
                    entries.push((key.clone(), format!("{dir}/{key}")));
                }
            }
        }
    }
    entries.sort_by(|a, b| libcmp(&b.0, &a.0).then_with(|| b.1.cmp(&a.1)));

    let header_len = MAGIC.len() + 4 + 4 + 1 + 3 + 4 + 12;
    let strings_start = header_len + entries.len() * 24;
    let mut strings: Vec<u8> = Vec::new();
    let mut offsets: HashMap<String, u32> = HashMap::new();
    let mut intern = |s: &str, strings: &mut Vec<u8>| -> u32 {
        if let Some(at) = offsets.get(s) {
            return *at;
        }
        let at = (strings_start + strings.len()) as u32;
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        offsets.insert(s.to_string(), at);
        at
    };
    let mut table = Vec::with_capacity(entries.len() * 24);
    for (key, value) in &entries {
        let k = intern(key, &mut strings);
        let v = intern(value, &mut strings);
        table.extend_from_slice(&flags.to_le_bytes());
        table.extend_from_slice(&k.to_le_bytes());
        table.extend_from_slice(&v.to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&0u64.to_le_bytes());
    }
    let mut out = Vec::with_capacity(strings_start + strings.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.push(2); // little endian
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&0u32.to_le_bytes()); // no extension section
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&table);
    out.extend_from_slice(&strings);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libcmp_compares_digit_runs_numerically() {
        assert_eq!(libcmp("libz3.so.4", "libz3.so"), Ordering::Greater);
        assert_eq!(libcmp("libfoo.so.10", "libfoo.so.9"), Ordering::Greater);
        assert_eq!(libcmp("libc.so.6", "libc.so.6"), Ordering::Equal);
        assert_eq!(libcmp("lib1", "liba"), Ordering::Greater);
        assert_eq!(libcmp("libz.so.1", "libzstd.so.1"), Ordering::Less);
    }
}
