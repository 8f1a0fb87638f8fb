#!/usr/bin/env bash
# The whole suite, on any machine: installs what a fresh Debian host lacks (a Docker
# engine, Podman and containerd for the engine tests, a static C toolchain for the
# test fixtures), starts the engine when none answers, then runs the CI gates and
# every test. The engine tests start Podman's API service and Debian's containerd
# themselves when they do not answer.
#
#   scripts/test.sh            everything
#   scripts/test.sh exec       only tests whose name contains "exec"
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

require_root
ensure_packages gcc libc6-dev g++ libssl-dev util-linux tar tmux skopeo umoci docker-registry \
  podman containerd locales
ensure_engine

step "cargo fmt --check"
cargo fmt --check
step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
step "the default toolbox (assembled once; sessions in many tests use it at once)"
cargo build --locked
target/debug/dlx -q toolbox >/dev/null 2>&1 || target/debug/dlx toolbox fetch >/dev/null
step "cargo test"
cargo test --locked --all-targets -- "$@"
