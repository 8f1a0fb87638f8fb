//! The image model and its JSON documents: OCI image config (created at epoch 0,
//! one history entry per layer), OCI manifest (annotations live here, not in config
//! labels) and the descriptors that point at them. Serialised with a fixed key
//! order, compact, so the bytes (and digests) are stable.

use std::collections::BTreeMap;

use serde::Serialize;

use super::layer::{sha256_digest, Layer};
use super::OciError;

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

const EPOCH: &str = "1970-01-01T00:00:00Z";

/// OCI platform of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The OCI platform for a Debian architecture name (`amd64`, `arm64`, `armhf`,
    /// `ppc64el`, ...).
    pub fn from_debian_arch(arch: &str) -> Platform {
        let (architecture, variant) = match arch {
            "armhf" => ("arm", Some("v7")),
            "armel" => ("arm", Some("v5")),
            "arm64" => ("arm64", Some("v8")),
            "ppc64el" => ("ppc64le", None),
            "i386" => ("386", None),
            other => (other, None),
        };
        Platform {
            architecture: architecture.to_string(),
            os: "linux".to_string(),
            variant: variant.map(str::to_string),
        }
    }
}

/// The runtime part of the config (`config` in the OCI config JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageConfig {
    #[serde(rename = "User")]
    pub user: String,
    #[serde(rename = "Env")]
    pub env: Vec<String>,
    #[serde(rename = "Entrypoint", skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "WorkingDir")]
    pub working_dir: String,
}

/// A complete image: layers bottom to top, config, manifest annotations.
#[derive(Debug, Clone)]
pub struct Image {
    pub platform: Platform,
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
    pub annotations: BTreeMap<String, String>,
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The encoded JSON documents of an image and their descriptors.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

#[derive(Serialize)]
struct ConfigDoc<'a> {
    created: &'static str,
    architecture: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    os: &'a str,
    config: &'a ImageConfig,
    rootfs: RootFs<'a>,
    history: Vec<History<'a>>,
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<&'a str>,
}

#[derive(Serialize)]
struct History<'a> {
    created: &'static str,
    created_by: &'a str,
}

#[derive(Serialize)]
struct ManifestDoc<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct IndexDoc {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

impl Image {
    /// Encode config and manifest.
    pub fn encode(&self) -> Result<Encoded, OciError> {
        let config_doc = ConfigDoc {
            created: EPOCH,
            architecture: &self.platform.architecture,
            variant: self.platform.variant.as_deref(),
            os: &self.platform.os,
            config: &self.config,
            rootfs: RootFs {
                kind: "layers",
                diff_ids: self.layers.iter().map(|l| l.diff_id.as_str()).collect(),
            },
            history: self
                .layers
                .iter()
                .map(|l| History {
                    created: EPOCH,
                    created_by: &l.created_by,
                })
                .collect(),
        };
        let config = serde_json::to_vec(&config_doc).map_err(OciError::Json)?;
        let config_digest = sha256_digest(&config);
        let manifest_doc = ManifestDoc {
            schema_version: 2,
            media_type: MEDIA_MANIFEST,
            config: Descriptor {
                media_type: MEDIA_CONFIG.to_string(),
                digest: config_digest.clone(),
                size: config.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
            layers: self
                .layers
                .iter()
                .map(|l| Descriptor {
                    media_type: MEDIA_LAYER_GZIP.to_string(),
                    digest: l.digest.clone(),
                    size: l.blob.len() as u64,
                    platform: None,
                    annotations: BTreeMap::new(),
                })
                .collect(),
            annotations: &self.annotations,
        };
        let manifest = serde_json::to_vec(&manifest_doc).map_err(OciError::Json)?;
        let manifest_digest = sha256_digest(&manifest);
        Ok(Encoded {
            config,
            config_digest,
            manifest,
            manifest_digest,
        })
    }
}

impl Encoded {
    /// `index.json` for an image layout holding this one manifest, named `reference`
    /// (full `repo:tag`; the tag goes in `org.opencontainers.image.ref.name`).
    pub fn index_json(&self, platform: &Platform, reference: &str) -> Result<Vec<u8>, OciError> {
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "io.containerd.image.name".to_string(),
            reference.to_string(),
        );
        annotations.insert(
            "org.opencontainers.image.ref.name".to_string(),
            tag_of(reference).to_string(),
        );
        let index = IndexDoc {
            schema_version: 2,
            media_type: MEDIA_INDEX,
            manifests: vec![Descriptor {
                media_type: MEDIA_MANIFEST.to_string(),
                digest: self.manifest_digest.clone(),
                size: self.manifest.len() as u64,
                platform: Some(platform.clone()),
                annotations,
            }],
        };
        serde_json::to_vec(&index).map_err(OciError::Json)
    }
}

/// The tag part of `repo[:tag]` (`latest` when absent); a `:` inside a registry
/// host:port is not a tag separator.
pub fn tag_of(reference: &str) -> &str {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    match last.split_once(':') {
        Some((_, tag)) => tag,
        None => "latest",
    }
}

/// The hex part of a `sha256:<hex>` digest.
pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::layer::{Entry, LayerWriter};

    fn image() -> Image {
        let mut w = LayerWriter::new();
        w.push(&Entry::dir("./", 0o755, 0)).unwrap();
        let mut annotations = BTreeMap::new();
        annotations.insert("org.opencontainers.image.source".into(), "x".into());
        Image {
            platform: Platform::from_debian_arch("arm64"),
            config: ImageConfig {
                user: "65532".into(),
                env: vec!["PATH=/bin".into()],
                entrypoint: None,
                cmd: None,
                working_dir: "/home/nonroot".into(),
            },
            layers: vec![w.finish("rootfs").unwrap()],
            annotations,
        }
    }

    #[test]
    fn config_has_epoch_history_and_no_entrypoint_key() {
        let enc = image().encode().unwrap();
        let text = String::from_utf8(enc.config).unwrap();
        assert!(text.starts_with(r#"{"created":"1970-01-01T00:00:00Z","architecture":"arm64","variant":"v8","os":"linux","config":{"User":"65532","Env":["PATH=/bin"],"WorkingDir":"/home/nonroot"}"#), "{text}");
        assert!(text
            .contains(r#""history":[{"created":"1970-01-01T00:00:00Z","created_by":"rootfs"}]"#));
        let manifest = String::from_utf8(enc.manifest).unwrap();
        assert!(manifest.ends_with(r#""annotations":{"org.opencontainers.image.source":"x"}}"#));
    }

    #[test]
    fn tags_are_split_after_the_last_slash() {
        assert_eq!(tag_of("dlx/static-debian13:nonroot"), "nonroot");
        assert_eq!(tag_of("localhost:5000/x"), "latest");
        assert_eq!(tag_of("localhost:5000/x:debug"), "debug");
    }
}
