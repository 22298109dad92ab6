//! Logs as hclog JSON lines on stderr, which the server parses and re-logs at the right level.
//!
//! The server reads `@level` (exactly `trace`, `debug`, `info`, `warn` or `error`), `@message`
//! and `@timestamp` (Go layout `2006-01-02T15:04:05.000000Z07:00`: exactly six fractional
//! digits, or the whole line is logged raw at DEBUG); other keys become key=value pairs.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the stderr JSON logger for the whole process, at `level` and above.
pub fn init(level: LevelFilter) {
    let _ = tracing_subscriber::registry()
        .with(HclogLayer.with_filter(level))
        .try_init();
}

/// A tracing layer that writes one hclog JSON object per event to stderr.
#[derive(Debug, Default)]
pub struct HclogLayer;

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = format_event(event, SystemTime::now());
        line.push('\n');
        // One write call per line keeps lines whole when tasks log concurrently; a failed
        // write to stderr has nowhere better to be reported.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// The hclog name of a tracing level.
pub fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// Renders `event` as one JSON object (without the newline).
pub fn format_event(event: &Event<'_>, now: SystemTime) -> String {
    let metadata = event.metadata();
    let mut fields = FieldCollector::default();
    event.record(&mut fields);

    let mut object = Map::new();
    object.insert("@level".into(), Value::from(level_name(metadata.level())));
    object.insert("@message".into(), Value::from(fields.message));
    object.insert("@timestamp".into(), Value::from(hclog_timestamp(now)));
    object.insert("@module".into(), Value::from(metadata.target()));
    for (key, value) in fields.fields {
        // A field may not take the place of the keys the server parses.
        let key = if key.starts_with('@') {
            format!("_{key}")
        } else {
            key
        };
        object.insert(key, value);
    }
    Value::Object(object).to_string()
}

#[derive(Default)]
struct FieldCollector {
    message: String,
    fields: Vec<(String, Value)>,
}

impl FieldCollector {
    fn push(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.fields.push((field.name().to_owned(), value));
        }
    }
}

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, Value::from(format!("{value:?}")));
    }
}

/// `2006-01-02T15:04:05.000000Z` for `time`, in UTC.
pub fn hclog_timestamp(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, secs_of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(27);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        since_epoch.subsec_micros()
    );
    out
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn timestamps_have_exactly_six_fractional_digits() {
        let at = UNIX_EPOCH + Duration::new(1_767_323_045, 123_456_789);
        assert_eq!(hclog_timestamp(at), "2026-01-02T03:04:05.123456Z");
        assert_eq!(hclog_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(hclog_timestamp(leap), "2000-02-29T00:00:00.000000Z");
    }

    /// Captures formatted lines instead of writing them to stderr.
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let line = format_event(event, UNIX_EPOCH + Duration::from_micros(1));
            self.0.lock().unwrap().push(line);
        }
    }

    #[test]
    fn events_become_hclog_json_with_fields() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(lines.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(key = "kv/foo", count = 3, "storing value");
            tracing::error!(error = %"boom", "@level" = "fake", "failed");
        });
        let lines = lines.lock().unwrap();
        let first: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["@level"], "warn");
        assert_eq!(first["@message"], "storing value");
        assert_eq!(first["@timestamp"], "1970-01-01T00:00:00.000001Z");
        assert_eq!(first["key"], "kv/foo");
        assert_eq!(first["count"], 3);
        let second: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(second["@level"], "error");
        assert_eq!(second["_@level"], "fake");
        assert_eq!(second["error"], "boom");
    }

    #[test]
    fn every_level_has_an_hclog_name() {
        let names: Vec<_> = [
            Level::TRACE,
            Level::DEBUG,
            Level::INFO,
            Level::WARN,
            Level::ERROR,
        ]
        .iter()
        .map(level_name)
        .collect();
        assert_eq!(names, ["trace", "debug", "info", "warn", "error"]);
    }
}
