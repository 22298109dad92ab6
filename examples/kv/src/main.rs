//! `vault-plugin-secrets-kv`: the key/value secrets engine, versions 1 and 2, on the SDK,
//! answering as HashiCorp's Go plugin (v0.15.0) answers and keeping its storage layout, so a
//! mount can move between the two binaries either way. See `docs/kv.md`.
//!
//! # Register and enable
//!
//! Under the name `kv` both servers run their builtin engine whatever the catalog says, and
//! under any other name they refuse `-options=version=2` at enable. So: register the binary
//! under its own name, enable it (a version 1 mount), and tune the mount to version 2, which
//! reloads it as version 2 (as `kv enable-versioning` does).
//!
//! ```text
//! cargo build --release -p vault-plugin-secrets-kv
//! cp target/release/vault-plugin-secrets-kv "$PLUGIN_DIR"/
//! bao plugin register -sha256="$(sha256sum "$PLUGIN_DIR"/vault-plugin-secrets-kv | cut -d' ' -f1)" \
//!     secret vault-plugin-secrets-kv
//! bao secrets enable -path=secret vault-plugin-secrets-kv
//! bao secrets tune -options=version=2 secret
//! bao kv put -mount=secret app/db password=s3cret
//! ```

mod backend;
mod passthrough;
mod storage;
mod versioned;

use std::process::ExitCode;

use vault_plugin_sdk::{PluginInfo, serve};

fn main() -> ExitCode {
    let info = PluginInfo::new("vault-plugin-secrets-kv", env!("CARGO_PKG_VERSION"))
        .description("the key/value secrets engine, versions 1 and 2")
        .example_path("data/app")
        // No version, as the Go plugin reports none, so the two binaries register and show
        // alike (`running_plugin_version`), and either may take over a mount of the other.
        .reported_version("");
    serve(info, backend::Factory)
}
