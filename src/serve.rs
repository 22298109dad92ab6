//! The entry point a plugin's `main` calls: arguments, logging, the server's environment,
//! memory locking, the runtime, serving, and the exit status.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use clap::error::ErrorKind;

use crate::backend::{Backend, BackendFactory};
use crate::cli::{self, Args};
use crate::handshake::{HandshakeError, PluginEnv};
use crate::mlock::MlockRequest;
use crate::{by_hand, logging, server};

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

/// Serves `factory`'s backends to the server that launched this process, until the server
/// lets it go. Every problem before the handshake is one line on stderr and exit status 1;
/// a person who runs the binary at a terminal gets plain text saying what it is and how to
/// register it instead.
///
/// ```no_run
/// use std::process::ExitCode;
///
/// use vault_plugin_sdk::backend::framework::{RoutedBackend, Router};
/// use vault_plugin_sdk::backend::{BackendConfig, BackendFactory, Error};
/// use vault_plugin_sdk::{PluginInfo, serve};
///
/// struct Nothing;
///
/// static ROUTER: std::sync::LazyLock<Router<Nothing>> =
///     std::sync::LazyLock::new(|| Router::new("Serves no paths.", Vec::new()));
///
/// impl RoutedBackend for Nothing {
///     fn router(&self) -> &Router<Self> {
///         &ROUTER
///     }
/// }
///
/// struct Factory;
///
/// impl BackendFactory for Factory {
///     type Backend = Nothing;
///
///     async fn create(&self, _config: BackendConfig) -> Result<Nothing, Error> {
///         Ok(Nothing)
///     }
/// }
///
/// fn main() -> ExitCode {
///     // Reports v{the crate's version} to the server.
///     let info = PluginInfo::new("nothing", env!("CARGO_PKG_VERSION"))
///         .description("a secrets engine with no paths");
///     serve(info, Factory)
/// }
/// ```
pub fn serve<F: BackendFactory>(info: PluginInfo, factory: F) -> ExitCode {
    let args = match Args::parse_go_style(&info, std::env::args_os()) {
        Ok(args) => args,
        // --help and --version print to stdout and succeed: only a person runs those.
        Err(error) if error.kind() == ErrorKind::DisplayVersion => {
            let line = cli::version_line(&info);
            let _ = writeln!(std::io::stdout(), "{line}");
            return ExitCode::SUCCESS;
        }
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            logging::init(tracing_subscriber::filter::LevelFilter::INFO);
            let message = error.to_string();
            let first_line = message.lines().next().unwrap_or("bad arguments");
            return fail(&format!(
                "{first_line} (check the plugin's args in the catalog)"
            ));
        }
    };
    let log = logging::init(args.log_level);

    let env = match PluginEnv::from_process() {
        Ok(env) => env,
        Err(HandshakeError::NotLaunchedByHost) if std::io::stderr().is_terminal() => {
            by_hand::explain_to_stderr(&info, <F::Backend as Backend>::KIND);
            return ExitCode::FAILURE;
        }
        Err(error) => return fail(&error),
    };
    // Before anything is served: no secret is ever in unlocked memory, and a failure comes
    // before the handshake.
    if let Some(request) = MlockRequest::from_lookup(|name| std::env::var(name).ok()) {
        if let Err(error) = request.lock_all_memory() {
            return fail(&error);
        }
        tracing::debug!(variable = request.variable, "memory locked");
    }
    let options = args.serve_options(|name| std::env::var(name).ok());

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Log lines below warn wait until the runtime has nothing left to do.
        .on_thread_park({
            let log = log.clone();
            move || log.flush()
        })
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}")),
    };
    log.hold_until_flush();
    let outcome = runtime.block_on(server::run(
        factory,
        info.reported(),
        &env,
        &options,
        &mut std::io::stdout(),
    ));
    // Background tasks (a broker stream, a dial in progress) must not delay the exit.
    runtime.shutdown_background();
    log.stop_holding();

    match outcome {
        Ok(reason) if reason.is_failure() => fail(&reason),
        Ok(reason) => {
            tracing::debug!(reason = %reason, "plugin exiting");
            ExitCode::SUCCESS
        }
        Err(error) => fail(&error),
    }
}

/// One clear line on stderr (as hclog JSON, so the server logs it as an error) and status 1.
fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!("{error}");
    ExitCode::FAILURE
}
