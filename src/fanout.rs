//! Fan-out: one command in many containers at once (`dlx exec --filter … -- CMD`).
//!
//! The engine lists the matching running containers; then each container gets its
//! own `dlx exec <id> -- CMD` child process (dlx's own binary again), so every
//! session goes through the whole privileged sequence, pinned and audited, exactly
//! as a single one does. At most [`parallelism`] run at a time. Their output lines
//! are prefixed `name | ` (stdout to stdout, stderr to stderr); the exit status is
//! the worst of them, and one summary line per container closes the run on stderr.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::cli::ExecArgs;
use crate::engine::Filter;

/// What a fan-out runs, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutSettings {
    /// Empty with `--all`.
    pub filters: Vec<Filter>,
    /// The command, as the operator gave it.
    pub command: Vec<String>,
    pub docker_host: Option<String>,
    pub api_version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("invalid filter {0:?}\nhint: use label=KEY[=VALUE], name=PART or image=IMAGE")]
    BadFilter(String),
    #[error("-t cannot be used with --filter or --all: many containers cannot share one terminal\nhint: drop -t; each output line is prefixed with its container's name")]
    Tty,
    #[error("-i cannot be used with --filter or --all: one input cannot feed many containers\nhint: drop -i; the commands read an empty stdin")]
    Interactive,
    #[error(
        "no command given\nhint: say what to run, e.g. `dlx exec --filter label=app=web -- ls /`"
    )]
    NoCommand,
    #[error("--filter and --all take no TARGET\nhint: put the command after `--`, e.g. `dlx exec --filter label=app=web -- ls /`")]
    Target,
    #[error("no running container matches {0}\nhint: `docker ps` lists the running containers (`docker ps --filter` takes the same filters)")]
    NoMatch(String),
}

impl FanoutSettings {
    /// Resolve the fan-out flags of `args`, reading dlx's environment through `env`.
    pub fn resolve(
        args: &ExecArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, FanoutError> {
        if args.tty {
            return Err(FanoutError::Tty);
        }
        if args.interactive {
            return Err(FanoutError::Interactive);
        }
        // With no TARGET, clap hands the command's first word to the TARGET slot.
        let command: Vec<String> = args.target.iter().chain(&args.command).cloned().collect();
        if command.is_empty() {
            return Err(FanoutError::NoCommand);
        }
        let filters = args
            .fanout
            .filter
            .iter()
            .map(|f| parse_filter(f))
            .collect::<Result<_, _>>()?;
        Ok(FanoutSettings {
            filters,
            command,
            docker_host: env("DOCKER_HOST"),
            api_version: env("DOCKER_API_VERSION"),
        })
    }

    /// How the selection reads in messages: `--filter label=app=web` or `--all`.
    pub fn selection(&self) -> String {
        if self.filters.is_empty() {
            return "--all".into();
        }
        self.filters
            .iter()
            .map(|f| match f {
                Filter::Label(v) => format!("--filter label={v}"),
                Filter::Name(v) => format!("--filter name={v}"),
                Filter::Image(v) => format!("--filter image={v}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Parse one `--filter KEY=VALUE`.
pub fn parse_filter(text: &str) -> Result<Filter, FanoutError> {
    let bad = || FanoutError::BadFilter(text.to_string());
    let (key, value) = text.split_once('=').ok_or_else(bad)?;
    if value.is_empty() || value.starts_with('=') {
        return Err(bad());
    }
    match key {
        "label" => Ok(Filter::Label(value.to_string())),
        "name" => Ok(Filter::Name(value.to_string())),
        "image" | "ancestor" => Ok(Filter::Image(value.to_string())),
        _ => Err(bad()),
    }
}

/// The arguments of one container's `dlx exec` child: dlx's own arguments (`argv`,
/// without the program name) minus the fan-out flags, then `ID -- CMD...`. Every
/// other flag (`-u`, `-e`, `--ns`, `--audit-log`, global ones) carries over as given.
///
/// `command` is the command as parsed; it must be the tail of `argv` (clap takes the
/// command verbatim to the end), which also proves no TARGET was given.
pub fn child_argv(
    argv: &[OsString],
    command: &[String],
    id: &str,
) -> Result<Vec<OsString>, FanoutError> {
    let split = argv
        .len()
        .checked_sub(command.len())
        .ok_or(FanoutError::Target)?;
    let (head, tail) = argv.split_at(split);
    if !tail.iter().zip(command).all(|(a, c)| a == OsStr::new(c)) {
        return Err(FanoutError::Target);
    }
    let head = match head.split_last() {
        Some((last, rest)) if last == "--" => rest,
        _ => head,
    };
    let mut out = Vec::with_capacity(argv.len() + 2);
    let mut items = head.iter();
    while let Some(arg) = items.next() {
        let text = arg.to_string_lossy();
        if text == "--all" || text.starts_with("--filter=") {
            continue;
        }
        if text == "--filter" {
            items.next();
            continue;
        }
        out.push(arg.clone());
    }
    out.push(id.into());
    out.push("--".into());
    out.extend(command.iter().map(OsString::from));
    Ok(out)
}

/// How many sessions run at once: four per CPU (they mostly wait).
pub fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 4
}

/// Run `job` on every item, at most `limit` at a time, and return the results in the
/// order of `items`.
pub fn run_bounded<T: Sync, R: Send>(
    items: &[T],
    limit: usize,
    job: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<R>> = Vec::new();
    results.resize_with(items.len(), || None);
    let slots = std::sync::Mutex::new(results);
    std::thread::scope(|scope| {
        for _ in 0..limit.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = job(item);
                slots.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    slots
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// Copy `input` to `out` line by line, each line prefixed `name | `, each written
/// whole under the lock so lines of different containers never mix. A last line
/// without a newline gets one.
pub fn relay_lines<W: Write>(
    name: &str,
    input: impl std::io::Read,
    out: impl Fn() -> W,
) -> std::io::Result<()> {
    let mut reader = std::io::BufReader::new(input);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        let mut prefixed = Vec::with_capacity(name.len() + 3 + line.len());
        prefixed.extend_from_slice(name.as_bytes());
        prefixed.extend_from_slice(b" | ");
        prefixed.extend_from_slice(&line);
        let mut w = out();
        w.write_all(&prefixed)?;
        w.flush()?;
    }
}

/// How one container's session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub name: String,
    /// Its `dlx exec` exit code (125 when it could not even start).
    pub code: u8,
    pub took: Duration,
}

/// The worst status: any failure beats success, and the larger code the smaller.
pub fn worst(ended: &[Ended]) -> u8 {
    ended.iter().map(|e| e.code).max().unwrap_or(0)
}

/// One summary line per container, names aligned: `web-1  exit 3  12 ms`.
pub fn summary(ended: &[Ended]) -> Vec<String> {
    let width = ended.iter().map(|e| e.name.len()).max().unwrap_or(0);
    ended
        .iter()
        .map(|e| {
            let status = match e.code {
                0 => "ok".to_string(),
                code => format!("exit {code}"),
            };
            format!("{:<width$}  {status:<8} {} ms", e.name, e.took.as_millis())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(argv: &[&str]) -> ExecArgs {
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        let crate::cli::Command::Exec(args) = cli.command else {
            panic!("not exec")
        };
        args
    }

    fn os(items: &[&str]) -> Vec<OsString> {
        items.iter().map(OsString::from).collect()
    }

    #[test]
    fn filters_parse_with_docker_meaning() {
        assert_eq!(
            parse_filter("label=app=web").unwrap(),
            Filter::Label("app=web".into())
        );
        assert_eq!(
            parse_filter("label=tier").unwrap(),
            Filter::Label("tier".into())
        );
        assert_eq!(
            parse_filter("name=web").unwrap(),
            Filter::Name("web".into())
        );
        assert_eq!(
            parse_filter("image=nginx:1").unwrap(),
            Filter::Image("nginx:1".into())
        );
        for bad in ["label", "label=", "status=running", "=x"] {
            let err = parse_filter(bad).unwrap_err().to_string();
            assert!(err.contains("hint:"), "{bad}: {err}");
        }
    }

    #[test]
    fn fan_out_needs_no_target_and_takes_the_command() {
        let a = args(&[
            "dlx",
            "exec",
            "--filter",
            "label=a=b",
            "--filter",
            "name=w",
            "--",
            "ls",
            "-l",
        ]);
        assert!(a.fanout.requested());
        let s = FanoutSettings::resolve(&a, |_| None).unwrap();
        assert_eq!(s.command, vec!["ls", "-l"]);
        assert_eq!(s.selection(), "--filter label=a=b --filter name=w");
        let a = args(&["dlx", "exec", "--all", "--", "true"]);
        assert_eq!(
            FanoutSettings::resolve(&a, |_| None).unwrap().selection(),
            "--all"
        );
    }

    #[test]
    fn only_running_containers_matching_every_filter_are_listed() {
        use crate::engine::fake::FakeEngine;
        use crate::engine::{Engine, RunState};
        let mut paused = FakeEngine::container("web-paused", "cccc", 3);
        paused.state = RunState::Paused;
        let mut other_image = FakeEngine::container("web-2", "bbbb", 2);
        other_image.image = "nginx:1".into();
        let engine = FakeEngine::new(vec![
            FakeEngine::container("web-1", "aaaa", 1),
            other_image,
            paused,
            FakeEngine::container("db", "dddd", 4),
        ])
        .label("aaaa", "app=web")
        .label("bbbb", "app=web")
        .label("cccc", "app=web");
        let names = |filters: &[&str]| {
            let filters: Vec<Filter> = filters.iter().map(|f| parse_filter(f).unwrap()).collect();
            engine
                .list(&filters)
                .unwrap()
                .into_iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&["label=app=web"]), ["web-1", "web-2"]);
        assert_eq!(names(&["label=app"]), ["web-1", "web-2"]);
        assert_eq!(names(&["label=app=web", "image=nginx:1"]), ["web-2"]);
        assert_eq!(names(&["name=web"]), ["web-1", "web-2"]);
        assert_eq!(names(&[]), ["db", "web-1", "web-2"]);
        assert!(names(&["label=app=db"]).is_empty());
    }

    #[test]
    fn tty_and_stdin_are_refused() {
        let a = args(&["dlx", "exec", "-t", "--all", "--", "sh"]);
        let err = FanoutSettings::resolve(&a, |_| None).unwrap_err();
        assert!(matches!(err, FanoutError::Tty));
        assert!(err.to_string().contains("hint: drop -t"));
        let a = args(&["dlx", "exec", "-i", "--all", "--", "sh"]);
        assert!(matches!(
            FanoutSettings::resolve(&a, |_| None),
            Err(FanoutError::Interactive)
        ));
    }

    #[test]
    fn children_keep_every_flag_but_the_selection() {
        let argv = os(&[
            "-q",
            "exec",
            "-u",
            "0",
            "--filter",
            "label=app=web",
            "--all",
            "--filter=name=x",
            "-e",
            "A=1",
            "--audit-log",
            "/tmp/a",
            "--",
            "ls",
            "-l",
        ]);
        let out = child_argv(&argv, &["ls".into(), "-l".into()], "abc123").unwrap();
        assert_eq!(
            out,
            os(&[
                "-q",
                "exec",
                "-u",
                "0",
                "-e",
                "A=1",
                "--audit-log",
                "/tmp/a",
                "abc123",
                "--",
                "ls",
                "-l"
            ])
        );
        // Without `--` too.
        let argv = os(&["exec", "--all", "true"]);
        assert_eq!(
            child_argv(&argv, &["true".into()], "id").unwrap(),
            os(&["exec", "id", "--", "true"])
        );
    }

    #[test]
    fn a_target_beside_a_filter_is_refused() {
        // `dlx exec --all web -- ls`: clap takes `web` as TARGET and `ls` as CMD.
        let argv = os(&["exec", "--all", "web", "--", "ls"]);
        assert!(matches!(
            child_argv(&argv, &["web".into(), "ls".into()], "id"),
            Err(FanoutError::Target)
        ));
    }

    #[test]
    fn at_most_limit_jobs_run_at_once_and_results_keep_order() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let items: Vec<usize> = (0..20).collect();
        let out = run_bounded(&items, 3, |&i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert!(run_bounded(&Vec::<u8>::new(), 4, |_| 0).is_empty());
    }

    #[test]
    fn lines_are_prefixed_whole() {
        let buf = std::sync::Mutex::new(Vec::new());
        struct W<'a>(&'a std::sync::Mutex<Vec<u8>>);
        impl Write for W<'_> {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        relay_lines("web-1", &b"one\ntwo\nlast"[..], || W(&buf)).unwrap();
        assert_eq!(
            String::from_utf8(buf.into_inner().unwrap()).unwrap(),
            "web-1 | one\nweb-1 | two\nweb-1 | last\n"
        );
    }

    #[test]
    fn the_worst_status_wins_and_every_container_is_summed_up() {
        let e = |name: &str, code, ms| Ended {
            name: name.into(),
            code,
            took: Duration::from_millis(ms),
        };
        let ended = [e("web-1", 0, 12), e("web-22", 3, 7), e("web-3", 1, 9)];
        assert_eq!(worst(&ended), 3);
        assert_eq!(worst(&ended[..1]), 0);
        assert_eq!(
            summary(&ended),
            vec![
                "web-1   ok       12 ms",
                "web-22  exit 3   7 ms",
                "web-3   exit 1   9 ms"
            ]
        );
    }
}
