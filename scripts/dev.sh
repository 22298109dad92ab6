#!/usr/bin/env bash
# `make dev`: a dev OpenBao on loopback with the plugin registered (typed) and enabled at
# my-secrets-plugin/, left running until Ctrl-C. Usage: scripts/dev.sh PATH/TO/my-mock-plugin
set -euo pipefail
. "$(dirname "$0")/dev-server.sh"

"$bao" plugin register -sha256="$sha" secret my-mock-plugin
"$bao" secrets enable -path=my-secrets-plugin my-mock-plugin
cat <<TEXT

OpenBao is running, with the plugin enabled at my-secrets-plugin/.
  export BAO_ADDR=$BAO_ADDR BAO_TOKEN=$BAO_TOKEN
  $bao write my-secrets-plugin/kv/foo value=bar
Server log: $work/server.log (the plugin's lines are in it). Ctrl-C stops the server.
TEXT
wait "$server"
