//! The `profile` section (`make profile`): ours and the Go mock compared per request, in counts
//! rather than rates, so that it is fair to run on a busy machine.
//!
//! * **frames**: HTTP/2 frames per request each way, by type, from the in-Rust test host
//!   (`tests/support/host/`) launching each binary in turn. The host's h2 logs every frame it
//!   sends or receives at `debug` (`send` / `received` events, inside a `Connection` span that
//!   names the host's side); a tracing layer here counts them by frame type and connection: the
//!   main connection (host dials the plugin, the server's role) and the broker connection (the
//!   plugin dials the host's storage). The host is tonic/h2, not grpc-go, so what the server
//!   itself sends (its BDP pings) is not in these counts; what the plugin sends is.
//! * **server**: through one `bao server -dev` with both plugins mounted, the same load generator
//!   as the `server` section; for each operation at 1 and 16 connections, each plugin's and the
//!   server's system calls, context switches and task clock per request (`perf stat -p`, which
//!   does not slow the process down); at 1 connection, each plugin's system calls by name and
//!   its TLS records per request on each connection and direction, from `strace -f -yy -xx`
//!   of every socket read and write (TLS record headers are not encrypted: the byte streams are
//!   parsed into records); and where the time of one request goes at 1 connection: a
//!   system-wide `perf record -e sched:sched_switch` gives which process was on a CPU at each
//!   instant, split into plugin, server (and not the plugin), load generator only, and none
//!   of them (waiting for a wake-up). Last, each plugin's RSS by mapping (`/proc/PID/smaps`).

use super::{
    GO_PLUGIN, KEYS, Op, PLUGIN, Pids, VALUE, alone_cell, clock_ticks, common, drive,
    go_mock_binary, host, mib, plugin_binary, plugin_child, requests, succeeded, timed_enable,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

pub(super) fn profile(cell: Duration) {
    println!("## Per request, ours beside the Go mock (counts)\n");
    let targets = [("ours", plugin_binary()), ("Go mock", go_mock_binary())];
    frames(&targets, cell);
    through_server(&targets, cell);
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 frames, counted in the test host's h2

/// (connection, direction, frame type) → frames.
type FrameCounts = BTreeMap<(&'static str, &'static str, String), u64>;

static FRAMES: Mutex<FrameCounts> = Mutex::new(BTreeMap::new());

/// Which side of a connection the host's h2 is, stored in the `Connection` span.
struct Peer(String);

/// Counts h2's `send` / `received` debug events by frame type and connection.
struct FrameCounter;

#[derive(Default)]
struct EventFields {
    message: String,
    frame: String,
    peer: String,
}

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "frame" => self.frame = format!("{value:?}"),
            "peer" => self.peer = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for FrameCounter {
    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        metadata.target().starts_with("h2") && *metadata.level() <= tracing::Level::DEBUG
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() == "Connection" {
            let mut fields = EventFields::default();
            attrs.record(&mut fields);
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(Peer(fields.peer));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let sent = match fields.message.as_str() {
            "send" => true,
            "received" => false,
            _ => return,
        };
        let peer = ctx
            .event_scope(event)
            .and_then(|scope| {
                scope
                    .into_iter()
                    .find_map(|span| span.extensions().get::<Peer>().map(|p| p.0.clone()))
            })
            .unwrap_or_default();
        // The host is the client of the main connection and the server of the broker's.
        let (connection, direction) = match (peer.as_str(), sent) {
            ("Client", true) => ("main", "to plugin"),
            ("Client", false) => ("main", "from plugin"),
            ("Server", true) => ("broker", "to plugin"),
            ("Server", false) => ("broker", "from plugin"),
            _ => ("?", if sent { "to plugin" } else { "from plugin" }),
        };
        let kind: String = fields
            .frame
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        // A PING and its acknowledgement are told apart, and DATA that ends its stream.
        let kind = if kind == "Ping" && fields.frame.contains("ack: true") {
            "Ping ack".to_owned()
        } else if kind == "Data" && fields.frame.contains("END_STREAM") {
            "Data end".to_owned()
        } else {
            kind
        };
        *FRAMES
            .lock()
            .expect("the frame counts are never poisoned")
            .entry((connection, direction, kind))
            .or_default() += 1;
    }
}

fn take_frames() -> FrameCounts {
    std::mem::take(&mut *FRAMES.lock().expect("the frame counts are never poisoned"))
}

fn frames(targets: &[(&'static str, PathBuf)], cell: Duration) {
    let _ = tracing_subscriber::registry().with(FrameCounter).try_init();
    println!("### HTTP/2 frames per request (in-Rust host, mutual TLS, storage in memory)\n");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // (op, connections) → per target: counts and requests.
    let mut results: BTreeMap<(usize, usize), Vec<(FrameCounts, u64)>> = BTreeMap::new();
    for (label, binary) in targets {
        runtime.block_on(async {
            let binary = binary.clone();
            eprintln!("profile: frames, {label}");
            let mut host = host::Host::start_with(|launch| launch.program(&binary)).await;
            let mount = host.mount("profilemount1").await;
            if *label != "ours" {
                // The host's broker and stdio calls to the Go mock get no response headers
                // (grpc-go sends them with a first message) and are cancelled after the
                // host's RPC timeout: let that happen before anything is counted.
                tokio::time::sleep(host::RPC_TIMEOUT + Duration::from_secs(1)).await;
            }
            for k in 0..KEYS {
                mount
                    .storage
                    .insert(&format!("kv/k{k:03}"), VALUE.as_bytes());
            }
            let host = Arc::new(host);
            for op in Op::ALL {
                alone_cell(&host, &mount.id, op, 4, Duration::from_millis(300)).await;
            }
            for connections in [1, 16] {
                for op in Op::ALL {
                    take_frames();
                    let run = alone_cell(&host, &mount.id, op, connections, cell).await;
                    assert_eq!(run.errors, 0, "{label}: {:?}", run.first_error);
                    let counts = take_frames();
                    results
                        .entry((op as usize, connections))
                        .or_default()
                        .push((counts, run.requests));
                }
            }
        });
    }
    // Columns: the frame types each adds up.
    let columns: [&[&str]; 8] = [
        &["Headers"],
        &["Data", "Data end"],
        &["Data end"],
        &["Ping"],
        &["Ping ack"],
        &["WindowUpdate"],
        &["Settings"],
        &["Reset"],
    ];
    let kinds = [
        "Headers",
        "Data",
        "Data end",
        "Ping",
        "Ping ack",
        "WindowUpdate",
        "Settings",
        "Reset",
    ];
    let mut table = String::from(
        "each cell: ours / Go mock, frames per request; a request is the server's call sequence \
         (write: resolve-path, existence check, update and the two storage calls they make; read: \
         resolve-path, read and its storage Get; list: resolve-path, list and its storage List)\n\n\
         | op | conns | connection | direction | HEADERS | DATA | of which END_STREAM | PING | \
         PING ack | WINDOW_UPDATE | SETTINGS | RST_STREAM | all frames |\n\
         |---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for ((op, connections), per_target) in &results {
        for connection in ["main", "broker"] {
            for direction in ["to plugin", "from plugin"] {
                let cell = |kind: Option<&[&str]>| -> String {
                    per_target
                        .iter()
                        .map(|(counts, requests)| {
                            let n: u64 = counts
                                .iter()
                                .filter(|((c, d, k), _)| {
                                    *c == connection
                                        && *d == direction
                                        && kind.is_none_or(|kind| kind.contains(&k.as_str()))
                                })
                                .map(|(_, n)| n)
                                .sum();
                            format!("{:.2}", n as f64 / (*requests).max(1) as f64)
                        })
                        .collect::<Vec<_>>()
                        .join(" / ")
                };
                let _ = write!(
                    table,
                    "| {} | {connections} | {connection} | {direction} |",
                    Op::ALL[*op].name()
                );
                for kind in columns {
                    let _ = write!(table, " {} |", cell(Some(kind)));
                }
                let _ = writeln!(table, " {} |", cell(None));
            }
        }
    }
    let unknown: u64 = results
        .values()
        .flatten()
        .flat_map(|(counts, _)| counts.iter())
        .filter(|((c, _, k), _)| *c == "?" || !kinds.contains(&k.as_str()))
        .map(|(_, n)| n)
        .sum();
    println!("{table}");
    println!("frames outside these columns or connections: {unknown}\n");
}

// ---------------------------------------------------------------------------------------------
// Through the server: perf stat, strace, sched_switch

/// A measuring process attached to the load (perf or strace), stopped with SIGINT.
struct Attached(Child);

impl Attached {
    fn start(program: &str, args: &[String]) -> Self {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        // Attaching takes a moment; the load must not start before.
        std::thread::sleep(Duration::from_millis(400));
        Self(child)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let output = self.0.wait();
        if let Ok(status) = output
            && status.code().is_some_and(|c| c != 0 && c != 130)
        {
            let mut err = String::new();
            if let Some(mut stderr) = self.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            }
            eprintln!("profile: attached tool exited {status}: {err}");
        }
    }
}

/// `perf stat -x,` output: event → value.
fn perf_stat_values(path: &Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let value = fields.first()?.trim().parse::<f64>().ok()?;
            Some((fields.get(2)?.trim().to_owned(), value))
        })
        .collect()
}

fn perf_stat(pid: u32, out: &Path) -> Attached {
    Attached::start(
        "perf",
        &[
            "stat".to_owned(),
            "-x,".to_owned(),
            "-o".to_owned(),
            out.display().to_string(),
            "-e".to_owned(),
            "context-switches,raw_syscalls:sys_enter,task-clock".to_owned(),
            "-p".to_owned(),
            pid.to_string(),
        ],
    )
}

fn thread_ids(pid: u32) -> BTreeSet<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

struct Mounted {
    label: &'static str,
    mount: String,
    pid: u32,
}

fn through_server(targets: &[(&'static str, PathBuf)], cell: Duration) {
    println!("### Through the server\n");
    let ticks = clock_ticks();
    let dir = common::fresh_temp_dir("profile");
    let server = common::DevServer::start_with(common::DevOptions {
        log_level: "info".to_owned(),
        ..common::DevOptions::default()
    });
    let mut mounted = Vec::new();
    for ((label, binary), name) in targets.iter().zip([PLUGIN, GO_PLUGIN]) {
        let sha = server.install_file(name, binary);
        let (status, body) = server.http(
            "PUT",
            &format!("sys/plugins/catalog/secret/{name}"),
            Some(&json!({ "sha256": sha, "command": name })),
        );
        assert!(status < 300, "register {name}: {status} {body}");
        let mount = format!("p{}", mounted.len());
        timed_enable(&server, &mount, &json!({ "type": name }));
        let pid = plugin_child(server.pid(), name).expect("the plugin process runs");
        for k in 0..KEYS {
            let (status, body) = server.http(
                "PUT",
                &format!("{mount}/kv/k{k:03}"),
                Some(&json!({ "value": VALUE })),
            );
            assert!(status < 300, "populate {mount}: {status} {body}");
        }
        mounted.push(Mounted { label, mount, pid });
    }
    let addr = server.addr().trim_start_matches("http://").to_owned();
    let pids = |m: &Mounted| Pids {
        server: server.pid(),
        plugin: m.pid,
    };
    for m in &mounted {
        for op in Op::ALL {
            drive(
                &addr,
                &Arc::new(requests(&addr, &m.mount, op)),
                16,
                Duration::from_millis(500),
                &pids(m),
                ticks,
                succeeded,
            );
        }
    }

    // perf stat: per request, each plugin and the server.
    let mut table = String::from(
        "`perf stat -p` on each process while the load runs; per HTTP request\n\n\
         | op | conns | target | requests | plugin syscalls | plugin context switches | plugin task-clock µs | \
         server syscalls | server context switches | server task-clock µs | p50 ms |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for connections in [1, 16] {
        for op in Op::ALL {
            for m in &mounted {
                let requests = Arc::new(requests(&addr, &m.mount, op));
                let (plugin_out, server_out) =
                    (dir.join("perf-plugin.csv"), dir.join("perf-server.csv"));
                let plugin_perf = perf_stat(m.pid, &plugin_out);
                let server_perf = perf_stat(server.pid(), &server_out);
                let mut run = drive(
                    &addr,
                    &requests,
                    connections,
                    cell,
                    &pids(m),
                    ticks,
                    succeeded,
                );
                plugin_perf.stop();
                server_perf.stop();
                assert_eq!(run.errors, 0, "{}: {:?}", m.label, run.first_error);
                let (p, s) = (perf_stat_values(&plugin_out), perf_stat_values(&server_out));
                let p50 = run.percentile_ms(50.0);
                let per = |values: &BTreeMap<String, f64>, event: &str, scale: f64| {
                    values.get(event).copied().unwrap_or(f64::NAN) * scale
                        / run.requests.max(1) as f64
                };
                let _ = writeln!(
                    table,
                    "| {} | {connections} | {} | {} | {:.1} | {:.2} | {:.0} | {:.1} | {:.2} | {:.0} | {:.2} |",
                    op.name(),
                    m.label,
                    run.requests,
                    per(&p, "raw_syscalls:sys_enter", 1.0),
                    per(&p, "context-switches", 1.0),
                    per(&p, "task-clock", 1000.0),
                    per(&s, "raw_syscalls:sys_enter", 1.0),
                    per(&s, "context-switches", 1.0),
                    per(&s, "task-clock", 1000.0),
                    p50,
                );
            }
        }
    }
    println!("{table}");

    strace_tables(&mounted, &addr, &pids, &dir, ticks, cell);
    latency_breakdown(&mounted, &addr, &pids, &dir, ticks, cell);
    rss_breakdown(&mounted);
}

// ---------------------------------------------------------------------------------------------
// strace: system calls by name, TLS records per connection and direction

/// One socket's two byte streams, parsed into TLS records as they come.
#[derive(Default)]
struct Records {
    /// Bytes of a record header still being gathered, or the body bytes left to skip.
    header: Vec<u8>,
    skip: usize,
    /// Record sizes (header included) → count.
    sizes: BTreeMap<usize, u64>,
    records: u64,
    calls: u64,
}

impl Records {
    fn feed(&mut self, mut bytes: &[u8]) {
        self.calls += 1;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let need = 5 - self.header.len();
            let n = need.min(bytes.len());
            self.header.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.header.len() == 5 {
                let length = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.records += 1;
                *self.sizes.entry(length + 5).or_default() += 1;
                self.skip = length;
                self.header.clear();
            }
        }
    }
}

/// The bytes of every `"\x.."` string in `text`.
fn quoted_bytes(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("\"\\x") {
        let body = &rest[start + 1..];
        let end = body.find('"').unwrap_or(body.len());
        let hex = &body[..end];
        out.push(
            hex.split("\\x")
                .filter(|h| h.len() == 2)
                .filter_map(|h| u8::from_str_radix(h, 16).ok())
                .collect(),
        );
        rest = &body[end.min(body.len())..];
        rest = rest.get(1..).unwrap_or("");
    }
    out
}

/// What one strace run of a plugin gave.
#[derive(Default)]
struct Trace {
    syscalls: BTreeMap<String, u64>,
    /// (socket description, "in" / "out") → records.
    sockets: BTreeMap<(String, &'static str), Records>,
}

const READS: [&str; 4] = ["read", "readv", "recvfrom", "recvmsg"];
const WRITES: [&str; 4] = ["write", "writev", "sendto", "sendmsg"];

fn parse_strace(path: &Path) -> Trace {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut trace = Trace::default();
    // pid → (syscall, fd description) of a call strace split in two.
    let mut pending: BTreeMap<String, (String, String)> = BTreeMap::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let (name, fd, body, resumed) = if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((name, _)) = resumed.split_once(' ') else {
                continue;
            };
            let Some((_, fd)) = pending.remove(pid) else {
                continue;
            };
            (name.to_owned(), fd, resumed.to_owned(), true)
        } else {
            let Some(open) = rest.find('(') else {
                continue;
            };
            let name = rest[..open].to_owned();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            *trace.syscalls.entry(name.clone()).or_default() += 1;
            let args = &rest[open + 1..];
            // `7<UNIX-STREAM:[...]>`: the description, then the arguments after it.
            // (`UNIX-STREAM:[1->2]` holds a `>` of its own: the description ends at `]>`.)
            let (fd, after) = match (args.find('<'), args.find("]>")) {
                (Some(a), Some(b)) if a < b && args[..a].chars().all(|c| c.is_ascii_digit()) => {
                    (args[a + 1..=b].to_owned(), &args[b + 2..])
                }
                _ => (String::new(), args),
            };
            if rest.ends_with("<unfinished ...>") {
                pending.insert(pid.to_owned(), (name.clone(), fd.clone()));
                if WRITES.contains(&name.as_str()) {
                    // The data is on this line; the result comes later.
                    feed(&mut trace, &name, &fd, after);
                }
                continue;
            }
            (name, fd, after.to_owned(), false)
        };
        let io = READS.contains(&name.as_str()) || WRITES.contains(&name.as_str());
        // A resumed write was fed when it started.
        if !io || (resumed && WRITES.contains(&name.as_str())) {
            continue;
        }
        // Failed calls (EAGAIN) carried nothing.
        let result = body.rsplit_once(" = ").map(|(_, r)| r.trim()).unwrap_or("");
        if result.starts_with('-') {
            continue;
        }
        feed(&mut trace, &name, &fd, &body);
    }
    trace
}

fn feed(trace: &mut Trace, name: &str, fd: &str, body: &str) {
    if !fd.starts_with("UNIX-STREAM") && !fd.starts_with("TCP") {
        return;
    }
    let direction = if READS.contains(&name) { "in" } else { "out" };
    let bytes: Vec<u8> = quoted_bytes(body).concat();
    // Reads show what was read; writes what was asked (short writes of sockets this size are
    // rare, and counted as whole).
    let result: usize = body
        .rsplit_once(" = ")
        .and_then(|(_, r)| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(bytes.len());
    let n = if direction == "in" {
        result.min(bytes.len())
    } else {
        bytes.len()
    };
    // Sockets are told apart by inode, the description's first number.
    let inode: String = fd
        .split_once('[')
        .map(|(_, r)| r.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default();
    let key = if fd.contains(",\"") {
        "main (accepted)"
    } else {
        "broker (dialled)"
    };
    trace
        .sockets
        .entry((format!("{key} {inode}"), direction))
        .or_default()
        .feed(&bytes[..n]);
}

fn strace_tables(
    mounted: &[Mounted],
    addr: &str,
    pids: &dyn Fn(&Mounted) -> Pids,
    dir: &Path,
    ticks: f64,
    cell: Duration,
) {
    let mut calls = String::from(
        "#### System calls by name and TLS records, 1 connection (`strace -f -yy -xx` of the \
         plugin; per HTTP request)\n\n",
    );
    let mut records = String::from(
        "| op | target | socket | direction | TLS records | read/write calls | records ≤ 64 bytes by size |\n\
         |---|---|---|---|---:|---:|---|\n",
    );
    let mut names_table = BTreeMap::<(usize, &str), (BTreeMap<String, u64>, u64)>::new();
    for op in Op::ALL {
        for m in mounted {
            let requests = Arc::new(requests(addr, &m.mount, op));
            let out = dir.join("strace.txt");
            let strace = Attached::start(
                "strace",
                &[
                    "-f".to_owned(),
                    "-yy".to_owned(),
                    "-xx".to_owned(),
                    "-s".to_owned(),
                    "1048576".to_owned(),
                    "-o".to_owned(),
                    out.display().to_string(),
                    "-p".to_owned(),
                    m.pid.to_string(),
                ],
            );
            let run = drive(addr, &requests, 1, cell, &pids(m), ticks, succeeded);
            strace.stop();
            assert_eq!(run.errors, 0, "{}: {:?}", m.label, run.first_error);
            let trace = parse_strace(&out);
            let n = run.requests.max(1) as f64;
            for ((socket, direction), r) in &trace.sockets {
                let small: Vec<String> = r
                    .sizes
                    .iter()
                    .filter(|(size, _)| **size <= 64)
                    .map(|(size, count)| format!("{size} B: {:.2}", *count as f64 / n))
                    .collect();
                let _ = writeln!(
                    records,
                    "| {} | {} | {socket} | {direction} | {:.2} | {:.2} | {} |",
                    op.name(),
                    m.label,
                    r.records as f64 / n,
                    r.calls as f64 / n,
                    small.join(", ")
                );
            }
            names_table.insert((op as usize, m.label), (trace.syscalls, run.requests));
        }
    }
    // System calls by name: one row per name, a column per (op, target).
    let names: BTreeSet<&String> = names_table.values().flat_map(|(s, _)| s.keys()).collect();
    let _ = write!(calls, "| system call |");
    for (op, label) in names_table.keys() {
        let _ = write!(calls, " {} {label} |", Op::ALL[*op].name());
    }
    let _ = write!(calls, "\n|---|");
    for _ in &names_table {
        let _ = write!(calls, "---:|");
    }
    calls.push('\n');
    let mut totals = vec![0.0; names_table.len()];
    for name in names {
        let _ = write!(calls, "| `{name}` |");
        for (i, (syscalls, requests)) in names_table.values().enumerate() {
            let per = syscalls.get(name).copied().unwrap_or(0) as f64 / (*requests).max(1) as f64;
            totals[i] += per;
            let _ = write!(calls, " {per:.2} |");
        }
        calls.push('\n');
    }
    let _ = write!(calls, "| all |");
    for total in totals {
        let _ = write!(calls, " {total:.2} |");
    }
    calls.push('\n');
    println!("{calls}");
    println!(
        "TLS records per HTTP request, from the same traces (a socket is named by its inode; \
         \"in\" is what the plugin read):\n\n{records}"
    );
}

// ---------------------------------------------------------------------------------------------
// Where one request's time goes, 1 connection

fn latency_breakdown(
    mounted: &[Mounted],
    addr: &str,
    pids: &dyn Fn(&Mounted) -> Pids,
    dir: &Path,
    ticks: f64,
    cell: Duration,
) {
    let mut table = String::from(
        "#### Where the time of one request goes, 1 connection (`perf record -a -e \
         sched:sched_switch`; µs per request)\n\n\
         | op | target | requests | mean latency | plugin on a CPU | server on a CPU, plugin not | \
         load generator only | none of the three (wake-ups, other processes) | plugin wake-ups |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for op in Op::ALL {
        for m in mounted {
            let requests = Arc::new(requests(addr, &m.mount, op));
            let out = dir.join("sched.data");
            let perf = Attached::start(
                "perf",
                &[
                    "record".to_owned(),
                    "-q".to_owned(),
                    "-a".to_owned(),
                    "-e".to_owned(),
                    "sched:sched_switch".to_owned(),
                    "-o".to_owned(),
                    out.display().to_string(),
                ],
            );
            let run = drive(addr, &requests, 1, cell, &pids(m), ticks, succeeded);
            perf.stop();
            assert_eq!(run.errors, 0, "{}: {:?}", m.label, run.first_error);
            let script = Command::new("perf")
                .args(["script", "-i"])
                .arg(&out)
                .args(["-F", "cpu,time,trace"])
                .output()
                .expect("perf script");
            let text = String::from_utf8_lossy(&script.stdout);
            let plugin = thread_ids(m.pid);
            let server = thread_ids(pids(m).server);
            let generator = thread_ids(std::process::id());
            let class = |tid: u32| {
                if plugin.contains(&tid) {
                    0
                } else if server.contains(&tid) {
                    1
                } else if generator.contains(&tid) {
                    2
                } else {
                    3
                }
            };
            // Each CPU's class since its last switch; time to buckets by the set running.
            let mut cpus: BTreeMap<u32, usize> = BTreeMap::new();
            let mut buckets = [0.0f64; 4];
            let mut last: Option<f64> = None;
            let (mut first, mut end) = (f64::NAN, 0.0);
            let mut wakeups = 0u64;
            for line in text.lines() {
                let mut parts = line.split_whitespace();
                let Some(cpu) = parts.next().and_then(|c| {
                    c.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<u32>()
                        .ok()
                }) else {
                    continue;
                };
                let Some(time) = parts
                    .next()
                    .and_then(|t| t.trim_end_matches(':').parse::<f64>().ok())
                else {
                    continue;
                };
                let Some(next) = line
                    .rsplit_once("next_pid=")
                    .and_then(|(_, r)| r.split_whitespace().next()?.parse::<u32>().ok())
                else {
                    continue;
                };
                if let Some(last) = last {
                    let running: BTreeSet<usize> = cpus.values().copied().collect();
                    let bucket = if running.contains(&0) {
                        0
                    } else if running.contains(&1) {
                        1
                    } else if running.contains(&2) {
                        2
                    } else {
                        3
                    };
                    buckets[bucket] += time - last;
                } else {
                    first = time;
                }
                let next_class = class(next);
                if next_class == 0 && cpus.get(&cpu) != Some(&0) {
                    wakeups += 1;
                }
                cpus.insert(cpu, next_class);
                last = Some(time);
                end = time;
            }
            let wall = end - first;
            // The recording spans a little more than the load (attach and stop): scale the
            // buckets to the load's own length.
            let scale = if wall > 0.0 { run.elapsed / wall } else { 0.0 };
            let n = run.requests.max(1) as f64;
            let per = |s: f64| s * scale * 1e6 / n;
            let mean = run.latencies.iter().map(|&l| f64::from(l)).sum::<f64>() / n;
            let _ = writeln!(
                table,
                "| {} | {} | {} | {mean:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} |",
                op.name(),
                m.label,
                run.requests,
                per(buckets[0]),
                per(buckets[1]),
                per(buckets[2]),
                per(buckets[3]),
                wakeups as f64 * scale / n,
            );
        }
    }
    println!("{table}");
}

// ---------------------------------------------------------------------------------------------
// RSS by mapping

fn rss_breakdown(mounted: &[Mounted]) {
    let mut table = String::from(
        "#### RSS after the load, by mapping (`/proc/PID/smaps`)\n\n\
         | target | RSS | anonymous | file-backed: the binary | file-backed: shared libraries | threads |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for m in mounted {
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", m.pid)).unwrap_or_default();
        let exe = std::fs::read_link(format!("/proc/{}/exe", m.pid)).unwrap_or_default();
        let (mut anon, mut binary, mut libs) = (0u64, 0u64, 0u64);
        let mut current = String::new();
        for line in smaps.lines() {
            if let Some(kib) = line.strip_prefix("Rss:") {
                let kib: u64 = kib
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .unwrap_or(0);
                if current.is_empty() || current.starts_with('[') {
                    anon += kib;
                } else if Path::new(&current) == exe {
                    binary += kib;
                } else {
                    libs += kib;
                }
            } else if line.split_whitespace().next().is_some_and(|f| {
                f.contains('-') && f.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
            }) {
                current = line.split_whitespace().nth(5).unwrap_or("").to_owned();
            }
        }
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} |",
            m.label,
            mib(anon + binary + libs),
            mib(anon),
            mib(binary),
            mib(libs),
            thread_ids(m.pid).len()
        );
    }
    println!("{table}");
}
