//! Engines beyond the Docker API: Podman (its Docker-compatible socket), containerd
//! (Docker's own, namespace `moby`, and Debian's with `ctr`), no engine at all (the
//! host's cgroups), and `dlx ps` across them.
//!
//! The fixtures install and start what is missing (podman, containerd, their
//! services) rather than skip: a test here fails when its engine cannot be had.
//!
//! A stopped dockerd is simulated by pointing `DOCKER_HOST` at a dead socket and at
//! one that accepts but never answers: this host runs dockerd without live-restore,
//! so stopping it for real would kill every container on it (other tests' too).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util::*;

const PODMAN_SOCKET: &str = "/run/podman/podman.sock";
const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

// ---- helpers ----

/// `dlx exec --toolbox none ARGS...`: the container's own mount namespace and tools,
/// so the session compares with the container one to one (toolbox sessions are
/// checked on their own in `assert_exec_suite`).
fn exec(args: &[&str]) -> Output {
    run_timeout(dlx().args(["exec", "--toolbox", "none"]).args(args), 60)
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "dlx failed: {}", describe(out));
    stdout(out)
}

/// Run `prog ARGS...`, panicking with its stderr on failure; trimmed stdout.
fn run(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `apt-get install PACKAGE` unless `command` is on PATH already.
fn ensure_command(command: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {command} >/dev/null")])
        .status()
        .unwrap()
        .success();
    if found {
        return;
    }
    static APT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = APT.lock().unwrap_or_else(|e| e.into_inner());
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .expect("run apt-get");
    assert!(status.success(), "apt-get install {package} failed");
}

/// Does something accept connections on the unix socket `path`?
fn socket_answers(path: &str) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// Start `cmd` detached (its own session, output to `log`; it outlives the tests,
/// like the engines) and wait until `ready`.
fn start_daemon(cmd: &[&str], log: &str, ready: impl Fn() -> bool) {
    let status = Command::new("sh")
        .args([
            "-c",
            "log=$1; shift; setsid \"$@\" >\"$log\" 2>&1 </dev/null &",
            "sh",
            log,
        ])
        .args(cmd)
        .status()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    assert!(status.success(), "start {cmd:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "{cmd:?} did not come up; {log}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The host's view of a process's namespace inodes.
fn host_ns(pid: i32) -> BTreeMap<String, String> {
    ["mnt", "uts", "ipc", "net", "pid", "cgroup", "user", "time"]
        .iter()
        .filter_map(|k| {
            let md = std::fs::metadata(format!("/proc/{pid}/ns/{k}")).ok()?;
            Some((k.to_string(), md.ino().to_string()))
        })
        .collect()
}

fn fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// `uid=U gid=G groups=...` of a host process, as the probe prints its own.
fn status_ids(pid: i32) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let first = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    (first("Uid:"), first("Gid:"))
}

/// The core of the exec suite, against `target` whose init is host PID `pid`:
/// namespaces by inode, identity, and exit codes 0/7/127/137.
fn assert_exec_suite(target: &str, pid: i32) {
    let ns = fields(&ok(&exec(&[target, "--", "/probe", "ns"])));
    assert_eq!(ns, host_ns(pid), "namespaces of the session vs {target}");
    // A toolbox session: the same, but for its private copy of the mount namespace.
    let mut toolbox = fields(&ok(&dlx_exec(&[target, "--", "/probe", "ns"])));
    let mut expected = host_ns(pid);
    assert_ne!(toolbox.remove("mnt"), expected.remove("mnt"));
    assert_eq!(
        toolbox, expected,
        "namespaces of a toolbox session in {target}"
    );

    let (uid, gid) = status_ids(pid);
    let id = ok(&exec(&[target, "--", "/probe", "id"]));
    assert!(
        id.starts_with(&format!("uid={uid} gid={gid} ")),
        "{target}: session runs as {id}, the container as {uid}:{gid}"
    );

    let code = |args: &[&str]| {
        let mut full = vec![target, "--"];
        full.extend_from_slice(args);
        let out = exec(&full);
        (out.status.code(), out)
    };
    for (args, want) in [
        (&["/probe", "exit", "0"][..], 0),
        (&["/probe", "exit", "7"][..], 7),
        (&["/no/such/tool"][..], 127),
        (&["/probe", "kill-self", "9"][..], 137),
    ] {
        let (got, out) = code(args);
        assert_eq!(got, Some(want), "{target} {args:?}: {}", describe(&out));
    }
}

/// `dlx ps --format json ARGS...`, parsed.
fn ps_json(args: &[&str]) -> Vec<serde_json::Value> {
    let out = run_timeout(dlx().args(["ps", "--format", "json"]).args(args), 120);
    serde_json::from_str(&ok(&out)).unwrap_or_else(|e| panic!("ps json: {e}: {}", describe(&out)))
}

/// The row of container `id` in a `dlx ps` listing.
fn row<'a>(rows: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    let matching: Vec<_> = rows.iter().filter(|r| r["id"] == id).collect();
    assert_eq!(matching.len(), 1, "one row for {id} in {rows:#?}");
    matching[0]
}

/// A rootfs tar holding the probe, for `podman import` and friends.
fn probe_tar(extra: &[(&Path, &str)]) -> PathBuf {
    let root = work_dir().join(format!("engines-root-{}", extra.len()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy(probe_binary(), root.join("probe")).unwrap();
    for (src, dst) in extra {
        let to = root.join(dst.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src, &to).unwrap();
    }
    let tar = work_dir().join(format!("engines-root-{}.tar", extra.len()));
    run(
        "tar",
        &[
            "-C",
            root.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    );
    tar
}

// ---- Podman ----

/// Podman installed and its Docker-compatible service answering on the rootful socket.
fn podman_service() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        ensure_command("podman", "podman");
        if !socket_answers(PODMAN_SOCKET) {
            std::fs::create_dir_all("/run/podman").unwrap();
            let _ = std::fs::remove_file(PODMAN_SOCKET);
            start_daemon(
                &[
                    "podman",
                    "system",
                    "service",
                    "--time",
                    "0",
                    &format!("unix://{PODMAN_SOCKET}"),
                ],
                "/var/log/dlx-podman-service.log",
                || socket_answers(PODMAN_SOCKET),
            );
        }
    });
}

fn podman(args: &[&str]) -> String {
    run("podman", args)
}

/// The probe image in Podman's store (`podman import`).
fn podman_probe_image() -> String {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        podman_service();
        let tag = "localhost/dlx-test/probe:engines".to_string();
        let tar = probe_tar(&[]);
        podman(&[
            "import",
            "-c",
            "ENTRYPOINT [\"/probe\", \"sleep\"]",
            tar.to_str().unwrap(),
            &tag,
        ]);
        tag
    })
    .clone()
}

/// A Podman container running the probe, removed on drop.
struct PodmanContainer {
    name: String,
}

impl PodmanContainer {
    fn probe(tag: &str, opts: &[&str]) -> PodmanContainer {
        let image = podman_probe_image();
        let name = format!("dlx-it-podman-{tag}-{}", std::process::id());
        let _ = Command::new("podman").args(["rm", "-f", &name]).output();
        // The VM withholds CAP_SYS_RESOURCE: Podman must not raise these limits.
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ];
        args.extend_from_slice(opts);
        args.push(&image);
        podman(&args);
        PodmanContainer { name }
    }

    fn pid(&self) -> i32 {
        podman(&["inspect", "-f", "{{.State.Pid}}", &self.name])
            .parse()
            .unwrap()
    }

    fn id(&self) -> String {
        podman(&["inspect", "-f", "{{.Id}}", &self.name])
    }
}

impl Drop for PodmanContainer {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.name])
            .output();
    }
}

#[test]
fn podman_targets_pass_the_exec_suite() {
    let c = PodmanContainer::probe("suite", &["--user", "65532:65532"]);
    let pid = c.pid();
    assert_exec_suite(&format!("podman://{}", c.name), pid);
    // The session lands in the container's cgroup (libpod-<id>), not conmon's.
    let cgroup = ok(&exec(&[
        &format!("podman://{}", c.name),
        "--",
        "/probe",
        "cgroup",
    ]));
    assert!(cgroup.contains(&format!("libpod-{}", c.id())), "{cgroup}");
    assert!(!cgroup.contains("conmon"), "{cgroup}");
}

#[test]
fn podman_containers_are_found_without_naming_the_engine() {
    let c = PodmanContainer::probe("auto", &[]);
    // Docker does not know the name; Podman does.
    let ns = fields(&ok(&exec(&[&c.name, "--", "/probe", "ns"])));
    assert_eq!(ns, host_ns(c.pid()));
    // --engine says the same as the scheme; a contradiction is refused.
    ok(&exec(&[
        "--engine", "podman", &c.name, "--", "/probe", "exit", "0",
    ]));
    let out = exec(&[
        "--engine",
        "docker",
        &format!("podman://{}", c.name),
        "--",
        "/probe",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    // A Podman container is no Docker container.
    let out = exec(&["--engine", "docker", &c.name, "--", "/probe"]);
    assert!(
        stderr(&out).contains("no such container"),
        "{}",
        describe(&out)
    );
}

// ---- containerd: Docker's own (namespace moby) ----

#[test]
fn docker_containers_are_entered_through_containerd() {
    let c = Container::probe(
        "ctrd-moby",
        &["-e", "FROM_IMAGE=1", "-w", "/etc", "--user", "123:456"],
    );
    let id = c.id();
    let target = format!("containerd://moby/{id}");
    assert_exec_suite(&target, c.pid());
    // The OCI spec gives what `docker exec` would: env, working directory, user.
    for what in ["id", "env", "cwd"] {
        assert_eq!(
            ok(&exec(&[&target, "--", "/probe", what])),
            c.docker_exec(&["/probe", what]) + "\n",
            "{what} through containerd differs from docker exec"
        );
    }
    // No namespace: k8s.io, moby, default are searched; a unique prefix will do.
    let ns = fields(&ok(&exec(&[
        &format!("containerd://{}", &id[..16]),
        "--",
        "/probe",
        "ns",
    ])));
    assert_eq!(ns, host_ns(c.pid()));
    // Only Docker's containerd answers to CONTAINERD_ADDRESS pointing at it.
    let out = run_timeout(
        dlx()
            .env(
                "CONTAINERD_ADDRESS",
                "/run/docker/containerd/containerd.sock",
            )
            .args([
                "exec",
                "--toolbox",
                "none",
                &format!("containerd://moby/{id}"),
                "--",
                "/probe",
                "exit",
                "0",
            ]),
        60,
    );
    ok(&out);
    // Wrong namespace: not found, and said so.
    let out = exec(&[&format!("containerd://default/{id}"), "--", "/probe"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("no such container"),
        "{}",
        describe(&out)
    );
}

#[test]
fn paused_containerd_task_is_refused_with_the_ctr_hint() {
    let c = Container::probe("ctrd-paused", &[]);
    docker(&["pause", &c.name]);
    let out = exec(&[
        &format!("containerd://moby/{}", c.id()),
        "--",
        "/probe",
        "id",
    ]);
    docker(&["unpause", &c.name]);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    assert!(
        stderr(&out).contains("is paused") && stderr(&out).contains("ctr -n moby task resume"),
        "{}",
        describe(&out)
    );
}

// ---- containerd: Debian's, with ctr, running an image dlx built ----

/// Debian's containerd answering on its own socket, beside Docker's.
fn containerd_daemon() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        ensure_command("containerd", "containerd");
        ensure_command("ctr", "containerd");
        let answers = || {
            Command::new("ctr")
                .args(["--address", CONTAINERD_SOCKET, "version"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        if !answers() {
            start_daemon(
                &["containerd", "--address", CONTAINERD_SOCKET],
                "/var/log/dlx-containerd.log",
                answers,
            );
        }
    });
}

fn ctr(args: &[&str]) -> String {
    let mut full = vec!["--address", CONTAINERD_SOCKET, "-n", "default"];
    full.extend_from_slice(args);
    run("ctr", &full)
}

/// `dlx build static:nonroot` with the probe added, written as `tar:` and imported
/// into containerd's `default` namespace.
fn ctr_image() -> String {
    static REF: OnceLock<String> = OnceLock::new();
    REF.get_or_init(|| {
        containerd_daemon();
        let reference = "docker.io/dlx-test/static-probe:engines".to_string();
        let tar = work_dir().join("static-probe.tar");
        let probe = probe_binary();
        let out = run_timeout(
            dlx().args([
                "build",
                "static:nonroot",
                "--add",
                &format!("{}:/probe", probe.display()),
                "--entrypoint",
                "[\"/probe\", \"sleep\"]",
                "-t",
                &reference,
                "--output",
                &format!("tar:{}", tar.display()),
            ]),
            600,
        );
        assert!(out.status.success(), "dlx build: {}", describe(&out));
        ctr(&["images", "import", tar.to_str().unwrap()]);
        let listed = ctr(&["images", "ls", "-q"]);
        assert!(listed.lines().any(|l| l == reference), "{listed}");
        reference
    })
    .clone()
}

/// A ctr container (task running), killed and removed on drop. Its ID is 64 hex
/// digits, as engines make them, so the cgroups can find it too.
struct CtrContainer {
    id: String,
}

impl CtrContainer {
    fn run(tag: &str) -> CtrContainer {
        let image = ctr_image();
        let seed = format!("{tag}-{}-{:?}", std::process::id(), Instant::now());
        let id = format!("{:016x}", fnv(seed.as_bytes())).repeat(4);
        ctr(&["run", "-d", &image, &id]);
        CtrContainer { id }
    }

    fn pid(&self) -> i32 {
        let tasks = ctr(&["tasks", "ls"]);
        tasks
            .lines()
            .find(|l| l.starts_with(&self.id))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no task {} in {tasks}", self.id))
    }
}

impl Drop for CtrContainer {
    fn drop(&mut self) {
        let base = ["--address", CONTAINERD_SOCKET, "-n", "default"];
        let quiet = |args: &[&str]| {
            let _ = Command::new("ctr").args(base).args(args).output();
        };
        quiet(&["tasks", "kill", "-s", "SIGKILL", &self.id]);
        for _ in 0..50 {
            let out = Command::new("ctr")
                .args(base)
                .args(["tasks", "delete", &self.id])
                .output();
            if out.map(|o| o.status.success()).unwrap_or(false) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        quiet(&["containers", "delete", &self.id]);
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

#[test]
fn ctr_runs_a_dlx_built_image_and_dlx_enters_it() {
    let c = CtrContainer::run("suite");
    let pid = c.pid();
    let target = format!("containerd://default/{}", c.id);
    assert_exec_suite(&target, pid);
    // The image's user (static:nonroot: 65532) comes from the container's OCI spec.
    assert_eq!(
        ok(&exec(&[&target, "--", "/probe", "id"])),
        "uid=65532 gid=65532 groups=65532\n"
    );
    let env = ok(&exec(&[&target, "--", "/probe", "env"]));
    assert!(env.contains("PATH="), "{env}");
    // Without a namespace the default search finds it too (k8s.io, moby, default).
    let out = exec(&[
        &format!("containerd://{}", &c.id[..20]),
        "--",
        "/probe",
        "exit",
        "0",
    ]);
    ok(&out);
}

// ---- no engine ----

/// A unix socket that accepts connections and never answers: a hung daemon.
fn hung_socket() -> PathBuf {
    let path = work_dir().join(format!("hung-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    path
}

#[test]
fn no_engine_finds_the_same_init_as_the_api() {
    let c = Container::probe("noengine", &["--user", "65532:65532", "-e", "FROM_IMAGE=1"]);
    let (id, pid) = (c.id(), c.pid());
    // The listing without an engine has the container with the API's PID.
    let rows = ps_json(&["--no-engine"]);
    let r = row(&rows, &id);
    assert_eq!(r["pid"], pid, "{r}");
    assert_eq!(r["engine"], "none");
    // Entering by ID prefix: the same namespaces, the init's identity.
    let target = &id[..12];
    assert_exec_suite_no_engine(target, pid);
    // What only the engine knows is not guessed: no FROM_IMAGE, a default PATH.
    let env = ok(&exec(&["--no-engine", target, "--", "/probe", "env"]));
    assert!(!env.contains("FROM_IMAGE"), "{env}");
    assert!(env.contains("PATH=/usr/local/sbin:"), "{env}");
    // A name cannot be found in the cgroups.
    let out = exec(&["--no-engine", &c.name, "--", "/probe"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("cgroup"), "{}", describe(&out));
}

fn assert_exec_suite_no_engine(prefix: &str, pid: i32) {
    let ns = fields(&ok(&exec(&["--no-engine", prefix, "--", "/probe", "ns"])));
    assert_eq!(ns, host_ns(pid));
    let (uid, gid) = status_ids(pid);
    let id = ok(&exec(&["--no-engine", prefix, "--", "/probe", "id"]));
    assert!(id.starts_with(&format!("uid={uid} gid={gid} ")), "{id}");
    for (args, want) in [
        (&["/probe", "exit", "7"][..], 7),
        (&["/no/such/tool"][..], 127),
        (&["/probe", "kill-self", "9"][..], 137),
    ] {
        let mut full = vec!["--no-engine", prefix, "--"];
        full.extend_from_slice(args);
        let out = exec(&full);
        assert_eq!(
            out.status.code(),
            Some(want),
            "{args:?}: {}",
            describe(&out)
        );
    }
}

#[test]
fn podman_and_ctr_containers_are_found_without_an_engine() {
    let p = PodmanContainer::probe("noengine", &[]);
    let c = CtrContainer::run("noengine");
    let rows = ps_json(&["--no-engine"]);
    // Podman's: libpod-<id>, its conmon (in the same ID's name) left out.
    assert_eq!(row(&rows, &p.id())["pid"], p.pid());
    // ctr's: /default/<id>.
    assert_eq!(row(&rows, &c.id)["pid"], c.pid());
    let ns = fields(&ok(&exec(&[
        "--no-engine",
        &p.id()[..12],
        "--",
        "/probe",
        "ns",
    ])));
    assert_eq!(ns, host_ns(p.pid()));
}

#[test]
fn dead_docker_socket_falls_back_to_the_cgroups() {
    let c = Container::probe("deadsock", &[]);
    let out = run_timeout(
        dlx()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args([
                "exec",
                "--toolbox",
                "none",
                "--engine",
                "docker",
                &c.id()[..12],
                "--",
                "/probe",
                "ns",
            ]),
        60,
    );
    assert_eq!(fields(&ok(&out)), host_ns(c.pid()));
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach the container engine at unix:///nonexistent/docker.sock")
            && err.contains("in the host's cgroups instead"),
        "{err}"
    );
}

#[test]
fn hung_docker_falls_back_after_the_answer_timeout() {
    let c = Container::probe("hung", &[]);
    let sock = hung_socket();
    let started = Instant::now();
    let out = run_timeout(
        dlx()
            .env("DOCKER_HOST", format!("unix://{}", sock.display()))
            .args([
                "exec",
                "--toolbox",
                "none",
                "--engine",
                "docker",
                &c.id()[..12],
                "--",
                "/probe",
                "ns",
            ]),
        60,
    );
    let took = started.elapsed();
    assert_eq!(fields(&ok(&out)), host_ns(c.pid()));
    let err = stderr(&out);
    assert!(
        err.contains("did not answer within 2 s") && err.contains("cgroups instead"),
        "{err}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "fallback took {took:?}"
    );
    // The same engine, hung, with a name: nothing to fall back on; the timeout says so.
    let out = run_timeout(
        dlx()
            .env("DOCKER_HOST", format!("unix://{}", sock.display()))
            .args(["exec", "--engine", "docker", &c.name, "--", "/probe"]),
        60,
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("did not answer"),
        "{}",
        describe(&out)
    );
}

// ---- dlx ps ----

/// A Docker image with a shell (the host's dash and the libc it needs) and the
/// probe: `dlx ps` must see the shell and call the tier base-nossl.
fn shell_image() -> String {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        let libc = std::fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        let ld = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap();
        let tar = probe_tar(&[
            (&sh, "/bin/sh"),
            (&libc, "/lib/x86_64-linux-gnu/libc.so.6"),
            (&ld, "/lib64/ld-linux-x86-64.so.2"),
        ]);
        let tag = "dlx-test/shell-probe:engines".to_string();
        import_probe_root(&tar, &tag);
        tag
    })
    .clone()
}

#[test]
fn ps_lists_the_containers_of_every_engine_once() {
    let d = Container::probe("ps", &["--user", "65532:65532"]);
    let s = Container::run("ps-shell", &[], &shell_image(), &[]);
    let p = PodmanContainer::probe("ps", &[]);
    let c = CtrContainer::run("ps");
    let rows = ps_json(&[]);

    let r = row(&rows, &d.id());
    assert_eq!(
        r["engine"], "docker",
        "Docker's container, not containerd's moby copy"
    );
    assert_eq!(r["name"], d.name.as_str());
    assert_eq!(r["pid"], d.pid());
    assert_eq!(r["user"], "65532:65532");
    assert_eq!(r["shell"], serde_json::Value::Null);
    assert_eq!(r["tier"], "static");
    assert!(
        r["image"].as_str().unwrap().starts_with("dlx-test/probe:"),
        "{r}"
    );

    let r = row(&rows, &s.id());
    assert_eq!(r["shell"], "/bin/sh", "{r}");
    assert_eq!(r["tier"], "base-nossl", "{r}");

    let r = row(&rows, &p.id());
    assert_eq!(
        (r["engine"].as_str(), &r["pid"]),
        (Some("podman"), &p.pid().into())
    );

    let r = row(&rows, &c.id);
    assert_eq!(r["engine"], "containerd");
    assert_eq!(r["pid"], c.pid());
    assert_eq!(r["name"], format!("default/{}", c.id).as_str());
    assert_eq!(r["image"], "docker.io/dlx-test/static-probe:engines");
    assert_eq!(r["user"], "65532:65532");
    assert_eq!(r["tier"], "static");

    // Only one engine.
    let only = ps_json(&["--engine", "podman"]);
    assert!(only.iter().all(|r| r["engine"] == "podman"), "{only:#?}");
    row(&only, &p.id());

    // The table: a header, then one aligned row per container.
    let out = run_timeout(dlx().arg("ps"), 120);
    let table = ok(&out);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("ENGINE") && header.contains("SHELL") && header.ends_with("TIER"),
        "{table}"
    );
    let line = table
        .lines()
        .find(|l| l.contains(&d.name))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.starts_with("docker") && line.contains(&d.id()[..12]),
        "{line}"
    );
    assert!(line.ends_with("static"), "{line}");
}
