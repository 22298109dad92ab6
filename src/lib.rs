//! A Rust drop-in replacement for the Go "mock" secrets-engine plugin of HashiCorp Vault and
//! OpenBao, speaking the real plugin protocol.
//!
//! The crate has two halves that change for different reasons:
//!
//! * **The machinery** knows go-plugin and the Vault wire protocol and nothing of kv:
//!   [`handshake`] (environment, negotiation, listener, the stdout line), [`tls`] (our
//!   certificate and the pinned-peer verifiers), [`broker`] (the `StartStream` service and
//!   dialing back into the server), [`host_storage`] (the server's storage over that
//!   connection), [`backend_service`] (`pb.Backend` and friends, one backend per mount),
//!   [`controller`] (shutdown, stdio, process lifetime), [`grpc_serve`] (the services on hyper's
//!   HTTP/2 server), [`server`] (putting it together) and
//!   [`logging`] (hclog JSON lines on stderr), [`codec`] (protobuf with small buffers), and [`unwrap_tls`] (the legacy protocol's TLS
//!   bootstrap through an unwrap token).
//! * **The backend** ([`backend`]) knows paths, fields and operations and nothing of gRPC: the
//!   [`backend::Backend`] trait, a small path framework and the mock's paths.
//!
//! A request travels: tonic `pb.Backend/HandleRequest` → [`backend_service`] picks the mount's
//! backend by `multiplex_id` → [`backend::framework`] routes path and operation and parses
//! fields → a handler in [`backend::mock`] → [`host_storage`] calls the server's `pb.Storage`
//! over the broker connection → the response is encoded back.

pub mod backend;
pub mod backend_service;
pub mod broker;
pub mod by_hand;
pub mod cli;
pub mod codec;
pub mod controller;
pub mod grpc_serve;
pub mod handshake;
pub mod host_storage;
pub mod logging;
pub mod mlock;
pub mod proto;
pub mod server;
pub mod tls;
pub mod unwrap_tls;
