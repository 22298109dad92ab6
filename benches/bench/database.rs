//! `database`: dynamic PostgreSQL credentials through a real server, our
//! `postgresql-database-plugin` (`examples/postgresql`) beside HashiCorp's Go plugin of the
//! same name (Vault v1.14.1's, built by `make peers`). One dev OpenBao, one private PostgreSQL
//! cluster (`tests/support/postgres.rs`), both plugins registered, one `database/config` per
//! plugin with the same superuser (default pool: 4 connections each), one role per config with
//! a one-statement creation and the default revocation.
//!
//! Rounds interleaved ours, Go, ours, Go, at 1 and 8 concurrent clients (keep-alive HTTP/1.1):
//! each client reads `database/creds/<role>` back to back for `BENCH_SECONDS` (credentials per
//! second), then the same number of clients revoke every lease issued (`sys/leases/revoke`,
//! `sync=true`) until none is left (revocations per second). Around each phase: the CPU time
//! of the plugin process, of PostgreSQL (the postmaster and its children, live and reaped), of
//! the server and of this load generator, from `/proc`; at the end each plugin's peak RSS
//! (`VmHWM`) since the warm-up. Every answer is checked (a creds answer is a 200 with a
//! username, a password and a lease; a revocation a 204 or 200), and PostgreSQL itself holds
//! as many of the side's roles as were issued after issuing and none after revoking, so a
//! broken run cannot print a rate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use plugin_test_support::common::{self, DevServer};
use plugin_test_support::http::{self, Connection};
use plugin_test_support::postgres::Postgres;
use serde_json::json;

use super::{
    clock_ticks, cpu_seconds, cpus, machine_jiffies, mib, ours_and_go, plugin_processes,
    request_ok, reset_peak,
};

const OURS: &str = "postgresql-database-plugin";
const GO: &str = "postgresql-database-plugin-go";
/// Concurrent clients per cell.
const CLIENTS: [usize; 2] = [1, 8];
/// Rounds per cell, interleaved ours, Go, ours, Go: a drift in the machine's load then touches
/// both alike.
const ROUNDS: usize = 2;
/// The creation statement of both roles: one statement, so the plugin's own cost per
/// credential is not hidden behind a transaction of several.
const CREATE: &str =
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";
/// Credentials issued (and revoked) per side before anything is measured: the pools fill.
const WARM_UP: usize = 16;
/// A request waits at most this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One plugin and what it owns on the server.
struct Side {
    label: &'static str,
    plugin: &'static str,
    /// The `database/config` name, and the role's.
    config: &'static str,
    role: &'static str,
    pid: u32,
}

impl Side {
    /// The `LIKE` pattern of the usernames the default template makes for this side's role
    /// (`v-<display name>-<role>-<random>-<unix time>`; the root token's display name is
    /// `token`).
    fn usernames(&self) -> String {
        format!("v-token-{}-%", self.role)
    }
}

/// CPU seconds so far of everything a phase involves.
#[derive(Clone, Copy, Default)]
struct Cpu {
    plugin: f64,
    postgres: f64,
    server: f64,
    generator: f64,
    /// Machine jiffies: all, idle.
    machine: (u64, u64),
}

/// What one phase (or the sum of a cell's rounds of it) measured.
#[derive(Clone, Copy, Default)]
struct Phase {
    /// Credentials issued, or leases revoked.
    count: usize,
    /// Revocations sent again after a [`COLLISION`].
    retried: usize,
    seconds: f64,
    plugin: f64,
    postgres: f64,
    server: f64,
    generator: f64,
    /// Seconds times the fraction of all CPUs that was busy.
    machine_busy: f64,
}

impl Phase {
    fn add(&mut self, other: &Phase) {
        self.count += other.count;
        self.retried += other.retried;
        self.seconds += other.seconds;
        self.plugin += other.plugin;
        self.postgres += other.postgres;
        self.server += other.server;
        self.generator += other.generator;
        self.machine_busy += other.machine_busy;
    }

    fn rate(&self) -> f64 {
        self.count as f64 / self.seconds.max(1e-9)
    }

    /// Milliseconds of `cpu` per credential (or revocation).
    fn ms_each(&self, cpu: f64) -> f64 {
        cpu * 1e3 / self.count.max(1) as f64
    }

    /// `cpu` as a share of the wall time (100% = one core all along).
    fn share(&self, cpu: f64) -> f64 {
        100.0 * cpu / self.seconds.max(1e-9)
    }

    /// CPU seconds of processes other than the four measured ones.
    fn others(&self) -> f64 {
        (self.machine_busy * cpus() - self.plugin - self.postgres - self.server - self.generator)
            .max(0.0)
    }
}

/// CPU seconds of PostgreSQL so far: the postmaster's own and its reaped children's (fields
/// 14 to 17 of its `/proc/<pid>/stat`), and its live children's (backends, checkpointer, WAL
/// writer, ...).
fn postgres_cpu(postmaster: u32, ticks: f64) -> f64 {
    let live: f64 = common::children_of(postmaster)
        .into_iter()
        .map(|pid| cpu_seconds(pid, ticks))
        .sum();
    let stat = std::fs::read_to_string(format!("/proc/{postmaster}/stat")).unwrap_or_default();
    let fields: Vec<f64> = stat
        .rfind(')')
        .map(|end| &stat[end + 1..])
        .unwrap_or_default()
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0.0))
        .collect();
    // After `(comm)`: index 11 is utime (field 14), then stime, cutime, cstime.
    let own: f64 = fields.iter().skip(11).take(4).sum();
    live + own / ticks
}

/// The running process of plugin `name` among the server's children: its command line's
/// program is `.../name` exactly (Go's name extends ours).
fn plugin_pid(server: &DevServer, name: &str) -> u32 {
    let pids = plugin_processes(server, name);
    assert_eq!(
        pids.len(),
        1,
        "one process of {name} expected, found {pids:?}\nlog tail:\n{}",
        server.log_tail(30)
    );
    pids[0]
}

fn connect(server: &DevServer) -> Connection {
    let addr = server.addr().trim_start_matches("http://");
    Connection::open(addr, http::CONNECT_TIMEOUT, REQUEST_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to the server: {e}"))
}

/// One request on a keep-alive connection, reopened when the server closed it; panics when
/// the server does not answer.
fn send(server: &DevServer, connection: &mut Connection, request: &[u8]) -> http::Response {
    let response = connection
        .send(request)
        .unwrap_or_else(|e| panic!("{e}\nlog tail:\n{}", server.log_tail(30)));
    if !response.keep_alive {
        *connection = connect(server);
    }
    response
}

/// `clients` clients read credentials of `side` back to back for `span` (or, with `span`
/// zero, until `at_least` are issued); returns the leases.
fn issue(
    server: &DevServer,
    side: &Side,
    clients: usize,
    span: Duration,
    at_least: usize,
) -> Vec<String> {
    let addr = server.addr().trim_start_matches("http://").to_owned();
    let request = http::encode(
        "GET",
        &format!("/v1/database/creds/{}", side.role),
        &addr,
        &[("X-Vault-Token", common::ROOT_TOKEN)],
        b"",
        false,
    );
    let issued = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let mut connection = connect(server);
                    let mut leases = Vec::new();
                    while started.elapsed() < span || issued.load(Ordering::Relaxed) < at_least {
                        let response = send(server, &mut connection, &request);
                        let body = response.json();
                        let text = |key: &str| body["data"][key].as_str().unwrap_or_default();
                        let lease = body["lease_id"].as_str().unwrap_or_default();
                        assert!(
                            response.status == 200
                                && !text("username").is_empty()
                                && !text("password").is_empty()
                                && !lease.is_empty(),
                            "{}: creds: {} {body}\nlog tail:\n{}",
                            side.label,
                            response.status,
                            server.log_tail(30)
                        );
                        leases.push(lease.to_owned());
                        issued.fetch_add(1, Ordering::Relaxed);
                    }
                    leases
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a creds client panicked"))
            .collect()
    })
}

/// What PostgreSQL answers when two sessions update one catalog row at once: two default
/// revocations both run `REVOKE USAGE ON SCHEMA public FROM ...` (and `REVOKE CONNECT ON
/// DATABASE ...`), which rewrite the schema's row in `pg_namespace` (the database's in
/// `pg_database`) even when the role holds nothing on it, and the whole revocation fails (the
/// Go plugin's statements and error, which ours reproduces). Neither plugin should meet it:
/// each holds one lock per connection across its user changes, so their users reach
/// PostgreSQL one at a time (ours took the lock after this bench found 3% of its revocations
/// colliding at 8 clients). A collision is counted and the revocation sent again, so a
/// regression shows in the table instead of failing the run.
const COLLISION: &str = "tuple concurrently updated";
/// Attempts per lease when revocations collide (see [`COLLISION`]).
const ATTEMPTS: usize = 50;

/// `clients` clients revoke `leases` (synchronously) until none is left; a revocation that
/// failed on [`COLLISION`] (the lease and role still there) is sent again at once, as the
/// server's expiration manager would. Returns how many were sent again.
fn revoke(server: &DevServer, side: &Side, clients: usize, leases: &[String]) -> usize {
    let addr = server.addr().trim_start_matches("http://").to_owned();
    let next = AtomicUsize::new(0);
    let retried = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let mut connection = connect(server);
                    while let Some(lease) = leases.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let body = json!({"lease_id": lease, "sync": true}).to_string();
                        let request = http::encode(
                            "PUT",
                            "/v1/sys/leases/revoke",
                            &addr,
                            &[
                                ("X-Vault-Token", common::ROOT_TOKEN),
                                ("Content-Type", "application/json"),
                            ],
                            body.as_bytes(),
                            false,
                        );
                        for attempt in 1..=ATTEMPTS {
                            let response = send(server, &mut connection, &request);
                            if matches!(response.status, 200 | 204) {
                                break;
                            }
                            let body = response.json();
                            assert!(
                                response.status == 400
                                    && body.to_string().contains(COLLISION)
                                    && attempt < ATTEMPTS,
                                "{}: revoke {lease} (attempt {attempt}): {} {body}\nlog \
                                 tail:\n{}",
                                side.label,
                                response.status,
                                server.log_tail(30)
                            );
                            retried.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a revoke client panicked");
        }
    });
    retried.into_inner()
}

/// How many of `side`'s roles PostgreSQL holds.
fn roles_in_postgres(pg: &Postgres, side: &Side) -> usize {
    let count = pg.psql(&format!(
        "SELECT count(*) FROM pg_roles WHERE rolname LIKE '{}'",
        side.usernames()
    ));
    count
        .parse()
        .unwrap_or_else(|e| panic!("count of roles {count:?}: {e}"))
}

/// Measures `work` (which returns the count it did) as one phase of `side`.
fn measure(
    server: &DevServer,
    pg: &Postgres,
    side: &Side,
    ticks: f64,
    work: impl FnOnce() -> usize,
) -> Phase {
    let me = std::process::id();
    let read = || Cpu {
        plugin: cpu_seconds(side.pid, ticks),
        postgres: postgres_cpu(pg.pid(), ticks),
        server: cpu_seconds(server.pid(), ticks),
        generator: cpu_seconds(me, ticks),
        machine: machine_jiffies(),
    };
    let before = read();
    let started = Instant::now();
    let count = work();
    let seconds = started.elapsed().as_secs_f64();
    let after = read();
    // The same process all along: a restarted plugin's CPU would not be comparable.
    assert_eq!(
        plugin_pid(server, side.plugin),
        side.pid,
        "{} restarted during the phase",
        side.label
    );
    let total = after.machine.0.saturating_sub(before.machine.0);
    let idle = after.machine.1.saturating_sub(before.machine.1);
    Phase {
        count,
        retried: 0,
        seconds,
        plugin: after.plugin - before.plugin,
        postgres: after.postgres - before.postgres,
        server: after.server - before.server,
        generator: after.generator - before.generator,
        machine_busy: seconds * total.saturating_sub(idle) as f64 / total.max(1) as f64,
    }
}

/// One round of one side: issue for `span`, then revoke them all; checked in PostgreSQL.
fn round(
    server: &DevServer,
    pg: &Postgres,
    side: &Side,
    clients: usize,
    span: Duration,
    ticks: f64,
) -> (Phase, Phase) {
    let mut leases = Vec::new();
    let issued = measure(server, pg, side, ticks, || {
        leases = issue(server, side, clients, span, 0);
        leases.len()
    });
    assert_eq!(
        roles_in_postgres(pg, side),
        leases.len(),
        "{}: PostgreSQL holds another number of roles than were issued",
        side.label
    );
    let mut retried = 0;
    let mut revoked = measure(server, pg, side, ticks, || {
        retried = revoke(server, side, clients, &leases);
        leases.len()
    });
    revoked.retried = retried;
    assert_eq!(
        roles_in_postgres(pg, side),
        0,
        "{}: roles left in PostgreSQL after every lease was revoked",
        side.label
    );
    (issued, revoked)
}

pub(crate) fn database(cell: Duration) {
    println!(
        "\n## Database plugin: PostgreSQL credentials issued and revoked, ours vs HashiCorp's Go \
         plugin\n"
    );
    let Some((ours_bin, go_bin)) = ours_and_go("BENCH_POSTGRESQL_BIN", OURS, GO) else {
        return;
    };
    let ticks = clock_ticks();
    let pg = Postgres::start();
    let server = DevServer::start();
    for (name, path) in [(OURS, &ours_bin), (GO, &go_bin)] {
        let sha = server.install_file(name, path);
        server.cli_ok(&[
            "plugin",
            "register",
            &format!("-sha256={sha}"),
            "database",
            name,
        ]);
    }
    server.cli_ok(&["secrets", "enable", "database"]);
    let mut sides = [("ours", OURS, "pg-ours", "ours"), ("Go", GO, "pg-go", "go")].map(
        |(label, plugin, config, role)| Side {
            label,
            plugin,
            config,
            role,
            pid: 0,
        },
    );
    for side in &mut sides {
        let write = |path: &str, body: serde_json::Value| {
            request_ok(&server, "PUT", path, &body);
        };
        write(
            &format!("database/config/{}", side.config),
            json!({
                "plugin_name": side.plugin,
                "allowed_roles": side.role,
                "connection_url": pg.connection_url(),
                "username": pg.superuser(),
                "password": pg.password(),
            }),
        );
        write(
            &format!("database/roles/{}", side.role),
            json!({
                "db_name": side.config,
                "creation_statements": [CREATE],
                "default_ttl": "1h",
                "max_ttl": "24h",
            }),
        );
        side.pid = plugin_pid(&server, side.plugin);
        // Warm-up: the pools fill; nothing measured.
        let leases = issue(
            &server,
            side,
            CLIENTS[CLIENTS.len() - 1],
            Duration::ZERO,
            WARM_UP,
        );
        revoke(&server, side, CLIENTS[CLIENTS.len() - 1], &leases);
        assert_eq!(roles_in_postgres(&pg, side), 0, "{}: warm-up", side.label);
    }
    eprintln!(
        "bench: database: server pid {}, PostgreSQL pid {}, plugin pids {} (ours), {} (Go)",
        server.pid(),
        pg.pid(),
        sides[0].pid,
        sides[1].pid
    );
    for side in &sides {
        reset_peak(side.pid);
    }

    // [clients][side] -> (issue, revoke)
    let mut cells = vec![[(Phase::default(), Phase::default()); 2]; CLIENTS.len()];
    for (c, &clients) in CLIENTS.iter().enumerate() {
        for _ in 0..ROUNDS {
            for (s, side) in sides.iter().enumerate() {
                let (issued, revoked) = round(&server, &pg, side, clients, cell, ticks);
                eprintln!(
                    "bench: database {} x{clients}: {:.0} creds/s, {:.0} revocations/s",
                    side.label,
                    issued.rate(),
                    revoked.rate()
                );
                cells[c][s].0.add(&issued);
                cells[c][s].1.add(&revoked);
            }
        }
    }
    let peaks = sides
        .each_ref()
        .map(|side| common::status_kib(side.pid, "VmHWM"));

    println!(
        "PostgreSQL {}; the same superuser for both configs, default pools (4 connections), \
         the creation `{CREATE}`, the default revocation; {ROUNDS} rounds of {:.0} s per cell, \
         interleaved.\n",
        pg.psql("SHOW server_version"),
        cell.as_secs_f64()
    );
    println!(
        "| clients | creds/s ours | creds/s Go | ours/Go | revocations/s ours | \
         revocations/s Go | ours/Go | revocations sent again ours / Go |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (c, clients) in CLIENTS.iter().enumerate() {
        let [(oi, or), (gi, gr)] = &cells[c];
        println!(
            "| {clients} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} | {:.2} | {} of {} / {} of {} |",
            oi.rate(),
            gi.rate(),
            oi.rate() / gi.rate().max(1e-9),
            or.rate(),
            gr.rate(),
            or.rate() / gr.rate().max(1e-9),
            or.retried,
            or.count,
            gr.retried,
            gr.count,
        );
    }
    println!(
        "\nA revocation \"sent again\" failed on PostgreSQL's `{COLLISION}`: concurrent default \
         revocations each run `REVOKE USAGE ON SCHEMA public FROM ...` (and `REVOKE CONNECT ON \
         DATABASE`), which rewrite one catalog row, and the plugin fails the whole revocation. \
         Both plugins hold one lock per connection across user changes, so it should stay 0; \
         the lease and the role would stay, and the bench sends it again at once, inside the \
         timed phase."
    );

    println!(
        "\nCPU per credential issued and per lease revoked, ms (ours / Go), and the plugins' \
         peak RSS since the warm-up:\n"
    );
    println!(
        "| clients | phase | plugin | ours/Go | PostgreSQL | OpenBao | load generator |\n\
         |---:|---|---:|---:|---:|---:|---:|"
    );
    for (c, clients) in CLIENTS.iter().enumerate() {
        let [(oi, or), (gi, gr)] = &cells[c];
        for (phase, ours, go) in [("issue", oi, gi), ("revoke", or, gr)] {
            println!(
                "| {clients} | {phase} | {:.3} / {:.3} | {:.2} | {:.3} / {:.3} | {:.3} / {:.3} | \
                 {:.3} / {:.3} |",
                ours.ms_each(ours.plugin),
                go.ms_each(go.plugin),
                ours.ms_each(ours.plugin) / go.ms_each(go.plugin).max(1e-9),
                ours.ms_each(ours.postgres),
                go.ms_each(go.postgres),
                ours.ms_each(ours.server),
                go.ms_each(go.server),
                ours.ms_each(ours.generator),
                go.ms_each(go.generator),
            );
        }
    }
    println!(
        "\n| plugin peak RSS | ours | Go | ours/Go |\n|---|---:|---:|---:|\n| `VmHWM` | {} | {} \
         | {:.2} |",
        mib(peaks[0]),
        mib(peaks[1]),
        peaks[0] as f64 / (peaks[1] as f64).max(1.0)
    );

    println!(
        "\nWhere the time goes: each process's CPU as a share of the phase's wall time (100% = \
         one core all along; {:.0} cores), and the whole machine's busy share, of which \
         processes outside the benchmark:\n",
        cpus()
    );
    println!(
        "| clients | phase | side | PostgreSQL | OpenBao | plugin | load generator | machine \
         busy | other processes |\n|---:|---|---|---:|---:|---:|---:|---:|---:|"
    );
    for (c, clients) in CLIENTS.iter().enumerate() {
        for (s, side) in sides.iter().enumerate() {
            let (issued, revoked) = &cells[c][s];
            for (phase, p) in [("issue", issued), ("revoke", revoked)] {
                println!(
                    "| {clients} | {phase} | {} | {:.0}% | {:.0}% | {:.0}% | {:.0}% | {:.0}% | \
                     {:.0}% |",
                    side.label,
                    p.share(p.postgres),
                    p.share(p.server),
                    p.share(p.plugin),
                    p.share(p.generator),
                    100.0 * p.machine_busy / p.seconds.max(1e-9),
                    p.share(p.others()),
                );
            }
        }
    }

    println!("\n### Targets (ours / Go, one run)\n");
    println!("| measure | target | measured | met |\n|---|---|---:|---|");
    let row = |measure: &str, target: &str, ratio: f64, met: bool| {
        println!(
            "| {measure} | {target} | {ratio:.2} | {} |",
            if met { "yes" } else { "no" }
        );
    };
    for (c, clients) in CLIENTS.iter().enumerate() {
        let [(ours, _), (go, _)] = &cells[c];
        let ratio = ours.rate() / go.rate().max(1e-9);
        row(
            &format!("credentials issued per second, {clients} client(s)"),
            "≥ 1.0",
            ratio,
            ratio >= 1.0,
        );
    }
    for (c, clients) in CLIENTS.iter().enumerate() {
        let [(ours, _), (go, _)] = &cells[c];
        let ratio = ours.ms_each(ours.plugin) / go.ms_each(go.plugin).max(1e-9);
        row(
            &format!("plugin CPU per credential, {clients} client(s)"),
            "≤ 0.5",
            ratio,
            ratio <= 0.5,
        );
    }
    let ratio = peaks[0] as f64 / (peaks[1] as f64).max(1.0);
    row("plugin peak RSS", "≤ 0.3", ratio, ratio <= 0.3);
    println!();
    for (c, clients) in CLIENTS.iter().enumerate() {
        let [(ours, _), (go, _)] = &cells[c];
        println!(
            "Issuing at {clients} client(s): PostgreSQL's CPU is {:.0}% (ours) and {:.0}% (Go) \
             of the wall time, OpenBao's {:.0}% and {:.0}%, the plugin's {:.0}% and {:.0}%.",
            ours.share(ours.postgres),
            go.share(go.postgres),
            ours.share(ours.server),
            go.share(go.server),
            ours.share(ours.plugin),
            go.share(go.plugin),
        );
    }
    println!();
}
