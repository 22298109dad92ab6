//! The error a backend returns: a kind (which wire error type, so which HTTP status), the
//! message the server receives, and optionally the cause, kept for the plugin's own code.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// The cause an error keeps: shared, so the errors that hold one stay [`Clone`].
pub(crate) type Source = Arc<dyn StdError + Send + Sync + 'static>;

/// `source` as the standard library's `Error::source` returns it.
pub(crate) fn as_source(source: Option<&Source>) -> Option<&(dyn StdError + 'static)> {
    source.map(|source| &**source as &(dyn StdError + 'static))
}

/// What kind of [`Error`] a backend returns; each maps one to one onto a wire error type, and
/// so onto an HTTP status at the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A plain error (wire type 0): HTTP 500 with the message. Storage errors travel this
    /// way, verbatim, because the server matches some of their texts.
    Other,
    /// `errutil.UserError` (1).
    User,
    /// `errutil.InternalError` (2).
    Internal,
    /// `logical.CodedError` (3): the given HTTP status.
    ///
    /// It is still an error to the server, which writes the body: `{"errors": [...]}` with
    /// the message wrapped in its own words, which the CLI prints as
    /// `* 1 error occurred: * <message>`. To answer a status with a body of the handler's
    /// own, exactly as given, use [`Response::with_status`](super::Response::with_status).
    Coded {
        /// The HTTP status the server answers with.
        status: u16,
    },
    /// `logical.StatusBadRequest` (4): HTTP 400.
    BadRequest,
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

/// An error a backend returns: a [kind](ErrorKind), the message the server receives, and
/// optionally its cause ([`source`](StdError::source)).
///
/// The server receives the kind and the message, nothing else: [`Display`](fmt::Display)
/// writes the message alone, and the cause stays in the plugin, for its own code to walk
/// (and perhaps log). Equality follows what the server would receive: two errors are equal
/// when their kinds and messages are, whatever their causes.
///
/// ```
/// use vault_plugin_sdk::backend::{Error, ErrorKind};
///
/// let error = Error::coded(409, "the role is in use");
/// assert_eq!(error.kind(), ErrorKind::Coded { status: 409 });
/// assert_eq!(error.to_string(), "the role is in use");
/// assert_eq!(Error::unsupported_path().message(), "unsupported path");
/// ```
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    source: Option<Source>,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A plain error ([`ErrorKind::Other`]): HTTP 500 with `message`.
    pub fn other(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Other, message)
    }

    /// `errutil.UserError` ([`ErrorKind::User`]).
    pub fn user(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::User, message)
    }

    /// `errutil.InternalError` ([`ErrorKind::Internal`]).
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// `logical.CodedError` ([`ErrorKind::Coded`]): the server answers `status`.
    pub fn coded(status: u16, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Coded { status }, message)
    }

    /// `logical.StatusBadRequest` ([`ErrorKind::BadRequest`]): HTTP 400 with `message`.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// "unsupported operation" ([`ErrorKind::UnsupportedOperation`]): HTTP 405.
    pub fn unsupported_operation() -> Self {
        Self::new(ErrorKind::UnsupportedOperation, "unsupported operation")
    }

    /// "unsupported path" ([`ErrorKind::UnsupportedPath`]): HTTP 404.
    pub fn unsupported_path() -> Self {
        Self::new(ErrorKind::UnsupportedPath, "unsupported path")
    }

    /// "invalid request" ([`ErrorKind::InvalidRequest`]): HTTP 400.
    pub fn invalid_request() -> Self {
        Self::new(ErrorKind::InvalidRequest, "invalid request")
    }

    /// "permission denied" ([`ErrorKind::PermissionDenied`]): HTTP 403.
    pub fn permission_denied() -> Self {
        Self::new(ErrorKind::PermissionDenied, "permission denied")
    }

    /// "request needs further approval" ([`ErrorKind::MultiAuthzPending`]).
    pub fn multi_authz_pending() -> Self {
        Self::new(
            ErrorKind::MultiAuthzPending,
            "request needs further approval",
        )
    }

    /// "unrecoverable error" ([`ErrorKind::Unrecoverable`]).
    pub fn unrecoverable() -> Self {
        Self::new(ErrorKind::Unrecoverable, "unrecoverable error")
    }

    /// Keeps `source` as the cause. The server never receives it; the plugin's own code can
    /// walk it ([`source`](StdError::source)) and may log it, so a cause must not carry a
    /// secret: no `serde_json::Error` from decoding a request's data or a stored entry, for
    /// one, since its text quotes what it found.
    #[must_use]
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The kind, which decides the wire error type and the HTTP status.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message the server receives.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The message alone, exactly what the server receives; never the cause.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        as_source(self.source.as_ref())
    }
}

/// Equal when the server would receive the same error: the same kind and message. The
/// causes are not compared.
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for Error {}

#[cfg(test)]
mod tests;
