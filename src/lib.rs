//! A Rust SDK for HashiCorp Vault and OpenBao plugins: secrets engines and auth methods that
//! the server launches and talks to over the real plugin protocol (go-plugin's handshake,
//! automatic mutual TLS, gRPC `pb.Backend`, the broker's dial-back for storage and the system
//! view, multiplexing, the legacy protocol 4).
//!
//! A plugin is a [`backend::BackendFactory`] and its `main` calls [`serve`]:
//!
//! * **[`backend`]** is what a backend author writes against: the [`backend::Backend`] trait,
//!   requests and responses, leases ([`backend::Secret`]), logins ([`backend::Auth`]), the
//!   mount's [`backend::Storage`] and [`backend::SystemView`].
//! * **[`backend::framework`]** is the Go SDK's `framework` in Rust: paths with field schemas,
//!   help and OpenAPI, secret types with renew and revoke, token renewal, the periodic
//!   function and the write-ahead log.
//! * **[`testing`]** (feature `testing`) is what authors test with: a backend in process and a
//!   real OpenBao dev server with the plugin registered.
//!
//! # The layout
//!
//! Public folders are what an author of a plugin kind reads; private folders are the machinery,
//! which knows go-plugin and the wire and nothing of paths, and is shared by every kind:
//!
//! | Module | Side | What it holds |
//! |---|---|---|
//! | `backend/` | API | secrets engines and auth methods; `backend/framework/` the Go SDK's framework |
//! | `database/` | API | database plugins: the `dbplugin.v5` calls, [`serve_database`] |
//! | `testing/` | API | the test kit |
//! | `entry/` | machinery | the process from `main` to exit: arguments, the by-hand text, memory locking, the runtime, [`serve`] |
//! | `handshake.rs` | machinery | the server's launch environment, protocol negotiation, the handshake line |
//! | `session/` | machinery | one run: negotiate, secure, listen, announce, accept connections, dispatch gRPC calls, stop |
//! | `transport/` | machinery | the socket, automatic mutual TLS, the legacy TLS bootstrap |
//! | `services/` | machinery | the gRPC services: the broker, the controller and stdio, version and multiplexing, and each kind's face with its wire conversions and its `Kind` entry (`services/backend/`: `pb.Backend`, the server's storage and system view; `services/database/`: `dbplugin.v5.Database`) |
//! | `proto/` | machinery | the generated wire types and their codec |
//! | `logging/` | machinery | `tracing` events as hclog JSON lines on stderr |
//! | `report.rs`, `sync.rs`, `civil.rs` | shared | an error and its causes as one line; a mutex that survives a panic; calendar arithmetic |
//!
//! Dependencies point one way: `entry` → `session` → `services` → `transport` → `handshake`,
//! and a kind's face in `services/` → its API folder. No file imports one that imports it
//! (`tests/layout.rs` checks both).
//!
//! A request travels: the server's `pb.Backend/HandleRequest` → the mount's backend, picked by
//! its `multiplex_id` → [`backend::framework::Router`] routes path and operation and parses
//! fields → the path's handler → [`backend::Storage`] calls the server's `pb.Storage` over the
//! broker connection → the response is encoded back.
//!
//! Logs are `tracing` events; the server receives them as hclog JSON lines on stderr.

#![warn(missing_docs)]
// docs.rs marks what needs a feature (the test kit).
#![cfg_attr(docsrs, feature(doc_cfg))]
// The machinery's items that `internals` re-exports are `pub`; without the feature nothing
// re-exports them. The lint still runs on every workspace build, where the feature is on.
#![cfg_attr(not(feature = "__internals"), allow(unreachable_pub))]

pub mod backend;
mod civil;
pub mod database;
mod entry;
mod handshake;
mod logging;
// The generated wire types: the machinery's, not the API's. The crate's own tests, benchmark
// and fuzz targets reach them through the doc-hidden `__internals` feature.
#[cfg(feature = "__internals")]
#[doc(hidden)]
pub mod proto;
#[cfg(not(feature = "__internals"))]
mod proto;
mod report;
mod services;
mod session;
mod sync;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod transport;

pub use entry::{
    Launch, PluginInfo, ServeError, Stopped, cpu_bound, serve, serve_database, serve_until,
};

/// The machinery's pieces that the crate's own tests, benchmark and fuzz targets drive
/// directly, behind the doc-hidden `__internals` feature. Not part of the API: it changes
/// without notice.
#[cfg(feature = "__internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::entry::args::Args;
    pub use crate::handshake::{
        BACKEND_COOKIE, Cookie, DATABASE_COOKIE, HandshakeError, ListenAddr, MAGIC_COOKIE_KEY,
        MAGIC_COOKIE_VALUE, PluginEnv, SUPPORTED_VERSIONS, handshake_line, negotiate,
    };
    pub use crate::services::backend::wire::{error_to_wire, request_from_wire, response_to_wire};
    pub use crate::services::broker::{BrokerError, CONN_INFO_TIMEOUT};
    pub use crate::session::SessionOptions;
    pub use crate::transport::tls::{TlsError, parse_peer_certificate};

    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;

    /// The plugin's TLS server, with its pinning verifier, for a test host's brokered
    /// listener: presents `cert` (signing with `key`), accepts only `peer`, ALPN `h2`.
    pub fn pinned_server_config(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
        peer: CertificateDer<'static>,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        crate::transport::tls::server_config(
            &crate::transport::tls::Identity::from_der(cert, key)?,
            peer,
        )
    }

    /// The plugin's TLS client, with its pinning verifier, for a test host dialing a plugin:
    /// presents `cert` (signing with `key`), accepts only `peer`, ALPN `h2`.
    pub fn pinned_client_config(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
        peer: CertificateDer<'static>,
    ) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        crate::transport::tls::client_config(
            &crate::transport::tls::Identity::from_der(cert, key)?,
            peer,
        )
    }
}
