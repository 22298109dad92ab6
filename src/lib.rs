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
//! * **The machinery** (private) knows go-plugin and the wire and nothing of paths: the
//!   handshake, TLS, the broker, the gRPC services, the controller, logging.
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
mod backend_service;
mod broker;
mod by_hand;
mod civil;
mod cli;
mod codec;
mod controller;
mod grpc_serve;
mod handshake;
mod host_storage;
mod host_system_view;
mod io;
mod logging;
mod mlock;
// The generated wire types: the machinery's, not the API's. The crate's own tests, benchmark
// and fuzz targets reach them through the doc-hidden `__internals` feature.
#[cfg(feature = "__internals")]
#[doc(hidden)]
pub mod proto;
#[cfg(not(feature = "__internals"))]
mod proto;
mod serve;
mod server;
mod sync;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod tls;
mod unwrap_tls;
mod wire;

pub use serve::{PluginInfo, serve};

/// The machinery's pieces that the crate's own tests, benchmark and fuzz targets drive
/// directly, behind the doc-hidden `__internals` feature. Not part of the API: it changes
/// without notice.
#[cfg(feature = "__internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::broker::{BrokerError, CONN_INFO_TIMEOUT};
    pub use crate::cli::Args;
    pub use crate::handshake::{
        HandshakeError, ListenAddr, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, PluginEnv,
        SUPPORTED_VERSIONS, handshake_line, negotiate,
    };
    pub use crate::server::ServeOptions;
    pub use crate::tls::{TlsError, parse_peer_certificate};
    pub use crate::wire::{error_to_wire, request_from_wire, response_to_wire};

    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;

    /// The plugin's TLS server, with its pinning verifier, for a test host's brokered
    /// listener: presents `cert` (signing with `key`), accepts only `peer`, ALPN `h2`.
    pub fn pinned_server_config(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
        peer: CertificateDer<'static>,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        crate::tls::server_config(&crate::tls::Identity::from_der(cert, key)?, peer)
    }

    /// The plugin's TLS client, with its pinning verifier, for a test host dialing a plugin:
    /// presents `cert` (signing with `key`), accepts only `peer`, ALPN `h2`.
    pub fn pinned_client_config(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
        peer: CertificateDer<'static>,
    ) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        crate::tls::client_config(&crate::tls::Identity::from_der(cert, key)?, peer)
    }
}
