//! `make bench` (= `cargo bench --bench bench`): how the plugin compares with the server's
//! builtin, in-process kv version 1 engine, and how far one plugin process is from being the
//! bottleneck.
//!
//! Sections (all by default; name some after `--` to run only those, e.g.
//! `cargo bench --bench bench -- startup alone`):
//!
//! * `startup`: release binary size; exec to handshake line (median of 21 launches with the
//!   server's real environment).
//! * `server`: one `bao server -dev` on loopback (log level `info`), the plugin mounted at
//!   `mock/` next to the builtin kv v1 at `kvb/`, both driven over HTTP/1.1 keep-alive by the
//!   load generator below with the same requests, interleaved A B A B, at 1, 16 and 64
//!   connections, for writes, reads and lists; CPU time of the plugin and of the server
//!   process from `/proc/<pid>/stat`; the plugin's peak RSS (`VmHWM`); the time of
//!   `secrets enable` for both.
//! * `alone`: the plugin without the server: the in-Rust test host (`tests/host`) dials it
//!   over mutual TLS and serves its storage in memory; each "request" is the call sequence
//!   the server makes for one HTTP request (write: resolve-path, existence check, update;
//!   read: resolve-path, read; list: resolve-path, list).
//!
//! Knobs (environment): `BENCH_SECONDS` (per cell and round, default 3); `BENCH_OPS` (e.g.
//! `write,read`) and `BENCH_CONNS` (e.g. `16`) to run fewer cells; `BENCH_PLUGIN_ARGS`
//! (comma-separated catalog `args` for the plugin, e.g. `--log-level=warn`); `BENCH_PLUGIN_BIN`
//! (another build of the plugin, for `startup` and `server`; `alone` always runs cargo's).
//!
//! Under `cargo test --all-targets` this target is built and run without `--bench`: it then
//! returns at once.

#![allow(clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/host/mod.rs"]
mod host;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vault_mock_plugin::proto::pb;

const PLUGIN: &str = "my-mock-plugin";
const PLUGIN_MOUNT: &str = "mock";
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
    if run("startup") {
        startup();
    }
    if run("server") {
        through_server(cell);
    }
    if run("alone") {
        plugin_alone(cell);
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

/// A `/proc/<pid>/status` value in KiB (`VmHWM`, `VmRSS`).
fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// The plugin binary: `BENCH_PLUGIN_BIN` (to compare builds) or the one cargo built.
fn plugin_binary() -> std::path::PathBuf {
    match std::env::var_os("BENCH_PLUGIN_BIN") {
        Some(path) if !path.is_empty() => path.into(),
        _ => common::plugin_bin(),
    }
}

/// Resets a process's peak RSS (`VmHWM`) to its current RSS, so the next reading is the peak
/// of what follows (`clear_refs` value 5, Linux 4.0+).
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// The plugin process among `parent`'s children.
fn plugin_child(parent: u32) -> Option<u32> {
    common::children_of(parent)
        .into_iter()
        .find(|&pid| common::pid_alive(pid) && common::cmdline(pid).contains(PLUGIN))
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

fn startup() {
    let binary = plugin_binary();
    let size = std::fs::metadata(&binary).map_or(0, |m| m.len());
    println!("## Start-up\n");
    println!(
        "release binary: {} ({} bytes), {}",
        mib(size / 1024),
        size,
        binary.display()
    );

    let cert = host::HostCert::generate();
    let tmp = host::TempDir::new("bench");
    let mut times = Vec::new();
    for _ in 0..LAUNCHES {
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .env(host::MAGIC_COOKIE_KEY, host::MAGIC_COOKIE_VALUE)
            .env("PLUGIN_PROTOCOL_VERSIONS", "5")
            .env("PLUGIN_MIN_PORT", "10000")
            .env("PLUGIN_MAX_PORT", "25000")
            .env("BAO_PLUGIN_AUTOMTLS_ENABLED", "true")
            .env("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true")
            .env("BAO_VERSION", "2.7.2")
            .env("PLUGIN_CLIENT_CERT", &cert.pem)
            .env("TMPDIR", tmp.path())
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
            "unexpected handshake line {line:?}"
        );
        times.push(elapsed.as_secs_f64() * 1e3);
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut sorted = times.clone();
    let med = median(&mut sorted);
    println!(
        "exec to handshake line: median {med:.2} ms, min {:.2} ms, max {:.2} ms ({LAUNCHES} launches)\n",
        sorted[0],
        sorted[sorted.len() - 1]
    );
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

/// Every request a cell sends, made up front.
fn requests(host: &str, mount: &str, op: Op) -> Vec<Vec<u8>> {
    let body = json!({ "value": VALUE }).to_string();
    (0..KEYS)
        .map(|k| {
            let head = |method: &str, path: &str| {
                format!(
                    "{method} /v1/{mount}/{path} HTTP/1.1\r\nHost: {host}\r\n\
                     X-Vault-Token: {}\r\n",
                    common::ROOT_TOKEN
                )
            };
            let text = match op {
                Op::Write => format!(
                    "{}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    head("PUT", &format!("kv/k{k:03}")),
                    body.len()
                ),
                Op::Read => format!("{}\r\n", head("GET", &format!("kv/k{k:03}"))),
                Op::List => format!("{}\r\n", head("GET", "kv/?list=true")),
            };
            text.into_bytes()
        })
        .collect()
}

/// One keep-alive connection.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: &str) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    fn fill(&mut self) -> io::Result<()> {
        let len = self.buf.len();
        self.buf.resize(len + 16 * 1024, 0);
        let n = self.stream.read(&mut self.buf[len..])?;
        self.buf.truncate(len + n);
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(())
    }

    /// Sends one request and reads its response: (status, body, connection kept).
    fn exchange(&mut self, request: &[u8]) -> io::Result<(u16, Vec<u8>, bool)> {
        self.stream.write_all(request)?;
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line in {head:?}")))?;
        let mut length = None;
        let mut chunked = false;
        let mut keep = true;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                keep = !value.eq_ignore_ascii_case("close");
            }
        }
        self.buf.drain(..head_end);
        let body = if chunked {
            self.chunked_body()?
        } else {
            let length = length.unwrap_or(0);
            while self.buf.len() < length {
                self.fill()?;
            }
            self.buf.drain(..length).collect()
        };
        Ok((status, body, keep))
    }

    fn chunked_body(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                self.fill()?;
            };
            let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|e| io::Error::other(format!("bad chunk size {size_text:?}: {e}")))?;
            self.buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers (none expected) end with an empty line.
                loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        self.buf.drain(..i + 2);
                        if i == 0 {
                            return Ok(body);
                        }
                    } else {
                        self.fill()?;
                    }
                }
            }
            while self.buf.len() < size + 2 {
                self.fill()?;
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
        }
    }
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

/// Drives `connections` keep-alive connections with `requests` (round robin from a per-
/// connection offset) for `duration`.
fn drive(
    addr: &str,
    requests: &Arc<Vec<Vec<u8>>>,
    connections: usize,
    duration: Duration,
    pids: &Pids,
    ticks: f64,
) -> Run {
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
                let mut client = Client::connect(&addr).expect("connect to the server");
                barrier.wait();
                let mut next = c * 7;
                while !stop.load(Ordering::Relaxed) {
                    let request = &requests[next % requests.len()];
                    next += 1;
                    let started = Instant::now();
                    match client.exchange(request) {
                        Ok((status, body, keep)) => {
                            let micros = started.elapsed().as_micros();
                            run.latencies
                                .push(u32::try_from(micros).unwrap_or(u32::MAX));
                            run.requests += 1;
                            if !(200..300).contains(&status) {
                                run.errors += 1;
                                run.first_error.get_or_insert_with(|| {
                                    format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                                });
                            }
                            if !keep {
                                run.chunked_or_closed += 1;
                                client = Client::connect(&addr).expect("reconnect");
                            }
                        }
                        Err(e) => {
                            run.errors += 1;
                            run.first_error.get_or_insert_with(|| e.to_string());
                            client = Client::connect(&addr).expect("reconnect");
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
    let (total_j, idle_j) = (after_machine.0 - before.3.0, after_machine.1 - before.3.1);
    // Busy CPU-seconds per CPU over the run, so that runs add up.
    total.machine_busy = if total_j == 0 {
        0.0
    } else {
        (1.0 - idle_j as f64 / total_j as f64) * total.elapsed
    };
    // What everything else on the machine used meanwhile (other builds and tests).
    total.other_cpu = ((total_j - idle_j) as f64 / ticks
        - total.plugin_cpu
        - total.server_cpu
        - total.generator_cpu)
        .max(0.0);
    total
}

// ---------------------------------------------------------------------------------------------
// Through the server

fn through_server(cell: Duration) {
    println!("## Through the server\n");
    let ticks = clock_ticks();
    let server = common::DevServer::start_with(common::DevOptions {
        log_level: "info".to_owned(),
        ..common::DevOptions::default()
    });
    let sha = server.install_file(PLUGIN, &plugin_binary());
    let plugin_args: Vec<String> = std::env::var("BENCH_PLUGIN_ARGS")
        .unwrap_or_default()
        .split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if !plugin_args.is_empty() {
        println!("plugin registered with args {plugin_args:?}\n");
    }
    let (status, body) = server.http(
        "PUT",
        &format!("sys/plugins/catalog/secret/{PLUGIN}"),
        Some(&json!({ "sha256": sha, "command": PLUGIN, "args": plugin_args })),
    );
    assert!(status < 300, "register: {status} {body}");

    // `secrets enable` (POST sys/mounts/PATH, what the CLI sends), timed on the server side of
    // the CLI: cold (no plugin process running), warm (another mount keeps one), builtin.
    let enable = |path: &str, config: &Value| -> f64 {
        let started = Instant::now();
        let (status, body) = server.http("POST", &format!("sys/mounts/{path}"), Some(config));
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        assert!(status < 300, "enable {path}: {status} {body}");
        elapsed
    };
    let disable = |path: &str| {
        let (status, body) = server.http("DELETE", &format!("sys/mounts/{path}"), None);
        assert!(status < 300, "disable {path}: {status} {body}");
    };
    let plugin_type = json!({ "type": PLUGIN });
    let kv1 = json!({ "type": "kv", "options": { "version": "1" } });
    let mut cold = Vec::new();
    for i in 0..ENABLES {
        common::wait_until("no plugin process", Duration::from_secs(10), || {
            plugin_child(server.pid()).is_none()
        });
        cold.push(enable(&format!("cold{i}"), &plugin_type));
        disable(&format!("cold{i}"));
    }
    let mut builtin = Vec::new();
    for i in 0..ENABLES {
        builtin.push(enable(&format!("b{i}"), &kv1));
        disable(&format!("b{i}"));
    }
    common::wait_until("no plugin process", Duration::from_secs(10), || {
        plugin_child(server.pid()).is_none()
    });
    enable(PLUGIN_MOUNT, &plugin_type);
    enable(BUILTIN_MOUNT, &kv1);
    let mut warm = Vec::new();
    for i in 0..ENABLES {
        warm.push(enable(&format!("warm{i}"), &plugin_type));
        disable(&format!("warm{i}"));
    }
    let plugin_pid = plugin_child(server.pid()).expect("the plugin process runs");
    let pids = Pids {
        server: server.pid(),
        plugin: plugin_pid,
    };
    eprintln!(
        "bench: server pid {}, plugin pid {plugin_pid}",
        server.pid()
    );

    // Same keys in both mounts, so writes are updates, reads hit, lists return KEYS keys.
    for mount in [PLUGIN_MOUNT, BUILTIN_MOUNT] {
        for k in 0..KEYS {
            let (status, body) = server.http(
                "PUT",
                &format!("{mount}/kv/k{k:03}"),
                Some(&json!({ "value": VALUE })),
            );
            assert!(status < 300, "populate {mount}: {status} {body}");
        }
    }

    let addr = server.addr().trim_start_matches("http://").to_owned();
    let make = |mount: &str, op: Op| Arc::new(requests(&addr, mount, op));
    let targets = [PLUGIN_MOUNT, BUILTIN_MOUNT];
    // Warm-up: connections, caches, the Go runtime's heap.
    for op in Op::ALL {
        for mount in targets {
            drive(
                &addr,
                &make(mount, op),
                16,
                Duration::from_millis(700),
                &pids,
                ticks,
            );
        }
    }

    println!(
        "each cell: {:.1} s per target and round, 2 rounds interleaved plugin, builtin, plugin, \
         builtin; {KEYS} keys prepopulated, {}-byte values\n",
        cell.as_secs_f64(),
        VALUE.len()
    );
    let mut table = String::new();
    let mut details = String::new();
    table.push_str(
        "| op | conns | plugin req/s | builtin req/s | ratio | plugin p50 / p99 ms | \
         builtin p50 / p99 ms | plugin CPU s/10k | server CPU s/10k (plugin) | \
         server CPU s/10k (builtin) | plugin CPU / server CPU | plugin peak RSS |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    details.push_str(
        "| op | conns | target | requests | errors | server CPU µs/req | plugin CPU µs/req | \
         load generator CPU µs/req | machine busy | of which other processes | \
         ratio bound if the plugin used no CPU |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut first_error = None;
    // Fewer connections first: the plugin's peak RSS of a cell is then that of the load so far
    // (a heap that grew stays resident). Rows are printed by operation.
    let mut rows: BTreeMap<(usize, usize), (String, String)> = BTreeMap::new();
    for connections in connections() {
        for op in operations() {
            let (mut table, mut details) = (String::new(), String::new());
            let requests = [make(PLUGIN_MOUNT, op), make(BUILTIN_MOUNT, op)];
            let mut runs = [Run::default(), Run::default()];
            let mut peak = 0;
            for _round in 0..2 {
                for (t, run) in runs.iter_mut().enumerate() {
                    reset_peak(plugin_pid);
                    run.merge(drive(&addr, &requests[t], connections, cell, &pids, ticks));
                    if t == 0 {
                        peak = peak.max(status_kib(plugin_pid, "VmHWM"));
                    }
                }
            }
            let [mut p, mut b] = runs;
            let _ = writeln!(
                table,
                "| {} | {connections} | {:.0} | {:.0} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | \
                 {:.3} | {:.3} | {:.3} | {:.0}% | {} |",
                op.name(),
                p.rps(),
                b.rps(),
                p.rps() / b.rps().max(1e-9),
                p.percentile_ms(50.0),
                p.percentile_ms(99.0),
                b.percentile_ms(50.0),
                b.percentile_ms(99.0),
                p.per_10k(p.plugin_cpu),
                p.per_10k(p.server_cpu),
                b.per_10k(b.server_cpu),
                100.0 * p.plugin_cpu / p.server_cpu.max(1e-9),
                mib(peak),
            );
            // On a saturated machine, throughput is inversely proportional to the CPU all
            // processes spend per request: without any plugin CPU, this is the best ratio left.
            let per = |run: &Run, cpu: f64| run.per_10k(cpu) * 100.0;
            let bound = (per(&b, b.server_cpu) + per(&b, b.generator_cpu) + per(&b, b.plugin_cpu))
                / (per(&p, p.server_cpu) + per(&p, p.generator_cpu)).max(1e-9);
            for (name, run) in [("plugin", &p), ("builtin", &b)] {
                let _ = writeln!(
                    details,
                    "| {} | {connections} | {name} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0}% | \
                     {:.0}% | {} |",
                    op.name(),
                    run.requests,
                    run.errors,
                    per(run, run.server_cpu),
                    per(run, run.plugin_cpu),
                    per(run, run.generator_cpu),
                    100.0 * run.machine_busy / run.elapsed.max(1e-9),
                    100.0 * run.other_cpu / (run.elapsed * cpus()).max(1e-9),
                    if name == "plugin" {
                        format!("{bound:.2}")
                    } else {
                        String::new()
                    },
                );
                if first_error.is_none() {
                    first_error = run.first_error.clone();
                }
            }
            eprintln!(
                "bench: {} x{connections}: plugin {:.0}/s, builtin {:.0}/s",
                op.name(),
                p.rps(),
                b.rps()
            );
            rows.insert((op as usize, connections), (table, details));
        }
    }
    for (row, _) in rows.values() {
        table.push_str(row);
    }
    for (_, row) in rows.values() {
        details.push_str(row);
    }
    println!("{table}");
    println!("{details}");
    if let Some(error) = first_error {
        println!("first error: {error}\n");
    }

    let hwm = status_kib(plugin_pid, "VmHWM");
    let rss = status_kib(plugin_pid, "VmRSS");
    let server_hwm = status_kib(server.pid(), "VmHWM");
    println!(
        "plugin RSS after the load: {} (peak of the last cell {}); server peak RSS: {}",
        mib(rss),
        mib(hwm),
        mib(server_hwm)
    );
    let (c, w, b) = (median(&mut cold), median(&mut warm), median(&mut builtin));
    println!(
        "`secrets enable` (POST sys/mounts, median of {ENABLES}): plugin cold {c:.1} ms \
         (launches the process), plugin warm {w:.1} ms (process already serving a mount), \
         builtin kv v1 {b:.1} ms; ratio cold {:.1}x, warm {:.1}x\n",
        c / b,
        w / b
    );
    let still = plugin_child(server.pid());
    assert_eq!(
        still,
        Some(plugin_pid),
        "the plugin process was replaced during the run"
    );
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
        let mut host = host::Host::start().await;
        let mount = host.mount("benchmount1").await;
        for k in 0..KEYS {
            mount
                .storage
                .insert(&format!("kv/k{k:03}"), VALUE.as_bytes());
        }
        let plugin_pid = plugin_child(std::process::id()).expect("the plugin process runs");
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
                    mib(status_kib(plugin_pid, "VmHWM")),
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
