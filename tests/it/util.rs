//! Shared harness for the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The dlx binary under test.
pub fn dlx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dlx"))
}

/// Run `docker ARGS...` and return its trimmed stdout; panic with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Run `docker ARGS...`, returning the raw output whatever the status.
pub fn docker_output(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
}

/// A directory shared by the tests of one run, for compiled fixtures and images.
pub fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("it");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// stdout and stderr of an output, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run `cmd`, killing it and failing the test if it takes longer than `secs`.
pub fn run_timeout(cmd: &mut Command, secs: u64) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        out.read_to_end(&mut b).ok();
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        err.read_to_end(&mut b).ok();
        b
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("command {cmd:?} hung for more than {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// `dlx exec ARGS...`, at most 60 s.
pub fn dlx_exec(args: &[&str]) -> Output {
    run_timeout(dlx().arg("exec").args(args), 60)
}

/// `dlx ARGS...` with `input` on its stdin, to its end.
pub fn dlx_with_input(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = dlx()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Poll `ready` (every 20 ms, for at most `secs` seconds) until it gives a value;
/// panic naming `what` if it never does.
pub fn wait_for<T>(what: &str, secs: u64, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The probe fixture (`tests/fixtures/probe.c`), compiled static once per run.
pub fn probe_binary() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probe.c");
        let out = work_dir().join("probe");
        let status = Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect(
                "run gcc (the tests need gcc and a static libc: apt-get install gcc libc6-dev)",
            );
        assert!(status.success(), "gcc failed to build {}", src.display());
        out
    })
    .clone()
}

/// `docker import` a root tarball holding `/probe` as image `tag`, its entrypoint
/// the probe's `sleep`; into the engine at `host` (`docker -H`) if given, else the
/// default one.
pub fn import_probe_root(host: Option<&str>, tar: &Path, tag: &str) {
    let mut args = match host {
        Some(host) => vec!["-H", host],
        None => Vec::new(),
    };
    args.extend([
        "import",
        "-c",
        "ENTRYPOINT [\"/probe\", \"sleep\"]",
        tar.to_str().unwrap(),
        tag,
    ]);
    docker(&args);
}

/// The root tarball of the probe image: only the probe (plus a non-executable
/// file), made once per run.
pub fn probe_root_tar() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let root = work_dir().join("probe-root");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::copy(probe_binary(), root.join("probe")).unwrap();
        std::fs::write(root.join("notexec"), b"#!/probe\n").unwrap();
        let tar = work_dir().join("probe-root.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-cf"])
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(ok.success());
        tar
    })
    .clone()
}

/// A FROM-scratch image of `probe_root_tar`, made with `docker import`; its tag
/// carries the binary's hash so it is reused across runs.
pub fn probe_image() -> String {
    static ONCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let bin = probe_binary();
        let bytes = std::fs::read(&bin).unwrap();
        let tag = format!("dlx-test/probe:{:016x}", fnv(&bytes));
        if docker_output(&["image", "inspect", &tag]).status.success() {
            return tag;
        }
        import_probe_root(None, &probe_root_tar(), &tag);
        tag
    })
    .clone()
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// A container removed when dropped.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker run -d --name <unique> OPTS... IMAGE CMD...`
    pub fn run(tag: &str, opts: &[&str], image: &str, cmd: &[&str]) -> Container {
        let name = format!("dlx-it-{tag}-{}", std::process::id());
        let _ = docker_output(&["rm", "-f", &name]);
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend_from_slice(opts);
        args.push(image);
        args.extend_from_slice(cmd);
        docker(&args);
        Container { name }
    }

    /// The container running the probe's `sleep`.
    pub fn probe(tag: &str, opts: &[&str]) -> Container {
        Container::run(tag, opts, &probe_image(), &[])
    }

    pub fn id(&self) -> String {
        docker(&["inspect", "-f", "{{.Id}}", &self.name])
    }

    pub fn pid(&self) -> i32 {
        docker(&["inspect", "-f", "{{.State.Pid}}", &self.name])
            .parse()
            .unwrap()
    }

    /// `docker exec NAME ARGS...` stdout.
    pub fn docker_exec(&self, args: &[&str]) -> String {
        let mut full = vec!["exec", self.name.as_str()];
        full.extend_from_slice(args);
        docker(&full)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker_output(&["rm", "-f", &self.name]);
    }
}
