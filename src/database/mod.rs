//! Database plugins: what the server's database secrets engine calls to create, change and
//! drop database users (`dbplugin.v5`, plugin protocols 5 and 6). Nothing of gRPC.
//!
//! A database plugin is a [`DatabaseFactory`] whose `main` calls
//! [`serve_database`](crate::serve_database). The engine creates
//! one instance per configured connection (`database/config/<name>`): on protocol 6 one
//! process serves them all, each keyed by the id the server gives it; on protocol 5 the
//! process holds one. The engine then calls, in order: [`Database::initialize`] with the
//! connection's configuration, [`Database::new_user`] for each `creds/<role>` read,
//! [`Database::update_user`] on lease renewal (a new expiration), static-role rotation and
//! `rotate-root` (a new password), [`Database::delete_user`] on revocation, and
//! [`Database::close`] when the connection is reconfigured, deleted or unmounted.
//!
//! Errors reach the server as the Go plugins send them (`codes.Internal`, `unable to create new
//! user: ...`), with every value [`Database::secrets`] names masked, and the request's own
//! passwords too: a password never travels back in an error text or a log line.
//!
//! A plugin that names its users as the Go plugins do (`username_template`) parses the template
//! with [`template::Template`] at `initialize` and renders it in each `new_user`.

pub mod template;
mod types;

pub use types::{
    ChangeExpiration, ChangePassword, ChangePublicKey, CredentialType, DeleteUserRequest, Error,
    InitializeRequest, InitializeResponse, NewUserRequest, NewUserResponse, UpdateUserRequest,
};

use std::future::Future;

/// One database connection of the engine's, as the plugin serves it. Methods take `&self`:
/// the engine may call an instance concurrently (several `creds` reads at once), so what
/// `initialize` sets up sits behind the plugin's own lock.
pub trait Database: Send + Sync + 'static {
    /// What the server's `Type` call is answered (the Go PostgreSQL plugin: `pgx`).
    const TYPE: &'static str;

    /// Takes the connection's configuration (the engine's stored `connection_details` merged
    /// with the request's fields), checks it and, when `verify_connection` is set, that the
    /// database answers. The response's configuration is what the engine stores: usually the
    /// request's, unchanged.
    fn initialize(
        &self,
        request: InitializeRequest,
    ) -> impl Future<Output = Result<InitializeResponse, Error>> + Send;

    /// Creates a user for a role's credentials and says its name.
    fn new_user(
        &self,
        request: NewUserRequest,
    ) -> impl Future<Output = Result<NewUserResponse, Error>> + Send;

    /// Changes a user's password, expiration or public key; at least one is set.
    fn update_user(
        &self,
        request: UpdateUserRequest,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Drops a user. A user that is already gone is not an error.
    fn delete_user(
        &self,
        request: DeleteUserRequest,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Releases the connection; the instance is not called again.
    fn close(&self) -> impl Future<Output = Result<(), Error>> + Send {
        async { Ok(()) }
    }

    /// The configured secrets (the root password, say) and what each is shown as in an error
    /// text instead, e.g. `("s3cret", "[password]")`. Read before every error goes out.
    fn secrets(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Makes one [`Database`] per connection the engine configures.
pub trait DatabaseFactory: Send + Sync + 'static {
    /// What it makes.
    type Database: Database;

    /// A new, uninitialised instance.
    fn create(&self) -> Result<Self::Database, Error>;
}
