//! What the plugin says about itself: its name, its version and the version it reports.

/// What a person is told about the plugin (by `--help`, `--version`, and when the binary is
/// run by hand at a terminal), and the version it reports to the server: stated once, here.
///
/// ```
/// use vault_plugin_sdk::PluginInfo;
///
/// let info = PluginInfo::new("leased-passwords", "0.3.1")
///     .description("a secrets engine that hands out passwords")
///     .example_path("pw");
/// assert_eq!(info.reported(), "v0.3.1");
/// // A plugin that must report another version (say, the one a catalog entry pins) says so.
/// assert_eq!(info.reported_version("v0.0.0+mock").reported(), "v0.0.0+mock");
/// ```
///
/// The kind of plugin (secrets engine or auth method) is not here: it is the backend's
/// [`Backend::KIND`](crate::backend::Backend::KIND).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PluginInfo {
    /// The binary's and the catalog entry's usual name, e.g. `my-mock-plugin`.
    pub(crate) name: &'static str,
    /// The plugin's own version, usually `env!("CARGO_PKG_VERSION")` of its crate: what
    /// `--version` shows, and (with a `v` in front) what the server is told unless
    /// [`PluginInfo::reported_version`] says otherwise.
    pub(crate) version: &'static str,
    /// One sentence on what the plugin is, without the final full stop.
    pub(crate) description: &'static str,
    /// The path the examples in the by-hand text enable it at.
    pub(crate) example_path: &'static str,
    /// The version reported to the server instead of `v{version}`.
    pub(crate) reported_version: Option<String>,
    /// The runtime's worker threads: 1 is tokio's single-threaded runtime, 0 one per CPU.
    pub(crate) worker_threads: usize,
}

impl PluginInfo {
    /// The plugin called `name` (the binary's usual name), at `version` (usually
    /// `env!("CARGO_PKG_VERSION")`), described as "a Vault/OpenBao plugin" and enabled at
    /// `name` in the by-hand text until said otherwise.
    pub const fn new(name: &'static str, version: &'static str) -> Self {
        Self {
            name,
            version,
            description: "a Vault/OpenBao plugin",
            example_path: name,
            reported_version: None,
            worker_threads: 1,
        }
    }

    /// Sets the one sentence on what the plugin is (no final full stop).
    pub const fn description(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    /// Sets the path the by-hand text's examples enable the plugin at.
    pub const fn example_path(mut self, example_path: &'static str) -> Self {
        self.example_path = example_path;
        self
    }

    /// Reports `version` to the server instead of `v{version}`: `""` (no version) or exactly
    /// `vMAJOR.MINOR.PATCH[-pre][+build]`, which a catalog entry's `-version` must name.
    /// `--version` and the by-hand text still show the plugin's own version beside it.
    pub fn reported_version(mut self, version: impl Into<String>) -> Self {
        self.reported_version = Some(version.into());
        self
    }

    /// Serves on `threads` worker threads instead of one; `0` means one per CPU.
    ///
    /// One thread is the default, and the fastest for a plugin whose handlers wait on storage
    /// (every request is a few small calls to the server; see `make bench`). A plugin whose
    /// handlers use the CPU for long (a password hash, a key derivation) asks for more, so
    /// that one such request does not hold up every other mount's. The operator can still
    /// choose: `-worker-threads=N` in the catalog's args overrides this.
    ///
    /// ```
    /// use vault_plugin_sdk::PluginInfo;
    ///
    /// // PBKDF2 on every login: one request per CPU at a time, the rest keep moving.
    /// let info = PluginInfo::new("static-auth", "0.1.0").worker_threads(0);
    /// ```
    pub const fn worker_threads(mut self, threads: usize) -> Self {
        self.worker_threads = threads;
        self
    }

    /// The version the server is told: the override, else `v` and the plugin's version (none
    /// when that is empty).
    pub fn reported(&self) -> String {
        match (&self.reported_version, self.version) {
            (Some(version), _) => version.clone(),
            (None, "") => String::new(),
            (None, version) => format!("v{version}"),
        }
    }
}
