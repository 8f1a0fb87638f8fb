//! Reusing compressed layers across builds. Compressing is most of what assembling an
//! image costs, and the same inputs always give the same layer, so a layer once made is
//! kept in the download cache and found again by a key naming its inputs:
//!
//! - a package's layer, by the SHA-256 of the .deb and whether /usr is merged: a hit
//!   skips decompressing the package, writing the tar and compressing it;
//! - any layer, by its diff_id (the SHA-256 of the uncompressed tar): a hit skips the
//!   compression of a generated layer whose tar was just written.
//!
//! Every key also names the assembler: dlx's version, [`FORMAT`], the gzip level, and
//! the running executable (size and modification time), so a rebuilt dlx never reuses
//! layers made by other code. Records are derived cache entries (checked against their
//! own digest); the blobs they name are content-addressed and verified on every read.
//! A cache that cannot be read or written only costs time: the layer is made afresh.

use std::path::Path;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::apt::cache::{Cache, CacheError};
use crate::oci::layer::{sha256_digest, GZIP_LEVEL};
use crate::oci::Layer;

/// Kind (directory) of the layer records in the cache.
const CACHE_KIND: &str = "layer";

/// Bump whenever the same inputs would give other layer bytes: a change to how
/// package entries are read or rewritten, to the tar writer, or to compression.
pub const FORMAT: u32 = 1;

/// The layers cache, over the download cache directory.
#[derive(Debug, Clone)]
pub struct LayerCache {
    cache: Cache,
    assembler: String,
}

/// What a layer is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inputs<'a> {
    /// A package's data tar and status files: the .deb's SHA-256, merged /usr or not.
    Deb { sha256: &'a str, usr_merge: bool },
    /// An uncompressed tar, by its `sha256:` digest (the diff_id).
    Tar { diff_id: &'a str },
}

/// The identity of the code making layers (see the module docs).
fn assembler() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let exe = std::env::current_exe()
            .and_then(std::fs::metadata)
            .map(|m| {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                format!("{}:{mtime}", m.len())
            })
            .unwrap_or_else(|_| "unknown".to_string());
        format!(
            "dlx {} layer format {FORMAT} gzip {GZIP_LEVEL} exe {exe}",
            env!("CARGO_PKG_VERSION")
        )
    })
}

impl LayerCache {
    /// The layer cache in the download cache at `dir`.
    pub fn open(dir: &Path) -> Result<LayerCache, CacheError> {
        Ok(LayerCache::with_cache(Cache::open(dir)?, assembler()))
    }

    fn with_cache(cache: Cache, assembler: &str) -> LayerCache {
        LayerCache {
            cache,
            assembler: assembler.to_string(),
        }
    }

    /// The cache key of a layer made from `inputs`.
    pub fn key(&self, inputs: Inputs<'_>) -> String {
        let text = match inputs {
            Inputs::Deb { sha256, usr_merge } => {
                format!("{}\ndeb {sha256} usr-merge {usr_merge}\n", self.assembler)
            }
            Inputs::Tar { diff_id } => format!("{}\ntar {diff_id}\n", self.assembler),
        };
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    /// The layer made before from `inputs`, labelled `created_by`, when the cache has
    /// it intact.
    pub fn get(&self, inputs: Inputs<'_>, created_by: &str) -> Option<Layer> {
        let key = self.key(inputs);
        let found = self.lookup(&key);
        match found {
            Ok(Some((diff_id, blob))) => {
                if let Inputs::Tar { diff_id: want } = inputs {
                    if want != diff_id {
                        return None;
                    }
                }
                Some(Layer {
                    digest: sha256_digest(&blob),
                    blob,
                    diff_id,
                    created_by: created_by.to_string(),
                })
            }
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(error = %e, "layer cache unreadable, making the layer");
                None
            }
        }
    }

    fn lookup(&self, key: &str) -> Result<Option<(String, Vec<u8>)>, CacheError> {
        let Some(record) = self.cache.derived(CACHE_KIND, key)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&record);
        let mut lines = text.lines();
        let (Some(diff_id), Some(digest), None) = (lines.next(), lines.next(), lines.next()) else {
            self.cache.remove_derived(CACHE_KIND, key)?;
            return Ok(None);
        };
        let hex_of = |d: &str| d.strip_prefix("sha256:").map(str::to_string);
        let (Some(_), Some(blob_sha)) = (hex_of(diff_id), hex_of(digest)) else {
            self.cache.remove_derived(CACHE_KIND, key)?;
            return Ok(None);
        };
        // Verified against its name; a missing or damaged blob is a miss.
        Ok(self
            .cache
            .read(&blob_sha)?
            .map(|blob| (diff_id.to_string(), blob)))
    }

    /// Keep `layer`, made from `inputs`, for later builds.
    pub fn put(&self, inputs: Inputs<'_>, layer: &Layer) {
        let key = self.key(inputs);
        let stored = self.cache.put_derived_blob(&layer.blob).and_then(|_| {
            let record = format!("{}\n{}\n", layer.diff_id, layer.digest);
            self.cache.put_derived(CACHE_KIND, &key, record.as_bytes())
        });
        if let Err(e) = stored {
            tracing::warn!(error = %e, "cannot keep a layer in the cache");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{Entry, LayerWriter};

    fn layer(data: &[u8], created_by: &str) -> Layer {
        let mut w = LayerWriter::new();
        w.push(&Entry::file("./f", 0o644, 0, data.to_vec()))
            .unwrap();
        w.finish(created_by).unwrap()
    }

    #[test]
    fn every_input_changes_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let c = LayerCache::with_cache(cache.clone(), "dlx test 1");
        let deb = |sha256, usr_merge| Inputs::Deb { sha256, usr_merge };
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let keys = [
            c.key(deb(&a, true)),
            c.key(deb(&b, true)),
            c.key(deb(&a, false)),
            c.key(Inputs::Tar {
                diff_id: &format!("sha256:{a}"),
            }),
            LayerCache::with_cache(cache.clone(), "dlx test 2").key(deb(&a, true)),
        ];
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(k.len(), 64);
            assert!(!keys[..i].contains(k), "key {i} repeats");
        }
        assert_eq!(c.key(deb(&a, true)), keys[0], "keys are stable");
        // The running binary is part of the assembler's identity.
        assert!(assembler().contains(" exe ") && !assembler().ends_with("unknown"));
    }

    #[test]
    fn a_kept_layer_comes_back_byte_for_byte_and_damage_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let c = LayerCache::with_cache(cache.clone(), "dlx test");
        let made = layer(b"hello", "first");
        let sha = "c".repeat(64);
        let inputs = Inputs::Deb {
            sha256: &sha,
            usr_merge: true,
        };
        assert!(c.get(inputs, "x").is_none());
        c.put(inputs, &made);
        let back = c.get(inputs, "again").unwrap();
        assert_eq!(
            (&back.blob, &back.digest, &back.diff_id),
            (&made.blob, &made.digest, &made.diff_id)
        );
        assert_eq!(back.created_by, "again");
        // By diff_id, only for the same diff_id.
        let by_tar = Inputs::Tar {
            diff_id: &made.diff_id,
        };
        c.put(by_tar, &made);
        assert_eq!(c.get(by_tar, "t").unwrap().blob, made.blob);
        // Another assembler does not see it.
        assert!(LayerCache::with_cache(cache.clone(), "other")
            .get(inputs, "x")
            .is_none());
        // A damaged blob is a miss (and is removed), not a wrong layer.
        let blob = cache.blob_path(made.digest.trim_start_matches("sha256:"));
        std::fs::write(&blob, b"not gzip").unwrap();
        assert!(c.get(inputs, "x").is_none());
        assert!(!blob.exists());
    }
}
