#!/bin/sh
# `make deps`: Debian's docker-registry (the CNCF distribution registry), for the private OCI
# registry the distribution tests start on loopback (tests/support/registry.rs). Finds it the
# way the harness does: $REGISTRY_BIN, else PATH, else /usr/bin. When it is missing, installs
# the package with apt-get (as root, or through sudo). Fast and apt-free when it is present.
# (Debian's package also installs a systemd unit on :5000 with htpasswd auth; the tests do not
# use it, they run `docker-registry serve` on a configuration of their own.)
set -eu

find_bin() {
    if [ -n "${REGISTRY_BIN:-}" ]; then
        echo "$REGISTRY_BIN"
        return
    fi
    command -v docker-registry 2>/dev/null || echo /usr/bin/docker-registry
}

report() {
    echo "deps: $("$1" --version 2>&1 | head -n 1) ($1)"
}

bin=$(find_bin)
if [ -x "$bin" ]; then
    report "$bin"
    exit 0
fi
if [ -n "${REGISTRY_BIN:-}" ]; then
    echo "deps: REGISTRY_BIN=$REGISTRY_BIN is not an executable docker-registry" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=
elif command -v sudo >/dev/null 2>&1; then
    as_root=sudo
else
    echo "deps: docker-registry is missing and this is not root and has no sudo: install" \
        "Debian's docker-registry package (apt-get install docker-registry) or set REGISTRY_BIN" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: docker-registry is missing and there is no apt-get: install the distribution" \
        "registry (https://distribution.github.io/distribution/) and set REGISTRY_BIN" >&2
    exit 1
fi

echo "deps: docker-registry not found; installing Debian's docker-registry package with apt-get"
if ! $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
    ! $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends docker-registry >/dev/null; then
    echo "deps: apt-get install docker-registry failed: install it, or set REGISTRY_BIN" >&2
    exit 1
fi

bin=$(find_bin)
if [ ! -x "$bin" ]; then
    echo "deps: docker-registry is installed but not found on PATH or in /usr/bin: set REGISTRY_BIN" >&2
    exit 1
fi
report "$bin"
