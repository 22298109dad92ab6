//! `static-auth`: an auth method on the SDK whose users an operator keeps in the mount itself,
//! each with a password, policies and token TTLs (a small userpass).
//!
//! # Paths
//!
//! * `users/<name>`: create, read, update, delete; `list users/`. Fields `password` (required
//!   on create, kept when an update leaves it out; stored only as a salted PBKDF2-HMAC-SHA256
//!   hash and never shown), `policies` (a list or a comma-separated string), `ttl` and
//!   `max_ttl` (seconds or durations such as `1h`; 0 for the mount's). A read shows the
//!   policies and TTLs.
//! * `login` (no token needed): `username` and `password` give a token with the user's
//!   policies (and `default`), metadata `username`, display name `<mount>-<name>`, the user's
//!   TTLs, renewable, and an identity entity per user. A wrong password and an unknown user both
//!   answer 400 `invalid username or password` after the same work.
//! * Renewal (`bao token renew`) succeeds while the user exists with the password and policies
//!   it logged in with, within the user's `max_ttl`; deleting the user, changing its password
//!   (even to the same one) or its policies refuses it. It does not revoke tokens already issued:
//!   `bao token revoke -mode=path auth/users/` does that.
//!
//! # Build, register, enable, use
//!
//! ```text
//! cargo build --release -p static-auth
//! cp target/release/static-auth "$PLUGIN_DIR"/
//! bao plugin register -sha256="$(sha256sum "$PLUGIN_DIR"/static-auth | cut -d' ' -f1)" \
//!     auth static-auth
//! bao auth enable -path=users static-auth
//! bao write auth/users/users/alice password=s3cret policies=dev,ops ttl=1h max_ttl=24h
//! bao write auth/users/login username=alice password=s3cret     # no token needed
//! bao token renew <token>
//! ```
//!
//! `bao login -method=userpass` does not fit (it writes to `login/<username>`); use
//! `bao login "$(bao write -field=token auth/users/login username=alice password=s3cret)"`.

mod backend;
mod login;
mod password;
mod users;

#[cfg(test)]
mod tests;

use std::process::ExitCode;

use vault_plugin_sdk::{PluginInfo, serve};

fn main() -> ExitCode {
    // Reports v{the crate's version} to the server; the kind is `StaticAuth`'s.
    let info = PluginInfo::new("static-auth", env!("CARGO_PKG_VERSION"))
        .description("an auth method whose users, passwords and policies are kept in the mount")
        .example_path("users");
    serve(info, backend::Factory)
}
