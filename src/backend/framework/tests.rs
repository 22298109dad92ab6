#![allow(clippy::unwrap_used)]

use super::*;

use std::sync::{LazyLock, Mutex};

use serde_json::{Map, Value, json};

use crate::backend::ErrorKind;

// ---------------------------------------------------------------------------------------------
// A tiny backend for the router: `items/<name>` (one field of each type, an existence check, a
// read that answers and an update that answers nothing), `items/?` (list) and `plain` (no
// fields, no existence check).
// ---------------------------------------------------------------------------------------------

/// Records which handler ran, with what fields, so tests can tell that a handler was (or was
/// not) called even when it answers nothing.
#[derive(Default)]
struct TestBackend {
    calls: Mutex<Vec<String>>,
}

impl TestBackend {
    fn record(&self, call: impl Into<String>) {
        self.calls.lock().unwrap().push(call.into());
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

const ITEM_REGEX: &str = r"^items/(?P<name>\w(([\w-.]+)?\w)?)$";

async fn read_item(
    backend: &TestBackend,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(format!("read {}", fields.get_string("name")));
    let mut data = Map::new();
    data.insert("name".into(), Value::String(fields.get_string("name")));
    data.insert("count".into(), Value::from(fields.get_int("count")));
    data.insert(
        "enabled".into(),
        fields.get_ok("enabled").unwrap_or(Value::Null),
    );
    data.insert("label".into(), Value::String(fields.get_string("label")));
    Ok(Some(Response::with_data(data)))
}

async fn update_item(
    backend: &TestBackend,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(format!("update {}", fields.get_string("name")));
    Ok(None)
}

async fn delete_item(
    backend: &TestBackend,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record("delete");
    Err(Error::bad_request("cannot delete"))
}

async fn item_exists(
    backend: &TestBackend,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<bool, Error> {
    backend.record(format!("exists {}", fields.get_string("name")));
    Ok(fields.get_string("name") == "present")
}

async fn list_items(
    backend: &TestBackend,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record("list");
    Ok(Some(Response::list(vec!["a".into(), "b".into()])))
}

async fn read_plain(
    backend: &TestBackend,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record("plain");
    Ok(Some(Response::default()))
}

fn router() -> Router<TestBackend> {
    Router::new(
        "A backend for tests.",
        vec![
            PathSpec::new("items/{name}")
                // Declared out of order: help must sort them.
                .field(FieldSchema::new(
                    "name",
                    FieldType::String,
                    "The item's name.",
                ))
                .field(FieldSchema::new("label", FieldType::String, "A label."))
                .field(FieldSchema::new("count", FieldType::Int, "How many."))
                .field(FieldSchema::new("enabled", FieldType::Bool, ""))
                .existence_check(item_exists)
                .operation(Operation::Read, read_item)
                .operation(Operation::Update, update_item)
                .operation(Operation::Delete, delete_item)
                .help("Reads and writes an item.", "Items are kept nowhere."),
            PathSpec::new("items/?")
                .operation(Operation::List, list_items)
                .help("Lists the items.", ""),
            PathSpec::new("plain").operation(Operation::Read, read_plain),
        ],
    )
}

static TEST_ROUTER: LazyLock<Router<TestBackend>> = LazyLock::new(router);

impl RoutedBackend for TestBackend {
    fn router(&self) -> &Router<Self> {
        &TEST_ROUTER
    }
}

fn request(operation: Operation, path: &str, data: Value) -> Request {
    Request::new(operation, path).with_data(data.as_object().unwrap().clone())
}

async fn handle(request: Request) -> (Result<Option<Response>, Error>, Vec<String>) {
    let backend = TestBackend::default();
    let result = router().handle_request(&backend, &request).await;
    (result, backend.calls())
}

async fn check_existence(request: Request) -> (Result<Option<bool>, Error>, Vec<String>) {
    let backend = TestBackend::default();
    let result = router().existence_check(&backend, &request).await;
    (result, backend.calls())
}

fn help_text(response: &Response) -> &str {
    response.data["help"].as_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_path_is_unsupported_path() {
    for path in ["nope", "items/a/b", "items/-a", "plain/", "xitems/a", ""] {
        let (result, calls) = handle(Request::new(Operation::Read, path)).await;
        assert_eq!(result, Err(Error::unsupported_path()), "{path:?}");
        assert!(calls.is_empty());
    }
}

#[tokio::test]
async fn known_path_with_unknown_operation_is_unsupported_operation() {
    for operation in [
        Operation::Create,
        Operation::Patch,
        Operation::Scan,
        Operation::Other("frobnicate".into()),
    ] {
        let (result, calls) = handle(Request::new(operation.clone(), "items/foo")).await;
        assert_eq!(result, Err(Error::unsupported_operation()), "{operation}");
        assert!(calls.is_empty());
    }
    let (result, _) = handle(Request::new(Operation::Delete, "plain")).await;
    assert_eq!(result, Err(Error::unsupported_operation()));
    let (result, _) = handle(Request::new(Operation::Read, "items/")).await;
    assert_eq!(result, Err(Error::unsupported_operation()));
}

#[tokio::test]
async fn requests_reach_the_handler_of_the_matching_path_and_operation() {
    let (result, calls) = handle(Request::new(Operation::List, "items")).await;
    assert_eq!(result.unwrap().unwrap().data["keys"], json!(["a", "b"]));
    assert_eq!(calls, ["list"]);

    let (result, calls) = handle(Request::new(Operation::List, "items/")).await;
    assert!(result.unwrap().is_some());
    assert_eq!(calls, ["list"]);

    let (result, calls) = handle(Request::new(Operation::Read, "plain")).await;
    assert_eq!(result, Ok(Some(Response::default())));
    assert_eq!(calls, ["plain"]);
}

#[tokio::test]
async fn handler_errors_are_returned_unchanged() {
    let (result, calls) = handle(Request::new(Operation::Delete, "items/foo")).await;
    assert_eq!(result, Err(Error::bad_request("cannot delete")));
    assert_eq!(calls, ["delete"]);
}

#[tokio::test]
async fn fields_of_each_type_are_converted_and_captures_are_read() {
    let (result, calls) = handle(request(
        Operation::Read,
        "items/foo",
        json!({"count": "12", "enabled": "true", "label": 5}),
    ))
    .await;
    let response = result.unwrap().unwrap();
    assert_eq!(
        Value::Object(response.data),
        json!({"name": "foo", "count": 12, "enabled": true, "label": "5"})
    );
    assert!(response.warnings.is_empty());
    assert_eq!(calls, ["read foo"]);
}

// ---------------------------------------------------------------------------------------------
// Help
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn help_on_the_root_lists_every_path_regex_with_its_synopsis() {
    let (result, calls) = handle(Request::new(Operation::Help, "")).await;
    let response = result.unwrap().unwrap();
    assert!(calls.is_empty());
    assert_eq!(response.data["see_also"], Value::Null);
    // The layout of the Go framework's rootHelpTemplate: paths sorted by regex ('(' sorts
    // before '?'), each indented by 4 with its synopsis indented by 8.
    let expected = format!(
        "## DESCRIPTION\n\nA backend for tests.\n\n## PATHS\n\n\
         The following paths are supported by this backend. To view help for\n\
         any of the paths below, use the help command with any route matching\n\
         the path pattern. Note that depending on the policy of your auth token,\n\
         you may or may not be able to access certain paths.\n\n    \
         {ITEM_REGEX}\n        Reads and writes an item.\n\n    \
         ^items/?$\n        Lists the items.\n\n    \
         ^plain$"
    );
    assert_eq!(help_text(&response), expected);
}

#[tokio::test]
async fn help_on_a_path_describes_the_route_and_its_sorted_parameters() {
    let (result, calls) = handle(Request::new(Operation::Help, "items/foo")).await;
    let response = result.unwrap().unwrap();
    assert!(calls.is_empty(), "help must not run the path's handlers");
    // The layout of the Go framework's pathHelpTemplate.
    let expected = format!(
        "Request:        items/foo\n\
         Matching Route: {ITEM_REGEX}\n\
         \n\
         Reads and writes an item.\n\
         \n\
         ## PARAMETERS\n\
         \n\
         \x20   count (int)\n\
         \n\
         \x20       How many.\n\
         \n\
         \x20   enabled (bool)\n\
         \n\
         \x20       <no description>\n\
         \n\
         \x20   label (string)\n\
         \n\
         \x20       A label.\n\
         \n\
         \x20   name (string)\n\
         \n\
         \x20       The item's name.\n\
         \n\
         ## DESCRIPTION\n\
         \n\
         Items are kept nowhere."
    );
    assert_eq!(help_text(&response), expected);
    assert_eq!(response.data["see_also"], Value::Null);
}

#[tokio::test]
async fn help_on_a_path_without_fields_uses_placeholders() {
    let (result, _) = handle(Request::new(Operation::Help, "plain")).await;
    let response = result.unwrap().unwrap();
    assert_eq!(
        help_text(&response),
        "Request:        plain\nMatching Route: ^plain$\n\n<no synopsis>\n\n\n\
         ## DESCRIPTION\n\n<no description>"
    );
}

#[tokio::test]
async fn help_skips_field_validation_and_unknown_paths_are_still_404() {
    let (result, _) = handle(request(
        Operation::Help,
        "items/foo",
        json!({"count": "not a number"}),
    ))
    .await;
    let response = result.unwrap().unwrap();
    assert!(help_text(&response).starts_with("Request:        items/foo\n"));

    let (result, _) = handle(Request::new(Operation::Help, "nope")).await;
    assert_eq!(result, Err(Error::unsupported_path()));
}

// ---------------------------------------------------------------------------------------------
// Global operations
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rollback_answers_nothing_without_routing() {
    for path in ["items/foo", "nope", ""] {
        let (result, calls) = handle(Request::new(Operation::Rollback, path)).await;
        assert_eq!(result, Ok(None), "{path:?}");
        assert!(calls.is_empty());
    }
}

#[tokio::test]
async fn renew_and_revoke_without_a_secret_say_so() {
    for operation in [Operation::Renew, Operation::Revoke] {
        for path in ["items/foo", "nope"] {
            let (result, calls) = handle(Request::new(operation.clone(), path)).await;
            assert_eq!(
                result,
                Err(Error::other("request has no secret")),
                "{operation} {path}"
            );
            assert!(calls.is_empty());
        }
    }
}

#[tokio::test]
async fn renew_and_revoke_with_a_secret_say_it_is_unsupported() {
    for operation in [Operation::Renew, Operation::Revoke] {
        let mut request = Request::new(operation.clone(), "items/foo");
        request.secret = Some(crate::backend::Secret::default());
        let (result, calls) = handle(request).await;
        assert_eq!(
            result,
            Err(Error::other("secret is unsupported by this backend")),
            "{operation}"
        );
        assert!(calls.is_empty());
    }
}

/// Routed first, as in the Go SDK: the server's log shows "unsupported path" for a path no
/// pattern matches, "unsupported operation" otherwise.
#[tokio::test]
async fn resolve_path_is_an_unsupported_operation_on_a_known_path() {
    for (path, expected) in [
        ("items/foo", Error::unsupported_operation()),
        ("plain", Error::unsupported_operation()),
        ("nope", Error::unsupported_path()),
    ] {
        let (result, calls) = handle(Request::new(Operation::ResolvePath, path)).await;
        assert_eq!(result, Err(expected), "{path:?}");
        assert!(calls.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Warnings
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unrecognised_parameters_are_warned_about_sorted() {
    let (result, calls) = handle(request(
        Operation::Read,
        "items/foo",
        json!({"b": 1, "count": 3, "a": "x"}),
    ))
    .await;
    let response = result.unwrap().unwrap();
    assert_eq!(
        response.warnings,
        ["Endpoint ignored these unrecognized parameters: [a b]"]
    );
    assert_eq!(response.data["count"], json!(3));
    assert_eq!(calls, ["read foo"]);
}

#[tokio::test]
async fn unrecognised_parameters_on_a_path_without_fields_are_all_ignored() {
    let (result, _) = handle(request(Operation::Read, "plain", json!({"z": 1, "y": 2}))).await;
    assert_eq!(
        result.unwrap().unwrap().warnings,
        ["Endpoint ignored these unrecognized parameters: [y z]"]
    );
}

#[tokio::test]
async fn unrecognised_parameters_give_no_warning_when_the_handler_answers_nothing() {
    let (result, calls) = handle(request(
        Operation::Update,
        "items/foo",
        json!({"a": 1, "b": 2}),
    ))
    .await;
    assert_eq!(result, Ok(None));
    assert_eq!(calls, ["update foo"], "the handler still runs");
}

#[tokio::test]
async fn a_body_value_for_a_captured_field_is_replaced_by_the_path_value_with_a_warning() {
    let (result, _) = handle(request(
        Operation::Read,
        "items/foo",
        json!({"name": "from-body"}),
    ))
    .await;
    let response = result.unwrap().unwrap();
    assert_eq!(response.data["name"], json!("foo"));
    assert_eq!(
        response.warnings,
        [
            "Endpoint replaced the value of these parameters with the values captured from the \
          endpoint's path: [name]"
        ]
    );
}

#[tokio::test]
async fn ignored_warning_comes_before_replaced_warning() {
    let (result, _) = handle(request(
        Operation::Read,
        "items/foo",
        json!({"name": "from-body", "zzz": true}),
    ))
    .await;
    let warnings = result.unwrap().unwrap().warnings;
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(
        warnings[0],
        "Endpoint ignored these unrecognized parameters: [zzz]"
    );
    assert!(warnings[1].starts_with("Endpoint replaced the value"));
}

#[tokio::test]
async fn a_null_body_value_for_a_captured_field_is_not_reported_as_replaced() {
    let (result, _) = handle(request(Operation::Read, "items/foo", json!({"name": null}))).await;
    let response = result.unwrap().unwrap();
    assert_eq!(response.data["name"], json!("foo"));
    assert!(response.warnings.is_empty(), "{:?}", response.warnings);
}

// ---------------------------------------------------------------------------------------------
// Field validation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_field_of_the_wrong_type_is_an_error_response_naming_the_field() {
    for (body, field) in [
        (json!({"count": "abc"}), "count"),
        (json!({"enabled": "maybe"}), "enabled"),
        (json!({"label": {"nested": 1}}), "label"),
        (json!({"count": [1]}), "count"),
    ] {
        let (result, calls) = handle(request(Operation::Read, "items/foo", body.clone())).await;
        let response = result.unwrap().unwrap();
        assert!(response.is_error(), "{body}: {response:?}");
        assert!(response.warnings.is_empty());
        let message = response.data["error"].as_str().unwrap();
        assert!(
            message.starts_with("Field validation failed: "),
            "{body}: {message}"
        );
        assert!(message.contains(&format!("{field:?}")), "{body}: {message}");
        assert!(calls.is_empty(), "{body}: the handler must not run");
    }
}

#[tokio::test]
async fn wrong_type_for_an_unrecognised_parameter_is_not_validated() {
    let (result, calls) = handle(request(Operation::Read, "plain", json!({"count": "abc"}))).await;
    assert!(!result.unwrap().unwrap().is_error());
    assert_eq!(calls, ["plain"]);
}

#[tokio::test]
async fn the_full_validation_message_follows_mapstructure() {
    let (result, _) = handle(request(
        Operation::Read,
        "items/foo",
        json!({"count": "abc"}),
    ))
    .await;
    assert_eq!(
        result.unwrap().unwrap().data["error"],
        json!(
            "Field validation failed: error converting input for field \"count\": '' cannot \
             parse value as 'int': strconv.ParseInt: invalid syntax"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Existence checks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn existence_check_on_a_path_without_one_is_none() {
    let (result, calls) = check_existence(Request::new(Operation::Update, "plain")).await;
    assert_eq!(result, Ok(None));
    assert!(calls.is_empty());
    let (result, _) = check_existence(Request::new(Operation::Create, "items/")).await;
    assert_eq!(result, Ok(None));
}

#[tokio::test]
async fn existence_check_answers_what_the_check_says() {
    for (operation, path, expected) in [
        (Operation::Create, "items/present", true),
        (Operation::Update, "items/present", true),
        (Operation::Create, "items/absent", false),
        (Operation::Update, "items/absent", false),
    ] {
        let (result, calls) = check_existence(Request::new(operation.clone(), path)).await;
        assert_eq!(result, Ok(Some(expected)), "{operation} {path}");
        assert_eq!(calls.len(), 1);
        assert!(calls[0].starts_with("exists "), "{calls:?}");
    }
}

#[tokio::test]
async fn existence_check_gives_the_check_the_captured_fields_over_the_body() {
    let (result, calls) = check_existence(request(
        Operation::Update,
        "items/absent",
        json!({"name": "present", "unknown": 1}),
    ))
    .await;
    assert_eq!(result, Ok(Some(false)));
    assert_eq!(calls, ["exists absent"]);
}

#[tokio::test]
async fn existence_check_refuses_operations_other_than_create_and_update() {
    let (result, calls) = check_existence(Request::new(Operation::Read, "items/foo")).await;
    assert_eq!(
        result,
        Err(Error::other(
            "incorrect operation type read for an existence check"
        ))
    );
    assert!(calls.is_empty());

    let (result, _) = check_existence(Request::new(Operation::Delete, "nope")).await;
    assert_eq!(
        result,
        Err(Error::other(
            "incorrect operation type delete for an existence check"
        ))
    );
}

#[tokio::test]
async fn existence_check_on_an_unknown_path_is_unsupported_path() {
    let (result, _) = check_existence(Request::new(Operation::Create, "nope")).await;
    assert_eq!(result, Err(Error::unsupported_path()));
}

#[tokio::test]
async fn existence_check_with_an_invalid_field_is_a_user_error() {
    let (result, calls) = check_existence(request(
        Operation::Update,
        "items/foo",
        json!({"count": "abc"}),
    ))
    .await;
    match result {
        Err(error) if error.kind() == ErrorKind::User => assert!(
            error
                .message()
                .starts_with("error converting input for field \"count\": "),
            "{error}"
        ),
        other => panic!("expected a user error, got {other:?}"),
    }
    assert!(calls.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The global operations: renew and revoke dispatched by secret type, token renewal, and
// rollback (periodic function, then the write-ahead log).
// ---------------------------------------------------------------------------------------------

/// A backend with one secret type (`token`, renewable and revocable), token renewal, a
/// periodic function and a WAL, recording every call; `fail` makes its handlers fail.
#[derive(Default)]
struct LeaseBackend {
    calls: Mutex<Vec<String>>,
    storage: crate::backend::MemoryStorage,
    fail: bool,
}

impl LeaseBackend {
    fn record(&self, call: String) -> Result<(), Error> {
        self.calls.lock().unwrap().push(call);
        if self.fail {
            Err(Error::other("handler failed"))
        } else {
            Ok(())
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

async fn renew_token(
    backend: &LeaseBackend,
    request: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(format!("renew {}", fields.get_string("user")))?;
    let mut secret = request.secret.clone().unwrap();
    secret.lease.ttl = Duration::from_secs(60);
    Ok(Some(Response {
        secret: Some(secret),
        ..Response::default()
    }))
}

async fn revoke_token(
    backend: &LeaseBackend,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let internal = &request.secret.as_ref().unwrap().internal_data;
    backend.record(format!("revoke {}", internal["user"]))?;
    Ok(None)
}

async fn renew_login(
    backend: &LeaseBackend,
    request: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    backend.record(format!("auth renew {}", request.path))?;
    Ok(Some(Response {
        auth: request.auth.clone(),
        ..Response::default()
    }))
}

async fn periodic(backend: &LeaseBackend, _: &Request) -> Result<(), Error> {
    backend.record("periodic".into())
}

async fn roll_back(
    backend: &LeaseBackend,
    _: &Request,
    kind: &str,
    data: &Value,
) -> Result<(), Error> {
    backend.record(format!("wal {kind} {data}"))
}

async fn initialize(backend: &LeaseBackend) -> Result<(), Error> {
    backend.record("initialize".into())
}

async fn invalidate(backend: &LeaseBackend, key: &str) {
    let _ = backend.record(format!("invalidate {key}"));
}

async fn clean(backend: &LeaseBackend) {
    let _ = backend.record("clean".into());
}

fn storage_of(backend: &LeaseBackend) -> &dyn Storage {
    &backend.storage
}

static LEASE_ROUTER: LazyLock<Router<LeaseBackend>> = LazyLock::new(|| {
    lease_router(true)
        .with_initialize(initialize)
        .with_invalidate(invalidate)
        .with_clean(clean)
});

impl RoutedBackend for LeaseBackend {
    fn router(&self) -> &Router<Self> {
        &LEASE_ROUTER
    }
}

fn lease_router(with_globals: bool) -> Router<LeaseBackend> {
    let router = Router::new("", Vec::new()).with_secret_type(
        SecretType::new("token")
            .field(FieldSchema::new("user", FieldType::String, ""))
            .default_duration(Duration::from_secs(30))
            .renew(renew_token)
            .revoke(revoke_token),
    );
    let router = router.with_secret_type(SecretType::new("fixed"));
    if !with_globals {
        return router;
    }
    router
        .with_auth_renew(renew_login)
        .with_periodic(periodic)
        .with_wal_rollback(
            WalRollback::new(storage_of, roll_back).min_age(Duration::from_secs(3600)),
        )
}

fn lease_request(operation: Operation, secret_type: Option<Value>) -> Request {
    let mut internal = Map::new();
    internal.insert("user".into(), json!("alice"));
    if let Some(kind) = secret_type {
        internal.insert(SECRET_TYPE_KEY.into(), kind);
    }
    let mut request = Request::new(operation, "creds/web");
    request.data = json!({"user": "alice", "other": 1})
        .as_object()
        .unwrap()
        .clone();
    request.secret = Some(Secret::new(Duration::from_secs(30), internal));
    request
}

#[test]
fn a_secret_type_response_names_its_type_and_is_renewable_with_a_renew_handler() {
    let router = lease_router(false);
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Internal {
        user: String,
    }
    let response = router
        .secret_type("token")
        .unwrap()
        .response(&json!({"password": "p"}), &json!({"user": "alice"}))
        .unwrap();
    let secret = response.secret.clone().unwrap();
    assert_eq!(secret.internal_data["secret_type"], json!("token"));
    assert_eq!(secret.internal_data["user"], json!("alice"));
    assert_eq!(
        secret.internal::<Internal>().unwrap(),
        Internal {
            user: "alice".into()
        }
    );
    assert_eq!(secret.lease.ttl, Duration::from_secs(30));
    assert!(secret.lease.renewable);
    assert_eq!(response.data["password"], json!("p"));
    let fixed = router
        .secret_type("fixed")
        .unwrap()
        .response(&json!({}), &json!({}))
        .unwrap();
    assert!(!fixed.secret.unwrap().lease.renewable);
    // Neither may be anything but an object, and the error quotes no value.
    let error = router
        .secret_type("fixed")
        .unwrap()
        .response(&json!({}), &json!(["s3cret"]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "a lease's internal data must be a JSON object, not an array"
    );
    let error = secret_of(&json!({"user": 7}))
        .internal::<Internal>()
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "the lease's internal data does not decode: JSON of another shape"
    );
}

fn secret_of(internal: &serde_json::Value) -> crate::backend::Secret {
    crate::backend::Secret::new(Duration::ZERO, internal.as_object().unwrap().clone())
}

#[tokio::test]
async fn renew_and_revoke_reach_the_handlers_of_the_leases_secret_type() {
    let router = lease_router(true);
    let backend = LeaseBackend::default();
    let renewed = router
        .handle_request(
            &backend,
            &lease_request(Operation::Renew, Some(json!("token"))),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.secret.unwrap().lease.ttl, Duration::from_secs(60));
    let revoked = router
        .handle_request(
            &backend,
            &lease_request(Operation::Revoke, Some(json!("token"))),
        )
        .await
        .unwrap();
    assert_eq!(revoked, None);
    // The renew handler read the lease's data through the secret type's schema.
    assert_eq!(backend.calls(), ["renew alice", "revoke \"alice\""]);
}

#[tokio::test]
async fn a_lease_without_a_known_secret_type_is_unsupported() {
    let router = lease_router(true);
    let backend = LeaseBackend::default();
    for secret_type in [None, Some(json!(7)), Some(json!("nobody"))] {
        for operation in [Operation::Renew, Operation::Revoke] {
            let result = router
                .handle_request(
                    &backend,
                    &lease_request(operation.clone(), secret_type.clone()),
                )
                .await;
            assert_eq!(
                result,
                Err(Error::other("secret is unsupported by this backend")),
                "{operation} {secret_type:?}"
            );
        }
    }
    // A type without handlers: unsupported operation, which the server treats as final.
    for operation in [Operation::Renew, Operation::Revoke] {
        let result = router
            .handle_request(&backend, &lease_request(operation, Some(json!("fixed"))))
            .await;
        assert_eq!(result, Err(Error::unsupported_operation()));
    }
    assert!(backend.calls().is_empty());
}

#[tokio::test]
async fn token_renewal_goes_to_the_auth_renew_handler_or_is_refused() {
    let mut request = Request::new(Operation::Renew, "login");
    request.auth = Some(crate::backend::Auth {
        policies: vec!["dev".into()],
        ..Default::default()
    });
    let backend = LeaseBackend::default();
    let renewed = lease_router(true)
        .handle_request(&backend, &request)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.auth.unwrap().policies, ["dev"]);
    assert_eq!(backend.calls(), ["auth renew login"]);

    let refused = lease_router(false)
        .handle_request(&backend, &request)
        .await
        .unwrap()
        .unwrap();
    assert!(refused.is_error());
    assert_eq!(
        refused.data["error"],
        json!("this auth type doesn't support renew")
    );
}

#[tokio::test]
async fn rollback_runs_the_periodic_function_then_rolls_back_old_wal_entries() {
    let router = lease_router(true);
    let backend = LeaseBackend::default();
    let old = SystemTime::now() - Duration::from_secs(7200);
    let old_id = wal::put_wal_at(&backend.storage, "user", &json!("old"), old)
        .await
        .unwrap();
    let young_id = wal::put_wal(&backend.storage, "user", &json!("young"))
        .await
        .unwrap();

    let rollback = Request::new(Operation::Rollback, "");
    assert_eq!(router.handle_request(&backend, &rollback).await, Ok(None));
    assert_eq!(backend.calls(), ["periodic", "wal user \"old\""]);
    // The rolled-back entry is gone; the young one waits for its operation to finish.
    assert_eq!(
        wal::list_wal(&backend.storage).await.unwrap(),
        std::slice::from_ref(&young_id)
    );
    assert_ne!(old_id, young_id);

    // `immediate` rolls back everything.
    let mut immediate = rollback.clone();
    immediate.data.insert("immediate".into(), json!(true));
    assert_eq!(router.handle_request(&backend, &immediate).await, Ok(None));
    assert!(wal::list_wal(&backend.storage).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_rollback_keeps_the_entry_and_reports_both_failures() {
    let router = lease_router(true);
    let backend = LeaseBackend {
        fail: true,
        ..LeaseBackend::default()
    };
    wal::put_wal(&backend.storage, "user", &json!("x"))
        .await
        .unwrap();
    let mut rollback = Request::new(Operation::Rollback, "");
    rollback.data.insert("immediate".into(), json!(""));
    let Err(error) = router.handle_request(&backend, &rollback).await else {
        panic!("the failures must be reported");
    };
    assert_eq!(error.kind(), ErrorKind::Other);
    let message = error.message();
    assert!(message.starts_with("2 errors occurred"), "{message}");
    assert!(message.contains("handler failed"), "{message}");
    assert_eq!(wal::list_wal(&backend.storage).await.unwrap().len(), 1);
    assert_eq!(backend.calls(), ["periodic", "wal user \"x\""]);
}

#[tokio::test]
async fn a_single_rollback_failure_is_its_text_with_the_failure_as_the_cause() {
    let router = lease_router(true);
    let backend = LeaseBackend {
        fail: true,
        ..LeaseBackend::default()
    };
    let rollback = Request::new(Operation::Rollback, "");
    let Err(error) = router.handle_request(&backend, &rollback).await else {
        panic!("the failure must be reported");
    };
    assert_eq!(error, Error::other("handler failed"));
    let cause = std::error::Error::source(&error).and_then(|e| e.downcast_ref::<Error>());
    assert_eq!(cause, Some(&Error::other("handler failed")));
}

#[test]
fn a_ttl_error_is_a_plain_error_with_the_ttl_error_as_its_cause() {
    let error = Error::from(TtlError::PastMaxTtl);
    assert_eq!(error, Error::other("past the max TTL, cannot renew"));
    let cause = std::error::Error::source(&error).and_then(|e| e.downcast_ref::<TtlError>());
    assert_eq!(cause, Some(&TtlError::PastMaxTtl));
}

#[tokio::test]
async fn rollback_without_periodic_work_or_a_wal_is_a_nil_response() {
    let backend = LeaseBackend::default();
    let rollback = Request::new(Operation::Rollback, "");
    assert_eq!(
        lease_router(false)
            .handle_request(&backend, &rollback)
            .await,
        Ok(None)
    );
    assert!(backend.calls().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The hooks: plain `async fn`s
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn initialize_invalidate_and_clean_run_the_routers_async_fns() {
    let backend = LeaseBackend::default();
    backend.initialize().await.unwrap();
    backend.invalidate("some/key").await;
    backend.cleanup().await;
    assert_eq!(
        backend.calls(),
        ["initialize", "invalidate some/key", "clean"]
    );
    // Without hooks they do nothing.
    let plain = TestBackend::default();
    plain.initialize().await.unwrap();
    plain.invalidate("k").await;
    plain.cleanup().await;
    assert!(plain.calls().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The backend's kind
// ---------------------------------------------------------------------------------------------

/// An auth method: its OpenAPI operations are tagged `auth`.
struct AuthBackend;

static AUTH_ROUTER: LazyLock<Router<AuthBackend>> = LazyLock::new(|| {
    Router::new(
        "",
        vec![PathSpec::new("login").operation(
            Operation::Update,
            |_: &AuthBackend, _: &Request, _: &FieldData<'_>| async { Ok(None) },
        )],
    )
});

impl RoutedBackend for AuthBackend {
    const KIND: BackendType = BackendType::Credential;

    fn router(&self) -> &Router<Self> {
        &AUTH_ROUTER
    }
}

#[tokio::test]
async fn the_kind_is_the_backends_and_tags_its_openapi_operations() {
    assert_eq!(<TestBackend as Backend>::KIND, BackendType::Logical);
    assert_eq!(<AuthBackend as Backend>::KIND, BackendType::Credential);
    let help = AuthBackend
        .handle_request(Request::new(Operation::Help, ""))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        help.data["openapi"]["paths"]["/login"]["post"]["tags"],
        json!(["auth"])
    );
    let (result, _) = handle(Request::new(Operation::Help, "")).await;
    assert_eq!(
        result.unwrap().unwrap().data["openapi"]["paths"]["/plain"]["get"]["tags"],
        json!(["secrets"])
    );
}

// ---------------------------------------------------------------------------------------------
// Checks: programming errors refused loudly, early
// ---------------------------------------------------------------------------------------------

async fn nothing(
    _: &TestBackend,
    _: &Request,
    _: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    Ok(None)
}

#[test]
#[should_panic(
    expected = "path pattern \"items/{name}\" captures \"name\" but declares no field \
                           of that name"
)]
fn a_capture_without_a_field_is_refused_when_the_router_is_built() {
    let _ = Router::new(
        "",
        vec![PathSpec::<TestBackend>::new("items/{name}").operation(Operation::Read, nothing)],
    );
}

#[test]
#[should_panic(
    expected = "path pattern \"files/{*path}\" captures \"path\" but declares no \
                           field of that name"
)]
fn a_rest_capture_without_a_field_is_refused_when_the_router_is_built() {
    let _ = Router::new(
        "",
        vec![PathSpec::<TestBackend>::new("files/{*path}").operation(Operation::Read, nothing)],
    );
}

#[test]
#[should_panic(expected = "path pattern \"plain\" registers the operation read twice")]
fn an_operation_registered_twice_on_a_path_is_refused_when_the_router_is_built() {
    let _ = Router::new(
        "",
        vec![
            PathSpec::<TestBackend>::new("plain")
                .operation(Operation::Read, nothing)
                .operation(Operation::List, nothing)
                .operation(Operation::Read, nothing),
        ],
    );
}

#[test]
#[should_panic(expected = "path pattern \"a//b\" is refused: it has an empty segment")]
fn a_malformed_pattern_is_refused_when_the_router_is_built() {
    let _ = Router::new(
        "",
        vec![PathSpec::<TestBackend>::new("a//b").operation(Operation::Read, nothing)],
    );
}

#[test]
#[should_panic(expected = "secret type \"token\" is declared twice")]
fn a_secret_type_declared_twice_is_refused() {
    let _ = Router::<TestBackend>::new("", Vec::new())
        .with_secret_type(SecretType::new("token"))
        .with_secret_type(SecretType::new("token"));
}

fn issuing_router(declared: &'static str) -> Router<TestBackend> {
    Router::new(
        "",
        vec![
            PathSpec::new("creds/{name}")
                .field(FieldSchema::new("name", FieldType::String, ""))
                .issues("password")
                .operation(Operation::Read, nothing),
        ],
    )
    .with_secret_type(SecretType::new(declared))
}

#[tokio::test]
#[should_panic(
    expected = "path pattern \"creds/{name}\" issues the secret type \"password\", \
                           which the router does not declare"
)]
async fn a_path_issuing_an_undeclared_secret_type_is_refused_at_the_first_request() {
    let router = issuing_router("token");
    // Any request will do, even to another path.
    let _ = router
        .handle_request(
            &TestBackend::default(),
            &Request::new(Operation::Read, "nope"),
        )
        .await;
}

#[test]
#[should_panic(
    expected = "issues the secret type \"password\", which the router does not \
                           declare"
)]
fn a_path_issuing_an_undeclared_secret_type_is_refused_by_secret_type_too() {
    let _ = issuing_router("token").secret_type("token");
}

#[tokio::test]
async fn a_path_issuing_a_declared_secret_type_passes_the_check() {
    let router = issuing_router("password");
    assert_eq!(router.secret_type("password").unwrap().kind, "password");
    let answer = router
        .handle_request(
            &TestBackend::default(),
            &Request::new(Operation::Read, "creds/a"),
        )
        .await;
    assert_eq!(answer, Ok(None));
}

#[test]
fn an_undeclared_secret_type_is_an_error_naming_it_not_a_panic() {
    let router = lease_router(false);
    let Err(error) = router.secret_type("nobody") else {
        panic!("no such type");
    };
    assert_eq!(
        error,
        Error::internal(
            "secret type \"nobody\" is not declared on the router (Router::with_secret_type)"
        )
    );
}

#[tokio::test]
#[should_panic(
    expected = "field \"other\" is not declared: it is not in the fields of the path \
                           \"items/{name}\""
)]
async fn a_handler_reading_an_undeclared_field_panics_at_its_first_request() {
    async fn reads_other(
        _: &TestBackend,
        _: &Request,
        fields: &FieldData<'_>,
    ) -> Result<Option<Response>, Error> {
        Ok(Some(Response::list(vec![fields.get_string("other")])))
    }
    let router = Router::new(
        "",
        vec![
            PathSpec::new("items/{name}")
                .field(FieldSchema::new("name", FieldType::String, ""))
                .operation(Operation::Read, reads_other),
        ],
    );
    let _ = router
        .handle_request(
            &TestBackend::default(),
            &Request::new(Operation::Read, "items/a"),
        )
        .await;
}

// ---------------------------------------------------------------------------------------------
// The new pattern forms through the router
// ---------------------------------------------------------------------------------------------

async fn echo_name(
    _: &TestBackend,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let mut data = Map::new();
    data.insert("name".into(), json!(fields.get_string("name")));
    data.insert("present".into(), json!(fields.is_present("name")));
    Ok(Some(Response::with_data(data)))
}

fn optional_router() -> Router<TestBackend> {
    Router::new(
        "",
        vec![
            PathSpec::new("config[/{name}]")
                .field(FieldSchema::new(
                    "name",
                    FieldType::String,
                    "The config's name.",
                ))
                .field(FieldSchema::new("value", FieldType::String, "A value."))
                .operation(Operation::Read, echo_name)
                .operation(Operation::Update, echo_name),
            PathSpec::new("files/{*name}")
                .field(FieldSchema::new("name", FieldType::String, ""))
                .operation(Operation::Read, echo_name),
        ],
    )
}

#[tokio::test]
async fn an_absent_optional_group_captures_empty_so_the_body_cannot_stand_in_for_the_path() {
    let router = optional_router();
    let backend = TestBackend::default();
    let read = |path: &str, body: Value| request(Operation::Read, path, body);
    let answer = router
        .handle_request(&backend, &read("config/db", json!({})))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Value::Object(answer.data),
        json!({"name": "db", "present": true})
    );
    let answer = router
        .handle_request(&backend, &read("config", json!({"name": "db"})))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Value::Object(answer.data),
        json!({"name": "", "present": true})
    );
    assert_eq!(
        answer.warnings,
        [
            "Endpoint replaced the value of these parameters with the values captured from the \
             endpoint's path: [name]"
        ]
    );
    let answer = router
        .handle_request(&backend, &read("files/a/b/c", json!({})))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.data["name"], json!("a/b/c"));
}

#[tokio::test]
async fn an_optional_group_is_documented_as_each_path_it_expands_to() {
    let router = optional_router();
    let help = router
        .handle_request(&TestBackend::default(), &Request::new(Operation::Help, ""))
        .await
        .unwrap()
        .unwrap();
    let paths = help.data["openapi"]["paths"].as_object().unwrap();
    let names: Vec<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(names, ["/config", "/config/{name}", "/files/{name}"]);
    assert!(paths["/config"].get("parameters").is_none());
    assert_eq!(
        paths["/config/{name}"]["parameters"][0]["name"],
        json!("name")
    );
    assert_eq!(
        paths["/files/{name}"]["parameters"][0]["name"],
        json!("name")
    );
    // The captured field is never a body property, in either form.
    let schemas = help.data["openapi"]["components"]["schemas"]
        .as_object()
        .unwrap();
    for schema in schemas.values() {
        assert!(schema["properties"].get("name").is_none(), "{schema}");
        assert!(schema["properties"].get("value").is_some(), "{schema}");
    }
    assert!(
        help.data["help"]
            .as_str()
            .unwrap()
            .contains(r"^config(/(?P<name>\w(([\w-.]+)?\w)?))?$")
    );
}

// ---------------------------------------------------------------------------------------------
// A catch-all: last, unpublished
// ---------------------------------------------------------------------------------------------

struct CatchAll;

static CATCH_ALL_ROUTER: LazyLock<Router<CatchAll>> = LazyLock::new(|| {
    Router::new(
        "",
        vec![
            PathSpec::new("data/{+path}")
                .field(FieldSchema::new("path", FieldType::String, "the key"))
                .operation(
                    Operation::Read,
                    |_: &CatchAll, _: &Request, fields: &FieldData<'_>| {
                        let key = fields.get_string("path");
                        async move { Ok(Some(Response::with_data(json_object("key", key)))) }
                    },
                ),
            PathSpec::new("{*}").unpublished().operation(
                Operation::Read,
                |_: &CatchAll, request: &Request, _: &FieldData<'_>| {
                    let path = request.path.clone();
                    async move { Ok(Some(Response::with_data(json_object("caught", path)))) }
                },
            ),
        ],
    )
});

impl RoutedBackend for CatchAll {
    fn router(&self) -> &Router<Self> {
        &CATCH_ALL_ROUTER
    }
}

fn json_object(key: &str, value: String) -> serde_json::Map<String, serde_json::Value> {
    let mut map = serde_json::Map::new();
    map.insert(key.to_owned(), serde_json::Value::String(value));
    map
}

#[tokio::test]
async fn a_catch_all_answers_what_no_earlier_path_serves_and_is_not_published() {
    let read = |path: &str| CatchAll.handle_request(Request::new(Operation::Read, path));
    assert_eq!(read("data/a/b").await.unwrap().unwrap().data["key"], "a/b");
    for path in ["data/", "data/a/", "", "other"] {
        assert_eq!(
            read(path).await.unwrap().unwrap().data["caught"],
            path,
            "{path:?}"
        );
    }
    let help = CatchAll
        .handle_request(Request::new(Operation::Help, ""))
        .await
        .unwrap()
        .unwrap();
    let paths = help.data["openapi"]["paths"].as_object().unwrap();
    assert_eq!(paths.keys().collect::<Vec<_>>(), ["/data/{path}"]);
    assert!(help.data["help"].as_str().unwrap().contains("^.*$"));
}
