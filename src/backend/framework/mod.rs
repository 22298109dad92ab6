//! A small path framework: what every path of a backend shares, as the Go SDK's
//! `framework.Backend` does it. Patterns, field schemas and conversion, unknown-parameter
//! warnings, 404/405, help and OpenAPI, and the global operations: renew and revoke of leases
//! (dispatched by secret type) and tokens, and rollback (the periodic function, then the
//! write-ahead log).
//!
//! A backend describes its paths once in a [`Router`] and implements [`RoutedBackend`]; the
//! [`Backend`] trait the machinery calls then comes for free.
//!
//! ```
//! use std::sync::{Arc, LazyLock};
//!
//! use serde_json::{Value, json};
//! use vault_plugin_sdk::backend::framework::{
//!     FieldData, FieldSchema, FieldType, PathSpec, RoutedBackend, Router,
//! };
//! use vault_plugin_sdk::backend::{
//!     Backend, Error, KeyedLocks, MemoryStorage, Operation, Request, Response, Storage,
//! };
//!
//! /// Greets by name, counting greetings in storage.
//! struct Greeter {
//!     storage: Arc<dyn Storage>,
//!     locks: KeyedLocks,
//! }
//!
//! async fn greet(
//!     greeter: &Greeter,
//!     _: &Request,
//!     fields: &FieldData<'_>,
//! ) -> Result<Option<Response>, Error> {
//!     let name = fields.get_string("name");
//!     let key = format!("count/{name}");
//!     // A read-modify-write: other requests run at every `.await`, so hold the key's lock.
//!     let _guard = greeter.locks.lock(&key).await;
//!     let count = greeter.storage.get_json::<u64>(&key).await?.unwrap_or(0) + 1;
//!     greeter.storage.put_json(&key, &count).await?;
//!     Response::from_serialize(&json!({"greeting": format!("hello, {name}"), "count": count}))
//!         .map(Some)
//! }
//!
//! static ROUTER: LazyLock<Router<Greeter>> = LazyLock::new(|| {
//!     Router::new(
//!         "Greets.",
//!         vec![
//!             PathSpec::new("hello/{name}")
//!                 .field(FieldSchema::new("name", FieldType::String, "Whom to greet."))
//!                 .operation(Operation::Read, greet),
//!         ],
//!     )
//! });
//!
//! impl RoutedBackend for Greeter {
//!     fn router(&self) -> &Router<Self> {
//!         &ROUTER
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let greeter = Greeter { storage: Arc::new(MemoryStorage::new()), locks: KeyedLocks::new() };
//! for count in [1, 2] {
//!     let response = greeter
//!         .handle_request(Request::new(Operation::Read, "hello/alice"))
//!         .await
//!         .unwrap()
//!         .unwrap();
//!     assert_eq!(Value::Object(response.data), json!({"greeting": "hello, alice", "count": count}));
//! }
//! // No such path: the server answers 404.
//! let missing = greeter.handle_request(Request::new(Operation::Read, "bye/alice")).await;
//! assert_eq!(missing, Err(Error::unsupported_path()));
//! # });
//! ```

mod fields;
mod help;
mod lease;
mod openapi;
mod patch;
mod pattern;
mod wal;

pub use fields::{FieldData, FieldSchema, FieldType, format_time, parse_go_duration, zero_time};
pub use lease::{TtlError, TtlLimits, TtlRequest, calculate_ttl};
pub use patch::merge_patch;
pub use pattern::{Captures, PathPattern, PatternError};
pub use wal::{
    DEFAULT_WAL_ROLLBACK_MIN_AGE, WAL_PREFIX, WalEntry, WalError, delete_wal, get_wal, list_wal,
    put_wal, put_wal_at,
};

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use super::{
    Backend, BackendType, BoxFuture, Error, Operation, Request, Response, Secret, SpecialPaths,
    Storage, SystemView,
};

/// Handles one operation on a path, as the router keeps it. Builders take any [`HandlerFn`]
/// and box it into this.
pub type OperationHandler<B> = Handler<B, Option<Response>>;

/// Tells whether the target of a create/update exists, as the router keeps it.
pub type ExistenceHandler<B> = Handler<B, bool>;

/// A boxed handler answering `Result<T, Error>`.
pub type Handler<B, T> = Arc<
    dyn for<'a> Fn(&'a B, &'a Request, &'a FieldData<'a>) -> BoxFuture<'a, Result<T, Error>>
        + Send
        + Sync,
>;

/// A handler: an `async fn` of the backend, the request and its fields,
///
/// ```
/// # use vault_plugin_sdk::backend::framework::FieldData;
/// # use vault_plugin_sdk::backend::{Error, Request, Response};
/// # struct MyBackend;
/// async fn read(
///     backend: &MyBackend,
///     request: &Request,
///     fields: &FieldData<'_>,
/// ) -> Result<Option<Response>, Error> {
/// #   let _ = (backend, request, fields);
///     Ok(None)
/// }
/// ```
///
/// or a plain `fn` with the same arguments that returns a [`BoxFuture`]. An operation's
/// handler answers `Option<Response>` (`None` is a nil response: 404 on a read, 204 on a
/// write), an existence check's `bool`.
pub trait HandlerFn<'a, B: 'a, T>: Send + Sync + 'static {
    /// The future the handler returns.
    type Future: Future<Output = Result<T, Error>> + Send + 'a;

    /// Handles the request.
    fn call(&self, backend: &'a B, request: &'a Request, fields: &'a FieldData<'a>)
    -> Self::Future;
}

impl<'a, B: 'a, T, F, Fut> HandlerFn<'a, B, T> for F
where
    F: Fn(&'a B, &'a Request, &'a FieldData<'a>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, Error>> + Send + 'a,
{
    type Future = Fut;

    fn call(&self, backend: &'a B, request: &'a Request, fields: &'a FieldData<'a>) -> Fut {
        self(backend, request, fields)
    }
}

/// Boxes a handler the way the router keeps it.
fn boxed<B, T, H>(handler: H) -> Handler<B, T>
where
    H: for<'a> HandlerFn<'a, B, T>,
{
    Arc::new(move |backend, request, fields| Box::pin(handler.call(backend, request, fields)))
}

/// A hook of the backend alone: an `async fn` of the backend,
///
/// ```
/// # use vault_plugin_sdk::backend::Error;
/// # struct MyBackend;
/// async fn initialize(backend: &MyBackend) -> Result<(), Error> {
/// #   let _ = backend;
///     Ok(())
/// }
/// ```
///
/// [`Router::with_initialize`] takes one answering `Result<(), Error>`, [`Router::with_clean`]
/// one answering `()`.
pub trait BackendHookFn<'a, B: 'a, T>: Send + Sync + 'static {
    /// The future the hook returns.
    type Future: Future<Output = T> + Send + 'a;

    /// Runs the hook.
    fn call(&self, backend: &'a B) -> Self::Future;
}

impl<'a, B: 'a, T, F, Fut> BackendHookFn<'a, B, T> for F
where
    F: Fn(&'a B) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'a,
{
    type Future = Fut;

    fn call(&self, backend: &'a B) -> Fut {
        self(backend)
    }
}

/// What runs when a storage key changed behind the backend's back: an
/// `async fn(&B, key: &str)`, for [`Router::with_invalidate`].
pub trait InvalidateFn<'a, B: 'a>: Send + Sync + 'static {
    /// The future the hook returns.
    type Future: Future<Output = ()> + Send + 'a;

    /// Runs the hook for `key`.
    fn call(&self, backend: &'a B, key: &'a str) -> Self::Future;
}

impl<'a, B: 'a, F, Fut> InvalidateFn<'a, B> for F
where
    F: Fn(&'a B, &'a str) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'a,
{
    type Future = Fut;

    fn call(&self, backend: &'a B, key: &'a str) -> Fut {
        self(backend, key)
    }
}

/// The periodic function: an `async fn(&B, &Request) -> Result<(), Error>`, for
/// [`Router::with_periodic`].
pub trait PeriodicFn<'a, B: 'a>: Send + Sync + 'static {
    /// The future the function returns.
    type Future: Future<Output = Result<(), Error>> + Send + 'a;

    /// Runs the function for one `rollback` request.
    fn call(&self, backend: &'a B, request: &'a Request) -> Self::Future;
}

impl<'a, B: 'a, F, Fut> PeriodicFn<'a, B> for F
where
    F: Fn(&'a B, &'a Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'a,
{
    type Future = Fut;

    fn call(&self, backend: &'a B, request: &'a Request) -> Fut {
        self(backend, request)
    }
}

/// Rolls back one write-ahead log entry: an
/// `async fn(&B, &Request, kind: &str, data: &serde_json::Value) -> Result<(), Error>` given the
/// entry's kind and data as [`put_wal`] stored them, for [`WalRollback::new`].
pub trait WalRollbackFn<'a, B: 'a>: Send + Sync + 'static {
    /// The future the handler returns.
    type Future: Future<Output = Result<(), Error>> + Send + 'a;

    /// Rolls back the entry.
    fn call(
        &self,
        backend: &'a B,
        request: &'a Request,
        kind: &'a str,
        data: &'a serde_json::Value,
    ) -> Self::Future;
}

impl<'a, B: 'a, F, Fut> WalRollbackFn<'a, B> for F
where
    F: Fn(&'a B, &'a Request, &'a str, &'a serde_json::Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'a,
{
    type Future = Fut;

    fn call(
        &self,
        backend: &'a B,
        request: &'a Request,
        kind: &'a str,
        data: &'a serde_json::Value,
    ) -> Fut {
        self(backend, request, kind, data)
    }
}

/// Runs once after Setup, when storage has become writable, as the router keeps it.
pub type InitializeHandler<B> =
    Arc<dyn for<'a> Fn(&'a B) -> BoxFuture<'a, Result<(), Error>> + Send + Sync>;

/// Runs when the mount goes away, as the router keeps it.
pub type CleanHandler<B> = Arc<dyn for<'a> Fn(&'a B) -> BoxFuture<'a, ()> + Send + Sync>;

/// Runs when a storage key changed behind the backend's back, as the router keeps it.
pub type InvalidateHandler<B> =
    Arc<dyn for<'a> Fn(&'a B, &'a str) -> BoxFuture<'a, ()> + Send + Sync>;

/// Periodic work, run on every `rollback` request (every minute, and before unmount), as the
/// router keeps it.
pub type PeriodicHandler<B> =
    Arc<dyn for<'a> Fn(&'a B, &'a Request) -> BoxFuture<'a, Result<(), Error>> + Send + Sync>;

/// Rolls back one write-ahead log entry, as [`WalRollback`] keeps it.
pub type WalRollbackHandler<B> = Arc<
    dyn for<'a> Fn(
            &'a B,
            &'a Request,
            &'a str,
            &'a serde_json::Value,
        ) -> BoxFuture<'a, Result<(), Error>>
        + Send
        + Sync,
>;

/// How a backend's write-ahead log is rolled back on `rollback` requests (`WALRollback`):
/// entries older than the minimum age (or all, when the request's data has `immediate`) go
/// to the handler and are deleted when it succeeds.
pub struct WalRollback<B> {
    /// The backend's storage, where the log is kept under `wal/`.
    pub(crate) storage: fn(&B) -> &dyn Storage,
    /// Undoes what an entry recorded.
    pub(crate) handler: WalRollbackHandler<B>,
    /// Younger entries belong to operations that may still be under way.
    pub(crate) min_age: Duration,
}

impl<B> WalRollback<B> {
    /// Rolls back entries older than ten minutes, as the Go framework's default: `storage`
    /// finds the backend's storage, `handler` is an `async fn` undoing one entry
    /// ([`WalRollbackFn`]).
    pub fn new(
        storage: fn(&B) -> &dyn Storage,
        handler: impl for<'a> WalRollbackFn<'a, B>,
    ) -> Self {
        Self {
            storage,
            handler: Arc::new(move |backend, request, kind, data| {
                Box::pin(handler.call(backend, request, kind, data))
            }),
            min_age: Duration::from_secs(10 * 60),
        }
    }

    /// Sets the age below which entries are left alone. Zero means the default, ten minutes;
    /// a `rollback` request whose data has `immediate` rolls back every entry.
    pub fn min_age(mut self, min_age: Duration) -> Self {
        self.min_age = min_age;
        self
    }

    async fn run(&self, backend: &B, request: &Request) -> Result<(), Error> {
        let immediate = request.data.contains_key("immediate");
        let storage = (self.storage)(backend);
        wal::rollback_wal(
            storage,
            self.min_age,
            immediate,
            SystemTime::now(),
            |kind, data| async move { (self.handler)(backend, request, &kind, &data).await },
        )
        .await
        // The failures are the cause, with the texts the message already has: an entry that
        // does not decode is a serde_json error about a `Value`, which names a syntax problem
        // and never quotes the entry.
        .map_err(|error| Error::other(error.to_string()).with_source(error))
    }
}

/// One kind of leased secret a backend hands out (`framework.Secret`): renew and revoke
/// requests for its leases reach these handlers, found by the `secret_type` the lease's
/// internal data carries.
pub struct SecretType<B> {
    /// The name kept in the lease's internal data as `secret_type`.
    pub(crate) kind: &'static str,
    /// The schema the handlers read the lease's data with.
    pub(crate) fields: Vec<FieldSchema>,
    /// The lease's TTL when the handler does not set one; zero means the mount's default.
    pub(crate) default_duration: Duration,
    /// Extends a lease; without it leases are not renewable.
    pub(crate) renew: Option<OperationHandler<B>>,
    /// Ends a lease: undo what issuing it did.
    pub(crate) revoke: Option<OperationHandler<B>>,
}

impl<B> SecretType<B> {
    /// A secret type with no handlers yet.
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            fields: Vec::new(),
            default_duration: Duration::ZERO,
            renew: None,
            revoke: None,
        }
    }

    /// Adds a field to the schema the handlers read the lease's data with.
    pub fn field(mut self, field: FieldSchema) -> Self {
        self.fields.push(field);
        self
    }

    /// Sets the TTL of leases whose handler sets none.
    pub fn default_duration(mut self, duration: Duration) -> Self {
        self.default_duration = duration;
        self
    }

    /// Sets the renew handler.
    pub fn renew(mut self, handler: impl for<'a> HandlerFn<'a, B, Option<Response>>) -> Self {
        self.renew = Some(boxed(handler));
        self
    }

    /// Sets the revoke handler.
    pub fn revoke(mut self, handler: impl for<'a> HandlerFn<'a, B, Option<Response>>) -> Self {
        self.revoke = Some(boxed(handler));
        self
    }

    /// A response handing out `data` under a lease of this type, as Go's
    /// `Secret.Response`: `internal` is kept with the lease (plus `secret_type`; read it back
    /// with [`Secret::internal`]), the TTL is the default duration and the lease is renewable
    /// when there is a renew handler. Both are any `Serialize` value whose JSON is an object.
    pub fn response<D, I>(&self, data: &D, internal: &I) -> Result<Response, Error>
    where
        D: serde::Serialize + ?Sized,
        I: serde::Serialize + ?Sized,
    {
        let data = super::json::to_object(data, "a lease's data")?;
        let mut internal = super::json::to_object(internal, "a lease's internal data")?;
        internal.insert(
            SECRET_TYPE_KEY.to_owned(),
            serde_json::Value::String(self.kind.to_owned()),
        );
        let mut secret = Secret::new(self.default_duration, internal);
        secret.lease.renewable = self.renew.is_some();
        Ok(Response::with_data(data).with_secret(secret))
    }
}

/// The mount's TTL limits, as its system view answers them, for [`calculate_ttl`].
pub async fn mount_ttl_limits(system_view: &dyn SystemView) -> Result<TtlLimits, Error> {
    Ok(TtlLimits {
        default_lease_ttl: system_view.default_lease_ttl().await?,
        max_lease_ttl: system_view.max_lease_ttl().await?,
    })
}

/// A plain error with Go's text; the [`TtlError`] is the cause.
impl From<TtlError> for Error {
    fn from(error: TtlError) -> Self {
        Self::other(error.to_string()).with_source(error)
    }
}

/// The key of a lease's internal data that names its secret type.
pub const SECRET_TYPE_KEY: &str = "secret_type";

/// One path of a backend: its pattern, fields, operations and help.
pub struct PathSpec<B> {
    /// Which request paths it serves; its captures are fields.
    pub(crate) pattern: PathPattern,
    /// The fields it accepts.
    pub(crate) fields: Vec<FieldSchema>,
    /// The operations it answers, and their handlers.
    pub(crate) operations: Vec<(Operation, OperationHandler<B>)>,
    /// Tells create from update; without one, every write is an update.
    pub(crate) existence_check: Option<ExistenceHandler<B>>,
    /// One line of help.
    pub(crate) synopsis: &'static str,
    /// More help.
    pub(crate) description: &'static str,
    /// The secret types whose leases its handlers hand out ([`PathSpec::issues`]).
    pub(crate) issues: Vec<&'static str>,
    /// Left out of the OpenAPI document ([`PathSpec::unpublished`]).
    pub(crate) unpublished: bool,
}

impl<B> PathSpec<B> {
    /// A path with no fields or operations yet, serving the request paths `pattern` matches
    /// (see [`PathPattern`] for the language).
    ///
    /// # Panics
    /// If the pattern is malformed or cannot match anything, with a message naming it: a
    /// programming error, found when the router is built.
    pub fn new(pattern: &str) -> Self {
        Self {
            pattern: PathPattern::parse(pattern).unwrap_or_else(|error| panic!("{error}")),
            fields: Vec::new(),
            operations: Vec::new(),
            existence_check: None,
            synopsis: "",
            description: "",
            issues: Vec::new(),
            unpublished: false,
        }
    }

    /// Leaves the path out of the OpenAPI document (Go's `Unpublished` on each of its
    /// operations): for a catch-all such as `{*}`, which answers requests no published path
    /// serves and is no API of its own. Help still describes it.
    pub fn unpublished(mut self) -> Self {
        self.unpublished = true;
        self
    }

    /// Declares that the path's handlers hand out leases of the secret type `kind`, built with
    /// [`Router::secret_type`]. The router checks that it declares the type
    /// ([`Router::with_secret_type`]) when it is first used, and panics naming the path and the
    /// type if it does not, so a missing declaration shows in the backend's first test rather
    /// than as an error on the first lease.
    pub fn issues(mut self, kind: &'static str) -> Self {
        self.issues.push(kind);
        self
    }

    /// Adds a field.
    pub fn field(mut self, field: FieldSchema) -> Self {
        self.fields.push(field);
        self
    }

    /// Adds an operation and its handler.
    pub fn operation(
        mut self,
        operation: Operation,
        handler: impl for<'a> HandlerFn<'a, B, Option<Response>>,
    ) -> Self {
        self.operations.push((operation, boxed(handler)));
        self
    }

    /// Sets the existence check. The server asks it before every create or update, so with a
    /// check a field that does not convert is refused there: 400 with the conversion error
    /// alone, without the "Field validation failed: " a handler's validation puts first. The Go
    /// framework answers the same way.
    pub fn existence_check(mut self, handler: impl for<'a> HandlerFn<'a, B, bool>) -> Self {
        self.existence_check = Some(boxed(handler));
        self
    }

    /// Sets the help texts.
    pub fn help(mut self, synopsis: &'static str, description: &'static str) -> Self {
        self.synopsis = synopsis;
        self.description = description;
        self
    }

    fn handler(&self, operation: &Operation) -> Option<&OperationHandler<B>> {
        self.operations
            .iter()
            .find(|(op, _)| op == operation)
            .map(|(_, handler)| handler)
    }

    fn field_schema(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The paths of a backend, tried in order; the first match wins.
///
/// # Checks
///
/// A router refuses, with a panic naming the path's pattern, what can only be a programming
/// error, so that it shows the first time the backend runs rather than on some request:
///
/// * [`Router::new`], at once: a `{capture}` with no [`FieldSchema`] of that name on its path,
///   an operation registered twice on one path (and, through [`PathSpec::new`], a malformed
///   pattern);
/// * [`Router::with_secret_type`], at once: a secret type declared twice;
/// * the router's first use (a request, an existence check, its special paths,
///   [`Router::secret_type`], [`Router::paths`], or the backend's initialize, invalidate or
///   clean): a path that [`issues`](PathSpec::issues) a secret type the router does not
///   declare. Secret types are declared after [`Router::new`] in the builder chain, so this
///   check waits until the router is complete; it runs once (and again after a later
///   `with_secret_type`). A backend's first unit test, or the server's first call on a mount,
///   finds it.
pub struct Router<B> {
    paths: Vec<PathSpec<B>>,
    backend_help: &'static str,
    special_paths: SpecialPaths,
    secret_types: Vec<SecretType<B>>,
    auth_renew: Option<OperationHandler<B>>,
    periodic: Option<PeriodicHandler<B>>,
    wal_rollback: Option<WalRollback<B>>,
    initialize: Option<InitializeHandler<B>>,
    invalidate: Option<InvalidateHandler<B>>,
    clean: Option<CleanHandler<B>>,
    /// Set once the checks that need the complete router have passed.
    checked: OnceLock<()>,
}

impl<B> Router<B> {
    /// A router of `paths` with `backend_help` as the text of `help` on the mount's root.
    ///
    /// # Panics
    /// If a path captures a field it does not declare, or registers an operation twice (see
    /// [Checks](Router#checks)).
    pub fn new(backend_help: &'static str, paths: Vec<PathSpec<B>>) -> Self {
        for spec in &paths {
            check_path(spec);
        }
        Self {
            paths,
            backend_help,
            special_paths: SpecialPaths::default(),
            secret_types: Vec::new(),
            auth_renew: None,
            periodic: None,
            wal_rollback: None,
            initialize: None,
            invalidate: None,
            clean: None,
            checked: OnceLock::new(),
        }
    }

    /// Runs, once, the checks that need the complete router (see [Checks](Router#checks)).
    fn validated(&self) -> &Self {
        self.checked.get_or_init(|| {
            for spec in &self.paths {
                for kind in &spec.issues {
                    if !self
                        .secret_types
                        .iter()
                        .any(|declared| declared.kind == *kind)
                    {
                        panic!(
                            "path pattern {:?} issues the secret type {kind:?}, which the router \
                             does not declare: add .with_secret_type(SecretType::new({kind:?}))",
                            spec.pattern.as_str()
                        );
                    }
                }
            }
        });
        self
    }

    /// Sets what runs once after Setup, when storage has become writable (`InitializeFunc`):
    /// an `async fn(&B) -> Result<(), Error>`.
    pub fn with_initialize(
        mut self,
        initialize: impl for<'a> BackendHookFn<'a, B, Result<(), Error>>,
    ) -> Self {
        self.initialize = Some(Arc::new(move |backend| Box::pin(initialize.call(backend))));
        self
    }

    /// Sets what runs when a storage key changed behind the backend's back (`Invalidate`): an
    /// `async fn(&B, key: &str)`.
    pub fn with_invalidate(mut self, invalidate: impl for<'a> InvalidateFn<'a, B>) -> Self {
        self.invalidate = Some(Arc::new(move |backend, key| {
            Box::pin(invalidate.call(backend, key))
        }));
        self
    }

    /// Sets what runs when the mount goes away (`Clean`): an `async fn(&B)`.
    pub fn with_clean(mut self, clean: impl for<'a> BackendHookFn<'a, B, ()>) -> Self {
        self.clean = Some(Arc::new(move |backend| Box::pin(clean.call(backend))));
        self
    }

    /// Declares a kind of leased secret the backend hands out.
    ///
    /// # Panics
    /// If a secret type of the same name is already declared.
    pub fn with_secret_type(mut self, secret_type: SecretType<B>) -> Self {
        let kind = secret_type.kind;
        if self
            .secret_types
            .iter()
            .any(|declared| declared.kind == kind)
        {
            panic!("secret type {kind:?} is declared twice on the router");
        }
        self.secret_types.push(secret_type);
        // What the paths issue is checked again against the new set.
        self.checked = OnceLock::new();
        self
    }

    /// The secret type named `kind`, to build responses with ([`SecretType::response`]).
    /// A type the router does not declare is an internal error naming it; declaring the types
    /// a path hands out with [`PathSpec::issues`] has the router check them before any
    /// request.
    pub fn secret_type(&self, kind: &str) -> Result<&SecretType<B>, Error> {
        self.validated()
            .secret_types
            .iter()
            .find(|secret| secret.kind == kind)
            .ok_or_else(|| {
                Error::internal(format!(
                    "secret type {kind:?} is not declared on the router (Router::with_secret_type)"
                ))
            })
    }

    /// Sets the handler of token renewals for an auth method (`AuthRenew`); without one,
    /// renewals answer "this auth type doesn't support renew".
    pub fn with_auth_renew(
        mut self,
        handler: impl for<'a> HandlerFn<'a, B, Option<Response>>,
    ) -> Self {
        self.auth_renew = Some(boxed(handler));
        self
    }

    /// Sets the periodic function, run on every `rollback` request: an
    /// `async fn(&B, &Request) -> Result<(), Error>`.
    pub fn with_periodic(mut self, handler: impl for<'a> PeriodicFn<'a, B>) -> Self {
        self.periodic = Some(Arc::new(move |backend, request| {
            Box::pin(handler.call(backend, request))
        }));
        self
    }

    /// Sets how write-ahead log entries are rolled back, run on every `rollback` request
    /// after the periodic function.
    pub fn with_wal_rollback(mut self, wal_rollback: WalRollback<B>) -> Self {
        self.wal_rollback = Some(wal_rollback);
        self
    }

    /// Declares the backend's special paths, which help and OpenAPI document too.
    pub fn with_special_paths(mut self, special_paths: SpecialPaths) -> Self {
        self.special_paths = special_paths;
        self
    }

    /// The paths, in the order they are tried.
    pub fn paths(&self) -> &[PathSpec<B>] {
        &self.validated().paths
    }

    /// The declared special paths.
    pub fn special_paths(&self) -> &SpecialPaths {
        &self.validated().special_paths
    }

    fn route(&self, path: &str) -> Option<(&PathSpec<B>, Captures)> {
        self.validated()
            .paths
            .iter()
            .find_map(|spec| spec.pattern.matches(path).map(|captures| (spec, captures)))
    }

    /// Renew and revoke come before path routing, as in the Go framework: a token renewal goes
    /// to the auth renew handler, a lease's to its secret type's handlers.
    async fn handle_renew_revoke(
        &self,
        backend: &B,
        request: &Request,
    ) -> Result<Option<Response>, Error> {
        if request.operation == Operation::Renew && request.auth.is_some() {
            let Some(renew) = &self.auth_renew else {
                return Ok(Some(Response::error(
                    "this auth type doesn't support renew",
                )));
            };
            let fields = FieldData::for_auth_renew(&request.data);
            return renew(backend, request, &fields).await;
        }
        let secret = request
            .secret
            .as_ref()
            .ok_or_else(|| Error::other("request has no secret"))?;
        let secret_type = secret
            .internal_data
            .get(SECRET_TYPE_KEY)
            .and_then(serde_json::Value::as_str)
            .and_then(|kind| self.secret_types.iter().find(|t| t.kind == kind))
            .ok_or_else(|| Error::other("secret is unsupported by this backend"))?;
        let handler = match request.operation {
            Operation::Renew => &secret_type.renew,
            _ => &secret_type.revoke,
        };
        let handler = handler.as_ref().ok_or(Error::unsupported_operation())?;
        let fields =
            FieldData::for_secret_type(secret_type.kind, &secret_type.fields, &request.data);
        handler(backend, request, &fields).await
    }

    /// The periodic function, then the write-ahead log; both run even when the first fails,
    /// and the answer names every failure. Nothing to do is a nil response. Unlike Go's
    /// framework, which turns WAL failures into an error response the server does not log,
    /// they are an error here, so an entry that keeps failing shows in the server's log.
    async fn handle_rollback(
        &self,
        backend: &B,
        request: &Request,
    ) -> Result<Option<Response>, Error> {
        let mut failures = Vec::new();
        if let Some(periodic) = &self.periodic {
            if let Err(error) = periodic(backend, request).await {
                failures.push(error);
            }
        }
        if let Some(wal) = &self.wal_rollback {
            if let Err(error) = wal.run(backend, request).await {
                failures.push(error);
            }
        }
        match failures.len() {
            0 => Ok(None),
            // A plain error with the failure's text, whatever its kind; the failure is the
            // cause.
            1 => {
                let failure = failures.remove(0);
                Err(Error::other(failure.message().to_owned()).with_source(failure))
            }
            n => {
                let texts: Vec<&str> = failures.iter().map(Error::message).collect();
                Err(Error::other(format!(
                    "{n} errors occurred:\n\t* {}\n\n",
                    texts.join("\n\t* ")
                )))
            }
        }
    }

    /// Answers an existence check as `framework.Backend.HandleExistenceCheck` does:
    /// `Ok(None)` when the path has no check.
    pub async fn existence_check(
        &self,
        backend: &B,
        request: &Request,
    ) -> Result<Option<bool>, Error> {
        if !matches!(request.operation, Operation::Create | Operation::Update) {
            return Err(Error::other(format!(
                "incorrect operation type {} for an existence check",
                request.operation
            )));
        }
        let (spec, captures) = self.route(&request.path).ok_or(Error::unsupported_path())?;
        let Some(check) = &spec.existence_check else {
            return Ok(None);
        };
        let (fields, _) =
            FieldData::new(spec.pattern.as_str(), &spec.fields, &request.data, captures);
        fields.validate().map_err(Error::user)?;
        check(backend, request, &fields).await.map(Some)
    }
}

impl<B: RoutedBackend> Router<B> {
    /// Handles a request as `framework.Backend.HandleRequest` does.
    pub async fn handle_request(
        &self,
        backend: &B,
        request: &Request,
    ) -> Result<Option<Response>, Error> {
        match request.operation {
            Operation::Renew | Operation::Revoke => {
                return self.handle_renew_revoke(backend, request).await;
            }
            Operation::Rollback => return self.handle_rollback(backend, request).await,
            Operation::Help if request.path.is_empty() => {
                return Ok(Some(help::root_help(self, request, B::KIND)));
            }
            _ => {}
        }

        let (spec, captures) = self.route(&request.path).ok_or(Error::unsupported_path())?;

        let handler = match spec.handler(&request.operation) {
            Some(handler) => handler,
            None if request.operation == Operation::Help => {
                return Ok(Some(help::path_help(self, spec, request, B::KIND)));
            }
            None => return Err(Error::unsupported_operation()),
        };

        let mut ignored: Vec<&str> = request
            .data
            .keys()
            .map(String::as_str)
            .filter(|key| spec.field_schema(key).is_none())
            .collect();
        let (fields, replaced) =
            FieldData::new(spec.pattern.as_str(), &spec.fields, &request.data, captures);
        if let Err(message) = fields.validate() {
            return Ok(Some(Response::error(format!(
                "Field validation failed: {message}"
            ))));
        }

        let mut response = handler(backend, request, &fields).await?;
        if let Some(response) = response.as_mut() {
            ignored.sort_unstable();
            if !ignored.is_empty() {
                response.warnings.push(format!(
                    "Endpoint ignored these unrecognized parameters: {}",
                    go_list(&ignored)
                ));
            }
            if !replaced.is_empty() {
                response.warnings.push(format!(
                    "Endpoint replaced the value of these parameters with the values captured \
                     from the endpoint's path: {}",
                    go_list(&replaced)
                ));
            }
        }
        Ok(response)
    }
}

/// Refuses what [`Router::new`] can tell is a programming error in one path.
fn check_path<B>(spec: &PathSpec<B>) {
    let pattern = spec.pattern.as_str();
    for name in spec.pattern.capture_names() {
        if spec.field_schema(name).is_none() {
            panic!(
                "path pattern {pattern:?} captures {name:?} but declares no field of that name: \
                 add .field(FieldSchema::new({name:?}, FieldType::String, …)) to the path"
            );
        }
    }
    for (index, (operation, _)) in spec.operations.iter().enumerate() {
        if spec.operations[..index]
            .iter()
            .any(|(earlier, _)| earlier == operation)
        {
            panic!("path pattern {pattern:?} registers the operation {operation} twice");
        }
    }
}

/// A backend whose requests a [`Router`] handles. Implementing it implements
/// [`Backend`]: routing, existence checks, special paths and the global hooks come from the
/// router, the kind from [`RoutedBackend::KIND`].
pub trait RoutedBackend: Send + Sync + Sized + 'static {
    /// A secrets engine ([`BackendType::Logical`], the default) or an auth method
    /// ([`BackendType::Credential`]): what the server is told ([`Backend::KIND`]), how
    /// OpenAPI tags the operations (`secrets` or `auth`) and how the by-hand text registers
    /// the plugin.
    const KIND: BackendType = BackendType::Logical;

    /// The backend's paths and global handlers, usually a `static` built once.
    fn router(&self) -> &Router<Self>;
}

impl<T: RoutedBackend> Backend for T {
    const KIND: BackendType = <T as RoutedBackend>::KIND;

    fn special_paths(&self) -> SpecialPaths {
        self.router().special_paths().clone()
    }

    async fn handle_request(&self, request: Request) -> Result<Option<Response>, Error> {
        self.router().handle_request(self, &request).await
    }

    async fn existence_check(&self, request: Request) -> Result<Option<bool>, Error> {
        self.router().existence_check(self, &request).await
    }

    async fn initialize(&self) -> Result<(), Error> {
        match &self.router().validated().initialize {
            Some(initialize) => initialize(self).await,
            None => Ok(()),
        }
    }

    async fn invalidate(&self, key: &str) {
        if let Some(invalidate) = &self.router().validated().invalidate {
            invalidate(self, key).await;
        }
    }

    async fn cleanup(&self) {
        if let Some(clean) = &self.router().validated().clean {
            clean(self).await;
        }
    }
}

/// Formats names as Go's `%v` formats a `[]string`: `[a b c]`.
fn go_list<S: AsRef<str>>(items: &[S]) -> String {
    let joined: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("[{}]", joined.join(" "))
}

#[cfg(test)]
mod tests;
