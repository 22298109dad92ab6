//! A test host: plays the OpenBao server (the go-plugin *client*) against the real plugin
//! binary, in process and without OpenBao, so protocol tests are fast and deterministic.
//!
//! It does what the server does (spec §1–§6): launches the binary with the server's
//! environment, reads the handshake line, dials the plugin over mutual TLS with a go-plugin
//! style certificate, keeps `GRPCBroker/StartStream` and `GRPCStdio/StreamStdio` open, and for
//! every `Setup` serves `pb.Storage` and `pb.SystemView` on a brokered unix socket of its own.
//! Knobs let tests misbehave the way a server (or an attacker) might.
//!
//! The peer side shares no broker code with the crate under test; of its TLS, only the
//! pinning verifier (see [`client_tls`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hyper_util::rt::TokioIo;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint, Server, Uri};
use tonic::{Response, Status};
use tonic_health::pb::health_client::HealthClient;
use vault_plugin_sdk::internals;
use vault_plugin_sdk::proto::logical::plugin_version_client::PluginVersionClient;
use vault_plugin_sdk::proto::pb::backend_client::BackendClient;
use vault_plugin_sdk::proto::pb::storage_server::{Storage, StorageServer};
use vault_plugin_sdk::proto::pb::system_view_server::{SystemView, SystemViewServer};
use vault_plugin_sdk::proto::plugin::grpc_broker_client::GrpcBrokerClient;
use vault_plugin_sdk::proto::plugin::grpc_controller_client::GrpcControllerClient;
use vault_plugin_sdk::proto::plugin::grpc_stdio_client::GrpcStdioClient;
use vault_plugin_sdk::proto::pluginutil::multiplexing::MultiplexingSupportRequest;
use vault_plugin_sdk::proto::pluginutil::multiplexing::plugin_multiplexing_client::PluginMultiplexingClient;
use vault_plugin_sdk::proto::{logical, pb, plugin};

/// The backend-plugin magic cookie (go-plugin handshake config, same name in OpenBao).
pub const MAGIC_COOKIE_KEY: &str = "VAULT_BACKEND_PLUGIN";
pub const MAGIC_COOKIE_VALUE: &str = "6669da05-b1c8-4f49-97d9-c8e5bed98e20";
/// The metadata key naming the mount on every `pb.Backend` and Version call.
pub const MULTIPLEX_ID: &str = "multiplex_id";
/// The text the server's storage answers `Put` with while a mount is being set up.
pub const SETUP_READ_ONLY: &str = "cannot write to storage during setup";

/// Bound for the handshake line (the real server waits a minute; a healthy plugin needs ms).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound for any one RPC, so a wedged plugin fails a test instead of hanging it.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the host waits for a stream's response headers before it lets the call go on.
const STREAM_HEADERS_WAIT: Duration = Duration::from_secs(2);
/// Bound for a process to exit once it has every reason to.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The server's default lease TTL (32 days), answered by the brokered SystemView.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(32 * 24 * 3600);

// ---------------------------------------------------------------------------------------------
// Certificates and TLS

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server's AutoMTLS certificate and key, made as go-plugin's `generateCert` does.
pub struct HostCert {
    pub der: CertificateDer<'static>,
    /// What goes into `PLUGIN_CLIENT_CERT`.
    pub pem: String,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Clone for HostCert {
    fn clone(&self) -> Self {
        Self {
            der: self.der.clone(),
            pem: self.pem.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for HostCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCert").finish_non_exhaustive()
    }
}

impl HostCert {
    /// ECDSA P-521, self-signed, `O=HashiCorp, CN=localhost`, SAN `localhost`, CA:TRUE used as
    /// an end entity, both EKUs, valid from 30 s ago for 30 years, random 128-bit serial: the
    /// shape webpki refuses, which is why the plugin must pin instead of verifying a chain.
    pub fn generate() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)
            .expect("generate a P-521 key");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("certificate parameters for localhost");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "HashiCorp");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
            rcgen::KeyUsagePurpose::KeyAgreement,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        ];
        params.serial_number = Some(random_serial());
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(30)).into();
        params.not_after = (now + Duration::from_secs(30 * 365 * 24 * 3600)).into();
        let cert = params
            .self_signed(&key)
            .expect("self-sign the host certificate");
        Self {
            der: cert.der().clone(),
            pem: cert.pem(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}

fn random_serial() -> rcgen::SerialNumber {
    let mut bytes = [0u8; 16];
    provider()
        .secure_random
        .fill(&mut bytes)
        .expect("random bytes for a serial number");
    // Keep it positive: DER integers are signed.
    bytes[0] &= 0x7f;
    rcgen::SerialNumber::from_slice(&bytes)
}

/// The TLS client for dialing the plugin: presents `client_cert` (none if `None`), trusts only
/// `pinned`, and asks for ALPN `h2` if `alpn`. The real server uses (Some(own cert), the
/// handshake's cert, true). The pinning verifier is the SDK's own: a verifier that accepted
/// any certificate would still fail the tests in which the plugin, with the same verifier,
/// must refuse an impostor.
pub fn client_tls(
    client_cert: Option<&HostCert>,
    pinned: &CertificateDer<'static>,
    alpn: bool,
) -> Arc<ClientConfig> {
    // The SDK makes its client only with a certificate to present; without one, it is made
    // with a throwaway that the resolver below never presents.
    let presented = client_cert.cloned().unwrap_or_else(HostCert::generate);
    let mut config = Arc::unwrap_or_clone(
        internals::pinned_client_config(
            presented.der.clone(),
            presented.key.clone_key().into(),
            pinned.clone(),
        )
        .expect("the SDK's TLS client with a usable certificate"),
    );
    if client_cert.is_none() {
        config.client_auth_cert_resolver = Arc::new(NoClientCert);
    }
    if !alpn {
        config.alpn_protocols.clear();
    }
    Arc::new(config)
}

/// Answers a server's request for a client certificate with none.
#[derive(Debug)]
struct NoClientCert;

impl ResolvesClientCert for NoClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// The TLS server of a brokered listener: our certificate, a client certificate required and
/// pinned to the plugin's, ALPN `h2` (grpc-go's settings), from the SDK.
pub fn server_tls(host: &HostCert, plugin: &CertificateDer<'static>) -> Arc<ServerConfig> {
    internals::pinned_server_config(
        host.der.clone(),
        host.key.clone_key().into(),
        plugin.clone(),
    )
    .expect("the SDK's TLS server with a usable certificate")
}

// ---------------------------------------------------------------------------------------------
// Temporary directories

/// A fresh directory, removed with its contents when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        // Short names: unix socket paths inside must stay under 108 bytes.
        let path = std::env::temp_dir().join(format!(
            "vmp-{label}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// The plugin process

/// How to launch the plugin: the environment OpenBao 2.7 gives a v5 backend plugin (§1.2),
/// with every variable open to change.
pub struct Launch {
    env: BTreeMap<String, String>,
    args: Vec<String>,
    tmpdir: TempDir,
    /// Another plugin binary than cargo's (the benchmark launches the Go mock).
    program: Option<PathBuf>,
}

impl Launch {
    pub fn new(cert: &HostCert) -> Self {
        let tmpdir = TempDir::new("tmp");
        let mut env: BTreeMap<String, String> = [
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "5"),
            ("PLUGIN_MIN_PORT", "10000"),
            ("PLUGIN_MAX_PORT", "25000"),
            ("BAO_PLUGIN_AUTOMTLS_ENABLED", "true"),
            ("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true"),
            ("BAO_PLUGIN_METADATA_MODE", "false"),
            ("VAULT_PLUGIN_METADATA_MODE", "false"),
            ("BAO_VERSION", "2.7.2"),
            ("VAULT_VERSION", "2.7.2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.insert("PLUGIN_CLIENT_CERT".to_owned(), cert.pem.clone());
        env.insert("TMPDIR".to_owned(), tmpdir.path().display().to_string());
        if let Ok(path) = std::env::var("PATH") {
            env.insert("PATH".to_owned(), path);
        }
        Self {
            env,
            args: Vec::new(),
            tmpdir,
            program: None,
        }
    }

    /// Launches `program` instead of cargo's build of the plugin (the same protocol from
    /// another implementation, e.g. the Go mock from `make peers`).
    pub fn program(mut self, program: &Path) -> Self {
        self.program = Some(program.to_owned());
        self
    }

    /// Sets (or replaces) an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Removes an environment variable.
    pub fn remove(mut self, key: &str) -> Self {
        self.env.remove(key);
        self
    }

    /// Adds a command-line argument (catalog `args`).
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    pub fn spawn(self) -> Plugin {
        let program = self.program.unwrap_or_else(crate::common::plugin_bin);
        let mut child = Command::new(program)
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the plugin binary");
        let stdout = capture("plugin-stdout", child.stdout.take().expect("piped stdout"));
        let stderr = capture("plugin-stderr", child.stderr.take().expect("piped stderr"));
        Plugin {
            child,
            stdout,
            stderr,
            tmpdir: self.tmpdir,
        }
    }
}

/// Everything one pipe carried so far. Lines keep their `\n` (the handshake must end with one).
#[derive(Clone, Debug, Default)]
pub struct Captured {
    pub lines: Vec<String>,
    /// The pipe reached end of file: the process (and anything it forked) closed it.
    pub closed: bool,
}

/// Reads `pipe` on a thread, so the process never blocks on a full pipe and tests can wait for
/// lines with a deadline.
fn capture(name: &str, pipe: impl Read + Send + 'static) -> watch::Receiver<Captured> {
    let (sender, receiver) = watch::channel(Captured::default());
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line).into_owned();
                        sender.send_modify(|c| c.lines.push(text));
                    }
                }
            }
            sender.send_modify(|c| c.closed = true);
        })
        .expect("spawn a pipe reader thread");
    receiver
}

fn trimmed(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.trim_end_matches(['\n', '\r']).to_owned())
        .collect()
}

/// A running plugin process; killed and reaped when dropped.
pub struct Plugin {
    child: Child,
    stdout: watch::Receiver<Captured>,
    stderr: watch::Receiver<Captured>,
    tmpdir: TempDir,
}

impl Plugin {
    /// The `TMPDIR` it was given (where its socket directory goes).
    pub fn tmpdir(&self) -> &Path {
        self.tmpdir.path()
    }

    /// The first line on stdout, with its `\n` if it had one; `Err` if stdout closed first or
    /// nothing came in time.
    pub async fn first_stdout_line(&self, timeout: Duration) -> Result<String, String> {
        let mut stdout = self.stdout.clone();
        let waited = tokio::time::timeout(
            timeout,
            stdout.wait_for(|c| !c.lines.is_empty() || c.closed),
        )
        .await;
        match waited {
            Err(_) => Err(format!("no handshake line within {timeout:?}")),
            Ok(Err(_)) => Err("the stdout reader vanished".to_owned()),
            Ok(Ok(captured)) => captured
                .lines
                .first()
                .cloned()
                .ok_or_else(|| "stdout closed without a handshake line".to_owned()),
        }
    }

    /// Reads and parses the handshake line; panics with the plugin's stderr if it fails.
    pub async fn handshake(&self) -> Handshake {
        self.first_stdout_line(HANDSHAKE_TIMEOUT)
            .await
            .and_then(|line| Handshake::parse(&line))
            .unwrap_or_else(|e| panic!("handshake: {e}; stderr: {:#?}", self.stderr_lines()))
    }

    /// Stdout lines so far, without line ends.
    pub fn stdout_lines(&self) -> Vec<String> {
        trimmed(&self.stdout.borrow().lines)
    }

    /// Stderr lines so far, without line ends.
    pub fn stderr_lines(&self) -> Vec<String> {
        trimmed(&self.stderr.borrow().lines)
    }

    /// All stdout lines, once the pipe has closed (the process exited).
    pub async fn stdout_until_closed(&self, timeout: Duration) -> Vec<String> {
        Self::until_closed(&self.stdout, timeout, "stdout").await
    }

    /// The first stderr line that `matches`, waiting up to `timeout` for it; `None` if none
    /// came (the pipe closed or time ran out).
    pub async fn stderr_line(
        &self,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let find = |captured: &Captured| captured.lines.iter().find(|l| matches(l)).cloned();
        let mut waiter = self.stderr.clone();
        let found = waiter.wait_for(|c| c.closed || find(c).is_some());
        match tokio::time::timeout(timeout, found).await {
            Ok(Ok(captured)) => find(&captured).map(|l| l.trim_end().to_owned()),
            _ => None,
        }
    }

    /// All stderr lines, once the pipe has closed (the process exited).
    pub async fn stderr_until_closed(&self, timeout: Duration) -> Vec<String> {
        Self::until_closed(&self.stderr, timeout, "stderr").await
    }

    async fn until_closed(
        pipe: &watch::Receiver<Captured>,
        timeout: Duration,
        name: &str,
    ) -> Vec<String> {
        let mut waiter = pipe.clone();
        let closed = tokio::time::timeout(timeout, waiter.wait_for(|c| c.closed))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|captured| trimmed(&captured.lines));
        closed.unwrap_or_else(|| {
            panic!(
                "{name} still open after {timeout:?}: {:#?}",
                trimmed(&pipe.borrow().lines)
            )
        })
    }

    /// Waits up to `timeout` for the process to exit, polling (a child has no async wait in
    /// std, and a waiter thread would own the child we may still have to kill).
    pub async fn try_wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the plugin process") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Like [`Self::try_wait_exit`], but a plugin still running after `timeout` fails the test.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.try_wait_exit(timeout).await {
            Some(status) => status,
            None => panic!(
                "the plugin still runs after {timeout:?}; stderr: {:#?}",
                self.stderr_lines()
            ),
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The parsed handshake line `1|5|unix|<socket>|grpc|<cert>`.
#[derive(Clone, Debug)]
pub struct Handshake {
    pub address: PathBuf,
    /// The plugin's certificate (DER), decoded from the unpadded base64 field.
    pub cert: CertificateDer<'static>,
}

impl Handshake {
    /// Parses a line as the server would, but strictly: exactly what OpenBao 2.7 needs from a
    /// v5 unix-socket plugin, and nothing it would merely tolerate.
    pub fn parse(line: &str) -> Result<Self, String> {
        let body = line
            .strip_suffix('\n')
            .ok_or_else(|| format!("the handshake line does not end with a newline: {line:?}"))?;
        let fields: Vec<&str> = body.split('|').collect();
        let [core, app, network, address, protocol, cert] = fields[..] else {
            return Err(format!("expected 6 fields, got {}: {body:?}", fields.len()));
        };
        let expect = |what: &str, got: &str, want: &str| {
            if got == want {
                Ok(())
            } else {
                Err(format!("{what} is {got:?}, expected {want:?}: {body:?}"))
            }
        };
        expect("core protocol", core, "1")?;
        expect("app protocol", app, "5")?;
        expect("network", network, "unix")?;
        expect("protocol", protocol, "grpc")?;
        let address = PathBuf::from(address);
        if !address.is_absolute() {
            return Err(format!("the socket path is not absolute: {body:?}"));
        }
        let der = STANDARD_NO_PAD
            .decode(cert)
            .map_err(|e| format!("the certificate is not unpadded standard base64: {e}"))?;
        Ok(Self {
            address,
            cert: CertificateDer::from(der),
        })
    }

    /// The plugin's private socket directory.
    pub fn socket_dir(&self) -> PathBuf {
        self.address
            .parent()
            .expect("the socket path has a parent")
            .to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Dialing the plugin

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Duplicates of the sockets a channel uses, so a test can cut them as a dying host would.
type Sockets = Arc<Mutex<Vec<StdUnixStream>>>;

/// Opens a gRPC channel to the plugin's socket: over TLS with `tls`, in plain text without.
/// Fails if TLS fails on our side; a refusal by the plugin may only show on the first call.
pub async fn dial(
    socket: &Path,
    tls: Option<Arc<ClientConfig>>,
) -> Result<Channel, tonic::transport::Error> {
    dial_tracked(socket, tls, Sockets::default()).await
}

async fn dial_tracked(
    socket: &Path,
    tls: Option<Arc<ClientConfig>>,
    sockets: Sockets,
) -> Result<Channel, tonic::transport::Error> {
    let socket = socket.to_owned();
    let connector = tower::service_fn(move |_: Uri| {
        let (socket, tls, sockets) = (socket.clone(), tls.clone(), sockets.clone());
        async move {
            let stream = UnixStream::connect(&socket).await?.into_std()?;
            sockets
                .lock()
                .expect("the socket list is never poisoned")
                .push(stream.try_clone()?);
            let stream = UnixStream::from_std(stream)?;
            let Some(config) = tls else {
                return Ok::<_, io::Error>(TokioIo::new(Box::new(stream) as Box<dyn Io>));
            };
            let wants_h2 = !config.alpn_protocols.is_empty();
            let name = ServerName::try_from("localhost").expect("localhost is a DNS name");
            let stream = TlsConnector::from(config).connect(name, stream).await?;
            // grpc-go refuses a connection without the ALPN it asked for.
            if wants_h2 && stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(io::Error::other("the plugin did not select ALPN h2"));
            }
            Ok(TokioIo::new(Box::new(stream) as Box<dyn Io>))
        }
    });
    Endpoint::from_static("http://localhost")
        .connect_timeout(RPC_TIMEOUT)
        .timeout(RPC_TIMEOUT)
        .connect_with_connector(connector)
        .await
}

/// A call for mount `id`: `pb.Backend` and Version calls carry `multiplex_id` (§4.5).
pub fn for_mount<T>(id: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        MULTIPLEX_ID,
        id.parse().expect("a multiplex id is printable ASCII"),
    );
    request
}

/// A `pb.Request` as the server's router builds it.
pub fn wire_request(operation: &str, path: &str, data: &Value) -> pb::Request {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    pb::Request {
        id: format!("request-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        operation: operation.to_owned(),
        path: path.to_owned(),
        data: data.to_string(),
        mount_point: "mock/".to_owned(),
        mount_type: "mock-plugin".to_owned(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The host

/// When (and whether) the host announces a mount's brokered listener on `StartStream`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnInfo {
    /// Before calling Setup.
    BeforeSetup,
    /// Once Setup is under way (the other order the real server produces).
    AfterSetupStarted,
    /// Never: Setup has to give up.
    Never,
    /// At once, but for a socket nobody listens on.
    Refusing,
}

/// What the host passes to and behind `Setup`.
#[derive(Clone, Debug)]
pub struct SetupOptions {
    pub config: HashMap<String, String>,
    pub backend_uuid: String,
    pub conn_info: ConnInfo,
    pub storage: StorageMode,
}

impl SetupOptions {
    /// `secrets enable` (§6.2): plugin config, a UUID, storage read-only until Initialize.
    pub fn mount() -> Self {
        let config = [
            ("plugin_name", "mock-plugin"),
            ("plugin_type", "secret"),
            ("plugin_version", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self {
            config,
            backend_uuid: "0b1a2c3d-4e5f-6071-8293-a4b5c6d7e8f9".to_owned(),
            conn_info: ConnInfo::BeforeSetup,
            storage: StorageMode::ReadOnly(SETUP_READ_ONLY.to_owned()),
        }
    }

    /// `plugin register` (§6.1): empty config and UUID, no storage behind the broker.
    pub fn registration() -> Self {
        Self {
            config: HashMap::new(),
            backend_uuid: String::new(),
            conn_info: ConnInfo::BeforeSetup,
            storage: StorageMode::Unbound(
                "missing storage implementation: the plugin is only being registered".to_owned(),
            ),
        }
    }
}

/// One mount's side of the host.
#[derive(Clone, Debug)]
pub struct Mount {
    pub id: String,
    pub broker_id: u32,
    /// The storage served to it over the broker.
    pub storage: MemStorage,
}

/// The result of a Setup call and what the host prepared for it.
#[derive(Debug)]
pub struct Setup {
    pub reply: Result<pb::SetupReply, Status>,
    pub mount: Mount,
    pub elapsed: Duration,
}

/// How the plugin's `StreamStdio` stream ended.
#[derive(Debug)]
pub struct StdioEnd {
    /// Messages received before the end (the plugin writes nothing to stdout after the
    /// handshake, so there is nothing to forward).
    pub messages: usize,
    pub result: Result<(), Status>,
}

struct BrokerStream {
    announce: mpsc::Sender<plugin::ConnInfo>,
    _replies: AbortOnDrop,
}

/// The host, connected to a running plugin as the server is after a v5 launch.
pub struct Host {
    pub cert: HostCert,
    pub plugin: Plugin,
    pub handshake: Handshake,
    channel: Channel,
    sockets: Sockets,
    broker: Option<BrokerStream>,
    stdio: Option<(AbortOnDrop, oneshot::Receiver<StdioEnd>)>,
    next_broker_id: u32,
    brokered: Vec<BrokeredServer>,
    dir: TempDir,
}

impl Host {
    /// Launches the plugin with the server's environment and connects.
    pub async fn start() -> Self {
        Self::start_with(|launch| launch).await
    }

    /// Launches the plugin with a changed environment or arguments, and connects.
    pub async fn start_with(configure: impl FnOnce(Launch) -> Launch) -> Self {
        let cert = HostCert::generate();
        let plugin = configure(Launch::new(&cert)).spawn();
        let handshake = plugin.handshake().await;
        let sockets = Sockets::default();
        let tls = client_tls(Some(&cert), &handshake.cert, true);
        let channel = dial_tracked(&handshake.address, Some(tls), sockets.clone())
            .await
            .unwrap_or_else(|e| {
                panic!("dial the plugin: {e}; stderr: {:#?}", plugin.stderr_lines())
            });

        // As go-plugin does right after connecting: the broker stream, kept for the life of
        // the process, and the stdio stream. Each call runs in a task: grpc-go (the Go mock)
        // sends a stream's response headers only with its first message, so the host waits
        // for them at most `STREAM_HEADERS_WAIT` and then lets the call go on (ours answers
        // at once, so for it nothing changes: a refusal still fails here).
        let (announce, outbound) = mpsc::channel(16);
        let mut broker = GrpcBrokerClient::new(channel.clone());
        let (opened, broker_opened) = oneshot::channel();
        let replies = tokio::spawn(async move {
            match broker.start_stream(ReceiverStream::new(outbound)).await {
                Ok(replies) => {
                    let _ = opened.send(Ok(()));
                    let mut replies = replies.into_inner();
                    // What the plugin sends is dropped; the stream stays open until the host
                    // drops it.
                    while let Ok(Some(_)) = replies.message().await {}
                    std::future::pending::<()>().await;
                }
                Err(status) => {
                    let _ = opened.send(Err(status));
                }
            }
        });
        if let Ok(Ok(Err(status))) = tokio::time::timeout(STREAM_HEADERS_WAIT, broker_opened).await
        {
            panic!("open GRPCBroker/StartStream: {status:?}");
        }
        let mut stdio_client = GrpcStdioClient::new(channel.clone());
        let (ended, stdio_end) = oneshot::channel();
        let (opened, stdio_opened) = oneshot::channel();
        let drain = tokio::spawn(async move {
            let mut stdio = match stdio_client.stream_stdio(()).await {
                Ok(stdio) => {
                    let _ = opened.send(Ok(()));
                    stdio.into_inner()
                }
                Err(status) => {
                    let _ = opened.send(Err(status.clone()));
                    let _ = ended.send(StdioEnd {
                        messages: 0,
                        result: Err(status),
                    });
                    return;
                }
            };
            let mut messages = 0;
            let result = loop {
                match stdio.message().await {
                    Ok(Some(_)) => messages += 1,
                    Ok(None) => break Ok(()),
                    Err(status) => break Err(status),
                }
            };
            let _ = ended.send(StdioEnd { messages, result });
        });
        if let Ok(Ok(Err(status))) = tokio::time::timeout(STREAM_HEADERS_WAIT, stdio_opened).await {
            panic!("open GRPCStdio/StreamStdio: {status:?}");
        }

        Self {
            cert,
            plugin,
            handshake,
            channel,
            sockets,
            broker: Some(BrokerStream {
                announce,
                _replies: AbortOnDrop(replies),
            }),
            stdio: Some((AbortOnDrop(drain), stdio_end)),
            next_broker_id: 1,
            brokered: Vec::new(),
            dir: TempDir::new("host"),
        }
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// `pb.Backend`, with the server's unlimited message sizes.
    pub fn backend(&self) -> BackendClient<Channel> {
        BackendClient::new(self.channel())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    pub fn versions(&self) -> PluginVersionClient<Channel> {
        PluginVersionClient::new(self.channel())
    }

    pub fn multiplexing(&self) -> PluginMultiplexingClient<Channel> {
        PluginMultiplexingClient::new(self.channel())
    }

    pub fn controller(&self) -> GrpcControllerClient<Channel> {
        GrpcControllerClient::new(self.channel())
    }

    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel())
    }

    /// `PluginVersion/Version` for mount `id`.
    pub async fn version(&self, id: &str) -> Result<String, Status> {
        self.versions()
            .version(for_mount(id, logical::Empty {}))
            .await
            .map(|r| r.into_inner().plugin_version)
    }

    /// `PluginMultiplexing/MultiplexingSupport`, on the raw connection (no `multiplex_id`).
    pub async fn multiplexing_support(&self) -> Result<bool, Status> {
        self.multiplexing()
            .multiplexing_support(MultiplexingSupportRequest {})
            .await
            .map(|r| r.into_inner().supported)
    }

    /// Calls `Setup` for mount `id` with a fresh broker id, serving (or not) its storage.
    pub async fn setup(&mut self, id: &str, options: SetupOptions) -> Setup {
        let broker_id = self.next_broker_id;
        self.next_broker_id += 1;
        let storage = MemStorage::new(options.storage);
        let socket = self.dir.path().join(format!("broker-{broker_id}.sock"));
        match options.conn_info {
            ConnInfo::BeforeSetup | ConnInfo::AfterSetupStarted => {
                self.brokered.push(BrokeredServer::start(
                    &socket,
                    &self.cert,
                    &self.handshake.cert,
                    storage.clone(),
                ));
            }
            ConnInfo::Refusing => {
                // A socket file with no listener behind it: connect() gets ECONNREFUSED.
                drop(
                    std::os::unix::net::UnixListener::bind(&socket)
                        .expect("bind a socket to close"),
                );
            }
            ConnInfo::Never => {}
        }
        let info = plugin::ConnInfo {
            service_id: broker_id,
            network: "unix".to_owned(),
            address: socket.display().to_string(),
            knock: None,
        };
        let request = for_mount(
            id,
            pb::SetupArgs {
                broker_id,
                config: options.config,
                backend_uuid: options.backend_uuid,
            },
        );
        let mut backend = self.backend();
        let started = Instant::now();
        let reply = match options.conn_info {
            ConnInfo::Never => backend.setup(request).await,
            ConnInfo::BeforeSetup | ConnInfo::Refusing => {
                self.announce(info).await;
                backend.setup(request).await
            }
            ConnInfo::AfterSetupStarted => {
                let call = tokio::spawn(async move { backend.setup(request).await });
                // An ordering aid, not synchronisation: the plugin cannot tell us it is
                // waiting, and the test passes only if Setup succeeds in either order.
                tokio::time::sleep(Duration::from_millis(200)).await;
                self.announce(info).await;
                call.await.expect("the Setup call panicked")
            }
        };
        Setup {
            reply: reply.map(Response::into_inner),
            mount: Mount {
                id: id.to_owned(),
                broker_id,
                storage,
            },
            elapsed: started.elapsed(),
        }
    }

    async fn announce(&self, info: plugin::ConnInfo) {
        self.broker
            .as_ref()
            .expect("the broker stream is open")
            .announce
            .send(info)
            .await
            .expect("the broker stream takes ConnInfo");
    }

    /// Mounts the plugin as `secrets enable` does (§6.2): MultiplexingSupport → Setup → Type
    /// → SpecialPaths → Initialize, storage read-only until Initialize.
    pub async fn mount(&mut self, id: &str) -> Mount {
        self.multiplexing_support()
            .await
            .expect("MultiplexingSupport");
        let setup = self.setup(id, SetupOptions::mount()).await;
        let reply = setup.reply.expect("the Setup RPC");
        assert_eq!(reply.err, "", "Setup of {id} failed");
        let mut backend = self.backend();
        let kind = backend
            .r#type(for_mount(id, pb::Empty {}))
            .await
            .expect("the Type RPC")
            .into_inner()
            .r#type;
        // The server refuses anything else with "unknown backend type".
        assert_eq!(kind, 1, "a secrets engine is a logical backend");
        backend
            .special_paths(for_mount(id, pb::Empty {}))
            .await
            .expect("the SpecialPaths RPC");
        setup.mount.storage.set_mode(StorageMode::Writable);
        let initialized = backend
            .initialize(for_mount(id, pb::InitializeArgs {}))
            .await
            .expect("the Initialize RPC")
            .into_inner();
        assert_eq!(initialized.err, None, "Initialize of {id} failed");
        setup.mount
    }

    /// `HandleRequest` for mount `id`.
    pub async fn try_request(
        &self,
        id: &str,
        operation: &str,
        path: &str,
        data: &Value,
    ) -> Result<pb::HandleRequestReply, Status> {
        let args = pb::HandleRequestArgs {
            storage_id: 0,
            request: Some(wire_request(operation, path, data)),
        };
        self.backend()
            .handle_request(for_mount(id, args))
            .await
            .map(Response::into_inner)
    }

    /// `HandleRequest` for mount `id`; a gRPC error fails the test.
    pub async fn request(
        &self,
        id: &str,
        operation: &str,
        path: &str,
        data: &Value,
    ) -> pb::HandleRequestReply {
        self.try_request(id, operation, path, data)
            .await
            .unwrap_or_else(|status| panic!("HandleRequest {operation} {path}: {status}"))
    }

    /// `HandleExistenceCheck` for a write to `path` (the server sends operation `update`).
    pub async fn existence_check(
        &self,
        id: &str,
        path: &str,
        data: &Value,
    ) -> pb::HandleExistenceCheckReply {
        let args = pb::HandleExistenceCheckArgs {
            storage_id: 0,
            request: Some(wire_request("update", path, data)),
        };
        self.backend()
            .handle_existence_check(for_mount(id, args))
            .await
            .unwrap_or_else(|status| panic!("HandleExistenceCheck {path}: {status}"))
            .into_inner()
    }

    /// A write as the server makes it (§6.3): the existence check picks `create` or `update`.
    pub async fn write(&self, id: &str, path: &str, data: &Value) -> pb::HandleRequestReply {
        let check = self.existence_check(id, path, data).await;
        assert_eq!(check.err, None, "existence check of {path}");
        let operation = if check.check_found && !check.exists {
            "create"
        } else {
            "update"
        };
        self.request(id, operation, path, data).await
    }

    /// `pb.Backend/Cleanup` for mount `id`.
    pub async fn cleanup(&self, id: &str) -> Result<(), Status> {
        self.backend()
            .cleanup(for_mount(id, pb::Empty {}))
            .await
            .map(drop)
    }

    /// `GRPCController/Shutdown`.
    pub async fn shutdown(&self) -> Result<(), Status> {
        self.controller().shutdown(plugin::Empty {}).await.map(drop)
    }

    /// Ends our half of `StartStream`, as the server does when it kills a plugin.
    pub fn close_broker(&mut self) {
        self.broker = None;
    }

    /// Waits for the stdio stream to end; `None` if it is still open after `timeout`.
    pub async fn stdio_end(&mut self, timeout: Duration) -> Option<StdioEnd> {
        let (_, ended) = self.stdio.as_mut().expect("the stdio stream was opened");
        match tokio::time::timeout(timeout, ended).await {
            Ok(end) => Some(end.expect("the stdio task reports its end")),
            Err(_) => None,
        }
    }

    /// The server process dies: every socket it had to the plugin closes at once, with the
    /// streams still open on them. Returns the plugin to watch it go.
    pub fn die(self) -> Plugin {
        for socket in self
            .sockets
            .lock()
            .expect("the socket list is never poisoned")
            .iter()
        {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        self.plugin
    }
}

/// A background task that must not outlive its owner.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// The brokered services: pb.Storage and pb.SystemView

/// How the host's storage for a mount behaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StorageMode {
    #[default]
    Writable,
    /// Reads work; `Put` and `Delete` answer `err` with this text (a mount during Setup,
    /// a standby node).
    ReadOnly(String),
    /// Every call fails with a gRPC error with this text (no storage bound: registration).
    Unbound(String),
}

#[derive(Debug, Default)]
struct StorageState {
    entries: BTreeMap<String, Vec<u8>>,
    mode: StorageMode,
    calls: Vec<String>,
}

/// A mount's storage: an in-memory map the test can inspect and change.
#[derive(Clone, Debug, Default)]
pub struct MemStorage(Arc<Mutex<StorageState>>);

impl MemStorage {
    pub fn new(mode: StorageMode) -> Self {
        let storage = Self::default();
        storage.set_mode(mode);
        storage
    }

    fn state(&self) -> MutexGuard<'_, StorageState> {
        self.0.lock().expect("the storage lock is never poisoned")
    }

    pub fn set_mode(&self, mode: StorageMode) {
        self.state().mode = mode;
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.state().entries.get(key).cloned()
    }

    pub fn insert(&self, key: &str, value: &[u8]) {
        self.state().entries.insert(key.to_owned(), value.to_vec());
    }

    pub fn keys(&self) -> Vec<String> {
        self.state().entries.keys().cloned().collect()
    }

    /// The calls the plugin made, as `"get kv/foo"`, `"list kv/"`, ….
    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }
}

/// The immediate children of `prefix`; deeper keys show as their first folder, with its `/`.
fn children(entries: &BTreeMap<String, Vec<u8>>, prefix: &str) -> Vec<String> {
    let children: BTreeSet<String> = entries
        .range(prefix.to_owned()..)
        .take_while(|(key, _)| key.starts_with(prefix))
        .map(|(key, _)| {
            let rest = &key[prefix.len()..];
            match rest.find('/') {
                Some(slash) => rest[..=slash].to_owned(),
                None => rest.to_owned(),
            }
        })
        .collect();
    children.into_iter().collect()
}

struct StorageService(MemStorage);

impl StorageService {
    /// Records the call and fails it if no storage is bound, as the server does.
    fn enter(&self, call: String) -> Result<MutexGuard<'_, StorageState>, Status> {
        let mut state = self.0.state();
        state.calls.push(call);
        if let StorageMode::Unbound(message) = &state.mode {
            return Err(Status::unknown(message.clone()));
        }
        Ok(state)
    }
}

fn write_refusal(state: &StorageState) -> Option<String> {
    match &state.mode {
        StorageMode::ReadOnly(message) => Some(message.clone()),
        _ => None,
    }
}

fn unimplemented<T>(what: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!(
        "{what} is not implemented by the test host"
    )))
}

#[tonic::async_trait]
impl Storage for StorageService {
    async fn list(
        &self,
        request: tonic::Request<pb::StorageListArgs>,
    ) -> Result<Response<pb::StorageListReply>, Status> {
        let prefix = request.into_inner().prefix;
        let state = self.enter(format!("list {prefix}"))?;
        Ok(Response::new(pb::StorageListReply {
            keys: children(&state.entries, &prefix),
            err: String::new(),
        }))
    }

    async fn list_page(
        &self,
        _request: tonic::Request<pb::StorageListPageArgs>,
    ) -> Result<Response<pb::StorageListReply>, Status> {
        unimplemented("ListPage")
    }

    async fn get(
        &self,
        request: tonic::Request<pb::StorageGetArgs>,
    ) -> Result<Response<pb::StorageGetReply>, Status> {
        let key = request.into_inner().key;
        let state = self.enter(format!("get {key}"))?;
        let entry = state.entries.get(&key).map(|value| pb::StorageEntry {
            key: key.clone(),
            value: value.clone(),
            seal_wrap: false,
        });
        Ok(Response::new(pb::StorageGetReply {
            entry,
            err: String::new(),
        }))
    }

    async fn put(
        &self,
        request: tonic::Request<pb::StoragePutArgs>,
    ) -> Result<Response<pb::StoragePutReply>, Status> {
        let entry = request.into_inner().entry.unwrap_or_default();
        let mut state = self.enter(format!("put {}", entry.key))?;
        let err = match write_refusal(&state) {
            Some(refusal) => refusal,
            None => {
                state.entries.insert(entry.key, entry.value);
                String::new()
            }
        };
        Ok(Response::new(pb::StoragePutReply { err }))
    }

    async fn delete(
        &self,
        request: tonic::Request<pb::StorageDeleteArgs>,
    ) -> Result<Response<pb::StorageDeleteReply>, Status> {
        let key = request.into_inner().key;
        let mut state = self.enter(format!("delete {key}"))?;
        let err = match write_refusal(&state) {
            Some(refusal) => refusal,
            None => {
                state.entries.remove(&key);
                String::new()
            }
        };
        Ok(Response::new(pb::StorageDeleteReply { err }))
    }

    async fn is_transactional(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::StorageIsTransactionalReply>, Status> {
        unimplemented("IsTransactional")
    }

    async fn begin_read_only_tx(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::StorageBeginTxReply>, Status> {
        unimplemented("BeginReadOnlyTx")
    }

    async fn begin_tx(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::StorageBeginTxReply>, Status> {
        unimplemented("BeginTx")
    }

    async fn commit(
        &self,
        _request: tonic::Request<pb::StorageCommitTxArgs>,
    ) -> Result<Response<pb::StorageCommitTxReply>, Status> {
        unimplemented("Commit")
    }

    async fn rollback(
        &self,
        _request: tonic::Request<pb::StorageRollbackTxArgs>,
    ) -> Result<Response<pb::StorageRollbackTxReply>, Status> {
        unimplemented("Rollback")
    }
}

struct SystemViewService;

fn ttl_reply(ttl: Duration) -> Result<Response<pb::TtlReply>, Status> {
    let ttl = i64::try_from(ttl.as_nanos()).expect("a TTL fits in i64 nanoseconds");
    Ok(Response::new(pb::TtlReply { ttl }))
}

#[tonic::async_trait]
impl SystemView for SystemViewService {
    async fn default_lease_ttl(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::TtlReply>, Status> {
        ttl_reply(DEFAULT_LEASE_TTL)
    }

    async fn max_lease_ttl(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::TtlReply>, Status> {
        ttl_reply(DEFAULT_LEASE_TTL)
    }

    async fn tainted(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::TaintedReply>, Status> {
        unimplemented("Tainted")
    }

    async fn caching_disabled(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::CachingDisabledReply>, Status> {
        unimplemented("CachingDisabled")
    }

    async fn replication_state(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::ReplicationStateReply>, Status> {
        unimplemented("ReplicationState")
    }

    async fn response_wrap_data(
        &self,
        _request: tonic::Request<pb::ResponseWrapDataArgs>,
    ) -> Result<Response<pb::ResponseWrapDataReply>, Status> {
        unimplemented("ResponseWrapData")
    }

    async fn mlock_enabled(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::MlockEnabledReply>, Status> {
        unimplemented("MlockEnabled")
    }

    async fn local_mount(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::LocalMountReply>, Status> {
        unimplemented("LocalMount")
    }

    async fn entity_info(
        &self,
        _request: tonic::Request<pb::EntityInfoArgs>,
    ) -> Result<Response<pb::EntityInfoReply>, Status> {
        unimplemented("EntityInfo")
    }

    async fn plugin_env(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::PluginEnvReply>, Status> {
        unimplemented("PluginEnv")
    }

    async fn groups_for_entity(
        &self,
        _request: tonic::Request<pb::EntityInfoArgs>,
    ) -> Result<Response<pb::GroupsForEntityReply>, Status> {
        unimplemented("GroupsForEntity")
    }

    async fn generate_password_from_policy(
        &self,
        _request: tonic::Request<pb::GeneratePasswordFromPolicyRequest>,
    ) -> Result<Response<pb::GeneratePasswordFromPolicyReply>, Status> {
        unimplemented("GeneratePasswordFromPolicy")
    }

    async fn cluster_info(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::ClusterInfoReply>, Status> {
        unimplemented("ClusterInfo")
    }
}

/// One mount's brokered gRPC server; stops when dropped.
struct BrokeredServer {
    _tasks: [AbortOnDrop; 2],
}

impl BrokeredServer {
    fn start(
        socket: &Path,
        host: &HostCert,
        plugin: &CertificateDer<'static>,
        storage: MemStorage,
    ) -> Self {
        let listener =
            UnixListener::bind(socket).unwrap_or_else(|e| panic!("bind {}: {e}", socket.display()));
        let acceptor = TlsAcceptor::from(server_tls(host, plugin));
        let (connections, incoming) = mpsc::channel::<io::Result<HostIo>>(4);
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (acceptor, connections) = (acceptor.clone(), connections.clone());
                tokio::spawn(async move {
                    // Like grpc-go: a failed handshake, or one without h2, is dropped silently.
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(RPC_TIMEOUT, acceptor.accept(socket)).await
                    else {
                        return;
                    };
                    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                        let _ = connections.send(Ok(HostIo(stream))).await;
                    }
                });
            }
        });
        let serve = tokio::spawn(async move {
            let served = Server::builder()
                .add_service(
                    StorageServer::new(StorageService(storage))
                        .max_decoding_message_size(usize::MAX)
                        .max_encoding_message_size(usize::MAX),
                )
                .add_service(SystemViewServer::new(SystemViewService))
                .serve_with_incoming(ReceiverStream::new(incoming))
                .await;
            if let Err(e) = served {
                panic!("the brokered server failed: {e}");
            }
        });
        Self {
            _tasks: [AbortOnDrop(accept), AbortOnDrop(serve)],
        }
    }
}

/// An accepted brokered connection, in the shape tonic serves (it has no `Connected` for
/// rustls streams without its own TLS feature).
struct HostIo(tokio_rustls::server::TlsStream<UnixStream>);

impl Connected for HostIo {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for HostIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for HostIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
