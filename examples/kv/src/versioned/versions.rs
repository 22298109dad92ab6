//! `delete/<key>`, `undelete/<key>` and `destroy/<key>`: what happens to given versions.

use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

use super::{DVA_DISABLED, Guarded, Versioned, deletion_time, is_deleted, key_field};
use crate::storage::records::{self, duration_seconds};

/// The change a path makes to each version it is given.
#[derive(Clone, Copy)]
enum Change {
    Delete,
    Undelete,
    Destroy,
}

pub(super) fn delete_paths() -> Vec<PathSpec<Versioned>> {
    vec![
        versions_path(
            "delete/{*path}",
            "The versions to delete.",
            delete,
            "Marks versions as deleted (undelete restores them)",
        ),
        versions_path(
            "undelete/{*path}",
            "The versions to undelete.",
            undelete,
            "Restores deleted versions",
        ),
    ]
}

pub(super) fn destroy_path() -> PathSpec<Versioned> {
    versions_path(
        "destroy/{*path}",
        "The versions to destroy.",
        destroy,
        "Removes versions' data for good",
    )
}

fn versions_path(
    pattern: &str,
    versions: &'static str,
    handler: impl for<'a> vault_plugin_sdk::backend::framework::HandlerFn<
        'a,
        Versioned,
        Option<Response>,
    >,
    synopsis: &'static str,
) -> PathSpec<Versioned> {
    PathSpec::new(pattern)
        .field(key_field())
        .field(FieldSchema::new(
            "versions",
            FieldType::CommaIntSlice,
            versions,
        ))
        .operation(Operation::Update, Guarded(handler))
        .help(
            synopsis,
            "Give the version numbers in `versions`: a list or \"1,2\".",
        )
}

async fn delete(
    backend: &Versioned,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    change(backend, fields, Change::Delete).await
}

async fn undelete(
    backend: &Versioned,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    change(backend, fields, Change::Undelete).await
}

async fn destroy(
    backend: &Versioned,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    change(backend, fields, Change::Destroy).await
}

async fn change(
    backend: &Versioned,
    fields: &FieldData<'_>,
    change: Change,
) -> Result<Option<Response>, Error> {
    let key = fields.get_string("path");
    // Go's `uint64(v)`: negative numbers wrap.
    #[allow(clippy::cast_sign_loss)]
    let numbers: Vec<u64> = fields
        .get_int_slice("versions")
        .into_iter()
        .map(|n| n as u64)
        .collect();
    if numbers.is_empty() {
        // The Go plugin's two spellings.
        return Ok(Some(Response::error(match change {
            Change::Destroy => "no version number provided",
            Change::Delete | Change::Undelete => "No version number provided",
        })));
    }
    let config = match change {
        Change::Undelete => Some(backend.config().await?),
        Change::Delete | Change::Destroy => None,
    };
    let _lock = backend.write_lock(&key).await;
    let Some(mut meta) = backend.key_metadata(&key).await? else {
        return Ok(None);
    };
    let key_settings = meta.clone();
    for number in &numbers {
        let Some(vm) = meta.versions.get_mut(number) else {
            continue;
        };
        if vm.destroyed {
            continue;
        }
        match change {
            Change::Delete => {
                if !is_deleted(vm) {
                    vm.deletion_time = Some(records::now());
                }
            }
            Change::Undelete => {
                // Rescheduled from now, even when the version was never deleted.
                vm.deletion_time = config.as_ref().and_then(|config| {
                    let disabled =
                        duration_seconds(config.delete_version_after.as_ref()) == DVA_DISABLED;
                    (!disabled)
                        .then(|| deletion_time(&records::now(), config, &key_settings))
                        .flatten()
                });
            }
            Change::Destroy => vm.destroyed = true,
        }
    }
    backend.write_key_metadata(&meta).await?;
    if let Change::Destroy = change {
        // Every number given, known or not, destroyed before or not.
        for number in numbers {
            let at = backend.version_key(&key, number).await?;
            backend.storage().delete(&at).await?;
        }
    }
    Ok(None)
}
