#!/bin/sh
# `make deps`: PostgreSQL's server binaries (initdb, postgres, pg_ctl, pg_isready) and psql, for
# the private clusters the tests start (tests/support/postgres.rs). Finds them the way the
# harness does: $PG_BIN_DIR, else `pg_config --bindir`, else the newest
# /usr/lib/postgresql/*/bin, else PATH. When they are missing, installs Debian's `postgresql`
# package with apt-get (as root, or through sudo). Fast and apt-free when they are present.
# (Debian's package also creates and starts a system cluster on port 5432; the tests do not use
# it.)
set -eu

needed="initdb postgres pg_ctl pg_isready psql"

# Whether directory $1 holds every binary the harness runs.
complete() {
    [ -n "$1" ] || return 1
    for bin in $needed; do
        [ -x "$1/$bin" ] || return 1
    done
}

find_bindir() {
    if [ -n "${PG_BIN_DIR:-}" ]; then
        echo "$PG_BIN_DIR"
        return
    fi
    # pg_config comes with libpq-dev, whose version can differ from the installed server's.
    if dir=$(pg_config --bindir 2>/dev/null) && complete "$dir"; then
        echo "$dir"
        return
    fi
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if complete "$dir"; then
        echo "$dir"
        return
    fi
    if initdb=$(command -v initdb 2>/dev/null); then
        dirname "$(readlink -f "$initdb")"
    fi
}

report() {
    echo "deps: $("$1/postgres" --version) in $1 ($needed)"
}

dir=$(find_bindir)
if complete "$dir"; then
    report "$dir"
    exit 0
fi
if [ -n "${PG_BIN_DIR:-}" ]; then
    echo "deps: PG_BIN_DIR=$PG_BIN_DIR lacks one of: $needed" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=
elif command -v sudo >/dev/null 2>&1; then
    as_root=sudo
else
    echo "deps: PostgreSQL is missing and this is not root and has no sudo: install Debian's" \
        "postgresql package (apt-get install postgresql) or set PG_BIN_DIR" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: PostgreSQL is missing and there is no apt-get: install PostgreSQL's server" \
        "and psql (initdb, postgres, pg_ctl, pg_isready, psql) and set PG_BIN_DIR" >&2
    exit 1
fi

echo "deps: PostgreSQL not found; installing Debian's postgresql package with apt-get"
if ! $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
    ! $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends postgresql >/dev/null; then
    echo "deps: apt-get install postgresql failed: install PostgreSQL's server and psql," \
        "or set PG_BIN_DIR to a directory holding $needed" >&2
    exit 1
fi

dir=$(find_bindir)
if ! complete "$dir"; then
    echo "deps: postgresql is installed but $needed are not in one directory" \
        "(looked at pg_config --bindir, /usr/lib/postgresql/*/bin, PATH): set PG_BIN_DIR" >&2
    exit 1
fi
report "$dir"
