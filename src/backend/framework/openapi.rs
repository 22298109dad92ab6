//! The OpenAPI document a `help` request returns, in the shape of the Go framework's
//! `OASDocument`: the server merges its `paths` into `sys/internal/specs/openapi`, which the web
//! UI reads.

use serde_json::{Map, Value, json};

use super::{PathSpec, Router};
use crate::backend::{BackendType, Operation};

/// An OpenAPI document for `specs` as OpenBao's SDK builds one (`documentPath`): operation
/// ids prefixed by `prefix` (the mount's type, which the server passes as
/// `requestResponsePrefix`), request bodies as named schemas under `components`.
pub(super) fn document<'a, B: 'a>(
    router: &Router<B>,
    specs: impl IntoIterator<Item = &'a PathSpec<B>>,
    prefix: &str,
) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for spec in specs {
        let path = spec.pattern.to_openapi();
        let item = path_item(router, spec, &path, prefix, &mut schemas);
        paths.insert(format!("/{path}"), item);
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

fn path_item<B>(
    router: &Router<B>,
    spec: &PathSpec<B>,
    path: &str,
    prefix: &str,
    schemas: &mut Map<String, Value>,
) -> Value {
    let mut item = Map::new();
    if !spec.synopsis.trim().is_empty() {
        item.insert("description".into(), Value::from(spec.synopsis.trim()));
    }
    let captures: Vec<&str> = spec.pattern.capture_names().collect();
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
    if !parameters.is_empty() {
        let parameters = parameters.into_iter().map(|(_, p)| p).collect();
        item.insert("parameters".into(), Value::Array(parameters));
    }
    let special = router.special_paths();
    if listed(&special.unauthenticated, path) {
        item.insert("x-vault-unauthenticated".into(), Value::Bool(true));
    }
    if listed(&special.root, path) {
        item.insert("x-vault-sudo".into(), Value::Bool(true));
    }
    let has = |op: Operation| spec.operations.iter().any(|(o, _)| *o == op);
    if has(Operation::Create) {
        item.insert("x-vault-createSupported".into(), Value::Bool(true));
    }

    let tags = match router.backend_type() {
        BackendType::Logical => json!(["secrets"]),
        BackendType::Credential => json!(["auth"]),
    };
    let operation = |verb: &str, deleting: bool| {
        let responses = if deleting {
            json!({ "204": { "description": "empty body" } })
        } else {
            json!({ "200": { "description": "OK" } })
        };
        json!({
            "operationId": operation_id(prefix, verb, path),
            "responses": responses,
            "tags": tags,
        })
    };

    if has(Operation::Read) {
        let mut get = operation("read", false);
        if has(Operation::List) {
            get["parameters"] = json!([{
                "name": "list",
                "description": "Return a list if `true`",
                "in": "query",
                "schema": { "type": "string" },
            }]);
        }
        item.insert("get".into(), get);
    } else if has(Operation::List) {
        let mut get = operation("list", false);
        get["parameters"] = json!([{
            "name": "list",
            "description": "Must be set to `true`",
            "in": "query",
            "schema": { "type": "string", "enum": ["true"] },
            "required": true,
        }]);
        item.insert("get".into(), get);
    }
    // Update wins over create when a path has both, as in the Go SDK.
    let write_verb = if has(Operation::Update) {
        Some("write")
    } else if has(Operation::Create) {
        Some("create")
    } else {
        None
    };
    if let Some(verb) = write_verb {
        let mut post = operation(verb, false);
        let body_fields = spec.fields.iter().filter(|f| !captures.contains(&f.name));
        let properties: Map<String, Value> = body_fields
            .map(|f| {
                let mut schema = f.openapi_schema();
                if !f.description.trim().is_empty() {
                    schema["description"] = Value::from(f.description.trim());
                }
                (f.name.to_owned(), schema)
            })
            .collect();
        if !properties.is_empty() {
            let name = format!("{}Request", title_case(&operation_id(prefix, verb, path)));
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
        item.insert("post".into(), post);
    }
    if has(Operation::Delete) {
        item.insert("delete".into(), operation("delete", true));
    }
    Value::Object(item)
}
