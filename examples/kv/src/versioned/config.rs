//! `config`: the mount's defaults for every key (`max_versions`, `cas_required`,
//! `delete_version_after`).

use serde_json::json;
use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

use super::{DVA_DISABLED, Guarded, Versioned};
use crate::storage::records::{self, duration_seconds, duration_text};

pub(super) fn path() -> PathSpec<Versioned> {
    PathSpec::new("config")
        .field(FieldSchema::new(
            "max_versions",
            FieldType::Int,
            "The number of versions to keep for each key; 0 keeps 10. A key keeps the larger \
             of its own and this.",
        ))
        .field(FieldSchema::new(
            "cas_required",
            FieldType::Bool,
            "If true, every write of data must give the check-and-set parameter.",
        ))
        .field(FieldSchema::new(
            "delete_version_after",
            FieldType::SignedDurationSecond,
            "How long after its creation a version is deleted; 0 clears it, a negative \
             value disables deletion for every key.",
        ))
        .operation(Operation::Read, Guarded(read))
        .operation(Operation::Update, Guarded(write))
        .help(
            "Configures the versioned store's defaults for every key",
            "Read or write max_versions, cas_required and delete_version_after.",
        )
}

async fn read(
    backend: &Versioned,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let config = backend.config().await?;
    Response::from_serialize(&json!({
        "max_versions": config.max_versions,
        "cas_required": config.cas_required,
        "delete_version_after":
            duration_text(duration_seconds(config.delete_version_after.as_ref())),
    }))
    .map(Some)
}

async fn write(
    backend: &Versioned,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let max_versions = fields.get_ok("max_versions");
    let cas_required = fields.get_ok("cas_required");
    let delete_after = fields.get_ok("delete_version_after");
    if max_versions.is_none() && cas_required.is_none() && delete_after.is_none() {
        return Ok(None);
    }
    let mut config = backend.config().await?;
    if max_versions.is_some() {
        // Go stores `uint32(int)`: -1 wraps to 4294967295.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let wrapped = fields.get_int("max_versions") as u32;
        config.max_versions = wrapped;
    }
    if cas_required.is_some() {
        config.cas_required = fields.get_bool("cas_required");
    }
    if delete_after.is_some() {
        let seconds = fields.get_signed_duration_seconds("delete_version_after");
        config.delete_version_after = match seconds {
            s if s < 0 => Some(records::seconds(DVA_DISABLED)),
            0 => None,
            s => Some(records::seconds(s)),
        };
    }
    backend.write_config(config).await?;
    Ok(None)
}
