//! Command-line arguments plus environment, resolved into typed settings. Nothing
//! below this layer sees a clap struct or reads dlx's own environment.

use std::str::FromStr;

use crate::cli::ExecArgs;
use crate::ns::{NsKind, UnknownNs};

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
        if s.is_empty() {
            return Err(SettingsError::EmptyTarget);
        }
        Ok(TargetSpec::Container(
            s.strip_prefix("docker://").unwrap_or(s).to_string(),
        ))
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
    pub docker_host: Option<String>,
    pub api_version: Option<String>,
    /// The `-e KEY` entries whose value came from dlx's own environment.
    pub copied_env: Vec<String>,
    /// Where the session's audit record is appended.
    pub audit_log: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid target {0:?}\nhint: use pid:N with a positive process ID")]
    BadPid(String),
    #[error("empty target\nhint: name a container, an ID prefix, or pid:N")]
    EmptyTarget,
    #[error("no command given\nhint: say what to run, e.g. `dlx exec web -- ls /`")]
    NoCommand,
    #[error("invalid environment variable {0:?}\nhint: use -e KEY=VALUE or -e KEY")]
    BadEnv(String),
    #[error(
        "relative working directory {0:?}\nhint: -w takes an absolute path inside the container"
    )]
    RelativeWorkdir(String),
    #[error(transparent)]
    Ns(#[from] UnknownNs),
}

/// Environment variables dlx itself reads; the only ones it keeps when it re-executes
/// itself before entering a container.
pub const OWN_ENV: [&str; 4] = ["DOCKER_HOST", "DOCKER_API_VERSION", "DLX_LOG", "NO_COLOR"];

impl ExecSettings {
    /// Resolve `args`, reading dlx's environment through `env`.
    pub fn resolve(
        args: ExecArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let target = args.target.as_deref().unwrap_or_default().parse()?;
        if args.command.is_empty() {
            return Err(SettingsError::NoCommand);
        }
        let mut vars = Vec::new();
        let mut copied = Vec::new();
        for item in &args.env {
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
                        copied.push(format!("{item}={v}"));
                    }
                }
            }
        }
        if let Some(w) = &args.workdir {
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
            user: args.user,
            workdir: args.workdir,
            env: vars,
            namespaces,
            privileged: args.privileged,
            join_cgroup: !args.no_cgroup,
            docker_host: env("DOCKER_HOST"),
            api_version: env("DOCKER_API_VERSION"),
            copied_env: copied,
            audit_log: args.audit_log,
        })
    }

    /// The environment dlx keeps for itself when it re-executes before entering:
    /// its own settings and the values `-e KEY` copied, nothing else of the host.
    pub fn own_env(&self, env: impl Fn(&str) -> Option<String>) -> Vec<String> {
        let own = OWN_ENV
            .iter()
            .filter_map(|k| env(k).map(|v| format!("{k}={v}")));
        own.chain(self.copied_env.iter().cloned()).collect()
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
        let key = item.split_once('=').map(|(k, _)| k).unwrap_or(item);
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
}
