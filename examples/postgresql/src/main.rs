//! `postgresql-database-plugin`: a database plugin on the SDK for PostgreSQL, beside HashiCorp's
//! Go plugin of the same name (Vault v1.14.1's `plugins/database/postgresql`), so a catalog
//! entry written for the Go plugin runs this one.
//!
//! * Configuration (`database/config/NAME`): `connection_url` with `{{username}}` and
//!   `{{password}}`, `username`, `password`, `max_open_connections` (0: 4),
//!   `max_idle_connections` (0: as many as open ones), `max_connection_lifetime` (seconds or a
//!   duration), `disable_escaping`, `username_template`, `password_authentication` (`password`,
//!   or `scram-sha-256`: hashed here, so PostgreSQL stores the verifier).
//! * Users: the role's `creation_statements` in one transaction, split on `;` (a statement
//!   with `END` in it, a `$$` body, runs whole); renewal, rotation and revocation with the Go
//!   plugin's default statements when the role has none; revoking a user that is gone
//!   succeeds.
//!
//! ```text
//! cargo build --release -p postgresql-database-plugin
//! cp target/release/postgresql-database-plugin "$PLUGIN_DIR"/
//! bao plugin register -sha256=... database postgresql-database-plugin
//! bao secrets enable database
//! bao write database/config/db plugin_name=postgresql-database-plugin allowed_roles='*' \
//!     connection_url='postgres://{{username}}:{{password}}@127.0.0.1:5432/postgres' \
//!     username=postgres password=...
//! ```

mod config;
mod plugin;
mod pool;
mod scram;
mod statements;

use std::process::ExitCode;

use vault_plugin_sdk::{PluginInfo, serve_database};

fn main() -> ExitCode {
    // Reports no version, as the Go plugin does (its `ReportedVersion` is empty): a catalog
    // entry or a `database/config` written for it reads the same with this one.
    let info = PluginInfo::new("postgresql-database-plugin", env!("CARGO_PKG_VERSION"))
        .description("a database plugin for PostgreSQL")
        .example_path("postgres")
        .reported_version("");
    serve_database(info, plugin::Factory)
}
