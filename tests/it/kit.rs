//! The responder's kit against the real engine and kernel: `dlx doctor`, fan-out
//! (`dlx exec --filter … -- CMD`), the audit log, and the generated completions and
//! man page.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use crate::util::*;

fn doctor(target: &str) -> std::process::Output {
    run_timeout(dlx().args(["doctor", target]), 60)
}

/// The line of check `name` in a doctor report.
fn check_line<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no {name} check in:\n{report}"))
}

#[test]
fn doctor_says_ok_for_a_running_container() {
    let c = Container::probe("doctor-ok", &[]);
    let out = doctor(&c.name);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = stdout(&out);
    for name in [
        "root",
        "capabilities",
        "yama",
        "cgroup",
        "kernel",
        "state",
        "pin",
    ] {
        assert!(
            check_line(&report, name).starts_with("ok "),
            "{name} not ok:\n{report}"
        );
    }
    assert!(check_line(&report, "state").contains(&c.pid().to_string()));
    // The probe image has no shell: entering works, with that limit named.
    assert!(check_line(&report, "shell").starts_with("warn"), "{report}");
    assert!(
        report
            .lines()
            .last()
            .unwrap()
            .starts_with(&format!("dlx can enter container {}", c.name)),
        "{report}"
    );
}

#[test]
fn doctor_names_a_paused_container_and_the_unpause_step() {
    let c = Container::probe("doctor-paused", &[]);
    docker(&["pause", &c.name]);
    let out = doctor(&c.name);
    docker(&["unpause", &c.name]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = stdout(&out);
    let state = check_line(&report, "state");
    assert!(
        state.starts_with("fail") && state.contains("paused"),
        "{report}"
    );
    assert!(
        report.contains(&format!("hint: `docker unpause {}`", c.name)),
        "{report}"
    );
    assert!(report.contains("dlx cannot enter"), "{report}");
}

#[test]
fn doctor_on_a_missing_container_fails_with_the_engine_hint() {
    let out = doctor("dlx-it-no-such-container");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = stdout(&out);
    assert!(
        check_line(&report, "state").contains("no such container: dlx-it-no-such-container"),
        "{report}"
    );
    assert!(
        report.contains("hint: `dlx ps` lists the running containers"),
        "{report}"
    );
}

/// A static `/tool` that prints a line and exits with `code`, compiled once per code.
fn tool(code: i32) -> std::path::PathBuf {
    let dir = work_dir();
    let src = dir.join("tool.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\nint main(void) { puts(\"from tool\"); return CODE; }\n",
    )
    .unwrap();
    let bin = dir.join(format!("tool-{code}"));
    let ok = Command::new("gcc")
        .args(["-static", "-O2", &format!("-DCODE={code}"), "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap();
    assert!(ok.success(), "gcc failed");
    bin
}

#[test]
fn fan_out_runs_in_every_match_and_reports_the_failure() {
    let label = format!("dlx-it-fanout={}", std::process::id());
    let (pass, fail) = (tool(0), tool(3));
    let containers: Vec<Container> = (1..=5)
        .map(|i| {
            let bin = if i == 4 { &fail } else { &pass };
            let mount = format!("{}:/tool:ro", bin.display());
            Container::probe(&format!("fan{i}"), &["--label", &label, "-v", &mount])
        })
        .collect();
    // A container outside the selection is left alone.
    let other = Container::probe(
        "fan-other",
        &["-v", &format!("{}:/tool:ro", fail.display())],
    );

    let out = run_timeout(
        dlx().args(["exec", "--filter", &format!("label={label}"), "--", "/tool"]),
        120,
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let (out_text, err_text) = (stdout(&out), stderr(&out));
    let mut lines: Vec<&str> = out_text.lines().collect();
    lines.sort();
    let mut want: Vec<String> = containers
        .iter()
        .map(|c| format!("{} | from tool", c.name))
        .collect();
    want.sort();
    assert_eq!(lines, want, "{}", describe(&out));
    // One summary line per container, the failure named.
    for (i, c) in containers.iter().enumerate() {
        let line = err_text
            .lines()
            .find(|l| l.starts_with(&format!("dlx: {} ", c.name)))
            .unwrap_or_else(|| panic!("no summary for {}: {err_text}", c.name));
        let status = if i == 3 { "exit 3" } else { "ok" };
        assert!(line.contains(status) && line.ends_with(" ms"), "{line}");
    }
    assert!(!err_text.contains(&other.name), "{err_text}");

    // name= selects by name, like `docker ps --filter`.
    let out = run_timeout(
        dlx().args([
            "exec",
            "--filter",
            &format!("name={}", containers[0].name),
            "--",
            "/tool",
        ]),
        60,
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        stdout(&out),
        format!("{} | from tool\n", containers[0].name)
    );
}

/// The processes `docker top` shows in container `name`, one command line each.
fn top(name: &str) -> String {
    docker(&["top", name, "-o", "pid,args"])
}

#[test]
fn fan_out_passes_a_sigterm_to_every_session() {
    let label = format!("dlx-it-fansig={}", std::process::id());
    let containers: Vec<Container> = (1..=3)
        .map(|i| Container::probe(&format!("fansig{i}"), &["--label", &label]))
        .collect();
    let child = dlx()
        .args(["exec", "--filter", &format!("label={label}"), "--"])
        .args(["/probe", "sleep", "61"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Every session's command runs before the signal comes.
    wait_for("sessions never started", 30, || {
        let all = containers.iter().all(|c| top(&c.name).contains("sleep 61"));
        all.then_some(())
    });
    let sent = std::time::Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", describe(&out));
    assert!(sent.elapsed().as_secs() < 20, "took {:?}", sent.elapsed());
    let err_text = stderr(&out);
    for c in &containers {
        let line = err_text
            .lines()
            .find(|l| l.starts_with(&format!("dlx: {} ", c.name)))
            .unwrap_or_else(|| panic!("no summary for {}: {err_text}", c.name));
        assert!(line.contains("exit 143"), "{line}");
        assert!(
            !top(&c.name).contains("sleep 61"),
            "{} still sleeps",
            c.name
        );
    }
}

/// The child processes of `pid` (every thread's).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Which of `needles` the writable memory of process `pid` holds, read as root
/// through `/proc/<pid>/mem`.
fn held_in_memory(pid: u32, needles: &[String]) -> Vec<String> {
    use std::os::unix::fs::FileExt;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut held = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (range, perms) = (fields.next().unwrap(), fields.next().unwrap());
        if !perms.starts_with("rw") {
            continue;
        }
        let (from, to) = range.split_once('-').unwrap();
        let from = u64::from_str_radix(from, 16).unwrap();
        let to = u64::from_str_radix(to, 16).unwrap();
        let mut data = vec![0u8; (to - from) as usize];
        if mem.read_exact_at(&mut data, from).is_err() {
            continue; // a guard page, or the region went away
        }
        for n in needles {
            let found = data.windows(n.len()).any(|w| w == n.as_bytes());
            if found && !held.contains(n) {
                held.push(n.clone());
            }
        }
    }
    held
}

/// Each fan-out session is a copy of the dlx that forked it. dlx used to ask the
/// engine about every container itself, so each session (and the dlx relaying them)
/// held what the engine said about the containers entered before it, their
/// environment included. Now a child process (the inspector, which enters nothing)
/// lists them and answers each session about its own container alone.
#[test]
fn fan_out_session_holds_no_other_containers_environment() {
    let label = format!("dlx-it-fanmem={}", std::process::id());
    let secrets: Vec<String> = (1..=3)
        .map(|i| format!("DLXSECRET{i}x{:08x}", std::process::id()))
        .collect();
    let _containers: Vec<Container> = secrets
        .iter()
        .enumerate()
        .map(|(i, secret)| {
            let env = format!("TOKEN={secret}");
            Container::probe(&format!("fanmem{i}"), &["--label", &label, "-e", &env])
        })
        .collect();
    let mut child = dlx()
        .args(["exec", "--filter", &format!("label={label}"), "--"])
        .args(["/probe", "sleep", "3"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Every session runs its command: a session process with a child. The
    // inspector has none.
    let sessions = wait_for("sessions never started", 30, || {
        let sessions: Vec<u32> = children(child.id())
            .into_iter()
            .filter(|&s| !children(s).is_empty())
            .collect();
        (sessions.len() == 3).then_some(sessions)
    });
    let relay = held_in_memory(child.id(), &secrets);
    let held: Vec<Vec<String>> = sessions
        .iter()
        .map(|&s| held_in_memory(s, &secrets))
        .collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(relay.is_empty(), "the relaying dlx holds {relay:?}");
    // Each session holds its own container's environment (the reading works) and
    // nobody else's.
    let mut own: Vec<&String> = held.iter().flatten().collect();
    own.sort();
    assert!(held.iter().all(|h| h.len() == 1), "{held:?}");
    assert_eq!(own, secrets.iter().collect::<Vec<_>>(), "{held:?}");
}

/// On a terminal, no container can pass its output off as another's: a carriage
/// return (or an escape sequence) would take the cursor back over its `name | `
/// prefix and write another name there. Its control characters show escaped; into
/// a pipe its bytes pass as they are.
#[test]
fn fan_out_lines_on_a_terminal_cannot_pass_for_another_containers() {
    let label = format!("dlx-it-fanspoof={}", std::process::id());
    let c = Container::probe("fanspoof", &["--label", &label]);
    let bin = env!("CARGO_BIN_EXE_dlx");
    let script = r"printf 'hidden\r\033[2Kdb-1 | all good\n'";
    let term = crate::exec::Tmux::new("fanspoof", 120, 20);
    term.send(&[
        &format!("{bin} exec --filter label={label} -- sh -c \"{script}\"; echo rc=$?"),
        "Enter",
    ]);
    let screen = term.wait_for("rc=");
    let line = format!("{} | hidden\\x0d\\x1b[2Kdb-1 | all good", c.name);
    assert!(screen.contains(&line), "{screen}");
    assert!(
        !screen.lines().any(|l| l.starts_with("db-1 | ")),
        "{screen}"
    );
    // Piped: byte for byte.
    let out = run_timeout(
        dlx().args([
            "exec",
            "--filter",
            &format!("label={label}"),
            "--",
            "sh",
            "-c",
            script,
        ]),
        60,
    );
    assert_eq!(
        stdout(&out),
        format!("{} | hidden\r\x1b[2Kdb-1 | all good\n", c.name),
        "{}",
        describe(&out)
    );
}

#[test]
fn fan_out_refuses_a_terminal_and_an_empty_selection() {
    let out = run_timeout(dlx().args(["exec", "-t", "--all", "--", "/probe"]), 30);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    assert!(stderr(&out).contains("hint: drop -t"), "{}", describe(&out));

    let out = run_timeout(
        dlx().args([
            "exec",
            "--filter",
            "label=dlx-it-nothing-has-this",
            "--",
            "/probe",
        ]),
        30,
    );
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    // Docker first, then every other engine that answered.
    let said = stderr(&out);
    assert!(
        said.contains("no running container of docker")
            && said.contains(" matches --filter label=dlx-it-nothing-has-this"),
        "{}",
        describe(&out)
    );
}

#[test]
fn every_session_is_audited_with_every_field() {
    let c = Container::probe("audit", &[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/audit.jsonl");
    let log_arg = log.to_str().unwrap();
    let out = dlx_exec(&["--audit-log", log_arg, &c.name, "--", "/probe", "exit", "7"]);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));

    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let time = v["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
    assert_eq!(v["operator_uid"], 0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(v["host"], host.trim());
    assert_eq!(v["engine"], "docker");
    assert_eq!(v["target"], c.name.as_str());
    assert_eq!(v["container_id"], c.id().as_str());
    assert_eq!(v["container_name"], c.name.as_str());
    assert_eq!(v["image"], probe_image().as_str());
    let pid = c.pid();
    assert_eq!(v["pid"], pid);
    let ns = v["namespaces"].as_object().unwrap();
    for kind in ["mnt", "uts", "ipc", "net", "pid"] {
        let ino = std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
            .unwrap()
            .ino();
        assert_eq!(ns[kind], ino, "{kind} inode");
    }
    assert_eq!(v["argv"], serde_json::json!(["/probe", "exit", "7"]));
    assert_eq!(v["exit_status"], 7);
    let ms = v["duration_ms"].as_u64().unwrap();
    assert!(ms < 60_000, "{ms}");
    assert!(v["error"].is_null());
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A refused session is recorded too, appended, with why.
    let out = dlx_exec(&[
        "--audit-log",
        log_arg,
        "dlx-it-no-such-container",
        "--",
        "/probe",
    ]);
    assert_eq!(out.status.code(), Some(125));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    let v: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(v["exit_status"], 125);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("no such container: dlx-it-no-such-container"));
    assert!(v["container_id"].is_null());
}

#[test]
fn an_unwritable_audit_log_never_hides_the_status() {
    let c = Container::probe("audit-fail", &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let log = file.join("audit.jsonl");
    let out = dlx_exec(&[
        "--audit-log",
        log.to_str().unwrap(),
        &c.name,
        "--",
        "/probe",
        "exit",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    assert!(
        stderr(&out).contains("warning: this session is not in the audit log"),
        "{}",
        describe(&out)
    );
}

#[test]
fn fan_out_sessions_are_each_audited() {
    let label = format!("dlx-it-fanaudit={}", std::process::id());
    let cs: Vec<Container> = (1..=2)
        .map(|i| Container::probe(&format!("fanaudit{i}"), &["--label", &label]))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let out = run_timeout(
        dlx().args([
            "exec",
            "--audit-log",
            log.to_str().unwrap(),
            "--filter",
            &format!("label={label}"),
            "--",
            "/probe",
            "exit",
            "0",
        ]),
        60,
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    let mut names: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["container_name"].as_str().unwrap().to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _dlx"),
        ("zsh", "#compdef dlx"),
        ("fish", "complete -c dlx"),
    ] {
        let out = run_timeout(dlx().args(["completions", shell]), 30);
        assert!(out.status.success(), "{}", describe(&out));
        let text = stdout(&out);
        assert!(text.contains(marker), "{shell}: no {marker:?}");
        assert!(
            text.contains("audit-log") && text.contains("doctor"),
            "{shell}"
        );
    }
    let bash = run_timeout(dlx().args(["completions", "bash"]), 30);
    let ok = Command::new("bash")
        .args(["-n", "-c", &stdout(&bash)])
        .status()
        .unwrap();
    assert!(ok.success(), "the bash completion script does not parse");
}

#[test]
fn man_pages_render_with_groff() {
    for page in [None, Some("exec"), Some("doctor")] {
        let mut cmd = dlx();
        cmd.arg("man").args(page);
        let out = run_timeout(&mut cmd, 30);
        assert!(out.status.success(), "{}", describe(&out));
        let roff = stdout(&out);
        let title = match page {
            None => ".TH dlx 1".to_string(),
            Some(p) => format!(".TH dlx-{p} 1"),
        };
        assert!(
            roff.lines().any(|l| l.starts_with(&title)),
            "{}",
            &roff[..roff.len().min(300)]
        );
        let rendered = render_roff(&roff);
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS"] {
            assert!(rendered.contains(section), "{page:?}: no {section}");
        }
        if page == Some("exec") {
            assert!(roff.contains("\\-\\-audit\\-log") && roff.contains("\\-\\-filter"));
        }
    }
    let out = run_timeout(dlx().args(["man", "nope"]), 30);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("hint: dlx has man pages for exec"));
}

/// Render roff with groff, failing on any warning.
fn render_roff(roff: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P", "-cbou"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run groff (apt-get install groff-base)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(roff.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        describe(&out)
    );
    // Plain text: no SGR (bold/underline) sequences.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text
}
