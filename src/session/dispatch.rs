//! Serving the plugin's gRPC services on the connections the server opens: hyper's HTTP/2
//! server and a fixed table from gRPC service name to service.
//!
//! tonic's `Server` does the same through an axum router, a boxed service, a `grpc-timeout`
//! layer and a request-body adapter on every call. Every HTTP request to the mount is two or
//! three calls into the plugin, so those layers were a measurable share of the plugin's CPU
//! (see the README's performance section). The generated services are called as they are.

use std::convert::Infallible;
use std::future::Future;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::BoxFuture;
use tonic::codegen::http::{Request, Response};
use tonic::server::NamedService;
use tower::Service;
use tower::util::BoxCloneSyncService;

type Reply = Response<Body>;
type OtherService = BoxCloneSyncService<Request<Incoming>, Reply, Infallible>;

/// A generated gRPC service, as the hot one is called: tonic's generated servers are this.
pub(crate) trait HotService:
    Service<
        Request<Incoming>,
        Response = Reply,
        Error = Infallible,
        Future = BoxFuture<Reply, Infallible>,
    > + NamedService
    + Clone
    + Send
    + 'static
{
}

impl<T> HotService for T where
    T: Service<
            Request<Incoming>,
            Response = Reply,
            Error = Infallible,
            Future = BoxFuture<Reply, Infallible>,
        > + NamedService
        + Clone
        + Send
        + 'static
{
}

/// The services of one plugin process, by gRPC service name. `H` is the one on the hot path
/// (`pb.Backend`), called without boxing; the others are rare calls (broker, controller,
/// version, health) and share one boxed type.
#[derive(Clone)]
pub(crate) struct GrpcServices<H> {
    hot: H,
    others: Vec<(&'static str, OtherService)>,
}

impl<H> GrpcServices<H>
where
    H: HotService,
{
    pub(crate) fn new(hot: H) -> Self {
        Self {
            hot,
            others: Vec::new(),
        }
    }

    /// Adds a service, found by its name (`S::NAME`, for example `plugin.GRPCBroker`).
    pub(crate) fn with<S>(mut self, service: S) -> Self
    where
        S: Service<Request<Incoming>, Response = Reply, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.others
            .push((S::NAME, BoxCloneSyncService::new(service)));
        self
    }

    fn route(&self, request: Request<Incoming>) -> BoxFuture<Reply, Infallible> {
        // The generated services are always ready (`poll_ready` returns `Ready(Ok)`), so they
        // are called directly, on a clone as tower's `call` takes `&mut self`.
        let name = service_name(request.uri().path());
        if name == H::NAME {
            return self.hot.clone().call(request);
        }
        match self.others.iter().find(|(other, _)| *other == name) {
            Some((_, service)) => service.clone().call(request),
            None => {
                let reply = Status::unimplemented(format!("unknown gRPC service {name:?}"));
                Box::pin(std::future::ready(Ok(reply.into_http())))
            }
        }
    }
}

impl<H> hyper::service::Service<Request<Incoming>> for GrpcServices<H>
where
    H: HotService,
{
    type Response = Reply;
    type Error = Infallible;
    type Future = BoxFuture<Reply, Infallible>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.route(request)
    }
}

/// `pb.Backend` of `/pb.Backend/HandleRequest`.
fn service_name(path: &str) -> &str {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split_once('/').map_or(path, |(service, _)| service)
}

/// Serves `services` on every connection `connections` yields, until `stop` completes or no
/// more connections can come. Then each connection is asked to finish (HTTP/2 GOAWAY: calls in
/// flight complete, new ones are refused) and this returns once all have closed.
pub(crate) async fn serve<H, I>(
    services: GrpcServices<H>,
    mut connections: mpsc::Receiver<I>,
    stop: impl Future<Output = ()>,
) where
    H: HotService,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2.timer(TokioTimer::new());
    let (stopping, stop_requested) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        let io = tokio::select! {
            () = &mut stop => break,
            io = connections.recv() => match io {
                Some(io) => io,
                None => break,
            },
        };
        let connection = http2.serve_connection(TokioIo::new(io), services.clone());
        let mut stop_requested = stop_requested.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let finished = tokio::select! {
                result = connection.as_mut() => Some(result),
                _ = stop_requested.wait_for(|stopping| *stopping) => None,
            };
            let result = match finished {
                Some(result) => result,
                None => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(stop_requested);
    let _ = stopping.send(true);
    // Every connection task holds a receiver; they are all gone once the last one has closed.
    stopping.closed().await;
}

#[cfg(test)]
mod tests {
    use super::service_name;

    #[test]
    fn the_service_name_is_the_first_path_segment() {
        assert_eq!(service_name("/pb.Backend/HandleRequest"), "pb.Backend");
        assert_eq!(
            service_name("/plugin.GRPCBroker/StartStream"),
            "plugin.GRPCBroker"
        );
        assert_eq!(service_name("/pb.Backend"), "pb.Backend");
        assert_eq!(service_name("/"), "");
        assert_eq!(service_name(""), "");
    }
}
