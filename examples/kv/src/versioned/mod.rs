//! Version 2: versioned keys, check-and-set, soft delete, metadata. One [`Versioned`] per
//! mount; its paths are in the modules below, in the Go plugin's match order.

mod config;
mod data;
mod invalid;
mod metadata;
mod subkeys;
mod upgrade;
mod versions;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prost::Message as _;
use prost_types::Timestamp;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use vault_plugin_sdk::backend::framework::{
    FieldData, FieldSchema, FieldType, HandlerFn, RoutedBackend, Router,
};
use vault_plugin_sdk::backend::{
    BoxFuture, Error, KeyedLockGuard, KeyedLocks, Request, Response, SpecialPaths, Storage,
};

use crate::storage::names::MetadataNames;
use crate::storage::records::{
    self, Configuration, KeyMetadata, VersionMetadata, add_seconds, duration_seconds, time_text,
};
use crate::storage::salt::Salt;

const HELP: &str = "\
The versioned key/value store (KV version 2). Every write of a key keeps a new version; \
old versions stay readable until pruned (config and metadata max_versions), may be deleted \
and undeleted, or destroyed for good. Writes can require check-and-set. Paths: config, \
data/<key>, metadata/<key>, delete/<key>, undelete/<key>, destroy/<key>, subkeys/<key>.";

/// The versions a key keeps when neither the mount nor the key says.
const DEFAULT_MAX_VERSIONS: u32 = 10;

static ROUTER: LazyLock<Router<Versioned>> = LazyLock::new(|| {
    let mut paths = vec![config::path(), data::path(), metadata::path()];
    paths.push(versions::destroy_path());
    paths.push(subkeys::path());
    paths.extend(versions::delete_paths());
    paths.push(invalid::path());
    Router::new(HELP, paths).with_invalidate(Versioned::invalidate)
});

/// One version 2 mount. The encryption policy of metadata names, the salt of version keys and
/// the mount's config are read once and kept, as the Go plugin keeps them; `invalidate`
/// forgets them when a standby sees them change.
pub(crate) struct Versioned {
    storage: Arc<dyn Storage>,
    /// The mount's storage prefix: the server's backend-aware UUID.
    uuid: String,
    names: Mutex<Option<MetadataNames>>,
    salt: Mutex<Option<Salt>>,
    config: Mutex<Option<Configuration>>,
    /// The write lock of each key, across its metadata's read, change and write.
    locks: KeyedLocks,
    /// Set while the upgrade from version 1 runs: requests are refused meanwhile.
    upgrading: Arc<AtomicBool>,
}

impl RoutedBackend for Versioned {
    fn router(&self) -> &Router<Self> {
        &ROUTER
    }
}

impl Versioned {
    /// The backend of the mount whose storage prefix is `uuid`; runs or resumes the upgrade
    /// from version 1 when it is not done.
    pub(crate) async fn new(storage: Arc<dyn Storage>, uuid: String) -> Result<Self, Error> {
        if uuid.is_empty() {
            return Err(Error::other(
                "could not initialize versioned K/V Store, no UUID was provided",
            ));
        }
        let backend = Self {
            storage,
            uuid,
            names: Mutex::new(None),
            salt: Mutex::new(None),
            config: Mutex::new(None),
            locks: KeyedLocks::new(),
            upgrading: Arc::new(AtomicBool::new(false)),
        };
        upgrade::start(&backend).await?;
        Ok(backend)
    }

    /// The mount's special paths: the version blobs and the encryption policy are
    /// seal-wrapped. They name the mount's storage prefix, which the static router cannot.
    pub(crate) fn seal_wrapped(&self) -> SpecialPaths {
        SpecialPaths::default().with_seal_wrap_storage(
            ["versions/", "policy/", "archive/"].map(|folder| self.key(folder)),
        )
    }

    pub(crate) fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// `<u>/<rest>`.
    fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.uuid)
    }

    async fn invalidate(&self, key: &str) {
        if key == self.key("salt") {
            *self.salt.lock().await = None;
        } else if key == self.key("policy/metadata") {
            *self.names.lock().await = None;
        } else if key == self.key("config") {
            *self.config.lock().await = None;
        }
    }

    /// The encryptor of metadata names, creating the mount's policy on first use (so even a
    /// read writes, the first time, as with the Go plugin).
    async fn names(&self) -> Result<MetadataNames, Error> {
        let mut names = self.names.lock().await;
        if let Some(names) = names.as_ref() {
            return Ok(names.clone());
        }
        let loaded = MetadataNames::load_or_create(self.storage(), &self.uuid).await?;
        *names = Some(loaded.clone());
        Ok(loaded)
    }

    async fn salt(&self) -> Result<Salt, Error> {
        let mut salt = self.salt.lock().await;
        if let Some(salt) = salt.as_ref() {
            return Ok(salt.clone());
        }
        let loaded = Salt::load_or_create(self.storage(), &self.uuid).await?;
        *salt = Some(loaded.clone());
        Ok(loaded)
    }

    /// The mount's config; a fresh mount's is all zero.
    async fn config(&self) -> Result<Configuration, Error> {
        let mut config = self.config.lock().await;
        if let Some(config) = config.as_ref() {
            return Ok(config.clone());
        }
        let key = self.key("config");
        let loaded = match self.storage().get(&key).await? {
            Some(bytes) => records::decode(&key, &bytes)?,
            None => Configuration::default(),
        };
        *config = Some(loaded.clone());
        Ok(loaded)
    }

    async fn write_config(&self, config: Configuration) -> Result<(), Error> {
        let mut cached = self.config.lock().await;
        self.storage()
            .put(&self.key("config"), config.encode_to_vec())
            .await?;
        *cached = Some(config);
        Ok(())
    }

    /// The metadata of `key`, if it has any.
    async fn key_metadata(&self, key: &str) -> Result<Option<KeyMetadata>, Error> {
        let names = self.names().await?;
        let Some(bytes) = self.storage().get(&names.storage_key(key)).await? else {
            return Ok(None);
        };
        KeyMetadata::decode(bytes.as_slice())
            .map(Some)
            .map_err(|error| {
                Error::other(format!(
                    "failed to decode key metadata from storage: {error}"
                ))
            })
    }

    async fn write_key_metadata(&self, meta: &KeyMetadata) -> Result<(), Error> {
        let names = self.names().await?;
        self.storage()
            .put(&names.storage_key(&meta.key), meta.encode_to_vec())
            .await?;
        Ok(())
    }

    /// Where version `version` of `key` (the raw request key) is kept.
    async fn version_key(&self, key: &str, version: u64) -> Result<String, Error> {
        Ok(self.salt().await?.version_key(key, version))
    }

    async fn write_lock(&self, key: &str) -> KeyedLockGuard<'_> {
        self.locks.lock(key).await
    }

    /// Refuses requests while the upgrade from version 1 runs ([`Guarded`]): a short wait
    /// first, as the Go plugin's, so a request right at its end still succeeds.
    async fn upgrade_refusal(&self) -> Option<Response> {
        if !self.upgrading.load(Ordering::SeqCst) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
        self.upgrading.load(Ordering::SeqCst).then(|| {
            Response::error(
                "Upgrading from non-versioned to versioned data. This backend will be \
                 unavailable for a brief period and will resume service shortly.",
            )
        })
    }
}

/// A handler that first refuses the request while the upgrade from version 1 runs: Go's
/// `upgradeCheck`, around every handler but the catch-all's (existence checks and help are
/// not handlers, and are not refused either).
struct Guarded<H>(H);

impl<'a, H> HandlerFn<'a, Versioned, Option<Response>> for Guarded<H>
where
    H: for<'b> HandlerFn<'b, Versioned, Option<Response>>,
{
    type Future = BoxFuture<'a, Result<Option<Response>, Error>>;

    fn call(
        &self,
        backend: &'a Versioned,
        request: &'a Request,
        fields: &'a FieldData<'a>,
    ) -> Self::Future {
        let handled = self.0.call(backend, request, fields);
        Box::pin(async move {
            match backend.upgrade_refusal().await {
                Some(refusal) => Ok(Some(refusal)),
                None => handled.await,
            }
        })
    }
}

/// The `path` field every path but `config` captures: the key, as the request names it.
fn key_field() -> FieldSchema {
    FieldSchema::new("path", FieldType::String, "Location of the secret.")
}

/// How many versions `meta` keeps under `config`: the larger of the two, 10 when both are 0.
fn max_versions(config: &Configuration, meta: &KeyMetadata) -> u32 {
    match config.max_versions.max(meta.max_versions) {
        0 => DEFAULT_MAX_VERSIONS,
        n => n,
    }
}

/// The deletion time of a version created at `created`, if the mount and the key ask for one:
/// the smaller non-zero delete-version-after; none when the mount disables it.
fn deletion_time(
    created: &Timestamp,
    config: &Configuration,
    meta: &KeyMetadata,
) -> Option<Timestamp> {
    let mount = duration_seconds(config.delete_version_after.as_ref());
    if mount == DVA_DISABLED {
        return None;
    }
    let key = duration_seconds(meta.delete_version_after.as_ref());
    let after = match (mount, key) {
        (0, 0) => return None,
        (0, key) => key,
        (mount, 0) => mount,
        (mount, key) => mount.min(key),
    };
    Some(add_seconds(created, after))
}

/// A mount delete-version-after of exactly −1s disables expiry.
const DVA_DISABLED: i64 = -1;

/// Adds version `current + 1` to `meta` and prunes the window as the Go plugin's `AddVersion`:
/// returns the newest version number pruned (0 for none), whose blobs are then deleted.
fn add_version(
    meta: &mut KeyMetadata,
    config: &Configuration,
    created: Timestamp,
    deletion: Option<Timestamp>,
) -> u64 {
    meta.current_version += 1;
    meta.versions.insert(
        meta.current_version,
        VersionMetadata {
            created_time: Some(created),
            deletion_time: deletion,
            destroyed: false,
        },
    );
    meta.updated_time = Some(created);
    if meta.created_time.is_none() {
        meta.created_time = Some(created);
    }
    let limit = max_versions(config, meta);
    // Go computes the window in uint32.
    #[allow(clippy::cast_possible_truncation)]
    let span = (meta.current_version as u32).wrapping_sub(meta.oldest_version as u32);
    if span < limit {
        return 0;
    }
    let pruned = meta.current_version - u64::from(limit);
    for version in meta.oldest_version..=pruned {
        meta.versions.remove(&version);
    }
    meta.oldest_version = pruned + 1;
    pruned
}

/// The version metadata object of answers: `{version, created_time, deletion_time,
/// destroyed, custom_metadata}`.
fn version_answer(version: u64, vm: &VersionMetadata, meta: &KeyMetadata) -> Map<String, Value> {
    let json = json!({
        "version": version,
        "created_time": time_text(vm.created_time.as_ref()),
        "deletion_time": time_text(vm.deletion_time.as_ref()),
        "destroyed": vm.destroyed,
        "custom_metadata": custom_metadata(meta),
    });
    match json {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The key's custom metadata as answers show it: `null` when there is none.
fn custom_metadata(meta: &KeyMetadata) -> Value {
    if meta.custom_metadata.is_empty() {
        Value::Null
    } else {
        json!(meta.custom_metadata)
    }
}

/// A version counts as deleted once its deletion time has passed.
fn is_deleted(vm: &VersionMetadata) -> bool {
    vm.deletion_time.as_ref().is_some_and(records::is_past)
}

/// A raw 404 whose body is the whole answer for `data` (Go's `RespondWithStatusCode`).
fn not_found_with(request: &Request, data: Map<String, Value>) -> Result<Option<Response>, Error> {
    Response::whole_with_status(404, request, Some(Response::with_data(data))).map(Some)
}

/// A raw 404 with an empty body.
fn not_found_empty(request: &Request) -> Result<Option<Response>, Error> {
    Response::whole_with_status(404, request, None).map(Some)
}

#[cfg(test)]
mod tests;
