//! A mount's brokered gRPC server: a unix socket with mutual TLS as grpc-go serves it, with
//! the host's `pb.Storage` and `pb.SystemView` behind it.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;
use tonic::transport::server::Connected;
use tonic::{Response, Status};
use vault_plugin_sdk::proto::pb::storage_server::StorageServer;
use vault_plugin_sdk::proto::pb::system_view_server::SystemViewServer;

use super::storage::{MemStorage, StorageService};
use super::system_view::SystemViewService;
use super::tls::{HostCert, server_tls};
use super::{AbortOnDrop, RPC_TIMEOUT};

/// One mount's brokered gRPC server; stops when dropped.
pub(super) struct BrokeredServer {
    _tasks: [AbortOnDrop; 2],
}

impl BrokeredServer {
    pub(super) fn start(
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

pub(super) fn unimplemented<T>(what: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!(
        "{what} is not implemented by the test host"
    )))
}
