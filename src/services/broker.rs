//! go-plugin's broker, plugin side: the `StartStream` stream on which the server announces the
//! listeners it opens for us (one per mount, serving Storage and SystemView), a waiting room
//! that matches announcements to the `Setup` calls that need them (either may come first), and
//! the mutual-TLS dial back into the server.

use http_body_util::{BodyExt as _, Full};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::Arc;

use crate::sync::RecoveringMutex;
use crate::transport::io::Io;
use std::time::Duration;

use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{OnceCell, mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, http};
use tonic::{Request, Response, Status, Streaming};

use crate::proto::plugin::ConnInfo;
use crate::proto::plugin::grpc_broker_server::GrpcBroker;
use crate::services::controller::{ExitReason, Lifecycle};
use crate::transport::tls;

/// How long `Setup` waits for the server to announce its broker listener (go-plugin's value).
pub const CONN_INFO_TIMEOUT: Duration = Duration::from_secs(5);

/// Announcements nobody claimed are dropped after this long.
const UNCLAIMED_TTL: Duration = Duration::from_secs(60);

/// A broker failure, with what was being attempted.
// Reached from outside only through `internals`, for the crate's own tests.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub enum BrokerError {
    /// The server never announced the listener for this id.
    Timeout { id: u32 },
    /// Another `Setup` is already waiting for this id.
    AlreadyWaiting { id: u32 },
    /// Dialing, the TLS handshake or HTTP/2's failed: the cause says which. (An `Arc`, as a
    /// failed redial is handed to every call that waited for it.)
    Dial {
        id: u32,
        address: String,
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout { id } => write!(
                f,
                "timeout waiting for connection info: the server did not announce broker \
                 listener {id} within {}s on the StartStream stream",
                CONN_INFO_TIMEOUT.as_secs()
            ),
            Self::AlreadyWaiting { id } => {
                write!(f, "another Setup is already waiting for broker id {id}")
            }
            Self::Dial { id, address, .. } => write!(
                f,
                "cannot connect to the server's broker listener {id} at {address}"
            ),
        }
    }
}

impl std::error::Error for BrokerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Dial { source, .. } => Some(source.as_ref()),
            Self::Timeout { .. } | Self::AlreadyWaiting { .. } => None,
        }
    }
}

enum Slot {
    Arrived(ConnInfo, Instant),
    Waiting(oneshot::Sender<ConnInfo>),
}

/// Matches broker announcements with the calls waiting for them, and dials them.
pub(crate) struct Broker {
    slots: RecoveringMutex<HashMap<u32, Slot>>,
    /// `None` only in the legacy metadata mode, where the server's broker is plain gRPC.
    tls: Option<TlsConnector>,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker that dials with `client_config` (our certificate, the server's pinned).
    #[cfg(test)]
    pub(crate) fn new(client_config: Arc<rustls::ClientConfig>) -> Self {
        Self::with_tls(Some(client_config))
    }

    /// A broker that dials with TLS when given a configuration, in plain text otherwise.
    pub(crate) fn with_tls(client_config: Option<Arc<rustls::ClientConfig>>) -> Self {
        Self {
            slots: RecoveringMutex::new(HashMap::new()),
            tls: client_config.map(TlsConnector::from),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Slot>> {
        self.slots.lock()
    }

    /// Records an announcement, handing it to its waiter if there is one.
    pub(crate) fn deliver(&self, info: ConnInfo) {
        let mut slots = self.slots();
        let now = Instant::now();
        slots.retain(|_, slot| match slot {
            Slot::Arrived(_, at) => now.duration_since(*at) < UNCLAIMED_TTL,
            Slot::Waiting(sender) => !sender.is_closed(),
        });
        let id = info.service_id;
        match slots.remove(&id) {
            Some(Slot::Waiting(sender)) => {
                if let Err(info) = sender.send(info) {
                    // The waiter gave up just now; keep it for a retry.
                    slots.insert(id, Slot::Arrived(info, now));
                }
            }
            Some(Slot::Arrived(..)) | None => {
                slots.insert(id, Slot::Arrived(info, now));
            }
        }
    }

    /// Waits up to `timeout` for the announcement of broker id `id`.
    pub(crate) async fn wait_for(
        &self,
        id: u32,
        timeout: Duration,
    ) -> Result<ConnInfo, BrokerError> {
        let receiver = {
            let mut slots = self.slots();
            match slots.remove(&id) {
                Some(Slot::Arrived(info, _)) => return Ok(info),
                Some(Slot::Waiting(sender)) if !sender.is_closed() => {
                    slots.insert(id, Slot::Waiting(sender));
                    return Err(BrokerError::AlreadyWaiting { id });
                }
                _ => {}
            }
            let (sender, receiver) = oneshot::channel();
            slots.insert(id, Slot::Waiting(sender));
            receiver
        };
        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(info)) => Ok(info),
            _ => {
                let mut slots = self.slots();
                if let Some(Slot::Waiting(_)) = slots.get(&id) {
                    slots.remove(&id);
                }
                Err(BrokerError::Timeout { id })
            }
        }
    }

    /// Waits for broker id `id` and opens a gRPC channel to it over mutual TLS.
    pub(crate) async fn connect(&self, id: u32) -> Result<BrokerChannel, BrokerError> {
        let info = self.wait_for(id, CONN_INFO_TIMEOUT).await?;
        let connector = BrokerConnector {
            id,
            tls: self.tls.clone(),
            network: info.network,
            address: info.address,
        };
        let sender = connector.open().await?;
        Ok(BrokerChannel {
            shared: Arc::new(ChannelShared {
                connector,
                connection: RecoveringMutex::new(Connection {
                    sender,
                    redial: None,
                }),
            }),
        })
    }
}

/// A gRPC channel to one of the server's broker listeners: hyper's HTTP/2 client on one
/// connection, dialed again if the server has closed it.
///
/// tonic's `Channel` would put a request queue with its own task (tower's `Buffer`), a reconnect
/// layer and an I/O timeout wrapper in front of every storage call; a request through the
/// server makes one or two such calls. The generated clients take this channel as it is.
#[derive(Clone)]
pub(crate) struct BrokerChannel {
    shared: Arc<ChannelShared>,
}

struct ChannelShared {
    connector: BrokerConnector,
    connection: RecoveringMutex<Connection>,
}

/// One dial's outcome, shared by every call that waited for it.
type Dialed = Result<http2::SendRequest<Body>, BrokerError>;

struct Connection {
    sender: http2::SendRequest<Body>,
    /// The dial replacing a closed `sender`. Calls that find the connection closed all wait
    /// for this one dial instead of each dialing and all but one throwing theirs away.
    redial: Option<Arc<OnceCell<Dialed>>>,
}

impl fmt::Debug for BrokerChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let connector = &self.shared.connector;
        f.debug_struct("BrokerChannel")
            .field("id", &connector.id)
            .field("address", &connector.address)
            .finish()
    }
}

impl BrokerChannel {
    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.shared.connection.lock()
    }

    /// The sender of the open connection, or of a new one if the server closed it.
    async fn sender(&self) -> Dialed {
        let redial = {
            let mut connection = self.connection();
            if !connection.sender.is_closed() {
                return Ok(connection.sender.clone());
            }
            connection.redial.get_or_insert_with(Arc::default).clone()
        };
        // The first caller dials; the others wait for its result. Should that caller be
        // cancelled, the next waiter dials instead.
        let dialed = redial
            .get_or_init(|| {
                tracing::debug!(
                    id = self.shared.connector.id,
                    "the broker connection closed; dialing again"
                );
                self.shared.connector.open()
            })
            .await
            .clone();
        let mut connection = self.connection();
        if connection
            .redial
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, &redial))
        {
            // The first to return settles it. A failed dial is not kept: the next call after
            // these tries again.
            connection.redial = None;
            if let Ok(fresh) = &dialed {
                connection.sender = fresh.clone();
            }
        }
        dialed
    }
}

#[cfg(test)]
impl BrokerChannel {
    /// Whether the current connection has closed (tests wait for this before the next call).
    fn connection_closed(&self) -> bool {
        self.connection().sender.is_closed()
    }
}

impl tower::Service<http::Request<Body>> for BrokerChannel {
    type Response = http::Response<Incoming>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is settled per call: a closed connection is replaced then.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let channel = self.clone();
        Box::pin(async move {
            // Every call on this channel is unary (Storage, SystemView), so the body is one
            // message that is already encoded. Sent whole, it goes out as one DATA frame that
            // ends the stream; streamed, it took a second, empty DATA frame to end it: one
            // more write and TLS record per storage call than a Go plugin spends.
            let (parts, body) = request.into_parts();
            let message = body.collect().await?.to_bytes();
            let request = http::Request::from_parts(parts, Body::new(Full::new(message)));
            let mut sender = channel.sender().await?;
            Ok(sender.send_request(request).await?)
        })
    }
}

#[derive(Clone)]
struct BrokerConnector {
    id: u32,
    tls: Option<TlsConnector>,
    network: String,
    address: String,
}

impl BrokerConnector {
    /// Dials, secures and starts HTTP/2 on a new connection, whose driver runs as its own task.
    async fn open(&self) -> Result<http2::SendRequest<Body>, BrokerError> {
        let dial_error = |source: Arc<dyn std::error::Error + Send + Sync>| BrokerError::Dial {
            id: self.id,
            address: format!("{}:{}", self.network, self.address),
            source,
        };
        let opened = async {
            let io = self.dial().await.map_err(|e| Arc::new(e) as Arc<_>)?;
            http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(|e| Arc::new(e) as Arc<_>)
        };
        let (sender, connection) = tokio::time::timeout(CONN_INFO_TIMEOUT, opened)
            .await
            .map_err(|_| dial_error(Arc::new(io::Error::from(io::ErrorKind::TimedOut))))?
            .map_err(dial_error)?;
        let id = self.id;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(id, error = %e, "broker connection ended");
            }
        });
        Ok(sender)
    }

    async fn dial(&self) -> io::Result<TokioIo<Box<dyn Io>>> {
        let socket: Box<dyn Io> = match self.network.as_str() {
            "unix" => Box::new(UnixStream::connect(&self.address).await?),
            "tcp" => Box::new(TcpStream::connect(&self.address).await?),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unsupported broker network {other:?}"),
                ));
            }
        };
        let Some(connector) = &self.tls else {
            return Ok(TokioIo::new(socket));
        };
        let name = ServerName::try_from(tls::SERVER_NAME)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let stream = connector.connect(name, socket).await?;
        if stream.get_ref().1.alpn_protocol() != Some(tls::ALPN_H2) {
            return Err(io::Error::other(
                "the server did not agree to ALPN h2 on the broker connection",
            ));
        }
        Ok(TokioIo::new(Box::new(stream)))
    }
}

/// `plugin.GRPCBroker`: the server opens `StartStream` right after connecting and keeps it for
/// the life of the process. When it ends, the server is gone or is stopping us.
#[derive(Debug)]
pub(crate) struct BrokerService {
    broker: Arc<Broker>,
    lifecycle: Lifecycle,
}

impl BrokerService {
    pub(crate) fn new(broker: Arc<Broker>, lifecycle: Lifecycle) -> Self {
        Self { broker, lifecycle }
    }
}

#[tonic::async_trait]
impl GrpcBroker for BrokerService {
    type StartStreamStream = ReceiverStream<Result<ConnInfo, Status>>;

    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut inbound = request.into_inner();
        // We announce no listeners of our own; the sender only keeps our half open until the
        // server's half ends.
        let (keep_open, outbound) = mpsc::channel(1);
        let broker = self.broker.clone();
        let lifecycle = self.lifecycle.clone();
        tokio::spawn(async move {
            let why = loop {
                let message = tokio::select! {
                    message = inbound.message() => message,
                    // Stopping for another reason: end our half so the stop is not held up.
                    _ = lifecycle.stopped() => return,
                };
                match message {
                    Ok(Some(info)) if info.knock.is_some() => {
                        tracing::warn!(
                            id = info.service_id,
                            "ignoring a multiplexed-broker knock: PLUGIN_MULTIPLEX_GRPC is not \
                             supported"
                        );
                    }
                    Ok(Some(info)) => broker.deliver(info),
                    Ok(None) => break "the server closed the broker stream".to_owned(),
                    Err(status) => break format!("the broker stream failed: {}", status.message()),
                }
            };
            drop(keep_open);
            lifecycle.exit(ExitReason::HostGone(why));
        });
        Ok(Response::new(ReceiverStream::new(outbound)))
    }
}

#[cfg(test)]
mod tests;
