//! From what the operator typed to a host PID: ask the engine (names, IDs, prefixes)
//! or take `pid:N` as given, and refuse containers that cannot be entered now.

use crate::engine::{ContainerInfo, Engine, EngineError, RunState};
use crate::settings::TargetSpec;

/// A target ready to be pinned.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub pid: i32,
    /// What the engine said, when an engine was asked.
    pub container: Option<ContainerInfo>,
}

impl Resolved {
    /// How to name the target in messages.
    pub fn label(&self) -> String {
        match &self.container {
            Some(c) => format!("container {}", c.name),
            None => format!("pid {}", self.pid),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("container {name} is paused\nhint: `docker unpause {name}` first; dlx will not join a frozen cgroup")]
    Paused { name: String },
    #[error(
        "container {name} is restarting\nhint: wait until it runs (`docker ps`), then try again"
    )]
    Restarting { name: String },
    #[error("container {name} is not running ({state})\nhint: `docker start {name}` first")]
    NotRunning { name: String, state: String },
}

/// Resolve `spec`; `engine` is only called (and connected) for container targets.
pub fn resolve<E: Engine>(
    spec: &TargetSpec,
    engine: impl FnOnce() -> Result<E, EngineError>,
) -> Result<Resolved, TargetError> {
    match spec {
        TargetSpec::Pid(pid) => Ok(Resolved {
            pid: *pid,
            container: None,
        }),
        TargetSpec::Container(name) => {
            let info = engine()?.inspect(name)?;
            let label = if info.name.is_empty() {
                name.clone()
            } else {
                info.name.clone()
            };
            match &info.state {
                RunState::Running if info.pid > 0 => Ok(Resolved {
                    pid: info.pid,
                    container: Some(info),
                }),
                RunState::Running => Err(TargetError::NotRunning {
                    name: label,
                    state: "no process".into(),
                }),
                RunState::Paused => Err(TargetError::Paused { name: label }),
                RunState::Restarting => Err(TargetError::Restarting { name: label }),
                RunState::Stopped(state) => Err(TargetError::NotRunning {
                    name: label,
                    state: state.clone(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeEngine;

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

    fn go(target: &str) -> Result<Resolved, TargetError> {
        resolve(&target.parse().unwrap(), || Ok(engine()))
    }

    #[test]
    fn names_ids_and_prefixes_resolve() {
        assert_eq!(go("web").unwrap().pid, 10);
        assert_eq!(go("aaab").unwrap().pid, 11);
        assert_eq!(go("aaaa1111").unwrap().pid, 10);
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
    fn pid_targets_never_touch_the_engine() {
        let r =
            resolve::<FakeEngine>(&"pid:77".parse().unwrap(), || panic!("engine asked")).unwrap();
        assert_eq!((r.pid, r.container.is_none()), (77, true));
    }
}
