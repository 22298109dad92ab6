//! The machinery run in process through the public entry, [`serve_until`], with this test
//! playing the server: it offers protocol 5 with its certificate, reads the handshake line,
//! dials the plugin over mutual TLS (the server's certificate, the plugin's pinned) and calls
//! the plugin's services. What needs a process of its own (the exit status, stdout before the
//! line, signals, mlock) stays in the subprocess suites (`tests/protocol.rs`, `tests/by_hand.rs`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use base64::Engine as _;
use tokio::sync::oneshot;

use super::*;
use crate::backend::framework::{RoutedBackend, Router};
use crate::backend::{BackendConfig, Error};
use crate::handshake::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};
use crate::proto::logical::plugin_version_client::PluginVersionClient;
use crate::proto::plugin::grpc_controller_client::GrpcControllerClient;
use crate::proto::plugin::{ConnInfo, Empty};
use crate::services::broker::{Broker, BrokerChannel};
use crate::transport::tls::{self, Identity};

/// A backend with no paths: these tests are about the machinery around it.
struct Nothing;

static ROUTER: LazyLock<Router<Nothing>> = LazyLock::new(|| Router::new("No paths.", Vec::new()));

impl RoutedBackend for Nothing {
    fn router(&self) -> &Router<Self> {
        &ROUTER
    }
}

struct Factory;

impl BackendFactory for Factory {
    type Backend = Nothing;

    async fn create(&self, _config: BackendConfig) -> Result<Nothing, Error> {
        Ok(Nothing)
    }
}

/// The broker channel carries no address of its own; gRPC wants one in the request.
static ORIGIN: LazyLock<tonic::codegen::http::Uri> =
    LazyLock::new(|| tonic::codegen::http::Uri::from_static("http://localhost"));

static INFO: PluginInfo = PluginInfo::new("in-process", "1.2.3");

/// The server's side: its identity, and a private directory for the plugin's socket.
struct Server {
    identity: Identity,
    socket_parent: PathBuf,
}

impl Server {
    fn new(name: &str) -> Self {
        let socket_parent =
            std::env::temp_dir().join(format!("entry-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&socket_parent);
        std::fs::create_dir_all(&socket_parent).unwrap();
        Self {
            identity: Identity::generate().unwrap(),
            socket_parent,
        }
    }

    /// A launch of a backend plugin as the server makes one: the cookie, `versions`, its
    /// certificate.
    fn launch(&self, versions: &str) -> Launch {
        self.launch_with((MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE), versions)
    }

    /// A launch with the cookie `(key, value)`.
    fn launch_with(&self, (key, value): (&'static str, &'static str), versions: &str) -> Launch {
        let cert = self.identity.cert_pem();
        let dir = self.socket_parent.display().to_string();
        let versions = versions.to_owned();
        Launch::from_vars(move |name| match name {
            name if name == key => Some(value.to_owned()),
            "PLUGIN_PROTOCOL_VERSIONS" => Some(versions.clone()),
            "PLUGIN_CLIENT_CERT" => Some(cert.clone()),
            "PLUGIN_UNIX_SOCKET_DIR" => Some(dir.clone()),
            _ => None,
        })
    }

    /// Dials the plugin that announced `line`, pinning the certificate the line carries.
    async fn connect(&self, line: &str) -> (BrokerChannel, PathBuf) {
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields[0], "1", "{line}");
        assert_eq!(fields[2], "unix", "{line}");
        assert_eq!(fields[4], "grpc", "{line}");
        let plugin_cert = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(fields[5])
            .unwrap();
        let config = tls::client_config(&self.identity, plugin_cert.into()).unwrap();
        // The broker's dialer is the machinery's mutual-TLS client: here it dials the plugin.
        let broker = Broker::new(config);
        broker.deliver(ConnInfo {
            service_id: 1,
            network: "unix".into(),
            address: fields[3].into(),
            knock: None,
        });
        (broker.connect(1).await.unwrap(), PathBuf::from(fields[3]))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.socket_parent);
    }
}

/// The line `serve_until` announces, sent to the test.
fn announcer() -> (
    impl FnOnce(&str) -> std::io::Result<()>,
    oneshot::Receiver<String>,
) {
    let (sender, receiver) = oneshot::channel();
    let announce = move |line: &str| {
        let _ = sender.send(line.to_owned());
        Ok(())
    };
    (announce, receiver)
}

fn socket_dir(socket: &Path) -> PathBuf {
    socket.parent().unwrap().to_owned()
}

#[tokio::test]
async fn a_plugin_serves_in_process_until_its_shutdown_future_completes() {
    let server = Server::new("shutdown-future");
    let launch = server.launch("5");
    let (announce, line) = announcer();
    let (stop, stop_requested) = oneshot::channel::<()>();
    let serving = serve_until(&INFO, Factory, &launch, announce, async {
        let _ = stop_requested.await;
    });
    let client = async {
        let (channel, socket) = server.connect(&line.await.unwrap()).await;
        let version = PluginVersionClient::with_origin(channel, ORIGIN.clone())
            .version(crate::proto::logical::Empty {})
            .await
            .unwrap()
            .into_inner()
            .plugin_version;
        assert!(socket.exists());
        stop.send(()).unwrap();
        (version, socket)
    };
    let (stopped, (version, socket)) = tokio::join!(serving, client);
    assert_eq!(stopped.unwrap(), Stopped::ShutdownRequested);
    assert_eq!(version, "v1.2.3");
    assert!(
        !socket_dir(&socket).exists(),
        "the socket's directory outlived serving"
    );
}

#[tokio::test]
async fn the_servers_shutdown_call_ends_serving() {
    let server = Server::new("controller");
    let launch = server.launch("3,4,5");
    let (announce, line) = announcer();
    let serving = serve_until(&INFO, Factory, &launch, announce, std::future::pending());
    let client = async {
        let (channel, _) = server.connect(&line.await.unwrap()).await;
        GrpcControllerClient::with_origin(channel, ORIGIN.clone())
            .shutdown(Empty {})
            .await
            .unwrap();
    };
    let (stopped, ()) = tokio::join!(serving, client);
    assert_eq!(stopped.unwrap(), Stopped::ServerAsked);
}

#[tokio::test]
async fn a_launch_the_plugin_cannot_serve_fails_before_the_line() {
    let server = Server::new("no-common-version");
    let launch = server.launch("6,7");
    let (announce, mut line) = announcer();
    let error = serve_until(&INFO, Factory, &launch, announce, std::future::pending())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("6, 7") || text.contains("6,7"), "{text}");
    assert!(line.try_recv().is_err(), "a line was announced: {text}");

    let no_cookie =
        Launch::from_vars(|name| (name == "PLUGIN_PROTOCOL_VERSIONS").then(|| "5".to_owned()));
    let (announce, _) = announcer();
    let no_cookie = serve_until(&INFO, Factory, &no_cookie, announce, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        no_cookie.to_string().contains(MAGIC_COOKIE_KEY),
        "{no_cookie}"
    );
}

#[tokio::test]
async fn a_handshake_line_that_cannot_be_written_is_an_error_with_its_cause() {
    let server = Server::new("announce-fails");
    let launch = server.launch("5");
    let broken = |_: &str| Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
    let error = serve_until(&INFO, Factory, &launch, broken, std::future::pending())
        .await
        .unwrap_err();
    let cause = std::error::Error::source(&error).unwrap();
    assert_eq!(
        cause.downcast_ref::<std::io::Error>().unwrap().kind(),
        std::io::ErrorKind::BrokenPipe
    );
    assert_eq!(
        report(&error),
        format!("cannot write the handshake line to stdout: {cause}")
    );
}

#[tokio::test(start_paused = true)]
async fn no_connection_within_the_timeout_is_an_error_after_the_line() {
    let server = Server::new("never-connects");
    let launch = server.launch("5").connect_timeout(Duration::from_secs(2));
    let (announce, mut line) = announcer();
    let error = serve_until(&INFO, Factory, &launch, announce, std::future::pending())
        .await
        .unwrap_err();
    assert!(line.try_recv().is_ok(), "the line must go out first");
    assert_eq!(
        error.to_string(),
        "no mutual-TLS connection from the server within 2s of the handshake; the server gave \
         up on this plugin"
    );
}

/// A database that knows one user.
struct OneUser;

impl crate::database::Database for OneUser {
    const TYPE: &'static str = "one-user";

    async fn initialize(
        &self,
        request: crate::database::InitializeRequest,
    ) -> Result<crate::database::InitializeResponse, crate::database::Error> {
        Ok(crate::database::InitializeResponse::new(request.config))
    }

    async fn new_user(
        &self,
        request: crate::database::NewUserRequest,
    ) -> Result<crate::database::NewUserResponse, crate::database::Error> {
        Ok(crate::database::NewUserResponse::new(request.role_name))
    }

    async fn update_user(
        &self,
        _request: crate::database::UpdateUserRequest,
    ) -> Result<(), crate::database::Error> {
        Ok(())
    }

    async fn delete_user(
        &self,
        _request: crate::database::DeleteUserRequest,
    ) -> Result<(), crate::database::Error> {
        Ok(())
    }
}

struct OneUserFactory;

impl crate::database::DatabaseFactory for OneUserFactory {
    type Database = OneUser;

    fn create(&self) -> Result<OneUser, crate::database::Error> {
        Ok(OneUser)
    }
}

#[tokio::test]
async fn a_database_plugin_serves_protocol_6_multiplexed_in_process() {
    use crate::handshake::{DATABASE_COOKIE_KEY, DATABASE_COOKIE_VALUE};
    use crate::proto::dbplugin::v5 as db;
    use crate::proto::pluginutil::multiplexing::plugin_multiplexing_client::PluginMultiplexingClient;
    use crate::services::database::Databases;

    let server = Server::new("database");
    let launch = server.launch_with((DATABASE_COOKIE_KEY, DATABASE_COOKIE_VALUE), "5,6");
    let (announce, line) = announcer();
    let (stop, stop_requested) = oneshot::channel::<()>();
    let serving = serve_kind_until(&INFO, Databases(OneUserFactory), &launch, announce, async {
        let _ = stop_requested.await;
    });
    let client = async {
        let line = line.await.unwrap();
        assert!(line.starts_with("1|6|unix|"), "{line}");
        let (channel, _) = server.connect(&line).await;
        let multiplexed = PluginMultiplexingClient::with_origin(channel.clone(), ORIGIN.clone())
            .multiplexing_support(
                crate::proto::pluginutil::multiplexing::MultiplexingSupportRequest {},
            )
            .await
            .unwrap()
            .into_inner()
            .supported;
        let mut database =
            db::database_client::DatabaseClient::with_origin(channel, ORIGIN.clone());
        let for_id = |id: &str, message| {
            let mut request = tonic::Request::new(message);
            request
                .metadata_mut()
                .insert("multiplex_id", id.parse().unwrap());
            request
        };
        let kind = database
            .r#type(for_id("conn-1", db::Empty {}))
            .await
            .unwrap();
        let created = database
            .new_user(tonic::Request::new(db::NewUserRequest::default()))
            .await
            .unwrap_err();
        stop.send(()).unwrap();
        (multiplexed, kind.into_inner().r#type, created)
    };
    let (stopped, (multiplexed, kind, refused)) = tokio::join!(serving, client);
    assert_eq!(stopped.unwrap(), Stopped::ShutdownRequested);
    assert!(multiplexed);
    assert_eq!(kind, "one-user");
    // Over the wire a call always carries some metadata (content-type, te), so a call
    // without the id gets the Go SDK's "no ID" answer, as from a Go plugin.
    assert_eq!(refused.message(), "no multiplexing ID found");
}

#[tokio::test]
async fn a_database_plugin_refuses_the_legacy_protocol_in_one_line() {
    use crate::handshake::{DATABASE_COOKIE_KEY, DATABASE_COOKIE_VALUE};
    use crate::services::database::Databases;

    let server = Server::new("database-legacy");
    let launch = server.launch_with((DATABASE_COOKIE_KEY, DATABASE_COOKIE_VALUE), "4");
    let (announce, _) = announcer();
    let error = serve_kind_until(
        &INFO,
        Databases(OneUserFactory),
        &launch,
        announce,
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the server offers plugin protocol version(s) [4], the legacy database plugin protocol; \
         this plugin serves database plugin protocol v5 (plugin protocols [6, 5]), which \
         OpenBao and Vault 1.6 and later support"
    );
    // A backend cookie on a database plugin: registered with the wrong type.
    let launch = server.launch("5");
    let (announce, _) = announcer();
    let error = serve_kind_until(
        &INFO,
        Databases(OneUserFactory),
        &launch,
        announce,
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("This is a database plugin, not a secrets engine"),
        "{error}"
    );
}
