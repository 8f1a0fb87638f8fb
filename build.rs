//! Builds the toolbox's loader guard (`toolbox/guard.c`, see `src/toolbox/mod.rs`'s
//! `GUARD`): a shared object with no libc and no dependency, for the target dlx is
//! built for, by the C compiler that target's other C code (liblzma, zstd) uses.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    const SOURCE: &str = "toolbox/guard.c";
    println!("cargo:rerun-if-changed={SOURCE}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("dlx-guard.so");
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .debug(false)
        .opt_level_str("s")
        .get_compiler();
    // The compiler's own flags for the target, but `-static`, which cc adds when
    // dlx links statically (crt-static): the guard is a shared object either way, and
    // must be the same bytes from every build of the same source (a toolbox's digest
    // covers them).
    let mut cmd = Command::new(compiler.path());
    cmd.envs(compiler.get_envs())
        .args(compiler.args().iter().filter(|a| *a != "-static"));
    cmd.args([
        "-shared",
        "-nostdlib",
        "-ffreestanding",
        "-fPIC",
        "-fno-stack-protector",
        // Every symbol resolved at link time (there is nothing to bind it to), no
        // build ID (the same source makes the same bytes), no symbol table beyond
        // the dynamic one.
        "-Wl,-z,defs",
        "-Wl,-z,now",
        "-Wl,--build-id=none",
        "-s",
        "-o",
    ])
    .arg(&out)
    .arg(SOURCE);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler for {SOURCE}: {e}"));
    assert!(status.success(), "the C compiler failed on {SOURCE}");
}
