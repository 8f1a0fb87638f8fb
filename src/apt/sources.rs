//! The default mirror: the first Debian archive named in the host's apt sources
//! (`/etc/apt/sources.list`, then `/etc/apt/sources.list.d/*.list` and deb822 `*.sources`
//! in name order), else `http://deb.debian.org/debian`. An entry counts as Debian when it
//! is a binary (`deb`) source whose URI path ends in `/debian`, or whose suites are Debian
//! codenames; security archives (`…/debian-security`, `*-security`) are not mirrors of the
//! main archive and are skipped.

use std::path::Path;

use super::deb822;

pub const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

const CODENAMES: &[&str] = &[
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "duke",
    "sid",
    "stable",
    "testing",
    "unstable",
    "oldstable",
];

/// One `deb` entry: URI and suites.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    uri: String,
    suites: Vec<String>,
}

fn is_debian(e: &Entry) -> bool {
    let uri = e.uri.trim_end_matches('/');
    if uri.ends_with("-security") || e.suites.iter().all(|s| s.ends_with("-security")) {
        return false;
    }
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return false;
    }
    let codename = |s: &String| {
        let base = s.split(['-', '/']).next().unwrap_or(s);
        CODENAMES.contains(&base)
    };
    uri.ends_with("/debian") || (!e.suites.is_empty() && e.suites.iter().all(codename))
}

/// `deb [opts] URI suite [components...]` lines.
fn parse_list(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut rest = match line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        {
            Some(r) => r.trim_start(),
            None => continue,
        };
        if let Some(r) = rest.strip_prefix('[') {
            match r.find(']') {
                Some(end) => rest = r[end + 1..].trim_start(),
                None => continue,
            }
        }
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            out.push(Entry {
                uri: uri.to_string(),
                suites: vec![suite.to_string()],
            });
        }
    }
    out
}

/// deb822 `.sources` paragraphs with `Types: deb` (and not `Enabled: no`).
fn parse_sources(text: &str, name: &str) -> Vec<Entry> {
    let Ok(paras) = deb822::parse(text, name) else {
        tracing::debug!(file = name, "unreadable apt sources file ignored");
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in paras {
        let has_deb = p
            .get("Types")
            .is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
        let enabled = p
            .get("Enabled")
            .is_none_or(|v| !v.eq_ignore_ascii_case("no"));
        if !has_deb || !enabled {
            continue;
        }
        let suites: Vec<String> = p
            .get("Suites")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        for uri in p.get("URIs").unwrap_or("").split_whitespace() {
            out.push(Entry {
                uri: uri.to_string(),
                suites: suites.clone(),
            });
        }
    }
    out
}

/// The first Debian mirror configured under `root` (normally `/`), if any.
pub fn detect_mirror(root: &Path) -> Option<String> {
    let etc = root.join("etc/apt");
    let mut entries = Vec::new();
    if let Ok(text) = std::fs::read_to_string(etc.join("sources.list")) {
        entries.extend(parse_list(&text));
    }
    let mut files: Vec<_> = std::fs::read_dir(etc.join("sources.list.d"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        match f.extension().and_then(|e| e.to_str()) {
            Some("list") => entries.extend(parse_list(&text)),
            Some("sources") => entries.extend(parse_sources(&text, &f.display().to_string())),
            _ => {}
        }
    }
    let found = entries
        .into_iter()
        .find(is_debian)
        .map(|e| e.uri.trim_end_matches('/').to_string());
    tracing::debug!(mirror = ?found, "mirror from apt sources");
    found
}

/// The security archive that goes with a mirror: the last `debian` path segment becomes
/// `debian-security` (`http://deb.debian.org/debian` → `…/debian-security`, and
/// `…/archive/debian/20250520T000000Z` → `…/archive/debian-security/20250520T000000Z`);
/// a mirror without such a segment gets `-security` appended.
pub fn security_mirror_for(mirror: &str) -> String {
    let mirror = mirror.trim_end_matches('/');
    let (scheme, rest) = mirror.split_once("://").unwrap_or(("", mirror));
    let mut segs: Vec<&str> = rest.split('/').collect();
    // Never rewrite the host (index 0).
    if let Some(i) = segs.iter().rposition(|s| *s == "debian").filter(|&i| i > 0) {
        segs[i] = "debian-security";
        let joined = segs.join("/");
        return if scheme.is_empty() {
            joined
        } else {
            format!("{scheme}://{joined}")
        };
    }
    format!("{mirror}-security")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn deb822_sources_skipping_third_party_and_security() {
        let dir = root_with(&[
            (
                "etc/apt/sources.list",
                "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n",
            ),
            (
                "etc/apt/sources.list.d/debian.sources",
                "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
URIs: http://ftp.de.debian.org/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n",
            ),
            (
                "etc/apt/sources.list.d/nodesource.sources",
                "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n",
            ),
        ]);
        assert_eq!(
            detect_mirror(dir.path()).as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
    }

    #[test]
    fn one_line_lists_with_options_and_codename_only_mirrors() {
        let dir = root_with(&[(
            "etc/apt/sources.list",
            "# deb http://commented.example/debian trixie main\n\
deb-src http://src.example/debian trixie main\n\
deb http://security.debian.org/debian-security trixie-security main\n\
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/pub/linux trixie main # fast\n",
        )]);
        assert_eq!(
            detect_mirror(dir.path()).as_deref(),
            Some("http://mirror.example/pub/linux")
        );
    }

    #[test]
    fn disabled_or_absent_sources_fall_back() {
        let dir = root_with(&[(
            "etc/apt/sources.list.d/x.sources",
            "Enabled: no\nTypes: deb\nURIs: http://a.example/debian\nSuites: trixie\n",
        )]);
        assert_eq!(detect_mirror(dir.path()), None);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(detect_mirror(empty.path()), None);
    }

    #[test]
    fn security_mirror_derivation() {
        assert_eq!(
            security_mirror_for("http://deb.debian.org/debian/"),
            "http://deb.debian.org/debian-security"
        );
        assert_eq!(
            security_mirror_for("http://snapshot.debian.org/archive/debian/20250520T000000Z"),
            "http://snapshot.debian.org/archive/debian-security/20250520T000000Z"
        );
        assert_eq!(
            security_mirror_for("http://mirror.example/pub/linux"),
            "http://mirror.example/pub/linux-security"
        );
        assert_eq!(
            security_mirror_for("http://debian/x"),
            "http://debian/x-security",
            "the host is never rewritten"
        );
    }
}
