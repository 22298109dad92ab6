//! `my-mock-plugin`: the mock secrets engine as a Vault/OpenBao plugin binary.
//!
//! Launched by the server, never by hand: it reads the server's environment, prints the
//! go-plugin handshake line on stdout and serves gRPC over mutual TLS. Every problem before the
//! handshake is one line on stderr and exit status 1.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::filter::LevelFilter;
use vault_mock_plugin::backend::mock::MockFactory;
use vault_mock_plugin::handshake::{PluginEnv, Transport};
use vault_mock_plugin::logging;
use vault_mock_plugin::server::{self, ServeOptions};

/// Plugin arguments, registered in the catalog (`-args=...`).
#[derive(Debug, Parser)]
#[command(
    version,
    about = "The Vault/OpenBao mock secrets engine as a Rust plugin binary"
)]
struct Args {
    /// Log level for the lines sent to the server: trace, debug, info, warn, error or off.
    #[arg(long, default_value = "info")]
    log_level: LevelFilter,

    /// Listen on TCP 127.0.0.1 (in PLUGIN_MIN_PORT..PLUGIN_MAX_PORT) instead of a unix socket.
    #[arg(long)]
    tcp: bool,

    /// Exit if the server has not connected this many seconds after the handshake.
    #[arg(long, default_value_t = 30.0, hide = true)]
    connect_timeout: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init(args.log_level);

    let env = match PluginEnv::from_process() {
        Ok(env) => env,
        Err(error) => return fail(&error),
    };
    let options = ServeOptions {
        transport: if args.tcp {
            Transport::Tcp
        } else {
            Transport::Unix
        },
        connect_timeout: Duration::from_secs_f64(args.connect_timeout.max(0.1)),
        ..ServeOptions::default()
    };

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}")),
    };
    let outcome = runtime.block_on(server::run(
        MockFactory::from_env(),
        &env,
        &options,
        &mut std::io::stdout(),
    ));
    // Background tasks (a broker stream, a dial in progress) must not delay the exit.
    runtime.shutdown_background();

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
