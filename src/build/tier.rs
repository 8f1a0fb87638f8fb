//! Tier definitions as data. Each tier is one TOML file in `toolbox/tiers/`
//! (parent, packages per distro, generated items, entrypoint, env, annotations),
//! embedded in the binary; adding a tier is adding a file and its line in
//! [`BUILTIN`]. This module parses them and resolves a tier into its chain of
//! ancestors.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::BuildError;

/// The tiers shipped with dlx: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("static", include_str!("../../toolbox/tiers/static.toml")),
    (
        "base-nossl",
        include_str!("../../toolbox/tiers/base-nossl.toml"),
    ),
    ("base", include_str!("../../toolbox/tiers/base.toml")),
    ("cc", include_str!("../../toolbox/tiers/cc.toml")),
    ("python3", include_str!("../../toolbox/tiers/python3.toml")),
    ("nodejs", include_str!("../../toolbox/tiers/nodejs.toml")),
    ("java17", include_str!("../../toolbox/tiers/java17.toml")),
    ("java21", include_str!("../../toolbox/tiers/java21.toml")),
    ("java25", include_str!("../../toolbox/tiers/java25.toml")),
];

/// Items a tier generates instead of taking them from a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generated {
    /// The `./` root directory entry.
    Rootfs,
    /// `/etc/passwd`.
    Passwd,
    /// `/root`, `/home`, `/home/nonroot`.
    Home,
    /// `/etc/group`.
    Group,
    /// `/tmp` with mode 1777.
    Tmp,
    /// `/etc/nsswitch.conf`.
    Nsswitch,
    /// `/usr/lib/os-release`.
    OsRelease,
    /// CA bundle, copyright and status.d built from the `ca-certificates` package.
    CaCertificates,
    /// Static busybox under `/busybox` (debug variants only).
    Busybox,
    /// `/etc/ld.so.cache` for the libraries in the layers below.
    LdSoCache,
    /// `/etc/ssl/certs/java/cacerts`, a JKS built from the CA bundle.
    JavaCacerts,
    /// The distro table's `symlinks` (`{arch}` in a target is the Debian arch).
    Symlinks,
}

/// A symbolic link a tier adds, e.g. `/usr/bin/python3 -> /usr/bin/python3.13`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Symlink {
    pub path: String,
    pub target: String,
}

/// Per-distro part of a tier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistroTier {
    /// Packages installed, one layer each, in this order.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Overrides the tier-level entrypoint for this distro.
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub symlinks: Vec<Symlink>,
    /// Closure tiers: packages whose dependencies are not followed and which are
    /// not installed (e.g. ones only maintainer scripts need).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Manifest annotations whose value is a package's upstream version:
    /// annotation -> package.
    #[serde(default)]
    pub version_annotations: BTreeMap<String, String>,
    /// Environment variables whose value is a package's version in the
    /// `JAVA_VERSION` style (cut at `+`, three dot parts plus a non-zero fourth):
    /// variable -> package.
    #[serde(default)]
    pub version_env: BTreeMap<String, String>,
}

/// One tier file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Name (the file name; filled in when loaded).
    #[serde(skip)]
    pub name: String,
    pub parent: Option<String>,
    /// Resolve the packages' dependency closure (language tiers) instead of
    /// installing exactly the listed packages (core tiers).
    #[serde(default)]
    pub closure: bool,
    #[serde(default)]
    pub generated: Vec<Generated>,
    /// Entrypoint for every variant (overrides the debug shell).
    pub entrypoint: Option<Vec<String>>,
    /// Environment appended after the parent's.
    #[serde(default)]
    pub env: Vec<String>,
    /// Manifest annotations, inherited and accumulated by children.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Shared libraries (sonames, loader names) this tier adds; used for hints.
    #[serde(default)]
    pub libraries: Vec<String>,
    #[serde(default)]
    pub distro: BTreeMap<String, DistroTier>,
}

impl Tier {
    /// Parse a tier file.
    pub fn parse(name: &str, text: &str) -> Result<Tier, BuildError> {
        let mut tier: Tier = toml::from_str(text).map_err(|source| BuildError::TierFile {
            tier: name.to_string(),
            message: source.to_string(),
        })?;
        tier.name = name.to_string();
        Ok(tier)
    }

    /// This tier's part for `distro`, or an error naming the distros it has.
    pub fn for_distro(&self, distro: &str) -> Result<&DistroTier, BuildError> {
        self.distro
            .get(distro)
            .ok_or_else(|| BuildError::TierDistro {
                tier: self.name.clone(),
                distro: distro.to_string(),
                available: self.distro.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }
}

/// Load a built-in tier by name.
pub fn load(name: &str) -> Result<Tier, BuildError> {
    let (_, text) =
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| BuildError::UnknownTier {
                tier: name.to_string(),
                known: names().join(", "),
            })?;
    Tier::parse(name, text)
}

/// Names of the built-in tiers.
pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// `name` and its ancestors, root first.
pub fn chain(name: &str) -> Result<Vec<Tier>, BuildError> {
    let mut out = Vec::new();
    let mut next = Some(name.to_string());
    while let Some(current) = next {
        if out.iter().any(|t: &Tier| t.name == current) {
            return Err(BuildError::TierCycle { tier: current });
        }
        let tier = load(&current)?;
        next = tier.parent.clone();
        out.push(tier);
    }
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_tier_parses_and_has_a_root() {
        for name in names() {
            let chain = chain(name).unwrap();
            assert_eq!(chain[0].name, "static", "{name}");
            assert_eq!(chain.last().unwrap().name, name);
        }
    }

    #[test]
    fn core_tiers_match_the_spec_package_lists() {
        let pkgs = |tier: &str, distro: &str| {
            load(tier)
                .unwrap()
                .for_distro(distro)
                .unwrap()
                .packages
                .clone()
        };
        assert_eq!(
            pkgs("static", "debian13"),
            [
                "base-files",
                "netbase",
                "tzdata",
                "tzdata-legacy",
                "media-types"
            ]
        );
        assert_eq!(
            pkgs("base", "debian13"),
            ["libc6", "libssl3t64", "libzstd1", "zlib1g"]
        );
        assert_eq!(pkgs("base", "debian12"), ["libc6", "libssl3"]);
        assert_eq!(
            pkgs("cc", "debian12"),
            ["libgomp1", "libstdc++6", "libgcc-s1", "gcc-12-base"]
        );
        let names: Vec<_> = chain("cc").unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["static", "base", "cc"]);
    }

    #[test]
    fn unknown_fields_and_tiers_are_errors() {
        assert!(Tier::parse("x", "parnet = \"static\"").is_err());
        let err = load("nope").unwrap_err().to_string();
        assert!(err.contains("unknown tier nope"), "{err}");
    }
}
