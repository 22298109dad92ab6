//! Help text, in the layout of the Go framework's templates, so `bao path-help` reads the same.

use serde_json::{Map, Value};

use super::{PathSpec, Router, openapi};
use crate::backend::{BackendType, Request, Response};

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|line| format!("{pad}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn or_placeholder(text: &str, placeholder: &'static str) -> String {
    match text.trim() {
        "" => placeholder.to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

/// The help text plus the OpenAPI document of `specs` (the server builds
/// `sys/internal/specs/openapi` from it, so a help answer must never be empty).
fn help_response<'a, B: 'a>(
    router: &Router<B>,
    request: &Request,
    kind: BackendType,
    text: String,
    specs: impl IntoIterator<Item = &'a PathSpec<B>>,
) -> Response {
    let prefix = request
        .data
        .get("requestResponsePrefix")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut data = Map::new();
    data.insert("help".to_owned(), Value::String(text));
    data.insert("see_also".to_owned(), Value::Null);
    data.insert(
        "openapi".to_owned(),
        openapi::document(router, specs, prefix, kind),
    );
    Response::with_data(data)
}

/// Help for the mount root: the backend's description and every path with its synopsis.
pub(super) fn root_help<B>(router: &Router<B>, request: &Request, kind: BackendType) -> Response {
    let mut paths: Vec<(String, &str)> = router
        .paths()
        .iter()
        .map(|spec| (spec.pattern.to_regex(), spec.synopsis.trim()))
        .collect();
    paths.sort_unstable();

    let mut text = format!(
        "## DESCRIPTION\n\n{}\n\n## PATHS\n\n\
         The following paths are supported by this backend. To view help for\n\
         any of the paths below, use the help command with any route matching\n\
         the path pattern. Note that depending on the policy of your auth token,\n\
         you may or may not be able to access certain paths.\n\n",
        router.backend_help.trim()
    );
    for (pattern, synopsis) in paths {
        text.push_str(&format!(
            "{}\n{}\n\n",
            indent(&pattern, 4),
            indent(synopsis, 8)
        ));
    }
    help_response(
        router,
        request,
        kind,
        text.trim().to_owned(),
        router.paths(),
    )
}

/// Help for one path: the route, the synopsis, the parameters and the description.
pub(super) fn path_help<B>(
    router: &Router<B>,
    spec: &PathSpec<B>,
    request: &Request,
    kind: BackendType,
) -> Response {
    let mut text = format!(
        "Request:        {}\nMatching Route: {}\n\n{}\n\n",
        request.path,
        spec.pattern.to_regex(),
        or_placeholder(spec.synopsis, "<no synopsis>"),
    );
    let mut fields: Vec<_> = spec.fields.iter().collect();
    fields.sort_unstable_by_key(|f| f.name);
    if !fields.is_empty() {
        text.push_str("## PARAMETERS\n");
        for field in fields {
            text.push_str(&format!(
                "\n{} ({})\n\n{}\n",
                indent(field.name, 4),
                field.kind.go_name(),
                indent(&or_placeholder(field.description, "<no description>"), 8)
            ));
        }
    }
    // The Go template leaves a blank line before the description, with or without parameters.
    text.push_str(&format!(
        "\n## DESCRIPTION\n\n{}",
        or_placeholder(spec.description, "<no description>")
    ));
    help_response(router, request, kind, text, [spec])
}
