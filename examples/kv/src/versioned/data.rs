//! `data/<key>`: read a version, write a new one (with check-and-set), patch the current one,
//! soft-delete the current one.

use prost::Message as _;
use serde_json::{Map, Value, json};
use vault_plugin_sdk::backend::framework::{
    FieldData, FieldSchema, FieldType, PathSpec, merge_patch,
};
use vault_plugin_sdk::backend::{Error, Operation, Request, Response};

use super::{
    Guarded, Versioned, add_version, deletion_time, is_deleted, key_field, not_found_empty,
    not_found_with, version_answer,
};
use crate::storage::records::{self, Configuration, KeyMetadata, Version};

pub(super) fn path() -> PathSpec<Versioned> {
    PathSpec::new("data/{+path}")
        .field(key_field())
        .field(FieldSchema::new(
            "version",
            FieldType::Int,
            "The version to read; the current one when absent or 0.",
        ))
        .field(FieldSchema::new(
            "options",
            FieldType::Map,
            "Options for writing: \"cas\" (check-and-set) makes the write succeed only if the \
             key's current version is the one given (0: only if the key has no version).",
        ))
        .field(FieldSchema::new(
            "data",
            FieldType::Map,
            "The contents of the secret: a JSON object.",
        ))
        .existence_check(exists)
        .operation(Operation::Read, Guarded(read))
        .operation(Operation::Create, Guarded(write))
        .operation(Operation::Update, Guarded(write))
        .operation(Operation::Patch, Guarded(patch))
        .operation(Operation::Delete, Guarded(delete))
        .help(
            "Write, read, patch and delete data in the versioned store",
            "data/<key> reads the current version (or ?version=N), writes a new version, \
             patches the current version with a JSON merge patch, or deletes the current \
             version (it can be undeleted).",
        )
}

/// Whether the key has metadata: create or update, for the policy check. A node whose
/// storage is read-only (it cannot create the naming policy) answers "no".
pub(super) async fn exists(
    backend: &Versioned,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<bool, Error> {
    match backend.key_metadata(&fields.get_string("path")).await {
        Ok(meta) => Ok(meta.is_some()),
        Err(error) if error.message().contains("cannot write to readonly storage") => Ok(false),
        Err(error) => Err(error),
    }
}

async fn read(
    backend: &Versioned,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.read_version(request, fields, "data", Ok).await
}

async fn write(
    backend: &Versioned,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let key = fields.get_string("path");
    if key.is_empty() {
        return Ok(Some(Response::error("missing path")));
    }
    let config = backend.config().await?;
    // `{"data": null}` is data too: it stores `null`.
    let Some(data) = request.data.get("data").cloned() else {
        return Ok(Some(Response::error("no data provided")));
    };
    let text = serde_json::to_vec(&data).map_err(|error| Error::other(format!("json: {error}")))?;
    let _lock = backend.write_lock(&key).await;
    let meta = backend
        .key_metadata(&key)
        .await?
        .unwrap_or_else(|| KeyMetadata {
            key: key.clone(),
            ..KeyMetadata::default()
        });
    if let Err(refusal) = check_and_set(fields, &config, &meta) {
        return Ok(Some(Response::error(refusal)));
    }
    backend
        .store_new_version(&key, meta, &config, text)
        .await
        .map(Some)
}

async fn patch(
    backend: &Versioned,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let key = fields.get_string("path");
    let Some(patch) = request.data.get("data").cloned() else {
        return Ok(Some(Response::error("no data provided")));
    };
    let _lock = backend.write_lock(&key).await;
    let Some(meta) = backend.key_metadata(&key).await? else {
        return not_found_empty(request);
    };
    let config = backend.config().await?;
    if let Err(refusal) = check_and_set(fields, &config, &meta) {
        return Ok(Some(Response::error(refusal)));
    }
    let current = meta.current_version;
    let Some(vm) = meta.versions.get(&current) else {
        return not_found_empty(request);
    };
    if is_deleted(vm) || vm.destroyed {
        return not_found_with(request, version_answer(current, vm, &meta));
    }
    let version = backend.load_version(&key, current).await?;
    let mut data = decode_data(&version.data)?;
    // The Go SDK's `HandlePatchOperation` refuses a version whose data is `null`, and the
    // json-patch library a patch that is `null`: both are 500s that store nothing.
    if data.is_null() {
        return Err(Error::other("resource does not exist"));
    }
    if patch.is_null() {
        return Err(Error::other("Invalid JSON Patch"));
    }
    merge_patch(&mut data, patch);
    let text = serde_json::to_vec(&data).map_err(|error| Error::other(format!("json: {error}")))?;
    backend
        .store_new_version(&key, meta, &config, text)
        .await
        .map(Some)
}

async fn delete(
    backend: &Versioned,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let key = fields.get_string("path");
    let _lock = backend.write_lock(&key).await;
    let Some(mut meta) = backend.key_metadata(&key).await? else {
        return Ok(None);
    };
    let current = meta.current_version;
    let Some(vm) = meta.versions.get_mut(&current) else {
        return Ok(None);
    };
    if vm.destroyed || is_deleted(vm) {
        return Ok(None);
    }
    vm.deletion_time = Some(records::now());
    backend.write_key_metadata(&meta).await?;
    Ok(None)
}

impl Versioned {
    /// A read of the version `fields` ask for (`version`, else the current one), shared by
    /// `data/` and `subkeys/`: the answer is `{<name>: shown, metadata: …}`, `shown` being
    /// what `show` makes of the version's data. No metadata, or no such version, is a plain
    /// 404; a deleted or destroyed version a raw 404 whose `<name>` is `null`.
    pub(super) async fn read_version(
        &self,
        request: &Request,
        fields: &FieldData<'_>,
        name: &str,
        show: impl FnOnce(Value) -> Result<Value, Error>,
    ) -> Result<Option<Response>, Error> {
        let key = fields.get_string("path");
        let _lock = self.write_lock(&key).await;
        let Some(meta) = self.key_metadata(&key).await? else {
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
        answer.insert(name.to_owned(), Value::Null);
        answer.insert(
            "metadata".to_owned(),
            Value::Object(version_answer(number, vm, &meta)),
        );
        if is_deleted(vm) || vm.destroyed {
            return not_found_with(request, answer);
        }
        let version = self.load_version(&key, number).await?;
        answer.insert(name.to_owned(), show(decode_data(&version.data)?)?);
        Ok(Some(Response::with_data(answer)))
    }

    /// The stored blob of version `number` of `key`; missing is a 500, as with the Go plugin.
    pub(super) async fn load_version(&self, key: &str, number: u64) -> Result<Version, Error> {
        let at = self.version_key(key, number).await?;
        let bytes = self
            .storage()
            .get(&at)
            .await?
            .ok_or_else(|| Error::other("could not find version data"))?;
        records::decode(&at, &bytes)
    }

    /// Stores `text` as version `current + 1` of `key`, adds it to `meta`, writes the
    /// metadata and prunes what falls out of the window; answers the new version's metadata.
    async fn store_new_version(
        &self,
        key: &str,
        mut meta: KeyMetadata,
        config: &Configuration,
        text: Vec<u8>,
    ) -> Result<Response, Error> {
        let created = records::now();
        let deletion = deletion_time(&created, config, &meta);
        let version = Version {
            data: text,
            created_time: Some(created),
            deletion_time: deletion,
        };
        let at = self.version_key(key, meta.current_version + 1).await?;
        self.storage().put(&at, version.encode_to_vec()).await?;
        let pruned = add_version(&mut meta, config, created, deletion);
        self.write_key_metadata(&meta).await?;
        let current = meta.current_version;
        let vm = meta.versions.get(&current).cloned().unwrap_or_default();
        let mut response = Response::with_data(version_answer(current, &vm, &meta));
        if let Err(error) = self.delete_old_versions(key, pruned).await {
            response = response.with_warning(format!(
                "error occurred when cleaning up old versions, these will be cleaned up on \
                 next write: {}",
                error.message()
            ));
        }
        Ok(response)
    }

    /// Deletes the blobs of `newest` and the versions before it, stopping at the first one
    /// already gone (as the Go plugin does, so blobs beyond a gap stay), oldest first.
    async fn delete_old_versions(&self, key: &str, newest: u64) -> Result<(), Error> {
        let mut doomed = Vec::new();
        for number in (1..=newest).rev() {
            let at = self.version_key(key, number).await?;
            if self.storage().get(&at).await?.is_none() {
                break;
            }
            doomed.push(at);
        }
        for at in doomed.iter().rev() {
            self.storage().delete(at).await?;
        }
        Ok(())
    }
}

/// A version's data as the Go plugin decodes it into a map: numbers through float64; `null`
/// stays `null`; anything but an object or `null` is Go's decoding error.
pub(super) fn decode_data(text: &[u8]) -> Result<Value, Error> {
    let value: Value = serde_json::from_slice(text).map_err(|error| {
        // Not serde's text: it may quote the stored secret.
        Error::other(format!(
            "the stored version does not decode as JSON (line {}, column {})",
            error.line(),
            error.column()
        ))
    })?;
    match value {
        Value::Object(_) | Value::Null => Ok(as_go_floats(value)),
        other => Err(Error::other(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            go_json_kind(&other)
        ))),
    }
}

/// The JSON kind Go's decoder names in "cannot unmarshal <kind>".
pub(super) fn go_json_kind(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// Numbers as a Go `interface{}` holds them after `json.Unmarshal`: float64. An integral
/// value is written as Go writes it (no fraction, no exponent below 1e21).
pub(super) fn as_go_floats(value: Value) -> Value {
    match value {
        Value::Number(number) => {
            let Some(float) = number.as_f64() else {
                return Value::Number(number);
            };
            go_float(float)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(as_go_floats).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, item)| (key, as_go_floats(item)))
                .collect(),
        ),
        other => other,
    }
}

/// A float64 as JSON: integral values as integers where they fit, others as floats.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn go_float(float: f64) -> Value {
    if float.fract() == 0.0 {
        if (0.0..18_446_744_073_709_551_616.0).contains(&float) {
            return json!(float as u64);
        }
        if (-9_223_372_036_854_775_808.0..0.0).contains(&float) {
            return json!(float as i64);
        }
    }
    json!(float)
}

/// The check-and-set rule (`validateCheckAndSetOption`): `options.cas`, when given (even as
/// `null`), must be the key's current version; without it, the mount or the key may
/// require one.
fn check_and_set(
    fields: &FieldData<'_>,
    config: &Configuration,
    meta: &KeyMetadata,
) -> Result<(), &'static str> {
    let options = fields.get_map("options");
    match options.get("cas") {
        Some(raw) => {
            let cas = weak_int(raw).ok_or("error parsing check-and-set parameter")?;
            // Go compares `uint64(cas)`: a negative cas wraps.
            #[allow(clippy::cast_sign_loss)]
            let wrapped = cas as u64;
            if wrapped == meta.current_version {
                Ok(())
            } else {
                Err("check-and-set parameter did not match the current version")
            }
        }
        None if config.cas_required || meta.cas_required => {
            Err("check-and-set parameter required for this call")
        }
        None => Ok(()),
    }
}

/// mapstructure's weak decode of a request value into a Go `int`: numbers are truncated (an
/// external plugin receives JSON numbers as float64), strings parse with Go's base prefixes,
/// `""` and `null` are 0, booleans 0 or 1.
fn weak_int(raw: &Value) -> Option<i64> {
    match raw {
        Value::Null => Some(0),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(number) => number.as_i64().or_else(|| {
            let float = number.as_f64()?;
            // Go converts out-of-range floats to the minimum int64; keep to what is exact.
            #[allow(clippy::cast_possible_truncation)]
            (float.is_finite() && float.abs() < 9.2e18).then(|| float.trunc() as i64)
        }),
        Value::String(text) if text.is_empty() => Some(0),
        Value::String(text) => parse_go_int(text),
        _ => None,
    }
}

/// `strconv.ParseInt(text, 0, 64)`: a sign, then `0x`, `0o`, `0b` or a leading `0` (octal)
/// for the base, `_` between digits only with a prefix.
fn parse_go_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body, prefixed) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest.to_owned(), true)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest.to_owned(), true)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest.to_owned(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_owned(), true)
    } else {
        (10, lower.clone(), false)
    };
    let body = if prefixed {
        if body.starts_with('_') && radix != 8 || body.ends_with('_') || body.contains("__") {
            return None;
        }
        body.trim_start_matches('_').replace('_', "")
    } else {
        body
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(&body, radix).ok()?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_and_set_values_decode_as_mapstructure_decodes_them() {
        for (raw, expected) in [
            (json!(null), Some(0)),
            (json!(""), Some(0)),
            (json!(true), Some(1)),
            (json!(3), Some(3)),
            (json!("7"), Some(7)),
            (json!("0x10"), Some(16)),
            (json!("010"), Some(8)),
            (json!("-2"), Some(-2)),
            (json!(1.5), Some(1)),
            (json!(-2.9), Some(-2)),
            (json!("x"), None),
            (json!([1]), None),
        ] {
            assert_eq!(weak_int(&raw), expected, "{raw}");
        }
    }

    #[test]
    fn numbers_pass_through_float64_as_in_go() {
        let value = as_go_floats(json!({"a": 1.0, "b": 12345678901234567890u64, "c": [0.5]}));
        assert_eq!(
            value,
            json!({"a": 1, "b": 12345678901234567168u64, "c": [0.5]})
        );
    }

    #[test]
    fn stored_data_that_is_not_an_object_is_go_s_decoding_error() {
        assert_eq!(decode_data(b"null").ok(), Some(Value::Null));
        let error = decode_data(b"[]").err().map(|e| e.message().to_owned());
        assert_eq!(
            error.as_deref(),
            Some("json: cannot unmarshal array into Go value of type map[string]interface {}")
        );
    }
}
