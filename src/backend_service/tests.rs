#![allow(clippy::unwrap_used)]

use tonic::metadata::MetadataValue;

use super::*;

fn wire_request(data: &str) -> Option<pb::Request> {
    Some(pb::Request {
        operation: "update".into(),
        path: "kv/foo".into(),
        data: data.into(),
        mount_point: "my-secrets-plugin/".into(),
        ..Default::default()
    })
}

#[test]
fn request_data_is_decoded_from_its_json_string() {
    let request = request_from_wire(wire_request(r#"{"value":"bar","n":1}"#)).unwrap();
    assert_eq!(request.operation, Operation::Update);
    assert_eq!(request.path, "kv/foo");
    assert_eq!(request.mount_point, "my-secrets-plugin/");
    assert_eq!(request.data["value"], "bar");
    assert!(!request.has_secret);
    for empty in ["", "null", " null "] {
        assert!(
            request_from_wire(wire_request(empty))
                .unwrap()
                .data
                .is_empty()
        );
    }
}

#[test]
fn request_data_that_is_not_a_json_object_is_refused_precisely() {
    for (data, needle) in [
        ("{not json", "not valid JSON"),
        ("[1,2]", "not an array"),
        ("\"text\"", "not a string"),
        ("42", "not a number"),
        ("true", "not a boolean"),
    ] {
        let error = request_from_wire(wire_request(data)).unwrap_err();
        assert!(error.contains(needle), "{data}: {error}");
    }
    assert!(request_from_wire(None).is_err());
}

#[test]
fn responses_carry_data_as_a_json_object_string() {
    let mut data = Map::new();
    data.insert("value".into(), Value::from("bar"));
    let wire = response_to_wire(backend::Response {
        data,
        warnings: vec!["careful".into()],
    });
    assert_eq!(wire.data, r#"{"value":"bar"}"#);
    assert_eq!(wire.warnings, ["careful"]);
    assert!(
        wire.secret.is_none(),
        "a secret would make the server create a lease"
    );
    assert_eq!(response_to_wire(backend::Response::default()).data, "{}");
}

#[test]
fn every_error_maps_to_its_wire_type() {
    use backend::Error as E;
    let cases = [
        (E::Other("test".into()), 0, "test", 0),
        (E::User("test".into()), 1, "test", 0),
        (E::Internal("test".into()), 2, "test", 0),
        (
            E::Coded {
                status: 403,
                message: "test".into(),
            },
            3,
            "test",
            403,
        ),
        (E::BadRequest("test".into()), 4, "test", 0),
        (E::UnsupportedOperation, 5, "unsupported operation", 0),
        (E::UnsupportedPath, 6, "unsupported path", 0),
        (E::InvalidRequest, 7, "invalid request", 0),
        (E::PermissionDenied, 8, "permission denied", 0),
        (E::MultiAuthzPending, 9, "request needs further approval", 0),
        (E::Unrecoverable, 10, "unrecoverable error", 0),
    ];
    for (error, kind, message, code) in cases {
        let wire = error_to_wire(&error);
        assert_eq!(
            (wire.err_type, wire.err_msg.as_str(), wire.err_code),
            (kind, message, code)
        );
    }
}

fn metadata(ids: &[&str]) -> MetadataMap {
    let mut map = MetadataMap::new();
    for id in ids {
        map.append(MULTIPLEX_ID_KEY, MetadataValue::try_from(*id).unwrap());
    }
    map
}

#[test]
fn the_multiplex_id_must_be_present_once_and_non_empty() {
    assert_eq!(
        multiplex_id(&metadata(&["AbCdEf0123"])).unwrap(),
        "AbCdEf0123"
    );
    let missing = multiplex_id(&metadata(&[])).unwrap_err();
    assert_eq!(missing.code(), tonic::Code::InvalidArgument);
    assert!(missing.message().contains("multiplex_id"));
    let twice = multiplex_id(&metadata(&["a", "b"])).unwrap_err();
    assert!(twice.message().contains("more than one"));
    let empty = multiplex_id(&metadata(&[""])).unwrap_err();
    assert!(empty.message().contains("empty"));
}

/// A service of the given mode with one mock backend already set up under `key`.
fn service_with_instance(mode: ServiceMode, key: &str) -> BackendService<MockFactory> {
    use crate::backend::MemoryStorage;
    use crate::backend::mock::MockBackend;

    let identity = crate::tls::Identity::generate().unwrap();
    let broker = Broker::new(crate::tls::client_config(&identity, identity.cert.clone()).unwrap());
    let service = BackendService::new(MockFactory::with_version("v1.0.0"), Arc::new(broker), mode);
    service.mounts().insert(
        key.to_owned(),
        Arc::new(MockBackend::new(Arc::new(MemoryStorage::new()))),
    );
    service
}

use crate::backend::mock::MockFactory;
use crate::proto::pb::backend_server::Backend as _;

fn read_kv() -> Request<pb::HandleRequestArgs> {
    Request::new(pb::HandleRequestArgs {
        storage_id: 0,
        request: Some(pb::Request {
            operation: "read".into(),
            path: "kv/foo".into(),
            ..Default::default()
        }),
    })
}

#[tokio::test]
async fn metadata_mode_answers_metadata_and_refuses_everything_else() {
    let mode = ServiceMode {
        multiplexed: false,
        metadata_only: true,
    };
    let service = service_with_instance(mode, SINGLE_INSTANCE);

    let kind = service.r#type(Request::new(pb::Empty {})).await.unwrap();
    assert_eq!(kind.into_inner().r#type, 1);
    let paths = service
        .special_paths(Request::new(pb::Empty {}))
        .await
        .unwrap();
    assert_eq!(
        paths.into_inner().paths.unwrap().unauthenticated,
        ["special"]
    );

    let refusals = [
        service.handle_request(read_kv()).await.err(),
        service
            .initialize(Request::new(pb::InitializeArgs {}))
            .await
            .err(),
        service
            .invalidate_key(Request::new(pb::InvalidateKeyArgs {
                key: "internal".into(),
            }))
            .await
            .err(),
        service
            .handle_existence_check(Request::new(pb::HandleExistenceCheckArgs {
                storage_id: 0,
                request: read_kv().into_inner().request,
            }))
            .await
            .err(),
    ];
    for refusal in refusals {
        let status = refusal.expect("refused in metadata mode");
        assert_eq!(status.message(), METADATA_MODE_REFUSAL);
    }
    // Cleanup still works, and finds the single instance without a multiplex_id.
    service.cleanup(Request::new(pb::Empty {})).await.unwrap();
    assert_eq!(service.mount_count(), 0);
}

#[tokio::test]
async fn a_non_multiplexed_process_ignores_the_multiplex_id() {
    let single = ServiceMode {
        multiplexed: false,
        metadata_only: false,
    };
    let service = service_with_instance(single, SINGLE_INSTANCE);
    let mut request = read_kv();
    request
        .metadata_mut()
        .insert(MULTIPLEX_ID_KEY, MetadataValue::from_static("whatever"));
    let reply = service.handle_request(request).await.unwrap().into_inner();
    // No such key: a nil response, not an error.
    assert!(reply.response.is_none() && reply.err.is_none());

    // A multiplexed process insists on the id.
    let service = service_with_instance(ServiceMode::MULTIPLEXED, "abc");
    let status = service.handle_request(read_kv()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}
