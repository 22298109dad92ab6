//! Bad input: a precise error, no crash, nothing lost. Four tables, each case asserting its
//! exact outcome:
//!
//! 1. **Environment** — the binary launched as the server launches it, with one thing wrong:
//!    exit status 1, nothing on stdout, exactly one hclog JSON line at level `error` on stderr
//!    whose message is the exact text and names the cause and the fix, and no socket directory
//!    left behind.
//! 2. **Requests** at the wire level, through the in-Rust test host (`tests/support/host/`): the exact
//!    `HandleRequest` / `HandleExistenceCheck` reply and the exact storage contents after it.
//! 3. **Requests through a real OpenBao 2.7.2**, where the server's own behaviour matters: its
//!    request size limit, path cleaning, a 16 MiB value, a list of 10,000 keys.
//! 4. **Protocol** — calls before Setup, bad `multiplex_id` metadata, Setup whose ConnInfo never
//!    comes, broker addresses that refuse, use an unknown network or present a certificate
//!    other than the pinned one, storage errors passed through verbatim, repeated Setup.
//!
//! Related cases already covered elsewhere are not repeated: `tests/protocol.rs` (TLS refusals
//! of the plugin's own listener: plain text, no client certificate, an impostor with the same
//! subject, no ALPN; the socket directory's 0700 mode; a 5 MiB value; Setup timing) and the
//! unit tests in `src/**/tests.rs` (parsing).

#![allow(clippy::unwrap_used)]

use plugin_test_support::{common, host, table};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use host::{
    EXIT_TIMEOUT, Host, HostCert, Launch, SetupOptions, StorageMode, TempDir, client_tls, dial,
    for_mount,
};
use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};
use table::{Table, expect, expect_eq};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::metadata::AsciiMetadataValue;
use vault_plugin_sdk::PluginInfo;
use vault_plugin_sdk::internals::{
    self as tls, Args, BACKEND_COOKIE, BrokerError, CONN_INFO_TIMEOUT, HandshakeError,
    SUPPORTED_VERSIONS,
};
use vault_plugin_sdk::proto::plugin::grpc_broker_client::GrpcBrokerClient;
use vault_plugin_sdk::proto::{pb, plugin};

const MOUNT: &str = "mountAAAA1";

// =============================================================================================
// 1. Environment

/// What the one stderr line must say.
enum Message {
    /// Exactly this text.
    Exact(String),
    /// This beginning and end, with an OS-specific error text between.
    Around(String, String),
}

impl Message {
    fn check(&self, message: &str) -> Result<(), String> {
        match self {
            Self::Exact(expected) => expect_eq(message, expected.as_str()),
            Self::Around(start, end) => {
                expect(message.starts_with(start) && message.ends_with(end), || {
                    format!("{message:?} is not {start:?}…{end:?}")
                })
            }
        }
    }
}

struct EnvCase {
    name: &'static str,
    launch: Box<dyn FnOnce(Launch) -> Launch>,
    message: Message,
    /// The cause and the fix, as words the line must contain.
    mentions: &'static [&'static str],
}

fn env_case(
    name: &'static str,
    launch: impl FnOnce(Launch) -> Launch + 'static,
    message: Message,
    mentions: &'static [&'static str],
) -> EnvCase {
    EnvCase {
        name,
        launch: Box::new(launch),
        message,
        mentions,
    }
}

/// The message the plugin gives for `PLUGIN_CLIENT_CERT=pem`, from the library's own parser.
fn cert_message(pem: &str) -> Message {
    Message::Exact(tls::parse_peer_certificate(pem).unwrap_err().to_string())
}

/// The message for bad catalog arguments: the first line of the parser's error, and the fix.
fn args_message(args: &[&str]) -> Message {
    let mut all = vec!["my-mock-plugin".into()];
    all.extend(args.iter().map(Into::into));
    let info = PluginInfo::new("my-mock-plugin", env!("CARGO_PKG_VERSION"))
        .description("the mock")
        .example_path("my-secrets-plugin");
    let error = Args::parse_go_style(&info, all).unwrap_err().to_string();
    let first = error.lines().next().unwrap().to_owned();
    Message::Exact(format!("{first} (check the plugin's args in the catalog)"))
}

fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"))
}

/// The cases, and a listener to keep open while they run (it holds the only port of one case's
/// range).
fn env_cases(scratch: &Path) -> (Vec<EnvCase>, TcpListener) {
    let good = HostCert::generate().pem;
    let body = pem_body(&good);
    // Cut on a base64 quantum so it still decodes: only the DER check can tell.
    let half = &body[..body.len() / 2 / 4 * 4];
    let truncated = format!("-----BEGIN CERTIFICATE-----\n{half}\n-----END CERTIFICATE-----\n");
    let no_end = format!("-----BEGIN CERTIFICATE-----\n{body}\n");
    let bad_base64 = "-----BEGIN CERTIFICATE-----\nMIIB!!not*base64\n-----END CERTIFICATE-----\n";
    let two = format!("{good}{good}");
    let key_only =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";

    let missing = scratch.join("does-not-exist");
    let a_file = scratch.join("a-file");
    std::fs::write(&a_file, b"not a directory").unwrap();
    // A directory nobody may create in. Root ignores modes, so root gets sysfs instead, which
    // refuses mkdir to everyone.
    let unwritable = if is_root() {
        Path::new("/sys").to_owned()
    } else {
        let dir = scratch.join("read-only");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        dir
    };
    // Socket paths are limited to 107 bytes; this directory exists, the socket cannot.
    let long = scratch.join("l".repeat(100));
    std::fs::create_dir(&long).unwrap();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();

    let create_dir_error = |dir: &Path| {
        Message::Around(
            format!("cannot create the socket directory in {}: ", dir.display()),
            "; set PLUGIN_UNIX_SOCKET_DIR or TMPDIR to a writable directory".to_owned(),
        )
    };
    let socket_dir_fix = &["socket directory", "PLUGIN_UNIX_SOCKET_DIR or TMPDIR"];
    let versions =
        |value: &str| Message::Exact(HandshakeError::BadProtocolVersions(value.into()).to_string());
    let no_common = |offered: Vec<u32>| {
        Message::Exact(
            HandshakeError::NoCommonVersion {
                offered,
                served: SUPPORTED_VERSIONS.to_vec(),
            }
            .to_string(),
        )
    };
    let exact = |e: HandshakeError| Message::Exact(e.to_string());
    let (missing_s, file_s, unwritable_s, long_s) = (
        missing.display().to_string(),
        a_file.display().to_string(),
        unwritable.display().to_string(),
        long.display().to_string(),
    );

    let cases = vec![
        env_case(
            "no magic cookie",
            |l| l.remove("VAULT_BACKEND_PLUGIN"),
            exact(HandshakeError::NotLaunchedByHost(&BACKEND_COOKIE)),
            &["VAULT_BACKEND_PLUGIN", "plugin register"],
        ),
        env_case(
            "the database plugin cookie",
            |l| {
                l.remove("VAULT_BACKEND_PLUGIN")
                    .env(
                        "VAULT_DATABASE_PLUGIN",
                        "926a0820-aea2-be28-51d6-83cdf00e8edb",
                    )
                    .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
            },
            exact(HandshakeError::LaunchedAsOtherKind(&BACKEND_COOKIE)),
            &["not a database plugin", "register it with its type"],
        ),
        env_case(
            "a wrong cookie value",
            |l| {
                l.env(
                    "VAULT_BACKEND_PLUGIN",
                    "6669da05-b1c8-4f49-97d9-000000000000",
                )
            },
            exact(HandshakeError::WrongCookie(&BACKEND_COOKIE)),
            &["VAULT_BACKEND_PLUGIN", "launched by"],
        ),
        env_case(
            "PLUGIN_PROTOCOL_VERSIONS missing",
            |l| l.remove("PLUGIN_PROTOCOL_VERSIONS"),
            versions(""),
            &["PLUGIN_PROTOCOL_VERSIONS", "host sets it"],
        ),
        env_case(
            "PLUGIN_PROTOCOL_VERSIONS empty",
            |l| l.env("PLUGIN_PROTOCOL_VERSIONS", ""),
            versions(""),
            &["PLUGIN_PROTOCOL_VERSIONS", "host sets it"],
        ),
        env_case(
            "PLUGIN_PROTOCOL_VERSIONS garbage",
            |l| l.env("PLUGIN_PROTOCOL_VERSIONS", "five"),
            versions("five"),
            &["PLUGIN_PROTOCOL_VERSIONS", "five"],
        ),
        env_case(
            "PLUGIN_PROTOCOL_VERSIONS with an empty item",
            |l| l.env("PLUGIN_PROTOCOL_VERSIONS", "5,"),
            versions("5,"),
            &["PLUGIN_PROTOCOL_VERSIONS"],
        ),
        env_case(
            "PLUGIN_PROTOCOL_VERSIONS with semicolons",
            |l| l.env("PLUGIN_PROTOCOL_VERSIONS", "4;5"),
            versions("4;5"),
            &["PLUGIN_PROTOCOL_VERSIONS", "comma-separated"],
        ),
        env_case(
            "PLUGIN_PROTOCOL_VERSIONS negative",
            |l| l.env("PLUGIN_PROTOCOL_VERSIONS", "-5"),
            versions("-5"),
            &["PLUGIN_PROTOCOL_VERSIONS"],
        ),
        env_case(
            "PLUGIN_PROTOCOL_VERSIONS beyond u32",
            |l| l.env("PLUGIN_PROTOCOL_VERSIONS", "4294967301"),
            versions("4294967301"),
            &["PLUGIN_PROTOCOL_VERSIONS"],
        ),
        env_case(
            "only unsupported versions, older",
            |l| l.env("PLUGIN_PROTOCOL_VERSIONS", "1,2"),
            no_common(vec![1, 2]),
            &["[1, 2]", "use a server that speaks one of these"],
        ),
        env_case(
            "only unsupported versions, newer",
            |l| l.env("PLUGIN_PROTOCOL_VERSIONS", "6,7"),
            no_common(vec![6, 7]),
            &["[6, 7]", "use a server that speaks one of these"],
        ),
        env_case(
            "PLUGIN_CLIENT_CERT missing",
            |l| l.remove("PLUGIN_CLIENT_CERT"),
            exact(HandshakeError::MissingClientCert),
            &["PLUGIN_CLIENT_CERT", "AutoMTLS"],
        ),
        env_case(
            "PLUGIN_CLIENT_CERT empty",
            |l| l.env("PLUGIN_CLIENT_CERT", ""),
            exact(HandshakeError::MissingClientCert),
            &["PLUGIN_CLIENT_CERT", "AutoMTLS"],
        ),
        env_case(
            "PLUGIN_CLIENT_CERT garbage",
            |l| l.env("PLUGIN_CLIENT_CERT", "not a certificate"),
            cert_message("not a certificate"),
            &["PLUGIN_CLIENT_CERT", "no certificate found", "host sets it"],
        ),
        env_case(
            "PLUGIN_CLIENT_CERT truncated body",
            move |l| l.env("PLUGIN_CLIENT_CERT", &truncated),
            Message::Exact(
                tls::TlsError::BadPeerCertificate(
                    "the PEM body is not a complete DER certificate".into(),
                )
                .to_string(),
            ),
            &["PLUGIN_CLIENT_CERT", "not a complete DER certificate"],
        ),
        env_case(
            "PLUGIN_CLIENT_CERT without its END line",
            {
                let no_end = no_end.clone();
                move |l| l.env("PLUGIN_CLIENT_CERT", &no_end)
            },
            cert_message(&no_end),
            &["PLUGIN_CLIENT_CERT"],
        ),
        env_case(
            "PLUGIN_CLIENT_CERT with a body that is not base64",
            |l| l.env("PLUGIN_CLIENT_CERT", bad_base64),
            cert_message(bad_base64),
            &["PLUGIN_CLIENT_CERT"],
        ),
        env_case(
            "PLUGIN_CLIENT_CERT with two certificates",
            move |l| l.env("PLUGIN_CLIENT_CERT", &two),
            Message::Exact(
                tls::TlsError::BadPeerCertificate("more than one certificate".into()).to_string(),
            ),
            &["PLUGIN_CLIENT_CERT", "more than one certificate"],
        ),
        env_case(
            "PLUGIN_CLIENT_CERT holding a key, not a certificate",
            |l| l.env("PLUGIN_CLIENT_CERT", key_only),
            cert_message(key_only),
            &["PLUGIN_CLIENT_CERT", "no certificate found"],
        ),
        env_case(
            "socket directory missing",
            {
                let dir = missing_s.clone();
                move |l| l.env("PLUGIN_UNIX_SOCKET_DIR", &dir)
            },
            create_dir_error(&missing),
            socket_dir_fix,
        ),
        env_case(
            "socket directory is a file",
            {
                let dir = file_s.clone();
                move |l| l.env("PLUGIN_UNIX_SOCKET_DIR", &dir)
            },
            create_dir_error(&a_file),
            socket_dir_fix,
        ),
        env_case(
            "socket directory unwritable",
            {
                let dir = unwritable_s.clone();
                move |l| l.env("PLUGIN_UNIX_SOCKET_DIR", &dir)
            },
            create_dir_error(&unwritable),
            socket_dir_fix,
        ),
        env_case(
            "TMPDIR unwritable (no PLUGIN_UNIX_SOCKET_DIR)",
            {
                let dir = unwritable_s.clone();
                move |l| l.env("TMPDIR", &dir)
            },
            create_dir_error(&unwritable),
            socket_dir_fix,
        ),
        env_case(
            "socket path over 107 bytes",
            {
                let dir = long_s.clone();
                move |l| l.env("PLUGIN_UNIX_SOCKET_DIR", &dir)
            },
            Message::Around(
                format!("cannot listen on unix socket {}/plugin-", long.display()),
                " (socket paths are limited to 107 bytes; set PLUGIN_UNIX_SOCKET_DIR or TMPDIR \
                 to a shorter directory)"
                    .to_owned(),
            ),
            &["107 bytes", "shorter directory"],
        ),
        env_case(
            "TCP port range reversed",
            |l| {
                l.arg("--tcp")
                    .env("PLUGIN_MIN_PORT", "25000")
                    .env("PLUGIN_MAX_PORT", "10000")
            },
            exact(HandshakeError::BadPortRange("25000..10000".into())),
            &["PLUGIN_MIN_PORT/PLUGIN_MAX_PORT", "25000..10000"],
        ),
        env_case(
            "TCP port not a number",
            |l| l.arg("--tcp").env("PLUGIN_MIN_PORT", "ten thousand"),
            exact(HandshakeError::BadPortRange(
                "PLUGIN_MIN_PORT=\"ten thousand\"".into(),
            )),
            &["PLUGIN_MIN_PORT"],
        ),
        env_case(
            "TCP port range with no free port",
            {
                let port = busy_port.clone();
                move |l| {
                    l.arg("--tcp")
                        .env("PLUGIN_MIN_PORT", &port)
                        .env("PLUGIN_MAX_PORT", &port)
                }
            },
            Message::Exact(format!(
                "no free TCP port on 127.0.0.1 between PLUGIN_MIN_PORT={busy_port} and \
                 PLUGIN_MAX_PORT={busy_port}"
            )),
            &["no free TCP port", "PLUGIN_MIN_PORT"],
        ),
        env_case(
            "an unknown catalog argument",
            |l| l.arg("-no-such-flag"),
            args_message(&["-no-such-flag"]),
            &["--no-such-flag", "check the plugin's args in the catalog"],
        ),
        env_case(
            "a bad log level argument",
            |l| l.arg("--log-level=loud"),
            args_message(&["--log-level=loud"]),
            &["loud", "check the plugin's args in the catalog"],
        ),
    ];
    (cases, busy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_table_every_case_exits_1_with_one_clear_line() {
    let scratch = TempDir::new("env");
    let (cases, _busy_port) = env_cases(scratch.path());
    let cert = HostCert::generate();
    let mut table = Table::new("environment");
    for case in cases {
        let launch = (case.launch)(Launch::new(&cert));
        let mut plugin = launch.spawn();
        let status = plugin.wait_exit(EXIT_TIMEOUT).await;
        let stdout = plugin.stdout_until_closed(EXIT_TIMEOUT).await;
        let stderr = plugin.stderr_until_closed(EXIT_TIMEOUT).await;
        let left: Vec<_> = std::fs::read_dir(plugin.tmpdir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        let outcome = (|| {
            expect_eq(&status.code(), &Some(1))
                .map_err(|e| format!("exit status: {e}; stderr {stderr:?}"))?;
            expect_eq(&stdout, &Vec::<String>::new())
                .map_err(|e| format!("stdout must be empty: {e}"))?;
            expect(stderr.len() == 1, || {
                format!("exactly one stderr line, got {stderr:#?}")
            })?;
            let line: serde_json::Map<String, Value> = serde_json::from_str(&stderr[0])
                .map_err(|e| format!("not JSON ({e}): {:?}", stderr[0]))?;
            expect_eq(&line["@level"], &json!("error")).map_err(|e| format!("@level: {e}"))?;
            let message = line["@message"]
                .as_str()
                .ok_or_else(|| format!("no @message in {line:?}"))?;
            case.message.check(message)?;
            for needle in case.mentions {
                expect(message.contains(needle), || {
                    format!("{message:?} lacks {needle:?}")
                })?;
            }
            // Nothing left behind: no socket directory in the plugin's TMPDIR.
            expect(left.is_empty(), || format!("left behind {left:?}"))
        })();
        table.case(case.name, outcome);
    }
    assert!(table.cases() >= 25, "{} cases", table.cases());
    table.finish();
}

// =============================================================================================
// 2. Requests at the wire level, through the test host

/// The exact reply to a call.
#[derive(Clone, Debug, PartialEq)]
enum Reply {
    /// A response with this `data` and these warnings.
    Data(Value, Vec<String>),
    /// A nil response (the server makes it a 404 on read, a 204 on write).
    Nil,
    /// A `ProtoError` of this type with this text.
    Error(u32, String),
    /// An existence check's answer: (check_found, exists).
    Exists(bool, bool),
}

fn data(value: Value) -> Reply {
    Reply::Data(value, Vec::new())
}

fn error(kind: u32, message: &str) -> Reply {
    Reply::Error(kind, message.to_owned())
}

fn invalid(field_problem: &str) -> Reply {
    data(json!({ "error": format!("Field validation failed: {field_problem}") }))
}

const NOT_JSON: &str = "request data is not valid JSON: EOF while parsing an object at line 1 \
                        column 1";
const TRAILING: &str = "request data is not valid JSON: trailing characters at line 1 column 4";
const OUT_OF_RANGE: &str =
    "request data is not valid JSON: number out of range at line 1 column 15";
const OBJECT_VALUE: &str = "error converting input for field \"value\": '' expected type \
                            'string', got unconvertible type 'map[string]interface {}'";
const ARRAY_VALUE: &str = "error converting input for field \"value\": '' expected type \
                           'string', got unconvertible type '[]interface {}'";
const BIG: &str = "12345678901234567890";
const VERSION_SYNTAX: &str = "error converting input for field \"version\": '' cannot parse \
                              value as 'int': strconv.ParseInt: invalid syntax";
const VERSION_RANGE: &str = "error converting input for field \"version\": '' cannot parse \
                             value as 'int': strconv.ParseInt: value out of range";
const IGNORED: &str = "Endpoint ignored these unrecognized parameters: [extra]";
const REPLACED: &str = "Endpoint replaced the value of these parameters with the values \
                        captured from the endpoint's path: [key]";
const READ_EXISTENCE: &str = "incorrect operation type read for an existence check";

fn not_object(kind: &str) -> Reply {
    error(
        4,
        &format!("request data must be a JSON object, not {kind}"),
    )
}

/// A write's echo of `{"value": "v"}` with one warning.
fn warned(warning: &str) -> Reply {
    Reply::Data(json!({"value": "v"}), vec![warning.to_owned()])
}

struct RequestCase {
    name: &'static str,
    /// `HandleExistenceCheck` instead of `HandleRequest`.
    existence: bool,
    operation: &'static str,
    path: String,
    /// The request's `data`, as the wire carries it (a JSON text, or not).
    data: String,
    /// Storage entries before the call.
    seed: Vec<(String, Vec<u8>)>,
    reply: Reply,
    /// Storage entries after the call (`None`: absent).
    stored: Vec<(String, Option<Vec<u8>>)>,
}

fn request(
    name: &'static str,
    operation: &'static str,
    path: impl Into<String>,
    data: impl Into<String>,
    reply: Reply,
) -> RequestCase {
    RequestCase {
        name,
        existence: false,
        operation,
        path: path.into(),
        data: data.into(),
        seed: Vec::new(),
        reply,
        stored: Vec::new(),
    }
}

impl RequestCase {
    fn seed(mut self, key: &str, value: &[u8]) -> Self {
        self.seed.push((key.to_owned(), value.to_vec()));
        self
    }

    fn stores(mut self, key: &str, value: Option<&[u8]>) -> Self {
        self.stored
            .push((key.to_owned(), value.map(<[u8]>::to_vec)));
        self
    }

    fn existence(mut self) -> Self {
        self.existence = true;
        self
    }
}

fn request_cases() -> Vec<RequestCase> {
    let unicode = "värde ✓ 🔑 κλειδί 鍵";
    let controls = "a\u{0}b\u{1f}c\u{7f}\r\n\t\"\\";
    let long_key = "k".repeat(4096);
    vec![
        // The data field itself.
        request(
            "data that is not JSON",
            "create",
            "kv/a",
            "{",
            error(4, NOT_JSON),
        )
        .stores("kv/a", None),
        request(
            "data with trailing garbage",
            "create",
            "kv/a",
            "{} x",
            error(4, TRAILING),
        )
        .stores("kv/a", None),
        request(
            "data that is a JSON array",
            "create",
            "kv/a",
            "[1,2]",
            not_object("an array"),
        )
        .stores("kv/a", None),
        request(
            "data that is a JSON string",
            "create",
            "kv/a",
            "\"v\"",
            not_object("a string"),
        )
        .stores("kv/a", None),
        request(
            "data that is a JSON number",
            "create",
            "kv/a",
            "42",
            not_object("a number"),
        )
        .stores("kv/a", None),
        request(
            "data that is a JSON boolean",
            "create",
            "kv/a",
            "true",
            not_object("a boolean"),
        )
        .stores("kv/a", None),
        request(
            "data with a number beyond f64",
            "create",
            "kv/a",
            r#"{"value": 1e400}"#,
            error(4, OUT_OF_RANGE),
        )
        .stores("kv/a", None),
        request(
            "data that is JSON null",
            "create",
            "kv/null",
            "null",
            data(json!({"value": ""})),
        )
        .stores("kv/null", Some(b"")),
        request(
            "data that is empty",
            "create",
            "kv/empty",
            "",
            data(json!({"value": ""})),
        )
        .stores("kv/empty", Some(b"")),
        request(
            "data that is not JSON, existence check",
            "update",
            "kv/a",
            "{",
            error(4, NOT_JSON),
        )
        .existence(),
        // Field types, as the Go framework converts them.
        request(
            "value of type object",
            "create",
            "kv/t",
            r#"{"value": {"a": 1}}"#,
            invalid(OBJECT_VALUE),
        )
        .stores("kv/t", None),
        request(
            "value of type array",
            "create",
            "kv/t",
            r#"{"value": [1]}"#,
            invalid(ARRAY_VALUE),
        )
        .stores("kv/t", None),
        request(
            "value of type object, existence check",
            "update",
            "kv/t",
            r#"{"value": {}}"#,
            error(1, OBJECT_VALUE),
        )
        .existence(),
        request(
            "value of type number",
            "create",
            "kv/n",
            r#"{"value": 12.5}"#,
            data(json!({"value": "12.5"})),
        )
        .stores("kv/n", Some(b"12.5")),
        request(
            "value of type big integer",
            "create",
            "kv/n",
            format!(r#"{{"value": {BIG}}}"#),
            data(json!({"value": BIG})),
        )
        .stores("kv/n", Some(BIG.as_bytes())),
        request(
            "value of type boolean",
            "create",
            "kv/b",
            r#"{"value": true}"#,
            data(json!({"value": "1"})),
        )
        .stores("kv/b", Some(b"1")),
        request(
            "version that is not a number",
            "read",
            "kv/b",
            r#"{"version": "abc"}"#,
            invalid(VERSION_SYNTAX),
        ),
        request(
            "version beyond i64",
            "read",
            "kv/b",
            format!(r#"{{"version": "{BIG}0"}}"#),
            invalid(VERSION_RANGE),
        ),
        request(
            "an unknown parameter",
            "create",
            "kv/w",
            r#"{"value": "v", "extra": 1}"#,
            warned(IGNORED),
        )
        .stores("kv/w", Some(b"v")),
        request(
            "a body key the path overrides",
            "create",
            "kv/w2",
            r#"{"value": "v", "key": "o"}"#,
            warned(REPLACED),
        )
        .stores("kv/w2", Some(b"v"))
        .stores("kv/o", None),
        // Operations.
        request(
            "an unknown operation",
            "frobnicate",
            "kv/a",
            "",
            error(5, "unsupported operation"),
        ),
        request(
            "an empty operation",
            "",
            "kv/a",
            "",
            error(5, "unsupported operation"),
        ),
        request(
            "an unknown operation, unknown path",
            "frobnicate",
            "nowhere",
            "",
            error(6, "unsupported path"),
        ),
        request(
            "renew without a secret",
            "renew",
            "kv/a",
            "",
            error(0, "request has no secret"),
        ),
        request(
            "an existence check for a read",
            "read",
            "kv/a",
            "",
            error(0, READ_EXISTENCE),
        )
        .existence(),
        // Keys.
        request(
            "an empty key",
            "create",
            "kv/",
            r#"{"value": "v"}"#,
            error(5, "unsupported operation"),
        )
        .stores("kv/", None),
        request(
            "no key and no slash",
            "read",
            "kv",
            "",
            error(5, "unsupported operation"),
        ),
        request("key ..", "read", "kv/..", "", error(6, "unsupported path")),
        request(
            "key .",
            "create",
            "kv/.",
            r#"{"value": "v"}"#,
            error(6, "unsupported path"),
        )
        .stores("kv/.", None),
        request(
            "key ../internal",
            "update",
            "kv/../internal",
            r#"{"value": "v"}"#,
            error(6, "unsupported path"),
        ),
        request(
            "a key with a slash",
            "create",
            "kv/a/b",
            r#"{"value": "v"}"#,
            error(6, "unsupported path"),
        )
        .stores("kv/a/b", None),
        request(
            "a key starting with a dot",
            "create",
            "kv/.hidden",
            "{}",
            error(6, "unsupported path"),
        ),
        request(
            "a key ending with a dash",
            "create",
            "kv/a-",
            "{}",
            error(6, "unsupported path"),
        ),
        request(
            "a key with a space",
            "create",
            "kv/a b",
            "{}",
            error(6, "unsupported path"),
        ),
        request(
            "a key with a NUL byte",
            "create",
            "kv/a\u{0}b",
            "{}",
            error(6, "unsupported path"),
        ),
        request(
            "a non-ASCII key",
            "create",
            "kv/ключ",
            r#"{"value": "v"}"#,
            error(6, "unsupported path"),
        )
        .stores("kv/ключ", None),
        request(
            "a trailing slash after the key",
            "read",
            "kv/foo/",
            "",
            error(6, "unsupported path"),
        ),
        request(
            "the empty path",
            "read",
            "",
            "",
            error(6, "unsupported path"),
        ),
        request(
            "dots inside a key",
            "create",
            "kv/a..b",
            r#"{"value": "dots"}"#,
            data(json!({"value": "dots"})),
        )
        .stores("kv/a..b", Some(b"dots")),
        request(
            "a 4096-character key",
            "create",
            format!("kv/{long_key}"),
            r#"{"value": "long"}"#,
            data(json!({"value": "long"})),
        )
        .stores(&format!("kv/{long_key}"), Some(b"long")),
        // Values.
        request(
            "a non-ASCII value",
            "create",
            "kv/u",
            json!({"value": unicode}).to_string(),
            data(json!({"value": unicode})),
        )
        .stores("kv/u", Some(unicode.as_bytes())),
        request(
            "a non-ASCII value reads back",
            "read",
            "kv/u",
            "",
            data(json!({"value": unicode, "version": 0})),
        ),
        request(
            "a value with control characters",
            "create",
            "kv/c",
            json!({"value": controls}).to_string(),
            data(json!({"value": controls})),
        )
        .stores("kv/c", Some(controls.as_bytes())),
        request(
            "a value with control characters reads back",
            "read",
            "kv/c",
            "",
            data(json!({"value": controls, "version": 0})),
        ),
        request(
            "stored bytes that are not UTF-8",
            "read",
            "kv/bin",
            "",
            data(json!({"value": "\u{fffd}\u{fffd}A", "version": 0})),
        )
        .seed("kv/bin", b"\xff\xfeA")
        .stores("kv/bin", Some(b"\xff\xfeA")),
        request("a missing key", "read", "kv/missing", "", Reply::Nil),
        request(
            "a delete of a missing key",
            "delete",
            "kv/missing",
            "",
            Reply::Nil,
        )
        .stores("kv/missing", None),
    ]
}

/// A failure message that stays readable when a value is megabytes long.
/// The reply to a case's call; `Err` when the call itself fails (a gRPC status).
async fn send(host: &Host, case: &RequestCase) -> Result<Reply, String> {
    let request = pb::Request {
        id: format!("bad-input-{}", case.name),
        operation: case.operation.to_owned(),
        path: case.path.clone(),
        data: case.data.clone(),
        mount_point: "mock/".to_owned(),
        mount_type: "mock-plugin".to_owned(),
        ..Default::default()
    };
    if case.existence {
        let args = pb::HandleExistenceCheckArgs {
            storage_id: 0,
            request: Some(request),
        };
        let reply = host
            .backend()
            .handle_existence_check(for_mount(MOUNT, args))
            .await
            .map_err(|status| format!("the call failed: {status}"))?
            .into_inner();
        return Ok(match reply.err {
            Some(err) => Reply::Error(err.err_type, err.err_msg),
            None => Reply::Exists(reply.check_found, reply.exists),
        });
    }
    let args = pb::HandleRequestArgs {
        storage_id: 0,
        request: Some(request),
    };
    let reply = host
        .backend()
        .handle_request(for_mount(MOUNT, args))
        .await
        .map_err(|status| format!("the call failed: {status}"))?
        .into_inner();
    match (reply.err, reply.response) {
        (Some(err), None) => Ok(Reply::Error(err.err_type, err.err_msg)),
        (None, None) => Ok(Reply::Nil),
        (None, Some(response)) => Ok(Reply::Data(
            serde_json::from_str(&response.data)
                .map_err(|e| format!("response data is not JSON ({e}): {:?}", response.data))?,
            response.warnings,
        )),
        (Some(err), Some(response)) => Err(format!("both {err:?} and {response:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_table_every_case_gets_its_exact_reply() {
    let mut host = Host::start().await;
    let mount = host.mount(MOUNT).await;
    let cases = request_cases();
    let mut table = Table::new("request");
    for case in &cases {
        for (key, value) in &case.seed {
            mount.storage.insert(key, value);
        }
        let mut outcome = send(&host, case)
            .await
            .and_then(|reply| expect_eq(&reply, &case.reply));
        for (key, value) in &case.stored {
            // Storage is checked even after a wrong reply: both are reported.
            let stored = expect_eq(&mount.storage.get(key), value)
                .map_err(|e| format!("storage at {key:?}: {e}"));
            outcome = match (outcome, stored) {
                (Ok(()), stored) => stored,
                (Err(reply), Ok(())) => Err(reply),
                (Err(reply), Err(stored)) => Err(format!("{reply}; {stored}")),
            };
        }
        table.case(case.name, outcome);
    }
    // A list of 10,000 keys, in a mount of its own.
    let list = host.mount("mountLIST1").await;
    let many: Vec<String> = (0..10_000).map(|i| format!("key-{i:05}")).collect();
    for key in &many {
        list.storage.insert(&format!("kv/{key}"), b"v");
    }
    let listed = host
        .request("mountLIST1", "list", "kv/", &Value::Null)
        .await;
    let listed = listed
        .response
        .map(|r| serde_json::from_str::<Value>(&r.data).unwrap());
    table.check(
        "a list of 10,000 keys",
        &listed,
        &Some(json!({ "keys": many })),
    );

    // A request with no `Request` in it at all.
    let reply = host
        .backend()
        .handle_request(for_mount(MOUNT, pb::HandleRequestArgs::default()))
        .await
        .unwrap()
        .into_inner();
    table.check(
        "a call with no request",
        &reply.err.map(|e| (e.err_type, e.err_msg)),
        &Some((4, "the call carries no request".to_owned())),
    );
    assert!(table.cases() >= 30, "{} cases", table.cases());
    table.finish();
    // No crash: the plugin still answers, and still holds what was written.
    let read = host.request(MOUNT, "read", "kv/a..b", &Value::Null).await;
    assert_eq!(
        read.response.map(|r| r.data),
        Some(json!({"value": "dots", "version": 0}).to_string())
    );
}

// =============================================================================================
// 3. Requests through a real OpenBao 2.7.2

/// The server's own words for a JSON body that is not an object.
const NOT_A_MAP: &str = "failed to decode JSON input: json: cannot unmarshal array into Go value \
                         of type map[string]interface {}";

/// OpenBao's default `max_request_size`: 32 MiB.
const MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;

fn server_with_mount() -> common::DevServer {
    let server = common::DevServer::start();
    server.register_and_enable("my-mock-plugin", &["mock"]);
    server
}

/// A PUT of a raw body with the root token; the status and the body as JSON (or text).
fn put_raw(server: &common::DevServer, path: &str, body: &[u8]) -> (u16, Value) {
    let (status, _, reply) = server.http_raw(
        "PUT",
        path,
        &[
            ("X-Vault-Token", server.token()),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    let text = String::from_utf8_lossy(&reply).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A `{"value": "yyy…"}` body of exactly `size` bytes.
fn body_of_size(size: usize) -> Vec<u8> {
    let frame = br#"{"value":""}"#.len();
    format!(r#"{{"value":"{}"}}"#, "y".repeat(size - frame)).into_bytes()
}

#[test]
fn server_table_limits_paths_and_sizes() {
    let server = server_with_mount();
    let mut table = Table::new("server");
    let mut case = |name: &str, got: (u16, Value), expected: (u16, Value)| {
        table.check(name, &got, &expected);
    };

    // A list of 10,000 keys, written by 16 writers. First: once a mount holds a 16 MiB value,
    // every write to the dev server's in-memory storage costs the server ~10 times more CPU.
    let keys: Vec<String> = (0..10_000).map(|i| format!("k{i:05}")).collect();
    let started = Instant::now();
    let server = &server;
    std::thread::scope(|scope| {
        for chunk in keys.chunks(keys.len() / 16) {
            scope.spawn(move || {
                for key in chunk {
                    let (status, _) = server.http(
                        "PUT",
                        &format!("mock/kv/{key}"),
                        Some(&json!({"value": key})),
                    );
                    assert_eq!(status, 200, "{key}");
                }
            });
        }
    });
    let written = started.elapsed();
    let (status, body) = server.http("LIST", "mock/kv", None);
    case(
        "a list of 10,000 keys",
        (status, body["data"]["keys"].clone()),
        (200, json!(keys)),
    );

    // A 16 MiB value goes in and comes back whole.
    let big = "v".repeat(16 * 1024 * 1024);
    let (status, body) = server.http("PUT", "mock/kv/big", Some(&json!({ "value": big })));
    case(
        "16 MiB write",
        (status, body["data"]["value"].clone()),
        (200, json!(big)),
    );
    let (status, body) = server.http("GET", "mock/kv/big", None);
    case(
        "16 MiB read",
        (status, body["data"].clone()),
        (200, json!({"value": big, "version": 0})),
    );
    drop(big);

    // The server's request limit, to the byte: at it the write works; one byte over, the
    // server refuses it before the plugin sees anything.
    let (status, body) = put_raw(server, "/v1/mock/kv/limit", &body_of_size(MAX_REQUEST_SIZE));
    case(
        "a body of exactly max_request_size",
        (status, json!(body["data"]["value"].as_str().map(str::len))),
        (200, json!(MAX_REQUEST_SIZE - 12)),
    );
    let (status, body) = put_raw(
        server,
        "/v1/mock/kv/over",
        &body_of_size(MAX_REQUEST_SIZE + 1),
    );
    case(
        "a body one byte over max_request_size",
        (status, body),
        (413, json!({"errors": ["http: request body too large"]})),
    );
    case(
        "nothing stored for the refused body",
        server.http("GET", "mock/kv/over", None),
        (404, json!({"errors": []})),
    );

    // Bodies the server decodes itself.
    case(
        "a body that is not JSON",
        put_raw(server, "/v1/mock/kv/x", b"{"),
        (
            400,
            json!({"errors": ["failed to decode JSON input: unexpected EOF"]}),
        ),
    );
    case(
        "a body that is a JSON array",
        put_raw(server, "/v1/mock/kv/x", b"[1]"),
        (400, json!({ "errors": [NOT_A_MAP] })),
    );
    // A wrong type fails the plugin's existence check, which the server makes a 400.
    case(
        "a value of the wrong type",
        put_raw(server, "/v1/mock/kv/x", br#"{"value": {"a": 1}}"#),
        (400, json!({ "errors": [OBJECT_VALUE] })),
    );
    case(
        "nothing stored for the bad bodies",
        server.http("GET", "mock/kv/x", None),
        (404, json!({"errors": []})),
    );

    // Paths: the server cleans `.` and `..` with a redirect, inside the mount.
    let (status, headers, _) = server.http_raw(
        "GET",
        "mock/kv/..",
        &[("X-Vault-Token", server.token())],
        b"",
    );
    let location = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("location"))
        .map(|(_, v)| v.clone());
    case(
        "key ..",
        (status, json!(location)),
        (307, json!("/v1/mock")),
    );
    let (status, headers, _) = server.http_raw(
        "GET",
        "mock/kv/.",
        &[("X-Vault-Token", server.token())],
        b"",
    );
    let location = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("location"))
        .map(|(_, v)| v.clone());
    case(
        "key .",
        (status, json!(location)),
        (307, json!("/v1/mock/kv")),
    );
    let unsupported = (
        404,
        json!({"errors": ["1 error occurred:\n\t* unsupported path\n\n"]}),
    );
    case(
        "a non-ASCII key",
        server.http(
            "PUT",
            "mock/kv/%D0%BA%D0%BB%D1%8E%D1%87",
            Some(&json!({"value": "v"})),
        ),
        unsupported.clone(),
    );
    case(
        "an encoded slash in a key",
        server.http("GET", "mock/kv/a%2Fb", None),
        unsupported.clone(),
    );
    case(
        "a key with a space",
        server.http("GET", "mock/kv/a%20b", None),
        unsupported,
    );
    case(
        "an empty key",
        server.http("PUT", "mock/kv/", Some(&json!({"value": "v"}))),
        (
            400,
            json!({"errors": ["cannot write to a path ending in '/'"]}),
        ),
    );

    eprintln!("server table: 10,000 writes in {written:?}");
    table.finish();
}

// =============================================================================================
// 4. Protocol

/// A call with hand-made `multiplex_id` metadata.
#[derive(Clone, Copy, Debug)]
enum Meta {
    Missing,
    Empty,
    Twice,
    NotAscii,
    Id(&'static str),
}

fn with_meta<T>(meta: Meta, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    match meta {
        Meta::Missing => {}
        Meta::Empty => {
            metadata.insert("multiplex_id", AsciiMetadataValue::from_static(""));
        }
        Meta::Twice => {
            metadata.append("multiplex_id", AsciiMetadataValue::from_static("one"));
            metadata.append("multiplex_id", AsciiMetadataValue::from_static("two"));
        }
        Meta::NotAscii => {
            let value = AsciiMetadataValue::try_from(&b"id-\xff\xfe"[..]).unwrap();
            metadata.insert("multiplex_id", value);
        }
        Meta::Id(id) => {
            metadata.insert("multiplex_id", id.parse().unwrap());
        }
    }
    request
}

#[derive(Clone, Copy, Debug)]
enum Rpc {
    HandleRequest,
    ExistenceCheck,
    SpecialPaths,
    Type,
    Initialize,
    InvalidateKey,
    Cleanup,
    Setup,
    Version,
}

/// A call's outcome: `Ok` with a summary of the reply, or the gRPC status code and message.
type Answer = Result<String, (Code, String)>;

/// Makes `rpc` with `meta`.
async fn call(host: &Host, rpc: Rpc, meta: Meta) -> Answer {
    let mut backend = host.backend();
    let request = || host::wire_request("read", "kv/foo", &Value::Null);
    let result = match rpc {
        Rpc::HandleRequest => backend
            .handle_request(with_meta(
                meta,
                pb::HandleRequestArgs {
                    storage_id: 0,
                    request: Some(request()),
                },
            ))
            .await
            .map(|r| format!("{:?}", r.into_inner().err)),
        Rpc::ExistenceCheck => backend
            .handle_existence_check(with_meta(
                meta,
                pb::HandleExistenceCheckArgs {
                    storage_id: 0,
                    request: Some(request()),
                },
            ))
            .await
            .map(|r| format!("{:?}", r.into_inner().err)),
        Rpc::SpecialPaths => backend
            .special_paths(with_meta(meta, pb::Empty {}))
            .await
            .map(|_| "paths".into()),
        Rpc::Type => backend
            .r#type(with_meta(meta, pb::Empty {}))
            .await
            .map(|r| r.into_inner().r#type.to_string()),
        Rpc::Initialize => backend
            .initialize(with_meta(meta, pb::InitializeArgs {}))
            .await
            .map(|_| "initialized".into()),
        Rpc::InvalidateKey => backend
            .invalidate_key(with_meta(
                meta,
                pb::InvalidateKeyArgs {
                    key: "internal".into(),
                },
            ))
            .await
            .map(|_| "invalidated".into()),
        Rpc::Cleanup => backend
            .cleanup(with_meta(meta, pb::Empty {}))
            .await
            .map(|_| "cleaned up".into()),
        Rpc::Setup => backend
            .setup(with_meta(
                meta,
                pb::SetupArgs {
                    broker_id: 999,
                    config: Default::default(),
                    backend_uuid: String::new(),
                },
            ))
            .await
            .map(|r| r.into_inner().err),
        Rpc::Version => host
            .versions()
            .version(with_meta(meta, vault_plugin_sdk::proto::logical::Empty {}))
            .await
            .map(|r| r.into_inner().plugin_version),
    };
    result.map_err(|status| (status.code(), status.message().to_owned()))
}

fn not_set_up(id: &str) -> Answer {
    Err((
        Code::FailedPrecondition,
        format!(
            "no backend instance found for multiplex_id {id:?}: Setup has not been called for \
             this mount, or it was cleaned up"
        ),
    ))
}

fn bad_meta(message: &str) -> Answer {
    Err((Code::InvalidArgument, message.to_owned()))
}

const MISSING: &str = "missing plugin multiplexing metadata: every pb.Backend call must carry \
                       `multiplex_id` (the server sends it on protocol 5)";

/// Announces broker listeners on a `StartStream` of our own, kept open while the value lives
/// (closing a broker stream tells the plugin its server is gone).
struct Announcer {
    send: mpsc::Sender<plugin::ConnInfo>,
    _replies: tonic::Streaming<plugin::ConnInfo>,
}

impl Announcer {
    async fn open(host: &Host) -> Self {
        let (send, outbound) = mpsc::channel(8);
        let replies = GrpcBrokerClient::new(host.channel())
            .start_stream(ReceiverStream::new(outbound))
            .await
            .unwrap()
            .into_inner();
        Self {
            send,
            _replies: replies,
        }
    }

    async fn announce(&self, id: u32, network: &str, address: &str) {
        let info = plugin::ConnInfo {
            service_id: id,
            network: network.to_owned(),
            address: address.to_owned(),
            knock: None,
        };
        self.send.send(info).await.unwrap();
    }
}

async fn setup(host: &Host, id: &'static str, broker_id: u32) -> (String, Duration) {
    let started = Instant::now();
    let args = pb::SetupArgs {
        broker_id,
        config: Default::default(),
        backend_uuid: "0b1a2c3d-4e5f-6071-8293-a4b5c6d7e8f9".into(),
    };
    let reply = host.backend().setup(with_meta(Meta::Id(id), args)).await;
    // A failed call is reported by the case, as its error text, like any other wrong answer.
    let err = reply.map_or_else(|s| format!("the call failed: {s}"), |r| r.into_inner().err);
    (err, started.elapsed())
}

/// A TLS server with a certificate shaped like the server's (P-521, `O=HashiCorp,
/// CN=localhost`, a CA used as an end entity) that is not the one the plugin pinned, and which
/// otherwise plays by the rules: it requires the plugin's own certificate and offers `h2`.
/// Returns how its handshakes ended.
fn impostor_listener(
    socket: &Path,
    plugin_cert: &CertificateDer<'static>,
) -> mpsc::Receiver<String> {
    // A second host certificate: the same recipe as the real one, another key.
    let config = host::server_tls(&HostCert::generate(), plugin_cert);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::UnixListener::bind(socket).unwrap();
    let (report, outcomes) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let outcome = match acceptor.accept(stream).await {
                Ok(_) => "handshake completed".to_owned(),
                Err(e) => e.to_string(),
            };
            if report.send(outcome).await.is_err() {
                return;
            }
        }
    });
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_table_every_case_gets_its_exact_answer() {
    let mut host = Host::start().await;
    let mut table = Table::new("protocol");

    // Calls before any Setup, and bad metadata, on a plugin with no mount yet.
    let calls: Vec<(Rpc, Meta, Answer)> = vec![
        (Rpc::HandleRequest, Meta::Id("fresh"), not_set_up("fresh")),
        (Rpc::ExistenceCheck, Meta::Id("fresh"), not_set_up("fresh")),
        (Rpc::SpecialPaths, Meta::Id("fresh"), not_set_up("fresh")),
        (Rpc::Type, Meta::Id("fresh"), not_set_up("fresh")),
        (Rpc::Initialize, Meta::Id("fresh"), not_set_up("fresh")),
        (Rpc::InvalidateKey, Meta::Id("fresh"), not_set_up("fresh")),
        (Rpc::Cleanup, Meta::Id("fresh"), Ok("cleaned up".into())),
        (Rpc::Version, Meta::Id("fresh"), Ok("v0.0.0+mock".into())),
        (Rpc::HandleRequest, Meta::Missing, bad_meta(MISSING)),
        (Rpc::Setup, Meta::Missing, bad_meta(MISSING)),
        (Rpc::Cleanup, Meta::Missing, bad_meta(MISSING)),
        (Rpc::Type, Meta::Missing, bad_meta(MISSING)),
        (
            Rpc::HandleRequest,
            Meta::Twice,
            bad_meta("more than one multiplex_id in the call's metadata"),
        ),
        (
            Rpc::Setup,
            Meta::Twice,
            bad_meta("more than one multiplex_id in the call's metadata"),
        ),
        (
            Rpc::Initialize,
            Meta::Twice,
            bad_meta("more than one multiplex_id in the call's metadata"),
        ),
        (
            Rpc::HandleRequest,
            Meta::Empty,
            bad_meta("empty multiplex_id in metadata"),
        ),
        (
            Rpc::Setup,
            Meta::Empty,
            bad_meta("empty multiplex_id in metadata"),
        ),
        (
            Rpc::HandleRequest,
            Meta::NotAscii,
            bad_meta("multiplex_id is not ASCII"),
        ),
    ];
    for (rpc, meta, expected) in calls {
        let got = call(&host, rpc, meta).await;
        table.check(format!("{rpc:?} with {meta:?}"), &got, &expected);
    }

    // Broker announcements that cannot be used. Ids from 1000 on, clear of the host's own.
    let announcer = Announcer::open(&host).await;
    let dir = TempDir::new("brk");

    // ConnInfo never comes: a clear error after go-plugin's 5 s (a second Setup waiting for
    // the same id is refused at once: `src/services/broker/tests.rs`). Runs alongside the next cases.
    let waiting = {
        let backend = host.backend();
        tokio::spawn(async move {
            let started = Instant::now();
            let args = pb::SetupArgs {
                broker_id: 1000,
                ..Default::default()
            };
            let reply = backend
                .clone()
                .setup(with_meta(Meta::Id("never"), args))
                .await;
            (reply.map(|r| r.into_inner().err), started.elapsed())
        })
    };

    // An address that refuses connections.
    let refusing = dir.path().join("refusing.sock");
    drop(std::os::unix::net::UnixListener::bind(&refusing).unwrap());
    announcer
        .announce(1001, "unix", &refusing.display().to_string())
        .await;
    let (err, _) = setup(&host, "refusing", 1001).await;
    let prefix = format!(
        "cannot connect to the server's broker listener 1001 at unix:{}: ",
        refusing.display()
    );
    table.case(
        "a broker address that refuses connections",
        expect(
            err.starts_with(&prefix) && err.ends_with("Connection refused (os error 111)"),
            || format!("got {err:?}"),
        ),
    );

    // A network the plugin does not know.
    announcer.announce(1002, "carrier-pigeon", "coop:7").await;
    let (err, _) = setup(&host, "pigeon", 1002).await;
    table.case(
        "an unknown broker network",
        expect(
            err.starts_with(
                "cannot connect to the server's broker listener 1002 at carrier-pigeon:coop:7: ",
            ) && err.ends_with("unsupported broker network \"carrier-pigeon\""),
            || format!("got {err:?}"),
        ),
    );

    // A listener presenting a certificate other than the pinned one, with the same subject.
    let impostor = dir.path().join("impostor.sock");
    let mut outcomes = impostor_listener(&impostor, &host.handshake.cert);
    announcer
        .announce(1003, "unix", &impostor.display().to_string())
        .await;
    let (err, _) = setup(&host, "impostor", 1003).await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    table.case(
        "a broker listener with another certificate of the same subject",
        expect(
            err.starts_with(&format!(
                "cannot connect to the server's broker listener 1003 at unix:{}: ",
                impostor.display()
            )) && err.contains("invalid peer certificate"),
            || format!("got {err:?}"),
        )
        .and_then(|()| {
            expect(outcome != "handshake completed", || {
                "the plugin trusted the impostor".into()
            })
        }),
    );
    // None of these mounts exists afterwards.
    for id in ["refusing", "pigeon", "impostor"] {
        let got = call(&host, Rpc::Type, Meta::Id(id)).await;
        table.check(
            format!("no mount {id} after its failed Setup"),
            &got,
            &not_set_up(id),
        );
    }

    let (err, elapsed) = waiting.await.unwrap();
    table.case(
        "Setup whose ConnInfo never comes",
        expect_eq(
            &err.map_err(|status| status.to_string()),
            &Ok(BrokerError::Timeout { id: 1000 }.to_string()),
        )
        .and_then(|()| {
            expect(
                elapsed >= CONN_INFO_TIMEOUT - Duration::from_millis(100)
                    && elapsed < Duration::from_secs(15),
                || format!("answered after {elapsed:?}, expected about {CONN_INFO_TIMEOUT:?}"),
            )
        }),
    );

    // Storage errors, passed through verbatim: in the reply's `err` (a standby's read-only
    // refusal, which the server matches to forward the request) and as gRPC failures (no
    // storage bound). Nothing already stored is lost.
    let mount = host.mount(MOUNT).await;
    host.write(MOUNT, "kv/kept", &json!({"value": "safe"}))
        .await;
    let readonly = "cannot write to readonly storage";
    let unbound = "missing storage implementation: ошибка ✗";
    let storage_cases: Vec<(&str, StorageMode, &str, &str, Value, Reply)> = vec![
        (
            "put refused",
            StorageMode::ReadOnly(readonly.into()),
            "create",
            "kv/new",
            json!({"value": "v"}),
            error(0, readonly),
        ),
        (
            "delete refused",
            StorageMode::ReadOnly(readonly.into()),
            "delete",
            "kv/kept",
            Value::Null,
            error(0, readonly),
        ),
        (
            "get failing",
            StorageMode::Unbound(unbound.into()),
            "read",
            "kv/kept",
            Value::Null,
            error(0, unbound),
        ),
        (
            "list failing",
            StorageMode::Unbound(unbound.into()),
            "list",
            "kv/",
            Value::Null,
            error(0, unbound),
        ),
        (
            "put failing",
            StorageMode::Unbound(unbound.into()),
            "update",
            "kv/kept",
            json!({"value": "lost?"}),
            error(0, unbound),
        ),
    ];
    for (name, mode, operation, path, body, expected) in storage_cases {
        mount.storage.set_mode(mode);
        let reply = host.request(MOUNT, operation, path, &body).await;
        let outcome = match (reply.err, reply.response) {
            (Some(e), None) => expect_eq(&Reply::Error(e.err_type, e.err_msg), &expected),
            other => Err(format!("got {other:?}, expected {expected:?}")),
        };
        table.case(name, outcome);
    }
    // The Go mock's existence check wraps the storage error, as here.
    let check = host
        .existence_check(MOUNT, "kv/kept", &json!({"value": "x"}))
        .await;
    table.check(
        "existence check failing",
        &check.err.map(|e| (e.err_type, e.err_msg)),
        &Some((0, format!("existence check failed: {unbound}"))),
    );
    mount.storage.set_mode(StorageMode::Writable);
    table.check(
        "nothing lost or added by the storage errors",
        &(mount.storage.get("kv/kept"), mount.storage.get("kv/new")),
        &(Some(b"safe".to_vec()), None),
    );

    // Setup repeated for a mount: the new backend replaces the old, with its own storage.
    host.request(MOUNT, "update", "internal", &json!({"value": "changed"}))
        .await;
    let again = host
        .setup(
            MOUNT,
            SetupOptions {
                storage: StorageMode::Writable,
                ..SetupOptions::mount()
            },
        )
        .await;
    let setup_err = again.reply.map(|r| r.err).map_err(|s| s.to_string());
    let read = host.request(MOUNT, "read", "internal", &Value::Null).await;
    host.write(MOUNT, "kv/after", &json!({"value": "new"}))
        .await;
    // (Setup's error, `internal` of the new backend, kv/after in the new and old storage.)
    table.check(
        "Setup repeated for a mount",
        &(
            setup_err,
            read.response.map(|r| r.data),
            again.mount.storage.get("kv/after"),
            mount.storage.get("kv/after"),
        ),
        &(
            Ok(String::new()),
            Some(json!({"value": "bar"}).to_string()),
            Some(b"new".to_vec()),
            None,
        ),
    );

    // A client with a certificate other than the server's, once the server is connected: the
    // connection is refused and the server's own connection is not disturbed.
    let impostor = HostCert::generate();
    let tls = client_tls(Some(&impostor), &host.handshake.cert, true);
    let refused = match dial(&host.handshake.address, Some(tls)).await {
        Err(e) => e.to_string(),
        Ok(channel) => {
            let check = tonic_health::pb::HealthCheckRequest {
                service: "plugin".into(),
            };
            let answer = tonic_health::pb::health_client::HealthClient::new(channel)
                .check(check)
                .await;
            answer.expect_err("the impostor was answered").to_string()
        }
    };
    eprintln!("impostor after the server: {refused}");
    let got = call(&host, Rpc::Type, Meta::Id(MOUNT)).await;
    table.check(
        "a client with another certificate after the server",
        &got,
        &Ok("1".to_owned()),
    );

    // After all of it the plugin still serves, and exits cleanly when asked (our extra broker
    // stream stays open till then: a broker stream that ends means the server is gone).
    host.shutdown().await.unwrap();
    let code = host.plugin.wait_exit(EXIT_TIMEOUT).await.code();
    table.check("a clean exit on Shutdown after all of it", &code, &Some(0));
    drop(announcer);
    assert!(table.cases() >= 25, "{} cases", table.cases());
    table.finish();
}

// =============================================================================================
// The tables' own reporting

/// A table with two failing cases among passing ones reports both, with their names and what
/// they got and expected, in one failure at the end; a table whose cases all pass does not
/// fail.
#[test]
fn a_table_reports_every_failing_case_at_the_end() {
    let mut table = Table::new("self-test");
    table.check("passes", &1, &1);
    table.check("first wrong", &(404, "a"), &(200, "a"));
    table.case("passes too", expect(true, String::new));
    table.case("second wrong", expect(false, || "the reason".into()));
    table.check("a long value", &"x".repeat(1000), &"x".repeat(1000));
    let report = table.report();
    let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| table.finish()))
        .expect_err("a table with failing cases must fail");
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert_eq!(message, report);
    assert_eq!(
        message,
        "2 of 5 cases of the self-test table failed:\n  \
         - first wrong: got (404, \"a\"), expected (200, \"a\")\n  \
         - second wrong: the reason"
    );

    let mut green = Table::new("green");
    green.check("passes", &"ok", &"ok");
    green.finish();
}
