//! `kv/` and `kv/<key>`: values kept in the server's storage under the request path.

use serde_json::{Map, Value};

use super::MockBackend;
use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

pub(super) fn paths() -> Vec<PathSpec<MockBackend>> {
    vec![
        PathSpec::new("kv/?").operation(Operation::List, list),
        PathSpec::new("kv/{key}")
            .field(FieldSchema::new("key", FieldType::String, ""))
            .field(FieldSchema::new("value", FieldType::String, ""))
            .field(FieldSchema::new("version", FieldType::Int, ""))
            .existence_check(exists)
            .operation(Operation::Read, read)
            .operation(Operation::Create, write)
            .operation(Operation::Update, write)
            .operation(Operation::Delete, delete),
    ]
}

async fn exists(
    backend: &MockBackend,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<bool, Error> {
    let entry = backend
        .storage
        .get(&request.path)
        .await
        .map_err(|e| Error::other(format!("existence check failed: {e}")).with_source(e))?;
    Ok(entry.is_some())
}

async fn read(
    backend: &MockBackend,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let version = fields.get_int("version");
    let Some(value) = backend.storage.get(&request.path).await? else {
        return Ok(None);
    };
    // Stored values are the raw bytes of a string; Go's string conversion keeps invalid
    // UTF-8 as is, JSON then carries replacement characters, which is what we send too.
    let value = String::from_utf8_lossy(&value).into_owned();
    // The Go mock logs the value itself; a secret does not belong in a log.
    tracing::info!(key = %request.path, "reading value");
    // Moved into the answer, not serialised again: a value may be 16 MiB.
    let mut data = Map::new();
    data.insert("value".to_owned(), Value::String(value));
    data.insert("version".to_owned(), Value::from(version));
    Ok(Some(Response::with_data(data)))
}

async fn write(
    backend: &MockBackend,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let value = fields.get_string("value");
    tracing::info!(key = %request.path, "storing value");
    backend
        .storage
        .put(&request.path, value.clone().into_bytes())
        .await?;
    let mut data = Map::new();
    data.insert("value".to_owned(), Value::String(value));
    Ok(Some(Response::with_data(data)))
}

async fn delete(
    backend: &MockBackend,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.storage.delete(&request.path).await?;
    Ok(None)
}

async fn list(
    backend: &MockBackend,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let keys = backend.storage.list("kv/").await?;
    Ok(Some(Response::list(keys)))
}
