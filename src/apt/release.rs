//! `dists/<suite>/InRelease`: verify the cleartext signature against the trusted keyring
//! and parse the signed Release paragraph (its fields and the `SHA256:` file list).
//!
//! Only the signed text is ever parsed. A file is accepted when at least one of its
//! signatures verifies against a trusted key (primary or signing subkey), made while that
//! key was valid; every fingerprint that verified is recorded. `Valid-Until`, when present,
//! must lie in the future, and the Release must name the suite that was asked for (a
//! validly signed Release of another suite is a substitution, not a match).

use std::collections::BTreeMap;

use pgp::composed::CleartextSignedMessage;
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, VerifyingKey};
use sha2::{Digest, Sha256};

use super::deb822::{self, Paragraph};
use super::keys::{expiry_of, fingerprint_hex, latest, Keyring};

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("cannot read the signed InRelease {url} (sha256 {sha256}): {source}")]
    Armor {
        url: String,
        sha256: String,
        #[source]
        source: Box<pgp::errors::Error>,
    },
    #[error("no valid signature from a trusted key on {url} (sha256 {sha256}; {detail})\nhint: the file was altered in transit or signed by a key dlx does not trust; pass --keyring FILE for a non-debian archive")]
    Untrusted {
        url: String,
        sha256: String,
        detail: String,
    },
    #[error("{url} expired at {valid_until} (Valid-Until), now is {now}\nhint: the mirror serves a stale copy of the suite; try another --mirror")]
    Expired {
        url: String,
        valid_until: String,
        now: String,
    },
    #[error("{url} is the Release of suite {found:?}, expected {expected:?}")]
    WrongSuite {
        url: String,
        expected: String,
        found: String,
    },
    #[error("cannot parse the Release in {url}: {reason}")]
    Parse { url: String, reason: String },
}

/// One file listed in the `SHA256:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub size: u64,
    pub sha256: String,
}

/// A parsed Release paragraph.
#[derive(Debug, Clone)]
pub struct Release {
    pub suite: Option<String>,
    pub codename: Option<String>,
    /// `Date`, seconds since the epoch.
    pub date: Option<u64>,
    /// `Valid-Until`, seconds since the epoch.
    pub valid_until: Option<u64>,
    pub acquire_by_hash: bool,
    /// Path relative to `dists/<suite>/` → size and digest.
    pub sha256: BTreeMap<String, IndexFile>,
    pub paragraph: Paragraph,
}

/// A Release whose InRelease signature verified.
#[derive(Debug, Clone)]
pub struct VerifiedRelease {
    pub release: Release,
    /// Primary-key fingerprints of the trusted keys whose signatures verified.
    pub signers: Vec<String>,
    /// SHA-256 of the whole InRelease file as fetched.
    pub sha256: String,
}

impl Release {
    /// Parse the text of a Release paragraph (already verified, or a test fixture).
    pub fn parse(text: &str, url: &str) -> Result<Release, ReleaseError> {
        let perr = |reason: String| ReleaseError::Parse {
            url: url.to_string(),
            reason,
        };
        let paragraph = deb822::parse(text, url)
            .map_err(|e| perr(e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| perr("no Release paragraph".into()))?;
        let date_field = |name: &str| -> Result<Option<u64>, ReleaseError> {
            paragraph
                .get(name)
                .map(|v| parse_date(v).ok_or_else(|| perr(format!("bad {name} date {v:?}"))))
                .transpose()
        };
        let mut sha256 = BTreeMap::new();
        for line in paragraph.lines("SHA256") {
            let mut it = line.split_whitespace();
            let (Some(hex), Some(size), Some(path), None) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(perr(format!("bad SHA256 line {line:?}")));
            };
            let size = size
                .parse()
                .map_err(|_| perr(format!("bad size in SHA256 line {line:?}")))?;
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(perr(format!("bad digest in SHA256 line {line:?}")));
            }
            sha256.insert(
                path.to_string(),
                IndexFile {
                    size,
                    sha256: hex.to_ascii_lowercase(),
                },
            );
        }
        if sha256.is_empty() {
            return Err(perr("no SHA256 file list".into()));
        }
        Ok(Release {
            suite: paragraph.get("Suite").map(str::to_string),
            codename: paragraph.get("Codename").map(str::to_string),
            date: date_field("Date")?,
            valid_until: date_field("Valid-Until")?,
            acquire_by_hash: paragraph
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            sha256,
            paragraph,
        })
    }
}

/// Verify InRelease bytes fetched from `url` for `suite` at time `now` (unix seconds).
pub fn verify(
    bytes: &[u8],
    url: &str,
    suite: &str,
    keyring: &Keyring,
    now: u64,
) -> Result<VerifiedRelease, ReleaseError> {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let (msg, _) =
        CleartextSignedMessage::from_armor(bytes).map_err(|source| ReleaseError::Armor {
            url: url.to_string(),
            sha256: sha256.clone(),
            source: Box::new(source),
        })?;
    let signed = msg.signed_text();
    let mut signers = Vec::new();
    let mut failures = Vec::new();
    for sig in msg.signatures() {
        match verify_one(sig, signed.as_bytes(), keyring) {
            Ok(fpr) => {
                if !signers.contains(&fpr) {
                    signers.push(fpr);
                }
            }
            Err(why) => failures.push(why),
        }
    }
    if signers.is_empty() {
        let detail = if failures.is_empty() {
            "the file carries no signature".to_string()
        } else {
            failures.join("; ")
        };
        return Err(ReleaseError::Untrusted {
            url: url.to_string(),
            sha256,
            detail,
        });
    }
    tracing::debug!(%url, ?signers, ignored = ?failures, "InRelease signature verified");
    let text = signed.replace("\r\n", "\n");
    let release = Release::parse(&text, url)?;
    let named = [release.codename.as_deref(), release.suite.as_deref()];
    if !named.contains(&Some(suite)) {
        return Err(ReleaseError::WrongSuite {
            url: url.to_string(),
            expected: suite.to_string(),
            found: release.codename.clone().unwrap_or_default(),
        });
    }
    if let Some(until) = release.valid_until {
        if now > until {
            return Err(ReleaseError::Expired {
                url: url.to_string(),
                valid_until: format_date(until),
                now: format_date(now),
            });
        }
    }
    Ok(VerifiedRelease {
        release,
        signers,
        sha256,
    })
}

/// Check one signature; on success return the primary fingerprint of the key that made it.
fn verify_one(sig: &Signature, text: &[u8], keyring: &Keyring) -> Result<String, String> {
    if !matches!(sig.typ(), Some(SignatureType::Text | SignatureType::Binary)) {
        return Err(format!("signature of type {:?} ignored", sig.typ()));
    }
    let created = sig
        .created()
        .map(|t| u64::from(t.as_secs()))
        .ok_or("signature without creation time")?;
    let issuers: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|f| format!("{f:X}"))
        .collect();
    let key_ids: Vec<String> = sig
        .issuer_key_id()
        .iter()
        .map(|k| hex::encode_upper(k.as_ref()))
        .collect();
    let matches = |fpr: String, id: String| issuers.contains(&fpr) || key_ids.contains(&id);
    for trusted in keyring.keys() {
        let key = &trusted.key;
        if !key.details.revocation_signatures.is_empty() {
            continue;
        }
        let primary = &key.primary_key;
        if matches(
            format!("{:X}", primary.fingerprint()),
            hex::encode_upper(primary.legacy_key_id().as_ref()),
        ) {
            let expiry = trusted.expires;
            return check(sig, primary, text, created, expiry, &trusted.name)
                .map(|()| fingerprint_hex(key));
        }
        for sub in &key.public_subkeys {
            if !matches(
                format!("{:X}", sub.key.fingerprint()),
                hex::encode_upper(sub.key.legacy_key_id().as_ref()),
            ) {
                continue;
            }
            if sub
                .signatures
                .iter()
                .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
            {
                return Err(format!(
                    "subkey {:X} of {} is revoked",
                    sub.key.fingerprint(),
                    trusted.name
                ));
            }
            let binding = latest(
                sub.signatures
                    .iter()
                    .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding)),
            );
            let Some(binding) = binding.filter(|b| b.key_flags().sign()) else {
                return Err(format!(
                    "subkey {:X} of {} may not sign",
                    sub.key.fingerprint(),
                    trusted.name
                ));
            };
            let expiry = expiry_of(sub.key.created_at().as_secs(), binding);
            return check(sig, &sub.key, text, created, expiry, &trusted.name)
                .map(|()| fingerprint_hex(key));
        }
    }
    Err(format!(
        "signature by {} from an untrusted key",
        issuers
            .first()
            .or(key_ids.first())
            .map_or("an unnamed key", String::as_str)
    ))
}

fn check(
    sig: &Signature,
    key: &impl VerifyingKey,
    text: &[u8],
    created: u64,
    expiry: Option<u64>,
    name: &str,
) -> Result<(), String> {
    if let Some(exp) = expiry {
        if created > exp {
            return Err(format!(
                "signature made {} after key {name} expired {}",
                format_date(created),
                format_date(exp)
            ));
        }
    }
    sig.verify(key, text)
        .map_err(|e| format!("bad signature by {name}: {e}"))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parse an RFC 2822 date as used in Release files (`Sat, 09 Aug 2025 09:15:00 UTC`).
/// Only UTC (`UTC`, `GMT`, `Z`, `+0000`) and numeric offsets are accepted.
pub fn parse_date(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.split_once(", ").map_or(s, |(_, rest)| rest);
    let mut it = s.split_whitespace();
    let day: i64 = it.next()?.parse().ok()?;
    let mon = it.next()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(mon))? as i64 + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let m: i64 = hms.next()?.parse().ok()?;
    let sec: i64 = hms.next().unwrap_or("0").parse().ok()?;
    let offset = match it.next().unwrap_or("UTC") {
        "UTC" | "GMT" | "Z" => 0,
        o if o.len() == 5 && (o.starts_with('+') || o.starts_with('-')) => {
            let v: i64 = o[1..].parse().ok()?;
            let secs = (v / 100) * 3600 + (v % 100) * 60;
            if o.starts_with('-') {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let t = days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + sec - offset;
    u64::try_from(t).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Format unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_date(t: u64) -> String {
    let days = (t / 86400) as i64;
    let rem = t % 86400;
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: &str = r"Origin: Debian
Label: Debian-Security
Suite: stable-security
Codename: trixie-security
Date: Sun, 22 Nov 2026 10:00:00 UTC
Valid-Until: Sun, 29 Nov 2026 10:00:00 UTC
Acquire-By-Hash: yes
Architectures: amd64 arm64
Components: main
SHA256:
 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef   1234 main/binary-amd64/Packages
 ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789    567 main/binary-amd64/Packages.xz
";

    #[test]
    fn parses_release_fields_and_sha256_section() {
        let r = Release::parse(RELEASE, "t").unwrap();
        assert_eq!(r.codename.as_deref(), Some("trixie-security"));
        assert_eq!(r.suite.as_deref(), Some("stable-security"));
        assert!(r.acquire_by_hash);
        assert_eq!(r.valid_until.unwrap() - r.date.unwrap(), 7 * 86400);
        assert_eq!(r.sha256.len(), 2);
        let xz = &r.sha256["main/binary-amd64/Packages.xz"];
        assert_eq!(xz.size, 567);
        assert_eq!(
            xz.sha256,
            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
        );
    }

    #[test]
    fn rejects_bad_sha256_lines() {
        let bad = RELEASE.replace("   1234 ", " x ");
        assert!(Release::parse(&bad, "t").is_err());
        let bad = RELEASE.replace("0123456789abcdef0123", "zz");
        assert!(Release::parse(&bad, "t").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_date("Sat, 22 Nov 2026 10:00:00 UTC"),
            Some(1_795_341_600)
        );
        assert_eq!(
            parse_date("Sat, 22 Nov 2026 11:00:00 +0100"),
            Some(1_795_341_600)
        );
        assert_eq!(format_date(1_795_341_600), "2026-11-22 10:00:00 UTC");
        assert_eq!(parse_date("22 Nov 2026 10:00:00"), Some(1_795_341_600));
        assert_eq!(parse_date("Sat, 22 Foo 2026 10:00:00 UTC"), None);
        assert_eq!(parse_date("Sat, 22 Nov 2026 10:00:00 EST"), None);
    }

    #[test]
    fn unsigned_or_garbage_is_refused() {
        let ring = Keyring::load(&[]).unwrap();
        let e = verify(
            RELEASE.as_bytes(),
            "http://x/InRelease",
            "trixie-security",
            &ring,
            0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("http://x/InRelease"), "{e}");
        assert!(
            e.to_string()
                .contains(&hex::encode(Sha256::digest(RELEASE.as_bytes()))),
            "{e}"
        );
    }

    const BOOKWORM: &[u8] = include_bytes!("testdata/bookworm-InRelease");
    const SECURITY: &[u8] = include_bytes!("testdata/trixie-security-InRelease");
    const BOOKWORM_AUTO: &str = "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8";
    const BOOKWORM_STABLE: &str = "4D64FEC119C2029067D6E791F8D2585B8783D481";
    const TRIXIE_AUTO: &str = "04B54C3CDCA79751B16BC6B5225629DF75B188BD";
    const BOOKWORM_SECURITY: &str = "05AB90340C0C5E797F44A8C8254CF3B5AEC0A8F0";
    const TRIXIE_SECURITY: &str = "5E04A1E3223A19A20706E20F9904613D4CCE68C6";

    fn only(fpr: &str) -> Keyring {
        let ring = Keyring::load(&[]).unwrap();
        let keys = ring
            .keys()
            .iter()
            .filter(|k| k.fingerprint() == fpr)
            .cloned()
            .collect();
        Keyring::from_keys(keys)
    }

    #[test]
    fn real_inrelease_with_three_signatures() {
        let ring = Keyring::load(&[]).unwrap();
        let v = verify(BOOKWORM, "u", "bookworm", &ring, 0).unwrap();
        // RSA by a signing subkey (bookworm and trixie automatic) and Ed25519 (stable).
        assert_eq!(v.signers, [BOOKWORM_AUTO, TRIXIE_AUTO, BOOKWORM_STABLE]);
        assert_eq!(v.sha256, hex::encode(Sha256::digest(BOOKWORM)));
        assert_eq!(v.release.codename.as_deref(), Some("bookworm"));
        assert!(v.release.acquire_by_hash);
        assert!(v
            .release
            .sha256
            .contains_key("main/binary-amd64/Packages.xz"));
        // Any one trusted signature is enough.
        let v = verify(BOOKWORM, "u", "bookworm", &only(BOOKWORM_STABLE), 0).unwrap();
        assert_eq!(v.signers, [BOOKWORM_STABLE], "ed25519 alone");
        // Matched by Suite as well as by Codename.
        let v = verify(BOOKWORM, "u", "oldstable", &only(BOOKWORM_AUTO), 0).unwrap();
        assert_eq!(v.signers, [BOOKWORM_AUTO], "rsa signing subkey alone");
    }

    #[test]
    fn no_trusted_signer_is_refused() {
        let e = verify(
            BOOKWORM,
            "http://m/InRelease",
            "bookworm",
            &only(TRIXIE_SECURITY),
            0,
        )
        .unwrap_err();
        assert!(matches!(e, ReleaseError::Untrusted { .. }), "{e}");
        assert!(e.to_string().contains("untrusted key"), "{e}");
    }

    #[test]
    fn one_flipped_byte_is_refused() {
        let ring = Keyring::load(&[]).unwrap();
        let mut bad = BOOKWORM.to_vec();
        let at = BOOKWORM.windows(7).position(|w| w == b"SHA256:").unwrap() + 100;
        bad[at] ^= 0x01;
        let e = verify(
            &bad,
            "http://m/dists/bookworm/InRelease",
            "bookworm",
            &ring,
            0,
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ReleaseError::Untrusted { .. }), "{msg}");
        assert!(msg.contains("http://m/dists/bookworm/InRelease"), "{msg}");
        assert!(msg.contains(&hex::encode(Sha256::digest(&bad))), "{msg}");
    }

    #[test]
    fn a_release_of_another_suite_is_refused() {
        let ring = Keyring::load(&[]).unwrap();
        let e = verify(BOOKWORM, "u", "trixie", &ring, 0).unwrap_err();
        assert!(matches!(e, ReleaseError::WrongSuite { .. }), "{e}");
    }

    #[test]
    fn security_suite_valid_until() {
        let ring = Keyring::load(&[]).unwrap();
        let v = verify(SECURITY, "u", "trixie-security", &ring, 0).unwrap();
        assert_eq!(v.signers, [BOOKWORM_SECURITY, TRIXIE_SECURITY]);
        let until = v.release.valid_until.expect("security has Valid-Until");
        assert!(verify(SECURITY, "u", "trixie-security", &ring, until).is_ok());
        let e = verify(SECURITY, "u", "trixie-security", &ring, until + 1).unwrap_err();
        assert!(matches!(e, ReleaseError::Expired { .. }), "{e}");
        assert!(e.to_string().contains("expired at"), "{e}");
    }
}
