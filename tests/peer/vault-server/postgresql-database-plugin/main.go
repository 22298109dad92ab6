// Command postgresql-database-plugin is HashiCorp's PostgreSQL database plugin from Vault
// v1.14.1's module (MPL-2.0), built as an external plugin: the Go original the Rust plugin
// (examples/postgresql) is compared with. It is what Vault's own
// plugins/database/postgresql/postgresql-database-plugin/main.go does, in this module.
package main

import (
	"github.com/hashicorp/vault/plugins/database/postgresql"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
)

func main() {
	dbplugin.ServeMultiplex(postgresql.New)
}
