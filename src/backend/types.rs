//! The domain types a backend works with: operations, requests, responses and errors.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use super::auth::Auth;
use super::error::Error;
use super::json::to_object;
use super::secret::Secret;

/// The kind of backend, as the server's `Type` RPC reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendType {
    /// A secrets engine (`TypeLogical`, 1).
    Logical,
    /// An auth method (`TypeCredential`, 2).
    Credential,
}

/// What the server asks of a path. Unknown words are kept so a newer server's operation is
/// answered with "unsupported operation" rather than a decoding failure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Write to a path whose existence check said absent.
    Create,
    /// Read a path (HTTP GET).
    #[default]
    Read,
    /// Write to a path (HTTP POST/PUT).
    Update,
    /// Change part of a path (HTTP PATCH).
    Patch,
    /// Remove a path (HTTP DELETE).
    Delete,
    /// List a folder (`LIST`, or GET with `?list=true`).
    List,
    /// List a folder recursively (OpenBao).
    Scan,
    /// Describe a path, or the backend on the root path.
    Help,
    /// The alias a login would map to, before it is made (user lockout).
    AliasLookahead,
    /// The role a login uses, for quotas.
    ResolveRole,
    /// Vault only.
    Header,
    /// A lease is to end (expiry, `lease revoke`, disable).
    Revoke,
    /// A lease or token is to be extended.
    Renew,
    /// The server's periodic call (every minute and before unmount): periodic work and WAL.
    Rollback,
    /// OpenBao asks this before every request to the mount; nothing needs to be done.
    ResolvePath,
    /// A word this SDK does not know; answered with "unsupported operation".
    Other(String),
}

impl Operation {
    /// The operation named by the wire word (`"create"`, `"read"`, …).
    pub fn from_wire(word: &str) -> Self {
        match word {
            "create" => Self::Create,
            "read" => Self::Read,
            "update" => Self::Update,
            "patch" => Self::Patch,
            "delete" => Self::Delete,
            "list" => Self::List,
            "scan" => Self::Scan,
            "help" => Self::Help,
            "alias-lookahead" => Self::AliasLookahead,
            "resolve-role" => Self::ResolveRole,
            "header" => Self::Header,
            "revoke" => Self::Revoke,
            "renew" => Self::Renew,
            "rollback" => Self::Rollback,
            "resolve-path" => Self::ResolvePath,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The wire word for this operation.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Create => "create",
            Self::Read => "read",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::List => "list",
            Self::Scan => "scan",
            Self::Help => "help",
            Self::AliasLookahead => "alias-lookahead",
            Self::ResolveRole => "resolve-role",
            Self::Header => "header",
            Self::Revoke => "revoke",
            Self::Renew => "renew",
            Self::Rollback => "rollback",
            Self::ResolvePath => "resolve-path",
            Self::Other(word) => word,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request from the server, with the path relative to the mount.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Request {
    /// The server's request id.
    pub id: String,
    /// What is asked of the path.
    pub operation: Operation,
    /// Relative to the mount: `kv/foo`, `""` for the mount root; list paths end in `/`. On
    /// renew and revoke, the path that issued the lease or token.
    pub path: String,
    /// The request body or query parameters; on renew and revoke of a lease, the lease's data.
    pub data: Map<String, Value>,
    /// On renew and revoke of a lease: the lease as the server keeps it.
    pub secret: Option<Secret>,
    /// On renew of a token: the login's auth as the server keeps it.
    pub auth: Option<Auth>,
    /// The request headers the mount is tuned to pass through (never the token).
    pub headers: BTreeMap<String, Vec<String>>,
    /// A per-mount salted hash of the caller's token, not the token.
    pub client_token: String,
    /// The caller's token accessor.
    pub client_token_accessor: String,
    /// The caller's token display name.
    pub display_name: String,
    /// The caller's entity.
    pub entity_id: String,
    /// Where the backend is mounted, e.g. `my-secrets-plugin/` or `auth/users/`.
    pub mount_point: String,
    /// The mount's type (the plugin's name).
    pub mount_type: String,
    /// The mount's accessor; may be empty.
    pub mount_accessor: String,
    /// The response wrapping the client asked for.
    pub wrap_ttl: Option<Duration>,
    /// The client asked to override soft-mandatory policies.
    pub policy_override: bool,
    /// True on the backend's unauthenticated (login) paths.
    pub unauthenticated: bool,
    /// The client connection the request arrived on.
    pub connection: Option<Connection>,
}

impl Request {
    /// A request with just an operation and a path, as tests and internal callers need.
    pub fn new(operation: Operation, path: impl Into<String>) -> Self {
        Self {
            operation,
            path: path.into(),
            ..Self::default()
        }
    }

    /// The same request with `data` set.
    pub fn with_data(mut self, data: Map<String, Value>) -> Self {
        self.data = data;
        self
    }
}

/// The client connection of a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Connection {
    /// The client's address.
    pub remote_addr: String,
    /// The client's port.
    pub remote_port: u16,
}

/// A successful answer. `data` travels as a JSON object; the server decodes numbers as
/// float64, so large integers belong in strings.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Response {
    /// The answer's data.
    pub data: Map<String, Value>,
    /// Shown to the client beside the data.
    pub warnings: Vec<String>,
    /// A lease the server is to track for what `data` hands out.
    pub secret: Option<Secret>,
    /// A login's result: the server makes a token of it.
    pub auth: Option<Auth>,
    /// Sends the client elsewhere (HTTP 307).
    pub redirect: String,
    /// Response headers; the server drops those the mount does not allow.
    pub headers: BTreeMap<String, Vec<String>>,
    /// Makes the server wrap the answer in a token that lives this long.
    pub wrap_ttl: Option<Duration>,
}

impl Response {
    /// An answer with `data` and nothing else.
    pub fn with_data(data: Map<String, Value>) -> Self {
        Self {
            data,
            ..Self::default()
        }
    }

    /// A response whose data is `value` serialised: any `Serialize` type whose JSON is an
    /// object (a struct or a map). Anything else is an error naming what it was.
    pub fn from_serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        to_object(value, "response data").map(Self::with_data)
    }

    /// Adds a lease for what the data hands out (a secrets engine's answer).
    #[must_use]
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Adds a login's result, of which the server makes a token (an auth method's answer).
    #[must_use]
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Adds a warning, shown to the client beside the data.
    #[must_use]
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// The idiomatic validation failure (`logical.ErrorResponse`): HTTP 400 with `msg`.
    pub fn error(message: impl Into<String>) -> Self {
        let mut data = Map::new();
        data.insert("error".to_owned(), Value::String(message.into()));
        Self::with_data(data)
    }

    /// A list answer (`logical.ListResponse`): `{"keys": [...]}`, or `{}` when there are none
    /// (which the server turns into a 404, as with the Go framework).
    pub fn list(keys: Vec<String>) -> Self {
        let mut data = Map::new();
        if !keys.is_empty() {
            data.insert(
                "keys".to_owned(),
                Value::Array(keys.into_iter().map(Value::String).collect()),
            );
        }
        Self::with_data(data)
    }

    /// True for a response built by [`Response::error`].
    pub fn is_error(&self) -> bool {
        self.data.len() == 1 && self.data.get("error").is_some_and(Value::is_string)
    }
}

/// Paths the server treats specially for this mount. Entries are exact paths; a trailing `*`
/// makes a prefix, and a `+` segment matches any one segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpecialPaths {
    /// Need root (sudo) capability.
    pub root: Vec<String>,
    /// Reachable without a token: an auth method's login paths.
    pub unauthenticated: Vec<String>,
    /// Kept local to the cluster, never replicated.
    pub local_storage: Vec<String>,
    /// Seal-wrapped where the server supports it.
    pub seal_wrap_storage: Vec<String>,
    /// Written on a performance secondary by forwarding to the primary.
    pub write_forwarded_storage: Vec<String>,
    /// Vault only: answered as raw bytes.
    pub binary: Vec<String>,
    /// Vault only: rate limited.
    pub limited: Vec<String>,
    /// Vault only: readable from a snapshot.
    pub allow_snapshot_read: Vec<String>,
}

impl SpecialPaths {
    /// Sets the paths reachable without a token (an auth method's login paths).
    #[must_use]
    pub fn with_unauthenticated<S: Into<String>>(
        mut self,
        paths: impl IntoIterator<Item = S>,
    ) -> Self {
        self.unauthenticated = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the paths that need root (sudo) capability.
    #[must_use]
    pub fn with_root<S: Into<String>>(mut self, paths: impl IntoIterator<Item = S>) -> Self {
        self.root = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the storage paths kept local to the cluster, never replicated.
    #[must_use]
    pub fn with_local_storage<S: Into<String>>(
        mut self,
        paths: impl IntoIterator<Item = S>,
    ) -> Self {
        self.local_storage = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the storage paths seal-wrapped where the server supports it.
    #[must_use]
    pub fn with_seal_wrap_storage<S: Into<String>>(
        mut self,
        paths: impl IntoIterator<Item = S>,
    ) -> Self {
        self.seal_wrap_storage = paths.into_iter().map(Into::into).collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_round_trip_through_their_wire_words() {
        for word in [
            "create",
            "read",
            "update",
            "patch",
            "delete",
            "list",
            "scan",
            "help",
            "alias-lookahead",
            "resolve-role",
            "header",
            "revoke",
            "renew",
            "rollback",
            "resolve-path",
            "frobnicate",
        ] {
            assert_eq!(Operation::from_wire(word).as_str(), word);
        }
        assert_eq!(
            Operation::from_wire("frobnicate"),
            Operation::Other("frobnicate".into())
        );
    }

    #[test]
    fn empty_list_has_no_keys_so_the_server_answers_404() {
        assert!(Response::list(vec![]).data.is_empty());
        let listed = Response::list(vec!["a".into(), "b/".into()]);
        assert_eq!(listed.data["keys"], serde_json::json!(["a", "b/"]));
    }

    #[test]
    fn a_response_from_a_serialisable_struct_carries_its_fields() {
        #[derive(serde::Serialize)]
        struct Role<'a> {
            name: &'a str,
            ttl: u64,
        }
        let response = Response::from_serialize(&Role {
            name: "web",
            ttl: 60,
        })
        .expect("object");
        assert_eq!(
            Value::Object(response.data),
            serde_json::json!({"name": "web", "ttl": 60})
        );
        assert_eq!(
            Response::from_serialize(&[1, 2])
                .expect_err("an array")
                .to_string(),
            "response data must be a JSON object, not an array"
        );
    }

    #[test]
    fn error_response_is_recognised() {
        assert!(Response::error("bad").is_error());
        assert!(!Response::list(vec!["error".into()]).is_error());
    }
}
