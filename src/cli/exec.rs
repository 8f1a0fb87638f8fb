//! `dlx exec` flags, spelled as `docker exec` spells them.

use std::path::PathBuf;

use clap::Args;

use super::FanoutArgs;

/// Run a command inside a running container, as the container itself.
///
/// dlx resolves TARGET through the Docker API (or takes a host PID), pins the
/// container's init process with a pidfd, joins its namespaces and cgroup, and runs
/// CMD with the container's user, environment, working directory and capabilities,
/// like `docker exec` would, without needing a shell or any tool in the image.
/// Exit status: the command's own; 128+N when it is killed by signal N; 125 when dlx
/// itself fails; 126 when the command cannot be executed; 127 when it is not found.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  dlx exec web -- ls /\n  dlx exec -u 0 web -- id\n  \
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

    /// Append the session's audit record (one JSON line) to FILE
    #[arg(long, value_name = "FILE", default_value = crate::audit::DEFAULT_PATH)]
    pub audit_log: PathBuf,

    /// Container name, ID, unique ID prefix, or pid:N for a host process
    #[arg(required_unless_present_any = ["filter", "all"])]
    pub target: Option<String>,

    /// The command and its arguments
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,

    #[command(flatten)]
    pub fanout: FanoutArgs,
}
