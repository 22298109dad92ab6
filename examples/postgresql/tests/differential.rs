//! The plugin beside HashiCorp's Go original (Vault v1.14.1's, built by `make peers`) on one
//! OpenBao server and one PostgreSQL cluster: the same database-engine requests through two
//! connections, one per plugin, and the answers compared whole once what must differ is
//! normalised (generated names and passwords, lease ids, times, the plugin's name). What each
//! request left in PostgreSQL is compared too.
//!
//! Deliberate differences, each normalised in one place below and listed in
//! `docs/differential.md`: a driver's own error words after `error verifying connection: `
//! (pgx's and tokio-postgres's texts for a refused connection differ).
#![allow(clippy::unwrap_used)]

use plugin_test_support::common::{DevServer, peer_bin};
use plugin_test_support::postgres::Postgres;
use plugin_test_support::table::Table;
use serde_json::{Value, json};

const OURS: &str = "postgresql-database-plugin";
const GO: &str = "postgresql-database-plugin-go";
const BINARY: &str = env!("CARGO_BIN_EXE_postgresql-database-plugin");

/// One side: its plugin's catalog name and the names of everything it owns.
struct Side {
    plugin: &'static str,
    tag: &'static str,
}

impl Side {
    fn connection(&self) -> String {
        format!("pg-{}", self.tag)
    }
    fn name(&self, what: &str) -> String {
        format!("{what}-{}", self.tag)
    }
}

const SIDES: [Side; 2] = [
    Side {
        plugin: OURS,
        tag: "rs",
    },
    Side {
        plugin: GO,
        tag: "go",
    },
];

fn server() -> DevServer {
    let server = DevServer::start();
    for (name, binary) in [(OURS, std::path::PathBuf::from(BINARY)), (GO, peer_bin(GO))] {
        let sha = server.install_file(name, &binary);
        server.cli_ok(&[
            "plugin",
            "register",
            &format!("-sha256={sha}"),
            "database",
            name,
        ]);
    }
    server.cli_ok(&["secrets", "enable", "database"]);
    server
}

/// `answer` with what must differ between the sides replaced by placeholders.
fn normalise(answer: &Value, side: &Side) -> Value {
    let text = answer.to_string();
    let text = text
        .replace(side.plugin, "<plugin>")
        .replace(&side.connection(), "<connection>")
        .replace(&format!("-{}\"", side.tag), "-<side>\"")
        .replace(&format!("-{}/", side.tag), "-<side>/");
    let mut value: Value = serde_json::from_str(&text).unwrap();
    scrub(&mut value);
    value
}

/// Values that are random or times, whatever their key; the driver's words in any text.
fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let random = matches!(
                    key.as_str(),
                    "request_id" | "lease_id" | "password" | "username" | "last_vault_rotation"
                ) && item.is_string();
                if random {
                    *item = Value::String(format!("<{key}>"));
                } else if key == "ttl" && item.is_number() {
                    *item = json!("<ttl>");
                } else {
                    scrub(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::String(text) => {
            const VERIFYING: &str = "error verifying connection: ";
            if let Some(at) = text.find(VERIFYING) {
                *text = format!("{}{VERIFYING}<driver>", &text[..at]);
            }
        }
        _ => {}
    }
}

/// One request made on both sides; `make` builds the method, path and body for a side.
fn both(
    server: &DevServer,
    table: &mut Table,
    what: &str,
    make: impl Fn(&Side) -> (&'static str, String, Option<Value>),
) -> [(u16, Value); 2] {
    let answers = SIDES.map(|side| {
        let (method, path, body) = make(&side);
        let (status, answer) = server.http(method, &path, body.as_ref());
        (status, normalise(&answer, &side), answer)
    });
    let [(rs_status, rs, rs_raw), (go_status, go, go_raw)] = answers;
    table.case(
        what,
        if (rs_status, &rs) == (go_status, &go) {
            Ok(())
        } else {
            Err(format!("ours {rs_status} {rs}\nGo   {go_status} {go}"))
        },
    );
    [(rs_status, rs_raw), (go_status, go_raw)]
}

fn config_body(pg: &Postgres, side: &Side, user: &str, password: &str, extra: Value) -> Value {
    let mut body = json!({
        "plugin_name": side.plugin,
        "allowed_roles": "*",
        "connection_url": pg.connection_url(),
        "username": user,
        "password": password,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// What PostgreSQL holds of `user`: its attributes, whether it expires, the roles it is a
/// member of and its privilege on the database, as one line to compare between the sides.
fn state(pg: &Postgres, user: &str) -> String {
    let literal = plugin_test_support::postgres::quote_literal(user);
    pg.psql(&format!(
        "SELECT r.rolcanlogin, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, \
         r.rolconnlimit, r.rolvaliduntil IS NOT NULL, \
         (SELECT coalesce(string_agg(g.rolname, ',' ORDER BY g.rolname), '') \
            FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), \
         has_database_privilege(r.rolname, 'postgres', 'CONNECT'), \
         (SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = r.rolname) \
         FROM pg_roles r WHERE r.rolname = {literal}"
    ))
}

/// Compares what PostgreSQL holds of the users each side's answers name.
fn same_state(pg: &Postgres, table: &mut Table, what: &str, answers: &[(u16, Value); 2]) {
    let states: Vec<String> = answers
        .iter()
        .map(|(_, answer)| {
            answer["data"]["username"]
                .as_str()
                .map_or_else(|| "no user".to_owned(), |user| state(pg, user))
        })
        .collect();
    table.case(
        format!("{what}: the same in PostgreSQL"),
        if states[0] == states[1] && !states[0].is_empty() {
            Ok(())
        } else {
            Err(format!("ours {:?}\nGo   {:?}", states[0], states[1]))
        },
    );
}

const CREATE: &str = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL \
                      '{{expiration}}';";

#[test]
fn the_engine_answers_the_same_through_either_plugin() {
    let pg = Postgres::start();
    for side in &SIDES {
        pg.psql(&format!(
            "CREATE ROLE root_{0} WITH LOGIN SUPERUSER PASSWORD 'root-{0}-pw'; \
             CREATE ROLE app_{0} WITH LOGIN PASSWORD 'x';",
            side.tag
        ));
    }
    let server = server();
    let mut table = Table::new("the PostgreSQL plugin, ours beside Go's");
    let config = |side: &Side, extra: Value| {
        config_body(
            &pg,
            side,
            &format!("root_{}", side.tag),
            &format!("root-{}-pw", side.tag),
            extra,
        )
    };

    // Configuration: refused ones first, then the one the rest uses.
    let refusals = [
        ("no connection_url", json!({"connection_url": ""})),
        (
            "a password authentication that does not exist",
            json!({"password_authentication": "md5"}),
        ),
        (
            "a username template that does not parse",
            json!({"username_template": "{{ nope"}),
        ),
        (
            "an unknown template function",
            json!({"username_template": "{{ nope 3 }}"}),
        ),
        (
            "a lifetime that is not a duration",
            json!({"max_connection_lifetime": "soon"}),
        ),
        (
            "template variables in the username",
            json!({"username": "{{username}}"}),
        ),
        (
            "an unreachable server",
            json!({"connection_url": "postgres://{{username}}:{{password}}@127.0.0.1:1/postgres?sslmode=disable"}),
        ),
    ];
    for (what, extra) in refusals {
        both(&server, &mut table, &format!("config: {what}"), |side| {
            (
                "PUT",
                format!("database/config/bad-{}", side.tag),
                Some(config(side, extra.clone())),
            )
        });
    }
    both(&server, &mut table, "config: valid", |side| {
        (
            "PUT",
            format!("database/config/{}", side.connection()),
            Some(config(
                side,
                json!({"max_open_connections": "3", "max_connection_lifetime": 60}),
            )),
        )
    });
    both(&server, &mut table, "config: read", |side| {
        (
            "GET",
            format!("database/config/{}", side.connection()),
            None,
        )
    });

    // Dynamic roles.
    both(&server, &mut table, "role: write", |side| {
        (
            "PUT",
            format!("database/roles/{}", side.name("ro")),
            Some(
                json!({"db_name": side.connection(), "creation_statements": [CREATE], "default_ttl": 3600, "max_ttl": 7200}),
            ),
        )
    });
    both(&server, &mut table, "role: read", |side| {
        ("GET", format!("database/roles/{}", side.name("ro")), None)
    });
    let created = both(&server, &mut table, "creds: read", |side| {
        ("GET", format!("database/creds/{}", side.name("ro")), None)
    });
    same_state(&pg, &mut table, "creds: read", &created);
    for (status, answer) in &created {
        assert_eq!(*status, 200, "{answer}");
        let user = answer["data"]["username"].as_str().unwrap();
        let password = answer["data"]["password"].as_str().unwrap();
        table.case(
            format!("creds: {user} logs in"),
            if pg.can_login(user, password) && pg.role_valid_until(user).is_some() {
                Ok(())
            } else {
                Err("cannot log in, or no VALID UNTIL".to_owned())
            },
        );
    }
    let shapes: Vec<(usize, usize)> = created
        .iter()
        .map(|(_, a)| {
            let user = a["data"]["username"].as_str().unwrap();
            (user.len(), user.matches('-').count())
        })
        .collect();
    table.case(
        "creds: the default template makes names of one shape",
        if shapes[0] == shapes[1] {
            Ok(())
        } else {
            Err(format!("{shapes:?}"))
        },
    );
    let leases: Vec<String> = created
        .iter()
        .map(|(_, a)| a["lease_id"].as_str().unwrap().to_owned())
        .collect();
    let users: Vec<String> = created
        .iter()
        .map(|(_, a)| a["data"]["username"].as_str().unwrap().to_owned())
        .collect();
    both(&server, &mut table, "lease: renew", |side| {
        let lease = &leases[usize::from(side.tag == "go")];
        (
            "PUT",
            "sys/leases/renew".to_owned(),
            Some(json!({"lease_id": lease, "increment": 600})),
        )
    });
    both(&server, &mut table, "lease: revoke", |side| {
        let lease = &leases[usize::from(side.tag == "go")];
        (
            "PUT",
            "sys/leases/revoke".to_owned(),
            Some(json!({"lease_id": lease})),
        )
    });
    for user in &users {
        table.case(
            format!("revoke: {user} is gone"),
            if pg.role_exists(user) {
                Err("still there".to_owned())
            } else {
                Ok(())
            },
        );
    }
    both(&server, &mut table, "creds: an unknown role", |side| {
        ("GET", format!("database/creds/{}", side.name("nope")), None)
    });
    both(
        &server,
        &mut table,
        "role: a statement PostgreSQL refuses",
        |side| {
            (
                "PUT",
                format!("database/roles/{}", side.name("broken")),
                Some(
                    json!({"db_name": side.connection(), "creation_statements": ["CREATE ROLE \"{{name}}\" NONSENSE;"]}),
                ),
            )
        },
    );
    both(
        &server,
        &mut table,
        "creds: a statement PostgreSQL refuses",
        |side| {
            (
                "GET",
                format!("database/creds/{}", side.name("broken")),
                None,
            )
        },
    );
    both(
        &server,
        &mut table,
        "role: no creation statements",
        |side| {
            (
                "PUT",
                format!("database/roles/{}", side.name("empty")),
                Some(json!({"db_name": side.connection()})),
            )
        },
    );
    both(
        &server,
        &mut table,
        "creds: no creation statements",
        |side| {
            (
                "GET",
                format!("database/creds/{}", side.name("empty")),
                None,
            )
        },
    );

    // Each configuration key, and what the users made through it are in PostgreSQL.
    let variants = [
        (
            "idle connections",
            json!({"max_idle_connections": 1, "max_open_connections": 2}),
        ),
        ("no escaping", json!({"disable_escaping": true})),
        (
            "a lifetime as a duration",
            json!({"max_connection_lifetime": "1m"}),
        ),
        (
            "an unverified connection",
            json!({"verify_connection": false}),
        ),
        ("SCRAM", json!({"password_authentication": "scram-sha-256"})),
        (
            "plain passwords",
            json!({"password_authentication": "password"}),
        ),
        (
            "a username template",
            json!({"username_template": "{{ .RoleName | uppercase }}_{{ random 6 | lowercase }}"}),
        ),
    ];
    for (index, (what, extra)) in variants.into_iter().enumerate() {
        let connection = |side: &Side| format!("key{index}-{}", side.tag);
        both(&server, &mut table, &format!("config: {what}"), |side| {
            (
                "PUT",
                format!("database/config/{}", connection(side)),
                Some(config(side, extra.clone())),
            )
        });
        both(
            &server,
            &mut table,
            &format!("config: {what}: read"),
            |side| ("GET", format!("database/config/{}", connection(side)), None),
        );
        both(
            &server,
            &mut table,
            &format!("config: {what}: role"),
            |side| {
                (
                    "PUT",
                    format!("database/roles/{}", side.name(&format!("key{index}"))),
                    Some(json!({
                        "db_name": connection(side),
                        "creation_statements": [CREATE, "GRANT pg_read_all_data TO \"{{name}}\";"],
                    })),
                )
            },
        );
        let made = both(
            &server,
            &mut table,
            &format!("config: {what}: creds"),
            |side| {
                (
                    "GET",
                    format!("database/creds/{}", side.name(&format!("key{index}"))),
                    None,
                )
            },
        );
        same_state(&pg, &mut table, &format!("config: {what}: creds"), &made);
    }
    // The custom template's names: the role's name in capitals, then six random characters.
    let (_, templated) = server.http(
        "GET",
        &format!("database/creds/{}", SIDES[0].name("key6")),
        None,
    );
    let name = templated["data"]["username"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    table.case(
        "config: a username template: the name follows it",
        if name.starts_with("KEY6-RS_") && name.len() == "KEY6-RS_".len() + 6 {
            Ok(())
        } else {
            Err(name)
        },
    );

    // Revoking by prefix drops every user of the role.
    for _ in 0..2 {
        both(
            &server,
            &mut table,
            "creds: another for the prefix",
            |side| ("GET", format!("database/creds/{}", side.name("ro")), None),
        );
    }
    let before: Vec<String> = SIDES
        .iter()
        .map(|side| {
            pg.psql(&format!(
                "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-token-ro-{}-%'",
                side.tag
            ))
        })
        .collect();
    table.case(
        "creds: the prefix's users exist",
        if before.iter().all(|n| n == "2") {
            Ok(())
        } else {
            Err(format!("{before:?}"))
        },
    );
    both(&server, &mut table, "lease: revoke by prefix", |side| {
        (
            "PUT",
            format!(
                "sys/leases/revoke-prefix/database/creds/{}",
                side.name("ro")
            ),
            Some(json!({"sync": true})),
        )
    });
    let after: Vec<String> = SIDES
        .iter()
        .map(|side| {
            pg.psql(&format!(
                "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-token-ro-{}-%'",
                side.tag
            ))
        })
        .collect();
    table.case(
        "lease: revoke by prefix drops them all",
        if after.iter().all(|n| n == "0") {
            Ok(())
        } else {
            Err(format!("{after:?}"))
        },
    );

    // Static roles.
    both(&server, &mut table, "static role: write", |side| {
        (
            "PUT",
            format!("database/static-roles/{}", side.name("app")),
            Some(
                json!({"db_name": side.connection(), "username": format!("app_{}", side.tag), "rotation_period": "1h"}),
            ),
        )
    });
    let statics = both(&server, &mut table, "static creds: read", |side| {
        (
            "GET",
            format!("database/static-creds/{}", side.name("app")),
            None,
        )
    });
    for (side, (_, answer)) in SIDES.iter().zip(&statics) {
        let password = answer["data"]["password"].as_str().unwrap_or_default();
        table.case(
            format!("static creds: app_{} logs in", side.tag),
            if pg.can_login(&format!("app_{}", side.tag), password) {
                Ok(())
            } else {
                Err(format!("{answer}"))
            },
        );
    }
    both(&server, &mut table, "static role: rotate", |side| {
        (
            "PUT",
            format!("database/rotate-role/{}", side.name("app")),
            Some(json!({})),
        )
    });

    // Root rotation and reset.
    both(&server, &mut table, "rotate-root", |side| {
        (
            "PUT",
            format!("database/rotate-root/{}", side.connection()),
            Some(json!({})),
        )
    });
    for side in &SIDES {
        table.case(
            format!("rotate-root: root_{0}'s old password is refused", side.tag),
            if pg.can_login(
                &format!("root_{}", side.tag),
                &format!("root-{}-pw", side.tag),
            ) {
                Err("still works".to_owned())
            } else {
                Ok(())
            },
        );
    }
    both(&server, &mut table, "reset", |side| {
        (
            "PUT",
            format!("database/reset/{}", side.connection()),
            Some(json!({})),
        )
    });
    both(
        &server,
        &mut table,
        "creds after rotate-root and reset",
        |side| ("GET", format!("database/creds/{}", side.name("ro")), None),
    );
    both(&server, &mut table, "config: delete", |side| {
        (
            "DELETE",
            format!("database/config/{}", side.connection()),
            None,
        )
    });
    table.finish();
}
