//! Answers with an HTTP status and a body of the handler's choosing, as Go's
//! `logical.RespondWithStatusCode` makes them.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{Error, Request, Response};

/// The data key the server reads a raw answer's HTTP status from (`logical.HTTPStatusCode`);
/// a response whose data has it is answered raw.
pub(crate) const HTTP_STATUS_CODE: &str = "http_status_code";
/// The raw answer's `Content-Type` (`logical.HTTPContentType`).
pub(crate) const HTTP_CONTENT_TYPE: &str = "http_content_type";
/// The raw answer's body (`logical.HTTPRawBody`).
pub(crate) const HTTP_RAW_BODY: &str = "http_raw_body";

/// The statuses [`Response::with_status`] accepts.
const STATUSES: std::ops::RangeInclusive<u16> = 200..=599;

impl Response {
    /// An answer that reaches the client exactly as given: HTTP `status`, with `body` as
    /// JSON (`Content-Type: application/json`). The Go SDK's `logical.RespondWithStatusCode`.
    ///
    /// ```
    /// # use serde_json::json;
    /// # use vault_plugin_sdk::backend::{Error, Response};
    /// # fn handler() -> Result<Option<Response>, Error> {
    /// // At the end of a handler: the client gets 404 and `{"errors":["no such counter"]}`.
    /// Response::with_status(404, &json!({"errors": ["no such counter"]})).map(Some)
    /// # }
    /// # let answer = handler().unwrap().unwrap();
    /// # assert_eq!(answer.data["http_status_code"], 404);
    /// ```
    ///
    /// # How it differs from an error
    ///
    /// A handler's [`Error`] (say [`Error::coded`] with 404) becomes an error of the server:
    /// the server picks the body, `{"errors": [...]}` with the message wrapped in its own
    /// words, which the CLI prints as `* 1 error occurred: * <message>`. This answer is not
    /// an error to the server: it sends the status and the body untouched, whatever JSON
    /// they are, and the CLI shows the body. Use it for an API whose clients expect a
    /// given status and body; use [`Error`] and [`Response::error`] for the server's usual
    /// error answers.
    ///
    /// # What the server sends
    ///
    /// The response is data keys only (`http_status_code`, `http_content_type`,
    /// `http_raw_body`), which the server turns into the raw answer. So:
    ///
    /// * the body is all the client gets: warnings (the framework's too, for unknown
    ///   parameters) are not sent;
    /// * a secret or an auth added to the response makes the server answer 500 instead
    ///   ("raw responses cannot contain secrets or auth");
    /// * a 204 or a 304 has no body: the server drops it;
    /// * unlike Go's helper, which wraps a whole response (`request_id`, `data`, `warnings`,
    ///   ...) into the body, the body is exactly `body`.
    ///
    /// The body travels as its JSON text when it is an object, an array or a string, as Go's
    /// helper sends it; other JSON (a number, `true`, `null`) travels base64-encoded, since
    /// the server decodes a body that reads as base64 (`null` does) before sending it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Internal`](super::ErrorKind::Internal) (a 500, a bug of the plugin) when:
    ///
    /// * `status` is not in 200..=599. Below 100 and above 999 the server's HTTP library
    ///   refuses the status, and 600..=999 are no HTTP statuses; a 1xx is informational, not
    ///   an answer: the server would send it, then 200 with the body (and after 101 the
    ///   client expects another protocol).
    /// * `body` cannot be encoded as JSON (a map with keys that are not strings, or a
    ///   `Serialize` implementation that fails).
    pub fn with_status<T: serde::Serialize + ?Sized>(status: u16, body: &T) -> Result<Self, Error> {
        check_status(status)?;
        let text = serde_json::to_string(body).map_err(|_| {
            Error::internal(format!(
                "the body of a {status} answer cannot be encoded as JSON"
            ))
        })?;
        let body = match text.as_bytes().first() {
            // Never valid base64, so the server sends the text as it is.
            Some(b'{' | b'[' | b'"') => text,
            _ => base64::engine::general_purpose::STANDARD.encode(text),
        };
        let mut data = Map::new();
        data.insert(HTTP_STATUS_CODE.to_owned(), Value::from(status));
        data.insert(
            HTTP_CONTENT_TYPE.to_owned(),
            Value::from("application/json"),
        );
        data.insert(HTTP_RAW_BODY.to_owned(), Value::from(body));
        Ok(Self::with_data(data))
    }

    /// Go's `logical.RespondWithStatusCode(resp, req, status)` as it is: HTTP `status`, and
    /// for a body the whole answer the server would have sent for `response`, `request`'s id
    /// included (`{"request_id", "lease_id": "", "renewable": false, "lease_duration": 0,
    /// "data", "wrap_info": null, "warnings", "auth": null}`); `None` gives an empty body.
    /// Empty `data` and `warnings` are `null`, as in a Go response that has none.
    ///
    /// For a port of a Go plugin whose clients read that shape (the KV engine's 404 for a
    /// deleted version carries the version's metadata this way); a new API should prefer
    /// [`Response::with_status`], whose body is what the handler says.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Internal`](super::ErrorKind::Internal) for a status outside 200..=599
    /// (see [`Response::with_status`]), or a `response` with a secret or an auth, which the
    /// server would refuse to send raw.
    pub fn whole_with_status(
        status: u16,
        request: &Request,
        response: Option<Response>,
    ) -> Result<Self, Error> {
        check_status(status)?;
        let mut data = Map::new();
        data.insert(HTTP_STATUS_CODE.to_owned(), Value::from(status));
        data.insert(
            HTTP_CONTENT_TYPE.to_owned(),
            Value::from("application/json"),
        );
        let Some(response) = response else {
            return Ok(Self::with_data(data));
        };
        if response.secret.is_some() || response.auth.is_some() {
            return Err(Error::internal(
                "a raw answer cannot carry a secret or an auth",
            ));
        }
        let or_null = |value: Value, empty: bool| if empty { Value::Null } else { value };
        // In the order of Go's `logical.HTTPResponse` fields, as Go marshals it (a JSON map
        // would sort them).
        let body = format!(
            "{{\"request_id\":{},\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0,\
             \"data\":{},\"wrap_info\":null,\"warnings\":{},\"auth\":null}}",
            Value::from(request.id.as_str()),
            or_null(
                Value::Object(response.data.clone()),
                response.data.is_empty()
            ),
            or_null(json!(response.warnings), response.warnings.is_empty()),
        );
        // An object's text: never valid base64, so the server sends it as it is.
        data.insert(HTTP_RAW_BODY.to_owned(), Value::from(body));
        Ok(Self::with_data(data))
    }
}

/// Refuses a status the server cannot answer with (see [`Response::with_status`]).
fn check_status(status: u16) -> Result<(), Error> {
    if STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "{status} is not an HTTP status to answer with: it must be in 200..=599"
        )))
    }
}

#[cfg(test)]
mod tests;
