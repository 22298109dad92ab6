//! Putting the machinery together: negotiate, make the certificate, listen, print the
//! handshake line, accept the server's mutual-TLS connection, serve the gRPC services, and stop
//! when the server says so or is gone.

pub(crate) mod dispatch;

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;

use crate::handshake::{self, HandshakeError, PluginEnv, Transport};
use crate::proto::logical::plugin_version_server::PluginVersionServer;
use crate::proto::plugin::grpc_broker_server::GrpcBrokerServer;
use crate::proto::plugin::grpc_controller_server::GrpcControllerServer;
use crate::proto::plugin::grpc_stdio_server::GrpcStdioServer;
use crate::proto::pluginutil::multiplexing::plugin_multiplexing_server::PluginMultiplexingServer;
use crate::services::broker::{Broker, BrokerService};
use crate::services::controller::{ControllerService, ExitReason, Lifecycle, StdioService};
use crate::services::plugin::{MultiplexingService, VersionService};
use crate::services::{Kind, Run};
use crate::transport::io::Io;
use crate::transport::listener::{ListenError, Listener, PluginListener};
use crate::transport::tls::{self, Identity, TlsError};
use crate::transport::unwrap_tls::{self, ApiClientFlags, UnwrapError};
use dispatch::{GrpcServices, HotService};

/// How the plugin serves, beyond what the environment says.
// Reached from outside only through `internals`, for the crate's own tests.
#[allow(missing_docs)]
#[derive(Clone, Debug)]
pub struct SessionOptions {
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

impl SessionOptions {
    /// Of the `supported` protocol versions, those this run may serve.
    pub fn versions(&self, supported: &[u32]) -> Vec<u32> {
        supported
            .iter()
            .copied()
            .filter(|&v| !(self.decline_protocol_5 && v == 5))
            .collect()
    }
}

impl Default for SessionOptions {
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
pub(crate) enum StartError {
    Handshake(HandshakeError),
    Tls(TlsError),
    Listen(ListenError),
    Unwrap(UnwrapError),
    /// The handshake line could not be written (to stdout, for a launched plugin).
    Announce(io::Error),
    /// The line went out, but no usable connection arrived.
    NotConnected(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake(e) => e.fmt(f),
            Self::Tls(e) => e.fmt(f),
            Self::Listen(e) => e.fmt(f),
            Self::Unwrap(e) => e.fmt(f),
            Self::Announce(_) => f.write_str("cannot write the handshake line to stdout"),
            Self::NotConnected(why) => f.write_str(why),
        }
    }
}

/// The wrapped errors speak for themselves: the text and the causes are theirs.
impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Handshake(e) => e.source(),
            Self::Tls(e) => e.source(),
            Self::Listen(e) => e.source(),
            Self::Unwrap(e) => e.source(),
            Self::Announce(e) => Some(e),
            Self::NotConnected(_) => None,
        }
    }
}

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

/// Runs the plugin until it is told to stop or its server is gone, reporting `plugin_version`
/// (`logical.PluginVersion`). The handshake line goes to `stdout`; nothing else ever does.
pub(crate) async fn run<K: Kind>(
    kind: K,
    plugin_version: String,
    env: &PluginEnv,
    options: &SessionOptions,
    announce: impl FnOnce(&str) -> io::Result<()>,
    shutdown: impl Future<Output = ()>,
) -> Result<ExitReason, StartError>
where
    K::Face: HotService,
{
    let version = handshake::negotiate(&env.protocol_versions, &options.versions(K::VERSIONS))?;
    let security = Security::choose(version, env, options).await?;
    let acceptor = security.server.clone().map(TlsAcceptor::from);
    let broker = Arc::new(Broker::with_tls(security.broker.clone()));
    let run = Run {
        multiplexed: K::multiplexed(version),
        metadata_only: version < 5 && env.metadata_mode,
        broker: broker.clone(),
    };

    let PluginListener {
        listener,
        addr,
        socket_dir,
    } = PluginListener::bind(options.transport, env).map_err(StartError::Listen)?;
    let lifecycle = Lifecycle::new();

    let face = kind.face(&run);
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    let (connections, incoming) = mpsc::channel(4);
    let connection_state = Arc::new(ConnectionState::new(lifecycle.clone(), options.transport));
    let accept = tokio::spawn(accept_loop(
        listener,
        acceptor,
        connections,
        connection_state.clone(),
        options.clone(),
    ));

    let line = handshake::handshake_line(
        version,
        &addr,
        security.handshake_cert.as_ref().map(|cert| cert.as_ref()),
        env.multiplex_grpc,
    );
    announce(&line).map_err(StartError::Announce)?;
    log_start(version, &security, &addr, &plugin_version, env);

    let services = services(
        face,
        health_service,
        plugin_version,
        run.multiplexed,
        broker,
        &lifecycle,
    );
    let reason =
        serve_until_stopped(services, incoming, &lifecycle, options.stop_grace, shutdown).await;
    accept.abort();
    connection_state.refusals.report_held();
    drop(socket_dir);
    Ok(reason)
}

/// Serves the connections that come in until the lifecycle says stop or `shutdown` completes
/// (then replies in flight get `grace` to go out), or the server is gone.
async fn serve_until_stopped<H: HotService>(
    services: GrpcServices<H>,
    incoming: mpsc::Receiver<ServerIo>,
    lifecycle: &Lifecycle,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) -> ExitReason {
    let stopped = {
        let lifecycle = lifecycle.clone();
        async move {
            lifecycle.stopped().await;
        }
    };
    let serve = dispatch::serve(services, incoming, stopped);
    tokio::pin!(serve);
    tokio::select! {
        () = &mut serve => {
            lifecycle.reason().unwrap_or_else(|| ExitReason::HostGone("the server stopped".into()))
        }
        reason = stopped_or_asked(lifecycle, shutdown) => {
            // Let replies in flight go out, but never keep the server waiting.
            let _ = tokio::time::timeout(grace, &mut serve).await;
            reason
        }
    }
}

/// The lifecycle's reason to stop, once there is one; `shutdown` completing is one.
async fn stopped_or_asked(lifecycle: &Lifecycle, shutdown: impl Future<Output = ()>) -> ExitReason {
    tokio::select! {
        reason = lifecycle.stopped() => reason,
        () = shutdown => {
            lifecycle.exit(ExitReason::Requested);
            lifecycle.stopped().await
        }
    }
}

/// go-plugin's own start-up lines, at its levels, so the server's log reads as with a Go
/// plugin; then one line of ours, also below info.
fn log_start(
    version: u32,
    security: &Security,
    addr: &handshake::ListenAddr,
    plugin_version: &str,
    env: &PluginEnv,
) {
    if security.handshake_cert.is_some() {
        tracing::debug!("configuring server automatic mTLS");
    }
    let (network, address) = addr.network_and_address();
    tracing::debug!(address = %address, network, "plugin address");
    tracing::debug!(
        protocol = version,
        security = security.name,
        version = %plugin_version,
        server_version = env.server_version.as_deref().unwrap_or("unknown"),
        "plugin started"
    );
}

/// Every gRPC service the plugin serves, by name.
fn services<H: HotService>(
    face: H,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    plugin_version: String,
    multiplexed: bool,
    broker: Arc<Broker>,
    lifecycle: &Lifecycle,
) -> GrpcServices<H> {
    GrpcServices::new(face)
        .with(health)
        .with(PluginVersionServer::new(VersionService::new(
            plugin_version,
        )))
        .with(PluginMultiplexingServer::new(MultiplexingService::new(
            multiplexed,
        )))
        .with(GrpcBrokerServer::new(BrokerService::new(
            broker,
            lifecycle.clone(),
        )))
        .with(GrpcControllerServer::new(ControllerService::new(
            lifecycle.clone(),
        )))
        .with(GrpcStdioServer::new(StdioService::new(lifecycle.clone())))
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
        options: &SessionOptions,
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

/// How many accepted connections may be in their TLS handshake at once. The server opens one
/// connection and keeps it, so this is only reached by strangers (any local process can
/// connect to the TCP listener); each pending handshake holds a socket and a rustls state of a
/// few tens of KiB, so 64 bound them to a few MiB and well below the usual 1024 descriptors.
/// Beyond it the listener is not read: further connections wait in the kernel's backlog until
/// a handshake ends or times out, rather than being dropped, so the server's own connection is
/// delayed at most one handshake timeout, never refused.
const MAX_PENDING_HANDSHAKES: usize = 64;

/// The first wait after a failed accept, doubled on each further failure up to
/// [`ACCEPT_BACKOFF_MAX`]. Accept fails when the process or the system is out of file
/// descriptors (EMFILE, ENFILE) or memory: retrying at once only spins and floods the log, and
/// the condition clears when connections close. A plugin has one real client, so a second's
/// delay at worst costs little.
const ACCEPT_BACKOFF_START: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Refused connections are logged with their reason once per interval; the rest of the
/// interval's refusals become one line with their count.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Accepts connections, completes mutual TLS with ALPN `h2`, and hands them to tonic. Stops the
/// process when the start failed (nothing came in time, or on a unix socket a first handshake
/// failed) and when the server's last connection closes.
async fn accept_loop(
    listener: Listener,
    acceptor: Option<TlsAcceptor>,
    connections: mpsc::Sender<ServerIo>,
    state: Arc<ConnectionState>,
    options: SessionOptions,
) {
    tokio::spawn(exit_unless_connected(
        state.clone(),
        options.connect_timeout,
    ));
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    let mut backoff = AcceptBackoff::default();
    loop {
        // The semaphore is never closed.
        let Ok(permit) = pending.clone().acquire_owned().await else {
            return;
        };
        let socket = match accept(&listener).await {
            Ok(socket) => {
                backoff.recovered();
                socket
            }
            Err(e) => {
                // Keep serving what is open; try again later.
                tokio::time::sleep(backoff.failed(&e)).await;
                continue;
            }
        };
        tokio::spawn(secure_and_hand_over(
            socket,
            acceptor.clone(),
            permit,
            connections.clone(),
            state.clone(),
            options.tls_handshake_timeout,
        ));
    }
}

/// Ends the process when the server has not connected `timeout` after the handshake line.
async fn exit_unless_connected(state: Arc<ConnectionState>, timeout: Duration) {
    tokio::time::sleep(timeout).await;
    if !state.established.load(Ordering::SeqCst) {
        state.lifecycle.exit(ExitReason::StartFailed(format!(
            "no mutual-TLS connection from the server within {}s of the handshake; the \
             server gave up on this plugin",
            timeout.as_secs_f32()
        )));
    }
}

async fn accept(listener: &Listener) -> io::Result<Box<dyn Io>> {
    match listener {
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Box::new(s) as Box<dyn Io>),
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            Box::new(s) as Box<dyn Io>
        }),
    }
}

/// Completes one connection's TLS handshake within `timeout` (holding a pending-handshake
/// `permit` meanwhile) and hands the connection to the server loop.
async fn secure_and_hand_over(
    socket: Box<dyn Io>,
    acceptor: Option<TlsAcceptor>,
    permit: tokio::sync::OwnedSemaphorePermit,
    connections: mpsc::Sender<ServerIo>,
    state: Arc<ConnectionState>,
    timeout: Duration,
) {
    let secured = async {
        match &acceptor {
            Some(acceptor) => accept_tls(acceptor, socket).await,
            None => Ok(socket),
        }
    };
    let outcome = tokio::time::timeout(timeout, secured).await;
    drop(permit);
    match outcome {
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

/// The accept loop's waits after failures, and their log: one warning when a burst of
/// failures starts, one line with its count when accept works again.
#[derive(Debug, Default)]
struct AcceptBackoff {
    errors: u64,
    delay: Duration,
}

impl AcceptBackoff {
    /// Records a failure and returns how long to wait before the next accept.
    fn failed(&mut self, error: &io::Error) -> Duration {
        if self.errors == 0 {
            tracing::warn!(
                error = %error,
                "accept failed; retrying with backoff (up to {}s) until it recovers",
                ACCEPT_BACKOFF_MAX.as_secs_f32()
            );
            self.delay = ACCEPT_BACKOFF_START;
        } else {
            self.delay = (self.delay * 2).min(ACCEPT_BACKOFF_MAX);
        }
        self.errors += 1;
        self.delay
    }

    /// Records a successful accept, reporting the burst it ends.
    fn recovered(&mut self) {
        if self.errors > 0 {
            tracing::info!(
                errors = self.errors,
                "accept recovered after {} errors",
                self.errors
            );
            *self = Self::default();
        }
    }
}

/// What the accept loop knows about the server's connections.
struct ConnectionState {
    established: AtomicBool,
    open: AtomicUsize,
    lifecycle: Lifecycle,
    transport: Transport,
    refusals: Arc<RefusalLog>,
}

impl ConnectionState {
    fn new(lifecycle: Lifecycle, transport: Transport) -> Self {
        Self {
            established: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            lifecycle,
            transport,
            refusals: Arc::new(RefusalLog::default()),
        }
    }

    fn handshake_failed(&self, detail: &str) {
        self.refusals.refused(detail);
        // On a unix socket in our private directory only our user can connect: a failed first
        // handshake is the server's, and it never retries and never kills us. Any local process
        // can connect over TCP, so there only the connect timeout says the server gave up.
        if self.transport == Transport::Unix && !self.established.load(Ordering::SeqCst) {
            self.lifecycle.exit(ExitReason::StartFailed(format!(
                "the server's connection failed its TLS handshake: {detail}"
            )));
        }
    }
}

/// The log of refused connections: the first of an interval with its reason, the others of
/// that interval as one line with their count when it ends (or when the plugin stops). A
/// stranger cannot flood the server's log, and an operator still sees that it happens.
#[derive(Debug, Default)]
struct RefusalLog {
    window: crate::sync::RecoveringMutex<RefusalWindow>,
}

#[derive(Debug, Default)]
struct RefusalWindow {
    /// While set, refusals are counted rather than logged.
    open: bool,
    held: u64,
    last: String,
}

impl RefusalLog {
    fn window(&self) -> std::sync::MutexGuard<'_, RefusalWindow> {
        self.window.lock()
    }

    fn refused(self: &Arc<Self>, detail: &str) {
        let mut window = self.window();
        if window.open {
            window.held += 1;
            detail.clone_into(&mut window.last);
            return;
        }
        window.open = true;
        drop(window);
        tracing::warn!(error = detail, "refused a connection");
        let log = self.clone();
        tokio::spawn(async move {
            // Each interval that held refusals reports them and starts another; the first
            // quiet one closes the window.
            loop {
                tokio::time::sleep(REFUSAL_LOG_INTERVAL).await;
                if !log.report_held() {
                    return;
                }
            }
        });
    }

    /// Logs the refusals held back, if any, and says whether there were some. Without any,
    /// the window closes, in the same critical section, so no refusal falls between.
    fn report_held(&self) -> bool {
        let mut window = self.window();
        if window.held == 0 {
            window.open = false;
            return false;
        }
        let (held, last) = (window.held, std::mem::take(&mut window.last));
        window.held = 0;
        drop(window);
        tracing::warn!(
            refused = held,
            last_error = last,
            "refused {held} more connection(s); refusals are logged once per {}s",
            REFUSAL_LOG_INTERVAL.as_secs()
        );
        true
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};

    use super::*;

    /// The messages logged on this thread, in order.
    #[derive(Clone, Default)]
    struct Messages(Arc<Mutex<Vec<String>>>);

    impl Messages {
        fn taken(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Messages {
        fn on_event(&self, event: &tracing::Event<'_>, _: LayerContext<'_, S>) {
            struct Message<'a>(&'a mut String);
            impl tracing::field::Visit for Message<'_> {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                    if field.name() == "message" {
                        *self.0 = format!("{value:?}");
                    }
                }
            }
            let mut text = String::new();
            event.record(&mut Message(&mut text));
            self.0.lock().unwrap().push(text);
        }
    }

    fn capture() -> (Messages, tracing::subscriber::DefaultGuard) {
        let messages = Messages::default();
        let subscriber = tracing_subscriber::registry().with(messages.clone());
        (messages, tracing::subscriber::set_default(subscriber))
    }

    #[test]
    fn accept_backs_off_doubling_to_a_second_and_logs_each_burst_twice() {
        let (messages, _guard) = capture();
        let mut backoff = AcceptBackoff::default();
        let emfile = io::Error::from_raw_os_error(24);
        let delays: Vec<u128> = (0..10)
            .map(|_| backoff.failed(&emfile).as_millis())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(
            messages.taken(),
            ["accept failed; retrying with backoff (up to 1s) until it recovers"]
        );
        backoff.recovered();
        backoff.recovered();
        assert_eq!(messages.taken(), ["accept recovered after 10 errors"]);
        // The next burst starts over.
        assert_eq!(backoff.failed(&emfile), ACCEPT_BACKOFF_START);
        assert_eq!(messages.taken().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_are_logged_once_per_interval_and_counted_in_between() {
        let (messages, _guard) = capture();
        let log = Arc::new(RefusalLog::default());
        for detail in ["first", "second", "third"] {
            log.refused(detail);
        }
        assert_eq!(messages.taken(), ["refused a connection"]);

        tokio::time::sleep(REFUSAL_LOG_INTERVAL + Duration::from_millis(1)).await;
        assert_eq!(
            messages.taken(),
            ["refused 2 more connection(s); refusals are logged once per 10s"]
        );
        // The summary started another interval: refusals in it are counted too.
        log.refused("fourth");
        assert_eq!(messages.taken(), Vec::<String>::new());
        tokio::time::sleep(REFUSAL_LOG_INTERVAL).await;
        assert_eq!(
            messages.taken(),
            ["refused 1 more connection(s); refusals are logged once per 10s"]
        );
        // A quiet interval closes the window: the next refusal is logged in full.
        tokio::time::sleep(REFUSAL_LOG_INTERVAL).await;
        assert_eq!(messages.taken(), Vec::<String>::new());
        log.refused("fifth");
        assert_eq!(messages.taken(), ["refused a connection"]);
        // What is held when the plugin stops is reported then.
        log.refused("sixth");
        assert!(log.report_held());
        assert!(!log.report_held());
        assert_eq!(
            messages.taken(),
            ["refused 1 more connection(s); refusals are logged once per 10s"]
        );
    }
}
