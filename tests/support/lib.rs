//! The test harness of `my-mock-plugin`, in one crate that the integration tests and the
//! benchmark depend on (instead of each compiling its own copy of the modules):
//!
//! * [`common`]: a real `bao server -dev` or `vault server -dev` on loopback, driven by its own
//!   CLI and a small HTTP client ([`common::DevServer`]).
//! * [`cluster`]: a three-node OpenBao Raft cluster on loopback.
//! * [`host`]: the server's part played in Rust: it launches the plugin, checks the handshake
//!   and mutual TLS, and serves storage, for fast, deterministic protocol tests.
//! * [`oracle`]: the differential harness: one corpus, several mounts, answers compared.
//! * [`table`]: table tests that report every failing case.
#![allow(clippy::unwrap_used)]

pub mod cluster;
pub mod common;
pub mod host;
pub mod oracle;
pub mod table;
