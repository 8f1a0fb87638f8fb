#!/usr/bin/env bash
# A release of dlx for hosts with nothing installed: one static binary (static glibc,
# `-C target-feature=+crt-static`; musl needs a target this machine cannot fetch),
# its man pages and shell completions, in dist/dlx-<version>-x86_64-linux.tar.gz.
#
# The script proves what it ships:
#   - the binary is static: no PT_INTERP, no DT_NEEDED (readelf), and `file` agrees;
#   - it runs in an empty FROM-scratch container holding only that binary
#     (`dlx --version`), and resolves a host name there without any NSS module
#     (glibc's files/dns lookups are built into static libc; nothing is dlopen'ed);
#   - the man pages render with groff without a warning.
#
#   scripts/release.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
require_root
ensure_packages file binutils groff-base
ensure_engine

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
name=dlx-$version-x86_64-linux
build_dlx
bin=$DLX

step "checking that it is static"
if readelf -lW "$bin" | grep -q 'INTERP'; then
  echo "$0: $bin has a PT_INTERP (it needs a dynamic loader)" >&2
  exit 1
fi
if readelf -dW "$bin" | grep -q '(NEEDED)'; then
  echo "$0: $bin needs shared libraries:" >&2
  readelf -dW "$bin" | grep '(NEEDED)' >&2
  exit 1
fi
description=$(file -b "$bin")
case $description in
  *"statically linked"* | *"static-pie linked"*) echo "file: $description" ;;
  *) echo "$0: file says $bin is not static: $description" >&2; exit 1 ;;
esac

work=$(mktemp -d)
image=dlx-release/scratch:$version
cleanup() { docker rmi -f "$image" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

step "running it in an empty FROM-scratch container"
mkdir "$work/root"
cp "$bin" "$work/root/dlx"
tar -C "$work/root" -cf "$work/root.tar" .
docker import "$work/root.tar" "$image" >/dev/null
got=$(docker run --rm --network none "$image" /dlx --version)
if [ "$got" != "dlx $version" ]; then
  echo "$0: in the scratch container, dlx --version said: $got" >&2
  exit 1
fi
echo "scratch: $got"
# A host name to resolve (from the /etc/hosts the engine provides), with no libc or
# NSS module in the image: the engine then refuses the connection, which proves
# the name resolved.
out=$(docker run --rm --network none -e DOCKER_HOST=tcp://localhost:9 "$image" \
  /dlx doctor some-container 2>&1 || true)
if ! grep -q 'connection refused' <<<"$out"; then
  echo "$0: name resolution failed in the scratch container:" >&2
  echo "$out" >&2
  exit 1
fi
echo "scratch: resolved localhost without NSS modules"

step "man pages and completions"
dist=dist/$name
rm -rf "$dist"
mkdir -p "$dist/man/man1" "$dist/completions"
cp "$bin" "$dist/dlx"
"$bin" man >"$dist/man/man1/dlx.1"
for sub in exec build doctor completions man; do
  "$bin" man "$sub" >"$dist/man/man1/dlx-$sub.1"
done
for page in "$dist"/man/man1/*.1; do
  warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  if [ -n "$warnings" ]; then
    echo "$0: $page does not render cleanly:" >&2
    echo "$warnings" >&2
    exit 1
  fi
done
"$bin" completions bash >"$dist/completions/dlx.bash"
"$bin" completions zsh >"$dist/completions/_dlx"
"$bin" completions fish >"$dist/completions/dlx.fish"
bash -n "$dist/completions/dlx.bash"
cp README.md "$dist/"

tar -C dist -czf "dist/$name.tar.gz" "$name"
sha256sum "dist/$name.tar.gz" | tee "dist/$name.tar.gz.sha256"
ls -l "$bin" "dist/$name.tar.gz"
