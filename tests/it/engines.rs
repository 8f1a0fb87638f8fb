//! Engines beyond the Docker API: Podman (its Docker-compatible socket), containerd
//! (Docker's own, namespace `moby`, and Debian's with `ctr`), no engine at all (the
//! host's cgroups), and `dlx ps` across them.
//!
//! The fixtures install and start what is missing (podman, containerd, their
//! services) rather than skip: a test here fails when its engine cannot be had.
//!
//! A stopped dockerd is real: the test starts a private dockerd (its own data-root,
//! exec-root, socket, cgroup parent and containerd, with live-restore), runs a
//! container on it and stops it, since stopping the host's dockerd (no live-restore)
//! would kill every container on it, other tests' too. A hung one is simulated by a
//! socket that accepts and never answers.

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
/// like the engines) and wait until `ready`; its PID.
fn start_daemon(cmd: &[&str], log: &str, ready: impl Fn() -> bool) -> i32 {
    // Not a process group leader, setsid execs without forking: `$!` is the daemon.
    let out = Command::new("sh")
        .args([
            "-c",
            "log=$1; shift; setsid \"$@\" >\"$log\" 2>&1 </dev/null & echo $!",
            "sh",
            log,
        ])
        .args(cmd)
        .output()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    assert!(out.status.success(), "start {cmd:?}");
    let pid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("start {cmd:?}: no PID ({e})"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ready() {
            return pid;
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

/// A container in a user namespace of its own (Podman's `--uidmap`). Two bugs: a
/// toolbox (or forensic) session failed to build its private view (the copy of a
/// namespace owned by another user namespace locks every mount, and a locked
/// `/proc` cannot move: EINVAL); and a bare `pid:` target ran as its host uid, which
/// is unmapped inside (EINVAL at the identity switch). The command runs as the
/// container numbers its ids, whichever way the container was named.
#[test]
fn regression_userns_container_view_failed_and_pid_target_ran_as_host_uid() {
    let c = PodmanContainer::probe(
        "userns",
        &[
            "--uidmap",
            "0:200000:65536",
            "--gidmap",
            "0:200000:65536",
            "--user",
            "1000:1000",
        ],
    );
    let (target, pid) = (format!("podman://{}", c.name), c.pid());
    assert_eq!(status_ids(pid), ("201000".into(), "201000".into()));
    let ns = fields(&ok(&exec(&[&target, "--", "/probe", "ns"])));
    assert_eq!(ns, host_ns(pid), "namespaces, the user namespace included");
    let by_engine = ok(&exec(&[&target, "--", "/probe", "id"]));
    assert!(by_engine.starts_with("uid=1000 gid=1000 "), "{by_engine}");
    let by_pid = ok(&exec(&[&format!("pid:{pid}"), "--", "/probe", "id"]));
    assert_eq!(by_pid, by_engine);

    // The toolbox's shell in the private view; a forensic view is read-only.
    let said = ok(&dlx_exec(&[&target, "--", "sh", "-c", "echo from-toolbox"]));
    assert_eq!(said, "from-toolbox\n");
    let audit = tempfile::tempdir().unwrap();
    let log = audit.path().join("audit.log");
    let write = "touch /probe-was-here 2>/dev/null && echo wrote || echo refused";
    let said = ok(&dlx_exec(&[
        "--forensic",
        "--audit-log",
        log.to_str().unwrap(),
        &target,
        "--",
        "sh",
        "-c",
        write,
    ]));
    assert_eq!(said, "refused\n");
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

/// Fan-out through Podman's compatible API: `--engine podman --filter` lists and
/// enters Podman's containers (Docker's filters, Podman's answers); neither Docker
/// nor containerd has them, and each says so.
#[test]
fn fan_out_through_podman() {
    let label = format!("dlx-it-fan-podman={}", std::process::id());
    let a = PodmanContainer::probe("fan-a", &["--label", &label]);
    let b = PodmanContainer::probe("fan-b", &["--label", &label, "--user", "7:7"]);
    let filter = format!("label={label}");
    let out = exec(&[
        "--engine", "podman", "--filter", &filter, "--", "/probe", "id",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("{} | uid=0 gid=0", a.name)),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} | uid=7 gid=7", b.name)),
        "{text}"
    );
    // Docker knows none of them.
    let out = exec(&[
        "--engine", "docker", "--filter", &filter, "--", "/probe", "id",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    assert!(
        stderr(&out).contains("no running container of docker matches"),
        "{}",
        describe(&out)
    );
    let out = exec(&[
        "--engine",
        "containerd",
        "--filter",
        &filter,
        "--",
        "/probe",
        "id",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    assert!(
        stderr(&out).contains("no running container of containerd matches"),
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
        CtrContainer::run_with(tag, &[])
    }

    /// With `ctr run` options (`--label`, `--env`, …).
    fn run_with(tag: &str, opts: &[&str]) -> CtrContainer {
        let image = ctr_image();
        let seed = format!("{tag}-{}-{:?}", std::process::id(), Instant::now());
        let id = format!("{:016x}", fnv(seed.as_bytes())).repeat(4);
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[&image, &id]);
        ctr(&args);
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

/// Fan-out through containerd's own API: `--engine containerd --filter` selects by
/// containerd's labels, names and image references, and each session gets its own
/// container's OCI spec. Without `--engine` the first engine with matches lists
/// them (Docker answers first, with none), and the message names every engine
/// asked when none has any.
#[test]
fn fan_out_through_containerd() {
    let tag = std::process::id();
    let label = format!("dlx-it-fan-ctrd={tag}");
    let named = |n: &str| format!("nerdctl/name=fan-{n}-{tag}");
    let _a = CtrContainer::run_with(
        "fan-a",
        &["--label", &label, "--label", &named("a"), "--env", "WHO=a"],
    );
    let _b = CtrContainer::run_with(
        "fan-b",
        &["--label", &label, "--label", &named("b"), "--env", "WHO=b"],
    );
    let _c = CtrContainer::run_with("fan-c", &["--label", &named("c"), "--env", "WHO=c"]);
    // `dlx exec --engine containerd --filter F… -- /probe CMD…`
    let through_containerd = |filters: &[String], cmd: &[&str]| {
        let mut args = vec!["--engine", "containerd"];
        for f in filters {
            args.extend(["--filter", f.as_str()]);
        }
        args.push("--");
        args.push("/probe");
        args.extend_from_slice(cmd);
        exec(&args)
    };
    let filter = format!("label={label}");
    let env = ok(&through_containerd(std::slice::from_ref(&filter), &["env"]));
    for (who, listed) in [("a", true), ("b", true), ("c", false)] {
        let line = format!("default/fan-{who}-{tag} | WHO={who}");
        assert_eq!(env.lines().any(|l| l == line), listed, "{line}:\n{env}");
    }
    // Another container's environment never shows under a name.
    assert!(
        !env.contains(&format!("default/fan-a-{tag} | WHO=b")),
        "{env}"
    );

    // By name and image reference: only c.
    let name = format!("name=fan-c-{tag}");
    let out = through_containerd(&[name.clone(), format!("image={}", ctr_image())], &["id"]);
    assert_eq!(
        ok(&out),
        format!("default/fan-c-{tag} | uid=65532 gid=65532 groups=65532\n")
    );
    let other = "image=docker.io/library/other:latest".to_string();
    let out = through_containerd(&[name, other], &["id"]);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));

    // Docker answers first and has none of them: containerd lists them.
    let found = ok(&exec(&["--filter", &filter, "--", "/probe", "env"]));
    assert!(
        found.contains(&format!("default/fan-b-{tag} | WHO=b")),
        "{found}"
    );
    let out = exec(&["--filter", "label=dlx-it-nobody", "--", "/probe", "id"]);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    let said = stderr(&out);
    assert!(
        said.contains("no running container of docker") && said.contains("or containerd matches"),
        "{}",
        describe(&out)
    );
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

/// `dlx exec --toolbox none EXTRA... TARGET -- /probe ns` with `DOCKER_HOST=host`.
fn probe_ns_via(host: &str, extra: &[&str], target: &str) -> Output {
    run_timeout(
        dlx()
            .env("DOCKER_HOST", host)
            .args(["exec", "--toolbox", "none"])
            .args(extra)
            .args([target, "--", "/probe", "ns"]),
        60,
    )
}

#[test]
fn dead_docker_socket_falls_back_to_the_cgroups() {
    let c = Container::probe("deadsock", &[]);
    let out = probe_ns_via(
        "unix:///nonexistent/docker.sock",
        &["--engine", "docker"],
        &c.id()[..12],
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
    let out = probe_ns_via(
        &format!("unix://{}", sock.display()),
        &["--engine", "docker"],
        &c.id()[..12],
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

// ---- no engine: a real dockerd, stopped ----

/// Is `pid` running (not gone, not a zombie)?
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(!matches!(state, 'Z' | 'X'))
        })
        .unwrap_or(false)
}

/// SIGTERM `pid` and wait up to `secs` for it to exit; did it?
fn terminate(pid: i32, secs: u64) -> bool {
    use nix::sys::signal::{kill, Signal};
    let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// `program` on PATH, else at `usual`; a failure saying how to get it otherwise.
fn engine_program(program: &str, usual: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap();
    let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !found.is_empty() {
        return found;
    }
    assert!(
        Path::new(usual).exists(),
        "{program} is neither on PATH nor at {usual}: this test runs a private Docker \
         engine of its own; install Debian's docker.io (scripts/test.sh does when no \
         engine answers)"
    );
    usual.to_string()
}

/// A dockerd of one test's own, beside the host's: its own data-root, exec-root,
/// socket, pidfile and cgroup parent (`/dlx-test-dockerd-<pid>`), live-restore (so it
/// can be stopped while its containers run on), vfs (works on any filesystem), and an
/// empty daemon.json (the host's names the host's data-root).
///
/// No networking (`--network none` only), and a network namespace of its own:
/// `--bridge=none` makes dockerd delete the `docker0` of its network namespace at
/// startup, which in the host's would cut off every container of the host's engine
/// (and without it, its default bridge would be the host's `docker0`).
///
/// Its containerd is started here too, with its own root, state and socket: dockerd
/// only starts one of its own when `/run/containerd/containerd.sock` is absent, and
/// adopts Debian's containerd when it answers there (as it does once the ctr tests
/// have run).
///
/// Dropping it removes every trace: the containers (the engine restarted, `rm -f`),
/// the daemons, then by force whatever is left in its cgroups or names its
/// directory, its mounts, cgroups and files; anything left fails the test.
struct PrivateDockerd {
    /// `/run/dlx-test-dockerd-<pid>`: configs, sockets, data-root, exec-root, containerd.
    base: PathBuf,
    cgroup_parent: String,
    dockerd_program: String,
    containerd_program: String,
    dockerd: Option<i32>,
    containerd: Option<i32>,
    containers: Vec<String>,
}

impl PrivateDockerd {
    fn start() -> PrivateDockerd {
        let name = format!("dlx-test-dockerd-{}", std::process::id());
        let mut engine = PrivateDockerd {
            base: Path::new("/run").join(&name),
            cgroup_parent: format!("/{name}"),
            dockerd_program: engine_program("dockerd", "/usr/sbin/dockerd"),
            containerd_program: engine_program("containerd", "/usr/bin/containerd"),
            dockerd: None,
            containerd: None,
            containers: Vec::new(),
        };
        let base = engine.base.display().to_string();
        std::fs::create_dir_all(&engine.base).unwrap();
        std::fs::write(engine.path("daemon.json"), "{}\n").unwrap();
        std::fs::write(
            engine.path("containerd.toml"),
            format!(
                r#"version = 2
root = "{base}/containerd"
state = "{base}/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{base}/containerd.sock"
[ttrpc]
  address = "{base}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/containerd-opt"
"#
            ),
        )
        .unwrap();
        engine.start_daemons("");
        let netns = |pid: &str| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .unwrap()
                .ino()
        };
        assert_ne!(
            netns(&engine.dockerd.unwrap().to_string()),
            netns("self"),
            "the private dockerd runs in the host's network namespace"
        );
        engine
    }

    fn path(&self, name: &str) -> String {
        self.base.join(name).display().to_string()
    }

    /// `unix://…/docker.sock`, for `docker -H` and `DOCKER_HOST`.
    fn host(&self) -> String {
        format!("unix://{}", self.path("docker.sock"))
    }

    /// `docker -H <this engine> ARGS...`, trimmed stdout.
    fn docker(&self, args: &[&str]) -> String {
        let host = self.host();
        let mut full = vec!["-H", host.as_str()];
        full.extend_from_slice(args);
        run("docker", &full)
    }

    fn answers(&self) -> bool {
        Command::new("docker")
            .args(["-H", &self.host(), "version"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// containerd, then dockerd on it; their logs are `private-{containerd,dockerd}{run}.log`
    /// in the work directory.
    fn start_daemons(&mut self, run: &str) {
        let log = |what: &str| {
            work_dir()
                .join(format!("private-{what}{run}.log"))
                .display()
                .to_string()
        };
        let socket = self.path("containerd.sock");
        self.containerd = Some(start_daemon(
            &[
                self.containerd_program.as_str(),
                "--config",
                self.path("containerd.toml").as_str(),
            ],
            &log("containerd"),
            || socket_answers(&socket),
        ));
        let args = [
            "unshare".into(),
            "--net".into(),
            "--".into(),
            self.dockerd_program.clone(),
            format!("--config-file={}", self.path("daemon.json")),
            format!("--containerd={socket}"),
            format!("--data-root={}", self.path("docker")),
            format!("--exec-root={}", self.path("exec")),
            format!("--pidfile={}", self.path("docker.pid")),
            format!("--host={}", self.host()),
            format!("--cgroup-parent={}", self.cgroup_parent),
            "--exec-opt=native.cgroupdriver=cgroupfs".into(),
            "--storage-driver=vfs".into(),
            "--live-restore".into(),
            "--bridge=none".into(),
            "--iptables=false".into(),
            "--ip-masq=false".into(),
            "--ip-forward=false".into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.dockerd = Some(start_daemon(&args, &log("dockerd"), || self.answers()));
    }

    /// A container running the probe's `sleep` as 65532:65532; its ID.
    fn run_probe(&mut self) -> String {
        let image = "dlx-test/probe:private-dockerd";
        import_probe_root(Some(self.host().as_str()), &probe_root_tar(), image);
        let id = self.docker(&[
            "run",
            "-d",
            "--network",
            "none",
            "--user",
            "65532:65532",
            image,
        ]);
        self.containers.push(id.clone());
        id
    }

    /// Stop dockerd, then its containerd, the way a service manager does: SIGTERM,
    /// and wait for each to exit.
    fn stop(&mut self) {
        for (what, pid) in [
            ("dockerd", self.dockerd.take()),
            ("containerd", self.containerd.take()),
        ] {
            let pid = pid.unwrap_or_else(|| panic!("{what} is not running"));
            assert!(
                terminate(pid, 30),
                "{what} (pid {pid}) did not exit within 30 s of SIGTERM"
            );
        }
    }

    /// Processes of this engine still running: in its cgroups, or naming a path in
    /// its directory (dockerd, containerd, the shims).
    fn processes(&self) -> Vec<i32> {
        let base = format!("{}/", self.base.display());
        let in_parent = format!(":{}/", self.cgroup_parent);
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != std::process::id() as i32 && alive(pid))
            .filter(|pid| {
                let read = |what| std::fs::read(format!("/proc/{pid}/{what}")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&read("cmdline")).replace('\0', " ");
                let cgroup = String::from_utf8_lossy(&read("cgroup")).into_owned();
                cmdline.contains(&base) || cgroup.lines().any(|l| l.contains(&in_parent))
            })
            .collect()
    }

    /// Mount points at or under its directory, deepest first.
    fn mounts(&self) -> Vec<String> {
        let base = self.base.display().to_string();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Path::new(m).starts_with(&base))
            .map(str::to_string)
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        mounts
    }

    /// Its cgroup parent in every hierarchy (v1: one per controller; v2: one).
    fn cgroups(&self) -> Vec<PathBuf> {
        let root = Path::new("/sys/fs/cgroup");
        let mut hierarchies = vec![root.to_path_buf()];
        if let Ok(entries) = std::fs::read_dir(root) {
            hierarchies.extend(entries.flatten().map(|e| e.path()));
        }
        let parent = self.cgroup_parent.trim_start_matches('/');
        hierarchies
            .into_iter()
            .map(|h| h.join(parent))
            .filter(|p| p.is_dir())
            .collect()
    }

    /// Remove everything it made; what could not be removed.
    fn remove(&mut self) -> Vec<String> {
        // The orderly way: the engine up again (live-restore adopts the running
        // containers), `rm -f`, and stopped.
        if !self.containers.is_empty() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if self.dockerd.is_none() || self.containerd.is_none() {
                    self.start_daemons("-cleanup");
                }
                let mut args = vec!["rm", "-f"];
                args.extend(self.containers.iter().map(String::as_str));
                self.docker(&args);
                self.containers.clear();
            }));
        }
        for pid in [self.dockerd.take(), self.containerd.take()]
            .into_iter()
            .flatten()
        {
            terminate(pid, 30);
        }
        // By force, what is left: the shims' sockets (outside its directory, in
        // containerd's /run/containerd/s) go with them.
        let shim_sockets: Vec<String> = glob_files(
            &self
                .base
                .join("containerd-state/io.containerd.runtime.v2.task"),
            2,
            "address",
        )
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|a| Some(a.trim().strip_prefix("unix://")?.to_string()))
        .collect();
        for _ in 0..50 {
            let pids = self.processes();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                use nix::sys::signal::{kill, Signal};
                let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for socket in shim_sockets {
            let _ = std::fs::remove_file(socket);
        }
        for _ in 0..5 {
            for mount in self.mounts() {
                let _ = nix::mount::umount2(mount.as_str(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
        for cgroup in self.cgroups() {
            remove_cgroup(&cgroup);
        }
        let _ = std::fs::remove_dir_all(&self.base);

        let mut left = Vec::new();
        let pids = self.processes();
        if !pids.is_empty() {
            left.push(format!("processes {pids:?}"));
        }
        left.extend(self.mounts().into_iter().map(|m| format!("mount {m}")));
        left.extend(
            self.cgroups()
                .into_iter()
                .map(|c| format!("cgroup {}", c.display())),
        );
        if self.base.exists() {
            left.push(format!("directory {}", self.base.display()));
        }
        left
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        let left = self.remove();
        if left.is_empty() {
            return;
        }
        let message = format!("the private dockerd left {}", left.join(", "));
        if std::thread::panicking() {
            eprintln!("{message}");
        } else {
            panic!("{message}");
        }
    }
}

/// Files named `name` exactly `depth` directories below `dir`.
fn glob_files(dir: &Path, depth: usize, name: &str) -> Vec<PathBuf> {
    if depth == 0 {
        let file = dir.join(name);
        return if file.is_file() {
            vec![file]
        } else {
            Vec::new()
        };
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|e| glob_files(&e.path(), depth - 1, name))
        .collect()
}

/// rmdir a cgroup and the ones below it (their control files go with them).
fn remove_cgroup(cgroup: &Path) {
    if let Ok(entries) = std::fs::read_dir(cgroup) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(cgroup);
}

#[test]
fn stopped_dockerd_leaves_no_engine_the_same_init_as_its_api_said() {
    let host_bridge = Path::new("/sys/class/net/docker0").exists();
    let mut engine = PrivateDockerd::start();
    let id = engine.run_probe();
    let pid: i32 = engine
        .docker(&["inspect", "-f", "{{.State.Pid}}", &id])
        .parse()
        .unwrap();
    let namespaces = host_ns(pid);
    assert!(namespaces.contains_key("pid"), "no process {pid}");

    // dockerd stopped for real (and its containerd): nothing answers any more, and
    // live-restore left the container running.
    engine.stop();
    assert_eq!(
        Path::new("/sys/class/net/docker0").exists(),
        host_bridge,
        "the host's docker0"
    );
    assert!(!socket_answers(&engine.path("docker.sock")));
    assert!(!socket_answers(&engine.path("containerd.sock")));
    assert!(alive(pid), "the container's init {pid} died with dockerd");
    assert_eq!(
        host_ns(pid),
        namespaces,
        "{pid} is still the container's init"
    );

    // The cgroups list it with the PID the API gave, and enter that same init.
    let rows = ps_json(&["--no-engine"]);
    let r = row(&rows, &id);
    assert_eq!(r["pid"], pid, "{r}");
    assert_exec_suite_no_engine(&id[..12], pid);

    // Pointed at the dead engine, dlx finds out, says so, and does the same.
    let out = probe_ns_via(&engine.host(), &[], &id[..12]);
    assert_eq!(fields(&ok(&out)), namespaces);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot reach the container engine at {}",
            engine.host()
        )) && err.contains("in the host's cgroups instead"),
        "{err}"
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
        import_probe_root(None, &tar, &tag);
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
