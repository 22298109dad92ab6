//! The domain types a backend works with: operations, requests, responses and errors.

use std::fmt;

use serde_json::{Map, Value};

/// The kind of backend, as the server's `Type` RPC reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendType {
    /// A secrets engine (`TypeLogical`, 1).
    Logical,
    /// An auth method (`TypeCredential`, 2).
    Credential,
}

/// What the server asks of a path. Unknown words are kept so a newer server's operation is
/// answered with "unsupported operation" rather than a decoding failure.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Create,
    Read,
    Update,
    Patch,
    Delete,
    List,
    Scan,
    Help,
    AliasLookahead,
    ResolveRole,
    Header,
    Revoke,
    Renew,
    Rollback,
    /// OpenBao asks this before every request to the mount; nothing needs to be done.
    ResolvePath,
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
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub id: String,
    pub operation: Operation,
    /// Relative to the mount: `kv/foo`, `""` for the mount root; list paths end in `/`.
    pub path: String,
    /// The request body or query parameters.
    pub data: Map<String, Value>,
    /// Where the backend is mounted, e.g. `my-secrets-plugin/`.
    pub mount_point: String,
    /// True when the request carries a secret (renew/revoke of a lease).
    pub has_secret: bool,
}

impl Request {
    /// A request with just an operation and a path, as tests and internal callers need.
    pub fn new(operation: Operation, path: impl Into<String>) -> Self {
        Self {
            id: String::new(),
            operation,
            path: path.into(),
            data: Map::new(),
            mount_point: String::new(),
            has_secret: false,
        }
    }

    /// The same request with `data` set.
    pub fn with_data(mut self, data: Map<String, Value>) -> Self {
        self.data = data;
        self
    }
}

/// A successful answer. `data` travels as a JSON object; the server decodes numbers as
/// float64, so large integers belong in strings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Response {
    pub data: Map<String, Value>,
    pub warnings: Vec<String>,
}

impl Response {
    pub fn with_data(data: Map<String, Value>) -> Self {
        Self {
            data,
            warnings: Vec::new(),
        }
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

/// Errors a backend returns; each maps one to one onto a wire error type, and so onto an HTTP
/// status at the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A plain error (wire type 0): HTTP 500 with this text. Storage errors travel this way,
    /// verbatim, because the server matches some of their texts.
    Other(String),
    /// `errutil.UserError` (1).
    User(String),
    /// `errutil.InternalError` (2).
    Internal(String),
    /// `logical.CodedError` (3): the given HTTP status.
    Coded { status: u16, message: String },
    /// `logical.StatusBadRequest` (4): HTTP 400.
    BadRequest(String),
    /// The path exists but not this operation (5): HTTP 405.
    UnsupportedOperation,
    /// No such path (6): HTTP 404.
    UnsupportedPath,
    /// (7): HTTP 400.
    InvalidRequest,
    /// (8): HTTP 403.
    PermissionDenied,
    /// (9)
    MultiAuthzPending,
    /// (10)
    Unrecoverable,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(m) | Self::User(m) | Self::Internal(m) | Self::BadRequest(m) => {
                f.write_str(m)
            }
            Self::Coded { message, .. } => f.write_str(message),
            Self::UnsupportedOperation => f.write_str("unsupported operation"),
            Self::UnsupportedPath => f.write_str("unsupported path"),
            Self::InvalidRequest => f.write_str("invalid request"),
            Self::PermissionDenied => f.write_str("permission denied"),
            Self::MultiAuthzPending => f.write_str("request needs further approval"),
            Self::Unrecoverable => f.write_str("unrecoverable error"),
        }
    }
}

impl std::error::Error for Error {}

/// Paths the server treats specially for this mount. Entries are exact paths; a trailing `*`
/// makes a prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecialPaths {
    /// Need root (sudo) capability.
    pub root: Vec<String>,
    /// Reachable without a token.
    pub unauthenticated: Vec<String>,
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
    fn error_response_is_recognised() {
        assert!(Response::error("bad").is_error());
        assert!(!Response::list(vec!["error".into()]).is_error());
    }
}
