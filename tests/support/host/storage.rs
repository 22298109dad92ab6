//! The `pb.Storage` the host serves a mount over the broker: an in-memory map that a test can
//! inspect, fill, and make read-only or unbound.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tonic::{Response, Status};
use vault_plugin_sdk::proto::pb;
use vault_plugin_sdk::proto::pb::storage_server::Storage;

use super::brokered::unimplemented;

/// How the host's storage for a mount behaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StorageMode {
    #[default]
    Writable,
    /// Reads work; `Put` and `Delete` answer `err` with this text (a mount during Setup,
    /// a standby node).
    ReadOnly(String),
    /// Every call fails with a gRPC error with this text (no storage bound: registration).
    Unbound(String),
}

#[derive(Debug, Default)]
struct StorageState {
    entries: BTreeMap<String, Vec<u8>>,
    mode: StorageMode,
    calls: Vec<String>,
}

/// A mount's storage: an in-memory map the test can inspect and change.
#[derive(Clone, Debug, Default)]
pub struct MemStorage(Arc<Mutex<StorageState>>);

impl MemStorage {
    pub fn new(mode: StorageMode) -> Self {
        let storage = Self::default();
        storage.set_mode(mode);
        storage
    }

    fn state(&self) -> MutexGuard<'_, StorageState> {
        self.0.lock().expect("the storage lock is never poisoned")
    }

    pub fn set_mode(&self, mode: StorageMode) {
        self.state().mode = mode;
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.state().entries.get(key).cloned()
    }

    pub fn insert(&self, key: &str, value: &[u8]) {
        self.state().entries.insert(key.to_owned(), value.to_vec());
    }

    pub fn keys(&self) -> Vec<String> {
        self.state().entries.keys().cloned().collect()
    }

    /// The calls the plugin made, as `"get kv/foo"`, `"list kv/"`, ….
    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }
}

/// The immediate children of `prefix`; deeper keys show as their first folder, with its `/`.
fn children(entries: &BTreeMap<String, Vec<u8>>, prefix: &str) -> Vec<String> {
    let children: BTreeSet<String> = entries
        .range(prefix.to_owned()..)
        .take_while(|(key, _)| key.starts_with(prefix))
        .map(|(key, _)| {
            let rest = &key[prefix.len()..];
            match rest.find('/') {
                Some(slash) => rest[..=slash].to_owned(),
                None => rest.to_owned(),
            }
        })
        .collect();
    children.into_iter().collect()
}

pub(super) struct StorageService(pub(super) MemStorage);

impl StorageService {
    /// Records the call and fails it if no storage is bound, as the server does.
    fn enter(&self, call: String) -> Result<MutexGuard<'_, StorageState>, Status> {
        let mut state = self.0.state();
        state.calls.push(call);
        if let StorageMode::Unbound(message) = &state.mode {
            return Err(Status::unknown(message.clone()));
        }
        Ok(state)
    }
}

fn write_refusal(state: &StorageState) -> Option<String> {
    match &state.mode {
        StorageMode::ReadOnly(message) => Some(message.clone()),
        _ => None,
    }
}

#[tonic::async_trait]
impl Storage for StorageService {
    async fn list(
        &self,
        request: tonic::Request<pb::StorageListArgs>,
    ) -> Result<Response<pb::StorageListReply>, Status> {
        let prefix = request.into_inner().prefix;
        let state = self.enter(format!("list {prefix}"))?;
        Ok(Response::new(pb::StorageListReply {
            keys: children(&state.entries, &prefix),
            err: String::new(),
        }))
    }

    async fn list_page(
        &self,
        _request: tonic::Request<pb::StorageListPageArgs>,
    ) -> Result<Response<pb::StorageListReply>, Status> {
        unimplemented("ListPage")
    }

    async fn get(
        &self,
        request: tonic::Request<pb::StorageGetArgs>,
    ) -> Result<Response<pb::StorageGetReply>, Status> {
        let key = request.into_inner().key;
        let state = self.enter(format!("get {key}"))?;
        let entry = state.entries.get(&key).map(|value| pb::StorageEntry {
            key: key.clone(),
            value: value.clone(),
            seal_wrap: false,
        });
        Ok(Response::new(pb::StorageGetReply {
            entry,
            err: String::new(),
        }))
    }

    async fn put(
        &self,
        request: tonic::Request<pb::StoragePutArgs>,
    ) -> Result<Response<pb::StoragePutReply>, Status> {
        let entry = request.into_inner().entry.unwrap_or_default();
        let mut state = self.enter(format!("put {}", entry.key))?;
        let err = match write_refusal(&state) {
            Some(refusal) => refusal,
            None => {
                state.entries.insert(entry.key, entry.value);
                String::new()
            }
        };
        Ok(Response::new(pb::StoragePutReply { err }))
    }

    async fn delete(
        &self,
        request: tonic::Request<pb::StorageDeleteArgs>,
    ) -> Result<Response<pb::StorageDeleteReply>, Status> {
        let key = request.into_inner().key;
        let mut state = self.enter(format!("delete {key}"))?;
        let err = match write_refusal(&state) {
            Some(refusal) => refusal,
            None => {
                state.entries.remove(&key);
                String::new()
            }
        };
        Ok(Response::new(pb::StorageDeleteReply { err }))
    }

    async fn is_transactional(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::StorageIsTransactionalReply>, Status> {
        unimplemented("IsTransactional")
    }

    async fn begin_read_only_tx(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::StorageBeginTxReply>, Status> {
        unimplemented("BeginReadOnlyTx")
    }

    async fn begin_tx(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> Result<Response<pb::StorageBeginTxReply>, Status> {
        unimplemented("BeginTx")
    }

    async fn commit(
        &self,
        _request: tonic::Request<pb::StorageCommitTxArgs>,
    ) -> Result<Response<pb::StorageCommitTxReply>, Status> {
        unimplemented("Commit")
    }

    async fn rollback(
        &self,
        _request: tonic::Request<pb::StorageRollbackTxArgs>,
    ) -> Result<Response<pb::StorageRollbackTxReply>, Status> {
        unimplemented("Rollback")
    }
}
