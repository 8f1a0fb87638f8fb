//! The trusted OpenPGP keys: Debian's archive signing keys for bookworm and trixie,
//! embedded from `toolbox/keys/` and pinned by full primary-key fingerprint, plus any
//! user-supplied keys for other archives. Loading checks each embedded key's fingerprint
//! and every self-signature and subkey binding; a key that fails is an error, never
//! silently dropped.

use std::path::{Path, PathBuf};

use pgp::composed::{Deserializable, SignedPublicKey};
use pgp::packet::Signature;
use pgp::types::{KeyDetails, Tag};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot parse the openpgp key {name}: {source}")]
    Parse {
        name: String,
        #[source]
        source: Box<pgp::errors::Error>,
    },
    #[error("embedded key {name} has fingerprint {actual}, expected {expected}")]
    FingerprintMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("openpgp key {name} ({fingerprint}) has an invalid self-signature or subkey binding: {source}")]
    Bindings {
        name: String,
        fingerprint: String,
        #[source]
        source: Box<pgp::errors::Error>,
    },
    #[error("openpgp key {name} ({fingerprint}) has no self-signed user id")]
    NoSelfSignature { name: String, fingerprint: String },
    #[error("cannot read the key file {path}: {source}\nhint: pass a binary or ascii-armored openpgp public key")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the key file {path} holds no openpgp public key")]
    Empty { path: PathBuf },
}

/// An embedded key: file name, pinned fingerprint (upper-case hex), bytes.
struct Embedded {
    name: &'static str,
    fingerprint: &'static str,
    bytes: &'static [u8],
}

macro_rules! embedded {
    ($name:literal, $fpr:literal) => {
        Embedded {
            name: $name,
            fingerprint: $fpr,
            bytes: include_bytes!(concat!("../../toolbox/keys/", $name, ".pgp")),
        }
    };
}

const EMBEDDED: &[Embedded] = &[
    embedded!(
        "debian-bookworm-automatic",
        "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8"
    ),
    embedded!(
        "debian-bookworm-security-automatic",
        "05AB90340C0C5E797F44A8C8254CF3B5AEC0A8F0"
    ),
    embedded!(
        "debian-bookworm-stable",
        "4D64FEC119C2029067D6E791F8D2585B8783D481"
    ),
    embedded!(
        "debian-trixie-automatic",
        "04B54C3CDCA79751B16BC6B5225629DF75B188BD"
    ),
    embedded!(
        "debian-trixie-security-automatic",
        "5E04A1E3223A19A20706E20F9904613D4CCE68C6"
    ),
    embedded!(
        "debian-trixie-stable",
        "41587F7DB8C774BCCF131416762F67A0B2C39DE4"
    ),
];

/// A verified key with a human name (the file it came from).
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub name: String,
    pub key: SignedPublicKey,
    /// When the primary key expires (unix seconds), from its latest self-signature.
    pub expires: Option<u64>,
}

impl TrustedKey {
    /// The primary key's fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> String {
        fingerprint_hex(&self.key)
    }
}

/// The set of keys an InRelease may be signed by.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<TrustedKey>,
}

pub(crate) fn fingerprint_hex(key: &SignedPublicKey) -> String {
    format!("{:X}", key.primary_key.fingerprint())
}

impl Keyring {
    /// The embedded Debian keys (each checked against its pinned fingerprint) plus the
    /// keys in `extra` files (binary or armored; every key in each file is trusted).
    pub fn load(extra: &[PathBuf]) -> Result<Keyring, KeyError> {
        let mut keys = Vec::new();
        for e in EMBEDDED {
            keys.push(load_pinned(e)?);
        }
        for path in extra {
            keys.extend(load_file(path)?);
        }
        Ok(Keyring { keys })
    }

    /// A keyring of exactly these keys (tests narrow the trust set with it).
    pub fn from_keys(keys: Vec<TrustedKey>) -> Keyring {
        Keyring { keys }
    }

    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }
}

fn load_pinned(e: &Embedded) -> Result<TrustedKey, KeyError> {
    let key = parse_one(e.name, e.bytes)?;
    let actual = fingerprint_hex(&key);
    if actual != e.fingerprint {
        return Err(KeyError::FingerprintMismatch {
            name: e.name.to_string(),
            expected: e.fingerprint.to_string(),
            actual,
        });
    }
    checked(e.name, key)
}

fn parse_one(name: &str, bytes: &[u8]) -> Result<SignedPublicKey, KeyError> {
    SignedPublicKey::from_bytes(bytes).map_err(|source| KeyError::Parse {
        name: name.to_string(),
        source: Box::new(source),
    })
}

/// Whether `sig` names `key`'s primary as its issuer.
fn issued_by_primary(sig: &Signature, key: &SignedPublicKey) -> bool {
    let fpr = key.primary_key.fingerprint();
    let id = key.primary_key.legacy_key_id();
    sig.issuer_fingerprint().iter().any(|f| **f == fpr)
        || sig.issuer_key_id().iter().any(|k| **k == id)
}

/// Check the key's self-signatures: at least one valid self-certification of a user id,
/// and valid binding signatures (with back-signatures for signing subkeys) on every
/// subkey. Certifications by other keys are not ours to check and are ignored.
fn checked(name: &str, key: SignedPublicKey) -> Result<TrustedKey, KeyError> {
    let fail = |source: pgp::errors::Error| KeyError::Bindings {
        name: name.to_string(),
        fingerprint: fingerprint_hex(&key),
        source: Box::new(source),
    };
    let mut self_sigs = Vec::new();
    let mut last_err = None;
    for user in &key.details.users {
        for sig in user
            .signatures
            .iter()
            .filter(|s| issued_by_primary(s, &key))
        {
            match sig.verify_certification(&key.primary_key, Tag::UserId, &user.id) {
                Ok(()) => self_sigs.push(sig),
                Err(e) => last_err = Some(e),
            }
        }
    }
    if self_sigs.is_empty() {
        return Err(match last_err {
            Some(e) => fail(e),
            None => KeyError::NoSelfSignature {
                name: name.to_string(),
                fingerprint: fingerprint_hex(&key),
            },
        });
    }
    for sub in &key.public_subkeys {
        sub.verify_bindings(&key.primary_key).map_err(fail)?;
    }
    let expires = latest(self_sigs.into_iter())
        .and_then(|s| expiry_of(key.primary_key.created_at().as_secs(), s));
    Ok(TrustedKey {
        name: name.to_string(),
        key,
        expires,
    })
}

/// The most recently created of some signatures.
pub(crate) fn latest<'a>(sigs: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    sigs.max_by_key(|s| s.created().map(|t| t.as_secs()))
}

/// Expiry (unix seconds) given key creation and the governing self-signature.
pub(crate) fn expiry_of(created: u32, sig: &Signature) -> Option<u64> {
    sig.key_expiration_time()
        .map(|d| d.as_secs())
        .filter(|&d| d != 0)
        .map(|d| u64::from(created) + u64::from(d))
}

fn load_file(path: &Path) -> Result<Vec<TrustedKey>, KeyError> {
    let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    let parsed: Vec<SignedPublicKey> = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let (iter, _) =
            SignedPublicKey::from_armor_many(&bytes[..]).map_err(|source| KeyError::Parse {
                name: name.clone(),
                source: Box::new(source),
            })?;
        iter.collect::<Result<_, _>>()
    } else {
        SignedPublicKey::from_bytes_many(&bytes[..])
            .map_err(|source| KeyError::Parse {
                name: name.clone(),
                source: Box::new(source),
            })?
            .collect::<Result<_, _>>()
    }
    .map_err(|source| KeyError::Parse {
        name: name.clone(),
        source: Box::new(source),
    })?;
    if parsed.is_empty() {
        return Err(KeyError::Empty {
            path: path.to_path_buf(),
        });
    }
    parsed.into_iter().map(|k| checked(&name, k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_keys_load_and_match_their_pins() {
        let ring = Keyring::load(&[]).unwrap();
        let fprs: Vec<String> = ring.keys().iter().map(TrustedKey::fingerprint).collect();
        assert_eq!(fprs.len(), 6);
        for e in EMBEDDED {
            assert!(fprs.contains(&e.fingerprint.to_string()), "{}", e.name);
        }
        let trixie = &ring.keys()[3];
        assert_eq!(trixie.name, "debian-trixie-automatic");
        // rsa4096 2025-03-30, expires 2035-03-28 (gpg --show-keys).
        let exp = trixie.expires.expect("the automatic key expires");
        assert!(
            crate::apt::release::format_date(exp).starts_with("2035-03-28"),
            "{exp}"
        );
    }

    #[test]
    fn a_key_under_the_wrong_pin_is_refused() {
        // The bookworm stable key's bytes under the trixie stable pin.
        let swapped = Embedded {
            name: "swapped",
            fingerprint: EMBEDDED[5].fingerprint,
            bytes: EMBEDDED[2].bytes,
        };
        match load_pinned(&swapped) {
            Err(KeyError::FingerprintMismatch {
                expected, actual, ..
            }) => {
                assert_eq!(expected, EMBEDDED[5].fingerprint);
                assert_eq!(actual, EMBEDDED[2].fingerprint);
            }
            other => panic!("expected a fingerprint mismatch, got {other:?}"),
        }
    }

    #[test]
    fn extra_key_files_load_binary_and_report_missing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.gpg");
        std::fs::write(&p, EMBEDDED[0].bytes).unwrap();
        let ring = Keyring::load(std::slice::from_ref(&p)).unwrap();
        assert_eq!(ring.keys().len(), 7);
        let missing = dir.path().join("nope.gpg");
        let e = Keyring::load(&[missing]).unwrap_err();
        assert!(e.to_string().starts_with("cannot read the key file"), "{e}");
        let empty = dir.path().join("empty.gpg");
        std::fs::write(&empty, b"").unwrap();
        assert!(Keyring::load(&[empty]).is_err());
    }
}
