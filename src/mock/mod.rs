//! The mock secrets engine of Vault's and OpenBao's SDK (`sdk/plugin/mock`), path for path.

mod env;
mod errors;
mod fixed;
mod internal;
mod kv;

use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use vault_plugin_sdk::backend::framework::{RoutedBackend, Router};
use vault_plugin_sdk::backend::{BackendConfig, BackendFactory, Error, SpecialPaths, Storage};

/// The variable the Go mock reads to report another version (so that tests can run two
/// versions side by side).
pub(crate) const VERSION_OVERRIDE_ENV: &str = "TESTING_MOCK_VAULT_PLUGIN_VERSION";

/// The version the Go mock reports (its `RunningVersion`): a catalog entry registered for the Go
/// mock with `-version=v0.0.0+mock`, or a mount pinned to it, must run this binary unchanged. The crate's own version is still shown by
/// `--version` and the by-hand text, so builds can be told apart.
pub(crate) const GO_MOCK_VERSION: &str = "v0.0.0+mock";

/// The value of `internal` when a backend starts, as in the Go mock.
pub(crate) const DEFAULT_INTERNAL_VALUE: &str = "bar";

// The paths carry no synopses or field descriptions because the Go mock's have none: help and
// OpenAPI answers are compared whole with it (`tests/differential.rs`).
static ROUTER: LazyLock<Router<MockBackend>> = LazyLock::new(|| {
    let mut paths = errors::paths();
    paths.extend(kv::paths());
    paths.push(internal::path());
    paths.extend(fixed::paths());
    paths.push(env::path());
    Router::new("", paths)
        .with_special_paths(SpecialPaths::default().with_unauthenticated(["special"]))
        .with_invalidate(invalidate)
});

/// Forgets the in-memory value when its storage key changed elsewhere.
async fn invalidate(backend: &MockBackend, key: &str) {
    if key == "internal" {
        backend.internal().clear();
    }
}

/// The version the mock reports to the server: [`GO_MOCK_VERSION`], or the value of
/// [`VERSION_OVERRIDE_ENV`] when it is set and not empty.
pub(crate) fn reported_version_from_env() -> String {
    reported_version(|name| std::env::var(name).ok())
}

/// [`reported_version_from_env`] with the environment read through `lookup`.
fn reported_version(lookup: impl Fn(&str) -> Option<String>) -> String {
    lookup(VERSION_OVERRIDE_ENV)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| GO_MOCK_VERSION.to_owned())
}

/// Builds one [`MockBackend`] per mount.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MockFactory;

impl BackendFactory for MockFactory {
    type Backend = MockBackend;

    async fn create(&self, config: BackendConfig) -> Result<MockBackend, Error> {
        Ok(MockBackend::new(config.storage))
    }
}

/// One mount of the mock: its storage and the in-memory `internal` value.
pub(crate) struct MockBackend {
    storage: Arc<dyn Storage>,
    internal: Mutex<String>,
}

impl MockBackend {
    pub(crate) fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            internal: Mutex::new(DEFAULT_INTERNAL_VALUE.to_owned()),
        }
    }

    fn internal(&self) -> std::sync::MutexGuard<'_, String> {
        // The guarded value is a plain string that is replaced whole; poisoning cannot leave
        // it half-written.
        self.internal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RoutedBackend for MockBackend {
    fn router(&self) -> &Router<Self> {
        &ROUTER
    }
}

#[cfg(test)]
mod tests;
