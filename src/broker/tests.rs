#![allow(clippy::unwrap_used)]

use super::*;
use crate::tls::Identity;

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
    assert_eq!(
        broker.wait_for(1, Duration::ZERO).await,
        Err(BrokerError::Timeout { id: 1 })
    );
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
    assert_eq!(
        broker.wait_for(7, CONN_INFO_TIMEOUT).await,
        Err(BrokerError::AlreadyWaiting { id: 7 })
    );
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
    assert_eq!(error, BrokerError::Timeout { id: 9 });
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
    let text = error.to_string();
    assert!(matches!(error, BrokerError::Dial { id: 4, .. }), "{text}");
    assert!(text.contains("unix:/nonexistent/plugin.sock"), "{text}");

    broker.deliver(ConnInfo {
        network: "udp".into(),
        ..info(5, "127.0.0.1:1")
    });
    let text = broker.connect(5).await.unwrap_err().to_string();
    assert!(
        text.contains("unsupported broker network \"udp\""),
        "{text}"
    );
}

#[test]
fn error_chain_includes_every_cause_once() {
    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("transport error")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let error = Outer(std::io::Error::other("connection refused"));
    assert_eq!(error_chain(&error), "transport error: connection refused");
}
