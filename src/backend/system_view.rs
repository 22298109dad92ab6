//! What a backend may ask the server about its mount and the server (`logical.SystemView`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};

use super::auth::Alias;
use super::error::{Error, Source, as_source};
use super::storage::BoxFuture;

/// A failed system-view call: the server's text where it gave one (for example "missing
/// system view implementation" while the plugin is only being registered), and optionally the
/// cause (the failed call's `tonic::Status`, say).
///
/// [`Display`](fmt::Display) writes the message alone. Equality compares the messages, not
/// the causes.
#[derive(Clone, Debug)]
pub struct SystemViewError {
    message: String,
    source: Option<Source>,
}

impl SystemViewError {
    /// A failure with the text `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `source` as the cause. It never reaches the server, but may reach a log: it must
    /// not carry a secret.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The text, verbatim.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SystemViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SystemViewError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        as_source(self.source.as_ref())
    }
}

impl PartialEq for SystemViewError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for SystemViewError {}

/// The answer of a system-view call.
pub type SystemViewResult<'a, T> = BoxFuture<'a, Result<T, SystemViewError>>;

/// The server's view of the mount, over the broker connection Setup opened.
pub trait SystemView: Send + Sync {
    /// The mount's default lease TTL (its tuning, else the server's).
    fn default_lease_ttl(&self) -> SystemViewResult<'_, Duration>;
    /// The mount's maximum lease TTL (its tuning, else the server's).
    fn max_lease_ttl(&self) -> SystemViewResult<'_, Duration>;
    /// True while the mount is being disabled: revocations then may tolerate failures.
    fn tainted(&self) -> SystemViewResult<'_, bool>;
    /// True when the server or the mount turned caching off.
    fn caching_disabled(&self) -> SystemViewResult<'_, bool>;
    /// The server's replication and HA state flags.
    fn replication_state(&self) -> SystemViewResult<'_, ReplicationState>;
    /// True for a mount local to this cluster.
    fn local_mount(&self) -> SystemViewResult<'_, bool>;
    /// Whether the server locks its memory (OpenBao: always false).
    fn mlock_enabled(&self) -> SystemViewResult<'_, bool>;
    /// The entity with this id, if there is one.
    fn entity_info<'a>(&'a self, entity_id: &'a str) -> SystemViewResult<'a, Option<Entity>>;
    /// The groups an entity belongs to, directly or inherited.
    fn groups_for_entity<'a>(&'a self, entity_id: &'a str) -> SystemViewResult<'a, Vec<Group>>;
    /// The server's version.
    fn plugin_env(&self) -> SystemViewResult<'_, PluginEnvironment>;
    /// A password made by the server's password policy of this name.
    fn generate_password_from_policy<'a>(
        &'a self,
        policy_name: &'a str,
    ) -> SystemViewResult<'a, String>;
    /// The cluster's name and id.
    fn cluster_info(&self) -> SystemViewResult<'_, ClusterInfo>;
    /// Wraps `data` in a single-use token that lives for `ttl`.
    fn response_wrap_data<'a>(
        &'a self,
        data: &'a Map<String, Value>,
        ttl: Duration,
    ) -> SystemViewResult<'a, WrappingToken>;
}

/// Replication and HA flags (`consts.ReplicationState`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicationState(pub u32);

impl ReplicationState {
    /// A performance standby (bit 16384): it cannot write, and forwards writes.
    pub const PERFORMANCE_STANDBY: u32 = 1 << 14;

    /// True when the node cannot write storage and the request should be forwarded.
    pub fn is_performance_standby(self) -> bool {
        self.0 & Self::PERFORMANCE_STANDBY != 0
    }
}

/// An identity entity (`logical.Entity`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entity {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its aliases in the mount's namespace.
    pub aliases: Vec<Alias>,
    /// Its metadata.
    pub metadata: BTreeMap<String, String>,
    /// A disabled entity's tokens are refused.
    pub disabled: bool,
    /// Its namespace.
    pub namespace_id: String,
}

/// An identity group (`logical.Group`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Group {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its metadata.
    pub metadata: BTreeMap<String, String>,
    /// Its namespace.
    pub namespace_id: String,
}

/// The server's version (`logical.PluginEnvironment`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PluginEnvironment {
    /// For example `2.7.2`.
    pub vault_version: String,
    /// For example `beta1`.
    pub vault_version_prerelease: String,
    /// Build metadata.
    pub vault_version_metadata: String,
}

/// The cluster a server belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterInfo {
    /// Empty on OpenBao.
    pub cluster_name: String,
    /// The cluster's id.
    pub cluster_id: String,
}

/// A wrapping token the server made for [`SystemView::response_wrap_data`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WrappingToken {
    /// The token that unwraps the data once.
    pub token: String,
    /// Its accessor.
    pub accessor: String,
    /// How long it lives.
    pub ttl: Duration,
    /// Where it was made.
    pub creation_path: String,
}

/// A system view with fixed answers, for tests and benchmarks that leave the server out (as
/// [`MemoryStorage`](super::MemoryStorage) stands in for storage). The defaults are the
/// server's built-in TTLs, 768 hours both; no password policies (every name fails as the server
/// fails an unknown policy); identity and response wrapping are unavailable.
///
/// The `with_*` methods build one:
///
/// ```
/// use std::time::Duration;
///
/// use vault_plugin_sdk::backend::{PasswordPolicy, StaticSystemView, SystemView as _};
///
/// let view = StaticSystemView::default()
///     .with_default_lease_ttl(Duration::from_secs(3600))
///     .with_max_lease_ttl(Duration::from_secs(24 * 3600))
///     .with_password_policy("digits", PasswordPolicy::fixed(["123456", "654321"]))
///     .with_local_mount(true);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(view.default_lease_ttl().await, Ok(Duration::from_secs(3600)));
/// assert_eq!(view.generate_password_from_policy("digits").await.unwrap(), "123456");
/// assert_eq!(view.generate_password_from_policy("digits").await.unwrap(), "654321");
/// // A policy the view does not have fails with the server's own text.
/// let missing = view.generate_password_from_policy("nosuch").await.unwrap_err();
/// assert_eq!(missing.to_string(), "failed to generate password");
/// # });
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StaticSystemView {
    /// What [`SystemView::default_lease_ttl`] answers.
    pub default_lease_ttl: Duration,
    /// What [`SystemView::max_lease_ttl`] answers.
    pub max_lease_ttl: Duration,
    /// What [`SystemView::tainted`] answers.
    pub tainted: bool,
    /// What [`SystemView::replication_state`] answers.
    pub replication_state: ReplicationState,
    /// What [`SystemView::local_mount`] answers.
    pub local_mount: bool,
    /// The password policies [`SystemView::generate_password_from_policy`] knows, by name.
    pub password_policies: BTreeMap<String, PasswordPolicy>,
}

impl Default for StaticSystemView {
    fn default() -> Self {
        Self {
            default_lease_ttl: Duration::from_secs(768 * 3600),
            max_lease_ttl: Duration::from_secs(768 * 3600),
            tainted: false,
            replication_state: ReplicationState::default(),
            local_mount: false,
            password_policies: BTreeMap::new(),
        }
    }
}

impl StaticSystemView {
    /// Sets the mount's default lease TTL.
    pub fn with_default_lease_ttl(mut self, ttl: Duration) -> Self {
        self.default_lease_ttl = ttl;
        self
    }

    /// Sets the mount's maximum lease TTL.
    pub fn with_max_lease_ttl(mut self, ttl: Duration) -> Self {
        self.max_lease_ttl = ttl;
        self
    }

    /// Marks the mount as being disabled.
    pub fn with_tainted(mut self, tainted: bool) -> Self {
        self.tainted = tainted;
        self
    }

    /// Sets the replication and HA flags (say [`ReplicationState::PERFORMANCE_STANDBY`]).
    pub fn with_replication_state(mut self, state: ReplicationState) -> Self {
        self.replication_state = state;
        self
    }

    /// Marks the mount as local to the cluster.
    pub fn with_local_mount(mut self, local: bool) -> Self {
        self.local_mount = local;
        self
    }

    /// Adds (or replaces) the password policy `name`.
    pub fn with_password_policy(mut self, name: impl Into<String>, policy: PasswordPolicy) -> Self {
        self.password_policies.insert(name.into(), policy);
        self
    }
}

/// What a [`StaticSystemView`] answers for one password policy: passwords from a function, or
/// a fixed list handed out in turn. Clones share the list's position.
#[derive(Clone)]
pub struct PasswordPolicy(PolicySource);

#[derive(Clone)]
enum PolicySource {
    Generator(Arc<dyn Fn() -> String + Send + Sync>),
    Fixed {
        passwords: Arc<[String]>,
        next: Arc<AtomicUsize>,
    },
}

impl PasswordPolicy {
    /// Each password is what `generate` returns.
    pub fn generator(generate: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Self(PolicySource::Generator(Arc::new(generate)))
    }

    /// The passwords in turn, starting again from the first after the last.
    ///
    /// # Panics
    /// If there are none.
    pub fn fixed<S: Into<String>>(passwords: impl IntoIterator<Item = S>) -> Self {
        let passwords: Arc<[String]> = passwords.into_iter().map(Into::into).collect();
        assert!(
            !passwords.is_empty(),
            "a fixed password policy needs at least one password"
        );
        Self(PolicySource::Fixed {
            passwords,
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The next password.
    pub fn generate(&self) -> String {
        match &self.0 {
            PolicySource::Generator(generate) => generate(),
            PolicySource::Fixed { passwords, next } => {
                let turn = next.fetch_add(1, Ordering::Relaxed);
                passwords[turn % passwords.len()].clone()
            }
        }
    }
}

/// Shows the kind of policy, never its passwords.
impl fmt::Debug for PasswordPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            PolicySource::Generator(_) => f.write_str("PasswordPolicy::generator(..)"),
            PolicySource::Fixed { passwords, .. } => {
                write!(f, "PasswordPolicy::fixed({} passwords)", passwords.len())
            }
        }
    }
}

/// The server's answer for a password policy it does not have (or cannot use): the plugin
/// gets this text and nothing more.
const PASSWORD_POLICY_FAILED: &str = "failed to generate password";

fn ready<'a, T: Send + 'a>(value: Result<T, SystemViewError>) -> SystemViewResult<'a, T> {
    Box::pin(std::future::ready(value))
}

fn unavailable<'a, T: Send + 'a>(what: &str) -> SystemViewResult<'a, T> {
    ready(Err(SystemViewError::new(format!(
        "{what} is not available in a static system view"
    ))))
}

impl SystemView for StaticSystemView {
    fn default_lease_ttl(&self) -> SystemViewResult<'_, Duration> {
        ready(Ok(self.default_lease_ttl))
    }

    fn max_lease_ttl(&self) -> SystemViewResult<'_, Duration> {
        ready(Ok(self.max_lease_ttl))
    }

    fn tainted(&self) -> SystemViewResult<'_, bool> {
        ready(Ok(self.tainted))
    }

    fn caching_disabled(&self) -> SystemViewResult<'_, bool> {
        ready(Ok(false))
    }

    fn replication_state(&self) -> SystemViewResult<'_, ReplicationState> {
        ready(Ok(self.replication_state))
    }

    fn local_mount(&self) -> SystemViewResult<'_, bool> {
        ready(Ok(self.local_mount))
    }

    fn mlock_enabled(&self) -> SystemViewResult<'_, bool> {
        ready(Ok(false))
    }

    fn entity_info<'a>(&'a self, _: &'a str) -> SystemViewResult<'a, Option<Entity>> {
        ready(Ok(None))
    }

    fn groups_for_entity<'a>(&'a self, _: &'a str) -> SystemViewResult<'a, Vec<Group>> {
        ready(Ok(Vec::new()))
    }

    fn plugin_env(&self) -> SystemViewResult<'_, PluginEnvironment> {
        ready(Ok(PluginEnvironment::default()))
    }

    fn generate_password_from_policy<'a>(
        &'a self,
        policy_name: &'a str,
    ) -> SystemViewResult<'a, String> {
        ready(
            self.password_policies
                .get(policy_name)
                .map(PasswordPolicy::generate)
                .ok_or_else(|| SystemViewError::new(PASSWORD_POLICY_FAILED)),
        )
    }

    fn cluster_info(&self) -> SystemViewResult<'_, ClusterInfo> {
        ready(Ok(ClusterInfo::default()))
    }

    fn response_wrap_data<'a>(
        &'a self,
        _: &'a Map<String, Value>,
        _: Duration,
    ) -> SystemViewResult<'a, WrappingToken> {
        unavailable("response wrapping")
    }
}

/// System-view errors reach the client as plain errors, with their text verbatim; the
/// system-view error is the cause.
impl From<SystemViewError> for Error {
    fn from(error: SystemViewError) -> Self {
        Self::other(error.message().to_owned()).with_source(error)
    }
}
