//! `dlx doctor` flags.

use clap::Args;

/// Check whether dlx can enter TARGET, and what would help if not.
///
/// Each line is one check: `ok`, `warn` (entering works, with a limit) or `fail`
/// (entering would fail), followed by the flag or step that helps. Exit status: 0
/// when entering would work, 1 when a check fails.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  dlx doctor web\n  dlx doctor pid:4242")]
pub struct DoctorArgs {
    /// Container name, ID, unique ID prefix, or pid:N for a host process
    pub target: String,
}
