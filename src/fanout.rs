//! Fan-out: one command in many containers at once (`dlx exec --filter … -- CMD`).
//!
//! One child process talks to the engine for the whole run: it lists the matching
//! running containers, passes back their IDs, names and images, then asks the
//! engine about each of them, ahead of the sessions and as many at a time as
//! sessions run (see [`Prefetch`]), and answers each session about its own
//! container. Each container's session runs in its own child process, forked from
//! the protected dlx that found the toolbox, and goes through the whole privileged
//! sequence, pinned and audited, exactly as a single one does, without starting dlx
//! or finding the toolbox again. No session holds what the engine said about
//! another container: the relaying dlx never hears it, and each session is a copy
//! of that dlx. At most [`parallelism`] run at a time. Their output lines are
//! prefixed `name | ` (stdout to stdout, stderr to stderr); the exit status is the
//! worst of them, and one summary line per container closes the run on stderr.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::time::Duration;

use crate::cli::ExecArgs;
use crate::engine::{EngineKind, Filter};

/// What a fan-out runs, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutSettings {
    /// Empty with `--all`.
    pub filters: Vec<Filter>,
    /// The command, as the operator gave it.
    pub command: Vec<String>,
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
    #[error("no running container of {} matches {selection}\nhint: `dlx ps` lists the running containers of every engine it can reach", either(.engines))]
    NoMatch {
        /// The engines that answered.
        engines: Vec<EngineKind>,
        selection: String,
    },
}

/// `docker`, `docker or containerd`, `docker, podman or containerd`.
fn either(kinds: &[EngineKind]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    match names.split_last() {
        None => "any engine".into(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

impl FanoutSettings {
    /// Resolve the fan-out flags of `args` (the engine and its socket are the exec
    /// settings').
    pub fn resolve(args: &ExecArgs) -> Result<Self, FanoutError> {
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
        Ok(FanoutSettings { filters, command })
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

/// Check that the operator gave no TARGET: the command as parsed (`command`, which
/// clap starts in the TARGET slot when there is none) must be the whole tail of dlx's
/// own arguments `argv`, so `dlx exec --all web -- ls` is refused rather than run as
/// `web ls`.
pub fn ensure_no_target(argv: &[OsString], command: &[String]) -> Result<(), FanoutError> {
    let split = argv
        .len()
        .checked_sub(command.len())
        .ok_or(FanoutError::Target)?;
    let tail = &argv[split..];
    match tail.iter().zip(command).all(|(a, c)| a == OsStr::new(c)) {
        true => Ok(()),
        false => Err(FanoutError::Target),
    }
}

/// How many sessions run at once: four per CPU. The fan-out is CPU-bound: over 20
/// containers on two CPUs, 8 at once was the fastest, 4, 12 and 20 within 5% of it,
/// 2 about 17% and 1 about 76% slower (a session also waits: on the engine, its
/// pipes, the kernel's RCU grace periods).
pub fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 4
}

/// The longest line relayed whole; a longer one is cut into pieces of this size,
/// each prefixed, so one child cannot make dlx hold unbounded output.
pub const LINE_MAX: usize = 64 * 1024;

/// Cuts one child's output stream into lines, each prefixed `name | `. Whole lines
/// only leave it, so lines of different containers never mix on dlx's output.
///
/// For a terminal (`escape`), the control characters of a line (all but tab, and
/// the C1 controls UTF-8 can carry) show as `\xNN`: otherwise a container could
/// return the cursor over its prefix (`\r`), or move it over other lines (escape
/// sequences), and pass its lines off as another container's. Into a pipe or a file
/// the lines go byte for byte.
#[derive(Debug)]
pub struct Prefixer {
    prefix: Vec<u8>,
    partial: Vec<u8>,
    escape: bool,
}

impl Prefixer {
    pub fn new(name: &str, escape: bool) -> Prefixer {
        Prefixer {
            prefix: format!("{name} | ").into_bytes(),
            partial: Vec::new(),
            escape,
        }
    }

    /// Take `data`, and append to `out` every line it completes.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            let room = LINE_MAX - self.partial.len();
            match data.iter().take(room + 1).position(|&b| b == b'\n') {
                Some(i) => {
                    self.partial.extend_from_slice(&data[..=i]);
                    data = &data[i + 1..];
                    self.emit(out);
                }
                None if data.len() > room => {
                    self.partial.extend_from_slice(&data[..room]);
                    data = &data[room..];
                    self.partial.push(b'\n');
                    self.emit(out);
                }
                None => {
                    self.partial.extend_from_slice(data);
                    data = &[];
                }
            }
        }
    }

    /// The end of the stream: a last line without a newline gets one.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.partial.is_empty() {
            self.partial.push(b'\n');
            self.emit(out);
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        if !self.escape {
            out.append(&mut self.partial);
            return;
        }
        // The line ends with its newline, which stays one.
        let line = self.partial.strip_suffix(b"\n").unwrap_or(&self.partial);
        let mut i = 0;
        while i < line.len() {
            let b = line[i];
            // U+0080 to U+009F, the C1 controls, are C2 80 to C2 9F in UTF-8.
            let c1 = b == 0xc2 && line.get(i + 1).is_some_and(|n| (0x80..0xa0).contains(n));
            if c1 {
                out.extend_from_slice(format!("\\xc2\\x{:02x}", line[i + 1]).as_bytes());
                i += 2;
                continue;
            }
            if (b < 0x20 && b != b'\t') || b == 0x7f {
                out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
            } else {
                out.push(b);
            }
            i += 1;
        }
        out.push(b'\n');
        self.partial.clear();
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

/// The inspector's book of what the engine said: which listed containers to ask
/// about next, and which sessions can have their answer. Every listed container is
/// asked about ahead of its session's request, in listing order (the order the
/// sessions start in), those a session already waits for first; so a session rarely
/// waits for the engine. At most `ahead` answers wait for their session; each goes
/// to the first session that asks for it and is then forgotten. `H` is where an
/// answer goes (a session's pipe).
pub struct Prefetch<T, H> {
    /// Listed and not asked about yet, in listing order.
    unfetched: VecDeque<String>,
    listed: HashSet<String>,
    /// Answers no session has asked for yet.
    known: HashMap<String, Result<T, String>>,
    /// Requests whose answer is not known yet.
    waiting: Vec<(String, H)>,
    ahead: usize,
}

impl<T, H> Prefetch<T, H> {
    pub fn new(listed: impl IntoIterator<Item = String>, ahead: usize) -> Prefetch<T, H> {
        let unfetched: VecDeque<String> = listed.into_iter().collect();
        Prefetch {
            listed: unfetched.iter().cloned().collect(),
            unfetched,
            known: HashMap::new(),
            waiting: Vec::new(),
            ahead,
        }
    }

    /// A session asks about container `id`; the answer goes to `to`.
    pub fn ask(&mut self, id: String, to: H) {
        self.waiting.push((id, to));
    }

    /// The next containers to ask the engine about, at most `max`: those sessions
    /// wait for, then the next in listing order while there is room ahead. Each is
    /// given out once.
    pub fn next(&mut self, max: usize) -> Vec<String> {
        let mut chunk = Vec::new();
        for (id, _) in &self.waiting {
            if chunk.len() == max {
                return chunk;
            }
            if let Some(at) = self.unfetched.iter().position(|u| u == id) {
                chunk.extend(self.unfetched.remove(at));
            }
        }
        while chunk.len() < max && self.known.len() + chunk.len() < self.ahead {
            let Some(id) = self.unfetched.pop_front() else {
                break;
            };
            chunk.push(id);
        }
        chunk
    }

    /// What the engine said about `id`.
    pub fn fetched(&mut self, id: String, answer: Result<T, String>) {
        self.known.insert(id, answer);
    }

    /// The requests that can be answered now, with their answers: the engine's, or
    /// a refusal for a container that was not listed or was asked about before.
    pub fn answerable(&mut self) -> Vec<(H, Result<T, String>)> {
        let mut ready = Vec::new();
        let mut k = 0;
        while k < self.waiting.len() {
            let id = self.waiting[k].0.as_str();
            let answer = if let Some(found) = self.known.remove(id) {
                found
            } else if !self.listed.contains(id) {
                Err(format!("container {id} was not listed"))
            } else if self.unfetched.iter().any(|u| u == id) {
                k += 1;
                continue;
            } else {
                Err(format!("container {id} was asked about before"))
            };
            let (_, to) = self.waiting.remove(k);
            ready.push((to, answer));
        }
        ready
    }

    /// Whether no session waits for an answer.
    pub fn nobody_waits(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Whether there is anything to ask the engine or to answer: a session waits,
    /// or a container is still to be asked about and there is room ahead.
    pub fn has_work(&self) -> bool {
        !self.waiting.is_empty() || (!self.unfetched.is_empty() && self.known.len() < self.ahead)
    }
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
    fn no_match_names_every_engine_that_answered() {
        let err = |engines: &[EngineKind]| {
            FanoutError::NoMatch {
                engines: engines.to_vec(),
                selection: "--all".into(),
            }
            .to_string()
        };
        assert!(err(&[EngineKind::Docker])
            .starts_with("no running container of docker matches --all\n"));
        assert!(err(&[EngineKind::Docker, EngineKind::Containerd])
            .starts_with("no running container of docker or containerd matches"));
        assert!(err(&EngineKind::ALL)
            .starts_with("no running container of docker, podman or containerd matches"));
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
        let s = FanoutSettings::resolve(&a).unwrap();
        assert_eq!(s.command, vec!["ls", "-l"]);
        assert_eq!(s.selection(), "--filter label=a=b --filter name=w");
        let a = args(&["dlx", "exec", "--all", "--", "true"]);
        assert_eq!(FanoutSettings::resolve(&a).unwrap().selection(), "--all");
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
        let err = FanoutSettings::resolve(&a).unwrap_err();
        assert!(matches!(err, FanoutError::Tty));
        assert!(err.to_string().contains("hint: drop -t"));
        let a = args(&["dlx", "exec", "-i", "--all", "--", "sh"]);
        assert!(matches!(
            FanoutSettings::resolve(&a),
            Err(FanoutError::Interactive)
        ));
    }

    #[test]
    fn a_target_beside_a_filter_is_refused() {
        // `dlx exec --all web -- ls`: clap takes `web` as TARGET and `ls` as CMD.
        let argv = os(&["exec", "--all", "web", "--", "ls"]);
        assert!(matches!(
            ensure_no_target(&argv, &["web".into(), "ls".into()]),
            Err(FanoutError::Target)
        ));
        for argv in [
            os(&["-q", "exec", "-u", "0", "--all", "--", "ls", "-l"]),
            os(&["exec", "--filter=name=x", "ls", "-l"]),
        ] {
            ensure_no_target(&argv, &["ls".into(), "-l".into()]).unwrap();
        }
    }

    #[test]
    fn lines_are_prefixed_whole_however_the_output_arrives() {
        let text = b"one\ntwo\n\nlast";
        // Whole, byte by byte, and in uneven pieces: always the same lines.
        for cut in [text.len(), 1, 3] {
            let mut p = Prefixer::new("web-1", false);
            let mut out = Vec::new();
            for piece in text.chunks(cut) {
                p.feed(piece, &mut out);
            }
            assert_eq!(out, b"web-1 | one\nweb-1 | two\nweb-1 | \n", "cut {cut}");
            p.finish(&mut out);
            p.finish(&mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "web-1 | one\nweb-1 | two\nweb-1 | \nweb-1 | last\n"
            );
        }
    }

    #[test]
    fn on_a_terminal_no_line_can_pass_for_another_containers() {
        let spoof = "ok\r\x1b[2Kdb-1 | all good \u{9b}1A\tdone\n";
        let prefixed = |escape| {
            let mut p = Prefixer::new("web-1", escape);
            let mut out = Vec::new();
            p.feed(spoof.as_bytes(), &mut out);
            p.finish(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            prefixed(true),
            "web-1 | ok\\x0d\\x1b[2Kdb-1 | all good \\xc2\\x9b1A\tdone\n"
        );
        // Into a pipe, byte for byte.
        assert_eq!(prefixed(false), format!("web-1 | {spoof}"));
    }

    #[test]
    fn an_endless_line_is_cut_not_held() {
        let mut p = Prefixer::new("w", false);
        let mut out = Vec::new();
        p.feed(&vec![b'x'; LINE_MAX * 2 + 5], &mut out);
        let lines: Vec<&[u8]> = out.split_inclusive(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() == "w | ".len() + LINE_MAX + 1));
        p.finish(&mut out);
        assert!(out.ends_with(b"w | xxxxx\n"));
        // A line of exactly LINE_MAX bytes stays one line.
        let mut p = Prefixer::new("w", false);
        let mut out = Vec::new();
        let mut line = vec![b'y'; LINE_MAX];
        line.push(b'\n');
        p.feed(&line, &mut out);
        assert_eq!(out.len(), "w | ".len() + LINE_MAX + 1);
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

    fn book(ids: &[&str], ahead: usize) -> Prefetch<u32, char> {
        Prefetch::new(ids.iter().map(|s| s.to_string()), ahead)
    }

    #[test]
    fn prefetch_asks_in_listing_order_a_waited_for_container_first() {
        let mut b = book(&["a", "b", "c", "d"], 8);
        assert_eq!(b.next(2), ["a", "b"]);
        b.ask("d".into(), 'x');
        assert_eq!(b.next(2), ["d", "c"]);
        assert!(b.next(2).is_empty());
    }

    #[test]
    fn prefetch_answers_once_each_and_only_what_was_listed() {
        let mut b = book(&["a", "b"], 8);
        b.ask("b".into(), 'x');
        b.ask("z".into(), 'y');
        // "b" is not fetched yet: only the stranger's refusal is ready.
        let ready = b.answerable();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].0, 'y');
        assert!(ready[0].1.as_ref().unwrap_err().contains("not listed"));
        assert!(!b.nobody_waits());
        assert_eq!(b.next(1), ["b"]);
        b.fetched("b".into(), Ok(2));
        assert_eq!(b.answerable(), [('x', Ok(2))]);
        assert!(b.nobody_waits());
        // An answer is given once: asking again is refused, not answered again.
        b.ask("b".into(), 'w');
        let again = b.answerable();
        assert!(again[0]
            .1
            .as_ref()
            .unwrap_err()
            .contains("asked about before"));
        // An answer nobody asked for yet waits for its session.
        assert_eq!(b.next(1), ["a"]);
        b.fetched("a".into(), Err("gone".into()));
        assert!(b.answerable().is_empty());
        b.ask("a".into(), 'v');
        assert_eq!(b.answerable(), [('v', Err("gone".to_string()))]);
    }

    #[test]
    fn prefetch_holds_at_most_ahead_unasked_answers() {
        let mut b = book(&["a", "b", "c", "d"], 2);
        assert!(b.has_work());
        let first = b.next(8);
        assert_eq!(first, ["a", "b"]);
        for id in first {
            b.fetched(id, Ok(1));
        }
        // Two answers wait for their sessions: nothing more is asked for now.
        assert!(!b.has_work());
        assert!(b.next(8).is_empty());
        // A session waiting for a container not asked about yet is served anyway.
        b.ask("d".into(), 'x');
        assert!(b.has_work());
        assert_eq!(b.next(8), ["d"]);
        b.fetched("d".into(), Ok(4));
        assert_eq!(b.answerable(), [('x', Ok(4))]);
        // Once a held answer is taken, there is room for the next.
        b.ask("a".into(), 'y');
        assert_eq!(b.answerable(), [('y', Ok(1))]);
        assert_eq!(b.next(8), ["c"]);
    }
}
