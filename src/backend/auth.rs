//! What an auth method answers to a login: who the caller is and what token to make.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::Error;
use super::secret::LeaseOptions;

/// The result of a login (`logical.Auth`): the server makes a token from it.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Auth {
    /// The token's lifetime; `renewable` must be true for `token renew` to reach the backend.
    pub lease: LeaseOptions,
    /// Kept with the token and sent back on renew.
    pub internal_data: Map<String, Value>,
    /// Shown in the token's display name, after the mount's path (`userpass-alice`).
    pub display_name: String,
    /// The token's policies; the server adds `default` unless `no_default_policy`.
    pub policies: Vec<String>,
    /// Shown as the token's `meta`.
    pub metadata: BTreeMap<String, String>,
    /// The server's; empty in what a backend returns.
    pub client_token: String,
    /// The server's; empty in what a backend returns.
    pub accessor: String,
    /// A periodic token's period; zero for none.
    pub period: Duration,
    /// How many uses the token has; zero means unlimited.
    pub num_uses: i64,
    /// The server's, from the alias.
    pub entity_id: String,
    /// The identity alias the login maps to; its name must not be empty.
    pub alias: Option<Alias>,
    /// Aliases of external groups the caller belongs to.
    pub group_aliases: Vec<Alias>,
    /// IPs or CIDRs the token may be used from.
    pub bound_cidrs: Vec<String>,
    /// The server's.
    pub token_policies: Vec<String>,
    /// The server's.
    pub identity_policies: Vec<String>,
    /// A hard limit on the token's life, whatever renewals; zero for none.
    pub explicit_max_ttl: Duration,
    /// Which kind of token to make.
    pub token_type: TokenType,
    /// Leaves out the `default` policy.
    pub no_default_policy: bool,
}

/// An identity alias (`logical.Alias`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Alias {
    /// The name that identifies the caller within this auth method.
    pub name: String,
    /// Set by the server.
    pub mount_type: String,
    /// Set by the server.
    pub mount_accessor: String,
    /// The alias's metadata.
    pub metadata: BTreeMap<String, String>,
    /// The server's.
    pub id: String,
    /// The server's.
    pub namespace_id: String,
    /// Metadata the backend leaves to operators.
    pub custom_metadata: BTreeMap<String, String>,
    /// Local to this cluster (not replicated).
    pub local: bool,
}

/// The kind of token a login makes (`logical.TokenType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenType {
    /// What the mount's tuning says, else a service token.
    #[default]
    Default,
    /// A service token: renewable, with a lease.
    Service,
    /// A batch token: lightweight, neither renewable nor revocable one by one.
    Batch,
    /// A service token unless the mount's tuning says otherwise.
    DefaultService,
    /// A batch token unless the mount's tuning says otherwise.
    DefaultBatch,
}

impl Auth {
    /// A login's result with these policies and nothing else yet: set the lease, the alias,
    /// the display name and the metadata on it.
    pub fn new<S: Into<String>>(policies: impl IntoIterator<Item = S>) -> Self {
        Self {
            policies: policies.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Sets the token's lifetime.
    #[must_use]
    pub fn with_lease(mut self, lease: LeaseOptions) -> Self {
        self.lease = lease;
        self
    }

    /// Sets the identity alias the server ties the token's entity to (its name must not be
    /// empty).
    #[must_use]
    pub fn with_alias(mut self, alias: Alias) -> Self {
        self.alias = Some(alias);
        self
    }

    /// Sets the name shown in the token's display name.
    #[must_use]
    pub fn with_display_name(mut self, display_name: impl Into<String>) -> Self {
        self.display_name = display_name.into();
        self
    }

    /// Sets what the token's `meta` shows.
    #[must_use]
    pub fn with_metadata(mut self, metadata: BTreeMap<String, String>) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets what is kept with the token and sent back on renew: any `Serialize` value whose
    /// JSON is an object. Read it back with [`Auth::internal`].
    pub fn with_internal<T: serde::Serialize + ?Sized>(
        mut self,
        internal: &T,
    ) -> Result<Self, Error> {
        self.internal_data = super::json::to_object(internal, "a token's internal data")?;
        Ok(self)
    }

    /// The token's internal data read as a `T`, as [`Auth::with_internal`] stored it. An error
    /// names what did not fit, never the values.
    pub fn internal<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        super::json::from_object(&self.internal_data, "the token's internal data")
    }
}

impl Alias {
    /// An alias called `name`: the user's name in this auth method.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Sets the alias's metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: BTreeMap<String, String>) -> Self {
        self.metadata = metadata;
        self
    }
}

impl TokenType {
    /// The wire number.
    pub(crate) fn to_wire(self) -> u32 {
        match self {
            Self::Default => 0,
            Self::Service => 1,
            Self::Batch => 2,
            Self::DefaultService => 3,
            Self::DefaultBatch => 4,
        }
    }

    /// The type a wire number names; unknown numbers read as the default, which lets the
    /// server decide.
    pub(crate) fn from_wire(number: u32) -> Self {
        match number {
            1 => Self::Service,
            2 => Self::Batch,
            3 => Self::DefaultService,
            4 => Self::DefaultBatch,
            _ => Self::Default,
        }
    }
}
