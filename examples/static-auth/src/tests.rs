//! The backend's handlers on the SDK's test kit: mounted in process on memory storage and a
//! static system view, and sent requests as the server sends them (the existence check picks
//! create or update, `login` is unauthenticated, renewals carry the token as the server keeps
//! it).

use std::time::Duration;

use serde_json::{Value, json};

use vault_plugin_sdk::backend::{
    Auth, Backend, BackendType, Error, ErrorKind, Operation, Request, Response,
};
use vault_plugin_sdk::testing::TestBackend;

use crate::backend::{Factory, StaticAuth};
use crate::login::INVALID_CREDENTIALS;

type Mount = TestBackend<StaticAuth>;

async fn mount() -> Mount {
    TestBackend::new(Factory)
        .await
        .expect("the factory makes a backend")
}

async fn call(backend: &Mount, operation: Operation, path: &str, body: Value) -> Option<Response> {
    backend
        .request(operation, path)
        .data(body)
        .await
        .expect("no error")
}

/// Asserts an error response (the server's 400) with exactly `message`.
fn assert_error(response: Option<Response>, message: &str) {
    let response = response.expect("a response");
    assert!(response.is_error(), "{response:?}");
    assert_eq!(response.data["error"], json!(message));
}

async fn create_alice(backend: &Mount) {
    let written = call(
        backend,
        Operation::Update,
        "users/alice",
        json!({"password": "s3cret", "policies": "ops, dev,dev", "ttl": "1h", "max_ttl": 7200}),
    )
    .await;
    assert_eq!(written, None);
}

async fn login(backend: &Mount, username: &str, password: &str) -> Option<Response> {
    backend
        .write("login")
        .data(json!({"username": username, "password": password}))
        .await
        .expect("no error")
}

async fn login_auth(backend: &Mount) -> Auth {
    let response = login(backend, "alice", "s3cret").await.expect("a response");
    assert!(!response.is_error(), "{response:?}");
    response.auth.expect("an auth")
}

/// A renewal of the login's token as the server sends it: the login path, the auth as the
/// server keeps it, no data.
async fn renew(backend: &Mount, auth: &Auth) -> Response {
    backend
        .renew_token(auth)
        .await
        .expect("no error")
        .expect("a response")
}

#[tokio::test]
async fn it_is_an_auth_method_whose_login_needs_no_token() {
    let backend = mount().await;
    assert_eq!(<StaticAuth as Backend>::KIND, BackendType::Credential);
    let special = backend.backend().special_paths();
    assert_eq!(special.unauthenticated, ["login"]);
    assert!(special.root.is_empty());
}

#[tokio::test]
async fn a_user_is_created_read_listed_and_deleted_without_its_password_showing() {
    let backend = mount().await;
    let exists = |operation| {
        backend
            .backend()
            .existence_check(Request::new(operation, "users/alice"))
    };
    assert_eq!(exists(Operation::Create).await, Ok(Some(false)));
    create_alice(&backend).await;
    assert_eq!(exists(Operation::Update).await, Ok(Some(true)));

    let read = call(&backend, Operation::Read, "users/alice", json!({})).await;
    let read = read.expect("the user");
    assert_eq!(
        Value::Object(read.data),
        json!({"policies": ["dev", "ops"], "ttl": 3600, "max_ttl": 7200})
    );
    // At rest: a hash and a salt, not the password.
    let stored = backend.stored("user/alice").await.expect("stored");
    let stored = String::from_utf8(stored).expect("JSON text");
    assert!(!stored.contains("s3cret"), "{stored}");
    assert!(stored.contains("pbkdf2-hmac-sha256"), "{stored}");

    let listed = backend.list("users").await.expect("no error");
    assert_eq!(listed.expect("a list").data["keys"], json!(["alice"]));

    assert_eq!(
        call(&backend, Operation::Delete, "users/alice", json!({})).await,
        None
    );
    assert_eq!(
        call(&backend, Operation::Read, "users/alice", json!({})).await,
        None
    );
    let listed = call(&backend, Operation::List, "users/", json!({})).await;
    assert!(listed.expect("a response").data.is_empty());
}

#[tokio::test]
async fn a_user_needs_a_password_and_sane_fields() {
    let backend = mount().await;
    let create = |body| call(&backend, Operation::Update, "users/bob", body);
    assert_error(create(json!({"policies": "dev"})).await, "missing password");
    assert_error(
        create(json!({"password": ""})).await,
        "password must not be empty",
    );
    assert_error(
        create(json!({"password": "pw", "ttl": "2h", "max_ttl": "1h"})).await,
        "ttl cannot be greater than max_ttl",
    );
    assert_error(
        create(json!({"password": "pw", "policies": ["root"]})).await,
        "a user cannot have the root policy",
    );
    // A field that does not convert is refused by the existence check, before the handler, as
    // on the server: its error alone, without "Field validation failed: ".
    let bad_type = backend
        .write("users/bob")
        .data(json!({"password": "pw", "ttl": "soon"}))
        .await;
    let Err(error) = bad_type else {
        panic!("a user error: {bad_type:?}");
    };
    assert_eq!(error.kind(), ErrorKind::User, "{error:?}");
    let message = error.message();
    assert!(
        message.starts_with("error converting input for field \"ttl\""),
        "{message}"
    );
    // The handler's own validation, without the check.
    let unchecked = backend
        .write("users/bob")
        .data(json!({"password": "pw", "ttl": "soon"}))
        .without_existence_check()
        .await
        .expect("no error")
        .expect("a response");
    let message = unchecked.data["error"].as_str().expect("text");
    assert!(message.starts_with("Field validation failed"), "{message}");
    assert!(backend.all_stored_keys().await.is_empty());
}

#[tokio::test]
async fn an_update_keeps_what_it_leaves_out() {
    let backend = mount().await;
    create_alice(&backend).await;
    let updated = call(
        &backend,
        Operation::Update,
        "users/alice",
        json!({"ttl": "30m"}),
    )
    .await;
    assert_eq!(updated, None);
    let read = call(&backend, Operation::Read, "users/alice", json!({})).await;
    assert_eq!(
        Value::Object(read.expect("the user").data),
        json!({"policies": ["dev", "ops"], "ttl": 1800, "max_ttl": 7200})
    );
    // The password too.
    login_auth(&backend).await;
}

#[tokio::test]
async fn a_login_answers_the_users_token() {
    let backend = mount().await;
    create_alice(&backend).await;
    let auth = login_auth(&backend).await;
    assert_eq!(auth.policies, ["dev", "ops"]);
    assert_eq!(auth.display_name, "alice");
    assert_eq!(
        auth.metadata.get("username").map(String::as_str),
        Some("alice")
    );
    assert_eq!(
        auth.alias.as_ref().map(|alias| alias.name.as_str()),
        Some("alice")
    );
    assert_eq!(auth.lease.ttl, Duration::from_secs(3600));
    assert_eq!(auth.lease.max_ttl, Duration::from_secs(7200));
    assert!(auth.lease.renewable);
    // What renew needs, and nothing of the password.
    let internal = Value::Object(auth.internal_data.clone()).to_string();
    assert!(!internal.contains("s3cret"), "{internal}");
    assert_eq!(auth.internal_data["username"], json!("alice"));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let backend = mount().await;
    create_alice(&backend).await;
    assert_error(login(&backend, "alice", "wrong").await, INVALID_CREDENTIALS);
    assert_error(
        login(&backend, "mallory", "s3cret").await,
        INVALID_CREDENTIALS,
    );
    assert_error(
        login(&backend, "a/../alice", "s3cret").await,
        INVALID_CREDENTIALS,
    );
    assert_error(
        login(&backend, "", "s3cret").await,
        "missing username or password",
    );
    assert_error(
        login(&backend, "alice", "").await,
        "missing username or password",
    );
}

#[tokio::test]
async fn resolve_role_after_a_login_is_unsupported() {
    let backend = mount().await;
    create_alice(&backend).await;
    let resolve = backend
        .request(Operation::ResolveRole, "login")
        .data(json!({"username": "alice", "password": "s3cret"}));
    assert_eq!(resolve.await, Err(Error::unsupported_operation()));
}

#[tokio::test]
async fn renew_echoes_the_token_with_the_users_current_ttls() {
    let backend = mount().await;
    create_alice(&backend).await;
    let auth = login_auth(&backend).await;
    assert_eq!(backend.token_ttl(&auth), Some(Duration::from_secs(3600)));
    // The token back, as the server keeps it (with the first login's time).
    let renewed = renew(&backend, &auth).await.auth.expect("an auth");
    assert!(renewed.lease.issue_time.is_some());
    assert_eq!(renewed.lease.ttl, auth.lease.ttl);
    let mut same_lease = renewed;
    same_lease.lease = auth.lease.clone();
    assert_eq!(same_lease, auth);

    let changed = json!({"ttl": 60, "max_ttl": 120});
    call(&backend, Operation::Update, "users/alice", changed).await;
    let renewed = renew(&backend, &auth).await.auth.expect("an auth");
    assert_eq!(renewed.lease.ttl, Duration::from_secs(60));
    assert_eq!(renewed.lease.max_ttl, Duration::from_secs(120));
    assert_eq!(backend.token_ttl(&auth), Some(Duration::from_secs(60)));
    assert_eq!(
        (renewed.policies, renewed.internal_data),
        (auth.policies, auth.internal_data)
    );
}

#[tokio::test]
async fn renew_is_refused_once_the_user_is_deleted_even_if_re_created() {
    let backend = mount().await;
    create_alice(&backend).await;
    let auth = login_auth(&backend).await;
    call(&backend, Operation::Delete, "users/alice", json!({})).await;
    let refused = renew(&backend, &auth).await;
    assert_error(Some(refused), "the token's user no longer exists");
    // A new user of the same name is someone else.
    create_alice(&backend).await;
    let refused = renew(&backend, &auth).await;
    assert_error(
        Some(refused),
        "the user's password has changed since the login",
    );
}

#[tokio::test]
async fn renew_is_refused_once_the_password_or_the_policies_changed() {
    let backend = mount().await;
    create_alice(&backend).await;
    let auth = login_auth(&backend).await;
    // The same password set again is a new hash all the same.
    let same = json!({"password": "s3cret"});
    call(&backend, Operation::Update, "users/alice", same).await;
    let refused = renew(&backend, &auth).await;
    assert_error(
        Some(refused),
        "the user's password has changed since the login",
    );

    let auth = login_auth(&backend).await;
    let fewer = json!({"policies": "dev"});
    call(&backend, Operation::Update, "users/alice", fewer).await;
    let refused = renew(&backend, &auth).await;
    assert_error(Some(refused), "policies have changed, not renewing");

    // An auth that is not this method's, in a renewal built by hand.
    let mut foreign = auth;
    foreign.internal_data.clear();
    let renewal = backend.request(Operation::Renew, "login").auth(foreign);
    assert_error(renewal.await.expect("no error"), "the token names no user");
}

/// Two updates of one user at once, one changing the password (hashed on another thread,
/// so its handler gives way between its read and its write) and one the TTL: the user's
/// lock makes the second read what the first wrote, so both changes are kept.
#[tokio::test]
async fn concurrent_updates_of_one_user_keep_both_changes() {
    let backend = mount().await;
    create_alice(&backend).await;
    let new_password = json!({"password": "n3w-secret"});
    let shorter_ttl = json!({"ttl": "30m"});
    tokio::join!(
        call(&backend, Operation::Update, "users/alice", new_password),
        call(&backend, Operation::Update, "users/alice", shorter_ttl),
    );
    let read = call(&backend, Operation::Read, "users/alice", json!({})).await;
    assert_eq!(
        Value::Object(read.expect("the user").data),
        json!({"policies": ["dev", "ops"], "ttl": 1800, "max_ttl": 7200})
    );
    let logged_in = login(&backend, "alice", "n3w-secret")
        .await
        .expect("a response");
    assert!(!logged_in.is_error(), "{logged_in:?}");
}
