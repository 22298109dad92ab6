//! The request path from the raw bytes of a `pb.HandleRequestArgs` message, as the server sends
//! it on `pb.Backend/HandleRequest` (and, in the same shape, `HandleExistenceCheck`).

#![no_main]

mod pipeline;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use vault_plugin_sdk::proto::pb;

fuzz_target!(|input: &[u8]| {
    if let Ok(args) = pb::HandleRequestArgs::decode(input) {
        pipeline::run(args.request);
    }
});
