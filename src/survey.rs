//! What a container's image looks like from its files, for `dlx ps`: whether it has
//! a shell, and which distroless tier it resembles.
//!
//! The files are looked up through the container's own root (`/proc/<pid>/root`),
//! resolved inside it ([`crate::sys::mode_in_root`]), so a hostile image's symlinks
//! cannot point dlx at the host's files. Nothing is read or executed; only whether a
//! path exists (and, for a shell, is an executable file).
//!
//! The tier is a guess from marker files, the same ones `dlx build` tiers add
//! (`toolbox/tiers/*.toml`): no libc → `static`; libc → `base-nossl`; + libssl →
//! `base`; + libstdc++ → `cc`; a Python, Node.js or Java runtime → that tier; a
//! package manager (dpkg, apk, rpm) → `distro`, a full distribution.

use std::os::fd::BorrowedFd;

use crate::sys;

/// Shells, in the order they are reported.
const SHELLS: &[&str] = &[
    "/bin/sh",
    "/usr/bin/sh",
    "/bin/bash",
    "/usr/bin/bash",
    "/bin/ash",
    "/bin/dash",
    "/busybox/sh",
    "/bin/busybox",
    "/usr/bin/busybox",
];

/// Multiarch directories, for the libraries.
const ARCHES: &[&str] = &[
    "x86_64-linux-gnu",
    "aarch64-linux-gnu",
    "arm-linux-gnueabihf",
    "i386-linux-gnu",
    "powerpc64le-linux-gnu",
    "s390x-linux-gnu",
    "riscv64-linux-gnu",
];

const PACKAGE_MANAGERS: &[&str] = &["/usr/bin/dpkg", "/sbin/apk", "/usr/bin/rpm", "/bin/rpm"];

const PYTHONS: &[&str] = &["/usr/bin/python3", "/usr/local/bin/python3"];
const NODES: &[&str] = &["/nodejs/bin/node", "/usr/bin/node", "/usr/local/bin/node"];
const JAVA_VERSIONS: &[&str] = &["25", "21", "17"];

/// What was found in an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// The first shell found.
    pub shell: Option<String>,
    pub libc: bool,
    pub libssl: bool,
    pub libstdcxx: bool,
    pub python3: bool,
    pub nodejs: bool,
    /// `Some("17")` for `/usr/lib/jvm/java-17-*`; `Some("")` for another Java.
    pub java: Option<String>,
    pub package_manager: bool,
}

/// Look at the image behind `root` (an `O_PATH` handle on the container's root).
pub fn survey(root: BorrowedFd<'_>) -> Findings {
    look(|path| sys::mode_in_root(root, path).ok().flatten())
}

/// The survey, over any file lookup (`mode` gives a path's `st_mode`, if it exists).
pub fn look(mode: impl Fn(&str) -> Option<u32>) -> Findings {
    let exists = |p: &str| mode(p).is_some();
    let executable =
        |p: &str| mode(p).is_some_and(|m| m & libc::S_IFMT == libc::S_IFREG && m & 0o111 != 0);
    let any = |paths: &[&str]| paths.iter().any(|p| exists(p));
    let library = |names: &[&str]| {
        names.iter().any(|name| {
            ["/lib", "/usr/lib", "/lib64", "/usr/lib64"]
                .iter()
                .any(|dir| exists(&format!("{dir}/{name}")))
                || ARCHES.iter().any(|arch| {
                    exists(&format!("/lib/{arch}/{name}"))
                        || exists(&format!("/usr/lib/{arch}/{name}"))
                })
        })
    };
    let java = JAVA_VERSIONS
        .iter()
        .find(|v| {
            ["amd64", "arm64", "ppc64el", "s390x"]
                .iter()
                .any(|a| exists(&format!("/usr/lib/jvm/java-{v}-openjdk-{a}/bin/java")))
        })
        .map(|v| v.to_string())
        .or_else(|| exists("/usr/bin/java").then(String::new));
    Findings {
        shell: SHELLS.iter().find(|s| executable(s)).map(|s| s.to_string()),
        libc: library(&["libc.so.6"])
            || any(&["/lib/ld-musl-x86_64.so.1", "/lib/ld-musl-aarch64.so.1"]),
        libssl: library(&["libssl.so.3", "libssl.so.1.1"]),
        libstdcxx: library(&["libstdc++.so.6"]),
        python3: any(PYTHONS),
        nodejs: any(NODES),
        java,
        package_manager: any(PACKAGE_MANAGERS),
    }
}

/// The distroless tier an image with `f` looks like.
pub fn tier(f: &Findings) -> String {
    if f.package_manager {
        return "distro".into();
    }
    if let Some(v) = &f.java {
        return format!("java{v}");
    }
    if f.python3 {
        return "python3".into();
    }
    if f.nodejs {
        return "nodejs".into();
    }
    match (f.libc, f.libssl, f.libstdcxx) {
        (false, _, _) => "static",
        (true, _, true) => "cc",
        (true, true, false) => "base",
        (true, false, false) => "base-nossl",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG_X: u32 = libc::S_IFREG | 0o755;
    const REG: u32 = libc::S_IFREG | 0o644;

    fn image(files: &[(&str, u32)]) -> Findings {
        look(|p| files.iter().find(|(f, _)| *f == p).map(|(_, m)| *m))
    }

    #[test]
    fn tiers_follow_the_marker_files() {
        let libc = ("/lib/x86_64-linux-gnu/libc.so.6", REG);
        let ssl = ("/usr/lib/x86_64-linux-gnu/libssl.so.3", REG);
        let cxx = ("/usr/lib/aarch64-linux-gnu/libstdc++.so.6", REG);
        assert_eq!(tier(&image(&[("/etc/passwd", REG)])), "static");
        assert_eq!(tier(&image(&[libc])), "base-nossl");
        assert_eq!(tier(&image(&[libc, ssl])), "base");
        assert_eq!(tier(&image(&[libc, ssl, cxx])), "cc");
        assert_eq!(tier(&image(&[libc, cxx])), "cc");
        assert_eq!(
            tier(&image(&[libc, cxx, ("/usr/bin/python3", REG_X)])),
            "python3"
        );
        assert_eq!(
            tier(&image(&[libc, cxx, ("/nodejs/bin/node", REG_X)])),
            "nodejs"
        );
        assert_eq!(
            tier(&image(&[
                libc,
                ("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", REG_X)
            ])),
            "java17"
        );
        assert_eq!(tier(&image(&[libc, ("/usr/bin/java", REG_X)])), "java");
        assert_eq!(
            tier(&image(&[
                libc,
                ("/bin/sh", REG_X),
                ("/usr/bin/dpkg", REG_X)
            ])),
            "distro"
        );
        assert_eq!(
            tier(&image(&[
                ("/lib/ld-musl-x86_64.so.1", REG_X),
                ("/sbin/apk", REG_X)
            ])),
            "distro"
        );
    }

    #[test]
    fn a_shell_must_be_an_executable_file() {
        assert_eq!(image(&[]).shell, None);
        assert_eq!(image(&[("/bin/sh", REG)]).shell, None);
        assert_eq!(image(&[("/bin/sh", libc::S_IFDIR | 0o755)]).shell, None);
        assert_eq!(
            image(&[("/busybox/sh", REG_X)]).shell.as_deref(),
            Some("/busybox/sh")
        );
        assert_eq!(
            image(&[("/bin/bash", REG_X), ("/bin/sh", REG_X)])
                .shell
                .as_deref(),
            Some("/bin/sh")
        );
    }
}
