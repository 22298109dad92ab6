//! OpenBao's published Go test helpers for database plugins (package `dbtesting` of
//! `github.com/openbao/openbao/sdk/v2`, v2.6.2) drive the plugin binary from a Go test
//! (`tests/peer/dbplugin-helpers`), which launches it as a go-plugin client the way OpenBao's
//! database engine does: protocol 5 alone, then 5 and 6 (multiplexed). This wrapper starts a
//! private PostgreSQL, runs `go test` against it and then looks in PostgreSQL at what the Go
//! test says it left: the users it deleted are gone, the ones it kept exist with their last
//! password and expiration.
//!
//! The same Go test runs against HashiCorp's Go original (Vault v1.14.1's, which `make peers`
//! builds), so what it expects is the Go plugin's behaviour, not only ours.
//!
//! Go is required (`make peers` checks for it): without it the test fails, it does not skip.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use plugin_test_support::common::{lossy, peer_bin, project_root, scrub_env, serial};
use plugin_test_support::postgres::Postgres;

const BINARY: &str = env!("CARGO_BIN_EXE_postgresql-database-plugin");
/// The Go test's module, from the project's root.
const MODULE: &str = "tests/peer/dbplugin-helpers";
/// The Go tests that must have run and passed (a skip is a failure under `REQUIRE_HARNESS`).
const GO_TESTS: [&str; 3] = [
    "TestProtocol5",
    "TestProtocol6",
    "TestInitializeEmptyConnectionURL",
];
/// Users the Go test creates: two per lifecycle (protocols 5 and 6) and two more on protocol
/// 6's second instance and after its Close.
const USERS_CREATED: usize = 6;
/// Of which it keeps one per lifecycle.
const USERS_KEPT: usize = 2;

/// `$GO`, else `go` on `PATH`.
fn go_bin() -> PathBuf {
    if let Some(go) = std::env::var_os("GO").filter(|v| !v.is_empty()) {
        return PathBuf::from(go);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("go"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "Go is missing (no `go` on PATH and GO unset): this test runs OpenBao's Go \
                 helpers; install Go 1.25 or newer (`make peers` checks for it) or set GO"
            )
        })
}

/// A user the Go test left in place, with its last password and `VALID UNTIL`.
struct Kept {
    name: String,
    password: String,
    /// RFC 3339 in UTC, as the Go test prints it (`2030-01-01T00:00:00Z`).
    valid_until: String,
}

/// What the Go test's output says it did in PostgreSQL.
#[derive(Default)]
struct Report {
    created: BTreeSet<String>,
    deleted: BTreeSet<String>,
    kept: Vec<Kept>,
}

fn parse_report(stdout: &str) -> Report {
    let mut report = Report::default();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["CREATED", name] => {
                assert!(
                    report.created.insert((*name).to_owned()),
                    "the Go test created {name} twice"
                );
            }
            ["DELETED", name] => {
                report.deleted.insert((*name).to_owned());
            }
            ["KEPT", name, password, valid_until] => report.kept.push(Kept {
                name: (*name).to_owned(),
                password: (*password).to_owned(),
                valid_until: (*valid_until).to_owned(),
            }),
            _ => {}
        }
    }
    report
}

/// `2030-01-01T00:00:00Z` as PostgreSQL prints a UTC timestamptz: `2030-01-01 00:00:00+00`.
fn pg_timestamp(rfc3339: &str) -> String {
    let bare = rfc3339
        .strip_suffix('Z')
        .unwrap_or_else(|| panic!("{rfc3339:?} is not in UTC"));
    format!("{}+00", bare.replacen('T', " ", 1))
}

/// Runs the Go test against `binary` and a fresh PostgreSQL, then checks PostgreSQL.
fn run_go_helpers(binary: &Path) {
    let _serial = serial();
    let go = go_bin();
    let pg = Postgres::start();
    let dir = project_root().join(MODULE);

    let mut cmd = Command::new(&go);
    // `-mod=readonly`: the run never rewrites go.mod or go.sum in the tree.
    cmd.args([
        "test",
        "-mod=readonly",
        "-count=1",
        "-v",
        "-timeout=5m",
        "./...",
    ])
    .current_dir(&dir);
    scrub_env(&mut cmd);
    cmd.env("PLUGIN_BINARY", binary)
        .env("PG_CONNECTION_URL", pg.connection_url())
        .env("PG_USERNAME", pg.superuser())
        .env("PG_PASSWORD", pg.password())
        .env("REQUIRE_HARNESS", "1");
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {} test in {}: {e}", go.display(), dir.display()));
    let elapsed = started.elapsed();
    let stdout = lossy(&out.stdout);
    let stderr = lossy(&out.stderr);
    // PostgreSQL's log tail is shown by `Postgres`'s drop when the test fails.
    let shown = || format!("--- go test stdout\n{stdout}\n--- go test stderr\n{stderr}");
    assert!(
        out.status.success(),
        "OpenBao's Go helpers failed against {} ({}, after {elapsed:.1?})\n{}",
        binary.display(),
        out.status,
        shown()
    );
    for test in GO_TESTS {
        assert!(
            stdout.contains(&format!("--- PASS: {test} ")),
            "the Go test {test} did not pass (not run?)\n{}",
            shown()
        );
    }
    assert!(
        !stdout.contains("--- SKIP"),
        "a Go test skipped\n{}",
        shown()
    );
    // Shown with `--nocapture`.
    eprintln!(
        "go test against {} passed in {elapsed:.1?}:\n{stdout}",
        binary.display()
    );

    let report = parse_report(&stdout);
    assert_eq!(
        report.created.len(),
        USERS_CREATED,
        "users the Go test reports creating: {:?}\n{}",
        report.created,
        shown()
    );
    assert_eq!(
        report.kept.len(),
        USERS_KEPT,
        "users the Go test reports keeping\n{}",
        shown()
    );
    let kept: BTreeSet<String> = report.kept.iter().map(|k| k.name.clone()).collect();
    assert!(
        kept.is_disjoint(&report.deleted),
        "users both kept and deleted: {:?}",
        kept.intersection(&report.deleted).collect::<Vec<_>>()
    );
    let accounted: BTreeSet<String> = kept.union(&report.deleted).cloned().collect();
    assert_eq!(
        accounted, report.created,
        "every user created must be reported deleted or kept"
    );

    for name in &report.deleted {
        assert!(
            !pg.role_exists(name),
            "{name} was deleted through the plugin but is still in PostgreSQL"
        );
    }
    for user in &report.kept {
        assert!(
            pg.role_exists(&user.name),
            "{} was kept but is not in PostgreSQL",
            user.name
        );
        if let Err(e) = pg.try_login(&user.name, &user.password) {
            panic!(
                "{} cannot log in with the password of its last UpdateUser: {e}",
                user.name
            );
        }
        assert_eq!(
            pg.role_valid_until(&user.name),
            Some(pg_timestamp(&user.valid_until)),
            "{}'s VALID UNTIL is not the expiration of its last UpdateUser",
            user.name
        );
        assert!(
            pg.password_is_scram(&user.name),
            "{}'s password is not stored as SCRAM-SHA-256",
            user.name
        );
    }
}

/// Our plugin through OpenBao's Go helpers.
#[test]
fn openbao_go_helpers_pass_against_the_plugin() {
    run_go_helpers(Path::new(BINARY));
}

/// The same Go test against HashiCorp's Go original: what the Go test expects is what the Go
/// plugin does.
#[test]
fn the_go_original_passes_the_same_go_test() {
    run_go_helpers(&peer_bin("postgresql-database-plugin-go"));
}
