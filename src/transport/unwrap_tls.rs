//! The legacy TLS bootstrap (protocols 3 and 4 without AutoMTLS): the server wraps a
//! certificate and key in a response-wrapping token, passes the token in `*_UNWRAP_TOKEN`, and
//! the plugin unwraps it through the server's HTTP API at the token's `addr` claim
//! (`PUT /v1/sys/wrapping/unwrap`). Both sides then use that one certificate: the plugin as its
//! server certificate, the server as its client certificate, each pinning it.
//!
//! The API connection honours the Go plugin's API client flags (`-ca-cert`, `-ca-path`,
//! `-client-cert`, `-client-key`, `-tls-server-name`, `-tls-skip-verify`), falling back to the
//! `BAO_*`/`VAULT_*` variables the Go API client reads, then to the system's CA bundle.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls::client::WantsClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivateSec1KeyDer, ServerName};
use rustls::{ClientConfig, ConfigBuilder, RootCertStore};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::handshake::{is_go_true, read_sdk_var};
use crate::transport::io::Io;
use crate::transport::tls::{self, Identity};

/// How long the whole unwrap may take.
pub(crate) const UNWRAP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the system keeps its CA bundle, as Go looks for it on Linux.
const SYSTEM_CA_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

/// The Go plugin's API client flags (`api.PluginAPIClientMeta`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiClientFlags {
    pub ca_cert: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    pub tls_skip_verify: bool,
}

impl ApiClientFlags {
    /// Fills what the flags left out from the environment, as the Go API client does.
    pub fn with_env_fallbacks(mut self, get: impl Fn(&str) -> Option<String>) -> Self {
        let path = |suffix: &str| read_sdk_var(&get, suffix).filter(|v| !v.is_empty());
        self.ca_cert = self.ca_cert.or_else(|| path("CACERT").map(PathBuf::from));
        self.ca_path = self.ca_path.or_else(|| path("CAPATH").map(PathBuf::from));
        self.client_cert = self
            .client_cert
            .or_else(|| path("CLIENT_CERT").map(PathBuf::from));
        self.client_key = self
            .client_key
            .or_else(|| path("CLIENT_KEY").map(PathBuf::from));
        self.tls_server_name = self.tls_server_name.or_else(|| path("TLS_SERVER_NAME"));
        if !self.tls_skip_verify {
            self.tls_skip_verify = path("SKIP_VERIFY").is_some_and(|v| is_go_true(&v));
        }
        self
    }
}

/// Why the bootstrap failed. Every message says what to check.
#[derive(Debug)]
pub(crate) enum UnwrapError {
    /// The token is not a JWT with an `addr` claim.
    BadToken(String),
    /// The `addr` claim is empty: the server has no `api_addr`.
    NoApiAddr,
    /// The `addr` claim is not an `http(s)://host[:port]` address.
    BadApiAddr(String),
    /// A CA, certificate or key file could not be used.
    TlsFiles(String),
    /// The server could not be reached.
    Connect {
        addr: String,
        source: std::io::Error,
    },
    /// The TLS handshake with the server failed.
    Tls {
        addr: String,
        source: std::io::Error,
    },
    /// The server refused the unwrap.
    Refused { status: u16, errors: String },
    /// The answer was not the wrapped certificate and key.
    BadResponse(String),
    /// It took too long.
    Timeout { addr: String },
}

impl fmt::Display for UnwrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadToken(detail) => write!(f, "error parsing wrapping token: {detail}"),
            Self::NoApiAddr => write!(
                f,
                "no vault api_addr found: the wrapping token's addr claim is empty; set \
                 api_addr in the server's configuration"
            ),
            Self::BadApiAddr(addr) => write!(
                f,
                "error parsing the vault api_addr {addr:?}: expected http(s)://host[:port]"
            ),
            Self::TlsFiles(detail) => write!(f, "error configuring api client: {detail}"),
            Self::Connect { addr, source } => write!(
                f,
                "error during token unwrap request: cannot reach the server at {addr} \
                 ({source}); check that api_addr is reachable from the plugin"
            ),
            Self::Tls { addr, source } => write!(
                f,
                "error during token unwrap request: TLS with {addr} failed ({source}); pass the \
                 server's CA with -ca-cert or -ca-path in the plugin's args (or \
                 -tls-skip-verify for testing)"
            ),
            Self::Refused { status, errors } => write!(
                f,
                "error during token unwrap request: the server answered {status}: {errors}"
            ),
            Self::BadResponse(detail) => {
                write!(f, "error during token unwrap request: {detail}")
            }
            Self::Timeout { addr } => write!(
                f,
                "error during token unwrap request: {addr} did not answer within {}s",
                UNWRAP_TIMEOUT.as_secs()
            ),
        }
    }
}

/// The operator reads one line and the fix follows the cause, so the text includes the cause;
/// [`crate::report::report`] skips a cause already in the line.
impl std::error::Error for UnwrapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect { source, .. } | Self::Tls { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The `addr` claim of a wrapping token, read without verifying the token (as the Go SDK does:
/// the server verifies it when it is unwrapped).
pub(crate) fn token_api_addr(token: &str) -> Result<String, UnwrapError> {
    let bad = |detail: &str| UnwrapError::BadToken(detail.to_owned());
    let mut parts = token.trim().split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a compact JWT (three dot-separated parts)"));
    };
    let header = URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| bad("the header is not base64url"))?;
    let header: Value =
        serde_json::from_slice(&header).map_err(|_| bad("the header is not JSON"))?;
    if header["alg"] != "ES512" {
        return Err(bad("unexpected signature algorithm (want ES512)"));
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("the claims are not base64url"))?;
    let claims: Value =
        serde_json::from_slice(&payload).map_err(|_| bad("the claims are not JSON"))?;
    match claims.get("addr") {
        None => Err(UnwrapError::BadToken(
            "could not validate addr claim".into(),
        )),
        Some(Value::String(addr)) if addr.is_empty() => Err(UnwrapError::NoApiAddr),
        Some(Value::String(addr)) => Ok(addr.clone()),
        Some(_) => Err(UnwrapError::BadToken("could not parse addr claim".into())),
    }
}

/// An `http(s)://host[:port]` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiAddr {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl ApiAddr {
    pub(crate) fn parse(addr: &str) -> Result<Self, UnwrapError> {
        let bad = || UnwrapError::BadApiAddr(addr.to_owned());
        let (tls, rest) = if let Some(rest) = addr.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = addr.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad());
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        let port = match port {
            Some(port) => port.parse().map_err(|_| bad())?,
            None if tls => 443,
            None => 80,
        };
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
        })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Unwraps `token` at its server and returns the certificate and key to serve with.
/// `skip_verify_setting` names what turned verification off, should `flags` say it is off.
pub(crate) async fn unwrap_identity(
    token: &str,
    flags: &ApiClientFlags,
    skip_verify_setting: &str,
) -> Result<Identity, UnwrapError> {
    let addr_text = token_api_addr(token)?;
    let addr = ApiAddr::parse(&addr_text)?;
    // Go's plugins do the same without a word; the behaviour stays, but it is said once.
    let tls = if addr.tls {
        if flags.tls_skip_verify {
            tracing::warn!(
                "the server's API certificate at {addr_text} is not verified \
                 ({skip_verify_setting}): the plugin's TLS private key could come from an \
                 impostor; pass the server's CA with -ca-cert or -ca-path instead"
            );
        }
        Some(api_tls_config(flags)?)
    } else {
        tracing::warn!(
            "the server's api_addr {addr_text} is plain HTTP: the wrapping token goes out and \
             the plugin's TLS private key comes back in clear text; set api_addr to an \
             https:// address"
        );
        None
    };
    let body = tokio::time::timeout(UNWRAP_TIMEOUT, unwrap_request(&addr, tls, flags, token))
        .await
        .map_err(|_| UnwrapError::Timeout {
            addr: addr_text.clone(),
        })??;
    identity_from_unwrapped(&body)
}

/// The certificate and key from the unwrapped secret's `ServerCert` and `ServerKey` (standard
/// base64 of DER; the key is a SEC1 EC key).
pub(crate) fn identity_from_unwrapped(body: &Value) -> Result<Identity, UnwrapError> {
    let field = |name: &str| -> Result<Vec<u8>, UnwrapError> {
        let text = body["data"][name].as_str().ok_or_else(|| {
            UnwrapError::BadResponse(format!("the unwrapped secret has no {name}"))
        })?;
        STANDARD
            .decode(text)
            .map_err(|_| UnwrapError::BadResponse(format!("{name} is not base64")))
    };
    let cert = field("ServerCert")?;
    let key = field("ServerKey")?;
    Identity::from_der(
        CertificateDer::from(cert),
        PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(key)),
    )
    .map_err(|e| UnwrapError::BadResponse(e.to_string()))
}

/// `PUT /v1/sys/wrapping/unwrap` over HTTP/1.0 (so the Go server closes the connection after
/// the answer and never uses chunked encoding), returning the JSON body.
async fn unwrap_request(
    addr: &ApiAddr,
    tls: Option<Arc<ClientConfig>>,
    flags: &ApiClientFlags,
    token: &str,
) -> Result<Value, UnwrapError> {
    let shown = format!(
        "{}://{}",
        if addr.tls { "https" } else { "http" },
        addr.authority()
    );
    let socket = TcpStream::connect((addr.host.as_str(), addr.port))
        .await
        .map_err(|source| UnwrapError::Connect {
            addr: shown.clone(),
            source,
        })?;
    let mut stream: Box<dyn Io> = match tls {
        None => Box::new(socket),
        Some(config) => {
            let name = flags
                .tls_server_name
                .clone()
                .unwrap_or_else(|| addr.host.clone());
            let name = ServerName::try_from(name).map_err(|e| UnwrapError::Tls {
                addr: shown.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
            })?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, socket)
                .await
                .map_err(|source| UnwrapError::Tls {
                    addr: shown.clone(),
                    source,
                })?;
            Box::new(stream)
        }
    };
    let request = format!(
        "PUT /v1/sys/wrapping/unwrap HTTP/1.0\r\nHost: {}\r\nX-Vault-Token: {token}\r\n\
         X-Vault-Request: true\r\nContent-Length: 0\r\n\r\n",
        addr.authority()
    );
    let io_error = |source: std::io::Error| UnwrapError::Connect {
        addr: shown.clone(),
        source,
    };
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io_error)?;
    let mut response = Vec::new();
    // The answer is a certificate and a key: a few kilobytes. Bound it all the same.
    (&mut stream)
        .take(1 << 20)
        .read_to_end(&mut response)
        .await
        .map_err(io_error)?;
    parse_http_response(&response)
}

/// The JSON body of an HTTP/1.x answer, or the server's errors.
fn parse_http_response(response: &[u8]) -> Result<Value, UnwrapError> {
    let bad = |detail: &str| UnwrapError::BadResponse(detail.to_owned());
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("the answer is not HTTP"))?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("the answer has no HTTP status"))?;
    let body: Value = serde_json::from_slice(&response[split + 4..]).unwrap_or(Value::Null);
    if status != 200 {
        let errors = match &body["errors"] {
            Value::Array(errors) => errors
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; "),
            _ => String::from_utf8_lossy(&response[split + 4..])
                .trim()
                .to_owned(),
        };
        return Err(UnwrapError::Refused { status, errors });
    }
    if body.is_null() {
        return Err(bad("secret is nil"));
    }
    Ok(body)
}

/// The TLS client for the server's API, from the flags.
fn api_tls_config(flags: &ApiClientFlags) -> Result<Arc<ClientConfig>, UnwrapError> {
    let provider = tls::provider();
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UnwrapError::TlsFiles(e.to_string()))?;
    let builder = if flags.tls_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(tls::any_server_certificate())
    } else {
        builder.with_root_certificates(api_roots(flags)?)
    };
    Ok(Arc::new(with_client_identity(builder, flags)?))
}

/// A failure to use one of the TLS files, naming the file.
fn file_error(path: &Path, e: &dyn fmt::Display) -> UnwrapError {
    UnwrapError::TlsFiles(format!("{}: {e}", path.display()))
}

/// The CA certificates to verify the server with: those the flags name, else the system's.
fn api_roots(flags: &ApiClientFlags) -> Result<RootCertStore, UnwrapError> {
    let (sources, explicit) = ca_sources(flags)?;
    let mut roots = RootCertStore::empty();
    for source in &sources {
        for cert in CertificateDer::pem_file_iter(source).map_err(|e| file_error(source, &e))? {
            let cert = cert.map_err(|e| file_error(source, &e))?;
            // A CA directory may hold files that are not CA certificates; skip those.
            if roots.add(cert).is_err() && explicit && flags.ca_path.is_none() {
                return Err(file_error(source, &"not a usable CA certificate"));
            }
        }
    }
    if roots.is_empty() {
        return Err(UnwrapError::TlsFiles(
            "no CA certificate to verify the server with: pass -ca-cert or -ca-path in the \
             plugin's args"
                .to_owned(),
        ));
    }
    Ok(roots)
}

/// The files to read CA certificates from, and whether the flags named them: `-ca-cert` and
/// the files in `-ca-path`, or when those name none, the first of the system's bundles.
fn ca_sources(flags: &ApiClientFlags) -> Result<(Vec<PathBuf>, bool), UnwrapError> {
    let mut sources: Vec<PathBuf> = Vec::new();
    if let Some(file) = &flags.ca_cert {
        sources.push(file.clone());
    }
    if let Some(dir) = &flags.ca_path {
        let entries = std::fs::read_dir(dir).map_err(|e| file_error(dir, &e))?;
        sources.extend(
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|p| p.is_file()),
        );
    }
    let explicit = !sources.is_empty();
    if !explicit {
        sources.extend(
            SYSTEM_CA_FILES
                .iter()
                .map(PathBuf::from)
                .filter(|p| p.is_file()),
        );
        sources.truncate(1);
    }
    Ok((sources, explicit))
}

/// The config with the client certificate and key of `-client-cert` and `-client-key`, which
/// come together or not at all.
fn with_client_identity(
    builder: ConfigBuilder<ClientConfig, WantsClientCert>,
    flags: &ApiClientFlags,
) -> Result<ClientConfig, UnwrapError> {
    match (&flags.client_cert, &flags.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| file_error(cert, &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| file_error(cert, &e))?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, &e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| UnwrapError::TlsFiles(e.to_string()))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(UnwrapError::TlsFiles(
            "-client-cert and -client-key must be given together".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests;
