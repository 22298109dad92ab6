//! The kv crate's integration-test harness, shared by its test files (`mod common;`): two dev
//! servers of the same flavour (`TEST_SERVER`, as [`DevServer`] reads it), one running our
//! binary and one HashiCorp's Go plugin (vault-plugin-secrets-kv v0.15.0, built by `make peers`),
//! each with the same mounts, and the requests the suites send them.
//!
//! How a server is made to run an external kv plugin (both Vault 1.14.1 and OpenBao 2.7.2,
//! asserted by `tests/registration.rs`):
//! * The name `kv` cannot be used. `kv` is one of the core's own factories, which the mount
//!   code consults before the plugin catalog: an unversioned external plugin registered as `kv`
//!   is accepted by the catalog but every `kv` mount still runs the builtin, and a registered
//!   version is refused (`cannot select non-builtin version of secrets plugin kv`).
//! * Under any other name the mount refuses `options.version` at enable time (`secrets engine
//!   "<name>" does not allow setting a version`), so the plugin's factory would only ever see
//!   version 1. A tune of `options.version` is not refused: the core stores the option, answers
//!   with its upgrade warning and reloads the backend, whose factory then gets `version=2` — as
//!   `vault kv enable-versioning` does for the builtin. So a version 2 mount is enabled bare and
//!   then tuned to version 2.
//!
//! `KV_DIFF_OURS_BIN` names another binary to run as "ours" (the Go peer, say, to check that the
//! differential suite finds no difference between a plugin and itself).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use plugin_test_support::common::{DevServer, Flavor, peer_bin, wait_until};
use plugin_test_support::http;
use serde_json::{Value, json};

/// The catalog name both servers give their binary, and its file name in the plugin directory.
pub(crate) const PLUGIN: &str = "vault-plugin-secrets-kv";
/// The version 2 mount every [`Pair`] has.
pub(crate) const V2: &str = "kv2";
/// The version 1 mount every [`Pair`] has.
pub(crate) const V1: &str = "kv1";
/// Bounds each answer of [`Side::put_many`].
const BULK_TIMEOUT: Duration = Duration::from_secs(60);
/// The Go peer's file in `target/peers/`.
pub(crate) const GO_PEER: &str = "vault-plugin-secrets-kv-go";
/// The core's warning when a tune raises a mount's `options.version` from nothing to 2.
/// OpenBao 2.7.2 names the old version twice (also for its builtin `kv`).
pub(crate) fn upgrade_warning(flavor: Flavor) -> String {
    let to = match flavor {
        Flavor::Vault => 2,
        Flavor::OpenBao => 0,
    };
    format!(
        "Upgrading mount from version 0 to version {to}. This mount will be unavailable for a \
         brief period and will resume service shortly."
    )
}

/// Our plugin: `KV_DIFF_OURS_BIN` when set, else the binary cargo built for this package.
pub(crate) fn ours_bin() -> PathBuf {
    match std::env::var_os("KV_DIFF_OURS_BIN") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "KV_DIFF_OURS_BIN={} is not a file",
                path.display()
            );
            path
        }
        _ => PathBuf::from(env!("CARGO_BIN_EXE_vault-plugin-secrets-kv")),
    }
}

/// HashiCorp's Go plugin, built by `make peers`.
pub(crate) fn go_bin() -> PathBuf {
    peer_bin(GO_PEER)
}

/// Copies `binary` into the server's plugin directory as [`PLUGIN`] and registers it there,
/// unversioned, as a secrets plugin; returns its SHA-256.
pub(crate) fn install(server: &DevServer, binary: &std::path::Path) -> String {
    let sha = server.install_file(PLUGIN, binary);
    server.cli_ok(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        &format!("-command={PLUGIN}"),
        "secret",
        PLUGIN,
    ]);
    sha
}

/// Enables the registered plugin at `path` with no options: a version 1 (passthrough) mount.
pub(crate) fn enable_v1(server: &DevServer, path: &str) {
    server.cli_ok(&["secrets", "enable", &format!("-path={path}"), PLUGIN]);
}

/// Enables the registered plugin at `path` and tunes it to `options.version=2` (see the module
/// header); returns once the reloaded backend answers its `config` read.
pub(crate) fn enable_v2(server: &DevServer, path: &str) {
    enable_v1(server, path);
    let (status, answer) = server.http(
        "POST",
        &format!("sys/mounts/{path}/tune"),
        Some(&json!({"options": {"version": "2"}})),
    );
    assert_eq!(
        (status, &answer["warnings"]),
        (200, &json!([upgrade_warning(server.flavor())])),
        "tune {path} to version 2: {answer}"
    );
    wait_until(
        &format!("{path}/config to answer as a version 2 mount"),
        Duration::from_secs(30),
        || server.http("GET", &format!("{path}/config"), None).0 == 200,
    );
}

/// Percent-encodes a key for a URL path: everything but unreserved characters and `/`.
pub(crate) fn enc(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Whether `text` starts with an RFC 3339 UTC time as Go prints it; its length if so.
fn rfc3339_at(text: &[u8]) -> Option<usize> {
    let digits = |range: std::ops::Range<usize>| {
        range
            .clone()
            .all(|at| text.get(at).is_some_and(u8::is_ascii_digit))
    };
    let fixed = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    let all_digits = [0..4, 5..7, 8..10, 11..13, 14..16, 17..19]
        .into_iter()
        .all(digits);
    if !all_digits || fixed.iter().any(|&(at, byte)| text.get(at) != Some(&byte)) {
        return None;
    }
    let mut end = 19;
    if text.get(end) == Some(&b'.') {
        end += 1;
        while text.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    (text.get(end) == Some(&b'Z')).then_some(end + 1)
}

/// Replaces every RFC 3339 time in `text` by `<time>`, wherever it stands.
pub(crate) fn scrub_times(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut copied = 0;
    while at < bytes.len() {
        if let Some(length) = rfc3339_at(&bytes[at..]) {
            out.push_str(&text[copied..at]);
            out.push_str("<time>");
            at += length;
            copied = at;
        } else {
            at += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Compact JSON text with the value of its first `"request_id"` replaced by `<request_id>`.
pub(crate) fn without_request_id(text: &str) -> String {
    const FIELD: &str = "\"request_id\":\"";
    let Some(at) = text.find(FIELD) else {
        return text.to_owned();
    };
    let start = at + FIELD.len();
    let end = start + text[start..].find('"').unwrap_or(0);
    format!("{}<request_id>{}", &text[..start], &text[end..])
}

/// One server of a [`Pair`] and the binary it runs.
pub(crate) struct Side {
    /// `ours` or `Go`, for reports.
    pub(crate) label: &'static str,
    pub(crate) server: DevServer,
    pub(crate) binary: PathBuf,
    pub(crate) sha256: String,
}

impl Side {
    /// `server` with `binary` registered as [`PLUGIN`] ([`install`]), nothing mounted yet.
    pub(crate) fn installed(label: &'static str, server: DevServer, binary: PathBuf) -> Self {
        let sha256 = install(&server, &binary);
        Self {
            label,
            server,
            binary,
            sha256,
        }
    }

    /// A server running `binary` as [`PLUGIN`], version 2 at [`V2`] and version 1 at [`V1`].
    fn start(label: &'static str, binary: PathBuf) -> Self {
        let side = Self::installed(label, DevServer::start(), binary);
        enable_v2(&side.server, V2);
        enable_v1(&side.server, V1);
        side
    }

    /// One request with the root token; `content_type` goes with a body.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Answer {
        let mut headers = vec![("X-Vault-Token", self.server.token())];
        if let Some(kind) = content_type {
            headers.push(("Content-Type", kind));
        }
        let (status, headers, body) = self.server.http_raw(method, path, &headers, body);
        Answer::new(status, &headers, body)
    }

    /// A request whose body, if any, is JSON.
    pub(crate) fn json(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        match body {
            Some(body) => self.request(
                method,
                path,
                Some("application/json"),
                body.to_string().as_bytes(),
            ),
            None => self.request(method, path, None, b""),
        }
    }

    /// Many JSON PUTs (`(path, body)`, path relative to `/v1/`) over `threads` keep-alive
    /// connections at once; the answers in the order of `requests`.
    pub(crate) fn put_many(&self, requests: &[(String, Value)], threads: usize) -> Vec<Answer> {
        let hostport = self.server.addr().trim_start_matches("http://").to_owned();
        let token = self.server.token().to_owned();
        let chunk = requests.len().div_ceil(threads.max(1)).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = requests
                .chunks(chunk)
                .map(|part| {
                    let (hostport, token) = (&hostport, &token);
                    scope.spawn(move || {
                        let open = || {
                            http::Connection::open(hostport, http::CONNECT_TIMEOUT, BULK_TIMEOUT)
                                .unwrap_or_else(|e| panic!("connect {hostport}: {e}"))
                        };
                        let mut connection = open();
                        let headers = [
                            ("X-Vault-Token", token.as_str()),
                            ("Content-Type", "application/json"),
                        ];
                        let mut answers = Vec::with_capacity(part.len());
                        for (path, body) in part {
                            let (target, body) = (format!("/v1/{path}"), body.to_string());
                            let mut response =
                                connection.request("PUT", &target, &headers, body.as_bytes());
                            // A keep-alive connection the server let go: send it again.
                            if response.as_ref().is_err_and(http::HttpError::is_unsent) {
                                connection = open();
                                response =
                                    connection.request("PUT", &target, &headers, body.as_bytes());
                            }
                            let response = response.unwrap_or_else(|e| panic!("PUT {target}: {e}"));
                            if !response.keep_alive {
                                connection = open();
                            }
                            answers.push(Answer::new(
                                response.status,
                                &response.headers,
                                response.body,
                            ));
                        }
                        answers
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| {
                    worker
                        .join()
                        .unwrap_or_else(|e| std::panic::resume_unwind(e))
                })
                .collect()
        })
    }

    /// A PATCH with the type the core requires (`application/merge-patch+json`).
    pub(crate) fn patch(&self, path: &str, body: &Value) -> Answer {
        self.request(
            "PATCH",
            path,
            Some("application/merge-patch+json"),
            body.to_string().as_bytes(),
        )
    }
}

/// An answer as a client sees it: status, `Content-Type` and the body's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) text: String,
}

impl Answer {
    fn new(status: u16, headers: &[(String, String)], body: Vec<u8>) -> Self {
        let content_type = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        Self {
            status,
            content_type,
            text: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// The body as JSON: `Null` when blank, a `String` when it is not JSON.
    pub(crate) fn json(&self) -> Value {
        if self.text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&self.text).unwrap_or_else(|_| Value::String(self.text.clone()))
        }
    }
}

/// Two servers of the same flavour, the same mounts, ours and the Go plugin.
pub(crate) struct Pair {
    pub(crate) ours: Side,
    pub(crate) go: Side,
}

impl Pair {
    /// Starts both servers (side by side) and mounts the plugins.
    pub(crate) fn start() -> Self {
        let ours = ours_bin();
        let go = go_bin();
        std::thread::scope(|scope| {
            let ours = scope.spawn(move || Side::start("ours", ours));
            let go = Side::start("Go", go);
            Self {
                ours: ours.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
                go,
            }
        })
    }

    /// Ours first, then Go.
    pub(crate) fn sides(&self) -> [&Side; 2] {
        [&self.ours, &self.go]
    }

    /// Another version 2 mount on both servers.
    pub(crate) fn enable_v2(&self, path: &str) {
        for side in self.sides() {
            enable_v2(&side.server, path);
        }
    }

    /// Another version 1 mount on both servers.
    pub(crate) fn enable_v1(&self, path: &str) {
        for side in self.sides() {
            enable_v1(&side.server, path);
        }
    }
}
