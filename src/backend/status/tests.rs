#![allow(clippy::unwrap_used)]

use std::sync::{Arc, LazyLock};

use base64::Engine as _;
use serde_json::{Value, json};

use super::*;
use crate::backend::framework::{
    FieldData, FieldSchema, FieldType, PathSpec, RoutedBackend, Router,
};
use crate::backend::{Backend as _, MemoryStorage, Operation, Request, Storage};

/// What the server's `respondRaw` makes of a response's data, read as it reads it after the
/// wire: the status from a JSON number, and the body decoded from base64 if it is valid
/// base64, else taken as it is ("best effort" in its words).
fn as_the_server_answers(data: &Map<String, Value>) -> (u16, String, Vec<u8>) {
    let status = data[HTTP_STATUS_CODE]
        .as_f64()
        .expect("a status the server decodes");
    let content_type = data[HTTP_CONTENT_TYPE]
        .as_str()
        .expect("a content type")
        .to_owned();
    let raw = data[HTTP_RAW_BODY].as_str().expect("a string body");
    let body = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .unwrap_or_else(|_| raw.as_bytes().to_vec());
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (status as u16, content_type, body)
}

/// The data as it crosses the wire: the JSON text of `pb.Response.data`, read back.
fn over_the_wire(response: Response) -> Map<String, Value> {
    let wire = crate::services::backend::wire::response_to_wire(response);
    match serde_json::from_str(&wire.data).expect("JSON") {
        Value::Object(data) => data,
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn a_status_answer_is_the_three_keys_the_server_answers_raw() {
    let response =
        Response::with_status(404, &json!({"errors": ["no such counter"]})).expect("a response");
    assert_eq!(
        Value::Object(response.data.clone()),
        json!({
            "http_status_code": 404,
            "http_content_type": "application/json",
            "http_raw_body": r#"{"errors":["no such counter"]}"#,
        })
    );
    assert!(response.warnings.is_empty());
    assert!(response.secret.is_none() && response.auth.is_none());
    assert!(!response.is_error(), "not the server's error answer");

    // As the mock's `raw` path, which the end-to-end suites run against the servers: the
    // status a JSON number, the content type and the body strings.
    let data = over_the_wire(response);
    assert!(data[HTTP_STATUS_CODE].is_u64());
    let (status, content_type, body) = as_the_server_answers(&data);
    assert_eq!(status, 404);
    assert_eq!(content_type, "application/json");
    assert_eq!(body, br#"{"errors":["no such counter"]}"#);
}

#[test]
fn any_json_body_reaches_the_client_as_given() {
    #[derive(serde::Serialize)]
    struct Conflict<'a> {
        reason: &'a str,
        current_version: u32,
    }
    let bodies = [
        json!({"a": [1, 2, {"b": null}], "ü": "€"}),
        json!([]),
        json!("plain text in quotes"),
        // These read as base64 ("null" and "true" do), so they travel encoded.
        json!(null),
        json!(true),
        json!(1234),
        json!(-1.5),
    ];
    for body in bodies {
        let data = over_the_wire(Response::with_status(200, &body).expect("a response"));
        let (status, _, sent) = as_the_server_answers(&data);
        assert_eq!(status, 200);
        assert_eq!(
            serde_json::from_slice::<Value>(&sent).expect("JSON"),
            body,
            "{body}"
        );
    }
    let data = over_the_wire(
        Response::with_status(
            409,
            &Conflict {
                reason: "changed meanwhile",
                current_version: 7,
            },
        )
        .expect("a response"),
    );
    let (status, _, sent) = as_the_server_answers(&data);
    assert_eq!(status, 409);
    assert_eq!(
        sent,
        br#"{"reason":"changed meanwhile","current_version":7}"#
    );
}

#[test]
fn statuses_outside_200_to_599_and_bodies_that_are_no_json_are_refused() {
    for status in [200, 201, 204, 301, 400, 404, 429, 500, 503, 599] {
        let response = Response::with_status(status, &json!({})).expect("a valid status");
        assert_eq!(response.data[HTTP_STATUS_CODE], json!(status));
    }
    for status in [0, 99, 100, 101, 199, 600, 999, 1000, u16::MAX] {
        assert_eq!(
            Response::with_status(status, &json!({})),
            Err(Error::internal(format!(
                "{status} is not an HTTP status to answer with: it must be in 200..=599"
            )))
        );
    }
    // JSON objects have string keys.
    let map = std::collections::BTreeMap::from([((1, 2), "x")]);
    assert_eq!(
        Response::with_status(400, &map),
        Err(Error::internal(
            "the body of a 400 answer cannot be encoded as JSON"
        ))
    );
}

// A backend on the framework whose `counters/<name>` read answers 404 with a message of its
// own when there is no such counter.

struct Counters {
    storage: Arc<dyn Storage>,
}

async fn read_counter(
    backend: &Counters,
    _: &Request,
    fields: &FieldData<'_>,
) -> Result<Option<Response>, Error> {
    let name = fields.get_string("name");
    match backend.storage.get(&format!("counter/{name}")).await? {
        Some(count) => {
            let count = String::from_utf8_lossy(&count).into_owned();
            Response::with_status(200, &json!({ "count": count })).map(Some)
        }
        None => {
            Response::with_status(404, &json!({"errors": [format!("no counter {name}")]})).map(Some)
        }
    }
}

static ROUTER: LazyLock<Router<Counters>> = LazyLock::new(|| {
    Router::new(
        "Counts.",
        vec![
            PathSpec::new("counters/{name}")
                .field(FieldSchema::new("name", FieldType::String, "The counter."))
                .operation(Operation::Read, read_counter),
        ],
    )
});

impl RoutedBackend for Counters {
    fn router(&self) -> &Router<Self> {
        &ROUTER
    }
}

#[tokio::test]
async fn a_router_path_answers_404_with_its_own_message() {
    let counters = Counters {
        storage: Arc::new(MemoryStorage::new()),
    };
    let missing = counters
        .handle_request(Request::new(Operation::Read, "counters/hits"))
        .await
        .expect("an answer, not an error")
        .expect("a response");
    let (status, content_type, body) = as_the_server_answers(&over_the_wire(missing));
    assert_eq!(status, 404);
    assert_eq!(content_type, "application/json");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("JSON"),
        json!({"errors": ["no counter hits"]})
    );

    counters
        .storage
        .put("counter/hits", b"3".to_vec())
        .await
        .expect("put");
    let found = counters
        .handle_request(Request::new(Operation::Read, "counters/hits"))
        .await
        .expect("an answer")
        .expect("a response");
    let (status, _, body) = as_the_server_answers(&over_the_wire(found));
    assert_eq!(status, 200);
    assert_eq!(body, br#"{"count":"3"}"#);
}

#[test]
fn the_whole_answer_is_the_body_as_go_builds_it() {
    let mut request = Request::new(Operation::Read, "data/x");
    request.id = "req-1".to_owned();
    let mut data = Map::new();
    data.insert("data".to_owned(), Value::Null);
    let response = Response::with_data(data).with_warning("careful");
    let raw = Response::whole_with_status(404, &request, Some(response)).unwrap();
    let (status, content_type, body) = as_the_server_answers(&raw.data);
    assert_eq!((status, content_type.as_str()), (404, "application/json"));
    // The fields in the order of Go's `logical.HTTPResponse`, not sorted.
    assert_eq!(
        String::from_utf8(body).unwrap(),
        r#"{"request_id":"req-1","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":null},"wrap_info":null,"warnings":["careful"],"auth":null}"#
    );
    // No data and no warnings are nulls, as in a Go response without them.
    let bare = Response::whole_with_status(404, &request, Some(Response::default())).unwrap();
    let body: Value = serde_json::from_slice(&as_the_server_answers(&bare.data).2).unwrap();
    assert_eq!(
        (&body["data"], &body["warnings"]),
        (&Value::Null, &Value::Null)
    );
}

#[test]
fn no_response_is_an_empty_body() {
    let request = Request::new(Operation::Patch, "data/x");
    let raw = Response::whole_with_status(404, &request, None).unwrap();
    assert_eq!(raw.data[HTTP_STATUS_CODE], 404);
    assert_eq!(raw.data[HTTP_CONTENT_TYPE], "application/json");
    assert!(!raw.data.contains_key(HTTP_RAW_BODY));
}

#[test]
fn a_whole_answer_refuses_what_the_server_would_not_send() {
    let request = Request::new(Operation::Read, "x");
    let error = Response::whole_with_status(99, &request, None).unwrap_err();
    assert!(error.message().contains("200..=599"), "{error}");
    let with_auth = Response::default().with_auth(crate::backend::Auth::default());
    let error = Response::whole_with_status(404, &request, Some(with_auth)).unwrap_err();
    assert_eq!(
        error.message(),
        "a raw answer cannot carry a secret or an auth"
    );
}
