//! The plugin's arguments, registered in the catalog with `-args=...`.
//!
//! Go plugins parse their arguments with Go's `flag` package, where `-name` and `--name` are the
//! same flag; catalogs written for the Go mock pass the API client flags that way
//! (`-ca-cert=...`). Both forms are accepted here.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory as _, FromArgMatches as _, Parser};
use tracing_subscriber::filter::LevelFilter;

use super::info::PluginInfo;
use crate::handshake::Transport;
use crate::session::SessionOptions;
use crate::transport::unwrap_tls::ApiClientFlags;

/// A Vault/OpenBao plugin. It is launched by the server, never by hand.
#[derive(Debug, Parser, PartialEq)]
#[command(version)]
pub struct Args {
    /// Log level for the lines sent to the server: trace, debug, info, warn, error or off.
    #[arg(long, default_value = "info")]
    pub log_level: LevelFilter,

    /// Listen on TCP 127.0.0.1 (in PLUGIN_MIN_PORT..PLUGIN_MAX_PORT) instead of a unix socket.
    #[arg(long)]
    pub tcp: bool,

    /// Decline plugin protocol 5, so the server falls back to the legacy protocol (metadata
    /// mode, then TLS through an unwrap token; the server needs api_addr).
    #[arg(long)]
    pub no_protocol_5: bool,

    /// Worker threads for the runtime: 1 for a single thread, 0 for one per CPU (default: the
    /// plugin's choice, usually 1).
    #[arg(long)]
    pub worker_threads: Option<usize>,

    /// Exit if the server has not connected this many seconds after the handshake.
    #[arg(long, default_value_t = 30.0, hide = true)]
    pub connect_timeout: f64,

    /// Legacy TLS bootstrap: CA certificate (PEM) to verify the server's API with.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,

    /// Legacy TLS bootstrap: directory of CA certificates to verify the server's API with.
    #[arg(long)]
    pub ca_path: Option<PathBuf>,

    /// Legacy TLS bootstrap: client certificate (PEM) for the server's API.
    #[arg(long)]
    pub client_cert: Option<PathBuf>,

    /// Legacy TLS bootstrap: client key (PEM) for the server's API.
    #[arg(long)]
    pub client_key: Option<PathBuf>,

    /// Legacy TLS bootstrap: the name to verify the server's API certificate against.
    #[arg(long)]
    pub tls_server_name: Option<String>,

    /// Legacy TLS bootstrap: do not verify the server's API certificate (testing only).
    #[arg(
        long,
        num_args = 0..=1,
        default_missing_value = "true",
        default_value = "false",
        value_parser = parse_go_bool,
        action = clap::ArgAction::Set,
    )]
    pub tls_skip_verify: bool,
}

/// Go's `strconv.ParseBool`, which `-flag=value` uses for booleans.
fn parse_go_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(format!("{other:?} is not a boolean")),
    }
}

/// What `--version` prints: the plugin's version and the version it reports to the server
/// ([`PluginInfo::reported`]), which the catalog's `-version` must match.
pub(crate) fn version_line(info: &PluginInfo) -> String {
    let reported = info.reported();
    format!(
        "{} {} (reports {} to the server)",
        info.name,
        info.version,
        if reported.is_empty() {
            "no version"
        } else {
            &reported
        }
    )
}

/// Rewrites Go's single-dash long flags (`-ca-cert`) to clap's form (`--ca-cert`). A lone `-`,
/// anything after `--`, and values are left alone.
pub(crate) fn normalise_go_flags(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut rest_are_values = false;
    for (index, arg) in args.into_iter().enumerate() {
        let text = arg.to_string_lossy();
        let is_go_long = index > 0
            && !rest_are_values
            && text.len() > 2
            && text.starts_with('-')
            && !text.starts_with("--")
            && text.as_bytes()[1].is_ascii_alphabetic();
        if text == "--" {
            rest_are_values = true;
        }
        out.push(if is_go_long {
            OsString::from(format!("-{text}"))
        } else {
            arg
        });
    }
    out
}

impl Args {
    /// Parses `args` (the program name first), in either flag form.
    pub fn parse_go_style(
        info: &PluginInfo,
        args: impl IntoIterator<Item = OsString>,
    ) -> Result<Self, clap::Error> {
        let mut command = Self::command()
            .name(info.name)
            .about(format!("{}: {}.", info.name, info.description))
            .long_about(format!(
                "{}: {}. It is launched by the server, never by hand.",
                info.name, info.description
            ));
        let mut matches = command.try_get_matches_from_mut(normalise_go_flags(args))?;
        Self::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
    }

    /// The serving options these arguments ask for; the API client flags fall back to the
    /// environment as the Go API client's do.
    pub fn serve_options(&self, get: impl Fn(&str) -> Option<String>) -> SessionOptions {
        let api_client = ApiClientFlags {
            ca_cert: self.ca_cert.clone(),
            ca_path: self.ca_path.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            tls_server_name: self.tls_server_name.clone(),
            tls_skip_verify: self.tls_skip_verify,
        }
        .with_env_fallbacks(get);
        SessionOptions {
            transport: if self.tcp {
                Transport::Tcp
            } else {
                Transport::Unix
            },
            connect_timeout: Duration::from_secs_f64(self.connect_timeout.clamp(0.1, 3600.0)),
            decline_protocol_5: self.no_protocol_5,
            api_client,
            ..SessionOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    // Not the SDK's own version: the line must show the plugin's.
    pub(crate) const INFO: PluginInfo = PluginInfo::new("my-mock-plugin", "3.2.1")
        .description("a test plugin")
        .example_path("my-secrets-plugin");

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        let mut all = vec![OsString::from("my-mock-plugin")];
        all.extend(args.iter().map(OsString::from));
        Args::parse_go_style(&INFO, all)
    }

    #[test]
    fn go_single_dash_flags_are_accepted() {
        let args = parse(&[
            "-ca-cert=/etc/ca.pem",
            "-ca-path",
            "/etc/cas",
            "-client-cert=/c.pem",
            "-client-key",
            "/k.pem",
            "-tls-server-name=vault.example",
            "-tls-skip-verify",
        ])
        .unwrap();
        assert_eq!(args.ca_cert, Some("/etc/ca.pem".into()));
        assert_eq!(args.ca_path, Some("/etc/cas".into()));
        assert_eq!(args.client_cert, Some("/c.pem".into()));
        assert_eq!(args.client_key, Some("/k.pem".into()));
        assert_eq!(args.tls_server_name.as_deref(), Some("vault.example"));
        assert!(args.tls_skip_verify);
    }

    #[test]
    fn double_dash_flags_and_defaults() {
        let args = parse(&["--log-level", "debug", "--no-protocol-5", "--tcp"]).unwrap();
        assert_eq!(args.log_level, LevelFilter::DEBUG);
        assert!(args.no_protocol_5 && args.tcp && !args.tls_skip_verify);
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.log_level, LevelFilter::INFO);
        assert!(!defaults.no_protocol_5);
    }

    #[test]
    fn go_boolean_values_are_understood() {
        assert!(parse(&["-tls-skip-verify=true"]).unwrap().tls_skip_verify);
        assert!(parse(&["-tls-skip-verify=1"]).unwrap().tls_skip_verify);
        assert!(!parse(&["-tls-skip-verify=false"]).unwrap().tls_skip_verify);
        assert!(parse(&["-tls-skip-verify=maybe"]).is_err());
    }

    #[test]
    fn version_is_asked_for_in_every_form_and_names_both_versions() {
        for flag in ["--version", "-version", "-V"] {
            let kind = parse(&[flag]).unwrap_err().kind();
            assert_eq!(kind, clap::error::ErrorKind::DisplayVersion, "{flag}");
        }
        assert_eq!(
            version_line(&INFO),
            "my-mock-plugin 3.2.1 (reports v3.2.1 to the server)"
        );
        assert_eq!(
            version_line(&INFO.reported_version("v9.8.7")),
            "my-mock-plugin 3.2.1 (reports v9.8.7 to the server)"
        );
        assert_eq!(
            version_line(&INFO.reported_version("")),
            "my-mock-plugin 3.2.1 (reports no version to the server)"
        );
    }

    #[test]
    fn unknown_flags_are_refused() {
        let error = parse(&["-no-such-flag"]).unwrap_err().to_string();
        assert!(error.contains("--no-such-flag"), "{error}");
    }

    #[test]
    fn values_and_separators_are_not_rewritten() {
        let rewritten = normalise_go_flags(
            ["prog", "-ca-cert", "-odd-file-name", "-", "--", "-x-y"].map(OsString::from),
        );
        // A value that looks like a flag is still rewritten, as Go's flag package would take
        // it as a flag too; "-" and everything after "--" are kept.
        assert_eq!(
            rewritten,
            ["prog", "--ca-cert", "--odd-file-name", "-", "--", "-x-y"].map(OsString::from)
        );
    }

    #[test]
    fn api_client_flags_fall_back_to_the_environment() {
        let args = parse(&["-ca-cert=/flag.pem"]).unwrap();
        let options = args.serve_options(|name| match name {
            "BAO_CACERT" => Some("/env.pem".into()),
            "VAULT_CAPATH" => Some("/env-dir".into()),
            "VAULT_SKIP_VERIFY" => Some("true".into()),
            _ => None,
        });
        assert_eq!(options.api_client.ca_cert, Some("/flag.pem".into()));
        assert_eq!(options.api_client.ca_path, Some("/env-dir".into()));
        assert!(options.api_client.tls_skip_verify);
    }
}
