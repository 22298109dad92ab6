//! The backend: one per mount, its router, and the factory that makes it.

use std::sync::{Arc, LazyLock};

use vault_plugin_sdk::backend::framework::{RoutedBackend, Router};
use vault_plugin_sdk::backend::{
    BackendConfig, BackendFactory, BackendType, Error, SpecialPaths, Storage,
};

use crate::{login, users};

const HELP: &str = "\
The static-auth auth method logs in users that an operator keeps in the mount: each has a \
password (stored as a salted PBKDF2 hash), policies and token TTLs.

Manage users at users/<name>; log in with `write login username=... password=...`. Tokens \
renew while their user exists with the same password and policies.";

static ROUTER: LazyLock<Router<StaticAuth>> = LazyLock::new(|| {
    let mut paths = users::paths();
    paths.push(login::path());
    Router::new(HELP, paths)
        // Mounted with `bao auth enable`: the server refuses a secrets engine there.
        .with_backend_type(BackendType::Credential)
        // A caller logging in has no token yet.
        .with_special_paths(SpecialPaths {
            unauthenticated: vec!["login".to_owned()],
            ..SpecialPaths::default()
        })
        .with_auth_renew(login::renew)
});

/// Builds one [`StaticAuth`] per mount.
pub(crate) struct Factory;

impl BackendFactory for Factory {
    type Backend = StaticAuth;

    fn version(&self) -> String {
        concat!("v", env!("CARGO_PKG_VERSION")).to_owned()
    }

    async fn create(&self, config: BackendConfig) -> Result<StaticAuth, Error> {
        Ok(StaticAuth::new(config.storage))
    }
}

/// One mount: its storage, where the users are, and nothing cached (so a standby or a second
/// process never answers from a stale copy).
pub(crate) struct StaticAuth {
    storage: Arc<dyn Storage>,
    /// Serialises the read-modify-write of user entries within this process.
    writes: tokio::sync::Mutex<()>,
}

impl StaticAuth {
    pub(crate) fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// Held across a user's read, change and write; a tokio lock because the hashing in
    /// between is awaited.
    pub(crate) async fn write_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.lock().await
    }
}

impl RoutedBackend for StaticAuth {
    fn router(&self) -> &Router<Self> {
        &ROUTER
    }
}
