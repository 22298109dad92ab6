//! The real client: the same `kv` commands of the server's own CLI (`bao kv` on OpenBao, `vault
//! kv` with `TEST_SERVER=vault`) run against our plugin and against HashiCorp's Go plugin
//! (vault-plugin-secrets-kv v0.15.0), each on its own dev server ([`common::Pair`]): the
//! version 2 mount through every subcommand, with and without `-format=json`, its failures, and a
//! short version 1 sequence. Each command's exit status, stdout and stderr must be the same.
//!
//! Normalised, because they differ between any two servers whatever the plugin: RFC 3339
//! times (and the padding of the table columns they are in, which follows their length, since
//! Go trims trailing zeros of the nanoseconds), `request_id` values, the random tail of a
//! version 1 `lease_id`, and the server's address in the CLI's error texts. See `docs/kv.md`,
//! "The CLI".
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{Pair, Side, V1, V2, scrub_times};
use plugin_test_support::common::{fresh_temp_dir, keep_dirs, lossy};
use plugin_test_support::table::Table;

/// What the Go side's command must do, so the comparison is known to cover what it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Exit status 0.
    Ok,
    /// Any other exit status.
    Fails,
}

/// A command's output as compared: exit status, stdout and stderr, normalised.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Replaces the string value of every `"key": "…"` (the CLI's indented JSON) that `keep`
/// does not want kept as it is.
fn scrub_json_values(text: &str, key: &str, scrub: impl Fn(&str) -> String) -> String {
    let needle = format!("\"{key}\": \"");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let start = at + needle.len();
        let end = start + rest[start..].find('"').unwrap_or(0);
        out.push_str(&rest[..start]);
        out.push_str(&scrub(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The parts of a CLI output that differ between any two servers, replaced by placeholders.
fn normalise(side: &Side, text: &[u8]) -> String {
    let mut text = lossy(text).replace(side.server.addr(), "<addr>");
    text = scrub_times(&text);
    text = scrub_json_values(&text, "request_id", |_| "<request_id>".to_owned());
    // A version 1 read's lease: `<mount>/<key>/<random>`; the random part is the server's.
    text = scrub_json_values(&text, "lease_id", |lease| match lease.rsplit_once('/') {
        Some((path, _)) => format!("{path}/<random>"),
        None => lease.to_owned(),
    });
    // A table pads each column to its widest cell, which may be a time: compare the cells.
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn run(side: &Side, args: &[&str]) -> Run {
    let out = side.server.cli(args);
    Run {
        status: out.status.code(),
        stdout: normalise(side, &out.stdout),
        stderr: normalise(side, &out.stderr),
    }
}

/// The sequence's runner: each command goes to both sides, ours first, and is one case.
struct Cli<'a> {
    pair: &'a Pair,
    table: Table,
    commands: usize,
}

impl Cli<'_> {
    /// Runs `kv <args>` on both sides; the case fails when the runs differ or the Go side's
    /// status is not what `expect` says.
    fn kv(&mut self, expect: Expect, args: &[&str]) {
        let mut all = vec!["kv"];
        all.extend_from_slice(args);
        // Both sides at once: a CLI run costs more than the request it sends.
        let (ours, go) = std::thread::scope(|scope| {
            let ours = scope.spawn(|| run(&self.pair.ours, &all));
            let go = run(&self.pair.go, &all);
            (ours.join().unwrap(), go)
        });
        self.commands += 1;
        let what = all.join(" ");
        let go_ok = go.status == Some(0);
        let result = if ours != go {
            Err(format!("ours:\n{ours:#?}\nGo:\n{go:#?}"))
        } else if go_ok != (expect == Expect::Ok) {
            Err(format!("expected {expect:?}, both sides gave:\n{go:#?}"))
        } else {
            Ok(())
        };
        self.table.case(what, result);
    }

    fn ok(&mut self, args: &[&str]) {
        self.kv(Expect::Ok, args);
    }

    fn fails(&mut self, args: &[&str]) {
        self.kv(Expect::Fails, args);
    }
}

/// The JSON file `kv put <key> @file` reads, with nesting and numbers.
fn write_data_file(dir: &Path) -> String {
    let path = dir.join("secret.json");
    std::fs::write(
        &path,
        r#"{"user": "admin", "nested": {"list": [1, 2.5, "three", null, true], "deep": {"x": "y"}}, "count": 42, "big": 12345678901234567890, "empty": ""}"#,
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn version2(cli: &mut Cli<'_>, file: &str) {
    let app = format!("{V2}/app");
    let app = app.as_str();
    // put: K=V pairs, table and JSON; -cas right and wrong.
    cli.ok(&["put", app, "user=admin", "pass=first"]);
    cli.ok(&["put", "-format=json", app, "user=admin", "pass=second"]);
    cli.ok(&["put", "-cas=2", app, "user=admin", "pass=third"]);
    cli.fails(&["put", "-cas=1", app, "user=wrong"]);
    cli.fails(&["put", "-cas=0", app, "user=wrong"]);
    // get: latest, a version, a field, JSON.
    cli.ok(&["get", app]);
    cli.ok(&["get", "-format=json", app]);
    cli.ok(&["get", "-version=1", app]);
    cli.ok(&["get", "-format=json", "-version=2", app]);
    cli.ok(&["get", "-field=pass", app]);
    cli.ok(&["get", "-field=pass", "-version=1", app]);
    cli.fails(&["get", "-field=nope", app]);
    cli.ok(&["get", &format!("-mount={V2}"), "app"]);
    // patch: the default method (PATCH), read-write, JSON, with a check-and-set.
    cli.ok(&["patch", app, "pass=patched", "extra=1"]);
    cli.ok(&["patch", "-method=rw", app, "extra=2"]);
    cli.ok(&["patch", "-format=json", "-method=patch", app, "more=3"]);
    cli.ok(&["patch", "-cas=6", app, "more=4"]);
    cli.fails(&["patch", "-cas=1", app, "more=5"]);
    cli.ok(&["get", app]);
    // metadata: get, put with every flag, patch.
    cli.ok(&["metadata", "get", app]);
    cli.ok(&[
        "metadata",
        "put",
        "-max-versions=5",
        "-custom-metadata=owner=team a",
        "-custom-metadata=tier=1",
        "-cas-required=false",
        "-delete-version-after=100h",
        app,
    ]);
    cli.ok(&["metadata", "get", "-format=json", app]);
    cli.ok(&[
        "metadata",
        "patch",
        "-custom-metadata=extra=x",
        "-remove-custom-metadata=tier",
        app,
    ]);
    cli.ok(&["metadata", "patch", "-max-versions=6", app]);
    cli.ok(&["metadata", "get", app]);
    // cas_required on a key.
    let guarded = format!("{V2}/guarded");
    cli.ok(&["metadata", "put", "-cas-required=true", &guarded]);
    cli.fails(&["put", &guarded, "a=b"]);
    cli.ok(&["put", "-cas=0", &guarded, "a=b"]);
    cli.fails(&["patch", &guarded, "a=c"]);
    cli.ok(&["patch", "-cas=1", &guarded, "a=c"]);
    cli.ok(&["metadata", "get", &guarded]);
    // delete, delete -versions, undelete, destroy, rollback.
    cli.ok(&["delete", app]);
    // A deleted version: the CLI prints its metadata and succeeds.
    cli.ok(&["get", app]);
    cli.ok(&["get", "-format=json", app]);
    cli.ok(&["delete", "-versions=1,2", app]);
    cli.ok(&["undelete", "-versions=1", app]);
    cli.ok(&["destroy", "-versions=2", app]);
    cli.ok(&["get", "-version=2", app]);
    cli.ok(&["get", "-version=1", app]);
    // With delete_version_after every version has a deletion time: the CLI refuses them all.
    cli.fails(&["rollback", "-version=1", app]);
    cli.fails(&["rollback", "-version=2", app]);
    cli.fails(&["rollback", "-version=99", app]);
    cli.ok(&["metadata", "get", "-format=json", app]);
    let roll = format!("{V2}/roll");
    cli.ok(&["put", &roll, "a=1"]);
    cli.ok(&["put", &roll, "a=2", "b=3"]);
    cli.ok(&["rollback", "-version=1", &roll]);
    cli.ok(&["get", "-format=json", &roll]);
    cli.ok(&["destroy", "-versions=2", &roll]);
    cli.fails(&["rollback", "-version=2", &roll]);
    cli.ok(&["metadata", "get", &roll]);
    // list: the root, a folder, JSON, nothing.
    cli.ok(&["put", &format!("{V2}/dir/sub/leaf"), "a=1"]);
    cli.ok(&["put", &format!("{V2}/dir/other"), "b=2"]);
    cli.ok(&["put", &format!("{V2}/dir/with space"), "c=3"]);
    cli.ok(&["list", V2]);
    cli.ok(&["list", &format!("{V2}/dir")]);
    cli.ok(&["list", "-format=json", &format!("{V2}/dir/")]);
    cli.ok(&["get", &format!("{V2}/dir/with space")]);
    cli.ok(&["metadata", "delete", &format!("{V2}/dir/other")]);
    cli.ok(&["list", "-format=json", &format!("{V2}/dir")]);
    cli.fails(&["list", &format!("{V2}/nothing")]);
    // A JSON file.
    let from_file = format!("{V2}/from-file");
    cli.ok(&["put", &from_file, &format!("@{file}")]);
    cli.ok(&["get", "-format=json", &from_file]);
    cli.ok(&["get", &from_file]);
    cli.ok(&["get", "-field=nested", &from_file]);
    cli.ok(&["get", "-format=json", "-field=nested", &from_file]);
    // Failures.
    let missing = format!("{V2}/missing");
    cli.fails(&["get", &missing]);
    cli.fails(&["get", "-format=json", &missing]);
    cli.fails(&["get", "-version=3", &from_file]);
    // The CLI reports the empty 404 of a patch (Go's PATCH of a missing key).
    cli.fails(&["patch", &missing, "a=b"]);
    cli.fails(&["patch", "-method=rw", &missing, "a=b"]);
    cli.fails(&["undelete", app]);
    cli.fails(&["destroy", app]);
    cli.fails(&["delete", "-versions=", app]);
    cli.fails(&["metadata", "get", &missing]);
    cli.fails(&["rollback", "-version=1", &missing]);
    cli.fails(&["put", app]);
    cli.fails(&["metadata", "put", "-custom-metadata=novalue", app]);
}

fn version1(cli: &mut Cli<'_>) {
    let key = format!("{V1}/key");
    let key = key.as_str();
    cli.ok(&["put", key, "a=b", "ttl=1h"]);
    cli.ok(&["put", "-format=json", &format!("{V1}/dir/bar"), "n=1"]);
    cli.ok(&["get", key]);
    cli.ok(&["get", "-format=json", key]);
    cli.ok(&["get", "-field=a", key]);
    cli.ok(&["list", V1]);
    cli.ok(&["list", "-format=json", &format!("{V1}/dir")]);
    cli.fails(&["patch", key, "a=c"]);
    cli.fails(&["metadata", "get", key]);
    cli.fails(&["undelete", "-versions=1", key]);
    cli.fails(&["destroy", "-versions=1", key]);
    cli.fails(&["rollback", "-version=1", key]);
    // Version 1 ignores the version parameter.
    cli.ok(&["get", "-version=1", key]);
    cli.ok(&["delete", key]);
    cli.fails(&["get", key]);
    cli.fails(&["list", &format!("{V1}/nothing")]);
}

#[test]
fn the_kv_cli_prints_the_same_for_both_plugins() {
    let started = std::time::Instant::now();
    let pair = Pair::start();
    let dir = fresh_temp_dir("kv-cli");
    let file = write_data_file(&dir);
    let mut cli = Cli {
        pair: &pair,
        table: Table::new("kv CLI, ours beside Go"),
        commands: 0,
    };
    version2(&mut cli, &file);
    version1(&mut cli);
    eprintln!(
        "cli: {} commands on each side in {:?}",
        cli.commands,
        started.elapsed()
    );
    if !keep_dirs() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    cli.table.finish();
}

#[test]
fn the_normalisation_replaces_only_what_differs_between_servers() {
    assert_eq!(
        scrub_times("a 2026-12-03T12:08:39.41814166Z b 2026-12-03T12:08:39Z c 2026-12-03"),
        "a <time> b <time> c 2026-12-03"
    );
    assert_eq!(
        scrub_json_values(
            "{\n  \"request_id\": \"abc\",\n  \"lease_id\": \"kv1/foo/xyz\",\n  \"x\": \"abc\"\n}",
            "request_id",
            |_| "<id>".to_owned()
        ),
        "{\n  \"request_id\": \"<id>\",\n  \"lease_id\": \"kv1/foo/xyz\",\n  \"x\": \"abc\"\n}"
    );
}
