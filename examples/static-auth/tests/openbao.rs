//! The `static-auth` example plugin (`examples/static-auth/`) against a real OpenBao dev
//! server: users with hashed passwords, the unauthenticated login, the token it makes, renewal
//! and its refusal once the user is deleted or its password changed, and the failure paths,
//! on the SDK's test kit (`vault_plugin_sdk::testing`, whose server is `BAO_BIN`, else `bao` on
//! `PATH`). Cargo builds the plugin's binary for these tests (`CARGO_BIN_EXE_static-auth`).

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vault_plugin_sdk::testing::{OpenBao, PluginKind};

const PLUGIN: &str = "static-auth";
const MOUNT: &str = "users";
const INVALID: &str = "invalid username or password";

/// A dev server with the example registered as an auth method and enabled at `auth/users/`.
fn server() -> OpenBao {
    let server = OpenBao::start().expect("an OpenBao dev server");
    let bin = env!("CARGO_BIN_EXE_static-auth");
    server
        .mount_plugin(bin, PluginKind::Auth, PLUGIN, MOUNT)
        .expect("the plugin mounted");
    server
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn create_user(server: &OpenBao, name: &str, args: &[&str]) {
    let path = format!("auth/{MOUNT}/users/{name}");
    let mut all = vec!["write", path.as_str()];
    all.extend_from_slice(args);
    let out = server.cli_ok(&all);
    assert!(
        out.contains(&format!("Success! Data written to: {path}")),
        "{out}"
    );
}

/// A login over the HTTP API with no `X-Vault-Token` at all: (status, body).
fn http_login(server: &OpenBao, username: &str, password: &str) -> (u16, Value) {
    let body = json!({"username": username, "password": password});
    server.request_as(None, "PUT", &format!("auth/{MOUNT}/login"), Some(body))
}

/// Logs in without a token and returns the client token.
fn login_token(server: &OpenBao, username: &str, password: &str) -> String {
    let (status, body) = http_login(server, username, password);
    assert_eq!(status, 200, "{body}");
    body["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_owned()
}

/// `bao token renew` of `token` (as root): the CLI's output, whatever its status.
fn renew(server: &OpenBao, token: &str) -> Output {
    server.cli(&["token", "renew", "-format=json", token])
}

#[test]
fn users_are_created_read_updated_listed_and_deleted_without_their_passwords() {
    let server = server();
    let out = server.cli_ok(&["auth", "list"]);
    assert!(out.contains("users/") && out.contains(PLUGIN), "{out}");

    // The server asks the existence check, then sends create.
    create_user(
        &server,
        "alice",
        &[
            "password=s3cret",
            "policies=ops,dev",
            "ttl=1h",
            "max_ttl=2h",
        ],
    );
    let read = server.cli_json(&["read", "auth/users/users/alice"]);
    assert_eq!(
        read["data"],
        json!({"policies": ["dev", "ops"], "ttl": 3600, "max_ttl": 7200})
    );
    let text = read.to_string();
    assert!(
        !text.contains("s3cret") && !text.contains("pbkdf2"),
        "{text}"
    );

    // An update without a password keeps it: the old one still logs in.
    create_user(&server, "alice", &["ttl=30m"]);
    let read = server.cli_json(&["read", "auth/users/users/alice"]);
    assert_eq!(read["data"]["ttl"], json!(1800));
    assert_eq!(read["data"]["policies"], json!(["dev", "ops"]));
    login_token(&server, "alice", "s3cret");

    create_user(&server, "bob", &["password=pw"]);
    let listed = server.cli_json(&["list", "auth/users/users"]);
    assert_eq!(listed, json!(["alice", "bob"]));

    let out = server.cli_ok(&["delete", "auth/users/users/bob"]);
    assert!(out.contains("Success! Data deleted (if it existed) at: auth/users/users/bob"));
    let out = server.cli(&["read", "auth/users/users/bob"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let listed = server.cli_json(&["list", "auth/users/users"]);
    assert_eq!(listed, json!(["alice"]));

    // Managing users needs a token: only `login` is unauthenticated.
    let (status, _) = server.request_as(None, "LIST", "auth/users/users", None);
    assert_eq!(status, 403);
}

#[test]
fn a_user_without_a_password_or_with_bad_fields_is_refused() {
    let server = server();
    let (status, body) = server.write("auth/users/users/carol", json!({"policies": "dev"}));
    assert_eq!(
        (status, body),
        (400, json!({"errors": ["missing password"]}))
    );

    for (field, value) in [
        ("ttl", json!("soon")),
        ("max_ttl", json!([1, 2])),
        ("policies", json!({"a": 1})),
        ("password", json!({"a": 1})),
    ] {
        let mut body = json!({"password": "pw"});
        body[field] = value;
        let (status, answer) = server.write("auth/users/users/carol", body);
        assert_eq!(status, 400, "{field}: {answer}");
        // The existence check converts the fields first, so its text comes without the
        // handler's "Field validation failed: " (as with a Go plugin).
        let error = answer["errors"][0].as_str().unwrap_or_default();
        assert!(
            error.starts_with(&format!("error converting input for field \"{field}\"")),
            "{field}: {answer}"
        );
    }
    let (status, body) = server.write(
        "auth/users/users/carol",
        json!({"password": "pw", "ttl": "2h", "max_ttl": "1h"}),
    );
    assert_eq!(
        (status, body),
        (
            400,
            json!({"errors": ["ttl cannot be greater than max_ttl"]})
        )
    );
    // Nothing was stored by any of these.
    let (status, _) = server.read("auth/users/users/carol");
    assert_eq!(status, 404);

    // A login's fields are typed too.
    let (status, answer) = server.request_as(
        None,
        "PUT",
        "auth/users/login",
        Some(json!({"username": {"a": 1}, "password": "pw"})),
    );
    let text = answer.to_string();
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Field validation failed"), "{text}");
}

#[test]
fn login_without_a_token_makes_the_users_token_and_it_renews() {
    let server = server();
    create_user(
        &server,
        "alice",
        &[
            "password=s3cret",
            "policies=dev,ops",
            "ttl=1h",
            "max_ttl=2h",
        ],
    );

    // The CLI with no token at all (an empty token, and the server's CLI home has no token
    // helper file).
    let mut cmd = server.cli_command(&[
        "write",
        "-format=json",
        "auth/users/login",
        "username=alice",
        "password=s3cret",
    ]);
    cmd.env("BAO_TOKEN", "");
    let out = cmd.output().expect("run bao");
    assert!(out.status.success(), "{}", stderr(&out));
    let login: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let auth = &login["auth"];
    let token = auth["client_token"]
        .as_str()
        .expect("client_token")
        .to_owned();
    assert_eq!(
        auth["policies"],
        json!(["default", "dev", "ops"]),
        "{login}"
    );
    assert_eq!(auth["metadata"], json!({"username": "alice"}), "{login}");
    assert_eq!(auth["lease_duration"], json!(3600), "{login}");
    assert_eq!(auth["renewable"], json!(true), "{login}");
    let entity = auth["entity_id"].as_str().expect("entity_id").to_owned();
    assert!(!entity.is_empty(), "{login}");
    // The password went in; nothing of it comes back.
    assert!(!login.to_string().contains("s3cret"));

    let looked_up = server.cli_json(&["token", "lookup", &token]);
    let data = &looked_up["data"];
    assert_eq!(
        data["policies"],
        json!(["default", "dev", "ops"]),
        "{looked_up}"
    );
    assert_eq!(data["meta"], json!({"username": "alice"}), "{looked_up}");
    assert_eq!(data["display_name"], json!("users-alice"), "{looked_up}");
    assert_eq!(data["path"], json!("auth/users/login"), "{looked_up}");
    assert_eq!(data["entity_id"], json!(entity), "{looked_up}");
    assert_eq!(data["renewable"], json!(true), "{looked_up}");
    let ttl = data["ttl"].as_u64().expect("ttl");
    assert!((3500..=3600).contains(&ttl), "{looked_up}");

    // The alias maps every login of alice to one entity.
    let again = login_token(&server, "alice", "s3cret");
    let again = server.cli_json(&["token", "lookup", &again]);
    assert_eq!(again["data"]["entity_id"], json!(entity));
    let alias = server.cli_json(&["read", &format!("identity/entity/id/{entity}")]);
    assert_eq!(
        alias["data"]["aliases"][0]["name"],
        json!("alice"),
        "{alias}"
    );

    // Renew: the user's ttl again, capped by its max_ttl (2 h from the login).
    let out = renew(&server, &token);
    assert!(out.status.success(), "{}", stderr(&out));
    let renewed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(renewed["auth"]["client_token"], json!(token), "{renewed}");
    assert_eq!(renewed["auth"]["lease_duration"], json!(3600), "{renewed}");
    assert_eq!(
        renewed["auth"]["policies"],
        json!(["default", "dev", "ops"]),
        "{renewed}"
    );
    let out = server.cli(&["token", "renew", "-format=json", "-increment=3h", &token]);
    assert!(out.status.success(), "{}", stderr(&out));
    let capped: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let capped_ttl = capped["auth"]["lease_duration"]
        .as_u64()
        .expect("lease_duration");
    assert!((7100..=7200).contains(&capped_ttl), "{capped}");

    // The token works: it reads its own lookup-self.
    let mut cmd = server.cli_command(&["token", "lookup", "-format=json"]);
    cmd.env("BAO_TOKEN", &token);
    let out = cmd.output().expect("run bao");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn renew_is_refused_once_the_user_is_deleted_or_its_password_changed() {
    let server = server();
    create_user(&server, "alice", &["password=s3cret", "ttl=1h"]);
    create_user(&server, "bob", &["password=hunter2", "ttl=1h"]);
    let alice = login_token(&server, "alice", "s3cret");
    let bob = login_token(&server, "bob", "hunter2");
    assert!(renew(&server, &alice).status.success());
    assert!(renew(&server, &bob).status.success());

    // Bob's password changes (to the same text, even): his token no longer renews.
    create_user(&server, "bob", &["password=hunter2"]);
    let out = renew(&server, &bob);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the user's password has changed since the login"),
        "{}",
        stderr(&out)
    );
    // A fresh login with the new password renews again.
    let bob = login_token(&server, "bob", "hunter2");
    assert!(renew(&server, &bob).status.success());

    server.cli_ok(&["delete", "auth/users/users/alice"]);
    let out = renew(&server, &alice);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the token's user no longer exists"),
        "{}",
        stderr(&out)
    );
    // The refusal does not revoke the token: it lives out its TTL.
    let looked_up = server.cli_json(&["token", "lookup", &alice]);
    assert_eq!(looked_up["data"]["meta"]["username"], json!("alice"));
    // And a deleted user no longer logs in.
    let (status, body) = http_login(&server, "alice", "s3cret");
    assert_eq!((status, body), (400, json!({"errors": [INVALID]})));
}

#[test]
fn a_wrong_password_and_an_unknown_user_get_the_same_answer_in_the_same_time() {
    let server = server();
    create_user(&server, "alice", &["password=s3cret"]);

    let mut wrong_password = Duration::MAX;
    let mut unknown_user = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let (status, body) = http_login(&server, "alice", "wrong");
        wrong_password = wrong_password.min(started.elapsed());
        assert_eq!((status, body), (400, json!({"errors": [INVALID]})));

        let started = Instant::now();
        let (status, body) = http_login(&server, "mallory", "s3cret");
        unknown_user = unknown_user.min(started.elapsed());
        assert_eq!((status, body), (400, json!({"errors": [INVALID]})));
    }
    // An unknown user runs the same PBKDF2 as a wrong password: not a shortcut several times
    // faster (the bound is loose, for a loaded machine).
    assert!(
        unknown_user * 2 >= wrong_password,
        "unknown user {unknown_user:?}, wrong password {wrong_password:?}"
    );

    // The CLI shows the same error.
    let mut cmd =
        server.cli_command(&["write", "auth/users/login", "username=alice", "password=x"]);
    cmd.env("BAO_TOKEN", "");
    let out = cmd.output().expect("run bao");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(INVALID), "{}", stderr(&out));
    assert!(stderr(&out).contains("Code: 400"), "{}", stderr(&out));
}
