//! Logs as hclog JSON lines on stderr, which the server parses and re-logs at the right level.
//!
//! The server reads `@level` (exactly `trace`, `debug`, `info`, `warn` or `error`), `@message`
//! and `@timestamp` (Go layout `2006-01-02T15:04:05.000000Z07:00`: exactly six fractional
//! digits, or the whole line is logged raw at DEBUG); other keys become key=value pairs.

pub(crate) mod mask;

use std::fmt::{self, Write as _};
use std::io::Write as _;
#[cfg(test)]
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard};

use crate::civil::civil_from_days;
use crate::sync::RecoveringMutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the stderr JSON logger for the whole process, at `level` and above, and returns
/// the handle that decides when its lines are written.
pub(crate) fn init(level: LevelFilter) -> LogOutput {
    let output = LogOutput::new(Box::new(|bytes| {
        // A failed write to stderr has nowhere better to be reported.
        let _ = std::io::stderr().lock().write_all(bytes);
    }));
    let _ = tracing_subscriber::registry()
        .with(HclogLayer::new(output.clone()).with_filter(level))
        .try_init();
    output.flush_before_panics();
    output
}

/// Where whole lines are finally written (stderr in the plugin).
pub(crate) type LineSink = Box<dyn Fn(&[u8]) + Send + Sync>;

/// Pending lines are written at once beyond this size, so a busy runtime that never sleeps
/// still logs promptly and the buffer stays small.
const FLUSH_AT: usize = 16 * 1024;

/// Where the logger's lines go, and the lines waiting to go there.
///
/// Under load the mock logs every request at info; one `write` per line cost the plugin a
/// system call per request and woke the server's stderr reader as often. While the runtime
/// runs, lines below warn gather here and are written together when the runtime is about to
/// sleep ([`LogOutput::flush`] as its park hook), so a burst costs one write. Warnings and
/// errors are written at once, after the lines before them.
#[derive(Clone)]
pub(crate) struct LogOutput {
    shared: Arc<Shared>,
}

struct Shared {
    pending: RecoveringMutex<Vec<u8>>,
    /// Whether lines below warn may wait for a flush.
    holding: AtomicBool,
    sink: LineSink,
}

impl fmt::Debug for LogOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogOutput")
            .field("holding", &self.shared.holding.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl LogOutput {
    /// Lines are written to `sink`, each at once until [`LogOutput::hold_until_flush`].
    pub(crate) fn new(sink: LineSink) -> Self {
        Self {
            shared: Arc::new(Shared {
                pending: RecoveringMutex::new(Vec::new()),
                holding: AtomicBool::new(false),
                sink,
            }),
        }
    }

    /// Lets lines below warn wait for [`LogOutput::flush`]. Call only with a hook that flushes
    /// whenever the process is about to go idle (the runtime's park hook).
    pub(crate) fn hold_until_flush(&self) {
        self.shared.holding.store(true, Ordering::Relaxed);
    }

    /// Writes pending lines now and from then on every line at once.
    pub(crate) fn stop_holding(&self) {
        self.shared.holding.store(false, Ordering::Relaxed);
        self.flush();
    }

    /// Writes the lines waiting in the buffer.
    pub(crate) fn flush(&self) {
        self.write_out(&mut self.pending());
    }

    /// Appends one line (`render` writes it, without the newline) and writes it out unless
    /// it may wait.
    fn push_line(&self, urgent: bool, render: impl FnOnce(&mut Vec<u8>)) {
        // Lines are appended whole under the lock, so concurrent events never interleave.
        let mut pending = self.pending();
        render(&mut pending);
        pending.push(b'\n');
        let holding = self.shared.holding.load(Ordering::Relaxed);
        if urgent || !holding || pending.len() >= FLUSH_AT {
            self.write_out(&mut pending);
        }
    }

    fn pending(&self) -> MutexGuard<'_, Vec<u8>> {
        self.shared.pending.lock()
    }

    fn write_out(&self, pending: &mut Vec<u8>) {
        if pending.is_empty() {
            return;
        }
        (self.shared.sink)(pending);
        pending.clear();
        if pending.capacity() > 4 * FLUSH_AT {
            pending.shrink_to(FLUSH_AT);
        }
    }

    /// A panic's message must not overtake the lines logged before it.
    fn flush_before_panics(&self) {
        let output = self.clone();
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // `try_lock`: the panic may have happened while the buffer was held.
            if let Some(mut pending) = output.shared.pending.try_lock() {
                output.write_out(&mut pending);
            }
            // A message that holds a secret is written redacted, in the default hook's form;
            // every other panic goes to the default hook (with its backtrace, if asked for).
            match panic_message(info).and_then(|message| mask::redact(&message)) {
                Some(redacted) => {
                    let thread = std::thread::current();
                    let location = info
                        .location()
                        .map_or_else(String::new, |l| format!(" at {l}"));
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "\nthread '{}' panicked{location}:\n{redacted}",
                        thread.name().unwrap_or("<unnamed>")
                    );
                }
                None => default_hook(info),
            }
        }));
    }
}

/// A panic's message, when it is text.
fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> Option<String> {
    let payload = info.payload();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

/// A tracing layer that writes one hclog JSON object per event to a [`LogOutput`].
#[derive(Debug)]
pub(crate) struct HclogLayer {
    output: LogOutput,
}

impl HclogLayer {
    pub(crate) fn new(output: LogOutput) -> Self {
        Self { output }
    }
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let urgent = *event.metadata().level() <= Level::WARN;
        self.output.push_line(urgent, |out| {
            let start = out.len();
            write_event(out, event, SystemTime::now());
            mask::redact_json_tail(out, start);
        });
    }
}

/// The hclog name of a tracing level.
pub(crate) fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// Appends `event` as one JSON object, written directly: no intermediate map or values.
fn write_event(out: &mut Vec<u8>, event: &Event<'_>, now: SystemTime) {
    let metadata = event.metadata();
    out.extend_from_slice(b"{\"@level\":\"");
    out.extend_from_slice(level_name(metadata.level()).as_bytes());
    out.extend_from_slice(b"\",\"@timestamp\":\"");
    out.extend_from_slice(hclog_timestamp(now).as_bytes());
    // No `@module`: a Go plugin's logger has no name, and go-plugin would show ours as a field.
    out.extend_from_slice(b"\"");
    let mut fields = JsonFields {
        out,
        saw_message: false,
    };
    event.record(&mut fields);
    if !fields.saw_message {
        fields.out.extend_from_slice(b",\"@message\":\"\"");
    }
    fields.out.push(b'}');
}

/// Writes each field as `,"key":value`; the message becomes `@message`.
struct JsonFields<'a> {
    out: &'a mut Vec<u8>,
    saw_message: bool,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.out.push(b',');
        match field.name() {
            "message" if !self.saw_message => {
                self.saw_message = true;
                self.out.extend_from_slice(b"\"@message\"");
            }
            // A field may not take the place of the keys the server parses.
            name if name.starts_with('@') => write_json_str(self.out, &format!("_{name}")),
            name => write_json_str(self.out, name),
        }
        self.out.push(b':');
    }

    /// A value rendered by `Display` or `Debug`, as a JSON string.
    fn formatted(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        self.key(field);
        self.out.push(b'"');
        let _ = JsonEscaper(self.out).write_fmt(value);
        self.out.push(b'"');
    }

    fn number(&mut self, field: &Field, value: impl fmt::Display) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        write_json_str(self.out, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.number(field, value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.number(field, value);
        } else {
            // JSON has no NaN or infinity.
            self.key(field);
            self.out.extend_from_slice(b"null");
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.formatted(field, format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.formatted(field, format_args!("{value:?}"));
    }
}

fn write_json_str(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    let _ = JsonEscaper(out).write_str(value);
    out.push(b'"');
}

/// Escapes text for the inside of a JSON string as it is written.
struct JsonEscaper<'a>(&'a mut Vec<u8>);

impl fmt::Write for JsonEscaper<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let bytes = text.as_bytes();
        let mut plain_from = 0;
        for (at, &byte) in bytes.iter().enumerate() {
            let escape: &[u8] = match byte {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f => b"",
                _ => continue,
            };
            self.0.extend_from_slice(&bytes[plain_from..at]);
            if escape.is_empty() {
                let _ = write!(self.0, "\\u{byte:04x}");
            } else {
                self.0.extend_from_slice(escape);
            }
            plain_from = at + 1;
        }
        self.0.extend_from_slice(&bytes[plain_from..]);
        Ok(())
    }
}

/// `2006-01-02T15:04:05.000000Z` for `time`, in UTC.
pub(crate) fn hclog_timestamp(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, secs_of_day) = (secs / 86_400, secs % 86_400);
    // Days since 1970 fit an i64 for any SystemTime.
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::Value;
    use std::time::Duration;

    #[test]
    fn timestamps_have_exactly_six_fractional_digits() {
        let at = UNIX_EPOCH + Duration::new(1_767_323_045, 123_456_789);
        assert_eq!(hclog_timestamp(at), "2026-01-02T03:04:05.123456Z");
        assert_eq!(hclog_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(hclog_timestamp(leap), "2000-02-29T00:00:00.000000Z");
    }

    /// Formats events as the logger does, at a fixed time, into a list of lines.
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut line = Vec::new();
            write_event(&mut line, event, UNIX_EPOCH + Duration::from_micros(1));
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8(line).unwrap());
        }
    }

    /// A logger whose output is kept, and the `@message` of every line written so far.
    fn kept_output() -> (LogOutput, impl Fn() -> Vec<String>) {
        let written = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = written.clone();
        let output = LogOutput::new(Box::new(move |bytes| {
            sink.lock().unwrap().extend_from_slice(bytes);
        }));
        let messages = move || {
            let written = written.lock().unwrap();
            assert!(
                written.is_empty() || written.ends_with(b"\n"),
                "whole lines only"
            );
            String::from_utf8_lossy(&written)
                .lines()
                .map(|line| {
                    let fields: Value = serde_json::from_str(line).unwrap();
                    fields["@message"].as_str().unwrap().to_owned()
                })
                .collect()
        };
        (output, messages)
    }

    #[test]
    fn held_lines_wait_for_a_flush_and_warnings_do_not() {
        let (output, messages) = kept_output();
        let subscriber = tracing_subscriber::registry().with(HclogLayer::new(output.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("before holding");
            assert_eq!(messages(), ["before holding"]);

            output.hold_until_flush();
            tracing::info!("held");
            tracing::debug!("held too");
            assert_eq!(messages(), ["before holding"]);
            output.flush();
            assert_eq!(messages(), ["before holding", "held", "held too"]);

            // A warning goes out at once, after the lines logged before it.
            tracing::info!("waiting");
            tracing::warn!("a warning");
            assert_eq!(messages()[3..], ["waiting", "a warning"]);
            tracing::info!("waiting again");
            tracing::error!("an error");
            assert_eq!(messages()[5..], ["waiting again", "an error"]);

            // A runtime too busy to sleep still logs once the buffer is full.
            let long = "x".repeat(1000);
            let mut logged = 0;
            while messages().len() == 7 {
                tracing::info!("{long}");
                logged += 1;
                assert!(logged <= FLUSH_AT / 1000 + 1, "never written");
            }
            assert_eq!(messages().len(), 7 + logged);

            tracing::info!("the last");
            output.stop_holding();
            assert_eq!(messages().last().unwrap(), "the last");
            tracing::info!("not held any more");
            assert_eq!(messages().last().unwrap(), "not held any more");
        });
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
    fn text_is_escaped_and_a_missing_message_is_empty() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(lines.clone()));
        let awkward = "quote \" back \\ nl \n cr \r tab \t bell \u{7} é \u{1F600}";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(text = awkward, shown = %awkward, debugged = ?awkward);
            tracing::info!(
                ratio = f64::NAN,
                big = u64::MAX,
                small = i64::MIN,
                yes = true,
                "{awkward}"
            );
        });
        let lines = lines.lock().unwrap();
        let first: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["@message"], "");
        assert_eq!(first["text"], awkward);
        assert_eq!(first["shown"], awkward);
        assert_eq!(first["debugged"], format!("{awkward:?}"));
        assert!(!lines[0].contains('\n') && !lines[0].contains('\u{7}'));
        let second: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(second["@message"], awkward);
        assert_eq!(second["ratio"], Value::Null);
        assert_eq!(second["big"], u64::MAX);
        assert_eq!(second["small"], i64::MIN);
        assert_eq!(second["yes"], true);
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
