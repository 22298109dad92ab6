//! `leased-passwords`: a small secrets engine written on `vault_plugin_sdk`, the way a Go
//! author writes one on `sdk/framework`. It hands out random passwords under renewable leases
//! and forgets each one when the server ends its lease.
//!
//! # Paths
//!
//! | path | operations | what |
//! |---|---|---|
//! | `roles/<name>` | create, read, update, delete | `ttl`, `max_ttl` (durations, seconds when read), `length` (default 20) and `password_policy` (default none; a read shows it in place of `length`) |
//! | `roles/` | list | the roles' names |
//! | `creds/<name>` | read | a new `username` and `password` under a lease of the role's `ttl` (zero: the mount's default), at most the role's `max_ttl` (zero: the mount's max) |
//! | `issued/` | list | the usernames whose lease is live (as far as the plugin knows) |
//! | `issued/<username>` | read | what is kept of one: its role, issue time, TTL and recorded expiry (never the password) |
//!
//! A role's `password_policy` names one of the server's password policies
//! (`sys/policies/password/<name>`): its passwords are then made by the server
//! (`SystemView::generate_password_from_policy`), and `length` does not apply, the policy
//! fixing the length and the characters. A policy the server cannot use makes `creds/<name>`
//! fail with a 400 that names it (the server itself only says "failed to generate password");
//! `password_policy=""` goes back to `length`.
//!
//! Renew (`bao lease renew [-increment=…]`) extends a lease within the role's and the mount's
//! caps, and fails once the role is gone; revoke (`bao lease revoke`, `-prefix`, expiry, the
//! creating token's revocation, `secrets disable`) removes `issued/<username>`.
//!
//! # Forgetting leases the server no longer holds
//!
//! The server sends `rollback` every minute; its periodic function deletes every
//! `issued/<username>` whose **recorded expiry is more than 15 minutes past**. The plugin
//! cannot ask the server about a lease, so it records, at issue and at every renew, the expiry
//! the server itself computes: the same `CalculateTTL` arithmetic on the same mount limits and
//! the lease's issue time. The server computes it a moment later, when the answer arrives, so
//! its expiry can be later than the recorded one by that round trip (plus a second of
//! rounding), never by more; once the recorded expiry plus the grace is past, the lease is
//! over, whatever the server did with it. The grace also leaves the server time to deliver the
//! revoke itself (it retries failed revokes for about ten minutes); a revoke that arrives after
//! the tidy finds nothing to delete, which is a success. A renew the server refuses never
//! reaches the plugin, and an expired lease cannot be renewed, so an entry the tidy removes
//! cannot come back to life. Entries that cannot be read are logged and left alone.
//!
//! # Build, register, enable, use
//!
//! ```text
//! cargo build --release -p leased-passwords
//! cp target/release/leased-passwords "$PLUGIN_DIR"/
//! bao plugin register -sha256="$(sha256sum "$PLUGIN_DIR"/leased-passwords | cut -d' ' -f1)" \
//!     secret leased-passwords
//! bao secrets enable -path=pw leased-passwords
//!
//! bao write pw/roles/web ttl=1h max_ttl=24h length=32
//! bao read pw/creds/web                    # lease_id pw/creds/web/…, username, password
//! bao write sys/policies/password/digits policy=@digits.hcl
//! bao write pw/roles/pin password_policy=digits
//! bao read pw/creds/pin                    # the password is made by the policy
//! bao list pw/issued/
//! bao lease renew -increment=2h pw/creds/web/<id>
//! bao lease revoke -sync pw/creds/web/<id>
//! bao lease revoke -sync -prefix pw/creds/web
//! ```

mod backend;
mod creds;
mod issued;
mod roles;

use std::process::ExitCode;

use vault_plugin_sdk::{PluginInfo, serve};

fn main() -> ExitCode {
    // Reports v{the crate's version} to the server.
    let info = PluginInfo::new("leased-passwords", env!("CARGO_PKG_VERSION"))
        .description("a secrets engine that hands out random passwords under renewable leases")
        .example_path("pw");
    serve(info, backend::Factory)
}
