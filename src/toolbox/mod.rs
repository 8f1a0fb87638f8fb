//! The toolbox: trusted tools a `dlx exec` session finds at `/.dlx` inside the
//! container, whatever the container has.
//!
//! The default toolbox is assembled from Debian's packages, through the same verified
//! archive client and download cache as `dlx build` ([`crate::apt`]):
//! [`manifest`] (what goes in, `toolbox/toolbox.toml`) → resolve the packages and their
//! Depends closure → fetch (verified, cached by SHA-256) → [`layout`] (the tree, in
//! memory: BusyBox and its applets, the tools, wrappers that start dynamic tools with
//! the toolbox's own loader, the libraries they need) → [`store`] (written once per
//! digest under the cache, renamed into place, named by a per-arch pointer).
//! [`user_dir`] checks an operator's own directory (`--toolbox DIR`) instead.
//!
//! [`prepare`] is what `dlx exec` calls on every session: with a toolbox in the cache it
//! reads one pointer and one small JSON file and touches no network.

pub mod layout;
pub mod manifest;
pub mod store;
pub mod user_dir;

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;

use crate::apt::{self, AptError, Package};
use crate::build::{self, BuildError};
use crate::deb::{Deb, DebError};
use crate::output;
use layout::{Extracted, Layout};
use manifest::Manifest;
use store::{Current, Description, Hold, Installed, PackageRecord, Store, ToolRecord};

/// Where a toolbox is mounted inside the container.
pub const MOUNT_POINT: &str = "/.dlx";
/// The default toolbox's tool directory inside the container.
pub const BIN: &str = "/.dlx/bin";
/// The default toolbox's library directory inside the container.
pub const LIB: &str = "/.dlx/lib";
/// The default toolbox's directory of dynamic binaries inside the container.
pub const LIBEXEC: &str = "/.dlx/libexec";
/// What the toolbox's loader reads instead of `/etc/ld.so.preload`: a path inside the
/// read-only toolbox mount that no toolbox holds, so the loader never preloads
/// anything (see [`layout::seal_loader`]).
pub const NO_PRELOAD: &str = "/.dlx/no/preload";
/// The OpenSSL configuration the wrappers of tools linked with libcrypto name in
/// `OPENSSL_CONF`, in place of the container's `openssl.cnf` (see
/// [`layout::OPENSSL_CNF`]).
pub const OPENSSL_CONF: &str = "/.dlx/etc/openssl.cnf";
/// The audit module the wrappers of dynamic tools hand the loader (`--audit`): it
/// refuses every object outside [`LIB`], so no configuration of the container makes
/// a tool load the container's code by path (see `toolbox/guard.c`).
pub const GUARD: &str = "/.dlx/lib/dlx-guard.so";
/// [`GUARD`]'s bytes, built from `toolbox/guard.c` by `build.rs` for dlx's own
/// target, which is the architecture of every toolbox dlx assembles (the host's).
pub const GUARD_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dlx-guard.so"));

/// Errors of the toolbox; each names what it is about.
#[derive(Debug, thiserror::Error)]
pub enum ToolboxError {
    #[error("the toolbox in {dir} was removed twice while this session looked for it\nhint: another dlx is replacing it (`dlx toolbox fetch`); try again")]
    Collected { dir: PathBuf },
    #[error("invalid toolbox manifest {origin}: {message}")]
    Manifest { origin: String, message: String },
    #[error(transparent)]
    Apt(#[from] AptError),
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("{path} holds {found}, the index promised {expected}")]
    PackageMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("package {package} has no program {tool} in /usr/bin, /usr/sbin, /bin or /sbin")]
    ToolMissing { tool: String, package: String },
    #[error("{path} is not an ELF program")]
    NotElf { path: String },
    #[error("{path} is not built for {arch}")]
    WrongArch { path: String, arch: String },
    #[error("{path} needs libraries but names no program interpreter")]
    NoLoader { path: String },
    #[error("{path} asks for loader {loader}, other tools for {other}")]
    LoaderConflict {
        path: String,
        loader: String,
        other: String,
    },
    #[error("library {library} needed by {needed_by} is in none of the toolbox's packages")]
    LibraryMissing { library: String, needed_by: String },
    #[error("library {library} needed by {needed_by} is named by path, which the toolbox does not support")]
    LibraryPath { library: String, needed_by: String },
    #[error("two different libraries are named {name} (one is {path})")]
    LibraryClash { name: String, path: String },
    #[error("the busybox of package {package} is not static")]
    BusyboxNotStatic { package: String },
    #[error("no applet table (with sh) found in the busybox of package {package}")]
    BusyboxApplets { package: String },
    #[error("the busybox of package {package} has no {applet} applet, which the toolbox's wrappers need")]
    BusyboxApplet { package: String, applet: String },
    #[error("loader {path} names /etc/ld.so.preload {paths} times and mentions ld.so.preload {mentions} times, where dlx knows how to make it ignore the container's preload file only when both are once\nhint: this glibc is not one dlx knows; use `--toolbox DIR` with static tools, or `--toolbox none`")]
    LoaderPreload {
        path: String,
        paths: usize,
        mentions: usize,
    },
    #[error("the toolbox's {path} has no DT_FLAGS_1 entry, so it cannot be kept from loading NSS modules out of the container\nhint: this libc is built unlike Debian's; report it")]
    LibcSearch { path: String },
    #[error("the toolbox's {path} names its locale directory {locale} times and its gconv directory {gconv} times, where dlx must find both to keep it from loading the container's locales and iconv modules\nhint: this libc is built unlike Debian's; report it")]
    LibcDataDirs {
        path: String,
        locale: usize,
        gconv: usize,
    },
    #[error("failed to encode the toolbox description")]
    Json(#[source] serde_json::Error),
    #[error("cannot {op} {path}: {source}\nhint: check that the cache directory is writable, or set DLX_CACHE_DIR")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("toolbox cache {path} may be changed by others (owner uid {uid}, mode {mode:04o})\nhint: remove it (`rm -rf {path}`) and run `dlx toolbox fetch`")]
    UnsafeTree { path: PathBuf, uid: u32, mode: u32 },
    #[error("no default toolbox has been assembled for {arch} yet\nhint: run `dlx toolbox fetch` (it needs the Debian archive once)")]
    NotAssembled { arch: String },
    #[error("no Debian architecture known for this host ({machine})")]
    UnknownHostArch { machine: String },
    #[error("toolbox directory {path} does not exist\nhint: pass a directory of static tools, or `--toolbox none`")]
    DirMissing { path: PathBuf },
    #[error("toolbox {path} is not a directory\nhint: pass a directory of static tools (with or without a bin/ inside)")]
    NotADirectory { path: PathBuf },
    #[error("toolbox path {path} can be changed by others than root (owner uid {uid}, mode {mode:04o}), and its programs run inside containers\nhint: `chown root:root` it and `chmod go-w` it")]
    Writable { path: PathBuf, uid: u32, mode: u32 },
    #[error("toolbox directory {path} has more than {limit} entries\nhint: pass a directory holding only the tools")]
    DirTooLarge { path: PathBuf, limit: usize },
}

/// Which toolbox a session gets (`--toolbox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolboxChoice {
    /// The default toolbox, assembled from Debian's packages.
    Default,
    /// `--toolbox DIR`: the operator's own directory of static tools.
    Dir(PathBuf),
    /// `--toolbox none`: only what the container has.
    None,
}

/// Where a toolbox came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The default toolbox; the digest of its tree.
    Default {
        digest: String,
    },
    Dir,
}

/// A toolbox ready to be mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolbox {
    /// The host directory to mount (read-only) at [`MOUNT_POINT`].
    pub root: PathBuf,
    /// The tool directory inside the container: [`BIN`], or [`MOUNT_POINT`] for a
    /// flat `--toolbox DIR`.
    pub bin: &'static str,
    pub source: Source,
    /// The default toolbox's tree is locked against removal while this lives.
    pub hold: Option<Hold>,
}

impl Toolbox {
    fn from_installed(installed: Installed, hold: Hold) -> Toolbox {
        Toolbox {
            root: installed.root,
            bin: BIN,
            source: Source::Default {
                digest: installed.description.digest,
            },
            hold: Some(hold),
        }
    }

    /// The toolbox's shell inside the container, when it has one.
    pub fn shell(&self) -> Option<String> {
        let rel = self.bin.strip_prefix(MOUNT_POINT).unwrap_or("");
        let rel = rel.trim_start_matches('/');
        let host = self.root.join(rel).join("sh");
        std::fs::metadata(host)
            .is_ok()
            .then(|| format!("{}/sh", self.bin))
    }
}

/// How to find or make the default toolbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareOptions {
    /// The dlx cache root (`apt::default_cache_dir()`); trees go under `toolbox/`.
    pub cache_dir: PathBuf,
    /// Debian architecture (the host's).
    pub arch: String,
    /// Debian mirror; `None`: the host's apt sources, else deb.debian.org.
    pub mirror: Option<String>,
    /// Draw progress on stderr (it is a terminal).
    pub progress: bool,
}

impl PrepareOptions {
    /// The defaults for this host: the dlx cache (`DLX_CACHE_DIR`, `XDG_CACHE_HOME`,
    /// `HOME` decide where), the host's architecture, the default mirror, progress
    /// when stderr is a terminal.
    pub fn for_host() -> Result<PrepareOptions, ToolboxError> {
        Ok(PrepareOptions {
            cache_dir: apt::default_cache_dir(),
            arch: host_arch()?.to_string(),
            mirror: None,
            progress: std::io::stderr().is_terminal(),
        })
    }
}

/// The Debian architecture of the host.
pub fn host_arch() -> Result<&'static str, ToolboxError> {
    build::tree::host_arch().ok_or_else(|| ToolboxError::UnknownHostArch {
        machine: std::env::consts::ARCH.to_string(),
    })
}

/// The toolbox for a session. `Default` uses the cached tree the pointer names
/// (no network); only when there is none is it assembled now (said on stderr).
/// `Dir` checks the directory; `None` gives `Ok(None)`.
pub fn prepare(
    choice: &ToolboxChoice,
    opts: &PrepareOptions,
) -> Result<Option<Toolbox>, ToolboxError> {
    match choice {
        ToolboxChoice::None => Ok(None),
        ToolboxChoice::Dir(dir) => user_dir::check(dir, nix::unistd::geteuid().as_raw()).map(Some),
        ToolboxChoice::Default => {
            let store = Store::new(&opts.cache_dir);
            // A tree found is held before it is used; one that another dlx's fetch
            // removed in between is looked for again (that fetch moved the pointer).
            for _ in 0..2 {
                let installed = default_tree(&store, opts)?;
                if let Some(hold) = store.hold(&installed)? {
                    return Ok(Some(Toolbox::from_installed(installed, hold)));
                }
            }
            Err(ToolboxError::Collected {
                dir: store.dir().to_path_buf(),
            })
        }
    }
}

/// The tree the pointer names, assembled first when it is missing or stale.
fn default_tree(store: &Store, opts: &PrepareOptions) -> Result<Installed, ToolboxError> {
    let manifest_sha = manifest::text_sha256(manifest::BUILTIN);
    match store.current(&opts.arch, &manifest_sha)? {
        Current::Valid(installed) => Ok(installed),
        Current::Stale(old) => {
            output::notice(
                "the cached toolbox was made by another dlx version; assembling the current one",
            );
            match fetch(opts) {
                Ok(fetched) => Ok(fetched.installed),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot assemble the current toolbox");
                    output::notice(format!(
                        "using the older toolbox {} ({e})",
                        old.root.display()
                    ));
                    Ok(old)
                }
            }
        }
        Current::Missing => {
            output::notice("no toolbox in the cache yet; assembling it from the Debian archive (once; `dlx toolbox fetch` does this ahead of time)");
            Ok(fetch(opts)?.installed)
        }
    }
}

/// The default toolbox the pointer names, without assembling anything: what
/// `dlx toolbox` shows. The flag is true when it comes from another manifest or
/// assembler version.
pub fn current(opts: &PrepareOptions) -> Result<(Installed, bool), ToolboxError> {
    let store = Store::new(&opts.cache_dir);
    match store.current(&opts.arch, &manifest::text_sha256(manifest::BUILTIN))? {
        Current::Valid(installed) => Ok((installed, false)),
        Current::Stale(installed) => Ok((installed, true)),
        Current::Missing => Err(ToolboxError::NotAssembled {
            arch: opts.arch.clone(),
        }),
    }
}

/// The outcome of [`fetch`].
#[derive(Debug, Clone)]
pub struct Fetched {
    pub installed: Installed,
    /// False when the tree of these exact packages was already in the cache.
    pub assembled: bool,
    /// The unused trees removed once the pointer named this one.
    pub removed: Vec<PathBuf>,
}

/// Resolve the default toolbox's packages against the archive now, assemble the tree
/// unless the cache has it, and point `current-<arch>` at it.
pub fn fetch(opts: &PrepareOptions) -> Result<Fetched, ToolboxError> {
    let manifest = Manifest::builtin()?;
    let manifest_sha = manifest::text_sha256(manifest::BUILTIN);
    let distro_info = build::distro_info(build::DEFAULT_DISTRO)?;
    let distro: apt::Distro = distro_info.id.parse()?;
    let archive = apt::Archive::open(apt::ArchiveConfig {
        mirror: opts.mirror.clone().unwrap_or_else(apt::default_mirror),
        security_mirror: None,
        distro,
        arch: opts.arch.clone(),
        cache_dir: opts.cache_dir.clone(),
        progress: opts.progress,
        extra_keys: Vec::new(),
    })?;
    let roots = manifest.packages();
    let root_refs: Vec<&str> = roots.iter().map(String::as_str).collect();
    let resolved = archive.resolve(&root_refs)?;
    let exclude: HashSet<String> = manifest.exclude.iter().cloned().collect();
    let kept: HashSet<String> = apt::resolve::prune(&resolved, &roots, &exclude, &opts.arch)
        .map_err(AptError::from)?
        .into_iter()
        .collect();
    let packages: Vec<Package> = resolved
        .into_iter()
        .filter(|p| kept.contains(&p.name))
        .collect();
    let records: Vec<PackageRecord> = packages
        .iter()
        .map(|p| PackageRecord {
            name: p.name.clone(),
            version: p.version.clone(),
            sha256: p.sha256.clone(),
            suite: p.suite.clone(),
        })
        .collect();
    let digest = store::digest(&manifest_sha, distro_info.id, &opts.arch, &records);
    let store = Store::new(&opts.cache_dir);
    if let Some(installed) = store.open(&digest, &opts.arch)? {
        store.set_current(&opts.arch, &digest)?;
        return Ok(Fetched {
            installed,
            assembled: false,
            removed: store.collect(),
        });
    }

    let paths = archive.fetch(&packages)?;
    let spinner = opts.progress.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message("assembling the toolbox");
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let assembled =
        assemble(&manifest, &packages, &paths, distro_info, &opts.arch).and_then(|layout| {
            let description = describe(
                &layout,
                &records,
                digest.clone(),
                &manifest_sha,
                distro_info.id,
                &opts.arch,
            );
            store.install(&layout, &description)
        });
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let installed = assembled?;
    store.set_current(&opts.arch, &digest)?;
    Ok(Fetched {
        installed,
        assembled: true,
        removed: store.collect(),
    })
}

/// Open the fetched packages (checking each is what the index promised), merge their
/// files and lay out the tree.
fn assemble(
    manifest: &Manifest,
    packages: &[Package],
    paths: &[PathBuf],
    distro: build::DistroInfo,
    arch: &str,
) -> Result<Layout, ToolboxError> {
    let mut files = Extracted::new(distro.usr_merge);
    for (package, path) in packages.iter().zip(paths) {
        let deb = Deb::open(path)?;
        if deb.package() != package.name || deb.version() != package.version {
            return Err(ToolboxError::PackageMismatch {
                path: path.clone(),
                found: format!("{} {}", deb.package(), deb.version()),
                expected: format!("{} {}", package.name, package.version),
            });
        }
        files.add(
            &package.name,
            build::package_entries(&deb, distro.usr_merge)?,
        );
    }
    let mut layout = layout::plan(manifest, &files, arch, build::tree::elf_info)?;
    layout::seal_search(&mut layout, build::tree::without_default_search)?;
    layout::relocate_data_dirs(&mut layout, build::tree::triplet(arch))?;
    Ok(layout)
}

/// The `toolbox.json` of a layout.
fn describe(
    layout: &Layout,
    packages: &[PackageRecord],
    digest: String,
    manifest_sha: &str,
    distro: &str,
    arch: &str,
) -> Description {
    let version_of = |name: &str| {
        packages
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.version.clone())
            .unwrap_or_default()
    };
    Description {
        digest,
        assembler: store::ASSEMBLER_VERSION,
        manifest_sha256: manifest_sha.to_string(),
        distro: distro.to_string(),
        arch: arch.to_string(),
        mount: MOUNT_POINT.to_string(),
        bin: BIN.to_string(),
        loader: layout.loader.clone(),
        preload: layout.loader.as_ref().map(|_| NO_PRELOAD.to_string()),
        guard: layout.loader.as_ref().map(|_| GUARD.to_string()),
        unset: layout::UNSET_PREFIXES
            .iter()
            .map(|p| format!("{p}*"))
            .chain(layout::UNSET_NAMES.iter().map(|n| n.to_string()))
            .collect(),
        size: layout.size(),
        tools: layout
            .tools
            .iter()
            .map(|t| ToolRecord {
                name: t.name.clone(),
                package: t.package.clone(),
                version: version_of(&t.package),
                source: t.source.clone(),
                linkage: t.linkage,
            })
            .collect(),
        applets: layout.applets.clone(),
        libraries: layout.libraries.clone(),
        packages: packages.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use layout::tests::{fake_elf, manifest, packages};

    /// What build.rs made of `toolbox/guard.c`: a shared object for this host, with
    /// no loader, no library and no symbol left to bind, exporting the audit
    /// interface, and admitting [`LIB`] (which guard.c spells out itself).
    #[test]
    fn guard_is_a_self_contained_audit_module_that_admits_the_toolbox_library_directory() {
        use goblin::elf::{header::ET_DYN, sym::STB_GLOBAL, Elf};
        let elf = Elf::parse(GUARD_OBJECT).unwrap();
        assert_eq!(elf.header.e_type, ET_DYN);
        assert_eq!(
            Some(elf.header.e_machine),
            crate::build::tree::machine_of(host_arch().unwrap())
        );
        assert!(elf.interpreter.is_none() && elf.libraries.is_empty());
        let name = |s: &goblin::elf::Sym| elf.dynstrtab.get_at(s.st_name).unwrap_or("");
        let mut exported: Vec<&str> = elf
            .dynsyms
            .iter()
            .filter(|s| s.st_shndx != 0 && s.st_bind() == STB_GLOBAL)
            .map(|s| name(&s))
            .collect();
        exported.sort_unstable();
        assert_eq!(exported, ["la_objsearch", "la_version"]);
        let undefined: Vec<&str> = elf
            .dynsyms
            .iter()
            .filter(|s| s.st_shndx == 0 && !name(s).is_empty())
            .map(|s| name(&s))
            .collect();
        assert!(undefined.is_empty(), "{undefined:?}");
        let dir = format!("{LIB}/\0");
        assert!(memchr::memmem::find(GUARD_OBJECT, dir.as_bytes()).is_some());
        assert_eq!(GUARD, format!("{LIB}/dlx-guard.so"));
    }

    #[test]
    fn the_view_mounts_the_toolbox_where_its_wrappers_expect_it() {
        assert_eq!(MOUNT_POINT, format!("/{}", crate::sys::TOOLBOX_NAME));
        assert!(BIN.starts_with(MOUNT_POINT) && LIB.starts_with(MOUNT_POINT));
        // the loader's stand-in preload file is under the read-only mount, where the
        // container cannot create it, and in no directory a toolbox holds
        let rest = NO_PRELOAD.strip_prefix(&format!("{MOUNT_POINT}/")).unwrap();
        let top = rest.split('/').next().unwrap();
        assert!(!["bin", "lib", "libexec", store::DESCRIPTION].contains(&top));
    }

    fn opts(cache: &std::path::Path) -> PrepareOptions {
        PrepareOptions {
            cache_dir: cache.to_path_buf(),
            arch: "amd64".into(),
            // nothing listens here: any attempt to reach an archive fails at once
            mirror: Some("http://127.0.0.1:9/debian".into()),
            progress: false,
        }
    }

    #[test]
    fn none_and_dir_choices_need_no_cache() {
        let cache = tempfile::tempdir().unwrap();
        assert_eq!(
            prepare(&ToolboxChoice::None, &opts(cache.path())).unwrap(),
            None
        );
        let err = prepare(
            &ToolboxChoice::Dir("/nonexistent/tools".into()),
            &opts(cache.path()),
        )
        .unwrap_err();
        assert!(matches!(err, ToolboxError::DirMissing { .. }), "{err}");
    }

    /// An assembled (fake) tree behind the pointer is used as is: no archive.
    #[test]
    fn default_choice_uses_the_cached_tree_without_the_network() {
        let cache = tempfile::tempdir().unwrap();
        let o = opts(cache.path());
        assert!(matches!(
            current(&o),
            Err(ToolboxError::NotAssembled { .. })
        ));
        let m = manifest("[[tools]]\nname = \"ip\"\npackage = \"iproute2\"\n");
        let layout = layout::plan(&m, &packages(), "amd64", fake_elf).unwrap();
        let sha = manifest::text_sha256(manifest::BUILTIN);
        let records = vec![PackageRecord {
            name: "iproute2".into(),
            version: "6.15.0-1".into(),
            sha256: "ab".repeat(32),
            suite: "trixie".into(),
        }];
        let digest = store::digest(&sha, "debian13", "amd64", &records);
        let d = describe(&layout, &records, digest.clone(), &sha, "debian13", "amd64");
        assert_eq!(d.tools[0].version, "6.15.0-1");
        assert_eq!(d.loader.as_deref(), Some("ld-linux-x86-64.so.2"));
        assert_eq!(d.preload.as_deref(), Some(NO_PRELOAD));
        assert!(
            d.unset.contains(&"LD_*".to_string()) && d.unset.contains(&"GCONV_PATH".into()),
            "{:?}",
            d.unset
        );
        let store = Store::new(cache.path());
        store.install(&layout, &d).unwrap();
        store.set_current("amd64", &digest).unwrap();

        let start = std::time::Instant::now();
        let tb = prepare(&ToolboxChoice::Default, &o).unwrap().unwrap();
        let took = start.elapsed();
        assert_eq!(tb.root, cache.path().join("toolbox").join(&digest));
        assert_eq!(tb.bin, "/.dlx/bin");
        assert_eq!(
            tb.source,
            Source::Default {
                digest: digest.clone()
            }
        );
        assert_eq!(tb.shell().as_deref(), Some("/.dlx/bin/sh"));
        assert!(took < std::time::Duration::from_millis(50), "{took:?}");
        let (shown, stale) = current(&o).unwrap();
        assert_eq!((shown.description, stale), (d, false));
    }
}
