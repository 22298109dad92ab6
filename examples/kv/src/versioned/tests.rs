//! Version 2 in process, on the SDK's test kit: fast checks of the rules the differential
//! suite (`tests/differential.rs`) proves against the Go plugin through real servers.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use vault_plugin_sdk::backend::{MemoryStorage, Operation, Response};
use vault_plugin_sdk::testing::TestBackend;

use crate::backend::{Factory, Kv};

const UUID: &str = "00000000-0000-0000-0000-000000000000";

type Mount = TestBackend<Kv>;

async fn mount_on(storage: Arc<MemoryStorage>) -> Mount {
    TestBackend::builder()
        .storage(storage)
        .config("version", "2")
        .build(Factory)
        .await
        .expect("a version 2 mount")
}

async fn mount() -> Mount {
    mount_on(Arc::new(MemoryStorage::new())).await
}

async fn call(mount: &Mount, operation: Operation, path: &str, body: Value) -> Option<Response> {
    mount
        .request(operation.clone(), path)
        .data(body)
        .await
        .unwrap_or_else(|error| panic!("{operation} {path}: {error}"))
}

async fn write(mount: &Mount, path: &str, body: Value) -> Option<Response> {
    call(mount, Operation::Update, path, body).await
}

async fn read(mount: &Mount, path: &str) -> Option<Response> {
    call(mount, Operation::Read, path, json!({})).await
}

fn error_text(response: Option<Response>) -> String {
    let response = response.expect("a response");
    assert!(response.is_error(), "{response:?}");
    response.data["error"].as_str().unwrap().to_owned()
}

/// The status and body of a raw answer (`Response::whole_with_status`).
fn raw(response: Option<Response>) -> (u64, Value) {
    let data = response.expect("a raw answer").data;
    let status = data["http_status_code"].as_u64().unwrap();
    let body = data
        .get("http_raw_body")
        .and_then(Value::as_str)
        .map_or(Value::Null, |text| serde_json::from_str(text).unwrap());
    (status, body)
}

async fn version_blobs(mount: &Mount) -> usize {
    let mut count = 0;
    for folder in mount.stored_keys(&format!("{UUID}/versions/")).await {
        count += mount
            .stored_keys(&format!("{UUID}/versions/{folder}"))
            .await
            .len();
    }
    count
}

#[tokio::test]
async fn versions_accumulate_and_old_ones_stay_readable() {
    let mount = mount().await;
    for n in 1..=3 {
        let answer = write(&mount, "data/app/db", json!({"data": {"n": n}}))
            .await
            .unwrap();
        assert_eq!(answer.data["version"], n);
        assert_eq!(answer.data["deletion_time"], "");
        assert_eq!(answer.data["custom_metadata"], Value::Null);
    }
    let current = read(&mount, "data/app/db").await.unwrap();
    assert_eq!(current.data["data"], json!({"n": 3}));
    assert_eq!(current.data["metadata"]["version"], 3);
    let first = call(
        &mount,
        Operation::Read,
        "data/app/db",
        json!({"version": 1}),
    )
    .await;
    assert_eq!(first.unwrap().data["data"], json!({"n": 1}));
    assert_eq!(
        call(
            &mount,
            Operation::Read,
            "data/app/db",
            json!({"version": 9})
        )
        .await,
        None
    );
    let meta = read(&mount, "metadata/app/db").await.unwrap();
    assert_eq!(meta.data["current_version"], 3);
    assert_eq!(meta.data["oldest_version"], 0, "0 until the first prune");
    assert_eq!(
        read(&mount, "metadata/app/").await,
        None,
        "a folder has no metadata"
    );
    let list = call(&mount, Operation::List, "metadata/app/", json!({})).await;
    assert_eq!(list.unwrap().data["keys"], json!(["db"]));
}

#[tokio::test]
async fn check_and_set_is_checked_and_can_be_required() {
    let mount = mount().await;
    let first = write(&mount, "data/k", json!({"data": {}, "options": {"cas": 0}})).await;
    assert_eq!(first.unwrap().data["version"], 1);
    let wrong = write(&mount, "data/k", json!({"data": {}, "options": {"cas": 0}})).await;
    assert_eq!(
        error_text(wrong),
        "check-and-set parameter did not match the current version"
    );
    let bad = write(
        &mount,
        "data/k",
        json!({"data": {}, "options": {"cas": "x"}}),
    )
    .await;
    assert_eq!(error_text(bad), "error parsing check-and-set parameter");
    assert_eq!(
        write(&mount, "config", json!({"cas_required": true})).await,
        None
    );
    let missing = write(&mount, "data/k", json!({"data": {}})).await;
    assert_eq!(
        error_text(missing),
        "check-and-set parameter required for this call"
    );
    let right = write(
        &mount,
        "data/k",
        json!({"data": {}, "options": {"cas": "1"}}),
    )
    .await;
    assert_eq!(right.unwrap().data["version"], 2);
    let no_data = write(&mount, "data/k", json!({"options": {"cas": 2}})).await;
    assert_eq!(error_text(no_data), "no data provided");
}

#[tokio::test]
async fn the_window_prunes_metadata_and_blobs() {
    let mount = mount().await;
    for n in 1..=12 {
        write(&mount, "data/k", json!({"data": {"n": n}})).await;
    }
    let meta = read(&mount, "metadata/k").await.unwrap();
    assert_eq!(meta.data["oldest_version"], 3);
    let versions = meta.data["versions"].as_object().unwrap();
    assert_eq!(versions.len(), 10);
    assert!(!versions.contains_key("2") && versions.contains_key("3"));
    assert_eq!(version_blobs(&mount).await, 10);
    // The key's window applies when it is the larger one (the mount's is 0 here)…
    write(&mount, "metadata/k", json!({"max_versions": 2})).await;
    write(&mount, "data/k", json!({"data": {}})).await;
    let meta = read(&mount, "metadata/k").await.unwrap();
    assert_eq!(meta.data["oldest_version"], 12);
    assert_eq!(version_blobs(&mount).await, 2);
    // …and the mount's when it is larger: 3 versions from the next prune on.
    write(&mount, "config", json!({"max_versions": 3})).await;
    write(&mount, "data/k", json!({"data": {}})).await;
    write(&mount, "data/k", json!({"data": {}})).await;
    let meta = read(&mount, "metadata/k").await.unwrap();
    assert_eq!(meta.data["oldest_version"], 13);
    assert_eq!(version_blobs(&mount).await, 3);
}

#[tokio::test]
async fn deleted_and_destroyed_versions_answer_a_raw_404_with_their_metadata() {
    let mount = mount().await;
    write(&mount, "data/k", json!({"data": {"a": 1}})).await;
    write(&mount, "data/k", json!({"data": {"a": 2}})).await;
    assert_eq!(
        call(&mount, Operation::Delete, "data/k", json!({})).await,
        None
    );
    let (status, body) = raw(read(&mount, "data/k").await);
    assert_eq!(status, 404);
    assert_eq!(body["data"]["data"], Value::Null);
    assert_eq!(body["data"]["metadata"]["version"], 2);
    assert_ne!(body["data"]["metadata"]["deletion_time"], "");
    assert_eq!(body["warnings"], Value::Null);

    assert_eq!(
        write(&mount, "undelete/k", json!({"versions": "2"})).await,
        None
    );
    assert_eq!(
        read(&mount, "data/k").await.unwrap().data["data"],
        json!({"a": 2})
    );

    assert_eq!(
        write(&mount, "destroy/k", json!({"versions": [1, 7]})).await,
        None
    );
    let destroyed = call(&mount, Operation::Read, "data/k", json!({"version": 1})).await;
    let (status, body) = raw(destroyed);
    assert_eq!(
        (status, &body["data"]["metadata"]["destroyed"]),
        (404, &json!(true))
    );
    assert_eq!(version_blobs(&mount).await, 1);

    let none = write(&mount, "delete/k", json!({})).await;
    assert_eq!(error_text(none), "No version number provided");
    let none = write(&mount, "destroy/k", json!({"versions": ""})).await;
    assert_eq!(error_text(none), "no version number provided");
}

#[tokio::test]
async fn patch_merges_into_a_new_version_and_misses_with_an_empty_404() {
    let mount = mount().await;
    let (status, body) = raw(call(&mount, Operation::Patch, "data/k", json!({"data": {}})).await);
    assert_eq!((status, body), (404, Value::Null));
    write(
        &mount,
        "data/k",
        json!({"data": {"a": 1, "o": {"x": 1, "y": 2}}}),
    )
    .await;
    let patched = call(
        &mount,
        Operation::Patch,
        "data/k",
        json!({"data": {"a": null, "o": {"y": 3}, "b": "new"}}),
    )
    .await;
    assert_eq!(patched.unwrap().data["version"], 2);
    assert_eq!(
        read(&mount, "data/k").await.unwrap().data["data"],
        json!({"o": {"x": 1, "y": 3}, "b": "new"})
    );
    call(&mount, Operation::Delete, "data/k", json!({})).await;
    let (status, body) = raw(call(&mount, Operation::Patch, "data/k", json!({"data": {}})).await);
    assert_eq!(status, 404);
    assert_eq!(body["data"]["version"], 2, "a flat version object: {body}");
}

#[tokio::test]
async fn delete_version_after_sets_deletion_times_and_negative_disables_it() {
    let mount = mount().await;
    write(&mount, "config", json!({"delete_version_after": "1h"})).await;
    let written = write(&mount, "data/k", json!({"data": {}})).await.unwrap();
    assert_ne!(written.data["deletion_time"], "");
    assert_eq!(
        read(&mount, "config").await.unwrap().data["delete_version_after"],
        "1h0m0s"
    );
    write(&mount, "config", json!({"delete_version_after": -7})).await;
    assert_eq!(
        read(&mount, "config").await.unwrap().data["delete_version_after"],
        "-1s"
    );
    write(&mount, "metadata/k", json!({"delete_version_after": "10m"})).await;
    let written = write(&mount, "data/k", json!({"data": {}})).await.unwrap();
    assert_eq!(
        written.data["deletion_time"], "",
        "a mount's -1s disables every key's"
    );
}

#[tokio::test]
async fn custom_metadata_is_validated_and_patched() {
    let mount = mount().await;
    let too_long = write(
        &mount,
        "metadata/k",
        json!({"custom_metadata": {"k": "v".repeat(513)}}),
    )
    .await;
    assert_eq!(
        error_text(too_long),
        "1 error occurred:\n\t* custom_metadata validation failed: length of value for key \
         \"k\" is 513 but must be 0 < len(value) <= 512\n\n"
    );
    write(
        &mount,
        "metadata/k",
        json!({"custom_metadata": {"a": "1", "b": "2"}}),
    )
    .await;
    call(
        &mount,
        Operation::Patch,
        "metadata/k",
        json!({"custom_metadata": {"a": null, "c": "3"}}),
    )
    .await;
    let meta = read(&mount, "metadata/k").await.unwrap();
    assert_eq!(meta.data["custom_metadata"], json!({"b": "2", "c": "3"}));
    assert_eq!(
        meta.data["current_version"], 0,
        "metadata alone makes no version"
    );
    let (status, _) = raw(call(
        &mount,
        Operation::Patch,
        "metadata/none",
        json!({"max_versions": 1}),
    )
    .await);
    assert_eq!(status, 404);
}

#[tokio::test]
async fn paths_no_route_serves_get_the_catch_all_404() {
    let mount = mount().await;
    for (operation, path, expected) in [
        (
            Operation::Read,
            "foo",
            "use 'vault kv get' for this operation.",
        ),
        (
            Operation::Update,
            "data/",
            "use 'vault kv put' for this operation.",
        ),
        (
            Operation::Read,
            "data",
            "Non-listing operations on the root of a K/V v2 mount",
        ),
    ] {
        let (status, body) = raw(call(&mount, operation, path, json!({})).await);
        assert_eq!(status, 404, "{path}");
        let warning = body["warnings"][0].as_str().unwrap();
        assert!(warning.contains(expected), "{path}: {warning}");
    }
}

#[tokio::test]
async fn a_version_1_mount_upgrades_in_place() {
    let storage = Arc::new(MemoryStorage::new());
    let v1 = TestBackend::builder()
        .storage(Arc::clone(&storage))
        .build(Factory)
        .await
        .unwrap();
    for key in ["a", "dir/b"] {
        v1.write(key)
            .data(json!({"value": key, "ttl": "1h"}))
            .await
            .unwrap();
    }
    let v2 = mount_on(storage).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let answer = read(&v2, "data/dir/b").await;
        let upgrading = answer.as_ref().is_some_and(Response::is_error);
        if !upgrading || tokio::time::Instant::now() > deadline {
            break answer;
        }
        tokio::task::yield_now().await;
    };
    let answer = answer.expect("version 1 of the key");
    assert_eq!(answer.data["data"], json!({"value": "dir/b", "ttl": "1h"}));
    assert_eq!(answer.data["metadata"]["version"], 1);
    let meta = read(&v2, "metadata/a").await.unwrap();
    assert_eq!(
        (&meta.data["oldest_version"], &meta.data["current_version"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(v2.stored("a").await, None, "the version 1 entry is gone");
    let list = call(&v2, Operation::List, "metadata/", json!({}))
        .await
        .unwrap();
    assert_eq!(list.data["keys"], json!(["a", "dir/"]));
}

#[tokio::test]
async fn the_blobs_and_the_policy_are_seal_wrapped_under_the_mount_s_prefix() {
    let mount = mount().await;
    let special = vault_plugin_sdk::backend::Backend::special_paths(mount.backend());
    assert_eq!(
        special.seal_wrap_storage,
        [
            format!("{UUID}/versions/"),
            format!("{UUID}/policy/"),
            format!("{UUID}/archive/"),
        ]
    );
    assert!(special.root.is_empty() && special.unauthenticated.is_empty());
}
