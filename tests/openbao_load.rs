//! Load held: 64 concurrent clients make 50,000 mixed writes, reads, lists and deletes through a
//! real OpenBao 2.7.2 server, and every answer, and the final contents, match what a model of
//! the same operations predicts.
//!
//! Each client owns its keys (`cNN-kMM`), so its operations are sequential on them and the model
//! is exact: a read must return the client's last write, a list must show exactly the client's
//! live keys among everyone's. All clients share the one mount, the one plugin process and its
//! storage.

#![allow(clippy::unwrap_used)]

use plugin_test_support::common;
use plugin_test_support::common::Rng;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::DevServer;
use serde_json::{Value, json};

const PLUGIN: &str = "my-mock-plugin";
const CLIENTS: usize = 64;
const OPERATIONS: usize = 50_000;
const KEYS_PER_CLIENT: u64 = 32;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    #[default]
    Write,
    Read,
    List,
    Delete,
}

/// What one client did, and what went wrong.
#[derive(Debug, Default)]
struct Outcome {
    counts: BTreeMap<Kind, usize>,
    mismatches: Vec<String>,
    model: BTreeMap<String, String>,
}

/// A value of varied shape: short, non-ASCII, empty now and then, sometimes 8 KiB.
fn value(rng: &mut Rng, client: usize, op: usize) -> String {
    match rng.below(50) {
        0 => String::new(),
        1 => format!("{client}/{op} ").repeat(8192)[..8192].to_owned(),
        2..=9 => format!("värde {client}/{op} ✓ 🔑"),
        _ => format!("v{client}-{op}-{}", rng.next_u64()),
    }
}

/// Runs `count` operations of client `client` and checks every answer against its model.
fn client(server: &DevServer, client: usize, count: usize) -> Outcome {
    let mut rng = Rng(0x5eed_0000 + client as u64);
    let mut outcome = Outcome::default();
    let prefix = format!("c{client:02}-");
    for op in 0..count {
        let key = format!("{prefix}k{:02}", rng.below(KEYS_PER_CLIENT));
        let kind = match rng.below(100) {
            0..40 => Kind::Write,
            40..70 => Kind::Read,
            70..80 => Kind::List,
            _ => Kind::Delete,
        };
        *outcome.counts.entry(kind).or_default() += 1;
        let mismatch = match kind {
            Kind::Write => {
                let value = value(&mut rng, client, op);
                let (status, body) = server.http(
                    "PUT",
                    &format!("mock/kv/{key}"),
                    Some(&json!({ "value": value })),
                );
                let answer = (status, body["data"]["value"].clone());
                outcome.model.insert(key.clone(), value.clone());
                (answer != (200, json!(value))).then(|| format!("{status} {body}"))
            }
            Kind::Read => {
                let (status, body) = server.http("GET", &format!("mock/kv/{key}"), None);
                let expected = match outcome.model.get(&key) {
                    Some(value) => (200, json!({"value": value, "version": 0})),
                    None => (404, json!({"errors": []})),
                };
                let answer = match status {
                    200 => (status, body["data"].clone()),
                    _ => (status, body.clone()),
                };
                (answer != expected).then(|| format!("{status} {body}"))
            }
            Kind::Delete => {
                let (status, body) = server.http("DELETE", &format!("mock/kv/{key}"), None);
                outcome.model.remove(&key);
                ((status, &body) != (204, &Value::Null)).then(|| format!("{status} {body}"))
            }
            Kind::List => {
                let (status, body) = server.http("LIST", "mock/kv", None);
                let mine: Option<Vec<String>> = match status {
                    200 => body["data"]["keys"].as_array().map(|keys| {
                        keys.iter()
                            .filter_map(Value::as_str)
                            .filter(|k| k.starts_with(&prefix))
                            .map(str::to_owned)
                            .collect()
                    }),
                    404 => Some(Vec::new()),
                    _ => None,
                };
                let expected: Vec<String> = outcome.model.keys().cloned().collect();
                (mine.as_ref() != Some(&expected))
                    .then(|| format!("{status}: mine {mine:?}, expected {expected:?}"))
            }
        };
        if let Some(answer) = mismatch {
            outcome
                .mismatches
                .push(format!("client {client} op {op} {kind:?} {key}: {answer}"));
        }
    }
    outcome
}

#[test]
fn sixty_four_clients_make_fifty_thousand_operations_that_match_a_model() {
    let server = DevServer::start();
    server.register_and_enable(PLUGIN, &["mock"]);

    let outcomes: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..CLIENTS {
            // 50,000 split as evenly as it goes: the first clients take one more.
            let count = OPERATIONS / CLIENTS + usize::from(c < OPERATIONS % CLIENTS);
            let (server, outcomes) = (&server, &outcomes);
            scope.spawn(move || {
                let outcome = client(server, c, count);
                outcomes.lock().unwrap().push(outcome);
            });
        }
    });
    let elapsed = started.elapsed();

    let outcomes = outcomes.into_inner().unwrap();
    let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut mismatches = Vec::new();
    let mut model: BTreeMap<String, String> = BTreeMap::new();
    for outcome in outcomes {
        for (kind, n) in outcome.counts {
            *counts.entry(kind).or_default() += n;
        }
        mismatches.extend(outcome.mismatches);
        model.extend(outcome.model);
    }
    let total: usize = counts.values().sum();
    eprintln!(
        "load: {CLIENTS} clients, {total} operations {counts:?} in {elapsed:?} ({:.0}/s); \
         {} mismatches; {} keys at the end",
        total as f64 / elapsed.as_secs_f64(),
        mismatches.len(),
        model.len()
    );
    assert_eq!(total, OPERATIONS);
    assert!(
        mismatches.is_empty(),
        "{} answers differ from the model, first ones: {:#?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(20)]
    );

    // The final contents: exactly the model's keys, each with the model's value.
    let (status, body) = server.http("LIST", "mock/kv", None);
    assert_eq!(status, 200, "{body}");
    let listed: Vec<String> = serde_json::from_value(body["data"]["keys"].clone()).unwrap();
    assert_eq!(listed, model.keys().cloned().collect::<Vec<_>>());
    let entries: Vec<(&String, &String)> = model.iter().collect();
    std::thread::scope(|scope| {
        for chunk in entries.chunks(entries.len().div_ceil(CLIENTS).max(1)) {
            let server = &server;
            scope.spawn(move || {
                for (key, value) in chunk {
                    let (status, body) = server.http("GET", &format!("mock/kv/{key}"), None);
                    assert_eq!(
                        (status, &body["data"]["value"]),
                        (200, &json!(value)),
                        "final value of {key}"
                    );
                }
            });
        }
    });
    assert!(
        elapsed < Duration::from_secs(600),
        "50,000 operations took {elapsed:?}"
    );
}
