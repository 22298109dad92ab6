//! A test kit for plugin authors, behind the `testing` feature:
//!
//! ```toml
//! [dev-dependencies]
//! vault-plugin-sdk = { version = "0.1", features = ["testing"] }
//! ```
//!
//! Two halves:
//!
//! * **[`TestBackend`]** mounts a backend in process, on a [`MemoryStorage`] and a
//!   [`StaticSystemView`] (TTLs, password policies, local mount, replication state), and sends
//!   it requests as the server does: the existence check picks create or update, leases and
//!   tokens are kept and renewed or revoked with what the server's expiration manager sends,
//!   rollback runs the periodic function and the write-ahead log, and the storage can be looked
//!   into. Fast, and no server needed: for unit tests.
//! * **[`OpenBao`]** (Unix) runs a real `bao server -dev` (the binary from `BAO_BIN`, else
//!   `bao` on `PATH`), installs, registers and enables the plugin binary, and talks to it over
//!   HTTP and through the `bao` CLI: for the end-to-end tests of the plugin's crate.
//!
//! # In process
//!
//! ```
//! use std::sync::{Arc, LazyLock};
//! use std::time::Duration;
//!
//! use serde_json::json;
//! use vault_plugin_sdk::backend::framework::{
//!     FieldData, FieldSchema, FieldType, PathSpec, RoutedBackend, Router, SecretType,
//! };
//! use vault_plugin_sdk::backend::{Error, Operation, Request, Response, Storage};
//! use vault_plugin_sdk::testing::TestBackend;
//!
//! /// Keeps notes, and hands out tickets under leases.
//! struct Notes {
//!     storage: Arc<dyn Storage>,
//! }
//!
//! async fn exists(notes: &Notes, _: &Request, fields: &FieldData<'_>) -> Result<bool, Error> {
//!     let key = format!("note/{}", fields.get_string("name"));
//!     Ok(notes.storage.get(&key).await?.is_some())
//! }
//!
//! async fn write(
//!     notes: &Notes,
//!     request: &Request,
//!     fields: &FieldData<'_>,
//! ) -> Result<Option<Response>, Error> {
//!     let key = format!("note/{}", fields.get_string("name"));
//!     notes.storage.put(&key, fields.get_string("text").into_bytes()).await?;
//!     let created = request.operation == Operation::Create;
//!     Response::from_serialize(&json!({ "created": created })).map(Some)
//! }
//!
//! async fn ticket(_: &Notes, _: &Request, _: &FieldData<'_>) -> Result<Option<Response>, Error> {
//!     let ticket = ROUTER.secret_type("ticket")?;
//!     ticket.response(&json!({"ticket": "t-1"}), &json!({})).map(Some)
//! }
//!
//! async fn renew(_: &Notes, request: &Request, _: &FieldData<'_>) -> Result<Option<Response>, Error> {
//!     let lease = request.secret.clone().unwrap_or_default();
//!     Ok(Some(Response::default().with_secret(lease)))
//! }
//!
//! async fn revoke(_: &Notes, _: &Request, _: &FieldData<'_>) -> Result<Option<Response>, Error> {
//!     Ok(None)
//! }
//!
//! static ROUTER: LazyLock<Router<Notes>> = LazyLock::new(|| {
//!     Router::new(
//!         "Notes and tickets.",
//!         vec![
//!             PathSpec::new("notes/{name}")
//!                 .field(FieldSchema::new("name", FieldType::String, "The note's name."))
//!                 .field(FieldSchema::new("text", FieldType::String, "What it says."))
//!                 .existence_check(exists)
//!                 .operation(Operation::Create, write)
//!                 .operation(Operation::Update, write),
//!             PathSpec::new("ticket")
//!                 .issues("ticket")
//!                 .operation(Operation::Read, ticket),
//!         ],
//!     )
//!     .with_secret_type(SecretType::new("ticket").renew(renew).revoke(revoke))
//! });
//!
//! impl RoutedBackend for Notes {
//!     fn router(&self) -> &Router<Self> {
//!         &ROUTER
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // With a factory: `TestBackend::new(MyFactory).await?`.
//! let backend = TestBackend::builder()
//!     .build_with(|config| Notes { storage: config.storage })
//!     .await?;
//!
//! // The first write creates, the next updates: the existence check decides, as on the server.
//! let first = backend.write("notes/a").data(json!({"text": "hi"})).await?.unwrap();
//! assert_eq!(first.data["created"], true);
//! let second = backend.write("notes/a").field("text", "hello").await?.unwrap();
//! assert_eq!(second.data["created"], false);
//! assert_eq!(backend.stored("note/a").await.as_deref(), Some(&b"hello"[..]));
//! assert_eq!(backend.stored_keys("note/").await, ["a"]);
//!
//! // A lease, renewed and revoked with what the server would send.
//! let issued = backend.read("ticket").await?.unwrap();
//! let secret = issued.secret.unwrap();
//! assert!(secret.lease_id.starts_with("test/ticket/"));
//! // No TTL of its own: the mount's default.
//! assert_eq!(backend.lease_ttl(&secret), Some(Duration::from_secs(768 * 3600)));
//! backend.renew(&secret).increment(Duration::from_secs(60)).await?;
//! assert_eq!(backend.lease_ttl(&secret), Some(Duration::from_secs(60)));
//! backend.revoke(&secret).await?;
//! assert_eq!(backend.lease_ttl(&secret), None);
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```
//!
//! # Against a real server
//!
//! In an integration test (`tests/*.rs`) of the plugin's crate, where cargo has built the
//! plugin's binary and names it in `CARGO_BIN_EXE_<name>`:
//!
//! ```no_run
//! use serde_json::json;
//! use vault_plugin_sdk::testing::{OpenBao, PluginKind};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let plugin = "target/debug/my-plugin";
//! // let plugin = env!("CARGO_BIN_EXE_my-plugin");
//! let server = OpenBao::start()?;
//! server.mount_plugin(plugin, PluginKind::Secret, "my-plugin", "pw")?;
//!
//! let (status, _) = server.write("pw/roles/web", json!({"ttl": "1h"}));
//! assert_eq!(status, 204);
//! let (status, body) = server.read("pw/roles/web");
//! assert_eq!((status, &body["data"]["ttl"]), (200, &json!(3600)));
//! // The CLI, aimed at the server with its root token.
//! let listed = server.cli_json(&["list", "pw/roles"]);
//! assert_eq!(listed, json!(["web"]));
//! # Ok(())
//! # }
//! // Dropping the server stops it and removes its directory.
//! ```

mod backend;
#[cfg(unix)]
mod http;
mod leases;
mod request;
#[cfg(unix)]
mod server;

pub use backend::{TestBackend, TestBackendBuilder};
pub use leases::Renewal;
pub use request::RequestBuilder;
#[cfg(unix)]
pub use server::{OpenBao, OpenBaoBuilder, PluginKind, ServerError};

pub use crate::backend::{MemoryStorage, PasswordPolicy, StaticSystemView};

#[cfg(test)]
mod tests;
