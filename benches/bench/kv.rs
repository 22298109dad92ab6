//! `kv`: the KV secrets engine version 2 through a real server: our `vault-plugin-secrets-kv`
//! (`examples/kv`), HashiCorp's Go plugin it re-implements (v0.15.0, built by `make peers`) and
//! OpenBao's builtin `kv` version 2, in one dev server (log level `info`) with one mount each.
//!
//! The two external plugins coexist under different catalog names: ours as
//! `vault-plugin-secrets-kv`, the Go binary as `kv-go` (the name `kv` is the core's own and runs
//! the builtin whatever is registered). Each is enabled bare (a version 1 mount: the core
//! refuses `options.version` at enable for any name but `kv`) and tuned to
//! `options.version=2`, which reloads it as version 2; the builtin is enabled with
//! `options.version=2`. Every mount holds the same 100 keys `f/k000`..`f/k099` (32-byte
//! values), written before anything is measured, and is warmed up with every operation.
//!
//! Operations, each at 1, 16 and 64 keep-alive HTTP/1.1 connections, round robin over the keys:
//! writes (`PUT data/f/kNNN`, `{"data":{"value":...}}`: a new version each time; past the
//! default of 10 versions the oldest is dropped), reads (`GET data/f/kNNN`), patches (`PATCH
//! data/f/kNNN`, `application/merge-patch+json`) and lists (`LIST metadata/f`, 100 keys). Per
//! cell, 2 rounds interleaved ours, Go, builtin, ours, Go, builtin of `BENCH_SECONDS / 2` each,
//! so each target gets `BENCH_SECONDS` per cell. Around each run: the CPU time of the plugin
//! process (ours or Go; the builtin has none), of the server and of this load generator, from
//! `/proc`; each plugin's peak RSS (`VmHWM`, reset before each of its runs). Every answer is
//! checked, status and body (200 with the new version's metadata for a write or a patch, 200
//! with the value for a read, 200 naming the last key for a list), and a cell with any wrong
//! answer fails the section, so a broken run cannot print a rate.

use std::sync::Arc;
use std::time::Duration;

use plugin_test_support::common::{self, DevServer};
use plugin_test_support::http;
use serde_json::json;

use super::{
    Pids, Run, clock_ticks, connections, cpus, drive, interleave, mib, micros_per_request,
    ours_and_go, plugin_processes, request_ok,
};

/// Our binary's catalog name (and file name in the plugin directory).
const OURS: &str = "vault-plugin-secrets-kv";
/// The Go binary's catalog name on the same server.
const GO: &str = "kv-go";
/// The Go plugin's file in `target/peers/`.
const GO_PEER: &str = "vault-plugin-secrets-kv-go";
/// The folder of the keys, listed by the list operation.
const FOLDER: &str = "f";
const KEYS: usize = 100;
const VALUE: &str = "0123456789abcdef0123456789abcdef";
/// Rounds per cell, interleaved ours, Go, builtin.
const ROUNDS: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KvOp {
    Write,
    Read,
    Patch,
    List,
}

impl KvOp {
    const ALL: [KvOp; 4] = [KvOp::Write, KvOp::Read, KvOp::Patch, KvOp::List];

    fn name(self) -> &'static str {
        match self {
            KvOp::Write => "write",
            KvOp::Read => "read",
            KvOp::Patch => "patch",
            KvOp::List => "list",
        }
    }

    /// What every answer's body must contain (its status must be 200).
    fn marker(self) -> &'static [u8] {
        match self {
            KvOp::Write | KvOp::Patch => b"\"version\":",
            KvOp::Read => VALUE.as_bytes(),
            KvOp::List => b"\"k099\"",
        }
    }

    /// A right answer is a 200 whose body has the [`marker`](Self::marker); a wrong one is
    /// described.
    fn check(self, status: u16, body: &[u8]) -> Result<(), String> {
        if status == 200 && contains(body, self.marker()) {
            Ok(())
        } else {
            Err(format!(
                "{}: HTTP {status}: {}",
                self.name(),
                String::from_utf8_lossy(body)
            ))
        }
    }
}

/// The operations to run (`BENCH_OPS`, default all).
fn operations() -> Vec<KvOp> {
    let wanted = std::env::var("BENCH_OPS").unwrap_or_default();
    KvOp::ALL
        .into_iter()
        .filter(|op| wanted.trim().is_empty() || wanted.split(',').any(|w| w.trim() == op.name()))
        .collect()
}

/// One mount of the section.
struct Target {
    label: &'static str,
    mount: &'static str,
    /// The catalog name; `None` for the builtin.
    plugin: Option<&'static str>,
    /// The plugin's process; 0 for the builtin.
    pid: u32,
}

/// Enables `target` as a version 2 mount and waits until it writes as one.
fn enable(server: &DevServer, target: &mut Target) {
    let mount = target.mount;
    match target.plugin {
        Some(name) => {
            request_ok(
                server,
                "POST",
                &format!("sys/mounts/{mount}"),
                &json!({ "type": name }),
            );
            request_ok(
                server,
                "POST",
                &format!("sys/mounts/{mount}/tune"),
                &json!({ "options": { "version": "2" } }),
            );
        }
        None => {
            request_ok(
                server,
                "POST",
                &format!("sys/mounts/{mount}"),
                &json!({ "type": "kv", "options": { "version": "2" } }),
            );
        }
    }
    // A version 1 mount answers `config` 404 (no such key) and a write 204; version 2 answers
    // both 200. The builtin's upgrade answers errors until it is done.
    common::wait_until(
        &format!("{mount} to answer as a version 2 mount"),
        Duration::from_secs(30),
        || {
            server.http("GET", &format!("{mount}/config"), None).0 == 200
                && server
                    .http(
                        "PUT",
                        &format!("{mount}/data/probe"),
                        Some(&json!({ "data": { "value": VALUE } })),
                    )
                    .0
                    == 200
        },
    );
    if let Some(name) = target.plugin {
        let mut pids = Vec::new();
        common::wait_until(
            &format!("one process of {name}"),
            Duration::from_secs(10),
            || {
                pids = plugin_processes(server, name);
                pids.len() == 1
            },
        );
        target.pid = pids[0];
    }
}

/// Every request of a cell, made up front, so the load generator only writes bytes.
fn requests(host: &str, mount: &str, op: KvOp) -> Vec<Vec<u8>> {
    let token = ("X-Vault-Token", common::ROOT_TOKEN);
    let write = json!({ "data": { "value": VALUE } }).to_string();
    let patch = json!({ "data": { "patched": VALUE } }).to_string();
    (0..KEYS)
        .map(|k| {
            let data = format!("/v1/{mount}/data/{FOLDER}/k{k:03}");
            let (method, path, body) = match op {
                KvOp::Write => ("PUT", data, Some(("application/json", &write))),
                KvOp::Read => ("GET", data, None),
                KvOp::Patch => (
                    "PATCH",
                    data,
                    Some(("application/merge-patch+json", &patch)),
                ),
                KvOp::List => ("LIST", format!("/v1/{mount}/metadata/{FOLDER}"), None),
            };
            match body {
                Some((content_type, body)) => http::encode(
                    method,
                    &path,
                    host,
                    &[token, ("Content-Type", content_type)],
                    body.as_bytes(),
                    false,
                ),
                None => http::encode(method, &path, host, &[token], b"", false),
            }
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One cell: an operation at a connection count, each target's runs merged, and the plugins'
/// peak RSS (KiB; 0 for the builtin).
struct Cell {
    op: KvOp,
    connections: usize,
    runs: [Run; 3],
    peaks: [u64; 3],
}

pub(crate) fn kv(cell: Duration) {
    println!(
        "\n## KV version 2: ours, HashiCorp's Go plugin and the builtin kv v2, through one server\n"
    );
    let Some((ours_bin, go_bin)) = ours_and_go("BENCH_KV_BIN", OURS, GO_PEER) else {
        return;
    };
    let ticks = clock_ticks();
    let server = DevServer::start_with(common::DevOptions {
        log_level: "info".to_owned(),
        ..common::DevOptions::default()
    });
    for (name, path) in [(OURS, &ours_bin), (GO, &go_bin)] {
        let sha = server.install_file(name, path);
        request_ok(
            &server,
            "PUT",
            &format!("sys/plugins/catalog/secret/{name}"),
            &json!({ "sha256": sha, "command": name }),
        );
    }
    let mut targets = [
        ("ours", "kvours", Some(OURS)),
        ("Go", "kvgo", Some(GO)),
        ("builtin", "kvbuiltin", None),
    ]
    .map(|(label, mount, plugin)| Target {
        label,
        mount,
        plugin,
        pid: 0,
    });
    for target in &mut targets {
        enable(&server, target);
    }
    eprintln!(
        "bench: kv: server pid {}, plugin pids {} (ours), {} (Go)",
        server.pid(),
        targets[0].pid,
        targets[1].pid
    );
    for target in &targets {
        for k in 0..KEYS {
            request_ok(
                &server,
                "PUT",
                &format!("{}/data/{FOLDER}/k{k:03}", target.mount),
                &json!({ "data": { "value": VALUE } }),
            );
        }
    }

    let addr = server.addr().trim_start_matches("http://").to_owned();
    let make = |mount: &str, op: KvOp| Arc::new(requests(&addr, mount, op));
    let pids = |target: &Target| Pids {
        server: server.pid(),
        plugin: target.pid,
    };
    // Warm-up: connections, caches, the Go runtime's heap, and every key past 10 versions, so
    // that writes and patches drop the oldest version from the start.
    for op in KvOp::ALL {
        for target in &targets {
            let warm = drive(
                &addr,
                &make(target.mount, op),
                16,
                Duration::from_millis(600),
                &pids(target),
                ticks,
                move |status, body: &[u8]| op.check(status, body),
            );
            assert_eq!(
                warm.errors,
                0,
                "{} warm-up {}: {:?}",
                target.label,
                op.name(),
                warm.first_error
            );
        }
    }

    let slice = cell / ROUNDS as u32;
    let mut cells = Vec::new();
    // Fewer connections first: a plugin's peak of a cell is then that of the load so far.
    for connections in connections() {
        for op in operations() {
            let requests: Vec<_> = targets.iter().map(|t| make(t.mount, op)).collect();
            let (runs, peaks) = interleave(
                &format!("kv {} x{connections}", op.name()),
                ROUNDS,
                targets.each_ref().map(|t| t.pid),
                |t| {
                    let target = &targets[t];
                    let run = drive(
                        &addr,
                        &requests[t],
                        connections,
                        slice,
                        &pids(target),
                        ticks,
                        move |status, body: &[u8]| op.check(status, body),
                    );
                    assert!(
                        run.errors == 0 && run.requests > 0,
                        "{} {} x{connections}: {} errors of {} requests, the first: {:?}\nlog \
                         tail:\n{}",
                        target.label,
                        op.name(),
                        run.errors,
                        run.requests,
                        run.first_error,
                        server.log_tail(30)
                    );
                    run
                },
            );
            cells.push(Cell {
                op,
                connections,
                runs,
                peaks,
            });
        }
    }
    for target in &targets[..2] {
        let name = target.plugin.unwrap_or_default();
        assert_eq!(
            plugin_processes(&server, name),
            vec![target.pid],
            "the {} plugin process was replaced during the run",
            target.label
        );
    }
    cells.sort_by_key(|c| (c.op as usize, c.connections));

    println!(
        "One `bao server -dev` (log level `info`); mounts `kvours` (ours, catalog name `{OURS}`), \
         `kvgo` (the Go plugin as `{GO}`), `kvbuiltin` (builtin kv, version 2). {KEYS} keys \
         `{FOLDER}/k000`..`{FOLDER}/k{:03}` of {}-byte values in each, past 10 versions each \
         before the first cell. Each cell: {ROUNDS} rounds of {:.1} s per target, interleaved \
         ours, Go, builtin; every answer checked.\n",
        KEYS - 1,
        VALUE.len(),
        slice.as_secs_f64()
    );
    print_tables(&mut cells);
    print_targets(&cells);
    for target in &targets[..2] {
        println!(
            "{} plugin RSS after the load: {}",
            target.label,
            mib(common::try_status_kib(target.pid, "VmRSS").unwrap_or(0)),
        );
    }
    println!(
        "server peak RSS: {}\n",
        mib(common::try_status_kib(server.pid(), "VmHWM").unwrap_or(0))
    );
}

fn print_tables(cells: &mut [Cell]) {
    let server_us = |run: &Run| micros_per_request(run, run.server_cpu);
    let plugin_us = |run: &Run| micros_per_request(run, run.plugin_cpu);
    println!(
        "| op | conns | ours req/s | Go req/s | builtin req/s | ours/Go | ours/builtin | \
         server-only bound | p50 ms ours / Go / builtin | p99 ms ours / Go / builtin |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for cell in cells.iter_mut() {
        let (op, conns) = (cell.op.name(), cell.connections);
        let [ours, go, builtin] = &mut cell.runs;
        println!(
            "| {op} | {conns} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} / {:.2} / \
             {:.2} | {:.2} / {:.2} / {:.2} |",
            ours.rps(),
            go.rps(),
            builtin.rps(),
            ours.rps() / go.rps().max(1e-9),
            ours.rps() / builtin.rps().max(1e-9),
            server_us(builtin) / server_us(ours).max(1e-9),
            ours.percentile_ms(50.0),
            go.percentile_ms(50.0),
            builtin.percentile_ms(50.0),
            ours.percentile_ms(99.0),
            go.percentile_ms(99.0),
            builtin.percentile_ms(99.0),
        );
    }
    println!(
        "\nserver-only bound: the builtin's server CPU per request over ours's, the ours/builtin \
         ratio if the server's CPU were the only limit.\n"
    );
    println!(
        "| op | conns | plugin CPU µs/req ours / Go / builtin | ours/Go | server CPU µs/req ours \
         / Go / builtin | plugin peak RSS ours / Go | ours/Go |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    for cell in cells.iter() {
        let (op, conns) = (cell.op.name(), cell.connections);
        let [ours, go, builtin] = &cell.runs;
        println!(
            "| {op} | {conns} | {:.0} / {:.0} / n/a | {:.2} | {:.0} / {:.0} / {:.0} | {} / {} | \
             {:.2} |",
            plugin_us(ours),
            plugin_us(go),
            plugin_us(ours) / plugin_us(go).max(1e-9),
            server_us(ours),
            server_us(go),
            server_us(builtin),
            mib(cell.peaks[0]),
            mib(cell.peaks[1]),
            cell.peaks[0] as f64 / (cell.peaks[1] as f64).max(1.0),
        );
    }
    println!(
        "\n| op | conns | target | requests | errors | server CPU µs/req | plugin CPU µs/req | \
         load generator CPU µs/req | machine busy | of which other processes |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for cell in cells.iter() {
        let (op, conns) = (cell.op.name(), cell.connections);
        for (name, run) in ["ours", "Go", "builtin"].iter().zip(&cell.runs) {
            let plugin = if *name == "builtin" {
                "n/a".to_owned()
            } else {
                format!("{:.0}", plugin_us(run))
            };
            println!(
                "| {op} | {conns} | {name} | {} | {} | {:.0} | {plugin} | {:.0} | {:.0}% | {:.0}% |",
                run.requests,
                run.errors,
                server_us(run),
                micros_per_request(run, run.generator_cpu),
                100.0 * run.machine_busy / run.elapsed.max(1e-9),
                100.0 * run.other_cpu / (run.elapsed * cpus()).max(1e-9),
            );
        }
    }
    println!();
}

/// The targets, ours/Go, from this run's figures.
fn print_targets(cells: &[Cell]) {
    println!("### Targets, KV version 2 (ours / Go, one run)\n");
    println!("| measure | target | measured | met |\n|---|---|---:|---|");
    let row = |measure: &str, target: &str, ratio: f64, met: bool| {
        println!(
            "| {measure} | {target} | {ratio:.2} | {} |",
            if met { "yes" } else { "no" }
        );
    };
    let plugin_us = |run: &Run| micros_per_request(run, run.plugin_cpu);
    for cell in cells {
        if !matches!(cell.op, KvOp::Write | KvOp::Read) {
            continue;
        }
        let [ours, go, _] = &cell.runs;
        let ratio = ours.rps() / go.rps().max(1e-9);
        row(
            &format!("throughput, {}, {} conns", cell.op.name(), cell.connections),
            "≥ 1.5",
            ratio,
            ratio >= 1.5,
        );
    }
    for cell in cells {
        let [ours, go, _] = &cell.runs;
        let ratio = plugin_us(ours) / plugin_us(go).max(1e-9);
        row(
            &format!(
                "plugin CPU per request, {}, {} conns",
                cell.op.name(),
                cell.connections
            ),
            "≤ 0.3",
            ratio,
            ratio <= 0.3,
        );
    }
    // The highest peak of each plugin over the section.
    let peak = |t: usize| cells.iter().map(|c| c.peaks[t]).max().unwrap_or(0);
    let ratio = peak(0) as f64 / (peak(1) as f64).max(1.0);
    row(
        &format!("peak RSS under load ({} / {})", mib(peak(0)), mib(peak(1))),
        "≤ 0.3",
        ratio,
        ratio <= 0.3,
    );
    println!();
}
