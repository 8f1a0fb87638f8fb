#!/usr/bin/env bash
# The main job, end to end: build dlx, build a distroless image with `dlx build`
# (static:nonroot, straight from Debian's signed archive) holding one static
# program, run a container from it (no shell, no tools), and look inside it with
# `dlx exec`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
require_root
ensure_packages gcc libc6-dev
ensure_engine

say() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }

build_dlx

work=$(mktemp -d)
trap 'docker rm -f dlx-demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# The "application": a small static program that serves HTTP on port 8080 and can
# report what a process sees of itself.
gcc -static -O2 -o "$work/app" tests/fixtures/probe.c

say "dlx build static:nonroot --add app:/app/probe --entrypoint '[\"/app/probe\",\"serve\",\"8080\"]' -t dlx-demo/app:latest"
"$DLX" build static:nonroot --add "$work/app:/app/probe" --entrypoint '["/app/probe","serve","8080"]' -t dlx-demo/app:latest

docker rm -f dlx-demo >/dev/null 2>&1 || true
say "docker run -d --name dlx-demo --read-only --cap-drop ALL dlx-demo/app:latest"
docker run -d --name dlx-demo --read-only --cap-drop ALL dlx-demo/app:latest

say "docker exec dlx-demo sh        # distroless: there is no shell"
docker exec dlx-demo sh -c true || true

say "dlx exec dlx-demo -- /app/probe id"
"$DLX" exec dlx-demo -- /app/probe id
say "dlx exec dlx-demo -- /app/probe cat /etc/os-release"
"$DLX" exec dlx-demo -- /app/probe cat /etc/os-release
say "dlx exec dlx-demo -- /app/probe caps      # the container's capabilities, no_new_privs on"
"$DLX" exec dlx-demo -- /app/probe caps
say "dlx exec dlx-demo -- /app/probe env       # the container's environment, not yours"
"$DLX" exec dlx-demo -- /app/probe env
say "dlx exec dlx-demo -- /app/probe exit 7; echo \$?"
"$DLX" exec dlx-demo -- /app/probe exit 7 || echo "$?"
say "dlx toolbox fetch                 # the toolbox sessions bring (once, from Debian's archive)"
"$DLX" toolbox fetch >/dev/null
say "dlx exec dlx-demo -- ss -tulpn       # tools the image does not ship, in a private view"
"$DLX" exec dlx-demo -- ss -tulpn
say "dlx exec dlx-demo -- ps -o pid,user,args"
"$DLX" exec dlx-demo -- ps -o pid,user,args
say "dlx exec dlx-demo -- curl -sS http://127.0.0.1:8080/"
"$DLX" exec dlx-demo -- curl -sS http://127.0.0.1:8080/
say "dlx exec dlx-demo -- ls -la /        # the container's own root, plus /.dlx"
"$DLX" exec dlx-demo -- ls -la /
say "docker diff dlx-demo                 # and the container saw nothing of it"
docker diff dlx-demo
say "dlx exec --toolbox none dlx-demo -- ls /; echo \$?      # only what the image ships"
"$DLX" exec --toolbox none dlx-demo -- ls / || echo "$?"
