//! `pb.Backend`, `logical.PluginVersion` and `PluginMultiplexing`: the gRPC face of a
//! [`BackendFactory`]. One backend instance per mount, keyed by the `multiplex_id` metadata the
//! server puts on every call, so several mounts share one process. This module translates
//! between protobuf messages and the backend's own types and knows nothing of paths.

pub(crate) mod storage;
pub(crate) mod system_view;
pub(crate) mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use crate::report::report;
use crate::sync::RecoveringMutex;

use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::backend::{Backend, BackendConfig, BackendFactory, BackendType};
use crate::handshake::{BACKEND_COOKIE, Cookie, SUPPORTED_VERSIONS};
use crate::proto::pb;
use crate::services::backend::storage::HostStorage;
use crate::services::backend::storage::MAX_MESSAGE_SIZE;
use crate::services::backend::system_view::HostSystemView;
use crate::services::backend::wire::{
    bad_request, error_to_wire, request_from_wire, response_to_wire,
};
use crate::services::broker::Broker;
use crate::services::{Catalog, Kind, Run};

/// The metadata key naming the mount a call is for.
pub(crate) const MULTIPLEX_ID_KEY: &str = "multiplex_id";

/// The Go SDK's refusal of calls that need storage while the server only reads metadata.
pub(crate) const METADATA_MODE_REFUSAL: &str =
    "plugin server can not perform action while in metadata mode";

/// The instance key of a non-multiplexed process (protocols 3 and 4 carry no `multiplex_id`).
const SINGLE_INSTANCE: &str = "single";

/// How calls find their backend, and what they may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServiceMode {
    /// One backend per `multiplex_id` (protocol 5); else one backend for the process.
    pub multiplexed: bool,
    /// Legacy metadata mode: only Setup, Type, SpecialPaths, Version and Cleanup work.
    pub metadata_only: bool,
}

#[cfg(test)]
impl ServiceMode {
    pub(crate) const MULTIPLEXED: Self = Self {
        multiplexed: true,
        metadata_only: false,
    };
}

/// Secrets engines and auth methods, as the machinery serves them: `factory`'s backends behind
/// `pb.Backend`.
pub(crate) struct Backends<F>(pub F);

impl<F: BackendFactory> Kind for Backends<F> {
    const COOKIE: &'static Cookie = &BACKEND_COOKIE;
    const VERSIONS: &'static [u32] = SUPPORTED_VERSIONS;
    const CATALOG: Catalog = match <F::Backend as Backend>::KIND {
        BackendType::Logical => Catalog::Secret,
        BackendType::Credential => Catalog::Auth,
    };
    type Face = pb::backend_server::BackendServer<BackendService<F>>;

    fn multiplexed(version: u32) -> bool {
        version >= 5
    }

    fn face(self, run: &Run) -> Self::Face {
        let mode = ServiceMode {
            multiplexed: run.multiplexed,
            metadata_only: run.metadata_only,
        };
        pb::backend_server::BackendServer::new(BackendService::new(
            self.0,
            run.broker.clone(),
            mode,
        ))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }
}

/// The backend instances of this process, by mount.
pub(crate) struct BackendService<F: BackendFactory> {
    factory: F,
    broker: Arc<Broker>,
    mode: ServiceMode,
    mounts: RecoveringMutex<HashMap<String, Arc<F::Backend>>>,
}

impl<F: BackendFactory> BackendService<F> {
    pub(crate) fn new(factory: F, broker: Arc<Broker>, mode: ServiceMode) -> Self {
        Self {
            factory,
            broker,
            mode,
            mounts: RecoveringMutex::new(HashMap::new()),
        }
    }

    /// The key of the mount a call is for.
    fn mount_key<'m>(&self, metadata: &'m MetadataMap) -> Result<&'m str, Status> {
        if self.mode.multiplexed {
            multiplex_id(metadata)
        } else {
            Ok(SINGLE_INSTANCE)
        }
    }

    /// Refuses calls that need storage in metadata mode, as the Go SDK does.
    fn require_storage(&self) -> Result<(), Status> {
        if self.mode.metadata_only {
            Err(Status::unknown(METADATA_MODE_REFUSAL))
        } else {
            Ok(())
        }
    }

    fn mounts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<F::Backend>>> {
        self.mounts.lock()
    }

    /// How many mounts this process serves now.
    pub(crate) fn mount_count(&self) -> usize {
        self.mounts().len()
    }

    fn instance(&self, metadata: &MetadataMap) -> Result<Arc<F::Backend>, Status> {
        let id = self.mount_key(metadata)?;
        self.mounts().get(id).cloned().ok_or_else(|| {
            Status::failed_precondition(format!(
                "no backend instance found for multiplex_id {id:?}: Setup has not been called \
                 for this mount, or it was cleaned up"
            ))
        })
    }
}

/// The mount a call is for. Missing, repeated or empty ids are refused, as the Go SDK does.
pub(crate) fn multiplex_id(metadata: &MetadataMap) -> Result<&str, Status> {
    let mut values = metadata.get_all(MULTIPLEX_ID_KEY).iter();
    let Some(first) = values.next() else {
        return Err(Status::invalid_argument(
            "missing plugin multiplexing metadata: every pb.Backend call must carry \
             `multiplex_id` (the server sends it on protocol 5)",
        ));
    };
    if values.next().is_some() {
        return Err(Status::invalid_argument(
            "more than one multiplex_id in the call's metadata",
        ));
    }
    match first.to_str() {
        Ok("") => Err(Status::invalid_argument("empty multiplex_id in metadata")),
        Ok(id) => Ok(id),
        Err(_) => Err(Status::invalid_argument("multiplex_id is not ASCII")),
    }
}

#[tonic::async_trait]
impl<F: BackendFactory> pb::backend_server::Backend for BackendService<F> {
    async fn handle_request(
        &self,
        request: Request<pb::HandleRequestArgs>,
    ) -> Result<Response<pb::HandleRequestReply>, Status> {
        let backend = self.instance(request.metadata())?;
        self.require_storage()?;
        let reply = match request_from_wire(request.into_inner().request) {
            Err(message) => pb::HandleRequestReply {
                response: None,
                err: Some(bad_request(message)),
            },
            Ok(request) => match backend.handle_request(request).await {
                Ok(response) => pb::HandleRequestReply {
                    response: response.map(response_to_wire),
                    err: None,
                },
                Err(error) => pb::HandleRequestReply {
                    response: None,
                    err: Some(error_to_wire(&error)),
                },
            },
        };
        Ok(Response::new(reply))
    }

    async fn special_paths(
        &self,
        request: Request<pb::Empty>,
    ) -> Result<Response<pb::SpecialPathsReply>, Status> {
        let paths = self.instance(request.metadata())?.special_paths();
        Ok(Response::new(pb::SpecialPathsReply {
            paths: Some(pb::Paths {
                root: paths.root,
                unauthenticated: paths.unauthenticated,
                local_storage: paths.local_storage,
                seal_wrap_storage: paths.seal_wrap_storage,
                write_forwarded_storage: paths.write_forwarded_storage,
                binary: paths.binary,
                limited: paths.limited,
                allow_snapshot_read: paths.allow_snapshot_read,
            }),
        }))
    }

    async fn handle_existence_check(
        &self,
        request: Request<pb::HandleExistenceCheckArgs>,
    ) -> Result<Response<pb::HandleExistenceCheckReply>, Status> {
        let backend = self.instance(request.metadata())?;
        self.require_storage()?;
        let reply = match request_from_wire(request.into_inner().request) {
            Err(message) => pb::HandleExistenceCheckReply {
                err: Some(bad_request(message)),
                ..Default::default()
            },
            Ok(request) => match backend.existence_check(request).await {
                Ok(found) => pb::HandleExistenceCheckReply {
                    check_found: found.is_some(),
                    exists: found.unwrap_or(false),
                    err: None,
                },
                Err(error) => pb::HandleExistenceCheckReply {
                    err: Some(error_to_wire(&error)),
                    ..Default::default()
                },
            },
        };
        Ok(Response::new(reply))
    }

    async fn cleanup(&self, request: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        let id = self.mount_key(request.metadata())?;
        // The server may clean a mount up twice; the second call finds nothing to do.
        let removed = self.mounts().remove(id);
        if let Some(backend) = removed {
            backend.cleanup().await;
            tracing::debug!(
                multiplex_id = id,
                mounts = self.mount_count(),
                "backend cleaned up"
            );
        }
        Ok(Response::new(pb::Empty {}))
    }

    async fn invalidate_key(
        &self,
        request: Request<pb::InvalidateKeyArgs>,
    ) -> Result<Response<pb::Empty>, Status> {
        let backend = self.instance(request.metadata())?;
        self.require_storage()?;
        backend.invalidate(&request.into_inner().key).await;
        Ok(Response::new(pb::Empty {}))
    }

    async fn setup(
        &self,
        request: Request<pb::SetupArgs>,
    ) -> Result<Response<pb::SetupReply>, Status> {
        let id = self.mount_key(request.metadata())?.to_owned();
        let args = request.into_inner();
        // Dialing proves the broker works and fails the mount early, with a clear error, if
        // it does not. Nothing is read or written: at registration there is no storage.
        let channel = match self.broker.connect(args.broker_id).await {
            Ok(channel) => channel,
            Err(error) => {
                let err = report(&error);
                tracing::error!(error = %err, "setup failed");
                return Ok(Response::new(pb::SetupReply { err }));
            }
        };
        let config = BackendConfig {
            config: args.config,
            backend_uuid: args.backend_uuid,
            storage: Arc::new(HostStorage::new(channel.clone())),
            system_view: Arc::new(HostSystemView::new(channel)),
        };
        let backend = match self.factory.create(config).await {
            Ok(backend) => Arc::new(backend),
            Err(error) => {
                return Ok(Response::new(pb::SetupReply {
                    err: error.to_string(),
                }));
            }
        };
        let replaced = self.mounts().insert(id.clone(), backend);
        if let Some(old) = replaced {
            tracing::warn!(multiplex_id = %id, "Setup repeated for a mount; replacing its backend");
            old.cleanup().await;
        }
        tracing::debug!(multiplex_id = %id, mounts = self.mount_count(), "backend set up");
        Ok(Response::new(pb::SetupReply { err: String::new() }))
    }

    async fn initialize(
        &self,
        request: Request<pb::InitializeArgs>,
    ) -> Result<Response<pb::InitializeReply>, Status> {
        let backend = self.instance(request.metadata())?;
        self.require_storage()?;
        let err = backend.initialize().await.err().map(|e| error_to_wire(&e));
        Ok(Response::new(pb::InitializeReply { err }))
    }

    async fn r#type(&self, request: Request<pb::Empty>) -> Result<Response<pb::TypeReply>, Status> {
        // The kind is the backend type's, but the call still needs a set-up mount, as before.
        self.instance(request.metadata())?;
        let r#type = match <F::Backend as Backend>::KIND {
            BackendType::Logical => 1,
            BackendType::Credential => 2,
        };
        Ok(Response::new(pb::TypeReply { r#type }))
    }
}

#[cfg(test)]
mod tests;
