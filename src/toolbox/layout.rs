//! From extracted packages to the toolbox tree, in memory: no I/O, so every rule is
//! unit-tested with made-up packages.
//!
//! - `bin/busybox` (must be static) and one relative link per applet;
//! - per tool, its binary found in its own package (`/usr/bin`, `/usr/sbin`, `/bin`,
//!   `/sbin`, symlinks followed): a static one is `bin/<tool>` itself; a dynamic one
//!   goes to `libexec/<tool>` and `bin/<tool>` is a wrapper that starts it with the
//!   toolbox's own loader and libraries, without the variables that would make them
//!   load the container's code (see [`wrapper`]);
//! - `lib/`: the loader (`PT_INTERP`'s file name; made to read no preload file, see
//!   [`seal_loader`]), the guard the wrappers hand it (an audit module that refuses
//!   every object outside `lib/`, see [`super::GUARD`]) and the `DT_NEEDED` closure
//!   of every dynamic tool plus the manifest's dlopen'd libraries: each library's
//!   real file (symlinks in the packages followed) under its own name, and a link
//!   from the name asked for when that differs;
//! - `etc/openssl.cnf`, an OpenSSL configuration that configures nothing, read by the
//!   tools linked with libcrypto in place of the container's (see [`wrapper`]);
//! - in every object that carries a libc, the locale, gconv and message catalog
//!   directories, and in libsasl2 its plugin directory, moved to where no toolbox
//!   has anything (see [`relocate_data_dirs`]).
//!
//! Modes are fixed (0755 for executables, 0644 otherwise) whatever the packages say,
//! and nothing is setuid.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::build::tree::{self, ElfInfo, Tree};
use crate::oci::{Entry, Kind};

use super::manifest::Manifest;
use super::{ToolboxError, BIN, GUARD, GUARD_OBJECT, LIB, LIBEXEC, NO_PRELOAD, OPENSSL_CONF};

/// Reads what the loader needs from an ELF object (`None`: not ELF). Production
/// passes [`tree::elf_info`]; tests pass a reader of fake objects.
pub type ElfReader = fn(&[u8]) -> Option<ElfInfo>;

/// A node of the assembled tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File { data: Vec<u8>, executable: bool },
    Symlink(String),
}

/// How a tool is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Linkage {
    Static,
    Dynamic,
}

/// One tool as laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaidTool {
    pub name: String,
    pub package: String,
    /// Where the binary was in its package.
    pub source: String,
    pub linkage: Linkage,
}

/// The tree, relative paths (`bin/sh`) to nodes, plus what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub nodes: BTreeMap<String, Node>,
    pub tools: Vec<LaidTool>,
    pub applets: Vec<String>,
    /// File names in `lib/`, the loader included.
    pub libraries: Vec<String>,
    /// The loader's file name in `lib/`, when any tool is dynamic.
    pub loader: Option<String>,
}

impl Layout {
    /// Bytes of all regular files.
    pub fn size(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match n {
                Node::File { data, .. } => data.len() as u64,
                _ => 0,
            })
            .sum()
    }
}

/// The files of all packages, merged into one tree (later packages win), with the
/// bytes of the ELF files kept and each path's package remembered.
#[derive(Debug, Default)]
pub struct Extracted {
    tree: Tree,
    elf_data: HashMap<String, Vec<u8>>,
    owner: HashMap<String, String>,
}

/// `./usr/bin/` → `/usr/bin`.
fn absolute(path: &str) -> String {
    let rel = path.trim_start_matches("./").trim_end_matches('/');
    format!("/{rel}")
}

impl Extracted {
    /// An empty tree; on merged-/usr distros (whose packages `build::package_entries`
    /// rewrote under `/usr`) the root links `/bin`, `/sbin`, `/lib`, `/lib64` point
    /// into `/usr` as base-files would make them.
    pub fn new(usr_merge: bool) -> Extracted {
        let mut out = Extracted::default();
        if usr_merge {
            for dir in ["bin", "sbin", "lib", "lib64"] {
                out.tree.add(&Entry::symlink(
                    &format!("./{dir}"),
                    &format!("usr/{dir}"),
                    0,
                ));
            }
        }
        out
    }

    /// Add one package's entries.
    pub fn add(&mut self, package: &str, entries: Vec<Entry>) {
        for entry in entries {
            self.tree.add(&entry);
            let path = absolute(&entry.path);
            if let Kind::File(data) = entry.kind {
                if data.starts_with(b"\x7fELF") {
                    self.elf_data.insert(path.clone(), data);
                } else {
                    self.elf_data.remove(&path);
                }
            }
            self.owner.insert(path, package.to_string());
        }
    }

    /// The ELF bytes `path` finally resolves to, and that file's path.
    fn elf(&self, path: &str) -> Option<(String, &[u8])> {
        let real = self.tree.canonical(path)?;
        let data = self.elf_data.get(&real)?;
        Some((real, data.as_slice()))
    }

    /// A program of `package` named `name`, in the usual directories.
    fn program(&self, package: &str, name: &str) -> Option<String> {
        ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
            .iter()
            .map(|dir| format!("{dir}/{name}"))
            .find(|path| {
                self.owner.get(path).is_some_and(|p| p == package) && self.tree.is_file(path)
            })
    }
}

/// Quote a word for the wrapper's `sh`.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-/=:,@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Variables a wrapper removes, by prefix, before it starts its tool: every variable
/// the loader acts on starts with `LD_` (the set is open-ended: `LD_PRELOAD`,
/// `LD_AUDIT`, `LD_LIBRARY_PATH`, ...), glibc's malloc reads `MALLOC_*`, OpenSSL
/// `OPENSSL_*` (`OPENSSL_CONF`, `OPENSSL_MODULES` and `OPENSSL_ENGINES` name code it
/// loads).
pub const UNSET_PREFIXES: &[&str] = &["LD_", "MALLOC_", "OPENSSL_"];

/// Variables a wrapper removes by name: the rest of what glibc removes for setuid
/// programs (`unsecvars.h`: they tell the loader and libc where to load code or read
/// data from), and those that make other libraries of the toolbox load code (Cyrus
/// SASL's plugin directories, the Kerberos configuration, GSSAPI's mechanism list).
pub const UNSET_NAMES: &[&str] = &[
    "GCONV_PATH",
    "GETCONF_DIR",
    "GLIBC_TUNABLES",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "LOCPATH",
    "NIS_PATH",
    "NLSPATH",
    "RESOLV_HOST_CONF",
    "RES_OPTIONS",
    "TMPDIR",
    "TZDIR",
    "SASL_PATH",
    "SASL_CONF_PATH",
    "KRB5_CONFIG",
    "GSS_MECH_CONFIG",
];

/// The wrapper line that unsets [`UNSET_PREFIXES`] and [`UNSET_NAMES`] (`awk` is how
/// the script runs awk). awk lists the names in the environment, which `sh` cannot;
/// it runs in the C locale, so its character ranges are ASCII, and it keeps only
/// names made of letters, digits and `_`: every name glibc acts on is one, and `sh`
/// stops at an `unset` of anything else. Its output is a list of `unset NAME` lines
/// for `eval`; if awk fails, the script exits instead of starting the tool with the
/// variables.
pub fn unset_line(awk: &str) -> String {
    let prefixes = UNSET_PREFIXES.join("|");
    let names = UNSET_NAMES.join("|");
    format!(
        "eval \"$(LC_ALL=C {awk} 'BEGIN {{ for (k in ENVIRON) \
         if (k ~ /^({prefixes})[A-Za-z0-9_]*$|^({names})$/) print \"unset \" k }}' \
         || echo exit 126)\""
    )
}

/// The `bin/<name>` script of a dynamic tool (or a static one with `args`). It runs
/// under the toolbox's own BusyBox `sh`, removes the variables of [`unset_line`] (the
/// session's environment is the container's, and the tool must not load the
/// container's code), and execs the loader explicitly, so nothing in the container
/// (its loader, libc, `/etc/ld.so.cache`) is used. What the tool starts (`strace -f
/// CMD`) inherits the tool's environment, so it runs without the removed variables
/// too.
///
/// The loader also gets the guard ([`GUARD`]) with `--audit`: whatever a library
/// loads by a path the container's configuration gives (a Kerberos plugin, a GSS-API
/// mechanism, a PKCS#11 module) is refused. Being an option, not `LD_AUDIT`, it does
/// not pass on to what the tool starts.
///
/// The one variable a wrapper sets is `OPENSSL_CONF`, for a tool linked with
/// libcrypto (`openssl` true): OpenSSL otherwise reads the container's `openssl.cnf`,
/// which can name a provider or engine module by path, and loads it into the tool
/// (curl does at start-up). No other tool gets it, so their children do not either.
pub fn wrapper(name: &str, loader: Option<&str>, args: &[String], openssl: bool) -> String {
    let mut words: Vec<String> = Vec::new();
    if let Some(loader) = loader {
        words.extend([
            format!("{LIB}/{loader}"),
            "--inhibit-cache".into(),
            "--library-path".into(),
            LIB.into(),
            "--audit".into(),
            GUARD.into(),
            "--argv0".into(),
            name.into(),
        ]);
    }
    words.push(format!("{LIBEXEC}/{name}"));
    words.extend(args.iter().cloned());
    let line: Vec<String> = words.iter().map(|w| quote(w)).collect();
    let how = if loader.is_some() {
        " with the toolbox's own loader and libraries"
    } else {
        ""
    };
    let openssl = match openssl {
        true => format!(
            "# OpenSSL reads the toolbox's configuration, not the container's\n\
             export OPENSSL_CONF={OPENSSL_CONF}\n"
        ),
        false => String::new(),
    };
    format!(
        "#!{BIN}/sh\n# dlx toolbox: {name}{how}\n\
         # unset: what would make a loader or library load other code (LD_*, ...)\n\
         {}\n{openssl}exec {} \"$@\"\n",
        unset_line(&format!("{BIN}/busybox awk")),
        line.join(" ")
    )
}

/// The file [`OPENSSL_CONF`] names: no directive, so OpenSSL loads no module and
/// keeps its built-in defaults.
pub const OPENSSL_CNF: &str =
    "# dlx toolbox: what OpenSSL reads in place of the container's openssl.cnf,\n\
     # which could name a provider or engine module for a toolbox tool to load.\n\
     # Nothing is configured: OpenSSL's built-in defaults apply.\n";

/// libcrypto's file names start so (`libcrypto.so.3`).
const LIBCRYPTO: &str = "libcrypto.so";

/// The bytes the loader names its preload file with, and what [`seal_loader`] puts in
/// their place: [`NO_PRELOAD`], NUL-padded to the same length.
const PRELOAD_FILE: &[u8] = b"/etc/ld.so.preload\0";
const _: () = assert!(NO_PRELOAD.len() < PRELOAD_FILE.len());
/// Any mention of the file, whole or not.
const PRELOAD_NAME: &[u8] = b"ld.so.preload";

/// Where `what` starts in `data` (overlapping matches included).
fn positions(data: &[u8], what: &[u8]) -> Vec<usize> {
    let finder = memchr::memmem::Finder::new(what);
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = finder.find(&data[from..]) {
        found.push(from + i);
        from += i + 1;
    }
    found
}

/// The loader `data` (at `path` in its package) made to read [`NO_PRELOAD`] instead
/// of `/etc/ld.so.preload`. glibc's loader always reads that file of the root it runs
/// in (in a session, the container's), and has no option to skip it; in the loader
/// it is one NUL-terminated string, which is replaced in place by a shorter one. A
/// loader that names the file otherwise (twice, or with another copy of
/// `ld.so.preload` beside it, as a compiler may inline a string into code) is one
/// this code does not know: an error, not a toolbox that might still preload the
/// container's libraries.
pub fn seal_loader(path: &str, data: &[u8]) -> Result<Vec<u8>, ToolboxError> {
    let paths = positions(data, PRELOAD_FILE);
    let mentions = positions(data, PRELOAD_NAME).len();
    let (&[at], 1) = (&paths[..], mentions) else {
        return Err(ToolboxError::LoaderPreload {
            path: path.to_string(),
            paths: paths.len(),
            mentions,
        });
    };
    let mut sealed = data.to_vec();
    let slot = &mut sealed[at..at + PRELOAD_FILE.len()];
    slot.fill(0);
    slot[..NO_PRELOAD.len()].copy_from_slice(NO_PRELOAD.as_bytes());
    Ok(sealed)
}

/// Marks an ELF object to search no default directory (see
/// [`tree::without_default_search`]); tests pass one for fake objects.
pub type SearchSealer = fn(&[u8]) -> Option<Vec<u8>>;

/// The libc, which loads NSS modules by name (`libnss_<service>.so.2`, the services an
/// `/etc/nsswitch.conf` lists).
const LIBC: &str = "lib/libc.so.6";

/// Make every ELF object of `layout` (libraries and dynamic tools) load nothing from
/// the loader's default directories, which in a session are the container's: a
/// library the toolbox lacks is then not found rather than taken from the
/// container. This matters for what is loaded by name at run time, above all the NSS
/// modules the container's `/etc/nsswitch.conf` names, which libc would otherwise
/// load from the container's `/lib` into a toolbox tool. The loader only knows the
/// flag from an object's own `DT_FLAGS_1` entry: objects without one are left as
/// they are, and a libc without one is an error (the tree would still load NSS
/// modules from the container).
pub fn seal_search(layout: &mut Layout, seal: SearchSealer) -> Result<(), ToolboxError> {
    // The loader itself allows no flag but `DF_1_NOW` (it asserts so), and it loads
    // nothing on its own behalf; nor does the guard, which needs no library.
    let loader = layout.loader.as_ref().map(|l| format!("lib/{l}"));
    let guard = guard_path();
    for (path, node) in layout.nodes.iter_mut() {
        let Node::File { data, .. } = node else {
            continue;
        };
        let object = path.starts_with("lib/") || path.starts_with("libexec/");
        if !object || loader.as_ref() == Some(path) || *path == guard {
            continue;
        }
        match seal(data) {
            Some(sealed) => *data = sealed,
            None if path == LIBC => return Err(ToolboxError::LibcSearch { path: path.clone() }),
            None => tracing::debug!(path, "no DT_FLAGS_1 entry: default search left as is"),
        }
    }
    Ok(())
}

/// A path prefix and what replaces it, byte for byte.
type Rewrite = (&'static [u8], &'static [u8]);

/// The start of the compiled-in `/usr/lib/...` directories (glibc's data, SASL's
/// plugins), and what [`relocate_data_dirs`] puts in its place: the same length,
/// inside the read-only toolbox mount and beside [`NO_PRELOAD`], where no toolbox
/// holds anything.
const USR_LIB: Rewrite = (b"/usr/lib/", b"/.dlx/no/");
/// glibc's message catalog directory (and `locale.alias`'s), and its replacement.
const MESSAGES: Rewrite = (b"/usr/share/locale", b"/.dlx/no/messages");
const _: () = assert!(USR_LIB.0.len() == USR_LIB.1.len() && MESSAGES.0.len() == MESSAGES.1.len());

/// Move the directories libc reads locales, iconv (gconv) modules and message
/// catalogs from, which are compiled into every object that carries a libc (the
/// shared one, BusyBox's static one), and the one Cyrus SASL loads every plugin from
/// (libsasl2, under curl's LDAP), to a place no toolbox has.
///
/// In a session those directories are the container's, and they steer the tools
/// through the environment the session inherits: a `LANG` naming a locale whose
/// character set libc does not carry built in makes the first multibyte conversion
/// (curl's conversion of a host name, say) load the gconv module the container's
/// `gconv-modules` names for it, into the tool; and locale files and catalogs are
/// parsed as trusted input (a catalog's translation can be a `printf` format). With
/// the directories moved, setlocale finds no locale but the built-in C one and libc
/// only its built-in conversions (UTF-8, ASCII, UCS); SASL finds no plugin. Each
/// path is rewritten in place to one of the same length, so every use (`sizeof`
/// included) sees a whole path; the libc must name the locale and gconv directories,
/// or it would go on loading them. `triplet` is the architecture's
/// (`x86_64-linux-gnu`), part of the gconv and SASL paths.
pub fn relocate_data_dirs(layout: &mut Layout, triplet: &str) -> Result<(), ToolboxError> {
    // (path, what replaces it): the prefix swapped, the rest kept.
    let moved = |(from, to): Rewrite, rest: &str| {
        (
            [from, rest.as_bytes()].concat(),
            [to, rest.as_bytes()].concat(),
        )
    };
    // The first two are the ones libc must name.
    let rewrites = [
        moved(USR_LIB, "locale"),
        moved(USR_LIB, &format!("{triplet}/gconv")),
        moved(MESSAGES, ""),
        moved(USR_LIB, &format!("{triplet}/sasl2")),
        moved(USR_LIB, "sasl2"),
    ];
    for (path, node) in layout.nodes.iter_mut() {
        let Node::File { data, .. } = node else {
            continue;
        };
        if !data.starts_with(b"\x7fELF") {
            continue;
        }
        let mut found = [0usize; 5];
        for (count, (dir, replacement)) in found.iter_mut().zip(&rewrites) {
            let at = positions(data, dir);
            for i in &at {
                data[*i..*i + replacement.len()].copy_from_slice(replacement);
            }
            *count = at.len();
        }
        if path == LIBC && (found[0] == 0 || found[1] == 0) {
            return Err(ToolboxError::LibcDataDirs {
                path: path.clone(),
                locale: found[0],
                gconv: found[1],
            });
        }
        if found.iter().any(|n| *n > 0) {
            tracing::debug!(path, ?found, "libc data directories moved");
        }
    }
    Ok(())
}

/// Lay out the toolbox for `manifest` from `files`, for Debian architecture `arch`.
pub fn plan(
    manifest: &Manifest,
    files: &Extracted,
    arch: &str,
    elf: ElfReader,
) -> Result<Layout, ToolboxError> {
    let mut layout = Layout::default();
    for dir in ["bin", "lib", "libexec"] {
        layout.nodes.insert(dir.to_string(), Node::Dir);
    }
    let machine = tree::machine_of(arch);
    let read = |object: &str, bytes: &[u8]| -> Result<ElfInfo, ToolboxError> {
        let info = elf(bytes).ok_or_else(|| ToolboxError::NotElf {
            path: object.to_string(),
        })?;
        if machine.is_some_and(|m| m != info.machine) {
            return Err(ToolboxError::WrongArch {
                path: object.to_string(),
                arch: arch.to_string(),
            });
        }
        Ok(info)
    };
    let find = |package: &str, name: &str| -> Result<(String, String, &[u8]), ToolboxError> {
        let missing = || ToolboxError::ToolMissing {
            tool: name.to_string(),
            package: package.to_string(),
        };
        let path = files.program(package, name).ok_or_else(missing)?;
        let (real, data) = files.elf(&path).ok_or_else(|| ToolboxError::NotElf {
            path: format!("{path} of package {package}"),
        })?;
        Ok((path, real, data))
    };

    // BusyBox: the shell every wrapper needs, so it must not need a loader itself.
    let bb = &manifest.busybox.package;
    let (_, bb_real, bb_data) = find(bb, "busybox")?;
    if !read(&bb_real, bb_data)?.is_static() {
        return Err(ToolboxError::BusyboxNotStatic {
            package: bb.clone(),
        });
    }
    let applets = crate::build::generated::busybox_applets(bb_data).ok_or_else(|| {
        ToolboxError::BusyboxApplets {
            package: bb.clone(),
        }
    })?;
    layout.nodes.insert(
        "bin/busybox".into(),
        Node::File {
            data: bb_data.to_vec(),
            executable: true,
        },
    );
    let tool_names: HashSet<&str> = manifest.tools.iter().map(|t| t.name.as_str()).collect();
    for applet in &applets {
        if applet == "busybox" || tool_names.contains(applet.as_str()) {
            continue;
        }
        if applet.contains('/') || applet.starts_with('.') {
            continue;
        }
        layout
            .nodes
            .insert(format!("bin/{applet}"), Node::Symlink("busybox".into()));
        layout.applets.push(applet.clone());
    }
    if !layout.applets.iter().any(|a| a == "sh") {
        return Err(ToolboxError::BusyboxApplets {
            package: bb.clone(),
        });
    }
    // The wrappers run `busybox awk` (a tool of the same name may hide bin/awk).
    if !applets.iter().any(|a| a == "awk") {
        return Err(ToolboxError::BusyboxApplet {
            package: bb.clone(),
            applet: "awk".into(),
        });
    }

    // Tools, and the libraries they ask for: (name, runpaths of the asker, asker).
    let mut wanted: VecDeque<(String, Vec<String>, String)> = VecDeque::new();
    // Dynamic tools: (tool, loader, libraries it asks for).
    let mut dynamic = Vec::new();
    for tool in &manifest.tools {
        let (source, real, data) = find(&tool.package, &tool.name)?;
        let info = read(&real, data)?;
        let linkage = if info.is_static() {
            Linkage::Static
        } else {
            Linkage::Dynamic
        };
        let bin = format!("bin/{}", tool.name);
        match linkage {
            Linkage::Static if tool.args.is_empty() => {
                layout.nodes.insert(
                    bin,
                    Node::File {
                        data: data.to_vec(),
                        executable: true,
                    },
                );
            }
            Linkage::Static => {
                let (path, node) = script(&tool.name, None, &tool.args, false);
                layout.nodes.insert(path, node);
                layout.nodes.insert(
                    format!("libexec/{}", tool.name),
                    Node::File {
                        data: data.to_vec(),
                        executable: true,
                    },
                );
            }
            Linkage::Dynamic => {
                let interp = info
                    .interpreter
                    .clone()
                    .ok_or_else(|| ToolboxError::NoLoader { path: real.clone() })?;
                let loader = interp.rsplit('/').next().unwrap_or(&interp).to_string();
                match &layout.loader {
                    Some(have) if *have != loader => {
                        return Err(ToolboxError::LoaderConflict {
                            path: real.clone(),
                            loader: interp,
                            other: have.clone(),
                        })
                    }
                    Some(_) => {}
                    None => {
                        let (loader_real, loader_data) =
                            files
                                .elf(&interp)
                                .ok_or_else(|| ToolboxError::LibraryMissing {
                                    library: interp.clone(),
                                    needed_by: real.clone(),
                                })?;
                        layout.nodes.insert(
                            format!("lib/{loader}"),
                            Node::File {
                                data: seal_loader(&loader_real, loader_data)?,
                                executable: true,
                            },
                        );
                        layout.libraries.push(loader.clone());
                        layout.loader = Some(loader.clone());
                        layout.nodes.insert(
                            guard_path(),
                            Node::File {
                                data: GUARD_OBJECT.to_vec(),
                                executable: false,
                            },
                        );
                        layout.libraries.push(guard_name().to_string());
                    }
                }
                // Its wrapper once its libraries are known.
                dynamic.push((tool, loader, info.needed.clone()));
                layout.nodes.insert(
                    format!("libexec/{}", tool.name),
                    Node::File {
                        data: data.to_vec(),
                        executable: true,
                    },
                );
                for lib in &info.needed {
                    wanted.push_back((lib.clone(), info.runpaths.clone(), real.clone()));
                }
            }
        }
        layout.tools.push(LaidTool {
            name: tool.name.clone(),
            package: tool.package.clone(),
            source,
            linkage,
        });
    }
    if layout.loader.is_some() {
        for lib in &manifest.libraries {
            wanted.push_back((lib.clone(), Vec::new(), "the toolbox manifest".into()));
        }
    }

    // What each library asks for in turn, by the name it was asked for by.
    let mut asks: HashMap<String, Vec<String>> = HashMap::new();
    // The DT_NEEDED closure, breadth first. Each library's file keeps its real name
    // (some programs read their libraries' versions from it, through
    // /proc/self/maps), with a link from the name asked for when that differs.
    while let Some((name, runpaths, needed_by)) = wanted.pop_front() {
        let slot = format!("lib/{name}");
        if layout.nodes.contains_key(&slot) {
            continue;
        }
        if name.contains('/') {
            return Err(ToolboxError::LibraryPath {
                library: name,
                needed_by,
            });
        }
        let missing = || ToolboxError::LibraryMissing {
            library: name.clone(),
            needed_by: needed_by.clone(),
        };
        let found = tree::find_library(&files.tree, &name, &runpaths, arch).ok_or_else(missing)?;
        let (real, data) = files.elf(&found).ok_or_else(missing)?;
        let info = read(&real, data)?;
        let file_name = real.rsplit('/').next().unwrap_or(&real).to_string();
        let file_slot = format!("lib/{file_name}");
        match layout.nodes.get(&file_slot) {
            None => {
                layout.nodes.insert(
                    file_slot,
                    Node::File {
                        data: data.to_vec(),
                        executable: false,
                    },
                );
                layout.libraries.push(file_name.clone());
            }
            Some(Node::File { data: have, .. }) if have == data => {}
            Some(_) => {
                return Err(ToolboxError::LibraryClash {
                    name: file_name,
                    path: real,
                })
            }
        }
        if file_name != name {
            layout.nodes.insert(slot, Node::Symlink(file_name));
            layout.libraries.push(name.clone());
        }
        for lib in &info.needed {
            wanted.push_back((lib.clone(), info.runpaths.clone(), real.clone()));
        }
        asks.insert(name, info.needed);
    }
    layout.libraries.sort();

    // The wrappers: a tool linked with libcrypto reads the toolbox's OpenSSL
    // configuration, which is then part of the tree.
    let mut openssl = false;
    for (tool, loader, needed) in dynamic {
        let links_libcrypto = closure(&needed, &asks)
            .iter()
            .any(|lib| lib.starts_with(LIBCRYPTO));
        openssl |= links_libcrypto;
        let (path, node) = script(&tool.name, Some(&loader), &tool.args, links_libcrypto);
        layout.nodes.insert(path, node);
    }
    if openssl {
        layout.nodes.insert("etc".into(), Node::Dir);
        layout.nodes.insert(
            OPENSSL_CNF_PATH.into(),
            Node::File {
                data: OPENSSL_CNF.as_bytes().to_vec(),
                executable: false,
            },
        );
    }
    Ok(layout)
}

/// [`GUARD`]'s file name in `lib/`.
fn guard_name() -> &'static str {
    GUARD.rsplit('/').next().unwrap_or(GUARD)
}

/// [`GUARD`] in the tree: `lib/dlx-guard.so`.
fn guard_path() -> String {
    format!("lib/{}", guard_name())
}

/// [`OPENSSL_CONF`] in the tree.
const OPENSSL_CNF_PATH: &str = "etc/openssl.cnf";

/// Every library `needed` leads to, through what each library asks for (`asks`).
fn closure<'a>(needed: &'a [String], asks: &'a HashMap<String, Vec<String>>) -> HashSet<&'a str> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut next: Vec<&str> = needed.iter().map(String::as_str).collect();
    while let Some(lib) = next.pop() {
        if seen.insert(lib) {
            next.extend(asks.get(lib).into_iter().flatten().map(String::as_str));
        }
    }
    seen
}

/// The wrapper node for `bin/<name>`.
fn script(name: &str, loader: Option<&str>, args: &[String], openssl: bool) -> (String, Node) {
    (
        format!("bin/{name}"),
        Node::File {
            data: wrapper(name, loader, args, openssl).into_bytes(),
            executable: true,
        },
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fake ELF object: `\x7fELF` then `key=value` lines (interp, needed as a comma
    /// list, machine), read by [`fake_elf`]. A BusyBox applet table may follow a NUL.
    pub fn obj(spec: &str) -> Vec<u8> {
        format!("\x7fELF\n{spec}\n").into_bytes()
    }

    pub fn fake_elf(bytes: &[u8]) -> Option<ElfInfo> {
        let text = std::str::from_utf8(bytes.strip_prefix(b"\x7fELF\n")?).ok()?;
        let text = text.split('\0').next().unwrap_or("");
        let mut info = ElfInfo {
            machine: goblin::elf::header::EM_X86_64,
            interpreter: None,
            needed: vec![],
            runpaths: vec![],
        };
        for line in text.lines() {
            match line.split_once('=') {
                Some(("interp", v)) => info.interpreter = Some(v.to_string()),
                Some(("needed", v)) => info.needed = v.split(',').map(str::to_string).collect(),
                Some(("runpath", v)) => info.runpaths = vec![v.to_string()],
                Some(("machine", v)) => info.machine = v.parse().unwrap(),
                _ => {}
            }
        }
        Some(info)
    }

    pub fn busybox_bytes() -> Vec<u8> {
        let mut b = obj("static");
        b.extend_from_slice(
            b"\0[\0[[\0ash\0awk\0busybox\0cat\0ip\0ls\0mount\0ps\0sh\0sleep\0ss\0vi\0\0",
        );
        b
    }

    /// A fake loader that names its preload file as glibc's does.
    pub fn loader_bytes() -> Vec<u8> {
        let mut b = obj("loader");
        b.extend_from_slice(b"\0/etc/ld.so.cache\0/etc/ld.so.preload\0--help\0");
        b
    }

    /// Packages like Debian 13's: merged /usr, loader behind a /usr/lib64 link,
    /// libraries behind soname links, one tool reached through a /usr/sbin link.
    pub fn packages() -> Extracted {
        let mut x = Extracted::new(true);
        let lib = "./usr/lib/x86_64-linux-gnu";
        x.add(
            "busybox-static",
            vec![Entry::file("./usr/bin/busybox", 0o755, 0, busybox_bytes())],
        );
        x.add(
            "libc6",
            vec![
                Entry::file(
                    &format!("{lib}/ld-linux-x86-64.so.2"),
                    0o755,
                    0,
                    loader_bytes(),
                ),
                Entry::symlink(
                    "./usr/lib64/ld-linux-x86-64.so.2",
                    "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                    0,
                ),
                Entry::file(
                    &format!("{lib}/libc.so.6"),
                    0o644,
                    0,
                    obj("needed=ld-linux-x86-64.so.2"),
                ),
                Entry::file(
                    &format!("{lib}/gconv/UNUSED.so"),
                    0o644,
                    0,
                    obj("needed=libc.so.6"),
                ),
            ],
        );
        x.add(
            "libmnl0",
            vec![
                Entry::file(
                    &format!("{lib}/libmnl.so.0.2.0"),
                    0o644,
                    0,
                    obj("needed=libc.so.6"),
                ),
                Entry::symlink(&format!("{lib}/libmnl.so.0"), "libmnl.so.0.2.0", 0),
            ],
        );
        x.add(
            "libgcc-s1",
            vec![Entry::file(
                &format!("{lib}/libgcc_s.so.1"),
                0o644,
                0,
                obj("needed=libc.so.6"),
            )],
        );
        x.add(
            "iproute2",
            vec![
                Entry::file(
                    "./usr/bin/ip",
                    0o4755,
                    0,
                    obj("interp=/lib64/ld-linux-x86-64.so.2\nneeded=libmnl.so.0,libc.so.6"),
                ),
                Entry::symlink("./usr/sbin/ss", "../bin/ip", 0),
            ],
        );
        x.add(
            "static-tool",
            vec![Entry::file("./usr/sbin/probe", 0o755, 0, obj("static"))],
        );
        x
    }

    pub fn manifest(tools: &str) -> Manifest {
        Manifest::parse(
            "test",
            &format!(
                "libraries = [\"libgcc_s.so.1\"]\n[busybox]\npackage = \"busybox-static\"\n{tools}"
            ),
        )
        .unwrap()
    }

    const TOOLS: &str = "[[tools]]\nname = \"ip\"\npackage = \"iproute2\"\n\
        [[tools]]\nname = \"ss\"\npackage = \"iproute2\"\nargs = [\"-Z\", \"it's\"]\n\
        [[tools]]\nname = \"probe\"\npackage = \"static-tool\"\n";

    fn file(layout: &Layout, path: &str) -> (Vec<u8>, bool) {
        match layout.nodes.get(path) {
            Some(Node::File { data, executable }) => (data.clone(), *executable),
            other => panic!("{path}: {other:?}"),
        }
    }

    /// Seals a fake object by marking it; objects holding `noflags` have no entry.
    fn fake_seal(data: &[u8]) -> Option<Vec<u8>> {
        let fake = data.starts_with(b"\x7fELF\n") && !data.ends_with(b"noflags");
        fake.then(|| [data, b"\nnodeflib"].concat())
    }

    #[test]
    fn every_library_and_dynamic_tool_but_the_loader_searches_no_default_directory() {
        let mut layout = plan(&manifest(TOOLS), &packages(), "amd64", fake_elf).unwrap();
        let before = layout.clone();
        seal_search(&mut layout, fake_seal).unwrap();
        for (path, node) in &layout.nodes {
            let sealed = matches!(node, Node::File { data, .. } if data.ends_with(b"\nnodeflib"));
            let object = (path.starts_with("lib/") || path.starts_with("libexec/"))
                && matches!(node, Node::File { .. });
            let own = path == "lib/ld-linux-x86-64.so.2" || path == "lib/dlx-guard.so";
            assert_eq!(sealed, object && !own, "{path}");
            if !sealed {
                assert_eq!(before.nodes.get(path), Some(node), "{path}");
            }
        }
        assert!(file(&layout, "libexec/ip").0.ends_with(b"\nnodeflib"));
        assert!(file(&layout, "lib/libc.so.6").0.ends_with(b"\nnodeflib"));

        // A libc whose default search cannot be turned off is refused.
        let mut layout = plan(&manifest(TOOLS), &packages(), "amd64", fake_elf).unwrap();
        if let Some(Node::File { data, .. }) = layout.nodes.get_mut("lib/libc.so.6") {
            data.extend_from_slice(b"noflags");
        }
        let e = seal_search(&mut layout, fake_seal).unwrap_err().to_string();
        assert!(e.contains("lib/libc.so.6") && e.contains("NSS"), "{e}");
    }

    /// The data directories as glibc compiles them in: the default gconv path and its
    /// cache, the locale directory and archive, message catalogs (alone and in the
    /// default `NLSPATH`).
    const LIBC_DATA: &[u8] = b"\0/usr/lib/x86_64-linux-gnu/gconv\0gconv-modules\0\
        /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache\0/usr/lib/locale\0\
        /usr/lib/locale/locale-archive\0/usr/share/locale\0\
        /usr/share/locale/%L/%N:/usr/share/locale/%l/%N\0/usr/share/zoneinfo\0\
        /usr/lib/getconf\0";

    #[test]
    fn libc_reads_locales_gconv_modules_and_catalogs_from_no_directory_of_the_container() {
        let mut layout = plan(&manifest(TOOLS), &packages(), "amd64", fake_elf).unwrap();
        let set = |layout: &mut Layout, path: &str, extra: &[u8]| {
            if let Some(Node::File { data, .. }) = layout.nodes.get_mut(path) {
                data.extend_from_slice(extra);
            }
        };
        set(&mut layout, "lib/libc.so.6", LIBC_DATA);
        // BusyBox's static libc names the gconv directory only.
        set(
            &mut layout,
            "bin/busybox",
            b"\0/usr/lib/x86_64-linux-gnu/gconv\0",
        );
        // libsasl2's plugin directory, alone and in its configuration path.
        let sasl = b"\0/etc/sasl2:/etc/sasl:/usr/lib/x86_64-linux-gnu/sasl2:/usr/lib/sasl2\0\
            /usr/lib/x86_64-linux-gnu/sasl2\0";
        set(&mut layout, "lib/libmnl.so.0.2.0", sasl);
        let before = layout.clone();
        relocate_data_dirs(&mut layout, "x86_64-linux-gnu").unwrap();

        let libc = file(&layout, "lib/libc.so.6").0;
        let text = String::from_utf8_lossy(&libc[libc.len() - LIBC_DATA.len()..]).into_owned();
        let expected = "\0/.dlx/no/x86_64-linux-gnu/gconv\0gconv-modules\0\
            /.dlx/no/x86_64-linux-gnu/gconv/gconv-modules.cache\0/.dlx/no/locale\0\
            /.dlx/no/locale/locale-archive\0/.dlx/no/messages\0\
            /.dlx/no/messages/%L/%N:/.dlx/no/messages/%l/%N\0/usr/share/zoneinfo\0\
            /usr/lib/getconf\0";
        assert_eq!(text, expected);
        assert_eq!(libc.len(), file(&before, "lib/libc.so.6").0.len());
        let busybox = file(&layout, "bin/busybox").0;
        assert!(busybox.ends_with(b"\0/.dlx/no/x86_64-linux-gnu/gconv\0"));
        let lib = file(&layout, "lib/libmnl.so.0.2.0").0;
        assert!(
            lib.ends_with(
                b"\0/etc/sasl2:/etc/sasl:/.dlx/no/x86_64-linux-gnu/sasl2:/.dlx/no/sasl2\0\
                /.dlx/no/x86_64-linux-gnu/sasl2\0"
            ),
            "{}",
            String::from_utf8_lossy(&lib)
        );
        // Objects naming none of them are left as they were.
        for path in ["libexec/ip", "lib/ld-linux-x86-64.so.2", "bin/ip"] {
            assert_eq!(layout.nodes.get(path), before.nodes.get(path), "{path}");
        }

        // A libc that names no gconv directory of this architecture would go on
        // loading modules: refused.
        let mut layout = before.clone();
        let e = relocate_data_dirs(&mut layout, "aarch64-linux-gnu")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lib/libc.so.6") && e.contains("gconv directory 0 times"),
            "{e}"
        );
    }

    #[test]
    fn lays_out_busybox_wrappers_libexec_and_the_library_closure() {
        let layout = plan(&manifest(TOOLS), &packages(), "amd64", fake_elf).unwrap();
        // applets link to busybox, relative; tools win over applets of the same name
        assert_eq!(
            layout.nodes.get("bin/sh"),
            Some(&Node::Symlink("busybox".into()))
        );
        assert_eq!(
            layout.applets,
            ["[", "[[", "ash", "awk", "cat", "ls", "mount", "ps", "sh", "sleep", "vi"]
        );
        assert_eq!(file(&layout, "bin/busybox"), (busybox_bytes(), true));
        // dynamic tools: the real binary in libexec, a wrapper in bin
        assert!(file(&layout, "libexec/ip")
            .0
            .starts_with(b"\x7fELF\ninterp="));
        let (ip, exec) = file(&layout, "bin/ip");
        assert!(exec);
        assert_eq!(
            String::from_utf8(ip).unwrap(),
            format!(
                "#!/.dlx/bin/sh\n# dlx toolbox: ip with the toolbox's own loader and libraries\n\
                 # unset: what would make a loader or library load other code (LD_*, ...)\n{}\n\
                 exec /.dlx/lib/ld-linux-x86-64.so.2 --inhibit-cache --library-path /.dlx/lib \
                 --audit /.dlx/lib/dlx-guard.so --argv0 ip /.dlx/libexec/ip \"$@\"\n",
                unset_line("/.dlx/bin/busybox awk")
            )
        );
        // a static tool is itself in bin
        assert_eq!(file(&layout, "bin/probe"), (obj("static"), true));
        assert!(!layout.nodes.contains_key("libexec/probe"));
        // lib: the loader and the closure: real files under their own names, links
        // from the names asked for, and nothing unasked (gconv)
        assert_eq!(
            layout.libraries,
            [
                "dlx-guard.so",
                "ld-linux-x86-64.so.2",
                "libc.so.6",
                "libgcc_s.so.1",
                "libmnl.so.0",
                "libmnl.so.0.2.0"
            ]
        );
        assert_eq!(
            file(&layout, "lib/libmnl.so.0.2.0"),
            (obj("needed=libc.so.6"), false)
        );
        assert_eq!(
            layout.nodes.get("lib/libmnl.so.0"),
            Some(&Node::Symlink("libmnl.so.0.2.0".into()))
        );
        // the loader, made to read no preload file
        let (loader, exec) = file(&layout, "lib/ld-linux-x86-64.so.2");
        assert!(exec);
        assert_eq!(loader, seal_loader("ld.so", &loader_bytes()).unwrap());
        assert_ne!(loader, loader_bytes());
        assert!(!layout
            .nodes
            .keys()
            .any(|p| p == "no" || p.starts_with("no/")));
        assert_eq!(layout.loader.as_deref(), Some("ld-linux-x86-64.so.2"));
        let tools: Vec<(&str, &str, Linkage)> = layout
            .tools
            .iter()
            .map(|t| (t.name.as_str(), t.source.as_str(), t.linkage))
            .collect();
        assert_eq!(
            tools,
            [
                ("ip", "/usr/bin/ip", Linkage::Dynamic),
                ("ss", "/usr/sbin/ss", Linkage::Dynamic),
                ("probe", "/usr/sbin/probe", Linkage::Static)
            ]
        );
        // same input, same layout
        assert_eq!(
            plan(&manifest(TOOLS), &packages(), "amd64", fake_elf).unwrap(),
            layout
        );
    }

    #[test]
    fn wrapper_args_are_quoted_and_set_nothing_in_the_environment() {
        let layout = plan(&manifest(TOOLS), &packages(), "amd64", fake_elf).unwrap();
        let ss = String::from_utf8(file(&layout, "bin/ss").0).unwrap();
        assert!(
            ss.ends_with("--argv0 ss /.dlx/libexec/ss -Z 'it'\\''s' \"$@\"\n"),
            "{ss}"
        );
        for script in [ss, wrapper("x", None, &[], false)] {
            let lines: Vec<&str> = script.lines().collect();
            assert_eq!(lines[0], "#!/.dlx/bin/sh");
            // comments, the unset line (awk run by absolute path, as busybox), the exec
            assert!(lines[1].starts_with("# ") && lines[2].starts_with("# "));
            assert_eq!(lines[3], unset_line("/.dlx/bin/busybox awk"));
            assert!(lines[4].starts_with("exec /.dlx/"), "{script}");
            assert_eq!(lines.len(), 5);
            assert!(!script.contains("export"), "{script}");
            assert_eq!(script.matches("exec ").count(), 1);
        }
        assert_eq!(
            wrapper("x", None, &["a b".into()], false)
                .lines()
                .last()
                .unwrap(),
            "exec /.dlx/libexec/x 'a b' \"$@\""
        );
    }

    /// A tool reaching libcrypto, here only through another library (as curl does
    /// through libcurl and libssl), reads the toolbox's OpenSSL configuration, which
    /// the tree then holds; the other tools get no variable at all.
    #[test]
    fn tools_linked_with_libcrypto_read_the_toolboxs_openssl_configuration() {
        let lib = "./usr/lib/x86_64-linux-gnu";
        let mut files = packages();
        files.add(
            "libssl3",
            vec![
                Entry::file(
                    &format!("{lib}/libcrypto.so.3"),
                    0o644,
                    0,
                    obj("needed=libc.so.6"),
                ),
                Entry::file(
                    &format!("{lib}/libssl.so.3"),
                    0o644,
                    0,
                    obj("needed=libcrypto.so.3,libc.so.6"),
                ),
                Entry::file(
                    &format!("{lib}/libcurl.so.4"),
                    0o644,
                    0,
                    obj("needed=libssl.so.3,libc.so.6"),
                ),
            ],
        );
        files.add(
            "curl",
            vec![Entry::file(
                "./usr/bin/curl",
                0o755,
                0,
                obj("interp=/lib64/ld-linux-x86-64.so.2\nneeded=libcurl.so.4,libc.so.6"),
            )],
        );
        let tools = format!("{TOOLS}[[tools]]\nname = \"curl\"\npackage = \"curl\"\n");
        let layout = plan(&manifest(&tools), &files, "amd64", fake_elf).unwrap();

        let curl = String::from_utf8(file(&layout, "bin/curl").0).unwrap();
        let lines: Vec<&str> = curl.lines().collect();
        assert_eq!(
            lines[5],
            format!("export OPENSSL_CONF={OPENSSL_CONF}"),
            "{curl}"
        );
        assert!(lines[6].starts_with("exec /.dlx/lib/"), "{curl}");
        assert_eq!(
            format!("{}/{OPENSSL_CNF_PATH}", crate::toolbox::MOUNT_POINT),
            OPENSSL_CONF
        );
        let (cnf, executable) = file(&layout, OPENSSL_CNF_PATH);
        assert!(!executable);
        // comments only: nothing for OpenSSL to act on
        let cnf = String::from_utf8(cnf).unwrap();
        assert!(cnf.lines().all(|l| l.starts_with('#')), "{cnf}");
        assert_eq!(layout.nodes.get("etc"), Some(&Node::Dir));
        for other in ["bin/ip", "bin/ss"] {
            let script = String::from_utf8(file(&layout, other).0).unwrap();
            assert!(!script.contains("OPENSSL_CONF="), "{other}: {script}");
        }

        // Without such a tool, no variable and no file.
        let layout = plan(&manifest(TOOLS), &files, "amd64", fake_elf).unwrap();
        assert!(!layout.nodes.contains_key(OPENSSL_CNF_PATH));
        assert!(!layout.nodes.contains_key("etc"));
    }

    /// The unset line run for real, by the host's `sh` and `awk`: it removes every
    /// variable of the lists, by prefix and by name, and nothing else, whatever the
    /// other names in the environment.
    #[test]
    fn the_unset_line_removes_exactly_the_listed_variables() {
        let removed = [
            "LD_PRELOAD",
            "LD_AUDIT",
            "LD_LIBRARY_PATH",
            "LD_SOMETHING_NEW_2",
            "LD_",
            "MALLOC_ARENA_MAX",
            "OPENSSL_CONF",
            "GLIBC_TUNABLES",
            "GCONV_PATH",
            "TMPDIR",
            "KRB5_CONFIG",
        ];
        let kept = [
            "PATH",
            "HOME",
            "LANG",
            "LD",
            "OLD_PRELOAD",
            "ld_preload",
            "GCONV_PATHS",
            "XGCONV_PATH",
            "SSL_CERT_FILE",
            "http_proxy",
        ];
        let script = format!("{}\nexec env -0", unset_line("awk"));
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(&script).env_clear();
        for name in removed.iter().chain(&kept) {
            // values that look like more variables fool nothing
            cmd.env(name, format!("/evil {name}\nLD_PRELOAD=/x\n"));
        }
        cmd.env("PATH", "/usr/bin:/bin");
        // a name sh cannot unset, and one with a newline: neither stops the script
        cmd.env("LD_X-Y", "1").env("A\nLD_B", "1");
        let out = cmd.output().expect("run sh");
        assert!(out.status.success(), "{out:?}");
        let env = String::from_utf8(out.stdout).unwrap();
        let names: Vec<&str> = env
            .split('\0')
            .filter_map(|entry| entry.split_once('=').map(|(n, _)| n))
            .collect();
        for name in removed {
            assert!(!names.contains(&name), "{name} kept:\n{env}");
        }
        for name in kept {
            assert!(names.contains(&name), "{name} removed:\n{env}");
        }
        // awk failing stops the script before the tool
        let script = format!("{}\necho started", unset_line("false"));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(126), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
    }

    #[test]
    fn the_loader_is_sealed_by_replacing_its_one_preload_path() {
        let data = loader_bytes();
        let sealed = seal_loader("ld.so", &data).unwrap();
        assert_eq!(sealed.len(), data.len());
        let at = data
            .windows(PRELOAD_FILE.len())
            .position(|w| w == PRELOAD_FILE)
            .unwrap();
        // the same bytes but for the path, which is the stand-in, NUL-padded
        assert_eq!(sealed[..at], data[..at]);
        assert_eq!(
            sealed[at + PRELOAD_FILE.len()..],
            data[at + PRELOAD_FILE.len()..]
        );
        assert_eq!(&sealed[at..at + 19], b"/.dlx/no/preload\0\0\0");
        assert_eq!(NO_PRELOAD, "/.dlx/no/preload");
        // nothing left to seal in a sealed loader
        let e = seal_loader("ld.so", &sealed).unwrap_err().to_string();
        assert!(e.contains("ld.so ") && e.contains(" 0 times"), "{e}");
        // a path that only starts like it is not it
        let mut longer = obj("loader");
        longer.extend_from_slice(b"\0/etc/ld.so.preload.d\0");
        assert!(matches!(
            seal_loader("ld.so", &longer),
            Err(ToolboxError::LoaderPreload {
                paths: 0,
                mentions: 1,
                ..
            })
        ));
        // another mention beside the path (an inlined copy, say): unknown ground
        let mut inlined = data.clone();
        inlined.extend_from_slice(b"\x48\xb8/etc/ld.so.preload\x48");
        assert!(matches!(
            seal_loader("ld.so", &inlined),
            Err(ToolboxError::LoaderPreload {
                paths: 1,
                mentions: 2,
                ..
            })
        ));
        // two copies: which one the loader reads is unknown
        let mut twice = data.clone();
        twice.extend_from_slice(b"/etc/ld.so.preload\0");
        let e = seal_loader("/usr/lib/ld.so", &twice)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/usr/lib/ld.so") && e.contains(" 2 times") && e.contains("hint:"),
            "{e}"
        );
    }

    #[test]
    fn missing_pieces_are_named() {
        let err = |tools: &str, x: &Extracted| {
            plan(&manifest(tools), x, "amd64", fake_elf)
                .unwrap_err()
                .to_string()
        };
        // The test packages with one file of `package` replaced.
        let with = |package: &str, path: &str, mode: u32, data: Vec<u8>| {
            let mut x = packages();
            x.add(package, vec![Entry::file(path, mode, 0, data)]);
            x
        };
        let e = err(
            "[[tools]]\nname = \"nope\"\npackage = \"iproute2\"\n",
            &packages(),
        );
        assert!(e.contains("nope") && e.contains("iproute2"), "{e}");
        // the tool must come from its own package
        let e = err(
            "[[tools]]\nname = \"ip\"\npackage = \"libc6\"\n",
            &packages(),
        );
        assert!(e.contains("no program ip"), "{e}");
        let x = with(
            "libmnl0",
            "./usr/lib/x86_64-linux-gnu/libmnl.so.0.2.0",
            0o644,
            obj("needed=libgone.so.1"),
        );
        let e = err(TOOLS, &x);
        assert!(
            e.contains("libgone.so.1") && e.contains("libmnl.so.0.2.0"),
            "{e}"
        );
        let x = with(
            "busybox-static",
            "./usr/bin/busybox",
            0o755,
            obj("interp=/lib/ld.so"),
        );
        assert!(err(TOOLS, &x).contains("not static"));
        let x = with(
            "busybox-static",
            "./usr/bin/busybox",
            0o755,
            busybox_bytes()
                .split(|b| *b == 0)
                .filter(|name| *name != b"awk")
                .collect::<Vec<_>>()
                .join(&0),
        );
        let e = err(TOOLS, &x);
        assert!(
            e.contains("no awk applet") && e.contains("busybox-static"),
            "{e}"
        );
        // a loader whose preload file cannot be found fails the assembly
        let x = with(
            "libc6",
            "./usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            0o755,
            obj("loader"),
        );
        let e = err(TOOLS, &x);
        assert!(
            e.contains("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2") && e.contains("preload"),
            "{e}"
        );
        let e = plan(&manifest(TOOLS), &packages(), "arm64", fake_elf)
            .unwrap_err()
            .to_string();
        assert!(e.contains("arm64"), "{e}");
    }
}
