//! The in-process kit against a backend that records what reaches it.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

use super::{PasswordPolicy, StaticSystemView, TestBackend};
use crate::backend::framework::{
    FieldData, FieldSchema, FieldType, PathSpec, RoutedBackend, Router, SecretType, WalRollback,
    put_wal,
};
use crate::backend::{
    Auth, BackendConfig, BackendFactory, Error, Operation, ReplicationState, Request, Response,
    SpecialPaths, Storage, SystemView,
};
use crate::sync::RecoveringMutex;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Keeps entries, hands out leases and tokens, and records every request it gets.
struct Recorder {
    storage: Arc<dyn Storage>,
    system_view: Arc<dyn SystemView>,
    seen: RecoveringMutex<Vec<Request>>,
}

impl Recorder {
    fn new(config: BackendConfig) -> Self {
        Self {
            storage: config.storage,
            system_view: config.system_view,
            seen: RecoveringMutex::new(Vec::new()),
        }
    }

    fn record(&self, request: &Request) {
        self.seen.lock().push(request.clone());
    }

    fn seen(&self) -> Vec<Request> {
        self.seen.lock().clone()
    }

    /// The last request of `operation` the backend got.
    fn last(&self, operation: Operation) -> Request {
        self.seen()
            .into_iter()
            .rev()
            .find(|request| request.operation == operation)
            .unwrap_or_else(|| panic!("no {operation} request reached the backend"))
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

async fn exists(
    backend: &Recorder,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<bool, Error> {
    backend.record(request);
    let key = format!("entry/{}", fields.get_string("name"));
    Ok(backend.storage.get(&key).await?.is_some())
}

async fn put_entry(
    backend: &Recorder,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(request);
    let key = format!("entry/{}", fields.get_string("name"));
    let entry = json!({"value": fields.get_string("value")});
    backend
        .storage
        .put(&key, entry.to_string().into_bytes())
        .await?;
    Ok(Some(Response::with_data(object(
        json!({"operation": request.operation.as_str()}),
    ))))
}

async fn read_entry(
    backend: &Recorder,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(request);
    let key = format!("entry/{}", fields.get_string("name"));
    let Some(bytes) = backend.storage.get(&key).await? else {
        return Ok(None);
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| Error::other(e.to_string()))?;
    Ok(Some(Response::with_data(object(value))))
}

async fn list_entries(
    backend: &Recorder,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(request);
    Ok(Some(Response::list(backend.storage.list("entry/").await?)))
}

async fn echo(
    backend: &Recorder,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(request);
    Ok(Some(Response::with_data(object(
        json!({"operation": request.operation.as_str()}),
    ))))
}

async fn refuse(_: &Recorder, _: &Request, _: &FieldData<'_>) -> Result<bool, Error> {
    Err(Error::user("the check refuses"))
}

/// A credential under a lease of the `cred` type: `ttl` and `max_ttl` in seconds, renewable
/// unless `renewable` is false, and a revoke that fails when `fail_revoke` is set.
async fn issue(
    backend: &Recorder,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(request);
    let mut internal = Map::new();
    internal.insert("user".into(), json!("u-1"));
    if fields.get_bool("fail_revoke") {
        internal.insert("fail_revoke".into(), json!(true));
    }
    let mut response = ROUTER
        .secret_type("cred")?
        .response(&json!({"password": "p-1"}), &internal)?;
    if let Some(secret) = response.secret.as_mut() {
        secret.lease.ttl = Duration::from_secs(fields.get_int("ttl").unsigned_abs());
        secret.lease.max_ttl = Duration::from_secs(fields.get_int("max_ttl").unsigned_abs());
        secret.lease.renewable = fields.get_bool("renewable");
    }
    Ok(Some(response))
}

/// Renews as Go's engines do: the request's secret back, with a TTL of a minute.
async fn renew(
    backend: &Recorder,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(request);
    let mut secret = request.secret.clone().unwrap_or_default();
    secret.lease.ttl = MINUTE;
    Ok(Some(Response {
        data: object(json!({"renewed": true})),
        secret: Some(secret),
        ..Response::default()
    }))
}

async fn revoke(
    backend: &Recorder,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(request);
    let fails = request
        .secret
        .as_ref()
        .is_some_and(|secret| secret.internal_data.contains_key("fail_revoke"));
    if fails {
        return Err(Error::other("the credential cannot be removed"));
    }
    Ok(None)
}

async fn login(
    backend: &Recorder,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(request);
    let auth = Auth {
        lease: crate::backend::LeaseOptions {
            ttl: HOUR,
            max_ttl: 2 * HOUR,
            renewable: true,
            ..Default::default()
        },
        internal_data: object(json!({"user": fields.get_string("user")})),
        display_name: fields.get_string("user"),
        policies: vec!["dev".to_owned()],
        ..Auth::default()
    };
    Ok(Some(Response {
        auth: Some(auth),
        ..Response::default()
    }))
}

async fn renew_token(
    backend: &Recorder,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(request);
    Ok(Some(Response {
        auth: request.auth.clone(),
        ..Response::default()
    }))
}

async fn password(
    backend: &Recorder,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(request);
    let password = backend
        .system_view
        .generate_password_from_policy(&fields.get_string("policy"))
        .await?;
    Ok(Some(Response::with_data(object(
        json!({"password": password}),
    ))))
}

async fn mount_facts(
    backend: &Recorder,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(request);
    let view = &backend.system_view;
    Ok(Some(Response::with_data(object(json!({
        "local": view.local_mount().await?,
        "standby": view.replication_state().await?.is_performance_standby(),
        "default_ttl": view.default_lease_ttl().await?.as_secs(),
    })))))
}

async fn initialize(backend: &Recorder) -> Result<(), Error> {
    backend.storage.put("initialized", b"yes".to_vec()).await?;
    Ok(())
}

/// Counts its runs in storage.
async fn periodic(backend: &Recorder, request: &Request) -> Result<(), Error> {
    backend.record(request);
    let runs = match backend.storage.get("periodic-runs").await? {
        Some(bytes) => String::from_utf8_lossy(&bytes).parse::<u64>().unwrap_or(0),
        None => 0,
    };
    backend
        .storage
        .put("periodic-runs", (runs + 1).to_string().into_bytes())
        .await?;
    Ok(())
}

/// Records what it rolled back under `rolled-back/<kind>`.
async fn roll_back(backend: &Recorder, _: &Request, kind: &str, data: &Value) -> Result<(), Error> {
    let key = format!("rolled-back/{kind}");
    backend
        .storage
        .put(&key, data.to_string().into_bytes())
        .await?;
    Ok(())
}

static ROUTER: LazyLock<Router<Recorder>> = LazyLock::new(|| {
    let name = || FieldSchema::new("name", FieldType::String, "The entry's name.");
    let value = || FieldSchema::new("value", FieldType::String, "The entry's value.");
    let int = |field, help| FieldSchema::new(field, FieldType::Int, help);
    Router::new(
        "Records requests.",
        vec![
            PathSpec::new("checked/{name}")
                .field(name())
                .field(value())
                .existence_check(exists)
                .operation(Operation::Create, put_entry)
                .operation(Operation::Update, put_entry)
                .operation(Operation::Read, read_entry),
            PathSpec::new("entries/").operation(Operation::List, list_entries),
            PathSpec::new("unchecked/{name}")
                .field(name())
                .operation(Operation::Update, echo),
            PathSpec::new("refusing")
                .existence_check(refuse)
                .operation(Operation::Update, echo),
            PathSpec::new("creds")
                .issues("cred")
                .field(int("ttl", "The lease's TTL in seconds."))
                .field(int("max_ttl", "The lease's max TTL in seconds."))
                .field(
                    FieldSchema::new("renewable", FieldType::Bool, "Whether it renews.")
                        .with_default(json!(true)),
                )
                .field(FieldSchema::new(
                    "fail_revoke",
                    FieldType::Bool,
                    "Whether its revoke fails.",
                ))
                .operation(Operation::Read, issue),
            PathSpec::new("login")
                .field(FieldSchema::new("user", FieldType::String, "Who."))
                .operation(Operation::Update, login),
            PathSpec::new("password/{policy}")
                .field(FieldSchema::new("policy", FieldType::String, "The policy."))
                .operation(Operation::Read, password),
            PathSpec::new("mount").operation(Operation::Read, mount_facts),
        ],
    )
    .with_secret_type(SecretType::new("cred").renew(renew).revoke(revoke))
    .with_special_paths(SpecialPaths {
        unauthenticated: vec!["login".to_owned()],
        ..SpecialPaths::default()
    })
    .with_auth_renew(renew_token)
    .with_initialize(initialize)
    .with_periodic(periodic)
    .with_wal_rollback(WalRollback::new(
        |backend: &Recorder| backend.storage.as_ref(),
        roll_back,
    ))
});

impl RoutedBackend for Recorder {
    fn router(&self) -> &Router<Self> {
        &ROUTER
    }
}

struct Factory;

impl BackendFactory for Factory {
    type Backend = Recorder;

    async fn create(&self, config: BackendConfig) -> Result<Recorder, Error> {
        Ok(Recorder::new(config))
    }
}

async fn mount() -> TestBackend<Recorder> {
    TestBackend::new(Factory).await.expect("mounted")
}

async fn mount_with(system_view: StaticSystemView) -> TestBackend<Recorder> {
    TestBackend::builder()
        .system_view(system_view)
        .build(Factory)
        .await
        .expect("mounted")
}

/// The answer's data, which must be there.
fn data(answer: Result<Option<Response>, Error>) -> Value {
    Value::Object(answer.expect("no error").expect("a response").data)
}

#[tokio::test]
async fn a_write_creates_when_the_check_says_absent_and_updates_when_present() {
    let backend = mount().await;
    let first = backend.write("checked/a").data(json!({"value": "1"})).await;
    assert_eq!(data(first), json!({"operation": "create"}));
    // The check was asked with the write's operation, as the server asks it.
    let checks: Vec<Request> = backend
        .backend()
        .seen()
        .into_iter()
        .filter(|request| request.operation == Operation::Update)
        .collect();
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0].data, object(json!({"value": "1"})));

    let second = backend.write("checked/a").field("value", "2").send().await;
    assert_eq!(data(second), json!({"operation": "update"}));
    assert_eq!(data(backend.read("checked/a").await), json!({"value": "2"}));
    assert_eq!(backend.read("checked/missing").await, Ok(None));
}

#[tokio::test]
async fn a_write_without_an_existence_check_is_an_update() {
    let backend = mount().await;
    let answer = backend.write("unchecked/x").await;
    assert_eq!(data(answer), json!({"operation": "update"}));
    // Skipping the check sends the operation as it is.
    let answer = backend
        .request(Operation::Create, "checked/b")
        .without_existence_check()
        .await;
    assert_eq!(data(answer), json!({"operation": "create"}));
    let answer = backend
        .request(Operation::Update, "checked/never-written")
        .without_existence_check()
        .await;
    assert_eq!(data(answer), json!({"operation": "update"}));
}

#[tokio::test]
async fn an_existence_check_error_is_the_answer_but_an_unknown_path_goes_on() {
    let backend = mount().await;
    let refused = backend.write("refusing").await;
    assert_eq!(refused, Err(Error::user("the check refuses")));
    assert!(
        backend
            .backend()
            .seen()
            .iter()
            .all(|request| request.path != "refusing"),
        "the handler was not called"
    );
    assert_eq!(
        backend.write("nowhere").await,
        Err(Error::unsupported_path())
    );
}

#[tokio::test]
async fn requests_carry_the_mount_point_and_a_login_is_unauthenticated() {
    let backend = TestBackend::builder()
        .mount_point("/auth/users")
        .build_with(Recorder::new)
        .await
        .expect("mounted");
    assert_eq!(backend.mount_point(), "auth/users/");
    backend
        .write("login")
        .field("user", "alice")
        .await
        .expect("a login");
    let login = backend.backend().last(Operation::Update);
    assert_eq!(login.mount_point, "auth/users/");
    assert!(login.unauthenticated);
    assert!(login.id.starts_with("test-request-"), "{}", login.id);

    backend
        .write("unchecked/x")
        .header("X-Custom", "1")
        .await
        .expect("written");
    let write = backend.backend().last(Operation::Update);
    assert!(!write.unauthenticated);
    assert_eq!(write.headers["X-Custom"], ["1"]);
    let edited = backend
        .read("checked/a")
        .unauthenticated(true)
        .with_request(|request| request.entity_id = "entity-1".to_owned());
    assert_eq!(edited.request().entity_id, "entity-1");
    edited.await.expect("read");
    let read = backend.backend().last(Operation::Read);
    assert!(read.unauthenticated);
    assert_eq!(read.entity_id, "entity-1");
}

#[tokio::test]
async fn a_list_gets_the_trailing_slash_the_server_adds() {
    let backend = mount().await;
    for name in ["b", "a"] {
        backend
            .write(&format!("checked/{name}"))
            .await
            .expect("written");
    }
    assert_eq!(
        data(backend.list("entries").await),
        json!({"keys": ["a", "b"]})
    );
    assert_eq!(backend.backend().last(Operation::List).path, "entries/");
    assert_eq!(
        data(backend.list("entries/").await),
        json!({"keys": ["a", "b"]})
    );
}

#[tokio::test]
async fn a_lease_is_renewed_with_what_the_server_sends() {
    let backend = mount().await;
    let issued = backend
        .read("creds")
        .data(json!({"ttl": 60, "max_ttl": 300}))
        .await
        .expect("no error")
        .expect("a credential");
    let secret = issued.secret.clone().expect("a lease");
    assert!(
        secret.lease_id.starts_with("test/creds/"),
        "{}",
        secret.lease_id
    );
    assert_eq!(secret.lease_id.len(), "test/creds/".len() + 24);
    // The rest of the answer is the backend's own.
    assert_eq!(secret.lease.ttl, MINUTE);
    assert_eq!(backend.lease_ttl(&secret), Some(MINUTE));

    let renewed = backend.renew(&secret).increment(2 * MINUTE).await;
    let renewed = renewed.expect("no error").expect("an answer");
    assert_eq!(
        renewed.secret.as_ref().map(|s| s.lease_id.as_str()),
        Some(secret.lease_id.as_str())
    );
    let request = backend.backend().last(Operation::Renew);
    assert_eq!(request.path, "creds");
    assert_eq!(request.mount_point, "test/");
    assert_eq!(request.data, object(json!({"password": "p-1"})));
    let sent = request.secret.expect("the lease");
    assert_eq!(sent.lease_id, "", "the server clears the id on renew");
    assert_eq!(sent.lease.increment, 2 * MINUTE);
    assert_eq!(sent.lease.ttl, MINUTE, "the granted TTL");
    assert_eq!(sent.lease.max_ttl, 5 * MINUTE);
    assert!(sent.lease.renewable);
    let issue_time = sent.lease.issue_time.expect("the issue time");
    assert!(
        SystemTime::now()
            .duration_since(issue_time)
            .expect("in the past")
            < MINUTE
    );
    assert_eq!(
        Value::Object(sent.internal_data),
        json!({"secret_type": "cred", "user": "u-1"})
    );
    // The increment wins over the backend's TTL, within the lease's max TTL.
    assert_eq!(backend.lease_ttl(&secret), Some(2 * MINUTE));

    // Renewal replaced the lease's data; the next renewal sends the new data, and the same
    // first issue time.
    let capped = backend.renew(&secret).increment(10 * HOUR).send().await;
    capped.expect("renewed");
    let request = backend.backend().last(Operation::Renew);
    assert_eq!(request.data, object(json!({"renewed": true})));
    assert_eq!(
        request.secret.and_then(|s| s.lease.issue_time),
        Some(issue_time)
    );
    let ttl = backend.lease_ttl(&secret).expect("held");
    assert!(
        ttl <= 5 * MINUTE && ttl >= 5 * MINUTE - Duration::from_secs(2),
        "{ttl:?}"
    );
}

#[tokio::test]
async fn a_revoke_sends_the_lease_id_and_the_lease_is_forgotten() {
    let backend = mount().await;
    let issued = backend
        .read("creds")
        .await
        .expect("no error")
        .expect("issued");
    let secret = issued.secret.expect("a lease");
    assert_eq!(backend.revoke(&secret).await, Ok(None));
    let request = backend.backend().last(Operation::Revoke);
    assert_eq!(request.path, "creds");
    assert_eq!(request.data, object(json!({"password": "p-1"})));
    let sent = request.secret.expect("the lease");
    assert_eq!(sent.lease_id, secret.lease_id);
    assert!(sent.lease.issue_time.is_some());
    assert_eq!(backend.lease_ttl(&secret), None);

    // Gone: a renew is refused as the server refuses it, and a second revoke never reaches
    // the backend.
    let refused = backend.renew(&secret).await;
    assert_eq!(refused, Err(Error::bad_request("lease not found")));
    let revokes = || {
        backend
            .backend()
            .seen()
            .iter()
            .filter(|request| request.operation == Operation::Revoke)
            .count()
    };
    assert_eq!(revokes(), 1);
    assert_eq!(backend.revoke(&secret).await, Ok(None));
    assert_eq!(revokes(), 1);

    // A revoke built by hand, as a retry of the server's, reaches it.
    let retry = backend
        .request(Operation::Revoke, "creds")
        .secret(secret.clone())
        .await;
    assert_eq!(retry, Ok(None));
    assert_eq!(revokes(), 2);
}

#[tokio::test]
async fn a_failed_revoke_keeps_the_lease_and_a_lease_that_does_not_renew_is_refused() {
    let backend = mount().await;
    let issued = backend
        .read("creds")
        .field("fail_revoke", true)
        .field("renewable", false)
        .await
        .expect("no error")
        .expect("issued");
    let secret = issued.secret.expect("a lease");
    let failed = backend.revoke(&secret).await;
    assert_eq!(
        failed,
        Err(Error::other("the credential cannot be removed"))
    );
    assert!(backend.lease_ttl(&secret).is_some(), "kept for a retry");

    let before = backend.backend().seen().len();
    let refused = backend.renew(&secret).await;
    assert_eq!(refused, Err(Error::bad_request("lease is not renewable")));
    assert_eq!(
        backend.backend().seen().len(),
        before,
        "the backend was not asked"
    );
}

#[tokio::test]
async fn a_lease_gets_the_mounts_default_ttl_capped_by_its_max() {
    let view = StaticSystemView::default()
        .with_default_lease_ttl(30 * MINUTE)
        .with_max_lease_ttl(HOUR);
    let backend = mount_with(view).await;
    let secret = |answer: Result<Option<Response>, Error>| {
        answer
            .expect("no error")
            .and_then(|response| response.secret)
            .expect("a lease")
    };
    let plain = secret(backend.read("creds").await);
    assert_eq!(plain.lease.ttl, Duration::ZERO, "the backend's own answer");
    assert_eq!(backend.lease_ttl(&plain), Some(30 * MINUTE));
    let long = secret(backend.read("creds").field("ttl", 7200).await);
    assert_eq!(backend.lease_ttl(&long), Some(HOUR));
}

#[tokio::test]
async fn a_login_token_renews_with_what_the_server_sends() {
    let backend = mount().await;
    let login = backend
        .write("login")
        .field("user", "alice")
        .await
        .expect("no error")
        .expect("a login");
    let auth = login.auth.expect("an auth");
    assert!(auth.client_token.starts_with("s."), "{}", auth.client_token);
    assert_eq!(auth.accessor.len(), 24);
    assert_eq!(backend.token_ttl(&auth), Some(HOUR));

    let renewed = backend
        .renew_token(&auth)
        .increment(90 * MINUTE)
        .await
        .expect("no error")
        .and_then(|response| response.auth)
        .expect("an auth");
    assert_eq!(renewed.client_token, auth.client_token);
    assert_eq!(renewed.accessor, auth.accessor);
    let request = backend.backend().last(Operation::Renew);
    assert_eq!(request.path, "login");
    assert!(request.data.is_empty());
    assert!(request.secret.is_none());
    let sent = request.auth.expect("the auth");
    assert_eq!(sent.client_token, "", "the server clears the token");
    assert_eq!(sent.lease.increment, 90 * MINUTE);
    assert_eq!(sent.lease.ttl, HOUR);
    assert!(sent.lease.issue_time.is_some());
    assert_eq!(sent.policies, ["dev"]);
    assert_eq!(sent.internal_data, object(json!({"user": "alice"})));
    assert_eq!(backend.token_ttl(&auth), Some(90 * MINUTE));

    let mut stranger = auth;
    stranger.client_token = "s.nobody".to_owned();
    let refused = backend.renew_token(&stranger).await;
    assert_eq!(refused, Err(Error::bad_request("invalid lease ID")));
}

#[tokio::test]
async fn rollback_runs_the_periodic_function_and_the_wal_by_age_or_immediately() {
    let backend = mount().await;
    put_wal(
        backend.storage().as_ref(),
        "user",
        &json!({"name": "half-made"}),
    )
    .await
    .expect("logged");
    assert_eq!(backend.rollback().await, Ok(None));
    let request = backend.backend().last(Operation::Rollback);
    assert_eq!((request.path.as_str(), request.data.len()), ("", 0));
    assert_eq!(
        backend.stored("periodic-runs").await.as_deref(),
        Some(&b"1"[..])
    );
    // Too young for a plain rollback.
    assert_eq!(backend.stored_keys("wal/").await.len(), 1);
    assert_eq!(backend.stored("rolled-back/user").await, None);

    assert_eq!(backend.rollback().immediate().await, Ok(None));
    assert_eq!(
        backend.backend().last(Operation::Rollback).data,
        object(json!({"immediate": true}))
    );
    assert_eq!(
        backend.stored("periodic-runs").await.as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(
        backend.stored_json("rolled-back/user").await,
        Some(json!({"name": "half-made"}))
    );
    assert!(backend.stored_keys("wal/").await.is_empty());
}

#[tokio::test]
async fn storage_can_be_looked_into_and_seeded() {
    let backend = mount().await;
    // The factory's backend was initialized.
    assert_eq!(
        backend.stored("initialized").await.as_deref(),
        Some(&b"yes"[..])
    );
    backend
        .write("checked/a")
        .field("value", "1")
        .await
        .expect("written");
    backend.store("entry/seeded", "{\"value\": \"2\"}").await;
    backend.store("entry/dir/deep", "{}").await;
    backend.store("raw", b"\x00\x01".to_vec()).await;

    assert_eq!(
        backend.stored_json("entry/a").await,
        Some(json!({"value": "1"}))
    );
    assert_eq!(backend.stored("raw").await, Some(vec![0, 1]));
    assert_eq!(backend.stored("nothing").await, None);
    assert_eq!(backend.stored_json("nothing").await, None);
    assert_eq!(backend.stored_keys("entry/").await, ["a", "dir/", "seeded"]);
    assert_eq!(
        backend.all_stored_keys().await,
        [
            "entry/a",
            "entry/dir/deep",
            "entry/seeded",
            "initialized",
            "raw"
        ]
    );
    // The backend reads what was seeded.
    assert_eq!(
        data(backend.read("checked/seeded").await),
        json!({"value": "2"})
    );
}

#[tokio::test]
#[should_panic(expected = "the entry at \"raw\" is not JSON")]
async fn an_entry_that_is_not_json_panics_naming_its_key() {
    let backend = mount().await;
    backend.store("raw", "not json").await;
    backend.stored_json("raw").await;
}

#[tokio::test]
async fn password_policies_answer_in_turn_by_generator_or_fail_as_the_server_does() {
    let view = StaticSystemView::default()
        .with_password_policy("digits", PasswordPolicy::fixed(["111", "222"]))
        .with_password_policy("made", PasswordPolicy::generator(|| "made-up".to_owned()));
    let backend = mount_with(view).await;
    for expected in ["111", "222", "111"] {
        let answer = backend.read("password/digits").await;
        assert_eq!(data(answer), json!({"password": expected}));
    }
    assert_eq!(
        data(backend.read("password/made").await),
        json!({"password": "made-up"})
    );
    assert_eq!(
        backend.read("password/nosuch").await,
        Err(Error::other("failed to generate password"))
    );
    // The test sees the same policies, sharing their turn.
    let policy = &backend.system_view().password_policies["digits"];
    assert_eq!(policy.generate(), "222");
    assert_eq!(format!("{policy:?}"), "PasswordPolicy::fixed(2 passwords)");
}

#[tokio::test]
async fn the_system_view_answers_what_the_builder_set() {
    let backend = mount().await;
    assert_eq!(
        data(backend.read("mount").await),
        json!({"local": false, "standby": false, "default_ttl": 768 * 3600})
    );
    let view = StaticSystemView::default()
        .with_local_mount(true)
        .with_replication_state(ReplicationState(ReplicationState::PERFORMANCE_STANDBY))
        .with_default_lease_ttl(MINUTE);
    let backend = mount_with(view).await;
    assert_eq!(
        data(backend.read("mount").await),
        json!({"local": true, "standby": true, "default_ttl": 60})
    );
}

#[tokio::test]
async fn a_second_mount_on_the_same_storage_sees_the_first_ones_entries() {
    let first = mount().await;
    first
        .write("checked/a")
        .field("value", "1")
        .await
        .expect("written");
    let second = TestBackend::builder()
        .storage(first.storage().clone())
        .build(Factory)
        .await
        .expect("mounted");
    let answer = second.write("checked/a").field("value", "2").await;
    assert_eq!(data(answer), json!({"operation": "update"}));
}

#[test]
#[should_panic(expected = "request data must be a JSON object")]
fn request_data_must_be_an_object() {
    let backend = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(mount());
    let _ = backend.write("checked/a").data(json!([1, 2]));
}
