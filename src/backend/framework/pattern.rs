//! Path patterns: the few shapes the Go framework's regular expressions take in practice,
//! matched without a regex engine.
//!
//! Syntax: literal text; `{name}` captures a *generic name* (a word character, optionally
//! followed by word characters, `-` and `.`, ending in a word character: no slashes); a
//! trailing `/?` makes the final slash optional. Matching is anchored at both ends.

/// Values captured from the request path, by field name.
pub type Captures = Vec<(String, String)>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    GenericName(String),
}

/// A compiled path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
    optional_trailing_slash: bool,
}

impl PathPattern {
    /// Compiles `pattern`. Patterns are written by the backend's author, so a malformed one
    /// (an unclosed `{`) is a programming error caught by the backend's own tests.
    pub fn parse(pattern: &str) -> Self {
        let (body, optional_trailing_slash) = match pattern.strip_suffix("/?") {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        let mut segments = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let close = rest
                        .find('}')
                        .unwrap_or_else(|| panic!("path pattern {pattern:?} has an unclosed '{{'"));
                    segments.push(Segment::GenericName(rest[1..close].to_owned()));
                    rest = &rest[close + 1..];
                }
                Some(open) => {
                    segments.push(Segment::Literal(rest[..open].to_owned()));
                    rest = &rest[open..];
                }
                None => {
                    segments.push(Segment::Literal(rest.to_owned()));
                    rest = "";
                }
            }
        }
        Self {
            segments,
            optional_trailing_slash,
        }
    }

    /// The captures when `path` matches the whole pattern.
    pub fn matches(&self, path: &str) -> Option<Captures> {
        let mut captures = Captures::new();
        let mut rest = path;
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(literal) => rest = rest.strip_prefix(literal.as_str())?,
                Segment::GenericName(name) => {
                    // A generic name never contains '/', so it runs to the next slash or to
                    // the end; what follows must then match the next literal.
                    let end = rest.find('/').unwrap_or(rest.len());
                    let is_last = index + 1 == self.segments.len();
                    let end = if is_last && !self.optional_trailing_slash {
                        rest.len()
                    } else {
                        end
                    };
                    let value = &rest[..end];
                    if !is_generic_name(value) {
                        return None;
                    }
                    captures.push((name.clone(), value.to_owned()));
                    rest = &rest[end..];
                }
            }
        }
        match rest {
            "" => Some(captures),
            "/" if self.optional_trailing_slash => Some(captures),
            _ => None,
        }
    }

    /// The equivalent Go regular expression, as help and OpenAPI show it.
    pub fn to_regex(&self) -> String {
        let mut regex = String::from("^");
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => regex.push_str(literal),
                Segment::GenericName(name) => {
                    regex.push_str(&format!(r"(?P<{name}>\w(([\w-.]+)?\w)?)"));
                }
            }
        }
        if self.optional_trailing_slash {
            regex.push_str("/?");
        }
        regex.push('$');
        regex
    }

    /// The OpenAPI form of the path: `kv/{key}`, `kv/`.
    pub fn to_openapi(&self) -> String {
        let mut path = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => path.push_str(literal),
                Segment::GenericName(name) => {
                    path.push('{');
                    path.push_str(name);
                    path.push('}');
                }
            }
        }
        // The Go SDK documents `kv/?` as `kv` alone.
        path
    }

    /// The names of the captured fields, in order.
    pub fn capture_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::GenericName(name) => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }
}

/// Go's `\w` in RE2 is ASCII only.
fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `\w(([\w-.]+)?\w)?`: one word character, or word characters at both ends with word
/// characters, dashes and dots between.
pub(crate) fn is_generic_name(value: &str) -> bool {
    let mut chars = value.chars();
    let (Some(first), last) = (chars.next(), value.chars().next_back()) else {
        return false;
    };
    is_word(first)
        && last.is_some_and(is_word)
        && value.chars().all(|c| is_word(c) || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        PathPattern::parse(pattern).matches(path)
    }

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
        let key = |k: &str| Some(vec![("key".to_owned(), k.to_owned())]);
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
    fn literal_paths_are_anchored() {
        assert_eq!(captured("errors/rpc", "errors/rpc"), Some(vec![]));
        assert_eq!(captured("errors/rpc", "errors/rpcx"), None);
        assert_eq!(captured("errors/rpc", "errors/rpc/"), None);
        assert_eq!(captured("internal", ""), None);
    }

    #[test]
    fn patterns_render_as_go_regex_and_openapi_paths() {
        assert_eq!(PathPattern::parse("kv/?").to_regex(), "^kv/?$");
        assert_eq!(
            PathPattern::parse("kv/{key}").to_regex(),
            r"^kv/(?P<key>\w(([\w-.]+)?\w)?)$"
        );
        assert_eq!(PathPattern::parse("kv/{key}").to_openapi(), "kv/{key}");
        assert_eq!(PathPattern::parse("kv/?").to_openapi(), "kv");
    }
}
