#![allow(clippy::unwrap_used)]

use super::*;
use crate::backend::Storage as _;
use crate::proto::pb;
use crate::services::backend::storage::HostStorage;
use crate::session::dispatch::{self, GrpcServices};
use crate::transport::tls::Identity;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::UnixListener;

fn broker() -> Broker {
    let me = Identity::generate().unwrap();
    let server = Identity::generate().unwrap();
    Broker::new(tls::client_config(&me, server.cert).unwrap())
}

fn info(id: u32, address: &str) -> ConnInfo {
    ConnInfo {
        service_id: id,
        network: "unix".into(),
        address: address.into(),
        knock: None,
    }
}

#[tokio::test]
async fn an_announcement_that_came_first_is_waiting() {
    let broker = broker();
    broker.deliver(info(1, "/a"));
    broker.deliver(info(2, "/b"));
    assert_eq!(
        broker.wait_for(2, Duration::ZERO).await.unwrap().address,
        "/b"
    );
    assert_eq!(
        broker.wait_for(1, Duration::ZERO).await.unwrap().address,
        "/a"
    );
    // Each announcement is claimed once.
    assert!(matches!(
        broker.wait_for(1, Duration::ZERO).await,
        Err(BrokerError::Timeout { id: 1 })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_waiter_gets_an_announcement_that_comes_later() {
    let broker = Arc::new(broker());
    let waiter = tokio::spawn({
        let broker = broker.clone();
        async move { broker.wait_for(7, CONN_INFO_TIMEOUT).await }
    });
    tokio::task::yield_now().await;
    // A second Setup for the same id while the first waits is refused.
    assert!(matches!(
        broker.wait_for(7, CONN_INFO_TIMEOUT).await,
        Err(BrokerError::AlreadyWaiting { id: 7 })
    ));
    broker.deliver(info(3, "/other"));
    broker.deliver(info(7, "/mine"));
    assert_eq!(waiter.await.unwrap().unwrap().address, "/mine");
    assert_eq!(
        broker.wait_for(3, Duration::ZERO).await.unwrap().address,
        "/other"
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_gives_up_after_the_timeout_with_a_clear_error() {
    let broker = broker();
    let started = Instant::now();
    let error = broker.wait_for(9, CONN_INFO_TIMEOUT).await.unwrap_err();
    assert_eq!(started.elapsed(), CONN_INFO_TIMEOUT);
    assert!(matches!(error, BrokerError::Timeout { id: 9 }), "{error}");
    assert!(
        error
            .to_string()
            .contains("timeout waiting for connection info")
    );
    // A late announcement is kept for a retry rather than lost.
    broker.deliver(info(9, "/late"));
    assert_eq!(
        broker.wait_for(9, Duration::ZERO).await.unwrap().address,
        "/late"
    );
}

#[tokio::test]
async fn dialing_an_address_that_refuses_names_it() {
    let broker = broker();
    broker.deliver(info(4, "/nonexistent/plugin.sock"));
    let error = broker.connect(4).await.unwrap_err();
    let text = crate::report::report(&error);
    assert!(matches!(error, BrokerError::Dial { id: 4, .. }), "{text}");
    // The cause is kept, not flattened: the OS error is the source.
    let cause = std::error::Error::source(&error).unwrap();
    assert!(cause.downcast_ref::<io::Error>().is_some(), "{cause:?}");
    assert_eq!(
        text,
        format!(
            "cannot connect to the server's broker listener 4 at unix:/nonexistent/plugin.sock: {cause}"
        )
    );

    broker.deliver(ConnInfo {
        network: "udp".into(),
        ..info(5, "127.0.0.1:1")
    });
    let text = crate::report::report(&broker.connect(5).await.unwrap_err());
    assert!(
        text.contains("unsupported broker network \"udp\""),
        "{text}"
    );
}

/// A storage holding one key, `key` = `value`, for the broker connection tests.
#[derive(Clone, Copy)]
struct OneKey;

fn not_here<T>() -> Result<tonic::Response<T>, Status> {
    Err(Status::unimplemented("not in this test"))
}

#[tonic::async_trait]
impl pb::storage_server::Storage for OneKey {
    async fn get(
        &self,
        request: Request<pb::StorageGetArgs>,
    ) -> Result<tonic::Response<pb::StorageGetReply>, Status> {
        let key = request.into_inner().key;
        let entry = (key == "key").then(|| pb::StorageEntry {
            key,
            value: b"value".to_vec(),
            seal_wrap: false,
        });
        Ok(tonic::Response::new(pb::StorageGetReply {
            entry,
            err: String::new(),
        }))
    }
    async fn list(
        &self,
        _: Request<pb::StorageListArgs>,
    ) -> Result<tonic::Response<pb::StorageListReply>, Status> {
        not_here()
    }
    async fn list_page(
        &self,
        _: Request<pb::StorageListPageArgs>,
    ) -> Result<tonic::Response<pb::StorageListReply>, Status> {
        not_here()
    }
    async fn put(
        &self,
        _: Request<pb::StoragePutArgs>,
    ) -> Result<tonic::Response<pb::StoragePutReply>, Status> {
        not_here()
    }
    async fn delete(
        &self,
        _: Request<pb::StorageDeleteArgs>,
    ) -> Result<tonic::Response<pb::StorageDeleteReply>, Status> {
        not_here()
    }
    async fn is_transactional(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<tonic::Response<pb::StorageIsTransactionalReply>, Status> {
        not_here()
    }
    async fn begin_read_only_tx(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<tonic::Response<pb::StorageBeginTxReply>, Status> {
        not_here()
    }
    async fn begin_tx(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<tonic::Response<pb::StorageBeginTxReply>, Status> {
        not_here()
    }
    async fn commit(
        &self,
        _: Request<pb::StorageCommitTxArgs>,
    ) -> Result<tonic::Response<pb::StorageCommitTxReply>, Status> {
        not_here()
    }
    async fn rollback(
        &self,
        _: Request<pb::StorageRollbackTxArgs>,
    ) -> Result<tonic::Response<pb::StorageRollbackTxReply>, Status> {
        not_here()
    }
}

/// Serves `OneKey` on the next connection `listener` accepts, until `stop` completes.
fn serve_next(
    listener: Arc<UnixListener>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (connections, incoming) = mpsc::channel(1);
        connections.send(socket).await.unwrap();
        let services = GrpcServices::new(pb::storage_server::StorageServer::new(OneKey));
        dispatch::serve(services, incoming, stop).await;
    })
}

/// Waits until the channel has seen its connection close; the plugin would only notice on
/// its next call, which is what the tests then make.
async fn until_closed(channel: &BrokerChannel) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !channel.connection_closed() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the channel saw its connection close");
}

#[tokio::test]
async fn a_broker_connection_the_server_closed_is_dialed_again() {
    let dir = std::env::temp_dir().join(format!("broker-redial-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("broker.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = Arc::new(UnixListener::bind(&socket).unwrap());
    let broker = Broker::with_tls(None);
    broker.deliver(info(9, socket.to_str().unwrap()));

    let (close_first, first_closed) = oneshot::channel::<()>();
    let first = serve_next(listener.clone(), async {
        let _ = first_closed.await;
    });
    let channel = broker.connect(9).await.unwrap();
    let storage = HostStorage::new(channel.clone());
    assert_eq!(storage.get("key").await.unwrap(), Some(b"value".to_vec()));
    assert_eq!(storage.get("other").await.unwrap(), None);

    // The server ends that connection (GOAWAY, then the socket); the next call dials again.
    close_first.send(()).unwrap();
    first.await.unwrap();
    until_closed(&channel).await;
    let (close_second, second_closed) = oneshot::channel::<()>();
    let second = serve_next(listener.clone(), async {
        let _ = second_closed.await;
    });
    assert_eq!(storage.get("key").await.unwrap(), Some(b"value".to_vec()));

    // With the listener gone too, the call fails and says where it tried to go.
    drop(listener);
    std::fs::remove_file(&socket).unwrap();
    close_second.send(()).unwrap();
    second.await.unwrap();
    until_closed(&channel).await;
    let error = storage.get("key").await.unwrap_err().to_string();
    assert!(
        error.contains("cannot connect to the server's broker listener 9")
            && error.contains(socket.to_str().unwrap()),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Serves `OneKey` on every connection `listener` accepts from now on, counting them.
fn serve_all(listener: Arc<UnixListener>) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counting = accepted.clone();
    let server = tokio::spawn(async move {
        let (connections, incoming) = mpsc::channel(64);
        let services = GrpcServices::new(pb::storage_server::StorageServer::new(OneKey));
        tokio::spawn(dispatch::serve(services, incoming, std::future::pending()));
        while let Ok((socket, _)) = listener.accept().await {
            counting.fetch_add(1, Ordering::SeqCst);
            if connections.send(socket).await.is_err() {
                return;
            }
        }
    });
    (accepted, server)
}

#[tokio::test]
async fn concurrent_calls_on_a_closed_connection_dial_once() {
    let dir = std::env::temp_dir().join(format!("broker-single-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("broker.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = Arc::new(UnixListener::bind(&socket).unwrap());
    let broker = Broker::with_tls(None);
    broker.deliver(info(11, socket.to_str().unwrap()));

    let (close_first, first_closed) = oneshot::channel::<()>();
    let first = serve_next(listener.clone(), async {
        let _ = first_closed.await;
    });
    let channel = broker.connect(11).await.unwrap();
    close_first.send(()).unwrap();
    first.await.unwrap();
    until_closed(&channel).await;

    let (dials, server) = serve_all(listener);
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let storage = HostStorage::new(channel.clone());
            tokio::spawn(async move { storage.get("key").await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), Some(b"value".to_vec()));
    }
    assert_eq!(dials.load(Ordering::SeqCst), 1, "one dial for 16 calls");

    // The connection they share serves the next calls too.
    let storage = HostStorage::new(channel.clone());
    assert_eq!(storage.get("key").await.unwrap(), Some(b"value".to_vec()));
    assert_eq!(dials.load(Ordering::SeqCst), 1);
    server.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn concurrent_calls_share_a_failed_dial_and_the_next_call_dials_again() {
    let dir = std::env::temp_dir().join(format!("broker-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("broker.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = Arc::new(UnixListener::bind(&socket).unwrap());
    let broker = Broker::with_tls(None);
    broker.deliver(info(12, socket.to_str().unwrap()));
    let (close_first, first_closed) = oneshot::channel::<()>();
    let first = serve_next(listener.clone(), async {
        let _ = first_closed.await;
    });
    let channel = broker.connect(12).await.unwrap();
    close_first.send(()).unwrap();
    first.await.unwrap();
    until_closed(&channel).await;

    // Nobody listens: every concurrent call gets the one dial's error.
    drop(listener);
    std::fs::remove_file(&socket).unwrap();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let storage = HostStorage::new(channel.clone());
            tokio::spawn(async move { storage.get("key").await })
        })
        .collect();
    for call in calls {
        let error = call.await.unwrap().unwrap_err().to_string();
        assert!(
            error.contains("cannot connect to the server's broker listener 12"),
            "{error}"
        );
    }

    // The listener is back: the next call dials again rather than keeping the old error.
    let listener = Arc::new(UnixListener::bind(&socket).unwrap());
    let (dials, server) = serve_all(listener);
    let storage = HostStorage::new(channel.clone());
    assert_eq!(storage.get("key").await.unwrap(), Some(b"value".to_vec()));
    assert_eq!(dials.load(Ordering::SeqCst), 1);
    server.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}
