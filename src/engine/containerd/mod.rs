//! containerd, through its own gRPC API: `Containers.Get` for the container's OCI
//! spec (user, working directory, environment, hostname) and `Tasks.Get` for its
//! init PID and status.
//!
//! Targets are `containerd://[NAMESPACE/]ID`: without a namespace dlx looks in
//! `k8s.io` (Kubernetes' CRI), `moby` (Docker's own containerd) and `default` (ctr),
//! in that order, on each socket that exists: `/run/containerd/containerd.sock`,
//! then Docker's `/run/docker/containerd/containerd.sock` (or only
//! `CONTAINERD_ADDRESS`). An ID may be shortened to a unique prefix.
//!
//! The gRPC calls are made by hand (`grpc.rs`, `proto.rs`) on a current-thread
//! runtime owned by [`Containerd`], dropped with it before dlx forks, like the
//! Docker engine's.

mod grpc;
pub mod proto;

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use serde::Deserialize;

use self::grpc::GrpcError;
use self::proto::{Container, Process, Status};
use super::{
    ContainerInfo, ContainerSummary, Engine, EngineError, Filter, RunState, ANSWER_TIMEOUT,
};

/// The sockets dlx looks for, in order.
pub const SOCKETS: [&str; 2] = [
    "/run/containerd/containerd.sock",
    "/run/docker/containerd/containerd.sock",
];

/// The namespaces searched when a target names none, in order.
pub const DEFAULT_NAMESPACES: [&str; 3] = ["k8s.io", "moby", "default"];

/// How long one request may take once the daemon has answered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const CONTAINERS_GET: &str = "/containerd.services.containers.v1.Containers/Get";
const CONTAINERS_LIST: &str = "/containerd.services.containers.v1.Containers/List";
const TASKS_GET: &str = "/containerd.services.tasks.v1.Tasks/Get";
const TASKS_LIST: &str = "/containerd.services.tasks.v1.Tasks/List";
const NAMESPACES_LIST: &str = "/containerd.services.namespaces.v1.Namespaces/List";

/// One containerd daemon (socket) and, once opened, the connection to it.
struct Daemon {
    socket: PathBuf,
    channel: RefCell<Option<SendRequest<Bytes>>>,
}

/// containerd's API on every socket found.
pub struct Containerd {
    runtime: tokio::runtime::Runtime,
    daemons: Vec<Daemon>,
}

/// Where a container was found.
struct Found<'a> {
    daemon: &'a Daemon,
    namespace: String,
    container: Container,
}

impl Containerd {
    /// The daemons at `address` (a socket path, `unix://` optional), else at every
    /// socket of [`SOCKETS`] that exists. Nothing is sent yet.
    pub fn connect(address: Option<&str>) -> Result<Containerd, EngineError> {
        let sockets: Vec<PathBuf> = match address.filter(|a| !a.is_empty()) {
            Some(a) => vec![PathBuf::from(a.strip_prefix("unix://").unwrap_or(a))],
            None => SOCKETS.iter().map(PathBuf::from).collect(),
        };
        let daemons: Vec<Daemon> = sockets
            .into_iter()
            .filter(|s| s.exists())
            .map(|socket| Daemon {
                socket,
                channel: RefCell::new(None),
            })
            .collect();
        if daemons.is_empty() {
            return Err(EngineError::Unreachable {
                host: address.unwrap_or(SOCKETS[0]).to_string(),
                reason: "no such socket".into(),
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| EngineError::Unreachable {
                host: SOCKETS[0].to_string(),
                reason: format!("cannot start the I/O runtime: {e}"),
            })?;
        Ok(Containerd { runtime, daemons })
    }

    /// One call to one daemon: connect on first use (within [`ANSWER_TIMEOUT`]),
    /// then the request (within [`REQUEST_TIMEOUT`]).
    fn call(
        &self,
        daemon: &Daemon,
        method: &str,
        namespace: &str,
        request: &[u8],
    ) -> Result<Vec<u8>, EngineError> {
        let host = || format!("unix://{}", daemon.socket.display());
        let existing = daemon.channel.borrow().clone();
        let channel = match existing {
            Some(c) => c,
            None => {
                let opened = self.runtime.block_on(async {
                    tokio::time::timeout(ANSWER_TIMEOUT, grpc::connect(&daemon.socket)).await
                });
                let channel = match opened {
                    Err(_) => {
                        return Err(EngineError::Timeout {
                            host: host(),
                            secs: ANSWER_TIMEOUT.as_secs(),
                        })
                    }
                    Ok(Err(e)) => return Err(transport_error(host(), &e)),
                    Ok(Ok(c)) => c,
                };
                *daemon.channel.borrow_mut() = Some(channel.clone());
                channel
            }
        };
        let answer = self.runtime.block_on(async {
            tokio::time::timeout(
                REQUEST_TIMEOUT,
                grpc::unary(&channel, method, namespace, request),
            )
            .await
        });
        tracing::debug!(socket = %daemon.socket.display(), method, namespace, ok = matches!(answer, Ok(Ok(_))), "containerd call");
        match answer {
            Err(_) => Err(EngineError::Timeout {
                host: host(),
                secs: REQUEST_TIMEOUT.as_secs(),
            }),
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(GrpcError::Status { code, message })) => Err(match code {
                // The callers know what was not found.
                grpc::NOT_FOUND => EngineError::NotFound {
                    target: String::new(),
                },
                grpc::PERMISSION_DENIED => EngineError::Refused {
                    host: host(),
                    reason: message,
                },
                _ => EngineError::Api {
                    op: "call containerd",
                    target: method.rsplit('/').next().unwrap_or(method).to_string(),
                    status: u16::try_from(code).unwrap_or(u16::MAX),
                    message,
                },
            }),
            Ok(Err(e)) => Err(transport_error(host(), &e)),
        }
    }

    fn get_container(
        &self,
        daemon: &Daemon,
        namespace: &str,
        id: &str,
    ) -> Result<Container, EngineError> {
        let not_found = || EngineError::NotFound {
            target: format!("{namespace}/{id}"),
        };
        let answer = match self.call(
            daemon,
            CONTAINERS_GET,
            namespace,
            &proto::request_with_id(id),
        ) {
            Err(EngineError::NotFound { .. }) => return Err(not_found()),
            other => other?,
        };
        proto::each(&answer, 1, Container::decode)
            .map_err(|e| malformed(daemon, e))?
            .pop()
            .ok_or_else(not_found)
    }

    fn containers(&self, daemon: &Daemon, namespace: &str) -> Result<Vec<Container>, EngineError> {
        let answer = self.call(daemon, CONTAINERS_LIST, namespace, &[])?;
        proto::each(&answer, 1, Container::decode).map_err(|e| malformed(daemon, e))
    }

    /// The container's task, `None` when it has none (created, never started).
    fn task(
        &self,
        daemon: &Daemon,
        namespace: &str,
        id: &str,
    ) -> Result<Option<Process>, EngineError> {
        match self.call(daemon, TASKS_GET, namespace, &proto::request_with_id(id)) {
            Ok(answer) => Ok(proto::each(&answer, 1, Process::decode)
                .map_err(|e| malformed(daemon, e))?
                .pop()),
            Err(EngineError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn namespaces(&self, daemon: &Daemon) -> Result<Vec<String>, EngineError> {
        let answer = self.call(daemon, NAMESPACES_LIST, "", &[])?;
        proto::namespace_names(&answer).map_err(|e| malformed(daemon, e))
    }

    /// The container as dlx describes containers.
    fn info(&self, found: &Found<'_>) -> Result<ContainerInfo, EngineError> {
        let c = &found.container;
        let task = self.task(found.daemon, &found.namespace, &c.id)?;
        Ok(describe(&found.namespace, c, task.as_ref()))
    }

    /// Look `id` up exactly in each namespace of each daemon; then as a unique ID
    /// prefix. A daemon that does not answer is skipped while another does.
    fn find(&self, namespaces: &[&str], id: &str) -> Result<Found<'_>, EngineError> {
        let mut silent = None;
        let mut answered = Vec::new();
        for daemon in &self.daemons {
            let mut reached = true;
            for ns in namespaces {
                match self.get_container(daemon, ns, id) {
                    Ok(container) => {
                        return Ok(Found {
                            daemon,
                            namespace: ns.to_string(),
                            container,
                        })
                    }
                    Err(EngineError::NotFound { .. }) => {}
                    Err(e) if e.no_answer() => {
                        silent.get_or_insert(e);
                        reached = false;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if reached {
                answered.push(daemon);
            }
        }
        if answered.is_empty() {
            return Err(silent.unwrap_or(EngineError::NotFound {
                target: id.to_string(),
            }));
        }
        // A unique prefix, across namespaces and daemons.
        let mut matches = Vec::new();
        for daemon in answered {
            for ns in namespaces {
                for container in self.containers(daemon, ns)? {
                    if container.id.starts_with(id) {
                        matches.push(Found {
                            daemon,
                            namespace: ns.to_string(),
                            container,
                        });
                    }
                }
            }
        }
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(EngineError::NotFound {
                target: id.to_string(),
            }),
            _ => Err(EngineError::Ambiguous {
                prefix: id.to_string(),
                candidates: matches
                    .iter()
                    .map(|f| super::candidate(&f.container.id, &f.namespace))
                    .collect(),
            }),
        }
    }
}

impl Engine for Containerd {
    fn inspect(&self, target: &str) -> Result<ContainerInfo, EngineError> {
        let (namespaces, id): (Vec<&str>, &str) = match target.split_once('/') {
            Some((ns, id)) => (vec![ns], id),
            None => (DEFAULT_NAMESPACES.to_vec(), target),
        };
        if id.is_empty() {
            return Err(EngineError::NotFound {
                target: target.to_string(),
            });
        }
        let found = self.find(&namespaces, id).map_err(|e| match e {
            EngineError::NotFound { .. } => EngineError::NotFound {
                target: target.to_string(),
            },
            e => e,
        })?;
        self.info(&found)
    }

    fn list_running(&self) -> Result<Vec<ContainerInfo>, EngineError> {
        Ok(self
            .running()?
            .iter()
            .map(|(ns, c, task)| describe(ns, c, Some(task)))
            .collect())
    }

    /// Labels and names are matched here, on what containerd keeps of a container
    /// (see [`selected`]); the IDs are `NAMESPACE/ID`, as [`Engine::inspect`] takes
    /// them.
    fn list(&self, filters: &[Filter]) -> Result<Vec<ContainerSummary>, EngineError> {
        let mut found: Vec<ContainerSummary> = self
            .running()?
            .iter()
            .map(|(ns, c, task)| (c, describe(ns, c, Some(task)), ns))
            .filter(|(c, info, _)| selected(filters, c, &info.name))
            .map(|(c, info, ns)| ContainerSummary {
                id: format!("{ns}/{}", c.id),
                name: info.name,
                image: info.image,
            })
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }
}

impl Containerd {
    /// Every container with a running task, with its namespace and task, on every
    /// daemon that answers (an error when none does).
    fn running(&self) -> Result<Vec<(String, Container, Process)>, EngineError> {
        let mut out = Vec::new();
        let mut silent = None;
        let mut reached = false;
        for daemon in &self.daemons {
            let namespaces = match self.namespaces(daemon) {
                Ok(n) => n,
                Err(e) if e.no_answer() => {
                    silent.get_or_insert(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            reached = true;
            for ns in namespaces {
                let answer = self.call(daemon, TASKS_LIST, &ns, &[])?;
                let tasks =
                    proto::each(&answer, 1, Process::decode).map_err(|e| malformed(daemon, e))?;
                for task in tasks.into_iter().filter(|t| t.status == Status::Running) {
                    match self.get_container(daemon, &ns, task.container()) {
                        Ok(c) => out.push((ns.clone(), c, task)),
                        // Deleted between the two calls.
                        Err(EngineError::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        match (reached, silent) {
            (false, Some(e)) => Err(e),
            _ => Ok(out),
        }
    }
}

/// Whether container `c`, named `name` (as [`describe`] names it), is one to list
/// for `filters`: it passes them all, and it is not a Kubernetes pod sandbox (the
/// pause container CRI starts for each pod, which holds the pod's namespaces and
/// nothing to look at).
fn selected(filters: &[Filter], c: &Container, name: &str) -> bool {
    c.label(CRI_KIND) != Some("sandbox") && filters.iter().all(|f| matches(f, c, name))
}

/// The label CRI gives its containers: `sandbox` or `container`.
const CRI_KIND: &str = "io.cri-containerd.kind";

/// Whether container `c`, named `name` (as [`describe`] names it), passes `filter`.
fn matches(filter: &Filter, c: &Container, name: &str) -> bool {
    match filter {
        Filter::Label(want) => match want.split_once('=') {
            Some((key, value)) => c.label(key) == Some(value),
            None => c.label(want).is_some(),
        },
        Filter::Name(part) => name.contains(part.as_str()),
        Filter::Image(image) => {
            !c.image.is_empty() && normalized_reference(&c.image) == normalized_reference(image)
        }
    }
}

/// An image reference in full, as containerd stores those pulled by name:
/// `nginx` is `docker.io/library/nginx:latest`, `me/app:1` is
/// `docker.io/me/app:1`; a reference with a registry, tag or digest keeps them.
fn normalized_reference(reference: &str) -> String {
    let (first, rest) = reference.split_once('/').unwrap_or(("", reference));
    let has_registry = first.contains(['.', ':']) || first == "localhost";
    let mut full = match (has_registry, first.is_empty()) {
        (true, _) if first == "docker.io" && !rest.contains('/') => {
            format!("docker.io/library/{rest}")
        }
        (true, _) => reference.to_string(),
        (false, true) => format!("docker.io/library/{rest}"),
        (false, false) => format!("docker.io/{reference}"),
    };
    let last = full.rsplit('/').next().unwrap_or_default();
    if !last.contains([':', '@']) {
        full.push_str(":latest");
    }
    full
}

/// The parts of the OCI runtime spec dlx reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Spec {
    process: SpecProcess,
    hostname: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SpecProcess {
    user: SpecUser,
    cwd: String,
    env: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SpecUser {
    uid: u32,
    gid: u32,
    additional_gids: Vec<u32>,
}

/// Describe container `c` of `namespace`, with its task when it has one.
///
/// The name is `NAMESPACE/NAME`, NAME being the `nerdctl/name` or Kubernetes
/// container-name label, else the ID: `containerd://` accepts exactly that form when
/// NAME is the ID. The user is the spec's numeric `uid:gid`, and its additional GIDs
/// are the groups every process of the container gets.
fn describe(namespace: &str, c: &Container, task: Option<&Process>) -> ContainerInfo {
    let spec: Spec = serde_json::from_slice(&c.spec).unwrap_or_default();
    let name = c
        .label("nerdctl/name")
        .or_else(|| c.label("io.kubernetes.container.name"))
        .unwrap_or(&c.id);
    let (state, pid) = match task {
        None => (RunState::Stopped("created, no task".into()), 0),
        Some(t) => (
            match t.status {
                Status::Running => RunState::Running,
                Status::Paused | Status::Pausing => RunState::Paused,
                Status::Created => RunState::Stopped("created".into()),
                Status::Stopped => RunState::Stopped("stopped".into()),
                Status::Unknown => RunState::Stopped("unknown".into()),
            },
            i32::try_from(t.pid).unwrap_or(0),
        ),
    };
    let user = &spec.process.user;
    ContainerInfo {
        id: c.id.clone(),
        name: format!("{namespace}/{name}"),
        image: c.image.clone(),
        state,
        pid,
        user: format!("{}:{}", user.uid, user.gid),
        working_dir: spec.process.cwd,
        env: spec.process.env,
        hostname: spec.hostname,
        group_add: user
            .additional_gids
            .iter()
            .filter(|g| **g != user.gid)
            .map(u32::to_string)
            .collect(),
        privileged: false,
    }
}

fn transport_error(host: String, e: &GrpcError) -> EngineError {
    let reason = e.to_string();
    if reason.to_lowercase().contains("permission denied") {
        EngineError::Refused {
            host,
            reason: "permission denied".into(),
        }
    } else {
        EngineError::Unreachable { host, reason }
    }
}

fn malformed(daemon: &Daemon, e: proto::ProtoError) -> EngineError {
    EngineError::Unreachable {
        host: format!("unix://{}", daemon.socket.display()),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_and_task_become_container_info() {
        let c = Container {
            id: "4f3a".into(),
            labels: vec![],
            image: "docker.io/library/app:1".into(),
            spec_type: String::new(),
            spec: br#"{"ociVersion":"1.0.2","hostname":"app-host","process":{"user":{"uid":65532,"gid":65532,"additionalGids":[65532,10]},"cwd":"/srv","env":["PATH=/bin","A=1"],"args":["/app"]}}"#.to_vec(),
        };
        let task = Process {
            container_id: "4f3a".into(),
            id: String::new(),
            pid: 777,
            status: Status::Running,
        };
        let info = describe("default", &c, Some(&task));
        assert_eq!(info.name, "default/4f3a");
        assert_eq!((info.pid, info.state.clone()), (777, RunState::Running));
        assert_eq!(info.user, "65532:65532");
        assert_eq!(info.group_add, vec!["10"]);
        assert_eq!(info.working_dir, "/srv");
        assert_eq!(info.env, vec!["PATH=/bin", "A=1"]);
        assert_eq!(info.hostname, "app-host");

        let paused = Process {
            status: Status::Paused,
            ..task
        };
        assert_eq!(
            describe("k8s.io", &c, Some(&paused)).state,
            RunState::Paused
        );
        assert!(matches!(
            describe("k8s.io", &c, None).state,
            RunState::Stopped(_)
        ));
    }

    #[test]
    fn filters_match_labels_names_and_image_references() {
        let c = Container {
            id: "4f3a".into(),
            labels: vec![
                ("app".into(), "web".into()),
                ("io.kubernetes.container.name".into(), "web-1".into()),
            ],
            image: "docker.io/library/nginx:latest".into(),
            ..Container::default()
        };
        let name = "k8s.io/web-1";
        let yes = |f: Filter| assert!(matches(&f, &c, name), "{f:?}");
        let no = |f: Filter| assert!(!matches(&f, &c, name), "{f:?}");
        yes(Filter::Label("app".into()));
        yes(Filter::Label("app=web".into()));
        no(Filter::Label("app=we".into()));
        no(Filter::Label("tier".into()));
        yes(Filter::Name("web".into()));
        yes(Filter::Name("k8s.io/web-1".into()));
        no(Filter::Name("api".into()));
        for image in ["nginx", "nginx:latest", "library/nginx", "docker.io/nginx"] {
            yes(Filter::Image(image.into()));
        }
        no(Filter::Image("nginx:1".into()));
        no(Filter::Image("quay.io/nginx".into()));
        // No image recorded: no image filter matches.
        let bare = Container {
            image: String::new(),
            ..c.clone()
        };
        assert!(!matches(&Filter::Image(String::new()), &bare, name));
        // A pod's sandbox is never listed; its containers are.
        let app = Filter::Label("app=web".into());
        assert!(selected(std::slice::from_ref(&app), &c, name));
        let mut sandbox = c.clone();
        sandbox.labels.push((CRI_KIND.into(), "sandbox".into()));
        assert!(!selected(&[], &sandbox, name));
        assert!(!selected(&[app], &sandbox, name));
    }

    #[test]
    fn image_references_are_completed_as_containerd_stores_them() {
        for (given, full) in [
            ("nginx", "docker.io/library/nginx:latest"),
            ("me/app:1", "docker.io/me/app:1"),
            ("localhost/app", "localhost/app:latest"),
            ("registry:5000/team/app", "registry:5000/team/app:latest"),
            ("ghcr.io/o/app@sha256:ab", "ghcr.io/o/app@sha256:ab"),
            ("docker.io/busybox:1", "docker.io/library/busybox:1"),
        ] {
            assert_eq!(normalized_reference(given), full, "{given}");
        }
    }

    #[test]
    fn labels_name_the_container() {
        let c = Container {
            id: "4f3a".into(),
            labels: vec![("io.kubernetes.container.name".into(), "nginx".into())],
            ..Container::default()
        };
        let info = describe("k8s.io", &c, None);
        assert_eq!(info.name, "k8s.io/nginx");
        // A spec that cannot be read leaves the defaults: root, `/`.
        assert_eq!((info.user.as_str(), info.working_dir.as_str()), ("0:0", ""));
    }

    #[test]
    fn missing_sockets_are_unreachable() {
        let err = Containerd::connect(Some("unix:///nonexistent/containerd.sock"))
            .err()
            .unwrap();
        assert!(err.no_answer(), "{err}");
        assert!(err.to_string().contains("/nonexistent/containerd.sock"));
    }
}
