//! The upgrade of a version 1 mount to version 2 with data written before, for our plugin and
//! for HashiCorp's Go plugin (vault-plugin-secrets-kv v0.15.0), each on its own persistent server
//! of the flavour `TEST_SERVER` names: keys written through version 1 (nested ones, one with a
//! `ttl`, a JSON number beyond 2^53, and 300 more so that the upgrade takes a while),
//! `kv enable-versioning`, the answers while the upgrade runs, then every key read as version
//! 1 of itself, its metadata, the lists, the mount's raw storage (`sys/raw`: the version 1
//! keys gone from the root) and, after a restart of the server, the mount still serving and
//! writing. Ours and Go's answers are compared whole, with request ids and times normalised.
//! What both plugins do is written down in `docs/kv.md`, "The upgrade from version 1".
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Answer, Side, enc, go_bin, ours_bin, scrub_times, without_request_id};
use plugin_test_support::common::{DevOptions, DevServer};
use serde_json::{Value, json};

/// The mount that is upgraded.
const MOUNT: &str = "up";
/// The bulk keys that make the upgrade last long enough to be seen.
const BULK: usize = 300;
/// How long an upgrade may take.
const UPGRADE_DEADLINE: Duration = Duration::from_secs(120);
/// The message of a version 2 request while the upgrade runs.
const UPGRADING: &str = "Upgrading from non-versioned to versioned data. This backend will be \
                         unavailable for a brief period and will resume service shortly.";

/// The keys written through version 1, with the body each gets (raw JSON text, so the number
/// beyond 2^53 is sent as written).
const KEYS: &[(&str, &str)] = &[
    ("plain", r#"{"a":"b"}"#),
    ("with-ttl", r#"{"value":"x","ttl":"1h"}"#),
    (
        "number",
        r#"{"n":12345678901234567890,"small":1.50,"list":[1,"two",null]}"#,
    ),
    ("nested/one", r#"{"deep":{"er":{"est":true}}}"#),
    ("nested/deeper/two", r#"{"k":"v"}"#),
    ("with space/ünï", r#"{"k":"v w"}"#),
];

/// An answer as compared: status, type and text, with RFC 3339 times and the request id
/// replaced by placeholders.
fn normalise(answer: &Answer) -> String {
    let text = without_request_id(&scrub_times(&answer.text));
    format!("{} {}\n{text}", answer.status, answer.content_type)
}

/// What the mount's root lists once [`prepare`] wrote [`KEYS`] and [`BULK`] more, before the
/// upgrade (the keys) and after it (their metadata).
fn root_keys() -> Value {
    json!([
        "bulk/",
        "nested/",
        "number",
        "plain",
        "with space/",
        "with-ttl"
    ])
}

/// A key's `oldest_version` and `current_version` from its metadata answer.
fn oldest_and_current(meta: &Value) -> (&Value, &Value) {
    (
        &meta["data"]["oldest_version"],
        &meta["data"]["current_version"],
    )
}

/// One side's run: the server, and what was seen.
struct Upgraded {
    side: Side,
    /// The `kv enable-versioning` output.
    enable_versioning: String,
    /// The distinct answers to `data/plain` while the upgrade ran, in the order first seen.
    during: Vec<String>,
    /// How long from the tune's answer to the first answer that was not "Upgrading".
    took: Duration,
}

/// A persistent server with the raw storage endpoint, `binary` registered, a version 1 mount
/// with [`KEYS`] and [`BULK`] more; the mount's raw storage root before the upgrade.
fn prepare(label: &'static str, binary: PathBuf) -> (Side, Value) {
    let server = DevServer::start_with(DevOptions {
        persistent: true,
        extra_config: "raw_storage_endpoint = true\n".into(),
        ..DevOptions::default()
    });
    let side = Side::installed(label, server, binary);
    common::enable_v1(&side.server, MOUNT);
    for (key, body) in KEYS {
        let answer = side.request(
            "PUT",
            &format!("{MOUNT}/{}", enc(key)),
            Some("application/json"),
            body.as_bytes(),
        );
        assert_eq!(answer.status, 204, "{label}: PUT {key}: {answer:?}");
    }
    let bulk: Vec<(String, Value)> = (0..BULK)
        .map(|n| (format!("{MOUNT}/bulk/{n:04}"), json!({ "n": n })))
        .collect();
    for answer in side.put_many(&bulk, 2) {
        assert_eq!(answer.status, 204, "{label}: a bulk PUT: {answer:?}");
    }
    let before = raw_list(&side, "");
    (side, before)
}

/// `sys/raw` list of the mount's storage view at `folder` (`""` for its root).
fn raw_list(side: &Side, folder: &str) -> Value {
    let answer = side.json("GET", &format!("sys/mounts/{MOUNT}"), None);
    assert_eq!(answer.status, 200, "{}: {answer:?}", side.label);
    let uuid = answer.json()["data"]["uuid"].as_str().unwrap().to_owned();
    let answer = side.json(
        "GET",
        &format!("sys/raw/logical/{uuid}/{folder}?list=true"),
        None,
    );
    assert_eq!(answer.status, 200, "{}: raw list: {answer:?}", side.label);
    answer.json()["data"]["keys"].clone()
}

/// `kv enable-versioning`, then polls `data/plain` until it stops answering "Upgrading".
fn upgrade(side: Side) -> Upgraded {
    let enable_versioning = side.server.cli_ok(&["kv", "enable-versioning", MOUNT]);
    let tuned = Instant::now();
    let deadline = tuned + UPGRADE_DEADLINE;
    let mut during = Vec::new();
    let took = loop {
        let answer = side.json("GET", &format!("{MOUNT}/data/plain"), None);
        let upgrading = answer.status == 400 && answer.text.contains("Upgrading");
        if !upgrading {
            break tuned.elapsed();
        }
        let seen = normalise(&answer);
        if !during.contains(&seen) {
            during.push(seen);
        }
        assert!(
            Instant::now() < deadline,
            "{}: still upgrading after {UPGRADE_DEADLINE:?}",
            side.label
        );
    };
    Upgraded {
        side,
        enable_versioning,
        during,
        took,
    }
}

/// Every read the comparison covers, by name, normalised.
fn reads(side: &Side) -> Vec<(String, String)> {
    let mut paths = vec![
        format!("{MOUNT}/config"),
        format!("{MOUNT}/metadata/?list=true"),
        format!("{MOUNT}/metadata/nested/?list=true"),
        format!("{MOUNT}/metadata/nested/deeper/?list=true"),
        format!("{MOUNT}/metadata/with%20space/?list=true"),
        format!("{MOUNT}/metadata/bulk/?list=true"),
    ];
    for (key, _) in KEYS {
        for what in ["data", "metadata", "subkeys"] {
            paths.push(format!("{MOUNT}/{what}/{}", enc(key)));
        }
        paths.push(format!("{MOUNT}/data/{}?version=1", enc(key)));
        // The key where version 1 kept it: the catch-all's answer.
        paths.push(format!("{MOUNT}/{}", enc(key)));
    }
    for n in [0, 1, BULK / 2, BULK - 1] {
        paths.push(format!("{MOUNT}/data/bulk/{n:04}"));
        paths.push(format!("{MOUNT}/metadata/bulk/{n:04}"));
    }
    paths
        .into_iter()
        .map(|path| {
            let answer = side.json("GET", &path, None);
            (path, normalise(&answer))
        })
        .collect()
}

/// Asserts what the upgrade must have made of every key, on one side.
fn check_converted(side: &Side) {
    let label = side.label;
    for (key, body) in KEYS {
        let answer = side.json("GET", &format!("{MOUNT}/data/{}", enc(key)), None);
        assert_eq!(answer.status, 200, "{label}: data/{key}: {answer:?}");
        let read = answer.json();
        // Version 2 reads pass numbers through float64, as Go does.
        let written: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            read["data"]["data"].to_string(),
            if *key == "number" {
                r#"{"list":[1,"two",null],"n":12345678901234567000,"small":1.5}"#.to_owned()
            } else {
                written.to_string()
            },
            "{label}: data/{key}"
        );
        assert_eq!(read["data"]["metadata"]["version"], 1, "{label}: {read}");
        let meta = side
            .json("GET", &format!("{MOUNT}/metadata/{}", enc(key)), None)
            .json();
        assert_eq!(
            oldest_and_current(&meta),
            (&json!(1), &json!(1)),
            "{label}: metadata/{key}: {meta}"
        );
    }
    let keys = side
        .json("GET", &format!("{MOUNT}/metadata/?list=true"), None)
        .json();
    assert_eq!(keys["data"]["keys"], root_keys(), "{label}: {keys}");
    let bulk = side
        .json("GET", &format!("{MOUNT}/metadata/bulk/?list=true"), None)
        .json();
    assert_eq!(
        bulk["data"]["keys"].as_array().map(Vec::len),
        Some(BULK),
        "{label}"
    );
    // In storage, the root holds only the engine's own folder (`<backend_aware_uuid>/`).
    let root = raw_list(side, "");
    let root = root.as_array().unwrap();
    assert!(
        root.len() == 1 && root[0].as_str().unwrap().ends_with('/'),
        "{label}: the mount's storage root after the upgrade: {root:?}"
    );
}

/// The engine's own folder in storage, its entries (`archive/`, `metadata/`, ...).
fn engine_folder(side: &Side) -> Value {
    let root = raw_list(side, "");
    raw_list(side, root[0].as_str().unwrap())
}

/// Ours and Go's reads, pair by pair; the differing ones listed.
fn compare(what: &str, ours: &[(String, String)], go: &[(String, String)]) {
    let differences: Vec<String> = ours
        .iter()
        .zip(go)
        .filter(|(o, g)| o != g)
        .map(|((path, o), (_, g))| format!("GET {path}\n  ours: {o}\n  Go:   {g}"))
        .collect();
    assert!(
        differences.is_empty(),
        "{what}: {} of {} reads differ:\n{}",
        differences.len(),
        ours.len(),
        differences.join("\n")
    );
}

#[test]
fn a_version_1_mount_upgrades_to_version_2_as_with_the_go_plugin() {
    let started = Instant::now();
    let (ours, go) = std::thread::scope(|scope| {
        let ours = scope.spawn(|| prepare("ours", ours_bin()));
        let go = prepare("Go", go_bin());
        (ours.join().unwrap(), go)
    });
    let ((ours, ours_before), (go, go_before)) = (ours, go);
    // Version 1 keeps every key where it was written.
    assert_eq!(ours_before, go_before);
    assert_eq!(ours_before, root_keys());
    let prepared = started.elapsed();

    // One after the other, so each upgrade has the machine's two cores.
    let ours = upgrade(ours);
    let go = upgrade(go);
    eprintln!(
        "upgrade of {} keys: ours {:?}, Go {:?}",
        KEYS.len() + BULK,
        ours.took,
        go.took
    );
    assert_eq!(ours.enable_versioning, go.enable_versioning);
    assert_eq!(
        ours.enable_versioning.trim(),
        format!("Success! Tuned the secrets engine at: {MOUNT}/")
    );
    // While it runs: the "Upgrading" 400, and nothing else, on both sides.
    let upgrading = format!(
        "400 application/json\n{}\n",
        json!({ "errors": [UPGRADING] })
    );
    for side in [&ours, &go] {
        assert!(
            side.during.iter().all(|seen| *seen == upgrading),
            "{}: answers while upgrading: {:#?}",
            side.side.label,
            side.during
        );
    }
    assert!(
        !ours.during.is_empty(),
        "ours: the upgrade of {BULK} keys was never seen running"
    );

    for side in [&ours.side, &go.side] {
        check_converted(side);
    }
    compare("after the upgrade", &reads(&ours.side), &reads(&go.side));
    assert_eq!(engine_folder(&ours.side), engine_folder(&go.side));

    // After a restart the upgrade is not run again, and the mount serves and writes.
    let (mut ours, mut go) = (ours.side, go.side);
    let before_restart = reads(&ours);
    std::thread::scope(|scope| {
        let restarting = scope.spawn(|| ours.server.restart());
        go.server.restart();
        restarting.join().unwrap();
    });
    for side in [&ours, &go] {
        let answer = side.json("GET", &format!("{MOUNT}/data/plain"), None);
        assert_eq!(
            answer.status, 200,
            "{} after the restart: {answer:?}",
            side.label
        );
    }
    compare(
        "ours before and after the restart",
        &before_restart,
        &reads(&ours),
    );
    for side in [&ours, &go] {
        let answer = side.json(
            "PUT",
            &format!("{MOUNT}/data/plain"),
            Some(&json!({"data": {"a": "c"}, "options": {"cas": 1}})),
        );
        assert_eq!(answer.status, 200, "{}: {answer:?}", side.label);
    }
    compare("after the restart and a write", &reads(&ours), &reads(&go));
    let meta = ours
        .json("GET", &format!("{MOUNT}/metadata/plain"), None)
        .json();
    assert_eq!(oldest_and_current(&meta), (&json!(1), &json!(2)), "{meta}");
    eprintln!(
        "upgrade test: prepared in {prepared:?}, done in {:?}",
        started.elapsed()
    );
}
