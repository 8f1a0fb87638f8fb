//! A unary gRPC call over HTTP/2 on a unix socket, by hand: what containerd's API
//! needs and nothing more (no TLS, no streaming, no compression).
//!
//! A call is a POST of `/<package>.<Service>/<Method>` with `content-type:
//! application/grpc`, `te: trailers` and containerd's namespace in the
//! `containerd-namespace` metadata header; the body is one length-prefixed message
//! (1 byte "compressed" = 0, 4 bytes big-endian length, the protobuf). The answer is
//! one such message, then trailers carrying `grpc-status` (0 = OK) and
//! `grpc-message`; an error without a body may put both in the headers instead.

use std::path::Path;

use bytes::Bytes;
use h2::client::SendRequest;

/// The largest answer dlx accepts (a `List` on a busy node is a few MiB).
const MAX_MESSAGE: usize = 64 << 20;

/// gRPC status codes dlx tells apart.
pub const NOT_FOUND: u32 = 5;
pub const PERMISSION_DENIED: u32 = 7;

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The connection failed or broke.
    #[error("{0}")]
    Transport(String),
    /// The server answered with a non-OK status.
    #[error("status {code}: {message}")]
    Status { code: u32, message: String },
    /// The answer did not follow the protocol.
    #[error("malformed answer: {0}")]
    Malformed(String),
}

impl From<h2::Error> for GrpcError {
    fn from(e: h2::Error) -> Self {
        GrpcError::Transport(e.to_string())
    }
}

/// Open an HTTP/2 connection on the unix socket `path` (prior knowledge, no
/// upgrade). The connection's driver runs as a task on the current runtime and ends
/// with it.
pub async fn connect(path: &Path) -> Result<SendRequest<Bytes>, GrpcError> {
    let io = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| GrpcError::Transport(e.to_string()))?;
    let (send, connection) = h2::client::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "containerd connection ended");
        }
    });
    Ok(send)
}

/// Call `method` (`/package.Service/Method`) in containerd namespace `namespace`
/// with the encoded request `message`; the encoded answer.
pub async fn unary(
    send: &SendRequest<Bytes>,
    method: &str,
    namespace: &str,
    message: &[u8],
) -> Result<Vec<u8>, GrpcError> {
    let mut send = send.clone().ready().await?;
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("http://containerd{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("containerd-namespace", namespace)
        .body(())
        .map_err(|e| GrpcError::Malformed(e.to_string()))?;
    let (response, mut body) = send.send_request(request, false)?;
    body.send_data(Bytes::from(frame(message)), true)?;

    let response = response.await?;
    let (parts, mut recv) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        return Err(GrpcError::Malformed(format!(
            "HTTP status {}",
            parts.status
        )));
    }
    // "Trailers-only": an error answer may carry its status in the headers.
    if let Some(status) = status_of(&parts.headers) {
        status?;
    }
    let mut data = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        if data.len() + chunk.len() > MAX_MESSAGE + 5 {
            return Err(GrpcError::Malformed("answer larger than 64 MiB".into()));
        }
        data.extend_from_slice(&chunk);
    }
    let trailers = recv.trailers().await?.unwrap_or_default();
    match status_of(&trailers) {
        Some(status) => status?,
        None => return Err(GrpcError::Malformed("no grpc-status".into())),
    }
    unframe(&data)
}

/// The request body: one uncompressed length-prefixed message.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(message);
    out
}

/// The one message of an answer body.
fn unframe(data: &[u8]) -> Result<Vec<u8>, GrpcError> {
    let malformed = |what: &str| GrpcError::Malformed(what.to_string());
    if data.len() < 5 {
        return Err(malformed("answer shorter than its frame header"));
    }
    if data[0] != 0 {
        return Err(malformed("compressed answer (dlx asked for none)"));
    }
    let len = u32::from_be_bytes(data[1..5].try_into().expect("4 bytes")) as usize;
    data.get(5..5 + len)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| malformed("answer shorter than its frame length"))
}

/// `grpc-status` and `grpc-message` of a header block, if it has a status.
fn status_of(headers: &http::HeaderMap) -> Option<Result<(), GrpcError>> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<u32>()
        .ok()?;
    if code == 0 {
        return Some(Ok(()));
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    Some(Err(GrpcError::Status { code, message }))
}

/// `grpc-message` is percent-encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'%', Some(b)) = (bytes[i], hex) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let f = frame(b"\x0a\x02ab");
        assert_eq!(f, b"\0\0\0\0\x04\x0a\x02ab");
        assert_eq!(unframe(&f).unwrap(), b"\x0a\x02ab");
        assert!(unframe(&f[..6]).is_err());
        assert!(unframe(b"\x01\0\0\0\0").is_err());
    }

    #[test]
    fn status_comes_from_headers_or_trailers() {
        let mut h = http::HeaderMap::new();
        assert!(status_of(&h).is_none());
        h.insert("grpc-status", "0".parse().unwrap());
        assert!(matches!(status_of(&h), Some(Ok(()))));
        h.insert("grpc-status", "5".parse().unwrap());
        h.insert(
            "grpc-message",
            "container \"x\" in namespace \"moby\": not found%0A"
                .parse()
                .unwrap(),
        );
        match status_of(&h) {
            Some(Err(GrpcError::Status { code, message })) => {
                assert_eq!(code, NOT_FOUND);
                assert_eq!(
                    message,
                    "container \"x\" in namespace \"moby\": not found\n"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("é%zz%41"), "é%zzA");
    }
}
