//! From what the operator typed to a host PID: ask an engine (names, IDs, prefixes),
//! or the host's cgroups when there is no engine to ask, or take `pid:N` as given;
//! and refuse containers that cannot be entered now.

use crate::engine::{cgroups, ContainerInfo, Engine, EngineError, EngineKind, RunState, Selection};
use crate::settings::TargetSpec;

/// Who said where the target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `pid:N`: the operator.
    Pid,
    /// A container engine's API.
    Engine(EngineKind),
    /// The host's `/proc/*/cgroup`, no engine (`--no-engine`, or the engine did
    /// not answer).
    Cgroups,
}

impl Via {
    /// The engine's name, `none` without one, for records and listings.
    pub fn name(self) -> &'static str {
        match self {
            Via::Pid => "pid",
            Via::Engine(kind) => kind.name(),
            Via::Cgroups => "none",
        }
    }
}

/// A target ready to be pinned.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub pid: i32,
    /// What the engine (or the cgroups) said, for container targets.
    pub container: Option<ContainerInfo>,
    pub via: Via,
}

impl Resolved {
    /// The operator's command to `verb` (start, unpause, ps) the target with the
    /// engine that found it, for hints.
    pub fn engine_command(&self, verb: &str) -> Option<String> {
        self.container
            .as_ref()
            .map(|c| engine_command(self.via, verb, c))
    }

    /// The hint for a target whose cgroup is frozen.
    pub fn thaw_hint(&self) -> String {
        let first = match self.engine_command("unpause") {
            Some(command) => format!("{command} first"),
            None => "thaw its cgroup first".to_string(),
        };
        format!("{first}; dlx will not join a frozen cgroup")
    }

    /// How to name the target in messages.
    pub fn label(&self) -> String {
        match &self.container {
            Some(c) => format!("container {}", c.name),
            None => format!("pid {}", self.pid),
        }
    }

    /// A short name for prompts: the container's name, or `pid-N`.
    pub fn short_name(&self) -> String {
        match &self.container {
            Some(c) => c.name.clone(),
            None => format!("pid-{}", self.pid),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(
        "container {name} is paused\nhint: {unpause} first; dlx will not join a frozen cgroup"
    )]
    Paused { name: String, unpause: String },
    #[error("container {name} is restarting\nhint: wait until it runs (`{ps}`), then try again")]
    Restarting { name: String, ps: String },
    #[error("container {name} is not running ({state})\nhint: {start} first")]
    NotRunning {
        name: String,
        state: String,
        start: String,
    },
}

/// Where [`resolve`] may look, and how it tells the operator it fell back.
pub struct Sources<'a> {
    pub selection: Selection,
    /// Connect to an engine (for real: [`crate::engine::connect`]).
    pub connect: &'a dyn Fn(EngineKind) -> Result<Box<dyn Engine>, EngineError>,
    /// The engine-free lookup (for real: [`crate::engine::Cgroups`]).
    pub cgroups: &'a dyn Engine,
    /// Say something on stderr.
    pub notice: &'a dyn Fn(String),
}

/// Resolve `spec`. Engines are only connected for container targets.
///
/// With [`Selection::Auto`], engines are asked in [`EngineKind::ALL`] order until
/// one knows the container. When the engine(s) did not answer at all (no socket,
/// nobody listening, hung past [`crate::engine::ANSWER_TIMEOUT`]) and the target
/// looks like an ID, the host's cgroups are searched instead, and the operator is
/// told so.
pub fn resolve(spec: &TargetSpec, sources: &Sources<'_>) -> Result<Resolved, TargetError> {
    let name = match spec {
        TargetSpec::Pid(pid) => {
            return Ok(Resolved {
                pid: *pid,
                container: None,
                via: Via::Pid,
            })
        }
        TargetSpec::Container(name) => name,
    };
    let (info, via) = lookup(name, sources)?;
    runnable(info, via, name)
}

/// The container `info` (found through `via` when asked for as `name`), if it can be
/// entered now.
pub fn runnable(info: ContainerInfo, via: Via, name: &str) -> Result<Resolved, TargetError> {
    let label = if info.name.is_empty() {
        name.to_string()
    } else {
        info.name.clone()
    };
    let tool = |verb: &str| engine_command(via, verb, &info);
    match &info.state {
        RunState::Running if info.pid > 0 => Ok(Resolved {
            pid: info.pid,
            container: Some(info),
            via,
        }),
        RunState::Running => Err(TargetError::NotRunning {
            name: label,
            state: "no process".into(),
            start: tool("start"),
        }),
        RunState::Paused => Err(TargetError::Paused {
            name: label,
            unpause: tool("unpause"),
        }),
        RunState::Restarting => Err(TargetError::Restarting {
            name: label,
            ps: tool("ps"),
        }),
        RunState::Stopped(state) => Err(TargetError::NotRunning {
            name: label,
            state: state.clone(),
            start: tool("start"),
        }),
    }
}

/// Ask the sources `selection` names for container `name`.
fn lookup(name: &str, sources: &Sources<'_>) -> Result<(ContainerInfo, Via), TargetError> {
    let ask = |kind: EngineKind| (sources.connect)(kind).and_then(|e| e.inspect(name));
    let from_cgroups = || Ok((sources.cgroups.inspect(name)?, Via::Cgroups));
    let fall_back = |why: EngineError| {
        if !cgroups::looks_like_id(name) {
            return Err(TargetError::from(why));
        }
        let why = crate::output::without_hint(&why);
        (sources.notice)(format!(
            "{why}; looking for {name} in the host's cgroups instead (as with --no-engine)"
        ));
        from_cgroups()
    };
    match sources.selection {
        Selection::NoEngine => from_cgroups(),
        Selection::Only(kind) => match ask(kind) {
            Ok(info) => Ok((info, Via::Engine(kind))),
            Err(e) if e.no_answer() => fall_back(e),
            Err(e) => Err(e.into()),
        },
        Selection::Auto => {
            let mut silent: Option<EngineError> = None;
            let mut answered = false;
            for (i, kind) in EngineKind::ALL.into_iter().enumerate() {
                match ask(kind) {
                    Ok(info) => return Ok((info, Via::Engine(kind))),
                    Err(EngineError::NotFound { .. }) => answered = true,
                    Err(e) if e.no_answer() => {
                        if let Some(text) = e.passed_over(EngineKind::ALL.get(i + 1).copied()) {
                            (sources.notice)(text);
                        }
                        silent.get_or_insert(e);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            match silent {
                // Somebody did not answer, and the cgroups might know.
                Some(e) if cgroups::looks_like_id(name) => fall_back(e),
                Some(_) if answered => Err(not_found(name)),
                Some(e) => Err(e.into()),
                None => Err(not_found(name)),
            }
        }
    }
}

fn not_found(name: &str) -> TargetError {
    TargetError::Engine(EngineError::NotFound {
        target: name.to_string(),
    })
}

/// The operator's command to `verb` (start, unpause, ps) the container, for hints.
fn engine_command(via: Via, verb: &str, info: &ContainerInfo) -> String {
    match via {
        Via::Engine(EngineKind::Containerd) => {
            let namespace = info.name.split('/').next().unwrap_or("default");
            let sub = match verb {
                "start" => format!("task start -d {}", info.id),
                "unpause" => format!("task resume {}", info.id),
                _ => "task ls".to_string(),
            };
            format!("`ctr -n {namespace} {sub}`")
        }
        Via::Engine(kind) if verb == "ps" => format!("`{} ps`", kind.cli()),
        Via::Engine(kind) => format!("`{} {verb} {}`", kind.cli(), info.name),
        Via::Pid | Via::Cgroups => format!("{verb} it with its engine"),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::engine::fake::{FakeEngine, SilentEngine};

    fn engine() -> FakeEngine {
        let mut paused = FakeEngine::container("db", "bbbb2222", 20);
        paused.state = RunState::Paused;
        let mut stopped = FakeEngine::container("old", "cccc3333", 0);
        stopped.state = RunState::Stopped("exited".into());
        FakeEngine::new(vec![
            FakeEngine::container("web", "aaaa1111", 10),
            FakeEngine::container("web2", "aaab1111", 11),
            paused,
            stopped,
        ])
    }

    /// The cgroups know one container, by ID only.
    fn cgroups() -> FakeEngine {
        FakeEngine::new(vec![FakeEngine::container("dddd4444", "dddd4444", 40)])
    }

    /// Resolve `target` with Docker = `docker`, Podman absent, containerd = `ctrd`.
    fn go_with(
        target: &str,
        selection: Selection,
        docker: fn() -> Box<dyn Engine>,
        ctrd: fn() -> Box<dyn Engine>,
    ) -> (Result<Resolved, TargetError>, Vec<String>) {
        let said = RefCell::new(Vec::new());
        let connect = |kind: EngineKind| -> Result<Box<dyn Engine>, EngineError> {
            match kind {
                EngineKind::Docker => Ok(docker()),
                EngineKind::Podman => Err(EngineError::Unreachable {
                    host: "unix:///run/podman/podman.sock".into(),
                    reason: "no such socket".into(),
                }),
                EngineKind::Containerd => Ok(ctrd()),
            }
        };
        let cg = cgroups();
        let notice = |s: String| said.borrow_mut().push(s);
        let sources = Sources {
            selection,
            connect: &connect,
            cgroups: &cg,
            notice: &notice,
        };
        let r = resolve(&target.parse().unwrap(), &sources);
        (r, said.into_inner())
    }

    fn fake() -> Box<dyn Engine> {
        Box::new(engine())
    }
    fn empty() -> Box<dyn Engine> {
        Box::new(FakeEngine::new(vec![]))
    }
    fn silent() -> Box<dyn Engine> {
        Box::new(SilentEngine)
    }

    fn go(target: &str) -> Result<Resolved, TargetError> {
        go_with(target, Selection::Only(EngineKind::Docker), fake, empty).0
    }

    #[test]
    fn names_ids_and_prefixes_resolve() {
        assert_eq!(go("web").unwrap().pid, 10);
        assert_eq!(go("aaab").unwrap().pid, 11);
        assert_eq!(go("aaaa1111").unwrap().pid, 10);
        assert_eq!(go("web").unwrap().via, Via::Engine(EngineKind::Docker));
    }

    #[test]
    fn ambiguous_prefix_lists_candidates() {
        let err = go("aaa").unwrap_err().to_string();
        assert!(
            err.contains("ambiguous") && err.contains("web") && err.contains("web2"),
            "{err}"
        );
    }

    #[test]
    fn unusable_states_are_refused_with_hints() {
        assert!(matches!(go("db"), Err(TargetError::Paused { .. })));
        let err = go("old").unwrap_err().to_string();
        assert!(
            err.contains("not running (exited)") && err.contains("hint: `docker start old`"),
            "{err}"
        );
        assert!(matches!(
            go("nope"),
            Err(TargetError::Engine(EngineError::NotFound { .. }))
        ));
    }

    #[test]
    fn pid_targets_never_touch_an_engine() {
        let connect =
            |_: EngineKind| -> Result<Box<dyn Engine>, EngineError> { panic!("engine asked") };
        let sources = Sources {
            selection: Selection::Auto,
            connect: &connect,
            cgroups: &SilentEngine,
            notice: &|_| panic!("nothing to say"),
        };
        let r = resolve(&"pid:77".parse().unwrap(), &sources).unwrap();
        assert_eq!((r.pid, r.container.is_none(), r.via), (77, true, Via::Pid));
    }

    #[test]
    fn auto_asks_each_engine_until_one_knows() {
        // Docker does not know it; containerd does.
        let (r, said) = go_with("web", Selection::Auto, empty, fake);
        let r = r.unwrap();
        assert_eq!((r.pid, r.via), (10, Via::Engine(EngineKind::Containerd)));
        assert!(said.is_empty(), "{said:?}");
        // Nobody knows it, and somebody answered: not found.
        let (r, _) = go_with("nope", Selection::Auto, empty, empty);
        assert!(matches!(
            r,
            Err(TargetError::Engine(EngineError::NotFound { .. }))
        ));
    }

    #[test]
    fn silent_engines_fall_back_to_the_cgroups_for_ids_and_say_so() {
        let (r, said) = go_with("dddd", Selection::Only(EngineKind::Docker), silent, empty);
        let r = r.unwrap();
        assert_eq!((r.pid, r.via), (40, Via::Cgroups));
        assert_eq!(said.len(), 1);
        assert!(
            said[0].contains("did not answer within 2 s") && said[0].contains("cgroups"),
            "{said:?}"
        );
        // A name cannot be found in the cgroups: the engine's own error stands.
        let (r, _) = go_with("web", Selection::Only(EngineKind::Docker), silent, empty);
        assert!(matches!(
            r,
            Err(TargetError::Engine(EngineError::Timeout { .. }))
        ));
        // Auto: Docker hung, containerd does not know it, the cgroups do.
        let (r, said) = go_with("dddd", Selection::Auto, silent, empty);
        assert_eq!(r.unwrap().via, Via::Cgroups);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].ends_with("; asking podman"), "{said:?}");
    }

    #[test]
    fn regression_a_hung_last_engine_said_the_next_engine_was_asked() {
        // Docker does not know it, containerd (the last) hangs: the cgroups are
        // asked, and only that is said.
        let (r, said) = go_with("dddd", Selection::Auto, empty, silent);
        assert_eq!(r.unwrap().via, Via::Cgroups);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("cgroups"), "{said:?}");
    }

    #[test]
    fn no_engine_asks_only_the_cgroups() {
        let (r, said) = go_with("dddd4", Selection::NoEngine, silent, silent);
        assert_eq!(r.unwrap().pid, 40);
        assert!(said.is_empty());
    }

    #[test]
    fn hints_name_the_engines_own_tool() {
        let mut info = FakeEngine::container("default/abc", "abc", 0);
        assert_eq!(
            engine_command(Via::Engine(EngineKind::Containerd), "unpause", &info),
            "`ctr -n default task resume abc`"
        );
        info.name = "web".into();
        assert_eq!(
            engine_command(Via::Engine(EngineKind::Podman), "start", &info),
            "`podman start web`"
        );
    }
}
