//! `dbplugin.v5.Database`: the gRPC face of a [`DatabaseFactory`]. On protocol 6 one instance
//! per `multiplex_id` (the server's id for one configured connection), created by `Initialize`
//! or `Type` and dropped by `Close`; on protocol 5 one instance for the process. Requests are
//! checked and errors worded as the Go SDK's server does (`v5/grpc_server.go`), and every error
//! text is masked before it leaves: the instance's secrets and the request's passwords.

mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::database::{
    Database, DatabaseFactory, DeleteUserRequest, Error, InitializeRequest, UpdateUserRequest,
};
use crate::handshake::{Cookie, DATABASE_COOKIE, DATABASE_VERSIONS};
use crate::logging::mask::{self, Hidden};
use crate::proto::dbplugin::v5 as pb;
use crate::services::{Catalog, Kind, Run};
use crate::sync::RecoveringMutex;

/// Database plugins, as the machinery serves them: `factory`'s databases behind
/// `dbplugin.v5.Database`.
pub(crate) struct Databases<F>(pub F);

impl<F: DatabaseFactory> Kind for Databases<F> {
    const COOKIE: &'static Cookie = &DATABASE_COOKIE;
    const VERSIONS: &'static [u32] = DATABASE_VERSIONS;
    const CATALOG: Catalog = Catalog::Database;
    type Face = pb::database_server::DatabaseServer<DatabaseService<F>>;

    fn multiplexed(version: u32) -> bool {
        version >= 6
    }

    fn face(self, run: &Run) -> Self::Face {
        pb::database_server::DatabaseServer::new(DatabaseService::new(self.0, run.multiplexed))
    }
}

/// The metadata key naming the connection a call is for (protocol 6).
const MULTIPLEX_ID_KEY: &str = "multiplex_id";
/// The instance key of a process serving one connection (protocol 5).
const SINGLE_INSTANCE: &str = "single";
/// What a masked password shows instead.
const MASKED_PASSWORD: &str = "[password]";

/// The database instances of this process, by connection.
pub(crate) struct DatabaseService<F: DatabaseFactory> {
    factory: F,
    multiplexed: bool,
    instances: RecoveringMutex<HashMap<String, Arc<F::Database>>>,
    /// Each instance's secrets, kept out of log lines and panic messages until it closes.
    hidden: RecoveringMutex<HashMap<String, Vec<Hidden>>>,
}

impl<F: DatabaseFactory> DatabaseService<F> {
    pub(crate) fn new(factory: F, multiplexed: bool) -> Self {
        Self {
            factory,
            multiplexed,
            instances: RecoveringMutex::new(HashMap::new()),
            hidden: RecoveringMutex::new(HashMap::new()),
        }
    }

    /// The connection a call is for, refused in the Go SDK's words when the id is missing,
    /// repeated or empty (plain errors, so `Unknown` at the server).
    fn instance_id(&self, metadata: &MetadataMap) -> Result<String, Status> {
        if !self.multiplexed {
            return Ok(SINGLE_INSTANCE.to_owned());
        }
        let ids: Vec<_> = metadata.get_all(MULTIPLEX_ID_KEY).iter().collect();
        match ids.as_slice() {
            [] if metadata.is_empty() => {
                Err(Status::unknown("missing plugin multiplexing metadata"))
            }
            [] => Err(Status::unknown("no multiplexing ID found")),
            [id] => match id.to_str() {
                Ok("") => Err(Status::unknown("empty multiplex ID in metadata")),
                Ok(id) => Ok(id.to_owned()),
                Err(_) => Err(Status::unknown("multiplex ID is not ASCII")),
            },
            more => Err(Status::unknown(format!(
                "unexpected number of IDs in metadata: ({})",
                more.len()
            ))),
        }
    }

    /// The instance for the call's connection, made if there is none yet (`Initialize`,
    /// `Type`; and every call of a single-connection process).
    fn get_or_create(&self, metadata: &MetadataMap) -> Result<Arc<F::Database>, Status> {
        let id = self.instance_id(metadata)?;
        let mut instances = self.instances.lock();
        if let Some(instance) = instances.get(&id) {
            return Ok(instance.clone());
        }
        let instance = Arc::new(self.factory.create().map_err(|error| {
            Status::internal(format!("unable to create database instance: {error}"))
        })?);
        instances.insert(id, instance.clone());
        Ok(instance)
    }

    /// The instance for the call's connection, which `Initialize` must have made.
    fn existing(&self, metadata: &MetadataMap) -> Result<Arc<F::Database>, Status> {
        if !self.multiplexed {
            return self.get_or_create(metadata);
        }
        let id = self.instance_id(metadata)?;
        self.instances
            .lock()
            .get(&id)
            .cloned()
            .ok_or_else(|| Status::unknown("no database instance found"))
    }
}

/// `error` as the Go SDK's server sends an implementation's error: `codes.Internal`, `prefix`
/// and the message, with each of `instance`'s secrets and each of `passwords` masked.
fn internal<D: Database>(instance: &D, prefix: &str, error: &Error, passwords: &[&str]) -> Status {
    let mut text = format!("{prefix}: {}", error.message());
    for (secret, shown) in instance.secrets() {
        if !secret.is_empty() {
            text = text.replace(&secret, &shown);
        }
    }
    for password in passwords.iter().filter(|p| !p.is_empty()) {
        text = text.replace(password, MASKED_PASSWORD);
    }
    Status::internal(text)
}

#[tonic::async_trait]
impl<F: DatabaseFactory> pb::database_server::Database for DatabaseService<F> {
    async fn initialize(
        &self,
        request: Request<pb::InitializeRequest>,
    ) -> Result<Response<pb::InitializeResponse>, Status> {
        let id = self.instance_id(request.metadata())?;
        let instance = self.get_or_create(request.metadata())?;
        let request = request.into_inner();
        let config = wire::struct_to_map(request.config_data.unwrap_or_default());
        let asked = InitializeRequest {
            config,
            verify_connection: request.verify_connection,
        };
        let answer = instance.initialize(asked).await;
        // Whatever the instance now holds is kept out of logs, failed or not.
        let hidden = instance
            .secrets()
            .iter()
            .map(|(secret, _)| mask::hide(secret))
            .collect();
        self.hidden.lock().insert(id, hidden);
        let answer =
            answer.map_err(|error| internal(&*instance, "failed to initialize", &error, &[]))?;
        Ok(Response::new(pb::InitializeResponse {
            config_data: Some(wire::map_to_struct(answer.config)),
        }))
    }

    async fn new_user(
        &self,
        request: Request<pb::NewUserRequest>,
    ) -> Result<Response<pb::NewUserResponse>, Status> {
        let instance = self.existing(request.metadata())?;
        let request = wire::new_user(request.into_inner())?;
        let password = request.password.clone();
        let _hidden = mask::hide(&password);
        let answer = instance.new_user(request).await.map_err(|error| {
            internal(
                &*instance,
                "unable to create new user",
                &error,
                &[&password],
            )
        })?;
        Ok(Response::new(pb::NewUserResponse {
            username: answer.username,
        }))
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let instance = self.existing(request.metadata())?;
        let request: UpdateUserRequest = wire::update_user(request.into_inner())?;
        let password = request
            .password
            .as_ref()
            .map(|change| change.new_password.clone())
            .unwrap_or_default();
        let _hidden = mask::hide(&password);
        instance
            .update_user(request)
            .await
            .map_err(|error| internal(&*instance, "unable to update user", &error, &[&password]))?;
        Ok(Response::new(pb::UpdateUserResponse {}))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let instance = self.existing(request.metadata())?;
        let request = request.into_inner();
        if request.username.is_empty() {
            return Err(Status::invalid_argument("no username provided"));
        }
        let asked = DeleteUserRequest {
            username: request.username,
            statements: request.statements.map(|s| s.commands).unwrap_or_default(),
        };
        instance
            .delete_user(asked)
            .await
            .map_err(|error| internal(&*instance, "unable to delete user", &error, &[]))?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn r#type(
        &self,
        request: Request<pb::Empty>,
    ) -> Result<Response<pb::TypeResponse>, Status> {
        self.get_or_create(request.metadata())?;
        Ok(Response::new(pb::TypeResponse {
            r#type: <F::Database as Database>::TYPE.to_owned(),
        }))
    }

    async fn close(&self, request: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        let id = self.instance_id(request.metadata())?;
        // The server may close a connection twice; the second call finds nothing to do.
        let removed = self.instances.lock().remove(&id);
        self.hidden.lock().remove(&id);
        if let Some(instance) = removed {
            instance.close().await.map_err(|error| {
                internal(&*instance, "unable to close database plugin", &error, &[])
            })?;
        }
        Ok(Response::new(pb::Empty {}))
    }
}

#[cfg(test)]
mod tests;
