// Command openbao-mock serves the Go mock backend of OpenBao's published SDK
// (github.com/openbao/openbao/sdk/v2/plugin/mock) as a plugin binary. Upstream
// has no main for it, so the differential suite and the benchmark build this
// one to run the original beside the Rust plugin.
package main

import (
	"os"

	"github.com/openbao/openbao/api/v2"
	"github.com/openbao/openbao/sdk/v2/plugin"
	"github.com/openbao/openbao/sdk/v2/plugin/mock"
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
		os.Stderr.WriteString("openbao-mock: " + err.Error() + "\n")
		os.Exit(1)
	}
}
