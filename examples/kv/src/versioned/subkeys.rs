//! `subkeys/<key>`: the shape of a version's data, values replaced by `null`.

use serde_json::{Map, Value};
use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

use super::{Guarded, Versioned, key_field};

pub(super) fn path() -> PathSpec<Versioned> {
    PathSpec::new("subkeys/{*path}")
        .field(key_field())
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
        .operation(Operation::Read, Guarded(read))
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
    let depth = fields.get_int("depth");
    backend
        .read_version(request, fields, "subkeys", |mut data| {
            // Stored `null` (a write of `"data": null`) stays `null`: Go's `json.Unmarshal`
            // sets the map it was given to nil.
            if let Value::Object(map) = &mut data {
                strip(map, 1, depth);
            }
            Ok(data)
        })
        .await
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
