#![allow(clippy::unwrap_used)]

use super::*;
use crate::backend;

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
    assert!(request.secret.is_none() && request.auth.is_none());
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
        ..Default::default()
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
