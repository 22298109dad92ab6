//! The tree keeps the shape `src/lib.rs` describes: no file of the library imports a file that
//! imports it back (directly or round a loop), and the machinery never reaches into a plugin
//! kind's API folder (`backend/`, `database/`) except through the kind's face in `services/`.
//!
//! A module's imports are read from its source as text: `crate::a::b` paths, `use crate::{..}`
//! groups and `super::x` paths, outside its `#[cfg(test)] mod tests`. Each names the file that
//! holds the longest module prefix of the path.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Module path (`services::backend::wire`) → file, for every file of the library.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            // The binary (the mock) and test modules are not the library's layout.
            let skip = path.extension().is_none_or(|e| e != "rs")
                || parts.is_empty()
                || parts == ["main"]
                || parts == ["lib"]
                || parts[0] == "mock"
                || parts.last().is_some_and(|p| p == "tests");
            if !skip {
                found.insert(parts.join("::"), path);
            }
        }
    }
    found
}

/// The words of `text` made of identifier characters and `::`, e.g. `crate::a::b`.
fn paths_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.match_indices(prefix)
        .map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches(':')
        })
        .collect()
}

/// The file holding the longest module prefix of `path`, if it is one of `known`.
fn resolve<'a>(known: &'a BTreeMap<String, PathBuf>, path: &str) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| known.get_key_value(&parts[..n].join("::")).map(|(k, _)| k))
}

fn graph(src: &Path) -> Graph {
    let known = modules(src);
    let mut graph = Graph::new();
    for (module, file) in &known {
        let text = fs::read_to_string(file).unwrap();
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let mut targets: Vec<String> = paths_after(text, "crate::")
            .into_iter()
            .map(str::to_owned)
            .collect();
        for group in text.split("crate::{").skip(1) {
            let inside = group.split('}').next().unwrap_or("");
            targets.extend(inside.split(',').map(|name| name.trim().to_owned()));
        }
        targets.extend(paths_after(text, "super::").into_iter().map(|p| {
            if parent.is_empty() {
                p.to_owned()
            } else {
                format!("{parent}::{p}")
            }
        }));
        let edges = graph.entry(module.clone()).or_default();
        for target in targets {
            if let Some(target) = resolve(&known, &target) {
                // A module may use its own children and itself.
                if target != module && !target.starts_with(&format!("{module}::")) {
                    edges.insert(target.clone());
                }
            }
        }
    }
    graph
}

/// Every loop in `graph`, each as the modules on it (Tarjan's strongly connected components).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        let next = state.index.len();
        state.index.insert(node, next);
        state.low.insert(node, next);
        state.stack.push(node);
        for target in state.graph.get(node).into_iter().flatten() {
            let target = target.as_str();
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[node].min(state.low[target]);
                state.low.insert(node, low);
            } else if state.stack.contains(&target) {
                let low = state.low[node].min(state.index[target]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let at = state.stack.iter().position(|n| *n == node).unwrap();
            let component: Vec<String> = state.stack.drain(at..).map(str::to_owned).collect();
            if component.len() > 1 {
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found
}

fn library() -> Graph {
    graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn no_file_of_the_library_imports_one_that_imports_it() {
    let graph = library();
    assert!(graph.len() > 40, "too few modules read: {}", graph.len());
    assert_eq!(cycles(&graph), Vec::<Vec<String>>::new());
}

#[test]
fn the_machinery_reaches_a_kinds_api_only_through_its_face() {
    let machinery = [
        "entry",
        "handshake",
        "session",
        "transport",
        "proto",
        "logging",
    ];
    for (module, targets) in library() {
        let top = module.split("::").next().unwrap();
        if !machinery.contains(&top) {
            continue;
        }
        // The entry takes a kind's factory and says the kind to a person; the session builds
        // the kind's face. Nothing below them knows a kind's API.
        let allowed = ["entry", "session"].contains(&top);
        let reaches: Vec<&String> = targets
            .iter()
            .filter(|t| t.starts_with("backend") || t.starts_with("database"))
            .collect();
        assert!(
            allowed || reaches.is_empty(),
            "{module} reaches a kind's API: {reaches:?}"
        );
    }
}

#[test]
fn a_loop_is_found_and_named() {
    let dir = std::env::temp_dir().join(format!("layout-test-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("a")).unwrap();
    fs::write(dir.join("a/mod.rs"), "use crate::b::Thing;\nmod inner;\n").unwrap();
    fs::write(dir.join("a/inner.rs"), "use super::Other;\n").unwrap();
    fs::write(dir.join("b.rs"), "use crate::{c, d};\n").unwrap();
    fs::write(dir.join("c.rs"), "fn f() { crate::a::inner::g() }\n").unwrap();
    fs::write(dir.join("d.rs"), "// nothing\n").unwrap();
    let graph = graph(&dir);
    fs::remove_dir_all(&dir).unwrap();
    let mut found = cycles(&graph);
    for cycle in &mut found {
        cycle.sort();
    }
    // a -> b -> c -> a::inner -> a (a child's `super::` reaches its parent).
    assert_eq!(found, [["a", "a::inner", "b", "c"]]);
}
