//! Dialing the plugin's socket for a gRPC channel, and the calls' metadata.

use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};
use vault_plugin_sdk::proto::pb;

use super::{MULTIPLEX_ID, RPC_TIMEOUT};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Duplicates of the sockets a channel uses, so a test can cut them as a dying host would.
pub(super) type Sockets = Arc<Mutex<Vec<StdUnixStream>>>;

/// Opens a gRPC channel to the plugin's socket: over TLS with `tls`, in plain text without.
/// Fails if TLS fails on our side; a refusal by the plugin may only show on the first call.
pub async fn dial(
    socket: &Path,
    tls: Option<Arc<ClientConfig>>,
) -> Result<Channel, tonic::transport::Error> {
    dial_tracked(socket, tls, Sockets::default()).await
}

pub(super) async fn dial_tracked(
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
