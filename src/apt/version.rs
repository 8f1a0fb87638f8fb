//! Debian version ordering, as dpkg defines it: `[epoch:]upstream[-revision]`, compared
//! epoch first (numerically), then upstream, then revision, each with dpkg's alternating
//! non-digit / digit comparison in which `~` sorts before everything, even the end.

use std::cmp::Ordering;

/// A version split into its three parts. Missing epoch is 0, missing revision is "".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version<'a> {
    pub epoch: u64,
    pub upstream: &'a str,
    pub revision: &'a str,
}

impl<'a> Version<'a> {
    /// Split a version string. A non-numeric epoch is treated as part of the upstream
    /// version, so malformed input still orders deterministically.
    pub fn parse(s: &'a str) -> Version<'a> {
        let s = s.trim();
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
                (e.parse().unwrap_or(u64::MAX), rest)
            }
            _ => (0, s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        Version {
            epoch,
            upstream,
            revision,
        }
    }
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(self.upstream, other.upstream))
            .then_with(|| compare_part(self.revision, other.revision))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compare two Debian version strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    Version::parse(a).cmp(&Version::parse(b))
}

/// The weight of one character in the non-digit part: `~` lowest, then the end of the
/// part, then letters, then everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // Non-digit prefix, character by character.
        loop {
            let ca = a.first().copied().filter(|c| !c.is_ascii_digit());
            let cb = b.first().copied().filter(|c| !c.is_ascii_digit());
            if ca.is_none() && cb.is_none() {
                break;
            }
            match weight(ca).cmp(&weight(cb)) {
                Ordering::Equal => {
                    a = &a[1..];
                    b = &b[1..];
                }
                other => return other,
            }
        }
        // Digit run, numerically (leading zeros ignored, any length).
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
        let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let start = d.iter().take_while(|&&c| c == b'0').count();
    &d[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal as Eq, Greater as Gt, Less as Lt};

    #[test]
    fn ordering_table() {
        let table: &[(&str, &str, Ordering)] = &[
            ("1.0", "1.0", Eq),
            ("1.0", "1.1", Lt),
            ("1.10", "1.9", Gt),
            ("1.0~rc1", "1.0", Lt),
            ("1.0~~", "1.0~", Lt),
            ("1.0~", "1.0", Lt),
            ("1.0", "1.0+b1", Lt),
            ("1.0-1", "1.0-1+b1", Lt),
            ("1.0-1+deb12u1", "1.0-1", Gt),
            ("1:0.1", "9.9", Gt),
            ("0:1.0", "1.0", Eq),
            ("1.0-2", "1.0-10", Lt),
            ("1.0a", "1.0", Gt),
            ("1.0a", "1.0+", Lt),
            ("1.0.0", "1.0", Gt),
            ("001", "1", Eq),
            ("2.36-9+deb12u10", "2.36-9+deb12u9", Gt),
            ("2025b-0+deb12u1", "2025b-4+deb13u1", Lt),
            ("20230311+deb12u1", "20230311", Gt),
            ("1.2-3-4", "1.2-3", Gt),
            ("a", "~", Gt),
            ("", "~", Gt),
            ("1.0-0", "1.0", Eq),
            ("10:1", "9:2", Gt),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(a, b), *want, "compare({a:?}, {b:?})");
            assert_eq!(compare(b, a), want.reverse(), "compare({b:?}, {a:?})");
        }
    }

    #[test]
    fn split_parts() {
        let v = Version::parse("2:1.2-3-4");
        assert_eq!((v.epoch, v.upstream, v.revision), (2, "1.2-3", "4"));
        let v = Version::parse("1.0");
        assert_eq!((v.epoch, v.upstream, v.revision), (0, "1.0", ""));
    }
}
