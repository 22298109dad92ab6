//! The host connected to a running plugin: the streams go-plugin keeps open, `Setup` with its
//! brokered listener, and the calls the server makes for a mount and its requests.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Response, Status};
use tonic_health::pb::health_client::HealthClient;
use vault_plugin_sdk::proto::logical::plugin_version_client::PluginVersionClient;
use vault_plugin_sdk::proto::pb::backend_client::BackendClient;
use vault_plugin_sdk::proto::plugin::grpc_broker_client::GrpcBrokerClient;
use vault_plugin_sdk::proto::plugin::grpc_controller_client::GrpcControllerClient;
use vault_plugin_sdk::proto::plugin::grpc_stdio_client::GrpcStdioClient;
use vault_plugin_sdk::proto::pluginutil::multiplexing::MultiplexingSupportRequest;
use vault_plugin_sdk::proto::pluginutil::multiplexing::plugin_multiplexing_client::PluginMultiplexingClient;
use vault_plugin_sdk::proto::{logical, pb, plugin};

use super::brokered::BrokeredServer;
use super::dial::{Sockets, dial_tracked, for_mount, wire_request};
use super::process::{Handshake, Launch, Plugin, TempDir};
use super::storage::{MemStorage, StorageMode};
use super::tls::{HostCert, client_tls};
use super::{AbortOnDrop, SETUP_READ_ONLY, STREAM_HEADERS_WAIT};

/// When (and whether) the host announces a mount's brokered listener on `StartStream`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnInfo {
    /// Before calling Setup.
    BeforeSetup,
    /// Once Setup is under way (the other order the real server produces).
    AfterSetupStarted,
    /// Never: Setup has to give up.
    Never,
    /// At once, but for a socket nobody listens on.
    Refusing,
}

/// What the host passes to and behind `Setup`.
#[derive(Clone, Debug)]
pub struct SetupOptions {
    pub config: HashMap<String, String>,
    pub backend_uuid: String,
    pub conn_info: ConnInfo,
    pub storage: StorageMode,
}

impl SetupOptions {
    /// `secrets enable` (§6.2): plugin config, a UUID, storage read-only until Initialize.
    pub fn mount() -> Self {
        let config = [
            ("plugin_name", "mock-plugin"),
            ("plugin_type", "secret"),
            ("plugin_version", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self {
            config,
            backend_uuid: "0b1a2c3d-4e5f-6071-8293-a4b5c6d7e8f9".to_owned(),
            conn_info: ConnInfo::BeforeSetup,
            storage: StorageMode::ReadOnly(SETUP_READ_ONLY.to_owned()),
        }
    }

    /// `plugin register` (§6.1): empty config and UUID, no storage behind the broker.
    pub fn registration() -> Self {
        Self {
            config: HashMap::new(),
            backend_uuid: String::new(),
            conn_info: ConnInfo::BeforeSetup,
            storage: StorageMode::Unbound(
                "missing storage implementation: the plugin is only being registered".to_owned(),
            ),
        }
    }
}

/// One mount's side of the host.
#[derive(Clone, Debug)]
pub struct Mount {
    pub id: String,
    pub broker_id: u32,
    /// The storage served to it over the broker.
    pub storage: MemStorage,
}

/// The result of a Setup call and what the host prepared for it.
#[derive(Debug)]
pub struct Setup {
    pub reply: Result<pb::SetupReply, Status>,
    pub mount: Mount,
    pub elapsed: Duration,
}

/// How the plugin's `StreamStdio` stream ended.
#[derive(Debug)]
pub struct StdioEnd {
    /// Messages received before the end (the plugin writes nothing to stdout after the
    /// handshake, so there is nothing to forward).
    pub messages: usize,
    pub result: Result<(), Status>,
}

struct BrokerStream {
    announce: mpsc::Sender<plugin::ConnInfo>,
    _replies: AbortOnDrop,
}

/// The host, connected to a running plugin as the server is after a v5 launch.
pub struct Host {
    pub cert: HostCert,
    pub plugin: Plugin,
    pub handshake: Handshake,
    channel: Channel,
    sockets: Sockets,
    broker: Option<BrokerStream>,
    stdio: Option<(AbortOnDrop, oneshot::Receiver<StdioEnd>)>,
    next_broker_id: u32,
    brokered: Vec<BrokeredServer>,
    dir: TempDir,
}

impl Host {
    /// Launches the plugin with the server's environment and connects.
    pub async fn start() -> Self {
        Self::start_with(|launch| launch).await
    }

    /// Launches the plugin with a changed environment or arguments, and connects.
    pub async fn start_with(configure: impl FnOnce(Launch) -> Launch) -> Self {
        let cert = HostCert::generate();
        let plugin = configure(Launch::new(&cert)).spawn();
        let handshake = plugin.handshake().await;
        let sockets = Sockets::default();
        let tls = client_tls(Some(&cert), &handshake.cert, true);
        let channel = dial_tracked(&handshake.address, Some(tls), sockets.clone())
            .await
            .unwrap_or_else(|e| {
                panic!("dial the plugin: {e}; stderr: {:#?}", plugin.stderr_lines())
            });

        // As go-plugin does right after connecting: the broker stream, kept for the life of
        // the process, and the stdio stream. Each call runs in a task: grpc-go (the Go mock)
        // sends a stream's response headers only with its first message, so the host waits
        // for them at most `STREAM_HEADERS_WAIT` and then lets the call go on (ours answers
        // at once, so for it nothing changes: a refusal still fails here).
        let (announce, outbound) = mpsc::channel(16);
        let mut broker = GrpcBrokerClient::new(channel.clone());
        let (opened, broker_opened) = oneshot::channel();
        let replies = tokio::spawn(async move {
            match broker.start_stream(ReceiverStream::new(outbound)).await {
                Ok(replies) => {
                    let _ = opened.send(Ok(()));
                    let mut replies = replies.into_inner();
                    // What the plugin sends is dropped; the stream stays open until the host
                    // drops it.
                    while let Ok(Some(_)) = replies.message().await {}
                    std::future::pending::<()>().await;
                }
                Err(status) => {
                    let _ = opened.send(Err(status));
                }
            }
        });
        if let Ok(Ok(Err(status))) = tokio::time::timeout(STREAM_HEADERS_WAIT, broker_opened).await
        {
            panic!("open GRPCBroker/StartStream: {status:?}");
        }
        let mut stdio_client = GrpcStdioClient::new(channel.clone());
        let (ended, stdio_end) = oneshot::channel();
        let (opened, stdio_opened) = oneshot::channel();
        let drain = tokio::spawn(async move {
            let mut stdio = match stdio_client.stream_stdio(()).await {
                Ok(stdio) => {
                    let _ = opened.send(Ok(()));
                    stdio.into_inner()
                }
                Err(status) => {
                    let _ = opened.send(Err(status.clone()));
                    let _ = ended.send(StdioEnd {
                        messages: 0,
                        result: Err(status),
                    });
                    return;
                }
            };
            let mut messages = 0;
            let result = loop {
                match stdio.message().await {
                    Ok(Some(_)) => messages += 1,
                    Ok(None) => break Ok(()),
                    Err(status) => break Err(status),
                }
            };
            let _ = ended.send(StdioEnd { messages, result });
        });
        if let Ok(Ok(Err(status))) = tokio::time::timeout(STREAM_HEADERS_WAIT, stdio_opened).await {
            panic!("open GRPCStdio/StreamStdio: {status:?}");
        }

        Self {
            cert,
            plugin,
            handshake,
            channel,
            sockets,
            broker: Some(BrokerStream {
                announce,
                _replies: AbortOnDrop(replies),
            }),
            stdio: Some((AbortOnDrop(drain), stdio_end)),
            next_broker_id: 1,
            brokered: Vec::new(),
            dir: TempDir::new("host"),
        }
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// `pb.Backend`, with the server's unlimited message sizes.
    pub fn backend(&self) -> BackendClient<Channel> {
        BackendClient::new(self.channel())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    pub fn versions(&self) -> PluginVersionClient<Channel> {
        PluginVersionClient::new(self.channel())
    }

    pub fn multiplexing(&self) -> PluginMultiplexingClient<Channel> {
        PluginMultiplexingClient::new(self.channel())
    }

    pub fn controller(&self) -> GrpcControllerClient<Channel> {
        GrpcControllerClient::new(self.channel())
    }

    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel())
    }

    /// `PluginVersion/Version` for mount `id`.
    pub async fn version(&self, id: &str) -> Result<String, Status> {
        self.versions()
            .version(for_mount(id, logical::Empty {}))
            .await
            .map(|r| r.into_inner().plugin_version)
    }

    /// `PluginMultiplexing/MultiplexingSupport`, on the raw connection (no `multiplex_id`).
    pub async fn multiplexing_support(&self) -> Result<bool, Status> {
        self.multiplexing()
            .multiplexing_support(MultiplexingSupportRequest {})
            .await
            .map(|r| r.into_inner().supported)
    }

    /// Calls `Setup` for mount `id` with a fresh broker id, serving (or not) its storage.
    pub async fn setup(&mut self, id: &str, options: SetupOptions) -> Setup {
        let broker_id = self.next_broker_id;
        self.next_broker_id += 1;
        let storage = MemStorage::new(options.storage);
        let socket = self.dir.path().join(format!("broker-{broker_id}.sock"));
        match options.conn_info {
            ConnInfo::BeforeSetup | ConnInfo::AfterSetupStarted => {
                self.brokered.push(BrokeredServer::start(
                    &socket,
                    &self.cert,
                    &self.handshake.cert,
                    storage.clone(),
                ));
            }
            ConnInfo::Refusing => {
                // A socket file with no listener behind it: connect() gets ECONNREFUSED.
                drop(
                    std::os::unix::net::UnixListener::bind(&socket)
                        .expect("bind a socket to close"),
                );
            }
            ConnInfo::Never => {}
        }
        let info = plugin::ConnInfo {
            service_id: broker_id,
            network: "unix".to_owned(),
            address: socket.display().to_string(),
            knock: None,
        };
        let request = for_mount(
            id,
            pb::SetupArgs {
                broker_id,
                config: options.config,
                backend_uuid: options.backend_uuid,
            },
        );
        let mut backend = self.backend();
        let started = Instant::now();
        let reply = match options.conn_info {
            ConnInfo::Never => backend.setup(request).await,
            ConnInfo::BeforeSetup | ConnInfo::Refusing => {
                self.announce(info).await;
                backend.setup(request).await
            }
            ConnInfo::AfterSetupStarted => {
                let call = tokio::spawn(async move { backend.setup(request).await });
                // An ordering aid, not synchronisation: the plugin cannot tell us it is
                // waiting, and the test passes only if Setup succeeds in either order.
                tokio::time::sleep(Duration::from_millis(200)).await;
                self.announce(info).await;
                call.await.expect("the Setup call panicked")
            }
        };
        Setup {
            reply: reply.map(Response::into_inner),
            mount: Mount {
                id: id.to_owned(),
                broker_id,
                storage,
            },
            elapsed: started.elapsed(),
        }
    }

    async fn announce(&self, info: plugin::ConnInfo) {
        self.broker
            .as_ref()
            .expect("the broker stream is open")
            .announce
            .send(info)
            .await
            .expect("the broker stream takes ConnInfo");
    }

    /// Mounts the plugin as `secrets enable` does (§6.2): MultiplexingSupport → Setup → Type
    /// → SpecialPaths → Initialize, storage read-only until Initialize.
    pub async fn mount(&mut self, id: &str) -> Mount {
        self.multiplexing_support()
            .await
            .expect("MultiplexingSupport");
        let setup = self.setup(id, SetupOptions::mount()).await;
        let reply = setup.reply.expect("the Setup RPC");
        assert_eq!(reply.err, "", "Setup of {id} failed");
        let mut backend = self.backend();
        let kind = backend
            .r#type(for_mount(id, pb::Empty {}))
            .await
            .expect("the Type RPC")
            .into_inner()
            .r#type;
        // The server refuses anything else with "unknown backend type".
        assert_eq!(kind, 1, "a secrets engine is a logical backend");
        backend
            .special_paths(for_mount(id, pb::Empty {}))
            .await
            .expect("the SpecialPaths RPC");
        setup.mount.storage.set_mode(StorageMode::Writable);
        let initialized = backend
            .initialize(for_mount(id, pb::InitializeArgs {}))
            .await
            .expect("the Initialize RPC")
            .into_inner();
        assert_eq!(initialized.err, None, "Initialize of {id} failed");
        setup.mount
    }

    /// `HandleRequest` for mount `id`.
    pub async fn try_request(
        &self,
        id: &str,
        operation: &str,
        path: &str,
        data: &Value,
    ) -> Result<pb::HandleRequestReply, Status> {
        let args = pb::HandleRequestArgs {
            storage_id: 0,
            request: Some(wire_request(operation, path, data)),
        };
        self.backend()
            .handle_request(for_mount(id, args))
            .await
            .map(Response::into_inner)
    }

    /// `HandleRequest` for mount `id`; a gRPC error fails the test.
    pub async fn request(
        &self,
        id: &str,
        operation: &str,
        path: &str,
        data: &Value,
    ) -> pb::HandleRequestReply {
        self.try_request(id, operation, path, data)
            .await
            .unwrap_or_else(|status| panic!("HandleRequest {operation} {path}: {status}"))
    }

    /// `HandleExistenceCheck` for a write to `path` (the server sends operation `update`).
    pub async fn existence_check(
        &self,
        id: &str,
        path: &str,
        data: &Value,
    ) -> pb::HandleExistenceCheckReply {
        let args = pb::HandleExistenceCheckArgs {
            storage_id: 0,
            request: Some(wire_request("update", path, data)),
        };
        self.backend()
            .handle_existence_check(for_mount(id, args))
            .await
            .unwrap_or_else(|status| panic!("HandleExistenceCheck {path}: {status}"))
            .into_inner()
    }

    /// A write as the server makes it (§6.3): the existence check picks `create` or `update`.
    pub async fn write(&self, id: &str, path: &str, data: &Value) -> pb::HandleRequestReply {
        let check = self.existence_check(id, path, data).await;
        assert_eq!(check.err, None, "existence check of {path}");
        let operation = if check.check_found && !check.exists {
            "create"
        } else {
            "update"
        };
        self.request(id, operation, path, data).await
    }

    /// `pb.Backend/Cleanup` for mount `id`.
    pub async fn cleanup(&self, id: &str) -> Result<(), Status> {
        self.backend()
            .cleanup(for_mount(id, pb::Empty {}))
            .await
            .map(drop)
    }

    /// `GRPCController/Shutdown`.
    pub async fn shutdown(&self) -> Result<(), Status> {
        self.controller().shutdown(plugin::Empty {}).await.map(drop)
    }

    /// Ends our half of `StartStream`, as the server does when it kills a plugin.
    pub fn close_broker(&mut self) {
        self.broker = None;
    }

    /// Waits for the stdio stream to end; `None` if it is still open after `timeout`.
    pub async fn stdio_end(&mut self, timeout: Duration) -> Option<StdioEnd> {
        let (_, ended) = self.stdio.as_mut().expect("the stdio stream was opened");
        match tokio::time::timeout(timeout, ended).await {
            Ok(end) => Some(end.expect("the stdio task reports its end")),
            Err(_) => None,
        }
    }

    /// The server process dies: every socket it had to the plugin closes at once, with the
    /// streams still open on them. Returns the plugin to watch it go.
    pub fn die(self) -> Plugin {
        for socket in self
            .sockets
            .lock()
            .expect("the socket list is never poisoned")
            .iter()
        {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        self.plugin
    }
}
