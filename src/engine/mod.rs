//! Container engines: what dlx needs to know about a container, and where it asks.
//!
//! The [`Engine`] trait is the seam: `docker.rs` speaks the Docker API (Docker and
//! Podman's compatible socket) through bollard; `fake.rs` serves canned answers to
//! unit tests. Engines are asked once, before anything is entered, and are dropped
//! (with their async runtime) before dlx forks.

mod docker;
#[cfg(test)]
pub mod fake;

pub use docker::Docker;

/// Where a container stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Running,
    Paused,
    Restarting,
    /// Created, exited, dead, removing: the engine's own word for it.
    Stopped(String),
}

/// What dlx needs to know about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    #[error("cannot reach the container engine at {host}: {reason}\nhint: start the engine (e.g. `systemctl start docker`), set DOCKER_HOST, or name a host process as pid:N")]
    Unreachable { host: String, reason: String },
    #[error("the container engine at {host} refused the request: {reason}\nhint: run dlx as root (or as a member of the docker group)")]
    Refused { host: String, reason: String },
    #[error("the container engine at {host} did not answer within {secs} s\nhint: the engine may be hung; name the container's init process as pid:N")]
    Timeout { host: String, secs: u64 },
    #[error("no such container: {target}\nhint: `docker ps` lists the running containers")]
    NotFound { target: String },
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

/// One condition on the containers to list, with the engine's own meaning (Docker's
/// `docker ps --filter`: `name` matches part of the name, `image` is an ancestor
/// image, `label` is `KEY` or `KEY=VALUE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Label(String),
    Name(String),
    Image(String),
}

/// A running container, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The running containers matching every filter (all running ones when `filters`
    /// is empty), sorted by name.
    fn list(&self, filters: &[Filter]) -> Result<Vec<ContainerSummary>, EngineError>;
}
