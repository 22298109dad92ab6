//! `metadata/<key>`: a key's versions and settings (read, write, patch, delete of the key and
//! every version), and the list of keys.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use vault_plugin_sdk::backend::framework::{FieldData, FieldSchema, FieldType, PathSpec};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

use super::data::{exists, go_json_kind};
use super::{Guarded, Versioned, custom_metadata, key_field, not_found_empty};
use crate::storage::records::{self, KeyMetadata, duration_seconds, duration_text, time_text};

const MAX_KEYS: usize = 64;
const MAX_KEY_LENGTH: usize = 128;
const MAX_VALUE_LENGTH: usize = 512;
const INVALID: &str = "custom_metadata validation failed";
const CAS_IGNORED: &str = "\"cas_required\" set to false, but is mandated by backend config. \
                           This value will be ignored.";

pub(super) fn path() -> PathSpec<Versioned> {
    PathSpec::new("metadata/{*path}")
        .field(key_field())
        .field(FieldSchema::new(
            "cas_required",
            FieldType::Bool,
            "If true, writes of this key must give the check-and-set parameter.",
        ))
        .field(FieldSchema::new(
            "max_versions",
            FieldType::Int,
            "The number of versions to keep; the mount's when larger.",
        ))
        .field(FieldSchema::new(
            "delete_version_after",
            FieldType::DurationSecond,
            "How long after its creation a version of this key is deleted.",
        ))
        .field(FieldSchema::new(
            "custom_metadata",
            FieldType::Map,
            "Up to 64 string pairs kept with the key (keys up to 128 bytes, values up to 512).",
        ))
        .existence_check(exists)
        .operation(Operation::Read, Guarded(read))
        .operation(Operation::Create, Guarded(write))
        .operation(Operation::Update, Guarded(write))
        .operation(Operation::Patch, Guarded(patch))
        .operation(Operation::Delete, Guarded(delete))
        .operation(Operation::List, Guarded(list))
        .help(
            "The versions and settings of a key; the list of keys",
            "Read a key's versions and settings, change its settings (write replaces the \
             custom metadata, patch merges it), delete the key with every version, or list \
             keys.",
        )
}

async fn read(
    backend: &Versioned,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let Some(meta) = backend.key_metadata(&fields.get_string("path")).await? else {
        return Ok(None);
    };
    let versions: Map<String, Value> = meta
        .versions
        .iter()
        .map(|(number, vm)| {
            let shown = json!({
                "created_time": time_text(vm.created_time.as_ref()),
                "deletion_time": time_text(vm.deletion_time.as_ref()),
                "destroyed": vm.destroyed,
            });
            (number.to_string(), shown)
        })
        .collect();
    Response::from_serialize(&json!({
        "versions": versions,
        "current_version": meta.current_version,
        "oldest_version": meta.oldest_version,
        "created_time": time_text(meta.created_time.as_ref()),
        "updated_time": time_text(meta.updated_time.as_ref()),
        "max_versions": meta.max_versions,
        "cas_required": meta.cas_required,
        "delete_version_after":
            duration_text(duration_seconds(meta.delete_version_after.as_ref())),
        "custom_metadata": custom_metadata(&meta),
    }))
    .map(Some)
}

async fn write(
    backend: &Versioned,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let key = fields.get_string("path");
    if key.is_empty() {
        return Ok(Some(Response::error("missing path")));
    }
    let given = |name: &str| fields.get_ok(name).is_some();
    let (max_ok, cas_ok, dva_ok, custom_ok) = (
        given("max_versions"),
        given("cas_required"),
        given("delete_version_after"),
        given("custom_metadata"),
    );
    if !(max_ok || cas_ok || dva_ok || custom_ok) {
        return Ok(None);
    }
    let config = backend.config().await?;
    let mut custom = HashMap::new();
    if custom_ok {
        custom = match custom_strings(&fields.get_map("custom_metadata"), false) {
            Ok(custom) => custom,
            Err(problem) => return Ok(Some(Response::error(format!("{INVALID}: {problem}")))),
        };
        if let Some(problems) = validate_custom(&custom) {
            return Ok(Some(Response::error(problems)));
        }
    }
    let warning =
        (cas_ok && config.cas_required && !fields.get_bool("cas_required")).then_some(CAS_IGNORED);
    let _lock = backend.write_lock(&key).await;
    let mut meta = match backend.key_metadata(&key).await? {
        Some(meta) => meta,
        None => {
            let now = records::now();
            KeyMetadata {
                key: key.clone(),
                created_time: Some(now),
                updated_time: Some(now),
                ..KeyMetadata::default()
            }
        }
    };
    if max_ok {
        // Go stores `uint32(int)`.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let wrapped = fields.get_int("max_versions") as u32;
        meta.max_versions = wrapped;
    }
    if cas_ok {
        meta.cas_required = fields.get_bool("cas_required");
    }
    if dva_ok {
        meta.delete_version_after = Some(records::seconds(fields.get_int("delete_version_after")));
    }
    if custom_ok {
        meta.custom_metadata = custom;
    }
    backend.write_key_metadata(&meta).await?;
    Ok(warning.map(|warning| Response::default().with_warning(warning)))
}

async fn patch(
    backend: &Versioned,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let key = fields.get_string("path");
    if key.is_empty() {
        return Ok(Some(Response::error("missing path")));
    }
    let custom_patch = fields
        .get_ok("custom_metadata")
        .map(|_| fields.get_map("custom_metadata"));
    if let Some(custom_patch) = &custom_patch {
        // Only what the patch sets is checked, never the merged result.
        let custom = match custom_strings(custom_patch, true) {
            Ok(custom) => custom,
            Err(problem) => return Ok(Some(Response::error(format!("{INVALID}: {problem}")))),
        };
        if let Some(problems) = validate_custom(&custom) {
            return Ok(Some(Response::error(problems)));
        }
    }
    let config = backend.config().await?;
    let _lock = backend.write_lock(&key).await;
    let Some(mut meta) = backend.key_metadata(&key).await? else {
        return not_found_empty(request);
    };
    let warning = (fields.get_ok("cas_required").is_some()
        && config.cas_required
        && !fields.get_bool("cas_required"))
    .then_some(CAS_IGNORED);
    // The Go plugin merges a JSON image of the metadata: a `null` field resets it.
    if request.data.contains_key("max_versions") {
        let max = if request.data["max_versions"].is_null() {
            0
        } else {
            fields.get_int("max_versions")
        };
        meta.max_versions = u32::try_from(max).map_err(|_| {
            Error::other(format!(
                "json: cannot unmarshal number {max} into Go struct field \
                 KeyMetadata.max_versions of type uint32"
            ))
        })?;
    }
    if request.data.contains_key("cas_required") {
        meta.cas_required = fields.get_bool("cas_required");
    }
    if fields.get_ok("delete_version_after").is_some() {
        meta.delete_version_after = Some(records::seconds(fields.get_int("delete_version_after")));
    }
    if let Some(raw) = request.data.get("custom_metadata") {
        match custom_patch.filter(|_| !raw.is_null()) {
            None => meta.custom_metadata.clear(),
            Some(patch) => {
                for (name, value) in patch {
                    match value {
                        Value::Null => {
                            meta.custom_metadata.remove(&name);
                        }
                        Value::String(text) => {
                            meta.custom_metadata.insert(name, text);
                        }
                        other => {
                            return Err(Error::other(format!(
                                "json: cannot unmarshal {} into Go struct field \
                                 KeyMetadata.custom_metadata of type string",
                                go_json_kind(&other)
                            )));
                        }
                    }
                }
            }
        }
    }
    backend.write_key_metadata(&meta).await?;
    Ok(warning.map(|warning| Response::default().with_warning(warning)))
}

async fn delete(
    backend: &Versioned,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let key = fields.get_string("path");
    let _lock = backend.write_lock(&key).await;
    let Some(meta) = backend.key_metadata(&key).await? else {
        return Ok(None);
    };
    for number in meta.versions.keys() {
        let at = backend.version_key(&key, *number).await?;
        backend.storage().delete(&at).await?;
    }
    let names = backend.names().await?;
    backend.storage().delete(&names.storage_key(&key)).await?;
    Ok(None)
}

async fn list(
    backend: &Versioned,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let names = backend.names().await?;
    let keys = names
        .list(backend.storage(), &fields.get_string("path"))
        .await?;
    Ok(Some(Response::list(keys)))
}

/// The custom metadata as strings, weakly decoded as mapstructure does (numbers keep their
/// text, booleans are `1`/`0`, `null` is `""`); `skip_nulls` drops `null` entries (a patch's
/// removals). A nested object or list is mapstructure's error.
fn custom_strings(
    raw: &Map<String, Value>,
    skip_nulls: bool,
) -> Result<HashMap<String, String>, String> {
    let mut custom = HashMap::new();
    for (name, value) in raw {
        let text = match value {
            Value::Null if skip_nulls => continue,
            Value::Null => String::new(),
            Value::String(text) => text.clone(),
            Value::Bool(flag) => if *flag { "1" } else { "0" }.to_owned(),
            Value::Number(number) => number.to_string(),
            Value::Array(_) => {
                return Err(format!(
                    "'' expected type 'string', got unconvertible type '[]interface {{}}', \
                     value: '{}'",
                    go_value(value)
                ));
            }
            Value::Object(_) => {
                return Err(format!(
                    "'' expected type 'string', got unconvertible type \
                     'map[string]interface {{}}', value: '{}'",
                    go_value(value)
                ));
            }
        };
        custom.insert(name.clone(), text);
    }
    Ok(custom)
}

/// The limits on custom metadata, every problem found, in go-multierror's form.
fn validate_custom(custom: &HashMap<String, String>) -> Option<String> {
    let mut problems = Vec::new();
    if custom.len() > MAX_KEYS {
        problems.push(format!(
            "{INVALID}: payload must contain at most {MAX_KEYS} keys, provided {}",
            custom.len()
        ));
    } else {
        let mut entries: Vec<_> = custom.iter().collect();
        entries.sort();
        for (key, value) in entries {
            let quoted = go_quote(key);
            if key.is_empty() || key.len() > MAX_KEY_LENGTH {
                problems.push(format!(
                    "{INVALID}: length of key {quoted} is {} but must be 0 < len(key) <= \
                     {MAX_KEY_LENGTH}",
                    key.len()
                ));
            }
            if value.is_empty() || value.len() > MAX_VALUE_LENGTH {
                problems.push(format!(
                    "{INVALID}: length of value for key {quoted} is {} but must be 0 < \
                     len(value) <= {MAX_VALUE_LENGTH}",
                    value.len()
                ));
            }
            if !printable(key) {
                problems.push(format!(
                    "{INVALID}: key {quoted} ({key}) contains unprintable characters"
                ));
            }
            if !printable(value) {
                problems.push(format!(
                    "{INVALID}: value for key {quoted} contains unprintable characters"
                ));
            }
        }
    }
    match problems.len() {
        0 => None,
        1 => Some(format!("1 error occurred:\n\t* {}\n\n", problems[0])),
        n => Some(format!(
            "{n} errors occurred:\n\t* {}\n\n",
            problems.join("\n\t* ")
        )),
    }
}

/// Go's `unicode.IsPrint` for every character: graphic characters and the ASCII space.
fn printable(text: &str) -> bool {
    text.chars()
        .all(|c| c == ' ' || !(c.is_control() || c.is_whitespace() || is_format(c)))
}

/// Unicode's format characters (Cf) and the other unprintables Go excludes that Rust's
/// predicates do not cover.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
        | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}' | '\u{E000}'..='\u{F8FF}')
}

/// Go's `%q` of a string: double quotes, with escapes for quotes, backslashes and
/// unprintable characters.
fn go_quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\u{b}' => quoted.push_str("\\v"),
            c if c == ' ' || printable(c.encode_utf8(&mut [0; 4])) => quoted.push(c),
            c if (c as u32) < 0x80 => quoted.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) <= 0xFFFF => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    quoted.push('"');
    quoted
}

/// Go's `%v` of a decoded JSON value, as mapstructure's errors print it.
fn go_value(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(key, item)| format!("{key}:{}", go_value(item)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_metadata_limits_name_every_problem() {
        let mut custom = HashMap::new();
        custom.insert("k".repeat(129), "v".to_owned());
        custom.insert("tab".to_owned(), "a\tb".to_owned());
        let problems = validate_custom(&custom).unwrap_or_default();
        assert!(
            problems.starts_with("2 errors occurred:\n\t* "),
            "{problems}"
        );
        assert!(problems.contains("is 129 but must be 0 < len(key) <= 128"));
        assert!(problems.contains("value for key \"tab\" contains unprintable characters"));
        let many: HashMap<_, _> = (0..65).map(|i| (i.to_string(), "v".to_owned())).collect();
        assert_eq!(
            validate_custom(&many).unwrap_or_default(),
            "1 error occurred:\n\t* custom_metadata validation failed: payload must contain \
             at most 64 keys, provided 65\n\n"
        );
    }

    #[test]
    fn custom_values_decode_weakly() {
        let raw = json!({"n": 1, "b": true, "z": null, "s": "x"});
        let Value::Object(raw) = raw else { return };
        let custom = custom_strings(&raw, false).unwrap_or_default();
        assert_eq!(custom["n"], "1");
        assert_eq!(custom["b"], "1");
        assert_eq!(custom["z"], "");
        assert!(
            !custom_strings(&raw, true)
                .unwrap_or_default()
                .contains_key("z")
        );
        let Value::Object(nested) = json!({"o": {"a": 1}}) else {
            return;
        };
        assert_eq!(
            custom_strings(&nested, false).err().unwrap_or_default(),
            "'' expected type 'string', got unconvertible type 'map[string]interface {}', \
             value: 'map[a:1]'"
        );
    }
}
