//! The `pb.SystemView` the host serves a mount over the broker: the default lease TTLs, and
//! "not implemented" for the rest.

use std::time::Duration;

use tonic::{Response, Status};
use vault_plugin_sdk::proto::pb;
use vault_plugin_sdk::proto::pb::system_view_server::SystemView;

use super::DEFAULT_LEASE_TTL;
use super::brokered::unimplemented;

pub(super) struct SystemViewService;

fn ttl_reply(ttl: Duration) -> Result<Response<pb::TtlReply>, Status> {
    let ttl = i64::try_from(ttl.as_nanos()).expect("a TTL fits in i64 nanoseconds");
    Ok(Response::new(pb::TtlReply { ttl }))
}

#[tonic::async_trait]
impl SystemView for SystemViewService {
    async fn default_lease_ttl(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::TtlReply>, Status> {
        ttl_reply(DEFAULT_LEASE_TTL)
    }

    async fn max_lease_ttl(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::TtlReply>, Status> {
        ttl_reply(DEFAULT_LEASE_TTL)
    }

    async fn tainted(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::TaintedReply>, Status> {
        unimplemented("Tainted")
    }

    async fn caching_disabled(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::CachingDisabledReply>, Status> {
        unimplemented("CachingDisabled")
    }

    async fn replication_state(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::ReplicationStateReply>, Status> {
        unimplemented("ReplicationState")
    }

    async fn response_wrap_data(
        &self,
        _request: tonic::Request<pb::ResponseWrapDataArgs>,
    ) -> Result<Response<pb::ResponseWrapDataReply>, Status> {
        unimplemented("ResponseWrapData")
    }

    async fn mlock_enabled(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::MlockEnabledReply>, Status> {
        unimplemented("MlockEnabled")
    }

    async fn local_mount(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::LocalMountReply>, Status> {
        unimplemented("LocalMount")
    }

    async fn entity_info(
        &self,
        _request: tonic::Request<pb::EntityInfoArgs>,
    ) -> Result<Response<pb::EntityInfoReply>, Status> {
        unimplemented("EntityInfo")
    }

    async fn plugin_env(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::PluginEnvReply>, Status> {
        unimplemented("PluginEnv")
    }

    async fn groups_for_entity(
        &self,
        _request: tonic::Request<pb::EntityInfoArgs>,
    ) -> Result<Response<pb::GroupsForEntityReply>, Status> {
        unimplemented("GroupsForEntity")
    }

    async fn generate_password_from_policy(
        &self,
        _request: tonic::Request<pb::GeneratePasswordFromPolicyRequest>,
    ) -> Result<Response<pb::GeneratePasswordFromPolicyReply>, Status> {
        unimplemented("GeneratePasswordFromPolicy")
    }

    async fn cluster_info(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::ClusterInfoReply>, Status> {
        unimplemented("ClusterInfo")
    }
}
