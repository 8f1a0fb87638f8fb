//! Canned engine answers for unit tests.

use super::{ContainerInfo, Engine, EngineError, RunState};

/// Serves the containers it was given, by name, ID or ID prefix.
pub struct FakeEngine {
    pub containers: Vec<ContainerInfo>,
}

impl FakeEngine {
    /// A running container with plausible defaults.
    pub fn container(name: &str, id: &str, pid: i32) -> ContainerInfo {
        ContainerInfo {
            id: id.to_string(),
            name: name.to_string(),
            image: "probe:1".into(),
            state: RunState::Running,
            pid,
            user: String::new(),
            working_dir: String::new(),
            env: vec!["PATH=/usr/bin:/bin".into()],
            hostname: super::short_id(id).to_string(),
            group_add: Vec::new(),
            privileged: false,
        }
    }
}

impl Engine for FakeEngine {
    fn inspect(&self, target: &str) -> Result<ContainerInfo, EngineError> {
        if let Some(c) = self
            .containers
            .iter()
            .find(|c| c.id == target || c.name == target)
        {
            return Ok(c.clone());
        }
        let matches: Vec<&ContainerInfo> = self
            .containers
            .iter()
            .filter(|c| c.id.starts_with(target))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(EngineError::NotFound {
                target: target.to_string(),
            }),
            many => Err(EngineError::Ambiguous {
                prefix: target.to_string(),
                candidates: many
                    .iter()
                    .map(|c| super::candidate(&c.id, &c.name))
                    .collect(),
            }),
        }
    }

    fn list_running(&self) -> Result<Vec<ContainerInfo>, EngineError> {
        Ok(self
            .containers
            .iter()
            .filter(|c| c.state == RunState::Running)
            .cloned()
            .collect())
    }
}

/// An engine that never answers, as a missing or hung daemon.
pub struct SilentEngine;

impl Engine for SilentEngine {
    fn inspect(&self, _target: &str) -> Result<ContainerInfo, EngineError> {
        Err(EngineError::Timeout {
            host: "unix:///fake/hung.sock".into(),
            secs: 2,
        })
    }

    fn list_running(&self) -> Result<Vec<ContainerInfo>, EngineError> {
        self.inspect("").map(|_| Vec::new())
    }
}
