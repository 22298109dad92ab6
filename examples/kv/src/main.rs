//! `vault-plugin-secrets-kv`: the key/value secrets engine on the SDK.

mod storage;

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::SUCCESS
}
