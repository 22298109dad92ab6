//! `subkeys/<key>`: the shape of a version's data, values replaced by `null`.

use serde_json::{Map, Value};
use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

use super::{Versioned, data::decode_data, is_deleted, not_found_with, version_answer};

pub(super) fn path() -> PathSpec<Versioned> {
    PathSpec::new("subkeys/{*path}")
        .field(FieldSchema::new(
            "path",
            FieldType::String,
            "Location of the secret.",
        ))
        .field(FieldSchema::new(
            "version",
            FieldType::Int,
            "The version to read; the current one when absent or 0.",
        ))
        .field(FieldSchema::new(
            "depth",
            FieldType::Int,
            "How deep to descend; 0 for no limit. Deeper objects show as null.",
        ))
        .operation(Operation::Read, read)
        .help(
            "The keys of a version's data without their values",
            "Every leaf (a value that is not an object, or an empty object) reads as null.",
        )
}

async fn read(
    backend: &Versioned,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    if let Some(refusal) = backend.upgrade_refusal().await {
        return Ok(Some(refusal));
    }
    let key = fields.get_string("path");
    let depth = fields.get_int("depth");
    let _lock = backend.write_lock(&key).await;
    let Some(meta) = backend.key_metadata(&key).await? else {
        return Ok(None);
    };
    let asked = fields.get_int("version");
    let number = if asked > 0 {
        asked.unsigned_abs()
    } else {
        meta.current_version
    };
    let Some(vm) = meta.versions.get(&number) else {
        return Ok(None);
    };
    let mut answer = Map::new();
    answer.insert("subkeys".to_owned(), Value::Null);
    answer.insert(
        "metadata".to_owned(),
        Value::Object(version_answer(number, vm, &meta)),
    );
    if is_deleted(vm) || vm.destroyed {
        return not_found_with(request, answer);
    }
    let version = backend.load_version(&key, number).await?;
    let mut data = decode_data(&version.data)?;
    // Stored `null` (a write of `"data": null`) stays `null`: Go's `json.Unmarshal` sets the
    // map it was given to nil.
    if let Value::Object(map) = &mut data {
        strip(&mut *map, 1, depth);
    }
    answer.insert("subkeys".to_owned(), data);
    Ok(Some(Response::with_data(answer)))
}

/// Replaces every leaf under `map` (at `depth`) with `null`, descending while `max` allows.
fn strip(map: &mut Map<String, Value>, depth: i64, max: i64) {
    for value in map.values_mut() {
        match value {
            Value::Object(inner) if !inner.is_empty() && (max == 0 || depth < max) => {
                strip(inner, depth + 1, max);
            }
            other => *other = Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn depth_limits_the_shape() {
        let data = json!({"foo": {"bar": {"baz": 1}, "e": {}}, "list": [1]});
        for (depth, expected) in [
            (
                0,
                json!({"foo": {"bar": {"baz": null}, "e": null}, "list": null}),
            ),
            (1, json!({"foo": null, "list": null})),
            (2, json!({"foo": {"bar": null, "e": null}, "list": null})),
            (-1, json!({"foo": null, "list": null})),
        ] {
            let Value::Object(mut map) = data.clone() else {
                return;
            };
            strip(&mut map, 1, depth);
            assert_eq!(Value::Object(map), expected, "depth {depth}");
        }
    }
}
