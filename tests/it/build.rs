//! `dlx build` against the real Debian archive and the real engine: every core
//! tier and variant is built and run with test programs compiled here; generated
//! files, config, layer counts, reproducibility and the OCI/tar outputs are
//! checked byte for byte where the spec is exact.

use std::collections::BTreeMap;
use std::path::Path;

use crate::build_util::*;
use crate::util::{describe, docker, docker_output, work_dir};

const VARIANTS: [&str; 4] = ["latest", "nonroot", "debug", "debug-nonroot"];

fn tag(tier: &str, distro: &str, variant: &str) -> String {
    format!("dlx-test/{tier}-{distro}:{variant}")
}

/// Layer counts of the upstream images (spec §4), non-debug, Debian 13.
fn layers_d13(tier: &str) -> usize {
    match tier {
        "static" => 13,
        "base-nossl" => 14,
        "base" => 17,
        "cc" => 21,
        other => panic!("no count for {other}"),
    }
}

fn inspect(image: &str, format: &str) -> String {
    docker(&["image", "inspect", "--format", format, image])
}

/// Build TIER in every variant with the static probe (and the dynamic one from
/// base-nossl up) and check users, temp files, time zones, the CA bundle, the
/// user/workdir per variant, the shell (or its absence) and the layer count.
fn check_tier(tier: &str) {
    let p = programs();
    let dynamic = tier != "static";
    for variant in VARIANTS {
        let image = tag(tier, "debian13", variant);
        let spec = format!("{tier}:{variant}");
        let static_add = format!("{}:/probe", p.probe_static.display());
        let dyn_add = format!("{}:/usr/local/bin/probe-dyn", p.probe_dyn.display());
        let mut args = vec![spec.as_str(), "--add", static_add.as_str()];
        let mut added = vec![p.probe_static.as_path()];
        if dynamic {
            args.extend(["--add", dyn_add.as_str()]);
            added.push(p.probe_dyn.as_path());
        }
        engine_image(&image, &args, &added);

        let nonroot = variant.contains("nonroot");
        let debug = variant.starts_with("debug");
        let mut probes = vec!["/probe"];
        if dynamic {
            probes.push("/usr/local/bin/probe-dyn");
        }
        let expect_id = if nonroot {
            "id 65532 65532 /home/nonroot"
        } else {
            "id 0 0 /"
        };
        for probe in probes {
            let out = run_ok(
                &image,
                probe,
                &[
                    "user",
                    "root",
                    "+",
                    "user",
                    "nonroot",
                    "+",
                    "tmp",
                    "+",
                    "tz",
                    "America/New_York",
                    "+",
                    "tz",
                    "Asia/Tokyo",
                    "+",
                    "id",
                    "+",
                    "exists",
                    "/bin/sh",
                ],
            );
            assert_eq!(
                out.lines().collect::<Vec<_>>(),
                [
                    "user root 0 0 /root",
                    "user nonroot 65532 65532 /home/nonroot",
                    "tmp ok",
                    "tz EST -18000",
                    "tz JST 32400",
                    expect_id,
                    "/bin/sh absent",
                ],
                "{image} {probe}"
            );
        }
        if debug {
            let version = run_ok(&image, "/busybox/busybox", &[]);
            assert!(version.starts_with("BusyBox v1.37"), "{image}: {version}");
            // the default entrypoint is the busybox shell
            let out = docker(&[
                "run",
                "--rm",
                "--network",
                "none",
                &image,
                "-c",
                "echo $PATH; id -u",
            ]);
            let expect_uid = if nonroot { "65532" } else { "0" };
            assert_eq!(
                out,
                format!(
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/busybox\n{expect_uid}"
                )
            );
        } else {
            assert_eq!(
                run_ok(&image, "/probe", &["exists", "/busybox"]),
                "/busybox absent"
            );
        }
        let layers = inspect(&image, "{{len .RootFS.Layers}}");
        let expected = layers_d13(tier) + usize::from(debug) + added.len();
        assert_eq!(layers, expected.to_string(), "{image}");
    }
}

#[test]
fn static_every_variant_runs() {
    check_tier("static");
}

#[test]
fn base_nossl_every_variant_runs() {
    check_tier("base-nossl");
}

#[test]
fn base_every_variant_runs() {
    check_tier("base");
}

#[test]
fn cc_every_variant_runs() {
    check_tier("cc");
}

#[test]
fn dynamic_c_program_runs_on_base_nossl_not_on_static() {
    let p = programs();
    let add = format!("{}:/probe", p.probe_dyn.display());
    let image = tag("base-nossl", "debian13", "dyn");
    engine_image(&image, &["base-nossl", "--add", &add], &[&p.probe_dyn]);
    assert_eq!(
        run_ok(&image, "/probe", &["tz", "Europe/Paris"]),
        "tz CET 3600"
    );

    let out = dlx_build(&[
        "static",
        "--add",
        &add,
        "--output",
        "oci:/nonexistent/never",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("program interpreter /lib64/ld-linux-x86-64.so.2 is not in the image"),
        "{err}"
    );
    assert!(
        err.contains("\nhint: build base-nossl:latest instead"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // and the refusal is right: put the binary in by hand, it cannot start
    let image = tag("static", "debian13", "latest");
    engine_image(&image, &["static:latest"], &[]);
    let created = docker(&["create", "--network", "none", &image, "/probe", "id"]);
    docker(&[
        "cp",
        &p.probe_dyn.display().to_string(),
        &format!("{created}:/probe"),
    ]);
    let started = docker_output(&["start", "-a", &created]);
    docker(&["rm", &created]);
    assert!(
        !started.status.success(),
        "dynamic probe ran on static: {}",
        describe(&started)
    );
}

#[test]
fn libssl_program_runs_on_base_not_on_base_nossl() {
    let p = programs();
    let add = format!("{}:/probe", p.probe_ssl.display());
    let image = tag("base", "debian13", "ssl");
    engine_image(&image, &["base", "--add", &add], &[&p.probe_ssl]);
    let tls = run_ok(&image, "/probe", &["tls"]);
    assert!(
        tls.trim_start_matches("tls ").parse::<usize>().unwrap() > 100,
        "{tls}"
    );

    let out = dlx_build(&[
        "base-nossl:nonroot",
        "--add",
        &add,
        "--output",
        "oci:/nonexistent/never",
    ]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("required libraries not in the image: libssl.so.3, libcrypto.so.3"),
        "{err}"
    );
    assert!(err.contains("\nhint: build base:nonroot instead"), "{err}");
}

#[test]
fn cpp_and_rust_run_on_cc_and_rust_is_refused_on_base() {
    let p = programs();
    let cc_add = format!("{}:/app/hello-cc", p.hello_cc.display());
    let rs_add = format!("{}:/app/hello-rs", p.hello_rs.display());
    let image = tag("cc", "debian13", "apps");
    engine_image(
        &image,
        &["cc:nonroot", "--add", &cc_add, "--add", &rs_add],
        &[&p.hello_cc, &p.hello_rs],
    );
    assert_eq!(run_ok(&image, "/app/hello-cc", &[]), "hello c++ 3");
    assert_eq!(run_ok(&image, "/app/hello-rs", &[]), "hello rust 3");

    let out = dlx_build(&[
        "base",
        "--add",
        &rs_add,
        "--output",
        "oci:/nonexistent/never",
    ]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("required libraries not in the image: libgcc_s.so.1"),
        "{err}"
    );
    assert!(err.contains("\nhint: build cc:latest instead"), "{err}");
}

#[test]
fn generated_files_are_exact() {
    let image = tag("static", "debian13", "latest");
    engine_image(&image, &["static:latest"], &[]);
    let files = image_files(&image);
    let text = |p: &str| String::from_utf8(files[p].5.clone()).unwrap();
    assert_eq!(
        text("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
    );
    assert_eq!(
        text("etc/group"),
        "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
    );
    let nsswitch = text("etc/nsswitch.conf");
    assert_eq!(nsswitch.len(), 497);
    assert!(nsswitch.starts_with("# /etc/nsswitch.conf\n#\n# Example configuration"));
    assert!(nsswitch.ends_with("\nnetgroup:       nis\n"));
    assert_eq!(files["etc/nsswitch.conf"].3, 1514722362);
    assert_eq!(
        text("usr/lib/os-release"),
        "PRETTY_NAME=\"Distroless\"\nNAME=\"Debian GNU/Linux\"\nID=\"debian\"\nVERSION_ID=\"13\"\nVERSION=\"Debian GNU/Linux 13 (trixie)\"\nHOME_URL=\"https://github.com/GoogleContainerTools/distroless\"\nSUPPORT_URL=\"https://github.com/GoogleContainerTools/distroless/blob/master/README.md\"\nBUG_REPORT_URL=\"https://github.com/GoogleContainerTools/distroless/issues/new\"\n"
    );
    assert_eq!(files["usr/lib/os-release"].0 & 0o7777, 0o555);
    assert_eq!(text("etc/os-release"), "../usr/lib/os-release");
    let mode_owner = |p: &str| (files[p].0 & 0o7777, files[p].1, files[p].2);
    assert_eq!(mode_owner("tmp"), (0o1777, 0, 0));
    assert_eq!(mode_owner("root"), (0o700, 0, 0));
    assert_eq!(mode_owner("home"), (0o755, 0, 0));
    assert_eq!(mode_owner("home/nonroot"), (0o700, 65532, 65532));
    assert_eq!(mode_owner("etc/passwd"), (0o644, 0, 0));
    assert_eq!(
        mode_owner("etc/ssl/certs/ca-certificates.crt"),
        (0o555, 0, 0)
    );
    let bundle = text("etc/ssl/certs/ca-certificates.crt");
    assert!(bundle.matches("-----BEGIN CERTIFICATE-----").count() > 100);
    assert!(files.contains_key("usr/share/doc/ca-certificates/copyright"));
    assert!(files.contains_key("usr/share/zoneinfo/America/New_York"));
    for pkg in [
        "base-files",
        "netbase",
        "tzdata",
        "tzdata-legacy",
        "media-types",
        "ca-certificates",
    ] {
        let control = text(&format!("var/lib/dpkg/status.d/{pkg}"));
        assert!(
            control.starts_with(&format!("Package: {pkg}\n")),
            "{pkg}: {control}"
        );
        assert!(!control.contains("\nStatus:"));
    }
    assert!(text("var/lib/dpkg/status.d/base-files.md5sums").contains("usr/lib/os-release"));
    for absent in [
        "etc/shadow",
        "bin/sh",
        "usr/bin/sh",
        "var/lib/dpkg/status",
        "usr/share/ca-certificates",
        "sbin/nologin",
    ] {
        assert!(!files.contains_key(absent), "{absent} must not exist");
    }
    // merged /usr: the roots are base-files' symlinks
    assert_eq!(files["lib"].4, b'2');
    assert_eq!(text("lib"), "usr/lib");
}

#[test]
fn config_per_variant() {
    for variant in VARIANTS {
        let image = tag("static", "debian13", variant);
        engine_image(&image, &[&format!("static:{variant}")], &[]);
        let nonroot = variant.contains("nonroot");
        let debug = variant.starts_with("debug");
        assert_eq!(
            inspect(&image, "{{.Config.User}}"),
            if nonroot { "65532" } else { "0" }
        );
        assert_eq!(
            inspect(&image, "{{.Config.WorkingDir}}"),
            if nonroot { "/home/nonroot" } else { "/" }
        );
        let path = if debug {
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/busybox"
        } else {
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        };
        assert_eq!(
            inspect(&image, "{{json .Config.Env}}"),
            format!("[\"{path}\",\"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\"]")
        );
        let entrypoint = if debug { "[\"/busybox/sh\"]" } else { "null" };
        assert_eq!(inspect(&image, "{{json .Config.Entrypoint}}"), entrypoint);
        assert_eq!(inspect(&image, "{{json .Config.Cmd}}"), "null");
        assert_eq!(inspect(&image, "{{.Created}}"), "1970-01-01T00:00:00Z");
        assert_eq!(inspect(&image, "{{json .Config.Labels}}"), "null");
    }
}

fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn two_builds_give_the_same_bytes_and_skopeo_reads_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut ids = Vec::new();
    for out_dir in [&a, &b] {
        let out = dlx_build(&[
            "base:debug",
            "--output",
            &format!("oci:{}", out_dir.display()),
        ]);
        assert!(out.status.success(), "{}", describe(&out));
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    assert_eq!(ids[0], ids[1]);
    let (ta, tb) = (read_tree(&a), read_tree(&b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    assert!(ta == tb, "layouts differ");
    assert!(ta.contains_key(&format!(
        "blobs/sha256/{}",
        ids[0].trim_start_matches("sha256:")
    )));

    let inspect = std::process::Command::new("skopeo")
        .args(["inspect", &format!("oci:{}", a.display())])
        .output()
        .expect("run skopeo");
    assert!(inspect.status.success(), "{}", describe(&inspect));
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(json["Architecture"], "amd64");
    assert_eq!(json["Os"], "linux");
    assert_eq!(json["Layers"].as_array().unwrap().len(), 18);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::process::Command::new("skopeo")
            .args(["inspect", "--raw", &format!("oci:{}", a.display())])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.source"],
        "https://github.com/GoogleContainerTools/distroless"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    let umoci = std::process::Command::new("umoci")
        .args(["ls", "--layout", &a.display().to_string()])
        .output()
        .expect("run umoci");
    assert!(umoci.status.success(), "{}", describe(&umoci));
    assert_eq!(String::from_utf8_lossy(&umoci.stdout).trim(), "debug");
}

#[test]
fn quiet_build_prints_only_the_image_id() {
    let dir = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}", dir.path().join("q").display());
    let out = crate::util::dlx()
        .args(["-q", "build", "static:nonroot", "--output", &layout])
        .output()
        .expect("run dlx build");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "-q: nothing on stderr"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout
        .trim_end()
        .strip_prefix("sha256:")
        .unwrap_or_default();
    assert!(id.len() == 64 && stdout.lines().count() == 1, "{stdout}");
}

/// A layer found in the layer cache is the layer assembly makes: an image assembled
/// with a cold cache, then a warm one, equals the one assembled with none, byte for
/// byte (debug variant: busybox, ca-certificates and the package layers; base-nossl
/// has no ld.so.cache, so the warm build reads no package at all).
#[test]
fn cached_layers_give_the_same_image() {
    use dlx::apt::{Archive, ArchiveConfig, Distro};
    use dlx::build::{self, layers::LayerCache, Plan, Request, Variant};

    let archive = Archive::open(ArchiveConfig {
        mirror: "http://deb.debian.org/debian".to_string(),
        security_mirror: None,
        distro: Distro::Debian13,
        arch: "amd64".to_string(),
        cache_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("apt-cache"),
        progress: false,
        extra_keys: Vec::new(),
    })
    .unwrap_or_else(|e| panic!("the debian archive is unreachable, and this test needs it:\n{e}"));
    let plan = Plan::new(Request {
        tier: "base-nossl".into(),
        variant: Variant::Debug,
        distro: "debian13".into(),
        arch: "amd64".into(),
        adds: vec![],
        entrypoint: None,
        cmd: None,
        env: vec![],
    })
    .unwrap();
    let mut names = plan.layer_packages();
    names.extend(plan.source_packages());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let packages = archive.select(&refs).unwrap();
    let paths = archive.fetch(&packages).unwrap();
    let debs: build::Debs = packages
        .iter()
        .zip(&paths)
        .map(|(p, path)| (p.name.clone(), dlx::deb::Deb::open(path).unwrap()))
        .collect();
    let encode = |image: dlx::oci::Image| {
        let e = image.encode().unwrap();
        let blobs: Vec<Vec<u8>> = image.layers.into_iter().map(|l| l.blob).collect();
        (e.config, e.manifest, blobs)
    };
    let fresh = encode(build::assemble(&plan, &debs).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let cache = LayerCache::open(dir.path()).unwrap();
    let cold = encode(build::assemble_with(&plan, &debs, Some(&cache)).unwrap());
    let warm = encode(build::assemble_with(&plan, &debs, Some(&cache)).unwrap());
    assert!(cold == fresh, "a cold layer cache changes nothing");
    assert!(warm == fresh, "cached layers are the layers assembly makes");
}

#[test]
fn arm64_image_is_built_on_any_host() {
    let dir = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}", dir.path().display());
    let out = dlx_build(&["cc:debug-nonroot", "--arch", "arm64", "--output", &layout]);
    assert!(out.status.success(), "{}", describe(&out));
    let config: serde_json::Value = serde_json::from_slice(
        &std::process::Command::new("skopeo")
            .args(["inspect", "--config", &layout])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["variant"], "v8");
    assert_eq!(config["config"]["User"], "65532");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 22);
    let history = config["history"].as_array().unwrap();
    assert!(history
        .iter()
        .any(|h| h["created_by"].as_str().unwrap().contains("libc6")
            && h["created_by"].as_str().unwrap().ends_with("arm64")));

    // an amd64 binary is refused on an arm64 image
    let p = programs();
    let out = dlx_build(&[
        "static",
        "--arch",
        "arm64",
        "--add",
        &format!("{}:/probe", p.probe_static.display()),
        "--output",
        "oci:/nonexistent/never",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the image is arm64"),
        "{}",
        describe(&out)
    );
}

#[test]
fn tar_output_loads_with_docker_load() {
    let file = work_dir().join("static-nonroot.tar");
    let out = dlx_build(&[
        "static:nonroot",
        "-t",
        "dlx-test/from-tar:nonroot",
        "--output",
        &format!("tar:{}", file.display()),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&file).unwrap());
    for e in archive.entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    for required in ["oci-layout", "index.json", "manifest.json"] {
        assert!(
            names.iter().any(|n| n == required),
            "{required} missing: {names:?}"
        );
    }
    docker_output(&["rmi", "dlx-test/from-tar:nonroot"]);
    let loaded = docker(&["load", "-i", &file.display().to_string()]);
    assert!(loaded.contains("dlx-test/from-tar:nonroot"), "{loaded}");
    assert_eq!(inspect("dlx-test/from-tar:nonroot", "{{.Id}}"), id);
}

#[test]
fn debian12_is_not_usr_merged_and_runs_dynamic_programs() {
    let p = programs();
    let add = format!("{}:/probe", p.probe_dyn.display());
    let image = tag("base-nossl", "debian12", "latest");
    engine_image(
        &image,
        &["base-nossl", "--distro", "debian12", "--add", &add],
        &[&p.probe_dyn],
    );
    assert_eq!(
        run_ok(&image, "/probe", &["user", "nonroot"]),
        "user nonroot 65532 65532 /home/nonroot"
    );
    assert_eq!(inspect(&image, "{{len .RootFS.Layers}}"), "14");
    let files = image_files(&image);
    assert_eq!(files["lib"].4, b'5', "/lib is a real directory on debian12");
    assert!(files.contains_key("lib64/ld-linux-x86-64.so.2"));
    let os = String::from_utf8(files["usr/lib/os-release"].5.clone()).unwrap();
    assert!(
        os.contains("VERSION=\"Debian GNU/Linux 12 (bookworm)\"\n"),
        "{os}"
    );
}

#[test]
fn bad_requests_are_explained() {
    let out = dlx_build(&["nosuchtier"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(
            "dlx: unknown tier nosuchtier\nhint: built-in tiers are static, base-nossl, base, cc"
        ),
        "{err}"
    );
    let out = dlx_build(&["static:fancy"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown variant fancy"));
    let out = dlx_build(&["static", "--output", "zip:x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid --output zip:x\nhint:"));
}

#[test]
fn python3_tier_runs_python_with_tls_and_zoneinfo() {
    let image = tag("python3", "debian13", "latest");
    engine_image(&image, &["python3"], &[]);
    let out = docker(&[
        "run", "--rm", "--network", "none", &image, "-c",
        "import sys, ssl, sqlite3, zoneinfo, ctypes; print(sys.version_info[:2]); print(len(ssl.create_default_context().get_ca_certs(binary_form=True)) >= 0, ssl.get_default_verify_paths().openssl_cafile_env); import datetime; print(datetime.datetime(2023, 11, 14, tzinfo=zoneinfo.ZoneInfo('America/New_York')).utcoffset())",
    ]);
    assert_eq!(out, "(3, 13)\nTrue SSL_CERT_FILE\n-1 day, 19:00:00");
    // python loads the bundle from SSL_CERT_FILE
    let certs = docker(&[
        "run", "--rm", "--network", "none", &image, "-c",
        "import ssl; c = ssl.create_default_context(); c.load_verify_locations(cafile=__import__('os').environ['SSL_CERT_FILE']); print(c.cert_store_stats()['x509_ca'] > 100)",
    ]);
    assert_eq!(certs, "True");
    assert_eq!(
        inspect(&image, "{{json .Config.Entrypoint}}"),
        "[\"/usr/bin/python3.13\"]"
    );
    let files = image_files(&image);
    assert_eq!(
        String::from_utf8(files["usr/bin/python3"].5.clone()).unwrap(),
        "/usr/bin/python3.13"
    );
    assert!(!files.contains_key("usr/bin/perl") && !files.contains_key("usr/bin/dpkg"));

    // ld.so.cache: ctypes finds libraries through `ldconfig -p`
    let found = docker(&[
        "run", "--rm", "--network", "none", &image, "-c",
        "import ctypes.util as u; print(u.find_library('ssl'), u.find_library('sqlite3'), u.find_library('stdc++'))",
    ]);
    assert_eq!(found, "libssl.so.3 libsqlite3.so.0 libstdc++.so.6");
    // and lists exactly what the host's ldconfig finds in the same tree
    let root = tempfile::tempdir().unwrap();
    for (path, (mode, _, _, _, kind, data)) in &files {
        let dest = root.path().join(path);
        match kind {
            b'5' => std::fs::create_dir_all(&dest).unwrap(),
            b'2' => {
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(String::from_utf8_lossy(data).as_ref(), &dest).unwrap();
            }
            b'0' | b'7' if path.contains(".so") || path.starts_with("etc/ld.so") => {
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::write(&dest, data).unwrap();
                let _ = mode;
            }
            _ => {}
        }
    }
    let ours = root.path().join("ours.cache");
    std::fs::rename(root.path().join("etc/ld.so.cache"), &ours).unwrap();
    let run_ldconfig = |args: &[&str]| {
        let out = std::process::Command::new("ldconfig")
            .args(args)
            .output()
            .expect("run ldconfig");
        assert!(out.status.success(), "{}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run_ldconfig(&["-r", &root.path().display().to_string(), "-X"]);
    let listing = |cache: &Path| {
        run_ldconfig(&["-p", "-C", &cache.display().to_string()])
            .lines()
            .filter(|l| l.starts_with('\t'))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let host = listing(&root.path().join("etc/ld.so.cache"));
    assert!(host.len() > 30, "{host:?}");
    assert_eq!(listing(&ours), host);
    assert!(!files.contains_key("bin/sh") && !files.contains_key("usr/bin/sh"));
}

#[test]
fn nodejs_tier_runs_node_at_the_distroless_path() {
    let image = tag("nodejs", "debian13", "nonroot");
    engine_image(&image, &["nodejs:nonroot"], &[]);
    let out = docker(&[
        "run", "--rm", "--network", "none", &image, "-e",
        "console.log(process.version.split('.')[0], require('tls').rootCertificates.length > 100, require('os').userInfo().uid)",
    ]);
    assert_eq!(out, "v20 true 65532");
    assert_eq!(
        inspect(&image, "{{json .Config.Entrypoint}}"),
        "[\"/nodejs/bin/node\"]"
    );
    let files = image_files(&image);
    for shell in ["bin/sh", "usr/bin/sh", "usr/bin/bash", "usr/bin/dash"] {
        assert!(!files.contains_key(shell), "{shell} in {image}");
    }
}

#[test]
fn sbom_lists_every_package_with_purls() {
    let dir = tempfile::tempdir().unwrap();
    let sbom = dir.path().join("sbom.json");
    let out = dlx_build(&[
        "cc:debug",
        "--output",
        &format!("oci:{}", dir.path().join("oci").display()),
        "--sbom",
        &sbom.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["packages"][0]["versionInfo"], id.as_str());
    let names: Vec<&str> = doc["packages"].as_array().unwrap()[1..]
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "base-files",
            "netbase",
            "tzdata",
            "tzdata-legacy",
            "media-types",
            "libc6",
            "libssl3t64",
            "libzstd1",
            "zlib1g",
            "libgomp1",
            "libstdc++6",
            "libgcc-s1",
            "gcc-14-base",
            "ca-certificates",
            "busybox-static"
        ]
    );
    let libc = &doc["packages"][6];
    let purl = libc["externalRefs"][0]["referenceLocator"]
        .as_str()
        .unwrap();
    assert!(
        purl.starts_with("pkg:deb/debian/libc6@2.41-")
            && purl.ends_with("?arch=amd64&distro=debian-13"),
        "{purl}"
    );
    assert_eq!(
        libc["checksums"][0]["checksumValue"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert_eq!(doc["relationships"].as_array().unwrap().len(), 16);
}

/// A throwaway registry (Debian's docker-registry) on a loopback port.
struct Registry {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry() -> Registry {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start docker-registry (apt-get install docker-registry)");
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Registry {
        child,
        port,
        _dir: dir,
    }
}

#[test]
fn push_to_a_registry_and_pull_back() {
    let registry = start_registry();
    let reference = format!("127.0.0.1:{}/dlx-test/base:nonroot", registry.port);
    let out = dlx_build(&["base:nonroot", "--push", &reference]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let digest = stdout
        .strip_prefix(&format!("{reference}@"))
        .expect("stdout is REF@digest");
    let inspect = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", describe(&inspect));
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(json["Digest"], digest);
    assert_eq!(json["Layers"].as_array().unwrap().len(), 17);
    // a second push finds every blob and gives the same digest
    let again = dlx_build(&["base:nonroot", "--push", &reference]);
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), stdout);
    docker(&["pull", &reference]);
    assert_eq!(inspect_user(&reference), "65532");
    docker_output(&["rmi", &reference]);
}

fn inspect_user(image: &str) -> String {
    inspect(image, "{{.Config.User}}")
}

#[test]
fn java21_tier_runs_java_and_trusts_the_ca_bundle() {
    let image = tag("java21", "debian13", "latest");
    engine_image(&image, &["java21"], &[]);
    let (code, _, err) = run_in(&image, "/usr/bin/java", &["-version"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("openjdk version \"21."), "{err}");
    // keytool checks the store's integrity digest with the default password
    let list = run_ok(
        &image,
        "/usr/lib/jvm/java-21-openjdk-amd64/bin/keytool",
        &["-list", "-cacerts", "-storepass", "changeit"],
    );
    let count: usize = list
        .lines()
        .find_map(|l| {
            l.strip_prefix("Your keystore contains ")?
                .strip_suffix(" entries")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{list}"));
    assert!(count > 100, "{count}");
    assert_eq!(
        inspect(&image, "{{json .Config.Entrypoint}}"),
        "[\"/usr/bin/java\",\"-jar\"]"
    );
    let env = inspect(&image, "{{json .Config.Env}}");
    let version = env
        .split("JAVA_VERSION=")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .unwrap()
        .to_string();
    assert!(version.starts_with("21.0."), "{env}");
    assert!(
        err.contains(&format!("\"{version}\"")),
        "JAVA_VERSION {version} vs {err}"
    );
    let files = image_files(&image);
    for shell in ["bin/sh", "usr/bin/sh", "usr/bin/bash", "usr/bin/dash"] {
        assert!(!files.contains_key(shell), "{shell} in {image}");
    }
    assert_eq!(files["etc/ssl/certs/java/cacerts"].0 & 0o7777, 0o555);
}

#[test]
fn entrypoint_cmd_env_flags_set_the_config() {
    let p = programs();
    let add = format!("{}:/probe", p.probe_static.display());
    let image = tag("static", "debian13", "flags");
    engine_image(
        &image,
        &[
            "static:nonroot",
            "--add",
            &add,
            "--entrypoint",
            "/probe",
            "--cmd",
            "[\"tz\",\"Europe/Paris\"]",
            "--env",
            "TZ_TEST=1",
            "--env",
            "SSL_CERT_FILE=/x",
        ],
        &[&p.probe_static],
    );
    assert_eq!(
        docker(&["run", "--rm", "--network", "none", &image]),
        "tz CET 3600"
    );
    assert_eq!(
        docker(&["run", "--rm", "--network", "none", &image, "id"]),
        "id 65532 65532 /home/nonroot"
    );
    assert_eq!(
        inspect(&image, "{{json .Config.Env}}"),
        "[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"SSL_CERT_FILE=/x\",\"TZ_TEST=1\"]"
    );

    // a script whose interpreter the image lacks is refused
    let script = work_dir().join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&script)
        .status()
        .unwrap();
    let out = dlx_build(&[
        "static",
        "--add",
        &format!("{}:/hello.sh", script.display()),
        "--output",
        "oci:/nonexistent/never",
    ]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("its interpreter /bin/sh is not in the image\nhint: scripts need an interpreter; the static:debug image"), "{err}");
}

#[test]
fn lock_is_written_then_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("static.lock");
    let lock_arg = lock.display().to_string();
    let first = dlx_build(&[
        "static",
        "--lock",
        &lock_arg,
        "--output",
        &format!("oci:{}", dir.path().join("a").display()),
    ]);
    assert!(first.status.success(), "{}", describe(&first));
    assert!(String::from_utf8_lossy(&first.stderr).contains("wrote lock"));
    let text = std::fs::read_to_string(&lock).unwrap();
    for pkg in ["\"base-files\"", "\"tzdata-legacy\"", "\"ca-certificates\""] {
        assert!(text.contains(pkg), "{pkg} not locked: {text}");
    }
    let second = dlx_build(&[
        "static",
        "--lock",
        &lock_arg,
        "--output",
        &format!("oci:{}", dir.path().join("b").display()),
    ]);
    assert!(second.status.success(), "{}", describe(&second));
    assert!(!String::from_utf8_lossy(&second.stderr).contains("wrote lock"));
    assert_eq!(first.stdout, second.stdout);
    // a lock for one target does not build another
    let other = dlx_build(&[
        "static",
        "--arch",
        "arm64",
        "--lock",
        &lock_arg,
        "--output",
        &format!("oci:{}", dir.path().join("c").display()),
    ]);
    assert_eq!(other.status.code(), Some(125), "{}", describe(&other));
    // nor a tier needing packages it does not list
    let more = dlx_build(&[
        "base",
        "--lock",
        &lock_arg,
        "--output",
        &format!("oci:{}", dir.path().join("d").display()),
    ]);
    assert_eq!(more.status.code(), Some(125), "{}", describe(&more));
    assert!(
        String::from_utf8_lossy(&more.stderr).contains("libc6"),
        "{}",
        describe(&more)
    );
}
