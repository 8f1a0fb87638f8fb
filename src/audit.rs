//! The audit log: one JSON line per `dlx exec` session, appended to a file that is
//! never truncated (default [`DEFAULT_PATH`], `--audit-log FILE` to change).
//!
//! A session is recorded whether it ran or failed to start: an attempt to enter a
//! container is worth a line too (its `error` says why it ended). The line is written
//! with one `write(2)` on an `O_APPEND` descriptor, so sessions ending at the same
//! time never interleave. Failing to write it never changes the session's exit
//! status; dlx warns on stderr instead.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::exit::ExitStatus;
use crate::ns::Join;
use crate::sys::{self, SysError};
use crate::target::Resolved;

/// Where sessions are recorded unless `--audit-log` says otherwise.
pub const DEFAULT_PATH: &str = "/var/log/dlx/audit.jsonl";

/// One session, as one line of the log. Fields appear in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// When the session started, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// The real uid dlx ran as.
    pub operator_uid: u32,
    /// The audit login uid (who logged in, across sudo); `null` when unset.
    pub login_uid: Option<u32>,
    /// The host's name.
    pub host: String,
    /// What resolved the target: the engine (`docker`, `podman`, `containerd`), or
    /// `pid` for `pid:N`, `none` when the host's cgroups found it.
    pub engine: String,
    /// What the operator named.
    pub target: String,
    pub container_id: Option<String>,
    pub container_name: Option<String>,
    pub image: Option<String>,
    /// The target's host PID.
    pub pid: Option<i32>,
    /// The namespaces joined, by kind, with the inode of each.
    pub namespaces: BTreeMap<String, u64>,
    /// The command run in the container.
    pub argv: Vec<String>,
    /// dlx's exit status for the session.
    pub exit_status: u8,
    pub duration_ms: u64,
    /// Why dlx itself failed, when it did.
    pub error: Option<String>,
    /// `--forensic`: where the session's output was kept.
    pub transcript: Option<String>,
}

impl Record {
    /// The record as one line: compact JSON (newlines inside strings are escaped)
    /// and a final newline.
    pub fn line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// A session being recorded: filled in as the pipeline learns things, written once
/// at the end by [`Session::finish`].
#[derive(Debug)]
pub struct Session {
    path: PathBuf,
    started: Instant,
    record: Record,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot create the audit log directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot append to the audit log: {0}")]
    Write(#[from] SysError),
}

impl Session {
    /// Start recording a session of `argv` in `target`, to be appended to `path`.
    pub fn begin(path: &Path, target: &str, argv: &[String]) -> Session {
        Session {
            path: path.to_path_buf(),
            started: Instant::now(),
            record: Record {
                time: rfc3339_utc(SystemTime::now()),
                operator_uid: nix::unistd::getuid().as_raw(),
                login_uid: login_uid(),
                host: nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                engine: "none".into(),
                target: target.to_string(),
                container_id: None,
                container_name: None,
                image: None,
                pid: None,
                namespaces: BTreeMap::new(),
                argv: argv.to_vec(),
                exit_status: ExitStatus::Error.code(),
                duration_ms: 0,
                error: None,
                transcript: None,
            },
        }
    }

    /// Where a forensic session's transcript goes: `transcripts/` beside the audit
    /// log, named by the session's start time and dlx's pid.
    pub fn transcript_path(&self) -> PathBuf {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let stamp: String = self
            .record
            .time
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        dir.join("transcripts")
            .join(format!("{stamp}-{}.log", std::process::id()))
    }

    /// The session's output is kept at `path`.
    pub fn transcript(&mut self, path: &Path) {
        self.record.transcript = Some(path.display().to_string());
    }

    /// The target was resolved.
    pub fn resolved(&mut self, resolved: &Resolved) {
        let r = &mut self.record;
        r.pid = Some(resolved.pid);
        r.engine = resolved.via.name().into();
        if let Some(c) = &resolved.container {
            r.container_id = Some(c.id.clone());
            r.container_name = Some(c.name.clone());
            r.image = Some(c.image.clone());
        }
    }

    /// The namespaces the session joins.
    pub fn joined(&mut self, joins: &[Join]) {
        self.record.namespaces = joins
            .iter()
            .map(|j| (j.kind.name().to_string(), j.target.1))
            .collect();
    }

    /// The record as it stands when the session ended with `result`.
    pub fn record(&self, result: &anyhow::Result<ExitStatus>, elapsed: Duration) -> Record {
        let mut record = self.record.clone();
        record.duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(status) => record.exit_status = status.code(),
            Err(err) => {
                record.exit_status = ExitStatus::Error.code();
                record.error = Some(one_line(err));
            }
        }
        record
    }

    /// Append the record of the session that ended with `result`. A failure is
    /// reported on stderr and otherwise ignored: the command's status comes first.
    pub fn finish(self, result: &anyhow::Result<ExitStatus>) {
        let record = self.record(result, self.started.elapsed());
        if let Err(e) = append(&self.path, &record) {
            crate::output::notice(format!(
                "warning: this session is not in the audit log: {e}\nhint: pass --audit-log FILE with a writable file"
            ));
        }
    }
}

/// Append `record` to the log at `path`, creating the log's directory (0700) and the
/// log itself (0600) when missing.
pub fn append(path: &Path, record: &Record) -> Result<(), AuditError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| AuditError::Dir {
                    path: dir.display().to_string(),
                    source,
                })?;
        }
    }
    let fd = sys::open_append(path)?;
    sys::write_once(fd.as_fd(), &record.line(), &path.display().to_string())?;
    Ok(())
}

/// The audit login uid of this process, when one is set.
fn login_uid() -> Option<u32> {
    let raw = sys::read_file("/proc/self/loginuid", 64).ok()?;
    let uid: u32 = String::from_utf8_lossy(&raw).trim().parse().ok()?;
    (uid != u32::MAX).then_some(uid)
}

/// An error chain on one line, hints left out: `a: b: c`.
fn one_line(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let body = crate::output::without_hint(cause);
        let body = body.trim();
        if body.is_empty() || text.ends_with(body) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(body);
    }
    text
}

/// `time` as RFC 3339 in UTC with milliseconds, e.g. `2024-02-29T23:59:59.250Z`.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after Howard
/// Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeEngine;
    use crate::ns::NsKind;

    fn session() -> Session {
        let mut s = Session::begin(
            Path::new("/nonexistent"),
            "web",
            &["ls".into(), "-l".into()],
        );
        s.resolved(&Resolved {
            pid: 4242,
            container: Some(FakeEngine::container("web", "abcdef0123456789", 4242)),
            via: crate::target::Via::Engine(crate::engine::EngineKind::Docker),
        });
        s.joined(&[
            Join {
                kind: NsKind::Mnt,
                target: (4, 4026532001),
            },
            Join {
                kind: NsKind::Net,
                target: (4, 4026532005),
            },
        ]);
        s
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_millis(s * 1000 + ms);
        assert_eq!(rfc3339_utc(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_utc(at(951_868_799, 250)),
            "2000-02-29T23:59:59.250Z"
        );
        assert_eq!(
            rfc3339_utc(at(1_709_251_200, 7)),
            "2024-03-01T00:00:00.007Z"
        );
        assert_eq!(
            rfc3339_utc(at(4_102_444_799, 999)),
            "2099-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn a_finished_session_records_every_field() {
        let r = session().record(&Ok(ExitStatus::exited(3)), Duration::from_millis(1500));
        let v: serde_json::Value = serde_json::from_slice(&r.line()).unwrap();
        assert_eq!(v["engine"], "docker");
        assert_eq!(v["target"], "web");
        assert_eq!(v["container_id"], "abcdef0123456789");
        assert_eq!(v["container_name"], "web");
        assert_eq!(v["image"], "probe:1");
        assert_eq!(v["pid"], 4242);
        assert_eq!(v["namespaces"]["mnt"], 4026532001u64);
        assert_eq!(v["namespaces"]["net"], 4026532005u64);
        assert_eq!(v["argv"], serde_json::json!(["ls", "-l"]));
        assert_eq!(v["exit_status"], 3);
        assert_eq!(v["duration_ms"], 1500);
        assert_eq!(v["error"], serde_json::Value::Null);
        assert_eq!(v["operator_uid"], nix::unistd::getuid().as_raw());
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 16, "{keys:?}");
        assert_eq!(v["transcript"], serde_json::Value::Null);
    }

    #[test]
    fn a_failed_session_records_why_on_one_line() {
        let err = anyhow::anyhow!("container web is paused\nhint: `docker unpause web`")
            .context("cannot enter container web");
        let r = session().record(&Err(err), Duration::ZERO);
        assert_eq!(r.exit_status, 125);
        assert_eq!(
            r.error.as_deref(),
            Some("cannot enter container web: container web is paused")
        );
        let line = r.line();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(line.ends_with(b"\n"));
    }

    #[test]
    fn lines_are_appended_never_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.jsonl");
        let r = session().record(&Ok(ExitStatus::Success), Duration::ZERO);
        append(&path, &r).unwrap();
        append(&path, &r).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn a_symlinked_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, "").unwrap();
        let link = dir.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let r = session().record(&Ok(ExitStatus::Success), Duration::ZERO);
        assert!(append(&link, &r).is_err());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "");
    }
}
