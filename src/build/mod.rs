//! Image assembly: a tier chain + variant + the tier's .deb files -> an
//! [`Image`](crate::oci::Image). One layer per package (its data tar, unmodified
//! except for the Debian 13 merged-/usr rewrite, plus its status.d files), then the
//! tier's generated layers, tier by tier, then `--add` files; config per variant.
//!
//! Fetching packages is not done here: callers pass the opened [`Deb`]s by name,
//! so the result depends only on the packages' bytes and the request.

pub mod generated;
pub mod jks;
pub mod layers;
pub mod ldcache;
pub mod sbom;
pub mod tier;
pub mod tree;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::PathBuf;

use crate::deb::{Deb, DebError};
use crate::oci::{Entry, Image, ImageConfig, Kind, Layer, LayerWriter, OciError, Platform};
use layers::{Inputs, LayerCache};
use tier::{Generated, Tier};
use tree::{ElfProblem, Tree};

/// Errors while planning or assembling an image.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("unknown tier {tier}\nhint: built-in tiers are {known}")]
    UnknownTier { tier: String, known: String },
    #[error("unknown variant {variant}\nhint: variants are latest, nonroot, debug, debug-nonroot")]
    UnknownVariant { variant: String },
    #[error("unsupported distro {distro}\nhint: use debian13 or debian12")]
    UnknownDistro { distro: String },
    #[error("tier {tier} is not available for {distro}\nhint: it is defined for {available}")]
    TierDistro {
        tier: String,
        distro: String,
        available: String,
    },
    #[error("invalid tier file for {tier}: {message}")]
    TierFile { tier: String, message: String },
    #[error("tier {tier} is its own ancestor")]
    TierCycle { tier: String },
    #[error("package {package} was not supplied to the image assembly")]
    MissingPackage { package: String },
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error("failed to read the data of package {package}")]
    PackageData {
        package: String,
        #[source]
        source: std::io::Error,
    },
    #[error("package {package} has an entry of unsupported type at {path}")]
    EntryType { package: String, path: String },
    #[error("package {package} has a non UTF-8 path")]
    PathEncoding { package: String },
    #[error("package {package} has no certificates under /usr/share/ca-certificates")]
    NoCertificates { package: String },
    #[error("package {package} has no {path}")]
    MissingFile { package: String, path: String },
    #[error("no applet table found in the busybox binary of package {package}")]
    BusyboxApplets { package: String },
    #[error("failed to write layer {layer}")]
    Layer {
        layer: String,
        #[source]
        source: OciError,
    },
    #[error("invalid --add {spec}: expected SRC:DST with an absolute DST")]
    AddSpec { spec: String },
    #[error("failed to read --add source {path}")]
    AddRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} cannot run on {image}: {reason}{hint}")]
    AddRefused {
        path: PathBuf,
        image: String,
        reason: String,
        hint: String,
    },
    #[error("failed to build the java trust store from package {package}")]
    Jks {
        package: String,
        #[source]
        source: jks::JksError,
    },
    #[error(transparent)]
    LdCache(#[from] ldcache::LdCacheError),
    #[error("invalid --env {value}: expected KEY=VALUE")]
    EnvSpec { value: String },
}

/// The distro `dlx build` (and the default toolbox) uses unless told otherwise.
pub const DEFAULT_DISTRO: &str = "debian13";

/// What dlx knows about a distro release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistroInfo {
    pub id: &'static str,
    pub version_id: &'static str,
    pub codename: &'static str,
    /// Rewrite `/bin`, `/lib`, ... entries to `/usr/...` (Debian 13).
    pub usr_merge: bool,
}

/// Facts for `debian12` / `debian13`.
pub fn distro_info(id: &str) -> Result<DistroInfo, BuildError> {
    match id {
        "debian12" => Ok(DistroInfo {
            id: "debian12",
            version_id: "12",
            codename: "bookworm",
            usr_merge: false,
        }),
        "debian13" => Ok(DistroInfo {
            id: "debian13",
            version_id: "13",
            codename: "trixie",
            usr_merge: true,
        }),
        other => Err(BuildError::UnknownDistro {
            distro: other.to_string(),
        }),
    }
}

/// The four distroless variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Latest,
    Nonroot,
    Debug,
    DebugNonroot,
}

impl Variant {
    pub fn parse(text: &str) -> Result<Variant, BuildError> {
        match text {
            "latest" => Ok(Variant::Latest),
            "nonroot" => Ok(Variant::Nonroot),
            "debug" => Ok(Variant::Debug),
            "debug-nonroot" => Ok(Variant::DebugNonroot),
            other => Err(BuildError::UnknownVariant {
                variant: other.to_string(),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::Latest => "latest",
            Variant::Nonroot => "nonroot",
            Variant::Debug => "debug",
            Variant::DebugNonroot => "debug-nonroot",
        }
    }

    pub fn is_debug(self) -> bool {
        matches!(self, Variant::Debug | Variant::DebugNonroot)
    }

    pub fn is_nonroot(self) -> bool {
        matches!(self, Variant::Nonroot | Variant::DebugNonroot)
    }
}

/// A file to add on top of the image (`--add SRC:DST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub src: PathBuf,
    pub dst: String,
}

impl Add {
    pub fn parse(spec: &str) -> Result<Add, BuildError> {
        match spec.rsplit_once(':') {
            Some((src, dst)) if !src.is_empty() && dst.starts_with('/') && dst.len() > 1 => {
                Ok(Add {
                    src: PathBuf::from(src),
                    dst: dst.to_string(),
                })
            }
            _ => Err(BuildError::AddSpec {
                spec: spec.to_string(),
            }),
        }
    }
}

/// Everything the user asked for, resolved.
#[derive(Debug, Clone)]
pub struct Request {
    pub tier: String,
    pub variant: Variant,
    pub distro: String,
    /// Debian architecture name.
    pub arch: String,
    pub adds: Vec<Add>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
}

/// One tier of the chain with its packages for the requested distro.
#[derive(Debug, Clone)]
pub struct Step {
    pub tier: Tier,
    /// Packages, one layer each, in order. For closure tiers the caller replaces
    /// the roots with the resolved list ([`Plan::set_packages`]).
    pub packages: Vec<String>,
}

/// A request resolved against the tier data.
#[derive(Debug, Clone)]
pub struct Plan {
    pub request: Request,
    pub distro: DistroInfo,
    pub steps: Vec<Step>,
}

/// Package supplying the CA bundle.
pub const CA_PACKAGE: &str = "ca-certificates";
/// Package supplying the debug busybox.
pub const BUSYBOX_PACKAGE: &str = "busybox-static";

impl Plan {
    pub fn new(request: Request) -> Result<Plan, BuildError> {
        let distro = distro_info(&request.distro)?;
        let mut steps = Vec::new();
        for tier in tier::chain(&request.tier)? {
            let packages = tier.for_distro(distro.id)?.packages.clone();
            steps.push(Step { tier, packages });
        }
        Ok(Plan {
            request,
            distro,
            steps,
        })
    }

    /// Packages installed as layers, in layer order, across all tiers.
    pub fn layer_packages(&self) -> Vec<String> {
        self.steps.iter().flat_map(|s| s.packages.clone()).collect()
    }

    /// Packages read only as inputs of generated layers.
    pub fn source_packages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for step in &self.steps {
            for item in &step.tier.generated {
                match item {
                    Generated::CaCertificates | Generated::JavaCacerts => {
                        out.push(CA_PACKAGE.to_string())
                    }
                    Generated::Busybox if self.request.variant.is_debug() => {
                        out.push(BUSYBOX_PACKAGE.to_string())
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// Replace a closure tier's package list with the resolved one (minus what
    /// ancestors already install).
    pub fn set_packages(&mut self, step: usize, resolved: Vec<String>) {
        let installed: Vec<String> = self.steps[..step]
            .iter()
            .flat_map(|s| s.packages.clone())
            .collect();
        self.steps[step].packages = resolved
            .into_iter()
            .filter(|p| !installed.contains(p))
            .collect();
    }

    /// Default image reference, `dlx/<tier>-<distro>:<variant>`.
    pub fn default_reference(&self) -> String {
        format!(
            "dlx/{}-{}:{}",
            self.request.tier,
            self.distro.id,
            self.request.variant.name()
        )
    }

    /// The config (user, workdir, env, entrypoint, cmd) for this plan.
    pub fn config(&self, versions: &Versions) -> Result<ImageConfig, BuildError> {
        let variant = self.request.variant;
        let mut path =
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string();
        if variant.is_debug() {
            path.push_str(":/busybox");
        }
        let mut env = vec![path, format!("SSL_CERT_FILE={}", generated::CA_BUNDLE_PATH)];
        let mut entrypoint = None;
        for step in &self.steps {
            env.extend(step.tier.env.iter().cloned());
            let distro_part = step.tier.distro.get(self.distro.id);
            for (var, package) in distro_part.map(|d| &d.version_env).into_iter().flatten() {
                let version = version_of(versions, package)?;
                env.push(format!("{var}={}", java_style_version(version)));
            }
            let distro_ep = distro_part.and_then(|d| d.entrypoint.clone());
            if let Some(ep) = distro_ep.or_else(|| step.tier.entrypoint.clone()) {
                entrypoint = Some(ep);
            }
        }
        if entrypoint.is_none() && variant.is_debug() {
            entrypoint = Some(vec!["/busybox/sh".to_string()]);
        }
        for value in &self.request.env {
            let Some((key, _)) = value.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                return Err(BuildError::EnvSpec {
                    value: value.clone(),
                });
            };
            let prefix = format!("{key}=");
            match env.iter_mut().find(|e| e.starts_with(&prefix)) {
                Some(slot) => *slot = value.clone(),
                None => env.push(value.clone()),
            }
        }
        if self.request.entrypoint.is_some() {
            entrypoint = self.request.entrypoint.clone();
        }
        Ok(ImageConfig {
            user: if variant.is_nonroot() { "65532" } else { "0" }.to_string(),
            env,
            entrypoint,
            cmd: self.request.cmd.clone(),
            working_dir: if variant.is_nonroot() {
                "/home/nonroot"
            } else {
                "/"
            }
            .to_string(),
        })
    }

    /// Manifest annotations, accumulated down the chain.
    pub fn annotations(&self, versions: &Versions) -> Result<BTreeMap<String, String>, BuildError> {
        let mut out = BTreeMap::new();
        for step in &self.steps {
            out.extend(step.tier.annotations.clone());
            let distro_part = step.tier.distro.get(self.distro.id);
            for (key, package) in distro_part
                .map(|d| &d.version_annotations)
                .into_iter()
                .flatten()
            {
                out.insert(
                    key.clone(),
                    upstream_version(version_of(versions, package)?).to_string(),
                );
            }
        }
        Ok(out)
    }
}

/// Installed package versions by name.
pub type Versions = BTreeMap<String, String>;

fn version_of<'a>(versions: &'a Versions, package: &str) -> Result<&'a str, BuildError> {
    versions
        .get(package)
        .map(String::as_str)
        .ok_or_else(|| BuildError::MissingPackage {
            package: package.to_string(),
        })
}

/// The upstream part of a Debian version: no epoch, cut at `+`, no revision
/// (`3.13.5-2+deb13u5` -> `3.13.5`, `1:2.0-1` -> `2.0`).
pub fn upstream_version(version: &str) -> &str {
    let v = version.split_once(':').map_or(version, |(_, rest)| rest);
    let v = v.split('+').next().unwrap_or(v);
    match v.rfind('-') {
        Some(at) => &v[..at],
        None => v,
    }
}

/// `JAVA_VERSION` style: cut at `+`, the first three dot parts, plus the fourth
/// when it is not `0` (`17.0.20.1.0+1-0` -> `17.0.20.1`, `21.0.8+9-1` -> `21.0.8`).
pub fn java_style_version(version: &str) -> String {
    let v = upstream_version(version);
    let parts: Vec<&str> = v.split('.').collect();
    let mut out: Vec<&str> = parts.iter().take(3).copied().collect();
    if let Some(fourth) = parts.get(3).filter(|p| **p != "0") {
        out.push(fourth);
    }
    out.join(".")
}

/// Opened packages by name.
pub type Debs = HashMap<String, Deb>;

fn deb<'a>(debs: &'a Debs, name: &str) -> Result<&'a Deb, BuildError> {
    debs.get(name).ok_or_else(|| BuildError::MissingPackage {
        package: name.to_string(),
    })
}

/// Collects layers and the merged tree.
struct Assembler<'c> {
    layers: Vec<Layer>,
    tree: Tree,
    /// Bytes of the shared-library-looking files (`*.so*`), by path, for the
    /// ld.so.cache generator.
    libraries: HashMap<String, Vec<u8>>,
    /// Where finished layers are kept and found again.
    cache: Option<&'c LayerCache>,
    /// Whether anything later reads the tree (ld.so.cache, `--add` checks): when not,
    /// a cached package layer is used without reading the package at all.
    need_tree: bool,
}

impl Assembler<'_> {
    /// Record `entries` in the merged tree (and keep library bytes for ld.so.cache).
    fn record(&mut self, entries: &[Entry]) {
        for entry in entries {
            self.tree.add(entry);
            if let Kind::File(data) = &entry.kind {
                if entry
                    .path
                    .rsplit('/')
                    .next()
                    .is_some_and(|n| n.contains(".so"))
                {
                    let path = format!("/{}", entry.path.trim_start_matches("./"));
                    self.libraries.insert(path, data.clone());
                }
            }
        }
    }

    /// Write `entries` as a layer; the compression is reused when the cache holds a
    /// layer with the same tar.
    fn make(&mut self, name: &str, entries: &[Entry]) -> Result<Layer, BuildError> {
        let err = |source| BuildError::Layer {
            layer: name.to_string(),
            source,
        };
        let mut writer = LayerWriter::new();
        for entry in entries {
            writer.push(entry).map_err(err)?;
        }
        self.record(entries);
        let (tar, diff_id) = writer.into_tar();
        let inputs = Inputs::Tar { diff_id: &diff_id };
        if let Some(layer) = self.cache.and_then(|c| c.get(inputs, name)) {
            return Ok(layer);
        }
        let layer = crate::oci::layer::compress(&tar, diff_id.clone(), name).map_err(err)?;
        if let Some(c) = self.cache {
            c.put(inputs, &layer);
        }
        Ok(layer)
    }

    fn layer(&mut self, name: &str, entries: &[Entry]) -> Result<(), BuildError> {
        let layer = self.make(name, entries)?;
        self.layers.push(layer);
        Ok(())
    }

    /// The layer of a package: from the cache by the .deb's digest when it is there
    /// (reading the package only when the tree is needed), else made and kept.
    fn package(&mut self, deb: &Deb, usr_merge: bool) -> Result<(), BuildError> {
        let label = format!(
            "dlx: deb {} {} {}",
            deb.package(),
            deb.version(),
            deb.architecture()
        );
        let sha256 = self.cache.map(|_| deb.sha256()).unwrap_or_default();
        let inputs = Inputs::Deb {
            sha256: &sha256,
            usr_merge,
        };
        if let Some(layer) = self.cache.and_then(|c| c.get(inputs, &label)) {
            if self.need_tree {
                self.record(&package_entries(deb, usr_merge)?);
            }
            self.layers.push(layer);
            return Ok(());
        }
        let layer = self.make(&label, &package_entries(deb, usr_merge)?)?;
        if let Some(c) = self.cache {
            c.put(inputs, &layer);
        }
        self.layers.push(layer);
        Ok(())
    }
}

/// Assemble the image for `plan` from `debs` (every name in
/// [`Plan::layer_packages`] and [`Plan::source_packages`]).
pub fn assemble(plan: &Plan, debs: &Debs) -> Result<Image, BuildError> {
    assemble_with(plan, debs, None)
}

/// [`assemble`], reusing (and keeping) layers in `cache`. The image is byte for byte
/// the one [`assemble`] makes.
pub fn assemble_with(
    plan: &Plan,
    debs: &Debs,
    cache: Option<&LayerCache>,
) -> Result<Image, BuildError> {
    let versions: Versions = debs
        .iter()
        .map(|(name, deb)| (name.clone(), deb.version().to_string()))
        .collect();
    let need_tree = !plan.request.adds.is_empty()
        || plan
            .steps
            .iter()
            .any(|s| s.tier.generated.contains(&Generated::LdSoCache));
    let mut asm = Assembler {
        layers: Vec::new(),
        tree: Tree::default(),
        libraries: HashMap::new(),
        cache,
        need_tree,
    };
    for step in &plan.steps {
        for name in &step.packages {
            asm.package(deb(debs, name)?, plan.distro.usr_merge)?;
        }
        for item in &step.tier.generated {
            let entries = match item {
                Generated::Rootfs => generated::rootfs(),
                Generated::Passwd => generated::passwd(),
                Generated::Home => generated::home(),
                Generated::Group => generated::group(),
                Generated::Tmp => generated::tmp(),
                Generated::Nsswitch => generated::nsswitch(),
                Generated::OsRelease => generated::os_release(&plan.distro),
                Generated::CaCertificates => generated::ca_certificates(deb(debs, CA_PACKAGE)?)?,
                Generated::Busybox if plan.request.variant.is_debug() => {
                    generated::busybox(deb(debs, BUSYBOX_PACKAGE)?)?
                }
                Generated::Busybox => continue,
                Generated::JavaCacerts => generated::java_cacerts(deb(debs, CA_PACKAGE)?)?,
                Generated::LdSoCache => vec![
                    Entry::dir("./etc/", 0o755, 0),
                    Entry::file(
                        "./etc/ld.so.cache",
                        0o644,
                        0,
                        ldcache::build(&asm.tree, &asm.libraries, &plan.request.arch)?,
                    ),
                ],
                Generated::Symlinks => generated::symlinks(
                    &step.tier.for_distro(plan.distro.id)?.symlinks,
                    &plan.request.arch,
                ),
            };
            let label = format!("dlx: {} {}", step.tier.name, generated_name(*item));
            asm.layer(&label, &entries)?;
        }
    }
    for add in &plan.request.adds {
        let entries = add_entries(plan, add, &asm.tree)?;
        asm.layer(&format!("dlx: add {}", add.dst), &entries)?;
    }
    Ok(Image {
        platform: Platform::from_debian_arch(&plan.request.arch),
        config: plan.config(&versions)?,
        layers: asm.layers,
        annotations: plan.annotations(&versions)?,
    })
}

fn generated_name(item: Generated) -> &'static str {
    match item {
        Generated::Rootfs => "rootfs",
        Generated::Passwd => "passwd",
        Generated::Home => "home",
        Generated::Group => "group",
        Generated::Tmp => "tmp",
        Generated::Nsswitch => "nsswitch.conf",
        Generated::OsRelease => "os-release",
        Generated::CaCertificates => "ca-certificates",
        Generated::Busybox => "busybox",
        Generated::JavaCacerts => "java cacerts",
        Generated::LdSoCache => "ld.so.cache",
        Generated::Symlinks => "symlinks",
    }
}

const MERGED_ROOTS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Debian 13 merged-/usr rewrite of one archive path: `./lib/x` -> `./usr/lib/x`;
/// `None` for the top-level directory entries themselves (base-files' symlinks
/// stand in their place).
fn usr_merge(path: &str, is_dir: bool) -> Option<String> {
    let rel = path.strip_prefix("./").unwrap_or(path);
    let (first, rest) = rel.split_once('/').unwrap_or((rel, ""));
    if !MERGED_ROOTS.contains(&first) {
        return Some(path.to_string());
    }
    if rest.is_empty() && is_dir {
        return None;
    }
    if rest.is_empty() {
        // a top-level symlink such as base-files' ./bin -> usr/bin stays
        return Some(path.to_string());
    }
    Some(format!("./usr/{rel}"))
}

/// A package's layer entries: its data tar as is (rewritten for merged /usr when
/// asked), then its status.d files.
pub fn package_entries(deb: &Deb, merge: bool) -> Result<Vec<Entry>, BuildError> {
    let package = deb.package().to_string();
    let err = |source| BuildError::PackageData {
        package: package.clone(),
        source,
    };
    let mut entries = Vec::new();
    let mut archive = deb.data()?;
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let header = entry.header().clone();
        let raw = entry.path_bytes().into_owned();
        let path = String::from_utf8(raw).map_err(|_| BuildError::PathEncoding {
            package: package.clone(),
        })?;
        let link = || -> Result<String, BuildError> {
            let bytes = entry
                .link_name_bytes()
                .map(|b| b.into_owned())
                .unwrap_or_default();
            String::from_utf8(bytes).map_err(|_| BuildError::PathEncoding {
                package: package.clone(),
            })
        };
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink(link()?),
            tar::EntryType::Link => {
                let target = link()?;
                let target = if merge {
                    usr_merge(&target, false).unwrap_or(target)
                } else {
                    target
                };
                Kind::Hardlink(target)
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).map_err(err)?;
                Kind::File(data)
            }
            _ => {
                return Err(BuildError::EntryType {
                    package: package.clone(),
                    path,
                })
            }
        };
        let is_dir = kind == Kind::Dir;
        let path = if merge {
            match usr_merge(&path, is_dir) {
                Some(p) => p,
                None => continue,
            }
        } else {
            path
        };
        let path = if path.starts_with("./") || path == "." {
            path
        } else {
            format!("./{path}")
        };
        let path = if is_dir && !path.ends_with('/') {
            format!("{path}/")
        } else {
            path
        };
        let name = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        entries.push(Entry {
            path,
            kind,
            mode: header.mode().map_err(err)? & 0o7777,
            uid: header.uid().map_err(err)?,
            gid: header.gid().map_err(err)?,
            uname: name(header.username_bytes()),
            gname: name(header.groupname_bytes()),
            mtime: header.mtime().map_err(err)?,
        });
    }
    // A later entry for the same path replaces an earlier one (tar semantics); keep
    // the last, in its first position, for files; directories keep the first.
    dedupe(&mut entries);
    entries.extend(generated::status_d(deb, true));
    Ok(entries)
}

fn dedupe(entries: &mut Vec<Entry>) {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for entry in entries.drain(..) {
        let key = entry.path.trim_end_matches('/').to_string();
        match index.get(&key) {
            Some(&at) if entry.kind != Kind::Dir => out[at] = entry,
            Some(_) => {}
            None => {
                index.insert(key, out.len());
                out.push(entry);
            }
        }
    }
    *entries = out;
}

/// Entries for one `--add`: missing parent directories and the file (mode 0755 if
/// executable by anyone, else 0644; root-owned; mtime 0), after the ELF check.
fn add_entries(plan: &Plan, add: &Add, tree: &Tree) -> Result<Vec<Entry>, BuildError> {
    let data = std::fs::read(&add.src).map_err(|source| BuildError::AddRead {
        path: add.src.clone(),
        source,
    })?;
    let executable = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&add.src)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if executable && data.starts_with(b"\x7fELF") {
        if let Err(problem) = tree::check_elf(&data, tree, &plan.request.arch) {
            return Err(refusal(plan, add, problem));
        }
    }
    if executable && data.starts_with(b"#!") {
        let line = data[2..].split(|b| *b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let interpreter = line.split_whitespace().next().unwrap_or_default();
        if !interpreter.is_empty() && !tree.is_file(interpreter) {
            let hint = if plan.request.variant.is_debug() {
                String::new()
            } else {
                format!(
                    "\nhint: scripts need an interpreter; the {}:debug image has busybox at /busybox/sh",
                    plan.request.tier
                )
            };
            return Err(BuildError::AddRefused {
                path: add.src.clone(),
                image: format!("{}:{}", plan.request.tier, plan.request.variant.name()),
                reason: format!("its interpreter {interpreter} is not in the image"),
                hint,
            });
        }
    }
    let rel = add.dst.trim_start_matches('/');
    let mut entries = Vec::new();
    let parts: Vec<&str> = rel.split('/').collect();
    let mut parent = String::new();
    for dir in &parts[..parts.len() - 1] {
        parent = format!("{parent}/{dir}");
        if !tree.exists(&parent) {
            entries.push(Entry::dir(&format!(".{parent}/"), 0o755, 0));
        }
    }
    let mode = if executable { 0o755 } else { 0o644 };
    entries.push(Entry::file(&format!("./{rel}"), mode, 0, data));
    Ok(entries)
}

/// The refusal for an added binary, with a hint naming the smallest built-in
/// tier (same variant) whose libraries cover what is missing.
fn refusal(plan: &Plan, add: &Add, problem: ElfProblem) -> BuildError {
    let image = format!("{}:{}", plan.request.tier, plan.request.variant.name());
    let (reason, missing) = match &problem {
        ElfProblem::NotElf => ("not a valid ELF file".to_string(), vec![]),
        ElfProblem::WrongArch { binary, image } => (
            format!("it is built for {binary}, the image is {image}"),
            vec![],
        ),
        ElfProblem::Missing {
            interpreter,
            libraries,
        } => {
            let mut reasons = Vec::new();
            let mut missing = Vec::new();
            if let Some(interp) = interpreter {
                reasons.push(format!(
                    "its program interpreter {interp} is not in the image"
                ));
                missing.push(basename(interp));
            }
            if !libraries.is_empty() {
                reasons.push(format!(
                    "required libraries not in the image: {}",
                    libraries.join(", ")
                ));
                missing.extend(libraries.iter().map(|l| basename(l)));
            }
            (reasons.join("; "), missing)
        }
    };
    let hint = suggest_tier(&missing)
        .filter(|t| *t != plan.request.tier)
        .map(|t| {
            format!(
                "\nhint: build {t}:{} instead, or link the program statically",
                plan.request.variant.name()
            )
        })
        .unwrap_or_default();
    BuildError::AddRefused {
        path: add.src.clone(),
        image,
        reason,
        hint,
    }
}

fn basename(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// The first built-in tier (in definition order) whose chain's `libraries` cover
/// all of `missing`.
fn suggest_tier(missing: &[String]) -> Option<&'static str> {
    if missing.is_empty() {
        return None;
    }
    tier::names().into_iter().find(|name| {
        let Ok(chain) = tier::chain(name) else {
            return false;
        };
        let provided: Vec<&String> = chain.iter().flat_map(|t| t.libraries.iter()).collect();
        missing.iter().all(|m| provided.contains(&m))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tier: &str, variant: Variant) -> Request {
        Request {
            tier: tier.into(),
            variant,
            distro: "debian13".into(),
            arch: "amd64".into(),
            adds: vec![],
            entrypoint: None,
            cmd: None,
            env: vec![],
        }
    }

    #[test]
    fn usr_merge_rewrites_under_roots_and_drops_root_dirs() {
        assert_eq!(
            usr_merge("./lib/x86_64-linux-gnu/libc.so.6", false).unwrap(),
            "./usr/lib/x86_64-linux-gnu/libc.so.6"
        );
        assert_eq!(usr_merge("./lib64/", true), None);
        assert_eq!(usr_merge("./bin", false).unwrap(), "./bin");
        assert_eq!(usr_merge("./libexec/x", false).unwrap(), "./libexec/x");
        assert_eq!(usr_merge("./usr/lib/x", false).unwrap(), "./usr/lib/x");
    }

    #[test]
    fn config_per_variant() {
        let plan = Plan::new(request("static", Variant::Latest)).unwrap();
        let c = plan.config(&Versions::new()).unwrap();
        assert_eq!((c.user.as_str(), c.working_dir.as_str()), ("0", "/"));
        assert_eq!(
            c.env,
            [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
            ]
        );
        assert_eq!(c.entrypoint, None);
        let plan = Plan::new(request("cc", Variant::DebugNonroot)).unwrap();
        let c = plan.config(&Versions::new()).unwrap();
        assert_eq!(
            (c.user.as_str(), c.working_dir.as_str()),
            ("65532", "/home/nonroot")
        );
        assert!(c.env[0].ends_with(":/sbin:/bin:/busybox"));
        assert_eq!(c.entrypoint.unwrap(), ["/busybox/sh"]);
        assert_eq!(
            plan.source_packages(),
            ["ca-certificates", "busybox-static"]
        );
        assert_eq!(plan.default_reference(), "dlx/cc-debian13:debug-nonroot");
    }

    #[test]
    fn user_env_replaces_in_place_or_appends() {
        let mut req = request("base", Variant::Latest);
        req.env = vec!["SSL_CERT_FILE=/x".into(), "A=1".into()];
        let c = Plan::new(req).unwrap().config(&Versions::new()).unwrap();
        assert_eq!(
            c.env[1..],
            ["SSL_CERT_FILE=/x".to_string(), "A=1".to_string()]
        );
    }

    #[test]
    fn hints_pick_the_smallest_tier() {
        assert_eq!(suggest_tier(&["libc.so.6".into()]), Some("base-nossl"));
        assert_eq!(
            suggest_tier(&["libssl.so.3".into(), "libc.so.6".into()]),
            Some("base")
        );
        assert_eq!(suggest_tier(&["libgcc_s.so.1".into()]), Some("cc"));
        assert_eq!(suggest_tier(&["libfoo.so.9".into()]), None);
    }

    #[test]
    fn versions_for_annotations_and_java() {
        assert_eq!(upstream_version("3.13.5-2+deb13u5"), "3.13.5");
        assert_eq!(upstream_version("20.19.2+dfsg-1+deb13u2"), "20.19.2");
        assert_eq!(upstream_version("1:2.0-1"), "2.0");
        assert_eq!(java_style_version("17.0.20.1.0+1-0"), "17.0.20.1");
        assert_eq!(java_style_version("17.0.18+8-1~deb12u1"), "17.0.18");
        assert_eq!(java_style_version("21.0.12.0+1-1"), "21.0.12");
    }

    #[test]
    fn add_spec_needs_absolute_destination() {
        assert_eq!(Add::parse("./app:/app").unwrap().dst, "/app");
        assert!(Add::parse("./app:app").is_err());
        assert!(Add::parse("app").is_err());
    }
}
