//! The backend: one per mount, its router, and the factory that makes it.

use std::sync::{Arc, LazyLock};

use vault_plugin_sdk::backend::framework::{RoutedBackend, Router};
use vault_plugin_sdk::backend::{
    BackendConfig, BackendFactory, BackendType, Error, KeyedLockGuard, KeyedLocks, SpecialPaths,
    Storage,
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
        // A caller logging in has no token yet.
        .with_special_paths(SpecialPaths::default().with_unauthenticated(["login"]))
        .with_auth_renew(login::renew)
});

/// Builds one [`StaticAuth`] per mount.
pub(crate) struct Factory;

impl BackendFactory for Factory {
    type Backend = StaticAuth;

    async fn create(&self, config: BackendConfig) -> Result<StaticAuth, Error> {
        Ok(StaticAuth::new(config.storage))
    }
}

/// One mount: its storage, where the users are, and nothing cached (so a standby or a second
/// process never answers from a stale copy).
pub(crate) struct StaticAuth {
    storage: Arc<dyn Storage>,
    /// Serialises the read-modify-write of each user's entry within this process.
    locks: KeyedLocks,
}

impl StaticAuth {
    pub(crate) fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            locks: KeyedLocks::new(),
        }
    }

    pub(crate) fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The lock of the entry at `key`, held across its read, change and write (the
    /// hashing in between is awaited): writes of one user wait for each other; writes of
    /// different users seldom do (two names share one of the 256 locks once in 256).
    pub(crate) async fn write_lock(&self, key: &str) -> KeyedLockGuard<'_> {
        self.locks.lock(key).await
    }
}

impl RoutedBackend for StaticAuth {
    /// Mounted with `bao auth enable`: the server refuses a secrets engine there.
    const KIND: BackendType = BackendType::Credential;

    fn router(&self) -> &Router<Self> {
        &ROUTER
    }
}
