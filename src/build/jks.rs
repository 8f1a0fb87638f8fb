//! A Java KeyStore (JKS v2) of trusted certificates, built from the PEM CA
//! bundle, for `/etc/ssl/certs/java/cacerts` (Debian's OpenJDK links its
//! `lib/security/cacerts` there; normally ca-certificates-java's maintainer
//! script writes it). Store password `changeit`, as every JDK expects.
//!
//! Layout (big-endian): magic `FEEDFEED`, version 2, entry count; per
//! certificate: tag 2, alias (u16 length + UTF-8), creation time in ms, `X.509`,
//! DER length + bytes; then SHA-1 over (password as UTF-16BE, `Mighty Aphrodite`,
//! everything before). Aliases are `debian:<n>` by bundle position and the
//! creation time is the certificate's notBefore, so the file is a pure function of
//! the bundle.

use crate::apt::release::days_from_civil;
use base64::Engine;
use sha1::{Digest, Sha1};

/// Errors while converting the bundle.
#[derive(Debug, thiserror::Error)]
pub enum JksError {
    #[error("certificate {index} of the CA bundle is not valid base64")]
    Base64 { index: usize },
    #[error("certificate {index} of the CA bundle is not a DER certificate")]
    Der { index: usize },
    #[error("the CA bundle holds no certificates")]
    Empty,
}

/// DER certificates of a PEM bundle, in order.
pub fn pem_certificates(bundle: &str) -> Result<Vec<Vec<u8>>, JksError> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in bundle.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(text) = body.take() {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map_err(|_| JksError::Base64 { index: out.len() })?;
                out.push(der);
            }
        } else if let Some(text) = body.as_mut() {
            text.push_str(line);
        }
    }
    Ok(out)
}

/// One DER element: (tag, content, rest).
fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *data.first()?;
    let first = *data.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in data.get(2..2 + n)? {
            len = (len << 8) | *b as usize;
        }
        (len, 2 + n)
    };
    let content = data.get(header..header + len)?;
    Some((tag, content, &data[header + len..]))
}

/// notBefore of a DER certificate, in ms since the epoch.
pub fn not_before_ms(der: &[u8]) -> Option<u64> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut rest = tbs;
    // optional [0] version
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    rest = tlv(rest)?.2; // serial
    rest = tlv(rest)?.2; // signature algorithm
    rest = tlv(rest)?.2; // issuer
    let (_, validity, _) = tlv(rest)?;
    let (tag, time, _) = tlv(validity)?;
    let text = std::str::from_utf8(time).ok()?;
    let digits = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = digits.get(0..2)?.parse().ok()?;
            (
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                digits.get(2..)?,
            )
        }
        0x18 => (digits.get(0..4)?.parse().ok()?, digits.get(4..)?),
        _ => return None,
    };
    let field = |at: usize| -> Option<i64> { rest.get(at..at + 2)?.parse().ok() };
    let (month, day, hour, min) = (field(0)?, field(2)?, field(4)?, field(6)?);
    let sec = field(8).unwrap_or(0);
    let days = days_from_civil(year, month, day);
    let secs = days * 86400 + hour * 3600 + min * 60 + sec;
    u64::try_from(secs).ok().map(|s| s * 1000)
}

fn put_utf(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The JKS bytes for the certificates of a PEM bundle.
pub fn from_bundle(bundle: &str) -> Result<Vec<u8>, JksError> {
    let certs = pem_certificates(bundle)?;
    if certs.is_empty() {
        return Err(JksError::Empty);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&0xfeed_feedu32.to_be_bytes());
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&(certs.len() as u32).to_be_bytes());
    for (index, der) in certs.iter().enumerate() {
        let date = not_before_ms(der).ok_or(JksError::Der { index })?;
        out.extend_from_slice(&2u32.to_be_bytes());
        put_utf(&mut out, &format!("debian:{index:03}"));
        out.extend_from_slice(&date.to_be_bytes());
        put_utf(&mut out, "X.509");
        out.extend_from_slice(&(der.len() as u32).to_be_bytes());
        out.extend_from_slice(der);
    }
    let mut hasher = Sha1::new();
    for unit in "changeit".encode_utf16() {
        hasher.update(unit.to_be_bytes());
    }
    hasher.update(b"Mighty Aphrodite");
    hasher.update(&out);
    out.extend_from_slice(&hasher.finalize());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
    }

    #[test]
    fn header_count_and_trailer() {
        // a minimal DER "certificate": SEQ{ SEQ{ [0]{INT 2}, INT 1, SEQ{}, SEQ{}, SEQ{UTCTime, UTCTime} } }
        let time = b"200101000000Z";
        let mut validity = vec![0x17, time.len() as u8];
        validity.extend_from_slice(time);
        validity.extend_from_slice(&[0x17, time.len() as u8]);
        validity.extend_from_slice(time);
        let mut tbs = vec![
            0xa0,
            3,
            2,
            1,
            2,
            2,
            1,
            1,
            0x30,
            0,
            0x30,
            0,
            0x30,
            validity.len() as u8,
        ];
        tbs.extend_from_slice(&validity);
        let mut tbs_seq = vec![0x30, tbs.len() as u8];
        tbs_seq.extend_from_slice(&tbs);
        let mut cert = vec![0x30, tbs_seq.len() as u8];
        cert.extend_from_slice(&tbs_seq);
        assert_eq!(not_before_ms(&cert), Some(1_577_836_800_000));
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::engine::general_purpose::STANDARD.encode(&cert)
        );
        let jks = from_bundle(&pem).unwrap();
        assert_eq!(
            &jks[..12],
            &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1]
        );
        assert_eq!(
            jks.len(),
            12 + 4 + 2 + "debian:000".len() + 8 + 2 + 5 + 4 + cert.len() + 20
        );
        assert!(matches!(from_bundle("no certs"), Err(JksError::Empty)));
    }
}
