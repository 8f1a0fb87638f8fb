//! HTTP downloads from the archive: verified-while-streaming fetches into the cache,
//! retries with backoff on transient failures, and bounded parallel fetching of many
//! files with an optional progress bar.
//!
//! A file with a known size and SHA-256 is served from the cache when a verified entry
//! exists; otherwise it streams into a temporary cache file, is checked (size as bytes
//! arrive, digest at the end) and only then renamed into place. A mismatch is never
//! retried: it is reported with the URL and both digests, and the bytes are discarded.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::cache::{Cache, CacheError};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach the debian archive at {url}: {source}\nhint: check the network or the mirror, or pass --mirror URL")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the mirror answered http status {status} for {url}\nhint: check that the mirror carries this suite and architecture, or pass --mirror URL")]
    Status { url: String, status: u16 },
    #[error("download of {url} failed: {source}")]
    Transfer {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("size mismatch for {url}: expected {expected} bytes, got {actual}\nhint: the mirror served a different file than the signed index lists; nothing was kept")]
    Size {
        url: String,
        expected: u64,
        actual: String,
    },
    #[error("sha256 mismatch for {url}: expected {expected}, got {actual}\nhint: the mirror served a corrupted or tampered file; nothing was kept")]
    Digest {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url} is larger than the {limit} bytes allowed")]
    TooLarge { url: String, limit: u64 },
    #[error("cannot start the http client: {source}")]
    Client {
        #[source]
        source: reqwest::Error,
    },
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl FetchError {
    /// Whether trying again could help (network trouble, server overload).
    fn transient(&self) -> bool {
        match self {
            FetchError::Unreachable { .. } | FetchError::Transfer { .. } => true,
            FetchError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }

    /// Whether the archive could not be reached at all (connection or timeout).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, FetchError::Unreachable { .. })
    }
}

/// Attempts per file, and the first backoff delay (doubled each retry).
const ATTEMPTS: u32 = 4;
const BACKOFF: Duration = Duration::from_millis(250);
/// Files fetched at once by [`Fetcher::fetch_many`].
pub const PARALLEL: usize = 8;

/// A file to fetch: URL, expected size and SHA-256.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub url: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    cache: Cache,
}

impl Fetcher {
    pub fn new(cache: Cache) -> Result<Fetcher, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("dlx/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|source| FetchError::Client { source })?;
        Ok(Fetcher { client, cache })
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// GET a small file whole (no digest known in advance), with retries.
    pub async fn bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        retry(url, || async {
            let mut resp = self.get(url).await?;
            let mut out = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|source| FetchError::Transfer {
                url: url.to_string(),
                source,
            })? {
                out.extend_from_slice(&chunk);
                if out.len() as u64 > limit {
                    return Err(FetchError::TooLarge {
                        url: url.to_string(),
                        limit,
                    });
                }
            }
            tracing::debug!(%url, bytes = out.len(), "fetched");
            Ok(out)
        })
        .await
    }

    /// The verified cache path of `want`, downloading it if the cache lacks it.
    pub async fn file(
        &self,
        want: &Wanted,
        bar: Option<&ProgressBar>,
    ) -> Result<std::path::PathBuf, FetchError> {
        if let Some(p) = self.cache.get(&want.sha256, Some(want.size))? {
            if let Some(b) = bar {
                b.inc(want.size);
            }
            return Ok(p);
        }
        let path = retry(&want.url, || self.download(want, bar)).await?;
        match bar {
            Some(b) => b.set_message(want.url.rsplit('/').next().unwrap_or("").to_string()),
            None => tracing::info!(url = %want.url, size = want.size, "fetched"),
        }
        Ok(path)
    }

    async fn download(
        &self,
        want: &Wanted,
        bar: Option<&ProgressBar>,
    ) -> Result<std::path::PathBuf, FetchError> {
        let url = &want.url;
        let mut resp = self.get(url).await?;
        let mut tmp = self.cache.temp()?;
        let size_err = |actual: String| FetchError::Size {
            url: url.clone(),
            expected: want.size,
            actual,
        };
        let streamed = async {
            while let Some(chunk) = resp.chunk().await.map_err(|source| FetchError::Transfer {
                url: url.clone(),
                source,
            })? {
                tmp.write(&chunk)?;
                if let Some(b) = bar {
                    b.inc(chunk.len() as u64);
                }
                if tmp.len() > want.size {
                    return Err(size_err(format!("more than {}", want.size)));
                }
            }
            if tmp.len() != want.size {
                return Err(size_err(tmp.len().to_string()));
            }
            Ok(())
        }
        .await;
        if let Err(e) = streamed {
            // Take back this attempt's progress, so a retry counts from zero.
            if let Some(b) = bar {
                b.set_position(b.position().saturating_sub(tmp.len()));
            }
            return Err(e);
        }
        let actual = tmp.digest();
        if actual != want.sha256 {
            return Err(FetchError::Digest {
                url: url.clone(),
                expected: want.sha256.clone(),
                actual,
            });
        }
        Ok(tmp.commit(&want.sha256)?)
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, FetchError> {
        tracing::debug!(%url, "GET");
        let resp = self.client.get(url).send().await.map_err(|source| {
            if source.is_connect() || source.is_timeout() {
                FetchError::Unreachable {
                    url: url.to_string(),
                    source,
                }
            } else {
                FetchError::Transfer {
                    url: url.to_string(),
                    source,
                }
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        Ok(resp)
    }

    /// Fetch many files, [`PARALLEL`] at a time; paths come back in input order. The first
    /// failure cancels the rest (their temporary files are removed) and is returned.
    pub async fn many(
        &self,
        wants: &[Wanted],
        progress: bool,
    ) -> Result<Vec<std::path::PathBuf>, FetchError> {
        let bar = progress.then(|| {
            let total = wants.iter().map(|w| w.size).sum();
            let b = ProgressBar::new(total);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
            {
                b.set_style(style);
            }
            b
        });
        let sem = Arc::new(Semaphore::new(PARALLEL));
        let mut set = JoinSet::new();
        for (i, want) in wants.iter().cloned().enumerate() {
            let this = self.clone();
            let sem = sem.clone();
            let bar = bar.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await.expect("semaphore never closed");
                this.file(&want, bar.as_ref()).await.map(|p| (i, p))
            });
        }
        let mut out = vec![None; wants.len()];
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(Ok((i, p))) => out[i] = Some(p),
                Ok(Err(e)) => {
                    set.abort_all();
                    while set.join_next().await.is_some() {}
                    if let Some(b) = &bar {
                        b.abandon();
                    }
                    return Err(e);
                }
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            }
        }
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        Ok(out
            .into_iter()
            .map(|p| p.expect("every task reported"))
            .collect())
    }
}

async fn retry<T, F, Fut>(url: &str, mut attempt: F) -> Result<T, FetchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, FetchError>>,
{
    let mut delay = BACKOFF;
    let mut n = 1;
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if e.transient() && n < ATTEMPTS => {
                tracing::debug!(%url, attempt = n, error = %e, "retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                n += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A loopback server answering each request with the next scripted response
    /// (status, body); the last one repeats. Returns the base URL and a request counter.
    fn script(responses: Vec<(u16, Vec<u8>)>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let i = counter
                    .fetch_add(1, Ordering::SeqCst)
                    .min(responses.len() - 1);
                let (status, body) = &responses[i];
                let mut conn = conn;
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(body);
            }
        });
        (url, hits)
    }

    fn want(url: &str, body: &[u8]) -> Wanted {
        Wanted {
            url: format!("{url}/pool/x.deb"),
            size: body.len() as u64,
            sha256: hex::encode(Sha256::digest(body)),
        }
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn blobs(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir.join("sha256")).unwrap().count()
    }

    #[test]
    fn transient_errors_are_retried_then_verified() {
        let body = b"deb contents".to_vec();
        let (url, hits) = script(vec![(503, vec![]), (503, vec![]), (200, body.clone())]);
        let dir = tempfile::tempdir().unwrap();
        let f = Fetcher::new(Cache::open(dir.path()).unwrap()).unwrap();
        let p = run(f.file(&want(&url, &body), None)).unwrap();
        assert_eq!(std::fs::read(p).unwrap(), body);
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        // Served from the cache afterwards: no request.
        run(f.file(&want(&url, &body), None)).unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn not_found_is_not_retried() {
        let (url, hits) = script(vec![(404, vec![])]);
        let dir = tempfile::tempdir().unwrap();
        let f = Fetcher::new(Cache::open(dir.path()).unwrap()).unwrap();
        let e = run(f.file(&want(&url, b"x"), None)).unwrap_err();
        assert!(matches!(e, FetchError::Status { status: 404, .. }), "{e}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn wrong_size_or_digest_keeps_nothing_and_is_not_retried() {
        let body = b"the real deb".to_vec();
        for (served, kind) in [
            (b"the real deb, and more".to_vec(), "size"),
            (b"the real".to_vec(), "size"),
            (b"the fake deb".to_vec(), "sha256"),
        ] {
            let (url, hits) = script(vec![(200, served.clone())]);
            let dir = tempfile::tempdir().unwrap();
            let f = Fetcher::new(Cache::open(dir.path()).unwrap()).unwrap();
            let w = want(&url, &body);
            let e = run(f.file(&w, None)).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("{kind} mismatch for {}", w.url)),
                "{msg}"
            );
            if kind == "sha256" {
                assert!(msg.contains(&w.sha256), "{msg}");
                assert!(msg.contains(&hex::encode(Sha256::digest(&served))), "{msg}");
            }
            assert_eq!(hits.load(Ordering::SeqCst), 1, "{kind}: not retried");
            assert_eq!(blobs(dir.path()), 0, "{kind}: nothing kept, no temp file");
        }
    }

    #[test]
    fn many_returns_paths_in_input_order_and_stops_at_the_first_failure() {
        let bodies: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("deb number {i}").into_bytes())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let f = Fetcher::new(Cache::open(dir.path()).unwrap()).unwrap();
        let wants: Vec<Wanted> = bodies
            .iter()
            .map(|b| want(&script(vec![(200, b.clone())]).0, b))
            .collect();
        let paths = run(f.many(&wants, false)).unwrap();
        for (p, b) in paths.iter().zip(&bodies) {
            assert_eq!(&std::fs::read(p).unwrap(), b);
        }
        let mut bad = wants.clone();
        bad[7].sha256 = "0".repeat(64);
        bad[7].url = script(vec![(200, bodies[0].clone())]).0;
        bad[7].size = bodies[0].len() as u64;
        let dir2 = tempfile::tempdir().unwrap();
        let f2 = Fetcher::new(Cache::open(dir2.path()).unwrap()).unwrap();
        let e = run(f2.many(&bad, false)).unwrap_err();
        assert!(matches!(e, FetchError::Digest { .. }), "{e}");
        for entry in std::fs::read_dir(dir2.path().join("sha256")).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "temporary file left: {name}");
        }
    }
}
