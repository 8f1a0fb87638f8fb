//! `dlx exec` flags, spelled as `docker exec` spells them.

use clap::Args;

use super::EngineArg;

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
                        dlx exec --ns net,uts pid:4242 -- hostname"
)]
pub struct ExecArgs {
    /// Keep stdin open and pass it to the command
    #[arg(short, long)]
    pub interactive: bool,

    /// Allocate a pseudo-terminal for the command
    #[arg(short, long)]
    pub tty: bool,

    /// USER[:GROUP], numeric or a name from the container's own /etc/passwd and /etc/group
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Set an environment variable (KEY=VALUE, or KEY to copy it from dlx's environment)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Join only these namespaces (comma-separated: mnt,uts,ipc,net,pid,cgroup,user,time)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub ns: Option<Vec<String>>,

    /// Keep dlx's full capability set instead of the container's (logged)
    #[arg(long)]
    pub privileged: bool,

    /// Stay in dlx's own cgroup instead of joining the container's
    #[arg(long)]
    pub no_cgroup: bool,

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

    /// Container name, ID, unique ID prefix, `docker://`, `podman://` or
    /// `containerd://[NAMESPACE/]ID`, or pid:N for a host process
    pub target: String,

    /// The command and its arguments
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}
