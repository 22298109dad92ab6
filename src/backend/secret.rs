//! Leases: what a secrets engine attaches to a response so the server tracks, renews and
//! revokes what it handed out.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

/// How long a lease or token lives, and whether it may be extended.
///
/// The backend sets `ttl`, `max_ttl` and `renewable`; the server sets `increment` (the TTL a
/// client asked for on renew) and `issue_time` on the requests it sends for renew and revoke.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseOptions {
    /// How long the lease lives from now; zero means the mount's default.
    pub ttl: Duration,
    /// The most the lease may live in all, counted from its first issue; zero means the
    /// mount's maximum.
    pub max_ttl: Duration,
    /// Whether renew requests reach the backend; a non-renewable lease is refused by the
    /// server.
    pub renewable: bool,
    /// On renew: the TTL the client asked for, zero when it asked for none.
    pub increment: Duration,
    /// On renew and revoke: when the lease was first issued.
    pub issue_time: Option<SystemTime>,
}

/// A leased secret (`logical.Secret`).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Secret {
    /// Its lifetime.
    pub lease: LeaseOptions,
    /// Kept by the server with the lease and sent back on renew and revoke: put here what
    /// revocation needs, because renew replaces the lease's data. The framework's secret
    /// types keep their name here under `secret_type`.
    pub internal_data: Map<String, Value>,
    /// The server's id for the lease; empty in what a backend returns.
    pub lease_id: String,
}

impl LeaseOptions {
    /// A lease of `ttl` (zero: the mount's default), at most `max_ttl` (zero: the mount's max).
    pub fn new(ttl: Duration, max_ttl: Duration) -> Self {
        Self {
            ttl,
            max_ttl,
            ..Self::default()
        }
    }

    /// Makes the lease renewable.
    #[must_use]
    pub fn renewable(mut self, renewable: bool) -> Self {
        self.renewable = renewable;
        self
    }
}

impl Secret {
    /// The lease's internal data read as a `T` (keys `T` does not name, such as the
    /// framework's `secret_type`, are ignored unless `T` refuses unknown fields). An error
    /// names what did not fit, never the values: internal data holds what revocation needs.
    pub fn internal<T: serde::de::DeserializeOwned>(&self) -> Result<T, super::Error> {
        super::json::from_object(&self.internal_data, "the lease's internal data")
    }

    /// A secret with `internal_data` that lives for `ttl` (zero: the mount's default).
    pub fn new(ttl: Duration, internal_data: Map<String, Value>) -> Self {
        Self {
            lease: LeaseOptions {
                ttl,
                ..LeaseOptions::default()
            },
            internal_data,
            lease_id: String::new(),
        }
    }
}
