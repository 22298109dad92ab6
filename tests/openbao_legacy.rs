//! The legacy protocol against a real OpenBao 2.7.2 dev server (which sets `api_addr`): the
//! plugin, registered with `--no-protocol-5`, declines the server's first attempt (protocol 5,
//! AutoMTLS); the server falls back to protocol 4, first in metadata mode (plain gRPC, no
//! storage), then, on the first request, with TLS bootstrapped through an unwrap token.

use plugin_test_support::common;
use std::time::Duration;

use common::DevServer;

const PLUGIN: &str = "my-mock-plugin";

/// Where `needle` first appears in `log`, after `from`.
fn position_after(log: &str, from: usize, needle: &str) -> usize {
    log[from..]
        .find(needle)
        .map(|at| from + at)
        .unwrap_or_else(|| panic!("the server log lacks {needle:?} after byte {from}"))
}

/// A dev server with the plugin registered as `legacy`, declining protocol 5 (Go's
/// single-dash flag form, as catalogs written for the Go mock pass flags).
fn legacy_server() -> DevServer {
    let server = DevServer::start();
    let sha = server.install_plugin(PLUGIN);
    server.cli_ok(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        &format!("-command={PLUGIN}"),
        "-args=-no-protocol-5",
        "-args=--log-level=debug",
        "secret",
        "legacy",
    ]);
    server
}

#[test]
fn kv_works_through_metadata_mode_and_the_unwrap_token_bootstrap() {
    let server = legacy_server();
    server.cli_ok(&["secrets", "enable", "-path=old", "legacy"]);

    let out = server.cli_ok(&["write", "old/kv/foo", "value=bar"]);
    assert!(out.contains("value    bar"), "{out}");
    let (status, body) = server.http("GET", "old/kv/foo?version=3", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        serde_json::json!({"value": "bar", "version": 3})
    );
    server.cli_ok(&["write", "old/kv/zoo", "value=baz"]);
    let (_, body) = server.http("LIST", "old/kv", None);
    assert_eq!(body["data"]["keys"], serde_json::json!(["foo", "zoo"]));
    assert_eq!(server.http("DELETE", "old/kv/foo", None).0, 204);
    assert_eq!(server.http("GET", "old/kv/foo", None).0, 404);

    // The server tried protocol 5 first, then metadata mode, then the unwrap-token launch.
    let log = server.log_text();
    // (The plugin's own lines are relayed from its stderr asynchronously, so only lines of
    // different launches are ordered.)
    let declined = position_after(&log, 0, "declining plugin protocol 5 as registered");
    let metadata = position_after(&log, declined, "using plugin: metadata=true version=4");
    let served = position_after(&log, declined, "security=\"metadata-mode plaintext\"");
    let unwrapped = position_after(&log, metadata.max(served), "security=\"unwrapped tls\"");
    // The server prints the fields in any order: look at the whole line.
    let start = log[..unwrapped].rfind('\n').map_or(0, |at| at + 1);
    let end = log[unwrapped..]
        .find('\n')
        .map_or(log.len(), |at| unwrapped + at);
    let line = &log[start..end];
    assert!(
        line.contains("plugin started") && line.contains("protocol=4"),
        "{line}"
    );
    assert!(!log.contains("plugin server can not perform action while in metadata mode"));
}

#[test]
fn legacy_mounts_are_not_multiplexed() {
    let server = legacy_server();
    server.cli_ok(&["secrets", "enable", "-path=one", "legacy"]);
    server.cli_ok(&["secrets", "enable", "-path=two", "legacy"]);
    server.cli_ok(&["write", "one/kv/a", "value=1"]);
    server.cli_ok(&["write", "two/kv/b", "value=2"]);
    assert_eq!(server.http("GET", "one/kv/b", None).0, 404);
    assert_eq!(server.http("GET", "two/kv/b", None).1["data"]["value"], "2");

    // Protocol 4 has no multiplexing: one process per mount.
    let plugins = server.plugin_pids(PLUGIN);
    assert_eq!(plugins.len(), 2, "{plugins:?}");

    server.cli_ok(&["secrets", "disable", "one"]);
    server.cli_ok(&["secrets", "disable", "two"]);
    common::wait_until(
        "the legacy plugin processes to exit",
        Duration::from_secs(5),
        || server.plugin_pids(PLUGIN).is_empty(),
    );
}
