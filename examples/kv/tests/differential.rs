//! Our kv plugin beside HashiCorp's Go original (vault-plugin-secrets-kv v0.15.0, built by `make
//! peers`): two dev servers of the flavour `TEST_SERVER` names (OpenBao by default, Vault 1.14.1
//! with `TEST_SERVER=vault`), the same mounts on each ([`common::Pair`]), the same requests sent
//! to both, and every answer compared whole: status, `Content-Type` and the body's text, once
//! what must differ between two servers is replaced by placeholders ([`normalise`]). Comparing
//! text, not parsed JSON, keeps number literals, key order and escaping in the comparison: the
//! server re-encodes a plugin's data, but a raw answer (the 404s that carry version metadata)
//! is the plugin's own bytes.
//!
//! What must differ, whoever the plugin: `request_id`, the random part of a `lease_id`, and the
//! RFC 3339 values of `created_time`, `deletion_time` and `updated_time` (`""` stays `""`); the
//! order of the items of a go-multierror text, which follows Go's map iteration. What differs
//! by design is listed in `docs/kv.md` ("Deliberate differences from the Go plugin") and
//! normalised in one place each: the help text and the OpenAPI document ([`help_structure`]),
//! field conversion errors ([`conversion_errors`]) and a negative zero ([`negative_zero`]).
//!
//! `KV_DIFF_OURS_BIN=target/peers/vault-plugin-secrets-kv-go` runs the Go plugin on both sides,
//! which must give no difference at all; `KV_DIFF_DUMP=<file>` writes every case's two
//! normalised answers there.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::{Answer, Pair, Side, V1, V2, enc};
use plugin_test_support::common::wait_until;
use plugin_test_support::table::{Table, clip};
use serde_json::{Map, Value, json};

const MIB: usize = 1 << 20;
/// How long a version with a 1 s `delete_version_after` may take to read as deleted.
const EXPIRY_DEADLINE: Duration = Duration::from_secs(30);
/// How many keys the big lists hold.
const MANY: usize = 10_000;

/// Which normalisation an answer gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Only what must differ between any two servers.
    Plain,
    /// A `?help=1` answer or an OpenAPI document: also [`help_structure`].
    Help,
}

/// The answer's status, type and text with what must differ replaced by placeholders.
fn normalise(answer: &Answer, kind: Kind) -> String {
    let mut text = answer.text.clone();
    if kind == Kind::Help {
        text = help_structure(&text);
    }
    text = conversion_errors(&text);
    text = negative_zero(&text);
    text = scrub_string_values(&text, "request_id", |_| true, "<request_id>");
    text = scrub_lease_ids(&text);
    for key in ["created_time", "deletion_time", "updated_time"] {
        text = scrub_string_values(&text, key, is_rfc3339, "<time>");
    }
    text = sort_multierror_items(&text);
    format!("{} {}\n{text}", answer.status, answer.content_type)
}

/// Where the JSON string that starts at `text` (after its opening quote) ends: the byte index
/// of its closing quote.
fn string_end(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (at, byte) in text.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(at),
            _ => {}
        }
    }
    None
}

/// Replaces the string value of every `"key":"…"` in JSON text by `placeholder` when `matches`
/// says so.
fn scrub_string_values(
    text: &str,
    key: &str,
    matches: impl Fn(&str) -> bool,
    placeholder: &str,
) -> String {
    let needle = format!("\"{key}\":\"");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let value_start = at + needle.len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        match string_end(rest) {
            Some(end) if matches(&rest[..end]) => {
                out.push_str(placeholder);
                rest = &rest[end..];
            }
            _ => {}
        }
    }
    out.push_str(rest);
    out
}

/// A lease id is `<request path>/<random>` (OpenBao registers one for a version 1 read): the
/// random part is replaced, the path kept, and `""` stays `""`.
fn scrub_lease_ids(text: &str) -> String {
    const NEEDLE: &str = "\"lease_id\":\"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(NEEDLE) {
        let value_start = at + NEEDLE.len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        let Some(end) = string_end(rest) else { break };
        if let Some(slash) = rest[..end].rfind('/') {
            out.push_str(&rest[..=slash]);
            out.push_str("<lease>");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// `2006-01-02T15:04:05.999999999Z07:00`, as Go's `time.RFC3339Nano` writes it.
fn is_rfc3339(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| range.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (value.ends_with('Z') || value[19..].contains(['+', '-']))
}

/// go-multierror's `N errors occurred:\n\t* a\n\t* b\n\n` lists its items in the order they
/// were found, which for custom_metadata is Go's random map order: sorted here (in JSON text,
/// where the newline and tab are escapes).
fn sort_multierror_items(text: &str) -> String {
    const HEAD: &str = " errors occurred:\\n\\t* ";
    const SEPARATOR: &str = "\\n\\t* ";
    const END: &str = "\\n\\n";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(HEAD) {
        let items_start = at + HEAD.len();
        out.push_str(&rest[..items_start]);
        rest = &rest[items_start..];
        let Some(end) = rest.find(END) else { break };
        let mut items: Vec<&str> = rest[..end].split(SEPARATOR).collect();
        items.sort_unstable();
        out.push_str(&items.join(SEPARATOR));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// DELIBERATE DIFFERENCE (docs/kv.md): our help text and OpenAPI descriptions are our own
/// words, and the SDK has no display attributes or response declarations. A help answer is
/// compared with its `help` text replaced by `<help>`, and its OpenAPI document (also
/// `sys/internal/specs/openapi`) reduced to what a client calls: each path, its operations, and
/// per operation its parameters (name, place, required, type) and the request body's fields
/// (name and type, the schema reference resolved). Dropped: every `description` and
/// `summary`, operation ids, responses, tags, schema names, the title, and Go's empty path
/// item for its unpublished catch-all (`/^.*$`, `/<mount>/^.*$`).
fn help_structure(text: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return text.to_owned();
    };
    if let Some(help) = value.get_mut("help").filter(|help| help.is_string()) {
        *help = json!("<help>");
    }
    if let Some(openapi) = value.get_mut("openapi") {
        *openapi = openapi_essentials(openapi);
    } else if value.get("paths").is_some() {
        value = openapi_essentials(&value);
    }
    value.to_string()
}

/// What a client calls in an OpenAPI document (see [`help_structure`]).
fn openapi_essentials(document: &Value) -> Value {
    let schemas = document["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let fields_of = |schema: &Value| -> Value {
        let schema = match schema["$ref"].as_str() {
            Some(reference) => reference
                .rsplit('/')
                .next()
                .and_then(|name| schemas.get(name))
                .cloned()
                .unwrap_or(Value::Null),
            None => schema.clone(),
        };
        let fields: Map<String, Value> = schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, field)| (name.clone(), field["type"].clone()))
            .collect();
        Value::Object(fields)
    };
    let mut paths = Map::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        // `/^.*$`, under the mount's path in `sys/internal/specs/openapi`.
        if path.ends_with("^.*$") {
            continue;
        }
        let mut operations = Map::new();
        for (method, operation) in item.as_object().into_iter().flatten() {
            if !operation.is_object() || method == "parameters" {
                continue;
            }
            let parameters: Vec<Value> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(item["parameters"].as_array().into_iter().flatten())
                .map(|p| json!([p["name"], p["in"], p["required"], p["schema"]["type"]]))
                .collect();
            let body =
                fields_of(&operation["requestBody"]["content"]["application/json"]["schema"]);
            operations.insert(
                method.clone(),
                json!({"parameters": parameters, "body": body}),
            );
        }
        paths.insert(path.clone(), Value::Object(operations));
    }
    json!({ "paths": paths })
}

/// DELIBERATE DIFFERENCE (docs/kv.md): a field that does not convert is refused in OpenBao's
/// SDK's words, which leave out the value given (it may be a secret); the Go plugin, on
/// Vault's SDK, quotes it and words mapstructure v1's cause. Compared: the field's name.
fn conversion_errors(text: &str) -> String {
    const START: &str = "error converting input";
    const FIELD: &str = "for field \\\"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(START) {
        let after = &rest[at..];
        let (Some(field_at), Some(end)) = (after.find(FIELD), string_end(after)) else {
            break;
        };
        if field_at > end {
            break;
        }
        let name_start = field_at + FIELD.len();
        let name_len = after[name_start..].find("\\\"").unwrap_or(0);
        out.push_str(&rest[..at]);
        out.push_str(&format!(
            "{START} for field \\\"{}\\\": <conversion error>",
            &after[name_start..name_start + name_len]
        ));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// DELIBERATE DIFFERENCE (docs/kv.md): version 2 passes numbers through float64 as the Go
/// plugin does, but a negative zero reads back as `0`, where Go writes `-0` (serde_json writes
/// a float zero as `-0.0`, and ours writes integral values as integers). Compared as `0`.
fn negative_zero(text: &str) -> String {
    let mut out = text.to_owned();
    for (before, after) in [
        (":-0,", ":0,"),
        (":-0}", ":0}"),
        (":-0]", ":0]"),
        (",-0,", ",0,"),
        ("[-0,", "[0,"),
        (",-0]", ",0]"),
        ("[-0]", "[0]"),
    ] {
        while out.contains(before) {
            out = out.replace(before, after);
        }
    }
    out
}

/// Where two texts first differ, with some context from each.
fn difference(ours: &str, go: &str) -> String {
    let at = ours
        .bytes()
        .zip(go.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(go.len()));
    let around = |text: &str| {
        let mut start = at.saturating_sub(150);
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (at + 250).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        let prefix = if start > 0 { "…" } else { "" };
        let suffix = if end < text.len() { "…" } else { "" };
        format!("{prefix}{}{suffix}", text[start..end].replace('\n', "⏎"))
    };
    format!(
        "first difference at byte {at} (ours {} bytes, Go {} bytes)\n      ours: {}\n      Go:   {}",
        ours.len(),
        go.len(),
        around(ours),
        around(go)
    )
}

/// The corpus's runner: each request goes to both sides, ours first, and is one case.
struct Suite<'a> {
    pair: &'a Pair,
    table: Table,
    dump: Option<std::fs::File>,
}

impl<'a> Suite<'a> {
    fn new(pair: &'a Pair) -> Self {
        let dump = std::env::var_os("KV_DIFF_DUMP")
            .filter(|path| !path.is_empty())
            .map(|path| std::fs::File::create(path).expect("create KV_DIFF_DUMP"));
        Self {
            pair,
            table: Table::new("kv: ours beside the Go plugin"),
            dump,
        }
    }

    /// Records one case from the two sides' answers.
    fn compare(&mut self, what: &str, kind: Kind, answers: &[Answer; 2]) {
        let [ours, go] = [normalise(&answers[0], kind), normalise(&answers[1], kind)];
        if let Some(dump) = &mut self.dump {
            let _ = writeln!(
                dump,
                "=== {what}\n--- ours\n{}\n--- Go\n{}\n",
                clip(&ours),
                clip(&go)
            );
        }
        let result = if ours == go {
            Ok(())
        } else {
            Err(difference(&ours, &go))
        };
        self.table.case(what, result);
    }

    /// One request, built by `request` for each side; the case is named `what`.
    fn send(&mut self, what: &str, kind: Kind, request: impl Fn(&Side) -> Answer) -> [Answer; 2] {
        let answers = self.pair.sides().map(request);
        self.compare(what, kind, &answers);
        answers
    }

    /// A request with a JSON body or none; the case is named by the request and `note`.
    fn json(&mut self, method: &str, path: &str, body: Option<Value>, note: &str) -> [Answer; 2] {
        let what = name(method, path, note);
        self.send(&what, Kind::Plain, |side| {
            side.json(method, path, body.as_ref())
        })
    }

    fn get(&mut self, path: &str, note: &str) -> [Answer; 2] {
        self.json("GET", path, None, note)
    }

    fn put(&mut self, path: &str, body: Value, note: &str) -> [Answer; 2] {
        self.json("PUT", path, Some(body), note)
    }

    fn delete(&mut self, path: &str, note: &str) -> [Answer; 2] {
        self.json("DELETE", path, None, note)
    }

    fn list(&mut self, path: &str, note: &str) -> [Answer; 2] {
        self.json("LIST", path, None, note)
    }

    /// A PATCH with `application/merge-patch+json`.
    fn patch(&mut self, path: &str, body: Value, note: &str) -> [Answer; 2] {
        let what = name("PATCH", path, note);
        self.send(&what, Kind::Plain, |side| side.patch(path, &body))
    }

    /// A request with exactly this body and `Content-Type`.
    fn raw(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        note: &str,
    ) -> [Answer; 2] {
        let what = name(method, path, note);
        self.send(&what, Kind::Plain, |side| {
            side.request(method, path, content_type, body)
        })
    }

    /// A help or OpenAPI answer, compared by [`help_structure`].
    fn help(&mut self, path: &str, note: &str) -> [Answer; 2] {
        let what = name("GET", path, note);
        self.send(&what, Kind::Help, |side| side.json("GET", path, None))
    }

    /// Polls `path` on each side until `done` says its answer is the expected state (within
    /// [`EXPIRY_DEADLINE`]), then compares the two final answers.
    fn poll_until(&mut self, path: &str, note: &str, done: impl Fn(&Answer) -> bool) {
        let what = name("GET", path, note);
        let mut last: Vec<Answer> = Vec::new();
        let mut timed_out = Vec::new();
        let started = Instant::now();
        for side in self.pair.sides() {
            let mut answer = None;
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                wait_until(&format!("{} {what}", side.label), EXPIRY_DEADLINE, || {
                    let got = side.json("GET", path, None);
                    let finished = done(&got);
                    answer = Some(got);
                    finished
                });
            }));
            if polled.is_err() {
                timed_out.push(side.label);
            }
            last.push(answer.expect("polled at least once"));
        }
        if timed_out.is_empty() {
            let answers: [Answer; 2] = [last[0].clone(), last[1].clone()];
            self.compare(&what, Kind::Plain, &answers);
        } else {
            self.table.case(
                what,
                Err(format!(
                    "{timed_out:?} not in the expected state after {:?}; last answers: ours {} / Go {}",
                    started.elapsed(),
                    clip(&normalise(&last[0], Kind::Plain)),
                    clip(&normalise(&last[1], Kind::Plain))
                )),
            );
        }
    }

    fn finish(self) {
        self.table.finish();
    }
}

/// A case's name: the request and what it is about; very long paths are clipped.
fn name(method: &str, path: &str, note: &str) -> String {
    let path = if path.len() > 120 {
        let mut cut = 100;
        while !path.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…({} bytes)", &path[..cut], path.len())
    } else {
        path.to_owned()
    };
    if note.is_empty() {
        format!("{method} {path}")
    } else {
        format!("{method} {path} ({note})")
    }
}

/// A JSON object from `(key, value)` pairs.
fn object(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value::Object(entries.into_iter().collect::<Map<String, Value>>())
}

#[test]
fn the_kv_engine_answers_as_the_go_plugin_does() {
    let started = Instant::now();
    let pair = Pair::start();
    pair.enable_v2("kvcfg");
    pair.enable_v2("kvcas");
    pair.enable_v2("kvdva");
    pair.enable_v1("kvup");
    let mut s = Suite::new(&pair);
    config(&mut s);
    data(&mut s);
    check_and_set(&mut s);
    version_window(&mut s);
    delete_undelete_destroy(&mut s);
    expiry(&mut s);
    custom_metadata(&mut s);
    metadata(&mut s);
    subkeys(&mut s);
    patch(&mut s);
    paths(&mut s);
    big_values(&mut s);
    catch_all(&mut s);
    help(&mut s);
    version1(&mut s);
    upgrade(&mut s);
    lists(&mut s);
    eprintln!("differential: {:?} in all", started.elapsed());
    s.finish();
}

/// `config`: read and write, every field with good, odd and bad values (mount `kvcfg`).
fn config(s: &mut Suite<'_>) {
    let path = "kvcfg/config";
    s.get(path, "a fresh mount");
    let writes: Vec<(&str, Value)> = vec![
        ("no field: nothing written", json!({})),
        ("only an unknown field", json!({"bogus": 1})),
        ("max_versions 5", json!({"max_versions": 5})),
        ("max_versions as a string", json!({"max_versions": "7"})),
        (
            "max_versions in hexadecimal",
            json!({"max_versions": "0x10"}),
        ),
        ("max_versions -1 wraps", json!({"max_versions": -1})),
        (
            "max_versions beyond 32 bits",
            json!({"max_versions": 4_294_967_297_u64}),
        ),
        ("max_versions not a number", json!({"max_versions": "abc"})),
        ("max_versions 1.5", json!({"max_versions": 1.5})),
        ("max_versions true", json!({"max_versions": true})),
        ("max_versions an array", json!({"max_versions": [1]})),
        ("max_versions null", json!({"max_versions": null})),
        ("cas_required true", json!({"cas_required": true})),
        ("cas_required \"1\"", json!({"cas_required": "1"})),
        ("cas_required 0", json!({"cas_required": 0})),
        ("cas_required \"yes\"", json!({"cas_required": "yes"})),
        ("cas_required an object", json!({"cas_required": {}})),
        (
            "delete_version_after 1h",
            json!({"delete_version_after": "1h"}),
        ),
        (
            "delete_version_after 3600 seconds",
            json!({"delete_version_after": 3600}),
        ),
        (
            "delete_version_after 90m",
            json!({"delete_version_after": "90m"}),
        ),
        (
            "delete_version_after 1d",
            json!({"delete_version_after": "1d"}),
        ),
        (
            "delete_version_after 1h30m15.5s",
            json!({"delete_version_after": "1h30m15.5s"}),
        ),
        (
            "delete_version_after 1.5s",
            json!({"delete_version_after": "1.5s"}),
        ),
        (
            "delete_version_after -5s: disabled",
            json!({"delete_version_after": "-5s"}),
        ),
        (
            "delete_version_after \"-1\"",
            json!({"delete_version_after": "-1"}),
        ),
        ("delete_version_after 0", json!({"delete_version_after": 0})),
        (
            "delete_version_after 0s",
            json!({"delete_version_after": "0s"}),
        ),
        (
            "delete_version_after -30",
            json!({"delete_version_after": -30}),
        ),
        (
            "delete_version_after abc",
            json!({"delete_version_after": "abc"}),
        ),
        (
            "delete_version_after true",
            json!({"delete_version_after": true}),
        ),
        (
            "delete_version_after 1.5",
            json!({"delete_version_after": 1.5}),
        ),
        (
            "delete_version_after null",
            json!({"delete_version_after": null}),
        ),
        (
            "all three fields",
            json!({"max_versions": 3, "cas_required": false, "delete_version_after": "2h"}),
        ),
        (
            "a field and an unknown one",
            json!({"max_versions": 4, "bogus": true}),
        ),
    ];
    for (note, body) in writes {
        s.put(path, body, note);
        s.get(path, &format!("after: {note}"));
    }
    s.json(
        "POST",
        path,
        Some(json!({"max_versions": 6})),
        "POST as a write",
    );
    s.get(&format!("{path}?bogus=1"), "an unknown query parameter");
    s.delete(path, "not an operation of config");
    s.patch(
        path,
        json!({"max_versions": 1}),
        "not an operation of config",
    );
    s.list("kvcfg/config/", "falls to the catch-all");
    s.raw(
        "PUT",
        path,
        Some("application/json"),
        b"{not json",
        "a body that is not JSON",
    );
    s.raw("PUT", path, None, b"", "an empty body");

    // The mount's max_versions against a key's.
    s.put(path, json!({"max_versions": 2}), "a mount limit of 2");
    for n in 1..=4 {
        s.put(
            "kvcfg/data/limited",
            json!({"data": {"n": n}}),
            &format!("version {n} under a mount limit of 2"),
        );
    }
    s.get("kvcfg/metadata/limited", "two versions kept");
    s.put(
        "kvcfg/metadata/limited",
        json!({"max_versions": 1}),
        "a key limit below the mount's",
    );
    s.put(
        "kvcfg/data/limited",
        json!({"data": {"n": 5}}),
        "the mount's limit still applies",
    );
    s.get(
        "kvcfg/metadata/limited",
        "after a key limit below the mount's",
    );
    s.put(
        "kvcfg/metadata/limited",
        json!({"max_versions": 4}),
        "a key limit above the mount's",
    );
    for n in 6..=8 {
        s.put(
            "kvcfg/data/limited",
            json!({"data": {"n": n}}),
            &format!("version {n} under a key limit of 4"),
        );
    }
    s.get("kvcfg/metadata/limited", "four versions kept");
    s.get("kvcfg/data/limited?version=4", "pruned");
    s.get("kvcfg/data/limited?version=5", "the oldest kept");
    s.put(
        path,
        json!({"max_versions": 0, "cas_required": false, "delete_version_after": 0}),
        "back to the defaults",
    );
    s.get(path, "the defaults again");
}

/// `data/`: writes and reads, versions, bad bodies, numbers (mount `kv2`).
fn data(s: &mut Suite<'_>) {
    let key = format!("{V2}/data/basic");
    s.get(&key, "before any write");
    s.put(&key, json!({"data": {"a": "b"}}), "the first version");
    s.get(&key, "the first version");
    s.put(
        &key,
        json!({"data": {
            "int": 1, "float": 1.0, "negative": -2.5, "exp": 1e3,
            "big": 12_345_678_901_234_567_890_u64, "beyond_f64": 9_007_199_254_740_993_u64,
            "nested": {"x": [1, 2, {"y": null}], "z": {}},
            "bool": true, "null": null, "html": "<a href=\"x\">&</a>", "unicode": "ключ ✓ \u{1F511}",
            "empty": "", "list": []
        }}),
        "every kind of value",
    );
    s.get(&key, "numbers through float64, HTML escaped");
    s.raw(
        "PUT",
        &key,
        Some("application/json"),
        br#"{"data":{"exact":1.000,"neg_zero":-0,"e":1E2,"small":0.1e-7}}"#,
        "number literals written as text",
    );
    s.get(&key, "number literals read back");
    for query in ["1", "2", "3", "4", "0", "-1", "abc", "1.5", "0x2", ""] {
        s.get(
            &format!("{key}?version={query}"),
            "a version chosen by query",
        );
    }
    s.put(&key, json!({"options": {}}), "no data field");
    s.put(&key, json!({"data": null}), "data null is stored");
    s.get(&key, "data null");
    s.put(&key, json!({"data": "text"}), "data a string");
    s.put(&key, json!({"data": [1, 2]}), "data an array");
    s.put(&key, json!({"data": 7}), "data a number");
    s.put(&key, json!({"data": {}}), "data empty");
    s.get(&key, "data empty");
    s.put(
        &key,
        json!({"data": {"k": "v"}, "bogus": 1, "other": "x"}),
        "unknown fields",
    );
    s.put(
        &key,
        json!({"data": {"k": "v"}, "path": "elsewhere"}),
        "a path field the URL replaces",
    );
    s.put(
        &key,
        json!({"data": {"k": "v"}, "version": 99}),
        "a version field on write",
    );
    s.put(
        &key,
        json!({"data": {"k": "v"}, "options": "text"}),
        "options a string",
    );
    s.put(
        &key,
        json!({"data": {"k": "v"}, "options": {"bogus": 1}}),
        "an unknown option",
    );
    s.raw(
        "PUT",
        &key,
        Some("application/json"),
        b"{not json",
        "a body that is not JSON",
    );
    s.raw("PUT", &key, None, b"", "an empty body");
    s.raw(
        "PUT",
        &key,
        Some("application/json"),
        b"[1,2]",
        "a body that is an array",
    );
    s.json(
        "POST",
        &key,
        Some(json!({"data": {"via": "POST"}})),
        "POST as a write",
    );
    s.get(&format!("{key}?bogus=1"), "an unknown query parameter");
    s.get(&format!("{V2}/metadata/basic"), "after the writes");
    s.get(&format!("{V2}/data/missing"), "never written");
    s.delete(&format!("{V2}/data/missing"), "never written");
    s.list(&format!("{V2}/data/"), "list is not an operation of data");
    s.get(&format!("{key}?list=true"), "list by query");
    s.raw(
        "PUT",
        &format!("{V2}/data/huge-number"),
        Some("application/json"),
        br#"{"data":{"huge":1e400}}"#,
        "a number beyond float64",
    );
    s.get(
        &format!("{V2}/data/huge-number"),
        "a number beyond float64 read back",
    );
    s.put(
        &format!("{V2}/data/html"),
        json!({"data": {"<script>": "a&b", "quote\"": "\u{2028}"}}),
        "keys and values to escape",
    );
    s.get(&format!("{V2}/data/html"), "keys and values to escape");
}

/// Check-and-set: right, wrong, missing, required by the key and by the mount, odd values.
fn check_and_set(s: &mut Suite<'_>) {
    let key = format!("{V2}/data/cas");
    let write = |s: &mut Suite<'_>, cas: Value, note: &str| {
        s.put(
            &key,
            json!({"data": {"note": note}, "options": {"cas": cas}}),
            note,
        );
    };
    write(s, json!(0), "cas 0 on a new key");
    write(s, json!(0), "cas 0 on an existing key");
    write(s, json!(1), "cas 1, the current version");
    write(s, json!(5), "cas 5, not the current version");
    write(s, json!(""), "cas \"\" is 0");
    write(s, Value::Null, "cas null is 0");
    write(s, json!(true), "cas true is 1");
    write(s, json!(1.5), "cas 1.5");
    write(s, json!("2"), "cas \"2\", the current version");
    write(s, json!("abc"), "cas not a number");
    write(s, json!(-1), "cas -1");
    write(s, json!([3]), "cas an array");
    write(s, json!({"v": 3}), "cas an object");
    write(
        s,
        json!("0x3"),
        "cas \"0x3\", the current version in hexadecimal",
    );
    s.get(
        &format!("{V2}/metadata/cas"),
        "after the check-and-set writes",
    );
    for (name, cas) in [
        ("cas-empty", json!("")),
        ("cas-null", Value::Null),
        ("cas-true", json!(true)),
    ] {
        s.put(
            &format!("{V2}/data/{name}"),
            json!({"data": {"a": 1}, "options": {"cas": cas}}),
            "a new key",
        );
    }

    // Required by the key.
    let required = format!("{V2}/data/cas-required");
    s.put(
        &format!("{V2}/metadata/cas-required"),
        json!({"cas_required": true}),
        "the key requires check-and-set",
    );
    s.put(
        &required,
        json!({"data": {"a": 1}}),
        "no cas on a key requiring it",
    );
    s.put(
        &required,
        json!({"data": {"a": 1}, "options": {}}),
        "empty options on a key requiring it",
    );
    s.put(
        &required,
        json!({"data": {"a": 1}, "options": {"cas": 0}}),
        "cas 0 on a metadata-only key",
    );
    s.put(
        &required,
        json!({"data": {"a": 2}, "options": {"cas": 1}}),
        "cas 1 on a key requiring it",
    );
    s.patch(
        &required,
        json!({"data": {"b": 3}}),
        "no cas on a key requiring it",
    );
    s.patch(
        &required,
        json!({"data": {"b": 3}, "options": {"cas": 2}}),
        "cas 2 on a key requiring it",
    );

    // Required by the mount (kvcas).
    s.put(
        "kvcas/config",
        json!({"cas_required": true}),
        "the mount requires it",
    );
    s.put(
        "kvcas/data/k",
        json!({"data": {"a": 1}}),
        "no cas on the mount requiring it",
    );
    s.put(
        "kvcas/data/k",
        json!({"data": {"a": 1}, "options": {"cas": 0}}),
        "cas 0 on the mount requiring it",
    );
    s.put(
        "kvcas/metadata/k",
        json!({"cas_required": false}),
        "false on a key of a mount requiring it: a warning",
    );
    s.get("kvcas/metadata/k", "the false is stored");
    s.put(
        "kvcas/data/k",
        json!({"data": {"a": 2}}),
        "still required by the mount",
    );
    s.patch(
        "kvcas/metadata/k",
        json!({"cas_required": false}),
        "false patched on a key of a mount requiring it",
    );
    s.patch(
        "kvcas/data/k",
        json!({"data": {"b": 1}}),
        "no cas on the mount requiring it",
    );
    s.patch(
        "kvcas/data/k",
        json!({"data": {"b": 1}, "options": {"cas": 1}}),
        "cas 1 on the mount requiring it",
    );
    s.get("kvcas/data/k", "after the check-and-set patch");
}

/// More versions than max_versions: 12 writes, the pruned versions, a lowered limit.
fn version_window(s: &mut Suite<'_>) {
    let key = format!("{V2}/data/twelve");
    for n in 1..=12 {
        s.put(
            &key,
            json!({"data": {"n": n}}),
            &format!("version {n} of 12"),
        );
    }
    let metadata = format!("{V2}/metadata/twelve");
    s.get(&metadata, "twelve versions written, ten kept");
    for version in [1, 2, 3, 12, 13] {
        s.get(&format!("{key}?version={version}"), "after 12 writes");
    }
    s.put(&metadata, json!({"max_versions": 3}), "a lower limit");
    s.get(&metadata, "a lower limit, nothing pruned yet");
    s.put(&key, json!({"data": {"n": 13}}), "the write that prunes");
    s.get(&metadata, "pruned to three");
    s.get(&format!("{key}?version=10"), "pruned by the lower limit");
    s.get(&format!("{key}?version=11"), "the oldest kept");
    // A destroyed version in the window: pruning stops at its missing blob.
    s.put(
        &format!("{V2}/destroy/twelve"),
        json!({"versions": [12]}),
        "destroy inside the window",
    );
    s.put(
        &key,
        json!({"data": {"n": 14}}),
        "a prune across a destroyed version",
    );
    s.put(
        &key,
        json!({"data": {"n": 15}}),
        "a prune across a destroyed version",
    );
    s.get(&metadata, "after pruning across a destroyed version");
}

/// delete/, undelete/ and destroy/ of current, old, missing and destroyed versions.
fn delete_undelete_destroy(s: &mut Suite<'_>) {
    let key = format!("{V2}/data/dud");
    for n in 1..=5 {
        s.put(
            &key,
            json!({"data": {"n": n}}),
            &format!("version {n} of 5"),
        );
    }
    let delete = format!("{V2}/delete/dud");
    let undelete = format!("{V2}/undelete/dud");
    let destroy = format!("{V2}/destroy/dud");
    let metadata = format!("{V2}/metadata/dud");

    s.delete(&key, "deletes the current version");
    s.get(&key, "the current version deleted");
    s.get(&format!("{key}?version=4"), "an older version still there");
    s.delete(&key, "the current version already deleted");
    s.put(&delete, json!({"versions": "1,2"}), "versions as \"1,2\"");
    s.get(&format!("{key}?version=1"), "deleted by delete/");
    s.put(
        &delete,
        json!({"versions": [3, "4"]}),
        "versions as [3, \"4\"]",
    );
    s.put(&delete, json!({"versions": 1}), "versions as one number");
    s.put(&delete, json!({"versions": "1"}), "versions as one string");
    s.put(&delete, json!({}), "no versions field");
    s.put(&delete, json!({"versions": []}), "an empty list");
    s.put(&delete, json!({"versions": ""}), "an empty string");
    s.put(&delete, json!({"versions": "abc"}), "not a number");
    s.put(&delete, json!({"versions": [1.5]}), "a fraction");
    s.put(&delete, json!({"versions": {"a": 1}}), "an object");
    s.put(
        &delete,
        json!({"versions": [99]}),
        "a version never written",
    );
    s.put(&delete, json!({"versions": [-1]}), "a negative version");
    s.put(
        &format!("{V2}/delete/never-written"),
        json!({"versions": [1]}),
        "a key never written",
    );
    s.put(
        &format!("{V2}/delete/"),
        json!({"versions": [1]}),
        "an empty key",
    );
    s.put(
        &format!("{V2}/delete/"),
        json!({}),
        "an empty key and no versions",
    );
    s.get(&metadata, "after the deletes");

    s.put(&undelete, json!({"versions": [1, 5]}), "undelete 1 and 5");
    s.get(&format!("{key}?version=1"), "undeleted");
    s.get(&key, "the current version undeleted");
    s.put(&undelete, json!({}), "no versions field");
    s.put(
        &undelete,
        json!({"versions": "99"}),
        "a version never written",
    );
    s.put(
        &format!("{V2}/undelete/never-written"),
        json!({"versions": [1]}),
        "a key never written",
    );
    s.put(&undelete, json!({"versions": "3,4"}), "versions as \"3,4\"");
    s.get(&metadata, "after the undeletes");

    s.put(&destroy, json!({"versions": [2]}), "destroy version 2");
    s.get(&format!("{key}?version=2"), "destroyed");
    s.put(&destroy, json!({"versions": [2]}), "version 2 again");
    s.put(&destroy, json!({}), "no versions field (lower case)");
    s.put(
        &destroy,
        json!({"versions": "99,-1"}),
        "unknown and negative versions",
    );
    s.put(
        &format!("{V2}/destroy/never-written"),
        json!({"versions": [1]}),
        "a key never written",
    );
    s.put(
        &undelete,
        json!({"versions": [2]}),
        "undelete a destroyed version",
    );
    s.put(
        &delete,
        json!({"versions": [2]}),
        "delete a destroyed version",
    );
    s.get(&format!("{key}?version=2"), "still destroyed");
    s.put(
        &destroy,
        json!({"versions": [5]}),
        "destroy the current version",
    );
    s.delete(&key, "the current version destroyed");
    s.get(&key, "the current version destroyed");
    s.get(&metadata, "after the destroys");
    s.get(&delete, "read is not an operation of delete/");
    s.delete(&delete, "delete is not an operation of delete/");
    s.list(
        &format!("{V2}/destroy/"),
        "list is not an operation of destroy/",
    );
    s.patch(
        &undelete,
        json!({"versions": [1]}),
        "patch is not an operation of undelete/",
    );
}

/// delete_version_after: a time in the future, versions that expire (polled), undelete of an
/// expired version, the mount's and the key's values, a disabled mount value.
fn expiry(s: &mut Suite<'_>) {
    s.put(
        &format!("{V2}/metadata/dva/hour"),
        json!({"delete_version_after": "1h"}),
        "a key's hour",
    );
    s.put(
        &format!("{V2}/data/dva/hour"),
        json!({"data": {"a": 1}}),
        "a deletion time an hour ahead",
    );
    s.get(&format!("{V2}/data/dva/hour"), "not deleted yet");
    s.get(&format!("{V2}/metadata/dva/hour"), "the key's hour");
    s.put(
        &format!("{V2}/metadata/dva/negative"),
        json!({"delete_version_after": "-1s"}),
        "a negative key value",
    );
    s.put(
        &format!("{V2}/metadata/dva/zero"),
        json!({"delete_version_after": "0s"}),
        "a zero key value",
    );
    s.get(&format!("{V2}/metadata/dva/zero"), "a zero key value");

    // A key's second.
    let key = format!("{V2}/data/dva/second");
    s.put(
        &format!("{V2}/metadata/dva/second"),
        json!({"delete_version_after": "1s"}),
        "a key's second",
    );
    s.put(&key, json!({"data": {"a": 1}}), "deleted a second after");
    let deleted = |answer: &Answer| answer.status == 404;
    s.poll_until(&key, "polled until expired", deleted);
    s.get(&format!("{V2}/metadata/dva/second"), "expired");
    s.get(&format!("{V2}/subkeys/dva/second"), "expired");
    s.patch(&key, json!({"data": {"b": 2}}), "expired");
    s.delete(&key, "already expired");
    s.put(
        &format!("{V2}/undelete/dva/second"),
        json!({"versions": [1]}),
        "an expired version, deleted again a second later",
    );
    s.poll_until(&key, "polled until expired again", deleted);

    // The mount's second (kvdva).
    s.put(
        "kvdva/config",
        json!({"delete_version_after": "1s"}),
        "a mount's second",
    );
    s.put(
        "kvdva/data/k",
        json!({"data": {"a": 1}}),
        "deleted a second after",
    );
    s.poll_until("kvdva/data/k", "polled until expired", deleted);
    s.get("kvdva/metadata/k", "expired by the mount's value");
    s.put(
        "kvdva/metadata/hour",
        json!({"delete_version_after": "1h"}),
        "a key longer than the mount",
    );
    s.put(
        "kvdva/data/hour",
        json!({"data": {"a": 1}}),
        "the shorter of the two",
    );
    s.poll_until("kvdva/data/hour", "polled until expired", deleted);

    // A disabled mount value disables the keys' values too.
    s.put(
        "kvdva/config",
        json!({"delete_version_after": "-3s"}),
        "disabled",
    );
    s.get("kvdva/config", "disabled reads -1s");
    s.put(
        "kvdva/metadata/never",
        json!({"delete_version_after": "1s"}),
        "a key's second on a disabled mount",
    );
    s.put(
        "kvdva/data/never",
        json!({"data": {"a": 1}}),
        "no deletion time",
    );
    s.get("kvdva/data/never", "no deletion time");
    s.put(
        "kvdva/undelete/never",
        json!({"versions": [1]}),
        "undelete on a disabled mount",
    );
    s.get("kvdva/data/never", "no deletion time after undelete");

    // Undelete of a version never deleted sets a deletion time from now.
    s.put(
        "kvdva/config",
        json!({"delete_version_after": "2h"}),
        "two hours",
    );
    s.put(
        "kvdva/data/later",
        json!({"data": {"a": 1}}),
        "two hours ahead",
    );
    s.put(
        "kvdva/undelete/later",
        json!({"versions": [1]}),
        "a version never deleted",
    );
    s.get("kvdva/metadata/later", "rescheduled by undelete");
    s.put(
        "kvdva/config",
        json!({"delete_version_after": 0}),
        "back to none",
    );
}

/// custom_metadata limits on metadata PUT and PATCH, and what each stores.
fn custom_metadata(s: &mut Suite<'_>) {
    let path = format!("{V2}/metadata/cm");
    let keys = |n: usize| object((0..n).map(|i| (format!("key{i:02}"), json!(format!("v{i}")))));
    let cases: Vec<(&str, Value)> = vec![
        ("one entry", json!({"a": "b"})),
        ("64 entries", keys(64)),
        ("65 entries", keys(65)),
        ("a 128-byte key", object([("k".repeat(128), json!("v"))])),
        ("a 129-byte key", object([("k".repeat(129), json!("v"))])),
        ("a 512-byte value", json!({"a": "v".repeat(512)})),
        ("a 513-byte value", json!({"a": "v".repeat(513)})),
        (
            "a 2-byte character at the key limit",
            object([("é".repeat(64), json!("v"))]),
        ),
        (
            "a 2-byte character over the key limit",
            object([(format!("{}é", "k".repeat(127)), json!("v"))]),
        ),
        ("an empty key", json!({"": "v"})),
        ("an empty value", json!({"a": ""})),
        ("a newline in a key", json!({"a\nb": "v"})),
        ("a tab in a value", json!({"a": "x\ty"})),
        ("a space is printable", json!({"a b": "c d"})),
        ("a zero-width space in a key", json!({"a\u{200B}": "v"})),
        ("a NUL in a value", json!({"a": "x\u{0}"})),
        ("unicode letters", json!({"ключ": "значение ✓"})),
        ("two bad entries", json!({"": "v", "b": ""})),
        ("three bad entries", json!({"": "v", "b": "", "c\n": "x"})),
        ("a number value", json!({"n": 1})),
        ("a fraction value", json!({"n": 1.5})),
        ("a bool value", json!({"t": true, "f": false})),
        ("a null value", json!({"z": null})),
        ("a nested object", json!({"o": {"a": "b"}})),
        ("an array value", json!({"l": ["a"]})),
        ("65 entries, one of them bad", {
            let mut map = keys(64);
            map["k".repeat(129)] = json!("v");
            map
        }),
    ];
    for (note, custom) in &cases {
        s.put(&path, json!({"custom_metadata": custom}), note);
        s.get(&path, &format!("after PUT: {note}"));
    }
    s.put(
        &path,
        json!({"custom_metadata": "text"}),
        "custom_metadata a string",
    );
    s.put(
        &path,
        json!({"custom_metadata": [1]}),
        "custom_metadata an array",
    );
    s.put(
        &path,
        json!({"custom_metadata": null}),
        "custom_metadata null",
    );
    s.get(&path, "after custom_metadata null");

    s.put(
        &path,
        json!({"custom_metadata": {"keep": "1"}}),
        "a base for the patches",
    );
    for (note, custom) in &cases {
        s.patch(&path, json!({"custom_metadata": custom}), note);
        s.get(&path, &format!("after PATCH: {note}"));
    }
    s.patch(
        &path,
        json!({"custom_metadata": {"key00": null, "keep": null}}),
        "null entries remove keys",
    );
    s.get(&path, "after removing keys");
    s.patch(&path, json!({"custom_metadata": keys(60)}), "60 more");
    s.patch(
        &path,
        json!({"custom_metadata": object((60..70).map(|i| (format!("more{i}"), json!("m"))))}),
        "10 more: the merge is not checked",
    );
    s.get(&path, "over 64 entries after a merge");
    s.patch(
        &path,
        json!({"custom_metadata": null}),
        "null removes the map",
    );
    s.get(&path, "after removing the map");
    s.patch(
        &path,
        json!({"custom_metadata": "text"}),
        "custom_metadata a string",
    );
}

/// metadata/: read, write, patch, delete, list, metadata-only keys, empty and trailing-slash
/// keys.
fn metadata(s: &mut Suite<'_>) {
    let base = format!("{V2}/metadata");
    s.get(&format!("{base}/basic"), "a written key");
    s.put(
        &format!("{base}/meta-only"),
        json!({}),
        "no field: nothing created",
    );
    s.get(&format!("{base}/meta-only"), "not created");
    s.put(
        &format!("{base}/meta-only"),
        json!({"max_versions": 2, "delete_version_after": "3h"}),
        "a metadata-only key",
    );
    s.get(&format!("{base}/meta-only"), "a metadata-only key");
    s.get(&format!("{V2}/data/meta-only"), "a metadata-only key");
    s.get(&format!("{V2}/subkeys/meta-only"), "a metadata-only key");
    s.patch(
        &format!("{V2}/data/meta-only"),
        json!({"data": {"a": 1}}),
        "a metadata-only key",
    );
    s.put(
        &format!("{V2}/data/meta-only"),
        json!({"data": {"a": 1}, "options": {"cas": 0}}),
        "cas 0 on a metadata-only key",
    );
    s.get(&format!("{base}/meta-only"), "a version written");
    let bad: Vec<(&str, Value)> = vec![
        ("max_versions abc", json!({"max_versions": "abc"})),
        ("max_versions -1 wraps", json!({"max_versions": -1})),
        ("cas_required maybe", json!({"cas_required": "maybe"})),
        (
            "delete_version_after -1s",
            json!({"delete_version_after": "-1s"}),
        ),
        (
            "delete_version_after abc",
            json!({"delete_version_after": "abc"}),
        ),
        (
            "delete_version_after 1d",
            json!({"delete_version_after": "1d"}),
        ),
        (
            "delete_version_after 90",
            json!({"delete_version_after": 90}),
        ),
        ("delete_version_after 0", json!({"delete_version_after": 0})),
        ("an unknown field", json!({"max_versions": 3, "bogus": 1})),
    ];
    for (note, body) in &bad {
        s.put(&format!("{base}/meta-fields"), body.clone(), note);
        s.get(
            &format!("{base}/meta-fields"),
            &format!("after PUT: {note}"),
        );
    }
    let patches: Vec<(&str, Value)> = vec![
        ("max_versions 7", json!({"max_versions": 7})),
        ("max_versions null", json!({"max_versions": null})),
        ("max_versions -1", json!({"max_versions": -1})),
        ("cas_required true", json!({"cas_required": true})),
        (
            "delete_version_after 0s",
            json!({"delete_version_after": "0s"}),
        ),
        (
            "delete_version_after 1h",
            json!({"delete_version_after": "1h"}),
        ),
        (
            "delete_version_after -1s",
            json!({"delete_version_after": "-1s"}),
        ),
        ("nothing", json!({})),
        ("an unknown field", json!({"bogus": 1})),
    ];
    for (note, body) in &patches {
        s.patch(&format!("{base}/meta-fields"), body.clone(), note);
        s.get(
            &format!("{base}/meta-fields"),
            &format!("after PATCH: {note}"),
        );
    }
    s.patch(
        &format!("{base}/never-written"),
        json!({"max_versions": 1}),
        "a missing key",
    );
    s.patch(
        &format!("{base}/"),
        json!({"max_versions": 1}),
        "an empty key",
    );
    s.raw(
        "PATCH",
        &format!("{base}/meta-fields"),
        Some("application/json"),
        br#"{"max_versions":1}"#,
        "the wrong content type",
    );
    s.raw(
        "PATCH",
        &format!("{base}/meta-fields"),
        Some("application/merge-patch+json"),
        b"{not json",
        "a body that is not JSON",
    );
    s.get(&format!("{base}/"), "an empty key");
    s.put(
        &format!("{base}/"),
        json!({"max_versions": 1}),
        "an empty key",
    );
    s.delete(&format!("{base}/"), "an empty key");

    // A trailing slash reads the key without it; a delete through it orphans the blobs.
    s.put(
        &format!("{V2}/data/slash"),
        json!({"data": {"a": 1}}),
        "a key",
    );
    s.get(
        &format!("{base}/slash/"),
        "the key's metadata through a trailing slash",
    );
    s.delete(&format!("{base}/slash/"), "delete through a trailing slash");
    s.get(&format!("{base}/slash"), "deleted through a trailing slash");
    s.get(&format!("{V2}/data/slash"), "metadata gone");
    s.put(
        &format!("{V2}/data/slash"),
        json!({"data": {"a": 2}}),
        "written again",
    );
    s.get(&format!("{V2}/data/slash"), "written again");

    s.put(
        &format!("{V2}/data/gone"),
        json!({"data": {"a": 1}}),
        "a key",
    );
    s.put(
        &format!("{V2}/data/gone"),
        json!({"data": {"a": 2}}),
        "a key",
    );
    s.delete(&format!("{base}/gone"), "every version and the metadata");
    s.get(&format!("{base}/gone"), "deleted");
    s.get(
        &format!("{V2}/data/gone?version=1"),
        "deleted with its metadata",
    );
    s.delete(&format!("{base}/gone"), "already deleted");
    s.list(&format!("{base}/gone"), "listed no more");
    s.get(&format!("{base}?list=true"), "the root listed by query");
}

/// subkeys/: depths, versions, deleted and destroyed versions, missing keys.
fn subkeys(s: &mut Suite<'_>) {
    let key = format!("{V2}/data/sub");
    s.put(&key, json!({"data": {"only": "v1"}}), "version 1");
    s.put(
        &key,
        json!({"data": {"a": {"b": {"c": 1, "d": {}}}, "e": [1, {"f": 2}], "g": {}, "h": "x", "i": null}}),
        "version 2",
    );
    let sub = format!("{V2}/subkeys/sub");
    s.get(&sub, "the current version, unlimited depth");
    for depth in ["0", "1", "2", "3", "-1", "abc", "1.5", ""] {
        s.get(&format!("{sub}?depth={depth}"), "a depth");
    }
    s.get(&format!("{sub}?version=1"), "version 1");
    s.get(&format!("{sub}?version=1&depth=1"), "version 1, depth 1");
    s.get(&format!("{sub}?version=9"), "a version never written");
    s.get(&format!("{sub}?bogus=1"), "an unknown query parameter");
    s.put(
        &format!("{V2}/delete/sub"),
        json!({"versions": [1]}),
        "delete version 1",
    );
    s.get(&format!("{sub}?version=1"), "a deleted version");
    s.put(
        &format!("{V2}/destroy/sub"),
        json!({"versions": [2]}),
        "destroy version 2",
    );
    s.get(&sub, "a destroyed version");
    s.get(
        &format!("{V2}/subkeys/never-written"),
        "a key never written",
    );
    s.get(&format!("{V2}/subkeys/"), "an empty key");
    s.put(&sub, json!({}), "write is not an operation of subkeys/");
    s.put(
        &format!("{V2}/data/sub-null"),
        json!({"data": null}),
        "data null",
    );
    s.get(&format!("{V2}/subkeys/sub-null"), "data null");
    s.put(
        &format!("{V2}/data/sub-empty"),
        json!({"data": {}}),
        "data empty",
    );
    s.get(&format!("{V2}/subkeys/sub-empty"), "data empty");
}

/// PATCH of data: merges, nulls, nested objects, missing keys, deleted and destroyed versions.
fn patch(s: &mut Suite<'_>) {
    let key = format!("{V2}/data/pt");
    s.put(
        &key,
        json!({"data": {"a": "1", "b": "2", "nested": {"x": 1, "y": {"z": 2}}, "n": 5}}),
        "a base",
    );
    s.patch(
        &key,
        json!({"data": {"a": "new", "b": null, "c": [1, 2], "nested": {"y": {"w": 3}, "x": null}}}),
        "merged: replace, remove, add, nested",
    );
    s.get(&key, "after a merge");
    s.patch(
        &key,
        json!({"data": {"nested": "flat"}}),
        "an object replaced by a string",
    );
    s.patch(
        &key,
        json!({"data": {"nested": {"again": true}}}),
        "a string replaced by an object",
    );
    s.patch(
        &key,
        json!({"data": {}}),
        "an empty patch: a new version anyway",
    );
    s.get(&key, "after the patches");
    s.patch(&key, json!({"options": {}}), "no data");
    s.patch(
        &key,
        json!({"data": {"a": 1}, "options": {"cas": 1}}),
        "a wrong cas",
    );
    s.patch(
        &key,
        json!({"data": {"a": 1}, "options": {"cas": 5}}),
        "the right cas",
    );
    s.patch(
        &key,
        json!({"data": {"a": 1}, "bogus": 2}),
        "an unknown field",
    );
    s.patch(&key, json!({"data": "text"}), "data a string");
    s.raw(
        "PATCH",
        &key,
        Some("application/json"),
        br#"{"data":{"a":2}}"#,
        "the wrong content type",
    );
    s.raw(
        "PATCH",
        &key,
        None,
        br#"{"data":{"a":2}}"#,
        "no content type",
    );
    s.raw(
        "PATCH",
        &key,
        Some("application/merge-patch+json"),
        b"{not json",
        "a body that is not JSON",
    );
    s.patch(
        &format!("{V2}/data/never-written"),
        json!({"data": {"a": 1}}),
        "a missing key",
    );
    s.delete(&key, "the current version");
    s.patch(
        &key,
        json!({"data": {"a": 1}}),
        "the current version deleted",
    );
    s.put(&key, json!({"data": {"a": 1}}), "a new version");
    s.put(
        &format!("{V2}/destroy/pt"),
        json!({"versions": [8]}),
        "the current version",
    );
    s.patch(
        &key,
        json!({"data": {"a": 1}}),
        "the current version destroyed",
    );
    s.put(
        &format!("{V2}/data/pt-null"),
        json!({"data": {"a": 1}}),
        "a base",
    );
    s.patch(
        &format!("{V2}/data/pt-null"),
        json!({"data": null}),
        "data null",
    );
    s.get(
        &format!("{V2}/data/pt-null"),
        "after a patch with data null",
    );
    s.put(
        &format!("{V2}/data/pt-stored-null"),
        json!({"data": null}),
        "data null stored",
    );
    s.patch(
        &format!("{V2}/data/pt-stored-null"),
        json!({"data": {"a": 1}}),
        "patch over a stored null",
    );
    s.get(
        &format!("{V2}/data/pt-stored-null"),
        "after a patch over a stored null",
    );
    s.put(
        &format!("{V2}/data/pt-numbers"),
        json!({"data": {"big": 12_345_678_901_234_567_890_u64, "f": 1.0}}),
        "numbers",
    );
    s.patch(
        &format!("{V2}/data/pt-numbers"),
        json!({"data": {"g": 2.50}}),
        "numbers through float64",
    );
    s.get(&format!("{V2}/data/pt-numbers"), "after a patch of numbers");
}

/// Keys with spaces, unicode, empty segments, encoded slashes, very long names.
fn paths(s: &mut Suite<'_>) {
    let keys = [
        ("a space", "a b"),
        ("unicode", "ключ/秘密/✓"),
        ("an encoded percent", "100%"),
        ("a question mark", "why?"),
        ("a hash", "no#1"),
        ("a plus", "a+b"),
        ("dots inside a name", "a..b"),
        ("three dots", "..."),
        ("a leading dash", "-x"),
        ("a quote", "it's \"quoted\""),
        ("a backslash", "back\\slash"),
    ];
    for (note, key) in keys {
        let path = enc(key);
        s.put(
            &format!("{V2}/data/{path}"),
            json!({"data": {"key": key}}),
            note,
        );
        s.get(&format!("{V2}/data/{path}"), note);
        s.get(&format!("{V2}/metadata/{path}"), note);
        s.put(&format!("{V1}/{path}"), json!({"key": key}), note);
        s.get(&format!("{V1}/{path}"), note);
    }
    s.list(
        &format!("{V2}/metadata/{}", enc("ключ/")),
        "a unicode folder",
    );
    s.list(&format!("{V1}/{}", enc("ключ/秘密/")), "a unicode folder");
    // What Go's HTTP server does first: redirects, decoding.
    for path in ["a//b", "a/./b", "a/../b", "./a", "a/.", "a/..", "//a"] {
        s.put(
            &format!("{V2}/data/{path}"),
            json!({"data": {"p": path}}),
            "a path the server cleans",
        );
        s.get(&format!("{V1}/{path}"), "a path the server cleans");
    }
    s.put(
        &format!("{V2}/data/a%2Fb"),
        json!({"data": {"p": 1}}),
        "an encoded slash",
    );
    s.get(
        &format!("{V2}/data/a/b"),
        "written through an encoded slash",
    );
    s.get(
        &format!("{V2}/data/a%2fb"),
        "an encoded slash in lower case",
    );
    s.put(
        &format!("{V2}/data/nl%0Ax"),
        json!({"data": {"p": 1}}),
        "a newline in the key",
    );
    s.get(&format!("{V2}/metadata/nl%0Ax"), "a newline in the key");
    s.put(
        &format!("{V1}/nl%0Ax"),
        json!({"p": 1}),
        "a newline in the key",
    );
    s.get(&format!("{V1}/nl%0Ax"), "a newline in the key");
    s.put(
        &format!("{V2}/data/tab%09x"),
        json!({"data": {"p": 1}}),
        "a tab in the key",
    );
    s.put(
        &format!("{V2}/data/nul%00x"),
        json!({"data": {"p": 1}}),
        "a NUL in the key",
    );
    s.put(
        &format!("{V2}/data/x/"),
        json!({"data": {"p": 1}}),
        "a trailing slash",
    );
    s.put(
        &format!("{V2}/data/x"),
        json!({"data": {"p": 1}}),
        "the same without it",
    );
    s.get(&format!("{V2}/metadata/x/"), "the key without the slash");
    s.put(
        &format!("{V2}/data/x//"),
        json!({"data": {"p": 1}}),
        "two trailing slashes",
    );
    // The server refuses a write ending in '/'; a patch goes through.
    s.put(
        &format!("{V2}/metadata/x/"),
        json!({"max_versions": 3}),
        "a trailing slash",
    );
    s.patch(
        &format!("{V2}/metadata/x/"),
        json!({"max_versions": 3}),
        "a trailing slash",
    );
    s.get(
        &format!("{V2}/metadata/x"),
        "patched through a trailing slash",
    );
    s.patch(
        &format!("{V2}/data/x/"),
        json!({"data": {"q": 2}}),
        "a trailing slash",
    );
    let long = "k".repeat(4096);
    s.put(
        &format!("{V2}/data/{long}"),
        json!({"data": {"a": 1}}),
        "a 4096-byte key",
    );
    s.get(&format!("{V2}/data/{long}"), "a 4096-byte key");
    s.get(&format!("{V2}/metadata/{long}"), "a 4096-byte key");
    s.put(&format!("{V1}/{long}"), json!({"a": 1}), "a 4096-byte key");
    s.get(&format!("{V1}/{long}"), "a 4096-byte key");
    let deep = (0..64)
        .map(|i| format!("d{i}"))
        .collect::<Vec<_>>()
        .join("/");
    s.put(
        &format!("{V2}/data/{deep}"),
        json!({"data": {"a": 1}}),
        "64 segments",
    );
    s.get(&format!("{V2}/data/{deep}"), "64 segments");
    s.list(
        &format!("{V2}/metadata/{}", &deep[..deep.rfind('/').unwrap() + 1]),
        "63 folders deep",
    );
}

/// 1 MiB values through both versions.
fn big_values(s: &mut Suite<'_>) {
    let value = "v".repeat(MIB);
    s.put(
        &format!("{V2}/data/mebibyte"),
        json!({"data": {"big": value}}),
        "a 1 MiB value",
    );
    s.get(&format!("{V2}/data/mebibyte"), "a 1 MiB value");
    s.patch(
        &format!("{V2}/data/mebibyte"),
        json!({"data": {"more": value}}),
        "another 1 MiB",
    );
    s.get(&format!("{V2}/subkeys/mebibyte"), "two 1 MiB values");
    s.put(
        &format!("{V1}/mebibyte"),
        json!({"big": value}),
        "a 1 MiB value",
    );
    s.get(&format!("{V1}/mebibyte"), "a 1 MiB value");
}

/// The catch-all: every operation on paths no other route takes.
fn catch_all(s: &mut Suite<'_>) {
    let paths = [
        "", "foo", "foo/bar", "data", "data/", "data/x/", "metadata", "config/", "subkeys",
        "subkeys/", "delete", "undelete", "destroy", "delete/", "DATA/x",
    ];
    for path in paths {
        let path = format!("{V2}/{path}");
        s.get(&path, "the catch-all");
        s.put(&path, json!({"data": {"a": 1}}), "the catch-all");
        s.delete(&path, "the catch-all");
        s.list(&path, "the catch-all");
        s.patch(&path, json!({"data": {"a": 1}}), "the catch-all");
    }
}

/// Help and OpenAPI: structure only (see [`help_structure`]).
fn help(s: &mut Suite<'_>) {
    for path in [
        "",
        "config",
        "data/foo",
        "metadata/foo",
        "metadata/",
        "delete/foo",
        "undelete/foo",
        "destroy/foo",
        "subkeys/foo",
        "foo",
        "data/",
    ] {
        s.help(&format!("{V2}/{path}?help=1"), "help");
    }
    for path in ["", "foo", "a/b/"] {
        s.help(&format!("{V1}/{path}?help=1"), "help");
    }
    let what = name(
        "GET",
        "sys/internal/specs/openapi",
        "the paths of kv2/ and kv1/",
    );
    s.send(&what, Kind::Help, |side| {
        let answer = side.json("GET", "sys/internal/specs/openapi", None);
        let document: Value = serde_json::from_str(&answer.text).unwrap_or(Value::Null);
        let paths: Map<String, Value> = document["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(path, _)| path.starts_with("/kv2/") || path.starts_with("/kv1/"))
            .map(|(path, item)| (path.clone(), item.clone()))
            .collect();
        Answer {
            text: json!({"paths": paths}).to_string(),
            ..answer
        }
    });
}

/// Version 1: write, read, list, delete, TTLs, numbers kept exactly, no patch.
fn version1(s: &mut Suite<'_>) {
    let key = format!("{V1}/foo");
    s.get(&key, "before any write");
    s.put(&key, json!({"a": "b"}), "a secret");
    s.get(&key, "a secret");
    // The server registers a lease for each read, of a secret type the non-leased plugin lacks.
    for (operation, note) in [
        ("renew", "the lease of a version 1 read"),
        (
            "revoke",
            "the lease of a version 1 read, whose secret type the plugin does not know",
        ),
    ] {
        let path = format!("sys/leases/{operation}");
        let what = name("PUT", &path, note);
        s.send(&what, Kind::Plain, |side| {
            let lease = side.json("GET", &key, None).json()["lease_id"].clone();
            side.json("PUT", &path, Some(&json!({"lease_id": lease})))
        });
    }
    s.put(&key, json!({"a": "c", "ttl": "1h"}), "a ttl");
    s.get(&key, "the ttl is the lease duration");
    s.put(&key, json!({"a": "c", "ttl": 90}), "a ttl in seconds");
    s.get(&key, "a ttl in seconds");
    s.put(
        &key,
        json!({"a": "c", "ttl": "soon"}),
        "a ttl that is not a duration",
    );
    s.get(&key, "an unparsable ttl is ignored");
    s.put(&key, json!({"a": "c", "lease": "30m"}), "a lease");
    s.get(&key, "the lease is the lease duration");
    s.put(&key, json!({"a": "c", "lease": "30m", "ttl": "2h"}), "both");
    s.get(&key, "the ttl wins");
    s.put(&key, json!({"a": "c", "ttl": "-5s"}), "a negative ttl");
    s.get(&key, "a negative ttl");
    s.put(&key, json!({"a": "c", "ttl": "1d"}), "a ttl in days");
    s.get(&key, "a ttl in days");
    s.put(&key, json!({}), "an empty object");
    s.raw("PUT", &key, None, b"", "an empty body");
    s.raw(
        "PUT",
        &key,
        Some("application/json"),
        b"{not json",
        "a body that is not JSON",
    );
    s.raw(
        "PUT",
        &key,
        Some("application/json"),
        b"[1]",
        "an array body",
    );
    s.raw(
        "PUT",
        &key,
        Some("application/json"),
        br#"{"big":12345678901234567890,"bigger":123456789012345678901234567890,"f":1.0,"e":1E2,"neg_zero":-0,"small":0.1e-7}"#,
        "numbers as written",
    );
    s.get(&key, "numbers kept exactly");
    s.raw(
        "PUT",
        &key,
        Some("application/json"),
        br#"{"huge":1e400}"#,
        "a number beyond float64",
    );
    s.put(
        &key,
        json!({"nested": {"x": [1, {"y": null}]}, "html": "<a>&", "data": {"k": "v"}, "path": "p"}),
        "nested values, a data field, a path field",
    );
    s.get(&key, "nested values, a data field, a path field");
    s.json(
        "POST",
        &key,
        Some(json!({"via": "POST"})),
        "POST as a write",
    );
    s.get(&key, "written by POST");
    s.patch(&key, json!({"a": 1}), "not an operation of version 1");
    s.put(&format!("{V1}/"), json!({"a": 1}), "an empty key");
    s.get(&format!("{V1}/"), "an empty key");
    s.delete(&format!("{V1}/"), "an empty key");
    s.put(&format!("{V1}/dir/a"), json!({"a": 1}), "in a folder");
    s.put(&format!("{V1}/dir/b/c"), json!({"a": 1}), "in a subfolder");
    s.put(
        &format!("{V1}/dir/b"),
        json!({"a": 1}),
        "a key and a folder",
    );
    s.list(&format!("{V1}/"), "the root");
    s.list(&format!("{V1}/dir"), "a folder without its slash");
    s.list(&format!("{V1}/dir/"), "a folder");
    s.get(&format!("{V1}/dir?list=true"), "a folder listed by query");
    s.list(&format!("{V1}/nothing/"), "an empty folder");
    s.delete(&key, "a secret");
    s.get(&key, "deleted");
    s.delete(&key, "already deleted");
    s.get(
        &format!("{V1}/config"),
        "config is an ordinary key in version 1",
    );
    s.put(
        &format!("{V1}/data/x"),
        json!({"a": 1}),
        "data/ is an ordinary folder",
    );
    s.get(
        &format!("{V1}/data/x?version=1"),
        "an unknown query parameter",
    );
}

/// A version 1 mount with secrets tuned to version 2: the Go plugin's upgrade (asynchronous,
/// polled until the mount answers), then the converted keys.
fn upgrade(s: &mut Suite<'_>) {
    s.put(
        "kvup/plain",
        json!({"a": "b", "ttl": "1h"}),
        "before the upgrade",
    );
    s.put(
        "kvup/dir/nested",
        json!({"n": 12_345_678_901_234_567_890_u64}),
        "before the upgrade",
    );
    let what = name("POST", "sys/mounts/kvup/tune", "to version 2");
    s.send(&what, Kind::Plain, |side| {
        side.json(
            "POST",
            "sys/mounts/kvup/tune",
            Some(&json!({"options": {"version": "2"}})),
        )
    });
    s.poll_until("kvup/config", "until the upgrade is done", |answer| {
        answer.status == 200
    });
    s.get("kvup/data/plain", "converted to version 1");
    s.get("kvup/metadata/plain", "converted to version 1");
    s.get("kvup/data/dir/nested", "converted to version 1");
    s.list("kvup/metadata/", "the converted keys");
    s.list("kvup/metadata/dir/", "the converted keys");
    s.get("kvup/plain", "the catch-all after the upgrade");
    s.put(
        "kvup/data/plain",
        json!({"data": {"a": "c"}}),
        "version 2 after the upgrade",
    );
    s.get("kvup/metadata/plain", "after a write");
}

/// Lists of 0, 1 and 10,000 keys through both versions; the 10,000 are written over a few
/// keep-alive connections at once (timed: see the stderr of the test).
fn lists(s: &mut Suite<'_>) {
    s.list(&format!("{V2}/metadata/empty/"), "no keys");
    s.list(&format!("{V1}/empty/"), "no keys");
    s.put(
        &format!("{V2}/data/one/only"),
        json!({"data": {"a": 1}}),
        "one key",
    );
    s.put(&format!("{V1}/one/only"), json!({"a": 1}), "one key");
    s.list(&format!("{V2}/metadata/one/"), "one key");
    s.list(&format!("{V1}/one/"), "one key");
    s.put(
        &format!("{V2}/data/fk"),
        json!({"data": {"a": 1}}),
        "a key beside its folder",
    );
    s.put(
        &format!("{V2}/data/fk/child"),
        json!({"data": {"a": 1}}),
        "a key in a folder",
    );
    s.put(
        &format!("{V2}/destroy/fk"),
        json!({"versions": [1]}),
        "destroyed but listed",
    );
    s.list(&format!("{V2}/metadata/"), "the root");
    s.list(&format!("{V2}/metadata"), "the root without its slash");
    s.list(&format!("{V2}/metadata/fk"), "a folder without its slash");

    for (mount, label) in [(V2, "version 2"), (V1, "version 1")] {
        let requests: Vec<(String, Value)> = (0..MANY)
            .map(|i| {
                // Not in order, so a list that is not sorted shows.
                let n = (i * 7919) % MANY;
                if mount == V2 {
                    (format!("{V2}/data/many/k{n:05}"), json!({"data": {"n": n}}))
                } else {
                    (format!("{V1}/many/k{n:05}"), json!({"n": n}))
                }
            })
            .collect();
        let mut written = Vec::new();
        for side in s.pair.sides() {
            let started = Instant::now();
            written.push(side.put_many(&requests, 4));
            eprintln!(
                "differential: {MANY} writes ({label}) to {} in {:?}",
                side.label,
                started.elapsed()
            );
        }
        let differing: Vec<String> = (0..MANY)
            .filter_map(|i| {
                let [ours, go] =
                    [&written[0][i], &written[1][i]].map(|a| normalise(a, Kind::Plain));
                (ours != go).then(|| format!("{}: {}", requests[i].0, difference(&ours, &go)))
            })
            .take(5)
            .collect();
        s.table.case(
            format!("PUT ×{MANY} {mount}/…many/k…: every answer the same ({label})"),
            if differing.is_empty() {
                Ok(())
            } else {
                Err(differing.join("\n"))
            },
        );
        if mount == V2 {
            s.list(&format!("{V2}/metadata/many/"), "10,000 keys");
            s.get(
                &format!("{V2}/metadata/many?list=true"),
                "10,000 keys by query",
            );
            s.get(&format!("{V2}/data/many/k09999"), "the last of 10,000");
        } else {
            s.list(&format!("{V1}/many/"), "10,000 keys");
            s.get(&format!("{V1}/many/k09999"), "the last of 10,000");
        }
    }
    s.list(&format!("{V2}/metadata/"), "the root at the end");
    s.list(&format!("{V1}/"), "the root at the end");
}

#[test]
fn the_normalisation_replaces_only_what_must_differ() {
    let answer = |text: &str| Answer {
        status: 200,
        content_type: "application/json".into(),
        text: text.into(),
    };
    let text = r#"{"request_id":"0b1c","lease_id":"kv1/a \"b\"/XyZ","data":{"created_time":"2024-01-02T03:04:05.123456789Z","deletion_time":"","updated_time":"2024-01-02T03:04:05Z","other_time":"2024-01-02T03:04:05Z","created_time2":"x"},"errors":["2 errors occurred:\n\t* b\n\t* a\n\n","1 error occurred:\n\t* z\n\n"]}"#;
    assert_eq!(
        normalise(&answer(text), Kind::Plain),
        "200 application/json\n".to_owned()
            + r#"{"request_id":"<request_id>","lease_id":"kv1/a \"b\"/<lease>","data":{"created_time":"<time>","deletion_time":"","updated_time":"<time>","other_time":"2024-01-02T03:04:05Z","created_time2":"x"},"errors":["2 errors occurred:\n\t* a\n\t* b\n\n","1 error occurred:\n\t* z\n\n"]}"#
    );
    assert_eq!(
        normalise(
            &answer(r#"{"lease_id":"","created_time":"soon"}"#),
            Kind::Plain
        ),
        "200 application/json\n{\"lease_id\":\"\",\"created_time\":\"soon\"}"
    );
    let help = r##"{"help":"ours","openapi":{"info":{"title":"T"},"paths":{"/^.*$":{},"/x/{p}":{"description":"d","get":{"summary":"s","operationId":"kv-v2-read","parameters":[{"name":"p","in":"path","required":true,"schema":{"type":"string"}}],"requestBody":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/B"}}}}}}},"components":{"schemas":{"B":{"properties":{"f":{"type":"integer","description":"x"}}}}}}}"##;
    assert_eq!(
        normalise(&answer(help), Kind::Help),
        "200 application/json\n".to_owned()
            + r#"{"help":"<help>","openapi":{"paths":{"/x/{p}":{"get":{"body":{"f":"integer"},"parameters":[["p","path",true,"string"]]}}}}}"#
    );
    let refused = r#"{"errors":["Field validation failed: error converting input abc for field \"max_versions\": cannot parse '' as int: \"abc\""],"n":-0,"m":[-0]}"#;
    assert_eq!(
        normalise(&answer(refused), Kind::Plain),
        "200 application/json\n".to_owned()
            + r#"{"errors":["Field validation failed: error converting input for field \"max_versions\": <conversion error>"],"n":0,"m":[0]}"#
    );
}
