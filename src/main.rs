//! `my-mock-plugin`: the mock secrets engine as a Vault/OpenBao plugin binary.
//!
//! Launched by the server, never by hand: it reads the server's environment, prints the
//! go-plugin handshake line on stdout and serves gRPC over mutual TLS. Every problem before the
//! handshake is one line on stderr and exit status 1; a person who runs it at a terminal gets
//! plain text instead, saying what it is and how to register it.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use clap::error::ErrorKind;
use vault_plugin_sdk::backend::BackendFactory as _;
use vault_plugin_sdk::backend::mock::MockFactory;
use vault_plugin_sdk::cli::{self, Args};
use vault_plugin_sdk::handshake::{HandshakeError, PluginEnv};
use vault_plugin_sdk::mlock::MlockRequest;
use vault_plugin_sdk::{by_hand, logging, server};

fn main() -> ExitCode {
    let args = match Args::parse_go_style(std::env::args_os()) {
        Ok(args) => args,
        // --help and --version print to stdout and succeed: only a person runs those.
        Err(error) if error.kind() == ErrorKind::DisplayVersion => {
            let reported = MockFactory::from_env().version();
            let _ = writeln!(std::io::stdout(), "{}", cli::version_line(&reported));
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
            by_hand::explain_to_stderr();
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
        MockFactory::from_env(),
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
