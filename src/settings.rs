//! Command-line arguments plus environment, resolved into typed settings. Nothing
//! below this layer sees a clap struct or reads dlx's own environment.

use std::str::FromStr;

use crate::cli::{EngineArg, ExecArgs, Format, PsArgs, PsFormat, ToolboxArgs, ToolboxCommand};
use crate::engine::{Endpoints, EngineKind, Selection};
use crate::ns::{NsKind, UnknownNs};
use crate::toolbox::{PrepareOptions, ToolboxChoice, ToolboxError};

/// What to enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A container name, full ID or unique ID prefix, asked of the engine.
    Container(String),
    /// A host process, no engine involved.
    Pid(i32),
}

impl FromStr for TargetSpec {
    type Err = SettingsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(pid) = s.strip_prefix("pid:") {
            return match pid.parse::<i32>() {
                Ok(p) if p > 0 => Ok(TargetSpec::Pid(p)),
                _ => Err(SettingsError::BadPid(s.to_string())),
            };
        }
        let (_, name) = split_scheme(s);
        if name.is_empty() {
            return Err(SettingsError::EmptyTarget);
        }
        Ok(TargetSpec::Container(name.to_string()))
    }
}

/// The engine a TARGET's scheme names (`docker://`, `podman://`, `containerd://`),
/// and the rest of it.
pub fn split_scheme(target: &str) -> (Option<EngineKind>, &str) {
    for kind in EngineKind::ALL {
        if let Some(rest) = target
            .strip_prefix(kind.name())
            .and_then(|r| r.strip_prefix("://"))
        {
            return (Some(kind), rest);
        }
    }
    (None, target)
}

/// Where to look for TARGET: its scheme, `--engine`, `--no-engine`, else any engine.
pub fn select_engine(
    target: &str,
    engine: Option<EngineArg>,
    no_engine: bool,
) -> Result<Selection, SettingsError> {
    let flag = match (engine, no_engine) {
        (Some(EngineArg::None), _) | (None, true) => Some(Selection::NoEngine),
        (Some(EngineArg::Docker), _) => Some(Selection::Only(EngineKind::Docker)),
        (Some(EngineArg::Podman), _) => Some(Selection::Only(EngineKind::Podman)),
        (Some(EngineArg::Containerd), _) => Some(Selection::Only(EngineKind::Containerd)),
        (None, false) => None,
    };
    let scheme = split_scheme(target).0.map(Selection::Only);
    match (scheme, flag) {
        (Some(a), Some(b)) if a != b => Err(SettingsError::ConflictingEngine(target.to_string())),
        (a, b) => Ok(a.or(b).unwrap_or(Selection::Auto)),
    }
}

/// The engines' sockets, from dlx's environment.
pub fn endpoints(env: &impl Fn(&str) -> Option<String>) -> Endpoints {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    Endpoints {
        docker_host: set("DOCKER_HOST"),
        docker_api_version: set("DOCKER_API_VERSION"),
        podman_host: set("CONTAINER_HOST"),
        containerd_address: set("CONTAINERD_ADDRESS"),
    }
}

/// Settings of one `dlx ps`.
#[derive(Debug, Clone)]
pub struct PsSettings {
    pub selection: Selection,
    pub endpoints: Endpoints,
    pub json: bool,
}

impl PsSettings {
    pub fn resolve(args: PsArgs, env: impl Fn(&str) -> Option<String>) -> Self {
        let selection = match (args.engine, args.no_engine) {
            (Some(EngineArg::None), _) | (None, true) => Selection::NoEngine,
            (Some(EngineArg::Docker), _) => Selection::Only(EngineKind::Docker),
            (Some(EngineArg::Podman), _) => Selection::Only(EngineKind::Podman),
            (Some(EngineArg::Containerd), _) => Selection::Only(EngineKind::Containerd),
            (None, false) => Selection::Auto,
        };
        PsSettings {
            selection,
            endpoints: endpoints(&env),
            json: args.format == PsFormat::Json,
        }
    }
}

/// `--toolbox` as given: absent (the default toolbox), `none`, or a directory.
fn toolbox_choice(value: Option<&str>) -> ToolboxChoice {
    match value {
        None => ToolboxChoice::Default,
        Some("none") => ToolboxChoice::None,
        Some(dir) => ToolboxChoice::Dir(dir.into()),
    }
}

/// Settings of one `dlx exec`.
#[derive(Debug, Clone)]
pub struct ExecSettings {
    pub target: TargetSpec,
    pub command: Vec<String>,
    pub interactive: bool,
    pub tty: bool,
    /// `-u`; `None` means the container's configured user.
    pub user: Option<String>,
    /// `-w`; `None` means the container's configured working directory.
    pub workdir: Option<String>,
    /// `-e`, resolved to `KEY=VALUE`, in order.
    pub env: Vec<String>,
    /// `--ns`; `None` means every namespace that differs.
    pub namespaces: Option<Vec<NsKind>>,
    pub privileged: bool,
    pub join_cgroup: bool,
    /// Where to look for the target (`--engine`, `--no-engine`, the target's scheme).
    pub engine: Selection,
    /// The engines' sockets.
    pub endpoints: Endpoints,
    pub toolbox: ToolboxChoice,
    /// `--host-tools`: host binaries in the container's net, uts and ipc namespaces.
    pub host_tools: bool,
    /// `--forensic`: read-only view, toolbox first in PATH, no cgroup join.
    pub forensic: bool,
    /// Where the session's audit record is appended.
    pub audit_log: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid target {0:?}\nhint: use pid:N with a positive process ID")]
    BadPid(String),
    #[error("empty target\nhint: name a container, an ID prefix, or pid:N")]
    EmptyTarget,
    #[error("no command given\nhint: say what to run, e.g. `dlx exec web -- ls /`, or open the toolbox shell with `dlx exec -it web` (or `dlx shell web`)")]
    NoCommand,
    #[error("no command given and no toolbox to bring a shell from\nhint: name a command the container has, or drop --toolbox none")]
    NoShell,
    #[error("invalid environment variable {0:?}\nhint: use -e KEY=VALUE or -e KEY")]
    BadEnv(String),
    #[error(
        "relative working directory {0:?}\nhint: -w takes an absolute path inside the container"
    )]
    RelativeWorkdir(String),
    #[error("target {0:?} names another engine than --engine/--no-engine\nhint: drop one of them")]
    ConflictingEngine(String),
    #[error(transparent)]
    Ns(#[from] UnknownNs),
}

impl ExecSettings {
    /// Resolve `args`, reading dlx's environment through `env`.
    pub fn resolve(
        args: ExecArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let target_text = args.target.clone().unwrap_or_default();
        let target = target_text.parse()?;
        let mut engine = select_engine(&target_text, args.engine, args.no_engine)?;
        // `DOCKER_HOST` names the engine as surely as `--engine docker` does: a
        // container missing there is not looked for elsewhere.
        if engine == Selection::Auto && env("DOCKER_HOST").is_some_and(|h| !h.is_empty()) {
            engine = Selection::Only(EngineKind::Docker);
        }
        let toolbox = toolbox_choice(args.toolbox.as_deref());
        // Without a command, -i opens the toolbox shell.
        if args.command.is_empty() {
            if !args.interactive || args.host_tools {
                return Err(SettingsError::NoCommand);
            }
            if toolbox == ToolboxChoice::None {
                return Err(SettingsError::NoShell);
            }
        }
        let mut vars = Vec::new();
        for item in &args.session.env {
            match item.split_once('=') {
                Some(("", _)) => return Err(SettingsError::BadEnv(item.clone())),
                Some(_) => vars.push(item.clone()),
                // docker's rule: `-e KEY` copies KEY from the caller, or sets nothing.
                None => {
                    if item.is_empty() {
                        return Err(SettingsError::BadEnv(item.clone()));
                    }
                    if let Some(v) = env(item) {
                        vars.push(format!("{item}={v}"));
                    }
                }
            }
        }
        if let Some(w) = &args.session.workdir {
            if !w.starts_with('/') {
                return Err(SettingsError::RelativeWorkdir(w.clone()));
            }
        }
        let namespaces = match &args.ns {
            Some(list) => Some(
                list.iter()
                    .map(|s| s.parse())
                    .collect::<Result<Vec<NsKind>, _>>()?,
            ),
            None => None,
        };
        Ok(ExecSettings {
            target,
            command: args.command,
            interactive: args.interactive,
            tty: args.tty,
            user: args.session.user,
            workdir: args.session.workdir,
            env: vars,
            namespaces,
            privileged: args.privileged,
            join_cgroup: !args.no_cgroup && !args.forensic && !args.host_tools,
            toolbox,
            host_tools: args.host_tools,
            forensic: args.forensic,
            engine,
            endpoints: endpoints(&env),
            audit_log: args.audit_log,
        })
    }
}

/// What `dlx toolbox` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolboxAction {
    /// Describe the current toolbox, as text or JSON.
    Show { json: bool },
    /// Assemble it now.
    Fetch,
}

/// Settings of one `dlx toolbox`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolboxSettings {
    pub action: ToolboxAction,
    pub options: PrepareOptions,
}

impl ToolboxSettings {
    /// Resolve `args` for this host (cache directory, architecture, whether stderr
    /// is a terminal).
    pub fn resolve(args: ToolboxArgs) -> Result<Self, ToolboxError> {
        let mut options = PrepareOptions::for_host()?;
        let action = match args.command {
            Some(ToolboxCommand::Fetch(fetch)) => {
                options.mirror = fetch.mirror;
                ToolboxAction::Fetch
            }
            None => ToolboxAction::Show {
                json: args.format == Format::Json,
            },
        };
        Ok(ToolboxSettings { action, options })
    }
}

/// The default `PATH` docker gives a container without one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The command's environment, built the way `docker exec` builds it: PATH,
/// HOSTNAME and (with a terminal) TERM first, the container's configured `Env` over them, `-e` over that, and
/// HOME from the user's passwd entry when nothing set it. dlx's own environment and
/// the target's `/proc/<pid>/environ` never contribute.
pub fn compose_env(
    container_env: &[String],
    hostname: Option<&str>,
    tty: bool,
    extra: &[String],
    home: &str,
) -> Vec<String> {
    let mut env: Vec<String> = vec![format!("PATH={DEFAULT_PATH}")];
    if let Some(h) = hostname.filter(|h| !h.is_empty()) {
        env.push(format!("HOSTNAME={h}"));
    }
    if tty {
        env.push("TERM=xterm".into());
    }
    for item in container_env.iter().chain(extra) {
        let key = env_key(item);
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map(|(k, _)| k) == Some(key))
        {
            Some(slot) => *slot = item.clone(),
            None => env.push(item.clone()),
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

/// Put the toolbox's `bin` into `PATH`: last, so the container's own tools win, or
/// first (forensic sessions), so trusted tools win over possibly trojaned ones.
pub fn with_toolbox_path(env: &mut [String], bin: &str, first: bool) {
    for item in env.iter_mut() {
        if let Some(path) = item.strip_prefix("PATH=") {
            let path = path.split(':').filter(|d| *d != bin && !d.is_empty());
            let mut dirs: Vec<&str> = path.collect();
            if first {
                dirs.insert(0, bin);
            } else {
                dirs.push(bin);
            }
            *item = format!("PATH={}", dirs.join(":"));
            return;
        }
    }
}

/// Variables through which a shell or an editor of the toolbox runs code or reads
/// files as it starts or prompts: an interactive shell sources the file `ENV` names;
/// BusyBox ash expands `PS1`, `PS2` and `PS4` each time it shows them, command
/// substitutions included; `HISTFILE` is where a shell keeps what the operator
/// types; BusyBox vi runs the ex commands of `EXINIT` (`:!CMD` included), or else
/// of `$HOME/.exrc`.
pub const SHELL_STARTUP: [&str; 6] = ["ENV", "PS1", "PS2", "PS4", "HISTFILE", "EXINIT"];

/// What `EXINIT` becomes when the container's is dropped: an empty ex command, so vi
/// does nothing at start and reads no `.exrc` either.
const NO_EXINIT: &str = "EXINIT=:";

/// Make `env` one in which the container's configuration cannot run code in a shell
/// or editor of the session: drop the [`SHELL_STARTUP`] variables but those the
/// operator gave (`operator`, the `-e` list), give vi an `EXINIT` that does nothing,
/// then set dlx's `prompt` (`PS1=...`), if any; the operator's own always win.
/// Without this, an `ENV` of the container's config makes the toolbox's shell source
/// a script of the container's, whose functions can stand in for the toolbox's tools
/// (a `ps` that hides a process).
pub fn clean_shell_startup(env: &mut Vec<String>, operator: &[String], prompt: Option<String>) {
    let given = |key: &str| env_value(operator, key).is_some();
    env.retain(|item| {
        let key = env_key(item);
        !SHELL_STARTUP.contains(&key) || given(key)
    });
    for default in std::iter::once(NO_EXINIT.to_string()).chain(prompt) {
        if env_value(env, env_key(&default)).is_none() {
            env.push(default);
        }
    }
}

/// The key of a `KEY=VALUE` item (the whole item when it has no `=`).
fn env_key(item: &str) -> &str {
    item.split_once('=').map_or(item, |(k, _)| k)
}

/// The value of `key` in a `KEY=VALUE` list.
pub fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|e| e.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(argv: &[&str]) -> Result<ExecSettings, SettingsError> {
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        let crate::cli::Command::Exec(args) = cli.command else {
            panic!("not exec")
        };
        ExecSettings::resolve(args, |k| (k == "FROM_HOST").then(|| "yes".to_string()))
    }

    #[test]
    fn targets_parse() {
        assert_eq!(
            "web".parse::<TargetSpec>().unwrap(),
            TargetSpec::Container("web".into())
        );
        assert_eq!("pid:42".parse::<TargetSpec>().unwrap(), TargetSpec::Pid(42));
        assert!("pid:0".parse::<TargetSpec>().is_err());
        assert!("pid:x".parse::<TargetSpec>().is_err());
        assert_eq!(
            "containerd://k8s.io/4f3a".parse::<TargetSpec>().unwrap(),
            TargetSpec::Container("k8s.io/4f3a".into())
        );
        assert!("podman://".parse::<TargetSpec>().is_err());
    }

    #[test]
    fn engine_comes_from_the_scheme_or_the_flags() {
        use EngineKind::*;
        let sel = |t: &str, e: Option<EngineArg>, none: bool| select_engine(t, e, none);
        assert_eq!(sel("web", None, false).unwrap(), Selection::Auto);
        assert_eq!(
            sel("docker://web", None, false).unwrap(),
            Selection::Only(Docker)
        );
        assert_eq!(
            sel("podman://web", None, false).unwrap(),
            Selection::Only(Podman)
        );
        assert_eq!(
            sel("containerd://moby/4f3a", None, false).unwrap(),
            Selection::Only(Containerd)
        );
        assert_eq!(
            sel("web", Some(EngineArg::Podman), false).unwrap(),
            Selection::Only(Podman)
        );
        assert_eq!(sel("4f3a", None, true).unwrap(), Selection::NoEngine);
        assert_eq!(
            sel("4f3a", Some(EngineArg::None), false).unwrap(),
            Selection::NoEngine
        );
        assert_eq!(
            sel("podman://web", Some(EngineArg::Podman), false).unwrap(),
            Selection::Only(Podman)
        );
        assert!(matches!(
            sel("podman://web", Some(EngineArg::Docker), false),
            Err(SettingsError::ConflictingEngine(_))
        ));
        assert!(sel("docker://4f3a", None, true).is_err());
        // A name that merely contains a scheme-like word is a name.
        assert_eq!(split_scheme("dockerd"), (None, "dockerd"));
    }

    #[test]
    fn docker_host_selects_docker() {
        let args = |target: &str| {
            let cli = crate::cli::Cli::try_parse_from(["dlx", "exec", target, "--", "ls"]).unwrap();
            let crate::cli::Command::Exec(args) = cli.command else {
                panic!("not exec")
            };
            args
        };
        let with_host = |k: &str| (k == "DOCKER_HOST").then(|| "unix:///x.sock".to_string());
        let s = ExecSettings::resolve(args("web"), with_host).unwrap();
        assert_eq!(s.engine, Selection::Only(EngineKind::Docker));
        let s = ExecSettings::resolve(args("podman://web"), with_host).unwrap();
        assert_eq!(s.engine, Selection::Only(EngineKind::Podman));
        let s = ExecSettings::resolve(args("web"), |_| None).unwrap();
        assert_eq!(s.engine, Selection::Auto);
    }

    #[test]
    fn engine_sockets_come_from_the_environment() {
        let env = |k: &str| match k {
            "CONTAINER_HOST" => Some("unix:///tmp/podman.sock".to_string()),
            "CONTAINERD_ADDRESS" => Some(String::new()),
            _ => None,
        };
        let e = endpoints(&env);
        assert_eq!(e.podman_host.as_deref(), Some("unix:///tmp/podman.sock"));
        assert_eq!(e.containerd_address, None);
    }

    #[test]
    fn docker_spelled_flags_resolve() {
        let s = parse(&[
            "dlx",
            "exec",
            "-i",
            "-u",
            "65532:65532",
            "-w",
            "/tmp",
            "-e",
            "A=1",
            "-e",
            "FROM_HOST",
            "-e",
            "MISSING",
            "--ns",
            "net,uts",
            "web",
            "--",
            "ls",
            "-l",
        ])
        .unwrap();
        assert!(s.interactive);
        assert_eq!(s.user.as_deref(), Some("65532:65532"));
        assert_eq!(s.env, vec!["A=1", "FROM_HOST=yes"]);
        assert_eq!(s.namespaces, Some(vec![NsKind::Net, NsKind::Uts]));
        assert_eq!(s.command, vec!["ls", "-l"]);
    }

    #[test]
    fn bad_input_is_refused_with_a_hint() {
        assert!(matches!(
            parse(&["dlx", "exec", "web"]),
            Err(SettingsError::NoCommand)
        ));
        assert!(matches!(
            parse(&["dlx", "exec", "-w", "tmp", "web", "ls"]),
            Err(SettingsError::RelativeWorkdir(_))
        ));
        let err = parse(&["dlx", "exec", "--ns", "nett", "web", "ls"]).unwrap_err();
        assert!(err.to_string().contains("hint:"));
    }

    #[test]
    fn interactive_without_command_means_the_toolbox_shell() {
        let s = parse(&["dlx", "exec", "-it", "web"]).unwrap();
        assert!(s.command.is_empty());
        assert_eq!(s.toolbox, ToolboxChoice::Default);
        assert!(matches!(
            parse(&["dlx", "exec", "-it", "--toolbox", "none", "web"]),
            Err(SettingsError::NoShell)
        ));
        let s = parse(&["dlx", "exec", "--toolbox", "/opt/tools", "web", "ls"]).unwrap();
        assert_eq!(s.toolbox, ToolboxChoice::Dir("/opt/tools".into()));
    }

    #[test]
    fn forensic_and_host_tools_do_not_join_the_cgroup() {
        assert!(parse(&["dlx", "exec", "web", "ls"]).unwrap().join_cgroup);
        assert!(
            !parse(&["dlx", "exec", "--forensic", "web", "ls"])
                .unwrap()
                .join_cgroup
        );
        assert!(
            !parse(&["dlx", "exec", "--host-tools", "web", "ss"])
                .unwrap()
                .join_cgroup
        );
    }

    #[test]
    fn host_tools_refuses_flags_that_would_reach_into_the_container() {
        for flag in [
            &["--toolbox", "none"][..],
            &["--forensic"],
            &["-u", "0"],
            &["--ns", "pid"],
        ] {
            let mut argv = vec!["dlx", "exec", "--host-tools"];
            argv.extend_from_slice(flag);
            argv.extend_from_slice(&["web", "ss"]);
            assert!(crate::cli::Cli::try_parse_from(&argv).is_err(), "{flag:?}");
        }
    }

    #[test]
    fn toolbox_bin_goes_last_or_first_in_path() {
        let mut env = vec!["HOME=/".to_string(), "PATH=/usr/bin:/bin".to_string()];
        with_toolbox_path(&mut env, "/.dlx/bin", false);
        assert_eq!(env[1], "PATH=/usr/bin:/bin:/.dlx/bin");
        with_toolbox_path(&mut env, "/.dlx/bin", true);
        assert_eq!(env[1], "PATH=/.dlx/bin:/usr/bin:/bin");
    }

    #[test]
    fn toolbox_flags_resolve() {
        let resolve = |argv: &[&str]| {
            let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
            let crate::cli::Command::Toolbox(args) = cli.command else {
                panic!("not toolbox")
            };
            ToolboxSettings::resolve(args).unwrap()
        };
        assert_eq!(
            resolve(&["dlx", "toolbox"]).action,
            ToolboxAction::Show { json: false }
        );
        assert_eq!(
            resolve(&["dlx", "toolbox", "--format", "json"]).action,
            ToolboxAction::Show { json: true }
        );
        let fetch = resolve(&["dlx", "toolbox", "fetch", "--mirror", "http://m/debian"]);
        assert_eq!(fetch.action, ToolboxAction::Fetch);
        assert_eq!(fetch.options.mirror.as_deref(), Some("http://m/debian"));
        assert!(crate::cli::Cli::try_parse_from(["dlx", "toolbox", "--format", "yaml"]).is_err());
    }

    #[test]
    fn env_is_built_like_docker_exec() {
        let env = compose_env(
            &["PATH=/app/bin".into(), "LANG=C".into()],
            Some("abc123"),
            false,
            &["LANG=C.UTF-8".into()],
            "/home/nonroot",
        );
        assert_eq!(
            env,
            vec![
                "PATH=/app/bin",
                "HOSTNAME=abc123",
                "LANG=C.UTF-8",
                "HOME=/home/nonroot"
            ]
        );
        assert_eq!(env_value(&env, "PATH"), Some("/app/bin"));
    }

    #[test]
    fn shell_startup_variables_of_the_container_are_dropped_but_the_operators_kept() {
        let operator: Vec<String> = vec!["PS2=mine> ".into()];
        let mut env = compose_env(
            &[
                "ENV=/e.sh".into(),
                "PS1=$(evil)".into(),
                "PS2=$(evil)".into(),
                "PS4=$(evil)".into(),
                "HISTFILE=/h".into(),
                "EXINIT=:!evil".into(),
                "ENVIRONMENT=prod".into(),
            ],
            None,
            false,
            &operator,
            "/",
        );
        clean_shell_startup(&mut env, &operator, Some("PS1=dlx$ ".into()));
        assert_eq!(
            env,
            vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "PS2=mine> ",
                "ENVIRONMENT=prod",
                "HOME=/",
                "EXINIT=:",
                "PS1=dlx$ ",
            ]
        );
        // The operator's EXINIT stays.
        let operator: Vec<String> = vec!["EXINIT=set ai".into()];
        let mut env = compose_env(&["EXINIT=:!evil".into()], None, false, &operator, "/");
        clean_shell_startup(&mut env, &operator, None);
        assert_eq!(env_value(&env, "EXINIT"), Some("set ai"));
        // An operator's PS1 wins over dlx's prompt; no prompt, none set.
        let operator: Vec<String> = vec!["PS1=op$ ".into()];
        let mut env = compose_env(&["PS1=$(evil)".into()], None, false, &operator, "/");
        clean_shell_startup(&mut env, &operator, Some("PS1=dlx$ ".into()));
        assert_eq!(env_value(&env, "PS1"), Some("op$ "));
        let mut env = compose_env(&["PS1=$(evil)".into()], None, false, &[], "/");
        clean_shell_startup(&mut env, &[], None);
        assert_eq!(env_value(&env, "PS1"), None);
    }
}
