//! The entry point a plugin's `main` calls: arguments, logging, the server's environment,
//! memory locking, the runtime, serving, and the exit status.

use std::fmt;
use std::future::Future;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::error::ErrorKind;

use crate::backend::BackendFactory;
use crate::database::DatabaseFactory;
use crate::handshake::{HandshakeError, PluginEnv, Transport};
use crate::report::report;
use crate::services::Kind;
use crate::services::backend::Backends;
use crate::services::controller::ExitReason;
use crate::services::database::Databases;
use crate::session::dispatch::HotService;
use crate::session::{SessionOptions, StartError};
use crate::{logging, session};

pub(crate) mod args;
mod by_hand;
mod info;
mod mlock;
mod runtime;

use args::Args;
pub use info::PluginInfo;
use mlock::MlockRequest;
pub use runtime::cpu_bound;

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
    serve_kind(info, Backends(factory))
}

/// Serves `factory`'s databases to the server that launched this process, until the server
/// lets it go: [`serve`] for database plugins (their own handshake cookie, plugin protocols 6
/// and 5; the legacy protocol 4 is refused with one line saying what the server must
/// support).
pub fn serve_database<F: DatabaseFactory>(info: PluginInfo, factory: F) -> ExitCode {
    serve_kind(info, Databases(factory))
}

/// [`serve`] for a plugin of any kind.
pub(crate) fn serve_kind<K: Kind>(info: PluginInfo, kind: K) -> ExitCode
where
    K::Face: HotService,
{
    let args = match Args::parse_go_style(&info, std::env::args_os()) {
        Ok(args) => args,
        // --help and --version print to stdout and succeed: only a person runs those.
        Err(error) if error.kind() == ErrorKind::DisplayVersion => {
            let line = args::version_line(&info);
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

    let env = match PluginEnv::from_process(K::COOKIE) {
        Ok(env) => env,
        Err(HandshakeError::NotLaunchedByHost(_)) if std::io::stderr().is_terminal() => {
            by_hand::explain_to_stderr(&info, K::CATALOG);
            return ExitCode::FAILURE;
        }
        Err(error) => return fail(&report(&error)),
    };
    // Before anything is served: no secret is ever in unlocked memory, and a failure comes
    // before the handshake.
    if let Some(request) = MlockRequest::from_lookup(|name| std::env::var(name).ok()) {
        if let Err(error) = request.lock_all_memory() {
            return fail(&report(&error));
        }
        tracing::debug!(variable = request.variable, "memory locked");
    }
    let launch = Launch {
        env: LaunchEnv::Read(env),
        options: args.serve_options(|name| std::env::var(name).ok()),
    };

    let threads = args.worker_threads.unwrap_or(info.worker_threads);
    let runtime = match runtime::build(threads, &log) {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}")),
    };
    log.hold_until_flush();
    let to_stdout = |line: &str| {
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{line}").and_then(|()| stdout.flush())
    };
    // The server stops the plugin (Shutdown, or by going away); nothing else does.
    let outcome = runtime.block_on(async {
        // Before anything that can take time: the legacy unwrap may wait 30 s for the server.
        ignore_interrupts();
        serve_kind_until(&info, kind, &launch, to_stdout, std::future::pending()).await
    });
    // Background tasks (a broker stream, a dial in progress) must not delay the exit.
    runtime.shutdown_background();
    log.stop_holding();

    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => fail(&report(&error)),
    }
}

/// How the server launched the plugin: what it offered (protocol versions, its certificate for
/// automatic mutual TLS, where and how to listen) and the plugin's arguments. [`serve`] reads
/// it from the process; a test builds one to run a plugin in process with [`serve_until`].
#[derive(Clone)]
pub struct Launch {
    env: LaunchEnv,
    options: SessionOptions,
}

/// The server's variables: read and checked already (by [`serve`], which must answer a person
/// at a terminal before anything else), or still to be read for the plugin's kind.
#[derive(Clone)]
enum LaunchEnv {
    Read(PluginEnv),
    Vars(Arc<Lookup>),
}

/// Reads one of the server's variables by name.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl fmt::Debug for Launch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launch")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Launch {
    /// A launch described by variables as the server sets them, read through `get` when
    /// serving starts: the kind's magic cookie (`VAULT_BACKEND_PLUGIN`, or
    /// `VAULT_DATABASE_PLUGIN` for a database plugin), `PLUGIN_PROTOCOL_VERSIONS`,
    /// `PLUGIN_CLIENT_CERT` (the server's certificate, PEM, for automatic mutual TLS),
    /// `PLUGIN_UNIX_SOCKET_DIR`, `PLUGIN_MIN_PORT` and `PLUGIN_MAX_PORT`. The plugin's
    /// arguments are their defaults.
    pub fn from_vars(get: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            env: LaunchEnv::Vars(Arc::new(get)),
            options: SessionOptions::default(),
        }
    }

    /// Listens on TCP on loopback, in the launch's port range, instead of on a unix socket
    /// (the `-tcp` argument).
    pub fn tcp(mut self) -> Self {
        self.options.transport = Transport::Tcp;
        self
    }

    /// Gives up, with an error, if the server has not connected `timeout` after the handshake
    /// line (30 s unless said otherwise).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }
}

/// Why a plugin stopped serving, when nothing went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stopped {
    /// The server asked (`GRPCController/Shutdown`).
    ServerAsked,
    /// The server went away without asking: killed, or it closed the connection.
    ServerGone,
    /// The shutdown future given to [`serve_until`] completed.
    ShutdownRequested,
}

/// Why a plugin could not serve: its start failed before or after the handshake line.
/// [`std::error::Error::source`] gives the cause, when there is one.
#[derive(Debug)]
pub struct ServeError(StartError);

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}

/// Serves `factory`'s backends for one launch until the server lets the plugin go or
/// `shutdown` completes: what [`serve`] runs once it has read the process's arguments and
/// environment, and what a test runs in process. `announce` is given the handshake line
/// (`serve`'s writes it to stdout); the server's side connects to the address in it.
///
/// ```no_run
/// # use vault_plugin_sdk::backend::BackendFactory;
/// # async fn example<F: BackendFactory>(factory: F, server_cert_pem: String) {
/// use vault_plugin_sdk::{Launch, PluginInfo, Stopped, serve_until};
///
/// let launch = Launch::from_vars(move |name| match name {
///     "VAULT_BACKEND_PLUGIN" => Some("6669da05-b1c8-4f49-97d9-c8e5bed98e20".into()),
///     "PLUGIN_PROTOCOL_VERSIONS" => Some("5".into()),
///     "PLUGIN_CLIENT_CERT" => Some(server_cert_pem.clone()),
///     _ => None,
/// });
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let info = PluginInfo::new("example", "0.1.0");
/// let serving = serve_until(&info, factory, &launch, |line| Ok(println!("{line}")), async {
///     let _ = stopped.await;
/// });
/// # let _ = stop;
/// assert_eq!(serving.await.unwrap(), Stopped::ShutdownRequested);
/// # }
/// ```
pub async fn serve_until<F: BackendFactory>(
    info: &PluginInfo,
    factory: F,
    launch: &Launch,
    announce: impl FnOnce(&str) -> std::io::Result<()>,
    shutdown: impl Future<Output = ()>,
) -> Result<Stopped, ServeError> {
    serve_kind_until(info, Backends(factory), launch, announce, shutdown).await
}

/// [`serve_until`] for a plugin of any kind.
pub(crate) async fn serve_kind_until<K: Kind>(
    info: &PluginInfo,
    kind: K,
    launch: &Launch,
    announce: impl FnOnce(&str) -> std::io::Result<()>,
    shutdown: impl Future<Output = ()>,
) -> Result<Stopped, ServeError>
where
    K::Face: HotService,
{
    let env = match &launch.env {
        LaunchEnv::Read(env) => env.clone(),
        LaunchEnv::Vars(get) => PluginEnv::from_lookup_for(K::COOKIE, |name| get(name))
            .map_err(|e| ServeError(e.into()))?,
    };
    let reason = session::run(
        kind,
        info.reported(),
        &env,
        &launch.options,
        announce,
        shutdown,
    )
    .await
    .map_err(ServeError)?;
    tracing::debug!(reason = %reason, "plugin exiting");
    match reason {
        ExitReason::Shutdown => Ok(Stopped::ServerAsked),
        ExitReason::HostGone(_) => Ok(Stopped::ServerGone),
        ExitReason::Requested => Ok(Stopped::ShutdownRequested),
        ExitReason::StartFailed(why) => Err(ServeError(StartError::NotConnected(why))),
    }
}

/// go-plugin plugins ignore SIGINT, so a Ctrl-C meant for the server's terminal does not kill
/// them: the server stops its plugins itself.
fn ignore_interrupts() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
        Ok(mut interrupts) => {
            tokio::spawn(async move {
                while interrupts.recv().await.is_some() {
                    tracing::debug!("ignoring SIGINT; the server stops its plugins itself");
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot ignore SIGINT"),
    }
}

/// One clear line on stderr (as hclog JSON, so the server logs it as an error) and status 1.
fn fail(line: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!("{line}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests;
