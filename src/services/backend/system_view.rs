//! The server's system view of a mount, reached through `pb.SystemView` on the mount's broker
//! connection (the same connection as its storage).

use std::time::Duration;

use serde_json::{Map, Value};
use tonic::codegen::http::Uri;

use crate::backend::{
    ClusterInfo, Entity, Group, PluginEnvironment, ReplicationState, SystemView, SystemViewError,
    SystemViewResult, WrappingToken,
};
use crate::proto::logical as logical_pb;
use crate::proto::pb::system_view_client::SystemViewClient;
use crate::proto::pb::{self, Empty};
use crate::services::backend::storage::{MAX_MESSAGE_SIZE, status_text};
use crate::services::backend::wire::{alias_from_wire, duration_from_wire, duration_to_wire};
use crate::services::broker::BrokerChannel;

/// One mount's system view on the server.
#[derive(Clone, Debug)]
pub(crate) struct HostSystemView {
    client: SystemViewClient<BrokerChannel>,
}

impl HostSystemView {
    pub(crate) fn new(channel: BrokerChannel) -> Self {
        let client = SystemViewClient::with_origin(channel, Uri::from_static("http://localhost"))
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        Self { client }
    }
}

/// A failed call: the server's own text where there is one, with the status as the cause.
fn status_error(status: tonic::Status) -> SystemViewError {
    SystemViewError::new(status_text(&status, "system view")).with_source(status)
}

/// The reply's `err` field, which carries the server's own errors.
fn reply_error(err: String) -> Result<(), SystemViewError> {
    if err.is_empty() {
        Ok(())
    } else {
        Err(SystemViewError::new(err))
    }
}

fn entity_from_wire(entity: logical_pb::Entity) -> Entity {
    Entity {
        id: entity.id,
        name: entity.name,
        aliases: entity.aliases.into_iter().map(alias_from_wire).collect(),
        metadata: entity.metadata.into_iter().collect(),
        disabled: entity.disabled,
        namespace_id: entity.namespace_id,
    }
}

fn group_from_wire(group: logical_pb::Group) -> Group {
    Group {
        id: group.id,
        name: group.name,
        metadata: group.metadata.into_iter().collect(),
        namespace_id: group.namespace_id,
    }
}

/// Calls one RPC with an empty argument on a fresh handle to the shared connection.
macro_rules! call_empty {
    ($self:ident, $rpc:ident) => {{
        let mut client = $self.client.clone();
        async move {
            client
                .$rpc(Empty {})
                .await
                .map(tonic::Response::into_inner)
                .map_err(status_error)
        }
    }};
}

impl SystemView for HostSystemView {
    fn default_lease_ttl(&self) -> SystemViewResult<'_, Duration> {
        let call = call_empty!(self, default_lease_ttl);
        Box::pin(async move { Ok(duration_from_wire(call.await?.ttl)) })
    }

    fn max_lease_ttl(&self) -> SystemViewResult<'_, Duration> {
        let call = call_empty!(self, max_lease_ttl);
        Box::pin(async move { Ok(duration_from_wire(call.await?.ttl)) })
    }

    fn tainted(&self) -> SystemViewResult<'_, bool> {
        let call = call_empty!(self, tainted);
        Box::pin(async move { Ok(call.await?.tainted) })
    }

    fn caching_disabled(&self) -> SystemViewResult<'_, bool> {
        let call = call_empty!(self, caching_disabled);
        Box::pin(async move { Ok(call.await?.disabled) })
    }

    fn replication_state(&self) -> SystemViewResult<'_, ReplicationState> {
        let call = call_empty!(self, replication_state);
        Box::pin(async move {
            // The flags are a bit set; the wire's int32 carries them unchanged.
            Ok(ReplicationState(u32::from_ne_bytes(
                call.await?.state.to_ne_bytes(),
            )))
        })
    }

    fn local_mount(&self) -> SystemViewResult<'_, bool> {
        let call = call_empty!(self, local_mount);
        Box::pin(async move { Ok(call.await?.local) })
    }

    fn mlock_enabled(&self) -> SystemViewResult<'_, bool> {
        let call = call_empty!(self, mlock_enabled);
        Box::pin(async move { Ok(call.await?.enabled) })
    }

    fn entity_info<'a>(&'a self, entity_id: &'a str) -> SystemViewResult<'a, Option<Entity>> {
        let mut client = self.client.clone();
        let args = pb::EntityInfoArgs {
            entity_id: entity_id.to_owned(),
        };
        Box::pin(async move {
            let reply = client
                .entity_info(args)
                .await
                .map_err(status_error)?
                .into_inner();
            reply_error(reply.err)?;
            Ok(reply.entity.map(entity_from_wire))
        })
    }

    fn groups_for_entity<'a>(&'a self, entity_id: &'a str) -> SystemViewResult<'a, Vec<Group>> {
        let mut client = self.client.clone();
        let args = pb::EntityInfoArgs {
            entity_id: entity_id.to_owned(),
        };
        Box::pin(async move {
            let reply = client
                .groups_for_entity(args)
                .await
                .map_err(status_error)?
                .into_inner();
            reply_error(reply.err)?;
            Ok(reply.groups.into_iter().map(group_from_wire).collect())
        })
    }

    fn plugin_env(&self) -> SystemViewResult<'_, PluginEnvironment> {
        let call = call_empty!(self, plugin_env);
        Box::pin(async move {
            let reply = call.await?;
            reply_error(reply.err)?;
            let env = reply.plugin_environment.unwrap_or_default();
            Ok(PluginEnvironment {
                vault_version: env.vault_version,
                vault_version_prerelease: env.vault_version_prerelease,
                vault_version_metadata: env.vault_version_metadata,
            })
        })
    }

    fn generate_password_from_policy<'a>(
        &'a self,
        policy_name: &'a str,
    ) -> SystemViewResult<'a, String> {
        let mut client = self.client.clone();
        let args = pb::GeneratePasswordFromPolicyRequest {
            policy_name: policy_name.to_owned(),
        };
        Box::pin(async move {
            let reply = client
                .generate_password_from_policy(args)
                .await
                .map_err(status_error)?;
            Ok(reply.into_inner().password)
        })
    }

    fn cluster_info(&self) -> SystemViewResult<'_, ClusterInfo> {
        let call = call_empty!(self, cluster_info);
        Box::pin(async move {
            let reply = call.await?;
            reply_error(reply.err)?;
            Ok(ClusterInfo {
                cluster_name: reply.cluster_name,
                cluster_id: reply.cluster_id,
            })
        })
    }

    fn response_wrap_data<'a>(
        &'a self,
        data: &'a Map<String, Value>,
        ttl: Duration,
    ) -> SystemViewResult<'a, WrappingToken> {
        let mut client = self.client.clone();
        let args = pb::ResponseWrapDataArgs {
            data: Value::Object(data.clone()).to_string(),
            ttl: duration_to_wire(ttl),
            // The server refuses JWT wrapping for plugins.
            jwt: false,
        };
        Box::pin(async move {
            let reply = client
                .response_wrap_data(args)
                .await
                .map_err(status_error)?
                .into_inner();
            reply_error(reply.err)?;
            let info = reply.wrap_info.unwrap_or_default();
            Ok(WrappingToken {
                token: info.token,
                accessor: info.accessor,
                ttl: duration_from_wire(info.ttl),
                creation_path: info.creation_path,
            })
        })
    }
}
