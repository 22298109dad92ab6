//! JSON merge patch (RFC 7396), what a `patch` operation applies (Go's
//! `framework.HandlePatchOperation`, through the json-patch library's `MergePatch`).

use serde_json::{Map, Value};

/// Applies `patch` to `target` as RFC 7396 says: an object patch merges member by member,
/// `null` removing a member, objects merging recursively; any other patch replaces the target
/// whole. Members a patch adds keep no `null`s, at any depth.
///
/// ```
/// use serde_json::json;
/// use vault_plugin_sdk::backend::framework::merge_patch;
///
/// let mut secret = json!({"user": "app", "tls": {"cert": "a", "key": "b"}});
/// merge_patch(&mut secret, json!({"user": null, "tls": {"key": "c"}, "ttl": 60}));
/// assert_eq!(secret, json!({"tls": {"cert": "a", "key": "c"}, "ttl": 60}));
/// ```
pub fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(members) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(object) = target else {
        unreachable!("made an object above")
    };
    for (name, value) in members {
        if value.is_null() {
            object.remove(&name);
        } else {
            merge_patch(object.entry(name).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The examples of RFC 7396, appendix A.
    #[test]
    fn the_rfc_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            let shown = format!("{target} + {patch}");
            merge_patch(&mut target, patch);
            assert_eq!(target, expected, "{shown}");
        }
    }
}
