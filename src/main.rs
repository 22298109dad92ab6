//! `my-mock-plugin`: the mock secrets engine of Vault's and OpenBao's SDK as a plugin binary,
//! on the crate's public API only.
//!
//! Launched by the server, never by hand: it reads the server's environment, prints the
//! go-plugin handshake line on stdout and serves gRPC over mutual TLS.

mod mock;

use std::process::ExitCode;

use vault_plugin_sdk::backend::BackendType;
use vault_plugin_sdk::{PluginInfo, serve};

const INFO: PluginInfo = PluginInfo {
    name: "my-mock-plugin",
    version: env!("CARGO_PKG_VERSION"),
    description: "a Vault/OpenBao secrets-engine plugin, the Rust drop-in for the Go mock plugin",
    kind: BackendType::Logical,
    example_path: "my-secrets-plugin",
};

fn main() -> ExitCode {
    serve(INFO, mock::MockFactory::from_env())
}
