//! A long run: `SOAK_REQUESTS` (1,000,000 by default) mixed writes, reads, lists and deletes on
//! `mock/kv/...` through one OpenBao dev server, while the plugin's resident memory (`VmRSS`)
//! and open file descriptors are sampled every `SOAK_SAMPLE_SECS` (10 by default). After a
//! warm-up (the first 10% of the requests), neither may grow by more than 10% from the first
//! sample to the last: a leak of memory or descriptors per request shows up as a steady climb.
//!
//! Ignored by default: it takes minutes, not seconds. `make soak` runs it in release mode:
//! `cargo test --release --test openbao_soak -- --ignored --nocapture`.
//!
//! The clients speak HTTP/1.1 with keep-alive (one connection each), so a million requests do
//! not cost a million TCP connections (and their TIME_WAIT entries) on loopback. Each client
//! owns its keys, so a model predicts every read exactly, as in `tests/openbao_load.rs`.

#![allow(clippy::unwrap_used)]

use plugin_test_support::common;
use plugin_test_support::common::Rng;
use plugin_test_support::http::{self, Connection, HttpError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::{DevOptions, DevServer};
use serde_json::{Value, json};

const PLUGIN: &str = "my-mock-plugin";
const KEYS_PER_CLIENT: u64 = 8;
/// The allowed growth after warm-up, of RSS and of the descriptor count.
const MAX_GROWTH: f64 = 0.10;
/// Guards every exchange, so a wedged server fails the run instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(text) if !text.is_empty() => text
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|e| panic!("{name}={text:?} is not a count: {e}")),
        _ => default,
    }
}

/// One keep-alive connection to the server, opened again when the server closes it.
struct Conn {
    hostport: String,
    token: String,
    connection: Option<Connection>,
    /// Connections opened, including the first.
    opened: usize,
}

impl Conn {
    fn new(addr: &str, token: &str) -> Self {
        Self {
            hostport: addr.trim_start_matches("http://").to_owned(),
            token: token.to_owned(),
            connection: None,
            opened: 0,
        }
    }

    /// One request; the status and the body as JSON (`Null` when empty).
    fn request(&mut self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        // A server may close an idle keep-alive connection at any moment; one retry on a fresh
        // connection covers that, and only a request that never reached the server is retried
        // (an error while writing, or EOF before any byte of the answer).
        match self.try_request(method, path, body) {
            Ok(answer) => answer,
            Err(first) if first.is_unsent() => {
                self.try_request(method, path, body).unwrap_or_else(|e| {
                    panic!("{method} {path}: {first}, then on a new connection: {e}")
                })
            }
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), HttpError> {
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => {
                let connection =
                    Connection::open(&self.hostport, http::CONNECT_TIMEOUT, IO_TIMEOUT)?;
                self.opened += 1;
                connection
            }
        };
        let payload = body.map(Value::to_string).unwrap_or_default();
        let mut headers = vec![("X-Vault-Token", self.token.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let answer =
            connection.request(method, &format!("/v1/{path}"), &headers, payload.as_bytes())?;
        if answer.keep_alive {
            self.connection = Some(connection);
        }
        Ok((answer.status, answer.json()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Write,
    Read,
    List,
    Delete,
}

#[derive(Debug, Default)]
struct Outcome {
    counts: BTreeMap<Kind, usize>,
    /// Answers that differ from the model (at most the first 20 kept, all counted).
    mismatches: Vec<String>,
    mismatch_count: usize,
    connections: usize,
}

impl Outcome {
    fn mismatch(&mut self, text: String) {
        self.mismatch_count += 1;
        if self.mismatches.len() < 20 {
            self.mismatches.push(text);
        }
    }
}

/// Takes request numbers from `next` until `total` are taken; checks every answer against the
/// client's model of its own keys.
fn client(
    addr: &str,
    token: &str,
    client: usize,
    next: &AtomicUsize,
    total: usize,
    done: &AtomicUsize,
) -> Outcome {
    let mut conn = Conn::new(addr, token);
    let mut rng = Rng(0x50a4_0000 + client as u64);
    let mut model: BTreeMap<String, String> = BTreeMap::new();
    let mut outcome = Outcome::default();
    let prefix = format!("c{client:02}-");
    while next.fetch_add(1, Ordering::Relaxed) < total {
        let key = format!("{prefix}k{}", rng.below(KEYS_PER_CLIENT));
        let path = format!("mock/kv/{key}");
        let kind = match rng.below(100) {
            0..40 => Kind::Write,
            40..70 => Kind::Read,
            70..85 => Kind::List,
            _ => Kind::Delete,
        };
        *outcome.counts.entry(kind).or_default() += 1;
        match kind {
            Kind::Write => {
                let value = format!("v{client}-{}", rng.next_u64());
                let (status, body) = conn.request("PUT", &path, Some(&json!({ "value": value })));
                if status == 200 && body["data"]["value"] == json!(value) {
                    model.insert(key, value);
                } else {
                    outcome.mismatch(format!("write {key}: {status} {body}"));
                }
            }
            Kind::Read => {
                let (status, body) = conn.request("GET", &path, None);
                let ok = match model.get(&key) {
                    Some(value) => {
                        status == 200 && body["data"] == json!({"value": value, "version": 0})
                    }
                    None => status == 404,
                };
                if !ok {
                    outcome.mismatch(format!(
                        "read {key}: {status} {body}, model {:?}",
                        model.get(&key)
                    ));
                }
            }
            Kind::List => {
                let (status, body) = conn.request("LIST", "mock/kv", None);
                // Other clients change their keys meanwhile; this client's own are exact.
                let mine: Vec<String> = body["data"]["keys"]
                    .as_array()
                    .map(|keys| {
                        keys.iter()
                            .filter_map(Value::as_str)
                            .filter(|k| k.starts_with(&prefix))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                let expected: Vec<String> = model.keys().cloned().collect();
                let ok = match status {
                    200 => mine == expected,
                    404 => expected.is_empty(),
                    _ => false,
                };
                if !ok {
                    outcome.mismatch(format!("list: {status}, mine {mine:?}, model {expected:?}"));
                }
            }
            Kind::Delete => {
                let (status, body) = conn.request("DELETE", &path, None);
                if status == 204 {
                    model.remove(&key);
                } else {
                    outcome.mismatch(format!("delete {key}: {status} {body}"));
                }
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    outcome.connections = conn.opened;
    outcome
}

/// One reading of the plugin process.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Duration,
    requests: usize,
    rss_kib: u64,
    fds: usize,
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("plugin {pid} gone? /proc/{pid}/fd: {e}"))
        .count()
}

fn growth(first: f64, last: f64) -> f64 {
    (last - first) / first
}

#[test]
#[ignore = "a long run (about 1M requests, minutes); `make soak` runs it in release mode"]
fn a_million_requests_leave_plugin_memory_and_descriptors_flat() {
    let total = env_usize("SOAK_REQUESTS", 1_000_000);
    let clients = env_usize("SOAK_CLIENTS", 24);
    let interval = Duration::from_secs(env_usize("SOAK_SAMPLE_SECS", 10) as u64);
    assert!(
        clients > 0 && total >= clients,
        "SOAK_REQUESTS < SOAK_CLIENTS"
    );

    // `info`, not the harness's `trace`: at trace the server logs every request to its log
    // file, a gigabyte over a million requests, and the run would measure the disk.
    let server = DevServer::start_with(DevOptions {
        log_level: "info".into(),
        ..DevOptions::default()
    });
    server.register_and_enable(PLUGIN, &["mock"]);
    let pid = match server.plugin_pids(PLUGIN).as_slice() {
        [pid] => *pid,
        other => panic!("expected one plugin process, found {other:?}"),
    };
    let warm_up = total / 10;

    let next = AtomicUsize::new(0);
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            loop {
                let sample = Sample {
                    at: started.elapsed(),
                    requests: done.load(Ordering::Relaxed),
                    rss_kib: common::status_kib(pid, "VmRSS"),
                    fds: fd_count(pid),
                };
                // Printed as it comes too, so a long run shows its progress (and where it
                // stalled, if it does).
                eprintln!(
                    "soak: sample at {:.0?}: {} requests, VmRSS {} KiB, {} fds",
                    sample.at, sample.requests, sample.rss_kib, sample.fds
                );
                samples.push(sample);
                // The interval is the sampling rate, not a wait for anything: the channel ends
                // it at once when the clients finish.
                match stop_rx.recv_timeout(interval) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
            samples
        })
    };

    let (addr, token) = (server.addr().to_owned(), server.token().to_owned());
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (addr, token, next, done) = (&addr, &token, &next, &done);
                scope.spawn(move || client(addr, token, c, next, total, done))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let _ = stop_tx.send(());
    let mut samples = sampler.join().unwrap();
    // One last reading after the final request, so the curve ends where the run does.
    samples.push(Sample {
        at: started.elapsed(),
        requests: done.load(Ordering::Relaxed),
        rss_kib: common::status_kib(pid, "VmRSS"),
        fds: fd_count(pid),
    });

    let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut mismatches = Vec::new();
    let mut mismatch_count = 0;
    let mut connections = 0;
    for outcome in &outcomes {
        for (kind, n) in &outcome.counts {
            *counts.entry(*kind).or_default() += n;
        }
        mismatches.extend(outcome.mismatches.iter().cloned());
        mismatch_count += outcome.mismatch_count;
        connections += outcome.connections;
    }
    let requests = done.load(Ordering::Relaxed);
    eprintln!(
        "soak: {requests} requests by {clients} clients in {elapsed:.1?} ({:.0}/s), \
         {connections} connections; {counts:?}; {mismatch_count} answers off the model",
        requests as f64 / elapsed.as_secs_f64()
    );
    eprintln!("soak: plugin {pid}: time, requests done, VmRSS KiB, open fds");
    for s in &samples {
        eprintln!(
            "soak: {:>7.1}s {:>9} {:>7} {:>4}",
            s.at.as_secs_f64(),
            s.requests,
            s.rss_kib,
            s.fds
        );
    }

    assert_eq!(requests, total);
    assert!(
        mismatch_count == 0,
        "{mismatch_count} answers differ from the model, e.g. {mismatches:#?}"
    );
    // The same process throughout: a relaunch would reset the figures and hide a leak.
    assert_eq!(
        server.plugin_pids(PLUGIN),
        vec![pid],
        "the plugin process changed during the run"
    );

    let after: Vec<&Sample> = samples.iter().filter(|s| s.requests >= warm_up).collect();
    assert!(
        after.len() >= 3,
        "only {} samples after the warm-up of {warm_up} requests: raise SOAK_REQUESTS or \
         lower SOAK_SAMPLE_SECS",
        after.len()
    );
    let (first, last) = (after[0], after[after.len() - 1]);
    let rss = growth(first.rss_kib as f64, last.rss_kib as f64);
    let fds = growth(first.fds as f64, last.fds as f64);
    let peak_rss = after.iter().map(|s| s.rss_kib).max().unwrap();
    let peak_fds = after.iter().map(|s| s.fds).max().unwrap();
    eprintln!(
        "soak: after warm-up ({warm_up} requests): VmRSS {} -> {} KiB ({:+.1}%, peak {peak_rss}), \
         fds {} -> {} ({:+.1}%, peak {peak_fds})",
        first.rss_kib,
        last.rss_kib,
        rss * 100.0,
        first.fds,
        last.fds,
        fds * 100.0
    );
    assert!(
        rss <= MAX_GROWTH,
        "plugin RSS grew {:.1}% after warm-up ({} -> {} KiB)",
        rss * 100.0,
        first.rss_kib,
        last.rss_kib
    );
    assert!(
        fds <= MAX_GROWTH,
        "plugin fds grew {:.1}% after warm-up ({} -> {})",
        fds * 100.0,
        first.fds,
        last.fds
    );
}
