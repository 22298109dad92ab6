//! Generated types for the plugin wire protocol.
//!
//! The schema lives in `proto/` (written for this project from the protocol
//! tables) and is compiled by `build.rs` with `protox` and `tonic-prost-build`.
//! Each submodule mirrors one protobuf package, so gRPC paths such as
//! `/pb.Backend/HandleRequest` match what the host expects. `pb` refers to
//! `logical` types through `super::logical`, so the two must stay siblings.

pub(crate) mod codec;

/// Package `pb`: the `Backend` service the plugin serves, and the `Storage`
/// and `SystemView` services the host serves over the broker.

#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::unwrap_used,
    unreachable_pub,
    dead_code,
    missing_docs,
    rust_2018_idioms
)]
pub mod pb {
    tonic::include_proto!("pb");
}

/// Package `logical`: identity messages, the plugin environment, and the
/// `PluginVersion` service.
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::unwrap_used,
    unreachable_pub,
    dead_code,
    missing_docs,
    rust_2018_idioms
)]
pub mod logical {
    tonic::include_proto!("logical");
}

/// Package `plugin`: go-plugin's internal `GRPCBroker`, `GRPCController` and
/// `GRPCStdio` services.
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::unwrap_used,
    unreachable_pub,
    dead_code,
    missing_docs,
    rust_2018_idioms
)]
pub mod plugin {
    tonic::include_proto!("plugin");
}

/// Package prefix `dbplugin`.
pub mod dbplugin {
    /// Package `dbplugin.v5`: the `Database` service a database plugin serves.
    #[allow(
        clippy::all,
        clippy::pedantic,
        clippy::nursery,
        clippy::unwrap_used,
        unreachable_pub,
        missing_docs,
        rust_2018_idioms
    )]
    pub mod v5 {
        tonic::include_proto!("dbplugin.v5");
    }
}

/// Package prefix `pluginutil`.
pub mod pluginutil {
    /// Package `pluginutil.multiplexing`: the `PluginMultiplexing` service.
    #[allow(
        clippy::all,
        clippy::pedantic,
        clippy::nursery,
        clippy::unwrap_used,
        unreachable_pub,
        missing_docs,
        rust_2018_idioms
    )]
    pub mod multiplexing {
        tonic::include_proto!("pluginutil.multiplexing");
    }
}
