//! A small path framework: what every path of a backend shares, as the Go SDK's
//! `framework.Backend` does it. Patterns, field schemas and conversion, unknown-parameter
//! warnings, 404/405, help, and the global operations (rollback, renew, revoke).

mod fields;
mod help;
mod openapi;
mod pattern;

pub use fields::{FieldData, FieldSchema, FieldType};
pub use pattern::{Captures, PathPattern};

use super::{BackendType, BoxFuture, Error, Operation, Request, Response, SpecialPaths};

/// Handles one operation on a path.
pub type OperationHandler<B> = for<'a> fn(
    &'a B,
    &'a Request,
    &'a FieldData<'a>,
) -> BoxFuture<'a, Result<Option<Response>, Error>>;

/// Tells whether the target of a create/update exists.
pub type ExistenceHandler<B> =
    for<'a> fn(&'a B, &'a Request, &'a FieldData<'a>) -> BoxFuture<'a, Result<bool, Error>>;

/// One path of a backend: its pattern, fields, operations and help.
pub struct PathSpec<B> {
    pub pattern: PathPattern,
    pub fields: Vec<FieldSchema>,
    pub operations: Vec<(Operation, OperationHandler<B>)>,
    pub existence_check: Option<ExistenceHandler<B>>,
    pub synopsis: &'static str,
    pub description: &'static str,
}

impl<B> PathSpec<B> {
    /// A path with no fields or operations yet.
    pub fn new(pattern: &str) -> Self {
        Self {
            pattern: PathPattern::parse(pattern),
            fields: Vec::new(),
            operations: Vec::new(),
            existence_check: None,
            synopsis: "",
            description: "",
        }
    }

    pub fn field(mut self, field: FieldSchema) -> Self {
        self.fields.push(field);
        self
    }

    pub fn operation(mut self, operation: Operation, handler: OperationHandler<B>) -> Self {
        self.operations.push((operation, handler));
        self
    }

    pub fn existence_check(mut self, handler: ExistenceHandler<B>) -> Self {
        self.existence_check = Some(handler);
        self
    }

    pub fn help(mut self, synopsis: &'static str, description: &'static str) -> Self {
        self.synopsis = synopsis;
        self.description = description;
        self
    }

    fn handler(&self, operation: &Operation) -> Option<OperationHandler<B>> {
        self.operations
            .iter()
            .find(|(op, _)| op == operation)
            .map(|(_, handler)| *handler)
    }

    fn field_schema(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The paths of a backend, tried in order; the first match wins.
pub struct Router<B> {
    paths: Vec<PathSpec<B>>,
    backend_help: &'static str,
    special_paths: SpecialPaths,
    backend_type: BackendType,
}

impl<B> Router<B> {
    pub fn new(backend_help: &'static str, paths: Vec<PathSpec<B>>) -> Self {
        Self {
            paths,
            backend_help,
            special_paths: SpecialPaths::default(),
            backend_type: BackendType::Logical,
        }
    }

    /// Declares an auth method's router (a secrets engine's is the default), which OpenAPI
    /// tags by kind.
    pub fn with_backend_type(mut self, backend_type: BackendType) -> Self {
        self.backend_type = backend_type;
        self
    }

    /// What kind of backend the router serves: a secrets engine unless declared otherwise.
    pub fn backend_type(&self) -> BackendType {
        self.backend_type
    }

    /// Declares the backend's special paths, which help and OpenAPI document too.
    pub fn with_special_paths(mut self, special_paths: SpecialPaths) -> Self {
        self.special_paths = special_paths;
        self
    }

    pub fn paths(&self) -> &[PathSpec<B>] {
        &self.paths
    }

    pub fn special_paths(&self) -> &SpecialPaths {
        &self.special_paths
    }

    fn route(&self, path: &str) -> Option<(&PathSpec<B>, Captures)> {
        self.paths
            .iter()
            .find_map(|spec| spec.pattern.matches(path).map(|captures| (spec, captures)))
    }

    /// Handles a request as `framework.Backend.HandleRequest` does.
    pub async fn handle_request(
        &self,
        backend: &B,
        request: &Request,
    ) -> Result<Option<Response>, Error> {
        match request.operation {
            Operation::Renew | Operation::Revoke => {
                // This backend issues no leases, so nothing can be renewed or revoked.
                return Err(Error::Other(if request.has_secret {
                    "secret is unsupported by this backend".to_owned()
                } else {
                    "request has no secret".to_owned()
                }));
            }
            // No periodic function and no write-ahead log: nothing to roll back.
            Operation::Rollback => return Ok(None),
            Operation::Help if request.path.is_empty() => {
                return Ok(Some(help::root_help(self, request)));
            }
            _ => {}
        }

        let (spec, captures) = self.route(&request.path).ok_or(Error::UnsupportedPath)?;

        let handler = match spec.handler(&request.operation) {
            Some(handler) => handler,
            None if request.operation == Operation::Help => {
                return Ok(Some(help::path_help(self, spec, request)));
            }
            None => return Err(Error::UnsupportedOperation),
        };

        let mut ignored: Vec<&str> = request
            .data
            .keys()
            .map(String::as_str)
            .filter(|key| spec.field_schema(key).is_none())
            .collect();
        let (fields, replaced) = FieldData::new(&spec.fields, &request.data, captures);
        if let Err(message) = fields.validate() {
            return Ok(Some(Response::error(format!(
                "Field validation failed: {message}"
            ))));
        }

        let mut response = handler(backend, request, &fields).await?;
        if let Some(response) = response.as_mut() {
            ignored.sort_unstable();
            if !ignored.is_empty() {
                response.warnings.push(format!(
                    "Endpoint ignored these unrecognized parameters: {}",
                    go_list(&ignored)
                ));
            }
            if !replaced.is_empty() {
                response.warnings.push(format!(
                    "Endpoint replaced the value of these parameters with the values captured \
                     from the endpoint's path: {}",
                    go_list(&replaced)
                ));
            }
        }
        Ok(response)
    }

    /// Answers an existence check as `framework.Backend.HandleExistenceCheck` does:
    /// `Ok(None)` when the path has no check.
    pub async fn existence_check(
        &self,
        backend: &B,
        request: &Request,
    ) -> Result<Option<bool>, Error> {
        if !matches!(request.operation, Operation::Create | Operation::Update) {
            return Err(Error::Other(format!(
                "incorrect operation type {} for an existence check",
                request.operation
            )));
        }
        let (spec, captures) = self.route(&request.path).ok_or(Error::UnsupportedPath)?;
        let Some(check) = spec.existence_check else {
            return Ok(None);
        };
        let (fields, _) = FieldData::new(&spec.fields, &request.data, captures);
        fields.validate().map_err(Error::User)?;
        check(backend, request, &fields).await.map(Some)
    }
}

/// Formats names as Go's `%v` formats a `[]string`: `[a b c]`.
fn go_list<S: AsRef<str>>(items: &[S]) -> String {
    let joined: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("[{}]", joined.join(" "))
}

#[cfg(test)]
mod tests;
