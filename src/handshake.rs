//! The go-plugin handshake: who launched us (magic cookie), which protocol to speak
//! (negotiation), where to listen (a unix socket in a private directory, or TCP in the allowed
//! port range), and the one line on stdout that tells the server all of it.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

/// The variable go-plugin hosts set to prove they launched a backend plugin; the same name in
/// OpenBao.
pub const MAGIC_COOKIE_KEY: &str = "VAULT_BACKEND_PLUGIN";
/// Its value for backend (secrets and auth) plugins.
pub const MAGIC_COOKIE_VALUE: &str = "6669da05-b1c8-4f49-97d9-c8e5bed98e20";
/// The variable the server sets for a database plugin, and the cookie it uses when it first
/// tries an unknown-type plugin as a database plugin.
pub(crate) const DATABASE_COOKIE_KEY: &str = "VAULT_DATABASE_PLUGIN";
/// Its value.
pub(crate) const DATABASE_COOKIE_VALUE: &str = "926a0820-aea2-be28-51d6-83cdf00e8edb";

/// How the server proves it launched a plugin of one kind, and what the plugin says when it
/// finds the other kind's cookie instead: the server probes a plugin registered without a type
/// as a database plugin first, then as a backend.
#[derive(Debug, PartialEq, Eq)]
pub struct Cookie {
    key: &'static str,
    value: &'static str,
    /// What a plugin of this kind is, in the wrong-cookie message.
    what: &'static str,
    /// The other kind's cookie.
    other_key: &'static str,
    /// What to say when the other kind's cookie is set instead.
    other_kind: &'static str,
}

/// Secrets engines and auth methods.
pub static BACKEND_COOKIE: Cookie = Cookie {
    key: MAGIC_COOKIE_KEY,
    value: MAGIC_COOKIE_VALUE,
    what: "backend plugin",
    other_key: DATABASE_COOKIE_KEY,
    other_kind: "This is a secrets-engine plugin, not a database plugin: the server is probing \
                 the plugin's type and will try it as a secrets engine next. To skip the probe, \
                 register it with its type: `bao plugin register -sha256=... secret NAME`.",
};

/// Database plugins.
pub static DATABASE_COOKIE: Cookie = Cookie {
    key: DATABASE_COOKIE_KEY,
    value: DATABASE_COOKIE_VALUE,
    what: "database plugin",
    other_key: MAGIC_COOKIE_KEY,
    other_kind: "This is a database plugin, not a secrets engine or an auth method: register \
                 it with its type, `bao plugin register -sha256=... database NAME`, and use it \
                 from the database secrets engine (`plugin_name` of `database/config/NAME`).",
};
/// go-plugin's core protocol version, the first field of the handshake line.
pub(crate) const CORE_PROTOCOL_VERSION: u32 = 1;
/// The application protocol versions a backend plugin serves: 5 (automatic mutual TLS,
/// multiplexed) and the legacy 3 and 4 (identical: metadata mode, then TLS bootstrapped through
/// an unwrap token), which the server falls back to when protocol 5 fails.
pub const SUPPORTED_VERSIONS: &[u32] = &[5, 4, 3];
/// The versions a database plugin serves: 6 (multiplexed) and 5 (one database per process),
/// both with automatic mutual TLS. The legacy 4 (the old `dbplugin`) is not offered.
pub(crate) const DATABASE_VERSIONS: &[u32] = &[6, 5];

/// Why the plugin cannot start. Every message names the cause and what to do about it.
#[allow(missing_docs)] // reached from outside only through `internals`
#[derive(Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// Run by hand, or by something that is not a plugin host.
    NotLaunchedByHost(&'static Cookie),
    /// The server launched it as the other kind of plugin (probing its type, or registered
    /// with the wrong one).
    LaunchedAsOtherKind(&'static Cookie),
    /// The cookie is present with another value.
    WrongCookie(&'static Cookie),
    /// `PLUGIN_PROTOCOL_VERSIONS` is missing, empty or not a list of numbers.
    BadProtocolVersions(String),
    /// None of the offered versions is one we serve.
    NoCommonVersion { offered: Vec<u32>, served: Vec<u32> },
    /// Protocol 5 needs the server's certificate for automatic mutual TLS.
    MissingClientCert,
    /// A legacy launch without any way to secure the connection.
    NoTlsMaterial,
    /// `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT` are not a usable range.
    BadPortRange(String),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLaunchedByHost(cookie) => write!(
                f,
                "This binary is a plugin. These are not meant to be executed directly. Please \
                 register it in the plugin catalog of Vault or OpenBao (`bao plugin register` / \
                 `vault plugin register`) and let the server launch it ({} is not set).",
                cookie.key
            ),
            Self::LaunchedAsOtherKind(cookie) => f.write_str(cookie.other_kind),
            Self::WrongCookie(cookie) => write!(
                f,
                "{} has an unexpected value: this binary is a {} for Vault or OpenBao and must \
                 be launched by one of them.",
                cookie.key, cookie.what
            ),
            Self::BadProtocolVersions(value) => write!(
                f,
                "PLUGIN_PROTOCOL_VERSIONS is {value:?}, not a comma-separated list of protocol \
                 versions; the plugin host sets it when it launches the plugin."
            ),
            Self::NoCommonVersion { offered, served }
                if offered.contains(&5) && !served.contains(&5) =>
            {
                write!(
                    f,
                    "declining plugin protocol 5 as registered (--no-protocol-5): the server \
                     falls back to the legacy protocol (versions {served:?}) next"
                )
            }
            Self::NoCommonVersion { offered, served }
                if served.contains(&6) && offered.iter().all(|&v| v < 5) =>
            {
                write!(
                    f,
                    "the server offers plugin protocol version(s) {offered:?}, the legacy database \
                     plugin protocol; this plugin serves database plugin protocol v5 (plugin \
                     protocols {served:?}), which OpenBao and Vault 1.6 and later support"
                )
            }
            Self::NoCommonVersion { offered, served } => write!(
                f,
                "the server offers plugin protocol version(s) {offered:?}, but this plugin \
                 serves {served:?}; use a server that speaks one of these (OpenBao, or Vault \
                 1.12 and later, for protocol 5)"
            ),
            Self::MissingClientCert => write!(
                f,
                "PLUGIN_CLIENT_CERT is not set: protocol 5 needs the server's certificate for \
                 automatic mutual TLS. Make sure the server does not disable AutoMTLS."
            ),
            Self::NoTlsMaterial => write!(
                f,
                "the server started the plugin on the legacy protocol without AutoMTLS \
                 (PLUGIN_CLIENT_CERT), metadata mode (BAO_PLUGIN_METADATA_MODE) or an unwrap \
                 token (BAO_UNWRAP_TOKEN), so the connection cannot be secured; set api_addr \
                 in the server's configuration so it can issue the unwrap token."
            ),
            Self::BadPortRange(detail) => write!(
                f,
                "PLUGIN_MIN_PORT/PLUGIN_MAX_PORT are not a usable port range ({detail})"
            ),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// How to listen for the server's connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transport {
    /// A unix socket in a fresh private directory (go-plugin's default on unix).
    #[default]
    Unix,
    /// TCP on 127.0.0.1, in the host's allowed port range.
    Tcp,
}

/// What the server told us through the environment.
#[allow(missing_docs)] // reached from outside only through `internals`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginEnv {
    /// Offered application protocol versions, in the order given.
    pub protocol_versions: Vec<u32>,
    /// The server's AutoMTLS certificate (PEM), when AutoMTLS is on.
    pub client_cert_pem: Option<String>,
    /// The port range for a TCP listener.
    pub min_port: u16,
    pub max_port: u16,
    /// Where to create the socket directory (`PLUGIN_UNIX_SOCKET_DIR`), else the temp dir.
    pub unix_socket_dir: Option<PathBuf>,
    /// Vault's containerised runner asks for a 7th handshake field.
    pub multiplex_grpc: bool,
    /// The server's version (`BAO_VERSION`, else `VAULT_VERSION`), for logs.
    pub server_version: Option<String>,
    /// `*_PLUGIN_AUTOMTLS_ENABLED=true`: the server does automatic mutual TLS.
    pub automtls: bool,
    /// `*_PLUGIN_METADATA_MODE=true`: a legacy launch that only reads the plugin's metadata,
    /// over plain gRPC, with no storage behind it.
    pub metadata_mode: bool,
    /// `*_UNWRAP_TOKEN`: a legacy launch whose TLS material must be unwrapped from the server.
    pub unwrap_token: Option<String>,
    /// `BAO_SKIP_VERIFY` or `VAULT_SKIP_VERIFY`, whichever is read, when it turns off the
    /// verification of the server's API certificate (the Go API client honours it, and the
    /// plugin inherits it from the server's environment): named in the warning it earns.
    pub skip_verify_var: Option<String>,
}

/// Reads an SDK variable as OpenBao's SDK does: `BAO_X` first (even when empty), else `VAULT_X`.
pub(crate) fn read_sdk_var(get: &impl Fn(&str) -> Option<String>, suffix: &str) -> Option<String> {
    sdk_var_name(get, suffix).and_then(|name| get(&name))
}

/// The name [`read_sdk_var`] reads `suffix` from, if either is set.
pub(crate) fn sdk_var_name(get: &impl Fn(&str) -> Option<String>, suffix: &str) -> Option<String> {
    [format!("BAO_{suffix}"), format!("VAULT_{suffix}")]
        .into_iter()
        .find(|name| get(name).is_some())
}

impl PluginEnv {
    /// Reads a backend plugin's environment through `get`, so tests can pass a map instead of
    /// the process's.
    #[cfg(any(test, feature = "__internals"))]
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, HandshakeError> {
        Self::from_lookup_for(&BACKEND_COOKIE, get)
    }

    /// Reads the environment of a plugin whose kind `cookie` proves, through `get`.
    pub fn from_lookup_for(
        cookie: &'static Cookie,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, HandshakeError> {
        match get(cookie.key) {
            Some(value) if value == cookie.value => {}
            Some(_) => return Err(HandshakeError::WrongCookie(cookie)),
            None if get(cookie.other_key).is_some() => {
                return Err(HandshakeError::LaunchedAsOtherKind(cookie));
            }
            None => return Err(HandshakeError::NotLaunchedByHost(cookie)),
        }

        let versions = get("PLUGIN_PROTOCOL_VERSIONS").unwrap_or_default();
        let protocol_versions = parse_versions(&versions)
            .ok_or_else(|| HandshakeError::BadProtocolVersions(versions.clone()))?;

        let port = |name: &str, default: u16| -> Result<u16, HandshakeError> {
            match get(name).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| HandshakeError::BadPortRange(format!("{name}={v:?}"))),
            }
        };
        let min_port = port("PLUGIN_MIN_PORT", 10000)?;
        let max_port = port("PLUGIN_MAX_PORT", 25000)?;
        if min_port > max_port || min_port == 0 {
            return Err(HandshakeError::BadPortRange(format!(
                "{min_port}..{max_port}"
            )));
        }

        Ok(Self {
            protocol_versions,
            client_cert_pem: get("PLUGIN_CLIENT_CERT").filter(|v| !v.is_empty()),
            min_port,
            max_port,
            unix_socket_dir: get("PLUGIN_UNIX_SOCKET_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            multiplex_grpc: get("PLUGIN_MULTIPLEX_GRPC").is_some_and(|v| !v.is_empty()),
            server_version: read_sdk_var(&get, "VERSION").filter(|v| !v.is_empty()),
            automtls: read_sdk_var(&get, "PLUGIN_AUTOMTLS_ENABLED").as_deref() == Some("true"),
            metadata_mode: read_sdk_var(&get, "PLUGIN_METADATA_MODE").as_deref() == Some("true"),
            unwrap_token: read_sdk_var(&get, "UNWRAP_TOKEN").filter(|v| !v.is_empty()),
            skip_verify_var: sdk_var_name(&get, "SKIP_VERIFY")
                .filter(|name| get(name).is_some_and(|value| is_go_true(&value))),
        })
    }

    /// Reads the process's environment, for a plugin whose kind `cookie` proves.
    pub fn from_process(cookie: &'static Cookie) -> Result<Self, HandshakeError> {
        Self::from_lookup_for(cookie, |name| std::env::var(name).ok())
    }
}

/// Parses `5` or `3,4`: a non-empty comma list of version numbers.
fn parse_versions(value: &str) -> Option<Vec<u32>> {
    let versions: Option<Vec<u32>> = value
        .split(',')
        .map(|v| v.trim().parse::<u32>().ok())
        .collect();
    versions.filter(|v| !v.is_empty())
}

/// Picks the highest version we serve that the server offered.
pub fn negotiate(offered: &[u32], supported: &[u32]) -> Result<u32, HandshakeError> {
    supported
        .iter()
        .copied()
        .filter(|v| offered.contains(v))
        .max()
        .ok_or_else(|| HandshakeError::NoCommonVersion {
            offered: offered.to_vec(),
            served: supported.to_vec(),
        })
}

/// Where the plugin listens, as the handshake line announces it.
// Reached from outside only through `internals`, for the crate's own tests.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl ListenAddr {
    /// The network (`unix` or `tcp`) and the address, as Go's `net.Addr` names them.
    pub(crate) fn network_and_address(&self) -> (&'static str, String) {
        match self {
            Self::Unix(path) => ("unix", path.display().to_string()),
            Self::Tcp(socket) => ("tcp", socket.to_string()),
        }
    }
}

/// The handshake line, without its newline:
/// `CORE|APP|NETWORK|ADDRESS|grpc|CERT` with the certificate as unpadded standard base64 DER.
/// The certificate field stays empty when the server did not ask for AutoMTLS: a certificate
/// on a non-AutoMTLS launch makes the server crash the request.
pub fn handshake_line(
    app_version: u32,
    addr: &ListenAddr,
    cert_der: Option<&[u8]>,
    multiplex_grpc: bool,
) -> String {
    let (network, address) = addr.network_and_address();
    let cert = cert_der
        .map(|der| STANDARD_NO_PAD.encode(der))
        .unwrap_or_default();
    let mut line = format!("{CORE_PROTOCOL_VERSION}|{app_version}|{network}|{address}|grpc|{cert}");
    if multiplex_grpc {
        line.push_str("|true");
    }
    line
}

/// Whether Go's `strconv.ParseBool` reads `value` as true, as Go reads the server's boolean
/// variables (`VAULT_SKIP_VERIFY`, the metadata mode).
pub(crate) fn is_go_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

#[cfg(test)]
mod tests;
