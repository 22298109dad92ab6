//! `my-mock-plugin`: the mock secrets engine of Vault's and OpenBao's SDK as a plugin binary,
//! on the crate's public API only.
//!
//! Launched by the server, never by hand: it reads the server's environment, prints the
//! go-plugin handshake line on stdout and serves gRPC over mutual TLS.

mod mock;

use std::process::ExitCode;

use vault_plugin_sdk::{PluginInfo, serve};

fn main() -> ExitCode {
    let info = PluginInfo::new("my-mock-plugin", env!("CARGO_PKG_VERSION"))
        .description(
            "a Vault/OpenBao secrets-engine plugin, the Rust drop-in for the Go mock plugin",
        )
        .example_path("my-secrets-plugin")
        .reported_version(mock::reported_version_from_env());
    serve(info, mock::MockFactory)
}
