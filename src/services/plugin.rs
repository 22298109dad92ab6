//! The services every plugin kind serves beside its own: the version it reports, and whether
//! one process serves several of the server's instances.

use tonic::{Request, Response, Status};

use crate::proto::logical::plugin_version_server::PluginVersion;
use crate::proto::logical::{self as logical_pb, VersionReply};
use crate::proto::pluginutil::multiplexing::plugin_multiplexing_server::PluginMultiplexing;
use crate::proto::pluginutil::multiplexing::{
    MultiplexingSupportRequest, MultiplexingSupportResponse,
};

/// `logical.PluginVersion`. Answered from the plugin's info, so it never fails: at registration an
/// error here would crash the server's request (its logger is nil there).
pub(crate) struct VersionService {
    version: String,
}

impl VersionService {
    pub(crate) fn new(version: String) -> Self {
        Self { version }
    }
}

#[tonic::async_trait]
impl PluginVersion for VersionService {
    async fn version(
        &self,
        _request: Request<logical_pb::Empty>,
    ) -> Result<Response<VersionReply>, Status> {
        Ok(Response::new(VersionReply {
            plugin_version: self.version.clone(),
        }))
    }
}

/// `PluginMultiplexing`: whether one process serves every instance (mount, database
/// connection) of the same catalog entry.
#[derive(Debug)]
pub(crate) struct MultiplexingService {
    supported: bool,
}

impl MultiplexingService {
    pub(crate) fn new(supported: bool) -> Self {
        Self { supported }
    }
}

#[tonic::async_trait]
impl PluginMultiplexing for MultiplexingService {
    async fn multiplexing_support(
        &self,
        _request: Request<MultiplexingSupportRequest>,
    ) -> Result<Response<MultiplexingSupportResponse>, Status> {
        Ok(Response::new(MultiplexingSupportResponse {
            supported: self.supported,
        }))
    }
}
