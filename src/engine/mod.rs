//! Container engines: what dlx needs to know about a container, and where it asks.
//!
//! The [`Engine`] trait is the seam: `docker.rs` speaks the Docker API (Docker, and
//! Podman's compatible socket) through bollard; `containerd/` speaks containerd's
//! gRPC API; `cgroups.rs` needs no engine at all and finds containers in the host's
//! `/proc/*/cgroup`; `fake.rs` serves canned answers to unit tests. Engines are asked
//! before anything is entered, and are dropped (with their async runtime) before dlx
//! forks.

pub mod cgroups;
pub mod containerd;
mod docker;
#[cfg(test)]
pub mod fake;

use std::time::Duration;

pub use cgroups::Cgroups;
pub use containerd::Containerd;
pub use docker::Docker;

/// How long an engine may take to answer dlx's first question before dlx stops
/// waiting for it (and, where it can, finds the container in the cgroups instead).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// The engines dlx speaks to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Docker,
    Podman,
    Containerd,
}

impl EngineKind {
    /// The order in which dlx tries engines when none is named.
    pub const ALL: [EngineKind; 3] = [
        EngineKind::Docker,
        EngineKind::Podman,
        EngineKind::Containerd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker",
            EngineKind::Podman => "podman",
            EngineKind::Containerd => "containerd",
        }
    }

    /// The operator's command-line tool for this engine, for hints.
    pub fn cli(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker",
            EngineKind::Podman => "podman",
            EngineKind::Containerd => "ctr",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where dlx asks about containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Whichever engine knows the container: Docker, then Podman, then containerd;
    /// the host's cgroups when none of them answers.
    Auto,
    /// This engine only (the host's cgroups when it does not answer).
    Only(EngineKind),
    /// No engine: the host's cgroups (`--no-engine`).
    NoEngine,
}

/// Where the engines listen: dlx's environment, else each engine's default socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// `DOCKER_API_VERSION`.
    pub docker_api_version: Option<String>,
    /// `CONTAINER_HOST` (Podman's own variable).
    pub podman_host: Option<String>,
    /// `CONTAINERD_ADDRESS` (ctr's variable): a socket path.
    pub containerd_address: Option<String>,
}

/// Connect to the engine `kind`. A missing socket fails at once; otherwise the
/// first request checks, within [`ANSWER_TIMEOUT`], that the engine answers at all.
pub fn connect(kind: EngineKind, endpoints: &Endpoints) -> Result<Box<dyn Engine>, EngineError> {
    Ok(match kind {
        EngineKind::Docker => Box::new(docker_api(false, endpoints)?),
        EngineKind::Podman => Box::new(docker_api(true, endpoints)?),
        EngineKind::Containerd => Box::new(Containerd::connect(
            endpoints.containerd_address.as_deref(),
        )?),
    })
}

/// Connect through the Docker API: to Docker, or with `podman` to Podman's
/// compatible socket, each where `endpoints` says.
pub fn docker_api(podman: bool, endpoints: &Endpoints) -> Result<Docker, EngineError> {
    match podman {
        true => Docker::connect_podman(endpoints.podman_host.as_deref()),
        false => Docker::connect(
            endpoints.docker_host.as_deref(),
            endpoints.docker_api_version.as_deref(),
        ),
    }
}

/// Where a container stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RunState {
    Running,
    Paused,
    Restarting,
    /// Created, exited, dead, removing: the engine's own word for it.
    Stopped(String),
}

/// What dlx needs to know about a container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerInfo {
    /// Full ID (64 hex digits for Docker).
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    pub image: String,
    pub state: RunState,
    /// Host PID of the container's init process (0 when not running).
    pub pid: i32,
    /// Config `User` (`""`, `name`, `uid`, `uid:gid`, `name:group`).
    pub user: String,
    /// Config `WorkingDir` (`""` means `/`).
    pub working_dir: String,
    /// Config `Env`, in order.
    pub env: Vec<String>,
    pub hostname: String,
    /// HostConfig `GroupAdd`: extra groups every process of the container gets.
    pub group_add: Vec<String>,
    pub privileged: bool,
}

/// An engine failure, named for the operation and the object.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "{what} needs a container engine's API\nhint: pass --engine docker, podman or containerd"
    )]
    Unsupported { what: &'static str },
    #[error("cannot reach the container engine at {host}: {reason}\nhint: start the engine (e.g. `systemctl start docker`), set DOCKER_HOST, pass --no-engine with the container ID, or name a host process as pid:N")]
    Unreachable { host: String, reason: String },
    #[error("the container engine at {host} refused the request: {reason}\nhint: run dlx as root (or as a member of the docker group)")]
    Refused { host: String, reason: String },
    #[error("the container engine at {host} did not answer within {secs} s\nhint: the engine may be hung; pass --no-engine with the container ID, or name the container's init process as pid:N")]
    Timeout { host: String, secs: u64 },
    #[error("no such container: {target}\nhint: `dlx ps` lists the running containers of every engine it can reach")]
    NotFound { target: String },
    #[error("no running container's cgroup names an ID starting with {target}\nhint: without an engine dlx finds containers by ID (or unique ID prefix) only; `dlx ps --no-engine` lists them")]
    NotInCgroups { target: String },
    #[error("container ID prefix {prefix} is ambiguous; it matches {}\nhint: give more of the ID, or the name", .candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("failed to {op} {target}: engine answered {status}: {message}")]
    Api {
        op: &'static str,
        target: String,
        status: u16,
        message: String,
    },
}

/// The 12-character form of an ID that `docker ps` shows.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// How a candidate is listed in an ambiguity error: `short-id (name)`.
pub fn candidate(id: &str, name: &str) -> String {
    format!("{} ({name})", short_id(id))
}

impl EngineError {
    /// The engine never answered (no socket, nobody listening, or too slow): the
    /// cases where asking another engine, or the cgroups, makes sense.
    pub fn no_answer(&self) -> bool {
        matches!(
            self,
            EngineError::Unreachable { .. } | EngineError::Timeout { .. }
        )
    }

    /// What to tell the operator when this engine is passed over for `next`: a
    /// hung engine is worth a word (an absent one is the usual case), and only
    /// when another engine is asked after it.
    pub fn passed_over(&self, next: Option<EngineKind>) -> Option<String> {
        match (self, next) {
            (EngineError::Timeout { .. }, Some(next)) => Some(format!(
                "{}; asking {next}",
                crate::output::without_hint(self)
            )),
            _ => None,
        }
    }
}

/// One condition on the containers to list: `label` is `KEY` or `KEY=VALUE`, `name`
/// matches part of the name. `image` is the Docker API's ancestor (the image or one
/// built on it, by reference or ID); containerd knows a container's image reference
/// only, so there it is that reference (`nginx` meaning
/// `docker.io/library/nginx:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Label(String),
    Name(String),
    Image(String),
}

/// A running container, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerSummary {
    /// Full ID.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    pub image: String,
}

/// The questions dlx asks an engine.
pub trait Engine {
    /// Find a container by name, full ID or unique ID prefix.
    fn inspect(&self, target: &str) -> Result<ContainerInfo, EngineError>;
    /// Every running container.
    fn list_running(&self) -> Result<Vec<ContainerInfo>, EngineError>;
    /// The running containers matching every filter (all running ones when `filters`
    /// is empty), sorted by name; each ID as [`Engine::inspect`] takes it back.
    fn list(&self, _filters: &[Filter]) -> Result<Vec<ContainerSummary>, EngineError> {
        Err(EngineError::Unsupported {
            what: "selecting containers by filter",
        })
    }
    /// What the engine says about each of `ids` (as a listing gave them). One after
    /// another unless the engine can be asked several things at once.
    fn inspect_each(&self, ids: &[&str]) -> Vec<Result<ContainerInfo, EngineError>> {
        ids.iter().map(|id| self.inspect(id)).collect()
    }
}
