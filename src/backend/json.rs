//! JSON conversions whose errors never quote the value: request data, internal data and stored
//! entries may hold secrets.

use serde_json::{Map, Value};

use super::error::Error;

/// `value` as a JSON object: the data of a response, a lease's or a token's internal data.
/// `what` names it in the error, which never quotes the value.
pub(crate) fn to_object<T: serde::Serialize + ?Sized>(
    value: &T,
    what: &str,
) -> Result<Map<String, Value>, Error> {
    match serde_json::to_value(value) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(Error::other(format!(
            "{what} must be a JSON object, not {}",
            json_kind(&other)
        ))),
        Err(error) => Err(Error::other(format!(
            "{what} cannot be encoded as JSON: {}",
            json_error_category(&error)
        ))),
    }
}

/// `object` read as a `T`; `what` names it in the error, which never quotes the value.
pub(crate) fn from_object<T: serde::de::DeserializeOwned>(
    object: &Map<String, Value>,
    what: &str,
) -> Result<T, Error> {
    serde_json::from_value(Value::Object(object.clone())).map_err(|error| {
        Error::other(format!(
            "{what} does not decode: {}",
            json_error_category(&error)
        ))
    })
}

/// A serde_json error's category in words, without its message: that quotes what it found,
/// and what it found may be a secret.
pub(crate) fn json_error_category(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "an I/O error",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "JSON of another shape",
        serde_json::error::Category::Eof => "JSON that ends too early",
    }
}

/// The JSON kind of `value` in words, for error texts that must not quote it.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
