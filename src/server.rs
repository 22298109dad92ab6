//! Putting the machinery together: negotiate, make the certificate, listen, print the
//! handshake line, accept the server's mutual-TLS connection, serve the gRPC services, and stop
//! when the server says so or is gone.

use std::fmt;
use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::backend::BackendFactory;
use crate::backend_service::{BackendService, MultiplexingService, ServiceMode, VersionService};
use crate::broker::{Broker, BrokerService};
use crate::controller::{ControllerService, ExitReason, Lifecycle, StdioService};
use crate::grpc_serve::{self, GrpcServices};
use crate::handshake::{
    self, HandshakeError, Listener, PluginEnv, PluginListener, SUPPORTED_VERSIONS, Transport,
};
use crate::host_storage::MAX_MESSAGE_SIZE;
use crate::proto::logical::plugin_version_server::PluginVersionServer;
use crate::proto::pb::backend_server::BackendServer;
use crate::proto::plugin::grpc_broker_server::GrpcBrokerServer;
use crate::proto::plugin::grpc_controller_server::GrpcControllerServer;
use crate::proto::plugin::grpc_stdio_server::GrpcStdioServer;
use crate::proto::pluginutil::multiplexing::plugin_multiplexing_server::PluginMultiplexingServer;
use crate::tls::{self, Identity, TlsError};
use crate::unwrap_tls::{self, ApiClientFlags, UnwrapError};

/// How the plugin serves, beyond what the environment says.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub transport: Transport,
    /// If no mutual-TLS connection is established this long after the handshake line, the
    /// server gave up on us (it never kills a plugin whose start failed): exit.
    pub connect_timeout: Duration,
    /// How long one TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// How long replies in flight (the Shutdown reply itself) get once the plugin stops.
    pub stop_grace: Duration,
    /// Refuse protocol 5, so the server falls back to the legacy protocol (for testing that
    /// path, and for servers whose AutoMTLS is broken).
    pub decline_protocol_5: bool,
    /// How to reach the server's API for the legacy TLS bootstrap.
    pub api_client: ApiClientFlags,
}

impl ServeOptions {
    /// The protocol versions this run may serve.
    pub fn versions(&self) -> Vec<u32> {
        SUPPORTED_VERSIONS
            .iter()
            .copied()
            .filter(|&v| !(self.decline_protocol_5 && v == 5))
            .collect()
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            transport: Transport::Unix,
            connect_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            stop_grace: Duration::from_millis(50),
            decline_protocol_5: false,
            api_client: ApiClientFlags::default(),
        }
    }
}

/// Why the plugin could not start (before or while printing the handshake line).
#[derive(Debug)]
pub enum StartError {
    Handshake(HandshakeError),
    Tls(TlsError),
    Listen(handshake::ListenError),
    Unwrap(UnwrapError),
    Stdout(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake(e) => e.fmt(f),
            Self::Tls(e) => e.fmt(f),
            Self::Listen(e) => e.fmt(f),
            Self::Unwrap(e) => e.fmt(f),
            Self::Stdout(e) => write!(f, "cannot write the handshake line to stdout: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<HandshakeError> for StartError {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

impl From<TlsError> for StartError {
    fn from(e: TlsError) -> Self {
        Self::Tls(e)
    }
}

/// Runs the plugin until it is told to stop or its server is gone. The handshake line goes to
/// `stdout`; nothing else ever does.
pub async fn run<F: BackendFactory>(
    factory: F,
    env: &PluginEnv,
    options: &ServeOptions,
    stdout: &mut dyn Write,
) -> Result<ExitReason, StartError> {
    // Before anything that can take time: the legacy unwrap may wait up to 30 s for the server.
    ignore_interrupts();
    let version = handshake::negotiate(&env.protocol_versions, &options.versions())?;
    let security = Security::choose(version, env, options).await?;
    let acceptor = security.server.clone().map(TlsAcceptor::from);
    let broker = Arc::new(Broker::with_tls(security.broker.clone()));
    let mode = ServiceMode {
        multiplexed: version >= 5,
        metadata_only: version < 5 && env.metadata_mode,
    };

    let PluginListener {
        listener,
        addr,
        socket_dir,
    } = PluginListener::bind(options.transport, env).map_err(StartError::Listen)?;
    let lifecycle = Lifecycle::new();

    let plugin_version = factory.version();
    let backend = BackendService::new(factory, broker.clone(), mode);
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    let (connections, incoming) = mpsc::channel(4);
    let accept = tokio::spawn(accept_loop(
        listener,
        acceptor,
        connections,
        lifecycle.clone(),
        options.clone(),
    ));

    let line = handshake::handshake_line(
        version,
        &addr,
        security.handshake_cert.as_ref().map(|cert| cert.as_ref()),
        env.multiplex_grpc,
    );
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(StartError::Stdout)?;
    tracing::info!(
        protocol = version,
        security = security.name,
        version = %plugin_version,
        server_version = env.server_version.as_deref().unwrap_or("unknown"),
        "plugin started"
    );

    let stopped = {
        let lifecycle = lifecycle.clone();
        async move {
            lifecycle.stopped().await;
        }
    };
    let services = GrpcServices::new(
        BackendServer::new(backend)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE),
    )
    .with(health_service)
    .with(PluginVersionServer::new(VersionService::new(
        plugin_version,
    )))
    .with(PluginMultiplexingServer::new(MultiplexingService::new(
        mode.multiplexed,
    )))
    .with(GrpcBrokerServer::new(BrokerService::new(
        broker,
        lifecycle.clone(),
    )))
    .with(GrpcControllerServer::new(ControllerService::new(
        lifecycle.clone(),
    )))
    .with(GrpcStdioServer::new(StdioService::new(lifecycle.clone())));
    let serve = grpc_serve::serve(services, incoming, stopped);
    tokio::pin!(serve);

    let reason = tokio::select! {
        () = &mut serve => {
            lifecycle.reason().unwrap_or_else(|| ExitReason::HostGone("the server stopped".into()))
        }
        reason = lifecycle.stopped() => {
            // Let replies in flight go out, but never keep the server waiting.
            let _ = tokio::time::timeout(options.stop_grace, &mut serve).await;
            reason
        }
    };
    accept.abort();
    drop(socket_dir);
    Ok(reason)
}

/// How the connections of this run are secured.
struct Security {
    /// Our TLS server; `None` for the plain gRPC of the legacy metadata mode.
    server: Option<Arc<rustls::ServerConfig>>,
    /// Our TLS client for broker connections back to the server.
    broker: Option<Arc<rustls::ClientConfig>>,
    /// The certificate the handshake line announces (AutoMTLS only: on any other launch a
    /// certificate there crashes the server's request).
    handshake_cert: Option<rustls::pki_types::CertificateDer<'static>>,
    name: &'static str,
}

impl Security {
    async fn choose(
        version: u32,
        env: &PluginEnv,
        options: &ServeOptions,
    ) -> Result<Self, StartError> {
        if let Some(pem) = &env.client_cert_pem {
            // AutoMTLS: our fresh certificate, the server's pinned.
            let peer = tls::parse_peer_certificate(pem)?;
            let identity = Identity::generate()?;
            return Ok(Self {
                server: Some(tls::server_config(&identity, peer.clone())?),
                broker: Some(tls::client_config(&identity, peer)?),
                handshake_cert: Some(identity.cert),
                name: "automtls",
            });
        }
        if version >= 5 {
            return Err(HandshakeError::MissingClientCert.into());
        }
        if env.metadata_mode {
            return Ok(Self {
                server: None,
                broker: None,
                handshake_cert: None,
                name: "metadata-mode plaintext",
            });
        }
        let token = env
            .unwrap_token
            .as_deref()
            .ok_or(HandshakeError::NoTlsMaterial)?;
        // Both sides use the unwrapped certificate: we serve with it, the server presents it.
        let skip_verify_setting = match &env.skip_verify_var {
            Some(var) => format!("{var} is set, inherited from the server's environment"),
            None => "-tls-skip-verify is in the plugin's args".to_owned(),
        };
        let identity =
            unwrap_tls::unwrap_identity(token, &options.api_client, &skip_verify_setting)
                .await
                .map_err(StartError::Unwrap)?;
        let peer = identity.cert.clone();
        Ok(Self {
            server: Some(tls::server_config(&identity, peer.clone())?),
            broker: Some(tls::client_config(&identity, peer)?),
            handshake_cert: None,
            name: "unwrapped tls",
        })
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

/// Accepts connections, completes mutual TLS with ALPN `h2`, and hands them to tonic. Stops the
/// process when the start failed (a first handshake failed, or nothing came in time) and when
/// the server's last connection closes.
async fn accept_loop(
    listener: Listener,
    acceptor: Option<TlsAcceptor>,
    connections: mpsc::Sender<ServerIo>,
    lifecycle: Lifecycle,
    options: ServeOptions,
) {
    let state = Arc::new(ConnectionState {
        established: AtomicBool::new(false),
        open: AtomicUsize::new(0),
        lifecycle: lifecycle.clone(),
    });
    tokio::spawn({
        let state = state.clone();
        async move {
            tokio::time::sleep(options.connect_timeout).await;
            if !state.established.load(Ordering::SeqCst) {
                state.lifecycle.exit(ExitReason::StartFailed(format!(
                    "no mutual-TLS connection from the server within {}s of the handshake; \
                     the server gave up on this plugin",
                    options.connect_timeout.as_secs_f32()
                )));
            }
        }
    });
    loop {
        let accepted = match &listener {
            Listener::Unix(l) => l.accept().await.map(|(s, _)| Box::new(s) as Box<dyn Io>),
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Box::new(s) as Box<dyn Io>
            }),
        };
        let socket = match accepted {
            Ok(socket) => socket,
            Err(e) => {
                // Out of file descriptors and the like: keep serving what is open.
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let connections = connections.clone();
        let state = state.clone();
        let timeout = options.tls_handshake_timeout;
        tokio::spawn(async move {
            let secured = async {
                match &acceptor {
                    Some(acceptor) => accept_tls(acceptor, socket).await,
                    None => Ok(socket),
                }
            };
            match tokio::time::timeout(timeout, secured).await {
                Ok(Ok(stream)) => {
                    let io = ServerIo {
                        stream,
                        _guard: ConnectionGuard::open(state),
                    };
                    let _ = connections.send(io).await;
                }
                Ok(Err(e)) => state.handshake_failed(&e.to_string()),
                Err(_) => state.handshake_failed("the TLS handshake timed out"),
            }
        });
    }
}

async fn accept_tls(acceptor: &TlsAcceptor, socket: Box<dyn Io>) -> io::Result<Box<dyn Io>> {
    let stream = acceptor.accept(socket).await?;
    if stream.get_ref().1.alpn_protocol() != Some(tls::ALPN_H2) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the client did not negotiate ALPN h2, which gRPC needs",
        ));
    }
    Ok(Box::new(stream))
}

/// What the accept loop knows about the server's connections.
struct ConnectionState {
    established: AtomicBool,
    open: AtomicUsize,
    lifecycle: Lifecycle,
}

impl ConnectionState {
    fn handshake_failed(&self, detail: &str) {
        tracing::warn!(error = detail, "refused a connection");
        if !self.established.load(Ordering::SeqCst) {
            // The server connects once; if that fails it never retries and never kills us.
            self.lifecycle.exit(ExitReason::StartFailed(format!(
                "the server's connection failed its TLS handshake: {detail}"
            )));
        }
    }
}

/// Counts a connection as open while it lives.
struct ConnectionGuard(Arc<ConnectionState>);

impl ConnectionGuard {
    fn open(state: Arc<ConnectionState>) -> Self {
        state.established.store(true, Ordering::SeqCst);
        state.open.fetch_add(1, Ordering::SeqCst);
        Self(state)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.lifecycle.exit(ExitReason::HostGone(
                "the server closed its connection".to_owned(),
            ));
        }
    }
}

/// A byte stream of either kind of socket.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One accepted, authenticated connection, as it is served.
struct ServerIo {
    stream: Box<dyn Io>,
    _guard: ConnectionGuard,
}

impl AsyncRead for ServerIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
