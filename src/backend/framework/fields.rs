//! Field schemas and the conversions of the Go framework's `FieldData`, which decodes with
//! mapstructure's "weak" rules: strings, numbers and booleans convert into one another.

use serde_json::{Map, Value};

use super::pattern::Captures;

/// The type of a field, as the Go framework names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    Int,
    Bool,
}

impl FieldType {
    /// The OpenAPI type name.
    pub fn openapi_type(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int => "integer",
            Self::Bool => "boolean",
        }
    }
}

/// One field a path accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSchema {
    pub name: &'static str,
    pub kind: FieldType,
    pub description: &'static str,
    pub required: bool,
}

impl FieldSchema {
    pub const fn new(name: &'static str, kind: FieldType, description: &'static str) -> Self {
        Self {
            name,
            kind,
            description,
            required: false,
        }
    }

    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// The request's fields: body and query values, overridden by the values captured from the
/// path, read through the path's schemas. Borrows the request's data: a request's values (up
/// to the server's 32 MiB request limit) are never copied to be looked at.
#[derive(Debug)]
pub struct FieldData<'a> {
    data: &'a Map<String, Value>,
    /// Captured from the path; these win over `data`.
    captures: Vec<(String, Value)>,
    schema: &'a [FieldSchema],
}

impl<'a> FieldData<'a> {
    /// Reads `data` with the path's `captures` on top (the path wins) and returns the names
    /// whose body value a capture replaced, sorted.
    pub fn new(
        schema: &'a [FieldSchema],
        data: &'a Map<String, Value>,
        captures: Captures,
    ) -> (Self, Vec<String>) {
        // As in Go, a JSON null in the body does not count as a value.
        let mut replaced: Vec<String> = captures
            .iter()
            .filter(|(name, _)| data.get(name).is_some_and(|v| !v.is_null()))
            .map(|(name, _)| name.clone())
            .collect();
        replaced.sort_unstable();
        let captures = captures
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect();
        let fields = Self {
            data,
            captures,
            schema,
        };
        (fields, replaced)
    }

    /// The raw value of a field: the path's capture, else the body's.
    fn raw(&self, name: &str) -> Option<&Value> {
        self.captures
            .iter()
            .find(|(captured, _)| captured == name)
            .map(|(_, value)| value)
            .or_else(|| self.data.get(name))
    }

    /// Checks that every supplied field converts to its schema's type.
    pub fn validate(&self) -> Result<(), String> {
        for schema in self.schema {
            if let Some(raw) = self.raw(schema.name) {
                convert(schema.kind, raw).map_err(|problem| {
                    format!(
                        "error converting input for field {:?}: {problem}",
                        schema.name
                    )
                })?;
            }
        }
        Ok(())
    }

    /// The converted value of a field, when the request supplied one.
    pub fn get_ok(&self, name: &str) -> Option<Value> {
        let schema = self.schema.iter().find(|s| s.name == name)?;
        convert(schema.kind, self.raw(name)?).ok()
    }

    /// A string field, `""` when absent.
    pub fn get_string(&self, name: &str) -> String {
        match self.get_ok(name) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        }
    }

    /// An integer field, 0 when absent.
    pub fn get_int(&self, name: &str) -> i64 {
        self.get_ok(name).and_then(|v| v.as_i64()).unwrap_or(0)
    }

    /// True when the request supplied the field (body, query or path).
    pub fn is_present(&self, name: &str) -> bool {
        self.raw(name).is_some_and(|v| !v.is_null())
    }
}

/// The Go type a JSON value decodes to, as mapstructure names it in errors.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "json.Number",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Converts a JSON value to a field type with mapstructure's weak rules, and its error texts
/// as OpenBao's SDK (go-viper/mapstructure v2) words them: the field's name inside mapstructure
/// is empty, hence the leading `''`.
fn convert(kind: FieldType, raw: &Value) -> Result<Value, String> {
    let unconvertible = || {
        Err(format!(
            "'' expected type '{}', got unconvertible type '{}'",
            kind.go_name(),
            go_type(raw)
        ))
    };
    match (kind, raw) {
        (_, Value::Null) => Ok(match kind {
            FieldType::String => Value::String(String::new()),
            FieldType::Int => Value::from(0),
            FieldType::Bool => Value::Bool(false),
        }),
        (FieldType::String, Value::String(s)) => Ok(Value::String(s.clone())),
        (FieldType::String, Value::Bool(b)) => Ok(Value::String(if *b { "1" } else { "0" }.into())),
        (FieldType::String, Value::Number(n)) => Ok(Value::String(go_number(n))),
        (FieldType::Int, Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Value::from(i)),
            // Go truncates a float towards zero when decoding it into an int.
            (None, Some(f)) if f.is_finite() && f.abs() < 9.2e18 => {
                Ok(Value::from(f.trunc() as i64))
            }
            _ => Err(format!("cannot parse '{n}' as int: value out of range")),
        },
        (FieldType::Int, Value::String(s)) => parse_go_int(s).map(Value::from),
        (FieldType::Int, Value::Bool(b)) => Ok(Value::from(i64::from(*b))),
        (FieldType::Bool, Value::Bool(b)) => Ok(Value::Bool(*b)),
        (FieldType::Bool, Value::Number(n)) => Ok(Value::Bool(n.as_f64() != Some(0.0))),
        (FieldType::Bool, Value::String(s)) => parse_go_bool(s).map(Value::Bool),
        _ => unconvertible(),
    }
}

/// A number as Go's `strconv.FormatFloat(f, 'f', -1, 64)` prints it (what a weak decode of a
/// JSON number into a string gives).
fn go_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    n.as_f64().map(|f| f.to_string()).unwrap_or_default()
}

/// `strconv.ParseInt(s, 0, 0)` as mapstructure uses it: an empty string is 0, and a `0x`,
/// `0o`, `0b` or leading `0` prefix picks the base.
fn parse_go_int(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    let invalid = || "'' cannot parse value as 'int': strconv.ParseInt: invalid syntax".to_owned();
    let (negative, digits) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = digits.replace('_', "");
    let (radix, body) = if let Some(rest) = digits.strip_prefix("0x").or(digits.strip_prefix("0X"))
    {
        (16, rest.to_owned())
    } else if let Some(rest) = digits.strip_prefix("0b").or(digits.strip_prefix("0B")) {
        (2, rest.to_owned())
    } else if let Some(rest) = digits.strip_prefix("0o").or(digits.strip_prefix("0O")) {
        (8, rest.to_owned())
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, digits[1..].to_owned())
    } else {
        (10, digits)
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return Err(invalid());
    }
    let magnitude = i128::from_str_radix(&body, radix).map_err(|_| invalid())?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).map_err(|_| {
        "'' cannot parse value as 'int': strconv.ParseInt: value out of range".to_owned()
    })
}

/// `strconv.ParseBool`, with mapstructure's empty string meaning false.
fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        _ => Err("'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    const SCHEMA: [FieldSchema; 3] = [
        FieldSchema::new("value", FieldType::String, ""),
        FieldSchema::new("version", FieldType::Int, ""),
        FieldSchema::new("flag", FieldType::Bool, ""),
    ];

    #[test]
    fn weak_conversions_follow_mapstructure() {
        let body = data(json!({"value": 12.5, "version": "12", "flag": "true"}));
        let (fields, _) = FieldData::new(&SCHEMA, &body, vec![]);
        assert!(fields.validate().is_ok());
        assert_eq!(fields.get_string("value"), "12.5");
        assert_eq!(fields.get_int("version"), 12);
        assert_eq!(fields.get_ok("flag"), Some(Value::Bool(true)));

        let body = data(json!({"value": true, "version": 7.9, "flag": 0}));
        let (fields, _) = FieldData::new(&SCHEMA, &body, vec![]);
        assert_eq!(fields.get_string("value"), "1");
        assert_eq!(fields.get_int("version"), 7);
        assert_eq!(fields.get_ok("flag"), Some(Value::Bool(false)));
    }

    #[test]
    fn absent_fields_have_zero_values() {
        let empty = Map::new();
        let (fields, _) = FieldData::new(&SCHEMA, &empty, vec![]);
        assert_eq!(fields.get_string("value"), "");
        assert_eq!(fields.get_int("version"), 0);
        assert!(!fields.is_present("value"));
    }

    #[test]
    fn unconvertible_values_fail_validation_with_the_field_named() {
        for (body, needle) in [
            (json!({"version": "abc"}), r#"field "version""#),
            (json!({"version": "12abc"}), "invalid syntax"),
            (json!({"version": "99999999999999999999"}), "out of range"),
            (
                json!({"value": {"a": 1}}),
                "'' expected type 'string', got unconvertible type 'map[string]interface {}'",
            ),
            (
                json!({"value": [1, 2]}),
                "unconvertible type '[]interface {}'",
            ),
            (json!({"flag": "maybe"}), "ParseBool"),
        ] {
            let body_data = data(body.clone());
            let (fields, _) = FieldData::new(&SCHEMA, &body_data, vec![]);
            let error = fields.validate().expect_err(&body.to_string());
            assert!(error.contains(needle), "{error} lacks {needle}");
        }
    }

    #[test]
    fn go_integer_prefixes_and_signs() {
        assert_eq!(parse_go_int("0x1f"), Ok(31));
        assert_eq!(parse_go_int("-010"), Ok(-8));
        assert_eq!(parse_go_int("0b101"), Ok(5));
        assert_eq!(parse_go_int("1_000"), Ok(1000));
        assert_eq!(parse_go_int(""), Ok(0));
        assert!(parse_go_int("-").is_err());
        assert!(parse_go_int("--1").is_err());
    }

    #[test]
    fn captures_override_the_body_and_are_reported_as_replaced() {
        let key_schema = [FieldSchema::new("key", FieldType::String, "")];
        let body = data(json!({"key": "from-body"}));
        let (fields, replaced) =
            FieldData::new(&key_schema, &body, vec![("key".into(), "from-path".into())]);
        assert_eq!(fields.get_string("key"), "from-path");
        assert_eq!(replaced, ["key"]);

        let (_, replaced) = FieldData::new(
            &[FieldSchema::new("key", FieldType::String, "")],
            &data(json!({"key": null})),
            vec![("key".into(), "from-path".into())],
        );
        assert!(replaced.is_empty());
    }
}
