//! A connection's configuration, read as the Go plugin reads it: every key of
//! `connutil.SQLConnectionProducer` and the plugin's own, with mapstructure's weak decoding (a
//! number may come as `"4"`, a boolean as `"true"` or `1`), the same defaults, the same checks
//! and the same error texts.

use std::time::Duration;

use serde_json::{Map, Value};
use vault_plugin_sdk::backend::framework::parse_go_duration;
use vault_plugin_sdk::database::Error;
use vault_plugin_sdk::database::template::Template;

/// The Go plugin's default `username_template`.
pub(crate) const DEFAULT_USERNAME_TEMPLATE: &str = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}"#;

/// How new passwords reach PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PasswordAuthentication {
    /// As given; PostgreSQL hashes it.
    Password,
    /// As a SCRAM-SHA-256 verifier made here.
    ScramSha256,
}

/// A checked configuration.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// The URL to connect with, `{{username}}` and `{{password}}` filled in.
    pub(crate) url: String,
    /// The root user's password, masked in every error.
    pub(crate) password: String,
    pub(crate) max_open: usize,
    pub(crate) max_idle: usize,
    /// `None`: connections live for ever.
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) username_template: Template,
    pub(crate) password_authentication: PasswordAuthentication,
}

impl Config {
    /// Reads and checks `config`, in the Go plugin's order, so the first problem reported is
    /// the one it reports.
    pub(crate) fn read(config: &Map<String, Value>) -> Result<Self, Error> {
        let connection_url = string(config, "connection_url")?;
        let username = string(config, "username")?;
        let password = string(config, "password")?;
        let disable_escaping = boolean(config, "disable_escaping")?;
        let max_open = int(config, "max_open_connections")?;
        let max_idle = int(config, "max_idle_connections")?;
        if connection_url.is_empty() {
            return Err(Error::new("connection_url cannot be empty"));
        }
        let placeholders = ["{{username}}", "{{password}}"];
        if placeholders
            .iter()
            .any(|p| username.contains(p) || password.contains(p))
        {
            return Err(Error::new(
                "username and/or password cannot contain the template variables",
            ));
        }
        let (user_in_url, password_in_url) = if disable_escaping {
            (username.clone(), password.clone())
        } else {
            (path_escape(&username), path_escape(&password))
        };
        let url = connection_url
            .replace("{{username}}", &user_in_url)
            .replace("{{password}}", &password_in_url);
        let max_open = if max_open == 0 { 4 } else { max_open };
        let max_idle = if max_idle == 0 { max_open } else { max_idle }.min(max_open);
        let max_lifetime = lifetime(config.get("max_connection_lifetime"))?;

        let template_text = match config.get("username_template") {
            None => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => {
                return Err(Error::new(format!(
                    "failed to retrieve username_template: invalid value at username_template: \
                     is a {}",
                    go_type(other)
                )));
            }
        };
        let template_text = if template_text.is_empty() {
            DEFAULT_USERNAME_TEMPLATE
        } else {
            &template_text
        };
        let username_template = Template::parse(template_text)
            .map_err(|e| Error::new(format!("unable to initialize username template: {e}")))?;
        // Go renders it once with empty metadata: the fields exist, empty.
        let empty = std::collections::BTreeMap::from([
            ("DisplayName".to_owned(), String::new()),
            ("RoleName".to_owned(), String::new()),
        ]);
        username_template
            .render(&empty)
            .map_err(|e| Error::new(format!("invalid username template: {e}")))?;

        let password_authentication = match config.get("password_authentication") {
            None => PasswordAuthentication::Password,
            Some(Value::String(text)) => match text.as_str() {
                "" | "password" => PasswordAuthentication::Password,
                "scram-sha-256" => PasswordAuthentication::ScramSha256,
                other => {
                    return Err(Error::new(format!(
                        "'{other}' is not a valid password authentication type"
                    )));
                }
            },
            Some(other) => {
                return Err(Error::new(format!(
                    "failed to retrieve password_authentication: invalid value at \
                     password_authentication: is a {}",
                    go_type(other)
                )));
            }
        };
        Ok(Self {
            url,
            password,
            max_open: usize::try_from(max_open).unwrap_or(4),
            max_idle: usize::try_from(max_idle).unwrap_or(4),
            max_lifetime,
            username_template,
            password_authentication,
        })
    }
}

/// Go's name for a decoded JSON value's type, as `%T` prints it.
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

/// mapstructure's error for a value it cannot weakly decode.
fn decode_error(key: &str, detail: &str) -> Error {
    let _ = key;
    Error::new(format!("1 error(s) decoding:\n\n* {detail}"))
}

/// A string, weakly: numbers and booleans become their text (`true` is `1`).
fn string(config: &Map<String, Value>, key: &str) -> Result<String, Error> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Bool(b)) => Ok(if *b { "1" } else { "0" }.to_owned()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(decode_error(
            key,
            &format!(
                "'{key}' expected type 'string', got unconvertible type '{}'",
                go_type(other)
            ),
        )),
    }
}

/// An integer, weakly: a string is parsed (`strconv.ParseInt(s, 0, 0)`; empty is 0), a
/// boolean is 0 or 1.
fn int(config: &Map<String, Value>, key: &str) -> Result<i64, Error> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.trunc() as i64))
            .ok_or_else(|| decode_error(key, &format!("cannot parse '{key}' as int"))),
        Some(Value::Bool(b)) => Ok(i64::from(*b)),
        Some(Value::String(s)) if s.is_empty() => Ok(0),
        Some(Value::String(s)) => parse_go_int(s).ok_or_else(|| {
            decode_error(
                key,
                &format!(
                    "cannot parse '{key}' as int: strconv.ParseInt: parsing {s:?}: invalid syntax"
                ),
            )
        }),
        Some(other) => Err(decode_error(
            key,
            &format!(
                "'{key}' expected type 'int', got unconvertible type '{}'",
                go_type(other)
            ),
        )),
    }
}

/// `strconv.ParseInt(s, 0, 64)`: an optional sign, then decimal, or `0x`, `0o`/`0`, `0b`.
fn parse_go_int(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = digits.to_ascii_lowercase();
    let value = if let Some(hex) = lower.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(bin) = lower.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if let Some(oct) = lower.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()?
    } else {
        lower.parse().ok()?
    };
    Some(if negative { -value } else { value })
}

/// A boolean, weakly: a number is true unless 0, a string is `strconv.ParseBool`'s (empty is
/// false).
fn boolean(config: &Map<String, Value>, key: &str) -> Result<bool, Error> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
        Some(Value::String(s)) => match s.as_str() {
            "" => Ok(false),
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(decode_error(
                key,
                &format!(
                    "cannot parse '{key}' as bool: strconv.ParseBool: parsing {s:?}: invalid syntax"
                ),
            )),
        },
        Some(other) => Err(decode_error(
            key,
            &format!(
                "'{key}' expected type 'bool', got unconvertible type '{}'",
                go_type(other)
            ),
        )),
    }
}

/// `max_connection_lifetime` as `parseutil.ParseDurationSecond` reads it: a number of seconds,
/// a string of digits (seconds), or a Go duration; absent is `0s`, which means no limit.
fn lifetime(value: Option<&Value>) -> Result<Option<Duration>, Error> {
    let invalid = |detail: String| Error::new(format!("invalid max_connection_lifetime: {detail}"));
    let nanos: i64 = match value {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => {
            let seconds = n.as_f64().unwrap_or_default();
            (seconds * 1e9) as i64
        }
        Some(Value::String(s)) if s.is_empty() => 0,
        Some(Value::String(s)) if s.ends_with(|c: char| c.is_ascii_digit()) => s
            .parse::<i64>()
            .map(|seconds| seconds.saturating_mul(1_000_000_000))
            .map_err(|_| invalid(format!("strconv.ParseInt: parsing {s:?}: invalid syntax")))?,
        Some(Value::String(s)) => parse_go_duration(s).map_err(invalid)?,
        Some(other) => {
            return Err(invalid(format!(
                "could not parse duration from input of type {}",
                go_type(other)
            )));
        }
    };
    Ok(u64::try_from(nanos)
        .ok()
        .filter(|&n| n > 0)
        .map(Duration::from_nanos))
}

/// Go's `url.PathEscape`: everything but unreserved characters and the sub-delimiters a path
/// segment may hold, percent-encoded.
fn path_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'_' | b'.' | b'~' | b'$' | b'&' | b'+' | b',' | b';' | b'=' | b':' | b'@'
            );
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(value: Value) -> Result<Config, Error> {
        let Value::Object(map) = value else {
            panic!("an object")
        };
        Config::read(&map)
    }

    fn error(value: Value) -> String {
        read(value)
            .map(|_| ())
            .expect_err("refused")
            .message()
            .to_owned()
    }

    #[test]
    fn defaults_and_weak_values_are_the_go_plugins() {
        let config = read(json!({
            "connection_url": "postgres://{{username}}:{{password}}@h/db",
            "username": "root user",
            "password": "p@ss/w?rd",
        }))
        .expect("valid");
        assert_eq!(config.url, "postgres://root%20user:p@ss%2Fw%3Frd@h/db");
        assert_eq!((config.max_open, config.max_idle), (4, 4));
        assert_eq!(config.max_lifetime, None);
        assert_eq!(
            config.password_authentication,
            PasswordAuthentication::Password
        );

        let weak = read(json!({
            "connection_url": "postgres://{{username}}:{{password}}@h/db",
            "username": "u", "password": "p/q",
            "max_open_connections": "7", "max_idle_connections": 9,
            "max_connection_lifetime": "90", "disable_escaping": "true",
            "password_authentication": "scram-sha-256",
        }))
        .expect("valid");
        assert_eq!(weak.url, "postgres://u:p/q@h/db");
        assert_eq!((weak.max_open, weak.max_idle), (7, 7));
        assert_eq!(weak.max_lifetime, Some(Duration::from_secs(90)));
        assert_eq!(
            weak.password_authentication,
            PasswordAuthentication::ScramSha256
        );
        let duration = read(json!({"connection_url": "x", "max_connection_lifetime": "1m30s"}))
            .expect("valid");
        assert_eq!(duration.max_lifetime, Some(Duration::from_secs(90)));
    }

    #[test]
    fn bad_configurations_get_the_go_plugins_errors() {
        let cases = [
            (json!({}), "connection_url cannot be empty"),
            (
                json!({"connection_url": "x", "username": "{{username}}"}),
                "username and/or password cannot contain the template variables",
            ),
            (
                json!({"connection_url": "x", "password_authentication": "md5"}),
                "'md5' is not a valid password authentication type",
            ),
            (
                json!({"connection_url": "x", "username_template": 5}),
                "failed to retrieve username_template: invalid value at username_template: is \
                 a float64",
            ),
            (
                json!({"connection_url": "x", "max_connection_lifetime": "soon"}),
                "invalid max_connection_lifetime: time: invalid duration \"soon\"",
            ),
            (
                json!({"connection_url": "x", "max_open_connections": "many"}),
                "1 error(s) decoding:\n\n* cannot parse 'max_open_connections' as int: \
                 strconv.ParseInt: parsing \"many\": invalid syntax",
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(error(config.clone()), expected, "{config}");
        }
        let template = error(json!({"connection_url": "x", "username_template": "{{ nope }}"}));
        assert!(
            template.starts_with("unable to initialize username template: "),
            "{template}"
        );
    }

    #[test]
    fn go_integers_parse_in_every_base() {
        for (text, value) in [
            ("10", 10),
            ("0x1f", 31),
            ("010", 8),
            ("0b11", 3),
            ("-4", -4),
        ] {
            assert_eq!(parse_go_int(text), Some(value), "{text}");
        }
        assert_eq!(parse_go_int("1e3"), None);
    }
}
