//! `special` (readable without a token) and `raw` (a raw HTTP response): fixed answers.

use serde_json::{Map, Value, json};

use super::MockBackend;
use vault_plugin_sdk::backend::framework::{FieldData, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

pub(super) fn paths() -> Vec<PathSpec<MockBackend>> {
    vec![
        PathSpec::new("special").operation(Operation::Read, special),
        PathSpec::new("raw").operation(Operation::Read, raw),
    ]
}

async fn special(
    _: &MockBackend,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    Response::from_serialize(&json!({"data": "foo"})).map(Some)
}

async fn raw(_: &MockBackend, _: &Request, _: &FieldData<'_>) -> Result<Option<Response>, Error> {
    // Not `Response::with_status`, which answers JSON: the Go mock's raw answer is text.
    let mut data = Map::new();
    data.insert("http_content_type".to_owned(), Value::from("text/plain"));
    // Go sends a byte slice, which JSON carries as base64; the server decodes it back.
    data.insert("http_raw_body".to_owned(), Value::from("UmVzcG9uc2U="));
    data.insert("http_status_code".to_owned(), Value::from(200));
    Ok(Some(Response::with_data(data)))
}
