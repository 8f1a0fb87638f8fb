//! `dlx toolbox` against the real Debian archive: fetch assembles the tree once (a
//! second fetch is a no-op from the cache), `--format json` describes it, and every
//! tool runs from the tree mounted read-only at `/.dlx` in an otherwise empty
//! FROM-scratch container (no libc, no loader, no shell of its own).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::{describe, docker, docker_output, run_timeout, stderr, stdout, work_dir};

/// The cache these tests fill (its own, so other tests' caches are not disturbed).
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("toolbox-cache")
}

fn dlx_toolbox(cache: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dlx"));
    cmd.arg("toolbox")
        .args(args)
        .env("DLX_CACHE_DIR", cache)
        .env_remove("DLX_MIRROR");
    run_timeout(&mut cmd, 900)
}

/// The first `dlx toolbox fetch` of the run, shared by the tests.
fn fetched() -> &'static (Output, PathBuf) {
    static ONCE: OnceLock<(Output, PathBuf)> = OnceLock::new();
    ONCE.get_or_init(|| {
        let out = dlx_toolbox(&cache_dir(), &["fetch"]);
        assert!(
            out.status.success(),
            "dlx toolbox fetch: {}",
            describe(&out)
        );
        let root = PathBuf::from(stdout(&out).trim());
        (out, root)
    })
}

fn description() -> Value {
    fetched();
    let out = dlx_toolbox(&cache_dir(), &["--format", "json"]);
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&out)))
}

/// The upstream version of `package` in the description (what `--version` prints).
fn upstream(desc: &Value, package: &str) -> String {
    let version = desc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == package)
        .unwrap_or_else(|| panic!("package {package} not in {desc}"))["version"]
        .as_str()
        .unwrap()
        .to_string();
    dlx::build::upstream_version(&version).to_string()
}

/// An image with nothing in it, made with `docker import` of an empty tar.
fn empty_image() -> &'static str {
    static ONCE: OnceLock<()> = OnceLock::new();
    const TAG: &str = "dlx-test/empty:latest";
    ONCE.get_or_init(|| {
        let tar = work_dir().join("empty.tar");
        std::fs::write(&tar, [0u8; 1024]).unwrap();
        docker(&["import", tar.to_str().unwrap(), TAG]);
    });
    TAG
}

/// Run `/.dlx/bin/TOOL ARGS...` in a fresh empty container with the tree at /.dlx.
fn in_empty(root: &Path, opts: &[&str], tool: &str, args: &[&str]) -> Output {
    let volume = format!("{}:/.dlx:ro", root.display());
    let bin = format!("/.dlx/bin/{tool}");
    let mut full = vec!["run", "--rm", "--network", "none", "-v", &volume];
    full.extend_from_slice(opts);
    full.push(empty_image());
    full.push(&bin);
    full.extend_from_slice(args);
    docker_output(&full)
}

#[test]
fn show_before_fetch_says_so_and_hints_fetch() {
    let empty = tempfile::tempdir().unwrap();
    for args in [&[][..], &["--format", "json"][..]] {
        let out = dlx_toolbox(empty.path(), args);
        assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
        assert!(out.stdout.is_empty(), "{}", describe(&out));
        let err = stderr(&out);
        assert!(
            err.contains("no default toolbox") && err.contains("hint: run `dlx toolbox fetch`"),
            "{err}"
        );
    }
}

#[test]
fn fetch_assembles_a_described_root_owned_tree() {
    let (out, root) = fetched();
    let digest = root.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(root.parent().unwrap(), cache_dir().join("toolbox"));
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{digest}"
    );
    assert!(
        stderr(out).contains(&format!("sha256:{digest}")),
        "{}",
        describe(out)
    );
    let pointer = std::fs::read_to_string(cache_dir().join("toolbox/current-amd64")).unwrap();
    assert_eq!(pointer.trim(), digest);

    let desc = description();
    assert_eq!(desc["root"], root.to_str().unwrap());
    assert_eq!(desc["digest"], digest.as_str());
    assert_eq!(desc["stale"], false);
    assert_eq!(desc["distro"], "debian13");
    assert_eq!(desc["arch"], "amd64");
    assert_eq!(desc["mount"], "/.dlx");
    let tools: Vec<&str> = desc["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["ss", "ip", "tcpdump", "strace", "curl", "lsof"]);
    for p in desc["packages"].as_array().unwrap() {
        let sha = p["sha256"].as_str().unwrap();
        assert_eq!(sha.len(), 64, "{p}");
    }
    let applets = desc["applets"].as_array().unwrap();
    assert!(
        applets.iter().any(|a| a == "sh") && applets.len() > 100,
        "{desc}"
    );
    // the text form names the same things
    let text = dlx_toolbox(&cache_dir(), &[]);
    assert!(text.status.success(), "{}", describe(&text));
    let text = stdout(&text);
    assert!(
        text.contains(&digest) && text.contains("busybox-static"),
        "{text}"
    );
    for tool in tools {
        assert!(text.contains(&format!("  {tool} ")), "{text}");
    }

    // root:root, 0755 directories and executables, 0644 the rest, links stay inside
    let mut pending = vec![root.clone()];
    let mut files = 0;
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{}", path.display());
        let mode = meta.mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            assert!(
                !target.to_string_lossy().contains('/'),
                "{} -> {}",
                path.display(),
                target.display()
            );
            assert!(path.exists(), "dangling {}", path.display());
        } else if meta.is_dir() {
            assert_eq!(mode, 0o755, "{}", path.display());
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        } else {
            files += 1;
            assert!(
                mode == 0o755 || mode == 0o644,
                "{} {mode:o}",
                path.display()
            );
        }
    }
    assert!(files > 20, "{files} files");
    // dynamic tools are wrappers around the toolbox's own loader, which unset the
    // loader's variables and set none
    let ss = std::fs::read_to_string(root.join("bin/ss")).unwrap();
    assert!(ss.starts_with("#!/.dlx/bin/sh\n"), "{ss}");
    assert!(
        ss.contains(&dlx::toolbox::layout::unset_line("/.dlx/bin/busybox awk")),
        "{ss}"
    );
    assert!(!ss.contains("export"), "{ss}");
    let unset: Vec<&str> = desc["unset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        unset.contains(&"LD_*") && unset.contains(&"GLIBC_TUNABLES"),
        "{unset:?}"
    );
    // the loader reads a file no toolbox holds instead of /etc/ld.so.preload
    let loader = desc["loader"].as_str().unwrap();
    let bytes = std::fs::read(root.join("lib").join(loader)).unwrap();
    let count = |what: &[u8]| bytes.windows(what.len()).filter(|w| *w == what).count();
    assert_eq!(count(b"/etc/ld.so.preload"), 0);
    assert_eq!(count(b"/.dlx/no/preload\0"), 1);
    assert_eq!(desc["preload"], "/.dlx/no/preload");
    assert!(!root.join("no").exists());
    assert!(
        text.contains(&format!("loader    {loader} (reads /.dlx/no/preload")),
        "{text}"
    );
    // ... and is handed the guard, a file of lib/
    assert_eq!(desc["guard"], "/.dlx/lib/dlx-guard.so");
    assert!(root.join("lib/dlx-guard.so").is_file());
    assert!(
        text.contains(
            "guard     /.dlx/lib/dlx-guard.so (the loader loads nothing outside /.dlx/lib)"
        ),
        "{text}"
    );
}

#[test]
fn second_fetch_is_a_no_op_from_the_cache() {
    let (_, root) = fetched();
    let before = std::fs::metadata(root).unwrap();
    let again = dlx_toolbox(&cache_dir(), &["fetch"]);
    assert!(again.status.success(), "{}", describe(&again));
    assert_eq!(PathBuf::from(stdout(&again).trim()), *root);
    assert!(
        stderr(&again).contains("up to date"),
        "{}",
        describe(&again)
    );
    let after = std::fs::metadata(root).unwrap();
    assert_eq!(
        (before.ino(), before.mtime(), before.mtime_nsec()),
        (after.ino(), after.mtime(), after.mtime_nsec())
    );
}

#[test]
fn tools_run_from_dlx_in_an_empty_container() {
    let (_, root) = fetched();
    let desc = description();
    // the container has no libc, loader or shell of its own
    let listing = in_empty(root, &[], "ls", &["-a", "/"]);
    assert!(listing.status.success(), "{}", describe(&listing));
    let names: Vec<String> = stdout(&listing)
        .split_whitespace()
        .map(String::from)
        .collect();
    for absent in ["bin", "lib", "lib64", "usr"] {
        assert!(!names.contains(&absent.to_string()), "{names:?}");
    }
    assert!(names.contains(&".dlx".to_string()), "{names:?}");

    let busybox = format!("BusyBox v{}", upstream(&desc, "busybox-static"));
    let iproute = format!("iproute2-{}", upstream(&desc, "iproute2"));
    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        ("busybox", vec!["ls", "/.dlx"], "libexec".to_string()),
        ("busybox", vec![], busybox),
        ("ss", vec!["-V"], iproute.clone()),
        ("ip", vec!["-V"], iproute),
        (
            "tcpdump",
            vec!["--version"],
            format!("tcpdump version {}", upstream(&desc, "tcpdump")),
        ),
        (
            "strace",
            vec!["-V"],
            format!("strace -- version {}", upstream(&desc, "strace")),
        ),
        (
            "curl",
            vec!["--version"],
            format!("curl {}", upstream(&desc, "curl")),
        ),
        (
            "lsof",
            vec!["-v"],
            format!("revision: {}", upstream(&desc, "lsof")),
        ),
    ];
    for (tool, args, expect) in cases {
        let out = in_empty(root, &[], tool, &args);
        let both = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            both.contains(&expect),
            "{tool} {args:?}: expected {expect:?}\n{}",
            describe(&out)
        );
        // busybox without arguments lists its applets and exits 0 too
        assert!(out.status.success(), "{tool} {args:?}: {}", describe(&out));
        // nothing complains about a missing library or version
        assert!(!both.contains("error while loading"), "{tool}: {both}");
        assert!(!both.contains("Couldn't find"), "{tool}: {both}");
    }

    // the container's LD_* variables do not reach the tools: the loader would
    // complain that it cannot preload a library that is not there
    for tool in ["curl", "ss", "strace"] {
        let out = in_empty(
            root,
            &["-e", "LD_PRELOAD=/missing.so", "-e", "LD_AUDIT=/missing.so"],
            tool,
            &["--version"],
        );
        assert!(out.status.success(), "{tool}: {}", describe(&out));
        assert!(
            !stderr(&out).contains("missing.so"),
            "{tool}: {}",
            describe(&out)
        );
    }

    // what a wrapped tool starts inherits nothing of the wrapper: no LD_* variable
    let traced = in_empty(
        root,
        &[],
        "strace",
        &["-f", "-qq", "-e", "trace=none", "/.dlx/bin/env"],
    );
    assert!(traced.status.success(), "{}", describe(&traced));
    let env = stdout(&traced);
    assert!(env.contains("PATH="), "{env}");
    assert!(!env.contains("LD_"), "{env}");
}
