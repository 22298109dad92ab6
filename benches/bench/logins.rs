//! `logins`: a CPU-bound path through a real server. Each `static-auth` login is one
//! PBKDF2-HMAC-SHA256 of 600,000 iterations in the plugin, run through the SDK's `cpu_bound`
//! (the blocking pool, one job per CPU at a time); the same binary is registered twice,
//! once on one runtime thread and once on two (`-worker-threads=N` in the catalog's args), and
//! enabled at `t1/` and `t2/`. Printed: logins per second at 1, 2 and 4 concurrent clients, and
//! what one login does to everything else on the plugin: the median time of a cheap request
//! (reading a user) while one client logs in without pause. Each client logs in as its own user.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use plugin_test_support::common::DevServer;
use serde_json::json;

use super::median;

const THREADS: [usize; 2] = [1, 2];
const CLIENTS: [usize; 3] = [1, 2, 4];
/// Rounds per cell, interleaved 1 thread, 2 threads, 1 thread, ...: a drift in the machine's
/// load then touches both alike.
const ROUNDS: usize = 2;

/// The release build `make bench` copies (`BENCH_STATIC_AUTH_BIN`), else `target/release`'s.
fn binary() -> PathBuf {
    std::env::var_os("BENCH_STATIC_AUTH_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/static-auth"),
        PathBuf::from,
    )
}

fn mount(threads: usize) -> String {
    format!("t{threads}")
}

pub(crate) fn logins(cell: Duration) {
    println!("\n## A CPU-bound path: static-auth logins (PBKDF2), one runtime thread or two\n");
    let binary = binary();
    if !binary.exists() {
        println!(
            "skipped: {} is missing (`make bench` builds it)",
            binary.display()
        );
        return;
    }
    let server = DevServer::start();
    let sha = server.install_file("static-auth", &binary);
    for threads in THREADS {
        let name = format!("static-auth-{threads}t");
        server.cli_ok(&[
            "plugin",
            "register",
            &format!("-sha256={sha}"),
            "-command=static-auth",
            &format!("-args=-worker-threads={threads}"),
            "auth",
            &name,
        ]);
        server.cli_ok(&[
            "auth",
            "enable",
            &format!("-path={}", mount(threads)),
            &name,
        ]);
        for user in 0..CLIENTS[CLIENTS.len() - 1] {
            let (status, body) = server.http(
                "PUT",
                &format!("auth/{}/users/user{user}", mount(threads)),
                Some(&json!({"password": "correct horse", "policies": "default"})),
            );
            assert_eq!(status, 204, "{body}");
        }
    }

    println!("| clients | logins/s, 1 thread | logins/s, 2 threads | 2 threads / 1 |");
    println!("|---:|---:|---:|---:|");
    for clients in CLIENTS {
        let mut rates = [0.0; THREADS.len()];
        for _ in 0..ROUNDS {
            for (slot, threads) in THREADS.into_iter().enumerate() {
                rates[slot] += login_rate(&server, threads, clients, cell) / ROUNDS as f64;
            }
        }
        println!(
            "| {clients} | {:.1} | {:.1} | {:.2}x |",
            rates[0],
            rates[1],
            rates[1] / rates[0]
        );
    }

    println!(
        "\nA read of a user (no hashing) while one client logs in without pause, median \
         of the reads in {:.0} s:\n",
        cell.as_secs_f64() * ROUNDS as f64
    );
    println!("| runtime | read, median ms | logins/s meanwhile |");
    println!("|---|---:|---:|");
    for threads in THREADS {
        let (read_ms, rate) = read_during_logins(&server, threads, cell * ROUNDS as u32);
        println!("| {threads} thread(s) | {read_ms:.1} | {rate:.1} |");
    }
}

/// One login of `user`; panics on anything but a token, so a broken run cannot print a rate.
fn login(server: &DevServer, threads: usize, user: usize) {
    let (status, body) = server.http(
        "PUT",
        &format!("auth/{}/login", mount(threads)),
        Some(&json!({"username": format!("user{user}"), "password": "correct horse"})),
    );
    assert!(
        status == 200 && body["auth"]["client_token"].is_string(),
        "login on {threads} thread(s): {status} {body}"
    );
}

/// Logins per second with `clients` clients logging in back to back for `cell`.
fn login_rate(server: &DevServer, threads: usize, clients: usize, cell: Duration) -> f64 {
    let started = Instant::now();
    let count: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|user| {
                scope.spawn(move || {
                    let mut done = 0;
                    while started.elapsed() < cell {
                        login(server, threads, user);
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a login client panicked"))
            .sum()
    });
    count as f64 / started.elapsed().as_secs_f64()
}

/// The median milliseconds of back-to-back reads of the user while one client logs in, and the
/// login rate meanwhile.
fn read_during_logins(server: &DevServer, threads: usize, span: Duration) -> (f64, f64) {
    let reading = AtomicBool::new(true);
    std::thread::scope(|scope| {
        let logins = scope.spawn(|| {
            let started = Instant::now();
            let mut done = 0;
            while reading.load(Ordering::Relaxed) {
                login(server, threads, 0);
                done += 1;
            }
            done as f64 / started.elapsed().as_secs_f64()
        });
        let started = Instant::now();
        let mut reads = Vec::new();
        while started.elapsed() < span {
            let at = Instant::now();
            let (status, body) =
                server.http("GET", &format!("auth/{}/users/user1", mount(threads)), None);
            assert_eq!(status, 200, "{body}");
            reads.push(at.elapsed().as_secs_f64() * 1000.0);
        }
        reading.store(false, Ordering::Relaxed);
        let rate = logins.join().expect("the login client panicked");
        (median(&mut reads), rate)
    })
}
