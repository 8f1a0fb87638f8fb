//! The Docker API (also Podman's Docker-compatible socket), through bollard.
//!
//! Podman's compatible API (`podman system service`) answers the same requests with
//! the same shapes for everything dlx reads (64-hex IDs, names with a leading `/`,
//! `State.Pid` of the container's init rather than of conmon); what differs is the
//! socket, the cgroup path (`libpod-<id>.scope`), and the tool named in hints.
//!
//! All requests run on a current-thread tokio runtime owned by [`Docker`]: no worker
//! threads are ever started, and dropping the value drops the runtime, so dlx is back
//! to one thread before it forks (a multithreaded process cannot join a mount or user
//! namespace).

use std::cell::Cell;
use std::time::Duration;

use bollard::query_parameters::{InspectContainerOptions, ListContainersOptionsBuilder};
use bollard::ClientVersion;

use super::{
    ContainerInfo, ContainerSummary, Engine, EngineError, EngineKind, Filter, RunState,
    ANSWER_TIMEOUT,
};

/// Where rootful `podman system service` listens by default.
pub const PODMAN_SOCKET: &str = "unix:///run/podman/podman.sock";

/// The API version dlx speaks: old enough for Docker 20.10 and Podman's compat API,
/// new enough for every field dlx reads. `DOCKER_API_VERSION` overrides it.
const API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// How long one engine request may take before dlx gives up on the engine.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How many containers `list_running` asks the engine about at once.
const INSPECT_AT_ONCE: usize = 16;

/// A connection to a Docker-API engine (Docker or Podman).
pub struct Docker {
    client: bollard::Docker,
    runtime: tokio::runtime::Runtime,
    host: String,
    kind: EngineKind,
    /// Whether the engine has answered a ping yet.
    answered: Cell<bool>,
}

impl Docker {
    /// Connect to `DOCKER_HOST` (`unix://…` or `tcp://…`), else the default socket.
    /// Connecting opens nothing yet; the first request does.
    pub fn connect(
        docker_host: Option<&str>,
        api_version: Option<&str>,
    ) -> Result<Docker, EngineError> {
        Docker::connect_kind(
            EngineKind::Docker,
            docker_host.unwrap_or("unix:///var/run/docker.sock"),
            api_version,
        )
    }

    /// Connect to Podman's Docker-compatible socket: `CONTAINER_HOST`, else the
    /// rootful default.
    pub fn connect_podman(podman_host: Option<&str>) -> Result<Docker, EngineError> {
        Docker::connect_kind(
            EngineKind::Podman,
            podman_host.unwrap_or(PODMAN_SOCKET),
            None,
        )
    }

    fn connect_kind(
        kind: EngineKind,
        host: &str,
        api_version: Option<&str>,
    ) -> Result<Docker, EngineError> {
        let host = if host.is_empty() {
            "unix:///var/run/docker.sock"
        } else {
            host
        }
        .to_string();
        let version = api_version.and_then(parse_version).unwrap_or(API_VERSION);
        let unreachable = |reason: String| EngineError::Unreachable {
            host: host.clone(),
            reason,
        };
        let timeout = REQUEST_TIMEOUT.as_secs();
        let client = if let Some(path) = host.strip_prefix("unix://") {
            if !std::path::Path::new(path).exists() {
                return Err(unreachable("no such socket".into()));
            }
            unix_client(path, timeout, &version)
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            bollard::Docker::connect_with_http(&host, timeout, &version)
        } else {
            return Err(unreachable(
                "unsupported DOCKER_HOST scheme (use unix:// or tcp://)".into(),
            ));
        }
        .map_err(|e| unreachable(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| unreachable(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Docker {
            client,
            runtime,
            host,
            kind,
            answered: Cell::new(false),
        })
    }

    /// Which engine this is.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Before the first real request: does anybody answer within [`ANSWER_TIMEOUT`]?
    /// A hung daemon is told apart from a slow request this way.
    fn ensure_answers(&self) -> Result<(), EngineError> {
        if self.answered.get() {
            return Ok(());
        }
        let ping = self
            .runtime
            .block_on(async { tokio::time::timeout(ANSWER_TIMEOUT, self.client.ping()).await });
        match ping {
            Err(_) => Err(EngineError::Timeout {
                host: self.host.clone(),
                secs: ANSWER_TIMEOUT.as_secs(),
            }),
            Ok(Err(e)) => Err(self.engine_error("ping", "the engine", CallError::Bollard(e))),
            Ok(Ok(_)) => {
                self.answered.set(true);
                Ok(())
            }
        }
    }

    fn call<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, CallError> {
        match self
            .runtime
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, fut).await })
        {
            Err(_) => Err(CallError::Timeout),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(CallError::Bollard(e)),
        }
    }

    fn engine_error(&self, op: &'static str, target: &str, err: CallError) -> EngineError {
        match err {
            CallError::Timeout => EngineError::Timeout {
                host: self.host.clone(),
                secs: REQUEST_TIMEOUT.as_secs(),
            },
            CallError::Bollard(bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            }) => EngineError::Api {
                op,
                target: target.to_string(),
                status: status_code,
                message,
            },
            CallError::Bollard(e) => classify_transport(&self.host, &e),
        }
    }

    /// The engine's raw answer about each of `ids`, all asked at once (each on a
    /// connection of its own).
    fn ask_each<S: AsRef<str>>(
        &self,
        ids: &[S],
    ) -> Vec<Result<bollard::models::ContainerInspectResponse, CallError>> {
        let asks = ids.iter().map(|id| async move {
            let ask = self
                .client
                .inspect_container(id.as_ref(), None::<InspectContainerOptions>);
            match tokio::time::timeout(REQUEST_TIMEOUT, ask).await {
                Err(_) => Err(CallError::Timeout),
                Ok(found) => found.map_err(CallError::Bollard),
            }
        });
        self.runtime.block_on(futures_util::future::join_all(asks))
    }

    /// The engine's answer about `target`, or the error it means (an ambiguous
    /// prefix, a container that does not exist, …).
    fn inspected(
        &self,
        target: &str,
        found: Result<bollard::models::ContainerInspectResponse, CallError>,
    ) -> Result<ContainerInfo, EngineError> {
        let resp = match found {
            Ok(resp) => resp,
            Err(CallError::Bollard(bollard::errors::Error::DockerResponseServerError { status_code, message }))
                // Docker 20.10 answers an ambiguous prefix with a 500.
                if status_code != 401 && status_code != 403 =>
            {
                let candidates = self.candidates(target)?;
                return Err(if candidates.len() > 1 {
                    EngineError::Ambiguous { prefix: target.to_string(), candidates }
                } else if status_code == 404 {
                    EngineError::NotFound { target: target.to_string() }
                } else {
                    EngineError::Api { op: "inspect container", target: target.to_string(), status: status_code, message }
                });
            }
            Err(e) => return Err(self.engine_error("inspect container", target, e)),
        };
        Ok(info_of(resp))
    }

    /// Containers whose ID starts with `prefix` or whose name is `prefix`, for the
    /// error that says why `prefix` did not resolve.
    fn candidates(&self, prefix: &str) -> Result<Vec<String>, EngineError> {
        let options = ListContainersOptionsBuilder::new().all(true).build();
        let list = self
            .call(self.client.list_containers(Some(options)))
            .map_err(|e| self.engine_error("list containers matching", prefix, e))?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let id = c.id.unwrap_or_default();
                let name = c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default();
                (id.starts_with(prefix) || name == prefix).then(|| super::candidate(&id, &name))
            })
            .collect())
    }
}

/// A client of the engine's unix socket that keeps its connections open between
/// requests. bollard's own unix client opens a connection per request, and a fan-out
/// asks once per container: each new connection costs the engine and dlx a socket, a
/// handshake and a goroutine. Requests asked at once ([`Docker::ask_each`]) each
/// take a connection, and every one of them stays open for the next batch (a pool of
/// one would close all but one after each batch, and open them again for the next).
/// They all close when dlx ends. The socket path travels hex-encoded as the URI's
/// host, as in bollard's unix URIs.
fn unix_client(
    path: &str,
    timeout: u64,
    version: &ClientVersion,
) -> Result<bollard::Docker, bollard::errors::Error> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .build(hyperlocal::UnixConnector);
    let transport = move |request: bollard::BollardRequest| {
        let client = client.clone();
        async move { Ok(client.request(request).await?) }
    };
    let host = hex::encode(path);
    bollard::Docker::connect_with_custom_transport(
        transport,
        Some(format!("unix://{host}")),
        timeout,
        version,
    )
}

enum CallError {
    Timeout,
    Bollard(bollard::errors::Error),
}

fn parse_version(v: &str) -> Option<ClientVersion> {
    let (major, minor) = v.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// A transport-level failure: nobody listening, no permission, or something else.
fn classify_transport(host: &str, err: &bollard::errors::Error) -> EngineError {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    let lower = text.to_lowercase();
    if lower.contains("permission denied") {
        EngineError::Refused {
            host: host.to_string(),
            reason: "permission denied".into(),
        }
    } else if lower.contains("connection refused") || lower.contains("no such file") {
        EngineError::Unreachable {
            host: host.to_string(),
            reason: "connection refused".into(),
        }
    } else {
        EngineError::Unreachable {
            host: host.to_string(),
            reason: text,
        }
    }
}

impl Engine for Docker {
    fn inspect(&self, target: &str) -> Result<ContainerInfo, EngineError> {
        self.ensure_answers()?;
        // Docker resolves a full ID, then a name, then a unique ID prefix, exactly as
        // `docker exec` does; dlx keeps that order by asking the engine itself.
        let found = self.call(
            self.client
                .inspect_container(target, None::<InspectContainerOptions>),
        );
        self.inspected(target, found)
    }

    fn list_running(&self) -> Result<Vec<ContainerInfo>, EngineError> {
        self.ensure_answers()?;
        let options = ListContainersOptionsBuilder::new().all(false).build();
        let list = self
            .call(self.client.list_containers(Some(options)))
            .map_err(|e| self.engine_error("list", "running containers", e))?;
        let ids: Vec<String> = list.into_iter().filter_map(|summary| summary.id).collect();
        let mut out = Vec::new();
        // A few at a time, not one after another (each is a round trip the engine
        // can answer beside the others), nor all at once (a connection each).
        for chunk in ids.chunks(INSPECT_AT_ONCE) {
            for (id, found) in chunk.iter().zip(self.ask_each(chunk)) {
                match found {
                    Ok(resp) => out.push(info_of(resp)),
                    // Gone between the list and the inspect.
                    Err(CallError::Bollard(
                        bollard::errors::Error::DockerResponseServerError {
                            status_code: 404, ..
                        },
                    )) => {}
                    Err(e) => return Err(self.engine_error("inspect container", id, e)),
                }
            }
        }
        Ok(out)
    }

    /// All asked at once: the client opens as many connections as there are requests
    /// waiting. The engine must have answered already (a listing).
    fn inspect_each(&self, ids: &[&str]) -> Vec<Result<ContainerInfo, EngineError>> {
        ids.iter()
            .zip(self.ask_each(ids))
            .map(|(id, found)| self.inspected(id, found))
            .collect()
    }

    fn list(&self, filters: &[Filter]) -> Result<Vec<ContainerSummary>, EngineError> {
        self.ensure_answers()?;
        let mut query: std::collections::HashMap<&str, Vec<&str>> =
            std::collections::HashMap::from([("status", vec!["running"])]);
        for filter in filters {
            let (key, value) = match filter {
                Filter::Label(v) => ("label", v),
                Filter::Name(v) => ("name", v),
                Filter::Image(v) => ("ancestor", v),
            };
            query.entry(key).or_default().push(value.as_str());
        }
        let options = ListContainersOptionsBuilder::new().filters(&query).build();
        let list = self
            .call(self.client.list_containers(Some(options)))
            .map_err(|e| self.engine_error("list containers", "matching the filters", e))?;
        let mut found: Vec<ContainerSummary> = list
            .into_iter()
            .map(|c| ContainerSummary {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                image: c.image.unwrap_or_default(),
            })
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }
}

/// What dlx keeps of an inspect answer.
fn info_of(resp: bollard::models::ContainerInspectResponse) -> ContainerInfo {
    let state = resp.state.unwrap_or_default();
    let run_state = if state.paused == Some(true) {
        RunState::Paused
    } else if state.restarting == Some(true) {
        RunState::Restarting
    } else if state.running == Some(true) {
        RunState::Running
    } else {
        RunState::Stopped(
            state
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "not running".into()),
        )
    };
    let config = resp.config.unwrap_or_default();
    let host_config = resp.host_config.unwrap_or_default();
    ContainerInfo {
        id: resp.id.unwrap_or_default(),
        name: resp
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: config.image.unwrap_or_default(),
        state: run_state,
        pid: i32::try_from(state.pid.unwrap_or(0)).unwrap_or(0),
        user: config.user.unwrap_or_default(),
        working_dir: config.working_dir.unwrap_or_default(),
        env: config.env.unwrap_or_default(),
        hostname: config.hostname.unwrap_or_default(),
        group_add: host_config.group_add.unwrap_or_default(),
        privileged: host_config.privileged.unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A Docker API socket that answers ping, list and inspect for two containers,
    /// counting the connections and requests it gets.
    struct FakeEngine {
        connections: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
    }

    impl FakeEngine {
        fn start(path: &std::path::Path) -> FakeEngine {
            let listener = UnixListener::bind(path).unwrap();
            let connections = Arc::new(AtomicUsize::new(0));
            let requests = Arc::new(AtomicUsize::new(0));
            let (c, r) = (connections.clone(), requests.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { return };
                    c.fetch_add(1, Ordering::SeqCst);
                    let r = r.clone();
                    std::thread::spawn(move || serve(stream, &r));
                }
            });
            FakeEngine {
                connections,
                requests,
            }
        }
    }

    fn serve(stream: std::os::unix::net::UnixStream, requests: &AtomicUsize) {
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let path = line.split(' ').nth(1).unwrap_or_default().to_string();
            // The rest of the head; these requests have no body.
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            requests.fetch_add(1, Ordering::SeqCst);
            let (kind, body) = if path.ends_with("/_ping") {
                ("text/plain", "OK".to_string())
            } else if path.contains("/containers/json") {
                (
                    "application/json",
                    r#"[{"Id":"a1","Names":["/web"],"Image":"img"},{"Id":"b2","Names":["/db"],"Image":"img"}]"#.to_string(),
                )
            } else {
                let id = path.split('/').rev().nth(1).unwrap_or_default();
                (
                    "application/json",
                    format!(
                        r#"{{"Id":"{id}","Name":"/{id}","State":{{"Running":true,"Pid":42}},"Config":{{"Env":["A=1"]}}}}"#
                    ),
                )
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if writer.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }

    /// A fake engine on a socket in a new directory, and dlx's client of it.
    fn connected() -> (tempfile::TempDir, FakeEngine, Docker) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let engine = FakeEngine::start(&socket);
        let docker = Docker::connect(Some(&format!("unix://{}", socket.display())), None).unwrap();
        (dir, engine, docker)
    }

    #[test]
    fn one_connection_serves_every_request_to_a_unix_socket() {
        let (_dir, engine, docker) = connected();
        let found = docker.list(&[]).unwrap();
        let names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["db", "web"]);
        for c in &found {
            let info = docker.inspect(&c.id).unwrap();
            assert_eq!((info.id.as_str(), info.pid), (c.id.as_str(), 42));
        }
        // The ping that tells a hung engine apart, the list, two inspects.
        assert_eq!(engine.requests.load(Ordering::SeqCst), 4);
        assert_eq!(engine.connections.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn regression_a_batch_of_inspects_reopened_the_connections_of_the_last() {
        let (_dir, engine, docker) = connected();
        docker.list(&[]).unwrap();
        // Two batches, as a fan-out's inspector asks them: three at once, each on a
        // connection (the list's, and two more), which the second batch takes again.
        for _ in 0..2 {
            let found = docker.inspect_each(&["a1", "b2", "c3"]);
            let pids: Vec<i32> = found.into_iter().map(|f| f.unwrap().pid).collect();
            assert_eq!(pids, [42, 42, 42]);
        }
        assert_eq!(engine.requests.load(Ordering::SeqCst), 2 + 6);
        assert_eq!(engine.connections.load(Ordering::SeqCst), 3);
    }
}
