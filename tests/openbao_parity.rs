//! Parity with the Go mock and the Go plugin framework, observed through a real OpenBao 2.7.2
//! server: every path of the mock, the framework's 404/405/warnings/validation/help, the
//! error-type mapping, and the host-side scenarios of the server's own plugin tests (list
//! ordering, raw responses, version echo, auto-reload, reload by plugin and by mount, catalog
//! env, version-based multiplexing, seal/unseal, the ACL create/update split).

use plugin_test_support::common;
use plugin_test_support::table::{Table, expect};
use std::time::Duration;

use common::{DevServer, pid_alive};
use serde_json::{Value, json};

const PLUGIN: &str = "my-mock-plugin";

/// A dev server with the plugin registered (typed) and mounted at `mock/`.
fn server_with_mount() -> DevServer {
    let server = DevServer::start();
    server.register_and_enable(PLUGIN, &["mock"]);
    server
}

fn internal(server: &DevServer, mount: &str) -> Value {
    let (status, body) = server.http("GET", &format!("{mount}/internal"), None);
    assert_eq!(status, 200, "{body}");
    body["data"]["value"].clone()
}

/// The server wraps plugin errors as a multierror; the message is what counts.
fn error_text(body: &Value) -> String {
    body["errors"][0].as_str().unwrap_or_default().to_owned()
}

#[test]
fn every_path_of_the_mock_answers_as_in_go() {
    let server = server_with_mount();

    // internal: "bar" in a fresh backend, updated in memory.
    assert_eq!(internal(&server, "mock"), "bar");
    let (status, _) = server.http("PUT", "mock/internal", Some(&json!({"value": "baz"})));
    assert_eq!(status, 204);
    assert_eq!(internal(&server, "mock"), "baz");

    // special: readable without a token.
    let (status, _, body) = server.http_raw("GET", "mock/special", &[], b"");
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body["data"], json!({"data": "foo"}));
    // ...while kv is not.
    let (status, _, _) = server.http_raw("GET", "mock/kv/foo", &[], b"");
    assert_eq!(status, 403);

    // raw: a raw HTTP response.
    let (status, headers, body) =
        server.http_raw("GET", "mock/raw", &[("X-Vault-Token", "root")], b"");
    assert_eq!(status, 200);
    assert_eq!(body, b"Response");
    assert!(
        headers
            .iter()
            .any(|(name, value)| name.eq_ignore_ascii_case("content-type") && value == "text/plain"),
        "{headers:?}"
    );

    // kv keys are generic names: no slashes, no leading or trailing dot or dash.
    for key in ["a%2Fb", "..x", "-a", "a."] {
        let (status, body) = server.http("GET", &format!("mock/kv/{key}"), None);
        assert_eq!(status, 404, "{key}: {body}");
        assert!(error_text(&body).contains("unsupported path"), "{body}");
    }
    server.cli_ok(&["write", "mock/kv/a-b.c_d", "value=ok"]);
    assert_eq!(
        server.http("GET", "mock/kv/a-b.c_d", None).1["data"]["value"],
        "ok"
    );

    // Lists are sorted, as storage returns them.
    server.cli_ok(&["write", "mock/kv/zoo", "value=1"]);
    server.cli_ok(&["write", "mock/kv/foo", "value=2"]);
    let (_, body) = server.http("LIST", "mock/kv", None);
    assert_eq!(body["data"]["keys"], json!(["a-b.c_d", "foo", "zoo"]));
}

#[test]
fn framework_behaviours_match_the_go_sdk() {
    let server = server_with_mount();

    let (status, body) = server.http("GET", "mock/nope", None);
    assert_eq!(status, 404);
    assert!(error_text(&body).contains("unsupported path"), "{body}");

    let (status, body) = server.http("DELETE", "mock/special", None);
    assert_eq!(status, 405);
    assert_eq!(error_text(&body), "unsupported operation");

    // Unknown parameters are ignored with a sorted warning; the value defaults to "".
    let (status, body) = server.http(
        "PUT",
        "mock/kv/foo",
        Some(&json!({"value": "v", "hello": "world", "b": 1})),
    );
    assert_eq!(status, 200);
    assert_eq!(
        body["warnings"],
        json!(["Endpoint ignored these unrecognized parameters: [b hello]"])
    );
    let out = server.cli(&["write", "mock/kv/empty", "hello=world"]);
    assert!(out.status.success());
    // The CLI prints warnings on stderr.
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(
        warned.contains("Endpoint ignored these unrecognized parameters: [hello]"),
        "{warned}"
    );
    assert_eq!(
        server.http("GET", "mock/kv/empty", None).1["data"]["value"],
        ""
    );

    // A capture sent in the body too: the path wins, with a warning.
    let (status, body) = server.http(
        "PUT",
        "mock/kv/foo",
        Some(&json!({"value": "v", "key": "other"})),
    );
    assert_eq!(status, 200);
    assert_eq!(
        body["warnings"],
        json!([
            "Endpoint replaced the value of these parameters with the values captured from \
             the endpoint's path: [key]"
        ])
    );
    assert_eq!(server.http("GET", "mock/kv/other", None).0, 404);

    // A field of the wrong type: 400, on read as a validation error response, on write
    // through the existence check.
    let (status, body) = server.http("GET", "mock/kv/foo?version=abc", None);
    assert_eq!(status, 400);
    assert!(
        error_text(&body)
            .starts_with("Field validation failed: error converting input for field \"version\""),
        "{body}"
    );
    let (status, body) = server.http(
        "PUT",
        "mock/kv/foo",
        Some(&json!({"value": "v", "version": "abc"})),
    );
    assert_eq!(status, 400);
    assert!(error_text(&body).contains("invalid syntax"), "{body}");

    // Help on a path and on the root.
    let help = server.cli_ok(&["path-help", "mock/kv/foo"]);
    assert!(
        help.contains("Matching Route: ^kv/(?P<key>\\w(([\\w-.]+)?\\w)?)$"),
        "{help}"
    );
    assert!(
        help.contains("## PARAMETERS") && help.contains("version (int)"),
        "{help}"
    );
    let help = server.cli_ok(&["path-help", "mock/"]);
    assert!(
        help.contains("## PATHS") && help.contains("^errors/rpc$"),
        "{help}"
    );

    // The OpenAPI document still builds with the mount enabled, and documents its paths.
    let (status, spec) = server.http("GET", "sys/internal/specs/openapi", None);
    assert_eq!(status, 200, "{spec}");
    let paths = spec["paths"].as_object().expect("paths");
    assert!(
        paths.contains_key("/mock/kv/{key}"),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    assert_eq!(paths["/mock/special"]["x-vault-unauthenticated"], true);
}

#[test]
fn errors_type_maps_every_wire_error_to_its_http_status() {
    let server = server_with_mount();
    let cases: [(i64, u16, &str); 11] = [
        (0, 500, "test"),
        (1, 500, "test"),
        (2, 500, "test"),
        (3, 403, "test"),
        (4, 400, "test"),
        (5, 405, "unsupported operation"),
        (6, 404, "unsupported path"),
        (7, 400, "invalid request"),
        (8, 403, "permission denied"),
        (9, 500, "request needs further approval"),
        (10, 204, ""),
    ];
    let mut table = Table::new("errors/type");
    for (err_type, expected_status, message) in cases {
        let (status, body) = server.http(
            "PUT",
            "mock/errors/type",
            Some(&json!({"err_type": err_type})),
        );
        table.case(
            format!("err_type {err_type}"),
            expect(
                status == expected_status
                    && (message.is_empty() || error_text(&body).contains(message)),
                || format!("got {status} {body}, expected {expected_status} with {message:?}"),
            ),
        );
    }
    table.finish();
    let (status, _) = server.http("GET", "mock/errors/type", None);
    assert_eq!(status, 405);
}

#[test]
fn a_shut_down_connection_error_makes_the_server_reload_the_plugin() {
    let server = server_with_mount();
    server.cli_ok(&["write", "mock/kv/kept", "value=safe"]);
    server.http("PUT", "mock/internal", Some(&json!({"value": "baz"})));
    let before = server.plugin_pids(PLUGIN);
    assert_eq!(before.len(), 1);

    for path in ["mock/errors/rpc", "mock/errors/kill"] {
        let (status, body) = server.http("GET", path, None);
        assert_eq!(status, 500);
        assert!(
            error_text(&body).contains("connection is shut down"),
            "{body}"
        );
    }
    // The server reloaded the plugin: the in-memory value is fresh, the stored one is intact.
    assert_eq!(internal(&server, "mock"), "bar");
    assert_eq!(
        server.http("GET", "mock/kv/kept", None).1["data"]["value"],
        "safe"
    );
    common::wait_until(
        "the old plugin process to exit",
        Duration::from_secs(5),
        || !pid_alive(before[0]),
    );
}

#[test]
fn reload_by_plugin_and_by_mount_restarts_every_mount() {
    let server = server_with_mount();
    server.cli_ok(&["secrets", "enable", "-path=mock2", PLUGIN]);
    server.cli_ok(&["write", "mock/kv/kept", "value=safe"]);

    for mount in ["mock", "mock2"] {
        server.http(
            "PUT",
            &format!("{mount}/internal"),
            Some(&json!({"value": "baz"})),
        );
    }
    let out = server.cli_ok(&["plugin", "reload", &format!("-plugin={PLUGIN}")]);
    assert!(out.contains("Success! Reloaded plugin"), "{out}");
    for mount in ["mock", "mock2"] {
        assert_eq!(
            internal(&server, mount),
            "bar",
            "{mount} after reload by plugin"
        );
    }

    server.http("PUT", "mock2/internal", Some(&json!({"value": "baz"})));
    let out = server.cli_ok(&["plugin", "reload", "-mounts=mock2/"]);
    assert!(out.contains("Success! Reloaded mounts"), "{out}");
    assert_eq!(internal(&server, "mock2"), "bar");
    assert_eq!(
        server.http("GET", "mock/kv/kept", None).1["data"]["value"],
        "safe"
    );

    // The API answers with a reload id.
    let (status, body) = server.http(
        "PUT",
        "sys/plugins/reload/backend",
        Some(&json!({"plugin": PLUGIN})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body["data"]["reload_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{body}"
    );
}

#[test]
fn catalog_env_reaches_the_plugin_and_versions_split_processes() {
    let server = DevServer::start();
    let sha = server.install_plugin(PLUGIN);
    for version in ["v1.2.3", "v1.2.4"] {
        let (status, body) = server.http(
            "PUT",
            &format!("sys/plugins/catalog/secret/{PLUGIN}"),
            Some(&json!({
                "sha256": sha,
                "command": PLUGIN,
                "version": version,
                "env": [format!("TESTING_MOCK_VAULT_PLUGIN_VERSION={version}"), "FOO=BAR"],
            })),
        );
        assert_eq!(status, 204, "{body}");
    }
    server.cli_ok(&[
        "secrets",
        "enable",
        "-path=a",
        "-plugin-version=v1.2.3",
        PLUGIN,
    ]);
    server.cli_ok(&[
        "secrets",
        "enable",
        "-path=b",
        "-plugin-version=v1.2.4",
        PLUGIN,
    ]);
    server.cli_ok(&[
        "secrets",
        "enable",
        "-path=a2",
        "-plugin-version=v1.2.3",
        PLUGIN,
    ]);

    // The catalog's env is in the plugin's environment.
    assert_eq!(
        server.http("GET", "a/env/FOO", None).1["data"]["key"],
        "BAR"
    );

    let (_, mounts) = server.http("GET", "sys/mounts", None);
    assert_eq!(mounts["data"]["a/"]["running_plugin_version"], "v1.2.3");
    assert_eq!(mounts["data"]["b/"]["running_plugin_version"], "v1.2.4");
    // Different versions are never multiplexed; the same version is.
    assert_eq!(
        server.plugin_pids(PLUGIN).len(),
        2,
        "{:?}",
        server.plugin_pids(PLUGIN)
    );
}

#[test]
fn seal_and_unseal_bring_the_mount_back_with_its_data() {
    let server = server_with_mount();
    server.cli_ok(&["write", "mock/kv/kept", "value=safe"]);
    let log = server.log_text();
    let key = log
        .lines()
        .find_map(|line| line.trim().strip_prefix("Unseal Key: "))
        .expect("the dev server prints its unseal key")
        .trim()
        .to_owned();

    server.cli_ok(&["operator", "seal"]);
    common::wait_until(
        "the plugin to stop after seal",
        Duration::from_secs(5),
        || server.plugin_pids(PLUGIN).is_empty(),
    );
    server.cli_ok(&["operator", "unseal", &key]);
    assert_eq!(
        server.http("GET", "mock/kv/kept", None).1["data"]["value"],
        "safe"
    );
    assert_eq!(internal(&server, "mock"), "bar");
}

#[test]
fn a_create_only_token_can_write_new_keys_but_not_overwrite_them() {
    let server = server_with_mount();
    server.cli_ok(&["write", "mock/kv/existing", "value=old"]);
    let (status, body) = server.http(
        "PUT",
        "sys/policies/acl/create-only",
        Some(&json!({"policy": "path \"mock/kv/*\" { capabilities = [\"create\"] }"})),
    );
    assert_eq!(status, 204, "{body}");
    let out = server.cli_ok(&["token", "create", "-policy=create-only", "-field=token"]);
    let token = out.trim();

    let put = |path: &str| {
        server.http_raw(
            "PUT",
            path,
            &[
                ("X-Vault-Token", token),
                ("Content-Type", "application/json"),
            ],
            br#"{"value":"new"}"#,
        )
    };
    // The existence check says the key is missing, so the write is a create: allowed.
    assert_eq!(put("mock/kv/fresh").0, 200);
    // The key exists now, so the write is an update: denied.
    assert_eq!(put("mock/kv/fresh").0, 403);
    assert_eq!(put("mock/kv/existing").0, 403);
    assert_eq!(
        server.http("GET", "mock/kv/existing", None).1["data"]["value"],
        "old"
    );
}

#[test]
fn a_restarted_server_with_persistent_storage_brings_mounts_and_data_back() {
    let mut server = DevServer::start_persistent();
    server.register_and_enable(PLUGIN, &["mock"]);
    for i in 0..20 {
        server.cli_ok(&["write", &format!("mock/kv/key{i}"), &format!("value=v{i}")]);
    }
    let old = server.plugin_pids(PLUGIN);

    server.restart();
    assert!(
        old.iter().all(|&pid| !pid_alive(pid)),
        "no plugin outlives the server"
    );
    for i in 0..20 {
        let (status, body) = server.http("GET", &format!("mock/kv/key{i}"), None);
        assert_eq!(
            (status, body["data"]["value"].clone()),
            (200, json!(format!("v{i}")))
        );
    }
    let (_, body) = server.http("LIST", "mock/kv", None);
    assert_eq!(body["data"]["keys"].as_array().map(Vec::len), Some(20));
}
