//! The entry point a plugin's `main` calls: arguments, logging, the server's environment,
//! memory locking, the runtime, serving, and the exit status.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use clap::error::ErrorKind;

use crate::backend::{Backend, BackendFactory};
use crate::handshake::{HandshakeError, PluginEnv};
use crate::report::report;
use crate::{logging, session};

pub(crate) mod args;
mod by_hand;
mod info;
mod mlock;

use args::Args;
pub use info::PluginInfo;
use mlock::MlockRequest;

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

    let env = match PluginEnv::from_process() {
        Ok(env) => env,
        Err(HandshakeError::NotLaunchedByHost) if std::io::stderr().is_terminal() => {
            by_hand::explain_to_stderr(&info, <F::Backend as Backend>::KIND);
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
    let outcome = runtime.block_on(session::run(
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
        Err(error) => fail(&report(&error)),
    }
}

/// One clear line on stderr (as hclog JSON, so the server logs it as an error) and status 1.
fn fail(line: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!("{line}");
    ExitCode::FAILURE
}
