//! The tutorial *Building Plugin Backends*, step by step, against a real OpenBao 2.7.2 dev
//! server, with `bao` in place of `vault`; plus registration with versions, two mounts in one
//! process, and plugin logs in the server's log.

use plugin_test_support::common;
use std::time::Duration;

use common::{DevServer, pid_alive};

const PLUGIN: &str = "my-mock-plugin";
/// What the Go mock reports, and so ours: a catalog entry written for the Go mock runs ours.
const GO_MOCK_VERSION: &str = "v0.0.0+mock";

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn tutorial_commands_work_as_written() {
    let server = DevServer::start();
    let sha = server.install_plugin(PLUGIN);

    // The tutorial registers without a type (so the server probes database, then backend).
    let out = server.cli_ok(&[
        "write",
        &format!("sys/plugins/catalog/{PLUGIN}"),
        &format!("sha_256={sha}"),
        &format!("command={PLUGIN}"),
    ]);
    assert!(out.contains(&format!(
        "Success! Data written to: sys/plugins/catalog/{PLUGIN}"
    )));

    let out = server.cli_ok(&[
        "secrets",
        "enable",
        "-path=my-secrets-plugin",
        &format!("-plugin-name={PLUGIN}"),
        "plugin",
    ]);
    assert!(
        out.contains("Success! Enabled the my-mock-plugin secrets engine at: my-secrets-plugin/"),
        "{out}"
    );

    // A secrets engine cannot be mounted as an auth method.
    let out = server.cli(&[
        "auth",
        "enable",
        &format!("-plugin-name={PLUGIN}"),
        "plugin",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("plugin not found in the catalog: my-mock-plugin"),
        "{}",
        stderr(&out)
    );

    common::tutorial_kv_table(&server, "my-secrets-plugin");
    let out = server.cli(&["read", "my-secrets-plugin/kv/foo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No value found at my-secrets-plugin/kv/foo")
            || stderr(&out).contains("No value found at my-secrets-plugin/kv/foo")
    );

    let out = server.cli_ok(&["secrets", "disable", "my-secrets-plugin"]);
    assert!(out.contains("Success! Disabled the secrets engine"));
    server.cli(&["read", "my-secrets-plugin/kv/zoo"]);
    common::wait_until(
        "the plugin process to exit after disable",
        Duration::from_secs(5),
        || server.plugin_pids(PLUGIN).is_empty(),
    );
}

#[test]
fn kv_over_the_http_api_matches_the_go_mock() {
    let server = DevServer::start();
    server.register_and_enable(PLUGIN, &["mock"]);

    let (status, body) = server.http(
        "PUT",
        "mock/kv/foo",
        Some(&serde_json::json!({"value": "baz"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], serde_json::json!({"value": "baz"}));

    // `version` is echoed, not stored (OpenBao's internal/http/plugin_test.go).
    let (status, body) = server.http("GET", "mock/kv/foo?version=12", None);
    assert_eq!(status, 200);
    assert_eq!(
        body["data"],
        serde_json::json!({"value": "baz", "version": 12})
    );

    let (status, body) = server.http("GET", "mock/kv/missing", None);
    assert_eq!((status, body), (404, serde_json::json!({"errors": []})));

    // An empty list is a 404, as with the Go framework.
    let (status, _) = server.http("LIST", "mock/kv/", None);
    assert_eq!(status, 200);
    let (status, _) = server.http("DELETE", "mock/kv/foo", None);
    assert_eq!(status, 204);
    let (status, _) = server.http("LIST", "mock/kv/", None);
    assert_eq!(status, 404);

    // A 5 MiB value crosses the plugin boundary both ways (tonic's 4 MiB default is raised).
    let big = "x".repeat(5 * 1024 * 1024);
    let (status, body) = server.http(
        "PUT",
        "mock/kv/big",
        Some(&serde_json::json!({"value": big})),
    );
    assert_eq!(
        status,
        200,
        "{}",
        body.to_string().chars().take(300).collect::<String>()
    );
    let (status, body) = server.http("GET", "mock/kv/big", None);
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["value"].as_str().map(str::len),
        Some(big.len())
    );
}

#[test]
fn typed_registration_reports_and_checks_the_go_mocks_version() {
    let server = DevServer::start();
    let sha = server.install_plugin(PLUGIN);
    let sha_arg = format!("-sha256={sha}");

    // Without -version the reported version is recorded (and lookups need it).
    server.cli_ok(&["plugin", "register", &sha_arg, "secret", PLUGIN]);
    let info = server.cli_ok(&[
        "plugin",
        "info",
        &format!("-version={GO_MOCK_VERSION}"),
        "-format=json",
        "secret",
        PLUGIN,
    ]);
    let info: serde_json::Value = serde_json::from_str(&info).expect("plugin info JSON");
    // `plugin info` prints the catalog entry itself.
    assert_eq!(info["version"], GO_MOCK_VERSION, "{info}");
    assert_eq!(info["sha256"], sha, "{info}");

    // With the right -version it registers; with another one the server refuses.
    server.cli_ok(&[
        "plugin",
        "register",
        &sha_arg,
        &format!("-version={GO_MOCK_VERSION}"),
        "secret",
        PLUGIN,
    ]);
    let out = server.cli(&[
        "plugin",
        "register",
        &sha_arg,
        "-version=v9.9.9",
        "secret",
        PLUGIN,
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("did not match requested version") && err.contains(GO_MOCK_VERSION),
        "{err}"
    );

    // The registered version mounts and reports its running version; a mount pinned to the Go
    // mock's version serves the tutorial's operations.
    server.cli_ok(&["secrets", "enable", "-path=versioned", PLUGIN]);
    server.cli_ok(&[
        "secrets",
        "enable",
        "-path=pinned",
        &format!("-plugin-version={GO_MOCK_VERSION}"),
        PLUGIN,
    ]);
    let (status, mounts) = server.http("GET", "sys/mounts", None);
    assert_eq!(status, 200, "{mounts}");
    for mount in ["versioned/", "pinned/"] {
        assert_eq!(
            mounts["data"][mount]["running_plugin_version"], GO_MOCK_VERSION,
            "{mounts}"
        );
    }
    assert_eq!(mounts["data"]["pinned/"]["plugin_version"], GO_MOCK_VERSION);
    common::tutorial_kv_table(&server, "pinned");
    server.cli_ok(&["write", "versioned/kv/a", "value=1"]);
}

#[test]
fn two_mounts_share_one_process_which_exits_when_both_are_gone() {
    let server = DevServer::start();
    server.register_and_enable(PLUGIN, &["one", "two"]);

    server.cli_ok(&["write", "one/kv/only-in-one", "value=1"]);
    server.cli_ok(&["write", "two/kv/only-in-two", "value=2"]);
    assert_eq!(server.http("GET", "one/kv/only-in-two", None).0, 404);
    assert_eq!(server.http("GET", "two/kv/only-in-one", None).0, 404);
    // Each mount has its own in-memory state too.
    server.cli_ok(&["write", "one/internal", "value=changed"]);
    assert_eq!(
        server.http("GET", "two/internal", None).1["data"]["value"],
        "bar"
    );

    let pids = server.plugin_pids(PLUGIN);
    assert_eq!(pids.len(), 1, "one process serves both mounts: {pids:?}");
    let pid = pids[0];

    server.cli_ok(&["secrets", "disable", "one"]);
    assert!(pid_alive(pid), "the process still serves mount two");
    assert_eq!(
        server.http("GET", "two/kv/only-in-two", None).1["data"]["value"],
        "2"
    );

    server.cli_ok(&["secrets", "disable", "two"]);
    common::wait_until(
        "the shared plugin process to exit",
        Duration::from_secs(5),
        || !pid_alive(pid),
    );
    assert!(server.plugin_pids(PLUGIN).is_empty());
}

#[test]
fn plugin_log_lines_reach_the_server_log_at_their_level() {
    let server = DevServer::start();
    server.register_and_enable(PLUGIN, &["logged"]);
    server.cli_ok(&["write", "logged/kv/foo", "value=secret-value"]);

    server.wait_for_log("storing value", Duration::from_secs(5));
    let log = server.log_text();
    let line = log
        .lines()
        .find(|line| line.contains("storing value"))
        .expect("the plugin's log line");
    assert!(line.contains("[INFO]"), "{line}");
    assert!(line.contains("key=kv/foo"), "{line}");
    // The server parsed our timestamp rather than appending the zero time.
    assert!(!line.contains("0001-01-01"), "{line}");
    // A secret value never reaches the log.
    assert!(!log.contains("secret-value"));
}
