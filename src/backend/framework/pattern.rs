//! Path patterns: the shapes the Go framework's regular expressions take in practice, written
//! in a small language of their own and matched without a regex engine.

use std::fmt;
use std::str::FromStr;

/// Values captured from the request path, by field name.
pub type Captures = Vec<(String, String)>;

/// The most optional groups one pattern may have: each doubles the forms it is matched and
/// documented as.
const MAX_OPTIONAL_GROUPS: usize = 6;

/// One piece of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Element {
    /// Text the path must contain as it is.
    Literal(String),
    /// `{name}`: one generic name, never a `/`.
    Capture(String),
    /// `{*name}`: the rest of the path, slashes included.
    Rest(String),
    /// `{+name}`: the rest of the path as a key: not empty, not ending in `/`.
    Key(String),
    /// `{*}`: the rest of the path, not captured.
    Any,
    /// `[…]`: literals and captures the path may leave out as a whole.
    Optional(Vec<Element>),
}

/// One way a pattern can be written out: every optional group either present or absent.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Form {
    /// Literals, captures and rest captures, groups dissolved.
    elements: Vec<Element>,
    /// The captures of the absent groups: a path matched this way captures them as `""`.
    absent: Vec<String>,
}

/// A compiled path pattern: which request paths (relative to the mount) a path serves, and
/// which parts of them are fields.
///
/// # The pattern language
///
/// Matching is anchored at both ends: the whole request path must match.
///
/// * **Literal text** matches itself: `config`, `roles/`, `rotate-root`.
/// * **`{name}`** captures one *generic name* into the field `name`: a word character, or word
///   characters at both ends with word characters, `-` and `.` between (Go's
///   `framework.GenericNameRegex`, `\w(([\w-.]+)?\w)?`, ASCII). It never spans a `/` and takes
///   the rest of its segment, so it may follow a literal in the same segment (`key-{name}`) but
///   must be followed by `/`, the end of the pattern, a trailing `/?` or an optional group that
///   starts with `/`. A capture name is letters, digits and `_`.
/// * **`{*name}`** captures the rest of the path, `/` included and possibly empty (Go's
///   `framework.MatchAllRegex`). It is the last element of the pattern: nothing follows it, not
///   even `/?` (a group's closing `]` may).
/// * **`{+name}`** captures the rest of the path as a *key* of a hierarchical store: `/`
///   included, but never empty and never ending in `/` (Go's `(?P<name>.*?[^/])$`, the KV
///   engine's `data/` pattern), so `files/` and `files/dir/` are left to a later path (a
///   list, say). Last, as `{*name}` is.
/// * **`{*}`** matches the rest of the path without capturing it (Go's `.*`): a catch-all,
///   usually the last path of a router, for a precise answer where the router would say
///   `unsupported path`. Last, as `{*name}` is.
///
/// As in Go's regular expressions, where `.` never matches a newline, a rest (`{*name}`,
/// `{*}`) never spans a `\n`, and a key has one only as its last character.
/// * **`[…]`** is an optional group of literals and captures (Go's `(…)?`): `config[/{name}]`
///   serves both `config` and `config/<name>`. Groups do not nest. When the path leaves a
///   group out, its captures read as the empty string, as Go's regex captures them: a body
///   value cannot stand in for a part of the path that the path does not show (a policy on
///   `config` must not reach `config/<name>`).
/// * **A trailing `/?`** makes the final slash optional: `kv/?` serves `kv` and `kv/`.
///
/// Every capture is a field of the same name that the path must declare
/// ([`Router::new`](super::Router::new) checks it).
///
/// ```
/// use vault_plugin_sdk::backend::framework::PathPattern;
///
/// let role = PathPattern::parse("roles/{name}").unwrap();
/// assert_eq!(role.matches("roles/web-1"), Some(vec![("name".into(), "web-1".into())]));
/// assert_eq!(role.matches("roles/a/b"), None, "a capture never spans a slash");
/// assert_eq!(role.matches("roles/"), None, "nor is it empty");
///
/// let list = PathPattern::parse("roles/?").unwrap();
/// assert!(list.matches("roles").is_some() && list.matches("roles/").is_some());
///
/// let files = PathPattern::parse("files/{*path}").unwrap();
/// assert_eq!(files.matches("files/a/b.txt"), Some(vec![("path".into(), "a/b.txt".into())]));
///
/// let key = PathPattern::parse("data/{+path}").unwrap();
/// assert_eq!(key.matches("data/a/b"), Some(vec![("path".into(), "a/b".into())]));
/// assert_eq!(key.matches("data/a/"), None, "a key never ends in '/'");
/// assert_eq!(key.matches("data/"), None, "nor is it empty");
///
/// let anything = PathPattern::parse("{*}").unwrap();
/// assert_eq!(anything.matches("no/such/path"), Some(vec![]));
///
/// let config = PathPattern::parse("config[/{name}]").unwrap();
/// assert_eq!(config.matches("config/db"), Some(vec![("name".into(), "db".into())]));
/// assert_eq!(config.matches("config"), Some(vec![("name".into(), "".into())]));
/// assert_eq!(config.to_regex(), r"^config(/(?P<name>\w(([\w-.]+)?\w)?))?$");
/// assert_eq!(config.openapi_paths(), ["config", "config/{name}"]);
/// ```
///
/// # Refused patterns
///
/// A pattern that is malformed or cannot match anything is a programming error:
/// [`PathPattern::parse`] says what is wrong, and [`PathSpec::new`](super::PathSpec::new)
/// panics with that message, naming the pattern, while the router is built. Refused: an
/// unclosed `{` or `[` (or a `}` or `]` without its opening), an empty or ill-formed capture
/// name, a name captured twice, `{*name}` anywhere but last, two captures with nothing between
/// them, a capture followed by anything but `/` in its segment, an empty segment (`//`), a
/// leading `/`, an empty or nested optional group, more than six optional groups, and `?` or
/// `*` outside `/?`, `{*name}` and `{*}`. What holds for `{*name}` holds for `{+name}` and
/// `{*}`.
///
/// ```
/// use vault_plugin_sdk::backend::framework::PathPattern;
///
/// for bad in ["roles/{name", "roles/{}", "a/{x}/{x}", "{*rest}/more", "a/{x}{y}", "a//b", "/a"] {
///     let error = PathPattern::parse(bad).unwrap_err();
///     assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    elements: Vec<Element>,
    optional_trailing_slash: bool,
    /// Every way of writing the pattern out, in the order matching tries them.
    forms: Vec<Form>,
}

/// Why a pattern was refused: it is malformed or cannot match anything.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "path pattern {:?} is refused: {}",
            self.pattern, self.problem
        )
    }
}

impl std::error::Error for PatternError {}

impl FromStr for PathPattern {
    type Err = PatternError;

    fn from_str(pattern: &str) -> Result<Self, PatternError> {
        Self::parse(pattern)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PathPattern {
    /// Compiles `pattern`, or says why it is refused (see the [language](PathPattern)).
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let refuse = |problem: String| PatternError {
            pattern: pattern.to_owned(),
            problem,
        };
        let (body, optional_trailing_slash) = match pattern.strip_suffix("/?") {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        let elements = parse_elements(body).map_err(refuse)?;
        let groups = elements
            .iter()
            .filter(|element| matches!(element, Element::Optional(_)))
            .count();
        if groups > MAX_OPTIONAL_GROUPS {
            return Err(refuse(format!(
                "it has {groups} optional groups, more than the {MAX_OPTIONAL_GROUPS} a pattern \
                 may have (each doubles the ways it is matched and documented)"
            )));
        }
        let forms = forms(&elements);
        let compiled = Self {
            text: pattern.to_owned(),
            elements,
            optional_trailing_slash,
            forms,
        };
        compiled.check().map_err(refuse)?;
        Ok(compiled)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Refuses patterns that are well formed but cannot match anything, or match ambiguously.
    fn check(&self) -> Result<(), String> {
        let mut names: Vec<&str> = Vec::new();
        for name in self.capture_names() {
            if names.contains(&name) {
                return Err(format!("{name:?} is captured twice"));
            }
            names.push(name);
        }
        // `{*name}` last: nothing after it, at the top level or in its group, and no `/?`.
        for (index, element) in self.elements.iter().enumerate() {
            let is_last = index + 1 == self.elements.len();
            let rest_inside = match element {
                Element::Optional(inner) => inner
                    .iter()
                    .enumerate()
                    .find_map(|(i, e)| e.rest_text().map(|text| (text, i + 1 == inner.len()))),
                other => other.rest_text().map(|text| (text, true)),
            };
            if let Some((text, last_in_group)) = rest_inside {
                if !is_last || !last_in_group {
                    return Err(format!("{text} must be the last element of the pattern"));
                }
                if self.optional_trailing_slash {
                    return Err(format!(
                        "{text} must be the last element of the pattern: it already decides \
                         the final '/', so '/?' cannot follow it"
                    ));
                }
            }
        }
        for form in &self.forms {
            check_form(&form.elements, self.optional_trailing_slash)?;
        }
        Ok(())
    }

    /// The captures when `path` matches the whole pattern. A capture of an optional group the
    /// path leaves out is captured as `""`, as Go's regex captures it.
    pub fn matches(&self, path: &str) -> Option<Captures> {
        self.forms.iter().find_map(|form| {
            let mut captured = match_form(&form.elements, path, self.optional_trailing_slash)?;
            if !form.absent.is_empty() {
                captured.extend(form.absent.iter().map(|name| (name.clone(), String::new())));
                // In the order the pattern names them.
                let order: Vec<&str> = self.capture_names().collect();
                captured.sort_by_key(|(name, _)| order.iter().position(|n| n == name));
            }
            Some(captured)
        })
    }

    /// The equivalent Go regular expression, as help and OpenAPI show it.
    pub fn to_regex(&self) -> String {
        let mut regex = String::from("^");
        push_regex(&mut regex, &self.elements);
        if self.optional_trailing_slash {
            regex.push_str("/?");
        }
        regex.push('$');
        regex
    }

    /// The OpenAPI forms of the path: `kv/{key}`, `kv` for `kv/?`, and one path per way of
    /// writing out the optional groups, as Go's `expandPattern` does (`config` and
    /// `config/{name}` for `config[/{name}]`); a `{*name}` is `{name}`. Sorted, without
    /// duplicates.
    pub fn openapi_paths(&self) -> Vec<String> {
        self.openapi_forms()
            .into_iter()
            .map(|(path, _)| path)
            .collect()
    }

    /// [`Self::openapi_paths`], each with the captures it shows.
    pub(super) fn openapi_forms(&self) -> Vec<(String, Vec<&str>)> {
        let mut forms: Vec<(String, Vec<&str>)> = Vec::new();
        for form in &self.forms {
            let mut path = String::new();
            let mut captures = Vec::new();
            for element in &form.elements {
                match element {
                    Element::Literal(literal) => path.push_str(literal),
                    Element::Capture(name) | Element::Rest(name) | Element::Key(name) => {
                        path.push('{');
                        path.push_str(name);
                        path.push('}');
                        captures.push(name.as_str());
                    }
                    // Not a parameter: a catch-all documents as the part before it.
                    Element::Any => {}
                    Element::Optional(_) => unreachable!("forms dissolve groups"),
                }
            }
            // The Go SDK documents `kv/?` as `kv` alone.
            if !forms.iter().any(|(known, _)| *known == path) {
                forms.push((path, captures));
            }
        }
        forms.sort();
        forms
    }

    /// The names of the captured fields, in order, those of optional groups included.
    pub fn capture_names(&self) -> impl Iterator<Item = &str> {
        self.elements.iter().flat_map(|element| match element {
            Element::Optional(inner) => inner.iter().filter_map(capture_name).collect(),
            other => capture_name(other).into_iter().collect::<Vec<_>>(),
        })
    }
}

fn capture_name(element: &Element) -> Option<&str> {
    match element {
        Element::Capture(name) | Element::Rest(name) | Element::Key(name) => Some(name),
        Element::Literal(_) | Element::Optional(_) | Element::Any => None,
    }
}

impl Element {
    /// How a pattern writes an element that takes the rest of the path; `None` for the others.
    fn rest_text(&self) -> Option<String> {
        match self {
            Self::Rest(name) => Some(format!("{{*{name}}}")),
            Self::Key(name) => Some(format!("{{+{name}}}")),
            Self::Any => Some("{*}".to_owned()),
            Self::Literal(_) | Self::Capture(_) | Self::Optional(_) => None,
        }
    }

    /// How a pattern writes a capture or a rest; `None` for literals and groups.
    fn capture_text(&self) -> Option<String> {
        match self {
            Self::Capture(name) => Some(format!("{{{name}}}")),
            other => other.rest_text(),
        }
    }
}

/// Every way of writing `elements` out, optional groups present before absent, the first
/// group varying slowest: the order in which Go's regex prefers them.
fn forms(elements: &[Element]) -> Vec<Form> {
    let mut forms = vec![Form {
        elements: Vec::new(),
        absent: Vec::new(),
    }];
    for element in elements {
        match element {
            Element::Optional(inner) => {
                forms = forms
                    .into_iter()
                    .flat_map(|form| {
                        let mut present = form.clone();
                        present.elements.extend(inner.iter().cloned());
                        let mut absent = form;
                        absent
                            .absent
                            .extend(inner.iter().filter_map(capture_name).map(str::to_owned));
                        [present, absent]
                    })
                    .collect();
            }
            plain => {
                for form in &mut forms {
                    form.elements.push(plain.clone());
                }
            }
        }
    }
    forms
}

/// Splits a pattern's body (its `/?` removed) into elements.
fn parse_elements(body: &str) -> Result<Vec<Element>, String> {
    let mut top = Vec::new();
    let mut group: Option<Vec<Element>> = None;
    let mut literal = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' => {
                let current = match group.as_mut() {
                    Some(inner) => inner,
                    None => &mut top,
                };
                flush(&mut literal, current);
                let inside = &body[at + 1..];
                let close = inside.find('}').ok_or("it has an unclosed '{'")?;
                let name = &inside[..close];
                current.push(capture(name)?);
                // Skip the name and the '}'.
                for _ in 0..=name.chars().count() {
                    chars.next();
                }
            }
            '}' => return Err("it has a '}' without its '{'".to_owned()),
            '[' => {
                if group.is_some() {
                    return Err("optional groups '[…]' do not nest".to_owned());
                }
                flush(&mut literal, &mut top);
                group = Some(Vec::new());
            }
            ']' => {
                let Some(mut inner) = group.take() else {
                    return Err("it has a ']' without its '['".to_owned());
                };
                flush(&mut literal, &mut inner);
                if inner.is_empty() {
                    return Err("it has an empty optional group '[]'".to_owned());
                }
                top.push(Element::Optional(inner));
            }
            '?' => {
                return Err(
                    "'?' is only allowed in a trailing '/?' (a request path has no '?')".to_owned(),
                );
            }
            '*' => return Err("'*' is only allowed in '{*name}' and '{*}'".to_owned()),
            c => literal.push(c),
        }
    }
    if group.is_some() {
        return Err("it has an unclosed '['".to_owned());
    }
    flush(&mut literal, &mut top);
    Ok(top)
}

fn flush(literal: &mut String, into: &mut Vec<Element>) {
    if !literal.is_empty() {
        into.push(Element::Literal(std::mem::take(literal)));
    }
}

/// The element `{name}`, `{*name}`, `{+name}` or `{*}` stands for.
fn capture(inside: &str) -> Result<Element, String> {
    if inside == "*" {
        return Ok(Element::Any);
    }
    let (name, make): (&str, fn(String) -> Element) = if let Some(name) = inside.strip_prefix('*') {
        (name, Element::Rest)
    } else if let Some(name) = inside.strip_prefix('+') {
        (name, Element::Key)
    } else {
        (inside, Element::Capture)
    };
    if name.is_empty() {
        return Err(format!("{{{inside}}} has an empty capture name"));
    }
    if !name.chars().all(is_word) {
        return Err(format!(
            "the capture name {name:?} may hold only ASCII letters, digits and '_'"
        ));
    }
    Ok(make(name.to_owned()))
}

/// Refuses one written-out form of a pattern that cannot match anything.
fn check_form(elements: &[Element], optional_trailing_slash: bool) -> Result<(), String> {
    // The literal text around the captures: `//` or a leading `/` can never match.
    let mut text = String::new();
    for (index, element) in elements.iter().enumerate() {
        match element {
            Element::Literal(literal) => text.push_str(literal),
            Element::Capture(_) | Element::Rest(_) | Element::Key(_) | Element::Any => {
                let written = element.capture_text().unwrap_or_default();
                match elements.get(index + 1) {
                    Some(Element::Literal(next)) => {
                        if let Element::Capture(name) = element {
                            if !next.starts_with('/') {
                                return Err(format!(
                                    "{{{name}}} takes the rest of its segment, so {next:?} \
                                     cannot follow it: end the segment with '/' or use a \
                                     literal before the capture"
                                ));
                            }
                        }
                    }
                    Some(next) if next.capture_text().is_none() => {}
                    Some(next) => {
                        return Err(format!(
                            "{written} and {} are two captures with nothing between them",
                            next.capture_text().unwrap_or_default()
                        ));
                    }
                    None => {}
                }
                text.push('\0');
            }
            Element::Optional(_) => unreachable!("forms dissolve groups"),
        }
    }
    if optional_trailing_slash {
        text.push('/');
    }
    if text.starts_with('/') {
        return Err(
            "it starts with '/': request paths are relative to the mount and never do".to_owned(),
        );
    }
    if text.contains("//") {
        return Err("it has an empty segment ('//'), which no request path has".to_owned());
    }
    Ok(())
}

/// Matches one written-out form of a pattern.
fn match_form(elements: &[Element], path: &str, optional_trailing_slash: bool) -> Option<Captures> {
    let mut captures = Captures::new();
    let mut rest = path;
    for element in elements {
        match element {
            Element::Literal(literal) => rest = rest.strip_prefix(literal.as_str())?,
            Element::Capture(name) => {
                // A generic name never contains '/', so it runs to the next slash or to the
                // end; what follows it starts with a slash, or is the end.
                let end = rest.find('/').unwrap_or(rest.len());
                let value = &rest[..end];
                if !is_generic_name(value) {
                    return None;
                }
                captures.push((name.clone(), value.to_owned()));
                rest = &rest[end..];
            }
            Element::Rest(name) => {
                if rest.contains('\n') {
                    return None;
                }
                captures.push((name.clone(), rest.to_owned()));
                rest = "";
            }
            Element::Key(name) => {
                if !is_key(rest) {
                    return None;
                }
                captures.push((name.clone(), rest.to_owned()));
                rest = "";
            }
            Element::Any => {
                if rest.contains('\n') {
                    return None;
                }
                rest = "";
            }
            Element::Optional(_) => unreachable!("forms dissolve groups"),
        }
    }
    match rest {
        "" => Some(captures),
        "/" if optional_trailing_slash => Some(captures),
        _ => None,
    }
}

fn push_regex(regex: &mut String, elements: &[Element]) {
    for element in elements {
        match element {
            Element::Literal(literal) => {
                for c in literal.chars() {
                    if r"\.+()|^$".contains(c) {
                        regex.push('\\');
                    }
                    regex.push(c);
                }
            }
            Element::Capture(name) => {
                regex.push_str(&format!(r"(?P<{name}>\w(([\w-.]+)?\w)?)"));
            }
            Element::Rest(name) => regex.push_str(&format!("(?P<{name}>.*)")),
            Element::Key(name) => regex.push_str(&format!("(?P<{name}>.*?[^/])")),
            Element::Any => regex.push_str(".*"),
            Element::Optional(inner) => {
                regex.push('(');
                push_regex(regex, inner);
                regex.push_str(")?");
            }
        }
    }
}

/// `.*?[^/]` as RE2 matches it: not empty, not ending in `/`, and a newline only as the last
/// character (`.` never matches one, the class `[^/]` does).
fn is_key(value: &str) -> bool {
    match value.chars().next_back() {
        None | Some('/') => false,
        Some(last) => !value[..value.len() - last.len_utf8()].contains('\n'),
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
mod tests;
