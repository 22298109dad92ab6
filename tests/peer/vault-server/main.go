// Command vault is HashiCorp Vault v1.14.1 (MPL-2.0), built from its published
// module so the tutorial and the differential suite run against a real Vault.
// v1.14.8 is the last MPL release, but no sdk module from its release branch
// is on the module proxy (see go.mod). Never move past v1.14.8: later
// releases are BUSL-1.1.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
