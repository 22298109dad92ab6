//! The request path from a readable input: `operation\npath\ndata`, where `data` is the
//! request's JSON text as the wire carries it (or not JSON at all).

#![no_main]

mod pipeline;

use libfuzzer_sys::fuzz_target;
use vault_plugin_sdk::proto::pb;

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let mut parts = text.splitn(3, '\n');
    let operation = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let data = parts.next().unwrap_or_default().to_owned();
    pipeline::run(Some(pb::Request {
        operation,
        path,
        data,
        mount_point: "mock/".to_owned(),
        ..Default::default()
    }));
});
