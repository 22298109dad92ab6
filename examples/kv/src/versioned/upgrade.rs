//! The upgrade of a version 1 mount to version 2, in place, as the Go plugin does it: each
//! key's value becomes version 1 of that key, and the mount refuses requests until done.
//!
//! The server reloads the mount with `version=2` after a tune; the factory then finds
//! `<u>/upgrading` missing (or not done) and starts this. With no keys at all (a new mount)
//! the mount serves at once and only the done-marker is written. Otherwise a task writes the
//! marker, converts every key outside `<u>/`, creates the naming policy and marks the upgrade
//! done; until then every request answers 400 "Upgrading …". A failure is logged and leaves
//! the marker unfinished, so the mount keeps refusing until it is reloaded, as with Go.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prost::Message as _;
use vault_plugin_sdk::backend::{Error, Storage};

use super::{Versioned, add_version};
use crate::storage::names::MetadataNames;
use crate::storage::records::{self, Configuration, KeyMetadata, UpgradeInfo, Version};
use crate::storage::salt::Salt;

/// What the server answers a write made while the mount is still being set up.
const SETUP_READ_ONLY: &str = "cannot write to storage during setup";

/// Starts (or finishes) the upgrade when `<u>/upgrading` does not say it is done.
pub(super) async fn start(backend: &Versioned) -> Result<(), Error> {
    let marker = backend.key("upgrading");
    if let Some(bytes) = backend.storage().get(&marker).await? {
        let info: UpgradeInfo = records::decode(&marker, &bytes)?;
        if info.done {
            return Ok(());
        }
    }
    let mut info = UpgradeInfo {
        started_time: Some(records::now()),
        done: false,
    };
    let keys = collect_keys(backend.storage()).await?;
    let job = Job {
        storage: Arc::clone(&backend.storage),
        uuid: backend.uuid.clone(),
        marker,
    };
    if keys.is_empty() {
        info.done = true;
        tokio::spawn(async move {
            if let Err(error) = job.write_marker(&info).await {
                tracing::error!(
                    error = %error,
                    "writing upgrade info resulted in an error, but all keys were successfully upgraded"
                );
            }
        });
        return Ok(());
    }
    backend.upgrading.store(true, Ordering::SeqCst);
    let upgrading = Arc::clone(&backend.upgrading);
    tokio::spawn(async move {
        match job.run(info).await {
            Ok(()) => upgrading.store(false, Ordering::SeqCst),
            // Logged only: the mount keeps refusing requests until it is reloaded.
            Err(error) => tracing::error!(error = %error, "upgrading resulted in error"),
        }
    });
    Ok(())
}

/// The background half: its own handles on storage, so it outlives the factory call.
struct Job {
    storage: Arc<dyn Storage>,
    uuid: String,
    marker: String,
}

impl Job {
    /// The upgrade; an error leaves the mount refusing requests. Like Go's, it gives up when
    /// the first marker cannot be written.
    async fn run(&self, mut info: UpgradeInfo) -> Result<(), Error> {
        self.write_marker(&info).await.map_err(|error| {
            Error::other(format!(
                "writing upgrade info resulted in an error: {error}"
            ))
        })?;
        let names = MetadataNames::load_or_create(self.storage.as_ref(), &self.uuid).await?;
        let salt = Salt::load_or_create(self.storage.as_ref(), &self.uuid).await?;
        for key in collect_keys(self.storage.as_ref()).await? {
            if key.starts_with(&self.uuid) {
                continue;
            }
            self.upgrade_key(&names, &salt, &key).await?;
        }
        info.done = true;
        // All keys are converted: the mount serves whether or not the marker is written.
        if let Err(error) = self.write_marker(&info).await {
            tracing::error!(
                error = %error,
                "writing upgrade info resulted in an error, but all keys were successfully upgraded"
            );
        }
        Ok(())
    }

    /// The value at `key` becomes version 1 of `key`, byte for byte.
    async fn upgrade_key(
        &self,
        names: &MetadataNames,
        salt: &Salt,
        key: &str,
    ) -> Result<(), Error> {
        let Some(value) = self.storage.get(key).await? else {
            return Ok(());
        };
        let created = records::now();
        let version = Version {
            data: value,
            created_time: Some(created),
            deletion_time: None,
        };
        self.storage
            .put(&salt.version_key(key, 1), version.encode_to_vec())
            .await?;
        let mut meta = KeyMetadata {
            key: key.to_owned(),
            ..KeyMetadata::default()
        };
        // A window of one, as Go's `AddVersion(…, 1)`: the oldest version is 1.
        let one = Configuration {
            max_versions: 1,
            ..Configuration::default()
        };
        add_version(&mut meta, &one, created, None);
        self.storage
            .put(&names.storage_key(key), meta.encode_to_vec())
            .await?;
        self.storage.delete(key).await?;
        Ok(())
    }

    /// Writes the marker, waiting while the server still sets the mount up.
    async fn write_marker(&self, info: &UpgradeInfo) -> Result<(), Error> {
        loop {
            match self.storage.put(&self.marker, info.encode_to_vec()).await {
                Err(error) if error.message().contains(SETUP_READ_ONLY) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                done => return done.map_err(Error::from),
            }
        }
    }
}

/// Every key of the mount's storage, depth first (Go's `logical.CollectKeys`).
async fn collect_keys(storage: &dyn Storage) -> Result<Vec<String>, Error> {
    let mut keys = Vec::new();
    let mut folders = vec![String::new()];
    while let Some(folder) = folders.pop() {
        for child in storage.list(&folder).await? {
            let full = format!("{folder}{child}");
            if full.ends_with('/') {
                folders.push(full);
            } else {
                keys.push(full);
            }
        }
    }
    Ok(keys)
}
