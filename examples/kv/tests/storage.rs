//! Storage compatibility with HashiCorp's Go plugin, both ways, on one server (the flavour
//! `TEST_SERVER` names): a version 2 mount run by the Go binary is given a rich state, then the
//! same catalog name is registered again with our binary and the plugin reloaded, so the same
//! mount (the same storage, the same `backend_aware_uuid`) runs ours. Every read the Go plugin
//! answered must be answered the same by ours, byte for byte but for the request id. Then ours
//! writes more, the name goes back to the Go binary, and the Go plugin must read ours alike.
//!
//! "Every read" is found by walking the mount, not by a list kept beside the writes: `config`,
//! the list of every folder from the root, and for every key its metadata, its data and subkeys
//! latest and at every version from 0 to one past the current.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{PLUGIN, enc, go_bin, install, ours_bin, without_request_id};
use plugin_test_support::common::{DevServer, lossy, wait_until};
use serde_json::{Value, json};

/// The version 2 mount the binaries take turns at.
const MOUNT: &str = "store";
/// How long a reloaded mount may take to answer again.
const RELOAD_DEADLINE: Duration = Duration::from_secs(60);

/// One request with the root token: status and the body's text.
fn send(
    server: &DevServer,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut headers = vec![("X-Vault-Token", server.token())];
    if let Some(kind) = content_type {
        headers.push(("Content-Type", kind));
    }
    let (status, _, text) = server.http_raw(method, path, &headers, body.as_bytes());
    (status, lossy(&text))
}

/// A write that must succeed (200 or 204); its answer as JSON.
fn write(server: &DevServer, method: &str, path: &str, body: Value) -> Value {
    let content_type = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let (status, text) = send(server, method, path, Some(content_type), &body.to_string());
    assert!(
        status == 200 || status == 204,
        "{method} {path} {body}: {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// `data/<key>` written with `data`, and `options` when given.
fn put(server: &DevServer, key: &str, data: Value, options: Option<Value>) -> Value {
    let mut body = json!({ "data": data });
    if let Some(options) = options {
        body["options"] = options;
    }
    write(server, "PUT", &format!("{MOUNT}/data/{}", enc(key)), body)
}

/// Every read of the mount, by request, with its status and normalised text.
fn capture(server: &DevServer) -> BTreeMap<String, String> {
    let mut reads = BTreeMap::new();
    let mut read = |path: String| -> (u16, Value) {
        let (status, text) = send(server, "GET", &path, None, "");
        let answer = serde_json::from_str(&text).unwrap_or(Value::Null);
        reads.insert(path, format!("{status}\n{}", without_request_id(&text)));
        (status, answer)
    };
    read(format!("{MOUNT}/config"));
    let mut folders = vec![String::new()];
    let mut keys = Vec::new();
    while let Some(folder) = folders.pop() {
        let (status, answer) = read(format!("{MOUNT}/metadata/{}?list=true", enc(&folder)));
        if status != 200 {
            continue;
        }
        for name in answer["data"]["keys"].as_array().unwrap() {
            let full = format!("{folder}{}", name.as_str().unwrap());
            if full.ends_with('/') {
                folders.push(full);
            } else {
                keys.push(full);
            }
        }
    }
    for key in keys {
        let key = enc(&key);
        let (status, metadata) = read(format!("{MOUNT}/metadata/{key}"));
        assert_eq!(status, 200, "metadata of a listed key {key}: {metadata}");
        read(format!("{MOUNT}/data/{key}"));
        read(format!("{MOUNT}/subkeys/{key}"));
        read(format!("{MOUNT}/subkeys/{key}?depth=1"));
        let current = metadata["data"]["current_version"].as_u64().unwrap();
        for version in 0..=current + 1 {
            read(format!("{MOUNT}/data/{key}?version={version}"));
            read(format!("{MOUNT}/subkeys/{key}?version={version}"));
        }
    }
    reads
}

/// Panics listing every read whose answer differs between `before` (the binary that wrote)
/// and `after` (the binary that reads).
fn assert_same(what: &str, before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) {
    let mut differences = Vec::new();
    for path in before.keys().chain(after.keys()) {
        let (b, a) = (before.get(path), after.get(path));
        if b != a && !differences.iter().any(|(p, _, _)| p == path) {
            differences.push((path.clone(), b.cloned(), a.cloned()));
        }
    }
    if !differences.is_empty() {
        let report: Vec<String> = differences
            .iter()
            .map(|(path, b, a)| format!("GET {path}\n  before: {b:?}\n  after:  {a:?}"))
            .collect();
        panic!(
            "{what}: {} of {} reads differ:\n{}",
            differences.len(),
            before.len(),
            report.join("\n")
        );
    }
}

/// `<action>/<key>` (`delete`, `undelete` or `destroy`) of the given versions.
fn versions(server: &DevServer, action: &str, key: &str, versions: &[u64]) {
    write(
        server,
        "PUT",
        &format!("{MOUNT}/{action}/{key}"),
        json!({ "versions": versions }),
    );
}

/// The mount's entry in `sys/mounts/<MOUNT>`: what runs it.
fn running_sha256(server: &DevServer) -> Value {
    let (status, answer) = server.http("GET", &format!("sys/mounts/{MOUNT}"), None);
    assert_eq!(status, 200, "sys/mounts/{MOUNT}: {answer}");
    answer["data"]["running_sha256"].clone()
}

/// Registers `binary` under [`PLUGIN`] again (a new SHA-256), reloads the plugin and waits for
/// the mount to answer; asserts that it runs the new binary.
fn switch_to(server: &DevServer, binary: &Path) {
    let sha = install(server, binary);
    server.cli_ok(&["plugin", "reload", &format!("-plugin={PLUGIN}")]);
    wait_until(
        &format!("{MOUNT}/config to answer after the reload"),
        RELOAD_DEADLINE,
        || server.http("GET", &format!("{MOUNT}/config"), None).0 == 200,
    );
    assert_eq!(
        running_sha256(server),
        json!(sha),
        "sys/mounts/{MOUNT} after the reload to {}",
        binary.display()
    );
}

/// What the Go plugin writes first: every kind of record the engine keeps.
fn write_rich_state(server: &DevServer) {
    write(
        server,
        "PUT",
        &format!("{MOUNT}/config"),
        json!({"max_versions": 4, "delete_version_after": "1000h", "cas_required": false}),
    );
    // Versions, one soft-deleted, one destroyed; custom metadata.
    for n in 1..=3 {
        put(
            server,
            "app/db",
            json!({"user": "admin", "password": format!("pw{n}"), "n": n}),
            None,
        );
    }
    versions(server, "delete", "app/db", &[2]);
    versions(server, "destroy", "app/db", &[1]);
    write(
        server,
        "POST",
        &format!("{MOUNT}/metadata/app/db"),
        json!({"custom_metadata": {"owner": "team a", "tier": "1"}, "max_versions": 6}),
    );
    // Pruned by the mount's window of 4.
    for n in 1..=7 {
        put(server, "pruned", json!({ "n": n }), None);
    }
    // Nested folders, odd names, nested values and big numbers.
    put(
        server,
        "a/b/c",
        json!({"deep": {"list": [1, 2.5, "x", null, true], "big": 12_345_678_901_234_567_890_u64}}),
        None,
    );
    put(server, "a/b/d", json!({"x": "y"}), None);
    put(server, "a/top", json!({"t": ""}), None);
    put(server, "with space", json!({"k": "v w"}), None);
    put(
        server,
        "ünïcödé/ключ ✓",
        json!({"ключ": "значение", "emoji": "🔑"}),
        None,
    );
    // A key that requires check-and-set, written with it.
    write(
        server,
        "POST",
        &format!("{MOUNT}/metadata/guarded"),
        json!({"cas_required": true, "delete_version_after": "2h"}),
    );
    put(server, "guarded", json!({"v": 1}), Some(json!({"cas": 0})));
    put(server, "guarded", json!({"v": 2}), Some(json!({"cas": 1})));
    // A patch (json-patch writes its own bytes), and the latest version soft-deleted.
    write(
        server,
        "PATCH",
        &format!("{MOUNT}/data/a/b/d"),
        json!({"data": {"x": null, "added": {"z": 1}}}),
    );
    write(server, "DELETE", &format!("{MOUNT}/data/a/top"), json!({}));
    // Metadata only: no version at all.
    write(
        server,
        "POST",
        &format!("{MOUNT}/metadata/meta-only"),
        json!({"max_versions": 2, "custom_metadata": {"a": "b"}}),
    );
    // Null data.
    put(server, "nothing", Value::Null, None);
}

/// What our plugin writes on the state the Go plugin left.
fn write_more(server: &DevServer) {
    write(
        server,
        "PUT",
        &format!("{MOUNT}/config"),
        json!({"max_versions": 3, "delete_version_after": "500h"}),
    );
    put(server, "app/db", json!({"password": "pw4"}), None);
    versions(server, "undelete", "app/db", &[2]);
    versions(server, "destroy", "app/db", &[3]);
    write(
        server,
        "PATCH",
        &format!("{MOUNT}/metadata/app/db"),
        json!({"custom_metadata": {"tier": null, "new": "x"}}),
    );
    put(server, "pruned", json!({"n": 8}), None);
    write(
        server,
        "PATCH",
        &format!("{MOUNT}/data/a/b/c"),
        json!({"data": {"deep": {"list": null, "more": "yes"}}}),
    );
    put(server, "guarded", json!({"v": 3}), Some(json!({"cas": 2})));
    write(
        server,
        "POST",
        &format!("{MOUNT}/metadata/guarded"),
        json!({"cas_required": false, "max_versions": 1}),
    );
    put(server, "a/top", json!({"t": "back"}), None);
    put(
        server,
        "meta-only",
        json!({"now": "data"}),
        Some(json!({"cas": 0})),
    );
    write(
        server,
        "DELETE",
        &format!("{MOUNT}/metadata/{}", enc("with space")),
        json!({}),
    );
    put(server, "new/ours", json!({"by": "ours"}), None);
    versions(server, "delete", "pruned", &[6, 8]);
}

#[test]
fn each_plugin_reads_what_the_other_wrote() {
    let started = Instant::now();
    let server = DevServer::start();
    let go_sha = install(&server, &go_bin());
    common::enable_v2(&server, MOUNT);
    assert_eq!(running_sha256(&server), json!(go_sha));

    write_rich_state(&server);
    let go_wrote = capture(&server);
    assert!(
        go_wrote.len() > 60,
        "the walk found too little: {go_wrote:#?}"
    );

    switch_to(&server, &ours_bin());
    let ours_read = capture(&server);
    assert_same("ours reading what Go wrote", &go_wrote, &ours_read);

    write_more(&server);
    let ours_wrote = capture(&server);
    assert_ne!(ours_wrote, ours_read, "our writes changed nothing");

    switch_to(&server, &go_bin());
    let go_read = capture(&server);
    assert_same("Go reading what ours wrote", &ours_wrote, &go_read);
    eprintln!(
        "storage: {} and {} reads compared in {:?}",
        go_wrote.len(),
        ours_wrote.len(),
        started.elapsed()
    );
}
