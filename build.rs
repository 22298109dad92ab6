//! Compiles the plugin wire-protocol schema in `proto/` into Rust (prost messages
//! plus tonic clients and servers) under `OUT_DIR`.
//!
//! The `.proto` files are parsed by `protox`, a pure-Rust compiler, so no system
//! `protoc` is needed; the resulting descriptor set is handed to
//! `tonic-prost-build` for code generation. `src/proto/mod.rs` includes the output.

use std::error::Error;

/// Every schema file, relative to the crate root. `proto/` is the include root,
/// so imports are written as e.g. `logical/identity.proto`.
const PROTO_FILES: &[&str] = &[
    "proto/dbplugin/v5/database.proto",
    "proto/plugin/grpc_broker.proto",
    "proto/plugin/grpc_controller.proto",
    "proto/plugin/grpc_stdio.proto",
    "proto/logical/identity.proto",
    "proto/logical/plugin.proto",
    "proto/logical/version.proto",
    "proto/pb/backend.proto",
    "proto/pluginutil/multiplexing.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build.rs");

    let fds = protox::compile(PROTO_FILES, ["proto"])?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // No `connect` helpers: the plugin dials through the broker (src/services/broker.rs).
        .build_transport(false)
        // prost with 1 KiB instead of 8 KiB message buffers (see src/proto/codec.rs).
        .codec_path("crate::proto::codec::SmallBufferCodec")
        .compile_fds(fds)?;

    Ok(())
}
