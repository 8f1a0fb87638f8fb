//! Command-line definitions (clap derive structs only). The doc comments are the
//! `--help` text. Nothing here reaches the engine or the kernel: `settings` resolves
//! these into typed settings first.

mod build;
mod exec;
mod ps;
mod toolbox;

pub use build::BuildArgs;
pub use exec::{ExecArgs, ShellArgs};
pub use ps::{PsArgs, PsFormat};
pub use toolbox::{FetchArgs, Format, ToolboxArgs, ToolboxCommand};

use clap::{Parser, Subcommand, ValueEnum};

/// Debug shell-less containers safely, and build distroless images from Debian's
/// signed archive.
#[derive(Debug, Parser)]
#[command(name = "dlx", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace); `DLX_LOG` overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command inside a running container, as the container itself
    Exec(ExecArgs),
    /// Open an interactive toolbox shell in a running container
    Shell(ShellArgs),
    /// Build a distroless image from Debian's signed package archive
    Build(BuildArgs),
    /// Show or fetch the toolbox `dlx exec` sessions find at /.dlx
    Toolbox(ToolboxArgs),
    /// List running containers across the engines dlx can reach
    ///
    /// One row per container: engine, short ID, name, image, host PID of its init,
    /// user, the first shell found in its image (looked up inside the container's
    /// root), and the distroless tier its files look like (static, base-nossl, base,
    /// cc, python3, nodejs, java17/21/25, or distro for a full distribution with a
    /// package manager). A container that several engines show (Docker's are also in
    /// its containerd, namespace moby) is listed once, under the first engine;
    /// containers that only the host's cgroups show are listed under `none`.
    Ps(PsArgs),
}

/// `--engine` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// The Docker API (`DOCKER_HOST`, else /var/run/docker.sock)
    Docker,
    /// Podman's Docker-compatible API (`CONTAINER_HOST`, else /run/podman/podman.sock)
    Podman,
    /// containerd's API (`CONTAINERD_ADDRESS`, else /run/containerd/containerd.sock and
    /// /run/docker/containerd/containerd.sock)
    Containerd,
    /// No engine: the host's /proc/*/cgroup (same as --no-engine)
    None,
}
