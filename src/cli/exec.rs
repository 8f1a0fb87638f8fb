//! `dlx exec` flags, spelled as `docker exec` spells them.

use std::path::PathBuf;

use clap::Args;

use super::{EngineArg, FanoutArgs};

/// Run a command inside a running container, as the container itself.
///
/// dlx resolves TARGET through a container engine (Docker, Podman, containerd), or
/// the host's cgroups when there is none, or takes a host PID; it pins the
/// container's init process with a pidfd, joins its namespaces and cgroup, and runs
/// CMD with the container's user, environment, working directory and capabilities,
/// like `docker exec` would, without needing a shell or any tool in the image.
/// Exit status: the command's own; 128+N when it is killed by signal N; 125 when dlx
/// itself fails; 126 when the command cannot be executed; 127 when it is not found.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  dlx exec web -- ls /\n  dlx exec -u 0 web -- id\n  \
                        dlx exec podman://db -- ls /var/lib\n  \
                        dlx exec containerd://k8s.io/4f3a9c -- ls /\n  \
                        dlx exec --no-engine 4f3a9c -- ls /\n  \
                        dlx exec web -- ss -tulpn\n  \
                        dlx exec -it web\n  \
                        dlx exec --host-tools web -- tcpdump -ni any -c 10\n  \
                        dlx exec --ns net,uts pid:4242 -- hostname"
)]
pub struct ExecArgs {
    /// Keep stdin open and pass it to the command
    #[arg(short, long)]
    pub interactive: bool,

    /// Allocate a pseudo-terminal for the command
    #[arg(short, long)]
    pub tty: bool,

    #[command(flatten)]
    pub session: SessionArgs,

    /// Join only these namespaces (comma-separated: mnt,uts,ipc,net,pid,cgroup,user,time)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub ns: Option<Vec<String>>,

    /// Keep dlx's full capability set instead of the container's (logged)
    #[arg(long)]
    pub privileged: bool,

    /// Stay in dlx's own cgroup instead of joining the container's
    #[arg(long)]
    pub no_cgroup: bool,

    /// Tools to bring: the default toolbox (BusyBox, ss, ip, tcpdump, strace, curl,
    /// lsof), a DIR of static tools, or `none` for only what the container has. The
    /// tools appear read-only at /.dlx (their bin/ last in PATH) in a private view of
    /// the container's filesystem that the container never sees
    #[arg(long, value_name = "DIR|none")]
    pub toolbox: Option<String>,

    /// Run the host's own binaries with the host's filesystem, in the container's
    /// network, uts and ipc namespaces only (what nsenter recipes do). Such a process
    /// holds the host filesystem, so it never joins the container's PID, mount, user
    /// or cgroup namespace or its cgroup: nothing in the container can see, signal or
    /// trace it. It runs as you, with your capabilities
    #[arg(long, conflicts_with_all = ["toolbox", "forensic", "ns", "user", "privileged"])]
    pub host_tools: bool,

    /// Forensic session: the container's filesystem is read-only in the session's
    /// private view, the toolbox comes first in PATH (trusted tools over the
    /// container's), and the container's cgroup is not joined
    #[arg(long)]
    pub forensic: bool,

    /// The engine to ask about TARGET [default: docker when DOCKER_HOST is set, else
    /// the first of docker, podman, containerd that knows it]
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub engine: Option<EngineArg>,

    /// Find TARGET (a container ID or unique ID prefix) in the host's /proc/*/cgroup,
    /// asking no engine
    ///
    /// For a hung, absent or distrusted engine. The container's init is the process
    /// of its cgroup that is PID 1 of its PID namespace. What only the engine knows is
    /// not guessed: the command gets an empty environment (PATH set to the default;
    /// the process's own environ is never trusted), the init's uid:gid, and / as
    /// working directory. dlx also does this by itself, and says so, when the engine
    /// does not answer within 2 seconds.
    #[arg(long, conflicts_with = "engine")]
    pub no_engine: bool,

    /// Append the session's audit record (one JSON line) to FILE
    #[arg(long, value_name = "FILE", default_value = crate::audit::DEFAULT_PATH)]
    pub audit_log: PathBuf,

    /// Container name, ID, unique ID prefix, `docker://`, `podman://` or
    /// `containerd://[NAMESPACE/]ID`, or pid:N for a host process
    #[arg(required_unless_present_any = ["filter", "all"])]
    pub target: Option<String>,

    /// The command and its arguments (default with -i: the toolbox shell)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,

    #[command(flatten)]
    pub fanout: FanoutArgs,
}

/// Who the command runs as, where, and with what added to its environment: the
/// flags `dlx exec` and `dlx shell` share.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// USER[:GROUP], numeric or a name from the container's own /etc/passwd and /etc/group
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Set an environment variable (KEY=VALUE, or KEY to copy it from dlx's environment)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
}

/// Open an interactive toolbox shell in a running container (`dlx exec -it TARGET`).
#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub session: SessionArgs,

    /// Tools to bring: a DIR of static tools instead of the default toolbox
    #[arg(long, value_name = "DIR")]
    pub toolbox: Option<String>,

    /// Forensic session (see `dlx exec --help`)
    #[arg(long)]
    pub forensic: bool,

    /// Append the session's audit record (one JSON line) to FILE
    #[arg(long, value_name = "FILE", default_value = crate::audit::DEFAULT_PATH)]
    pub audit_log: PathBuf,

    /// The engine to ask about TARGET (see `dlx exec --help`)
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub engine: Option<EngineArg>,

    /// Find TARGET (an ID or unique ID prefix) in the host's cgroups, asking no
    /// engine (see `dlx exec --help`)
    #[arg(long, conflicts_with = "engine")]
    pub no_engine: bool,

    /// Container name, ID, unique ID prefix, `docker://`, `podman://` or
    /// `containerd://[NAMESPACE/]ID`, or pid:N for a host process
    pub target: String,
}

impl ShellArgs {
    /// The `dlx exec` this shell is: interactive, with a terminal when stdin is one.
    pub fn into_exec(self, stdin_is_tty: bool) -> ExecArgs {
        ExecArgs {
            interactive: true,
            tty: stdin_is_tty,
            session: self.session,
            ns: None,
            privileged: false,
            no_cgroup: false,
            toolbox: self.toolbox,
            host_tools: false,
            forensic: self.forensic,
            audit_log: self.audit_log,
            fanout: FanoutArgs {
                filter: Vec::new(),
                all: false,
            },
            engine: self.engine,
            no_engine: self.no_engine,
            target: Some(self.target),
            command: Vec::new(),
        }
    }
}
