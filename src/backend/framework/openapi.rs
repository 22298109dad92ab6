//! The OpenAPI document a `help` request returns, in the shape of the Go framework's
//! `OASDocument`: the server merges its `paths` into `sys/internal/specs/openapi`, which the web
//! UI reads.

use serde_json::{Map, Value, json};

use super::{PathSpec, Router};
use crate::backend::{BackendType, Operation};

/// An OpenAPI document for `specs` as OpenBao's SDK builds one (`documentPath`): operation
/// ids prefixed by `prefix` (the mount's type, which the server passes as
/// `requestResponsePrefix`), request bodies as named schemas under `components`, operations
/// tagged by the backend's `kind`. A pattern with optional groups is documented as each of
/// the paths it expands to, as Go's `expandPattern` does.
pub(super) fn document<'a, B: 'a>(
    router: &Router<B>,
    specs: impl IntoIterator<Item = &'a PathSpec<B>>,
    prefix: &str,
    kind: BackendType,
) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for spec in specs.into_iter().filter(|spec| !spec.unpublished) {
        for (path, captures) in spec.pattern.openapi_forms() {
            let item = path_item(router, spec, &path, &captures, prefix, kind, &mut schemas);
            paths.insert(format!("/{path}"), item);
        }
    }
    json!({
        "openapi": "3.0.2",
        "info": {
            "title": "OpenBao API",
            "description": "HTTP API that gives you full access to OpenBao. All API routes are prefixed with `/v1/`.",
            "version": server_version(),
            "license": {
                "name": "Mozilla Public License 2.0",
                "url": "https://www.mozilla.org/en-US/MPL/2.0",
            },
        },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

/// The server's version, which the Go SDK asks the system view for; the server also puts it
/// in every plugin's environment at launch, which is read here by the handshake's rule until
/// the framework has a system-view client.
fn server_version() -> String {
    crate::handshake::read_sdk_var(&|name: &str| std::env::var(name).ok(), "VERSION")
        .filter(|version| !version.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Whether `path` is listed: exactly, or under a `prefix*` entry.
fn listed(entries: &[String], path: &str) -> bool {
    entries.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => entry == path,
    })
}

/// `prefix-verb-path-words`, lower case, as `constructOperationID` makes it without display
/// attributes.
fn operation_id(prefix: &str, verb: &str, path: &str) -> String {
    let words = path
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    let parts: Vec<&str> = [prefix, verb]
        .into_iter()
        .filter(|p| !p.is_empty())
        .chain(words)
        .collect();
    parts.join("-").to_lowercase()
}

/// `write-kv-key` → `WriteKvKey`: the name of a request body's schema, less `Request`.
fn title_case(hyphenated: &str) -> String {
    hyphenated
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// The OpenAPI path item of `spec` at `path` (one of the pattern's forms, showing
/// `captures`), as `documentPath` builds one: its help, its captures as parameters, its
/// `x-vault-*` flags and an operation per HTTP method it answers.
fn path_item<B>(
    router: &Router<B>,
    spec: &PathSpec<B>,
    path: &str,
    captures: &[&str],
    prefix: &str,
    kind: BackendType,
    schemas: &mut Map<String, Value>,
) -> Value {
    let mut item = Map::new();
    if !spec.synopsis.trim().is_empty() {
        item.insert("description".into(), Value::from(spec.synopsis.trim()));
    }
    let parameters = path_parameters(spec, captures);
    if !parameters.is_empty() {
        item.insert("parameters".into(), Value::Array(parameters));
    }
    insert_vault_extensions(&mut item, router, spec, path);

    let operations = OperationTemplate {
        prefix,
        path,
        tags: tags(kind),
    };
    if let Some(get) = get_operation(spec, &operations) {
        item.insert("get".into(), get);
    }
    if let Some(post) = post_operation(spec, &operations, schemas) {
        item.insert("post".into(), post);
    }
    if supports(spec, Operation::Delete) {
        item.insert("delete".into(), operations.operation("delete", true));
    }
    Value::Object(item)
}

/// Whether `spec` answers `operation`.
fn supports<B>(spec: &PathSpec<B>, operation: Operation) -> bool {
    spec.operations.iter().any(|(o, _)| *o == operation)
}

/// The path's captures as required string parameters, in the order of their lower-case names.
fn path_parameters<B>(spec: &PathSpec<B>, captures: &[&str]) -> Vec<Value> {
    let mut parameters: Vec<(String, Value)> = captures
        .iter()
        .map(|name| {
            let mut parameter = json!({
                "name": name,
                "in": "path",
                "schema": { "type": "string" },
                "required": true,
            });
            let description = spec.field_schema(name).map_or("", |f| f.description.trim());
            if !description.is_empty() {
                parameter["description"] = Value::from(description);
            }
            (name.to_lowercase(), parameter)
        })
        .collect();
    parameters.sort_by(|a, b| a.0.cmp(&b.0));
    parameters.into_iter().map(|(_, p)| p).collect()
}

/// The `x-vault-*` flags of a path: whether it needs no token, needs sudo, or can be created.
fn insert_vault_extensions<B>(
    item: &mut Map<String, Value>,
    router: &Router<B>,
    spec: &PathSpec<B>,
    path: &str,
) {
    let special = router.special_paths();
    if listed(&special.unauthenticated, path) {
        item.insert("x-vault-unauthenticated".into(), Value::Bool(true));
    }
    if listed(&special.root, path) {
        item.insert("x-vault-sudo".into(), Value::Bool(true));
    }
    if supports(spec, Operation::Create) {
        item.insert("x-vault-createSupported".into(), Value::Bool(true));
    }
}

/// The tags of every operation: the kind of mount the backend is.
fn tags(backend_type: BackendType) -> Value {
    match backend_type {
        BackendType::Logical => json!(["secrets"]),
        BackendType::Credential => json!(["auth"]),
    }
}

/// What the operations of one path share: their ids' prefix and path, and their tags.
struct OperationTemplate<'a> {
    prefix: &'a str,
    path: &'a str,
    tags: Value,
}

impl OperationTemplate<'_> {
    /// The operation `verb` names, answering 204 when it deletes and 200 otherwise.
    fn operation(&self, verb: &str, deleting: bool) -> Value {
        let responses = if deleting {
            json!({ "204": { "description": "empty body" } })
        } else {
            json!({ "200": { "description": "OK" } })
        };
        json!({
            "operationId": self.operation_id(verb),
            "responses": responses,
            "tags": self.tags,
        })
    }

    fn operation_id(&self, verb: &str) -> String {
        operation_id(self.prefix, verb, self.path)
    }
}

/// `get`: a read that lists when asked to, or a list that must be asked for.
fn get_operation<B>(spec: &PathSpec<B>, operations: &OperationTemplate<'_>) -> Option<Value> {
    let lists = supports(spec, Operation::List);
    if supports(spec, Operation::Read) {
        let mut get = operations.operation("read", false);
        if lists {
            get["parameters"] = json!([{
                "name": "list",
                "description": "Return a list if `true`",
                "in": "query",
                "schema": { "type": "string" },
            }]);
        }
        Some(get)
    } else if lists {
        let mut get = operations.operation("list", false);
        get["parameters"] = json!([{
            "name": "list",
            "description": "Must be set to `true`",
            "in": "query",
            "schema": { "type": "string", "enum": ["true"] },
            "required": true,
        }]);
        Some(get)
    } else {
        None
    }
}

/// `post`: a write or a create, its body's fields as a named schema added to `schemas`.
fn post_operation<B>(
    spec: &PathSpec<B>,
    operations: &OperationTemplate<'_>,
    schemas: &mut Map<String, Value>,
) -> Option<Value> {
    // Update wins over create when a path has both, as in the Go SDK.
    let verb = if supports(spec, Operation::Update) {
        "write"
    } else if supports(spec, Operation::Create) {
        "create"
    } else {
        return None;
    };
    let mut post = operations.operation(verb, false);
    let properties = body_properties(spec);
    if !properties.is_empty() {
        let name = format!("{}Request", title_case(&operations.operation_id(verb)));
        post["requestBody"] = json!({
            "required": true,
            "content": {
                "application/json": {
                    "schema": { "$ref": format!("#/components/schemas/{name}") },
                },
            },
        });
        schemas.insert(name, json!({ "type": "object", "properties": properties }));
    }
    Some(post)
}

/// The schemas of the fields a request body carries: those the pattern does not capture (in
/// any of its forms, as Go's `splitFields` has it).
fn body_properties<B>(spec: &PathSpec<B>) -> Map<String, Value> {
    let captures: Vec<&str> = spec.pattern.capture_names().collect();
    spec.fields
        .iter()
        .filter(|f| !captures.contains(&f.name))
        .map(|f| {
            let mut schema = f.openapi_schema();
            if !f.description.trim().is_empty() {
                schema["description"] = Value::from(f.description.trim());
            }
            (f.name.to_owned(), schema)
        })
        .collect()
}
