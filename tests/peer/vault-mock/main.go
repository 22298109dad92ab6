// Command vault-mock serves the Go mock backend of Vault's published SDK
// (github.com/hashicorp/vault/sdk/plugin/mock, MPL-2.0) as a plugin binary. Upstream
// has no main for it, so the differential suite and the benchmark build this
// one to run the original beside the Rust plugin.
package main

import (
	"os"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"
	"github.com/hashicorp/vault/sdk/plugin/mock"
)

func main() {
	meta := &api.PluginAPIClientMeta{}
	flags := meta.FlagSet()
	if err := flags.Parse(os.Args[1:]); err != nil {
		os.Exit(1)
	}
	err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: mock.Factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(meta.GetTLSConfig()),
	})
	if err != nil {
		os.Stderr.WriteString("vault-mock: " + err.Error() + "\n")
		os.Exit(1)
	}
}
