//! The server's storage, reached through `pb.Storage` on the mount's broker connection.
//! Errors are passed through verbatim: the server recognises some of their texts (a standby's
//! read-only error makes it forward the request to the active node).

use tonic::codegen::http::Uri;

use crate::backend::{BoxFuture, Storage, StorageError};
use crate::proto::pb::storage_client::StorageClient;
use crate::proto::pb::{
    StorageDeleteArgs, StorageEntry, StorageGetArgs, StorageListArgs, StoragePutArgs,
};
use crate::services::broker::BrokerChannel;

/// The largest message either side accepts; the server uses the same (`math.MaxInt32`).
pub(crate) const MAX_MESSAGE_SIZE: usize = i32::MAX as usize;

/// One mount's storage on the server.
#[derive(Clone, Debug)]
pub(crate) struct HostStorage {
    client: StorageClient<BrokerChannel>,
}

impl HostStorage {
    pub(crate) fn new(channel: BrokerChannel) -> Self {
        // HTTP/2 requests carry a scheme and an authority; go-plugin's listener ignores both.
        let client = StorageClient::with_origin(channel, Uri::from_static("http://localhost"))
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        Self { client }
    }
}

/// A failed call: the server's own text where there is one (for example "missing storage
/// implementation" while the plugin is only being registered), with the status as the cause.
fn status_error(status: tonic::Status) -> StorageError {
    StorageError::new(status_text(&status, "storage")).with_source(status)
}

/// The text of a failed call to the server: its own message, else what kind of failure it was.
pub(crate) fn status_text(status: &tonic::Status, service: &str) -> String {
    let message = status.message();
    if message.is_empty() {
        format!("{service} call failed: {}", status.code().description())
    } else {
        message.to_owned()
    }
}

/// The reply's `err` field, which carries the storage's own errors.
fn reply_error(err: String) -> Result<(), StorageError> {
    if err.is_empty() {
        Ok(())
    } else {
        Err(StorageError::new(err))
    }
}

impl Storage for HostStorage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>> {
        let mut client = self.client.clone();
        let args = StorageGetArgs {
            key: key.to_owned(),
            ..Default::default()
        };
        Box::pin(async move {
            let reply = client.get(args).await.map_err(status_error)?.into_inner();
            reply_error(reply.err)?;
            Ok(reply.entry.map(|entry| entry.value))
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>) -> BoxFuture<'a, Result<(), StorageError>> {
        let mut client = self.client.clone();
        let args = StoragePutArgs {
            entry: Some(StorageEntry {
                key: key.to_owned(),
                value,
                seal_wrap: false,
            }),
            ..Default::default()
        };
        Box::pin(async move {
            let reply = client.put(args).await.map_err(status_error)?.into_inner();
            reply_error(reply.err)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        let mut client = self.client.clone();
        let args = StorageDeleteArgs {
            key: key.to_owned(),
            ..Default::default()
        };
        Box::pin(async move {
            let reply = client
                .delete(args)
                .await
                .map_err(status_error)?
                .into_inner();
            reply_error(reply.err)
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        let mut client = self.client.clone();
        let args = StorageListArgs {
            prefix: prefix.to_owned(),
            ..Default::default()
        };
        Box::pin(async move {
            let reply = client.list(args).await.map_err(status_error)?.into_inner();
            reply_error(reply.err)?;
            Ok(reply.keys)
        })
    }
}
