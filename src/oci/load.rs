//! Loading an image into the Docker engine: POST the dual OCI + Docker tar to
//! `/images/load` over the unix socket. A small private client; API version 1.41 is
//! pinned because the engines dlx meets can be old (20.10).

use futures_util::StreamExt;

use super::OciError;

/// The engine API version spoken.
const API: bollard::ClientVersion = bollard::ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// Default engine socket, overridden by `DOCKER_HOST=unix://...`.
fn socket() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => host.trim_start_matches("unix://").to_string(),
        _ => "/var/run/docker.sock".to_string(),
    }
}

/// Load `tar` (as written by [`super::layout::write_tar`]) into the engine;
/// `reference` names the image in errors.
pub fn load(tar: Vec<u8>, reference: &str) -> Result<(), OciError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OciError::Runtime)?;
    runtime.block_on(load_async(tar, reference))
}

async fn load_async(tar: Vec<u8>, reference: &str) -> Result<(), OciError> {
    let socket = socket();
    let docker = bollard::Docker::connect_with_unix(&socket, 600, &API).map_err(|source| {
        OciError::EngineConnect {
            socket: socket.clone(),
            source,
        }
    })?;
    let options = bollard::query_parameters::ImportImageOptionsBuilder::new()
        .quiet(true)
        .build();
    let mut stream = docker.import_image(options, bollard::body_full(tar.into()), None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|source| OciError::EngineLoad {
            reference: reference.to_string(),
            source,
        })?;
        if let Some(detail) = info.error_detail {
            return Err(OciError::EngineLoadMessage {
                reference: reference.to_string(),
                message: detail.message.unwrap_or_default(),
            });
        }
        if let Some(text) = info.stream {
            tracing::debug!(output = text.trim(), "engine load");
        }
    }
    Ok(())
}
