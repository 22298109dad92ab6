//! The requests and answers of a database plugin, and its error.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

/// A database plugin's failure: a message for the server (the SDK masks the secrets in it) and
/// the cause, kept for the plugin's own use and never sent.
#[derive(Clone, Debug)]
pub struct Error {
    message: Cow<'static, str>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error saying `message`.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `source` as the cause. Its text is not sent: put what the operator needs in the
    /// message.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// The kind of credential a role hands out (`credential_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialType {
    /// A password (0), the default.
    #[default]
    Password,
    /// An RSA key pair (1): the engine keeps the private key, the plugin gets the public one.
    RsaPrivateKey,
    /// A client certificate (2): the plugin gets the subject.
    ClientCertificate,
    /// A number this SDK does not know.
    Other(i32),
}

impl CredentialType {
    pub(crate) fn from_wire(value: i32) -> Self {
        match value {
            0 => Self::Password,
            1 => Self::RsaPrivateKey,
            2 => Self::ClientCertificate,
            other => Self::Other(other),
        }
    }
}

/// `Initialize`: a connection's configuration.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct InitializeRequest {
    /// The configuration as the engine sends it: numbers arrive as JSON numbers (whole ones as
    /// integers), the rest as the operator wrote it (`"4"` and `4` both occur).
    pub config: Map<String, Value>,
    /// Whether to check that the database answers now.
    pub verify_connection: bool,
}

impl InitializeRequest {
    /// A request with `config`, verifying the connection.
    pub fn new(config: Map<String, Value>) -> Self {
        Self {
            config,
            verify_connection: true,
        }
    }

    /// Sets whether to check the connection.
    #[must_use]
    pub fn verify_connection(mut self, verify: bool) -> Self {
        self.verify_connection = verify;
        self
    }
}

/// What `Initialize` answers: the configuration the engine stores.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct InitializeResponse {
    /// Stored as the connection's `connection_details`; the request's, for most plugins.
    pub config: Map<String, Value>,
}

impl InitializeResponse {
    /// An answer storing `config`.
    pub fn new(config: Map<String, Value>) -> Self {
        Self { config }
    }
}

/// `NewUser`: a user for a role's credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewUserRequest {
    /// The requesting token's display name (`token`, `userpass-alice`, ...).
    pub display_name: String,
    /// The role's name.
    pub role_name: String,
    /// The password the engine generated (password credentials).
    pub password: String,
    /// When the credentials' lease ends (the engine adds a few seconds); `None` if unset.
    pub expiration: Option<SystemTime>,
    /// The role's `creation_statements`.
    pub statements: Vec<String>,
    /// The role's `rollback_statements`.
    pub rollback_statements: Vec<String>,
    /// The kind of credential.
    pub credential_type: CredentialType,
    /// The public key, PEM (RSA credentials).
    pub public_key: Vec<u8>,
    /// The certificate's subject (client-certificate credentials).
    pub subject: String,
}

impl NewUserRequest {
    /// A password user for `role_name`, asked for by `display_name`.
    pub fn new(
        display_name: impl Into<String>,
        role_name: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            display_name: display_name.into(),
            role_name: role_name.into(),
            password: password.into(),
            ..Self::default()
        }
    }

    /// Sets the creation statements.
    #[must_use]
    pub fn statements(mut self, statements: Vec<String>) -> Self {
        self.statements = statements;
        self
    }

    /// Sets the expiration.
    #[must_use]
    pub fn expiration(mut self, expiration: SystemTime) -> Self {
        self.expiration = Some(expiration);
        self
    }
}

/// What `NewUser` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewUserResponse {
    /// The created user's name.
    pub username: String,
}

impl NewUserResponse {
    /// An answer naming `username`.
    pub fn new(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
        }
    }
}

/// A new password, and the statements that set it (`rotation_statements`,
/// `root_rotation_statements`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangePassword {
    /// The new password.
    pub new_password: String,
    /// The statements; empty for the plugin's default.
    pub statements: Vec<String>,
}

/// A new expiration, and the statements that set it (`renew_statements`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangeExpiration {
    /// When the credentials now end.
    pub new_expiration: SystemTime,
    /// The statements; empty for the plugin's default.
    pub statements: Vec<String>,
}

/// A new public key (RSA credentials), and the statements that set it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangePublicKey {
    /// The new public key, PEM.
    pub new_public_key: Vec<u8>,
    /// The statements; empty for the plugin's default.
    pub statements: Vec<String>,
}

/// `UpdateUser`: at least one of the changes is set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpdateUserRequest {
    /// The user to change.
    pub username: String,
    /// A new password.
    pub password: Option<ChangePassword>,
    /// A new expiration.
    pub expiration: Option<ChangeExpiration>,
    /// A new public key.
    pub public_key: Option<ChangePublicKey>,
    /// The kind of credential.
    pub credential_type: CredentialType,
}

impl UpdateUserRequest {
    /// A password change for `username`, with the plugin's default statements.
    pub fn password(username: impl Into<String>, new_password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: Some(ChangePassword {
                new_password: new_password.into(),
                statements: Vec::new(),
            }),
            ..Self::default()
        }
    }

    /// An expiration change for `username`, with the plugin's default statements.
    pub fn expiration(username: impl Into<String>, new_expiration: SystemTime) -> Self {
        Self {
            username: username.into(),
            expiration: Some(ChangeExpiration {
                new_expiration,
                statements: Vec::new(),
            }),
            ..Self::default()
        }
    }
}

/// `DeleteUser`: a user to drop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteUserRequest {
    /// The user.
    pub username: String,
    /// The role's `revocation_statements`; empty for the plugin's default.
    pub statements: Vec<String>,
}

impl DeleteUserRequest {
    /// Drops `username` with the plugin's default statements.
    pub fn new(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            statements: Vec::new(),
        }
    }
}
