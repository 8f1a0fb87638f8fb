//! The toolbox manifest (`toolbox/toolbox.toml`, embedded): which package gives
//! BusyBox, which tools come from which packages, extra dlopen'd libraries, and the
//! dependencies not to follow.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::ToolboxError;

/// The default toolbox's manifest, as shipped.
pub const BUILTIN: &str = include_str!("../../toolbox/toolbox.toml");

/// The package providing the static BusyBox.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Busybox {
    pub package: String,
}

/// One tool: a program of a package, exposed as `bin/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub package: String,
    /// Arguments put before the user's.
    #[serde(default)]
    pub args: Vec<String>,
}

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub busybox: Busybox,
    #[serde(default)]
    pub tools: Vec<Tool>,
    /// Libraries loaded with dlopen, copied into `lib/` with their own closure.
    #[serde(default)]
    pub libraries: Vec<String>,
    /// Packages whose dependencies are neither followed nor fetched.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// Names that become file names in `bin/` and words in wrapper scripts: no
/// separators, no shell syntax.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

impl Manifest {
    /// Parse and check a manifest; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Manifest, ToolboxError> {
        let bad = |message: String| ToolboxError::Manifest {
            origin: origin.to_string(),
            message,
        };
        let manifest: Manifest = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for tool in &manifest.tools {
            if !valid_name(&tool.name) || tool.name == "busybox" || tool.name == "sh" {
                return Err(bad(format!("invalid tool name {:?}", tool.name)));
            }
            if !seen.insert(tool.name.as_str()) {
                return Err(bad(format!("tool {} is listed twice", tool.name)));
            }
        }
        if let Some(lib) = manifest.libraries.iter().find(|l| !valid_name(l)) {
            return Err(bad(format!("invalid library name {lib:?}")));
        }
        Ok(manifest)
    }

    /// The shipped manifest.
    pub fn builtin() -> Result<Manifest, ToolboxError> {
        Manifest::parse("toolbox/toolbox.toml", BUILTIN)
    }

    /// The packages to resolve from: BusyBox's, then each tool's, without repeats.
    pub fn packages(&self) -> Vec<String> {
        let mut out = vec![self.busybox.package.clone()];
        for tool in &self.tools {
            if !out.contains(&tool.package) {
                out.push(tool.package.clone());
            }
        }
        out
    }
}

/// SHA-256 (hex) of a manifest's text: part of the toolbox digest, and what the fast
/// path compares to tell a tree assembled from another manifest.
pub fn text_sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_lists_the_default_tools() {
        let m = Manifest::builtin().unwrap();
        assert_eq!(m.busybox.package, "busybox-static");
        let names: Vec<&str> = m.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["ss", "ip", "tcpdump", "strace", "curl", "lsof"]);
        assert_eq!(
            m.packages(),
            [
                "busybox-static",
                "iproute2",
                "tcpdump",
                "strace",
                "curl",
                "lsof"
            ]
        );
        assert!(m.exclude.contains(&"debconf".to_string()));
    }

    #[test]
    fn bad_manifests_are_refused_with_their_origin() {
        let base = "[busybox]\npackage = \"busybox-static\"\n";
        let err = Manifest::parse(
            "m.toml",
            &format!("{base}[[tools]]\nname = \"a/b\"\npackage = \"x\"\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("m.toml") && err.contains("a/b"), "{err}");
        let twice = format!(
            "{base}[[tools]]\nname = \"ss\"\npackage = \"x\"\n[[tools]]\nname = \"ss\"\npackage = \"y\"\n"
        );
        assert!(Manifest::parse("m", &twice).is_err());
        assert!(Manifest::parse("m", &format!("{base}colour = 1\n")).is_err());
        assert!(Manifest::parse("m", "[[tools]]\nname = \"ss\"\npackage = \"x\"\n").is_err());
    }
}
