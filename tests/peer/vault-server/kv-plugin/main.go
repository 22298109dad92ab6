// Command kv-plugin is HashiCorp's KV secrets engine (github.com/hashicorp/vault-plugin-secrets-kv
// v0.15.0, MPL-2.0, the version Vault v1.14.1's module requires) built as an external plugin: the
// Go original the Rust plugin (examples/kv) is compared with. It serves kv.Factory the way the
// module's own cmd/vault-plugin-secrets-kv does: multiplexed, with the legacy TLS flags read from
// the command line for servers without automatic mTLS.
package main

import (
	"os"

	hclog "github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"
)

func main() {
	meta := &api.PluginAPIClientMeta{}
	_ = meta.FlagSet().Parse(os.Args[1:])

	err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: kv.Factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(meta.GetTLSConfig()),
	})
	if err != nil {
		hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
		os.Exit(1)
	}
}
