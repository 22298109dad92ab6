#!/bin/sh
# `make image`: an OCI image for each plugin binary of the project, without Docker or any
# daemon. For each of my-mock-plugin, leased-passwords, static-auth and
# postgresql-database-plugin: a release build, then one linux/amd64 image with the binary at the
# image root, ENTRYPOINT ["/<binary>"] and the labels org.opencontainers.image.{title,version,
# source,revision}, written as an OCI image layout at target/oci/<binary>/ and tagged
# v<crate version>.
#
# The image tool is scripts/oci-image, a small Go program on go-containerregistry (the library
# OpenBao pulls plugins with), built into target/oci-tool/ from the Go module proxy.
#
# Prints, per image, its manifest digest (what `image = "...@sha256:..."` pins) and the SHA-256
# of the binary (what the stanza's `sha256sum` must be: OpenBao hashes the binary it extracted
# from the image, not any OCI object). IMAGE_SOURCE overrides the source label (default: the
# git remote `origin`, else the checkout's path).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}
CARGO=${CARGO:-cargo}
tool=target/oci-tool/oci-image

if ! command -v "$GO" >/dev/null 2>&1; then
    echo "image: Go is missing: install Go 1.25 or newer (https://go.dev/dl/) and run make again" >&2
    exit 1
fi
mkdir -p target/oci-tool
(cd scripts/oci-image && "$GO" build -trimpath -o "$root/$tool" .)

# binary package: the four plugin binaries and the packages that build them.
plugins="my-mock-plugin:vault-plugin-sdk leased-passwords:leased-passwords static-auth:static-auth postgresql-database-plugin:postgresql-database-plugin"

packages=
for p in $plugins; do
    packages="$packages -p ${p#*:}"
done
# shellcheck disable=SC2086 # one word per flag
"$CARGO" build --release --bins $packages

source=${IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || echo "file://$root")}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)

echo "image: OCI image layouts under target/oci/ (linux/amd64, binary at /, tag v<version>)"
for p in $plugins; do
    bin=${p%%:*}
    pkg=${p#*:}
    # `cargo pkgid` ends in `#<version>` or `#<name>@<version>`.
    version=$("$CARGO" pkgid -p "$pkg" | sed -e 's/.*#//' -e 's/.*@//')
    "$tool" build -binary "target/release/$bin" -name "$bin" -version "$version" \
        -source "$source" -revision "$revision" -out "target/oci/$bin"
done
echo "image: sha256sum in a plugin stanza is the binary's SHA-256 (binary-sha256 above), which" \
    "OpenBao checks after extracting the binary; the manifest digest is for pinning" \
    "(image = \"HOST/REPO:TAG@sha256:...\"), checked by the registry client when it pulls."
