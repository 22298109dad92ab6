#![allow(clippy::unwrap_used)]

use super::*;

use serde_json::{Map, Value, json};

use vault_plugin_sdk::backend::{
    Backend, BackendType, BoxFuture, ErrorKind, MemoryStorage, Operation, Request, Response,
    SpecialPaths, Storage, StorageError,
};
use vault_plugin_sdk::testing::TestBackend;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The mock mounted in process by the SDK's test kit, on empty memory storage.
async fn mock() -> TestBackend<MockBackend> {
    TestBackend::new(MockFactory).await.unwrap()
}

fn data(response: Response) -> Value {
    Value::Object(response.data)
}

/// The backend's own answer to an existence check, which the kit runs only inside a write.
async fn exists(
    backend: &TestBackend<MockBackend>,
    operation: Operation,
    path: &str,
) -> Option<bool> {
    backend
        .backend()
        .existence_check(Request::new(operation, path))
        .await
        .unwrap()
}

/// Storage that refuses everything, with the texts a real server sends.
struct FailingStorage;

impl Storage for FailingStorage {
    fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StorageError>> {
        Box::pin(async { Err(StorageError::new("boom")) })
    }

    fn put<'a>(&'a self, _: &'a str, _: Vec<u8>) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async { Err(StorageError::new("cannot write to readonly storage")) })
    }

    fn delete<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async { Err(StorageError::new("boom")) })
    }

    fn list<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        Box::pin(async { Err(StorageError::new("boom")) })
    }
}

/// The mock mounted on [`FailingStorage`] instead of the kit's memory storage.
async fn failing_mock() -> TestBackend<MockBackend> {
    TestBackend::builder()
        .build_with(|_| MockBackend::new(Arc::new(FailingStorage)))
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Backend-level properties
// ---------------------------------------------------------------------------------------------

#[test]
fn backend_is_a_logical_backend() {
    assert_eq!(<MockBackend as Backend>::KIND, BackendType::Logical);
}

#[tokio::test]
async fn special_is_the_only_unauthenticated_path_and_nothing_needs_root() {
    assert_eq!(
        mock().await.backend().special_paths(),
        SpecialPaths::default().with_unauthenticated(["special"])
    );
}

#[test]
fn the_mock_reports_the_go_mocks_version_unless_the_environment_overrides_it() {
    let unset = reported_version(|_| None);
    assert_eq!(unset, "v0.0.0+mock");
    // Not the crate's version: a catalog entry written for the Go mock must match.
    assert_ne!(unset, concat!("v", env!("CARGO_PKG_VERSION")));
    let empty = reported_version(|_| Some(String::new()));
    assert_eq!(empty, "v0.0.0+mock");
    let set = reported_version(|name| (name == VERSION_OVERRIDE_ENV).then(|| "v1.2.3".to_owned()));
    assert_eq!(set, "v1.2.3");
}

#[tokio::test]
async fn factory_builds_a_backend_over_the_given_storage() {
    let storage = Arc::new(MemoryStorage::new());
    storage.put("kv/foo", b"stored".to_vec()).await.unwrap();
    // The kit creates the backend through the factory, then initializes it.
    let backend = TestBackend::builder()
        .storage(storage)
        .build(MockFactory)
        .await
        .unwrap();
    let response = backend.read("kv/foo").await.unwrap().unwrap();
    assert_eq!(data(response), json!({"value": "stored", "version": 0}));
    backend.backend().cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// kv
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn kv_write_returns_the_value_and_stores_its_raw_bytes_at_the_request_path() {
    let backend = mock().await;
    for operation in [Operation::Create, Operation::Update] {
        let response = backend
            .request(operation, "kv/foo")
            .data(json!({"value": "bar"}))
            .without_existence_check()
            .await
            .unwrap()
            .unwrap();
        assert!(response.warnings.is_empty());
        assert_eq!(data(response), json!({"value": "bar"}));
        assert_eq!(backend.stored("kv/foo").await, Some(b"bar".to_vec()));
    }
    assert_eq!(backend.stored_keys("").await, ["kv/"]);
    assert_eq!(backend.stored_keys("kv/").await, ["foo"]);
}

#[tokio::test]
async fn kv_read_returns_the_value_and_version_zero_by_default() {
    let backend = mock().await;
    backend.write("kv/foo").field("value", "baz").await.unwrap();
    let response = backend.read("kv/foo").await.unwrap().unwrap();
    assert!(response.warnings.is_empty());
    assert_eq!(data(response), json!({"value": "baz", "version": 0}));
}

#[tokio::test]
async fn kv_read_echoes_the_requested_version_given_as_string_or_number() {
    let backend = mock().await;
    backend.write("kv/foo").field("value", "baz").await.unwrap();
    for version in [json!("12"), json!(12), json!(12.9)] {
        let response = backend
            .read("kv/foo")
            .field("version", version.clone())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            data(response),
            json!({"value": "baz", "version": 12}),
            "{version}"
        );
    }
}

#[tokio::test]
async fn kv_read_of_a_missing_key_answers_nothing() {
    let backend = mock().await;
    assert_eq!(backend.read("kv/missing").await, Ok(None));
    let with_version = backend.read("kv/missing").field("version", 3);
    assert_eq!(with_version.await, Ok(None));
}

#[tokio::test]
async fn kv_read_of_bytes_that_are_not_utf8_uses_replacement_characters() {
    let backend = mock().await;
    backend.store("kv/bin", [0xff, b'a']).await;
    let response = backend.read("kv/bin").await.unwrap().unwrap();
    assert_eq!(response.data["value"], json!("\u{fffd}a"));
}

#[tokio::test]
async fn kv_write_of_a_number_stores_its_text() {
    let backend = mock().await;
    let response = backend
        .write("kv/n")
        .data(json!({"value": 42}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(response), json!({"value": "42"}));
    assert_eq!(backend.stored("kv/n").await, Some(b"42".to_vec()));
}

#[tokio::test]
async fn kv_delete_answers_nothing_and_removes_the_key() {
    let backend = mock().await;
    backend.write("kv/foo").field("value", "bar").await.unwrap();
    backend.write("kv/keep").field("value", "x").await.unwrap();
    assert_eq!(backend.delete("kv/foo").await, Ok(None));
    assert_eq!(backend.stored("kv/foo").await, None);
    assert_eq!(backend.stored("kv/keep").await, Some(b"x".to_vec()));
    assert_eq!(backend.read("kv/foo").await, Ok(None));

    // Deleting what is not there is not an error either.
    assert_eq!(backend.delete("kv/foo").await, Ok(None));
}

#[tokio::test]
async fn kv_list_returns_the_sorted_keys_with_or_without_the_trailing_slash() {
    let backend = mock().await;
    backend.write("kv/zoo").field("value", "1").await.unwrap();
    backend.write("kv/foo").field("value", "2").await.unwrap();
    backend.store("kv/dir/x", b"3").await;
    backend.store("other", b"4").await;
    for path in ["kv/", "kv"] {
        // The exact path: `backend.list` would add the trailing slash the server adds.
        let response = backend
            .request(Operation::List, path)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            data(response),
            json!({"keys": ["dir/", "foo", "zoo"]}),
            "{path}"
        );
    }
}

#[tokio::test]
async fn kv_list_of_nothing_is_a_response_without_keys() {
    let backend = mock().await;
    let response = backend.list("kv/").await.unwrap().unwrap();
    assert!(response.data.is_empty(), "{response:?}");
    assert!(response.warnings.is_empty());
}

#[tokio::test]
async fn kv_keys_outside_the_generic_name_pattern_are_unsupported_paths() {
    let backend = mock().await;
    for path in [
        "kv/a/b", "kv/-a", "kv/.a", "kv/..", "kv/a-", "kv/a.", "kv//", "kv/a b",
    ] {
        for operation in [Operation::Read, Operation::Update, Operation::Delete] {
            let result = backend
                .request(operation.clone(), path)
                .data(json!({"value": "v"}))
                .without_existence_check()
                .await;
            assert_eq!(result, Err(Error::unsupported_path()), "{operation} {path}");
        }
    }
    assert!(backend.stored_keys("").await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn kv_keys_with_inner_dashes_dots_and_underscores_are_accepted() {
    let backend = mock().await;
    backend
        .write("kv/a-b.c_d")
        .field("value", "v")
        .await
        .unwrap();
    backend.write("kv/x").field("value", "w").await.unwrap();
    assert_eq!(backend.stored_keys("kv/").await, ["a-b.c_d", "x"]);
}

#[tokio::test]
async fn kv_operations_the_mock_lacks_are_unsupported() {
    let backend = mock().await;
    for (operation, path) in [
        (Operation::List, "kv/foo"),
        (Operation::Read, "kv/"),
        (Operation::Update, "kv/"),
        (Operation::Patch, "kv/foo"),
        (Operation::Scan, "kv/"),
    ] {
        let result = backend
            .request(operation.clone(), path)
            .without_existence_check()
            .await;
        assert_eq!(
            result,
            Err(Error::unsupported_operation()),
            "{operation} {path}"
        );
    }
}

#[tokio::test]
async fn kv_existence_check_is_false_before_a_write_and_true_after() {
    let backend = mock().await;
    assert_eq!(
        exists(&backend, Operation::Create, "kv/foo").await,
        Some(false)
    );
    assert_eq!(
        exists(&backend, Operation::Update, "kv/foo").await,
        Some(false)
    );
    backend.write("kv/foo").field("value", "").await.unwrap();
    assert_eq!(
        exists(&backend, Operation::Create, "kv/foo").await,
        Some(true)
    );
    assert_eq!(
        exists(&backend, Operation::Update, "kv/foo").await,
        Some(true)
    );
    assert_eq!(
        exists(&backend, Operation::Update, "kv/bar").await,
        Some(false)
    );
}

#[tokio::test]
async fn paths_without_an_existence_check_answer_none() {
    let backend = mock().await;
    for path in ["kv/", "kv", "internal", "errors/type"] {
        assert_eq!(
            exists(&backend, Operation::Update, path).await,
            None,
            "{path}"
        );
    }
}

#[tokio::test]
async fn existence_check_errors() {
    let backend = mock().await;
    let inner = backend.backend();
    let read = inner
        .existence_check(Request::new(Operation::Read, "kv/foo"))
        .await;
    assert_eq!(
        read,
        Err(Error::other(
            "incorrect operation type read for an existence check"
        ))
    );
    let unknown = inner
        .existence_check(Request::new(Operation::Create, "kv/a/b"))
        .await;
    assert_eq!(unknown, Err(Error::unsupported_path()));
    let mut with_version = Map::new();
    with_version.insert("version".into(), json!("abc"));
    let invalid = inner
        .existence_check(Request::new(Operation::Create, "kv/foo").with_data(with_version))
        .await;
    let Err(error) = &invalid else {
        panic!("refused: {invalid:?}");
    };
    assert_eq!(error.kind(), ErrorKind::User, "{error:?}");
    assert!(error.message().contains("\"version\""), "{error:?}");
    // A write gets the same error, before any handler runs.
    let write = backend.write("kv/foo").field("version", "abc").await;
    assert_eq!(write.unwrap_err(), invalid.unwrap_err());
    assert_eq!(backend.stored("kv/foo").await, None);
}

#[tokio::test]
async fn kv_write_with_an_unknown_parameter_stores_empty_and_warns() {
    let backend = mock().await;
    let response = backend
        .write("kv/foo")
        .data(json!({"hello": "world"}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        response.warnings,
        ["Endpoint ignored these unrecognized parameters: [hello]"]
    );
    assert_eq!(data(response), json!({"value": ""}));
    assert_eq!(backend.stored("kv/foo").await, Some(Vec::new()));
}

#[tokio::test]
async fn kv_key_in_the_body_is_replaced_by_the_path_with_a_warning() {
    let backend = mock().await;
    let response = backend
        .write("kv/foo")
        .data(json!({"key": "other", "value": "v"}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        response.warnings,
        [
            "Endpoint replaced the value of these parameters with the values captured from the \
          endpoint's path: [key]"
        ]
    );
    assert_eq!(backend.stored_keys("kv/").await, ["foo"]);
}

#[tokio::test]
async fn kv_version_that_is_not_a_number_is_a_validation_error_response() {
    let backend = mock().await;
    backend.store("kv/foo", b"bar").await;
    for operation in [Operation::Read, Operation::Update] {
        // The update as it is: through the existence check it fails there first
        // (`existence_check_errors`).
        let response = backend
            .request(operation.clone(), "kv/foo")
            .field("version", "abc")
            .without_existence_check()
            .await
            .unwrap()
            .unwrap();
        assert!(response.is_error(), "{operation}: {response:?}");
        let message = response.data["error"].as_str().unwrap();
        assert!(
            message.starts_with("Field validation failed: ") && message.contains("\"version\""),
            "{message}"
        );
    }
    assert_eq!(
        backend.stored("kv/foo").await,
        Some(b"bar".to_vec()),
        "a failed validation writes nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// internal
// ---------------------------------------------------------------------------------------------

async fn internal_value(backend: &TestBackend<MockBackend>) -> Value {
    let response = backend.read("internal").await.unwrap().unwrap();
    response.data["value"].clone()
}

#[tokio::test]
async fn internal_starts_as_bar_and_update_replaces_it_answering_nothing() {
    let backend = mock().await;
    let response = backend.read("internal").await.unwrap().unwrap();
    assert_eq!(data(response), json!({"value": "bar"}));

    let result = backend
        .write("internal")
        .data(json!({"value": "baz"}))
        .await;
    assert_eq!(result, Ok(None));
    assert_eq!(internal_value(&backend).await, json!("baz"));
    assert!(backend.stored_keys("").await.is_empty(), "kept in memory");
}

#[tokio::test]
async fn internal_has_no_create() {
    let backend = mock().await;
    // Sent as it is: without an existence check on the path, the server would send an update.
    let result = backend
        .request(Operation::Create, "internal")
        .data(json!({"value": "x"}))
        .without_existence_check()
        .await;
    assert_eq!(result, Err(Error::unsupported_operation()));
    assert_eq!(internal_value(&backend).await, json!("bar"));
}

#[tokio::test]
async fn invalidating_internal_clears_it_and_other_keys_leave_it() {
    let backend = mock().await;
    backend
        .write("internal")
        .field("value", "baz")
        .await
        .unwrap();
    backend.backend().invalidate("other").await;
    backend.backend().invalidate("kv/foo").await;
    assert_eq!(internal_value(&backend).await, json!("baz"));
    backend.backend().invalidate("internal").await;
    assert_eq!(internal_value(&backend).await, json!(""));
}

#[tokio::test]
async fn each_backend_has_its_own_internal_value() {
    let first = mock().await;
    let second = mock().await;
    first
        .write("internal")
        .data(json!({"value": "changed"}))
        .await
        .unwrap();
    assert_eq!(internal_value(&second).await, json!(DEFAULT_INTERNAL_VALUE));
}

// ---------------------------------------------------------------------------------------------
// special and raw
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn special_answers_data_foo() {
    let backend = mock().await;
    let response = backend.read("special").await.unwrap().unwrap();
    assert_eq!(data(response), json!({"data": "foo"}));
}

#[tokio::test]
async fn raw_answers_a_plain_text_http_response() {
    let backend = mock().await;
    let response = backend.read("raw").await.unwrap().unwrap();
    assert_eq!(
        data(response),
        json!({
            "http_content_type": "text/plain",
            "http_raw_body": "UmVzcG9uc2U=",
            "http_status_code": 200,
        })
    );
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

fn shut_down() -> Error {
    Error::other("connection is shut down")
}

#[tokio::test]
async fn errors_rpc_and_kill_fail_as_a_shut_down_connection() {
    let backend = mock().await;
    assert_eq!(backend.read("errors/rpc").await, Err(shut_down()));
    assert_eq!(backend.read("errors/kill").await, Err(shut_down()));
    let update = backend.write("errors/rpc").await;
    assert_eq!(update, Err(Error::unsupported_operation()));
}

#[tokio::test]
async fn errors_type_returns_the_error_of_each_wire_type() {
    let backend = mock().await;
    let test = || "test".to_owned();
    let expected = [
        Error::other(test()),
        Error::user(test()),
        Error::internal(test()),
        Error::coded(403, test()),
        Error::bad_request(test()),
        Error::unsupported_operation(),
        Error::unsupported_path(),
        Error::invalid_request(),
        Error::permission_denied(),
        Error::multi_authz_pending(),
    ];
    for (err_type, error) in expected.into_iter().enumerate() {
        for operation in [Operation::Create, Operation::Update] {
            let result = backend
                .request(operation.clone(), "errors/type")
                .field("err_type", err_type)
                .without_existence_check()
                .await;
            assert_eq!(
                result,
                Err(error.clone()),
                "{operation} err_type={err_type}"
            );
        }
    }
}

#[tokio::test]
async fn errors_type_accepts_err_type_as_a_string() {
    let backend = mock().await;
    let result = backend.write("errors/type").field("err_type", "3").await;
    assert_eq!(result, Err(Error::coded(403, "test")));
}

#[tokio::test]
async fn errors_type_without_a_case_answers_nothing() {
    let backend = mock().await;
    for err_type in [json!(10), json!(42), json!(-1), json!("4294967295")] {
        let result = backend
            .write("errors/type")
            .field("err_type", err_type.clone())
            .await;
        assert_eq!(result, Ok(None), "err_type={err_type}");
    }
}

#[tokio::test]
async fn errors_type_uses_the_low_32_bits_as_go_does() {
    // The Go mock switches on uint32(err_type).
    let backend = mock().await;
    for (err_type, error) in [
        (4_294_967_296_i64, Error::other("test")),
        (4_294_967_297_i64, Error::user("test")),
    ] {
        let result = backend
            .write("errors/type")
            .field("err_type", err_type)
            .await;
        assert_eq!(result, Err(error), "err_type={err_type}");
    }
}

#[tokio::test]
async fn errors_type_with_a_null_err_type_counts_as_zero_as_in_go() {
    let backend = mock().await;
    let result = backend
        .write("errors/type")
        .field("err_type", Value::Null)
        .await;
    assert_eq!(result, Err(Error::other("test")));
}

#[tokio::test]
async fn errors_type_without_err_type_fails_as_a_shut_down_connection() {
    let backend = mock().await;
    for operation in [Operation::Create, Operation::Update] {
        let result = backend
            .request(operation, "errors/type")
            .without_existence_check()
            .await;
        assert_eq!(result, Err(shut_down()));
    }
}

#[tokio::test]
async fn errors_type_with_an_unconvertible_err_type_is_a_validation_error_response() {
    let backend = mock().await;
    let response = backend
        .write("errors/type")
        .field("err_type", "abc")
        .await
        .unwrap()
        .unwrap();
    assert!(response.is_error());
    let message = response.data["error"].as_str().unwrap();
    assert!(
        message.starts_with("Field validation failed: ") && message.contains("\"err_type\""),
        "{message}"
    );
}

#[tokio::test]
async fn errors_type_cannot_be_read() {
    let backend = mock().await;
    assert_eq!(
        backend.read("errors/type").await,
        Err(Error::unsupported_operation())
    );
}

// ---------------------------------------------------------------------------------------------
// env
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn env_returns_the_variable_of_the_plugin_process() {
    let backend = mock().await;
    let path = std::env::var("PATH").unwrap();
    assert!(!path.is_empty());
    let response = backend.read("env/PATH").await.unwrap().unwrap();
    assert_eq!(data(response), json!({ "key": path }));
}

#[tokio::test]
async fn env_of_an_unset_variable_is_empty() {
    let backend = mock().await;
    let name = "VAULT_MOCK_PLUGIN_TEST_SURELY_UNSET_7F3A";
    let expected = std::env::var(name).unwrap_or_default();
    let response = backend.read(&format!("env/{name}")).await.unwrap().unwrap();
    assert_eq!(data(response), json!({ "key": expected }));
}

#[tokio::test]
async fn env_without_a_name_is_an_unsupported_path() {
    let backend = mock().await;
    assert_eq!(backend.read("env/").await, Err(Error::unsupported_path()));
    assert_eq!(backend.read("env").await, Err(Error::unsupported_path()));
}

// ---------------------------------------------------------------------------------------------
// Storage failures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn storage_errors_pass_through_verbatim() {
    let backend = failing_mock().await;
    for operation in [Operation::Create, Operation::Update] {
        // As it is: the existence check would fail on the storage first (the next test).
        let result = backend
            .request(operation, "kv/foo")
            .field("value", "v")
            .without_existence_check()
            .await;
        assert_eq!(
            result,
            Err(Error::other("cannot write to readonly storage"))
        );
    }
    let boom = || Err(Error::other("boom"));
    assert_eq!(backend.read("kv/foo").await, boom());
    assert_eq!(backend.delete("kv/foo").await, boom());
    assert_eq!(backend.list("kv/").await, boom());
}

#[tokio::test]
async fn storage_errors_in_the_existence_check_are_wrapped() {
    let backend = failing_mock().await;
    let wrapped = Error::other("existence check failed: boom");
    let result = backend
        .backend()
        .existence_check(Request::new(Operation::Create, "kv/foo"))
        .await;
    assert_eq!(result, Err(wrapped.clone()));
    // What a write answers then.
    let write = backend.write("kv/foo").field("value", "v").await;
    assert_eq!(write, Err(wrapped));
}

#[tokio::test]
async fn paths_that_do_not_touch_storage_work_without_it() {
    let backend = failing_mock().await;
    assert_eq!(
        data(backend.read("special").await.unwrap().unwrap()),
        json!({"data": "foo"})
    );
    assert_eq!(internal_value(&backend).await, json!("bar"));
}

// ---------------------------------------------------------------------------------------------
// Framework behaviour seen through the mock
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_paths_are_unsupported() {
    let backend = mock().await;
    for path in ["nope", "kvx", "errors", "errors/other", "specialx", "raw/"] {
        assert_eq!(
            backend.read(path).await,
            Err(Error::unsupported_path()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn rollback_answers_nothing() {
    let backend = mock().await;
    assert_eq!(backend.rollback().await, Ok(None));
}

#[tokio::test]
async fn renew_and_revoke_have_no_secret() {
    let backend = mock().await;
    // Requests the server never sends (it always attaches the lease): built by hand, without one.
    for operation in [Operation::Renew, Operation::Revoke] {
        let result = backend.request(operation, "kv/foo").await;
        assert_eq!(result, Err(Error::other("request has no secret")));
    }
}

#[tokio::test]
async fn root_help_lists_the_mock_paths_in_regex_order() {
    let backend = mock().await;
    let response = backend.request(Operation::Help, "").await.unwrap().unwrap();
    let text = response.data["help"].as_str().unwrap();
    assert!(
        text.starts_with("## DESCRIPTION\n\n\n\n## PATHS\n\n"),
        "{text}"
    );
    let patterns = [
        r"    ^env/(?P<key>\w(([\w-.]+)?\w)?)$",
        "    ^errors/kill$",
        "    ^errors/rpc$",
        "    ^errors/type$",
        "    ^internal$",
        r"    ^kv/(?P<key>\w(([\w-.]+)?\w)?)$",
        "    ^kv/?$",
        "    ^raw$",
        "    ^special$",
    ];
    let positions: Vec<usize> = patterns
        .iter()
        .map(|p| {
            text.find(&format!("{p}\n"))
                .or_else(|| text.ends_with(p).then(|| text.len() - p.len()))
                .unwrap_or_else(|| panic!("{p} missing from {text}"))
        })
        .collect();
    assert!(positions.is_sorted(), "{positions:?}\n{text}");
}

#[tokio::test]
async fn path_help_describes_the_kv_fields() {
    let backend = mock().await;
    let response = backend
        .request(Operation::Help, "kv/foo")
        .await
        .unwrap()
        .unwrap();
    let text = response.data["help"].as_str().unwrap();
    assert!(
        text.starts_with(
            "Request:        kv/foo\nMatching Route: ^kv/(?P<key>\\w(([\\w-.]+)?\\w)?)$\n\n"
        ),
        "{text}"
    );
    let key = text.find("    key (string)").unwrap();
    let value = text.find("    value (string)").unwrap();
    let version = text.find("    version (int)").unwrap();
    assert!(key < value && value < version, "{text}");
}

/// The storage keys the mock uses are the request paths themselves (a contract with existing
/// data written by the Go mock).
#[tokio::test]
async fn values_written_by_the_go_mock_are_readable() {
    let backend = mock().await;
    backend.store("kv/legacy", b"from go").await;
    let response = backend.read("kv/legacy").await.unwrap().unwrap();
    let mut expected = Map::new();
    expected.insert("value".into(), json!("from go"));
    expected.insert("version".into(), json!(0));
    assert_eq!(response.data, expected);
}

#[tokio::test]
async fn root_help_carries_an_openapi_document_of_every_path() {
    let backend = mock().await;
    let help = backend
        .request(Operation::Help, "")
        .field("requestResponsePrefix", "my-mock-plugin")
        .await
        .unwrap()
        .unwrap();
    let doc = &help.data["openapi"];
    assert_eq!(doc["openapi"], "3.0.2");
    let paths = doc["paths"].as_object().unwrap();
    let mut names: Vec<&str> = paths.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "/env/{key}",
            "/errors/kill",
            "/errors/rpc",
            "/errors/type",
            "/internal",
            "/kv",
            "/kv/{key}",
            "/raw",
            "/special",
        ]
    );
    let kv = &paths["/kv/{key}"];
    assert_eq!(kv["x-vault-createSupported"], true);
    assert_eq!(kv["parameters"][0]["name"], "key");
    assert_eq!(kv["get"]["operationId"], "my-mock-plugin-read-kv-key");
    assert_eq!(
        kv["delete"]["responses"]["204"]["description"],
        "empty body"
    );
    let body = &kv["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        body["$ref"],
        "#/components/schemas/MyMockPluginWriteKvKeyRequest"
    );
    let body = &doc["components"]["schemas"]["MyMockPluginWriteKvKeyRequest"];
    assert_eq!(body["properties"]["value"]["type"], "string");
    assert_eq!(body["properties"]["version"]["type"], "integer");
    assert!(
        body["properties"].get("key").is_none(),
        "captures are path parameters"
    );
    assert_eq!(paths["/kv"]["get"]["parameters"][0]["name"], "list");
    assert_eq!(kv["get"]["tags"], json!(["secrets"]));
    assert_eq!(paths["/special"]["x-vault-unauthenticated"], true);
    assert!(paths["/internal"].get("x-vault-unauthenticated").is_none());
}

#[tokio::test]
async fn path_help_documents_only_that_path() {
    let backend = mock().await;
    let help = backend
        .request(Operation::Help, "special")
        .await
        .unwrap()
        .unwrap();
    let paths = help.data["openapi"]["paths"].as_object().unwrap();
    assert_eq!(paths.keys().collect::<Vec<_>>(), ["/special"]);
    // No prefix asked for, none given.
    assert_eq!(paths["/special"]["get"]["operationId"], "read-special");
}
