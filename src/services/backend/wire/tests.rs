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
    // No data is Go's nil map, which the server shows as `"data": null`.
    assert_eq!(response_to_wire(backend::Response::default()).data, "null");
}

#[test]
fn every_error_maps_to_its_wire_type() {
    use backend::Error as E;
    let cases = [
        (E::other("test"), 0, "test", 0),
        (E::user("test"), 1, "test", 0),
        (E::internal("test"), 2, "test", 0),
        (E::coded(403, "test"), 3, "test", 403),
        (E::bad_request("test"), 4, "test", 0),
        (E::unsupported_operation(), 5, "unsupported operation", 0),
        (E::unsupported_path(), 6, "unsupported path", 0),
        (E::invalid_request(), 7, "invalid request", 0),
        (E::permission_denied(), 8, "permission denied", 0),
        (
            E::multi_authz_pending(),
            9,
            "request needs further approval",
            0,
        ),
        (E::unrecoverable(), 10, "unrecoverable error", 0),
    ];
    for (error, kind, message, code) in cases {
        // A cause never travels: the wire is the same with one.
        let caused = error
            .clone()
            .with_source(std::io::Error::other("a cause the server must not see"));
        for error in [error, caused] {
            let wire = error_to_wire(&error);
            assert_eq!(
                (wire.err_type, wire.err_msg.as_str(), wire.err_code),
                (kind, message, code)
            );
        }
    }
}

#[test]
fn a_storage_error_travels_with_its_text_alone() {
    let status = tonic::Status::unavailable("the status's own words");
    let storage =
        backend::StorageError::new("cannot write to readonly storage").with_source(status);
    let wire = error_to_wire(&backend::Error::from(storage));
    assert_eq!(
        (wire.err_type, wire.err_msg.as_str(), wire.err_code),
        (0, "cannot write to readonly storage", 0)
    );
}

#[test]
fn a_lease_travels_in_nanoseconds_with_go_zero_time_when_unset() {
    let mut internal = Map::new();
    internal.insert("user".into(), Value::from("alice"));
    let mut secret = backend::Secret::new(std::time::Duration::from_secs(90), internal);
    secret.lease.max_ttl = std::time::Duration::from_secs(3600);
    secret.lease.renewable = true;
    let wire = response_to_wire(backend::Response {
        secret: Some(secret),
        ..Default::default()
    })
    .secret
    .unwrap();
    let lease = wire.lease_options.unwrap();
    assert_eq!(lease.ttl, 90_000_000_000);
    assert_eq!(lease.max_ttl, 3_600_000_000_000);
    assert!(lease.renewable);
    // The server fails on a missing Timestamp; Go sends its zero time.
    assert_eq!(lease.issue_time.unwrap().seconds, -62_135_596_800);
    assert_eq!(wire.internal_data, r#"{"user":"alice"}"#);

    // With no internal data the server still needs a JSON object.
    let empty = response_to_wire(backend::Response {
        secret: Some(backend::Secret::default()),
        ..Default::default()
    });
    assert_eq!(empty.secret.unwrap().internal_data, "{}");
}

#[test]
fn a_renew_request_carries_the_lease_back_with_its_issue_time() {
    let issued = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let request = request_from_wire(Some(pb::Request {
        operation: "renew".into(),
        path: "creds/web".into(),
        data: "null".into(),
        secret: Some(pb::Secret {
            lease_options: Some(pb::LeaseOptions {
                ttl: 30_000_000_000,
                renewable: true,
                increment: 60_000_000_000,
                issue_time: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                max_ttl: -5,
            }),
            internal_data: r#"{"secret_type":"password"}"#.into(),
            lease_id: "pw/creds/web/abc".into(),
        }),
        ..Default::default()
    }))
    .unwrap();
    assert!(request.data.is_empty());
    let secret = request.secret.unwrap();
    assert_eq!(secret.lease.ttl, std::time::Duration::from_secs(30));
    assert_eq!(secret.lease.increment, std::time::Duration::from_secs(60));
    // A negative duration, which the server never sends, reads as zero.
    assert_eq!(secret.lease.max_ttl, std::time::Duration::ZERO);
    assert_eq!(secret.lease.issue_time, Some(issued));
    assert_eq!(secret.internal_data["secret_type"], "password");
    assert_eq!(secret.lease_id, "pw/creds/web/abc");
}

#[test]
fn internal_data_that_is_not_an_object_is_refused_precisely() {
    let refused = request_from_wire(Some(pb::Request {
        operation: "revoke".into(),
        secret: Some(pb::Secret {
            internal_data: "[1]".into(),
            ..Default::default()
        }),
        ..Default::default()
    }))
    .unwrap_err();
    assert_eq!(
        refused,
        "the secret's internal data must be a JSON object, not an array"
    );
    let refused = request_from_wire(Some(pb::Request {
        operation: "renew".into(),
        auth: Some(pb::Auth {
            internal_data: "{".into(),
            ..Default::default()
        }),
        ..Default::default()
    }))
    .unwrap_err();
    assert!(
        refused.starts_with("the auth's internal data is not valid JSON"),
        "{refused}"
    );
}

#[test]
fn an_auth_round_trips_with_its_alias_token_type_and_durations() {
    let auth = backend::Auth {
        lease: backend::LeaseOptions {
            ttl: std::time::Duration::from_secs(60),
            renewable: true,
            ..Default::default()
        },
        display_name: "alice".into(),
        policies: vec!["dev".into()],
        metadata: [("username".to_owned(), "alice".to_owned())].into(),
        alias: Some(backend::Alias {
            name: "alice".into(),
            ..Default::default()
        }),
        period: std::time::Duration::from_secs(5),
        explicit_max_ttl: std::time::Duration::from_secs(7),
        token_type: backend::TokenType::Batch,
        no_default_policy: true,
        ..Default::default()
    };
    let wire = response_to_wire(backend::Response {
        auth: Some(auth.clone()),
        ..Default::default()
    })
    .auth
    .unwrap();
    assert_eq!(wire.token_type, 2);
    assert_eq!(wire.period, 5_000_000_000);
    assert_eq!(wire.alias.as_ref().unwrap().name, "alice");
    assert_eq!(wire.internal_data, "{}");
    let back = request_from_wire(Some(pb::Request {
        operation: "renew".into(),
        auth: Some(wire),
        ..Default::default()
    }))
    .unwrap()
    .auth
    .unwrap();
    // Unset on the way out, so Go's zero time, which reads back as unset.
    assert_eq!(back, auth);
}
