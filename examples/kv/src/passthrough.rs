//! Version 1 of the engine, the "passthrough" backend (the Go plugin's `passthrough.go`): every
//! path of the mount is a key of its storage, used as given, and holds the body of the last
//! write to it as JSON.
//!
//! What it keeps is what the Go plugin keeps when it runs as an external plugin: Go's
//! `json.Marshal` of the request body as the plugin decoded it, every number a float64 (see
//! [`go_json`]). A read answers the stored object
//! with a lease: its TTL is the stored `ttl` (else `lease`), read as
//! `parseutil.ParseDurationSecond` reads it, else the mount's default lease TTL. With the mount
//! option `leased_passthrough=true` the lease is of the secret type `kv`, renewable when the
//! object names a TTL; otherwise it is a bare lease with no type, which only the builtin `kv`
//! mount type is spared registering (an external plugin's lease is registered by the core like
//! any other, with the same TTL).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde_json::{Map, Value};
use vault_plugin_sdk::backend::framework::{
    FieldData, FieldSchema, FieldType, PathSpec, RoutedBackend, Router, SecretType,
    parse_go_duration,
};
use vault_plugin_sdk::backend::{
    Error, Operation, Request, Response, Secret, SpecialPaths, Storage, SystemView,
};

/// The secret type of the leases a `leased_passthrough` mount hands out.
const SECRET_TYPE: &str = "kv";

/// Version 1: keys stored as given, the request body as JSON.
pub(crate) struct Passthrough {
    storage: Arc<dyn Storage>,
    system_view: Arc<dyn SystemView>,
    /// The mount option `leased_passthrough=true`: reads answer leases of the type `kv`.
    leased: bool,
}

impl Passthrough {
    /// The backend of one version 1 mount; `leased` is its `leased_passthrough` option.
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        system_view: Arc<dyn SystemView>,
        leased: bool,
    ) -> Self {
        Self {
            storage,
            system_view,
            leased,
        }
    }
}

const BACKEND_HELP: &str = "\
A key/value store that keeps each secret exactly as it was written: every path under the \
mount names one secret, and the server encrypts it before it reaches storage.

A secret may carry a \"ttl\" field. Reads then report that duration as the lease duration, a \
hint to whoever reads the secret about when to read it again; nothing is revoked or changed \
when it passes.";

const PATH_SYNOPSIS: &str = "Write, read, list and delete secrets kept as they were given.";

const PATH_DESCRIPTION: &str = "\
A write stores the whole request body at the path, replacing what was there; a read answers \
it. The optional \"ttl\" field (whole seconds, a duration such as \"90m\", or days such as \
\"7d\"; \"lease\" is read when there is no \"ttl\") sets the lease duration reads report, \
the mount's default lease TTL otherwise. Listing a path answers the keys and folders right \
under it; deleting a secret that does not exist succeeds.";

static ROUTER: LazyLock<Router<Passthrough>> = LazyLock::new(|| {
    Router::new(
        BACKEND_HELP,
        vec![
            PathSpec::new("{*path}")
                .field(FieldSchema::new(
                    "path",
                    FieldType::String,
                    "Where the secret is kept, relative to the mount.",
                ))
                .existence_check(exists)
                .operation(Operation::Read, read)
                .operation(Operation::Create, write)
                .operation(Operation::Update, write)
                .operation(Operation::Delete, delete)
                .operation(Operation::List, list)
                .issues(SECRET_TYPE)
                .help(PATH_SYNOPSIS, PATH_DESCRIPTION),
        ],
    )
    // No renew handler: the Go plugin renews these leases by calling its read handler with a
    // schema that has no `path`, which panics. A renewal here is an unsupported operation.
    .with_secret_type(SecretType::new(SECRET_TYPE).revoke(revoke))
    .with_special_paths(SpecialPaths::default().with_seal_wrap_storage(["*"]))
});

impl RoutedBackend for Passthrough {
    fn router(&self) -> &Router<Self> {
        &ROUTER
    }
}

/// A failed storage call under the Go plugin's words (`<context>: <storage error>`), the storage
/// error as the cause; its text stays whole, as the server matches some storage texts.
fn storage_failure(context: &str, error: vault_plugin_sdk::backend::StorageError) -> Error {
    Error::other(format!("{context}: {error}")).with_source(error)
}

async fn exists(backend: &Passthrough, _: &Request, fields: &FieldData<'_>) -> Result<bool, Error> {
    let key = fields.get_string("path");
    match backend.storage.get(&key).await {
        Ok(entry) => Ok(entry.is_some()),
        Err(error) => Err(storage_failure("existence check failed", error)),
    }
}

async fn read(
    backend: &Passthrough,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let key = fields.get_string("path");
    let stored = backend
        .storage
        .get(&key)
        .await
        .map_err(|error| storage_failure("read failed", error))?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    let data = decode_entry(&stored)
        .map_err(|problem| Error::other(format!("json decoding failed: {problem}")))?;

    // `ttl` wins over `lease` when present, even when it does not parse.
    let stated = data.get("ttl").or_else(|| data.get("lease"));
    let ttl = match stated.and_then(|raw| parse_duration_second(raw).ok()) {
        // Go keeps a negative TTL; a lease cannot have one here, and the core treats a
        // negative TTL as it treats zero (the mount's default).
        Some(nanos) => u64::try_from(nanos).map_or(Duration::ZERO, Duration::from_nanos),
        // A Go plugin's system view answers 0 when the call fails.
        None => backend
            .system_view
            .default_lease_ttl()
            .await
            .unwrap_or(Duration::ZERO),
    };

    let response = if backend.leased {
        let mut response = ROUTER
            .secret_type(SECRET_TYPE)?
            .response(&data, &Map::new())?;
        if let Some(secret) = response.secret.as_mut() {
            secret.lease.ttl = ttl;
            secret.lease.renewable = stated.is_some();
        }
        response
    } else {
        Response::with_data(data).with_secret(Secret::new(ttl, Map::new()))
    };
    Ok(Some(response))
}

async fn write(
    backend: &Passthrough,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let key = fields.get_string("path");
    if key.is_empty() {
        return Ok(Some(Response::error("missing path")));
    }
    // The body as sent, `ttl` and any `path` key included: the capture is only the key.
    if request.data.is_empty() {
        return Ok(Some(Response::error("missing data fields")));
    }
    let encoded = go_json::marshal_object(&request.data)
        .map_err(|problem| Error::other(format!("json encoding failed: {problem}")))?;
    backend
        .storage
        .put(&key, encoded.into_bytes())
        .await
        .map_err(|error| storage_failure("failed to write", error))?;
    Ok(None)
}

async fn delete(
    backend: &Passthrough,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.storage.delete(&fields.get_string("path")).await?;
    Ok(None)
}

async fn list(
    backend: &Passthrough,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    // A folder's prefix ends in '/'; the root is listed as "".
    let mut prefix = fields.get_string("path");
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    let keys = backend.storage.list(&prefix).await?;
    Ok(Some(Response::list(keys)))
}

/// A lease of a secret kept in storage ends without anything to undo.
async fn revoke(
    _: &Passthrough,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    Ok(None)
}

/// A stored entry as Go's `jsonutil.DecodeJSON` reads it into a `map[string]interface{}`: the
/// first JSON value of the bytes, `null` as an empty map. The error never quotes the entry.
fn decode_entry(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    if bytes.is_empty() {
        return Err("'data' being decoded is nil".to_owned());
    }
    let first = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .next();
    match first {
        None => Err("EOF".to_owned()),
        Some(Err(error)) => Err(match error.classify() {
            serde_json::error::Category::Eof => "unexpected EOF".to_owned(),
            _ => format!(
                "invalid JSON at line {} column {}",
                error.line(),
                error.column()
            ),
        }),
        Some(Ok(Value::Object(map))) => Ok(map),
        Some(Ok(Value::Null)) => Ok(Map::new()),
        Some(Ok(other)) => {
            let kind = match other {
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                _ => "array",
            };
            Err(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            ))
        }
    }
}

/// `parseutil.ParseDurationSecond` (go-secure-stdlib v0.1.7) on a value of a stored entry, which
/// Go decodes with `json.Number`: nanoseconds, products wrapping as Go's do. A number is read by
/// its text: an integer in the range of int64 is seconds; any other number (`1.5`, `1e3`,
/// `1.0`) fails, as `time.ParseDuration` finds no unit in it.
fn parse_duration_second(raw: &Value) -> Result<i64, String> {
    const SECOND: i64 = 1_000_000_000;
    const DAY: i64 = 24 * 3600 * SECOND;
    let text = match raw {
        Value::Null => return Ok(0),
        Value::String(text) => text.clone(),
        // Negative zero is `-0` as Go (and `go_json`) write it, which ParseInt reads as 0.
        Value::Number(number)
            if number
                .as_f64()
                .is_some_and(|f| f == 0.0 && f.is_sign_negative()) =>
        {
            "-0".to_owned()
        }
        // Without serde_json's `arbitrary_precision` an integer keeps its text and any other
        // number prints with a '.' or an exponent, which is all that decides here.
        Value::Number(number) => number.to_string(),
        _ => return Err("could not parse duration from input".to_owned()),
    };
    if text.is_empty() {
        return Ok(0);
    }
    // Rust's i64 parsing is Go's `strconv.ParseInt(s, 10, 64)`: an optional sign, digits.
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds.wrapping_mul(SECOND));
    }
    if let Some(days) = text.strip_suffix('d') {
        return days
            .parse::<i64>()
            .map(|days| days.wrapping_mul(DAY))
            .map_err(|error| error.to_string());
    }
    parse_go_duration(&text)
}

/// Go's `encoding/json` output for the values a plugin's request data holds.
mod go_json {
    use std::fmt::Write as _;

    use serde_json::{Map, Number, Value};

    /// `json.Marshal` of the `map[string]interface{}` a Go plugin decodes a request body into:
    /// compact, keys sorted bytewise, strings HTML-safe, and every number a float64, since the
    /// plugin's gRPC layer decodes request data with `json.Unmarshal` (`12345678901234567890`
    /// is kept as `12345678901234567000`, `1.0` as `1`, `1e3` as `1000`).
    pub(super) fn marshal_object(object: &Map<String, Value>) -> Result<String, String> {
        let mut out = String::new();
        write_object(&mut out, object)?;
        Ok(out)
    }

    fn write_value(out: &mut String, value: &Value) -> Result<(), String> {
        match value {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(number) => out.push_str(&float(number)?),
            Value::String(text) => write_string(out, text),
            Value::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write_value(out, item)?;
                }
                out.push(']');
            }
            Value::Object(object) => write_object(out, object)?,
        }
        Ok(())
    }

    fn write_object(out: &mut String, object: &Map<String, Value>) -> Result<(), String> {
        // Go sorts map keys; sorting here too keeps the order whatever serde_json's map keeps.
        let mut entries: Vec<(&String, &Value)> = object.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out.push('{');
        for (index, (key, value)) in entries.into_iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            write_string(out, key);
            out.push(':');
            write_value(out, value)?;
        }
        out.push('}');
        Ok(())
    }

    /// A string as Go writes it with HTML escaping on: `"` and `\`, the short escapes for
    /// backspace, form feed, newline, carriage return and tab (Go 1.22 and later), `\u00XX` for
    /// the other control characters, and `<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX`.
    pub(super) fn write_string(out: &mut String, text: &str) {
        out.push('"');
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// A JSON number as Go writes the float64 it decodes to: the shortest digits that read
    /// back the same, without an exponent from 1e-6 up to 1e21, with one (`1e+21`, `1e-7`)
    /// outside.
    fn float(number: &Number) -> Result<String, String> {
        match number.as_f64().filter(|f| f.is_finite()) {
            Some(value) => Ok(format_float(value)),
            // Only a number beyond float64's range with `arbitrary_precision`.
            None => Err(format!(
                "json: unsupported value: {}Inf",
                if number.to_string().starts_with('-') {
                    '-'
                } else {
                    '+'
                }
            )),
        }
    }

    /// Go's `float64` encoding (`encoding/json`'s `floatEncoder`) of a finite value.
    pub(super) fn format_float(value: f64) -> String {
        if value == 0.0 {
            return if value.is_sign_negative() { "-0" } else { "0" }.to_owned();
        }
        let magnitude = value.abs();
        let (digits, exponent) = shortest_digits(magnitude);
        let mut out = String::new();
        if value < 0.0 {
            out.push('-');
        }
        if !(1e-6..1e21).contains(&magnitude) {
            // Go writes at least two exponent digits, then `encoding/json` trims `e-07` to
            // `e-7`; positive exponents here are 21 or more.
            out.push_str(&digits[..1]);
            if digits.len() > 1 {
                out.push('.');
                out.push_str(&digits[1..]);
            }
            out.push('e');
            out.push(if exponent < 0 { '-' } else { '+' });
            out.push_str(&exponent.unsigned_abs().to_string());
            return out;
        }
        if exponent >= 0 {
            let point = usize::try_from(exponent).unwrap_or(0) + 1;
            if digits.len() <= point {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            }
        } else {
            let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', zeros));
            out.push_str(&digits);
        }
        out
    }

    /// The shortest significant digits that read back as `magnitude` (finite, above zero) and
    /// the decimal exponent of the first: `(d1d2…dn, e)` for `d1.d2…dn × 10^e`, chosen as Go
    /// chooses them (Ryu up to Go 1.21, Dragonbox since): the closest such number, and of two
    /// equally close the one with an even last digit.
    fn shortest_digits(magnitude: f64) -> (String, i64) {
        // Rust's `{:e}` writes the shortest digits that read back the same and the closest of
        // them, but breaks an exact tie upwards.
        let (digits, exponent) = split_scientific(&format!("{magnitude:e}"));
        match even_of_tie(magnitude, &digits, exponent) {
            Some(even) => (even, exponent),
            None => (digits, exponent),
        }
    }

    /// `d[.ddd]e<exponent>` as its digits and exponent.
    fn split_scientific(scientific: &str) -> (String, i64) {
        let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific, "0"));
        let digits = mantissa.chars().filter(|c| *c != '.').collect();
        (digits, exponent.parse().unwrap_or(0))
    }

    /// When `magnitude` lies exactly halfway between `digits` and its neighbour of as many
    /// digits, and that neighbour also reads back as `magnitude` and ends in an even digit:
    /// the neighbour.
    fn even_of_tie(magnitude: f64, digits: &str, exponent: i64) -> Option<String> {
        let count = digits.len();
        // Halfway means exactly one more digit, a 5: rounded to it first (cheap), then
        // checked against the exact expansion (an f64 has at most 767 significant digits).
        let (longer, longer_exponent) =
            split_scientific(&format!("{magnitude:.precision$e}", precision = count));
        if !longer.ends_with('5') || longer_exponent != exponent {
            return None;
        }
        let (exact, _) = split_scientific(&format!("{magnitude:.800e}"));
        if exact.trim_end_matches('0') != longer {
            return None;
        }
        let lower = &longer[..count];
        let last = lower.as_bytes()[count - 1];
        let even = match last {
            b'0' | b'2' | b'4' | b'6' | b'8' => lower.to_owned(),
            // Its upper neighbour would end in 0: a shorter number, which was not shortest.
            b'9' => return None,
            odd => format!("{}{}", &lower[..count - 1], char::from(odd + 1)),
        };
        if even == digits {
            return None;
        }
        let text = if count == 1 {
            format!("{even}e{exponent}")
        } else {
            format!("{}.{}e{exponent}", &even[..1], &even[1..])
        };
        (text.parse::<f64>().ok()? == magnitude).then_some(even)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use serde_json::{Map, Value, json};
    use vault_plugin_sdk::backend::{
        Backend, BackendType, BoxFuture, Error, ErrorKind, Operation, Request, Response, Secret,
        Storage, StorageError,
    };
    use vault_plugin_sdk::testing::{StaticSystemView, TestBackend};

    use super::go_json::{format_float, marshal_object};
    use super::{Passthrough, parse_duration_second};

    type Mount = TestBackend<Passthrough>;

    /// The mount's default lease TTL in these tests, unlike any TTL a test writes.
    const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

    async fn mount(leased: bool) -> Mount {
        TestBackend::builder()
            .system_view(StaticSystemView::default().with_default_lease_ttl(DEFAULT_TTL))
            .build_with(|config| Passthrough::new(config.storage, config.system_view, leased))
            .await
            .unwrap()
    }

    async fn write(mount: &Mount, path: &str, body: Value) -> Option<Response> {
        mount.write(path).data(body).await.unwrap()
    }

    async fn read(mount: &Mount, path: &str) -> Response {
        mount.read(path).await.unwrap().expect("a secret")
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn assert_error(response: Option<Response>, message: &str) {
        let response = response.expect("an error response");
        assert!(response.is_error(), "{response:?}");
        assert_eq!(response.data["error"], json!(message));
    }

    /// The TTL and renewability of a read's lease.
    async fn lease_of(mount: &Mount, path: &str) -> (Duration, bool) {
        let secret = read(mount, path).await.secret.expect("a lease");
        (secret.lease.ttl, secret.lease.renewable)
    }

    #[tokio::test]
    async fn a_write_is_read_back_with_the_mounts_default_ttl_and_a_bare_lease() {
        for leased in [false, true] {
            let mount = mount(leased).await;
            assert_eq!(write(&mount, "foo", json!({"raw": "test"})).await, None);
            let response = read(&mount, "foo").await;
            assert_eq!(response.data, object(json!({"raw": "test"})));
            assert!(response.warnings.is_empty());
            let secret = response.secret.unwrap();
            assert_eq!(secret.lease.ttl, DEFAULT_TTL);
            assert!(!secret.lease.renewable);
            let internal = if leased {
                json!({"secret_type": "kv"})
            } else {
                json!({})
            };
            assert_eq!(secret.internal_data, object(internal), "leased: {leased}");
        }
    }

    #[tokio::test]
    async fn the_existence_check_tells_create_from_update() {
        let mount = mount(false).await;
        let check = |path: &str| {
            mount
                .backend()
                .existence_check(Request::new(Operation::Update, path))
        };
        assert_eq!(check("a/b").await, Ok(Some(false)));
        write(&mount, "a/b", json!({"x": 1})).await;
        assert_eq!(check("a/b").await, Ok(Some(true)));
        assert_eq!(
            check("a").await,
            Ok(Some(false)),
            "a folder is not an entry"
        );
        // Both operations store.
        for operation in [Operation::Create, Operation::Update] {
            let sent = mount
                .request(operation.clone(), "c")
                .data(json!({"op": operation.as_str()}))
                .without_existence_check()
                .await
                .unwrap();
            assert_eq!(sent, None);
            assert_eq!(
                mount.stored("c").await.unwrap(),
                format!(r#"{{"op":"{operation}"}}"#).into_bytes()
            );
        }
    }

    #[tokio::test]
    async fn the_whole_body_is_stored_at_the_key_as_given() {
        let mount = mount(false).await;
        // A body `path` is kept in the entry; the URL's path is the key.
        let body = json!({"path": "elsewhere", "ttl": "1h", "v": "x"});
        assert_eq!(write(&mount, "dir/my key", body.clone()).await, None);
        assert_eq!(mount.stored_json("dir/my key").await, Some(body));
        assert_eq!(mount.stored("elsewhere").await, None);
        assert_eq!(mount.all_stored_keys().await, ["dir/my key"]);
        // A second write replaces the entry whole.
        write(&mount, "dir/my key", json!({"w": 2})).await;
        assert_eq!(mount.stored("dir/my key").await.unwrap(), br#"{"w":2}"#);
    }

    #[tokio::test]
    async fn entries_are_go_json_sorted_compact_and_html_safe() {
        let mount = mount(false).await;
        let body = json!({
            "z": "<b>&amp;</b>",
            "a": [true, null, 1.5, {"y": 1, "x": "\u{2028}\u{2029}"}],
            "m": {"k2": "\u{1}\u{8}\u{c}\n\r\t\"\\\u{7f}é😀", "k1": {}},
            "<&>": [],
        });
        write(&mount, "k", body).await;
        let stored = String::from_utf8(mount.stored("k").await.unwrap()).unwrap();
        let expected = concat!(
            r#"{"\u003c\u0026\u003e":[],"a":[true,null,1.5,{"x":"\u2028\u2029","y":1}],"#,
            r#""m":{"k1":{},"k2":"\u0001\b\f\n\r\t\"\\DELé😀"},"#,
            r#""z":"\u003cb\u003e\u0026amp;\u003c/b\u003e"}"#
        );
        assert_eq!(stored, expected.replace("DEL", "\u{7f}"));
        // It reads back as what was written.
        assert_eq!(
            read(&mount, "k").await.data["m"]["k2"],
            json!("\u{1}\u{8}\u{c}\n\r\t\"\\\u{7f}é😀")
        );
    }

    #[tokio::test]
    async fn numbers_are_stored_as_the_float64_a_go_plugin_decodes() {
        let mount = mount(false).await;
        let body: Value = serde_json::from_str(
            r#"{"int": 42, "neg": -7, "one": 1.0, "exp": 1e3, "big": 12345678901234567890,
                "beyond53": 9007199254740993, "huge": 1e21, "large": 1e20, "tiny": 1e-7,
                "small": 0.000001, "frac": 0.1, "negzero": -0, "min": 5e-324}"#,
        )
        .unwrap();
        write(&mount, "n", body).await;
        assert_eq!(
            String::from_utf8(mount.stored("n").await.unwrap()).unwrap(),
            concat!(
                r#"{"beyond53":9007199254740992,"big":12345678901234567000,"exp":1000,"#,
                r#""frac":0.1,"huge":1e+21,"int":42,"large":100000000000000000000,"#,
                r#""min":5e-324,"neg":-7,"negzero":-0,"one":1,"small":0.000001,"tiny":1e-7}"#
            )
        );
    }

    #[test]
    fn floats_format_as_go_encoding_json_does() {
        for (value, go) in [
            (1.0, "1"),
            (-2.5, "-2.5"),
            (123_456_789.125, "123456789.125"),
            (1e21, "1e+21"),
            (-1.5e300, "-1.5e+300"),
            (999_999_999_999_999_900_000.0, "999999999999999900000"),
            (1e-6, "0.000001"),
            (1.5e-7, "1.5e-7"),
            (1.2e-10, "1.2e-10"),
            (0.001_234, "0.001234"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.0, "0"),
            // Exactly halfway between two shortest candidates (the sums are exact): Go takes
            // the one with the even last digit.
            (1_862_714_589_952_657.0 + 0.25, "1862714589952657.2"),
            (4_227_083_389_158.0 + 0.531_25, "4227083389158.5312"),
            (139_936_822_837_849.0 + 0.625, "139936822837849.62"),
        ] {
            assert_eq!(format_float(value), go, "{value:e}");
        }
        assert_eq!(
            marshal_object(&object(json!({"a": 1}))).unwrap(),
            r#"{"a":1}"#
        );
        // Parsed as Go's strconv parses it (correctly rounded: serde_json's float_roundtrip,
        // which the SDK enables), then written as Go writes the float64.
        let parsed: Map<String, Value> =
            serde_json::from_str(r#"{"n":123456789012345678901234}"#).unwrap();
        assert_eq!(
            marshal_object(&parsed).unwrap(),
            r#"{"n":1.2345678901234569e+23}"#
        );
    }

    #[tokio::test]
    async fn writes_need_a_path_and_a_body() {
        let mount = mount(false).await;
        assert_error(write(&mount, "", json!({"a": 1})).await, "missing path");
        assert_error(write(&mount, "", json!({})).await, "missing path");
        assert_error(write(&mount, "foo", json!({})).await, "missing data fields");
        assert!(mount.all_stored_keys().await.is_empty());
    }

    #[tokio::test]
    async fn the_ttl_comes_from_ttl_else_lease_read_as_parse_duration_second() {
        let mount = mount(false).await;
        let hour = Duration::from_secs(3600);
        for (body, ttl) in [
            (json!({"ttl": "1h"}), hour),
            (json!({"ttl": "40s"}), Duration::from_secs(40)),
            (json!({"ttl": "5"}), Duration::from_secs(5)),
            (json!({"ttl": 3600}), hour),
            (json!({"ttl": "+10"}), Duration::from_secs(10)),
            (json!({"ttl": "7d"}), Duration::from_secs(7 * 24 * 3600)),
            (json!({"ttl": "1.5s"}), Duration::from_millis(1500)),
            (json!({"ttl": "1h30m"}), Duration::from_secs(5400)),
            (json!({"lease": "1h"}), hour),
            (json!({"lease": 10}), Duration::from_secs(10)),
            // `ttl` wins, even unparsable.
            (json!({"ttl": "2h", "lease": "1h"}), 2 * hour),
            (json!({"ttl": "soon", "lease": "1h"}), DEFAULT_TTL),
            // What does not parse gives the mount's default.
            (json!({"ttl": "soon"}), DEFAULT_TTL),
            (json!({"ttl": "1.5d"}), DEFAULT_TTL),
            (json!({"ttl": 1.5}), DEFAULT_TTL),
            (json!({"ttl": 1.0}), hour / 3600),
            (json!({"ttl": true}), DEFAULT_TTL),
            (json!({"ttl": ["1h"]}), DEFAULT_TTL),
            (json!({"ttl": "99999999999999999999"}), DEFAULT_TTL),
            // Empty and null are zero; a negative TTL is zero here.
            (json!({"ttl": ""}), Duration::ZERO),
            (json!({"ttl": null}), Duration::ZERO),
            (json!({"ttl": "-5s"}), Duration::ZERO),
            (json!({"ttl": -5}), Duration::ZERO),
            (json!({"ttl": -0.0}), Duration::ZERO),
            (json!({"TTL": "1h"}), DEFAULT_TTL),
        ] {
            write(&mount, "t", body.clone()).await;
            assert_eq!(lease_of(&mount, "t").await, (ttl, false), "{body}");
        }
    }

    #[test]
    fn durations_wrap_as_go_multiplications_do() {
        // 10^10 s is 10^19 ns, past int64: Go's `time.Duration(v) * time.Second` wraps.
        let wrapped = 10_000_000_000_i64.wrapping_mul(1_000_000_000);
        assert!(wrapped < 0);
        assert_eq!(
            parse_duration_second(&json!(10_000_000_000_i64)),
            Ok(wrapped)
        );
        assert_eq!(
            parse_duration_second(&json!("200000000d")),
            Ok(200_000_000_i64.wrapping_mul(86_400_000_000_000))
        );
        assert_eq!(
            parse_duration_second(&json!("5")),
            Ok(5_000_000_000),
            "an integer string is seconds"
        );
        assert!(parse_duration_second(&json!("1e3")).is_err());
        assert_eq!(
            parse_duration_second(&json!("3y")),
            Err(r#"time: unknown unit "y" in duration "3y""#.to_owned())
        );
    }

    #[tokio::test]
    async fn a_leased_mount_answers_kv_leases_renewable_when_a_ttl_is_stored() {
        let mount = mount(true).await;
        write(&mount, "with", json!({"lease": "1h", "raw": "test"})).await;
        write(&mount, "bad", json!({"ttl": "whenever"})).await;
        write(&mount, "without", json!({"raw": "test"})).await;
        assert_eq!(
            lease_of(&mount, "with").await,
            (Duration::from_secs(3600), true)
        );
        assert_eq!(lease_of(&mount, "bad").await, (DEFAULT_TTL, true));
        assert_eq!(lease_of(&mount, "without").await, (DEFAULT_TTL, false));

        // Revoking does nothing; renewing is not supported.
        let with = read(&mount, "with").await.secret.unwrap();
        assert_eq!(
            mount.renew(&with).await,
            Err(Error::unsupported_operation())
        );
        assert_eq!(mount.revoke(&with).await, Ok(None));
        assert_eq!(
            mount.stored_json("with").await,
            Some(json!({"lease": "1h", "raw": "test"}))
        );
        // Without a ttl the lease is not renewable: the server refuses to renew it.
        let without = read(&mount, "without").await.secret.unwrap();
        assert_eq!(
            mount.renew(&without).await.unwrap_err().kind(),
            ErrorKind::BadRequest
        );
    }

    #[tokio::test]
    async fn a_kv_lease_is_revoked_without_effect_on_either_mount() {
        for leased in [false, true] {
            let mount = mount(leased).await;
            let secret = Secret::new(Duration::ZERO, object(json!({"secret_type": "kv"})));
            let revoked = mount.request(Operation::Revoke, "kv").secret(secret).await;
            assert_eq!(revoked, Ok(None), "leased: {leased}");
        }
        // The bare lease of a mount without leases names no type, as Go's does.
        let mount = mount(false).await;
        write(&mount, "foo", json!({"a": 1})).await;
        let bare = read(&mount, "foo").await.secret.unwrap();
        assert_eq!(
            mount.revoke(&bare).await,
            Err(Error::other("secret is unsupported by this backend"))
        );
    }

    #[tokio::test]
    async fn a_delete_answers_nothing_whether_or_not_the_key_exists() {
        let mount = mount(false).await;
        write(&mount, "foo", json!({"raw": "test"})).await;
        write(&mount, "foo/bar", json!({"raw": "test"})).await;
        assert_eq!(mount.delete("foo").await, Ok(None));
        assert_eq!(mount.read("foo").await, Ok(None));
        assert_eq!(mount.delete("foo").await, Ok(None));
        assert_eq!(mount.delete("never/was").await, Ok(None));
        assert_eq!(mount.all_stored_keys().await, ["foo/bar"]);
    }

    #[tokio::test]
    async fn a_list_answers_the_children_in_storage_order_and_nothing_when_empty() {
        let mount = mount(false).await;
        for key in ["b", "a/x", "a/y/z", "c", "a", "a b"] {
            write(&mount, key, json!({"k": key})).await;
        }
        let keys = |response: Option<Response>| response.expect("a response").data;
        let listed = keys(mount.list("").await.unwrap());
        assert_eq!(
            listed,
            object(json!({"keys": ["a", "a b", "a/", "b", "c"]}))
        );
        let listed = keys(mount.list("a/").await.unwrap());
        assert_eq!(listed, object(json!({"keys": ["x", "y/"]})));
        // Without the trailing '/' (the server adds it; the handler too).
        let listed = keys(mount.request(Operation::List, "a/y").await.unwrap());
        assert_eq!(listed, object(json!({"keys": ["z"]})));
        // An empty folder or a plain key: no keys, which the server answers 404.
        assert_eq!(keys(mount.list("nothing").await.unwrap()), Map::new());
        assert_eq!(keys(mount.list("c").await.unwrap()), Map::new());
    }

    #[tokio::test]
    async fn a_missing_key_reads_as_nothing_and_patch_is_not_an_operation() {
        let mount = mount(false).await;
        assert_eq!(mount.read("nothing").await, Ok(None));
        assert_eq!(mount.read("").await, Ok(None));
        write(&mount, "foo", json!({"a": 1})).await;
        let patched = mount
            .request(Operation::Patch, "foo")
            .data(json!({"a": 2}))
            .await;
        assert_eq!(patched, Err(Error::unsupported_operation()));
    }

    #[tokio::test]
    async fn entries_that_are_not_json_objects_fail_the_read() {
        let mount = mount(false).await;
        let decoding =
            |problem: &str| Err(Error::other(format!("json decoding failed: {problem}")));
        for (stored, answer) in [
            (
                &b"[1]"[..],
                decoding(
                    "json: cannot unmarshal array into Go value of type map[string]interface {}",
                ),
            ),
            (
                b"\"s\"",
                decoding(
                    "json: cannot unmarshal string into Go value of type map[string]interface {}",
                ),
            ),
            (
                b"7",
                decoding(
                    "json: cannot unmarshal number into Go value of type map[string]interface {}",
                ),
            ),
            (b"", decoding("'data' being decoded is nil")),
            (b"  ", decoding("EOF")),
            (b"{\"a\":", decoding("unexpected EOF")),
            (b"{secret}", decoding("invalid JSON at line 1 column 2")),
        ] {
            mount.store("bad", stored).await;
            assert_eq!(mount.read("bad").await, answer, "{stored:?}");
        }
        // `null` is an empty secret; what follows the first value is not read.
        mount.store("null", "null").await;
        assert_eq!(read(&mount, "null").await.data, Map::new());
        mount.store("two", r#"{"a":1} {"b":2}"#).await;
        assert_eq!(read(&mount, "two").await.data, object(json!({"a": 1})));
    }

    #[tokio::test]
    async fn the_mount_is_seal_wrapped_logical_and_has_no_root_paths() {
        let mount = mount(false).await;
        let special = mount.backend().special_paths();
        assert_eq!(special.seal_wrap_storage, ["*"]);
        assert!(special.root.is_empty() && special.unauthenticated.is_empty());
        assert_eq!(<Passthrough as Backend>::KIND, BackendType::Logical);
        let help = mount.request(Operation::Help, "any/key").await.unwrap();
        assert!(help.is_some_and(|help| help.data.contains_key("help")));
    }

    /// Storage whose every call fails with the same text.
    struct Broken;

    impl Storage for Broken {
        fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>> {
            Box::pin(async { Err(StorageError::new("storage is down")) })
        }
        fn put<'a>(&'a self, _: &'a str, _: Vec<u8>) -> BoxFuture<'a, Result<(), StorageError>> {
            Box::pin(async { Err(StorageError::new("storage is down")) })
        }
        fn delete<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
            Box::pin(async { Err(StorageError::new("storage is down")) })
        }
        fn list<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
            Box::pin(async { Err(StorageError::new("storage is down")) })
        }
    }

    #[tokio::test]
    async fn storage_failures_are_plain_errors_in_the_go_plugins_words() {
        let backend = Passthrough::new(
            std::sync::Arc::new(Broken),
            std::sync::Arc::new(StaticSystemView::default()),
            false,
        );
        let body = object(json!({"a": 1}));
        let send = |operation: Operation, data: Map<String, Value>| {
            backend.handle_request(Request::new(operation, "k").with_data(data))
        };
        fn failed<T>(message: &str) -> Result<T, Error> {
            Err(Error::other(message.to_owned()))
        }
        assert_eq!(
            backend
                .existence_check(Request::new(Operation::Update, "k"))
                .await,
            failed("existence check failed: storage is down")
        );
        assert_eq!(
            send(Operation::Read, Map::new()).await,
            failed("read failed: storage is down")
        );
        assert_eq!(
            send(Operation::Update, body.clone()).await,
            failed("failed to write: storage is down")
        );
        assert_eq!(
            send(Operation::Create, body).await,
            failed("failed to write: storage is down")
        );
        assert_eq!(
            send(Operation::Delete, Map::new()).await,
            failed("storage is down")
        );
        assert_eq!(
            send(Operation::List, Map::new()).await,
            failed("storage is down")
        );
        // The cause is the storage error.
        let error = send(Operation::Read, Map::new()).await.unwrap_err();
        assert!(std::error::Error::source(&error).is_some());
    }
}
