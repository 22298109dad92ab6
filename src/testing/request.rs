//! One request to a [`TestBackend`]: built up, then awaited.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use serde_json::{Map, Value};

use super::TestBackend;
use crate::backend::{Auth, Backend, Error, ErrorKind, Operation, Request, Response, Secret};

/// A request on its way to a [`TestBackend`]'s backend: add data or change it, then `.await`
/// it (or call [`send`](RequestBuilder::send)) for the backend's answer,
/// `Result<Option<Response>, Error>`, exactly as the backend gave it (`Ok(None)` is what the
/// server answers 404 to on a read, 204 on a write).
///
/// Like the server, it
/// * runs the existence check before a create or update, and sends create when the check says
///   the target is absent, update otherwise (or when the path has no check); an error of the
///   check is the answer, except "unsupported path", which goes on as an update;
/// * marks requests to the backend's unauthenticated special paths (say `login`) as
///   [`unauthenticated`](Request::unauthenticated);
/// * puts the mount point in [`Request::mount_point`];
/// * keeps the lease of a response with a [`Secret`] and the token of one with an [`Auth`]
///   (see [`TestBackend::renew`]), filling in the response's `lease_id`, or `client_token`
///   and `accessor`, as the server does. Nothing else of the response is changed.
#[must_use = "a request does nothing until it is awaited"]
pub struct RequestBuilder<'a, B> {
    backend: &'a TestBackend<B>,
    request: Request,
    existence_check: bool,
}

impl<'a, B: Backend> RequestBuilder<'a, B> {
    pub(super) fn new(
        backend: &'a TestBackend<B>,
        operation: Operation,
        path: &str,
        unauthenticated: bool,
    ) -> Self {
        let mut request = Request::new(operation, path);
        request.id = backend.leases.lock().next_request_id();
        request.mount_point = backend.mount_point.clone();
        request.unauthenticated = unauthenticated;
        Self {
            backend,
            request,
            existence_check: true,
        }
    }

    /// Sets the request's data (the JSON body, or the query parameters of a read), replacing
    /// what was set before; `null` clears it.
    ///
    /// # Panics
    /// If `data` is neither an object nor `null`.
    pub fn data(mut self, data: Value) -> Self {
        self.request.data = match data {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => panic!("request data must be a JSON object, not {other}"),
        };
        self
    }

    /// Sets one field of the request's data.
    pub fn field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.request.data.insert(name.into(), value.into());
        self
    }

    /// Adds a request header (one the mount passes through to the backend).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.request
            .headers
            .entry(name.into())
            .or_default()
            .push(value.into());
        self
    }

    /// Overrides whether the request counts as unauthenticated.
    pub fn unauthenticated(mut self, unauthenticated: bool) -> Self {
        self.request.unauthenticated = unauthenticated;
        self
    }

    /// Attaches a lease, for a renew or revoke built by hand (say a revoke the server retries).
    /// [`TestBackend::renew`] and [`TestBackend::revoke`] attach the kept lease themselves.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.request.secret = Some(secret);
        self
    }

    /// Attaches a token's auth, for a token renewal built by hand.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.request.auth = Some(auth);
        self
    }

    /// For [`TestBackend::rollback`]: roll back every write-ahead log entry, whatever its age
    /// (sets the data's `immediate`).
    pub fn immediate(self) -> Self {
        self.field("immediate", true)
    }

    /// Sends a create or update as it is, without asking the existence check first.
    pub fn without_existence_check(mut self) -> Self {
        self.existence_check = false;
        self
    }

    /// Changes anything else of the request (its entity, token accessor, connection…).
    pub fn with_request(mut self, edit: impl FnOnce(&mut Request)) -> Self {
        edit(&mut self.request);
        self
    }

    /// The request as it will be sent (before the existence check picks the operation).
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Sends the request; the same as `.await`ing the builder.
    pub async fn send(self) -> Result<Option<Response>, Error> {
        let Self {
            backend,
            mut request,
            existence_check,
        } = self;
        if existence_check && matches!(request.operation, Operation::Create | Operation::Update) {
            request.operation = match backend.backend.existence_check(request.clone()).await {
                Ok(Some(false)) => Operation::Create,
                Ok(_) => Operation::Update,
                Err(error) if error.kind() == ErrorKind::UnsupportedPath => Operation::Update,
                Err(error) => return Err(error),
            };
        }
        let keeps_leases = !matches!(
            request.operation,
            Operation::Renew | Operation::Revoke | Operation::Rollback
        );
        let path = request.path.clone();
        let mut response = backend.backend.handle_request(request).await?;
        if let Some(response) = response.as_mut().filter(|_| keeps_leases) {
            backend.keep(&path, response)?;
        }
        Ok(response)
    }
}

impl<'a, B: Backend> IntoFuture for RequestBuilder<'a, B> {
    type Output = Result<Option<Response>, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// Whether a special path (`login`, `pub/*`, `users/+/login`) covers `path`: exact, a trailing
/// `*` making a prefix, a `+` segment matching any one segment, as the server reads them.
pub(super) fn special_path_matches(pattern: &str, path: &str) -> bool {
    let (pattern, is_prefix) = match pattern.strip_suffix('*') {
        Some(prefix) => (prefix, true),
        None => (pattern, false),
    };
    if !pattern.split('/').any(|segment| segment == "+") {
        return if is_prefix {
            path.starts_with(pattern)
        } else {
            path == pattern
        };
    }
    let wanted: Vec<&str> = pattern.split('/').collect();
    let given: Vec<&str> = path.split('/').collect();
    if given.len() < wanted.len() || (!is_prefix && given.len() != wanted.len()) {
        return false;
    }
    wanted
        .iter()
        .zip(&given)
        .enumerate()
        .all(|(at, (want, got))| {
            let last = at + 1 == wanted.len();
            *want == "+" || (last && is_prefix && got.starts_with(want)) || want == got
        })
}

#[cfg(test)]
mod tests {
    use super::special_path_matches;

    #[test]
    fn special_paths_match_exactly_by_prefix_and_by_segment() {
        assert!(special_path_matches("login", "login"));
        assert!(!special_path_matches("login", "login/x"));
        assert!(!special_path_matches("login", "logins"));
        assert!(special_path_matches("pub/*", "pub/a/b"));
        assert!(special_path_matches("pub*", "public"));
        assert!(!special_path_matches("pub/*", "pu"));
        assert!(special_path_matches("users/+/login", "users/alice/login"));
        assert!(!special_path_matches(
            "users/+/login",
            "users/alice/bob/login"
        ));
        assert!(!special_path_matches("users/+/login", "users/alice/logout"));
        assert!(special_path_matches(
            "users/+/log*",
            "users/alice/login/now"
        ));
        assert!(!special_path_matches("users/+/log*", "users/alice"));
    }
}
