//! The `leased-passwords` example plugin (`examples/leased-passwords/`) against a real OpenBao
//! dev server: roles, credentials under leases, renew within the caps, revoke by id, by prefix
//! and by expiry, and the failure paths, on the SDK's test kit (`vault_plugin_sdk::testing`,
//! whose server is `BAO_BIN`, else `bao` on `PATH`). Cargo builds the plugin's binary for
//! these tests (`CARGO_BIN_EXE_leased-passwords`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vault_plugin_sdk::testing::{OpenBao, PluginKind};

const PLUGIN: &str = "leased-passwords";
const MOUNT: &str = "pw";
/// The dev server's built-in default and max lease TTL: 768 h.
const SERVER_DEFAULT_TTL: u64 = 768 * 3600;

/// A dev server with the example registered and enabled at `pw/`.
fn server() -> OpenBao {
    let server = OpenBao::start().expect("an OpenBao dev server");
    let bin = env!("CARGO_BIN_EXE_leased-passwords");
    server
        .mount_plugin(bin, PluginKind::Secret, PLUGIN, MOUNT)
        .expect("the plugin mounted");
    server
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `done` every 20 ms until it holds; panics naming `what` after `timeout`.
fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a credential of `role`: (lease id, lease duration, username, the whole answer).
fn issue(server: &OpenBao, role: &str) -> (String, u64, String, Value) {
    let answer = server.cli_json(&["read", &format!("{MOUNT}/creds/{role}")]);
    let lease_id = answer["lease_id"].as_str().expect("lease_id").to_owned();
    let duration = answer["lease_duration"].as_u64().expect("lease_duration");
    let username = answer["data"]["username"]
        .as_str()
        .expect("username")
        .to_owned();
    (lease_id, duration, username, answer)
}

/// The usernames `list pw/issued/` shows (none: the server's 404 for an empty list).
fn issued(server: &OpenBao) -> Vec<String> {
    let (status, body) = server.list(&format!("{MOUNT}/issued/"));
    match status {
        404 => Vec::new(),
        200 => body["data"]["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k.as_str().expect("a key").to_owned())
            .collect(),
        _ => panic!("list issued/: {status} {body}"),
    }
}

#[test]
fn roles_are_created_read_updated_listed_and_deleted() {
    let server = server();
    let out = server.cli_ok(&["write", "pw/roles/web", "ttl=30m", "max_ttl=2h"]);
    assert!(
        out.contains("Success! Data written to: pw/roles/web"),
        "{out}"
    );

    let role = server.cli_json(&["read", "pw/roles/web"]);
    assert_eq!(
        role["data"],
        json!({"ttl": 1800, "max_ttl": 7200, "length": 20})
    );

    // An update changes only what it names.
    server.cli_ok(&["write", "pw/roles/web", "length=40"]);
    let role = server.cli_json(&["read", "pw/roles/web"]);
    assert_eq!(
        role["data"],
        json!({"ttl": 1800, "max_ttl": 7200, "length": 40})
    );

    server.cli_ok(&["write", "pw/roles/db", "ttl=60"]);
    let listed = server.cli_json(&["list", "pw/roles/"]);
    assert_eq!(listed, json!(["db", "web"]));

    let out = server.cli_ok(&["delete", "pw/roles/web"]);
    assert!(
        out.contains("Success! Data deleted (if it existed) at: pw/roles/web"),
        "{out}"
    );
    let (status, _) = server.read("pw/roles/web");
    assert_eq!(status, 404);
    assert_eq!(server.cli_json(&["list", "pw/roles/"]), json!(["db"]));
}

/// The existence check makes the first write a create: a token with only `create` on the
/// path may make a role but not change it.
#[test]
fn existence_check_tells_create_from_update() {
    let server = server();
    let policy = r#"path "pw/roles/*" { capabilities = ["create", "read"] }"#;
    let policy_file = server.dir().join("creator.hcl");
    std::fs::write(&policy_file, policy).expect("write the policy");
    server.cli_ok(&[
        "policy",
        "write",
        "creator",
        policy_file.to_str().expect("a UTF-8 path"),
    ]);
    let token = server.cli_json(&["token", "create", "-policy=creator"]);
    let token = token["auth"]["client_token"]
        .as_str()
        .expect("a token")
        .to_owned();

    let as_creator = |args: &[&str]| {
        let mut cmd = server.cli_command(args);
        cmd.env("BAO_TOKEN", &token).env("VAULT_TOKEN", &token);
        cmd.output().expect("run the CLI")
    };
    let out = as_creator(&["write", "pw/roles/new", "ttl=60"]);
    assert!(out.status.success(), "a create: {}", stderr(&out));
    let out = as_creator(&["write", "pw/roles/new", "ttl=120"]);
    assert!(!out.status.success(), "an update needs `update`");
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn credentials_carry_a_renewable_lease_of_the_roles_ttl_or_the_mounts_default() {
    let server = server();
    server.cli_ok(&[
        "write",
        "pw/roles/web",
        "ttl=30m",
        "max_ttl=1h",
        "length=32",
    ]);
    let (lease_id, duration, username, answer) = issue(&server, "web");
    assert!(lease_id.starts_with("pw/creds/web/"), "{lease_id}");
    assert_eq!(duration, 1800);
    assert_eq!(answer["renewable"], json!(true));
    assert_eq!(answer["data"]["password"].as_str().map(str::len), Some(32));
    assert!(username.starts_with("web-"), "{username}");
    assert_eq!(issued(&server), std::slice::from_ref(&username));

    // The CLI's table shows the lease rows.
    let table = server.cli_ok(&["read", "pw/creds/web"]);
    assert!(
        table.contains("lease_id") && table.contains("pw/creds/web/"),
        "{table}"
    );
    assert!(
        table.contains("lease_duration") && table.contains("30m"),
        "{table}"
    );
    assert!(
        table.contains("lease_renewable") && table.contains("true"),
        "{table}"
    );

    // The recorded entry, without the password.
    let entry = server.cli_json(&["read", &format!("pw/issued/{username}")]);
    assert_eq!(entry["data"]["role"], "web");
    assert_eq!(entry["data"]["ttl"], 1800);
    assert!(entry["data"].get("password").is_none(), "{entry}");

    // A role without a ttl gets the mount's default: the server's, then the tuned one.
    server.cli_ok(&["write", "pw/roles/plain", "length=12"]);
    let (_, duration, _, _) = issue(&server, "plain");
    assert_eq!(duration, SERVER_DEFAULT_TTL);
    server.cli_ok(&["secrets", "tune", "-default-lease-ttl=45m", "pw/"]);
    let (_, duration, username, _) = issue(&server, "plain");
    assert_eq!(duration, 2700);
    let entry = server.cli_json(&["read", &format!("pw/issued/{username}")]);
    assert_eq!(
        entry["data"]["ttl"], 2700,
        "the plugin records the mount's default"
    );

    // A role ttl above the mount's max is capped by the server.
    server.cli_ok(&["secrets", "tune", "-max-lease-ttl=1h", "pw/"]);
    server.cli_ok(&["write", "pw/roles/long", "ttl=5h"]);
    let (_, duration, username, _) = issue(&server, "long");
    assert_eq!(duration, 3600);
    let entry = server.cli_json(&["read", &format!("pw/issued/{username}")]);
    assert_eq!(entry["data"]["ttl"], 3600);
    assert_eq!(issued(&server).len(), 5);
}

#[test]
fn renew_extends_within_the_roles_max_ttl() {
    let server = server();
    server.cli_ok(&["write", "pw/roles/web", "ttl=1m", "max_ttl=10m"]);
    let (lease_id, duration, username, _) = issue(&server, "web");
    assert_eq!(duration, 60);

    let renewed = server.cli_json(&["lease", "renew", &lease_id]);
    assert_eq!(renewed["lease_id"], json!(lease_id));
    assert_eq!(renewed["lease_duration"], 60);
    assert_eq!(renewed["renewable"], json!(true));

    let renewed = server.cli_json(&["lease", "renew", "-increment=5m", &lease_id]);
    assert_eq!(renewed["lease_duration"], 300);
    let entry = server.cli_json(&["read", &format!("pw/issued/{username}")]);
    assert_eq!(
        entry["data"]["ttl"], 300,
        "the recorded expiry follows the renew"
    );

    // Above max_ttl: capped at what is left of it since the first issue, with a warning.
    let renewed = server.cli_json(&["lease", "renew", "-increment=1h", &lease_id]);
    let capped = renewed["lease_duration"].as_u64().expect("lease_duration");
    assert!((590..=600).contains(&capped), "{renewed}");
    let warnings = renewed["warnings"].to_string();
    assert!(
        warnings.contains("exceeded the effective max_ttl"),
        "{renewed}"
    );
    let entry = server.cli_json(&["read", &format!("pw/issued/{username}")]);
    assert_eq!(entry["data"]["ttl"], json!(capped));

    // The lease as the server keeps it.
    let lookup = server.cli_json(&["lease", "lookup", &lease_id]);
    assert_eq!(lookup["data"]["renewable"], json!(true));
    assert!(lookup["data"]["last_renewal"].is_string(), "{lookup}");
}

#[test]
fn revoke_by_id_and_by_prefix_removes_the_issued_entries() {
    let server = server();
    server.cli_ok(&["write", "pw/roles/web", "ttl=1h"]);
    server.cli_ok(&["write", "pw/roles/db", "ttl=1h"]);
    let (first, _, first_user, _) = issue(&server, "web");
    let web: Vec<String> = (0..3).map(|_| issue(&server, "web").2).collect();
    let (_, _, db_user, _) = issue(&server, "db");
    assert_eq!(issued(&server).len(), 5);

    let out = server.cli_ok(&["lease", "revoke", "-sync", &first]);
    assert!(
        out.contains(&format!("Success! Revoked lease: {first}")),
        "{out}"
    );
    let left = issued(&server);
    assert!(!left.contains(&first_user), "{left:?}");
    assert_eq!(left.len(), 4);
    let out = server.cli(&["lease", "lookup", &first]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("invalid lease"), "{}", stderr(&out));

    let out = server.cli_ok(&["lease", "revoke", "-sync", "-prefix", "pw/creds/web"]);
    assert!(
        out.contains("Success! Revoked any leases with prefix: pw/creds/web"),
        "{out}"
    );
    let left = issued(&server);
    assert_eq!(left, [db_user], "only db's credential is left of {web:?}");

    // Without -sync the revoke is queued; the entry goes once the server has sent it.
    let (db_lease, _, _, _) = issue(&server, "db");
    let out = server.cli_ok(&["lease", "revoke", "-prefix", "pw/creds/db"]);
    assert!(
        out.contains("All revocation operations queued successfully!"),
        "{out}"
    );
    wait_until(
        "the queued revokes to reach the plugin",
        Duration::from_secs(20),
        || issued(&server).is_empty(),
    );
    let out = server.cli(&["lease", "lookup", &db_lease]);
    assert!(!out.status.success());
}

#[test]
fn an_expired_lease_is_revoked_and_its_entry_removed() {
    let server = server();
    server.cli_ok(&["write", "pw/roles/brief", "ttl=2s", "max_ttl=2s"]);
    let (lease_id, duration, username, _) = issue(&server, "brief");
    assert_eq!(duration, 2);
    assert_eq!(issued(&server), std::slice::from_ref(&username));

    // The server revokes on expiry; give it ample time, checking often.
    wait_until(
        "the expired lease's entry to be removed",
        Duration::from_secs(30),
        || !issued(&server).contains(&username),
    );
    wait_until("the lease to be gone", Duration::from_secs(10), || {
        !server.cli(&["lease", "lookup", &lease_id]).status.success()
    });
    // Renew after the max TTL: refused by the server (the lease is gone).
    let out = server.cli(&["lease", "renew", &lease_id]);
    assert!(!out.status.success());
}

#[test]
fn failures_are_clear_400s() {
    let server = server();

    let (status, body) = server.read("pw/creds/nobody");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"], json!(["unknown role: nobody"]));

    for (field, value) in [("ttl", "soon"), ("max_ttl", "-5"), ("length", "abc")] {
        let (status, body) = server.write("pw/roles/bad", json!({ field: value }));
        assert_eq!(status, 400, "{field}={value}: {body}");
        // The existence check converts the fields first, and the server answers its user
        // error as it is (400, without the "Field validation failed: " a handler's has).
        let error = body["errors"][0].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("error converting input for field \"{field}\"")),
            "{field}={value}: {body}"
        );
    }
    // The same for a role that exists (an update).
    server.cli_ok(&["write", "pw/roles/good", "ttl=60"]);
    let (status, body) = server.write("pw/roles/good", json!({"length": [1]}));
    assert_eq!(status, 400, "{body}");
    assert_eq!(server.read("pw/roles/good").1["data"]["length"], 20);
    let (status, body) = server.write("pw/roles/bad", json!({"length": 2}));
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.write("pw/roles/bad", json!({"ttl": "2h", "max_ttl": "1h"}));
    assert_eq!(
        (status, body["errors"].clone()),
        (400, json!(["ttl cannot be greater than max_ttl"]))
    );
    assert_eq!(server.read("pw/roles/bad").0, 404);

    // Renew after the role is deleted fails and says why; the lease can still be revoked.
    server.cli_ok(&["write", "pw/roles/web", "ttl=1h"]);
    let (lease_id, _, username, _) = issue(&server, "web");
    server.cli_ok(&["delete", "pw/roles/web"]);
    let out = server.cli(&["lease", "renew", &lease_id]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("role \"web\" no longer exists"), "{err}");
    assert_eq!(issued(&server), [username]);
    server.cli_ok(&["lease", "revoke", "-sync", &lease_id]);
    assert!(issued(&server).is_empty());
}

/// A role's password policy: the server makes the passwords (the plugin asks it through the
/// system view), `length` does not apply, and a policy the server does not have fails the
/// credential with a 400 naming it, leaving nothing recorded.
#[test]
fn a_password_policy_makes_the_passwords_on_the_server() {
    let server = server();
    let policy =
        "length = 12\nrule \"charset\" {\n  charset = \"0123456789\"\n  min-chars = 12\n}\n";
    let policy_file = server.dir().join("digits.hcl");
    std::fs::write(&policy_file, policy).expect("write the password policy");
    let policy_arg = format!("policy=@{}", policy_file.to_str().expect("a UTF-8 path"));
    server.cli_ok(&["write", "sys/policies/password/digits", &policy_arg]);

    server.cli_ok(&[
        "write",
        "pw/roles/pin",
        "ttl=1h",
        "length=40",
        "password_policy=digits",
    ]);
    let role = server.cli_json(&["read", "pw/roles/pin"]);
    assert_eq!(
        role["data"],
        json!({"ttl": 3600, "max_ttl": 0, "password_policy": "digits"}),
        "the policy in place of the length"
    );
    for _ in 0..3 {
        let (lease_id, duration, _, answer) = issue(&server, "pin");
        assert!(lease_id.starts_with("pw/creds/pin/"), "{lease_id}");
        assert_eq!(duration, 3600);
        let password = answer["data"]["password"].as_str().expect("a password");
        assert_eq!(password.len(), 12, "{password}");
        assert!(password.bytes().all(|b| b.is_ascii_digit()), "{password}");
    }

    // Clearing the policy brings the role's length back.
    server.cli_ok(&["write", "pw/roles/pin", "password_policy="]);
    let role = server.cli_json(&["read", "pw/roles/pin"]);
    assert_eq!(
        role["data"],
        json!({"ttl": 3600, "max_ttl": 0, "length": 40})
    );
    let (_, _, _, answer) = issue(&server, "pin");
    assert_eq!(answer["data"]["password"].as_str().map(str::len), Some(40));

    // A policy the server does not have.
    server.cli_ok(&["write", "pw/roles/lost", "password_policy=nosuch"]);
    let before = issued(&server);
    let (status, body) = server.read("pw/creds/lost");
    assert_eq!(status, 400, "{body}");
    // The server's own text is only "failed to generate password"; the plugin names the policy.
    assert_eq!(
        body["errors"],
        json!([
            "cannot generate a password from the password policy \"nosuch\": \
             failed to generate password"
        ])
    );
    assert_eq!(
        issued(&server),
        before,
        "nothing recorded for a failed credential"
    );
    let out = server.cli(&["read", "pw/creds/lost"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("\"nosuch\""), "{}", stderr(&out));
}
