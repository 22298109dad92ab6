//! The backend: one per mount, holding the mount's storage and system view, and the router
//! that every mount shares.

use std::sync::{Arc, LazyLock};

use vault_plugin_sdk::backend::framework::{RoutedBackend, Router, SecretType};
use vault_plugin_sdk::backend::{
    BackendConfig, BackendFactory, Error, KeyedLocks, Storage, SystemView,
};

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

    async fn create(&self, config: BackendConfig) -> Result<PasswordBackend, Error> {
        // Storage is read-only until Initialize, and absent at registration: nothing is read
        // or written here.
        Ok(PasswordBackend {
            storage: config.storage,
            system_view: config.system_view,
            locks: KeyedLocks::new(),
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
    /// Per storage key: taken by the handlers that write an entry others may be writing at
    /// the same time (roles' writes and deletes; an issued entry's renew, revoke and tidy,
    /// but not its first write under a new random name), before they read it, so that
    /// requests running at once do not overwrite each other's changes: a role's update that
    /// keeps the fields it does not name, the tidy that deletes an issued entry it read as
    /// expired, which a renewal may have moved meanwhile.
    pub(crate) locks: KeyedLocks,
}

impl RoutedBackend for PasswordBackend {
    fn router(&self) -> &Router<Self> {
        &ROUTER
    }
}

/// A [`Duration`](std::time::Duration) stored as whole seconds (`#[serde(with = "seconds")]`).
pub(crate) mod seconds {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(duration.as_secs())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! The backend mounted in process by the SDK's test kit, and requests to drive it.

    use std::time::Duration;

    use serde_json::{Map, Value};
    use vault_plugin_sdk::backend::{Operation, Response};
    use vault_plugin_sdk::testing::{StaticSystemView, TestBackend};

    use super::{Factory, PasswordBackend};

    /// The backend as the kit mounts it.
    pub(crate) type Mount = TestBackend<PasswordBackend>;

    /// A mount at `pw/` whose default TTL is one hour and max TTL one day.
    pub(crate) async fn backend() -> Mount {
        backend_with(StaticSystemView::default()).await
    }

    /// [`backend`] with the password policies (or anything else) of `system_view`.
    pub(crate) async fn backend_with(system_view: StaticSystemView) -> Mount {
        let system_view = system_view
            .with_default_lease_ttl(Duration::from_secs(3600))
            .with_max_lease_ttl(Duration::from_secs(24 * 3600));
        TestBackend::builder()
            .mount_point("pw")
            .system_view(system_view)
            .build(Factory)
            .await
            .expect("the factory makes a backend")
    }

    pub(crate) fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// Sends one request as the server would (the kit asks the existence check first for
    /// writes, to pick create or update) and returns the answer; errors panic.
    pub(crate) async fn call(
        backend: &Mount,
        operation: Operation,
        path: &str,
        data: Value,
    ) -> Option<Response> {
        backend
            .request(operation, path)
            .data(data)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}
