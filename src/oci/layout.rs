//! Writing an image out: an OCI image layout directory, or one tar holding both
//! the OCI layout (`oci-layout`, `index.json`, `blobs/`) and a Docker
//! `manifest.json` pointing at the same blobs, so `docker load` accepts it on the
//! classic and the containerd image stores. Entries are written in a fixed order
//! with fixed metadata.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::image::{hex_of, Encoded, Image};
use super::OciError;

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The files of a layout, in write order: (path relative to the root, bytes).
fn files<'a>(image: &'a Image, encoded: &'a Encoded, index: &'a [u8]) -> Vec<(String, &'a [u8])> {
    let blob = |digest: &str| format!("blobs/sha256/{}", hex_of(digest));
    let mut out: Vec<(String, &[u8])> = vec![("oci-layout".to_string(), OCI_LAYOUT)];
    let mut seen = std::collections::HashSet::new();
    for layer in &image.layers {
        if seen.insert(layer.digest.clone()) {
            out.push((blob(&layer.digest), &layer.blob));
        }
    }
    out.push((blob(&encoded.config_digest), &encoded.config));
    out.push((blob(&encoded.manifest_digest), &encoded.manifest));
    out.push(("index.json".to_string(), index));
    out
}

/// Write an OCI image layout into `dir` (created if missing). An existing layout
/// there is replaced; any other non-empty directory is refused.
pub fn write_dir(dir: &Path, image: &Image, reference: &str) -> Result<Encoded, OciError> {
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OciError::Write { path, source }
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(werr(dir))?;
        let empty = entries.next().is_none();
        if !empty && !dir.join("oci-layout").is_file() {
            return Err(OciError::LayoutNotEmpty {
                path: dir.to_path_buf(),
            });
        }
        let blobs = dir.join("blobs");
        if blobs.exists() {
            std::fs::remove_dir_all(&blobs).map_err(werr(&blobs))?;
        }
    }
    let encoded = image.encode()?;
    let index = encoded.index_json(&image.platform, reference)?;
    let blob_dir = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blob_dir).map_err(werr(&blob_dir))?;
    for (rel, data) in files(image, &encoded, &index) {
        let path: PathBuf = dir.join(&rel);
        std::fs::write(&path, data).map_err(werr(&path))?;
    }
    Ok(encoded)
}

/// The Docker `manifest.json` for the same blobs.
fn docker_manifest(image: &Image, encoded: &Encoded, reference: &str) -> Result<Vec<u8>, OciError> {
    #[derive(serde::Serialize)]
    struct Item<'a> {
        #[serde(rename = "Config")]
        config: String,
        #[serde(rename = "RepoTags")]
        repo_tags: Vec<&'a str>,
        #[serde(rename = "Layers")]
        layers: Vec<String>,
    }
    let blob = |digest: &str| format!("blobs/sha256/{}", hex_of(digest));
    let item = Item {
        config: blob(&encoded.config_digest),
        repo_tags: vec![reference],
        layers: image.layers.iter().map(|l| blob(&l.digest)).collect(),
    };
    serde_json::to_vec(&[item]).map_err(OciError::Json)
}

/// Write the dual OCI + Docker tar to `out`; `path` names the destination in errors.
pub fn write_tar(
    out: impl Write,
    path: &Path,
    image: &Image,
    reference: &str,
) -> Result<Encoded, OciError> {
    let werr = |source| OciError::Write {
        path: path.to_path_buf(),
        source,
    };
    let encoded = image.encode()?;
    let index = encoded.index_json(&image.platform, reference)?;
    let docker = docker_manifest(image, &encoded, reference)?;
    let mut builder = tar::Builder::new(out);
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = header(0o755, 0);
        header.set_entry_type(tar::EntryType::Directory);
        header.set_cksum();
        builder
            .append_data(&mut header, dir, std::io::empty())
            .map_err(werr)?;
    }
    let mut all = files(image, &encoded, &index);
    all.push(("manifest.json".to_string(), &docker));
    for (rel, data) in all {
        let mut header = header(0o644, data.len() as u64);
        header.set_cksum();
        builder.append_data(&mut header, rel, data).map_err(werr)?;
    }
    builder.into_inner().map_err(werr)?.flush().map_err(werr)?;
    Ok(encoded)
}

fn header(mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::image::{ImageConfig, Platform};
    use crate::oci::layer::{Entry, LayerWriter};
    use std::io::Read;

    fn image() -> Image {
        let mut w = LayerWriter::new();
        w.push(&Entry::dir("./", 0o755, 0)).unwrap();
        Image {
            platform: Platform::from_debian_arch("amd64"),
            config: ImageConfig {
                user: "0".into(),
                env: vec![],
                entrypoint: None,
                cmd: None,
                working_dir: "/".into(),
            },
            layers: vec![w.finish("rootfs").unwrap()],
            annotations: Default::default(),
        }
    }

    #[test]
    fn tar_holds_oci_and_docker_views_of_the_same_blobs() {
        let mut out = Vec::new();
        let enc = write_tar(&mut out, Path::new("x.tar"), &image(), "dlx/t:latest").unwrap();
        let mut names = Vec::new();
        let mut manifest = String::new();
        let mut archive = tar::Archive::new(&out[..]);
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            if name == "manifest.json" {
                e.read_to_string(&mut manifest).unwrap();
            }
            names.push(name);
        }
        assert_eq!(names[0], "blobs/");
        assert_eq!(names[2], "oci-layout");
        assert!(names.contains(&format!("blobs/sha256/{}", hex_of(&enc.config_digest))));
        assert!(names.contains(&"index.json".to_string()));
        assert!(
            manifest.contains(r#""RepoTags":["dlx/t:latest"]"#),
            "{manifest}"
        );
    }

    #[test]
    fn layout_dir_refuses_foreign_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let err = write_dir(dir.path(), &image(), "a:b").unwrap_err();
        assert!(matches!(err, OciError::LayoutNotEmpty { .. }));
    }
}
