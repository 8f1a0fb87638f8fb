//! SPDX 2.3 JSON software bill of materials for a built image: one SPDX package
//! per Debian package the image carries (installed layers and the packages its
//! generated files come from), with purls, .deb checksums and suppliers, all
//! CONTAINED by the image. Deterministic: created at the epoch, keys sorted.

use serde_json::{json, Value};

use super::{Debs, Plan};

/// The SPDX document for `plan`, built from `debs`, for the image whose config
/// digest is `image_id`, named `reference`.
pub fn spdx(plan: &Plan, debs: &Debs, image_id: &str, reference: &str) -> Value {
    let distro = format!("debian-{}", plan.distro.version_id);
    let mut names = plan.layer_packages();
    names.extend(plan.source_packages());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));

    let image_spdx_id = "SPDXRef-Image";
    let mut packages = vec![json!({
        "SPDXID": image_spdx_id,
        "name": reference,
        "versionInfo": image_id,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_spdx_id,
    })];
    for name in &names {
        let Some(deb) = debs.get(name) else { continue };
        let id = format!("SPDXRef-Package-deb-{}", spdx_id_part(name));
        let purl = format!(
            "pkg:deb/debian/{}@{}?arch={}&distro={distro}",
            name,
            purl_escape(deb.version()),
            deb.architecture()
        );
        let supplier = deb
            .field("Maintainer")
            .map(|m| format!("Organization: {m}"))
            .unwrap_or_else(|| "NOASSERTION".to_string());
        packages.push(json!({
            "SPDXID": id,
            "name": name,
            "versionInfo": deb.version(),
            "supplier": supplier,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "checksums": [{ "algorithm": "SHA256", "checksumValue": deb.sha256() }],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }],
        }));
        relationships.push(json!({
            "spdxElementId": image_spdx_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": reference,
        "documentNamespace": format!("https://dlx.invalid/spdx/{}", image_id.trim_start_matches("sha256:")),
        "creationInfo": {
            "created": "1970-01-01T00:00:00Z",
            "creators": [format!("Tool: dlx-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// SPDX ids allow letters, digits, `.` and `-`.
fn spdx_id_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Percent-encode the characters of a Debian version that purl reserves.
fn purl_escape(version: &str) -> String {
    version
        .replace('%', "%25")
        .replace('+', "%2B")
        .replace(':', "%3A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_purls_are_valid() {
        assert_eq!(spdx_id_part("libstdc++6"), "libstdc--6");
        assert_eq!(purl_escape("1:1.3+dfsg-1"), "1%3A1.3%2Bdfsg-1");
    }
}
