//! The OpenAPI document a `help` request returns, in the shape of the Go framework's
//! `OASDocument`: the server merges its `paths` into `sys/internal/specs/openapi`, which the web
//! UI reads.

use serde_json::{Map, Value, json};

use super::{PathSpec, Router};
use crate::backend::Operation;

/// An OpenAPI document for `specs`, with operation ids prefixed by `prefix` (the mount's type,
/// which the server passes as `requestResponsePrefix`).
pub(super) fn document<'a, B: 'a>(
    router: &Router<B>,
    specs: impl IntoIterator<Item = &'a PathSpec<B>>,
    prefix: &str,
) -> Value {
    let mut paths = Map::new();
    for spec in specs {
        let path = spec.pattern.to_openapi();
        paths.insert(format!("/{path}"), path_item(router, spec, &path, prefix));
    }
    json!({
        "openapi": "3.0.2",
        "info": {
            "title": "HashiCorp Vault API",
            "description": "HTTP API that gives you full access to Vault. All API routes are prefixed with `/v1/`.",
            "version": "unknown",
            "license": {
                "name": "Mozilla Public License 2.0",
                "url": "https://www.mozilla.org/en-US/MPL/2.0",
            },
        },
        "paths": paths,
        "components": { "schemas": {} },
    })
}

/// Whether `path` is listed: exactly, or under a `prefix*` entry.
fn listed(entries: &[String], path: &str) -> bool {
    entries.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => entry == path,
    })
}

fn path_item<B>(router: &Router<B>, spec: &PathSpec<B>, path: &str, prefix: &str) -> Value {
    let mut item = Map::new();
    if !spec.synopsis.is_empty() {
        item.insert("description".into(), Value::from(spec.synopsis.trim()));
    }
    let captures: Vec<&str> = spec.pattern.capture_names().collect();
    let parameters: Vec<Value> = captures
        .iter()
        .map(|name| {
            let description = spec.field_schema(name).map_or("", |f| f.description);
            json!({
                "name": name,
                "description": description,
                "in": "path",
                "schema": { "type": "string" },
                "required": true,
            })
        })
        .collect();
    if !parameters.is_empty() {
        item.insert("parameters".into(), Value::Array(parameters));
    }
    let special = router.special_paths();
    if listed(&special.unauthenticated, path) {
        item.insert("x-vault-unauthenticated".into(), Value::Bool(true));
    }
    if listed(&special.root, path) {
        item.insert("x-vault-sudo".into(), Value::Bool(true));
    }
    if spec.existence_check.is_some() {
        item.insert("x-vault-createSupported".into(), Value::Bool(true));
    }

    let words: Vec<&str> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let operation_id = |verb: &str| {
        let mut id = vec![if prefix.is_empty() { "mock" } else { prefix }, verb];
        id.extend(&words);
        id.join("-")
    };
    let has = |op: Operation| spec.operations.iter().any(|(o, _)| *o == op);

    if has(Operation::List) {
        item.insert(
            "get".into(),
            json!({
                "operationId": operation_id("list"),
                "parameters": [{
                    "name": "list",
                    "description": "Must be set to `true`",
                    "in": "query",
                    "schema": { "type": "string", "enum": ["true"] },
                    "required": true,
                }],
                "responses": { "200": { "description": "OK" } },
            }),
        );
    } else if has(Operation::Read) {
        item.insert(
            "get".into(),
            json!({
                "operationId": operation_id("read"),
                "responses": { "200": { "description": "OK" } },
            }),
        );
    }
    if has(Operation::Create) || has(Operation::Update) {
        let properties: Map<String, Value> = spec
            .fields
            .iter()
            .filter(|f| !captures.contains(&f.name))
            .map(|f| {
                let schema = json!({ "type": f.kind.openapi_type(), "description": f.description });
                (f.name.to_owned(), schema)
            })
            .collect();
        let mut post = json!({
            "operationId": operation_id("write"),
            "responses": { "200": { "description": "OK" } },
        });
        if !properties.is_empty() {
            post["requestBody"] = json!({
                "required": true,
                "content": {
                    "application/json": {
                        "schema": { "type": "object", "properties": properties },
                    },
                },
            });
        }
        item.insert("post".into(), post);
    }
    if has(Operation::Delete) {
        item.insert(
            "delete".into(),
            json!({
                "operationId": operation_id("delete"),
                "responses": { "204": { "description": "empty body" } },
            }),
        );
    }
    Value::Object(item)
}
