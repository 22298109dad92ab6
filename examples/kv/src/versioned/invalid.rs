//! The catch-all: a raw 404 naming the `kv` subcommand to use, for every path the others do
//! not serve (the mount root, `data/`, a key without a prefix).

use vault_plugin_sdk::backend::framework::{FieldData, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

use super::Versioned;

pub(super) fn path() -> PathSpec<Versioned> {
    let mut path = PathSpec::new("{*}").unpublished().help(
        "Paths the versioned store does not serve",
        "Use config, data/, metadata/, delete/, undelete/, destroy/ or subkeys/.",
    );
    for operation in [
        Operation::Update,
        Operation::Patch,
        Operation::Read,
        Operation::Delete,
        Operation::List,
    ] {
        path = path.operation(operation, invalid);
    }
    path
}

async fn invalid(
    _: &Versioned,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let warning = match request.path.as_str() {
        "metadata" | "data" | "delete" | "undelete" | "destroy" => {
            "Non-listing operations on the root of a K/V v2 mount are not supported.".to_owned()
        }
        _ => {
            let subcommand = match request.operation {
                Operation::Create | Operation::Update => "put",
                Operation::Patch => "patch",
                Operation::Read => "get",
                Operation::List => "list",
                Operation::Delete => "delete",
                _ => "",
            };
            format!(
                "Invalid path for a versioned K/V secrets engine. See the API docs for the \
                 appropriate API endpoints to use. If using the Vault CLI, use 'vault kv \
                 {subcommand}' for this operation."
            )
        }
    };
    Response::whole_with_status(
        404,
        request,
        Some(Response::default().with_warning(warning)),
    )
    .map(Some)
}
