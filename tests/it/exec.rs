//! `dlx exec` against the real engine and kernel, on FROM-scratch containers holding
//! only the probe (`tests/fixtures/probe.c`). Where `docker exec` is the reference,
//! the same probe runs under both and the answers are compared.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::util::*;

/// Lines `key value` (or `key:\tvalue`) as a map.
fn fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.replace(":\t", " ");
            let (k, v) = l.split_once(' ')?;
            Some((k.trim_end_matches(':').to_string(), v.trim().to_string()))
        })
        .collect()
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "dlx failed: {}", describe(out));
    stdout(out)
}

/// The host's view of the target's namespace inodes.
fn host_ns(pid: i32) -> BTreeMap<String, String> {
    ["mnt", "uts", "ipc", "net", "pid", "cgroup", "user", "time"]
        .iter()
        .filter_map(|k| {
            let md = std::fs::metadata(format!("/proc/{pid}/ns/{k}")).ok()?;
            Some((k.to_string(), md.ino().to_string()))
        })
        .collect()
}

/// Everything `docker exec` would make the process, checked on one container.
fn assert_like_docker_exec(c: &Container) {
    let pid = c.pid();
    // Namespaces: every one equal to the target's, by inode, seen from the host.
    let bare = |what: &str| {
        ok(&dlx_exec(&[
            "--toolbox",
            "none",
            &c.name,
            "--",
            "/probe",
            what,
        ]))
    };
    let ns = fields(&bare("ns"));
    assert_eq!(ns, host_ns(pid), "namespaces of the session vs the target");
    // A toolbox session: the same, but for its private copy of the mount namespace.
    let mut with_toolbox = fields(&ok(&dlx_exec(&[&c.name, "--", "/probe", "ns"])));
    let mut expected = host_ns(pid);
    let private = with_toolbox.remove("mnt").unwrap();
    assert_ne!(
        private,
        expected.remove("mnt").unwrap(),
        "toolbox session in the container's own mount namespace"
    );
    assert_ne!(private, host_ns(std::process::id() as i32)["mnt"]);
    assert_eq!(with_toolbox, expected, "namespaces of a toolbox session");

    // Identity, cgroup, environment: exactly what docker exec gives (a toolbox
    // session adds only the toolbox's bin, at the end of PATH).
    for what in ["id", "cgroup", "env", "cwd"] {
        let theirs = c.docker_exec(&["/probe", what]) + "\n";
        assert_eq!(bare(what), theirs, "{what} differs from docker exec");
        let ours = ok(&dlx_exec(&[&c.name, "--", "/probe", what]));
        let theirs = match what {
            "env" => theirs
                .lines()
                .map(|l| match l.starts_with("PATH=") {
                    true => format!("{l}:/.dlx/bin\n"),
                    false => format!("{l}\n"),
                })
                .collect(),
            _ => theirs,
        };
        assert_eq!(
            ours, theirs,
            "{what} of a toolbox session differs from docker exec"
        );
    }

    // Capabilities: docker exec's sets; no_new_privs always on.
    let ours = fields(&ok(&dlx_exec(&[&c.name, "--", "/probe", "caps"])));
    let theirs = fields(&c.docker_exec(&["/probe", "caps"]));
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(ours[set], theirs[set], "{set} differs from docker exec");
    }
    assert_eq!(ours["NoNewPrivs"], "1");

    // Descriptors: 0-2 only, and none of them a host file.
    let fds = ok(&dlx_exec(&[&c.name, "--", "/probe", "fds"]));
    let lines: Vec<&str> = fds.lines().collect();
    assert_eq!(lines.len(), 3, "descriptors beyond 0-2: {fds}");
    assert!(
        lines.iter().all(|l| l.contains("pipe:[")),
        "stdio must be pipes: {fds}"
    );
}

#[test]
fn plain_container_matches_docker_exec() {
    let c = Container::probe("plain", &[]);
    assert_like_docker_exec(&c);
}

#[test]
fn nonroot_without_capabilities_matches_docker_exec() {
    let c = Container::probe("nonroot", &["--user", "65532:65532", "--cap-drop", "ALL"]);
    assert_like_docker_exec(&c);
    let caps = fields(&ok(&dlx_exec(&[&c.name, "--", "/probe", "caps"])));
    assert_eq!(caps["CapBnd"], "0000000000000000");
}

#[test]
fn read_only_rootfs_matches_docker_exec() {
    let c = Container::probe("ro", &["--read-only"]);
    assert_like_docker_exec(&c);
}

#[test]
fn network_none_matches_docker_exec() {
    let c = Container::probe("nonet", &["--network", "none"]);
    assert_like_docker_exec(&c);
}

#[test]
fn host_environment_never_reaches_the_command() {
    let c = Container::probe("env", &["-e", "FROM_IMAGE=1"]);
    let out = run_timeout(
        dlx()
            .env("DLX_TEST_HOST_MARKER", "secret")
            .args(["exec", "-e", "EXTRA=2", &c.name, "--", "/probe", "env"]),
        60,
    );
    let env = ok(&out);
    assert!(
        !env.contains("DLX_TEST_HOST_MARKER"),
        "host variable leaked: {env}"
    );
    assert!(
        env.contains("FROM_IMAGE=1") && env.contains("EXTRA=2") && env.contains("HOME=/\n"),
        "{env}"
    );
}

#[test]
fn exit_codes_pass_through() {
    let c = Container::probe("codes", &[]);
    let code = |args: &[&str]| {
        let mut full = vec![c.name.as_str(), "--"];
        full.extend_from_slice(args);
        dlx_exec(&full).status.code()
    };
    assert_eq!(code(&["/probe", "exit", "0"]), Some(0));
    assert_eq!(code(&["/probe", "exit", "7"]), Some(7));
    assert_eq!(code(&["/no/such/tool"]), Some(127));
    assert_eq!(code(&["probe-not-in-path"]), Some(127));
    assert_eq!(code(&["/notexec"]), Some(126));
    assert_eq!(code(&["/probe", "kill-self", "9"]), Some(137));
    assert_eq!(code(&["/probe", "kill-self", "15"]), Some(143));
}

/// CI once saw 125 here: the command process's own "exec failed" report won the race
/// against the enterer's "spawned" report and was taken for a protocol error.
#[test]
fn regression_exec_failure_racing_spawn_report_still_gives_127() {
    let c = Container::probe("race127", &[]);
    for round in 0..25 {
        let out = dlx_exec(&[&c.name, "--", "probe-not-in-path"]);
        assert_eq!(
            out.status.code(),
            Some(127),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// dlx ignores SIGPIPE (a closed stdout must not kill it), and an ignored signal
/// stays ignored across exec: the command inherited it, unlike under docker exec,
/// and `dlx exec C -- cat big | head` never ended, cat's writes failing forever.
#[test]
fn regression_sigpipe_ignored_by_dlx_stayed_ignored_in_the_command() {
    use std::io::Read;
    let c = Container::probe("sigpipe", &[]);
    let status = |out: &str| -> BTreeMap<String, String> {
        fields(out)
            .into_iter()
            .filter(|(k, _)| k == "SigIgn" || k == "SigBlk")
            .collect()
    };
    let theirs = status(&c.docker_exec(&["/probe", "cat", "/proc/self/status"]));
    assert_eq!(theirs.len(), 2);
    for toolbox in [&["--toolbox", "none"][..], &[]] {
        let mut args = toolbox.to_vec();
        args.extend([c.name.as_str(), "--", "/probe", "cat", "/proc/self/status"]);
        assert_eq!(status(&ok(&dlx_exec(&args))), theirs, "{toolbox:?}");
    }

    // The reader goes away after a little: the command dies of SIGPIPE, and dlx
    // says so (128 + 13).
    let mut child = dlx()
        .args(["exec", &c.name, "--", "/probe", "cat", "/dev/zero"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdout.read_exact(&mut [0u8; 4096]).unwrap();
    drop(stdout);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the command went on writing to a closed pipe");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(code, Some(141));
}

#[test]
fn stdout_and_stderr_stay_separate_and_stdin_passes_with_i() {
    let c = Container::probe("stdio", &[]);
    let out = dlx_exec(&[&c.name, "--", "/probe", "split"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "to-stdout\n");
    assert_eq!(stderr(&out), "to-stderr\n");

    let out = dlx_with_input(
        &["exec", "-i", &c.name, "--", "/probe", "stdin"],
        b"hello through dlx\n",
    );
    assert_eq!(stdout(&out), "hello through dlx\n");

    // Without -i the command sees an empty stdin at once, never dlx's.
    let out = dlx_exec(&[&c.name, "--", "/probe", "stdin"]);
    assert_eq!((out.status.code(), stdout(&out)), (Some(0), String::new()));
}

/// The container's account files are opened only once they are known to be regular
/// files: opening a FIFO or a device can act, from the host, on what the container
/// chose. Here `/etc/passwd` is a FIFO whose writer records any reader's open. dlx
/// leaves it unopened, takes it as absent (as `docker exec` would a missing file:
/// uid 0, HOME /) and says so; the control, an open from the host, is recorded.
#[test]
fn account_file_that_is_a_fifo_is_never_opened() {
    let c = Container::run(
        "fifo-passwd",
        &["--tmpfs", "/etc", "--entrypoint", "/probe"],
        &probe_image(),
        &["fifo-wait", "/etc/passwd", "/dev/shm/opened"],
    );
    let root = format!("/proc/{}/root", c.pid());
    let fifo = Path::new(&root).join("etc/passwd");
    wait_for("no FIFO made", 10, || fifo.exists().then_some(()));
    let opened = Path::new(&root).join("dev/shm/opened");

    let out = dlx_exec(&[&c.name, "--", "/probe", "id"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stdout(&out).starts_with("uid=0 gid=0"),
        "{}",
        describe(&out)
    );
    assert!(
        stderr(&out).contains("/etc/passwd") && stderr(&out).contains("not a regular file"),
        "{}",
        describe(&out)
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!opened.exists(), "dlx opened the FIFO");

    // Control: an open for reading (non-blocking, as dlx used to) is recorded.
    use std::os::unix::fs::OpenOptionsExt;
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    wait_for("the control was not recorded", 10, || {
        opened.exists().then_some(())
    });
}

/// What dlx says quotes what the container chose (here its `PATH`, in the message
/// for a command not found); an escape sequence there reaches the operator's
/// terminal escaped, not as a command to the terminal.
#[test]
fn container_text_in_dlx_messages_shows_escaped() {
    let c = Container::probe("esc-path", &["-e", "PATH=/bin\u{1b}]0;pwned\u{7}"]);
    let out = dlx_exec(&["--toolbox", "none", &c.name, "--", "nosuch"]);
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    let err = stderr(&out);
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(err.contains("PATH=/bin\\u{1b}]0;pwned\\u{7}"), "{err:?}");
}

#[test]
fn signals_sent_to_dlx_reach_the_command() {
    let c = Container::probe("signals", &[]);
    for (signal, code) in [("TERM", 143), ("INT", 130), ("HUP", 129)] {
        let mut child = dlx()
            .args(["exec", &c.name, "--", "/probe", "sleep", "60"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(code),
            "SIGTERM to dlx, command killed by SIG{signal}"
        );
    }
}

#[test]
fn user_workdir_and_env_flags() {
    let c = Container::probe("flags", &["-w", "/etc"]);
    assert_eq!(ok(&dlx_exec(&[&c.name, "--", "/probe", "cwd"])), "/etc\n");
    assert_eq!(
        ok(&dlx_exec(&["-w", "/", &c.name, "--", "/probe", "cwd"])),
        "/\n"
    );
    assert_eq!(
        ok(&dlx_exec(&["-u", "123:456", &c.name, "--", "/probe", "id"])),
        "uid=123 gid=456 groups=456\n"
    );
    let out = dlx_exec(&["-u", "nosuchuser", &c.name, "--", "/probe", "id"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("no user \"nosuchuser\"") && stderr(&out).contains("hint:"),
        "{}",
        describe(&out)
    );
    let out = dlx_exec(&["-w", "/no/such/dir", &c.name, "--", "/probe", "cwd"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("working directory /no/such/dir does not exist"),
        "{}",
        describe(&out)
    );
}

#[test]
fn privileged_keeps_the_full_capability_set() {
    let c = Container::probe("priv", &["--cap-drop", "ALL"]);
    let caps = fields(&ok(&dlx_exec(&[
        "--privileged",
        &c.name,
        "--",
        "/probe",
        "caps",
    ])));
    let own = fields(&std::fs::read_to_string("/proc/self/status").unwrap());
    assert_eq!(caps["CapBnd"], own["CapBnd"]);
    assert_eq!(caps["CapEff"], own["CapEff"]);
}

#[test]
fn ns_list_joins_only_those_namespaces() {
    let c = Container::probe("nslist", &[]);
    let probe = probe_binary();
    // Without the mount namespace the command comes from the host's filesystem.
    let out = dlx_exec(&[
        "--ns",
        "net,uts",
        &c.name,
        "--",
        probe.to_str().unwrap(),
        "ns",
    ]);
    let ns = fields(&ok(&out));
    let target = host_ns(c.pid());
    let own = host_ns(std::process::id() as i32);
    assert_eq!(ns["net"], target["net"]);
    assert_eq!(ns["uts"], target["uts"]);
    assert_eq!(ns["mnt"], own["mnt"]);
    assert_eq!(ns["pid"], own["pid"]);
}

#[test]
fn pid_targets_enter_a_bare_process() {
    let c = Container::probe("bypid", &["--user", "65532:65532"]);
    let pid = c.pid();
    let ns = fields(&ok(&dlx_exec(&[
        "--toolbox",
        "none",
        &format!("pid:{pid}"),
        "--",
        "/probe",
        "ns",
    ])));
    assert_eq!(ns, host_ns(pid));
    // A bare process's own identity is kept.
    assert_eq!(
        ok(&dlx_exec(&[&format!("pid:{pid}"), "--", "/probe", "id"])),
        "uid=65532 gid=65532 groups=65532\n"
    );
}

/// A host that refuses executable memfds (`vm.memfd_noexec=2`, Linux 6.3 and later)
/// still gets sessions: the launcher then runs from a read-only clone of a copy in
/// dlx's cache, executable by anybody. The setting belongs to a PID namespace, so it
/// is made for real in one of this test's own, where a bare target with namespaces
/// of its own is entered: a non-root one without capabilities, which can execute
/// the launcher only through its mode (a copy left 0500 by dlx's umask failed).
#[test]
fn memfd_noexec_2_runs_the_launcher_from_the_cache() {
    if !Path::new("/proc/sys/vm/memfd_noexec").exists() {
        eprintln!("skipped: this kernel has no vm.memfd_noexec (Linux 6.3 and later)");
        return;
    }
    // In a new PID namespace (torn down, target and all, when the script ends).
    let script = r#"
        if [ "$NOEXEC" = 1 ]; then echo 2 > /proc/sys/vm/memfd_noexec || exit 3; fi
        unshare --uts --net setpriv --reuid 65532 --regid 65532 --clear-groups \
            --inh-caps=-all --bounding-set=-all "$PROBE" sleep &
        target=$!
        i=0
        while [ "$(readlink /proc/$target/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do
            i=$((i + 1)); [ $i -lt 500 ] || exit 4; sleep 0.01
        done
        echo "memfd_noexec $(cat /proc/sys/vm/memfd_noexec)"
        echo "target-uts $(stat -L -c %i /proc/$target/ns/uts)"
        echo "target-net $(stat -L -c %i /proc/$target/ns/net)"
        "$DLX" exec --toolbox none "pid:$target" -- "$PROBE" ns
    "#;
    let session = |noexec: bool, cache: &Path| {
        let out = run_timeout(
            Command::new("unshare")
                .args(["--pid", "--fork", "--mount", "--mount-proc", "sh", "-c"])
                .arg(script)
                .env("NOEXEC", if noexec { "1" } else { "0" })
                .env("PROBE", probe_binary())
                .env("DLX", env!("CARGO_BIN_EXE_dlx"))
                .env("DLX_CACHE_DIR", cache),
            60,
        );
        let got = fields(&ok(&out));
        assert_eq!(got["uts"], got["target-uts"], "{}", describe(&out));
        assert_eq!(got["net"], got["target-net"], "{}", describe(&out));
        got
    };
    let launchers = |cache: &Path| -> Vec<std::fs::Metadata> {
        std::fs::read_dir(cache.join("bin"))
            .map(|dir| {
                dir.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("dlx-launcher-"))
                    .map(|e| e.metadata().unwrap())
                    .collect()
            })
            .unwrap_or_default()
    };

    let refused = tempfile::tempdir().unwrap();
    assert_eq!(session(true, refused.path())["memfd_noexec"], "2");
    let cached = launchers(refused.path());
    assert_eq!(cached.len(), 1, "one cached launcher expected");
    assert_eq!(cached[0].mode() & 0o7777, 0o555);
    assert!(cached[0].len() > 0);

    // The same session where memfds may be executable leaves no copy behind.
    let allowed = tempfile::tempdir().unwrap();
    if session(false, allowed.path())["memfd_noexec"] != "2" {
        assert!(launchers(allowed.path()).is_empty());
    }
}

#[test]
fn session_keyring_is_not_the_hosts() {
    let c = Container::probe("keyring", &[]);
    let ours = ok(&dlx_exec(&[&c.name, "--", "/probe", "keyring"]));
    let host = Command::new(probe_binary())
        .arg("keyring")
        .output()
        .unwrap();
    assert_ne!(ours, String::from_utf8_lossy(&host.stdout));
}

#[test]
fn session_runs_in_the_container_cgroup() {
    let c = Container::probe("cgroup", &[]);
    let id = c.id();
    let cg = ok(&dlx_exec(&[&c.name, "--", "/probe", "cgroup"]));
    assert!(
        cg.lines()
            .filter(|l| !l.ends_with(":/"))
            .all(|l| l.contains(&id)),
        "{cg}"
    );
    let cg = ok(&dlx_exec(&[
        "--no-cgroup",
        &c.name,
        "--",
        "/probe",
        "cgroup",
    ]));
    assert!(!cg.contains(&id), "--no-cgroup still joined: {cg}");
}

/// Regression: the enterer joined by writing its pid to every `cgroup.procs`, which
/// takes the kernel's global cgroup lock and, when cold, waits out an RCU grace
/// period (10-20 ms here) with every other join queued behind it. It must be born in
/// the v2 cgroup (clone3 CLONE_INTO_CGROUP) and move through v1's `tasks`; the
/// fallback is for kernels that refuse, not this one.
#[test]
fn cold_cgroup_join_takes_no_global_lock() {
    let c = Container::probe("cgroup-nolock", &[]);
    let out = run_timeout(
        dlx()
            .env("DLX_LOG", "dlx=debug")
            .args(["exec", &c.name, "--", "/probe", "cgroup"]),
        60,
    );
    let cg = ok(&out);
    assert_eq!(cg, c.docker_exec(&["/probe", "cgroup"]) + "\n");
    let err = stderr(&out);
    assert!(
        !err.contains("CLONE_INTO_CGROUP) refused"),
        "the enterer was not forked into the container's v2 cgroup:\n{err}"
    );
}

// ---- bad input: one clear line, a hint, exit 125, never a hang ----

fn assert_refused(out: &std::process::Output, needle: &str) {
    assert_eq!(out.status.code(), Some(125), "{}", describe(out));
    let err = stderr(out);
    assert!(
        err.starts_with("dlx: ") && err.contains(needle),
        "expected {needle:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn missing_container_is_refused() {
    assert_refused(
        &dlx_exec(&["dlx-it-no-such-container", "--", "/probe"]),
        "no such container: dlx-it-no-such-container",
    );
}

#[test]
fn stopped_container_is_refused() {
    let c = Container::probe("stopped", &[]);
    docker(&["stop", "-t", "0", &c.name]);
    let out = dlx_exec(&[&c.name, "--", "/probe", "id"]);
    assert_refused(&out, "is not running (exited)");
    assert!(stderr(&out).contains("hint: `docker start"));
}

#[test]
fn paused_container_is_refused_without_freezing() {
    let c = Container::probe("paused", &[]);
    docker(&["pause", &c.name]);
    let out = dlx_exec(&[&c.name, "--", "/probe", "id"]);
    assert_refused(&out, "is paused");
    // The same through the cgroup freezer when no engine is asked.
    let out = dlx_exec(&[&format!("pid:{}", c.pid()), "--", "/probe", "id"]);
    assert_refused(&out, "is paused");
    docker(&["unpause", &c.name]);
}

#[test]
fn ambiguous_prefix_lists_the_candidates() {
    // Create stopped containers until two IDs share a first hex digit (at most 17).
    let mut made = Vec::new();
    let prefix = loop {
        let name = format!("dlx-it-ambiguous-{}-{}", std::process::id(), made.len());
        let id = docker(&["create", "--name", &name, &probe_image()]);
        made.push(name);
        let ids: Vec<String> = made
            .iter()
            .map(|n| docker(&["inspect", "-f", "{{.Id}}", n]))
            .collect();
        if ids[..ids.len() - 1]
            .iter()
            .any(|other| other[..1] == id[..1])
        {
            break id[..1].to_string();
        }
    };
    let out = dlx_exec(&[&prefix, "--", "/probe"]);
    for name in &made {
        let _ = docker_output(&["rm", "-f", name]);
    }
    assert_refused(&out, &format!("container ID prefix {prefix} is ambiguous"));
}

#[test]
fn no_engine_socket_is_refused() {
    let out = run_timeout(
        dlx()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(["exec", "web", "--", "ls"]),
        30,
    );
    assert_refused(
        &out,
        "cannot reach the container engine at unix:///nonexistent/docker.sock",
    );
    assert!(stderr(&out).contains("hint:"));
}

#[test]
fn engine_refusing_connections_is_refused() {
    let out = run_timeout(
        dlx()
            .env("DOCKER_HOST", "tcp://127.0.0.1:1")
            .args(["exec", "web", "--", "ls"]),
        30,
    );
    assert_refused(
        &out,
        "cannot reach the container engine at tcp://127.0.0.1:1",
    );
}

#[test]
fn vanished_pid_is_refused() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    assert_refused(
        &dlx_exec(&[&format!("pid:{pid}"), "--", "/probe"]),
        &format!("process {pid} does not exist"),
    );
}

#[test]
fn not_root_is_refused_with_a_hint() {
    let c = Container::probe("notroot", &[]);
    let setpriv = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ]);
        cmd.arg(env!("CARGO_BIN_EXE_dlx")).arg("exec").args(args);
        run_timeout(&mut cmd, 30)
    };
    let out = setpriv(&[&c.name, "--", "/probe", "id"]);
    assert_refused(&out, "refused the request: permission denied");
    assert!(stderr(&out).contains("hint: run dlx as root"));
    let out = setpriv(&[&format!("pid:{}", c.pid()), "--", "/probe", "id"]);
    assert_refused(&out, "permission denied pinning process");
}

#[test]
fn usage_errors_exit_125_not_2() {
    let out = dlx_exec(&["web"]);
    assert_refused(&out, "no command given");
}

// ---- a hostile container ----

/// Parse the watcher's log into (attack, outcome, rest) lines about newcomers.
/// No attack of the watcher got anywhere: no executable written to (a sealed launcher
/// memfd may be opened for writing once its exec has ended, but not written), no host
/// environment read, no attach (dlx traces every session process from birth to
/// death: nobody else can), and no descriptor but a pipe (or a file of the
/// read-only toolbox) stolen.
pub fn assert_every_attack_failed(seen: &[(String, String, String)]) {
    for (kind, outcome, rest) in seen {
        match kind.as_str() {
            "exe-write" | "exe-reopen" => assert_eq!(outcome, "denied", "{kind} {outcome} {rest}"),
            "environ" => assert_ne!(outcome, "host-marker", "host environment read: {rest}"),
            "ptrace" => assert_eq!(outcome, "denied", "ptrace attach succeeded: {rest}"),
            // A toolbox wrapper's shell holds its script open until it execs the
            // tool, and the loader each library while it maps it: read-only files
            // of the toolbox, which the session's /proc/<pid>/root shows the
            // container anyway.
            "getfd" => assert!(
                rest.starts_with("pipe:[")
                    || rest.starts_with("anon_inode:")
                    || rest.starts_with("/.dlx/bin/")
                    || rest.starts_with("/.dlx/lib/")
                    || rest.starts_with("/.dlx/libexec/"),
                "stole {rest}"
            ),
            _ => {}
        }
    }
}

pub fn attacks(log: &str) -> Vec<(String, String, String)> {
    log.lines()
        .filter_map(|l| {
            let mut it = l.splitn(4, ' ');
            let (kind, _pid, outcome) = (it.next()?, it.next()?, it.next()?);
            Some((
                kind.to_string(),
                outcome.to_string(),
                it.next().unwrap_or("").to_string(),
            ))
        })
        .filter(|(k, _, _)| {
            ["exe-write", "exe-reopen", "environ", "ptrace", "getfd"].contains(&k.as_str())
        })
        .collect()
}

/// A container init with CAP_SYS_PTRACE attacks every process that appears in its
/// PID namespace. Against dlx sessions: no executable can be opened for writing
/// (before its exec the command process runs dlx's launcher, from a sealed memfd;
/// after, the command's own binary is busy), no host environment is read,
/// no attach succeeds at any time, and the only descriptors to steal are pipes. The same watcher against plain
/// `nsenter -t PID -p` (host binary, host environment, host root) shows the attacks
/// are real.
#[test]
fn hostile_container_gets_nothing_of_the_host() {
    let c = Container::run(
        "hostile",
        &["--cap-add", "SYS_PTRACE", "--entrypoint", "/probe"],
        &probe_image(),
        &["watch", "DLX_TEST_HOST_MARKER"],
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let marker = "DLX_TEST_HOST_MARKER=leaked";
    // Short sessions give the watcher many entry windows to race; a few long ones
    // let it attack the running command too.
    for i in 0..20 {
        let cmd: &[&str] = if i % 4 == 0 {
            &["/probe", "sleep", "1"]
        } else {
            &["/probe", "exit", "0"]
        };
        let mut args = vec!["exec", c.name.as_str(), "--"];
        args.extend_from_slice(cmd);
        let out = run_timeout(dlx().env("DLX_TEST_HOST_MARKER", "leaked").args(&args), 30);
        assert!(out.status.success(), "{}", describe(&out));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let log = docker(&["logs", &c.name]);
    let seen = attacks(&log);
    assert!(!seen.is_empty(), "the watcher saw no session at all: {log}");
    assert_every_attack_failed(&seen);
    assert!(!log.contains(marker));

    // Control: plain nsenter into the PID namespace runs a host binary with the host
    // environment; the same watcher catches it. One pass can miss (a read racing
    // nsenter's own exec sees an empty environment), so it gets a few tries.
    let before = docker(&["logs", &c.name]).len();
    let mut log = String::new();
    for _attempt in 0..5 {
        let status = Command::new("nsenter")
            .env("DLX_TEST_HOST_MARKER", "leaked")
            .args(["-t", &c.pid().to_string(), "-p", "--", "/bin/sleep", "1"])
            .status()
            .unwrap();
        assert!(status.success());
        // The engine's log copier may lag behind on a busy machine.
        for _ in 0..30 {
            log = docker(&["logs", &c.name]);
            if log[before..].contains("host-marker") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if log[before..].contains("host-marker") {
            break;
        }
    }
    let control = attacks(&log[before..]);
    assert!(
        control
            .iter()
            .any(|(k, o, _)| k == "environ" && o == "host-marker"),
        "the watcher failed to catch plain nsenter, so it proves nothing: {}",
        &log[before..]
    );
}

// ---- a real terminal ----

/// A tmux session of its own, killed on drop.
pub struct Tmux(pub String);

impl Tmux {
    pub fn new(tag: &str, cols: u16, rows: u16) -> Tmux {
        let name = format!("dlx-it-{tag}-{}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
                "bash --norc",
            ])
            .status()
            .expect("run tmux (apt-get install tmux)");
        assert!(ok.success());
        Tmux(name)
    }

    pub fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.0.as_str()];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().unwrap().success());
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        let ok = Command::new("tmux")
            .args([
                "resize-window",
                "-t",
                &self.0,
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
            ])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until a line of output shows `needle` (typed command lines, which
    /// hold the prompt, never count).
    pub fn wait_for(&self, needle: &str) -> String {
        for _ in 0..200 {
            let screen = self.screen();
            if screen
                .lines()
                .any(|l| l.contains(needle) && !l.contains("echo ") && !l.contains("stty "))
            {
                return screen;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("terminal never showed {needle:?}:\n{}", self.screen());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

#[test]
fn tty_sessions_get_a_new_terminal_sized_like_the_operators() {
    let c = Container::probe("tty", &[]);
    let dlx = env!("CARGO_BIN_EXE_dlx");
    let term = Tmux::new("tty", 100, 30);
    term.send(&[
        &format!("{dlx} exec -it {} -- /probe winsize; echo rc1=$?", c.name),
        "Enter",
    ]);
    let screen = term.wait_for("rc1=");
    assert!(
        screen.contains("30 100") && screen.contains("rc1=0"),
        "{screen}"
    );

    // The size follows a resize of the operator's terminal.
    term.send(&[
        &format!("{dlx} exec -it {} -- /probe winch; echo rc2=$?", c.name),
        "Enter",
    ]);
    term.wait_for("waiting");
    assert!(Command::new("tmux")
        .args(["resize-window", "-t", &term.0, "-x", "120", "-y", "40"])
        .status()
        .unwrap()
        .success());
    let screen = term.wait_for("rc2=");
    assert!(
        screen.contains("40 120") && screen.contains("rc2=0"),
        "{screen}"
    );

    // ^C reaches the session's foreground job, and dlx reports its death.
    term.send(&[
        &format!("{dlx} exec -it {} -- /probe sleep 100; echo rc3=$?", c.name),
        "Enter",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    term.send(&["C-c"]);
    let screen = term.wait_for("rc3=");
    assert!(screen.contains("rc3=130"), "{screen}");

    // The exit status is exact, and the terminal is back in cooked mode after.
    term.send(&[
        &format!("{dlx} exec -it {} -- /probe exit 42; echo rc4=$?", c.name),
        "Enter",
    ]);
    let screen = term.wait_for("rc4=");
    assert!(screen.contains("rc4=42"), "{screen}");
    term.send(&[r"stty -a | grep -ow -- '-\?icanon'", "Enter"]);
    let screen = term.wait_for("icanon");
    assert!(
        screen.lines().any(|l| l.trim() == "icanon"),
        "raw mode left behind: {screen}"
    );
}

#[test]
fn tty_without_i_only_shows_output() {
    let c = Container::probe("tty-out", &[]);
    let out = dlx_exec(&["-t", &c.name, "--", "/probe", "split"]);
    // One terminal for both streams, CRLF line endings, and the exact status.
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    assert!(
        text.contains("to-stdout\r\n") && text.contains("to-stderr\r\n"),
        "{text:?}"
    );
}

#[test]
fn tty_is_a_terminal_of_the_containers_own_devpts() {
    // As under `docker exec -t`: the terminal has a name in the container, and that
    // name is this very terminal (a host pty would have no name there).
    let c = Container::probe("tty-name", &[]);
    let out = dlx_exec(&["-t", &c.name, "--", "/probe", "tty"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.starts_with("/dev/pts/") && text.trim_end().ends_with(" same"),
        "{text:?}"
    );
}

#[test]
fn ptmx_look_alike_outside_devpts_is_refused_for_a_host_terminal() {
    // A container that put a tmpfs over /dev/pts and a ptmx look-alike in it: dlx
    // checks before it opens, refuses it, and gives the session a host terminal.
    let c = Container::probe("tty-planted", &["--tmpfs", "/dev/pts"]);
    let plant = dlx_exec(&[
        &c.name,
        "--",
        "/.dlx/bin/mknod",
        "/dev/pts/ptmx",
        "c",
        "5",
        "2",
    ]);
    assert!(plant.status.success(), "{}", stderr(&plant));
    let out = dlx_exec(&["-t", &c.name, "--", "/probe", "tty"]);
    assert_eq!(stdout(&out).trim_end(), "no name", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn restarting_container_is_refused() {
    // A command that fails at once, restarted by the engine with a growing back-off:
    // most of the time the container sits in "restarting".
    let c = Container::run(
        "restarting",
        &["--restart", "always", "--entrypoint", "/probe"],
        &probe_image(),
        &["exit", "1"],
    );
    // Once the back-off has grown past a second (four restarts: 0.1+0.2+0.4+0.8 s),
    // a restarting container stays so long enough for dlx to find it so.
    let mut restarting = false;
    for _ in 0..300 {
        let state = docker(&[
            "inspect",
            "-f",
            "{{.State.Restarting}} {{.RestartCount}}",
            &c.name,
        ]);
        let (flag, count) = state.split_once(' ').unwrap();
        if flag == "true" && count.parse::<u32>().unwrap() >= 4 {
            restarting = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        restarting,
        "the container never reached the restarting state"
    );
    let out = dlx_exec(&[&c.name, "--", "/probe", "id"]);
    assert_refused(&out, "is restarting");
    assert!(stderr(&out).contains("hint: wait until it runs"));
}
