//! The differential suite: our plugin beside the original Go mock, built from OpenBao's
//! published SDK (the oracle) and from Vault's newer SDK, on one real server. One corpus of
//! HTTP requests goes to the three mounts; every answer is compared whole. Then the
//! processes: the handshake line, the server's log lines for each, reported versions,
//! multiplexing, auto-reload, reloads and seal/unseal.
//!
//! `TEST_SERVER=vault` runs the same against HashiCorp Vault 1.14.1, with Vault's mock as the
//! oracle. The peers come from `make peers`.
// The case-by-case table is this suite's report: it goes to stdout (`--nocapture` shows it).
#![allow(clippy::print_stdout)]

use plugin_test_support::{common, oracle};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::{DevOptions, DevServer, Flavor};
use oracle::{Answer, Auth, Case, Extract, Step, Target};
use serde_json::{Value, json};

/// Every path of the mocks (ours and both Go ones), some that none has, and the root.
const PATHS: [&str; 14] = [
    "errors/rpc",
    "errors/kill",
    "errors/type",
    "kv",
    "kv/",
    "kv/foo",
    "kv/a/b",
    "internal",
    "special",
    "raw",
    "env/HOME",
    "env/",
    "config",
    "nope",
];

/// The odd keys of the bad-input table, as they appear in a URL.
const ODD_KEYS: [&str; 14] = [
    "a-b.c_d",
    "a@b",
    "..x",
    "-a",
    "a.",
    "a%2Fb",
    "%C3%A9",
    "a%20b",
    "0",
    "_",
    "a..b",
    "a%00b",
    "x%5D%5B",
    "KEY_with-Mixed.Case",
];

/// The corpus, in order: each step goes to every mount before the next.
fn corpus() -> Vec<Step> {
    let mut steps = Vec::new();
    let mut send = |case: Case| steps.push(Step::Send(case));

    // Before anything is written: the empty list, in both forms.
    send(Case::new("LIST", "{m}/kv/").named("LIST kv/ (empty)"));
    send(Case::new("GET", "{m}/kv/?list=true").named("GET kv/?list=true (empty)"));

    // Every path × every operation, the unsupported ones too.
    for path in PATHS {
        for method in ["GET", "PUT", "POST", "DELETE", "LIST"] {
            let case = Case::new(method, format!("{{m}}/{path}"));
            let case = if matches!(method, "PUT" | "POST") {
                case.json(json!({"value": format!("{method}-{path}")}))
            } else {
                case
            };
            send(case);
        }
        send(
            Case::new("PATCH", format!("{{m}}/{path}"))
                .json(json!({"value": "patched"}))
                .content_type("application/merge-patch+json"),
        );
    }

    // Help on every path and on the root, and the server's OpenAPI document.
    for path in PATHS {
        send(Case::new("GET", format!("{{m}}/{path}?help=1")).named(format!("help {path}")));
    }
    send(Case::new("GET", "{m}/?help=1").named("help (root)"));
    send(
        Case::new("GET", "sys/internal/specs/openapi")
            .named("OpenAPI paths of the mount")
            .extract(Extract::OpenApiPaths),
    );

    // Fields of the wrong type.
    let wrong_values = [
        ("object", json!({"a": 1})),
        ("array", json!([1, 2])),
        ("number", json!(12)),
        ("float", json!(1.5)),
        ("bool", json!(true)),
        ("null", Value::Null),
    ];
    for (kind, value) in &wrong_values {
        send(
            Case::new("PUT", "{m}/kv/typed")
                .json(json!({ "value": value }))
                .named(format!("PUT kv/typed value={kind}")),
        );
        send(
            Case::new("PUT", "{m}/internal")
                .json(json!({ "value": value }))
                .named(format!("PUT internal value={kind}")),
        );
    }
    for version in [
        "abc",
        "1.5",
        "12",
        "-1",
        "9223372036854775808",
        "%5B1%5D",
        "",
    ] {
        send(Case::new(
            "GET",
            format!("{{m}}/kv/typed?version={version}"),
        ));
    }
    for (kind, version) in [
        ("string", json!("7")),
        ("text", json!("abc")),
        ("float", json!(2.5)),
        ("array", json!([1])),
    ] {
        send(
            Case::new("PUT", "{m}/kv/typed")
                .json(json!({"value": "v", "version": version}))
                .named(format!("PUT kv/typed version={kind}")),
        );
    }

    // Unknown parameters, and a body value that the path's capture replaces.
    send(Case::new("PUT", "{m}/kv/foo").json(json!({"value": "v", "zz": 1, "b": "x"})));
    send(Case::new("PUT", "{m}/internal").json(json!({"value": "v", "extra": true})));
    send(Case::new("GET", "{m}/kv/foo?extra=1"));
    send(
        Case::new("PUT", "{m}/kv/foo")
            .json(json!({"value": "v", "key": "other"}))
            .named("PUT kv/foo with key=other in the body"),
    );
    send(Case::new("GET", "{m}/kv/other"));
    send(Case::new("GET", "{m}/kv/foo?key=other"));

    // Every err_type, none, null and out of range.
    for err_type in [
        json!(0),
        json!(1),
        json!(2),
        json!(3),
        json!(4),
        json!(5),
        json!(6),
        json!(7),
        json!(8),
        json!(9),
        json!(10),
        json!(11),
        json!(-1),
        json!(4294967296u64),
        json!("3"),
        json!("x"),
        json!(true),
        Value::Null,
    ] {
        send(
            Case::new("PUT", "{m}/errors/type")
                .json(json!({ "err_type": err_type }))
                .named(format!("PUT errors/type err_type={err_type}")),
        );
    }
    send(
        Case::new("PUT", "{m}/errors/type")
            .json(json!({}))
            .named("PUT errors/type without err_type"),
    );

    // Odd keys: written, read back, deleted.
    for key in ODD_KEYS {
        send(Case::new("PUT", format!("{{m}}/kv/{key}")).json(json!({"value": key})));
        send(Case::new("GET", format!("{{m}}/kv/{key}")));
    }
    send(Case::new("LIST", "{m}/kv").named("LIST kv (odd keys)"));
    for key in ODD_KEYS {
        send(Case::new("DELETE", format!("{{m}}/kv/{key}")));
    }

    // One key, then 10,000.
    send(Case::new("PUT", "{m}/kv/only").json(json!({"value": "one"})));
    send(Case::new("LIST", "{m}/kv").named("LIST kv (one key)"));
    send(Case::new("DELETE", "{m}/kv/only"));
    steps.push(Step::WriteMany("k", 10_000));
    let mut send = |case: Case| steps.push(Step::Send(case));
    send(Case::new("LIST", "{m}/kv").named("LIST kv (10,000 keys)"));
    send(Case::new("GET", "{m}/kv/k09999"));

    // Stored bytes that are not UTF-8, written past the plugin.
    let binary = base64::engine::general_purpose::STANDARD.encode(b"\xff\xfe not utf-8 \x80");
    send(
        Case::new("PUT", "sys/raw/logical/{uuid}/kv/binary")
            .json(json!({"value": binary, "encoding": "base64"}))
            .named("sys/raw write of non-UTF-8 bytes to kv/binary"),
    );
    send(Case::new("GET", "{m}/kv/binary"));
    send(
        Case::new("PUT", "sys/raw/logical/{uuid}/kv/json")
            .json(json!({"value": "{\"value\":\"not a string\"}"}))
            .named("sys/raw write of a JSON document to kv/json"),
    );
    send(Case::new("GET", "{m}/kv/json"));

    // `internal` after a write to its storage key: the value lives in memory, not storage.
    send(Case::new("PUT", "{m}/internal").json(json!({"value": "memory"})));
    send(
        Case::new("PUT", "sys/raw/logical/{uuid}/internal")
            .json(json!({"value": "stored"}))
            .named("sys/raw write to the internal key"),
    );
    send(Case::new("GET", "{m}/internal").named("GET internal after sys/raw"));

    // Without a token: only `special` is unauthenticated.
    for path in ["special", "kv/foo", "raw", "internal"] {
        send(
            Case::new("GET", format!("{{m}}/{path}"))
                .auth(Auth::Anonymous)
                .named(format!("GET {path} without a token")),
        );
    }
    send(
        Case::new("PUT", "{m}/special")
            .json(json!({}))
            .auth(Auth::Anonymous)
            .named("PUT special without a token"),
    );
    send(Case::new(
        "GET",
        "{m}/env/TESTING_MOCK_VAULT_PLUGIN_VERSION",
    ));
    send(Case::new("GET", "{m}/env/NOT_SET_ANYWHERE"));
    send(Case::new("GET", "{m}/raw").named("GET raw (body and type)"));

    // The ACL create/update split: the existence check decides.
    send(Case::new("PUT", "{m}/kv/existing").json(json!({"value": "old"})));
    steps.push(Step::Token(
        "create-only",
        r#"path "{m}/kv/*" { capabilities = ["create"] }"#,
    ));
    let mut send = |case: Case| steps.push(Step::Send(case));
    let limited = Auth::Token("create-only");
    for (name, path) in [
        ("create a new key", "{m}/kv/fresh"),
        ("update the key just made", "{m}/kv/fresh"),
        ("update an existing key", "{m}/kv/existing"),
    ] {
        send(
            Case::new("PUT", path)
                .json(json!({"value": "new"}))
                .auth(limited)
                .named(format!("create-only token: {name}")),
        );
    }
    send(
        Case::new("GET", "{m}/kv/existing")
            .auth(limited)
            .named("create-only token: read"),
    );
    send(Case::new("GET", "{m}/kv/existing").named("GET kv/existing after the denials"));

    // A 16 MiB value, last: it slows every later write to the in-memory storage.
    let big = "v".repeat(16 * 1024 * 1024);
    send(
        Case::new("PUT", "{m}/kv/big")
            .json(json!({ "value": big }))
            .named("PUT kv/big (16 MiB)"),
    );
    send(Case::new("GET", "{m}/kv/big").named("GET kv/big (16 MiB)"));
    steps
}

const ENV_PATH: &str = "env/ as in Vault's mock; OpenBao's lacks it";

/// Differences from OpenBao's Go mock, each listed in the README.
fn deliberate_vs_openbao(case: &Case, ours: &Answer, theirs: &Answer) -> Option<&'static str> {
    if case.id.contains(" env/") || case.id.starts_with("help env/") {
        return Some(ENV_PATH);
    }
    // Root help and the OpenAPI document list env/ too: equal once it is taken out.
    let lists_paths = case.id == "help (root)" || case.extract == Extract::OpenApiPaths;
    (lists_paths && without_env_path(ours) == *theirs).then_some(ENV_PATH)
}

/// `answer` as it would be without the env/ path: its line in root help, its OpenAPI paths.
fn without_env_path(answer: &Answer) -> Answer {
    let mut answer = answer.clone();
    if let Some(help) = answer.body.get("help").and_then(Value::as_str) {
        let mut kept = Vec::new();
        let mut lines = help.split('\n').peekable();
        while let Some(line) = lines.next() {
            if line.starts_with("    ^env/") {
                // The pattern, its synopsis line and the blank line after it.
                lines.next();
                lines.next();
                continue;
            }
            kept.push(line);
        }
        answer.body["help"] = Value::from(kept.join("\n"));
    }
    if let Some(paths) = answer.body.pointer_mut("/openapi/paths") {
        paths
            .as_object_mut()
            .map(|paths| paths.remove("/env/{key}"));
    }
    if let Some(paths) = answer.body.as_object_mut() {
        paths.remove("/MOUNT/env/{key}");
    }
    answer
}

/// Differences from Vault's newer Go mock, each listed in the README.
fn deliberate_vs_vault(case: &Case, ours: &Answer, theirs: &Answer) -> Option<&'static str> {
    let id = case.id.as_str();
    if id.contains(" config") || id == "help config" {
        return Some(
            "config registers rotation jobs through the system view, which neither OpenBao \
             nor Vault 1.14 serves",
        );
    }
    if id.starts_with("help") || case.extract == Extract::OpenApiPaths {
        return Some(
            "help follows OpenBao's SDK: its OpenAPI title, no Vault-only StandardListResponse \
             schema or read_snapshot_id parameter (snapshot reads are Vault Enterprise 1.20+)",
        );
    }
    let conversion = |answer: &Answer| {
        answer.status == 400 && answer.body.to_string().contains("error converting input")
    };
    if conversion(ours) && conversion(theirs) {
        return Some("conversion errors worded as OpenBao's SDK words them");
    }
    None
}

fn start_server() -> DevServer {
    DevServer::start_with(DevOptions {
        extra_config: "raw_storage_endpoint = true\n".into(),
        ..DevOptions::default()
    })
}

/// The targets and the index of the oracle among them for the server in use.
fn targets(server: &DevServer) -> Vec<Target> {
    let mut targets = vec![Target::ours(), Target::openbao_mock(), Target::vault_mock()];
    for target in &mut targets {
        target.install(server);
    }
    targets
}

fn print_and_count(
    title: &str,
    results: &[(Case, Vec<Answer>)],
    oracle: usize,
    deliberate: &oracle::Deliberate,
) -> usize {
    let (verdicts, table) = oracle::compare(results, 0, oracle, deliberate);
    let (identical, deliberate, unexplained) = oracle::totals(&verdicts);
    println!("== {title}\n{table}");
    println!(
        "== {title}: {} cases, {identical} identical, {deliberate} deliberate, {unexplained} \
         unexplained\n",
        verdicts.len()
    );
    unexplained
}

#[test]
fn the_corpus_answers_as_the_go_mocks_do() {
    let server = start_server();
    let targets = targets(&server);
    let steps = corpus();
    let results = oracle::run(&server, &targets, &steps);
    assert!(results.len() >= 150, "{} cases", results.len());
    if let Some(dir) = std::env::var_os("DIFFERENTIAL_DUMP") {
        oracle::dump(&results, &targets, std::path::Path::new(&dir));
    }

    let against_bao = print_and_count(
        "ours vs OpenBao's Go mock",
        &results,
        1,
        &deliberate_vs_openbao,
    );
    let against_vault =
        print_and_count("ours vs Vault's Go mock", &results, 2, &deliberate_vs_vault);
    // On Vault the oracle is Vault's mock; on OpenBao, OpenBao's. Both must be explained.
    let (oracle, other) = match server.flavor() {
        Flavor::OpenBao => (against_bao, against_vault),
        Flavor::Vault => (against_vault, against_bao),
    };
    assert_eq!(oracle, 0, "unexplained differences from the oracle");
    assert_eq!(other, 0, "unexplained differences from the other mock");
}

/// The handshake line's fields as (name, value) with what differs by construction taken out:
/// the socket's random name, the certificate's serial, validity and key.
fn handshake_fields(
    binary: &std::path::Path,
    client_cert: &str,
    dir: &std::path::Path,
) -> Vec<(&'static str, String)> {
    let mut child = Command::new(binary)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env(
            "VAULT_BACKEND_PLUGIN",
            "6669da05-b1c8-4f49-97d9-c8e5bed98e20",
        )
        // As the server sets it for protocol 5; without it the Go SDK's TLS provider looks
        // for an unwrap token.
        .env("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true")
        .env("PLUGIN_PROTOCOL_VERSIONS", "3,4,5")
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000")
        .env("PLUGIN_CLIENT_CERT", client_cert)
        .env("PLUGIN_UNIX_SOCKET_DIR", dir)
        .env("VAULT_VERSION", "2.7.2")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn plugin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read handshake line");
    let _ = child.kill();
    let _ = child.wait();
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "{binary:?}: {line:?}");
    let socket = std::path::Path::new(fields[3]);
    let socket_place = if socket.parent() == Some(dir) {
        "a file in PLUGIN_UNIX_SOCKET_DIR"
    } else if socket.parent().and_then(|p| p.parent()) == Some(dir) {
        "a file in a directory of its own in PLUGIN_UNIX_SOCKET_DIR"
    } else {
        "outside PLUGIN_UNIX_SOCKET_DIR"
    };
    let encoding = if fields[5].ends_with('=') {
        "base64, padded"
    } else {
        "base64, unpadded"
    };
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fields[5].trim_end_matches('='))
        .expect("the certificate is base64 DER");
    vec![
        ("core protocol", fields[0].to_owned()),
        ("app protocol", fields[1].to_owned()),
        ("network", fields[2].to_owned()),
        ("socket", socket_place.to_owned()),
        ("protocol", fields[4].to_owned()),
        ("certificate encoding", encoding.to_owned()),
        ("certificate", openssl_x509(&der)),
    ]
}

/// The parts of a certificate that an implementation chooses, as `openssl x509` prints them.
fn openssl_x509(der: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-text"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), der).expect("write DER");
    let out = child.wait_with_output().expect("openssl output");
    assert!(out.status.success(), "openssl cannot read the certificate");
    let text = common::lossy(&out.stdout);
    // Serial numbers, validity, keys and signatures differ by construction.
    let keep = [
        "Signature Algorithm:",
        "Subject:",
        "ASN1 OID:",
        "Digital Signature",
        "TLS Web",
        "CA:",
        "DNS:",
    ];
    let mut kept: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| keep.iter().any(|k| line.starts_with(k)))
        .collect();
    kept.dedup();
    kept.join("; ")
}

/// Handshake fields where we differ from the Go mocks on purpose, with the reason.
fn deliberate_handshake(field: &str) -> Option<&'static str> {
    match field {
        "socket" => Some(
            "the socket sits in a 0700 directory of its own, so no other local user can \
             connect to it before TLS",
        ),
        "certificate" => Some(
            "P-256 and SHA-256 instead of go-plugin's P-521 CA certificate: the server pins \
             whatever the line carries, and P-256 keys cost less to make and verify \
             than P-521 ones",
        ),
        _ => None,
    }
}

#[test]
fn the_handshake_line_has_the_go_mocks_fields() {
    let dir = common::fresh_temp_dir("handshake");
    let client_cert = client_cert_pem(&dir);
    let lines: Vec<(&str, Vec<(&str, String)>)> =
        [Target::ours(), Target::openbao_mock(), Target::vault_mock()]
            .into_iter()
            .map(|t| (t.plugin, handshake_fields(&t.binary, &client_cert, &dir)))
            .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let mut unexplained = Vec::new();
    println!("== handshake line, ours vs OpenBao's mock vs Vault's mock");
    for (index, (field, ours)) in lines[0].1.iter().enumerate() {
        let theirs: Vec<&String> = lines[1..].iter().map(|(_, f)| &f[index].1).collect();
        if theirs.iter().all(|value| *value == ours) {
            println!("  identical   {field}: {ours}");
            continue;
        }
        match deliberate_handshake(field) {
            Some(reason) => println!("  deliberate  {field} ({reason})"),
            None => {
                println!("  DIFFERENT   {field}");
                unexplained.push(*field);
            }
        }
        println!("      ours:   {ours}");
        for (name, value) in lines[1..].iter().map(|(n, f)| (n, &f[index].1)) {
            println!("      {name}: {value}");
        }
    }
    // The two Go mocks agree with each other on every field.
    assert_eq!(lines[1].1, lines[2].1, "the Go mocks differ");
    assert!(
        unexplained.is_empty(),
        "handshake fields differ: {unexplained:?}"
    );
}

/// A P-521 client certificate as the server makes one, through `openssl`.
fn client_cert_pem(dir: &std::path::Path) -> String {
    let key = dir.join("client.key");
    let cert = dir.join("client.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-521",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("run openssl req");
    assert!(status.success());
    std::fs::read_to_string(cert).expect("read client cert")
}

/// The server's log lines about one plugin: level and message with fields that differ by
/// construction (timings, timestamps, the mount's random suffix) taken out, sorted (the
/// plugin's own lines reach the log asynchronously).
fn plugin_log_lines(log: &str, target: &Target) -> Vec<String> {
    let marker = format!("secrets.{}.", target.plugin);
    let mut lines: Vec<String> = log
        .lines()
        .filter(|line| line.contains(&marker))
        .filter_map(|line| line.split_once(' ').map(|(_, rest)| rest))
        .map(|rest| {
            let words: Vec<String> = rest
                .split(' ')
                .filter(|word| !word.starts_with("took=") && !word.starts_with("timestamp="))
                // Process ids, and socket names (the handshake test covers their place).
                .map(|word| match word.split_once('=') {
                    Some(("pid" | "address", _)) => word.split('=').next().unwrap_or(word),
                    _ => word,
                })
                .map(|word| {
                    if word.starts_with(&marker) {
                        // secrets.NAME.NAME_1234abcd.NAME…: the suffix is random.
                        let mut parts: Vec<&str> = word.split('.').collect();
                        if let Some(part) = parts.get_mut(2) {
                            *part = part.split('_').next().unwrap_or(part);
                        }
                        parts.join(".")
                    } else {
                        word.to_owned()
                    }
                })
                .collect();
            target.normalise_text(&words.join(" "))
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn the_server_logs_the_same_lines_for_each() {
    let server = start_server();
    let targets = targets(&server);
    let steps: Vec<Step> = [
        Case::new("PUT", "{m}/kv/foo").json(json!({"value": "bar"})),
        Case::new("GET", "{m}/kv/foo"),
        Case::new("LIST", "{m}/kv"),
        Case::new("DELETE", "{m}/kv/foo"),
        Case::new("GET", "{m}/nope"),
        Case::new("DELETE", "{m}/special"),
        Case::new("PUT", "{m}/errors/type").json(json!({"err_type": 3})),
        Case::new("GET", "{m}/internal"),
    ]
    .into_iter()
    .map(Step::Send)
    .collect();
    oracle::run(&server, &targets, &steps);
    // The last request's lines are in the log once its finish line is.
    for target in &targets {
        let marker = format!("secrets.{}.", target.plugin);
        common::wait_until(
            &format!("{}'s lines in the log", target.plugin),
            Duration::from_secs(5),
            || {
                server.log_text().lines().any(|line| {
                    line.contains(&marker) && line.contains("path=internal status=finished")
                })
            },
        );
    }
    let log = server.log_text();
    let per_target: Vec<Vec<String>> = targets
        .iter()
        .map(|target| plugin_log_lines(&log, target))
        .collect();
    let mut unexplained = 0;
    for (index, name) in [(1, "OpenBao's mock"), (2, "Vault's mock")] {
        // Deliberate: the Go mock logs stored values; we log keys only.
        let theirs: Vec<String> = per_target[index]
            .iter()
            .map(|line| strip_field(line, "value="))
            .collect();
        let ours = &per_target[0];
        println!(
            "== log lines, ours vs {name}: {} vs {} lines",
            ours.len(),
            theirs.len()
        );
        let only_theirs = theirs
            .iter()
            .filter(|l| !ours.contains(l))
            .map(|l| ("theirs", l));
        let only_ours = ours
            .iter()
            .filter(|l| !theirs.contains(l))
            .map(|l| ("ours", l));
        for (side, line) in only_theirs.chain(only_ours) {
            match deliberate_log_line(side, line) {
                Some(reason) => println!("  deliberate, only {side}: {line} ({reason})"),
                None => {
                    println!("  DIFFERENT, only {side}: {line}");
                    unexplained += 1;
                }
            }
        }
    }
    assert_eq!(unexplained, 0, "log lines differ");
}

/// Log lines that only one side writes, on purpose.
fn deliberate_log_line(side: &str, line: &str) -> Option<&'static str> {
    // Relayed from the plugin's stderr: the mount's logger, the command, the plugin's logger.
    let relayed = line
        .split_whitespace()
        .nth(1)
        .map(|name| name.matches('.').count())
        == Some(4);
    let below_info = line.starts_with("[DEBUG]") || line.starts_with("[TRACE]");
    if side == "theirs" && relayed && below_info {
        return Some(
            "ours writes debug lines only with --log-level=debug; a Go plugin writes every \
             level and the server drops what it does not log",
        );
    }
    if side == "theirs" && line.starts_with("[INFO]") && line.ends_with("automatic mTLS:") {
        return Some("Vault's SDK pins an older go-plugin, which logs this at info, not debug");
    }
    None
}

/// `line` without the field starting with `prefix` (up to the next space).
fn strip_field(line: &str, prefix: &str) -> String {
    line.split(' ')
        .filter(|word| !word.starts_with(prefix))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A lifecycle step's observation for each target, for a three-way table.
struct Lifecycle<'a> {
    rows: Vec<(String, Vec<String>)>,
    targets: &'a [Target],
}

impl<'a> Lifecycle<'a> {
    fn observe(&mut self, what: &str, f: impl Fn(&Target) -> String) {
        let row = self.targets.iter().map(f).collect();
        self.rows.push((what.to_owned(), row));
    }

    fn print_and_check(&self) {
        let mut unequal = Vec::new();
        for (what, row) in &self.rows {
            let same = row.iter().all(|cell| cell == &row[0]);
            println!(
                "  {} {what}: {row:?}",
                if same { "identical" } else { "DIFFERENT" }
            );
            if !same {
                unequal.push(what.as_str());
            }
        }
        assert!(unequal.is_empty(), "lifecycle differs: {unequal:?}");
    }
}

fn internal(server: &DevServer, target: &Target) -> String {
    let (status, body) = server.http("GET", &format!("{}/internal", target.mount), None);
    format!("{status} {}", body["data"]["value"])
}

#[test]
fn the_processes_live_and_reload_as_the_go_mocks_do() {
    let server = start_server();
    let targets = targets(&server);
    let mut table = Lifecycle {
        rows: Vec::new(),
        targets: &targets,
    };
    table.observe("reported version", |t| {
        let (_, mounts) = server.http("GET", "sys/mounts", None);
        mounts["data"][format!("{}/", t.mount)]["running_plugin_version"].to_string()
    });
    for target in &targets {
        server.cli_ok(&[
            "secrets",
            "enable",
            &format!("-path={}-2", target.mount),
            target.plugin,
        ]);
    }
    table.observe("processes for two mounts", |t| {
        server.plugin_pids(t.plugin).len().to_string()
    });
    table.observe("kv write", |t| {
        let path = format!("{}/kv/kept", t.mount);
        server
            .http("PUT", &path, Some(&json!({"value": "safe"})))
            .0
            .to_string()
    });
    table.observe("internal set", |t| {
        let path = format!("{}/internal", t.mount);
        server
            .http("PUT", &path, Some(&json!({"value": "changed"})))
            .0
            .to_string()
    });
    table.observe("errors/rpc", |t| {
        let (status, body) = server.http("GET", &format!("{}/errors/rpc", t.mount), None);
        format!("{status} {body}")
    });
    table.observe("internal after the auto-reload", |t| internal(&server, t));
    table.observe("a new process after the auto-reload", |t| {
        server.plugin_pids(t.plugin).len().to_string()
    });
    for target in &targets {
        server.http(
            "PUT",
            &format!("{}/internal", target.mount),
            Some(&json!({"value": "changed"})),
        );
    }
    table.observe("reload by plugin", |t| {
        server.cli_ok(&["plugin", "reload", &format!("-plugin={}", t.plugin)]);
        internal(&server, t)
    });
    table.observe("reload by mount", |t| {
        let path = format!("{}/internal", t.mount);
        server.http("PUT", &path, Some(&json!({"value": "changed"})));
        server.cli_ok(&["plugin", "reload", &format!("-mounts={}/", t.mount)]);
        internal(&server, t)
    });
    let key = server
        .log_text()
        .lines()
        .find_map(|line| line.trim().strip_prefix("Unseal Key: ").map(str::to_owned))
        .expect("the dev server prints its unseal key");
    server.cli_ok(&["operator", "seal"]);
    table.observe("processes while sealed", |t| {
        common::wait_until("plugins to stop", Duration::from_secs(10), || {
            server.plugin_pids(t.plugin).is_empty()
        });
        "0".into()
    });
    server.cli_ok(&["operator", "unseal", key.trim()]);
    table.observe("kv after unseal", |t| {
        let (status, body) = server.http("GET", &format!("{}/kv/kept", t.mount), None);
        format!("{status} {}", body["data"])
    });
    table.observe("internal after unseal", |t| internal(&server, t));
    println!("== lifecycle, three-way");
    table.print_and_check();
}
