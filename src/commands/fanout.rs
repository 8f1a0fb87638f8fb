//! `dlx exec --filter … | --all -- CMD`: one protected dlx has a child list the
//! matching containers (the inspector, which then asks the engine about each and
//! answers each session about its own container) and finds the toolbox once, then
//! forks one session per container (bounded), which enters it, and relays their
//! prefixed output, forwarding the signals sent to it. See `crate::fanout` for the
//! pieces.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::exec;
use crate::audit;
use crate::cli::ExecArgs;
use crate::engine::{
    self, ContainerInfo, ContainerSummary, Engine, EngineError, EngineKind, Selection,
};
use crate::exit::ExitStatus;
use crate::fanout::{self, Ended, FanoutError, FanoutSettings, Prefetch, Prefixer};
use crate::ns::NsKind;
use crate::output;
use crate::settings::{ExecSettings, TargetSpec};
use crate::sys::{self, Fork, LinuxSys, Sys};
use crate::target::{self, Via};
use crate::toolbox::{self, Toolbox};

pub fn run(mut args: ExecArgs) -> Result<ExitStatus> {
    let fan = FanoutSettings::resolve(&args)?;
    let argv: Vec<_> = std::env::args_os().skip(1).collect();
    fanout::ensure_no_target(&argv, &fan.command)?;
    // Every session gets the same settings but its target, set as it starts.
    args.target = Some("fan-out".into());
    args.command = fan.command.clone();
    let settings = ExecSettings::resolve(args, |k| std::env::var(k).ok())?;

    exec::protect()?;
    let kinds = engines(&settings)?;
    exec::ensure_single_threaded()?;
    let (listed, inspector) = match Inspector::start(&kinds, &fan, &settings)? {
        Ok(started) => started,
        Err(status) => return Ok(status),
    };
    let mut targets = VecDeque::from(listed);
    tracing::info!(count = targets.len(), "fan-out");
    // Found once here, not by every session, and only when the sessions enter the
    // containers' filesystems (`--ns` without mnt and `--host-tools` do not), as in
    // `dlx exec`: otherwise a missing toolbox would be fetched for nothing.
    let enters_fs = !settings.host_tools
        && settings
            .namespaces
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&NsKind::Mnt));
    let toolbox = match enters_fs {
        true => toolbox::prepare(&settings.toolbox, &toolbox::PrepareOptions::for_host()?)?,
        false => None,
    };
    let host = exec::Host::read()?;
    // Every session is a fork of this process (assembling a toolbox may have run
    // threads).
    exec::ensure_single_threaded()?;
    let signals = sys::block_signals()?;
    let parallelism = fanout::parallelism();
    let escape = [
        sys::is_tty(std::io::stdout().as_fd()),
        sys::is_tty(std::io::stderr().as_fd()),
    ];

    let mut running: Vec<Running> = Vec::new();
    let mut ended: Vec<(usize, Ended)> = Vec::new();
    let mut interrupted: Option<i32> = None;
    let mut next_index = 0;
    let mut chunk = vec![0u8; fanout::LINE_MAX];
    let mut stdout_open = true;
    loop {
        // Start sessions while there is room, unless a signal said to stop.
        while interrupted.is_none() && running.len() < parallelism {
            let Some(container) = targets.pop_front() else {
                break;
            };
            let mut session = settings.clone();
            session.target = TargetSpec::Container(container.id.clone());
            running.push(start(
                &session, &inspector, container, &toolbox, &host, next_index, escape,
            )?);
            next_index += 1;
        }
        if running.is_empty() {
            break;
        }

        // Wait for output, a child's end, or a signal.
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let mut slots = Vec::new();
        for (i, r) in running.iter().enumerate() {
            for (j, stream) in r.streams.iter().enumerate() {
                if let Some((fd, _)) = stream {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    slots.push((i, j));
                }
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(sys::SysError::new("poll", "fan-out", e).into()),
        }
        let signalled = fds[0].revents().is_some_and(|r| !r.is_empty());
        let ready: Vec<(usize, usize)> = fds[1..]
            .iter()
            .zip(&slots)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, slot)| *slot)
            .collect();
        drop(fds);

        for (i, j) in ready {
            let out = relay_once(&mut running[i].streams[j], &mut chunk);
            if j == 0 && stdout_open && write_out(&out).is_err() {
                // Our reader went away (`| head`): stop reading the children's
                // stdout, so they meet EPIPE the way a single session would.
                stdout_open = false;
            } else if j == 1 {
                let _ = write_err(&out);
            }
            if !stdout_open {
                running[i].streams[0] = None;
            }
        }
        if signalled {
            if let Some(sig) = on_signals(&signals, &running)? {
                interrupted.get_or_insert(sig);
            }
        }
        reap(&mut running);
        // A session is over when its process ended and its output is all relayed.
        let mut k = 0;
        while k < running.len() {
            if running[k].end.is_some() && running[k].streams.iter().all(Option::is_none) {
                let r = running.remove(k);
                ended.push((r.index, r.ended()));
            } else {
                k += 1;
            }
        }
    }

    drop(inspector);

    // Containers never started (a signal came first) are named too.
    let sig = interrupted.unwrap_or(libc::SIGTERM);
    for container in targets {
        ended.push((
            next_index,
            Ended {
                name: container.name,
                code: ExitStatus::signaled(sig).code(),
                took: std::time::Duration::ZERO,
            },
        ));
        next_index += 1;
    }
    ended.sort_by_key(|(i, _)| *i);
    let ended: Vec<Ended> = ended.into_iter().map(|(_, e)| e).collect();
    for line in fanout::summary(&ended) {
        output::notice(line);
    }
    Ok(match interrupted {
        Some(sig) => ExitStatus::signaled(sig),
        None => ExitStatus::exited(i32::from(fanout::worst(&ended))),
    })
}

/// The engines that may list the containers, in the order they are asked: the one
/// named, else every engine, the first that answers with matches listing them (and
/// then answering each session about its own container). Without an engine there
/// are no names or labels.
fn engines(settings: &ExecSettings) -> Result<Vec<EngineKind>, EngineError> {
    match settings.engine {
        Selection::Auto => Ok(EngineKind::ALL.to_vec()),
        Selection::Only(kind) => Ok(vec![kind]),
        Selection::NoEngine => Err(EngineError::Unsupported {
            what: "--filter and --all",
        }),
    }
}

/// What the inspector hands back first: the matches, the engine that listed them,
/// and every engine that answered (with no matches but the last).
#[derive(serde::Serialize, serde::Deserialize)]
struct Listing {
    engine: EngineKind,
    containers: Vec<ContainerSummary>,
    answered: Vec<EngineKind>,
}

/// The child that talks to the engine for the whole fan-out: it lists the matching
/// containers, passes back their IDs, names and images, then asks the engine about
/// each of them, ahead of the sessions, and answers each session about its own
/// container (the session sends the ID and a pipe, which gets the answer and is
/// closed). What the engine says in full (every container's environment, command
/// line, labels) stays in the inspector and the one session it concerns: never in
/// this process, of which every session is a copy. Dropping it closes the request
/// socket, on which the inspector ends, and reaps it.
struct Inspector {
    pid: i32,
    /// The engine it talks to.
    kind: EngineKind,
    /// Where sessions send their requests (never read here); None once closed.
    requests: Option<OwnedFd>,
}

/// The longest request: a container ID as listed.
const REQUEST_MAX: usize = 256;

/// The longest listing or answer read from the inspector (a truncated one fails to
/// parse).
const ANSWER_MAX: u64 = 64 << 20;

impl Inspector {
    /// Fork the inspector (which lists through the first of `kinds` with matches)
    /// and read its listing, never empty: no match is an error. `Ok(Err)`: it failed
    /// (and said why) or was killed, and dlx ends with that status.
    fn start(
        kinds: &[EngineKind],
        fan: &FanoutSettings,
        settings: &ExecSettings,
    ) -> Result<Result<(Vec<ContainerSummary>, Inspector), ExitStatus>> {
        let (list_r, list_w) = sys::pipe()?;
        let (requests, served) = sys::packet_pair()?;
        let pid = match sys::fork_single_threaded()? {
            Fork::Child => {
                drop((list_r, requests));
                sys::exit_now(inspect_all(kinds, fan, settings, list_w, served).into())
            }
            Fork::Parent(pid) => pid,
        };
        drop((list_w, served));
        let mut inspector = Inspector {
            pid,
            kind: kinds[0],
            requests: Some(requests),
        };
        let bytes = match sys::read_limited(list_r, ANSWER_MAX, "the list of containers") {
            Ok(bytes) if !bytes.is_empty() => bytes,
            // No listing: the inspector failed (and said why) or was killed.
            _ => {
                return Ok(Err(match inspector.end() {
                    Some(WaitStatus::Signaled(_, sig, _)) => ExitStatus::signaled(sig as i32),
                    _ => ExitStatus::Error,
                }));
            }
        };
        let listing: Listing =
            serde_json::from_slice(&bytes).context("cannot read the list of containers")?;
        if listing.containers.is_empty() {
            return Err(FanoutError::NoMatch {
                engines: listing.answered,
                selection: fan.selection(),
            }
            .into());
        }
        inspector.kind = listing.engine;
        tracing::debug!(engine = %listing.engine, "containers listed");
        Ok(Ok((listing.containers, inspector)))
    }

    /// In a session's process: what the engine says about `container`. The
    /// session's copy of the request socket is closed on the way, so a session can
    /// ask about its own container only.
    fn ask(requests: OwnedFd, container: &ContainerSummary) -> Result<ContainerInfo> {
        let (answer_r, answer_w) = sys::pipe()?;
        sys::send_with_fd(requests.as_fd(), container.id.as_bytes(), answer_w.as_fd())
            .context("cannot reach dlx's inspector")?;
        drop((answer_w, requests));
        let bytes = sys::read_limited(answer_r, ANSWER_MAX, "the inspector's answer")?;
        let answer: Result<ContainerInfo, String> = serde_json::from_slice(&bytes)
            .with_context(|| format!("dlx's inspector gave no answer about {}", container.name))?;
        answer.map_err(anyhow::Error::msg)
    }

    /// A copy of the request socket, for a session.
    fn requests(&self) -> Result<OwnedFd> {
        let requests = self
            .requests
            .as_ref()
            .context("dlx's inspector has ended")?;
        Ok(requests.try_clone()?)
    }

    /// Close the request socket, on which the inspector ends, and reap it (once).
    fn end(&mut self) -> Option<WaitStatus> {
        drop(self.requests.take()?);
        waitpid(Pid::from_raw(self.pid), None).ok()
    }
}

impl Drop for Inspector {
    fn drop(&mut self) {
        self.end();
    }
}

/// The inspector's life: list through the first engine of `kinds` that answers with
/// matches, pass the listing back on `list`, then ask that engine about every listed
/// container and answer the sessions' requests on `served`, until every session's
/// copy of the other end is closed. Returns its exit status.
fn inspect_all(
    kinds: &[EngineKind],
    fan: &FanoutSettings,
    settings: &ExecSettings,
    list: OwnedFd,
    served: OwnedFd,
) -> u8 {
    let connect = |kind| engine::connect(kind, &settings.endpoints);
    let notice = |text| output::notice(text);
    let (engine, listing) = match list_first_matching(kinds, &fan.filters, &connect, &notice) {
        Ok(found) => found,
        Err(e) => {
            output::error(&anyhow::Error::from(e));
            return ExitStatus::Error.code();
        }
    };
    let Ok(bytes) = serde_json::to_vec(&listing) else {
        return ExitStatus::Error.code();
    };
    let listed = listing.containers;
    if sys::write_all(list.as_fd(), &bytes).is_err() {
        return ExitStatus::Error.code();
    }
    drop(list);
    // Every listed container is asked about ahead of its session's request (see
    // `Prefetch`), a chunk at a time, each chunk on as many connections as it has
    // containers; requests are taken between chunks, and waited for only when there
    // is nothing to ask or answer.
    if sys::set_nonblocking(served.as_fd(), true).is_err() {
        return ExitStatus::Error.code();
    }
    // As many at a time as sessions run at once, and at most the next two waves'
    // answers held for sessions yet to ask.
    let chunk_size = fanout::parallelism();
    let mut book = Prefetch::new(listed.iter().map(|c| c.id.clone()), 2 * chunk_size);
    let mut open = true;
    loop {
        if open {
            let wait = !book.has_work();
            match take_requests(served.as_fd(), &mut book, wait) {
                Ok(still_open) => open = still_open,
                Err(_) => return ExitStatus::Error.code(),
            }
        }
        // Every session has asked (and gone): nothing more to do.
        if !open && book.nobody_waits() {
            return 0;
        }
        let chunk = book.next(chunk_size);
        if !chunk.is_empty() {
            let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
            for (id, found) in chunk.iter().zip(engine.inspect_each(&ids)) {
                book.fetched(id.clone(), found.map_err(|e| e.to_string()));
            }
        }
        for (answer, result) in book.answerable() {
            if let Ok(bytes) = serde_json::to_vec(&result) {
                // A session that went away meanwhile (EPIPE) is no concern of ours.
                let _ = sys::write_all(answer.as_fd(), &bytes);
            }
        }
    }
}

/// The containers matching `filters`, listed by the first engine of `kinds` that
/// has any (connected through `connect`), with that engine; with none, an empty
/// listing from the last engine that answered. As when a single target is looked
/// up, an engine that does not answer is passed over while another may (one that
/// hangs, with a `notice`); any other error is the answer.
fn list_first_matching(
    kinds: &[EngineKind],
    filters: &[engine::Filter],
    connect: &dyn Fn(EngineKind) -> Result<Box<dyn Engine>, EngineError>,
    notice: &dyn Fn(String),
) -> Result<(Box<dyn Engine>, Listing), EngineError> {
    let mut silent = None;
    let mut empty = None;
    let mut answered = Vec::new();
    for (i, &kind) in kinds.iter().enumerate() {
        let listed = connect(kind).and_then(|engine| Ok((engine.list(filters)?, engine)));
        let next = kinds.get(i + 1).copied();
        match listed {
            Ok((mut containers, engine)) => {
                // Docker's own containers, which its containerd shows in namespace
                // `moby`, are Docker's to answer for once Docker has answered.
                if kind == EngineKind::Containerd && answered.contains(&EngineKind::Docker) {
                    containers.retain(|c| !c.id.starts_with("moby/"));
                }
                answered.push(kind);
                if !containers.is_empty() {
                    let listing = Listing {
                        engine: kind,
                        containers,
                        answered,
                    };
                    return Ok((engine, listing));
                }
                empty = Some((engine, kind));
            }
            Err(e) if e.no_answer() && kinds.len() > 1 => {
                if let Some(text) = e.passed_over(next) {
                    notice(text);
                }
                tracing::debug!(engine = %kind, error = %e, "engine passed over");
                silent.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match (empty, silent) {
        (Some((engine, kind)), _) => Ok((
            engine,
            Listing {
                engine: kind,
                containers: Vec::new(),
                answered,
            },
        )),
        (None, Some(e)) => Err(e),
        (None, None) => Err(EngineError::Unsupported {
            what: "--filter and --all",
        }),
    }
}

/// Take the requests the sessions have sent (each a container ID with the pipe for
/// its answer) into `book`; with `wait`, wait for one first. False once every
/// sender has closed its end.
fn take_requests(
    served: BorrowedFd<'_>,
    book: &mut Prefetch<ContainerInfo, OwnedFd>,
    wait: bool,
) -> Result<bool, sys::SysError> {
    if wait {
        let mut fds = [PollFd::new(served, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(sys::SysError::new("poll", "inspector", e)),
        }
    }
    let mut request = [0u8; REQUEST_MAX];
    loop {
        match sys::recv_with_fd(served, &mut request) {
            Ok(Some((len, Some(answer)))) => book.ask(
                String::from_utf8_lossy(&request[..len]).into_owned(),
                answer,
            ),
            Ok(None) => return Ok(false),
            Err(e) if e.errno == Errno::EAGAIN => return Ok(true),
            // A malformed request (no pipe, too long) gets nothing.
            Ok(Some((_, None))) => continue,
            Err(e) if e.errno == Errno::EMSGSIZE => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One running session: its process, and its stdout and stderr until they end.
struct Running {
    index: usize,
    name: String,
    pid: i32,
    started: Instant,
    streams: [Option<(OwnedFd, Prefixer)>; 2],
    end: Option<u8>,
}

impl Running {
    fn ended(&self) -> Ended {
        Ended {
            name: self.name.clone(),
            code: self.end.unwrap_or(ExitStatus::Error.code()),
            took: self.started.elapsed(),
        }
    }
}

/// Fork the session for `container`: the child becomes a `dlx exec` of it, its
/// stdout and stderr pipes to us, its stdin empty. `escape`: whether dlx's stdout and
/// stderr are terminals, where the lines show their control characters escaped.
fn start(
    settings: &ExecSettings,
    inspector: &Inspector,
    container: ContainerSummary,
    toolbox: &Option<Toolbox>,
    host: &exec::Host,
    index: usize,
    escape: [bool; 2],
) -> Result<Running> {
    let (out_r, out_w) = sys::pipe()?;
    let (err_r, err_w) = sys::pipe()?;
    let null: OwnedFd = std::fs::File::open("/dev/null")
        .context("cannot open /dev/null")?
        .into();
    let requests = inspector.requests()?;
    let started = Instant::now();
    match sys::fork_single_threaded()? {
        Fork::Child => {
            drop((out_r, err_r));
            session(
                settings,
                (inspector.kind, requests),
                &container,
                toolbox,
                host,
                [null, out_w, err_w],
            )
        }
        Fork::Parent(pid) => Ok(Running {
            index,
            name: container.name.clone(),
            pid,
            started,
            streams: [
                Some((out_r, Prefixer::new(&container.name, escape[0]))),
                Some((err_r, Prefixer::new(&container.name, escape[1]))),
            ],
            end: None,
        }),
    }
}

/// The forked child: one container's whole `dlx exec`, from asking the inspector
/// about it to the end, audited, then its exit.
fn session(
    settings: &ExecSettings,
    (kind, requests): (EngineKind, OwnedFd),
    container: &ContainerSummary,
    toolbox: &Option<Toolbox>,
    host: &exec::Host,
    stdio: [OwnedFd; 3],
) -> ! {
    // What the engine says of this container (the session's copy of the request
    // socket is closed on the way).
    let info = Inspector::ask(requests, container);
    // Only these three descriptors and the launcher: nothing of the other sessions.
    let raw = [
        stdio[0].as_raw_fd(),
        stdio[1].as_raw_fd(),
        stdio[2].as_raw_fd(),
    ];
    if LinuxSys.install_stdio(raw).is_err()
        || sys::close_range_from_except(3, &[host.launcher.as_fd()]).is_err()
    {
        sys::exit_now(ExitStatus::Error.code().into());
    }
    std::mem::forget(stdio); // closed already, by number
    let mut audit = audit::Session::begin(&settings.audit_log, &container.id, &settings.command);
    let result = info
        .and_then(|info| Ok(target::runnable(info, Via::Engine(kind), &container.id)?))
        .and_then(|r| exec::enter(settings, r, &mut audit, &|| Ok(toolbox.clone()), host));
    audit.finish(&result);
    let status = result.unwrap_or_else(|e| {
        output::error(&e);
        ExitStatus::Error
    });
    sys::exit_now(status.code().into())
}

/// Read what one stream has; the prefixed whole lines it completes come back. At
/// its end the stream is closed (and its last line finished).
fn relay_once(stream: &mut Option<(OwnedFd, Prefixer)>, chunk: &mut [u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some((fd, prefixer)) = stream {
        match sys::read_some(fd.as_fd(), chunk) {
            Ok(0) | Err(_) => {
                prefixer.finish(&mut out);
                *stream = None;
            }
            Ok(n) => prefixer.feed(&chunk[..n], &mut out),
        }
    }
    out
}

fn write_out(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if bytes.is_empty() {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).and_then(|()| stdout.flush())
}

fn write_err(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::io::stderr().lock().write_all(bytes)
}

/// Handle what the signalfd holds. A signal sent to dlx by someone (`kill`) is
/// passed on to every session, which passes it to its command; one the terminal
/// raised (^C) already reached the sessions, which share dlx's process group. Either
/// way a terminating signal stops new sessions from starting: it is returned.
fn on_signals(signals: &SignalFd, running: &[Running]) -> Result<Option<i32>> {
    let mut stop = None;
    while let Some(info) = signals
        .read_signal()
        .map_err(|e| sys::SysError::new("read", "signalfd", e))?
    {
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if sig == Signal::SIGCHLD {
            continue;
        }
        if info.ssi_code <= 0 {
            // SI_USER, SI_QUEUE, SI_TKILL: sent to us in particular.
            for r in running.iter().filter(|r| r.end.is_none()) {
                let _ = nix::sys::signal::kill(Pid::from_raw(r.pid), sig);
            }
        }
        if matches!(
            sig,
            Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP | Signal::SIGQUIT
        ) {
            stop = Some(sig as i32);
        }
    }
    Ok(stop)
}

/// Collect the status of every session process that ended.
fn reap(running: &mut [Running]) {
    for r in running.iter_mut().filter(|r| r.end.is_none()) {
        match waitpid(Pid::from_raw(r.pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => {
                r.end = Some(u8::try_from(code & 0xff).unwrap_or(255))
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                r.end = Some(ExitStatus::signaled(sig as i32).code())
            }
            Ok(_) => {}
            Err(_) => r.end = Some(ExitStatus::Error.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::{FakeEngine, SilentEngine};
    use crate::engine::Filter;
    use std::cell::RefCell;

    /// Docker hung, Podman with nothing that matches, containerd with `web`.
    fn connect(kind: EngineKind) -> Result<Box<dyn Engine>, EngineError> {
        let web = FakeEngine::container("k8s.io/web", "w1", 10);
        Ok(match kind {
            EngineKind::Docker => Box::new(SilentEngine),
            EngineKind::Podman => Box::new(FakeEngine::new(Vec::new())),
            EngineKind::Containerd => Box::new(FakeEngine::new(vec![web]).label("w1", "app=web")),
        })
    }

    fn listed(kinds: &[EngineKind], filter: &str) -> (Result<Listing, EngineError>, Vec<String>) {
        let said = RefCell::new(Vec::new());
        let filters = [Filter::Label(filter.into())];
        let got = list_first_matching(kinds, &filters, &connect, &|s| said.borrow_mut().push(s))
            .map(|(_, listing)| listing);
        (got, said.into_inner())
    }

    #[test]
    fn the_first_engine_with_matches_lists_them_past_a_hung_one() {
        let (got, said) = listed(&EngineKind::ALL, "app=web");
        let got = got.unwrap();
        assert_eq!(got.engine, EngineKind::Containerd);
        assert_eq!(got.answered, [EngineKind::Podman, EngineKind::Containerd]);
        assert_eq!(got.containers.len(), 1);
        assert_eq!(got.containers[0].name, "k8s.io/web");
        assert_eq!(said.len(), 1);
        assert!(
            said[0].ends_with("did not answer within 2 s; asking podman"),
            "{said:?}"
        );
    }

    #[test]
    fn no_match_anywhere_lists_nothing_and_names_who_answered() {
        let (got, _) = listed(&EngineKind::ALL, "app=db");
        let got = got.unwrap();
        assert!(got.containers.is_empty());
        assert_eq!(got.answered, [EngineKind::Podman, EngineKind::Containerd]);
    }

    #[test]
    fn an_engine_named_is_the_only_one_asked() {
        // Hung, and named: its silence is the answer, and nobody else is asked.
        let (got, said) = listed(&[EngineKind::Docker], "app=web");
        assert!(matches!(got, Err(EngineError::Timeout { .. })));
        assert!(said.is_empty());
        let (got, _) = listed(&[EngineKind::Podman], "app=web");
        let got = got.unwrap();
        assert!(got.containers.is_empty());
        assert_eq!(got.answered, [EngineKind::Podman]);
    }

    #[test]
    fn dockers_containers_seen_through_its_containerd_are_left_to_docker() {
        // Docker answers (nothing named "ab"); containerd shows one of Docker's own
        // in namespace moby, whose ID has "ab" in it.
        let moby = |docker_answers: bool| {
            move |kind| -> Result<Box<dyn Engine>, EngineError> {
                let mut seen = FakeEngine::container("moby/ab12", "moby/ab12", 10);
                seen.image = String::new();
                Ok(match kind {
                    EngineKind::Docker if !docker_answers => Box::new(SilentEngine),
                    EngineKind::Docker | EngineKind::Podman => Box::new(FakeEngine::new(vec![])),
                    EngineKind::Containerd => Box::new(FakeEngine::new(vec![seen])),
                })
            }
        };
        let filters = [Filter::Name("ab".into())];
        let got = list_first_matching(&EngineKind::ALL, &filters, &moby(true), &|_| {}).unwrap();
        assert!(got.1.containers.is_empty());
        // With Docker hung, its containerd is the way to them.
        let got = list_first_matching(&EngineKind::ALL, &filters, &moby(false), &|_| {}).unwrap();
        assert_eq!(got.1.containers.len(), 1);
    }

    #[test]
    fn a_hung_last_engine_is_not_said_to_pass_the_question_on() {
        let (got, said) = listed(&[EngineKind::Podman, EngineKind::Docker], "app=web");
        assert!(got.unwrap().containers.is_empty());
        assert!(said.is_empty(), "{said:?}");
    }
}
