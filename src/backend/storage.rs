//! The storage a backend sees: the mount's private view of the server's storage.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::Error;
use super::error::{Source, as_source};
use super::json::json_error_category as category;

/// A boxed future, so [`Storage`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A storage failure: the server's text, passed through verbatim (the server recognises some
/// of them, for example the read-only error on a standby, to forward the request to the active
/// node), and optionally the cause (the failed call's `tonic::Status`, say).
///
/// [`Display`](fmt::Display) writes the message alone. Equality compares the messages, not
/// the causes.
#[derive(Clone, Debug)]
pub struct StorageError {
    message: String,
    source: Option<Source>,
}

impl StorageError {
    /// A failure with the storage's text `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `source` as the cause. It never reaches the server, but may reach a log: it must
    /// not carry a secret (a stored value, say).
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The storage's text, verbatim.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        as_source(self.source.as_ref())
    }
}

impl PartialEq for StorageError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for StorageError {}

/// Key/value storage with `/`-separated hierarchical keys.
pub trait Storage: Send + Sync {
    /// The value at `key`, or `None` when there is none.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>>;
    /// Writes `value` at `key`.
    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>) -> BoxFuture<'a, Result<(), StorageError>>;
    /// Removes `key`; removing a missing key is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>>;
    /// The immediate children of `prefix`, sorted; sub-folders end in `/`.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StorageError>>;
}

impl dyn Storage + '_ {
    /// Reads the entry at `key` as JSON into a `T` (Go's `StorageEntry.DecodeJSON`); `None`
    /// when there is no entry.
    ///
    /// An entry that does not decode is an error naming the key and where decoding stopped,
    /// never the stored bytes: entries hold secrets.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, Error> {
        let Some(bytes) = self.get(key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| Error::other(decode_error(key, &error)))
    }

    /// Writes `value` as JSON at `key` (Go's `logical.StorageEntryJSON`).
    pub async fn put_json<T: serde::Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|error| {
            Error::other(format!(
                "cannot encode the storage entry {key:?}: {}",
                category(&error)
            ))
        })?;
        self.put(key, bytes).await?;
        Ok(())
    }
}

/// What went wrong decoding `key`, without serde_json's message: that quotes the bytes it
/// found, and a stored entry may be a secret.
fn decode_error(key: &str, error: &serde_json::Error) -> String {
    format!(
        "the storage entry {key:?} does not decode: {} at line {}, column {}",
        category(error),
        error.line(),
        error.column()
    )
}

/// Storage in memory, for tests and for benchmarks that leave the server out.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    entries: crate::sync::RecoveringMutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStorage {
    /// Empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.entries.lock()
    }
}

impl Storage for MemoryStorage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>> {
        let value = self.entries().get(key).cloned();
        Box::pin(async move { Ok(value) })
    }

    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>) -> BoxFuture<'a, Result<(), StorageError>> {
        self.entries().insert(key.to_owned(), value);
        Box::pin(async { Ok(()) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        self.entries().remove(key);
        Box::pin(async { Ok(()) })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        let mut children: Vec<String> = Vec::new();
        for key in self.entries().range(prefix.to_owned()..).map(|(k, _)| k) {
            let Some(rest) = key.strip_prefix(prefix) else {
                break;
            };
            let child = match rest.find('/') {
                Some(slash) => &rest[..=slash],
                None => rest,
            };
            if children.last().map(String::as_str) != Some(child) {
                children.push(child.to_owned());
            }
        }
        Box::pin(async move { Ok(children) })
    }
}

/// Storage errors reach the client as plain errors, with the server's text verbatim: the
/// server recognises some of them (a standby's read-only error makes it forward the request).
/// The storage error is the cause.
impl From<StorageError> for Error {
    fn from(error: StorageError) -> Self {
        Self::other(error.message().to_owned()).with_source(error)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn list_returns_immediate_children_with_folders_once() {
        let storage = MemoryStorage::new();
        for key in ["kv/b", "kv/a", "kv/dir/x", "kv/dir/y", "other/z"] {
            storage.put(key, b"v".to_vec()).await.unwrap();
        }
        assert_eq!(storage.list("kv/").await.unwrap(), ["a", "b", "dir/"]);
        assert_eq!(storage.list("").await.unwrap(), ["kv/", "other/"]);
        assert!(storage.list("none/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn json_entries_round_trip_and_a_bad_one_is_named_without_its_bytes() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Role {
            ttl: u64,
            name: String,
        }
        let storage: &dyn Storage = &MemoryStorage::new();
        let role = Role {
            ttl: 60,
            name: "web".into(),
        };
        storage.put_json("roles/web", &role).await.unwrap();
        assert_eq!(
            storage.get("roles/web").await.unwrap().unwrap(),
            br#"{"ttl":60,"name":"web"}"#
        );
        assert_eq!(
            storage.get_json::<Role>("roles/web").await.unwrap(),
            Some(role)
        );
        assert_eq!(storage.get_json::<Role>("roles/none").await.unwrap(), None);

        storage
            .put("roles/bad", br#"{"ttl":"hunter2","name":"x"}"#.to_vec())
            .await
            .unwrap();
        let error = storage
            .get_json::<Role>("roles/bad")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "the storage entry \"roles/bad\" does not decode: JSON of another shape at line 1, \
             column 16"
        );
        assert!(!error.contains("hunter2"));
        storage
            .put("roles/cut", br#"{"ttl":6"#.to_vec())
            .await
            .unwrap();
        let error = storage
            .get_json::<Role>("roles/cut")
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("JSON that ends too early"), "{error}");
    }

    #[tokio::test]
    async fn delete_of_a_missing_key_is_not_an_error() {
        let storage = MemoryStorage::new();
        storage.delete("kv/missing").await.unwrap();
        storage.put("kv/a", b"1".to_vec()).await.unwrap();
        storage.delete("kv/a").await.unwrap();
        assert_eq!(storage.get("kv/a").await.unwrap(), None);
    }
}
