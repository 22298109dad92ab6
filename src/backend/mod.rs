//! The backend half: paths, fields and operations, nothing of gRPC.
//!
//! The machinery calls a [`Backend`] through this small trait, with domain types that say what a
//! request and a response are without saying how they travel. A second backend (say, a counter)
//! implements [`Backend`] and [`BackendFactory`] and reuses the machinery untouched.

mod auth;
mod error;
pub mod framework;
mod json;
mod locks;
mod secret;
mod status;
mod storage;
mod system_view;
mod types;

pub use auth::{Alias, Auth, TokenType};
pub use error::{Error, ErrorKind};
pub use locks::{KeyedLockGuard, KeyedLocks, KeyedLocksGuard};
pub use secret::{LeaseOptions, Secret};
pub use storage::{BoxFuture, MemoryStorage, Storage, StorageError};
pub use system_view::{
    ClusterInfo, Entity, Group, PasswordPolicy, PluginEnvironment, ReplicationState,
    StaticSystemView, SystemView, SystemViewError, SystemViewResult, WrappingToken,
};
pub use types::{BackendType, Connection, Operation, Request, Response, SpecialPaths};

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// What the server hands a backend when it mounts it (`pb.Backend/Setup`).
#[non_exhaustive]
pub struct BackendConfig {
    /// Mount options plus `plugin_name`, `plugin_type` and `plugin_version`; empty when the
    /// server runs the plugin only to read its version (registration).
    pub config: HashMap<String, String>,
    /// The mount's UUID; empty at registration.
    pub backend_uuid: String,
    /// The mount's private view of the server's storage.
    pub storage: Arc<dyn Storage>,
    /// The server's view of the mount: TTLs, replication state, identity, password policies.
    pub system_view: Arc<dyn SystemView>,
}

impl BackendConfig {
    /// A mount's configuration over `storage` and `system_view`, with no mount options and no
    /// UUID: what a test builds a backend with (the machinery builds the real one).
    pub fn new(storage: Arc<dyn Storage>, system_view: Arc<dyn SystemView>) -> Self {
        Self {
            config: HashMap::new(),
            backend_uuid: String::new(),
            storage,
            system_view,
        }
    }

    /// Sets the mount options.
    #[must_use]
    pub fn with_config(mut self, config: HashMap<String, String>) -> Self {
        self.config = config;
        self
    }
}

/// Makes one backend instance per mount. The version the plugin reports to the server is
/// not the factory's: it is stated once, in [`PluginInfo`](crate::PluginInfo).
pub trait BackendFactory: Send + Sync + 'static {
    /// What it makes.
    type Backend: Backend;

    /// Builds the backend for one mount. Storage is read-only at this point and absent at
    /// registration, so a factory must not write, and should not need to read.
    fn create(
        &self,
        config: BackendConfig,
    ) -> impl Future<Output = Result<Self::Backend, Error>> + Send;
}

/// One mounted secrets engine, as the machinery sees it.
pub trait Backend: Send + Sync + 'static {
    /// Logical (secrets engine, the default) or credential (auth method): what the server's
    /// `Type` call is answered, and how the by-hand text registers the plugin. A
    /// [`RoutedBackend`](framework::RoutedBackend) states it as `RoutedBackend::KIND`.
    const KIND: BackendType = BackendType::Logical;

    /// Paths with special handling by the server (for example reachable without a token).
    fn special_paths(&self) -> SpecialPaths;

    /// Handles one request; `Ok(None)` is a nil response (404 on read, 204 on write).
    fn handle_request(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<Option<Response>, Error>> + Send;

    /// Tells whether the target of a create/update exists, so the server can pick the ACL
    /// capability. `Ok(None)` means the path has no existence check.
    fn existence_check(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<Option<bool>, Error>> + Send;

    /// Called once after Setup, when storage has become writable.
    fn initialize(&self) -> impl Future<Output = Result<(), Error>> + Send {
        async { Ok(()) }
    }

    /// A storage key changed behind the backend's back (standbys, replication).
    fn invalidate(&self, key: &str) -> impl Future<Output = ()> + Send {
        let _ = key;
        async {}
    }

    /// The mount is going away; release what the backend holds.
    fn cleanup(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
