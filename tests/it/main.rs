//! The one integration-test binary. Each area has its own module; `util` holds the
//! shared harness (the dlx binary, the engine, images made without a registry).
//!
//! These tests drive the real Docker engine and the real kernel: they need root and a
//! running engine (`scripts/test.sh` provides both). They fail, loudly, when either is
//! missing: nothing here passes by skipping.

mod apt;
mod build;
mod build_util;
mod engines;
mod exec;
mod session;
mod toolbox;
mod util;
