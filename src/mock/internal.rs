//! `internal`: a value held in the plugin's memory, so tests can tell a fresh process (or an
//! invalidated one) from an old one.

use serde_json::json;

use super::MockBackend;
use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

pub(super) fn path() -> PathSpec<MockBackend> {
    PathSpec::new("internal")
        .field(FieldSchema::new("value", FieldType::String, ""))
        .operation(Operation::Update, update)
        .operation(Operation::Read, read)
}

async fn update(
    backend: &MockBackend,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    *backend.internal() = fields.get_string("value");
    Ok(None)
}

async fn read(
    backend: &MockBackend,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let value = backend.internal().clone();
    Response::from_serialize(&json!({ "value": value })).map(Some)
}
