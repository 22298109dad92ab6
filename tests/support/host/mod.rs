//! A test host: plays the OpenBao server (the go-plugin *client*) against the real plugin
//! binary, in process and without OpenBao, so protocol tests are fast and deterministic.
//!
//! It does what the server does (spec §1–§6): launches the binary with the server's
//! environment, reads the handshake line, dials the plugin over mutual TLS with a go-plugin
//! style certificate, keeps `GRPCBroker/StartStream` and `GRPCStdio/StreamStdio` open, and for
//! every `Setup` serves `pb.Storage` and `pb.SystemView` on a brokered unix socket of its own.
//! Knobs let tests misbehave the way a server (or an attacker) might.
//!
//! The peer side shares no broker code with the crate under test; of its TLS, only the
//! pinning verifier (see [`client_tls`]).
//!
//! Its parts: `tls` (the host's certificate and TLS configurations), `process` (launching the
//! plugin, its pipes and handshake line), `dial` (the gRPC channel to it), `session` (the
//! connected [`Host`] and the server's calls), and behind each mount's broker id `brokered`
//! (the gRPC server) with `storage` and `system_view`.

mod brokered;
mod dial;
mod process;
mod session;
mod storage;
mod system_view;
mod tls;

use std::time::Duration;

use tokio::task::JoinHandle;

pub use dial::{dial, for_mount, wire_request};
pub use process::{Captured, Handshake, Launch, Plugin, TempDir};
pub use session::{ConnInfo, Host, Mount, Setup, SetupOptions, StdioEnd};
pub use storage::{MemStorage, StorageMode};
pub use tls::{HostCert, client_tls, server_tls};

/// The backend-plugin magic cookie (go-plugin handshake config, same name in OpenBao).
pub const MAGIC_COOKIE_KEY: &str = "VAULT_BACKEND_PLUGIN";
pub const MAGIC_COOKIE_VALUE: &str = "6669da05-b1c8-4f49-97d9-c8e5bed98e20";
/// The metadata key naming the mount on every `pb.Backend` and Version call.
pub const MULTIPLEX_ID: &str = "multiplex_id";
/// The text the server's storage answers `Put` with while a mount is being set up.
pub const SETUP_READ_ONLY: &str = "cannot write to storage during setup";

/// Bound for the handshake line (the real server waits a minute; a healthy plugin needs ms).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound for any one RPC, so a wedged plugin fails a test instead of hanging it.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the host waits for a stream's response headers before it lets the call go on.
const STREAM_HEADERS_WAIT: Duration = Duration::from_secs(2);
/// Bound for a process to exit once it has every reason to.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The server's default lease TTL (32 days), answered by the brokered SystemView.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(32 * 24 * 3600);

/// A background task that must not outlive its owner.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
