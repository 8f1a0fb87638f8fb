//! Generated (non-package) content: the entries of the rootfs, passwd, home,
//! group, tmp, nsswitch, os-release, CA bundle, busybox and symlink layers, with
//! the modes, owners and mtimes the distroless images carry. Also the package
//! layers' `/var/lib/dpkg/status.d` entries.

use std::io::Read;

use super::{BuildError, DistroInfo};
use crate::deb::Deb;
use crate::oci::Entry;

/// mtime of nsswitch.conf in the upstream images.
const NSSWITCH_MTIME: u64 = 1514722362;

pub const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";

pub const GROUP: &str = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n";

pub const NSSWITCH: &str = "# /etc/nsswitch.conf
#
# Example configuration of GNU Name Service Switch functionality.
# If you have the `glibc-doc-reference' and `info' packages installed, try:
# `info libc \"Name Service Switch\"' for information about this file.

passwd:         compat
group:          compat
shadow:         compat
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
";

pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";

pub fn rootfs() -> Vec<Entry> {
    vec![Entry::dir("./", 0o755, 0)]
}

pub fn passwd() -> Vec<Entry> {
    vec![
        Entry::dir("./etc/", 0o755, 0),
        Entry::file("./etc/passwd", 0o644, 0, PASSWD.as_bytes().to_vec()),
    ]
}

pub fn group() -> Vec<Entry> {
    vec![
        Entry::dir("./etc/", 0o755, 0),
        Entry::file("./etc/group", 0o644, 0, GROUP.as_bytes().to_vec()),
    ]
}

pub fn home() -> Vec<Entry> {
    vec![
        Entry::dir("./root/", 0o700, 0),
        Entry::dir("./home/", 0o755, 0),
        Entry::dir("./home/nonroot/", 0o700, 0).owner(65532, 65532),
    ]
}

pub fn tmp() -> Vec<Entry> {
    vec![Entry::dir("./tmp/", 0o1777, 0).names("root", "root")]
}

pub fn nsswitch() -> Vec<Entry> {
    vec![Entry::file(
        "./etc/nsswitch.conf",
        0o644,
        NSSWITCH_MTIME,
        NSSWITCH.as_bytes().to_vec(),
    )
    .names("root", "")]
}

/// The distroless `/usr/lib/os-release` for `distro`.
pub fn os_release_text(distro: &DistroInfo) -> String {
    format!(
        "PRETTY_NAME=\"Distroless\"\n\
         NAME=\"Debian GNU/Linux\"\n\
         ID=\"debian\"\n\
         VERSION_ID=\"{v}\"\n\
         VERSION=\"Debian GNU/Linux {v} ({c})\"\n\
         HOME_URL=\"https://github.com/GoogleContainerTools/distroless\"\n\
         SUPPORT_URL=\"https://github.com/GoogleContainerTools/distroless/blob/master/README.md\"\n\
         BUG_REPORT_URL=\"https://github.com/GoogleContainerTools/distroless/issues/new\"\n",
        v = distro.version_id,
        c = distro.codename
    )
}

pub fn os_release(distro: &DistroInfo) -> Vec<Entry> {
    vec![
        Entry::dir("./usr/", 0o755, 0),
        Entry::dir("./usr/lib/", 0o755, 0),
        Entry::file(
            "./usr/lib/os-release",
            0o555,
            0,
            os_release_text(distro).into_bytes(),
        ),
    ]
}

/// Regular files of a package's data tar whose path (without `./`) starts with
/// `prefix`, as (path, bytes), in archive order.
fn files_under(deb: &Deb, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, BuildError> {
    let err = |source| BuildError::PackageData {
        package: deb.package().to_string(),
        source,
    };
    let mut out = Vec::new();
    let mut archive = deb.data().map_err(BuildError::Deb)?;
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = path.trim_start_matches("./").to_string();
        if path.starts_with(prefix) {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(err)?;
            out.push((path, data));
        }
    }
    Ok(out)
}

/// The CA bundle: every file under `usr/share/ca-certificates/` of the
/// ca-certificates package, in byte-sorted path order, each line `\n`-terminated.
pub fn ca_bundle(deb: &Deb) -> Result<Vec<u8>, BuildError> {
    let mut certs = files_under(deb, "usr/share/ca-certificates/")?;
    if certs.is_empty() {
        return Err(BuildError::NoCertificates {
            package: deb.package().to_string(),
        });
    }
    certs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut bundle = Vec::new();
    for (_, data) in certs {
        for line in data.split_inclusive(|b| *b == b'\n') {
            bundle.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                bundle.push(b'\n');
            }
        }
    }
    Ok(bundle)
}

/// Bundle, copyright and status.d entries from the ca-certificates package.
pub fn ca_certificates(deb: &Deb) -> Result<Vec<Entry>, BuildError> {
    let bundle = ca_bundle(deb)?;
    let copyright_path = format!("usr/share/doc/{}/copyright", deb.package());
    let copyright = files_under(deb, &copyright_path)?
        .into_iter()
        .find(|(p, _)| *p == copyright_path)
        .map(|(_, d)| d)
        .ok_or_else(|| BuildError::MissingFile {
            package: deb.package().to_string(),
            path: format!("/{copyright_path}"),
        })?;
    let mut entries = vec![
        Entry::dir("./etc/", 0o755, 0),
        Entry::dir("./etc/ssl/", 0o755, 0),
        Entry::dir("./etc/ssl/certs/", 0o755, 0),
        Entry::file(&format!(".{CA_BUNDLE_PATH}"), 0o555, 0, bundle),
        Entry::dir("./usr/", 0o755, 0),
        Entry::dir("./usr/share/", 0o755, 0),
        Entry::dir("./usr/share/doc/", 0o755, 0),
        Entry::dir(&format!("./usr/share/doc/{}/", deb.package()), 0o755, 0),
        Entry::file(&format!("./{copyright_path}"), 0o555, 0, copyright),
    ];
    entries.extend(status_d(deb, true));
    Ok(entries)
}

/// `/var/lib/dpkg/status.d/<pkg>` (the control file verbatim) and, when
/// `md5sums` is set and the package has one, `<pkg>.md5sums`, with their parent
/// directories; metadata from the control tar members.
pub fn status_d(deb: &Deb, md5sums: bool) -> Vec<Entry> {
    let mut entries = vec![
        Entry::dir("./var/", 0o755, 0),
        Entry::dir("./var/lib/", 0o755, 0),
        Entry::dir("./var/lib/dpkg/", 0o755, 0),
        Entry::dir("./var/lib/dpkg/status.d/", 0o755, 0),
    ];
    let name = deb.package();
    let member = |path: String, m: &crate::deb::ControlMember| {
        let mut e = Entry::file(&path, m.meta.mode, m.meta.mtime, m.data.clone())
            .owner(m.meta.uid, m.meta.gid);
        e.mode &= 0o7777;
        e
    };
    entries.push(member(
        format!("./var/lib/dpkg/status.d/{name}"),
        deb.control(),
    ));
    if md5sums {
        if let Some(m) = deb.md5sums() {
            entries.push(member(format!("./var/lib/dpkg/status.d/{name}.md5sums"), m));
        }
    }
    entries
}

/// Applet names from a busybox binary's own applet table (a sorted run of
/// NUL-terminated names starting `[`, `[[`), so the list matches the build, on any
/// architecture, without running it.
pub fn busybox_applets(binary: &[u8]) -> Option<Vec<String>> {
    let start = binary.windows(5).position(|w| w == b"[\0[[\0")?;
    let mut names = Vec::new();
    let mut at = start;
    loop {
        let len = binary[at..].iter().position(|b| *b == 0)?;
        if len == 0 {
            break;
        }
        let name = std::str::from_utf8(&binary[at..at + len]).ok()?;
        let valid = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"[]-_.".contains(&b));
        if !valid {
            break;
        }
        names.push(name.to_string());
        at += len + 1;
    }
    let sorted = names.windows(2).all(|w| w[0] < w[1]);
    (names.len() > 10 && sorted && names.iter().any(|n| n == "sh")).then_some(names)
}

/// `/busybox/busybox` from the busybox-static package and one absolute symlink per
/// applet; a status.d control file records the package (no md5sums: the binary
/// is not at the package's path).
pub fn busybox(deb: &Deb) -> Result<Vec<Entry>, BuildError> {
    let binary = files_under(deb, "")?
        .into_iter()
        .find(|(p, _)| p == "usr/bin/busybox" || p == "bin/busybox")
        .map(|(_, d)| d)
        .ok_or_else(|| BuildError::MissingFile {
            package: deb.package().to_string(),
            path: "/usr/bin/busybox".to_string(),
        })?;
    let applets = busybox_applets(&binary).ok_or_else(|| BuildError::BusyboxApplets {
        package: deb.package().to_string(),
    })?;
    let mut entries = vec![
        Entry::dir("./busybox/", 0o755, 0),
        Entry::file("./busybox/busybox", 0o755, 0, binary),
    ];
    for applet in applets.iter().filter(|a| *a != "busybox") {
        entries.push(Entry::symlink(
            &format!("./busybox/{applet}"),
            "/busybox/busybox",
            0,
        ));
    }
    entries.extend(status_d(deb, false));
    Ok(entries)
}

/// `/etc/ssl/certs/java/cacerts`: a JKS of the CA bundle, with the modes and
/// times of the upstream java images.
pub fn java_cacerts(deb: &Deb) -> Result<Vec<Entry>, BuildError> {
    let bundle = ca_bundle(deb)?;
    let text = String::from_utf8_lossy(&bundle);
    let jks = super::jks::from_bundle(&text).map_err(|source| BuildError::Jks {
        package: deb.package().to_string(),
        source,
    })?;
    Ok(vec![
        Entry::dir("./etc/", 0o755, 946684800),
        Entry::dir("./etc/ssl/", 0o755, 0),
        Entry::dir("./etc/ssl/certs/", 0o755, 0),
        Entry::dir("./etc/ssl/certs/java/", 0o755, 0),
        Entry::file("./etc/ssl/certs/java/cacerts", 0o555, 0, jks),
    ])
}

/// Symlinks (absolute paths in the tier file) with their missing parents;
/// `{arch}` in a target becomes the Debian architecture.
pub fn symlinks(links: &[super::tier::Symlink], arch: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for link in links {
        let rel = link.path.trim_start_matches('/');
        let mut parent = String::from(".");
        let parts: Vec<&str> = rel.split('/').collect();
        for dir in &parts[..parts.len().saturating_sub(1)] {
            parent = format!("{parent}/{dir}");
            entries.push(Entry::dir(&format!("{parent}/"), 0o755, 0));
        }
        let target = link.target.replace("{arch}", arch);
        entries.push(Entry::symlink(&format!("./{rel}"), &target, 0));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_group_and_nsswitch_are_exact() {
        assert_eq!(PASSWD.lines().count(), 3);
        assert!(PASSWD.ends_with("/home/nonroot:/sbin/nologin\n"));
        assert_eq!(
            GROUP.lines().collect::<Vec<_>>(),
            [
                "root:x:0:",
                "nobody:x:65534:",
                "tty:x:5:",
                "staff:x:50:",
                "nonroot:x:65532:"
            ]
        );
        assert_eq!(NSSWITCH.len(), 497);
    }

    #[test]
    fn os_release_for_trixie() {
        let d = super::super::distro_info("debian13").unwrap();
        let text = os_release_text(&d);
        assert!(text.contains("VERSION_ID=\"13\"\nVERSION=\"Debian GNU/Linux 13 (trixie)\"\n"));
        assert!(!text.contains("VERSION_CODENAME"));
    }

    #[test]
    fn applet_table_is_found_and_checked() {
        let mut bin = b"\x7fELF junk\0".to_vec();
        let names = [
            "[", "[[", "ash", "cat", "cp", "echo", "ls", "mv", "rm", "sh", "vi", "wget",
        ];
        for n in names {
            bin.extend_from_slice(n.as_bytes());
            bin.push(0);
        }
        bin.extend_from_slice(b"\0\x01\x02");
        assert_eq!(busybox_applets(&bin).unwrap(), names);
        assert!(busybox_applets(b"no table here").is_none());
    }
}
