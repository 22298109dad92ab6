//! The request path the server drives, minus gRPC: decode the wire `Request`, route it, parse
//! its fields, run the mock's handler against in-memory storage, encode the answer. Shared by
//! the `request` and `request_proto` targets.
//!
//! Beyond "no panic", it checks what the plugin promises: every answer encodes (a JSON object,
//! or a known error type), a write that succeeded is in storage and reads back, a delete that
//! succeeded leaves nothing, and nothing else in storage changes.

use std::sync::Arc;

use serde_json::Value;
use vault_plugin_sdk::backend::{Backend, MemoryStorage, Operation, Request, Storage};
use vault_plugin_sdk::internals::{error_to_wire, request_from_wire, response_to_wire};

// The mock lives in the plugin binary, on the SDK's public API only; the fuzz target compiles
// the same source.
#[path = "../../src/mock/mod.rs"]
#[allow(dead_code)]
mod mock;
use mock::MockBackend;
use vault_plugin_sdk::proto::pb;

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
}

/// Entries every run starts with, so reads, lists and deletes find something.
const SEED: &[(&str, &[u8])] = &[("kv/foo", b"bar"), ("kv/dir/nested", b"x"), ("other", b"y")];

pub fn run(request: Option<pb::Request>) {
    match request_from_wire(request) {
        Err(message) => assert!(!message.is_empty(), "a refusal says why"),
        Ok(request) => RUNTIME.with(|runtime| runtime.block_on(check(request))),
    }
}

async fn snapshot(storage: &MemoryStorage, keys: &[String]) -> Vec<Option<Vec<u8>>> {
    let mut values = Vec::new();
    for key in keys {
        values.push(
            storage
                .get(key)
                .await
                .expect("memory storage does not fail"),
        );
    }
    values
}

async fn check(request: Request) {
    let storage = Arc::new(MemoryStorage::new());
    for (key, value) in SEED {
        storage
            .put(key, value.to_vec())
            .await
            .expect("memory storage");
    }
    let backend = MockBackend::new(storage.clone());

    match backend.existence_check(request.clone()).await {
        Ok(_) => {}
        Err(error) => assert!(error_to_wire(&error).err_type <= 10),
    }
    // The existence check only reads.
    let seeded: Vec<String> = SEED.iter().map(|(k, _)| (*k).to_owned()).collect();
    let before = snapshot(&storage, &seeded).await;

    let result = backend.handle_request(request.clone()).await;
    match &result {
        Ok(Some(response)) => {
            let wire = response_to_wire(response.clone());
            let data: Value = serde_json::from_str(&wire.data).expect("response data is JSON");
            assert!(data.is_object(), "response data is a JSON object");
        }
        Ok(None) => {}
        Err(error) => assert!(error_to_wire(error).err_type <= 10),
    }

    let is_kv_key = request.path.starts_with("kv/") && request.path.len() > 3;
    let written = matches!(request.operation, Operation::Create | Operation::Update)
        && is_kv_key
        && matches!(&result, Ok(Some(r)) if !r.is_error());
    if written {
        // Nothing lost: the value the write echoed is stored, and a read returns it.
        let Ok(Some(response)) = &result else {
            unreachable!()
        };
        let value = response.data["value"]
            .as_str()
            .expect("a write echoes its value");
        let stored = storage.get(&request.path).await.expect("memory storage");
        assert_eq!(stored.as_deref(), Some(value.as_bytes()));
        let read = backend
            .handle_request(Request::new(Operation::Read, request.path.clone()))
            .await
            .expect("a read of a written key works")
            .expect("a written key is found");
        assert_eq!(read.data["value"], Value::from(value));
    }
    let deleted = request.operation == Operation::Delete && is_kv_key && result.is_ok();
    if deleted {
        assert_eq!(
            storage.get(&request.path).await.expect("memory storage"),
            None
        );
    }
    // Every other seeded entry is untouched.
    let after = snapshot(&storage, &seeded).await;
    for ((key, old), new) in seeded.iter().zip(before).zip(after) {
        if !((written || deleted) && *key == request.path) {
            assert_eq!(old, new, "{key} changed");
        }
    }
}
