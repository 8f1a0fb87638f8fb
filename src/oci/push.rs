//! Pushing an image to a registry with the OCI distribution API: for each blob
//! HEAD (skip if present), else POST an upload and PUT it monolithically with its
//! digest; then PUT the manifest under the tag. Plain HTTP is used for loopback
//! registries (`localhost`, `127.0.0.1`, `[::1]`), HTTPS otherwise. Registries
//! that require authentication are not supported.

use super::image::{Encoded, Image, MEDIA_MANIFEST};

/// Errors while pushing; each names the reference and what was being sent.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("invalid push reference {reference}\nhint: use HOST[:PORT]/NAME[:TAG], e.g. 127.0.0.1:5000/app:latest")]
    Reference { reference: String },
    #[error("failed to reach registry {url}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("registry refused {what} for {reference}: HTTP {status}{body}")]
    Status {
        what: String,
        reference: String,
        status: u16,
        body: String,
    },
    #[error("registry requires authentication for {reference}\nhint: dlx cannot log in to registries yet; push the --output tar with skopeo")]
    Unauthorized { reference: String },
    #[error("registry gave no upload location for {reference}")]
    NoLocation { reference: String },
    #[error("failed to start the async runtime for the push")]
    Runtime(#[source] std::io::Error),
}

/// A parsed `HOST[:PORT]/NAME[:TAG]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub registry: String,
    pub name: String,
    pub tag: String,
}

impl Target {
    pub fn parse(reference: &str) -> Result<Target, PushError> {
        let bad = || PushError::Reference {
            reference: reference.to_string(),
        };
        let (registry, rest) = reference.split_once('/').ok_or_else(bad)?;
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(bad());
        }
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (rest, "latest"),
        };
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b));
        let valid_tag = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid_name || !valid_tag {
            return Err(bad());
        }
        Ok(Target {
            registry: registry.to_string(),
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }

    fn base(&self) -> String {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, _)| h);
        let scheme = if matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/{}", self.registry, self.name)
    }

    fn reference(&self) -> String {
        format!("{}/{}:{}", self.registry, self.name, self.tag)
    }
}

/// Push `image` (already encoded as `encoded`) to `target`; returns
/// `HOST/NAME:TAG@sha256:<manifest digest>`.
pub fn push(image: &Image, encoded: &Encoded, target: &Target) -> Result<String, PushError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PushError::Runtime)?;
    runtime.block_on(push_async(image, encoded, target))
}

async fn push_async(
    image: &Image,
    encoded: &Encoded,
    target: &Target,
) -> Result<String, PushError> {
    let client = reqwest::Client::new();
    let base = target.base();
    let reference = target.reference();
    let mut blobs: Vec<(&str, &[u8])> = image
        .layers
        .iter()
        .map(|l| (l.digest.as_str(), l.blob.as_slice()))
        .collect();
    blobs.push((&encoded.config_digest, &encoded.config));
    for (digest, data) in blobs {
        let url = format!("{base}/blobs/{digest}");
        let head = send(client.head(&url), &url).await?;
        if head.status().is_success() {
            continue;
        }
        check(
            head.status().as_u16(),
            &reference,
            "",
            &format!("blob check {digest}"),
            404,
        )?;
        let start = format!("{base}/blobs/uploads/");
        let started = send(client.post(&start).header("content-length", "0"), &start).await?;
        let status = started.status().as_u16();
        if status != 202 {
            let body = started.text().await.unwrap_or_default();
            return Err(error(status, &reference, &body, "upload start"));
        }
        let location = started
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| PushError::NoLocation {
                reference: reference.clone(),
            })?
            .to_string();
        let location = if location.starts_with('/') {
            let origin = base.split("/v2/").next().unwrap_or(&base);
            format!("{origin}{location}")
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{sep}digest={digest}");
        let put = client
            .put(&put_url)
            .header("content-type", "application/octet-stream")
            .body(data.to_vec());
        let done = send(put, &put_url).await?;
        let status = done.status().as_u16();
        if status != 201 {
            let body = done.text().await.unwrap_or_default();
            return Err(error(status, &reference, &body, &format!("blob {digest}")));
        }
    }
    let url = format!("{base}/manifests/{}", target.tag);
    let put = client
        .put(&url)
        .header("content-type", MEDIA_MANIFEST)
        .body(encoded.manifest.clone());
    let done = send(put, &url).await?;
    let status = done.status().as_u16();
    if status != 201 {
        let body = done.text().await.unwrap_or_default();
        return Err(error(status, &reference, &body, "the manifest"));
    }
    Ok(format!("{reference}@{}", encoded.manifest_digest))
}

async fn send(request: reqwest::RequestBuilder, url: &str) -> Result<reqwest::Response, PushError> {
    request.send().await.map_err(|source| PushError::Http {
        url: url.to_string(),
        source,
    })
}

fn check(status: u16, reference: &str, body: &str, what: &str, ok: u16) -> Result<(), PushError> {
    if status == ok {
        Ok(())
    } else {
        Err(error(status, reference, body, what))
    }
}

fn error(status: u16, reference: &str, body: &str, what: &str) -> PushError {
    if status == 401 || status == 403 {
        return PushError::Unauthorized {
            reference: reference.to_string(),
        };
    }
    let body = body.trim();
    PushError::Status {
        what: what.to_string(),
        reference: reference.to_string(),
        status,
        body: if body.is_empty() {
            String::new()
        } else {
            format!(": {}", body.chars().take(300).collect::<String>())
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let t = Target::parse("127.0.0.1:5000/team/app:v1").unwrap();
        assert_eq!(
            (t.registry.as_str(), t.name.as_str(), t.tag.as_str()),
            ("127.0.0.1:5000", "team/app", "v1")
        );
        assert_eq!(t.base(), "http://127.0.0.1:5000/v2/team/app");
        let t = Target::parse("registry.example.com/app").unwrap();
        assert_eq!(t.tag, "latest");
        assert_eq!(t.base(), "https://registry.example.com/v2/app");
        assert!(Target::parse("app:latest").is_err());
        assert!(Target::parse("localhost:5000/App").is_err());
    }
}
