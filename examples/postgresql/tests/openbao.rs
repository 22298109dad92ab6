//! The plugin through a real OpenBao dev server against a real PostgreSQL (a private cluster
//! the test starts): the database secrets engine's requests over HTTP, the results looked up
//! in PostgreSQL itself.
#![allow(clippy::unwrap_used)]

use plugin_test_support::common::DevServer;
use plugin_test_support::postgres::Postgres;
use serde_json::{Value, json};

const PLUGIN: &str = "postgresql-database-plugin";
const BINARY: &str = env!("CARGO_BIN_EXE_postgresql-database-plugin");
const CREATE: &str = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL \
                      '{{expiration}}'; GRANT CONNECT ON DATABASE postgres TO \"{{name}}\";";

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

/// Writes `body` to `path` and expects success.
fn write(server: &DevServer, path: &str, body: Value) -> Value {
    let (status, answer) = server.http("PUT", path, Some(&body));
    assert!(
        (200..300).contains(&status),
        "{path}: {status} {answer}\nlog:\n{}",
        server.log_tail(30)
    );
    answer
}

/// Configures the connection `name` as `user`/`password`, with `extra` keys.
fn configure(
    server: &DevServer,
    pg: &Postgres,
    name: &str,
    user: &str,
    password: &str,
    extra: Value,
) {
    let mut body = json!({
        "plugin_name": PLUGIN,
        "allowed_roles": "*",
        "connection_url": pg.connection_url(),
        "username": user,
        "password": password,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    write(server, &format!("database/config/{name}"), body);
}

/// A role with the test's creation statements on `db`.
fn role(server: &DevServer, name: &str, db: &str) {
    write(
        server,
        &format!("database/roles/{name}"),
        json!({"db_name": db, "creation_statements": [CREATE], "default_ttl": "1h", "max_ttl": "24h"}),
    );
}

/// Reads credentials: (username, password, lease id).
fn creds(server: &DevServer, role: &str) -> (String, String, String) {
    let (status, answer) = server.http("GET", &format!("database/creds/{role}"), None);
    assert_eq!(status, 200, "{answer}\nlog:\n{}", server.log_tail(30));
    (
        answer["data"]["username"].as_str().unwrap().to_owned(),
        answer["data"]["password"].as_str().unwrap().to_owned(),
        answer["lease_id"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn dynamic_credentials_live_renew_and_die_in_postgresql() {
    let pg = Postgres::start();
    let server = server();
    configure(&server, &pg, "pg", pg.superuser(), pg.password(), json!({}));
    role(&server, "ro", "pg");

    let (username, password, lease) = creds(&server, "ro");
    // The default template: v-<display name, 8>-<role, 8>-<20 random>-<unix time>.
    let parts: Vec<&str> = username.splitn(5, '-').collect();
    assert_eq!(parts[..3], ["v", "token", "ro"], "{username}");
    assert_eq!(parts[3].len(), 20, "{username}");
    assert!(
        parts[3].chars().all(|c| c.is_ascii_alphanumeric()),
        "{username}"
    );
    assert!(parts[4].chars().all(|c| c.is_ascii_digit()), "{username}");
    assert!(pg.role_exists(&username));
    assert!(pg.can_login(&username, &password));
    assert!(!pg.can_login(&username, "not the password"));
    let valid_until = pg.role_valid_until(&username).expect("VALID UNTIL is set");

    // Renewal moves VALID UNTIL (the lease's new end, plus the engine's few seconds).
    let renewed = write(
        &server,
        "sys/leases/renew",
        json!({"lease_id": lease, "increment": "2h"}),
    );
    assert_eq!(renewed["lease_duration"], 7200, "{renewed}");
    let later = pg.role_valid_until(&username).expect("VALID UNTIL is set");
    assert!(later > valid_until, "{later} after {valid_until}");

    write(&server, "sys/leases/revoke", json!({"lease_id": lease}));
    assert!(!pg.role_exists(&username), "revoke drops the role");

    // A user dropped behind the engine's back still revokes cleanly.
    let (gone, _, lease) = creds(&server, "ro");
    pg.psql(&format!(
        "REVOKE CONNECT ON DATABASE postgres FROM \"{gone}\"; DROP ROLE \"{gone}\";"
    ));
    write(&server, "sys/leases/revoke", json!({"lease_id": lease}));
}

#[test]
fn scram_passwords_are_hashed_by_the_plugin_and_stored_as_scram() {
    let pg = Postgres::start();
    let server = server();
    configure(
        &server,
        &pg,
        "pg",
        pg.superuser(),
        pg.password(),
        json!({"password_authentication": "scram-sha-256"}),
    );
    role(&server, "ro", "pg");
    let (username, password, _) = creds(&server, "ro");
    assert!(pg.password_is_scram(&username));
    assert!(pg.can_login(&username, &password));
}

#[test]
fn rotate_root_changes_the_root_password_and_the_engine_keeps_working() {
    let pg = Postgres::start();
    pg.psql("CREATE ROLE vaultroot WITH LOGIN CREATEROLE SUPERUSER PASSWORD 'first-root-pw'");
    let server = server();
    configure(&server, &pg, "pg", "vaultroot", "first-root-pw", json!({}));
    role(&server, "ro", "pg");
    assert!(pg.can_login("vaultroot", "first-root-pw"));

    write(&server, "database/rotate-root/pg", json!({}));
    assert!(
        !pg.can_login("vaultroot", "first-root-pw"),
        "the old root password still works"
    );
    // The engine stored the new password; the plugin connects with it.
    let (username, password, _) = creds(&server, "ro");
    assert!(pg.can_login(&username, &password));
    // And the configuration never shows it.
    let (_, config) = server.http("GET", "database/config/pg", None);
    assert!(
        config["data"]["connection_details"]
            .get("password")
            .is_none(),
        "{config}"
    );
    write(&server, "database/reset/pg", json!({}));
    let (after_reset, _, _) = creds(&server, "ro");
    assert!(pg.role_exists(&after_reset));
}

#[test]
fn static_roles_get_rotated_passwords() {
    let pg = Postgres::start();
    pg.psql("CREATE ROLE app WITH LOGIN PASSWORD 'initial'");
    let server = server();
    configure(&server, &pg, "pg", pg.superuser(), pg.password(), json!({}));
    write(
        &server,
        "database/static-roles/app",
        json!({"db_name": "pg", "username": "app", "rotation_period": "1h"}),
    );
    let (status, first) = server.http("GET", "database/static-creds/app", None);
    assert_eq!(status, 200, "{first}");
    let first = first["data"]["password"].as_str().unwrap().to_owned();
    assert!(pg.can_login("app", &first));
    assert!(!pg.can_login("app", "initial"));

    write(&server, "database/rotate-role/app", json!({}));
    let (_, second) = server.http("GET", "database/static-creds/app", None);
    let second = second["data"]["password"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(pg.can_login("app", &second));
    assert!(!pg.can_login("app", &first));
}

#[test]
fn failures_are_clear_and_never_show_a_password() {
    let pg = Postgres::start();
    let server = server();
    // A wrong root password: the configuration is refused when verified.
    let wrong = "wrong-root-pw-LEAK-MARKER";
    let (status, answer) = server.http(
        "PUT",
        "database/config/bad",
        Some(&json!({
            "plugin_name": PLUGIN,
            "allowed_roles": "*",
            "connection_url": pg.connection_url(),
            "username": pg.superuser(),
            "password": wrong,
        })),
    );
    assert_eq!(status, 400, "{answer}");
    let text = answer.to_string();
    assert!(text.contains("error verifying connection"), "{text}");
    assert!(!text.contains("LEAK-MARKER"), "{text}");

    // An empty connection_url, in the Go plugin's words.
    let (status, answer) = server.http(
        "PUT",
        "database/config/empty",
        Some(&json!({"plugin_name": PLUGIN, "connection_url": ""})),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer
            .to_string()
            .contains("connection_url cannot be empty"),
        "{answer}"
    );

    // A statement PostgreSQL refuses: the creds read fails with PostgreSQL's words.
    configure(&server, &pg, "pg", pg.superuser(), pg.password(), json!({}));
    write(
        &server,
        "database/roles/broken",
        json!({"db_name": "pg", "creation_statements": ["CREATE ROLE \"{{name}}\" WITH PASSWORD '{{password}}' NONSENSE;"]}),
    );
    let (status, answer) = server.http("GET", "database/creds/broken", None);
    assert_eq!(status, 500, "{answer}");
    let error = answer["errors"][0].as_str().unwrap();
    assert!(
        error.contains(
            "unable to create new user: failed to execute query: ERROR: unrecognized role option \
             \"nonsense\" (SQLSTATE 42601)"
        ),
        "{error}"
    );
}
