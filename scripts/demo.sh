#!/usr/bin/env bash
# Starts a dev OpenBao on loopback with the plugin registered and enabled, then walks through
# the tutorial's commands. Usage: scripts/demo.sh PATH/TO/my-mock-plugin
set -euo pipefail

. "$(dirname "$0")/dev-server.sh"

run() { printf '\n$ %s\n' "$*" | sed "s#$bao#bao#"; "$@"; }
run "$bao" write sys/plugins/catalog/my-mock-plugin sha_256="$sha" command=my-mock-plugin
run "$bao" secrets enable -path=my-secrets-plugin -plugin-name=my-mock-plugin plugin
run "$bao" write my-secrets-plugin/kv/foo value=bar
run "$bao" read my-secrets-plugin/kv/foo
run "$bao" list my-secrets-plugin/kv
run "$bao" read my-secrets-plugin/special

if [ -t 0 ]; then
    printf '\nOpenBao is running at %s (token: root) with the plugin at my-secrets-plugin/.\n' "$BAO_ADDR"
    printf 'Try: export BAO_ADDR=%s BAO_TOKEN=root; %s read my-secrets-plugin/kv/foo\n' "$BAO_ADDR" "$bao"
    printf 'Press Enter to stop it.\n'
    read -r _
fi
