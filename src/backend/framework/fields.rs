//! Field schemas and the conversions of the Go framework's `FieldData`, which decodes with
//! mapstructure's "weak" rules: strings, numbers and booleans convert into one another.
//!
//! Every conversion keeps Go's error text, because the user reads it in the 400 "Field
//! validation failed: …". A Go plugin decodes the request's JSON numbers to `float64`, so that
//! is the type errors name for a number.

mod gotime;

pub use gotime::{format_time, parse_go_duration};

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::pattern::Captures;
use gotime::{UnixTime, go_quote};

/// The type of a field, as the Go framework names it (`framework.Type…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    /// Any scalar as text: numbers in decimal, booleans as `"1"`/`"0"`.
    String,
    /// A 64-bit integer: numbers (truncated), numeric strings (Go's `0x`/`0o`/`0b` prefixes
    /// too) and booleans as 0/1.
    Int,
    /// A boolean: `strconv.ParseBool` strings, numbers (non-zero is true).
    Bool,
    /// A [`FieldType::String`], lower-cased.
    LowerCaseString,
    /// A [`FieldType::String`] that must match `^\w(([\w-.]+)?\w)?$`.
    NameString,
    /// Like [`FieldType::Int`]; Go keeps it apart to declare `int64` (OpenAPI format too).
    Int64,
    /// A 64-bit float: numbers, `strconv.ParseFloat` strings, booleans as 0/1.
    Float,
    /// Whole seconds, not negative: a number, an integer string, `"7d"` or a Go duration
    /// such as `"1h30m"`.
    DurationSecond,
    /// As [`FieldType::DurationSecond`], negatives allowed.
    SignedDurationSecond,
    /// A JSON object.
    Map,
    /// A list of any values; a scalar becomes a list of one.
    Slice,
    /// A list of strings, each trimmed; a scalar becomes a list of one (a comma in a string is
    /// not a separator), `""` the empty list.
    StringSlice,
    /// As [`FieldType::StringSlice`], and a string is split at commas.
    CommaStringSlice,
    /// A list of integers, or a comma-separated string of them.
    CommaIntSlice,
    /// String pairs: an object, or a list of `key=value` strings.
    KVPairs,
    /// HTTP headers: an object of strings or lists of strings, the same as a JSON string
    /// (optionally base64), or a list of `Key:value` strings.
    Header,
    /// An absolute time: RFC 3339 (with or without fraction) or an integer string of Unix
    /// seconds; kept in UTC.
    Time,
}

impl FieldType {
    /// The OpenAPI type name (`type` of the schema).
    pub fn openapi_type(self) -> &'static str {
        self.openapi().kind
    }

    /// The Go framework's name of the type (`FieldType.String()`), as help prints it.
    pub fn go_name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::LowerCaseString => "lowercase string",
            Self::NameString => "name string",
            Self::Int => "int",
            Self::Int64 => "int64",
            Self::Bool => "bool",
            Self::Map => "map",
            Self::KVPairs => "keypair",
            Self::DurationSecond | Self::SignedDurationSecond => "duration (sec)",
            Self::Slice | Self::StringSlice | Self::CommaStringSlice | Self::CommaIntSlice => {
                "slice"
            }
            Self::Header => "header",
            Self::Float => "float",
            Self::Time => "time",
        }
    }

    /// The OpenAPI description of the type, as Go's `convertType` maps it.
    fn openapi(self) -> OpenApiType {
        let plain = |kind| OpenApiType {
            kind,
            format: None,
            pattern: None,
            items: None,
        };
        let formatted = |kind, format| OpenApiType {
            format: Some(format),
            ..plain(kind)
        };
        let list = |items| OpenApiType {
            items: Some(items),
            ..plain("array")
        };
        match self {
            Self::String | Self::Header => plain("string"),
            Self::NameString => OpenApiType {
                pattern: Some(r"\w([\w-.]*\w)?"),
                ..plain("string")
            },
            Self::LowerCaseString => formatted("string", "lowercase"),
            Self::Int => plain("integer"),
            Self::Int64 => formatted("integer", "int64"),
            Self::DurationSecond | Self::SignedDurationSecond => formatted("integer", "seconds"),
            Self::Bool => plain("boolean"),
            Self::Map => formatted("object", "map"),
            Self::KVPairs => formatted("object", "kvpairs"),
            Self::Slice => list("object"),
            Self::StringSlice | Self::CommaStringSlice => list("string"),
            Self::CommaIntSlice => list("integer"),
            Self::Time => formatted("string", "date-time"),
            Self::Float => formatted("number", "float"),
        }
    }
}

/// What Go's `convertType` gives for a field type.
struct OpenApiType {
    kind: &'static str,
    format: Option<&'static str>,
    pattern: Option<&'static str>,
    /// The `type` of the items, for arrays.
    items: Option<&'static str>,
}

/// One field a path accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSchema {
    /// The key in the request's data (or the name of a path capture).
    pub(crate) name: &'static str,
    /// How the value is converted.
    pub(crate) kind: FieldType,
    /// Shown by help and OpenAPI.
    pub(crate) description: &'static str,
    /// Documented in OpenAPI only: like Go's framework, a request without it is not refused.
    pub(crate) required: bool,
    /// What the typed getters read when the request has no value; converted as a request's
    /// value would be (a default that does not convert reads as the zero value).
    pub(crate) default: Option<Value>,
}

impl FieldSchema {
    /// A field that is optional and has no default.
    pub const fn new(name: &'static str, kind: FieldType, description: &'static str) -> Self {
        Self {
            name,
            kind,
            description,
            required: false,
            default: None,
        }
    }

    /// Marks the field required (documentation only, see [`FieldSchema::required`]).
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the value an absent field reads as.
    pub fn with_default(mut self, default: Value) -> Self {
        self.default = Some(default);
        self
    }

    /// The OpenAPI schema of the field's value: type, format, pattern, items and default, as
    /// Go's framework writes a request body property (the caller adds the description).
    pub(super) fn openapi_schema(&self) -> Value {
        let openapi = self.kind.openapi();
        let mut schema = Map::new();
        schema.insert("type".into(), Value::from(openapi.kind));
        if let Some(format) = openapi.format {
            schema.insert("format".into(), Value::from(format));
        }
        if let Some(pattern) = openapi.pattern {
            schema.insert("pattern".into(), Value::from(pattern));
        }
        if let Some(items) = openapi.items {
            schema.insert("items".into(), serde_json::json!({ "type": items }));
        }
        // Go's `omitempty` leaves out a nil default only; a false or 0 default is written.
        if let Some(default) = &self.default {
            schema.insert("default".into(), default.clone());
        }
        Value::Object(schema)
    }
}

/// A converted value, typed as Go's `getPrimitive` returns it.
#[derive(Clone, Debug, PartialEq)]
enum Parsed {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Whole seconds of a duration field.
    Seconds(i64),
    Map(Map<String, Value>),
    List(Vec<Value>),
    Strings(Vec<String>),
    Ints(Vec<i64>),
    Pairs(BTreeMap<String, String>),
    Header(BTreeMap<String, Vec<String>>),
    Time(UnixTime),
}

impl Parsed {
    /// The value as JSON, as Go would marshal it into a response.
    fn into_value(self) -> Value {
        match self {
            Self::String(s) => Value::String(s),
            Self::Int(i) | Self::Seconds(i) => Value::from(i),
            // NaN and the infinities have no JSON form.
            Self::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            Self::Bool(b) => Value::Bool(b),
            Self::Map(map) => Value::Object(map),
            Self::List(list) => Value::Array(list),
            Self::Strings(strings) => strings.into_iter().map(Value::String).collect(),
            Self::Ints(ints) => ints.into_iter().map(Value::from).collect(),
            Self::Pairs(pairs) => pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect::<Map<_, _>>()
                .into(),
            Self::Header(header) => header
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().map(Value::String).collect()))
                .collect::<Map<_, _>>()
                .into(),
            Self::Time(time) => Value::String(time.to_rfc3339_nano()),
        }
    }
}

/// The request's fields: body and query values, overridden by the values captured from the
/// path, read through the path's schemas. Borrows the request's data: a request's values (up
/// to the server's 32 MiB request limit) are never copied to be looked at.
///
/// A handler reads only the fields its path declares: every getter ([`FieldData::get_ok`],
/// [`FieldData::is_present`], [`FieldData::get_string`], …) **panics** when asked for a field
/// that has no [`FieldSchema`] on the path, naming the field and the path's pattern, as Go's
/// `FieldData.Get` does. It is a programming error (a typo, or a field declared on another
/// path), and the first test that runs the handler finds it; answering "absent" instead
/// would hide it. A body value the path does not declare is only reported to the client, in
/// the "Endpoint ignored these unrecognized parameters" warning; read it from
/// [`Request::data`](crate::backend::Request::data) if it is wanted anyway.
#[derive(Debug)]
pub struct FieldData<'a> {
    data: &'a Map<String, Value>,
    /// Captured from the path; these win over `data`.
    captures: Vec<(String, Value)>,
    schema: &'a [FieldSchema],
    /// Whose schema it is, for the panic of an undeclared field.
    owner: Owner<'a>,
}

/// What declared a [`FieldData`]'s schema.
#[derive(Clone, Copy, Debug)]
enum Owner<'a> {
    /// A path, by its pattern.
    Path(&'a str),
    /// A secret type, by its name.
    SecretType(&'a str),
    /// A token renewal, which has no schema.
    AuthRenew,
}

impl fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(pattern) => write!(f, "the path {pattern:?}"),
            Self::SecretType(kind) => write!(f, "the secret type {kind:?}"),
            Self::AuthRenew => {
                f.write_str("token renewals (`Router::with_auth_renew`), which have none")
            }
        }
    }
}

impl<'a> FieldData<'a> {
    /// Reads `data` with the path's `captures` on top (the path wins) and returns the names
    /// whose body value a capture replaced, sorted. `pattern` is the path's pattern as written
    /// (what the panic of an undeclared field names); `schema` its fields.
    pub fn new(
        pattern: &'a str,
        schema: &'a [FieldSchema],
        data: &'a Map<String, Value>,
        captures: Captures,
    ) -> (Self, Vec<String>) {
        Self::owned_by(Owner::Path(pattern), schema, data, captures)
    }

    /// The fields of a renew or revoke of a lease of the secret type `kind`: the request's
    /// data read through the type's schema.
    pub(super) fn for_secret_type(
        kind: &'a str,
        schema: &'a [FieldSchema],
        data: &'a Map<String, Value>,
    ) -> Self {
        Self::owned_by(Owner::SecretType(kind), schema, data, Captures::new()).0
    }

    /// The fields of a token renewal: none.
    pub(super) fn for_auth_renew(data: &'a Map<String, Value>) -> Self {
        Self::owned_by(Owner::AuthRenew, &[], data, Captures::new()).0
    }

    fn owned_by(
        owner: Owner<'a>,
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
            owner,
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

    /// The schema of `name`.
    ///
    /// # Panics
    /// If the path does not declare `name` (see [`FieldData`]).
    fn declared(&self, name: &str) -> &FieldSchema {
        match self.schema.iter().find(|s| s.name == name) {
            Some(schema) => schema,
            None => panic!(
                "field {name:?} is not declared: it is not in the fields of {}; declare it \
                 with a FieldSchema or read Request::data",
                self.owner
            ),
        }
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

    /// The converted value of a field when the request supplied one, as JSON (Go's `GetOk`:
    /// no default). A JSON null reads as the type's zero value, except for durations and
    /// times, where it counts as absent.
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]); Go's `GetOk` answers
    /// "absent" there, which hides the mistake.
    pub fn get_ok(&self, name: &str) -> Option<Value> {
        self.supplied(name).map(Parsed::into_value)
    }

    /// The request's converted value of a field, if any.
    fn supplied(&self, name: &str) -> Option<Parsed> {
        let schema = self.declared(name);
        convert(schema.kind, self.raw(name)?).ok().flatten()
    }

    /// Go's `Get`: the request's value, else the schema's default, converted; `None` leaves
    /// the getter to answer the type's zero value.
    fn resolved(&self, name: &str) -> Option<Parsed> {
        let schema = self.declared(name);
        self.supplied(name).or_else(|| {
            let default = schema.default.as_ref()?;
            convert(schema.kind, default).ok().flatten()
        })
    }

    /// True when the request supplied the field (body, query or path).
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn is_present(&self, name: &str) -> bool {
        self.declared(name);
        self.raw(name).is_some_and(|v| !v.is_null())
    }

    /// A string field (also lower-case and name strings), `""` when absent.
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_string(&self, name: &str) -> String {
        match self.resolved(name) {
            Some(Parsed::String(s)) => s,
            _ => String::new(),
        }
    }

    /// An integer field (`Int`, `Int64`, or a duration's seconds), 0 when absent.
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_int(&self, name: &str) -> i64 {
        match self.resolved(name) {
            Some(Parsed::Int(i) | Parsed::Seconds(i)) => i,
            _ => 0,
        }
    }

    /// An `Int64` field, 0 when absent; the same as [`FieldData::get_int`].
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_int64(&self, name: &str) -> i64 {
        self.get_int(name)
    }

    /// A boolean field, false when absent.
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_bool(&self, name: &str) -> bool {
        matches!(self.resolved(name), Some(Parsed::Bool(true)))
    }

    /// A float field (integer fields read too), 0.0 when absent.
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_float(&self, name: &str) -> f64 {
        match self.resolved(name) {
            Some(Parsed::Float(f)) => f,
            Some(Parsed::Int(i)) => i as f64,
            _ => 0.0,
        }
    }

    /// A duration field in seconds, negatives included (`SignedDurationSecond`); 0 when absent.
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_signed_duration_seconds(&self, name: &str) -> i64 {
        match self.resolved(name) {
            Some(Parsed::Seconds(s)) => s,
            _ => 0,
        }
    }

    /// A duration field as a `Duration`, zero when absent; a negative signed duration reads
    /// as zero (use [`FieldData::get_signed_duration_seconds`] for those).
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_duration(&self, name: &str) -> Duration {
        Duration::from_secs(
            u64::try_from(self.get_signed_duration_seconds(name)).unwrap_or_default(),
        )
    }

    /// A `StringSlice` or `CommaStringSlice` field, empty when absent.
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_string_slice(&self, name: &str) -> Vec<String> {
        match self.resolved(name) {
            Some(Parsed::Strings(strings)) => strings,
            _ => Vec::new(),
        }
    }

    /// A `CommaIntSlice` field, empty when absent.
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_int_slice(&self, name: &str) -> Vec<i64> {
        match self.resolved(name) {
            Some(Parsed::Ints(ints)) => ints,
            _ => Vec::new(),
        }
    }

    /// A `Slice` field, empty when absent.
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_slice(&self, name: &str) -> Vec<Value> {
        match self.resolved(name) {
            Some(Parsed::List(list)) => list,
            _ => Vec::new(),
        }
    }

    /// A `Map` field, empty when absent.
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_map(&self, name: &str) -> Map<String, Value> {
        match self.resolved(name) {
            Some(Parsed::Map(map)) => map,
            _ => Map::new(),
        }
    }

    /// A `KVPairs` field, empty when absent.
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_kv_pairs(&self, name: &str) -> BTreeMap<String, String> {
        match self.resolved(name) {
            Some(Parsed::Pairs(pairs)) => pairs,
            _ => BTreeMap::new(),
        }
    }

    /// A `Header` field: canonical header names (`Content-Type`) to their values, in order;
    /// empty when absent.
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_header(&self, name: &str) -> BTreeMap<String, Vec<String>> {
        match self.resolved(name) {
            Some(Parsed::Header(header)) => header,
            _ => BTreeMap::new(),
        }
    }

    /// A `Time` field; when absent, Go's zero time, 0001-01-01T00:00:00Z (see [`zero_time`]).
    ///
    /// # Panics
    /// If the path does not declare the field (see [`FieldData`]).
    pub fn get_time(&self, name: &str) -> SystemTime {
        match self.resolved(name) {
            Some(Parsed::Time(time)) => time,
            _ => UnixTime::GO_ZERO,
        }
        .to_system_time()
    }
}

/// Go's zero `time.Time`, 0001-01-01T00:00:00Z: what [`FieldData::get_time`] reads for an
/// absent field, so a caller can tell "not given" from a real time.
pub fn zero_time() -> SystemTime {
    UnixTime::GO_ZERO.to_system_time()
}

/// The Go type a JSON value decodes to in a plugin, as mapstructure names it in errors.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// mapstructure's (v2) `UnconvertibleTypeError`, under the field's name inside the decode.
fn unconvertible(name: &str, expected: &str, raw: &Value) -> String {
    format!(
        "'{name}' expected type '{expected}', got unconvertible type '{}'",
        go_type(raw)
    )
}

/// Converts a JSON value to a field type as Go's `FieldData.getPrimitive` does, with its
/// error texts as OpenBao's SDK (go-viper/mapstructure v2) words them: the field's name inside
/// mapstructure is empty, hence the leading `''`. `Ok(None)`: a null duration or time, which
/// Go treats as no value at all.
fn convert(kind: FieldType, raw: &Value) -> Result<Option<Parsed>, String> {
    let parsed = match kind {
        FieldType::String => Parsed::String(weak_string("", raw)?),
        FieldType::LowerCaseString => Parsed::String(weak_string("", raw)?.to_lowercase()),
        FieldType::NameString => {
            let name = weak_string("", raw)?;
            if !is_name(&name) {
                return Err("field does not match the formatting rules".to_owned());
            }
            Parsed::String(name)
        }
        FieldType::Int => Parsed::Int(weak_int("", "int", raw)?),
        FieldType::Int64 => Parsed::Int(weak_int("", "int64", raw)?),
        FieldType::Float => Parsed::Float(weak_float("", raw)?),
        FieldType::Bool => Parsed::Bool(weak_bool("", raw)?),
        FieldType::DurationSecond | FieldType::SignedDurationSecond => {
            let Some(nanos) = gotime::parse_duration_second(raw)? else {
                return Ok(None);
            };
            let seconds = gotime::whole_seconds(nanos);
            if kind == FieldType::DurationSecond && seconds < 0 {
                return Err(format!("cannot provide negative value '{seconds}'"));
            }
            Parsed::Seconds(seconds)
        }
        FieldType::Time => match gotime::parse_absolute_time(raw)? {
            Some(time) => Parsed::Time(time),
            None => return Ok(None),
        },
        FieldType::Map => Parsed::Map(weak_map("", raw)?),
        FieldType::Slice => Parsed::List(match raw {
            Value::Null => Vec::new(),
            Value::Array(list) => list.clone(),
            Value::Object(map) if map.is_empty() => Vec::new(),
            scalar => vec![scalar.clone()],
        }),
        FieldType::StringSlice => Parsed::Strings(match raw {
            Value::String(s) if s.is_empty() => Vec::new(),
            raw => trim_all(weak_string_list(raw)?),
        }),
        FieldType::CommaStringSlice => Parsed::Strings(trim_all(comma_string_list(raw)?)),
        FieldType::CommaIntSlice => Parsed::Ints(comma_int_list(raw)?),
        FieldType::KVPairs => Parsed::Pairs(kv_pairs(raw)?),
        FieldType::Header => Parsed::Header(header(raw)?),
    };
    Ok(Some(parsed))
}

/// `^\w(([\w-.]+)?\w)?$` with Go's ASCII `\w`.
fn is_name(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match s.as_bytes() {
        [] => false,
        [only] => word(*only),
        [first, middle @ .., last] => {
            word(*first) && word(*last) && middle.iter().all(|&b| word(b) || b == b'-' || b == b'.')
        }
    }
}

/// `strutil.TrimStrings`: `strings.TrimSpace` on every element.
fn trim_all(strings: Vec<String>) -> Vec<String> {
    strings.into_iter().map(|s| s.trim().to_owned()).collect()
}

/// A weak decode into a Go `string`; null leaves the zero value.
fn weak_string(name: &str, raw: &Value) -> Result<String, String> {
    match raw {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(if *b { "1" } else { "0" }.to_owned()),
        Value::Number(n) => Ok(go_number(n)),
        _ => Err(unconvertible(name, "string", raw)),
    }
}

/// A weak decode into a Go `int`/`int64` (`expected` names it).
fn weak_int(name: &str, expected: &str, raw: &Value) -> Result<i64, String> {
    match raw {
        Value::Null => Ok(0),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(i),
            // Go truncates a float towards zero when decoding it into an int.
            (None, Some(f)) if f.is_finite() && f.abs() < 9.2e18 => Ok(f.trunc() as i64),
            _ => Err(format!(
                "cannot parse '{n}' as {expected}: value out of range"
            )),
        },
        Value::String(s) => parse_go_int(s)
            .map_err(|problem| format!("'{name}' cannot parse value as '{expected}': {problem}")),
        Value::Bool(b) => Ok(i64::from(*b)),
        _ => Err(unconvertible(name, expected, raw)),
    }
}

/// A weak decode into a Go `float64`.
fn weak_float(name: &str, raw: &Value) -> Result<f64, String> {
    match raw {
        Value::Null => Ok(0.0),
        Value::Number(n) => Ok(n.as_f64().unwrap_or_default()),
        Value::String(s) => parse_go_float(s)
            .map_err(|problem| format!("'{name}' cannot parse value as 'float64': {problem}")),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        _ => Err(unconvertible(name, "float64", raw)),
    }
}

/// A weak decode into a Go `bool`.
fn weak_bool(name: &str, raw: &Value) -> Result<bool, String> {
    match raw {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => Ok(n.as_f64() != Some(0.0)),
        Value::String(s) => parse_go_bool(s)
            .map_err(|problem| format!("'{name}' cannot parse value as 'bool': {problem}")),
        _ => Err(unconvertible(name, "bool", raw)),
    }
}

/// A weak decode into a Go `map[string]interface{}`: an object, or (mapstructure's weak rule)
/// a list of objects merged in order; null leaves the map empty.
fn weak_map(name: &str, raw: &Value) -> Result<Map<String, Value>, String> {
    match raw {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => Ok(map.clone()),
        Value::Array(list) => {
            let mut merged = Map::new();
            for (i, element) in list.iter().enumerate() {
                merged.extend(weak_map(&format!("{name}[{i}]"), element)?);
            }
            Ok(merged)
        }
        _ => Err(unconvertible(name, "map[string]interface {}", raw)),
    }
}

/// A weak decode into a Go `map[string]string`; errors only tell that it failed, because
/// `KVPairs` then tries a list.
fn weak_string_map(raw: &Value) -> Result<BTreeMap<String, String>, ()> {
    match raw {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), weak_string("", v).map_err(|_| ())?)))
            .collect(),
        Value::Array(list) => {
            let mut merged = BTreeMap::new();
            for element in list {
                merged.extend(weak_string_map(element)?);
            }
            Ok(merged)
        }
        _ => Err(()),
    }
}

/// A weak decode into a Go `[]string` (mapstructure v2): a scalar is lifted into a list of one,
/// an empty object is an empty list; the elements' errors are joined by newlines.
fn weak_string_list(raw: &Value) -> Result<Vec<String>, String> {
    match raw {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) if map.is_empty() => Ok(Vec::new()),
        Value::Array(list) => {
            let (strings, errors): (Vec<_>, Vec<_>) = list
                .iter()
                .enumerate()
                .map(|(i, element)| weak_string(&format!("[{i}]"), element))
                .partition(Result::is_ok);
            if errors.is_empty() {
                Ok(strings.into_iter().flatten().collect())
            } else {
                Err(join_errors(errors))
            }
        }
        scalar => Ok(vec![weak_string("[0]", scalar)?]),
    }
}

/// `errors.Join` of failed element decodes.
fn join_errors<T>(errors: Vec<Result<T, String>>) -> String {
    let texts: Vec<String> = errors.into_iter().filter_map(Result::err).collect();
    texts.join("\n")
}

/// `parseutil.ParseCommaStringSlice`, which decodes with mitchellh/mapstructure v1 (not v2):
/// a string is split at commas, other values as a weak `[]string`, and errors take v1's
/// wording (`, value: '…'`, and a count of errors for lists).
fn comma_string_list(raw: &Value) -> Result<Vec<String>, String> {
    let v1_string = |name: &str, element: &Value| match element {
        Value::Object(_) | Value::Array(_) => Err(format!(
            "'{name}' expected type 'string', got unconvertible type '{}', value: '{}'",
            go_type(element),
            go_format(element)
        )),
        scalar => weak_string(name, scalar),
    };
    match raw {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(s.split(',').map(str::to_owned).collect()),
        Value::Object(map) if map.is_empty() => Ok(Vec::new()),
        Value::Array(list) => {
            let mut strings = Vec::with_capacity(list.len());
            let mut errors = Vec::new();
            for (i, element) in list.iter().enumerate() {
                match v1_string(&format!("[{i}]"), element) {
                    Ok(s) => strings.push(s),
                    Err(error) => errors.push(format!("* {error}")),
                }
            }
            if errors.is_empty() {
                return Ok(strings);
            }
            errors.sort_unstable();
            Err(format!(
                "{} error(s) decoding:\n\n{}",
                errors.len(),
                errors.join("\n")
            ))
        }
        scalar => match v1_string("[0]", scalar) {
            Ok(s) => Ok(vec![s]),
            Err(error) => Err(format!("1 error(s) decoding:\n\n* {error}")),
        },
    }
}

/// `TypeCommaIntSlice`: a weak `[]int` decode where a string is first split at commas (an
/// empty piece is 0, as mapstructure reads `""` as an int); the elements' errors are joined.
fn comma_int_list(raw: &Value) -> Result<Vec<i64>, String> {
    let decode_all = |elements: Vec<Value>| {
        let (ints, errors): (Vec<_>, Vec<_>) = elements
            .iter()
            .enumerate()
            .map(|(i, element)| weak_int(&format!("[{i}]"), "int", element))
            .partition(Result::is_ok);
        if errors.is_empty() {
            Ok(ints.into_iter().flatten().collect())
        } else {
            Err(join_errors(errors))
        }
    };
    match raw {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => decode_all(s.split(',').map(Value::from).collect()),
        Value::Object(map) if map.is_empty() => Ok(Vec::new()),
        Value::Array(list) => decode_all(list.clone()),
        scalar => decode_all(vec![scalar.clone()]),
    }
}

/// `TypeKVPairs`: an object of strings, else a list of `key=value` strings.
fn kv_pairs(raw: &Value) -> Result<BTreeMap<String, String>, String> {
    if let Ok(pairs) = weak_string_map(raw) {
        return Ok(pairs);
    }
    weak_string_list(raw)?
        .into_iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(format!("invalid key pair {}", go_quote(&pair))),
        })
        .collect()
}

/// `TypeHeader`: an object (from the API), a JSON string, optionally base64 (from the API's
/// headers), or a list of `key:value` strings (from the CLI). Names are canonicalised as
/// `http.Header.Add` does.
fn header(raw: &Value) -> Result<BTreeMap<String, Vec<String>>, String> {
    if let Ok(map) = weak_map("", raw) {
        // Values straight from the request are float64 for numbers, which Go refuses.
        return header_from_map(&map, false);
    }
    if let Value::String(text) = raw {
        let decoded = base64_standard(text);
        let bytes = decoded.as_deref().unwrap_or(text.as_bytes());
        // jsonutil.DecodeJSON reads numbers as json.Number, which Go accepts as text.
        return header_from_map(&decode_json_object(bytes)?, true);
    }
    // Any other value is lifted into a list, as mapstructure does.
    let elements = match raw {
        Value::Array(list) => list.clone(),
        scalar => vec![scalar.clone()],
    };
    let mut header = BTreeMap::new();
    for element in &elements {
        // Go formats the failed type assertion's zero value: always `""` for a non-string.
        let pair = element.as_str().unwrap_or_default();
        match pair.split_once(':') {
            Some((key, value)) if element.is_string() && !key.is_empty() => {
                add_header(&mut header, key, value.to_owned());
            }
            _ => return Err(format!("invalid key pair {}", go_quote(pair))),
        }
    }
    Ok(header)
}

fn header_from_map(
    map: &Map<String, Value>,
    numbers_are_text: bool,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut header = BTreeMap::new();
    for (key, group) in map {
        match group {
            Value::String(value) => add_header(&mut header, key, value.clone()),
            Value::Number(n) if numbers_are_text => add_header(&mut header, key, n.to_string()),
            Value::Array(values) => {
                for value in values {
                    match value {
                        Value::String(s) => add_header(&mut header, key, s.clone()),
                        Value::Number(n) if numbers_are_text => {
                            add_header(&mut header, key, n.to_string());
                        }
                        _ => {
                            return Err(format!(
                                "received non-string value for header key:{key}, val:{}",
                                go_format_s(group)
                            ));
                        }
                    }
                }
            }
            other => return Err(format!("unrecognized type for {}", go_format_s(other))),
        }
    }
    Ok(header)
}

fn add_header(header: &mut BTreeMap<String, Vec<String>>, key: &str, value: String) {
    header
        .entry(canonical_header_key(key))
        .or_default()
        .push(value);
}

/// `textproto.CanonicalMIMEHeaderKey`: `content-type` becomes `Content-Type`; a key with a
/// byte that is not a token character is left as it is.
fn canonical_header_key(key: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !key.bytes().all(token) {
        return key.to_owned();
    }
    let mut upper = true;
    key.chars()
        .map(|c| {
            let mapped = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            mapped
        })
        .collect()
}

/// `base64.StdEncoding.DecodeString`, which tolerates non-zero trailing bits and newlines.
fn base64_standard(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let cleaned: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    LENIENT.decode(cleaned).ok()
}

/// `jsonutil.DecodeJSON` into a `map[string]interface{}`: the first JSON value only (Go's
/// decoder stops there), which must be an object or null.
fn decode_json_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    if bytes.is_empty() {
        return Err("'data' being decoded is nil".to_owned());
    }
    let first = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .next();
    match first {
        Some(Ok(Value::Object(map))) => Ok(map),
        Some(Ok(Value::Null)) => Ok(Map::new()),
        Some(Ok(other)) => Err(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            }
        )),
        // Go's syntax errors are worded differently; serde's say the same thing.
        Some(Err(error)) => Err(error.to_string()),
        None => Err("EOF".to_owned()),
    }
}

/// A value as Go's `%v` prints the decoded value: `map[k:v]`, `[a b]`, `<nil>`.
fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float_v(n.as_f64().unwrap_or_default()),
        Value::String(s) => s.clone(),
        Value::Array(list) => {
            let items: Vec<String> = list.iter().map(go_format).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// A value as Go's `%s` prints it: as `%v` for strings and containers, and the
/// `%!s(type=value)` complaint for the others.
fn go_format_s(value: &Value) -> String {
    match value {
        Value::Null => "%!s(<nil>)".to_owned(),
        Value::Bool(b) => format!("%!s(bool={b})"),
        Value::Number(n) => format!(
            "%!s(float64={})",
            go_float_v(n.as_f64().unwrap_or_default())
        ),
        Value::String(s) => s.clone(),
        Value::Array(list) => {
            let items: Vec<String> = list.iter().map(go_format_s).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_format_s(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// A float64 as Go's `%v` prints it: shortest form, exponent (at least two digits) below
/// 1e-4 and from 1e21.
fn go_float_v(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return match f {
            f if f.is_nan() => "NaN".to_owned(),
            f if f == f64::INFINITY => "+Inf".to_owned(),
            f if f == f64::NEG_INFINITY => "-Inf".to_owned(),
            _ => "0".to_owned(),
        };
    }
    let exponent = f.abs().log10().floor();
    if (-4.0..21.0).contains(&exponent) {
        return f.to_string();
    }
    let scientific = format!("{f:e}");
    let (mantissa, exp) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
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

/// `strconv.ParseInt(s, 0, 64)` as mapstructure uses it: an empty string is 0, and a `0x`,
/// `0o`, `0b` or leading `0` prefix picks the base. The error is the `strconv` part of
/// mapstructure's text.
fn parse_go_int(s: &str) -> Result<i64, &'static str> {
    if s.is_empty() {
        return Ok(0);
    }
    const INVALID: &str = "strconv.ParseInt: invalid syntax";
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
        return Err(INVALID);
    }
    let magnitude = i128::from_str_radix(&body, radix).map_err(|_| INVALID)?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).map_err(|_| "strconv.ParseInt: value out of range")
}

/// `strconv.ParseFloat(s, 64)` as mapstructure uses it (an empty string is 0); decimal and
/// the special values, not Go's hexadecimal floats.
fn parse_go_float(s: &str) -> Result<f64, &'static str> {
    if s.is_empty() {
        return Ok(0.0);
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s).to_ascii_lowercase();
    let special = matches!(unsigned.as_str(), "inf" | "infinity" | "nan");
    // Rust takes forms Go does not ("infinity" is fine in both; a bare "e5" in neither).
    let plausible = special
        || unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'));
    let parsed: f64 = match s.parse() {
        Ok(f) if plausible => f,
        _ => return Err("strconv.ParseFloat: invalid syntax"),
    };
    if parsed.is_infinite() && !special {
        return Err("strconv.ParseFloat: value out of range");
    }
    Ok(parsed)
}

/// `strconv.ParseBool`, with mapstructure's empty string meaning false.
fn parse_go_bool(s: &str) -> Result<bool, &'static str> {
    match s {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        _ => Err("strconv.ParseBool: invalid syntax"),
    }
}

#[cfg(test)]
mod tests;
