//! Toolbox sessions against real containers: the default toolbox at `/.dlx` in a
//! private view, zero trace in the container, hostile containers, a real terminal,
//! and host tools.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::build_util::engine_image;
use crate::exec::{assert_every_attack_failed, attacks, Tmux};
use crate::util::*;

/// What the container itself can observe of its filesystem: its mount table (read
/// from the host through its init) and the engine's diff of its root.
fn footprint(c: &Container) -> (String, String) {
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", c.pid())).unwrap();
    (mountinfo, docker(&["diff", &c.name]))
}

/// Run `check` with a session living in `c` meanwhile, and assert that the
/// container's footprint is the same before, during and after.
fn assert_no_trace(c: &Container, check: impl FnOnce()) {
    let before = footprint(c);
    let during_session = dlx()
        .args(["exec", &c.name, "--", "sleep", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let during = footprint(c);
    check();
    let out = during_session.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let after = footprint(c);
    assert_eq!(before.0, during.0, "mount table changed during a session");
    assert_eq!(before.0, after.0, "mount table changed after a session");
    assert_eq!(before.1, during.1, "docker diff changed during a session");
    assert_eq!(before.1, after.1, "docker diff changed after a session");
}

/// `dlx exec NAME -- ARGS`, which must succeed; its stdout.
fn run_ok(c: &Container, args: &[&str]) -> String {
    let mut full = vec![c.name.as_str(), "--"];
    full.extend_from_slice(args);
    let out = dlx_exec(&full);
    assert!(out.status.success(), "{args:?}: {}", describe(&out));
    stdout(&out)
}

/// The tools a responder reaches for, on a container that has none of them and
/// serves HTTP on port 8080 from `probe` (its only program, at `probe_path`).
/// `capture_as` are the dlx flags that give tcpdump the capability to capture (the
/// container's own user may not have it).
fn assert_tools_work(c: &Container, probe_path: &str, capture_as: &[&str]) {
    let root = run_ok(c, &["ls", "-a", "/"]);
    assert!(root.lines().any(|l| l == ".dlx"), "{root}");
    let ps = run_ok(c, &["ps", "-o", "pid,user,args"]);
    assert!(
        ps.lines()
            .nth(1)
            .is_some_and(|l| l.trim_start().starts_with("1 ") && l.contains("serve 8080")),
        "{ps}"
    );
    let addr = run_ok(c, &["ip", "addr"]);
    assert!(addr.contains("inet 127.0.0.1/8"), "{addr}");
    let ss = run_ok(c, &["ss", "-tulpn"]);
    assert!(
        ss.lines()
            .any(|l| l.contains(":8080") && l.contains("\"probe\",pid=1,")),
        "ss shows neither the port nor its process:\n{ss}"
    );
    let body = run_ok(c, &["curl", "-sS", "http://127.0.0.1:8080/"]);
    assert_eq!(body, "probe-ok\n");
    // One packet on loopback, caught while curl makes some.
    let dump = run_ok_flags(
        c,
        capture_as,
        &[
            "sh",
            "-c",
            "tcpdump -p -c 1 -ni lo tcp port 8080 2>&1 & sleep 1; \
             curl -s http://127.0.0.1:8080/ >/dev/null; wait",
        ],
    );
    assert!(dump.contains("1 packet captured"), "{dump}");
    // strace follows a command of the container's own.
    let out = dlx_exec(&[&c.name, "--", "strace", "-f", probe_path, "exit", "3"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(stderr(&out).contains("exit_group(3)"), "{}", describe(&out));
}

#[test]
fn toolbox_works_on_a_scratch_container_with_one_listening_binary() {
    let c = Container::run(
        "tb-scratch",
        &["--entrypoint", "/probe"],
        &probe_image(),
        &["serve", "8080"],
    );
    assert_no_trace(&c, || {
        assert_tools_work(&c, "/probe", &[]);
        assert_eq!(run_ok(&c, &["cat", "/notexec"]), docker_cat(&c, "/notexec"));
    });
}

/// Mount point -> (per-mount options, filesystem type, source, superblock options),
/// from a mountinfo text.
fn mounts(mountinfo: &str) -> BTreeMap<String, (String, String, String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (head, tail) = l.split_once(" - ")?;
            let head: Vec<&str> = head.split(' ').collect();
            let tail: Vec<&str> = tail.split(' ').collect();
            let point = head.get(4)?.to_string();
            let value = (
                head.get(5)?.to_string(),
                tail.first()?.to_string(),
                tail.get(1)?.to_string(),
                tail.get(2)?.to_string(),
            );
            Some((point, value))
        })
        .collect()
}

#[test]
fn view_holds_every_mount_of_the_container_unchanged() {
    let volume = work_dir().join(format!("view-volume-{}", std::process::id()));
    std::fs::create_dir_all(&volume).unwrap();
    let v = format!("{}:/data:ro", volume.display());
    let c = Container::run(
        "tb-mounts",
        &[
            "-v",
            &v,
            "--tmpfs",
            "/scratch:size=1m",
            "--entrypoint",
            "/probe",
        ],
        &probe_image(),
        &["sleep"],
    );
    let theirs = mounts(&std::fs::read_to_string(format!("/proc/{}/mountinfo", c.pid())).unwrap());
    let ours = mounts(&run_ok(&c, &["cat", "/proc/self/mountinfo"]));
    // Every mount of the container is in the view at the same place, with the same
    // options, filesystem and source: those moved into the view (its volumes,
    // `/proc`, `/dev`, `/sys`) and those below cloned directories (`/etc/hosts`).
    for (point, mount) in theirs.iter().filter(|(p, _)| p.as_str() != "/") {
        assert_eq!(
            ours.get(point),
            Some(mount),
            "{point} differs in the view
view: {ours:#?}"
        );
    }
    // Besides them: the shadow root, the toolbox, and one bind clone of the
    // container's root per plain top-level entry.
    let root = &theirs["/"];
    for (point, mount) in ours.iter().filter(|(p, _)| !theirs.contains_key(*p)) {
        match point.as_str() {
            "/.dlx" => assert!(mount.0.starts_with("ro,"), "{mount:?}"),
            p => {
                assert!(
                    p.matches('/').count() == 1,
                    "unexpected mount {p}: {mount:?}"
                );
                assert_eq!((&mount.1, &mount.2), (&root.1, &root.2), "{p}");
            }
        }
    }
    assert_eq!(ours["/"].1, "tmpfs", "{ours:#?}");
    assert!(
        ours.contains_key("/etc") && ours.contains_key("/probe"),
        "{ours:#?}"
    );
    let _ = std::fs::remove_dir(&volume);
}

/// The container's own copy of a file, as `docker cp` sees it.
fn docker_cat(c: &Container, path: &str) -> String {
    let out = Command::new("docker")
        .args(["cp", &format!("{}:{path}", c.name), "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let mut archive = tar::Archive::new(&out.stdout[..]);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
    text
}

/// A host directory bind-mounted on itself and made shared, so a container can get
/// it as an rshared volume; unmounted on drop.
struct SharedDir(std::path::PathBuf);

impl SharedDir {
    fn new(tag: &str) -> SharedDir {
        let dir = work_dir().join(format!("shared-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("evidence.txt"), "volume file\n").unwrap();
        let d = dir.to_str().unwrap();
        for args in [&["--bind", d, d][..], &["--make-shared", d]] {
            assert!(Command::new("mount").args(args).status().unwrap().success());
        }
        SharedDir(dir)
    }

    /// Host mounts at or below the directory.
    fn host_mounts(&self) -> usize {
        let d = self.0.to_str().unwrap();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(d)))
            .count()
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn read_only_nonroot_container_with_an_rshared_volume_sees_nothing_of_a_session() {
    let shared = SharedDir::new("rshared");
    let volume = format!("{}:/data:rshared", shared.0.display());
    let c = Container::run(
        "tb-ro",
        &[
            "--read-only",
            "--user",
            "65532",
            "-v",
            &volume,
            "--entrypoint",
            "/probe",
        ],
        &probe_image(),
        &["serve", "8080"],
    );
    let host_before = shared.host_mounts();
    assert_no_trace(&c, || {
        assert_tools_work(&c, "/probe", &["-u", "0"]);
        assert_eq!(run_ok(&c, &["cat", "/data/evidence.txt"]), "volume file\n");
        assert_eq!(run_ok(&c, &["id", "-u"]), "65532\n");
        // The toolbox is read-only, and so is the view's own top level.
        let out = dlx_exec(&[
            &c.name,
            "--",
            "sh",
            "-c",
            "touch /.dlx/x || touch /x || exit 9",
        ]);
        assert_eq!(out.status.code(), Some(9), "{}", describe(&out));
    });
    assert_eq!(
        shared.host_mounts(),
        host_before,
        "a mount propagated to the host"
    );
}

#[test]
fn toolbox_works_in_an_image_dlx_built() {
    let tag = "dlx-test/session-static:serve";
    let probe = probe_binary();
    let add = format!("{}:/app/probe", probe.display());
    engine_image(
        tag,
        &[
            "static:nonroot",
            "--add",
            &add,
            "--entrypoint",
            r#"["/app/probe","serve","8080"]"#,
        ],
        &[&probe],
    );
    let c = Container::run("tb-built", &["--read-only", "--cap-drop", "ALL"], tag, &[]);
    assert_no_trace(&c, || {
        // Every capability dropped: only dlx's own (--privileged, as root) can capture.
        assert_tools_work(&c, "/app/probe", &["-u", "0", "--privileged"]);
        let passwd = run_ok(&c, &["cat", "/etc/passwd"]);
        assert_eq!(passwd, docker_cat(&c, "/etc/passwd"));
        assert!(passwd.contains("nonroot:x:65532:65532"), "{passwd}");
        assert_eq!(run_ok(&c, &["id", "-un"]), "nonroot\n");
    });
}

#[test]
fn toolbox_none_and_a_toolbox_dir() {
    let c = Container::probe("tb-choice", &[]);
    let out = dlx_exec(&["--toolbox", "none", &c.name, "--", "ls"]);
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));

    // A directory of static tools of one's own.
    let dir = work_dir().join(format!("own-tools-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy(probe_binary(), dir.join("bin/hello")).unwrap();
    let out = dlx_exec(&[
        "--toolbox",
        dir.to_str().unwrap(),
        &c.name,
        "--",
        "hello",
        "echo",
        "hi",
    ]);
    assert_eq!(stdout(&out), "hi\n", "{}", describe(&out));
    // Its bin comes last: the container's own /probe wins over a toolbox one.
    std::fs::copy(probe_binary(), dir.join("bin/probe")).unwrap();
    let env = ok_env(&c, dir.to_str().unwrap());
    assert!(
        env.contains(
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/.dlx/bin\n"
        ),
        "{env}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn ok_env(c: &Container, toolbox: &str) -> String {
    let out = dlx_exec(&["--toolbox", toolbox, &c.name, "--", "/probe", "env"]);
    assert!(out.status.success(), "{}", describe(&out));
    stdout(&out)
}

#[test]
fn forensic_sessions_cannot_write_and_put_the_toolbox_first() {
    let c = Container::probe("tb-forensic", &[]);
    // As root, into a directory a plain session may write to.
    let out = dlx_exec(&[
        "--forensic",
        "-u",
        "0",
        &c.name,
        "--",
        "sh",
        "-c",
        "echo x > /etc/x",
    ]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        describe(&out)
    );
    // The toolbox comes first, and the session is recorded: an audit line naming a
    // transcript that holds what the session wrote.
    let log = work_dir().join(format!("forensic-{}/audit.jsonl", std::process::id()));
    let log_arg = log.to_str().unwrap();
    let path = run_ok_flags(
        &c,
        &["--forensic", "--audit-log", log_arg],
        &["sh", "-c", "echo $PATH; echo to-stderr >&2"],
    );
    assert!(path.starts_with("/.dlx/bin:"), "{path}");
    let line = std::fs::read_to_string(&log).unwrap();
    let record: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    let transcript = record["transcript"]
        .as_str()
        .expect("no transcript in the audit line");
    let kept = std::fs::read_to_string(transcript).unwrap();
    assert!(
        kept.contains(&path) && kept.contains("to-stderr\n"),
        "{kept}"
    );
    std::fs::remove_dir_all(log.parent().unwrap()).unwrap();
    // A plain session of the same container can write: the view was read-only, not it.
    let out = dlx_exec(&[
        "-u",
        "0",
        &c.name,
        "--",
        "sh",
        "-c",
        "echo x > /etc/x && rm /etc/x",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
}

fn run_ok_flags(c: &Container, flags: &[&str], args: &[&str]) -> String {
    let mut full: Vec<&str> = flags.to_vec();
    full.extend_from_slice(&[c.name.as_str(), "--"]);
    full.extend_from_slice(args);
    let out = dlx_exec(&full);
    assert!(out.status.success(), "{args:?}: {}", describe(&out));
    stdout(&out)
}

/// The hostile init of the exec suite, against toolbox sessions: a shell with
/// children, a toolbox `sleep`, and `strace -f` of a shell. strace must attach to
/// the children it starts, which dlx holds; dlx hands each over with the container
/// frozen, so the watcher gets nothing then either.
///
/// Control: the same toolbox strace started into the container's PID namespace by
/// plain `nsenter`, with nobody holding its children, loses one to the watcher.
#[test]
fn hostile_container_gets_nothing_from_toolbox_sessions() {
    let c = Container::run(
        "tb-hostile",
        &["--cap-add", "SYS_PTRACE", "--entrypoint", "/probe"],
        &probe_image(),
        &["watch", "DLX_TEST_HOST_MARKER"],
    );
    std::thread::sleep(Duration::from_millis(300));
    // strace opens three windows per start (the child it probes PTRACE_SEIZE with,
    // and the one it runs), so short strace sessions come often.
    let strace: &[&str] = &["strace", "-f", "sh", "-c", "sleep 0.1; echo traced"];
    let sessions: [&[&str]; 5] = [
        &["sh", "-c", "sleep 1; echo between; sleep 1"],
        strace,
        &["sleep", "2"],
        strace,
        strace,
    ];
    for round in 0..3 {
        for cmd in sessions {
            let mut args = vec!["exec", c.name.as_str(), "--"];
            args.extend_from_slice(cmd);
            let out = run_timeout(dlx().env("DLX_TEST_HOST_MARKER", "leaked").args(&args), 30);
            assert!(
                out.status.success(),
                "round {round} {cmd:?}: {}",
                describe(&out)
            );
            if cmd[0] == "strace" {
                assert_eq!(stdout(&out), "traced\n", "{}", describe(&out));
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let log = docker(&["logs", &c.name]);
    let seen = attacks(&log);
    let attacked = |kind: &str| seen.iter().filter(|(k, _, _)| k == kind).count();
    assert!(
        attacked("ptrace") >= 15,
        "the watcher missed sessions: {log}"
    );
    assert_every_attack_failed(&seen);

    // Control: the toolbox's own strace, with its loader, from the host's mount
    // namespace into the container's PID namespace. Its forked children are open
    // until strace attaches them, and the watcher gets one within a few tries.
    let (root, loader) = toolbox_root_and_loader();
    let loader = root.join("lib").join(loader);
    let before = log.len();
    let mut caught = false;
    for _attempt in 0..10 {
        let _ = Command::new("nsenter")
            .args(["-t", &c.pid().to_string(), "-p", "--"])
            .arg(&loader)
            .arg("--library-path")
            .arg(root.join("lib"))
            .arg(root.join("libexec/strace"))
            .args(["-f", "-o", "/dev/null", "/probe", "exit", "0"])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let log = docker(&["logs", &c.name]);
        caught = attacks(&log[before..]).iter().any(|(k, o, rest)| {
            k == "ptrace" && o == "ok" && rest.starts_with(loader.to_str().unwrap())
        });
        if caught {
            break;
        }
    }
    assert!(
        caught,
        "the watcher never caught strace's child without dlx, so it proves nothing: {}",
        &docker(&["logs", &c.name])[before..]
    );
}

/// The default toolbox's host directory and its loader's file name (`dlx toolbox
/// --format json`).
fn toolbox_root_and_loader() -> (PathBuf, String) {
    let out = run_timeout(dlx().args(["toolbox", "--format", "json"]), 600);
    assert!(out.status.success(), "{}", describe(&out));
    let desc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    (
        PathBuf::from(desc["root"].as_str().unwrap()),
        desc["loader"].as_str().unwrap().to_string(),
    )
}

#[test]
fn toolbox_shell_in_a_real_terminal() {
    let c = Container::probe("tb-tty", &[]);
    let dlx = env!("CARGO_BIN_EXE_dlx");
    let term = Tmux::new("tb-tty", 100, 30);
    term.send(&[&format!("{dlx} shell {}; echo rc=$?", c.name), "Enter"]);
    term.wait_for("dlx:");
    term.send(&["stty size", "Enter"]);
    term.wait_for("30 100");
    term.resize(120, 40);
    std::thread::sleep(Duration::from_millis(300));
    term.send(&["stty size", "Enter"]);
    term.wait_for("40 120");
    // ^C interrupts the session's foreground job, not dlx or the shell.
    term.send(&["sleep 100", "Enter"]);
    std::thread::sleep(Duration::from_millis(800));
    term.send(&["C-c"]);
    term.send(&["echo alive-$((6*7))", "Enter"]);
    term.wait_for("alive-42");
    term.send(&["exit 42", "Enter"]);
    let screen = term.wait_for("rc=");
    assert!(screen.contains("rc=42"), "{screen}");
}

/// `dlx exec FLAGS -i CONTAINER -- CMD...` with `input` on its stdin.
fn exec_with_input(flags: &[&str], c: &Container, cmd: &[&str], input: &str) -> Output {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.extend(["-i", c.name.as_str(), "--"]);
    args.extend_from_slice(cmd);
    dlx_with_input(&args, input.as_bytes())
}

/// The container's configuration runs no code in a toolbox shell: its `ENV` names a
/// script of its own, which defines a `ps` that hides every process, its `PS1`
/// holds a command substitution, and its `EXINIT` gives BusyBox vi an ex command
/// (`:set ic` here; `:!CMD` runs a command). An interactive toolbox shell given the
/// container's environment as it is sources the one and runs the other at every
/// prompt, and vi runs the third: the controls, a shell and a vi the operator names
/// outside forensic mode. The shell dlx starts (in a real terminal, and its
/// environment), and any shell of a forensic session, do none of it. (All ran in
/// the shell dlx starts, `--forensic` too.)
#[test]
fn toolbox_shell_runs_no_startup_code_of_the_containers_config() {
    let script = work_dir().join(format!("shell-env-{}.sh", std::process::id()));
    std::fs::write(&script, "echo ENV-SOURCED\nps() { echo fake-ps; }\n").unwrap();
    let mount = format!("{}:/e.sh:ro", script.display());
    let c = Container::probe(
        "tb-shenv",
        &[
            "-v",
            &mount,
            "-e",
            "ENV=/e.sh",
            "-e",
            "PS1=$(echo PS1-RAN >&2)> ",
            "-e",
            "EXINIT=:set ic",
        ],
    );
    let ran = |out: &Output| {
        let both = format!("{}{}", stdout(out), stderr(out));
        ["ENV-SOURCED", "PS1-RAN", "fake-ps"]
            .iter()
            .any(|mark| both.contains(mark))
    };
    // Control: an interactive shell reading `ps` from a pipe.
    let out = exec_with_input(&[], &c, &["/.dlx/bin/sh", "-i"], "ps\n");
    assert!(ran(&out), "{}", describe(&out));
    // Forensic: the same shell, by path or by name, runs none of it.
    for shell in ["/.dlx/bin/sh", "sh"] {
        let out = exec_with_input(&["--forensic"], &c, &[shell, "-i"], "ps\n");
        assert!(!ran(&out), "{shell}: {}", describe(&out));
        assert!(stdout(&out).contains("/probe sleep"), "{}", describe(&out));
    }
    // The shell dlx starts gets none of those variables of the container, but dlx's
    // prompt and an EXINIT that does nothing, and the operator's own -e still counts.
    for flags in [&[][..], &["--forensic"], &["-e", "PS2=given"]] {
        let echo = "echo \"[$ENV] [$EXINIT] [$PS1] [$PS2]\"\n";
        let out = exec_with_input(flags, &c, &[], echo);
        assert!(
            stdout(&out).starts_with("[] [:] [dlx:"),
            "{flags:?}: {}",
            describe(&out)
        );
        assert_eq!(
            stdout(&out).trim_end().ends_with("[given]"),
            flags.contains(&"PS2=given"),
            "{flags:?}: {}",
            describe(&out)
        );
    }
    // ... and in a real terminal, an interactive shell, it sources and runs nothing,
    // and its vi runs no ex command of the container's; the control's vi does.
    let dlx = env!("CARGO_BIN_EXE_dlx");
    let term = Tmux::new("tb-shenv", 100, 30);
    let vi_settings = |term: &Tmux, want: &str| {
        term.send(&["vi /dev/shm/f", "Enter"]);
        std::thread::sleep(Duration::from_millis(500));
        term.send(&[":set", "Enter"]);
        term.wait_for(want);
        term.send(&[":q!", "Enter"]);
    };
    term.send(&[
        &format!("{dlx} exec -it {} -- sh; echo rc=$?", c.name),
        "Enter",
    ]);
    vi_settings(&term, "noflash ignorecase");
    term.send(&["exit", "Enter"]);
    term.wait_for("rc=0");
    term.send(&["clear", "Enter"]);
    term.send(&[&format!("{dlx} shell {}; echo rc=$?", c.name), "Enter"]);
    term.wait_for("dlx:");
    term.send(&["ps", "Enter"]);
    term.wait_for("/probe sleep");
    vi_settings(&term, "noflash noignorecase");
    term.send(&["exit 7", "Enter"]);
    let screen = term.wait_for("rc=");
    assert!(screen.contains("rc=7"), "{screen}");
    for mark in ["ENV-SOURCED", "PS1-RAN", "fake-ps"] {
        assert!(!screen.contains(mark), "{mark}: {screen}");
    }
}

/// The toolbox's curl reads no `.curlrc` of the container: one in its `HOME` that
/// asks for a trace would have curl write what the operator sends (credentials
/// included) into the container. The control, the same curl started without the
/// wrapper's `-q`, writes the trace.
#[test]
fn toolbox_curl_reads_no_curlrc_of_the_container() {
    let curlrc = work_dir().join(format!("curlrc-{}", std::process::id()));
    std::fs::write(&curlrc, "trace-ascii = /dev/shm/curl-trace\n").unwrap();
    let mount = format!("{}:/.curlrc:ro", curlrc.display());
    let c = Container::probe("tb-curlrc", &["-v", &mount, "-e", "HOME=/"]);
    let traced = |curl: &str| {
        let script = format!(
            "rm -f /dev/shm/curl-trace; {curl} -s -m 2 -u admin:pw http://127.0.0.1:9/; \
             test -e /dev/shm/curl-trace && echo TRACED"
        );
        let out = dlx_exec(&[&c.name, "--", "sh", "-c", &script]);
        stdout(&out).contains("TRACED")
    };
    let unwrapped = "/.dlx/lib/ld-linux-x86-64.so.2 --library-path /.dlx/lib /.dlx/libexec/curl";
    assert!(traced(unwrapped), "the control wrote no trace");
    assert!(!traced("curl"));
}

#[test]
fn host_tools_share_only_net_uts_ipc_and_stay_invisible() {
    let c = Container::probe("tb-host", &[]);
    let pid = c.pid();
    let ns = |p: &str, kind: &str| {
        std::fs::read_link(format!("/proc/{p}/ns/{kind}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let session = dlx()
        .args([
            "exec",
            "--host-tools",
            &c.name,
            "--",
            "sh",
            "-c",
            "hostname; for k in net uts ipc pid mnt; do readlink /proc/self/ns/$k; done; sleep 2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    // Nothing in the container can see it: not among its processes, not in its cgroup.
    let ps = run_ok(&c, &["ps", "-o", "args"]);
    assert!(!ps.contains("sleep 2") && !ps.contains("hostname"), "{ps}");
    let top = docker(&["top", &c.name]);
    assert!(!top.contains("sleep 2"), "{top}");
    let out = session.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}", describe(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        docker(&["inspect", "-f", "{{.Config.Hostname}}", &c.name])
    );
    let target = pid.to_string();
    for (i, kind) in ["net", "uts", "ipc"].iter().enumerate() {
        assert_eq!(lines[1 + i], ns(&target, kind), "{kind}");
    }
    for (i, kind) in ["pid", "mnt"].iter().enumerate() {
        assert_eq!(
            lines[4 + i],
            ns("self", kind),
            "{kind} must stay the host's"
        );
    }
}

/// `tests/fixtures/preload.c`, compiled once per run: a shared library whose
/// constructor writes `DLX-PRELOADED` and exits 99.
fn preload_library() -> PathBuf {
    static ONCE: OnceLock<PathBuf> = OnceLock::new();
    ONCE.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preload.c");
        let out = work_dir().join("preload.so");
        let status = Command::new("gcc")
            .args(["-shared", "-fPIC", "-nostdlib", "-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("run gcc");
        assert!(status.success(), "gcc failed to build {}", src.display());
        out
    })
    .clone()
}

/// Variables the image sets to make dynamic programs load its library (or read files
/// of its choosing), and one that must reach the tools untouched.
const INJECTING_ENV: [&str; 5] = [
    "LD_PRELOAD=/evil.so",
    "LD_AUDIT=/evil.so",
    "GCONV_PATH=/evil-gconv",
    "OPENSSL_CONF=/evil.cnf",
    "DLX_TEST_KEEP=kept",
];

/// The image's `/etc/nsswitch.conf`: users, groups and hosts looked up through its
/// own NSS module too.
const NSSWITCH: &str = "passwd: files evil\ngroup: files evil\nhosts: files evil\n";

/// The image's OpenSSL configuration, where Debian's OpenSSL looks for it: the
/// library as a provider module, which OpenSSL loads by path when it reads the file.
const OPENSSL_CNF: &str = "openssl_conf = init\n[init]\nproviders = providers\n\
    [providers]\nevil = evil\n[evil]\nmodule = /evil.so\nactivate = 1\n";

/// The image's GSS-API mechanism list, where libgssapi_krb5 reads it: the library as
/// a mechanism, which SPNEGO loads by path when curl negotiates.
const GSS_MECH: &str = "evil 1.3.6.1.4.1.99999.1 /evil.so\n";

/// The image's locale (its config's `LANG`): a character set glibc does not carry
/// built in, so the first multibyte conversion loads the gconv module named for it.
const LOCALE: &str = "en_US.ISO-8859-1";

/// glibc's compiled-in gconv directory, in the image.
const GCONV_DIR: &str = "usr/lib/x86_64-linux-gnu/gconv";

/// The image's `gconv-modules`: the library as the module of LOCALE's character set.
const GCONV_MODULES: &str = "alias ISO88591// ISO-8859-1//\n\
    module ISO-8859-1// INTERNAL ISO8859-1 1\nmodule INTERNAL ISO-8859-1// ISO8859-1 1\n";

/// An image that injects the library into every dynamic program it can: `/evil.so`
/// named by `/etc/ld.so.preload` and by `LD_PRELOAD` and `LD_AUDIT` in its config's
/// environment, as the NSS module `libnss_evil.so.2` in its `/lib`, as a provider
/// module in its `openssl.cnf`, as a GSS-API mechanism in `/etc/gss/mech`, and as the
/// gconv module of its locale's character set (the locale compiled by the host's
/// `localedef`). Its own programs: the probe, and
/// the host's `/bin/true` with the host's loader and libc (a dynamic program of the
/// container, for the control).
fn preloading_image() -> String {
    static ONCE: OnceLock<String> = OnceLock::new();
    ONCE.get_or_init(|| {
        let files: [(PathBuf, &str); 7] = [
            (probe_binary(), "probe"),
            (preload_library(), "evil.so"),
            // The same library as the NSS module NSSWITCH names.
            (preload_library(), "lib/x86_64-linux-gnu/libnss_evil.so.2"),
            // ... and as the gconv module GCONV_MODULES names.
            (preload_library(), &format!("{GCONV_DIR}/ISO8859-1.so")),
            ("/bin/true".into(), "bin/true"),
            (
                "/lib64/ld-linux-x86-64.so.2".into(),
                "lib64/ld-linux-x86-64.so.2",
            ),
            (
                "/lib/x86_64-linux-gnu/libc.so.6".into(),
                "lib/x86_64-linux-gnu/libc.so.6",
            ),
        ];
        // The configuration files naming it.
        let gconv_modules = format!("{GCONV_DIR}/gconv-modules");
        let texts = [
            ("etc/ld.so.preload", "/evil.so\n"),
            ("etc/nsswitch.conf", NSSWITCH),
            ("usr/lib/ssl/openssl.cnf", OPENSSL_CNF),
            ("etc/gss/mech", GSS_MECH),
            (gconv_modules.as_str(), GCONV_MODULES),
        ];
        // Named by what goes in, so it is made once, not once per run.
        let mut sha = Sha256::new();
        for (from, to) in &files {
            let bytes = std::fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
            sha.update(bytes);
            sha.update(to.as_bytes());
        }
        for (path, text) in &texts {
            sha.update(path.as_bytes());
            sha.update(text.as_bytes());
        }
        sha.update(INJECTING_ENV.join("\n").as_bytes());
        sha.update(LOCALE.as_bytes());
        let tag = format!("dlx-test/preloading:{}", &hex::encode(sha.finalize())[..16]);
        if docker_output(&["image", "inspect", &tag]).status.success() {
            return tag;
        }
        let root = work_dir().join(format!("preloading-root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (from, to) in files {
            let to = root.join(to);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        }
        for (path, text) in texts {
            let to = root.join(path);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::write(&to, text).unwrap();
        }
        let locales = root.join("usr/lib/locale");
        std::fs::create_dir_all(&locales).unwrap();
        let (input, charmap) = LOCALE.split_once('.').unwrap();
        let out = Command::new("localedef")
            .args(["--no-archive", "-i", input, "-f", charmap])
            .arg(locales.join(LOCALE))
            .output()
            .expect("run localedef");
        assert!(out.status.success(), "localedef: {}", describe(&out));
        // The chain works: the host's iconv, converting from that locale's character
        // set with those gconv modules, loads the library.
        let out = Command::new("iconv")
            .args(["-t", "UTF-8"])
            .arg(root.join("etc/nsswitch.conf"))
            .env("LOCPATH", &locales)
            .env("LANG", LOCALE)
            .env("GCONV_PATH", root.join(GCONV_DIR))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(99), "{}", describe(&out));
        let tar = work_dir().join(format!("preloading-{}.tar", std::process::id()));
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(ok.success());
        let mut args = vec![
            "import".to_string(),
            "-c".into(),
            "ENTRYPOINT [\"/probe\", \"sleep\"]".into(),
        ];
        for var in INJECTING_ENV {
            args.extend(["-c".into(), format!("ENV {var}")]);
        }
        args.extend(["-c".into(), format!("ENV LANG={LOCALE}")]);
        args.extend([tar.to_str().unwrap().to_string(), tag.clone()]);
        docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_file(&tar).unwrap();
        tag
    })
    .clone()
}

/// The toolbox's tools load none of the container's code, in plain and forensic
/// sessions, though the image names a library in `/etc/ld.so.preload`, in
/// `LD_PRELOAD`/`LD_AUDIT`, as an NSS module, as an OpenSSL provider and as its
/// locale's gconv module: their loader reads no preload file, their wrappers unset
/// the variables (and point OpenSSL at the toolbox's configuration), their objects
/// search no default library directory, and their libc has no locale or gconv
/// directory in the container. The container's own programs keep both.
#[test]
fn toolbox_tools_ignore_the_containers_preload_file_loader_variables_nss_modules_openssl_config_and_locale(
) {
    const SEEN: &str = "DLX-PRELOADED";
    // The library is valid and shows when loaded: the host's loader preloads it.
    let lib = preload_library();
    let out = Command::new("/bin/true")
        .env("LD_PRELOAD", &lib)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(99), "{}", describe(&out));
    assert!(stderr(&out).contains(SEEN), "{}", describe(&out));

    let image = preloading_image();
    let c = Container::run("tb-preload", &["--network", "none"], &image, &[]);
    // Control: a dynamic program of the container loads it, through the variables or
    // through /etc/ld.so.preload alone (the variables emptied).
    for flags in [&[][..], &["-e", "LD_PRELOAD=", "-e", "LD_AUDIT="]] {
        let mut args = flags.to_vec();
        args.extend([c.name.as_str(), "--", "/bin/true"]);
        let out = dlx_exec(&args);
        assert_eq!(out.status.code(), Some(99), "{flags:?}: {}", describe(&out));
        assert!(stderr(&out).contains(SEEN), "{}", describe(&out));
    }
    // The container's programs get the container's environment, as configured.
    let env = run_ok(&c, &["/probe", "env"]);
    for var in INJECTING_ENV {
        assert!(env.lines().any(|l| l == var), "{var} missing:\n{env}");
    }

    let tools: [&[&str]; 7] = [
        &["curl", "--version"],
        &["ss", "-tn"],
        &["ip", "addr"],
        &["tcpdump", "--version"],
        &["strace", "-V"],
        &["lsof", "-v"],
        &["ls", "/"],
    ];
    // `dlx exec FLAGS CONTAINER -- CMD`
    let session = |flags: &[&str], cmd: &[&str]| {
        let mut args = flags.to_vec();
        args.extend([c.name.as_str(), "--"]);
        args.extend_from_slice(cmd);
        dlx_exec(&args)
    };
    for flags in [&[][..], &["--forensic"]] {
        for tool in tools {
            let out = session(flags, tool);
            assert!(
                out.status.success(),
                "{flags:?} {tool:?}: {}",
                describe(&out)
            );
            let both = format!("{}{}", stdout(&out), stderr(&out));
            assert!(
                !both.contains(SEEN),
                "{flags:?} {tool:?}: {}",
                describe(&out)
            );
            assert!(
                !both.contains("ld.so"),
                "{flags:?} {tool:?}: {}",
                describe(&out)
            );
        }
    }
    let ip = run_ok(&c, &["ip", "addr"]);
    assert!(ip.contains("127.0.0.1"), "{ip}");

    // Lookups through the container's /etc/nsswitch.conf do not load its NSS module
    // (libc searches no default directory, which would be the container's /lib):
    // users by lsof, a host name by curl (which then fails to resolve it). curl reads
    // an OpenSSL configuration as it starts, the toolbox's and not the container's.
    // An international host name, converted from the locale's character set, does
    // not load the container's gconv module: the toolbox's libc finds neither the
    // container's locale nor its gconv modules.
    let lookups: [&[&str]; 3] = [
        &["lsof", "-p", "1"],
        &["curl", "-s", "-m", "2", "http://nss-module.invalid/"],
        &["curl", "-s", "-m", "2", "http://gconv-\u{e4}.invalid/"],
    ];
    for flags in [&[][..], &["--forensic"]] {
        for lookup in lookups {
            let out = session(flags, lookup);
            let both = format!("{}{}", stdout(&out), stderr(&out));
            assert!(
                out.status.code() != Some(99) && !both.contains(SEEN),
                "{flags:?} {lookup:?}: {}",
                describe(&out)
            );
        }
    }

    // What a tool starts inherits the tool's environment: without the variables, the
    // rest untouched.
    let traced = run_ok(
        &c,
        &["strace", "-f", "-qq", "-e", "trace=none", "/probe", "env"],
    );
    for var in INJECTING_ENV {
        let kept = traced.lines().any(|l| l == var);
        assert_eq!(kept, var.starts_with("DLX_TEST_KEEP="), "{var}:\n{traced}");
    }
    // ... and a dynamic program of the container started by a tool still has its own
    // loader, which still reads the container's /etc/ld.so.preload.
    let out = dlx_exec(&[
        &c.name,
        "--",
        "strace",
        "-f",
        "-qq",
        "-e",
        "trace=none",
        "/bin/true",
    ]);
    assert_eq!(out.status.code(), Some(99), "{}", describe(&out));
    assert!(stderr(&out).contains(SEEN), "{}", describe(&out));
}

/// The loader's guard refuses what a library of a tool loads by a path the
/// container's configuration gives. Here libgssapi loads the mechanisms of the
/// image's `/etc/gss/mech` as curl negotiates, and OpenSSL the provider of its
/// `openssl.cnf` as curl starts: the toolbox's loader, run by hand without the guard
/// and with neither the variables nor the wrapper's OpenSSL configuration, loads the
/// library both ways; with `--audit` and the guard, neither; and the `curl` wrapper,
/// in the container's environment, does not either.
#[test]
fn toolbox_loader_guard_refuses_the_gss_mechanism_and_openssl_provider_the_container_names() {
    const SEEN: &str = "DLX-PRELOADED";
    const LOADER: &str = "/.dlx/lib/ld-linux-x86-64.so.2 --inhibit-cache --library-path /.dlx/lib";
    const CURL: &str = "--argv0 curl /.dlx/libexec/curl";
    const GUARD: &str = "--audit /.dlx/lib/dlx-guard.so";
    const NO_OPENSSL_CNF: &str = "OPENSSL_CONF=/.dlx/etc/openssl.cnf";
    // printf's escapes, not Rust's: the script holds the backslashes.
    const ANSWER: &str = concat!(
        r"HTTP/1.1 401 Unauthorized\r\n",
        r"WWW-Authenticate: Negotiate\r\n",
        r"Content-Length: 0\r\n\r\n"
    );
    let image = preloading_image();
    let c = Container::run("tb-guard", &["--network", "none"], &image, &[]);
    // One HTTP answer asking for Negotiate, served on loopback by the toolbox's nc;
    // the script waits until it listens, then runs `curl` against it.
    let negotiate = |curl: &str| {
        format!(
            "printf '{ANSWER}' | nc -l -p 8080 >/dev/null &\n\
             i=0; until netstat -ltn | grep -q ':8080 '; do\n\
             i=$((i + 1)); [ $i -lt 100 ] || exit 3; sleep 0.05; done\n\
             {curl} -s -m 5 --negotiate -u : http://127.0.0.1:8080/"
        )
    };
    let run = |flags: &[&str], script: &str| {
        let mut args = flags.to_vec();
        args.extend([c.name.as_str(), "--", "sh", "-c", script]);
        dlx_exec(&args)
    };
    let loads = |out: &Output| out.status.code() == Some(99) && stderr(out).contains(SEEN);

    // Controls: unguarded, the library loads as a GSS-API mechanism (OpenSSL kept to
    // the toolbox's configuration) and as an OpenSSL provider.
    let controls = [
        negotiate(&format!("env -i {NO_OPENSSL_CNF} {LOADER} {CURL}")),
        format!("env -i {LOADER} {CURL} --version"),
    ];
    for script in &controls {
        let out = run(&[], script);
        assert!(loads(&out), "{script}: {}", describe(&out));
    }
    // Guarded: neither, by hand, or through the wrapper in plain and forensic sessions.
    let guarded = [
        negotiate(&format!("env -i {LOADER} {GUARD} {CURL}")),
        format!("env -i {LOADER} {GUARD} {CURL} --version"),
        negotiate("curl"),
    ];
    for flags in [&[][..], &["--forensic"]] {
        for script in &guarded {
            let out = run(flags, script);
            assert!(
                !loads(&out) && !stderr(&out).contains(SEEN),
                "{flags:?} {script}: {}",
                describe(&out)
            );
            // curl ran and finished: the answer came (0), or negotiation failed (no
            // credentials), not a script or loader failure.
            assert!(
                matches!(out.status.code(), Some(0)),
                "{flags:?} {script}: {}",
                describe(&out)
            );
        }
    }
}
