//! Tracing set-up: `-v` (repeatable), `-q`, or `DLX_LOG` (an `EnvFilter` directive).
//! Logs go to stderr; stdout stays data.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `DLX_LOG` wins over the flags.
pub fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "dlx=info",
        (false, 2) => "dlx=debug",
        (false, _) => "trace",
    };
    let filter = std::env::var("DLX_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}
