//! The process's lifetime: go-plugin's `GRPCController` (the server asks us to exit) and
//! `GRPCStdio`, and the one place that decides when and why the plugin stops.

use std::fmt;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::proto::plugin::grpc_controller_server::GrpcController;
use crate::proto::plugin::grpc_stdio_server::GrpcStdio;
use crate::proto::plugin::{Empty, StdioData};

/// Why the plugin stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ExitReason {
    /// The server called `GRPCController/Shutdown`.
    Shutdown,
    /// The server went away without saying so (killed, or it closed our connection).
    HostGone(String),
    /// The start failed after the handshake line: no usable connection arrived.
    StartFailed(String),
    /// Whoever runs the plugin in process asked it to stop (`serve_until`'s shutdown future).
    Requested,
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shutdown => f.write_str("the server asked the plugin to shut down"),
            Self::Requested => f.write_str("the plugin was asked to stop"),
            Self::HostGone(why) | Self::StartFailed(why) => f.write_str(why),
        }
    }
}

/// Shared by everything that may end the process; the first reason given wins.
#[derive(Clone, Debug)]
pub(crate) struct Lifecycle {
    reason: Arc<watch::Sender<Option<ExitReason>>>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Self {
            reason: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Asks the process to stop for `reason`, unless it is already stopping.
    pub(crate) fn exit(&self, reason: ExitReason) {
        self.reason.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            tracing::debug!(reason = %reason, "plugin stopping");
            *current = Some(reason);
            true
        });
    }

    /// The reason, once there is one.
    pub(crate) async fn stopped(&self) -> ExitReason {
        let mut receiver = self.reason.subscribe();
        loop {
            if let Some(reason) = receiver.borrow_and_update().clone() {
                return reason;
            }
            // The sender lives in `self`, so it cannot be dropped while we wait.
            if receiver.changed().await.is_err() {
                return ExitReason::HostGone("lifecycle dropped".to_owned());
            }
        }
    }

    /// The reason, if the process is stopping.
    pub(crate) fn reason(&self) -> Option<ExitReason> {
        self.reason.borrow().clone()
    }
}

/// `plugin.GRPCController`: the server's request to exit.
#[derive(Debug)]
pub(crate) struct ControllerService {
    lifecycle: Lifecycle,
}

impl ControllerService {
    pub(crate) fn new(lifecycle: Lifecycle) -> Self {
        Self { lifecycle }
    }
}

#[tonic::async_trait]
impl GrpcController for ControllerService {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        // The reply still goes out: the server stops serving after a short grace period.
        self.lifecycle.exit(ExitReason::Shutdown);
        Ok(Response::new(Empty {}))
    }
}

/// `plugin.GRPCStdio`: go-plugin forwards a plugin's later stdout/stderr writes here. We write
/// nothing to stdout after the handshake and log to stderr directly, so the stream stays open
/// and empty until the server cancels it or the plugin stops.
#[derive(Debug)]
pub(crate) struct StdioService {
    lifecycle: Lifecycle,
}

impl StdioService {
    pub(crate) fn new(lifecycle: Lifecycle) -> Self {
        Self { lifecycle }
    }
}

#[tonic::async_trait]
impl GrpcStdio for StdioService {
    type StreamStdioStream = ReceiverStream<Result<StdioData, Status>>;

    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        // Nothing is ever sent; the stream ends when the sender is dropped at stop.
        let (sender, receiver) = mpsc::channel(1);
        let lifecycle = self.lifecycle.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = lifecycle.stopped() => {}
                // The server cancelled the stream.
                _ = sender.closed() => {}
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_wins() {
        let lifecycle = Lifecycle::new();
        assert_eq!(lifecycle.reason(), None);
        let waiter = tokio::spawn({
            let lifecycle = lifecycle.clone();
            async move { lifecycle.stopped().await }
        });
        lifecycle.exit(ExitReason::Shutdown);
        lifecycle.exit(ExitReason::HostGone("later".into()));
        assert_eq!(waiter.await.expect("waiter finished"), ExitReason::Shutdown);
        assert_eq!(lifecycle.stopped().await, ExitReason::Shutdown);
    }

    #[tokio::test]
    async fn shutdown_rpc_stops_the_process() {
        let lifecycle = Lifecycle::new();
        let controller = ControllerService::new(lifecycle.clone());
        controller
            .shutdown(Request::new(Empty {}))
            .await
            .expect("shutdown is always answered");
        assert_eq!(lifecycle.reason(), Some(ExitReason::Shutdown));
    }
}
