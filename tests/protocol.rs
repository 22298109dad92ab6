//! Protocol tests: the real plugin binary against an in-process stand-in for the OpenBao
//! server (`host`), covering launch, handshake, mutual TLS, the broker, the mount flow,
//! multiplexing, shutdown and failure paths (spec §0–§6).

#![allow(clippy::unwrap_used)]

use plugin_test_support::host;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use host::{
    ConnInfo, EXIT_TIMEOUT, HANDSHAKE_TIMEOUT, Handshake, Host, HostCert, Launch, SetupOptions,
    StorageMode, client_tls, dial, for_mount,
};
use rustls::ClientConfig;
use serde_json::{Value, json};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use vault_plugin_sdk::proto::pb;

const MOUNT_A: &str = "mountAAAA1";
const MOUNT_B: &str = "mountBBBB2";

/// The response's `data` as JSON.
fn data(reply: &pb::HandleRequestReply) -> Value {
    assert_eq!(reply.err, None, "unexpected error in {reply:?}");
    let response = reply.response.as_ref().expect("a response");
    serde_json::from_str(&response.data).expect("response data is JSON")
}

/// True for `YYYY-MM-DDTHH:MM:SS.ffffffZ` (hclog's layout, exactly six fractional digits).
fn is_hclog_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 27
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'.',
            26 => *b == b'Z',
            _ => b.is_ascii_digit(),
        });
    let number = |range: std::ops::Range<usize>| -> u32 { text[range].parse().unwrap_or(99) };
    shape
        && (1..=12).contains(&number(5..7))
        && (1..=31).contains(&number(8..10))
        && number(11..13) < 24
        && number(14..16) < 60
        && number(17..19) < 61
}

/// Parses a stderr line as an hclog JSON object.
fn log_line(line: &str) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_str(line) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn has_error_line(stderr: &[String]) -> bool {
    stderr
        .iter()
        .filter_map(|l| log_line(l))
        .any(|l| l.get("@level") == Some(&json!("error")))
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// 1. The handshake line

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_line_is_the_only_stdout_output_and_names_a_private_socket() {
    let mut host = Host::start().await;
    let stdout = host.plugin.stdout_lines();
    let line = stdout.first().expect("a handshake line").clone();

    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(fields.len(), 6, "{line:?}");
    assert_eq!(fields[..3], ["1", "5", "unix"], "{line:?}");
    assert_eq!(fields[4], "grpc", "{line:?}");

    // The socket: absolute, under our TMPDIR, in a directory only its owner can enter.
    let socket = std::path::Path::new(fields[3]);
    assert!(socket.is_absolute(), "{line:?}");
    assert!(socket.starts_with(host.plugin.tmpdir()), "{line:?}");
    let socket_meta = std::fs::metadata(socket).expect("the socket exists");
    assert!(socket_meta.file_type().is_socket());
    let dir_meta = std::fs::metadata(host.handshake.socket_dir()).expect("the socket dir");
    assert_eq!(dir_meta.permissions().mode() & 0o777, 0o700);

    // The certificate: unpadded standard base64 of one DER certificate, with what the Go host
    // checks: SAN DNS:localhost and EKUs serverAuth and clientAuth.
    let cert = fields[5];
    assert!(
        cert.len() > 50 && !cert.ends_with('='),
        "the host parses the field only if it is >50 chars, and padding breaks Go's decoder"
    );
    assert!(
        cert.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
        "standard alphabet"
    );
    let der = STANDARD_NO_PAD.decode(cert).expect("unpadded base64");
    assert!(
        contains_bytes(&der, b"\x82\x09localhost"),
        "SAN DNS:localhost"
    );
    let eku = |last: u8| [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, last];
    assert!(contains_bytes(&der, &eku(1)), "EKU serverAuth");
    assert!(contains_bytes(&der, &eku(2)), "EKU clientAuth");
    // The host pinned exactly these bytes and the connection works, so this is the
    // certificate the plugin presents, and a well-formed one (rustls parsed it to check the
    // handshake's signature).
    assert_eq!(host.handshake.cert.as_ref(), der.as_slice());
    assert!(!host.version(MOUNT_A).await.unwrap().is_empty());

    host.shutdown().await.unwrap();
    assert!(host.plugin.wait_exit(EXIT_TIMEOUT).await.success());
    let stdout = host.plugin.stdout_until_closed(EXIT_TIMEOUT).await;
    assert_eq!(stdout, [line], "nothing but the handshake line on stdout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_line_is_newline_terminated_and_parses_strictly() {
    let cert = HostCert::generate();
    let plugin = Launch::new(&cert).spawn();
    let raw = plugin
        .first_stdout_line(HANDSHAKE_TIMEOUT)
        .await
        .expect("a handshake line");
    assert!(raw.ends_with('\n') && !raw.ends_with("\r\n"), "{raw:?}");
    Handshake::parse(&raw).expect("a strict v5 handshake line");
}

// ---------------------------------------------------------------------------------------------
// 2. Mount and the kv paths

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_then_write_read_list_delete_through_host_storage() {
    let mut host = Host::start().await;
    let mount = host.mount(MOUNT_A).await;
    let body = json!({"value": "bar"});

    let check = host.existence_check(MOUNT_A, "kv/foo", &body).await;
    assert_eq!(check.err, None);
    assert!(check.check_found && !check.exists, "{check:?}");
    let written = host.request(MOUNT_A, "create", "kv/foo", &body).await;
    assert_eq!(data(&written), json!({"value": "bar"}));
    assert_eq!(mount.storage.get("kv/foo").as_deref(), Some(&b"bar"[..]));

    let check = host.existence_check(MOUNT_A, "kv/foo", &body).await;
    assert!(check.check_found && check.exists, "{check:?}");

    let read = host.request(MOUNT_A, "read", "kv/foo", &Value::Null).await;
    assert_eq!(data(&read), json!({"value": "bar", "version": 0}));

    // List passes the host's immediate-children answer through, folders with their slash.
    mount.storage.insert("kv/dir/nested", b"x");
    mount.storage.insert("other/key", b"y");
    let listed = host.request(MOUNT_A, "list", "kv/", &Value::Null).await;
    assert_eq!(data(&listed), json!({"keys": ["dir/", "foo"]}));

    let deleted = host
        .request(MOUNT_A, "delete", "kv/foo", &Value::Null)
        .await;
    assert_eq!((deleted.err, deleted.response), (None, None));
    assert_eq!(mount.storage.get("kv/foo"), None);
    let read = host.request(MOUNT_A, "read", "kv/foo", &Value::Null).await;
    assert_eq!(
        (read.err, read.response),
        (None, None),
        "a missing key is a nil response (404)"
    );
    assert!(mount.storage.calls().contains(&"delete kv/foo".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_log_lines_reach_stderr_while_the_plugin_runs() {
    // Info lines wait for the runtime to go idle and are then written together: they must
    // still arrive promptly, whole, and without the plugin having to exit first.
    let mut host = Host::start().await;
    host.mount(MOUNT_A).await;
    for key in ["kv/one", "kv/two", "kv/three"] {
        host.request(MOUNT_A, "create", key, &json!({"value": "secret-value"}))
            .await;
    }
    for key in ["kv/one", "kv/two", "kv/three"] {
        let line = host
            .plugin
            .stderr_line(Duration::from_secs(5), |l| {
                l.contains("storing value") && l.contains(&format!("\"{key}\""))
            })
            .await
            .unwrap_or_else(|| panic!("no log line for {key}: {:#?}", host.plugin.stderr_lines()));
        let fields = log_line(&line).expect("an hclog JSON line");
        assert_eq!(fields["@level"], "info");
        assert_eq!(fields["key"], key);
    }
    assert!(
        !host
            .plugin
            .stderr_lines()
            .iter()
            .any(|l| l.contains("secret-value")),
        "values are never logged"
    );
    assert_eq!(
        host.plugin.try_wait_exit(Duration::ZERO).await,
        None,
        "still running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_service_is_unimplemented_and_the_connection_keeps_serving() {
    let mut host = Host::start().await;
    host.mount(MOUNT_A).await;
    // pb.SystemView is a service the server offers, never the plugin.
    let mut wrong = pb::system_view_client::SystemViewClient::new(host.channel());
    let status = wrong.default_lease_ttl(pb::Empty {}).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert!(status.message().contains("pb.SystemView"), "{status:?}");
    let read = host.request(MOUNT_A, "read", "kv/none", &Value::Null).await;
    assert_eq!((read.err, read.response), (None, None));
}

// ---------------------------------------------------------------------------------------------
// 3. Version and multiplexing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_is_the_go_mocks_and_multiplexing_is_supported() {
    let host = Host::start().await;
    // The Go mock's version, so catalog entries written for it run ours unchanged.
    assert_eq!(host.version(MOUNT_A).await.unwrap(), "v0.0.0+mock");
    assert!(host.multiplexing_support().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_can_be_overridden_from_the_environment() {
    let host = Host::start_with(|l| l.env("TESTING_MOCK_VAULT_PLUGIN_VERSION", "v1.2.3")).await;
    assert_eq!(host.version(MOUNT_A).await.unwrap(), "v1.2.3");
}

// ---------------------------------------------------------------------------------------------
// 4. Two mounts in one process

/// The mount's in-memory `internal` value.
async fn internal(host: &Host, id: &str) -> Value {
    data(&host.request(id, "read", "internal", &Value::Null).await)["value"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_mounts_keep_separate_storage_and_state() {
    let mut host = Host::start().await;
    let a = host.mount(MOUNT_A).await;
    let b = host.mount(MOUNT_B).await;
    assert_ne!(a.broker_id, b.broker_id);

    host.write(MOUNT_A, "kv/foo", &json!({"value": "from-a"}))
        .await;
    host.write(MOUNT_B, "kv/foo", &json!({"value": "from-b"}))
        .await;
    assert_eq!(a.storage.get("kv/foo").as_deref(), Some(&b"from-a"[..]));
    assert_eq!(b.storage.get("kv/foo").as_deref(), Some(&b"from-b"[..]));
    let read = host.request(MOUNT_B, "read", "kv/foo", &Value::Null).await;
    assert_eq!(data(&read)["value"], "from-b");

    let updated = host
        .request(MOUNT_A, "update", "internal", &json!({"value": "changed"}))
        .await;
    assert_eq!(updated.err, None);
    assert_eq!(internal(&host, MOUNT_A).await, "changed");
    assert_eq!(internal(&host, MOUNT_B).await, "bar");

    host.cleanup(MOUNT_A).await.unwrap();
    host.cleanup(MOUNT_A)
        .await
        .expect("a second Cleanup is harmless");
    assert_eq!(internal(&host, MOUNT_B).await, "bar");
    let read = host.request(MOUNT_B, "read", "kv/foo", &Value::Null).await;
    assert_eq!(data(&read)["value"], "from-b");

    let gone = host
        .try_request(MOUNT_A, "read", "kv/foo", &Value::Null)
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::FailedPrecondition, "{gone:?}");
    assert!(gone.message().contains("Setup"), "{gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_a_known_multiplex_id_fail_clearly() {
    let mut host = Host::start().await;
    host.mount(MOUNT_A).await;

    let unknown = host
        .try_request("neverSetUp", "read", "kv/foo", &Value::Null)
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::FailedPrecondition, "{unknown:?}");
    assert!(unknown.message().contains("Setup"), "{unknown:?}");

    let args = pb::HandleRequestArgs {
        storage_id: 0,
        request: Some(host::wire_request("read", "kv/foo", &Value::Null)),
    };
    let missing = host
        .backend()
        .handle_request(tonic::Request::new(args))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument, "{missing:?}");
    assert!(missing.message().contains("multiplex_id"), "{missing:?}");

    let missing = host
        .backend()
        .r#type(tonic::Request::new(pb::Empty {}))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument, "{missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_key_clears_internal_for_that_mount_only() {
    let mut host = Host::start().await;
    host.mount(MOUNT_A).await;
    host.mount(MOUNT_B).await;
    host.backend()
        .invalidate_key(for_mount(
            MOUNT_A,
            pb::InvalidateKeyArgs {
                key: "internal".into(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(internal(&host, MOUNT_A).await, "");
    assert_eq!(internal(&host, MOUNT_B).await, "bar");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_server_makes_on_its_own_are_answered() {
    let mut host = Host::start().await;
    host.mount(MOUNT_A).await;

    let paths = host
        .backend()
        .special_paths(for_mount(MOUNT_A, pb::Empty {}))
        .await
        .unwrap()
        .into_inner()
        .paths
        .expect("special paths");
    assert_eq!(paths.unauthenticated, ["special"]);

    // Before every request (§0): error type 5 or 6, nil or `{}` let the request go ahead.
    let resolved = host
        .request(MOUNT_A, "resolve-path", "kv/foo", &Value::Null)
        .await;
    let goes_ahead = match (&resolved.err, &resolved.response) {
        (Some(err), _) => matches!(err.err_type, 5 | 6),
        (None, None) => true,
        (None, Some(response)) => matches!(response.data.as_str(), "{}" | "null"),
    };
    assert!(goes_ahead, "{resolved:?}");

    // Every 60 s and at unmount (§6.4): nothing, or UnsupportedOperation.
    let rollback = host.request(MOUNT_A, "rollback", "", &Value::Null).await;
    assert!(
        rollback.err.as_ref().is_none_or(|e| e.err_type == 5),
        "{rollback:?}"
    );

    // The OpenAPI endpoint dereferences the response (§6.4): it must not be nil.
    let help = host
        .request(
            MOUNT_A,
            "help",
            "",
            &json!({"requestResponsePrefix": "secret"}),
        )
        .await;
    assert!(data(&help)["help"].is_string(), "{help:?}");
}

// ---------------------------------------------------------------------------------------------
// 5. Registration and shutdown

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_setup_version_then_shutdown_exits_promptly() {
    let mut host = Host::start().await;
    let setup = host.setup("regist0001", SetupOptions::registration()).await;
    assert_eq!(setup.reply.unwrap().err, "", "Setup needs no storage");
    assert_eq!(setup.mount.storage.calls(), Vec::<String>::new());
    assert!(!host.version("regist0001").await.unwrap().is_empty());

    let socket_dir = host.handshake.socket_dir();
    let started = Instant::now();
    host.shutdown().await.expect("the Shutdown reply");
    let status = host.plugin.wait_exit(EXIT_TIMEOUT).await;
    let latency = started.elapsed();
    eprintln!("Shutdown → exit: {latency:?}");
    assert_eq!(status.code(), Some(0));
    assert!(latency < Duration::from_secs(1), "took {latency:?}");
    assert!(!socket_dir.exists(), "the socket directory is removed");
}

// ---------------------------------------------------------------------------------------------
// 6. TLS: only the pinned host, only over h2

/// Launches a fresh plugin (a refused first connection ends it by design), connects with
/// `tls`, and checks that the connection is refused and the plugin exits 1 with an error log.
async fn assert_connection_refused(
    case: &str,
    tls: impl FnOnce(&HostCert, &Handshake) -> Option<Arc<ClientConfig>>,
) {
    let cert = HostCert::generate();
    let mut plugin = Launch::new(&cert).spawn();
    let handshake = plugin.handshake().await;
    match dial(&handshake.address, tls(&cert, &handshake)).await {
        Err(e) => eprintln!("{case}: refused at connect: {e}"),
        Ok(channel) => {
            let request = HealthCheckRequest {
                service: "plugin".into(),
            };
            match HealthClient::new(channel).check(request).await {
                Ok(reply) => panic!("{case}: the plugin answered {reply:?}"),
                Err(status) => eprintln!("{case}: refused at the first call: {status}"),
            }
        }
    }
    let status = plugin.wait_exit(EXIT_TIMEOUT).await;
    let stderr = plugin.stderr_until_closed(EXIT_TIMEOUT).await;
    assert_eq!(status.code(), Some(1), "{case}: {stderr:#?}");
    assert!(has_error_line(&stderr), "{case}: {stderr:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_a_client_certificate_that_is_not_pinned() {
    assert_connection_refused("another P-521 host certificate", |_, handshake| {
        let impostor = HostCert::generate();
        Some(client_tls(Some(&impostor), &handshake.cert, true))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_a_client_without_a_certificate() {
    assert_connection_refused("no client certificate", |_, handshake| {
        Some(client_tls(None, &handshake.cert, true))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_a_client_without_alpn_h2() {
    assert_connection_refused("no ALPN", |cert, handshake| {
        Some(client_tls(Some(cert), &handshake.cert, false))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_plain_text_http2() {
    assert_connection_refused("plain-text HTTP/2", |_, _| None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_pinning_another_plugin_certificate_refuses_the_plugin() {
    assert_connection_refused("host pins another certificate", |cert, _| {
        let other = HostCert::generate();
        Some(client_tls(Some(cert), &other.der, true))
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 7. Setup and the broker's ConnInfo

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_waits_for_conn_info_that_comes_after_it() {
    let mut host = Host::start().await;
    let options = SetupOptions {
        conn_info: ConnInfo::AfterSetupStarted,
        ..SetupOptions::mount()
    };
    let setup = host.setup(MOUNT_A, options).await;
    assert_eq!(setup.reply.unwrap().err, "");
    setup.mount.storage.set_mode(StorageMode::Writable);
    host.write(MOUNT_A, "kv/late", &json!({"value": "ok"}))
        .await;
    assert_eq!(
        setup.mount.storage.get("kv/late").as_deref(),
        Some(&b"ok"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_without_conn_info_times_out_and_the_plugin_lives_on() {
    let mut host = Host::start().await;
    let options = SetupOptions {
        conn_info: ConnInfo::Never,
        ..SetupOptions::mount()
    };
    let setup = host.setup(MOUNT_A, options).await;
    let err = setup.reply.expect("Setup answers").err;
    assert!(err.contains("timeout waiting for connection info"), "{err}");
    // go-plugin waits 5 s; allow scheduling slack, but not a hang.
    assert!(
        setup.elapsed >= Duration::from_millis(4500) && setup.elapsed < Duration::from_secs(15),
        "{:?}",
        setup.elapsed
    );
    assert!(!host.version(MOUNT_A).await.unwrap().is_empty());
    host.mount(MOUNT_B).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_with_a_refusing_broker_address_fails_and_the_plugin_lives_on() {
    let mut host = Host::start().await;
    let options = SetupOptions {
        conn_info: ConnInfo::Refusing,
        ..SetupOptions::mount()
    };
    let setup = host.setup(MOUNT_A, options).await;
    let err = setup.reply.expect("Setup answers").err;
    assert!(err.contains("cannot connect"), "{err}");
    assert!(!host.version(MOUNT_A).await.unwrap().is_empty());
    // The failed mount left nothing behind, and a good one still works.
    let gone = host
        .try_request(MOUNT_A, "read", "kv/foo", &Value::Null)
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::FailedPrecondition);
    host.mount(MOUNT_B).await;
}

// ---------------------------------------------------------------------------------------------
// 8. Storage errors pass through verbatim

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_errors_reach_the_host_verbatim() {
    let mut host = Host::start().await;
    let mount = host.mount(MOUNT_A).await;

    // A standby's text, which the server string-matches to forward the request.
    let readonly = "cannot write to readonly storage";
    mount
        .storage
        .set_mode(StorageMode::ReadOnly(readonly.to_owned()));
    let reply = host
        .request(MOUNT_A, "create", "kv/foo", &json!({"value": "bar"}))
        .await;
    let err = reply.err.expect("a ProtoError");
    assert_eq!((err.err_type, err.err_msg.as_str()), (0, readonly));
    assert_eq!(reply.response, None);

    // A gRPC-level failure keeps its message too.
    let unbound = "missing storage implementation: nothing bound";
    mount
        .storage
        .set_mode(StorageMode::Unbound(unbound.to_owned()));
    let reply = host.request(MOUNT_A, "read", "kv/foo", &Value::Null).await;
    let err = reply.err.expect("a ProtoError");
    assert_eq!((err.err_type, err.err_msg.as_str()), (0, unbound));
}

// ---------------------------------------------------------------------------------------------
// 9. The plugin exits when its host is gone

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_broker_stream_ends_the_plugin() {
    let mut host = Host::start().await;
    host.mount(MOUNT_A).await;
    let started = Instant::now();
    host.close_broker();
    let status = host.plugin.wait_exit(EXIT_TIMEOUT).await;
    eprintln!("broker stream closed → exit: {:?}", started.elapsed());
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dying_host_ends_the_plugin() {
    let mut host = Host::start().await;
    host.mount(MOUNT_A).await;
    let started = Instant::now();
    let mut plugin = host.die();
    let status = plugin.wait_exit(EXIT_TIMEOUT).await;
    eprintln!("host died → exit: {:?}", started.elapsed());
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_connects_ends_the_plugin() {
    let cert = HostCert::generate();
    let mut plugin = Launch::new(&cert)
        .arg("--connect-timeout")
        .arg("0.3")
        .spawn();
    let handshake = plugin.handshake().await;
    let status = plugin.wait_exit(EXIT_TIMEOUT).await;
    let stderr = plugin.stderr_until_closed(EXIT_TIMEOUT).await;
    assert_eq!(status.code(), Some(1), "{stderr:#?}");
    assert!(has_error_line(&stderr), "{stderr:#?}");
    assert!(
        stderr
            .iter()
            .any(|l| l.contains("no mutual-TLS connection")),
        "{stderr:#?}"
    );
    assert!(!handshake.socket_dir().exists());
}

// ---------------------------------------------------------------------------------------------
// 10. A bad environment: nothing on stdout, one clear line on stderr, status 1

async fn assert_refuses_to_start(
    case: &str,
    configure: impl FnOnce(Launch) -> Launch,
    mentions: &[&str],
) {
    let cert = HostCert::generate();
    let mut plugin = configure(Launch::new(&cert)).spawn();
    let status = plugin.wait_exit(EXIT_TIMEOUT).await;
    let stdout = plugin.stdout_until_closed(EXIT_TIMEOUT).await;
    let stderr = plugin.stderr_until_closed(EXIT_TIMEOUT).await;
    assert_eq!(status.code(), Some(1), "{case}: {stderr:#?}");
    assert_eq!(stdout, Vec::<String>::new(), "{case}: stdout");
    assert_eq!(stderr.len(), 1, "{case}: one line: {stderr:#?}");
    let line = log_line(&stderr[0]).unwrap_or_else(|| panic!("{case}: JSON: {stderr:#?}"));
    assert_eq!(line["@level"], "error", "{case}");
    let message = line["@message"].as_str().expect("a message");
    for needle in mentions {
        assert!(
            message.contains(needle),
            "{case}: {message:?} lacks {needle:?}"
        );
    }
}

#[tokio::test]
async fn refuses_to_start_without_the_magic_cookie() {
    assert_refuses_to_start(
        "no cookie",
        |l| l.remove("VAULT_BACKEND_PLUGIN"),
        &["VAULT_BACKEND_PLUGIN", "plugin"],
    )
    .await;
}

#[tokio::test]
async fn refuses_to_start_as_a_database_plugin() {
    assert_refuses_to_start(
        "database cookie",
        |l| {
            l.remove("VAULT_BACKEND_PLUGIN")
                .env(
                    "VAULT_DATABASE_PLUGIN",
                    "926a0820-aea2-be28-51d6-83cdf00e8edb",
                )
                .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        },
        &["database plugin"],
    )
    .await;
}

#[tokio::test]
async fn refuses_to_start_with_only_unsupported_protocol_versions() {
    assert_refuses_to_start(
        "versions 1,2",
        |l| l.env("PLUGIN_PROTOCOL_VERSIONS", "1,2"),
        &["protocol version", "[1, 2]"],
    )
    .await;
}

#[tokio::test]
async fn refuses_a_legacy_start_with_no_way_to_secure_the_connection() {
    // Protocol 4 without AutoMTLS, metadata mode or an unwrap token: nothing to do TLS with.
    assert_refuses_to_start(
        "versions 3,4 without TLS material",
        |l| {
            l.env("PLUGIN_PROTOCOL_VERSIONS", "3,4")
                .remove("PLUGIN_CLIENT_CERT")
                .env("BAO_PLUGIN_AUTOMTLS_ENABLED", "false")
                .env("VAULT_PLUGIN_AUTOMTLS_ENABLED", "false")
        },
        &["legacy protocol", "api_addr"],
    )
    .await;
}

#[tokio::test]
async fn declines_protocol_5_when_registered_to() {
    assert_refuses_to_start(
        "--no-protocol-5",
        |l| l.arg("--no-protocol-5"),
        &["declining plugin protocol 5", "legacy protocol"],
    )
    .await;
}

#[tokio::test]
async fn refuses_to_start_with_unparsable_protocol_versions() {
    for value in ["abc", ""] {
        assert_refuses_to_start(
            &format!("versions {value:?}"),
            |l| l.env("PLUGIN_PROTOCOL_VERSIONS", value),
            &["PLUGIN_PROTOCOL_VERSIONS"],
        )
        .await;
    }
}

#[tokio::test]
async fn refuses_to_start_without_a_usable_client_certificate() {
    let good = HostCert::generate().pem;
    let body: String = good.lines().filter(|l| !l.starts_with("-----")).collect();
    // Half the body, cut on a base64 quantum so it still decodes: only the DER check can
    // tell it is truncated.
    let half = &body[..body.len() / 2 / 4 * 4];
    let truncated = format!("-----BEGIN CERTIFICATE-----\n{half}\n-----END CERTIFICATE-----\n");
    assert_refuses_to_start(
        "no client cert",
        |l| l.remove("PLUGIN_CLIENT_CERT"),
        &["PLUGIN_CLIENT_CERT"],
    )
    .await;
    assert_refuses_to_start(
        "garbage client cert",
        |l| l.env("PLUGIN_CLIENT_CERT", "not a certificate"),
        &["PLUGIN_CLIENT_CERT"],
    )
    .await;
    assert_refuses_to_start(
        "truncated client cert",
        |l| l.env("PLUGIN_CLIENT_CERT", &truncated),
        &["PLUGIN_CLIENT_CERT"],
    )
    .await;
}

#[tokio::test]
async fn refuses_to_start_when_tmpdir_does_not_exist() {
    let missing = std::env::temp_dir().join("vmp-no-such-dir/deeper");
    let missing = missing.display().to_string();
    assert_refuses_to_start(
        "missing TMPDIR",
        |l| l.env("TMPDIR", &missing),
        &[&missing, "socket directory"],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 11. Health and stdio

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_serves_plugin_and_stdio_ends_cleanly_at_shutdown() {
    // Host::start opened StreamStdio (and would have failed had it not opened).
    let mut host = Host::start().await;
    let check = host
        .health()
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(check.status, ServingStatus::Serving as i32);

    host.shutdown().await.unwrap();
    let end = host
        .stdio_end(EXIT_TIMEOUT)
        .await
        .expect("the stdio stream ends when the plugin stops");
    assert_eq!(
        end.messages, 0,
        "nothing is written to stdout after the handshake"
    );
    // go-plugin's client treats EOF, Unavailable and Canceled as a quiet end. The plugin
    // ends this stream by closing the connection, which grpc-go reports as Unavailable and
    // tonic as Unknown with the transport error as its source; a status the plugin sent
    // itself (no source) would be an error.
    if let Err(status) = &end.result {
        let connection_ended =
            status.code() == Code::Unknown && std::error::Error::source(status).is_some();
        assert!(
            matches!(status.code(), Code::Unavailable | Code::Cancelled) || connection_ended,
            "{status:?}"
        );
    }
    assert!(host.plugin.wait_exit(EXIT_TIMEOUT).await.success());
}

// ---------------------------------------------------------------------------------------------
// 12. Logs

#[test]
fn the_timestamp_matcher_is_strict() {
    assert!(is_hclog_timestamp("2026-01-02T03:04:05.123456Z"));
    for bad in [
        "2026-01-02T03:04:05.123Z",
        "2026-01-02T03:04:05.123456789Z",
        "2026-01-02T03:04:05Z",
        "2026-01-02 03:04:05.123456Z",
        "2026-01-02T03:04:05.123456+00:00",
        "2026-13-02T03:04:05.123456Z",
    ] {
        assert!(!is_hclog_timestamp(bad), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stderr_line_is_hclog_json() {
    // At debug, so the start-up lines (below info since they match go-plugin's) are there too.
    let mut host = Host::start_with(|launch| launch.arg("--log-level=debug")).await;
    host.mount(MOUNT_A).await;
    host.write(MOUNT_A, "kv/foo", &json!({"value": "bar"}))
        .await;
    host.request(MOUNT_A, "read", "kv/foo", &Value::Null).await;
    host.shutdown().await.unwrap();
    host.plugin.wait_exit(EXIT_TIMEOUT).await;
    let stderr = host.plugin.stderr_until_closed(EXIT_TIMEOUT).await;

    assert!(stderr.len() >= 2, "{stderr:#?}");
    for line in &stderr {
        let object = log_line(line).unwrap_or_else(|| panic!("not a JSON object: {line}"));
        let level = object["@level"].as_str().unwrap_or_default();
        assert!(
            ["trace", "debug", "info", "warn", "error"].contains(&level),
            "{line}"
        );
        assert!(object["@message"].is_string(), "{line}");
        let timestamp = object["@timestamp"].as_str().unwrap_or_default();
        assert!(is_hclog_timestamp(timestamp), "{line}");
    }
    assert!(
        stderr
            .iter()
            .any(|l| l.contains("\"@message\":\"plugin started\"")),
        "{stderr:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 13. Large values

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_mebibyte_value_goes_through() {
    let mut host = Host::start().await;
    let mount = host.mount(MOUNT_A).await;
    let value = "x".repeat(5 * 1024 * 1024);
    let written = host
        .write(MOUNT_A, "kv/big", &json!({"value": value}))
        .await;
    assert_eq!(written.err, None);
    assert_eq!(
        mount.storage.get("kv/big").map(|v| v.len()),
        Some(value.len())
    );
    let read = host.request(MOUNT_A, "read", "kv/big", &Value::Null).await;
    assert_eq!(data(&read)["value"].as_str(), Some(value.as_str()));
}
