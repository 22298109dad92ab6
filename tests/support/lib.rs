//! The test harness of `my-mock-plugin`, in one crate that the integration tests and the
//! benchmark depend on (instead of each compiling its own copy of the modules):
//!
//! * [`common`]: a real `bao server -dev` or `vault server -dev` on loopback, driven by its own
//!   CLI and HTTP ([`common::DevServer`]).
//! * [`cluster`]: a three-node OpenBao Raft cluster on loopback.
//! * [`http`]: the one HTTP/1.1 client of the suites, the cluster, the soak and the benchmark.
//! * [`first_plugin`]: the first plugin of `docs/sdk.md` as a crate outside the workspace.
//! * [`host`]: the server's part played in Rust: it launches the plugin, checks the handshake
//!   and mutual TLS, and serves storage, for fast, deterministic protocol tests.
//! * [`oracle`]: the differential harness: one corpus, several mounts, answers compared.
//! * [`postgres`]: a private PostgreSQL cluster on loopback ([`postgres::Postgres`]), for the
//!   database plugin's tests to look in PostgreSQL itself.
//! * [`table`]: table tests that report every failing case.
#![allow(clippy::unwrap_used)]

pub mod cluster;
pub mod common;
pub mod first_plugin;
pub mod host;
pub mod http;
pub mod oracle;
pub mod postgres;
pub mod registry;
pub mod table;
