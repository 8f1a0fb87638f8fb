//! OCI images: deterministic layers ([`layer`]), the config/manifest/index JSON
//! ([`image`]), writing an image layout directory or a dual OCI + Docker tar
//! ([`layout`]), and loading that tar into the Docker engine ([`load`]).

pub mod image;
pub mod layer;
pub mod layout;
pub mod load;
pub mod push;

use std::path::PathBuf;

pub use image::{Image, ImageConfig, Platform};
pub use layer::{Entry, Kind, Layer, LayerWriter};

/// Errors while producing or writing an image.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("layer has two entries for {path}")]
    DuplicateEntry { path: String },
    #[error("cannot write tar entry {path}: {reason}")]
    TarEntry { path: String, reason: String },
    #[error("failed to compress a layer")]
    Compress(#[source] std::io::Error),
    #[error("failed to encode image json")]
    Json(#[source] serde_json::Error),
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} exists and is not an empty directory or an oci image layout\nhint: choose a new directory for --output oci:DIR")]
    LayoutNotEmpty { path: PathBuf },
    #[error("failed to connect to the docker engine at {socket}\nhint: is the docker daemon running and is the socket readable?")]
    EngineConnect {
        socket: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("docker engine refused to load image {reference}")]
    EngineLoad {
        reference: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("docker engine failed to load image {reference}: {message}")]
    EngineLoadMessage { reference: String, message: String },
    #[error("failed to start the async runtime for the engine client")]
    Runtime(#[source] std::io::Error),
}
