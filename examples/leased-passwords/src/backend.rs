//! The backend: one per mount, holding the mount's storage and system view, and the router
//! that every mount shares.

use std::sync::{Arc, LazyLock};

use serde_json::Value;
use vault_plugin_sdk::backend::framework::{RoutedBackend, Router, SecretType};
use vault_plugin_sdk::backend::{BackendConfig, BackendFactory, Error, Storage, SystemView};

use crate::{creds, issued, roles};

/// What `help` on the mount's root says.
const HELP: &str = "\
The leased-passwords secrets engine hands out random passwords under renewable leases.

Write a role at roles/<name> (ttl, max_ttl, and length or a server password_policy), then
read creds/<name> for a username and password. The server renews and revokes the lease;
live credentials are listed at issued/.";

static ROUTER: LazyLock<Router<PasswordBackend>> = LazyLock::new(|| {
    let mut paths = roles::paths();
    paths.extend(creds::paths());
    paths.extend(issued::paths());
    Router::new(HELP, paths)
        .with_secret_type(
            SecretType::new(creds::SECRET_KIND)
                .renew(creds::renew)
                .revoke(creds::revoke),
        )
        .with_periodic(issued::periodic_tidy)
});

/// Builds one [`PasswordBackend`] per mount.
pub(crate) struct Factory;

impl BackendFactory for Factory {
    type Backend = PasswordBackend;

    fn version(&self) -> String {
        concat!("v", env!("CARGO_PKG_VERSION")).to_owned()
    }

    async fn create(&self, config: BackendConfig) -> Result<PasswordBackend, Error> {
        // Storage is read-only until Initialize, and absent at registration: nothing is read
        // or written here.
        Ok(PasswordBackend {
            storage: config.storage,
            system_view: config.system_view,
        })
    }
}

/// One mount: everything it keeps is in the server's storage, so it has no state of its own
/// and several requests may run at once.
pub(crate) struct PasswordBackend {
    pub(crate) storage: Arc<dyn Storage>,
    /// For the mount's TTL limits, to record when a lease expires, and the server's password
    /// policies.
    pub(crate) system_view: Arc<dyn SystemView>,
}

impl RoutedBackend for PasswordBackend {
    fn router(&self) -> &Router<Self> {
        &ROUTER
    }
}

impl PasswordBackend {
    /// The JSON object stored at `key`, if any.
    pub(crate) async fn get_json<T: FromJson>(&self, key: &str) -> Result<Option<T>, Error> {
        let Some(bytes) = self.storage.get(key).await? else {
            return Ok(None);
        };
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Other(format!("stored entry {key} is not JSON: {e}")))?;
        T::from_json(&value)
            .map(Some)
            .ok_or_else(|| Error::Other(format!("stored entry {key} is malformed")))
    }

    /// Stores `entry` at `key` as JSON.
    pub(crate) async fn put_json(&self, key: &str, entry: &impl ToJson) -> Result<(), Error> {
        let bytes = serde_json::to_vec(&entry.to_json())
            .map_err(|e| Error::Other(format!("cannot encode {key}: {e}")))?;
        Ok(self.storage.put(key, bytes).await?)
    }
}

/// A stored entry read back from its JSON (the crate has `serde_json` but not serde's derive,
/// so entries convert by hand).
pub(crate) trait FromJson: Sized {
    fn from_json(value: &Value) -> Option<Self>;
}

/// A whole number of seconds stored at `key` of a JSON entry.
pub(crate) fn seconds_at(value: &Value, key: &str) -> Option<std::time::Duration> {
    value
        .get(key)
        .and_then(Value::as_u64)
        .map(std::time::Duration::from_secs)
}

/// A stored entry written as JSON.
pub(crate) trait ToJson {
    fn to_json(&self) -> Value;
}

#[cfg(test)]
pub(crate) mod testing {
    //! A backend on in-memory storage and a fixed system view, and requests to drive it.

    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::{Map, Value};
    use vault_plugin_sdk::backend::{
        Backend as _, MemoryStorage, Operation, Request, Response, StaticSystemView,
    };

    use super::PasswordBackend;

    /// A mount whose default TTL is one hour and max TTL one day.
    pub(crate) fn backend() -> PasswordBackend {
        PasswordBackend {
            storage: Arc::new(MemoryStorage::new()),
            system_view: Arc::new(StaticSystemView {
                default_lease_ttl: Duration::from_secs(3600),
                max_lease_ttl: Duration::from_secs(24 * 3600),
                ..StaticSystemView::default()
            }),
        }
    }

    pub(crate) fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// Sends one request as the server would (an existence check first for writes, to pick
    /// create or update) and returns the answer; errors panic.
    pub(crate) async fn call(
        backend: &PasswordBackend,
        operation: Operation,
        path: &str,
        data: Value,
    ) -> Option<Response> {
        let mut request = Request::new(operation, path).with_data(object(data));
        if request.operation == Operation::Update {
            let exists = backend.existence_check(request.clone()).await;
            if exists == Ok(Some(false)) {
                request.operation = Operation::Create;
            }
        }
        backend
            .handle_request(request)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}
