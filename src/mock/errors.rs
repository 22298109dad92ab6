//! `errors/rpc`, `errors/kill` and `errors/type`: errors on demand, to exercise the server's
//! handling of each wire error type and its auto-reload on a shut-down connection.

use super::MockBackend;
use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

/// Go's `rpc.ErrShutdown`. The server compares error texts with it and, on a match, reloads
/// the plugin and retries the request once.
pub(super) const CONNECTION_SHUT_DOWN: &str = "connection is shut down";

pub(super) fn paths() -> Vec<PathSpec<MockBackend>> {
    vec![
        PathSpec::new("errors/rpc").operation(Operation::Read, shut_down),
        PathSpec::new("errors/kill").operation(Operation::Read, shut_down),
        PathSpec::new("errors/type")
            .field(FieldSchema::new("err_type", FieldType::Int, ""))
            .operation(Operation::Create, fail_with_type)
            .operation(Operation::Update, fail_with_type),
    ]
}

/// The error the Go mock returns for `err_type`; `None` for numbers it has no case for.
pub(super) fn error_for_type(err_type: u32) -> Option<Error> {
    let test = || "test".to_owned();
    Some(match err_type {
        0 => Error::other(test()),
        1 => Error::user(test()),
        2 => Error::internal(test()),
        3 => Error::coded(403, test()),
        4 => Error::bad_request(test()),
        5 => Error::unsupported_operation(),
        6 => Error::unsupported_path(),
        7 => Error::invalid_request(),
        8 => Error::permission_denied(),
        9 => Error::multi_authz_pending(),
        _ => return None,
    })
}

/// `errors/rpc` and `errors/kill`: the Go mock's one handler serves them and `errors/type`;
/// these paths declare no `err_type`, so it always fails as a shut-down connection here.
async fn shut_down(
    _: &MockBackend,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    Err(Error::other(CONNECTION_SHUT_DOWN))
}

async fn fail_with_type(
    backend: &MockBackend,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    // Go's `GetOk` counts a JSON null as supplied (it decodes to 0), and the mock switches on
    // `uint32(err_type)`, so only the low 32 bits count.
    if fields.get_ok("err_type").is_some() {
        match error_for_type(fields.get_int("err_type") as u32) {
            Some(error) => Err(error),
            None => Ok(None),
        }
    } else {
        shut_down(backend, request, fields).await
    }
}
