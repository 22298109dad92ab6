//! Faults, through a real OpenBao dev server and a real PostgreSQL (a private cluster the test
//! starts, stops and starts again on the same port and data directory), each with an exact
//! expectation: the status and error text the server answers, the leases it keeps, and what
//! is left in PostgreSQL.
//!
//! * PostgreSQL down when a connection is configured, when credentials are read, when a lease
//!   is revoked (by hand, and by the server when it expires), and restarted under load.
//! * The plugin process killed while it creates a user.
//! * Five connections served by one multiplexed plugin process, reloaded.
//!
//! Every HTTP request is bounded ([`TIMEOUT`], less under load); waits are bounded polls.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use plugin_test_support::common::{DevServer, kill_pid, pid_alive, wait_until};
use plugin_test_support::http::request_once;
use plugin_test_support::postgres::Postgres;
use serde_json::{Value, json};

const PLUGIN: &str = "postgresql-database-plugin";
const BINARY: &str = env!("CARGO_BIN_EXE_postgresql-database-plugin");
const CREATE: &str = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL \
                      '{{expiration}}'; GRANT CONNECT ON DATABASE postgres TO \"{{name}}\";";
/// Bounds every request of the tests but the load's.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A dev server with the plugin registered as a database plugin and the engine at
/// `database/`.
fn server() -> DevServer {
    let server = DevServer::start();
    let sha = server.install_file(PLUGIN, BINARY.as_ref());
    server.cli_ok(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        "database",
        PLUGIN,
    ]);
    server.cli_ok(&["secrets", "enable", "database"]);
    server
}

/// The tails of both logs, for failure messages.
fn logs(server: &DevServer, pg: &Postgres) -> String {
    format!(
        "--- bao log tail\n{}\n--- postgres log tail\n{}",
        server.log_tail(40),
        pg.log_tail(20)
    )
}

/// One request with the root token, bounded by `timeout`: the status and the JSON body, or
/// why no answer came in time.
fn try_call(
    server: &DevServer,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<(u16, Value), String> {
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut headers = vec![("X-Vault-Token", server.token())];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let started = Instant::now();
    request_once(
        server.addr().trim_start_matches("http://"),
        method,
        &format!("/v1/{path}"),
        &headers,
        payload.as_bytes(),
        timeout,
    )
    .map(|answer| (answer.status, answer.json()))
    .map_err(|e| {
        format!(
            "{method} {path}: no answer after {:?}: {e}",
            started.elapsed()
        )
    })
}

/// [`try_call`] within [`TIMEOUT`], which must answer.
fn call(
    server: &DevServer,
    pg: &Postgres,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    try_call(server, method, path, body, TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(server, pg)))
}

/// [`call`] that must answer `status`; returns the body.
fn expect(
    server: &DevServer,
    pg: &Postgres,
    method: &str,
    path: &str,
    body: Option<&Value>,
    status: u16,
) -> Value {
    let (got, answer) = call(server, pg, method, path, body);
    assert_eq!(
        got,
        status,
        "{method} {path}: {answer}\n{}",
        logs(server, pg)
    );
    answer
}

/// The one error of an error answer (`{"errors": [TEXT]}`).
fn error_text(answer: &Value) -> String {
    match answer["errors"].as_array().map(Vec::as_slice) {
        Some([Value::String(text)]) => text.clone(),
        _ => panic!("not one error: {answer}"),
    }
}

/// A connection's configuration on `pg` as its superuser, with `extra` keys.
fn config_body(pg: &Postgres, extra: Value) -> Value {
    let mut body = json!({
        "plugin_name": PLUGIN,
        "allowed_roles": "*",
        "connection_url": pg.connection_url(),
        "username": pg.superuser(),
        "password": pg.password(),
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// Configures connection `name` (verified) and a role of the same name on it.
fn configure(server: &DevServer, pg: &Postgres, name: &str, role: &str) {
    let body = config_body(pg, json!({}));
    expect(
        server,
        pg,
        "PUT",
        &format!("database/config/{name}"),
        Some(&body),
        204,
    );
    role_with(server, pg, role, name, &[CREATE], "1h");
}

/// A role on connection `db` with `statements` and a default TTL.
fn role_with(
    server: &DevServer,
    pg: &Postgres,
    role: &str,
    db: &str,
    statements: &[&str],
    ttl: &str,
) {
    let body = json!({"db_name": db, "creation_statements": statements, "default_ttl": ttl,
                      "max_ttl": "24h"});
    expect(
        server,
        pg,
        "PUT",
        &format!("database/roles/{role}"),
        Some(&body),
        204,
    );
}

/// Reads credentials that must be issued: (username, password, lease id); checks the user
/// can log in to PostgreSQL.
fn creds(server: &DevServer, pg: &Postgres, role: &str) -> (String, String, String) {
    let answer = expect(
        server,
        pg,
        "GET",
        &format!("database/creds/{role}"),
        None,
        200,
    );
    let username = answer["data"]["username"].as_str().unwrap().to_owned();
    let password = answer["data"]["password"].as_str().unwrap().to_owned();
    if let Err(e) = pg.try_login(&username, &password) {
        panic!("{username} cannot log in: {e}\n{}", logs(server, pg));
    }
    (
        username,
        password,
        answer["lease_id"].as_str().unwrap().to_owned(),
    )
}

/// The leases the server holds under `database/creds/{role}/` (their last segment).
fn leases(server: &DevServer, pg: &Postgres, role: &str) -> BTreeSet<String> {
    let (status, answer) = call(
        server,
        pg,
        "LIST",
        &format!("sys/leases/lookup/database/creds/{role}/"),
        None,
    );
    match status {
        404 => BTreeSet::new(),
        200 => answer["data"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key.as_str().unwrap().to_owned())
            .collect(),
        _ => panic!("listing leases: {status} {answer}\n{}", logs(server, pg)),
    }
}

/// The roles in PostgreSQL the engine made for `role` (the default username template:
/// `v-token-<role>-...`).
fn roles_for(pg: &Postgres, role: &str) -> BTreeSet<String> {
    pg.psql(&format!(
        "SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-token-{role}-%' ORDER BY 1"
    ))
    .lines()
    .map(str::to_owned)
    .collect()
}

/// How the engine words a creation that failed in the plugin: go-multierror's list around
/// the gRPC client's context, the status, and the plugin's own text (which the SDK's server
/// prefixes as Go's does).
fn creation_failed(plugin_text: &str) -> String {
    format!(
        "1 error occurred:\n\t* unable to create new user: rpc error: code = Internal desc = \
         unable to create new user: {plugin_text}\n\n"
    )
}

/// What the driver says when nothing listens on PostgreSQL's port.
const REFUSED: &str = "error connecting to server: Connection refused (os error 111)";

#[test]
fn postgresql_down_at_config() {
    let mut pg = Postgres::start();
    let server = server();
    pg.stop();

    // Verified (the default): refused with the driver's reason, and nothing is stored.
    let (status, answer) = call(
        &server,
        &pg,
        "PUT",
        "database/config/x",
        Some(&config_body(&pg, json!({}))),
    );
    assert_eq!(status, 400, "{answer}\n{}", logs(&server, &pg));
    assert_eq!(
        error_text(&answer),
        format!(
            "error creating database object: unable to initialize: rpc error: code = Internal \
             desc = failed to initialize: error verifying connection: {REFUSED}"
        )
    );
    expect(&server, &pg, "GET", "database/config/x", None, 404);

    // Unverified: accepted; credentials fail while PostgreSQL is down, with no lease and no
    // user, and work once it is up, without configuring again.
    let body = config_body(&pg, json!({"verify_connection": false}));
    expect(&server, &pg, "PUT", "database/config/x", Some(&body), 204);
    role_with(&server, &pg, "ro", "x", &[CREATE], "1h");
    let answer = expect(&server, &pg, "GET", "database/creds/ro", None, 500);
    assert_eq!(
        error_text(&answer),
        creation_failed(&format!("unable to get connection: {REFUSED}"))
    );
    assert!(leases(&server, &pg, "ro").is_empty());

    pg.start_again();
    assert!(roles_for(&pg, "ro").is_empty());
    let (username, _, _) = creds(&server, &pg, "ro");
    assert_eq!(roles_for(&pg, "ro"), BTreeSet::from([username]));
}

#[test]
fn postgresql_down_at_creds() {
    let mut pg = Postgres::start();
    let server = server();
    configure(&server, &pg, "pg", "ro");
    // The pool keeps this connection, which the stop closes.
    let (first, _, first_lease) = creds(&server, &pg, "ro");
    pg.stop();

    let answer = expect(&server, &pg, "GET", "database/creds/ro", None, 500);
    assert_eq!(
        error_text(&answer),
        creation_failed(&format!("unable to get connection: {REFUSED}"))
    );
    let only_first = BTreeSet::from([first_lease.rsplit('/').next().unwrap().to_owned()]);
    assert_eq!(
        leases(&server, &pg, "ro"),
        only_first,
        "no lease for the failure"
    );

    // Back up: the same connection, not configured again, reconnects on the first request.
    pg.start_again();
    let (second, _, _) = creds(&server, &pg, "ro");
    assert_eq!(roles_for(&pg, "ro"), BTreeSet::from([first, second]));
}

/// `next_attempt=15.65466333s` (a Go duration of seconds: the first backoff is 10 to 30 s) in
/// the server's log line about a failed revocation.
fn next_attempt(line: &str) -> Duration {
    let value = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("next_attempt="))
        .unwrap_or_else(|| panic!("no next_attempt in {line:?}"));
    let seconds = value
        .strip_suffix('s')
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("next_attempt not in seconds: {line:?}"));
    Duration::from_secs_f64(seconds)
}

#[test]
fn postgresql_down_at_revoke() {
    let mut pg = Postgres::start();
    let server = server();
    configure(&server, &pg, "pg", "ro");
    // A lease that expires while PostgreSQL is down: the server's own revocation fails.
    role_with(&server, &pg, "short", "pg", &[CREATE], "2s");
    let (by_hand, _, by_hand_lease) = creds(&server, &pg, "ro");
    let (expiring, _, expiring_lease) = creds(&server, &pg, "short");
    pg.stop();
    let delete_failed = format!(
        "failed to revoke entry: resp: (*logical.Response)(nil) err: unable to delete user: rpc \
         error: code = Internal desc = unable to delete user: {REFUSED}"
    );

    // By hand (sync): refused, and the lease stays.
    let revoke = json!({"lease_id": by_hand_lease});
    let answer = expect(&server, &pg, "PUT", "sys/leases/revoke", Some(&revoke), 400);
    assert_eq!(error_text(&answer), delete_failed);
    let lookup = json!({"lease_id": by_hand_lease});
    let found = expect(&server, &pg, "PUT", "sys/leases/lookup", Some(&lookup), 200);
    assert_eq!(found["data"]["id"], by_hand_lease.as_str(), "{found}");

    // On expiry: the server tried, failed, logged when it tries again, and keeps the lease.
    let needle = format!("[ERROR] expiration: failed to revoke lease: lease_id={expiring_lease}");
    server.wait_for_log(&needle, TIMEOUT);
    let line = server
        .log_text()
        .lines()
        .find(|line| line.contains(&needle))
        .unwrap()
        .to_owned();
    let failed_at = Instant::now();
    assert!(
        line.ends_with(&format!(
            "{needle} error=\"{delete_failed}\" attempts=1 next_attempt={}",
            line.rsplit('=').next().unwrap()
        )),
        "{line}"
    );
    let retry_in = next_attempt(&line);
    assert!(
        (Duration::from_secs(10)..=Duration::from_secs(30)).contains(&retry_in),
        "{line}"
    );
    let expired = json!({"lease_id": expiring_lease});
    let found = expect(
        &server,
        &pg,
        "PUT",
        "sys/leases/lookup",
        Some(&expired),
        200,
    );
    assert_eq!(found["data"]["id"], expiring_lease.as_str(), "{found}");

    // Back up: both users still there; revoking by hand again drops its user and lease.
    pg.start_again();
    assert!(pg.role_exists(&by_hand) && pg.role_exists(&expiring));
    expect(&server, &pg, "PUT", "sys/leases/revoke", Some(&revoke), 204);
    assert!(!pg.role_exists(&by_hand), "revoked again: the role is gone");
    let answer = expect(&server, &pg, "PUT", "sys/leases/lookup", Some(&lookup), 400);
    assert_eq!(error_text(&answer), "invalid lease");

    // The server's retry, when its log said, drops the expired user and forgets the lease.
    let bound = retry_in + Duration::from_secs(15);
    wait_until(
        &format!("the server's retry (due in {retry_in:?}) to drop {expiring}"),
        bound.saturating_sub(failed_at.elapsed()),
        || !pg.role_exists(&expiring),
    );
    wait_until("the retried lease to be forgotten", TIMEOUT, || {
        call(&server, &pg, "PUT", "sys/leases/lookup", Some(&expired)).0 == 400
    });
    assert!(roles_for(&pg, "ro").is_empty() && roles_for(&pg, "short").is_empty());
    assert!(leases(&server, &pg, "ro").is_empty() && leases(&server, &pg, "short").is_empty());
}

/// What one request of the load saw.
#[derive(Debug)]
struct Outcome {
    started: Instant,
    took: Duration,
    /// 200 and the username, or another status and the error, or no answer.
    answer: Result<(u16, String), String>,
}

/// Whether `error` is a creation that failed because PostgreSQL went away or was not back:
/// the plugin's step (none for the commit), then the server's or the driver's reason.
fn failed_for_the_restart(error: &str) -> bool {
    const STEPS: [&str; 4] = [
        "unable to get connection: ",
        "unable to start transaction: ",
        "failed to execute query: ",
        "",
    ];
    const REASONS: [&str; 5] = [
        "FATAL: terminating connection due to administrator command (SQLSTATE 57P01)",
        "FATAL: the database system is shutting down (SQLSTATE 57P03)",
        "FATAL: the database system is starting up (SQLSTATE 57P03)",
        REFUSED,
        "connection closed",
    ];
    // A socket cut by the shutdown, while connecting (the server closes a new connection
    // it will not serve) or on a connection already open.
    const CUTS: [&str; 3] = [
        "Connection reset by peer (os error 104)",
        "Broken pipe (os error 32)",
        "unexpected EOF",
    ];
    let cuts = [
        "error connecting to server: ",
        "error communicating with the server: ",
    ]
    .into_iter()
    .flat_map(|phase| CUTS.map(|cut| format!("{phase}{cut}")));
    let reasons: Vec<String> = REASONS.map(str::to_owned).into_iter().chain(cuts).collect();
    STEPS.iter().any(|step| {
        reasons
            .iter()
            .any(|reason| error == creation_failed(&format!("{step}{reason}")))
    })
}

#[test]
fn postgresql_restarted_under_load() {
    const WORKERS: usize = 4;
    const LOAD_TIMEOUT: Duration = Duration::from_secs(20);
    let mut pg = Postgres::start();
    let server = server();
    let body = config_body(&pg, json!({}));
    expect(&server, &pg, "PUT", "database/config/pg", Some(&body), 204);
    // Without `GRANT CONNECT ON DATABASE`: concurrent grants on one database update its one
    // catalog row, and PostgreSQL fails all but one with `ERROR: tuple concurrently updated
    // (SQLSTATE XX000)` (the Go plugin's creations would too). PUBLIC may connect anyway.
    let create = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL \
                  '{{expiration}}';";
    role_with(&server, &pg, "ro", "pg", &[create], "1h");

    let done = AtomicBool::new(false);
    let outcomes = Mutex::new(Vec::<Outcome>::new());
    let count = |since: Instant, ok: bool| {
        outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.started >= since && matches!(o.answer, Ok((200, _))) == ok)
            .count()
    };
    let (stopped, restarted) = thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                while !done.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let answer = try_call(&server, "GET", "database/creds/ro", None, LOAD_TIMEOUT)
                        .map(|(status, body)| match status {
                            200 => (200, body["data"]["username"].as_str().unwrap().to_owned()),
                            _ => (status, error_text(&body)),
                        });
                    outcomes.lock().unwrap().push(Outcome {
                        started,
                        took: started.elapsed(),
                        answer,
                    });
                }
            });
        }
        let begun = Instant::now();
        // The workers stop whatever happens here, so a failure cannot leave them running.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until("20 credentials before the restart", TIMEOUT, || {
                count(begun, true) >= 20
            });
            let stopped = Instant::now();
            pg.stop();
            wait_until("8 failures while PostgreSQL is down", TIMEOUT, || {
                count(stopped, false) >= 8
            });
            pg.start_again();
            let restarted = Instant::now();
            wait_until("20 credentials after the restart", TIMEOUT, || {
                count(restarted, true) >= 20
            });
            (stopped, restarted)
        }));
        done.store(true, Ordering::SeqCst);
        result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });

    let outcomes = outcomes.into_inner().unwrap();
    let mut errors = BTreeSet::new();
    let mut issued = BTreeSet::new();
    for outcome in &outcomes {
        match &outcome.answer {
            Ok((200, username)) => {
                issued.insert(username.clone());
            }
            Ok((status, error)) => {
                errors.insert(error.clone());
                assert!(
                    *status == 500 && failed_for_the_restart(error),
                    "not a failure for the restart: {outcome:?}\n{}",
                    logs(&server, &pg)
                );
                assert!(
                    outcome.started + outcome.took > stopped && outcome.started < restarted,
                    "a failure outside the restart: {outcome:?}\n{}",
                    logs(&server, &pg)
                );
            }
            Err(e) => panic!("no answer: {e}\n{}", logs(&server, &pg)),
        }
    }
    let slowest = outcomes.iter().map(|o| o.took).max().unwrap();
    eprintln!(
        "load: {} requests, {} issued, slowest {slowest:?}, errors: {errors:#?}",
        outcomes.len(),
        issued.len()
    );
    assert_eq!(
        roles_for(&pg, "ro"),
        issued,
        "every issued user, and only those"
    );
    assert_eq!(leases(&server, &pg, "ro").len(), issued.len());
}

#[test]
fn plugin_killed_during_new_user() {
    let pg = Postgres::start();
    let server = server();
    configure(&server, &pg, "pg", "ro");
    // The role is created, then the transaction waits: the kill lands with it open.
    let slow = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'; SELECT pg_sleep(5); \
                GRANT CONNECT ON DATABASE postgres TO \"{{name}}\";";
    role_with(&server, &pg, "slow", "pg", &[slow], "1h");
    let before = server.plugin_pids(PLUGIN);
    assert_eq!(before.len(), 1, "{before:?}");

    let (status, answer, backend) = thread::scope(|s| {
        let request = s.spawn(|| try_call(&server, "GET", "database/creds/slow", None, TIMEOUT));
        // The backend sleeping in the transaction that created the role (a write: an xid).
        let mut backend = String::new();
        wait_until("the creation to reach pg_sleep", TIMEOUT, || {
            backend = pg.psql(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'vault' AND \
                 state = 'active' AND query LIKE 'SELECT pg_sleep%' AND backend_xid IS NOT NULL",
            );
            !backend.is_empty()
        });
        kill_pid(before[0]);
        let (status, answer) = request
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}\n{}", logs(&server, &pg)));
        (status, answer, backend)
    });
    assert_eq!(status, 500, "{answer}\n{}", logs(&server, &pg));
    let error = error_text(&answer);
    assert!(
        error.starts_with(
            "1 error occurred:\n\t* unable to create new user: rpc error: code = Unavailable \
             desc = error reading from server: "
        ),
        "{error}"
    );
    wait_until("the killed plugin to be gone", TIMEOUT, || {
        !pid_alive(before[0])
    });

    // PostgreSQL rolls the transaction back once it finds its client gone.
    wait_until("the orphaned backend to end", TIMEOUT, || {
        pg.psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {backend}"
        )) == "0"
    });
    assert!(
        roles_for(&pg, "slow").is_empty(),
        "the half-made user is left"
    );
    assert!(leases(&server, &pg, "slow").is_empty());

    // The engine still holds the dead connection: the next request finds the plugin shut
    // down and drops it; the one after starts the plugin again.
    let answer = expect(&server, &pg, "GET", "database/creds/ro", None, 500);
    assert_eq!(
        error_text(&answer),
        "1 error occurred:\n\t* plugin shutdown\n\n"
    );
    assert!(server.plugin_pids(PLUGIN).is_empty());
    let (username, _, _) = creds(&server, &pg, "ro");
    let after = server.plugin_pids(PLUGIN);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before);
    assert_eq!(roles_for(&pg, "ro"), BTreeSet::from([username]));
}

#[test]
fn five_connections_of_one_multiplexed_process_reloaded() {
    let pg = Postgres::start();
    let server = server();
    for i in 1..=5 {
        configure(&server, &pg, &format!("c{i}"), &format!("r{i}"));
    }
    let before = server.plugin_pids(PLUGIN);
    assert_eq!(before.len(), 1, "one process serves the five: {before:?}");
    for i in 1..=5 {
        creds(&server, &pg, &format!("r{i}"));
    }

    // By plugin name: OpenBao reloads only secret and auth plugins' mounts.
    let reload = json!({"plugin": PLUGIN});
    let answer = expect(
        &server,
        &pg,
        "PUT",
        "sys/plugins/reload/backend",
        Some(&reload),
        400,
    );
    assert_eq!(
        error_text(&answer),
        format!(
            "plugin \"{PLUGIN}\" cannot be reloaded, only plugins of type auth and secret can be \
             reloaded"
        )
    );
    assert_eq!(server.plugin_pids(PLUGIN), before, "nothing was reloaded");
    creds(&server, &pg, "r1");

    // By mount: the engine closes its five connections, and the process ends with them.
    let reload = json!({"mounts": ["database"]});
    let answer = expect(
        &server,
        &pg,
        "PUT",
        "sys/plugins/reload/backend",
        Some(&reload),
        200,
    );
    assert!(answer["data"]["reload_id"].is_string(), "{answer}");
    wait_until("the plugin process to end", TIMEOUT, || {
        server.plugin_pids(PLUGIN).is_empty() && !pid_alive(before[0])
    });
    // Each connection comes back on its first use, all five in one new process.
    for i in 1..=5 {
        creds(&server, &pg, &format!("r{i}"));
    }
    let after = server.plugin_pids(PLUGIN);
    assert_eq!(
        after.len(),
        1,
        "one process serves the five again: {after:?}"
    );
    assert_ne!(after, before);
    for i in 1..=5 {
        assert_eq!(
            roles_for(&pg, &format!("r{i}")).len(),
            if i == 1 { 3 } else { 2 }
        );
    }
}
