//! Harness for the `dlx build` tests: test programs compiled here (gcc, g++,
//! rustc), builds through the real archive into the real engine, cached between
//! runs only when the dlx binary, the arguments and every added file are unchanged
//! and the engine still has the recorded image ID under the tag.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::util::{describe, dlx, docker_output, work_dir};

/// A C probe: user lookup, temp file, time zone, TLS trust store, file presence.
const PROBE_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pwd.h>
#include <sys/stat.h>
#ifdef WITH_TLS
#include <openssl/ssl.h>
#include <openssl/x509.h>
#endif

static int user(const char *name) {
#ifdef USE_NSS
    struct passwd *pw = getpwnam(name);
#else
    /* no NSS in a static image: read the file the way static programs do */
    FILE *f = fopen("/etc/passwd", "r");
    struct passwd *pw = NULL;
    if (f) { while ((pw = fgetpwent(f)) && strcmp(pw->pw_name, name) != 0) {} }
#endif
    if (!pw) { printf("no user %s\n", name); return 1; }
    printf("user %s %u %u %s\n", pw->pw_name, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid, pw->pw_dir);
    return 0;
}

static int tmp(void) {
    char path[] = "/tmp/probeXXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { perror("mkstemp"); return 1; }
    if (write(fd, "ok", 2) != 2) { perror("write"); return 1; }
    close(fd);
    FILE *f = fopen(path, "r");
    char buf[3] = {0};
    if (!f || fread(buf, 1, 2, f) != 2) { perror("read"); return 1; }
    unlink(path);
    printf("tmp %s\n", buf);
    return 0;
}

static int tz(const char *zone) {
    setenv("TZ", zone, 1);
    tzset();
    time_t t = 1700000000; /* 2023-11-14, winter in the north */
    struct tm tm;
    localtime_r(&t, &tm);
    printf("tz %s %ld\n", tm.tm_zone, (long)tm.tm_gmtoff);
    return 0;
}

#ifdef WITH_TLS
static int tls(void) {
    const char *file = getenv("SSL_CERT_FILE");
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || !file || SSL_CTX_load_verify_locations(ctx, file, NULL) != 1) {
        printf("tls load failed\n");
        return 1;
    }
    int n = sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx)));
    printf("tls %d\n", n);
    return 0;
}
#endif

static int one(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[0], "user")) return user(argv[1]);
    if (argc >= 1 && !strcmp(argv[0], "tmp")) return tmp();
    if (argc >= 2 && !strcmp(argv[0], "tz")) return tz(argv[1]);
#ifdef WITH_TLS
    if (argc >= 1 && !strcmp(argv[0], "tls")) return tls();
#endif
    if (argc >= 2 && !strcmp(argv[0], "exists")) {
        struct stat st;
        printf("%s %s\n", argv[1], lstat(argv[1], &st) == 0 ? "exists" : "absent");
        return 0;
    }
    if (argc >= 1 && !strcmp(argv[0], "id")) {
        char cwd[256];
        if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "?");
        printf("id %u %u %s\n", (unsigned)getuid(), (unsigned)getgid(), cwd);
        return 0;
    }
    fprintf(stderr, "usage: probe CMD [+ CMD...]; CMD: user NAME|tmp|tz ZONE|tls|exists PATH|id\n");
    return 2;
}

/* several commands in one run, separated by "+"; the first failure ends it */
int main(int argc, char **argv) {
    int start = 1;
    for (int i = 1; i <= argc; i++) {
        if (i == argc || !strcmp(argv[i], "+")) {
            int rc = one(i - start, argv + start);
            fflush(stdout);
            if (rc != 0) return rc;
            start = i + 1;
        }
    }
    return 0;
}
"#;

const HELLO_CC: &str = "#include <iostream>\n#include <vector>\nint main(){std::vector<int> v{1,2,3};std::cout<<\"hello c++ \"<<v.size()<<std::endl;}\n";
const HELLO_RS: &str =
    "fn main() { let v: Vec<u32> = (1..=3).collect(); println!(\"hello rust {}\", v.len()); }\n";

/// Compiled test programs.
pub struct Programs {
    /// Static C probe with OpenSSL linked in (runs on every tier).
    pub probe_static: PathBuf,
    /// Dynamic C probe, libc only (needs base-nossl).
    pub probe_dyn: PathBuf,
    /// Dynamic C probe linked with libssl (needs base).
    pub probe_ssl: PathBuf,
    /// C++ hello (needs cc).
    pub hello_cc: PathBuf,
    /// Rust hello built by rustc with its defaults (needs libgcc_s: cc).
    pub hello_rs: PathBuf,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}\n{}", describe(&out));
}

/// Compile the test programs once per test run.
pub fn programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let dir = work_dir().join("programs");
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("probe.c");
        std::fs::write(&src, PROBE_C).unwrap();
        std::fs::write(dir.join("hello.cc"), HELLO_CC).unwrap();
        std::fs::write(dir.join("hello.rs"), HELLO_RS).unwrap();
        let p = |name: &str| dir.join(name);
        run(Command::new("gcc")
            .args(["-O1", "-static", "-DWITH_TLS", "-o"])
            .arg(p("probe-static"))
            .arg(&src)
            .args(["-lssl", "-lcrypto", "-lpthread"]));
        run(Command::new("gcc")
            .args(["-O1", "-DUSE_NSS", "-o"])
            .arg(p("probe-dyn"))
            .arg(&src));
        run(Command::new("gcc")
            .args(["-O1", "-DUSE_NSS", "-DWITH_TLS", "-o"])
            .arg(p("probe-ssl"))
            .arg(&src)
            .args(["-lssl", "-lcrypto"]));
        run(Command::new("g++")
            .args(["-O1", "-o"])
            .arg(p("hello-cc"))
            .arg(p("hello.cc")));
        run(Command::new("rustc")
            .args(["-O", "-o"])
            .arg(p("hello-rs"))
            .arg(p("hello.rs")));
        Programs {
            probe_static: p("probe-static"),
            probe_dyn: p("probe-dyn"),
            probe_ssl: p("probe-ssl"),
            hello_cc: p("hello-cc"),
            hello_rs: p("hello-rs"),
        }
    })
}

fn dlx_digest() -> &'static [u8] {
    static DIGEST: OnceLock<Vec<u8>> = OnceLock::new();
    DIGEST.get_or_init(|| {
        let bin = std::fs::read(env!("CARGO_BIN_EXE_dlx")).unwrap();
        Sha256::digest(&bin).to_vec()
    })
}

/// One build at a time: the machine is small and the archive cache is shared.
fn build_lock() -> &'static Mutex<HashMap<String, String>> {
    static LOCK: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    LOCK.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Run `dlx build ARGS`; returns (status success, stdout, stderr).
pub fn dlx_build(args: &[&str]) -> std::process::Output {
    let mut cmd = dlx();
    cmd.arg("build").args(args);
    cmd.output().expect("run dlx build")
}

/// Build into the engine under `tag` (unless an identical build is already
/// there) and return the image ID. `args` must not contain `-t`.
pub fn engine_image(tag: &str, args: &[&str], added: &[&Path]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(dlx_digest());
    hasher.update(tag.as_bytes());
    for arg in args {
        hasher.update(b"\0");
        hasher.update(arg.as_bytes());
    }
    for file in added {
        hasher.update(std::fs::read(file).unwrap());
    }
    let key = hex::encode(hasher.finalize());
    let mut built = build_lock().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(id) = built.get(&key) {
        return id.clone();
    }
    let record = work_dir().join("images").join(&key);
    if let Ok(id) = std::fs::read_to_string(&record) {
        let out = docker_output(&["image", "inspect", "--format", "{{.Id}}", tag]);
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == id.trim() {
            built.insert(key, id.trim().to_string());
            return id.trim().to_string();
        }
    }
    let mut full = vec!["-t", tag];
    full.extend_from_slice(args);
    let out = dlx_build(&full);
    assert!(
        out.status.success(),
        "dlx build {full:?}\n{}",
        describe(&out)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "stdout is the image id: {id}"
    );
    std::fs::create_dir_all(record.parent().unwrap()).unwrap();
    std::fs::write(&record, &id).unwrap();
    built.insert(key, id.clone());
    id
}

/// `docker run --rm --entrypoint ENTRY IMAGE ARGS...`: (exit code, stdout, stderr).
pub fn run_in(image: &str, entry: &str, args: &[&str]) -> (i32, String, String) {
    let mut full = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        entry,
        image,
    ];
    full.extend_from_slice(args);
    let out = docker_output(&full);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// stdout of a command in the image that must succeed.
pub fn run_ok(image: &str, entry: &str, args: &[&str]) -> String {
    let (code, out, err) = run_in(image, entry, args);
    assert_eq!(
        code, 0,
        "{entry} {args:?} in {image}: stdout {out}\nstderr {err}"
    );
    out
}

/// (mode, uid, gid, mtime, tar type byte, content or link target).
pub type FileInfo = (u32, u64, u64, u64, u8, Vec<u8>);

/// The files of an image's filesystem (via `docker create` + `docker export`):
/// path (no leading `/`) -> (mode, uid, gid, mtime, type byte, content or link).
pub fn image_files(image: &str) -> HashMap<String, FileInfo> {
    use std::io::Read;
    let created = docker_output(&["create", image, "/nothing"]);
    assert!(created.status.success(), "{}", describe(&created));
    let id = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let export = docker_output(&["export", &id]);
    docker_output(&["rm", &id]);
    assert!(export.status.success(), "{}", describe(&export));
    let mut files = HashMap::new();
    let mut archive = tar::Archive::new(&export.stdout[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let h = entry.header().clone();
        let mut data = Vec::new();
        if let Some(link) = entry.link_name_bytes() {
            data = link.into_owned();
        } else {
            entry.read_to_end(&mut data).unwrap();
        }
        files.insert(
            path,
            (
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
                h.entry_type().as_byte(),
                data,
            ),
        );
    }
    files
}
