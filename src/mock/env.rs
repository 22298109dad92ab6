//! `env/<key>` (Vault's mock): reads the plugin process's environment, so tests can check what
//! the catalog's `env` passed to the plugin.

use serde_json::json;

use super::MockBackend;
use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

pub(super) fn path() -> PathSpec<MockBackend> {
    PathSpec::new("env/{key}")
        .field(
            FieldSchema::new(
                "key",
                FieldType::String,
                "The name of the environment variable to read.",
            )
            .required(),
        )
        .operation(Operation::Read, read)
}

async fn read(
    _: &MockBackend,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let value = std::env::var(fields.get_string("key")).unwrap_or_default();
    Response::from_serialize(&json!({ "key": value })).map(Some)
}
