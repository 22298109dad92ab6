//! The backend's handlers, through the SDK's `Backend` trait as the machinery calls them, on the
//! SDK's in-memory storage and static system view.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use vault_plugin_sdk::backend::{
    Auth, Backend, BackendConfig, BackendFactory, BackendType, Error, MemoryStorage, Operation,
    Request, Response, StaticSystemView, Storage,
};

use crate::backend::{Factory, StaticAuth};
use crate::login::INVALID_CREDENTIALS;

async fn mount() -> (StaticAuth, Arc<MemoryStorage>) {
    let storage = Arc::new(MemoryStorage::new());
    let backend = Factory
        .create(BackendConfig {
            config: HashMap::new(),
            backend_uuid: "uuid".to_owned(),
            storage: storage.clone(),
            system_view: Arc::new(StaticSystemView::default()),
        })
        .await
        .expect("the factory makes a backend");
    (backend, storage)
}

fn request(operation: Operation, path: &str, body: Value) -> Request {
    let data = body.as_object().expect("a JSON object").clone();
    Request::new(operation, path).with_data(data)
}

async fn call(
    backend: &StaticAuth,
    operation: Operation,
    path: &str,
    body: Value,
) -> Option<Response> {
    backend
        .handle_request(request(operation, path, body))
        .await
        .expect("no error")
}

/// Asserts an error response (the server's 400) with exactly `message`.
fn assert_error(response: Option<Response>, message: &str) {
    let response = response.expect("a response");
    assert!(response.is_error(), "{response:?}");
    assert_eq!(response.data["error"], json!(message));
}

async fn create_alice(backend: &StaticAuth) {
    let written = call(
        backend,
        Operation::Create,
        "users/alice",
        json!({"password": "s3cret", "policies": "ops, dev,dev", "ttl": "1h", "max_ttl": 7200}),
    )
    .await;
    assert_eq!(written, None);
}

async fn login(backend: &StaticAuth, username: &str, password: &str) -> Option<Response> {
    let mut login = request(
        Operation::Update,
        "login",
        json!({"username": username, "password": password}),
    );
    login.unauthenticated = true;
    backend.handle_request(login).await.expect("no error")
}

async fn login_auth(backend: &StaticAuth) -> Auth {
    let response = login(backend, "alice", "s3cret").await.expect("a response");
    assert!(!response.is_error(), "{response:?}");
    response.auth.expect("an auth")
}

/// A renewal as the server sends it: the login path, the stored auth, no data.
async fn renew(backend: &StaticAuth, auth: &Auth) -> Response {
    let mut renewal = Request::new(Operation::Renew, "login");
    renewal.auth = Some(auth.clone());
    backend
        .handle_request(renewal)
        .await
        .expect("no error")
        .expect("a response")
}

#[tokio::test]
async fn it_is_an_auth_method_whose_login_needs_no_token() {
    let (backend, _) = mount().await;
    assert_eq!(backend.backend_type(), BackendType::Credential);
    assert_eq!(backend.special_paths().unauthenticated, ["login"]);
    assert!(backend.special_paths().root.is_empty());
}

#[tokio::test]
async fn a_user_is_created_read_listed_and_deleted_without_its_password_showing() {
    let (backend, storage) = mount().await;
    let exists = |operation| backend.existence_check(Request::new(operation, "users/alice"));
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
    let stored = storage
        .get("user/alice")
        .await
        .expect("get")
        .expect("stored");
    let stored = String::from_utf8(stored).expect("JSON text");
    assert!(!stored.contains("s3cret"), "{stored}");
    assert!(stored.contains("pbkdf2-hmac-sha256"), "{stored}");

    let listed = call(&backend, Operation::List, "users/", json!({})).await;
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
    let (backend, storage) = mount().await;
    let create = |body| call(&backend, Operation::Create, "users/bob", body);
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
    let bad_type = create(json!({"password": "pw", "ttl": "soon"})).await;
    let bad_type = bad_type.expect("a response");
    assert!(bad_type.is_error());
    let message = bad_type.data["error"].as_str().expect("text");
    assert!(message.starts_with("Field validation failed"), "{message}");
    assert!(storage.list("user/").await.expect("list").is_empty());
}

#[tokio::test]
async fn an_update_keeps_what_it_leaves_out() {
    let (backend, _) = mount().await;
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
    let (backend, _) = mount().await;
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
    let (backend, _) = mount().await;
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
    let (backend, _) = mount().await;
    create_alice(&backend).await;
    let resolve = request(
        Operation::ResolveRole,
        "login",
        json!({"username": "alice", "password": "s3cret"}),
    );
    assert_eq!(
        backend.handle_request(resolve).await,
        Err(Error::UnsupportedOperation)
    );
}

#[tokio::test]
async fn renew_echoes_the_token_with_the_users_current_ttls() {
    let (backend, _) = mount().await;
    create_alice(&backend).await;
    let auth = login_auth(&backend).await;
    let renewed = renew(&backend, &auth).await;
    assert_eq!(renewed.auth.as_ref(), Some(&auth));

    let changed = json!({"ttl": 60, "max_ttl": 120});
    call(&backend, Operation::Update, "users/alice", changed).await;
    let renewed = renew(&backend, &auth).await.auth.expect("an auth");
    assert_eq!(renewed.lease.ttl, Duration::from_secs(60));
    assert_eq!(renewed.lease.max_ttl, Duration::from_secs(120));
    assert_eq!(
        (renewed.policies, renewed.internal_data),
        (auth.policies, auth.internal_data)
    );
}

#[tokio::test]
async fn renew_is_refused_once_the_user_is_deleted_even_if_re_created() {
    let (backend, _) = mount().await;
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
    let (backend, _) = mount().await;
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

    // An auth that is not this method's.
    let mut foreign = auth;
    foreign.internal_data.clear();
    assert_error(
        Some(renew(&backend, &foreign).await),
        "the token names no user",
    );
}
