//! The gRPC services the plugin serves. The machinery's own are the same for every plugin
//! kind: the broker (dial-back connections to the server's services), the controller and
//! stdio (shutdown, the server's view of our output), the version and multiplexing answers.
//! Each kind adds its face, with the conversions between the wire and its API, and tells the
//! machinery what it needs through [`Kind`]: `backend/` for secrets engines and auth methods,
//! `database/` for database plugins.

use std::sync::Arc;

use crate::handshake::Cookie;

pub(crate) mod backend;
pub(crate) mod broker;
pub(crate) mod controller;
pub(crate) mod database;
pub(crate) mod plugin;

/// What the machinery needs to know of a plugin kind: the one entry a new kind adds.
pub(crate) trait Kind: Send + 'static {
    /// How the server proves it launched a plugin of this kind.
    const COOKIE: &'static Cookie;
    /// The plugin protocol versions served, preferred first.
    const VERSIONS: &'static [u32];
    /// How a person registers and uses it (the by-hand text).
    const CATALOG: Catalog;
    /// The kind's own gRPC service (`pb.Backend`, `dbplugin.v5.Database`).
    type Face;

    /// Whether a run at `version` serves several instances per process.
    fn multiplexed(version: u32) -> bool;

    /// The kind's service for a run.
    fn face(self, run: &Run) -> Self::Face;
}

/// What a kind's service learns of the run it serves in.
pub(crate) struct Run {
    /// Several instances per process, each named by the `multiplex_id` metadata.
    pub multiplexed: bool,
    /// A legacy metadata-mode launch: only the plugin's metadata is read.
    pub metadata_only: bool,
    /// The dial-back to the server's own services.
    pub broker: Arc<broker::Broker>,
}

/// Where a plugin goes in the server's catalog, and how it is used once there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Catalog {
    /// `secret`: `secrets enable`.
    Secret,
    /// `auth`: `auth enable`.
    Auth,
    /// `database`: `plugin_name` of the database secrets engine's `database/config/NAME`.
    Database,
}
