//! Builds dlx's two C programs, for the target dlx is built for, by the C compiler
//! that target's other C code (liblzma, zstd) uses:
//! - the toolbox's loader guard (`toolbox/guard.c`, see `src/toolbox/mod.rs`'s
//!   `GUARD`): a shared object with no libc and no dependency;
//! - the launcher (`src/launch/launcher.c`, see `src/launch/mod.rs`): a static
//!   program with no libc, the image a session's enterer ends in.
//!
//! Both must be the same bytes from every build of the same source (a toolbox's
//! digest covers the guard): no build ID, no symbol table.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    compile(
        "toolbox/guard.c",
        &out.join("dlx-guard.so"),
        &[
            // dlx links statically (crt-static): cc then adds `-static`, which the
            // guard, a shared object either way, must not get.
            "-shared",
            "-fPIC",
            // Every symbol resolved at link time (there is nothing to bind it to).
            "-Wl,-z,defs",
            "-Wl,-z,now",
        ],
    );
    compile(
        "src/launch/launcher.c",
        &out.join("dlx-launcher"),
        &[
            "-static",
            "-no-pie",
            "-fno-pie",
            "-fno-builtin",
            "-fno-asynchronous-unwind-tables",
            "-Wall",
            "-Werror",
        ],
    );
}

fn compile(source: &str, out: &Path, flags: &[&str]) {
    println!("cargo:rerun-if-changed={source}");
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .debug(false)
        .opt_level_str("s")
        .get_compiler();
    let mut cmd = Command::new(compiler.path());
    cmd.envs(compiler.get_envs()).args(
        compiler
            .args()
            .iter()
            .filter(|a| *a != "-static" && *a != "-fPIC"),
    );
    cmd.args([
        "-nostdlib",
        "-ffreestanding",
        "-fno-stack-protector",
        "-Wl,--build-id=none",
        "-s",
    ])
    .args(flags)
    .arg("-o")
    .arg(out)
    .arg(source);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler for {source}: {e}"));
    assert!(status.success(), "the C compiler failed on {source}");
}
