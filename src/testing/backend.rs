//! The in-process backend: one mount's backend on memory storage and a static system view,
//! with what the kit keeps of the leases and tokens it handed out.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::leases::Leases;
use super::request::{RequestBuilder, special_path_matches};
use crate::backend::{
    Backend, BackendConfig, BackendFactory, Error, MemoryStorage, Operation, StaticSystemView,
    Storage as _,
};
use crate::sync::RecoveringMutex;

/// A backend mounted in process, driven the way the server drives it. See the
/// [module documentation](super) for an example.
///
/// Requests go through [`TestBackend::read`], [`write`](TestBackend::write),
/// [`list`](TestBackend::list), [`delete`](TestBackend::delete) and
/// [`request`](TestBackend::request); leases and tokens through
/// [`renew`](TestBackend::renew), [`revoke`](TestBackend::revoke) and
/// [`renew_token`](TestBackend::renew_token); the periodic function and the write-ahead log
/// through [`rollback`](TestBackend::rollback). The mount's storage is a [`MemoryStorage`] the
/// test can look into ([`stored`](TestBackend::stored), [`stored_json`](TestBackend::stored_json),
/// [`stored_keys`](TestBackend::stored_keys)).
pub struct TestBackend<B> {
    pub(super) backend: B,
    pub(super) storage: Arc<MemoryStorage>,
    pub(super) system_view: Arc<StaticSystemView>,
    pub(super) mount_point: String,
    /// The backend's unauthenticated special paths, to mark requests to them as the server does.
    pub(super) unauthenticated: Vec<String>,
    pub(super) leases: RecoveringMutex<Leases>,
}

impl TestBackend<()> {
    /// A builder, to choose the system view, the storage, the mount's configuration or its
    /// path; it makes a `TestBackend` of any backend (the `()` only names where this function
    /// lives, so that `TestBackend::builder()` needs no type).
    pub fn builder() -> TestBackendBuilder {
        TestBackendBuilder::new()
    }
}

impl<B: Backend> TestBackend<B> {
    /// Mounts what `factory` makes on empty storage and the default [`StaticSystemView`]
    /// (768-hour TTLs, no password policies), then initializes it, as the server does.
    pub async fn new<F>(factory: F) -> Result<Self, Error>
    where
        F: BackendFactory<Backend = B>,
    {
        TestBackendBuilder::new().build(factory).await
    }

    /// The backend itself, for what the kit does not cover.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The mount's storage.
    pub fn storage(&self) -> &Arc<MemoryStorage> {
        &self.storage
    }

    /// The mount's system view.
    pub fn system_view(&self) -> &StaticSystemView {
        &self.system_view
    }

    /// Where the backend is mounted, with a trailing `/` (`test/` unless the builder set it).
    pub fn mount_point(&self) -> &str {
        &self.mount_point
    }

    /// A request of any operation to `path` (relative to the mount); add data with
    /// [`RequestBuilder::data`], then `.await` it (or call [`RequestBuilder::send`]).
    pub fn request(&self, operation: Operation, path: &str) -> RequestBuilder<'_, B> {
        let unauthenticated = self
            .unauthenticated
            .iter()
            .any(|pattern| special_path_matches(pattern, path));
        RequestBuilder::new(self, operation, path, unauthenticated)
    }

    /// A read (HTTP GET).
    pub fn read(&self, path: &str) -> RequestBuilder<'_, B> {
        self.request(Operation::Read, path)
    }

    /// A write (HTTP POST/PUT): the existence check decides between create and update, as on
    /// the server.
    pub fn write(&self, path: &str) -> RequestBuilder<'_, B> {
        self.request(Operation::Update, path)
    }

    /// A list (HTTP LIST); the path gets the trailing `/` the server adds.
    pub fn list(&self, path: &str) -> RequestBuilder<'_, B> {
        if path.is_empty() || path.ends_with('/') {
            self.request(Operation::List, path)
        } else {
            self.request(Operation::List, &format!("{path}/"))
        }
    }

    /// A delete (HTTP DELETE).
    pub fn delete(&self, path: &str) -> RequestBuilder<'_, B> {
        self.request(Operation::Delete, path)
    }

    /// The server's periodic `rollback` request (the periodic function, then the write-ahead
    /// log); [`RequestBuilder::immediate`] makes it roll back every entry, whatever its age.
    pub fn rollback(&self) -> RequestBuilder<'_, B> {
        self.request(Operation::Rollback, "")
    }

    /// The bytes stored at `key`, if any.
    ///
    /// # Panics
    /// If the storage fails (a [`MemoryStorage`] does not).
    pub async fn stored(&self, key: &str) -> Option<Vec<u8>> {
        self.storage
            .get(key)
            .await
            .unwrap_or_else(|error| panic!("reading {key:?} from memory storage: {error}"))
    }

    /// The JSON stored at `key`, if any.
    ///
    /// # Panics
    /// If what is stored there is not JSON.
    pub async fn stored_json(&self, key: &str) -> Option<Value> {
        let bytes = self.stored(key).await?;
        Some(
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|error| panic!("the entry at {key:?} is not JSON: {error}")),
        )
    }

    /// The keys right under `prefix`, as [`Storage::list`](crate::backend::Storage::list)
    /// answers them: sorted, sub-folders once with a trailing `/`.
    pub async fn stored_keys(&self, prefix: &str) -> Vec<String> {
        self.storage
            .list(prefix)
            .await
            .unwrap_or_else(|error| panic!("listing {prefix:?} in memory storage: {error}"))
    }

    /// Every key in the mount's storage, whole and sorted.
    pub async fn all_stored_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            for child in self.stored_keys(&folder).await {
                let key = format!("{folder}{child}");
                if key.ends_with('/') {
                    folders.push(key);
                } else {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        keys
    }

    /// Writes `value` at `key` behind the backend's back: to seed a test, or to corrupt an
    /// entry. The backend is not told ([`Backend::invalidate`] is not called).
    pub async fn store(&self, key: &str, value: impl Into<Vec<u8>>) {
        self.storage
            .put(key, value.into())
            .await
            .unwrap_or_else(|error| panic!("writing {key:?} to memory storage: {error}"));
    }
}

/// Chooses the system view, storage, configuration and mount point of a [`TestBackend`].
///
/// ```
/// # use std::sync::LazyLock;
/// # use std::time::Duration;
/// # use vault_plugin_sdk::backend::framework::{RoutedBackend, Router};
/// use vault_plugin_sdk::testing::{PasswordPolicy, StaticSystemView, TestBackend};
/// # struct Nothing;
/// # static ROUTER: LazyLock<Router<Nothing>> = LazyLock::new(|| Router::new("", vec![]));
/// # impl RoutedBackend for Nothing {
/// #     fn router(&self) -> &Router<Self> {
/// #         &ROUTER
/// #     }
/// # }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let system_view = StaticSystemView::default()
///     .with_default_lease_ttl(Duration::from_secs(3600))
///     .with_password_policy("digits", PasswordPolicy::generator(|| "12345678".to_owned()));
/// let backend = TestBackend::builder()
///     .system_view(system_view)
///     .mount_point("pw")
///     .config("region", "eu")
///     .build_with(|config| {
///         assert_eq!(config.config["region"], "eu");
///         Nothing
///     })
///     .await
///     .unwrap();
/// assert_eq!(backend.mount_point(), "pw/");
/// assert_eq!(backend.system_view().default_lease_ttl, Duration::from_secs(3600));
/// # });
/// ```
#[derive(Debug)]
pub struct TestBackendBuilder {
    system_view: StaticSystemView,
    storage: Arc<MemoryStorage>,
    config: HashMap<String, String>,
    mount_point: String,
}

impl Default for TestBackendBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TestBackendBuilder {
    /// Empty storage, the default [`StaticSystemView`], no configuration, mounted at `test/`.
    pub fn new() -> Self {
        Self {
            system_view: StaticSystemView::default(),
            storage: Arc::new(MemoryStorage::new()),
            config: HashMap::new(),
            mount_point: "test/".to_owned(),
        }
    }

    /// The system view the backend gets: TTLs, password policies, local mount, replication
    /// state.
    pub fn system_view(mut self, system_view: StaticSystemView) -> Self {
        self.system_view = system_view;
        self
    }

    /// Storage to start from, say another [`TestBackend`]'s, to mount again on the same data.
    pub fn storage(mut self, storage: Arc<MemoryStorage>) -> Self {
        self.storage = storage;
        self
    }

    /// Adds a mount option to [`BackendConfig::config`].
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.insert(key.into(), value.into());
        self
    }

    /// Where the backend is mounted (`pw`, `auth/users`): requests carry it, and lease ids
    /// start with it. A trailing `/` is added when missing.
    pub fn mount_point(mut self, mount_point: &str) -> Self {
        let trimmed = mount_point.trim_matches('/');
        self.mount_point = format!("{trimmed}/");
        self
    }

    /// Mounts what `factory` makes, then initializes it, as the server does (Setup, then
    /// Initialize).
    pub async fn build<F: BackendFactory>(
        self,
        factory: F,
    ) -> Result<TestBackend<F::Backend>, Error> {
        let system_view = Arc::new(self.system_view.clone());
        let backend = factory.create(self.backend_config(&system_view)).await?;
        self.finish(backend, system_view).await
    }

    /// Mounts the backend `make` builds from the configuration (its storage and system view
    /// are the test's), for a backend without a factory; then initializes it.
    pub async fn build_with<B: Backend>(
        self,
        make: impl FnOnce(BackendConfig) -> B,
    ) -> Result<TestBackend<B>, Error> {
        let system_view = Arc::new(self.system_view.clone());
        let backend = make(self.backend_config(&system_view));
        self.finish(backend, system_view).await
    }

    fn backend_config(&self, system_view: &Arc<StaticSystemView>) -> BackendConfig {
        BackendConfig {
            config: self.config.clone(),
            backend_uuid: "00000000-0000-0000-0000-000000000000".to_owned(),
            storage: self.storage.clone(),
            system_view: system_view.clone(),
        }
    }

    async fn finish<B: Backend>(
        self,
        backend: B,
        system_view: Arc<StaticSystemView>,
    ) -> Result<TestBackend<B>, Error> {
        backend.initialize().await?;
        let unauthenticated = backend.special_paths().unauthenticated;
        Ok(TestBackend {
            backend,
            storage: self.storage,
            system_view,
            mount_point: self.mount_point,
            unauthenticated,
            leases: RecoveringMutex::new(Leases::default()),
        })
    }
}
