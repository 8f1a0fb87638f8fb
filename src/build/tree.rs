//! The image's merged file tree (what a container will see: later layers win),
//! kept while layers are written, and the ELF check for `--add` binaries: the
//! program interpreter (PT_INTERP) and every DT_NEEDED library must resolve, through
//! symlinks, to files that are actually in the image's layers.

use std::collections::BTreeMap;

use crate::oci::{Entry, Kind};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File,
    Symlink(String),
    Hardlink(String),
}

/// Merged view of all layers written so far.
#[derive(Debug, Default, Clone)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

/// Normalise a tar path (`./usr/lib/`) to an absolute one (`/usr/lib`).
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

impl Tree {
    /// Record a layer entry.
    pub fn add(&mut self, entry: &Entry) {
        let path = normalise(&entry.path);
        let node = match &entry.kind {
            Kind::Dir => Node::Dir,
            Kind::File(_) => Node::File,
            Kind::Symlink(t) => Node::Symlink(t.clone()),
            Kind::Hardlink(t) => Node::Hardlink(normalise(t)),
        };
        self.nodes.insert(path, node);
    }

    /// Whether `path` exists (following symlinks) as anything.
    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_some()
    }

    /// Whether `path` resolves to a regular file.
    pub fn is_file(&self, path: &str) -> bool {
        matches!(self.resolve(path), Some((_, Node::File)))
    }

    fn has_children(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.nodes
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// The path `path` resolves to, following symlinks, if it exists.
    pub fn canonical(&self, path: &str) -> Option<String> {
        self.resolve(path)
            .map(|(p, _)| if p.is_empty() { "/".to_string() } else { p })
    }

    /// Whether `path` itself (its last component not followed) is a symlink.
    pub fn is_symlink(&self, path: &str) -> bool {
        matches!(self.nodes.get(&normalise(path)), Some(Node::Symlink(_)))
    }

    /// Names directly inside the directory `dir` (an absolute, canonical path).
    pub fn list(&self, dir: &str) -> Vec<String> {
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
            })
            .collect()
    }

    /// Follow symlinks in every component of `path`; the final path and node.
    fn resolve(&self, path: &str) -> Option<(String, Node)> {
        let mut pending: Vec<String> = normalise(path)
            .split('/')
            .filter(|p| !p.is_empty())
            .rev()
            .map(str::to_string)
            .collect();
        let mut current = String::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                if let Some(at) = current.rfind('/') {
                    current.truncate(at);
                }
                continue;
            }
            let candidate = format!("{current}/{part}");
            let node = match self.nodes.get(&candidate) {
                Some(node) => node,
                // parents that no layer lists explicitly still exist when they have children
                None if self.has_children(&candidate) => &Node::Dir,
                None => return None,
            };
            match node {
                Node::Symlink(target) => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    if target.starts_with('/') {
                        current.clear();
                    }
                    for p in target
                        .split('/')
                        .filter(|p| !p.is_empty() && *p != ".")
                        .rev()
                    {
                        pending.push(p.to_string());
                    }
                }
                Node::Hardlink(target) => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    current.clear();
                    for p in target.split('/').filter(|p| !p.is_empty()).rev() {
                        pending.push(p.to_string());
                    }
                }
                _ => current = candidate,
            }
        }
        let node = if current.is_empty() {
            Node::Dir
        } else {
            self.nodes.get(&current).cloned().unwrap_or(Node::Dir)
        };
        Some((current, node))
    }
}

/// Why an added binary cannot run in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfProblem {
    /// Not an ELF file at all (scripts need an interpreter the image lacks too).
    NotElf,
    /// Built for another machine than the image.
    WrongArch { binary: String, image: String },
    /// The program interpreter (dynamic loader) and/or DT_NEEDED libraries are not
    /// found in the image.
    Missing {
        interpreter: Option<String>,
        libraries: Vec<String>,
    },
}

/// Machine names for the Debian architectures dlx builds.
pub fn machine_of(arch: &str) -> Option<u16> {
    use goblin::elf::header::*;
    Some(match arch {
        "amd64" => EM_X86_64,
        "arm64" => EM_AARCH64,
        "armhf" | "armel" => EM_ARM,
        "i386" => EM_386,
        "ppc64el" => EM_PPC64,
        "s390x" => EM_S390,
        "riscv64" => EM_RISCV,
        _ => return None,
    })
}

/// The Debian architecture of the host dlx runs on, when it is one dlx knows.
pub fn host_arch() -> Option<&'static str> {
    Some(match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => return None,
    })
}

/// The multiarch triplet directory for a Debian architecture.
pub fn triplet(arch: &str) -> &'static str {
    match arch {
        "amd64" => "x86_64-linux-gnu",
        "arm64" => "aarch64-linux-gnu",
        "armhf" => "arm-linux-gnueabihf",
        "armel" => "arm-linux-gnueabi",
        "i386" => "i386-linux-gnu",
        "ppc64el" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        _ => "",
    }
}

/// What the dynamic loader needs to run an ELF object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub machine: u16,
    /// The program interpreter (`PT_INTERP`); `None` for static binaries and libraries.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` entries, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` and `DT_RPATH` entries, colon lists as written.
    pub runpaths: Vec<String>,
}

impl ElfInfo {
    /// Whether the object needs no loader and no library (a static executable).
    pub fn is_static(&self) -> bool {
        self.interpreter.is_none() && self.needed.is_empty()
    }
}

/// Read the loader-relevant parts of an ELF object; `None` when it is not ELF.
pub fn elf_info(bytes: &[u8]) -> Option<ElfInfo> {
    let elf = goblin::elf::Elf::parse(bytes).ok()?;
    Some(ElfInfo {
        machine: elf.header.e_machine,
        interpreter: elf.interpreter.map(str::to_string),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        runpaths: elf
            .runpaths
            .iter()
            .chain(elf.rpaths.iter())
            .map(|s| s.to_string())
            .collect(),
    })
}

/// `bytes` (an ELF object) with `DF_1_NODEFLIB` added to its `DT_FLAGS_1` entry: the
/// loader then never looks in its default directories (`/lib/<triplet>`, `/usr/lib`,
/// ...) for what this object loads, `dlopen` included. `None` when it is not ELF or
/// its dynamic segment has no `DT_FLAGS_1` entry to change.
pub fn without_default_search(bytes: &[u8]) -> Option<Vec<u8>> {
    use goblin::elf::dynamic::{DF_1_NODEFLIB, DT_FLAGS_1, DT_NULL};
    use goblin::elf::program_header::PT_DYNAMIC;
    let elf = goblin::elf::Elf::parse(bytes).ok()?;
    let segment = elf
        .program_headers
        .iter()
        .find(|p| p.p_type == PT_DYNAMIC)?;
    let start = usize::try_from(segment.p_offset).ok()?;
    let end = start.checked_add(usize::try_from(segment.p_filesz).ok()?)?;
    let table = bytes.get(start..end)?;
    // Entries are (tag, value) pairs of the object's word size and byte order.
    let word = if elf.is_64 { 8 } else { 4 };
    let little = elf.little_endian;
    let read = |at: &[u8]| -> u64 {
        let mut buf = [0u8; 8];
        if little {
            buf[..word].copy_from_slice(at);
            u64::from_le_bytes(buf)
        } else {
            buf[8 - word..].copy_from_slice(at);
            u64::from_be_bytes(buf)
        }
    };
    for (i, entry) in table.chunks_exact(2 * word).enumerate() {
        match read(&entry[..word]) {
            DT_NULL => return None,
            DT_FLAGS_1 => {
                let flags = read(&entry[word..]) | DF_1_NODEFLIB;
                let value = match little {
                    true => flags.to_le_bytes()[..word].to_vec(),
                    false => flags.to_be_bytes()[8 - word..].to_vec(),
                };
                let at = start + i * 2 * word + word;
                let mut out = bytes.to_vec();
                out[at..at + word].copy_from_slice(&value);
                return Some(out);
            }
            _ => {}
        }
    }
    None
}

/// The directories the loader searches by default for Debian architecture `arch`,
/// in its order.
pub fn library_dirs(arch: &str) -> [String; 6] {
    [
        format!("/lib/{}", triplet(arch)),
        format!("/usr/lib/{}", triplet(arch)),
        "/lib".to_string(),
        "/usr/lib".to_string(),
        "/lib64".to_string(),
        "/usr/lib64".to_string(),
    ]
}

/// Where the loader would find `library` (a `DT_NEEDED` name) in `tree`: the
/// runpaths first, then the default directories; the path found (not followed).
pub fn find_library(tree: &Tree, library: &str, runpaths: &[String], arch: &str) -> Option<String> {
    if library.contains('/') {
        return tree.is_file(library).then(|| library.to_string());
    }
    let dirs = runpaths
        .iter()
        .flat_map(|r| r.split(':'))
        .map(str::to_string)
        .chain(library_dirs(arch));
    dirs.map(|dir| format!("{dir}/{library}"))
        .find(|path| tree.is_file(path))
}

/// Check an ELF binary against the image tree for Debian architecture `arch`.
/// Returns the names missing (loader first), or `Ok` when it can run.
pub fn check_elf(bytes: &[u8], tree: &Tree, arch: &str) -> Result<(), ElfProblem> {
    let elf = elf_info(bytes).ok_or(ElfProblem::NotElf)?;
    if let Some(machine) = machine_of(arch) {
        if elf.machine != machine {
            return Err(ElfProblem::WrongArch {
                binary: goblin::elf::header::machine_to_str(elf.machine).to_string(),
                image: arch.to_string(),
            });
        }
    }
    let interpreter = elf.interpreter.filter(|interp| !tree.is_file(interp));
    let missing: Vec<String> = elf
        .needed
        .iter()
        .filter(|lib| find_library(tree, lib, &elf.runpaths, arch).is_none())
        .cloned()
        .collect();
    if missing.is_empty() && interpreter.is_none() {
        Ok(())
    } else {
        Err(ElfProblem::Missing {
            interpreter,
            libraries: missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[Entry]) -> Tree {
        let mut t = Tree::default();
        for e in entries {
            t.add(e);
        }
        t
    }

    #[test]
    fn resolves_usr_merge_symlinks_and_relative_links() {
        let t = tree(&[
            Entry::dir("./", 0o755, 0),
            Entry::symlink("./lib64", "usr/lib64", 0),
            Entry::dir("./usr/lib64/", 0o755, 0),
            Entry::symlink(
                "./usr/lib64/ld-linux-x86-64.so.2",
                "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                0,
            ),
            Entry::file(
                "./usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                0o755,
                0,
                vec![],
            ),
        ]);
        assert!(t.is_file("/lib64/ld-linux-x86-64.so.2"));
        assert!(!t.is_file("/lib64/ld-missing.so"));
        assert!(t.exists("/usr/lib64"));
    }

    #[test]
    fn symlink_loops_do_not_hang() {
        let t = tree(&[Entry::symlink("./a", "b", 0), Entry::symlink("./b", "a", 0)]);
        assert!(!t.exists("/a"));
    }

    /// A little-endian ELF64 shared object of headers only: one `PT_DYNAMIC` segment
    /// holding `entries` and a `DT_NULL`.
    fn elf64_with_dynamic(entries: &[(u64, u64)]) -> Vec<u8> {
        let mut elf = vec![0u8; 64 + 56];
        elf[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        let put = |elf: &mut Vec<u8>, at: usize, bytes: &[u8]| {
            elf[at..at + bytes.len()].copy_from_slice(bytes)
        };
        put(&mut elf, 16, &3u16.to_le_bytes()); // ET_DYN
        put(&mut elf, 18, &62u16.to_le_bytes()); // EM_X86_64
        put(&mut elf, 20, &1u32.to_le_bytes());
        put(&mut elf, 32, &64u64.to_le_bytes()); // e_phoff
        put(&mut elf, 52, &64u16.to_le_bytes()); // e_ehsize
        put(&mut elf, 54, &56u16.to_le_bytes()); // e_phentsize
        put(&mut elf, 56, &1u16.to_le_bytes()); // e_phnum
        let table: Vec<u8> = entries
            .iter()
            .chain([&(0, 0)])
            .flat_map(|(tag, value)| [tag.to_le_bytes(), value.to_le_bytes()].concat())
            .collect();
        put(&mut elf, 64, &2u32.to_le_bytes()); // PT_DYNAMIC
        put(&mut elf, 64 + 8, &120u64.to_le_bytes()); // p_offset
        put(&mut elf, 64 + 16, &120u64.to_le_bytes()); // p_vaddr
        put(&mut elf, 64 + 32, &(table.len() as u64).to_le_bytes()); // p_filesz
        put(&mut elf, 64 + 40, &(table.len() as u64).to_le_bytes()); // p_memsz
        elf.extend(table);
        elf
    }

    #[test]
    fn default_search_is_turned_off_in_the_flags_1_entry_only() {
        use goblin::elf::dynamic::{DF_1_NODEFLIB, DF_1_NOW, DT_FLAGS_1};
        let object = elf64_with_dynamic(&[(0x1e, 8), (DT_FLAGS_1, DF_1_NOW)]);
        let sealed = without_default_search(&object).unwrap();
        // Only the value of the second entry changed: NOW kept, NODEFLIB added.
        let at = 120 + 16 + 8;
        assert_eq!(sealed[..at], object[..at]);
        assert_eq!(
            u64::from_le_bytes(sealed[at..at + 8].try_into().unwrap()),
            DF_1_NOW | DF_1_NODEFLIB
        );
        assert_eq!(sealed[at + 8..], object[at + 8..]);
        // Nothing to change, or nothing ELF: no copy.
        assert_eq!(
            without_default_search(&elf64_with_dynamic(&[(0x1e, 8)])),
            None
        );
        assert_eq!(without_default_search(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn non_elf_is_reported() {
        assert_eq!(
            check_elf(b"#!/bin/sh\n", &Tree::default(), "amd64"),
            Err(ElfProblem::NotElf)
        );
    }
}
