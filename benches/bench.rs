//! `make bench` (= `cargo bench --bench bench`): what our plugin costs next to the Go mock it
//! replaces (OpenBao's, built by `make peers`) and next to the server's builtin, in-process kv
//! version 1 engine; and how far one plugin process is from being the bottleneck.
//!
//! Sections (all by default; name some after `--` to run only those, e.g.
//! `cargo bench --bench bench -- startup alone`):
//!
//! * `startup`: each binary's size; exec to handshake line (median of 21 launches with the
//!   server's real environment), ours, the Go mock, and the first plugin of `docs/sdk.md` built
//!   out of tree in release as its author would (`tests/support/first_plugin.rs`).
//! * `server`: one `bao server -dev` on loopback (log level `info`), our plugin at `mock/`, the
//!   Go mock at `gomock/` and the builtin kv v1 at `kvb/`, driven over HTTP/1.1 keep-alive by
//!   the load generator below with the same requests, interleaved A B C A B C, at 1, 16 and 64
//!   connections, for writes, reads and lists; CPU time of each plugin and of the server
//!   process from `/proc/<pid>/stat`; each plugin's peak RSS (`VmHWM`); `secrets enable` cold
//!   and warm. Then the targets, ours/Go, and a chart (`bench.svg` beside the README after a
//!   run of every cell, `target/bench.svg` otherwise).
//! * `alone`: the plugin without the server: the in-Rust test host (`tests/support/host/`) dials it
//!   over mutual TLS and serves its storage in memory; each "request" is the call sequence
//!   the server makes for one HTTP request (write: resolve-path, existence check, update;
//!   read: resolve-path, read; list: resolve-path, list).
//!
//! * `logins`: a CPU-bound path, `static-auth`'s PBKDF2 login, through a real server with
//!   the plugin on one runtime thread and on two: logins per second at 1, 2 and 4 clients, and
//!   a cheap request's median time while logins run (`bench/logins.rs`).
//!
//! * `database`: PostgreSQL credentials issued and revoked per second through a real server,
//!   our `postgresql-database-plugin` beside HashiCorp's Go plugin, at 1 and 8 clients, with
//!   the CPU per credential of the plugin, PostgreSQL and the server, and peak RSS
//!   (`bench/database.rs`).
//!
//! * `kv`: the KV secrets engine version 2 through one server: our `vault-plugin-secrets-kv`
//!   beside HashiCorp's Go plugin and the builtin kv v2, writes, reads, patches and lists at 1,
//!   16 and 64 connections, interleaved; plugin CPU per request and peak RSS (`bench/kv.rs`).
//!
//! * `profile` (only when named, `make profile`): ours and the Go mock per request in counts:
//!   HTTP/2 frames by type each way, system calls, context switches, TLS records, where one
//!   request's time goes at 1 connection, RSS by mapping (`bench/profile.rs`).
//!
//! Knobs (environment): `BENCH_SECONDS` (per cell and round, default 3); `BENCH_OPS` (e.g.
//! `write,read`) and `BENCH_CONNS` (e.g. `16`) to run fewer cells; `BENCH_PLUGIN_ARGS`
//! (comma-separated catalog `args` for the plugin, e.g. `--log-level=warn`); `BENCH_PLUGIN_BIN`
//! (another build of the plugin, for every section); `BENCH_KV_BIN` (the kv plugin, default
//! `target/release/vault-plugin-secrets-kv`).
//!
//! Under `cargo test --all-targets` this target is built and run without `--bench`: it then
//! returns at once.

#![allow(clippy::print_stdout)]

#[path = "bench/database.rs"]
mod database;
#[path = "bench/kv.rs"]
mod kv;
#[path = "bench/logins.rs"]
mod logins;
#[path = "bench/profile.rs"]
mod profile;

use plugin_test_support::http::{self, Connection};
use plugin_test_support::{common, first_plugin, host};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vault_plugin_sdk::proto::pb;

const PLUGIN: &str = "my-mock-plugin";
const PLUGIN_MOUNT: &str = "mock";
/// OpenBao's Go mock, from `make peers`.
const GO_PLUGIN: &str = "openbao-mock";
const GO_MOUNT: &str = "gomock";
const BUILTIN_MOUNT: &str = "kvb";
/// Keys written, read and listed: prepopulated, so writes are updates and reads hit.
const KEYS: usize = 100;
const VALUE: &str = "0123456789abcdef0123456789abcdef";
const CONNECTIONS: [usize; 3] = [1, 16, 64];

/// The connection counts to run (`BENCH_CONNS`, default all).
fn connections() -> Vec<usize> {
    match std::env::var("BENCH_CONNS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .filter_map(|c| c.trim().parse().ok())
            .collect(),
        _ => CONNECTIONS.to_vec(),
    }
}

/// The operations to run (`BENCH_OPS`, default all).
fn operations() -> Vec<Op> {
    let wanted = std::env::var("BENCH_OPS").unwrap_or_default();
    Op::ALL
        .into_iter()
        .filter(|op| wanted.trim().is_empty() || wanted.split(',').any(|w| w.trim() == op.name()))
        .collect()
}
const LAUNCHES: usize = 21;
const ENABLES: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("bench: skipped (run `make bench` or `cargo bench --bench bench`)");
        return;
    }
    let wanted: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |section: &str| wanted.is_empty() || wanted.contains(&section);
    let seconds = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    let cell = Duration::from_secs_f64(seconds);

    println!("# my-mock-plugin benchmark\n");
    print_machine();
    let startup = if run("startup") {
        startup()
    } else {
        Vec::new()
    };
    if run("server") {
        let mut server = through_server(cell);
        print_targets(&startup, &mut server);
        // The committed chart is redrawn only by a run of every cell.
        let full = server.cells.len() == Op::ALL.len() * CONNECTIONS.len();
        let chart = if full {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench.svg")
        } else {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench.svg")
        };
        write_chart(&server.cells, &chart);
    }
    if run("alone") {
        plugin_alone(cell);
    }
    if run("logins") {
        logins::logins(cell);
    }
    if run("database") {
        database::database(cell);
    }
    if run("kv") {
        kv::kv(cell);
    }
    // Not by default: counts per request (`make profile`), slow under strace.
    if wanted.contains(&"profile") {
        profile::profile(cell);
    }
    println!("\nload average at the end: {}", load_average());
}

// ---------------------------------------------------------------------------------------------
// The machine and the processes

fn print_machine() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0.0, |kb| kb as f64 / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let bao = Command::new(common::bao_bin())
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "machine: {cpus} CPUs ({model}), {mem:.1} GiB, Linux {}; {bao}",
        kernel.trim()
    );
    println!("load average at the start: {}\n", load_average());
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cpus() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| usize::from(n) as f64)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) a process has spent so far.
fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(end) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[end + 1..].split_whitespace().collect();
    // After `(comm)`: index 0 is field 3 (state); utime is field 14, stime field 15.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (field(11) + field(12)) / ticks
}

/// The plugin binary: `BENCH_PLUGIN_BIN` (to compare builds) or the one cargo built.
fn plugin_binary() -> std::path::PathBuf {
    match std::env::var_os("BENCH_PLUGIN_BIN") {
        Some(path) if !path.is_empty() => path.into(),
        _ => common::plugin_bin(),
    }
}

/// OpenBao's Go mock as `make peers` builds it: the plugin users would otherwise run.
fn go_mock_binary() -> std::path::PathBuf {
    common::peer_bin("openbao-mock")
}

/// Resets a process's peak RSS (`VmHWM`) to its current RSS, so the next reading is the peak
/// of what follows (`clear_refs` value 5, Linux 4.0+).
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// One cell's `rounds` over the three targets (ours, Go, builtin), interleaved so that a drift
/// in the machine's load touches them alike; `run(t)` measures target `t` once. Each target's
/// runs merged, and the highest peak RSS of its plugin process `pids[t]` (KiB; 0 for no
/// process, as for a builtin engine), reset before each run. The rates go to stderr after
/// `bench: <what>`.
fn interleave(
    what: &str,
    rounds: usize,
    pids: [u32; 3],
    mut run: impl FnMut(usize) -> Run,
) -> ([Run; 3], [u64; 3]) {
    let mut runs: [Run; 3] = Default::default();
    let mut peaks = [0; 3];
    for _ in 0..rounds {
        for (t, &pid) in pids.iter().enumerate() {
            if pid != 0 {
                reset_peak(pid);
            }
            runs[t].merge(run(t));
            if pid != 0 {
                peaks[t] = peaks[t].max(common::try_status_kib(pid, "VmHWM").unwrap_or(0));
            }
        }
    }
    eprintln!(
        "bench: {what}: ours {:.0}/s, Go {:.0}/s, builtin {:.0}/s",
        runs[0].rps(),
        runs[1].rps(),
        runs[2].rps()
    );
    (runs, peaks)
}

/// The process of plugin `name` among `parent`'s children.
fn plugin_child(parent: u32, name: &str) -> Option<u32> {
    let suffix = format!("/{name}");
    common::children_of(parent)
        .into_iter()
        .find(|&pid| common::pid_alive(pid) && common::cmdline(pid).contains(&suffix))
}

/// The running processes of plugin `name` among the server's children: those whose program is
/// `.../name` exactly (a Go peer's catalog name may extend ours).
fn plugin_processes(server: &common::DevServer, name: &str) -> Vec<u32> {
    let suffix = format!("/{name}");
    server
        .plugin_pids(name)
        .into_iter()
        .filter(|&pid| {
            common::pid_alive(pid)
                && common::cmdline(pid)
                    .split(' ')
                    .next()
                    .is_some_and(|program| program.ends_with(&suffix))
        })
        .collect()
}

/// A section's two plugins: ours, the release build `make bench` copies (the path in the
/// environment `variable`, else `target/release/<ours>`), and the Go peer `go_peer` that
/// `make peers` builds. `None` when one is missing, which is said: the section is then skipped
/// rather than failed, since only `make bench` builds them all.
fn ours_and_go(
    variable: &str,
    ours: &str,
    go_peer: &str,
) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let ours = std::env::var_os(variable)
        .filter(|path| !path.is_empty())
        .map_or_else(
            || {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("target/release")
                    .join(ours)
            },
            std::path::PathBuf::from,
        );
    let go = common::peer_bin(go_peer);
    if let Some(missing) = [&ours, &go].into_iter().find(|path| !path.exists()) {
        println!(
            "skipped: {} is missing (`make bench` builds it)",
            missing.display()
        );
        return None;
    }
    Some((ours, go))
}

/// A request that must succeed (2xx); its answer. A failure shows the server's log tail.
fn request_ok(server: &common::DevServer, method: &str, path: &str, body: &Value) -> Value {
    let (status, answer) = server.http(method, path, Some(body));
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}\nlog tail:\n{}",
        server.log_tail(30)
    );
    answer
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// Start-up

fn startup() -> Vec<(&'static str, u64, f64)> {
    println!("## Start-up\n");
    let cert = host::HostCert::generate();
    let tmp = host::TempDir::new("bench");
    let mut figures = Vec::new();
    println!(
        "| binary | size | exec to handshake line: median / min / max ({LAUNCHES} launches) |"
    );
    println!("|---|---:|---:|");
    // The first plugin of docs/sdk.md, built out of tree as its author would build it: it must
    // start as fast as the mock without copying this repository's configuration.
    let first_plugin = first_plugin::build_release();
    let binaries = [
        ("ours", plugin_binary()),
        ("Go mock", go_mock_binary()),
        ("out-of-tree first plugin", first_plugin),
    ];
    for (label, binary) in binaries {
        let size = std::fs::metadata(&binary).map_or(0, |m| m.len());
        let mut times = Vec::new();
        for _ in 0..LAUNCHES {
            times.push(launch_to_handshake(&binary, &cert.pem, tmp.path()));
        }
        let med = median(&mut times);
        println!(
            "| {label} (`{}`) | {} ({size} bytes) | {med:.2} / {:.2} / {:.2} ms |",
            binary.display(),
            mib(size / 1024),
            times[0],
            times[times.len() - 1]
        );
        figures.push((label, size, med));
    }
    println!();
    if let [(_, _, ours), _, (_, _, first)] = figures[..] {
        println!(
            "The out-of-tree plugin starts in {:.2}x the mock's time.\n",
            first / ours.max(1e-9)
        );
    }
    figures.truncate(2);
    figures
}

/// Milliseconds from exec to the handshake line, with the server's real environment.
fn launch_to_handshake(binary: &std::path::Path, cert_pem: &str, tmp: &std::path::Path) -> f64 {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env(host::MAGIC_COOKIE_KEY, host::MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5")
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000")
        .env("BAO_PLUGIN_AUTOMTLS_ENABLED", "true")
        .env("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true")
        .env("BAO_VERSION", "2.7.2")
        .env("PLUGIN_CLIENT_CERT", cert_pem)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn the plugin");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("read the handshake line");
    let elapsed = started.elapsed();
    assert!(
        line.starts_with("1|5|unix|"),
        "unexpected handshake line from {}: {line:?}",
        binary.display()
    );
    let _ = child.kill();
    let _ = child.wait();
    elapsed.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 keep-alive load generator

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Write,
    Read,
    List,
}

impl Op {
    const ALL: [Op; 3] = [Op::Write, Op::Read, Op::List];

    fn name(self) -> &'static str {
        match self {
            Op::Write => "write",
            Op::Read => "read",
            Op::List => "list",
        }
    }
}

/// Every request a cell sends, made up front, so the load generator only writes bytes.
fn requests(host: &str, mount: &str, op: Op) -> Vec<Vec<u8>> {
    let body = json!({ "value": VALUE }).to_string();
    let token = ("X-Vault-Token", common::ROOT_TOKEN);
    (0..KEYS)
        .map(|k| {
            let key = format!("/v1/{mount}/kv/k{k:03}");
            match op {
                Op::Write => http::encode(
                    "PUT",
                    &key,
                    host,
                    &[token, ("Content-Type", "application/json")],
                    body.as_bytes(),
                    false,
                ),
                Op::Read => http::encode("GET", &key, host, &[token], b"", false),
                Op::List => http::encode(
                    "GET",
                    &format!("/v1/{mount}/kv/?list=true"),
                    host,
                    &[token],
                    b"",
                    false,
                ),
            }
        })
        .collect()
}

/// One keep-alive connection of the load generator; a request waits at most this long.
fn connect(addr: &str) -> Connection {
    Connection::open(addr, http::CONNECT_TIMEOUT, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("connect to the server: {e}"))
}

/// What one run of one target measured.
#[derive(Default)]
struct Run {
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    chunked_or_closed: u64,
    elapsed: f64,
    /// Latencies in microseconds.
    latencies: Vec<u32>,
    plugin_cpu: f64,
    server_cpu: f64,
    generator_cpu: f64,
    /// Seconds of the run times the fraction of all CPUs that was busy.
    machine_busy: f64,
    /// CPU seconds other processes used during the run.
    other_cpu: f64,
}

impl Run {
    fn merge(&mut self, other: Run) {
        self.requests += other.requests;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.chunked_or_closed += other.chunked_or_closed;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.plugin_cpu += other.plugin_cpu;
        self.server_cpu += other.server_cpu;
        self.generator_cpu += other.generator_cpu;
        self.machine_busy += other.machine_busy;
        self.other_cpu += other.other_cpu;
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.max(1e-9)
    }

    fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        self.latencies.sort_unstable();
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies.len()) - 1;
        f64::from(self.latencies[index]) / 1000.0
    }

    /// CPU seconds per 10,000 requests.
    fn per_10k(&self, cpu: f64) -> f64 {
        cpu * 10_000.0 / (self.requests.max(1) as f64)
    }
}

/// Total and idle jiffies of the whole machine.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next() else {
        return (0, 0);
    };
    let values: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total = values.iter().sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total, idle)
}

struct Pids {
    server: u32,
    plugin: u32,
}

/// A 2xx answer is right; any other is described.
fn succeeded(status: u16, body: &[u8]) -> Result<(), String> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP {status}: {}", String::from_utf8_lossy(body)))
    }
}

/// Drives `connections` keep-alive connections with `requests` (round robin from a per-
/// connection offset) for `duration`; `check` says which answers are right (status and body,
/// [`succeeded`] for any 2xx), a wrong one counts as an error and the first is kept.
fn drive<F>(
    addr: &str,
    requests: &Arc<Vec<Vec<u8>>>,
    connections: usize,
    duration: Duration,
    pids: &Pids,
    ticks: f64,
    check: F,
) -> Run
where
    F: Fn(u16, &[u8]) -> Result<(), String> + Copy + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(connections + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..connections)
        .map(|c| {
            let (barrier, stop, requests) = (barrier.clone(), stop.clone(), requests.clone());
            let addr = addr.to_owned();
            std::thread::spawn(move || {
                let mut run = Run {
                    latencies: Vec::with_capacity(64 * 1024),
                    ..Run::default()
                };
                let mut client = connect(&addr);
                barrier.wait();
                let mut next = c * 7;
                while !stop.load(Ordering::Relaxed) {
                    let request = &requests[next % requests.len()];
                    next += 1;
                    let started = Instant::now();
                    match client.send(request) {
                        Ok(http::Response {
                            status,
                            body,
                            keep_alive,
                            ..
                        }) => {
                            let micros = started.elapsed().as_micros();
                            run.latencies
                                .push(u32::try_from(micros).unwrap_or(u32::MAX));
                            run.requests += 1;
                            if let Err(wrong) = check(status, &body) {
                                run.errors += 1;
                                run.first_error.get_or_insert(wrong);
                            }
                            if !keep_alive {
                                run.chunked_or_closed += 1;
                                client = connect(&addr);
                            }
                        }
                        Err(e) => {
                            run.errors += 1;
                            run.first_error.get_or_insert_with(|| e.to_string());
                            client = connect(&addr);
                        }
                    }
                }
                run
            })
        })
        .collect();
    let me = std::process::id();
    let before = (
        cpu_seconds(pids.plugin, ticks),
        cpu_seconds(pids.server, ticks),
        cpu_seconds(me, ticks),
        machine_jiffies(),
    );
    barrier.wait();
    let started = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut total = Run::default();
    for worker in workers {
        total.merge(worker.join().expect("a load thread panicked"));
    }
    total.elapsed = started.elapsed().as_secs_f64();
    let after_machine = machine_jiffies();
    total.plugin_cpu = cpu_seconds(pids.plugin, ticks) - before.0;
    total.server_cpu = cpu_seconds(pids.server, ticks) - before.1;
    total.generator_cpu = cpu_seconds(me, ticks) - before.2;
    let (total_j, idle_j) = (
        after_machine.0.saturating_sub(before.3.0),
        after_machine.1.saturating_sub(before.3.1),
    );
    // Busy CPU-seconds per CPU over the run, so that runs add up.
    total.machine_busy = if total_j == 0 {
        0.0
    } else {
        (1.0 - idle_j as f64 / total_j as f64) * total.elapsed
    };
    // What everything else on the machine used meanwhile (other builds and tests).
    total.other_cpu = (total_j.saturating_sub(idle_j) as f64 / ticks
        - total.plugin_cpu
        - total.server_cpu
        - total.generator_cpu)
        .max(0.0);
    total
}

// ---------------------------------------------------------------------------------------------
// Through the server

/// One target of the server section: a plugin from the catalog, or the builtin kv v1.
struct Target {
    label: &'static str,
    mount: &'static str,
    /// Catalog name and binary; `None` for the builtin engine.
    plugin: Option<(&'static str, std::path::PathBuf)>,
    /// The plugin's process once mounted; 0 (no process) for the builtin engine.
    pid: u32,
}

/// What one cell (operation × connections) measured for each target, in target order.
struct Cell {
    op: Op,
    connections: usize,
    runs: Vec<Run>,
    peaks: Vec<u64>,
}

/// What the server section hands to the summary.
struct ServerFigures {
    cells: Vec<Cell>,
    /// Cold `secrets enable` medians (ms) for ours and the Go mock, and the builtin's.
    enable_cold: (f64, f64, f64),
}

/// `secrets enable` (POST sys/mounts/PATH, what the CLI sends), timed on the server side of
/// the CLI.
fn timed_enable(server: &common::DevServer, path: &str, config: &Value) -> f64 {
    let started = Instant::now();
    let (status, body) = server.http("POST", &format!("sys/mounts/{path}"), Some(config));
    let elapsed = started.elapsed().as_secs_f64() * 1e3;
    assert!(status < 300, "enable {path}: {status} {body}");
    elapsed
}

fn disable(server: &common::DevServer, path: &str) {
    let (status, body) = server.http("DELETE", &format!("sys/mounts/{path}"), None);
    assert!(status < 300, "disable {path}: {status} {body}");
}

/// Registers a plugin (with `BENCH_PLUGIN_ARGS` for ours) and times `secrets enable` cold (no
/// process of it running) and warm (another of its mounts keeps one); returns the medians.
fn register_and_time_enables(
    server: &common::DevServer,
    name: &str,
    binary: &std::path::Path,
    args: &[String],
) -> (f64, f64) {
    let sha = server.install_file(name, binary);
    let (status, body) = server.http(
        "PUT",
        &format!("sys/plugins/catalog/secret/{name}"),
        Some(&json!({ "sha256": sha, "command": name, "args": args })),
    );
    assert!(status < 300, "register {name}: {status} {body}");
    let config = json!({ "type": name });
    let mut cold = Vec::new();
    for i in 0..ENABLES {
        common::wait_until("no plugin process", Duration::from_secs(10), || {
            plugin_child(server.pid(), name).is_none()
        });
        cold.push(timed_enable(server, &format!("{name}-cold{i}"), &config));
        disable(server, &format!("{name}-cold{i}"));
    }
    common::wait_until("no plugin process", Duration::from_secs(10), || {
        plugin_child(server.pid(), name).is_none()
    });
    timed_enable(server, &format!("{name}-keep"), &config);
    let mut warm = Vec::new();
    for i in 0..ENABLES {
        warm.push(timed_enable(server, &format!("{name}-warm{i}"), &config));
        disable(server, &format!("{name}-warm{i}"));
    }
    disable(server, &format!("{name}-keep"));
    (median(&mut cold), median(&mut warm))
}

fn through_server(cell: Duration) -> ServerFigures {
    println!("## Through the server\n");
    let ticks = clock_ticks();
    let server = common::DevServer::start_with(common::DevOptions {
        log_level: "info".to_owned(),
        ..common::DevOptions::default()
    });
    let plugin_args: Vec<String> = std::env::var("BENCH_PLUGIN_ARGS")
        .unwrap_or_default()
        .split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if !plugin_args.is_empty() {
        println!("our plugin registered with args {plugin_args:?}\n");
    }
    let mut targets = [
        Target {
            label: "ours",
            mount: PLUGIN_MOUNT,
            plugin: Some((PLUGIN, plugin_binary())),
            pid: 0,
        },
        Target {
            label: "Go mock",
            mount: GO_MOUNT,
            plugin: Some((GO_PLUGIN, go_mock_binary())),
            pid: 0,
        },
        Target {
            label: "builtin",
            mount: BUILTIN_MOUNT,
            plugin: None,
            pid: 0,
        },
    ];

    let kv1 = json!({ "type": "kv", "options": { "version": "1" } });
    let mut enables = Vec::new();
    for target in &targets {
        if let Some((name, binary)) = &target.plugin {
            let args = if *name == PLUGIN {
                plugin_args.clone()
            } else {
                Vec::new()
            };
            enables.push(register_and_time_enables(&server, name, binary, &args));
        }
    }
    let mut builtin = Vec::new();
    for i in 0..ENABLES {
        builtin.push(timed_enable(&server, &format!("b{i}"), &kv1));
        disable(&server, &format!("b{i}"));
    }
    let builtin = median(&mut builtin);
    for target in &mut targets {
        match &target.plugin {
            Some((name, _)) => {
                timed_enable(&server, target.mount, &json!({ "type": name }));
                target.pid = plugin_child(server.pid(), name).expect("the plugin process runs");
            }
            None => {
                timed_enable(&server, target.mount, &kv1);
            }
        }
    }
    eprintln!(
        "bench: server pid {}, plugin pids {} (ours), {} (Go)",
        server.pid(),
        targets[0].pid,
        targets[1].pid
    );

    // Same keys in every mount, so writes are updates, reads hit, lists return KEYS keys.
    for target in &targets {
        for k in 0..KEYS {
            let (status, body) = server.http(
                "PUT",
                &format!("{}/kv/k{k:03}", target.mount),
                Some(&json!({ "value": VALUE })),
            );
            assert!(status < 300, "populate {}: {status} {body}", target.mount);
        }
    }

    let addr = server.addr().trim_start_matches("http://").to_owned();
    let make = |mount: &str, op: Op| Arc::new(requests(&addr, mount, op));
    let pids = |target: &Target| Pids {
        server: server.pid(),
        plugin: target.pid,
    };
    // Warm-up: connections, caches, the Go runtime's heap.
    for op in Op::ALL {
        for target in &targets {
            let requests = make(target.mount, op);
            drive(
                &addr,
                &requests,
                16,
                Duration::from_millis(700),
                &pids(target),
                ticks,
                succeeded,
            );
        }
    }

    println!(
        "each cell: {:.1} s per target and round, 2 rounds interleaved ours, Go mock, builtin, \
         ours, Go mock, builtin; {KEYS} keys prepopulated, {}-byte values\n",
        cell.as_secs_f64(),
        VALUE.len()
    );
    // Fewer connections first: a plugin's peak RSS of a cell is then that of the load so far
    // (a heap that grew stays resident).
    let mut cells = Vec::new();
    for connections in connections() {
        for op in operations() {
            let requests: Vec<_> = targets.iter().map(|t| make(t.mount, op)).collect();
            let (runs, peaks) = interleave(
                &format!("{} x{connections}", op.name()),
                2,
                targets.each_ref().map(|t| t.pid),
                |t| {
                    drive(
                        &addr,
                        &requests[t],
                        connections,
                        cell,
                        &pids(&targets[t]),
                        ticks,
                        succeeded,
                    )
                },
            );
            cells.push(Cell {
                op,
                connections,
                runs: runs.into(),
                peaks: peaks.into(),
            });
        }
    }
    cells.sort_by_key(|c| (c.op as usize, c.connections));
    print_server_tables(&mut cells);

    for target in &targets[..2] {
        println!(
            "{} plugin RSS after the load: {}",
            target.label,
            mib(common::try_status_kib(target.pid, "VmRSS").unwrap_or(0))
        );
        assert_eq!(
            plugin_child(server.pid(), target.plugin.as_ref().map_or("", |p| p.0)),
            Some(target.pid),
            "the {} plugin process was replaced during the run",
            target.label
        );
    }
    println!(
        "server peak RSS: {}\n",
        mib(common::try_status_kib(server.pid(), "VmHWM").unwrap_or(0))
    );
    let ((ours_cold, ours_warm), (go_cold, go_warm)) = (enables[0], enables[1]);
    println!(
        "`secrets enable` (POST sys/mounts, median of {ENABLES}): cold (launches the process) \
         ours {ours_cold:.1} ms, Go mock {go_cold:.1} ms; warm (process already serving a \
         mount) ours {ours_warm:.1} ms, Go mock {go_warm:.1} ms; builtin kv v1 {builtin:.1} ms\n"
    );
    ServerFigures {
        cells,
        enable_cold: (ours_cold, go_cold, builtin),
    }
}

/// Microseconds of `cpu` per request of `run`.
fn micros_per_request(run: &Run, cpu: f64) -> f64 {
    run.per_10k(cpu) * 100.0
}

fn print_server_tables(cells: &mut [Cell]) {
    let mut speed = String::from(
        "| op | conns | ours req/s | Go req/s | builtin req/s | ours/Go | ours/builtin | \
         server-only bound | p50 ms ours / Go | p99 ms ours / Go |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut cost = String::from(
        "| op | conns | plugin CPU µs/req ours / Go | ours/Go | server CPU µs/req ours / Go / \
         builtin | ours/Go | plugin peak RSS ours / Go | ours/Go |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut details = String::from(
        "| op | conns | target | requests | errors | server CPU µs/req | plugin CPU µs/req | \
         load generator CPU µs/req | machine busy | of which other processes |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut first_error = None;
    for cell in cells.iter_mut() {
        let (op, conns) = (cell.op.name(), cell.connections);
        let [ours, go, builtin] = &mut cell.runs[..] else {
            continue;
        };
        let server_us = |run: &Run| micros_per_request(run, run.server_cpu);
        let plugin_us = |run: &Run| micros_per_request(run, run.plugin_cpu);
        let _ = writeln!(
            speed,
            "| {op} | {conns} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} / {:.2} | \
             {:.2} / {:.2} |",
            ours.rps(),
            go.rps(),
            builtin.rps(),
            ours.rps() / go.rps().max(1e-9),
            ours.rps() / builtin.rps().max(1e-9),
            server_us(builtin) / server_us(ours).max(1e-9),
            ours.percentile_ms(50.0),
            go.percentile_ms(50.0),
            ours.percentile_ms(99.0),
            go.percentile_ms(99.0),
        );
        let _ = writeln!(
            cost,
            "| {op} | {conns} | {:.0} / {:.0} | {:.2} | {:.0} / {:.0} / {:.0} | {:.2} | {} / {} | \
             {:.2} |",
            plugin_us(ours),
            plugin_us(go),
            plugin_us(ours) / plugin_us(go).max(1e-9),
            server_us(ours),
            server_us(go),
            server_us(builtin),
            server_us(ours) / server_us(go).max(1e-9),
            mib(cell.peaks[0]),
            mib(cell.peaks[1]),
            cell.peaks[0] as f64 / (cell.peaks[1] as f64).max(1.0),
        );
        for (name, run) in [("ours", &*ours), ("Go mock", &*go), ("builtin", &*builtin)] {
            let _ = writeln!(
                details,
                "| {op} | {conns} | {name} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0}% | {:.0}% |",
                run.requests,
                run.errors,
                server_us(run),
                plugin_us(run),
                micros_per_request(run, run.generator_cpu),
                100.0 * run.machine_busy / run.elapsed.max(1e-9),
                100.0 * run.other_cpu / (run.elapsed * cpus()).max(1e-9),
            );
            if first_error.is_none() {
                first_error = run.first_error.clone();
            }
        }
    }
    println!("{speed}\n{cost}\n{details}");
    if let Some(error) = first_error {
        println!("first error: {error}\n");
    }
}

/// The targets, ours/Go at 16 connections unless named, from this run's figures.
fn print_targets(startup: &[(&'static str, u64, f64)], server: &mut ServerFigures) {
    println!("## Targets (ours / Go mock, one run)\n");
    println!("| measure | target | measured | met |\n|---|---|---|---|");
    let row = |measure: &str, target: &str, ratio: f64, met: bool| {
        println!(
            "| {measure} | {target} | {ratio:.2} | {} |",
            if met { "yes" } else { "no" }
        );
    };
    for cell in server.cells.iter_mut() {
        let name = cell.op.name();
        let [ours, go, _] = &mut cell.runs[..] else {
            continue;
        };
        let plugin_us = |run: &Run| micros_per_request(run, run.plugin_cpu);
        let server_us = |run: &Run| micros_per_request(run, run.server_cpu);
        if cell.connections == 1 && cell.op != Op::List {
            let ratio = ours.percentile_ms(50.0) / go.percentile_ms(50.0).max(1e-9);
            row(
                &format!("p50 latency, {name}, 1 connection"),
                "≤ 0.8",
                ratio,
                ratio <= 0.8,
            );
        }
        if cell.connections != 16 {
            continue;
        }
        if cell.op != Op::List {
            let ratio = ours.rps() / go.rps().max(1e-9);
            row(&format!("throughput, {name}"), "≥ 1.2", ratio, ratio >= 1.2);
        }
        let ratio = plugin_us(ours) / plugin_us(go).max(1e-9);
        row(
            &format!("plugin CPU per request, {name}"),
            "≤ 0.4",
            ratio,
            ratio <= 0.4,
        );
        let ratio = server_us(ours) / server_us(go).max(1e-9);
        row(
            &format!("server CPU per request, {name}"),
            "≤ 0.95",
            ratio,
            ratio <= 0.95,
        );
        let ratio = cell.peaks[0] as f64 / (cell.peaks[1] as f64).max(1.0);
        row(
            &format!("peak RSS under load, {name}"),
            "≤ 0.2",
            ratio,
            ratio <= 0.2,
        );
    }
    if let [(_, ours_size, ours_exec), (_, go_size, go_exec)] = startup {
        let ratio = ours_exec / go_exec.max(1e-9);
        row("exec → handshake line", "≤ 0.2", ratio, ratio <= 0.2);
        let ratio = *ours_size as f64 / (*go_size as f64).max(1.0);
        row("binary size", "≤ 0.25", ratio, ratio <= 0.25);
    }
    let (ours_cold, go_cold, _) = server.enable_cold;
    let ratio = ours_cold / go_cold.max(1e-9);
    row("`secrets enable`, cold", "≤ 0.6", ratio, ratio <= 0.6);
    println!();
}

/// req/s by connection count, one panel per operation, a line per target: an SVG written to
/// `path`.
fn write_chart(cells: &[Cell], path: &std::path::Path) {
    const LABELS: [(&str, &str); 3] = [
        ("ours", "#d9480f"),
        ("Go mock", "#1971c2"),
        ("builtin kv v1", "#868e96"),
    ];
    let (panel_w, panel_h, pad) = (300.0, 220.0, 50.0);
    let ops: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|op| cells.iter().any(|c| c.op == *op))
        .collect();
    let width = pad + ops.len() as f64 * (panel_w + pad);
    let height = panel_h + 2.5 * pad;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (index, op) in ops.iter().enumerate() {
        let mut points: Vec<&Cell> = cells.iter().filter(|c| c.op == *op).collect();
        points.sort_by_key(|c| c.connections);
        let max = points
            .iter()
            .flat_map(|c| c.runs.iter().map(Run::rps))
            .fold(1.0, f64::max)
            * 1.1;
        let x0 = pad + index as f64 * (panel_w + pad);
        let y0 = pad / 2.0 + panel_h;
        let x = |i: usize| x0 + panel_w * (i as f64 + 0.5) / points.len() as f64;
        let y = |rps: f64| y0 - panel_h * rps / max;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{} (req/s)</text>\n\
             <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{}\" y2=\"{y0}\" stroke=\"black\"/>\n\
             <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{}\" stroke=\"black\"/>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max:.0}</text>\n\
             <text x=\"{}\" y=\"{y0}\" text-anchor=\"end\">0</text>",
            x0 + panel_w / 2.0,
            pad / 2.0 - 8.0,
            op.name(),
            x0 + panel_w,
            y0 - panel_h,
            x0 - 4.0,
            y0 - panel_h + 4.0,
            x0 - 4.0,
        );
        for (i, cell) in points.iter().enumerate() {
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{} conn</text>",
                x(i),
                y0 + 16.0,
                cell.connections
            );
        }
        for (t, (_, colour)) in LABELS.iter().enumerate() {
            let line: Vec<String> = points
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{:.1},{:.1}", x(i), y(c.runs[t].rps())))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                line.join(" ")
            );
            for point in &line {
                let (px, py) = point.split_once(',').unwrap_or_default();
                let _ = writeln!(
                    svg,
                    "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{colour}\"/>"
                );
            }
        }
    }
    for (t, (label, colour)) in LABELS.iter().enumerate() {
        let lx = pad + t as f64 * 140.0;
        let ly = height - pad / 2.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{lx}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{ly}\">{label}</text>",
            ly - 6.0,
            lx + 20.0
        );
    }
    svg.push_str("</svg>\n");
    match std::fs::write(path, svg) {
        Ok(()) => println!("chart: {}\n", path.display()),
        Err(e) => println!("chart: cannot write {}: {e}\n", path.display()),
    }
}

// ---------------------------------------------------------------------------------------------
// The plugin alone

fn plugin_alone(cell: Duration) {
    println!("## The plugin alone (in-Rust host, mutual TLS, storage in memory)\n");
    let ticks = clock_ticks();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let binary = plugin_binary();
        let mut host = host::Host::start_with(|launch| launch.program(&binary)).await;
        let mount = host.mount("benchmount1").await;
        for k in 0..KEYS {
            mount
                .storage
                .insert(&format!("kv/k{k:03}"), VALUE.as_bytes());
        }
        let name = binary
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(PLUGIN);
        let plugin_pid = plugin_child(std::process::id(), name).expect("the plugin process runs");
        let host = Arc::new(host);
        let mut table = String::from(
            "| op | conns | requests/s | gRPC calls/s | p50 / p99 ms | plugin CPU s/10k | \
             host CPU s/10k | plugin CPU-bound limit req/s | plugin peak RSS |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        // Warm-up.
        for op in Op::ALL {
            alone_cell(&host, &mount.id, op, 16, Duration::from_millis(500)).await;
        }
        let mut rows: BTreeMap<(usize, usize), String> = BTreeMap::new();
        for connections in connections() {
            for op in operations() {
                let mut table = String::new();
                let me = std::process::id();
                reset_peak(plugin_pid);
                let before = (cpu_seconds(plugin_pid, ticks), cpu_seconds(me, ticks));
                let mut run = alone_cell(&host, &mount.id, op, connections, cell).await;
                run.plugin_cpu = cpu_seconds(plugin_pid, ticks) - before.0;
                run.generator_cpu = cpu_seconds(me, ticks) - before.1;
                let calls = match op {
                    Op::Write => 3,
                    Op::Read | Op::List => 2,
                };
                let per_request = run.plugin_cpu / run.requests.max(1) as f64;
                let _ = writeln!(
                    table,
                    "| {} | {connections} | {:.0} | {:.0} | {:.2} / {:.2} | {:.3} | {:.3} | {:.0} | {} |",
                    op.name(),
                    run.rps(),
                    run.rps() * f64::from(calls),
                    run.percentile_ms(50.0),
                    run.percentile_ms(99.0),
                    run.per_10k(run.plugin_cpu),
                    run.per_10k(run.generator_cpu),
                    1.0 / per_request.max(1e-9),
                    mib(common::try_status_kib(plugin_pid, "VmHWM").unwrap_or(0)),
                );
                eprintln!(
                    "bench: alone {} x{connections}: {:.0}/s",
                    op.name(),
                    run.rps()
                );
                assert_eq!(run.errors, 0, "errors: {:?}", run.first_error);
                rows.insert((op as usize, connections), table);
            }
        }
        for row in rows.values() {
            table.push_str(row);
        }
        println!("{table}");
        println!(
            "a write is resolve-path + existence check + update (3 calls into the plugin, 2 \
             storage calls back); a read or list is resolve-path + the operation (2 and 1). \
             The CPU-bound limit is 1 / (plugin CPU per request): what one plugin process \
             could serve with a whole core."
        );
        println!();
    });
}

async fn alone_cell(
    host: &Arc<host::Host>,
    id: &str,
    op: Op,
    connections: usize,
    duration: Duration,
) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let (host, stop, id) = (host.clone(), stop.clone(), id.to_owned());
            tokio::spawn(async move {
                let mut run = Run::default();
                let mut backend = host.backend();
                let body = json!({ "value": VALUE });
                let empty = json!({});
                let mut next = c * 7;
                while !stop.load(Ordering::Relaxed) {
                    let path = match op {
                        Op::List => "kv/".to_owned(),
                        _ => format!("kv/k{:03}", next % KEYS),
                    };
                    next += 1;
                    let data = if op == Op::Write { &body } else { &empty };
                    let call = Instant::now();
                    let request = |operation: &str| pb::HandleRequestArgs {
                        storage_id: 0,
                        request: Some(host::wire_request(operation, &path, data)),
                    };
                    let resolved = backend
                        .handle_request(host::for_mount(&id, request("resolve-path")))
                        .await
                        .expect("resolve-path");
                    drop(resolved);
                    let operation = match op {
                        Op::Write => {
                            let check = backend
                                .handle_existence_check(host::for_mount(
                                    &id,
                                    pb::HandleExistenceCheckArgs {
                                        storage_id: 0,
                                        request: Some(host::wire_request("update", &path, data)),
                                    },
                                ))
                                .await
                                .expect("existence check")
                                .into_inner();
                            if check.check_found && !check.exists {
                                "create"
                            } else {
                                "update"
                            }
                        }
                        Op::Read => "read",
                        Op::List => "list",
                    };
                    let reply = backend
                        .handle_request(host::for_mount(&id, request(operation)))
                        .await
                        .expect("the request")
                        .into_inner();
                    run.latencies
                        .push(u32::try_from(call.elapsed().as_micros()).unwrap_or(u32::MAX));
                    run.requests += 1;
                    if reply.err.is_some() || reply.response.is_none() {
                        run.errors += 1;
                        run.first_error
                            .get_or_insert_with(|| format!("{:?}", reply.err));
                    }
                }
                run
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Run::default();
    for task in tasks {
        total.merge(task.await.expect("a load task panicked"));
    }
    total.elapsed = started.elapsed().as_secs_f64();
    total
}
