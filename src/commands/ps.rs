//! `dlx ps`: the running containers of every engine dlx can reach, one row each,
//! with what their images look like from the inside (shell, distroless tier).

use std::collections::BTreeSet;
use std::io::Write;
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::PsArgs;
use crate::engine::{self, Cgroups, ContainerInfo, Engine, EngineError, EngineKind, Selection};
use crate::exit::ExitStatus;
use crate::output;
use crate::settings::PsSettings;
use crate::survey;
use crate::sys;

/// One container, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// `docker`, `podman`, `containerd`, or `none` (found in the cgroups only).
    pub engine: String,
    pub id: String,
    pub name: String,
    pub image: String,
    /// Host PID of the container's init.
    pub pid: i32,
    pub user: String,
    /// The first shell found in the image, if any.
    pub shell: Option<String>,
    /// The distroless tier the image looks like (`None` when its root could not be
    /// looked at).
    pub tier: Option<String>,
}

pub fn run(args: PsArgs) -> Result<ExitStatus> {
    let settings = PsSettings::resolve(args, |k| std::env::var(k).ok());
    let connect = |kind| engine::connect(kind, &settings.endpoints);
    let listed = gather(settings.selection, &connect, &Cgroups::new(), &|s| {
        output::notice(s)
    })?;
    let rows: Vec<Row> = listed
        .into_iter()
        .map(|(engine, info)| row(engine, info))
        .collect();
    let mut stdout = std::io::stdout().lock();
    if settings.json {
        serde_json::to_writer_pretty(&mut stdout, &rows)?;
        writeln!(stdout)?;
    } else {
        stdout.write_all(table(&rows).as_bytes())?;
    }
    Ok(ExitStatus::Success)
}

/// The running containers `selection` allows, each with the engine it came from
/// (`none` for the cgroups), each container once.
///
/// `Auto` asks every engine, skipping those that do not answer, then adds what the
/// host's cgroups show that no engine listed (a container of an engine dlx cannot
/// ask, or whose engine is down). A named engine that fails is an error.
pub fn gather(
    selection: Selection,
    connect: &dyn Fn(EngineKind) -> Result<Box<dyn Engine>, EngineError>,
    cgroups: &dyn Engine,
    notice: &dyn Fn(String),
) -> Result<Vec<(String, ContainerInfo)>> {
    let mut out: Vec<(String, ContainerInfo)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut add = |engine: &str, list: Vec<ContainerInfo>, out: &mut Vec<_>| {
        for info in list {
            if seen.insert(info.id.clone()) {
                out.push((engine.to_string(), info));
            }
        }
    };
    match selection {
        Selection::NoEngine => add("none", cgroups.list_running()?, &mut out),
        Selection::Only(kind) => {
            let list = connect(kind)
                .and_then(|e| e.list_running())
                .with_context(|| format!("cannot list the containers of {kind}"))?;
            add(kind.name(), list, &mut out);
        }
        Selection::Auto => {
            for kind in EngineKind::ALL {
                match connect(kind).and_then(|e| e.list_running()) {
                    Ok(list) => add(kind.name(), list, &mut out),
                    // Not installed, or down: nothing of it to list.
                    Err(e) if e.no_answer() && !matches!(e, EngineError::Timeout { .. }) => {
                        tracing::debug!(engine = %kind, error = %e, "engine not listed");
                    }
                    Err(e) => {
                        notice(format!(
                            "{kind} not listed: {}",
                            crate::output::without_hint(&e)
                        ));
                    }
                }
            }
            add("none", cgroups.list_running()?, &mut out);
        }
    }
    Ok(out)
}

/// Look at the container's image through its init's root.
fn row(engine: String, info: ContainerInfo) -> Row {
    let findings = sys::open_proc_dir(info.pid)
        .and_then(|dir| sys::open_root(dir.as_fd()))
        .map(|root| survey::survey(root.as_fd()));
    if let Err(e) = &findings {
        tracing::debug!(pid = info.pid, error = %e, "cannot look into the container");
    }
    let findings = findings.ok();
    Row {
        engine,
        id: info.id,
        name: info.name,
        image: info.image,
        pid: info.pid,
        user: info.user,
        shell: findings.as_ref().and_then(|f| f.shell.clone()),
        tier: findings.as_ref().map(survey::tier),
    }
}

/// The rows as aligned columns, with a header.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "ENGINE", "ID", "NAME", "IMAGE", "PID", "USER", "SHELL", "TIER",
    ];
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.engine.clone(),
                engine::short_id(&r.id).to_string(),
                // containerd's `NAMESPACE/ID`, shortened like the ID column.
                match r.name.strip_suffix(r.id.as_str()) {
                    Some(ns) if !r.id.is_empty() => format!("{ns}{}", engine::short_id(&r.id)),
                    _ => dash(&r.name),
                },
                dash(&r.image),
                r.pid.to_string(),
                dash(&r.user),
                r.shell.clone().unwrap_or_else(|| "no".into()),
                r.tier.clone().unwrap_or_else(|| "?".into()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: &[String]| {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push('\n');
    };
    line(&header.map(String::from));
    for row in &cells {
        line(row);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::{FakeEngine, SilentEngine};

    #[test]
    fn every_engine_is_listed_and_each_container_once() {
        let docker = || FakeEngine::new(vec![FakeEngine::container("web", "aaaa1111", 10)]);
        let connect = |kind: EngineKind| -> Result<Box<dyn Engine>, EngineError> {
            match kind {
                EngineKind::Docker => Ok(Box::new(docker())),
                EngineKind::Podman => Err(EngineError::Unreachable {
                    host: "unix:///run/podman/podman.sock".into(),
                    reason: "no such socket".into(),
                }),
                // Docker's containers again (namespace moby), and one of its own.
                EngineKind::Containerd => Ok(Box::new(FakeEngine::new(vec![
                    FakeEngine::container("moby/aaaa1111", "aaaa1111", 10),
                    FakeEngine::container("default/job", "bbbb2222", 20),
                ]))),
            }
        };
        let cgroups = FakeEngine::new(vec![
            FakeEngine::container("aaaa1111", "aaaa1111", 10),
            FakeEngine::container("cccc3333", "cccc3333", 30),
        ]);
        let said = std::cell::RefCell::new(Vec::new());
        let got = gather(Selection::Auto, &connect, &cgroups, &|s| {
            said.borrow_mut().push(s)
        })
        .unwrap();
        let summary: Vec<(&str, i32)> = got.iter().map(|(e, c)| (e.as_str(), c.pid)).collect();
        assert_eq!(
            summary,
            vec![("docker", 10), ("containerd", 20), ("none", 30)]
        );
        assert!(said.borrow().is_empty(), "{:?}", said.borrow());

        let only = gather(Selection::NoEngine, &connect, &cgroups, &|_| {}).unwrap();
        assert_eq!(only.len(), 2);
        assert!(only.iter().all(|(e, _)| e == "none"));
    }

    #[test]
    fn a_hung_engine_is_reported_and_skipped_unless_named() {
        let connect = |kind: EngineKind| -> Result<Box<dyn Engine>, EngineError> {
            match kind {
                EngineKind::Docker => Ok(Box::new(SilentEngine)),
                _ => Err(EngineError::Unreachable {
                    host: "x".into(),
                    reason: "no such socket".into(),
                }),
            }
        };
        let cgroups = FakeEngine::new(vec![FakeEngine::container("cccc3333", "cccc3333", 30)]);
        let said = std::cell::RefCell::new(Vec::new());
        let got = gather(Selection::Auto, &connect, &cgroups, &|s| {
            said.borrow_mut().push(s)
        })
        .unwrap();
        assert_eq!(got.len(), 1);
        assert!(
            said.borrow()[0].contains("docker not listed"),
            "{:?}",
            said.borrow()
        );
        let err = gather(
            Selection::Only(EngineKind::Docker),
            &connect,
            &cgroups,
            &|_| {},
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("did not answer"), "{err:#}");
    }

    #[test]
    fn table_aligns_columns_and_marks_the_unknown() {
        let rows = vec![
            Row {
                engine: "docker".into(),
                id: "4f3a9c2be1d07a55c0de".into(),
                name: "web".into(),
                image: "gcr.io/distroless/static:nonroot".into(),
                pid: 4242,
                user: "65532".into(),
                shell: None,
                tier: Some("static".into()),
            },
            Row {
                engine: "none".into(),
                id: "bbbb".into(),
                name: String::new(),
                image: String::new(),
                pid: 7,
                user: "0:0".into(),
                shell: Some("/bin/sh".into()),
                tier: None,
            },
        ];
        let mut rows = rows;
        rows.push(Row {
            engine: "containerd".into(),
            id: "c".repeat(64),
            name: format!("default/{}", "c".repeat(64)),
            image: "docker.io/app:1".into(),
            pid: 9,
            user: "0:0".into(),
            shell: None,
            tier: Some("cc".into()),
        });
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[3].contains(&format!(" default/{} ", "c".repeat(12))),
            "{t}"
        );
        let words = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            words(lines[1]),
            [
                "docker",
                "4f3a9c2be1d0",
                "web",
                "gcr.io/distroless/static:nonroot",
                "4242",
                "65532",
                "no",
                "static"
            ]
        );
        assert_eq!(
            words(lines[2]),
            ["none", "bbbb", "-", "-", "7", "0:0", "/bin/sh", "?"]
        );
        // Columns start where their headers do.
        for (header, value) in [("PID", "4242"), ("SHELL", "no"), ("TIER", "static")] {
            assert_eq!(lines[0].find(header), lines[1].rfind(value), "{t}");
        }
    }
}
