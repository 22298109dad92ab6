#![allow(clippy::unwrap_used)]

use super::*;

fn compiled(pattern: &str) -> PathPattern {
    PathPattern::parse(pattern).unwrap_or_else(|error| panic!("{error}"))
}

fn captured(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
    compiled(pattern).matches(path)
}

fn pairs(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// The problem `pattern` is refused with; the message names the pattern.
fn refusal(pattern: &str) -> String {
    let error = PathPattern::parse(pattern).unwrap_err();
    assert_eq!(error.pattern, pattern);
    assert!(
        error
            .to_string()
            .starts_with(&format!("path pattern {pattern:?} is refused: ")),
        "{error}"
    );
    error.problem
}

// ---------------------------------------------------------------------------------------------
// Literals, `{name}` and `/?`
// ---------------------------------------------------------------------------------------------

#[test]
fn optional_trailing_slash_matches_both_forms_and_nothing_else() {
    assert_eq!(captured("kv/?", "kv"), Some(vec![]));
    assert_eq!(captured("kv/?", "kv/"), Some(vec![]));
    assert_eq!(captured("kv/?", "kv//"), None);
    assert_eq!(captured("kv/?", "kvx"), None);
    assert_eq!(captured("kv/?", "x/kv"), None);
}

#[test]
fn generic_names_follow_the_go_regex() {
    let key = |k: &str| pairs(&[("key", k)]);
    assert_eq!(captured("kv/{key}", "kv/foo"), key("foo"));
    assert_eq!(captured("kv/{key}", "kv/a"), key("a"));
    assert_eq!(captured("kv/{key}", "kv/a-b.c_d"), key("a-b.c_d"));
    for bad in [
        "kv/", "kv/-a", "kv/a-", "kv/.a", "kv/a.", "kv/a/b", "kv/..", "kv/é", "kv/a b",
    ] {
        assert_eq!(captured("kv/{key}", bad), None, "{bad}");
    }
}

#[test]
fn a_capture_never_spans_a_slash_and_may_follow_a_literal_in_its_segment() {
    let two = "roles/{role}/keys/key-{key}/?";
    assert_eq!(
        captured(two, "roles/web/keys/key-1"),
        pairs(&[("role", "web"), ("key", "1")])
    );
    assert_eq!(
        captured(two, "roles/web/keys/key-1/"),
        pairs(&[("role", "web"), ("key", "1")])
    );
    assert_eq!(captured(two, "roles/a/b/keys/key-1"), None);
    assert_eq!(captured(two, "roles/web/keys/1"), None);
    assert_eq!(captured(two, "roles/web/keys/key-"), None);
}

#[test]
fn literal_paths_are_anchored() {
    assert_eq!(captured("errors/rpc", "errors/rpc"), Some(vec![]));
    assert_eq!(captured("errors/rpc", "errors/rpcx"), None);
    assert_eq!(captured("errors/rpc", "errors/rpc/"), None);
    assert_eq!(captured("internal", ""), None);
    assert_eq!(captured("", ""), Some(vec![]));
}

#[test]
fn patterns_render_as_go_regex_and_openapi_paths() {
    assert_eq!(compiled("kv/?").to_regex(), "^kv/?$");
    assert_eq!(
        compiled("kv/{key}").to_regex(),
        r"^kv/(?P<key>\w(([\w-.]+)?\w)?)$"
    );
    assert_eq!(compiled("kv/{key}").openapi_paths(), ["kv/{key}"]);
    assert_eq!(compiled("kv/?").openapi_paths(), ["kv"]);
    assert_eq!(compiled("issued/").openapi_paths(), ["issued/"]);
    // Regex metacharacters of a literal are escaped.
    assert_eq!(compiled("v1.2/a+b").to_regex(), r"^v1\.2/a\+b$");
}

#[test]
fn the_pattern_keeps_its_text() {
    let pattern = compiled("roles/{name}");
    assert_eq!(pattern.as_str(), "roles/{name}");
    assert_eq!(pattern.to_string(), "roles/{name}");
    assert_eq!("roles/{name}".parse::<PathPattern>(), Ok(pattern));
}

// ---------------------------------------------------------------------------------------------
// `{*name}`
// ---------------------------------------------------------------------------------------------

#[test]
fn a_rest_capture_takes_the_rest_of_the_path_slashes_included() {
    let path = |p: &str| pairs(&[("path", p)]);
    assert_eq!(captured("files/{*path}", "files/a"), path("a"));
    assert_eq!(
        captured("files/{*path}", "files/a/b/c.txt"),
        path("a/b/c.txt")
    );
    assert_eq!(captured("files/{*path}", "files/a/"), path("a/"));
    // Go's `.*` matches nothing too.
    assert_eq!(captured("files/{*path}", "files/"), path(""));
    assert_eq!(captured("files/{*path}", "files"), None);
    assert_eq!(captured("files/{*path}", "other/a"), None);
    assert_eq!(
        captured("mounts/{mount}/{*path}", "mounts/m1/x/y"),
        pairs(&[("mount", "m1"), ("path", "x/y")])
    );
}

#[test]
fn a_rest_capture_renders_as_match_all() {
    let pattern = compiled("files/{*path}");
    assert_eq!(pattern.to_regex(), "^files/(?P<path>.*)$");
    assert_eq!(pattern.openapi_paths(), ["files/{path}"]);
    assert_eq!(pattern.capture_names().collect::<Vec<_>>(), ["path"]);
}

#[test]
fn a_rest_never_spans_a_newline_as_go_dot_never_matches_one() {
    assert_eq!(captured("files/{*path}", "files/a\nb"), None);
    assert_eq!(captured("{*}", "a\n"), None);
}

#[test]
fn a_key_is_the_rest_of_the_path_never_empty_and_never_ending_in_a_slash() {
    let path = |p: &str| pairs(&[("path", p)]);
    assert_eq!(captured("data/{+path}", "data/a"), path("a"));
    assert_eq!(captured("data/{+path}", "data/a/b c/d"), path("a/b c/d"));
    assert_eq!(captured("data/{+path}", "data//a"), path("/a"));
    assert_eq!(captured("data/{+path}", "data/a//b"), path("a//b"));
    for no in ["data/", "data", "data/a/", "data//", "other/a"] {
        assert_eq!(captured("data/{+path}", no), None, "{no:?}");
    }
    // `.*?[^/]`: `.` stops at a newline, `[^/]` takes one as the last character.
    assert_eq!(captured("data/{+path}", "data/a\n"), path("a\n"));
    assert_eq!(captured("data/{+path}", "data/a\nb"), None);
}

#[test]
fn a_key_renders_as_the_go_regex_and_a_parameter() {
    let pattern = compiled("data/{+path}");
    assert_eq!(pattern.to_regex(), "^data/(?P<path>.*?[^/])$");
    assert_eq!(pattern.openapi_paths(), ["data/{path}"]);
    assert_eq!(pattern.capture_names().collect::<Vec<_>>(), ["path"]);
}

#[test]
fn a_catch_all_matches_every_path_and_captures_nothing() {
    for path in ["", "a", "a/b/", "data/", "/"] {
        assert_eq!(captured("{*}", path), Some(vec![]), "{path:?}");
    }
    assert_eq!(captured("x/{*}", "x/anything/"), Some(vec![]));
    assert_eq!(captured("x/{*}", "y/"), None);
    let pattern = compiled("{*}");
    assert_eq!(pattern.to_regex(), "^.*$");
    assert_eq!(pattern.capture_names().count(), 0);
}

#[test]
fn a_key_or_a_catch_all_that_is_not_last_is_refused() {
    assert!(refusal("{+key}/more").contains("{+key} must be the last"));
    assert!(refusal("a/{+key}/?").contains("{+key} must be the last"));
    assert!(refusal("{*}/more").contains("{*} must be the last"));
    assert!(refusal("a/{x}{+y}").contains("{x} and {+y} are two captures"));
    assert!(refusal("a/{x}{*}").contains("{x} and {*} are two captures"));
}

// ---------------------------------------------------------------------------------------------
// Optional groups
// ---------------------------------------------------------------------------------------------

#[test]
fn an_optional_group_may_be_present_or_absent_and_captures_empty_when_absent() {
    let pattern = "config[/{name}]";
    assert_eq!(captured(pattern, "config/db"), pairs(&[("name", "db")]));
    assert_eq!(captured(pattern, "config"), pairs(&[("name", "")]));
    assert_eq!(captured(pattern, "config/"), None);
    assert_eq!(captured(pattern, "config/a/b"), None);
    assert_eq!(captured(pattern, "configx"), None);
}

#[test]
fn optional_groups_hold_literals_and_combine_with_the_trailing_slash() {
    let pattern = "keys[/rotate]/?";
    assert_eq!(captured(pattern, "keys"), Some(vec![]));
    assert_eq!(captured(pattern, "keys/"), Some(vec![]));
    assert_eq!(captured(pattern, "keys/rotate"), Some(vec![]));
    assert_eq!(captured(pattern, "keys/rotate/"), Some(vec![]));
    assert_eq!(captured(pattern, "keys/other"), None);
    assert_eq!(compiled(pattern).to_regex(), "^keys(/rotate)?/?$");
}

#[test]
fn several_groups_prefer_the_first_present_as_go_does() {
    let pattern = "a[/{x}][/{y}]";
    assert_eq!(captured(pattern, "a/1/2"), pairs(&[("x", "1"), ("y", "2")]));
    // Either group could take it; Go's leftmost-first regex gives it to the first.
    assert_eq!(captured(pattern, "a/1"), pairs(&[("x", "1"), ("y", "")]));
    assert_eq!(captured(pattern, "a"), pairs(&[("x", ""), ("y", "")]));
    assert_eq!(
        compiled(pattern).openapi_paths(),
        ["a", "a/{x}", "a/{x}/{y}", "a/{y}"]
    );
}

#[test]
fn a_group_may_end_with_a_rest_capture() {
    let pattern = "secret[/{*path}]";
    assert_eq!(captured(pattern, "secret"), pairs(&[("path", "")]));
    assert_eq!(captured(pattern, "secret/a/b"), pairs(&[("path", "a/b")]));
    assert_eq!(compiled(pattern).to_regex(), "^secret(/(?P<path>.*))?$");
    assert_eq!(
        compiled(pattern).openapi_paths(),
        ["secret", "secret/{path}"]
    );
}

#[test]
fn an_optional_group_expands_into_openapi_paths_with_their_own_captures() {
    let pattern = compiled("roles/{role}[/keys/{key}]");
    assert_eq!(
        pattern.openapi_forms(),
        [
            ("roles/{role}".to_owned(), vec!["role"]),
            ("roles/{role}/keys/{key}".to_owned(), vec!["role", "key"]),
        ]
    );
    assert_eq!(pattern.capture_names().collect::<Vec<_>>(), ["role", "key"]);
}

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

#[test]
fn an_unclosed_brace_is_refused() {
    assert!(refusal("kv/{key").contains("unclosed '{'"));
    assert!(refusal("kv/key}").contains("'}' without its '{'"));
}

#[test]
fn an_empty_capture_name_is_refused() {
    assert!(refusal("kv/{}").contains("empty capture name"));
    assert!(refusal("kv/{+}").contains("empty capture name"));
    // `{*}` is the catch-all, not an empty rest capture.
    assert!(PathPattern::parse("kv/{*}").is_ok());
}

#[test]
fn an_ill_formed_capture_name_is_refused() {
    for bad in ["kv/{a-b}", "kv/{a b}", "kv/{a/b}", "kv/{a{b}"] {
        assert!(refusal(bad).contains("capture name"), "{bad}");
    }
}

#[test]
fn a_name_captured_twice_is_refused() {
    assert!(refusal("a/{x}/b/{x}").contains("\"x\" is captured twice"));
    assert!(refusal("a/{x}[/{*x}]").contains("\"x\" is captured twice"));
}

#[test]
fn a_rest_capture_that_is_not_last_is_refused() {
    for bad in [
        "{*rest}/more",
        "a/{*rest}[/b]",
        "a[/{*rest}/b]",
        "a/{*rest}/?",
    ] {
        assert!(refusal(bad).contains("{*rest} must be the last"), "{bad}");
    }
}

#[test]
fn two_captures_with_nothing_between_them_are_refused() {
    for bad in ["a/{x}{y}", "a/{x}{*y}", "a/{x}[{y}]"] {
        assert!(refusal(bad).contains("nothing between"), "{bad}");
    }
}

#[test]
fn a_capture_followed_by_more_of_its_segment_is_refused() {
    assert!(refusal("a/{name}.json").contains("rest of its segment"));
    assert!(refusal("a/{name}[.json]").contains("rest of its segment"));
}

#[test]
fn an_empty_segment_is_refused() {
    for bad in ["a//b", "a/[/b]", "kv//?", "a/[{x}]/b"] {
        assert!(refusal(bad).contains("empty segment"), "{bad}");
    }
}

#[test]
fn a_leading_slash_is_refused() {
    for bad in ["/kv", "[/kv]", "/?"] {
        assert!(refusal(bad).contains("starts with '/'"), "{bad}");
    }
}

#[test]
fn malformed_optional_groups_are_refused() {
    assert!(refusal("a[/b").contains("unclosed '['"));
    assert!(refusal("a/b]").contains("']' without its '['"));
    assert!(refusal("a[]").contains("empty optional group"));
    assert!(refusal("a[/b[/c]]").contains("do not nest"));
    assert!(refusal("a[/b][/c][/d][/e][/f][/g][/h]").contains("7 optional groups"));
    assert_eq!(
        compiled("a[/b][/c][/d][/e][/f][/g]").openapi_paths().len(),
        64
    );
}

#[test]
fn question_marks_and_stars_outside_their_syntax_are_refused() {
    assert!(refusal("a?/b").contains("trailing '/?'"));
    assert!(refusal("a/*").contains("'{*name}' and '{*}'"));
}
