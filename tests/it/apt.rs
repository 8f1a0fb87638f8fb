//! The Debian archive client against the real archive (deb.debian.org, through a cache
//! kept in the target dir so later runs are warm) and against a tampering mirror of our
//! own on loopback, which serves copies of the real files with one byte flipped.
//!
//! These tests need the network for their first run. When the archive cannot be reached
//! they fail with a message saying so; they never pass by skipping.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use dlx::apt::{AptError, Archive, ArchiveConfig, Distro, Lock, LockError, Package};
use sha2::{Digest, Sha256};

const MIRROR: &str = "http://deb.debian.org/debian";
/// Port 1 on loopback: nothing listens there, so every connection is refused.
const DEAD_MIRROR: &str = "http://127.0.0.1:1/debian";
const STATIC_PKGS: &[&str] = &[
    "base-files",
    "netbase",
    "tzdata",
    "media-types",
    "ca-certificates",
    "libc6",
];

fn warm_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("apt-cache")
}

fn config(distro: Distro, mirror: &str, cache: &Path) -> ArchiveConfig {
    ArchiveConfig {
        mirror: mirror.to_string(),
        security_mirror: None,
        distro,
        arch: "amd64".to_string(),
        cache_dir: cache.to_path_buf(),
        progress: false,
        extra_keys: Vec::new(),
    }
}

/// Open the real archive, failing loudly (not skipping) when it cannot be reached.
fn open_real(distro: Distro) -> Archive {
    Archive::open(config(distro, MIRROR, &warm_cache())).unwrap_or_else(|e| {
        panic!("the debian archive at {MIRROR} is unreachable or failed, and these tests need it:\n{e}")
    })
}

fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

fn real_select_fetch_then_offline(distro: Distro, signers: &[&str]) {
    let archive = open_real(distro);
    for r in archive.releases() {
        assert!(!r.from_cache, "{} came from the network", r.suite);
        assert!(
            r.verified
                .signers
                .iter()
                .any(|s| signers.contains(&s.as_str())),
            "{}: signers {:?}",
            r.suite,
            r.verified.signers
        );
    }
    let pkgs = archive.select(STATIC_PKGS).unwrap();
    let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, STATIC_PKGS, "exact names, in order, no closure");
    let paths = archive.fetch(&pkgs).unwrap();
    assert_eq!(paths.len(), pkgs.len());
    for (p, path) in pkgs.iter().zip(&paths) {
        assert_eq!(sha256_file(path), p.sha256, "{}", p.name);
        assert_eq!(std::fs::metadata(path).unwrap().len(), p.size, "{}", p.name);
        assert!(p.paragraph.get("Description").is_some(), "{}", p.name);
    }

    // Again with the archive unreachable: served entirely from the cache, re-verified.
    let offline = Archive::open(config(distro, DEAD_MIRROR, &warm_cache()))
        .unwrap_or_else(|e| panic!("offline open from the warm cache failed: {e}"));
    assert!(offline.releases().iter().all(|r| r.from_cache));
    let again = offline.select(STATIC_PKGS).unwrap();
    assert_eq!(again, pkgs, "same verified indexes, same choice");
    assert_eq!(offline.fetch(&again).unwrap(), paths);
}

#[test]
fn apt_real_debian13_select_fetch_and_offline_rerun() {
    real_select_fetch_then_offline(
        Distro::Debian13,
        &[
            "04B54C3CDCA79751B16BC6B5225629DF75B188BD",
            "5E04A1E3223A19A20706E20F9904613D4CCE68C6",
        ],
    );
}

#[test]
fn apt_real_debian12_select_fetch_and_offline_rerun() {
    real_select_fetch_then_offline(
        Distro::Debian12,
        &[
            "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8",
            "05AB90340C0C5E797F44A8C8254CF3B5AEC0A8F0",
        ],
    );
}

#[test]
fn apt_unreachable_archive_says_so() {
    let empty = tempfile::tempdir().unwrap();
    let Err(e) = Archive::open(config(Distro::Debian13, DEAD_MIRROR, empty.path())) else {
        panic!("opening a dead mirror with an empty cache must fail");
    };
    let msg = e.to_string();
    assert!(
        msg.starts_with("cannot reach the debian archive at http://127.0.0.1:1/debian"),
        "{msg}"
    );
    assert!(msg.contains("\nhint: "), "{msg}");
}

/// The real debian13 archive, opened once for the tests that build on it.
fn real13() -> &'static Archive {
    static A: OnceLock<Archive> = OnceLock::new();
    A.get_or_init(|| open_real(Distro::Debian13))
}

#[test]
fn apt_real_resolve_closure_and_virtuals() {
    let a = real13();
    let r = a.resolve(&["base-files", "ca-certificates"]).unwrap();
    let names: Vec<&str> = r.iter().map(|p| p.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "stable order: by name");
    for want in ["base-files", "ca-certificates", "openssl", "libc6", "mawk"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(
        !names.contains(&"gawk"),
        "awk resolves to one provider: {names:?}"
    );
    assert!(a.select(&["no-such-package-dlx"]).is_err());
}

#[test]
fn apt_real_lock_round_trip_stale_and_tampered() {
    let a = real13();
    let pkgs = a.select(STATIC_PKGS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dlx.lock.json");
    let lock = a.lock_for(&pkgs);
    assert_eq!(lock.releases.len(), 3);
    lock.write(&path).unwrap();
    let read = Lock::read(&path).unwrap();
    assert_eq!(read, lock);

    let mut locked = open_real(Distro::Debian13).with_lock(read.clone());
    let mut from_lock = locked.select(&["tzdata", "libc6"]).unwrap();
    from_lock.sort_by(|a, b| a.name.cmp(&b.name));
    let mut want: Vec<Package> = pkgs
        .iter()
        .filter(|p| p.name == "tzdata" || p.name == "libc6")
        .cloned()
        .collect();
    want.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(from_lock, want);
    let e = locked.select(&["bash"]).unwrap_err();
    assert!(
        matches!(e, AptError::Lock(LockError::NotLocked { .. })),
        "{e}"
    );

    let mut stale = read.clone();
    let tz = stale
        .packages
        .iter_mut()
        .find(|p| p.name == "tzdata")
        .unwrap();
    tz.version = "2000a-1".into();
    locked.set_lock(Some(stale));
    let e = locked.select(&["tzdata"]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the lockfile is stale: tzdata 2000a-1"),
        "{e}"
    );

    let mut tampered = read;
    let tz = tampered
        .packages
        .iter_mut()
        .find(|p| p.name == "tzdata")
        .unwrap();
    tz.sha256 = "0".repeat(64);
    locked.set_lock(Some(tampered));
    let e = locked.select(&["tzdata"]).unwrap_err();
    assert!(e.to_string().contains(&"0".repeat(64)), "{e}");
    assert!(
        e.to_string().contains("does not match the signed index"),
        "{e}"
    );
}

// ---- a tampering mirror on loopback -------------------------------------------------

type Route = Arc<dyn Fn(&str) -> Option<Vec<u8>> + Send + Sync>;

/// Serve `route(path)` over HTTP/1.1 on a free loopback port; returns the base URL.
fn serve(route: Route) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let route = route.clone();
            std::thread::spawn(move || handle(conn, &route));
        }
    });
    format!("http://{addr}")
}

fn handle(mut conn: TcpStream, route: &Route) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
    let (status, body) = match route(&path) {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", Vec::new()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
}

/// What the tampering mirror should alter.
#[derive(Clone, Copy, PartialEq)]
enum Tamper {
    Nothing,
    InRelease,
    Packages,
    Deb,
    /// No by-hash files; the plain index names serve altered copies (a stale mirror).
    StalePlainIndex,
}

/// A mirror serving the warm cache's copies of the real debian13 files (InRelease,
/// by-hash indexes, the static debs), with one byte flipped in the file `tamper` names.
fn tampering_mirror(tamper: Tamper) -> String {
    let real = real13();
    let pkgs = real.select(STATIC_PKGS).unwrap();
    real.fetch(&pkgs).unwrap();
    let cache = warm_cache();
    let mut debs: HashMap<String, String> = HashMap::new();
    for p in &pkgs {
        debs.insert(p.filename.clone(), p.sha256.clone());
    }
    let release_sha: HashMap<String, String> = real
        .releases()
        .iter()
        .map(|r| (r.suite.clone(), r.verified.sha256.clone()))
        .collect();
    // (suite, path under dists/<suite>/) → digest, for the plain index names.
    let listed: HashMap<(String, String), String> = real
        .releases()
        .iter()
        .flat_map(|r| {
            r.verified
                .release
                .sha256
                .iter()
                .map(|(path, f)| ((r.suite.clone(), path.clone()), f.sha256.clone()))
        })
        .collect();
    let route: Route = Arc::new(move |path: &str| {
        let rest = path
            .strip_prefix("/debian-security/")
            .or_else(|| path.strip_prefix("/debian/"))?;
        let blob = |sha: &str| std::fs::read(cache.join("sha256").join(sha)).ok();
        let (kind, mut bytes) = if let Some(d) = rest.strip_prefix("dists/") {
            let (suite, file) = d.split_once('/')?;
            if file == "InRelease" {
                (Tamper::InRelease, blob(release_sha.get(suite)?)?)
            } else if tamper == Tamper::StalePlainIndex {
                let sha = listed.get(&(suite.to_string(), file.to_string()))?;
                (Tamper::StalePlainIndex, blob(sha)?)
            } else {
                let (_, sha) = file.split_once("/by-hash/SHA256/")?;
                (Tamper::Packages, blob(sha)?)
            }
        } else {
            (Tamper::Deb, blob(debs.get(rest)?)?)
        };
        if kind == tamper {
            // Flip the lowest bit of a letter or digit near the middle: for the
            // cleartext InRelease this keeps the armor intact and changes the text.
            let mid = bytes.len() / 2;
            let at = (mid..bytes.len())
                .find(|&i| bytes[i].is_ascii_alphanumeric())
                .unwrap_or(mid);
            bytes[at] ^= 0x01;
        }
        Some(bytes)
    });
    format!("{}/debian", serve(route))
}

/// No temporary files, and every blob's name is the digest of its content.
fn assert_cache_clean(cache: &Path) {
    let Ok(entries) = std::fs::read_dir(cache.join("sha256")) else {
        return;
    };
    for e in entries {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.'),
            "temporary file left in the cache: {name}"
        );
        assert_eq!(
            sha256_file(&e.path()),
            name,
            "cache blob content matches its name"
        );
    }
}

fn digests_in(msg: &str) -> Vec<String> {
    msg.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .map(str::to_string)
        .collect()
}

#[test]
fn apt_tampered_inrelease_is_refused() {
    let mirror = tampering_mirror(Tamper::InRelease);
    let cache = tempfile::tempdir().unwrap();
    let Err(e) = Archive::open(config(Distro::Debian13, &mirror, cache.path())) else {
        panic!("a tampered InRelease must be refused");
    };
    let msg = e.to_string();
    assert!(
        msg.starts_with("no valid signature from a trusted key on"),
        "{msg}"
    );
    assert!(
        msg.contains("/dists/trixie") && msg.contains("/InRelease"),
        "{msg}"
    );
    let d = digests_in(&msg);
    assert_eq!(d.len(), 1, "the digest of the refused file: {msg}");
    assert!(!cache.path().join("sha256").join(&d[0]).exists());
    assert_cache_clean(cache.path());
}

#[test]
fn apt_tampered_packages_index_is_refused() {
    let mirror = tampering_mirror(Tamper::Packages);
    let cache = tempfile::tempdir().unwrap();
    let Err(e) = Archive::open(config(Distro::Debian13, &mirror, cache.path())) else {
        panic!("a tampered Packages index must be refused");
    };
    let msg = e.to_string();
    assert!(
        msg.starts_with("sha256 mismatch for http://127.0.0.1:"),
        "{msg}"
    );
    assert!(msg.contains("/main/binary-amd64/by-hash/SHA256/"), "{msg}");
    let d = digests_in(&msg);
    assert_eq!(d.len(), 3, "url, expected and actual digests: {msg}");
    assert_eq!(d[0], d[1], "the by-hash url names the expected digest");
    assert_ne!(d[1], d[2]);
    assert!(!cache.path().join("sha256").join(&d[2]).exists());
    assert_cache_clean(cache.path());
}

#[test]
fn apt_stale_mirror_without_by_hash_is_refused_naming_both_urls() {
    let mirror = tampering_mirror(Tamper::StalePlainIndex);
    let cache = tempfile::tempdir().unwrap();
    let Err(e) = Archive::open(config(Distro::Debian13, &mirror, cache.path())) else {
        panic!("an index that matches neither by hash nor by name must be refused");
    };
    let msg = e.to_string();
    assert!(
        msg.starts_with("the mirror has no copy of the trixie"),
        "{msg}"
    );
    assert!(
        msg.contains("/main/binary-amd64/by-hash/SHA256/") && msg.contains(" is not there, and "),
        "{msg}"
    );
    assert!(msg.contains("/main/binary-amd64/Packages.xz"), "{msg}");
    assert!(
        msg.contains("\nhint: the mirror is in the middle of an update"),
        "{msg}"
    );
    assert_eq!(msg.matches("hint:").count(), 1, "{msg}");
    assert_cache_clean(cache.path());
}

#[test]
fn apt_tampered_deb_is_refused_and_nothing_kept() {
    let mirror = tampering_mirror(Tamper::Deb);
    let cache = tempfile::tempdir().unwrap();
    let a = Archive::open(config(Distro::Debian13, &mirror, cache.path()))
        .expect("untampered indexes open");
    let pkgs = a.select(STATIC_PKGS).unwrap();
    let Err(e) = a.fetch(&pkgs) else {
        panic!("a tampered .deb must be refused");
    };
    let msg = e.to_string();
    assert!(
        msg.starts_with("sha256 mismatch for http://127.0.0.1:"),
        "{msg}"
    );
    // Every .deb is tampered, so the first fetched may come from either archive the
    // mirror serves: the main one, or the security one once it updates a package of
    // the selection (trixie's ca-certificates did).
    let from_pool =
        msg.contains("/debian/pool/main/") || msg.contains("/debian-security/pool/updates/main/");
    assert!(from_pool && msg.contains(".deb"), "{msg}");
    let d = digests_in(&msg);
    assert_eq!(d.len(), 2, "expected and actual digests: {msg}");
    assert!(
        pkgs.iter().any(|p| p.sha256 == d[0]),
        "expected is the index digest"
    );
    assert!(!cache.path().join("sha256").join(&d[1]).exists());
    assert_cache_clean(cache.path());

    // The same files untampered are accepted: the refusal was about the flipped byte.
    // Two builds at once share the cache; both succeed and leave it consistent.
    let good = tampering_mirror(Tamper::Nothing);
    let builds: Vec<_> = (0..2)
        .map(|_| {
            let (good, dir) = (good.clone(), cache.path().to_path_buf());
            std::thread::spawn(move || {
                let a = Archive::open(config(Distro::Debian13, &good, &dir)).unwrap();
                a.fetch(&a.select(STATIC_PKGS).unwrap()).unwrap()
            })
        })
        .collect();
    let paths: Vec<Vec<PathBuf>> = builds.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(paths[0], paths[1]);
    assert_eq!(paths[0].len(), STATIC_PKGS.len());
    assert_cache_clean(cache.path());

    // A cache entry corrupted on disk is never handed out: it is dropped and refetched.
    let a = Archive::open(config(Distro::Debian13, &good, cache.path())).unwrap();
    let pkgs = a.select(STATIC_PKGS).unwrap();
    let victim = &paths[0][0];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(victim, &bytes).unwrap();
    let again = a.fetch(&pkgs).unwrap();
    assert_eq!(&again[0], victim);
    assert_eq!(sha256_file(victim), pkgs[0].sha256);
}
