//! `dlx build` flags.

use std::path::PathBuf;

use clap::Args;

/// Build a distroless image from Debian's signed package archive.
///
/// Prints the image ID on stdout. By default the image is loaded into the Docker
/// engine as `dlx/<tier>-<distro>:<variant>`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// TIER[:VARIANT]: static, base-nossl, base, cc; variants latest (default),
    /// nonroot, debug, debug-nonroot
    pub spec: String,

    /// Debian release to build from
    #[arg(long, default_value = crate::build::DEFAULT_DISTRO, value_parser = ["debian13", "debian12"])]
    pub distro: String,

    /// Debian architecture of the image (amd64, arm64, armhf, ppc64el, s390x,
    /// riscv64); default: the host's
    #[arg(long)]
    pub arch: Option<String>,

    /// Image reference to load or write as (default dlx/<tier>-<distro>:<variant>)
    #[arg(short = 't', long)]
    pub tag: Option<String>,

    /// Where the image goes: `docker` (load into the engine; the default unless
    /// --push is given), `oci:DIR` (OCI image layout) or `tar:FILE` (OCI layout +
    /// docker manifest in one tar)
    #[arg(short, long)]
    pub output: Option<String>,

    /// Push the image to a registry as HOST[:PORT]/NAME[:TAG] (OCI distribution
    /// API; plain HTTP for loopback registries; no authentication)
    #[arg(long, value_name = "REF")]
    pub push: Option<String>,

    /// Debian mirror to fetch from
    #[arg(long, env = "DLX_MIRROR")]
    pub mirror: Option<String>,

    /// Lock file: used when it exists (the build fails if it cannot be honoured),
    /// written otherwise
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,

    /// Use the .deb files in DIR instead of downloading (offline build; the files
    /// are not signature-checked)
    #[arg(long, value_name = "DIR")]
    pub deb_dir: Option<PathBuf>,

    /// Add a file to the image: SRC:DST (DST absolute). ELF binaries are checked
    /// against the image's libraries
    #[arg(long, value_name = "SRC:DST")]
    pub add: Vec<String>,

    /// Entrypoint: a JSON array, or a single path
    #[arg(long)]
    pub entrypoint: Option<String>,

    /// Cmd: a JSON array, or a single argument
    #[arg(long)]
    pub cmd: Option<String>,

    /// Write an SPDX 2.3 JSON SBOM of the image's Debian packages to FILE
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,

    /// Extra environment, KEY=VALUE (replaces a variable of the same name)
    #[arg(long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
}
