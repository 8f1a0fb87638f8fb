# Shared helpers for the scripts (sourced, not run).

step() { printf '\n== %s\n' "$*" >&2; }

require_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$0: must run as root (dlx enters namespaces; the tests drive the engine)" >&2
    exit 1
  fi
}

apt_updated=
# ensure_packages PKG...: install the Debian packages that are missing.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "apt-get install ${missing[*]}"
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ensure_engine: a Docker engine that answers; installs and starts Debian's
# docker.io when there is none.
ensure_engine() {
  if docker info >/dev/null 2>&1; then return 0; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    ensure_packages docker.io
  fi
  if ! docker info >/dev/null 2>&1; then
    step "starting dockerd"
    (setsid dockerd >/var/log/dlx-dockerd.log 2>&1 &)
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && return 0
      sleep 1
    done
    echo "$0: dockerd did not come up; see /var/log/dlx-dockerd.log" >&2
    tail -n 20 /var/log/dlx-dockerd.log >&2 || true
    exit 1
  fi
}

# build_dlx: the binary a release ships (scripts/release.sh): a release build,
# linked statically (crt-static), so that no dynamic loader runs when dlx starts
# and its forks copy fewer mappings. --target keeps the flag off build scripts and proc macros, which must
# stay dynamic. Sets DLX to its path.
DLX_TARGET=x86_64-unknown-linux-gnu
build_dlx() {
  step "building dlx (release, static)"
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --quiet --target "$DLX_TARGET"
  DLX=$PWD/target/$DLX_TARGET/release/dlx
}
