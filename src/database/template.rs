//! Username templates: the language of a database plugin's `username_template`.
//!
//! The Go plugins build a user's name with Go's `text/template` and the functions of the SDK's
//! `sdk/helper/template` (Vault and OpenBao). This module is that language: the template is
//! parsed once, when [`Database::initialize`](super::Database::initialize) reads the
//! configuration, and rendered for each user. PostgreSQL's default, for example:
//!
//! ```
//! use std::collections::BTreeMap;
//! use vault_plugin_sdk::database::template::Template;
//!
//! let template = Template::parse(
//!     r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}"#,
//! )?;
//! let data = BTreeMap::from([
//!     ("DisplayName".to_owned(), "token-ci".to_owned()),
//!     ("RoleName".to_owned(), "readonly".to_owned()),
//! ]);
//! let name = template.render(&data)?; // v-token-ci-readonly-<20 of [A-Za-z0-9]>-<unix seconds>
//! assert!(name.starts_with("v-token-ci-readonly-"));
//! # Ok::<(), vault_plugin_sdk::database::template::TemplateError>(())
//! ```
//!
//! # The language
//!
//! Text is copied; an action `{{ ... }}` prints the value of its pipeline. `{{-` trims the white
//! space before the action and `-}}` the white space after it; `{{/* ... */}}` is a comment.
//! A pipeline is commands joined by `|`, and the value of each becomes the *last* argument of
//! the next: `{{ .DisplayName | truncate 8 }}` is `truncate 8 .DisplayName`. A command is a
//! function and its arguments, or one operand: `.Field` (the data's entry of that name), a
//! string (`"..."` with Go's escapes, or raw `` `...` ``), an integer (`12`, `-3`, `0x1f`),
//! `true`, `false`, or a parenthesised pipeline. `{{ if PIPELINE }}...{{ else if ... }}...
//! {{ else }}...{{ end }}` chooses text by the value (an empty string, `0` and `false` are
//! false), as `glob` is meant to be used.
//!
//! The data is a map of strings. A field the map does not hold is an error when rendered
//! (`map has no entry for key "Foo"`): the Go plugins pass a struct of the fields they have
//! (`dbplugin.UsernameMetadata`, `DisplayName` and `RoleName`), where an unknown field is an
//! error, and they render the template once with empty values when they initialise, so a
//! plugin here renders with every field it offers present, empty if need be. (Go given a plain
//! map would print `<no value>` instead; nobody wants that in a user name.)
//!
//! The functions (`sdk/helper/template/funcs.go`; the last four are OpenBao's):
//!
//! | Function | Result |
//! |---|---|
//! | `random N` | N characters of `[A-Za-z0-9]` from the system's secure generator |
//! | `truncate N S` | the first N bytes of S; N must be > 0 |
//! | `truncate_sha256 N S` | S if it is at most N bytes, else its first N-8 bytes and the first 8 hex digits of the SHA-256 of the rest; N must be > 8 |
//! | `uppercase S`, `lowercase S` | S in upper or lower case |
//! | `replace FIND REPL S` | S with every FIND replaced by REPL |
//! | `sha256 S` | the SHA-256 of S in lower-case hex |
//! | `base64 S` | S in standard base64, padded |
//! | `unix_time`, `unix_time_millis` | the time since 1970 in seconds or milliseconds |
//! | `timestamp LAYOUT` | the time now in a Go layout, e.g. `"2006-01-02T15:04:05Z07:00"`; always in UTC (Go uses the process's local zone) |
//! | `uuid` | 16 random bytes as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` |
//! | `decode_base64 S`, `hex S`, `decode_hex S` | S decoded from standard base64, in hex, decoded from hex |
//! | `glob PATTERN S` | whether S matches PATTERN, where `*` is any run of characters |
//! | `printf FORMAT ARGS...` | Go's `fmt.Sprintf` for the verbs `%s %v %d %x %X %t %%`, flags `- + 0` and space, widths and precisions |
//!
//! Go's other builtins (`len`, `index`, `eq`, `print`, ...), variables, `range`, `with`,
//! `define` and `template`, `.` alone and `.A.B` are not supported and fail to parse with a
//! text that says so. Errors name the position and the template's own text, never a value of
//! the data, and read as the Go helper's do (`unable to parse template: template: template:1:
//! function "foo" not defined`).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use base64::Engine as _;

#[cfg(test)]
mod tests;

/// A parsed username template: parse it once, render it for each user.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    /// Byte offset of each line's start, for an error's `line:column`.
    line_starts: Vec<usize>,
}

/// Why a template did not parse or render. Its text is the Go helper's: what the Go plugins
/// wrap in `unable to initialize username template: ...` or `invalid username template: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template is empty: `missing template`.
    Missing,
    /// The text is not a template this module can run:
    /// `unable to parse template: template: template:LINE: MESSAGE`.
    Parse {
        /// The line (from 1) where it was found.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Rendering failed: `unable to apply template: template: template:LINE:COLUMN: executing
    /// "template" at <CONTEXT>: MESSAGE`.
    Render {
        /// The line (from 1) of the part that failed.
        line: usize,
        /// Its byte offset in the line (from 0, as Go counts).
        column: usize,
        /// That part of the template, e.g. `truncate 0`.
        context: String,
        /// What is wrong, e.g. `error calling truncate: max length must be > 0 but was 0`.
        message: String,
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("missing template"),
            Self::Parse { line, message } => {
                write!(
                    f,
                    "unable to parse template: template: template:{line}: {message}"
                )
            }
            Self::Render {
                line,
                column,
                context,
                message,
            } => write!(
                f,
                "unable to apply template: template: template:{line}:{column}: executing \"template\" at <{context}>: {message}"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    /// Parses a template. An empty text is [`TemplateError::Missing`], as in Go.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.is_empty() {
            return Err(TemplateError::Missing);
        }
        let tokens = lex(text);
        let mut parser = Parser {
            tokens,
            at: 0,
            action_line: 0,
        };
        let nodes = parser.top_level()?;
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Ok(Self { nodes, line_starts })
    }

    /// Renders the template with `data` for its `.Field`s. Random values and the time are
    /// taken anew on every call.
    pub fn render(&self, data: &BTreeMap<String, String>) -> Result<String, TemplateError> {
        let mut out = String::new();
        self.walk(&self.nodes, data, &mut out)
            .map_err(|e| self.located(e))?;
        Ok(out)
    }

    fn located(&self, error: ExecError) -> TemplateError {
        let line = self
            .line_starts
            .partition_point(|&start| start <= error.pos);
        let column = error.pos - self.line_starts[line.saturating_sub(1)];
        TemplateError::Render {
            line,
            column,
            context: error.context,
            message: error.message,
        }
    }

    fn walk(
        &self,
        nodes: &[Node],
        data: &BTreeMap<String, String>,
        out: &mut String,
    ) -> Result<(), ExecError> {
        for node in nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Action(pipe) => {
                    let value = eval_pipe(pipe, data)?;
                    match value {
                        Value::Str(bytes) => match String::from_utf8(bytes) {
                            Ok(text) => out.push_str(&text),
                            Err(_) => {
                                return Err(ExecError::at_pipe(
                                    pipe,
                                    "the value is not valid UTF-8 (a truncate may have cut a character in two)".to_owned(),
                                ));
                            }
                        },
                        Value::Int(n) => {
                            let _ = write!(out, "{n}");
                        }
                        Value::Bool(b) => {
                            let _ = write!(out, "{b}");
                        }
                    }
                }
                Node::If {
                    pipe,
                    then,
                    otherwise,
                } => {
                    if eval_pipe(pipe, data)?.is_true() {
                        self.walk(then, data, out)?;
                    } else {
                        self.walk(otherwise, data, out)?;
                    }
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The tree.

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If {
        pipe: Pipe,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
struct Pipe {
    pos: usize,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
struct Command {
    pos: usize,
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    Field {
        pos: usize,
        name: String,
    },
    Func {
        pos: usize,
        func: Func,
    },
    Str {
        pos: usize,
        value: Vec<u8>,
        quoted: String,
    },
    Int {
        pos: usize,
        value: i64,
        text: String,
    },
    Bool {
        pos: usize,
        value: bool,
    },
    Pipe(Pipe),
}

impl Arg {
    fn pos(&self) -> usize {
        match self {
            Self::Field { pos, .. }
            | Self::Func { pos, .. }
            | Self::Str { pos, .. }
            | Self::Int { pos, .. }
            | Self::Bool { pos, .. } => *pos,
            Self::Pipe(pipe) => pipe.pos,
        }
    }
}

// Go's `String()` of each node: what an error shows as its context.
impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field { name, .. } => write!(f, ".{name}"),
            Self::Func { func, .. } => f.write_str(func.name()),
            Self::Str { quoted, .. } => f.write_str(quoted),
            Self::Int { text, .. } => f.write_str(text),
            Self::Bool { value, .. } => write!(f, "{value}"),
            Self::Pipe(pipe) => write!(f, "({pipe})"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{arg}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The lexer (Go's `text/template/parse/lex.go`, from its documented behaviour).

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Pipe,
    LeftParen,
    RightParen,
    /// A quoted or raw string, as written.
    Str(String),
    Number(String),
    CharConstant(String),
    Ident(String),
    Field(String),
    Dot,
    Variable(String),
    Declare,
    Assign,
    /// Another printable ASCII character, e.g. `,`.
    Char(char),
    Eof,
    Error(String),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    line: usize,
}

const SPACES: &[char] = &[' ', '\t', '\r', '\n'];

fn is_space(c: char) -> bool {
    SPACES.contains(&c)
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

fn has_left_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

/// Whether `s` starts with a right delimiter, and whether it carries a trim marker (` -}}`).
fn at_right_delim(s: &str) -> (bool, bool) {
    let b = s.as_bytes();
    if b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-' && s[2..].starts_with("}}") {
        return (true, true);
    }
    (s.starts_with("}}"), false)
}

/// Go's `%#U`: `U+0040 '@'`.
fn rune_name(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    line: usize,
    tokens: Vec<Token>,
}

/// The whole text as tokens; the last is `Eof` or an `Error`.
fn lex(input: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        input,
        pos: 0,
        line: 1,
        tokens: Vec::new(),
    };
    if let Err(message) = lexer.run() {
        let (pos, line) = (lexer.pos, lexer.line);
        lexer.tokens.push(Token {
            tok: Tok::Error(message),
            pos,
            line,
        });
    } else {
        let (pos, line) = (input.len(), lexer.line);
        lexer.tokens.push(Token {
            tok: Tok::Eof,
            pos,
            line,
        });
    }
    lexer.tokens
}

impl Lexer<'_> {
    fn emit(&mut self, tok: Tok, pos: usize, line: usize) {
        self.tokens.push(Token { tok, pos, line });
    }

    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Moves to `to`, counting the newlines passed.
    fn advance_to(&mut self, to: usize) {
        self.line += self.input[self.pos..to].matches('\n').count();
        self.pos = to;
    }

    fn run(&mut self) -> Result<(), String> {
        loop {
            let Some(found) = self.rest().find("{{") else {
                if self.pos < self.input.len() {
                    let (pos, line) = (self.pos, self.line);
                    self.emit(Tok::Text(self.rest().to_owned()), pos, line);
                    self.advance_to(self.input.len());
                }
                return Ok(());
            };
            let delim = self.pos + found;
            let trim = has_left_trim(&self.input[delim + 2..]);
            let mut text = &self.input[self.pos..delim];
            if trim {
                text = text.trim_end_matches(SPACES);
            }
            if !text.is_empty() {
                let (pos, line) = (self.pos, self.line);
                self.emit(Tok::Text(text.to_owned()), pos, line);
            }
            self.advance_to(delim + 2);
            let after_marker = if trim { 2 } else { 0 };
            if self.input[self.pos + after_marker..].starts_with("/*") {
                self.pos += after_marker;
                self.comment()?;
                continue;
            }
            self.emit(Tok::LeftDelim, delim, self.line);
            self.pos += after_marker;
            self.action()?;
        }
    }

    fn comment(&mut self) -> Result<(), String> {
        let Some(end) = self.input[self.pos + 2..].find("*/") else {
            return Err("unclosed comment".to_owned());
        };
        self.advance_to(self.pos + 2 + end + 2);
        let (delim, trim) = at_right_delim(self.rest());
        if !delim {
            return Err("comment ends before closing delimiter".to_owned());
        }
        self.pos += if trim { 4 } else { 2 };
        if trim {
            self.skip_spaces();
        }
        Ok(())
    }

    fn skip_spaces(&mut self) {
        let spaces = self.rest().len() - self.rest().trim_start_matches(SPACES).len();
        self.advance_to(self.pos + spaces);
    }

    fn action(&mut self) -> Result<(), String> {
        let mut parens = 0usize;
        loop {
            let (delim, trim) = at_right_delim(self.rest());
            if delim {
                if parens > 0 {
                    return Err("unclosed left paren".to_owned());
                }
                if trim {
                    self.pos += 2;
                }
                let (pos, line) = (self.pos, self.line);
                self.emit(Tok::RightDelim, pos, line);
                self.pos += 2;
                if trim {
                    self.skip_spaces();
                }
                return Ok(());
            }
            let start = self.pos;
            let line = self.line;
            let Some(c) = self.peek() else {
                return Err("unclosed action".to_owned());
            };
            match c {
                c if is_space(c) => {
                    let mut end = start;
                    for ch in self.input[start..].chars() {
                        if !is_space(ch) {
                            break;
                        }
                        end += ch.len_utf8();
                    }
                    // A space before `-}}` belongs to the delimiter.
                    if at_right_delim(&self.input[end - 1..]).1 {
                        end -= 1;
                    }
                    if end > start {
                        self.advance_to(end);
                        self.emit(Tok::Space, start, line);
                    }
                }
                '=' => {
                    self.pos += 1;
                    self.emit(Tok::Assign, start, line);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return Err("expected :=".to_owned());
                    }
                    self.pos += 2;
                    self.emit(Tok::Declare, start, line);
                }
                '|' => {
                    self.pos += 1;
                    self.emit(Tok::Pipe, start, line);
                }
                '"' => self.quote(start, line)?,
                '`' => {
                    let Some(end) = self.input[start + 1..].find('`') else {
                        return Err("unterminated raw quoted string".to_owned());
                    };
                    let text = self.input[start..start + 1 + end + 1].to_owned();
                    self.advance_to(start + 1 + end + 1);
                    self.emit(Tok::Str(text), start, line);
                }
                '$' => {
                    self.pos += 1;
                    let word = self.word();
                    self.emit(Tok::Variable(format!("${word}")), start, line);
                }
                '\'' => self.char_constant(start, line)?,
                '.' if !self.input[start + 1..].starts_with(|c: char| c.is_ascii_digit()) => {
                    self.pos += 1;
                    if self.at_terminator() {
                        self.emit(Tok::Dot, start, line);
                    } else {
                        let word = self.word();
                        if !self.at_terminator() {
                            return Err(self.bad_character());
                        }
                        self.emit(Tok::Field(word), start, line);
                    }
                }
                '.' | '+' | '-' | '0'..='9' => self.number(start, line)?,
                c if is_alphanumeric(c) => {
                    let word = self.word();
                    if !self.at_terminator() {
                        return Err(self.bad_character());
                    }
                    self.emit(Tok::Ident(word), start, line);
                }
                '(' => {
                    parens += 1;
                    self.pos += 1;
                    self.emit(Tok::LeftParen, start, line);
                }
                ')' => {
                    if parens == 0 {
                        return Err("unexpected right paren".to_owned());
                    }
                    parens -= 1;
                    self.pos += 1;
                    self.emit(Tok::RightParen, start, line);
                }
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.pos += 1;
                    self.emit(Tok::Char(c), start, line);
                }
                c => {
                    return Err(format!(
                        "unrecognized character in action: {}",
                        rune_name(c)
                    ));
                }
            }
        }
    }

    fn word(&mut self) -> String {
        let len = self
            .rest()
            .find(|c: char| !is_alphanumeric(c))
            .unwrap_or(self.rest().len());
        let word = self.rest()[..len].to_owned();
        self.pos += len;
        word
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) || ".,|:()".contains(c) => true,
            Some(_) => self.rest().starts_with("}}"),
        }
    }

    fn bad_character(&self) -> String {
        let c = self.peek().unwrap_or('\0');
        format!("bad character {}", rune_name(c))
    }

    fn quote(&mut self, start: usize, line: usize) -> Result<(), String> {
        let mut chars = self.input[start + 1..].char_indices();
        loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\n')) | None => {
                        return Err("unterminated quoted string".to_owned());
                    }
                    Some(_) => {}
                },
                Some((_, '\n')) | None => return Err("unterminated quoted string".to_owned()),
                Some((at, '"')) => {
                    let end = start + 1 + at + 1;
                    let text = self.input[start..end].to_owned();
                    self.pos = end;
                    self.emit(Tok::Str(text), start, line);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    fn char_constant(&mut self, start: usize, line: usize) -> Result<(), String> {
        let mut chars = self.input[start + 1..].char_indices();
        loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\n')) | None => {
                        return Err("unterminated character constant".to_owned());
                    }
                    Some(_) => {}
                },
                Some((_, '\n')) | None => {
                    return Err("unterminated character constant".to_owned());
                }
                Some((at, '\'')) => {
                    let end = start + 1 + at + 1;
                    let text = self.input[start..end].to_owned();
                    self.pos = end;
                    self.emit(Tok::CharConstant(text), start, line);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    fn number(&mut self, start: usize, line: usize) -> Result<(), String> {
        let accept = |lexer: &mut Self, set: &str| -> bool {
            match lexer.peek() {
                Some(c) if set.contains(c) => {
                    lexer.pos += 1;
                    true
                }
                _ => false,
            }
        };
        let accept_run = |lexer: &mut Self, set: &str| while accept(lexer, set) {};
        accept(self, "+-");
        let mut digits = "0123456789_";
        if accept(self, "0") {
            if accept(self, "xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if accept(self, "oO") {
                digits = "01234567_";
            } else if accept(self, "bB") {
                digits = "01_";
            }
        }
        accept_run(self, digits);
        if accept(self, ".") {
            accept_run(self, digits);
        }
        if digits.len() == 11 && accept(self, "eE") {
            accept(self, "+-");
            accept_run(self, "0123456789_");
        }
        if digits.len() == 23 && accept(self, "pP") {
            accept(self, "+-");
            accept_run(self, "0123456789_");
        }
        accept(self, "i");
        if let Some(c) = self.peek().filter(|&c| is_alphanumeric(c)) {
            self.pos += c.len_utf8();
            return Err(format!(
                "bad number syntax: {:?}",
                &self.input[start..self.pos]
            ));
        }
        let text = self.input[start..self.pos].to_owned();
        self.emit(Tok::Number(text), start, line);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Literals.

/// Go's `strconv.Unquote` of a `"..."` or `` `...` `` literal, as bytes (`\xff` is one byte).
fn unquote(quoted: &str) -> Option<Vec<u8>> {
    if let Some(raw) = quoted.strip_prefix('`') {
        let raw = raw.strip_suffix('`')?;
        return Some(raw.bytes().filter(|&b| b != b'\r').collect());
    }
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = Vec::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let escape = chars.next()?;
        let mut hex = |n: usize| -> Option<u32> {
            let mut value = 0;
            for _ in 0..n {
                value = value * 16 + chars.next()?.to_digit(16)?;
            }
            Some(value)
        };
        match escape {
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            '"' => out.push(b'"'),
            'x' => out.push(u8::try_from(hex(2)?).ok()?),
            'u' | 'U' => {
                let c = char::from_u32(hex(if escape == 'u' { 4 } else { 8 })?)?;
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            '0'..='7' => {
                let mut value = escape.to_digit(8)?;
                for _ in 0..2 {
                    value = value * 8 + chars.next()?.to_digit(8)?;
                }
                out.push(u8::try_from(value).ok()?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Go's `strconv.ParseInt(text, 0, 64)` for the integers the lexer passes.
fn parse_int(text: &str) -> Result<i64, String> {
    if text.starts_with('\'') {
        return Err(format!("character constants are not supported: {text}"));
    }
    let illegal = || format!("illegal number syntax: {text:?}");
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let hex = lower.starts_with("0x");
    if lower.contains('.') || lower.ends_with('i') || lower.contains(if hex { 'p' } else { 'e' }) {
        return Err(format!(
            "floating-point and complex constants are not supported: {text:?}"
        ));
    }
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    // Underscores only between digits, or after a base prefix.
    let bytes = digits.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let before_ok = if i == 0 {
                prefixed
            } else {
                bytes[i - 1] != b'_'
            };
            let after_ok = i + 1 < bytes.len() && bytes[i + 1] != b'_';
            if !before_ok || !after_ok {
                return Err(illegal());
            }
        }
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() {
        return Err(illegal());
    }
    let magnitude = u64::from_str_radix(&clean, radix).map_err(|e| {
        if clean.chars().all(|c| c.is_digit(radix)) {
            let _ = e;
            format!("integer overflow: {text:?}")
        } else {
            illegal()
        }
    })?;
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    };
    value.ok_or_else(|| format!("integer overflow: {text:?}"))
}

// ---------------------------------------------------------------------------------------------
// The parser (Go's `parse.go` grammar, for the subset above).

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// The line of the action being parsed, for `... in action started at ...`.
    action_line: usize,
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End,
    Else,
    ElseIf,
}

type ParseResult<T> = Result<T, TemplateError>;

impl Parser {
    /// The next token; past the end, the last (`Eof` or an `Error`) again.
    fn next(&mut self) -> Token {
        let token = self.tokens[self.at.min(self.tokens.len() - 1)].clone();
        self.at += 1;
        token
    }

    fn backup(&mut self) {
        self.at -= 1;
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let token = self.next();
            if token.tok != Tok::Space {
                return token;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let token = self.next_non_space();
        self.backup();
        token
    }

    fn error(line: usize, message: impl Into<String>) -> TemplateError {
        TemplateError::Parse {
            line,
            message: message.into(),
        }
    }

    /// Go's `unexpected`: a lexer error as it is, anything else named in its context.
    fn unexpected(&self, token: &Token, context: &str) -> TemplateError {
        if let Tok::Error(message) = &token.tok {
            let mut message = message.clone();
            if self.action_line != 0 && self.action_line != token.line {
                let started = format!(" started at template:{}", self.action_line);
                if message.ends_with(" action") {
                    message.push_str(&started);
                } else {
                    message.push_str(" in action");
                    message.push_str(&started);
                }
            }
            return Self::error(token.line, message);
        }
        Self::error(
            token.line,
            format!("unexpected {} in {context}", describe(&token.tok)),
        )
    }

    fn top_level(&mut self) -> ParseResult<Vec<Node>> {
        let (nodes, end, line) = self.list()?;
        match end {
            Stop::Eof => Ok(nodes),
            Stop::End => Err(Self::error(line, "unexpected {{end}}")),
            Stop::Else | Stop::ElseIf => Err(Self::error(line, "unexpected {{else}}")),
        }
    }

    /// Nodes up to the end of the text, an `{{end}}` or an `{{else}}`, and that line.
    fn list(&mut self) -> ParseResult<(Vec<Node>, Stop, usize)> {
        let mut nodes = Vec::new();
        loop {
            let token = self.next();
            match token.tok {
                Tok::Eof => return Ok((nodes, Stop::Eof, token.line)),
                Tok::Text(text) => nodes.push(Node::Text(text)),
                Tok::LeftDelim => {
                    self.action_line = token.line;
                    let result = self.action()?;
                    self.action_line = 0;
                    match result {
                        Ok(node) => nodes.push(node),
                        Err(end) => return Ok((nodes, end, token.line)),
                    }
                }
                _ => return Err(self.unexpected(&token, "input")),
            }
        }
    }

    /// An action after its `{{`: a node, or the `{{end}}`/`{{else}}` that ends a list.
    fn action(&mut self) -> ParseResult<Result<Node, Stop>> {
        let token = self.next_non_space();
        if let Tok::Ident(word) = &token.tok {
            match word.as_str() {
                "if" => return self.if_node().map(Ok),
                "end" => {
                    self.expect_right_delim("end")?;
                    return Ok(Err(Stop::End));
                }
                "else" => {
                    let next = self.peek_non_space();
                    if matches!(&next.tok, Tok::Ident(w) if w == "if") {
                        self.next_non_space();
                        return Ok(Err(Stop::ElseIf));
                    }
                    self.expect_right_delim("else")?;
                    return Ok(Err(Stop::Else));
                }
                "range" | "with" | "define" | "template" | "block" | "break" | "continue" => {
                    return Err(Self::error(
                        token.line,
                        format!("{{{{{word}}}}} is not supported by this template implementation"),
                    ));
                }
                _ => {}
            }
        }
        self.backup();
        let pipe = self.pipeline("command", &Tok::RightDelim)?;
        Ok(Ok(Node::Action(pipe)))
    }

    fn expect_right_delim(&mut self, context: &str) -> ParseResult<()> {
        let token = self.next_non_space();
        if token.tok != Tok::RightDelim {
            return Err(self.unexpected(&token, context));
        }
        Ok(())
    }

    /// After `{{if` (or `{{else if`): the condition, the branches and the `{{end}}`.
    fn if_node(&mut self) -> ParseResult<Node> {
        let pipe = self.pipeline("if", &Tok::RightDelim)?;
        let (then, end, line) = self.list()?;
        let otherwise = match end {
            Stop::Eof => return Err(Self::error(line, "unexpected EOF")),
            Stop::End => Vec::new(),
            Stop::Else => {
                let (otherwise, end, line) = self.list()?;
                match end {
                    Stop::End => otherwise,
                    Stop::Eof => return Err(Self::error(line, "unexpected EOF")),
                    Stop::Else | Stop::ElseIf => {
                        return Err(Self::error(line, "expected end; found {{else}}"));
                    }
                }
            }
            // `{{else if x}}...{{end}}` is `{{else}}{{if x}}...{{end}}{{end}}` sharing one end.
            Stop::ElseIf => vec![self.if_node()?],
        };
        Ok(Node::If {
            pipe,
            then,
            otherwise,
        })
    }

    fn pipeline(&mut self, context: &str, end: &Tok) -> ParseResult<Pipe> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            cmds: Vec::new(),
        };
        loop {
            let token = self.next_non_space();
            if &token.tok == end {
                if pipe.cmds.is_empty() {
                    return Err(Self::error(
                        token.line,
                        format!("missing value for {context}"),
                    ));
                }
                // Only the first command may be a plain value.
                for (i, cmd) in pipe.cmds.iter().enumerate().skip(1) {
                    if matches!(
                        cmd.args[0],
                        Arg::Str { .. } | Arg::Int { .. } | Arg::Bool { .. }
                    ) {
                        return Err(Self::error(
                            token.line,
                            format!("non executable command in pipeline stage {}", i + 1),
                        ));
                    }
                }
                return Ok(pipe);
            }
            match token.tok {
                Tok::Ident(ref word) if is_keyword(word) => {
                    return Err(self.unexpected(&token, context));
                }
                Tok::Str(_)
                | Tok::Number(_)
                | Tok::CharConstant(_)
                | Tok::Ident(_)
                | Tok::Field(_)
                | Tok::Dot
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.backup();
                    pipe.cmds.push(self.command()?);
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
    }

    fn command(&mut self) -> ParseResult<Command> {
        let mut cmd = Command {
            pos: self.peek_non_space().pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(arg) = self.operand()? {
                cmd.args.push(arg);
            }
            let token = self.next();
            match token.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.backup(),
                Tok::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            let line = self.tokens[self.at].line;
            return Err(Self::error(line, "empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> ParseResult<Option<Arg>> {
        let Some(arg) = self.term()? else {
            return Ok(None);
        };
        let next = self.next();
        self.backup();
        if let Tok::Field(_) = next.tok {
            let message = match &arg {
                Arg::Str { .. } | Arg::Int { .. } | Arg::Bool { .. } => {
                    format!("unexpected . after term {:?}", arg.to_string())
                }
                _ => format!(
                    "a field of a value ({arg}.{}...) is not supported: data values are strings",
                    describe_field(&next.tok)
                ),
            };
            return Err(Self::error(next.line, message));
        }
        Ok(Some(arg))
    }

    fn term(&mut self) -> ParseResult<Option<Arg>> {
        let token = self.next_non_space();
        let (pos, line) = (token.pos, token.line);
        let arg = match token.tok {
            Tok::Ident(word) if is_keyword(&word) => {
                self.backup();
                return Ok(None);
            }
            Tok::Ident(word) => match word.as_str() {
                "true" | "false" => Arg::Bool {
                    pos,
                    value: word == "true",
                },
                "nil" => return Err(Self::error(line, "nil is not supported")),
                _ => match Func::by_name(&word) {
                    Some(func) => Arg::Func { pos, func },
                    None if GO_BUILTINS.contains(&word.as_str()) => {
                        return Err(Self::error(
                            line,
                            format!(
                                "function {word:?} (a text/template builtin) is not supported by this template implementation"
                            ),
                        ));
                    }
                    None => {
                        return Err(Self::error(line, format!("function {word:?} not defined")));
                    }
                },
            },
            Tok::Dot => {
                return Err(Self::error(
                    line,
                    "`.` alone (the whole data) is not supported: name a field, e.g. .RoleName",
                ));
            }
            Tok::Variable(name) => {
                return Err(Self::error(
                    line,
                    format!("variables ({name}) are not supported"),
                ));
            }
            Tok::Field(name) => Arg::Field { pos, name },
            Tok::Number(text) | Tok::CharConstant(text) => {
                let value = parse_int(&text).map_err(|m| Self::error(line, m))?;
                Arg::Int { pos, value, text }
            }
            Tok::Str(quoted) => {
                let value = unquote(&quoted).ok_or_else(|| Self::error(line, "invalid syntax"))?;
                Arg::Str { pos, value, quoted }
            }
            Tok::LeftParen => {
                let pipe = self.pipeline("parenthesized pipeline", &Tok::RightParen)?;
                Arg::Pipe(pipe)
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(arg))
    }
}

/// Go's `item.String()` for an unexpected token.
fn describe(tok: &Tok) -> String {
    let quoted = |s: &str| {
        if s.chars().count() > 10 {
            format!("{:?}...", s.chars().take(10).collect::<String>())
        } else {
            format!("{s:?}")
        }
    };
    match tok {
        Tok::Eof => "EOF".to_owned(),
        Tok::Error(message) => message.clone(),
        Tok::Text(s) | Tok::Str(s) | Tok::Number(s) | Tok::CharConstant(s) | Tok::Variable(s) => {
            quoted(s)
        }
        Tok::Ident(s) if KEYWORDS.contains(&s.as_str()) => format!("<{s}>"),
        Tok::Ident(s) => quoted(s),
        Tok::Field(s) => quoted(&format!(".{s}")),
        Tok::LeftDelim => quoted("{{"),
        Tok::RightDelim => quoted("}}"),
        Tok::Space => quoted(" "),
        Tok::Pipe => quoted("|"),
        Tok::LeftParen => quoted("("),
        Tok::RightParen => quoted(")"),
        Tok::Dot => "<.>".to_owned(),
        Tok::Declare => quoted(":="),
        Tok::Assign => quoted("="),
        Tok::Char(c) => quoted(&c.to_string()),
    }
}

/// A keyword other than `nil` (which is an operand).
fn is_keyword(word: &str) -> bool {
    word != "nil" && KEYWORDS.contains(&word)
}

fn describe_field(tok: &Tok) -> &str {
    match tok {
        Tok::Field(name) => name,
        _ => "",
    }
}

const KEYWORDS: &[&str] = &[
    "block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with",
];

const GO_BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "println",
    "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

// ---------------------------------------------------------------------------------------------
// Rendering.

#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// Go strings are bytes: `truncate` may cut a character, `decode_hex` may make any byte.
    Str(Vec<u8>),
    Int(i64),
    Bool(bool),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Self::Str(_) => "string",
            Self::Int(_) => "int",
            Self::Bool(_) => "bool",
        }
    }

    fn is_true(&self) -> bool {
        match self {
            Self::Str(s) => !s.is_empty(),
            Self::Int(n) => *n != 0,
            Self::Bool(b) => *b,
        }
    }
}

/// A render error before its position becomes `line:column`.
#[derive(Debug)]
struct ExecError {
    pos: usize,
    context: String,
    message: String,
}

impl ExecError {
    fn at_arg(arg: &Arg, message: String) -> Self {
        Self {
            pos: arg.pos(),
            context: arg.to_string(),
            message,
        }
    }

    fn at_cmd(cmd: &Command, message: String) -> Self {
        Self {
            pos: cmd.pos,
            context: cmd.to_string(),
            message,
        }
    }

    fn at_pipe(pipe: &Pipe, message: String) -> Self {
        Self {
            pos: pipe.pos,
            context: format!("{{{{{pipe}}}}}"),
            message,
        }
    }
}

fn eval_pipe(pipe: &Pipe, data: &BTreeMap<String, String>) -> Result<Value, ExecError> {
    let mut value = None;
    for cmd in &pipe.cmds {
        value = Some(eval_command(cmd, value, data)?);
    }
    // The parser makes no empty pipeline.
    Ok(value.unwrap_or(Value::Str(Vec::new())))
}

fn eval_command(
    cmd: &Command,
    last: Option<Value>,
    data: &BTreeMap<String, String>,
) -> Result<Value, ExecError> {
    let first = &cmd.args[0];
    let has_args = cmd.args.len() > 1 || last.is_some();
    match first {
        Arg::Func { func, .. } => return call(cmd, *func, &cmd.args[1..], last, data),
        Arg::Field { name, .. } if has_args => {
            return Err(ExecError::at_arg(
                first,
                format!("{name} is not a method but has arguments"),
            ));
        }
        Arg::Field { .. } => return field(first, data),
        _ if has_args => {
            return Err(ExecError::at_arg(
                first,
                format!("can't give argument to non-function {first}"),
            ));
        }
        _ => {}
    }
    match first {
        Arg::Pipe(pipe) => eval_pipe(pipe, data),
        Arg::Str { value, .. } => Ok(Value::Str(value.clone())),
        Arg::Int { value, .. } => Ok(Value::Int(*value)),
        Arg::Bool { value, .. } => Ok(Value::Bool(*value)),
        Arg::Func { .. } | Arg::Field { .. } => unreachable!("handled above"),
    }
}

fn field(arg: &Arg, data: &BTreeMap<String, String>) -> Result<Value, ExecError> {
    let Arg::Field { name, .. } = arg else {
        unreachable!("a field");
    };
    match data.get(name) {
        Some(value) => Ok(Value::Str(value.as_bytes().to_vec())),
        None => Err(ExecError::at_arg(
            arg,
            format!("map has no entry for key {name:?}"),
        )),
    }
}

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Int,
    Str,
    Any,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Self::Int => "int",
            Self::Str => "string",
            Self::Any => "interface {}",
        }
    }

    fn admits(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (Self::Any, _) | (Self::Int, Value::Int(_)) | (Self::Str, Value::Str(_))
        )
    }
}

/// Evaluates an argument for a parameter of type `ty`, as Go's `evalArg`.
fn eval_arg(arg: &Arg, ty: Ty, data: &BTreeMap<String, String>) -> Result<Value, ExecError> {
    let value = match arg {
        Arg::Str { value, .. } if ty != Ty::Int => return Ok(Value::Str(value.clone())),
        Arg::Int { value, .. } if ty != Ty::Str => return Ok(Value::Int(*value)),
        Arg::Bool { value, .. } if ty == Ty::Any => return Ok(Value::Bool(*value)),
        Arg::Str { .. } | Arg::Int { .. } | Arg::Bool { .. } => {
            let wanted = if ty == Ty::Int { "integer" } else { "string" };
            return Err(ExecError::at_arg(
                arg,
                format!("expected {wanted}; found {arg}"),
            ));
        }
        Arg::Field { .. } => field(arg, data)?,
        Arg::Func { func, .. } => {
            let cmd = Command {
                pos: arg.pos(),
                args: vec![arg.clone()],
            };
            call(&cmd, *func, &[], None, data)?
        }
        Arg::Pipe(pipe) => eval_pipe(pipe, data)?,
    };
    if !ty.admits(&value) {
        return Err(ExecError::at_arg(
            arg,
            format!(
                "wrong type for value; expected {}; got {}",
                ty.name(),
                value.type_name()
            ),
        ));
    }
    Ok(value)
}

fn call(
    cmd: &Command,
    func: Func,
    args: &[Arg],
    last: Option<Value>,
    data: &BTreeMap<String, String>,
) -> Result<Value, ExecError> {
    let name = func.name();
    let params = func.params();
    let ident = &cmd.args[0];
    let given = args.len() + usize::from(last.is_some());
    if func == Func::Printf {
        if given < 1 {
            return Err(ExecError::at_arg(
                ident,
                format!(
                    "wrong number of args for {name}: want at least 1 got {}",
                    args.len()
                ),
            ));
        }
    } else if given != params.len() {
        return Err(ExecError::at_arg(
            ident,
            format!(
                "wrong number of args for {name}: want {} got {given}",
                params.len()
            ),
        ));
    }
    let param = |i: usize| params.get(i).copied().unwrap_or(Ty::Any);
    let mut values = Vec::with_capacity(given);
    for (i, arg) in args.iter().enumerate() {
        values.push(eval_arg(arg, param(i), data)?);
    }
    if let Some(last) = last {
        let ty = param(values.len());
        if !ty.admits(&last) {
            let at = args.last().unwrap_or(ident);
            return Err(ExecError::at_arg(
                at,
                format!(
                    "wrong type for value; expected {}; got {}",
                    ty.name(),
                    last.type_name()
                ),
            ));
        }
        values.push(last);
    }
    func.apply(values)
        .map_err(|message| ExecError::at_cmd(cmd, format!("error calling {name}: {message}")))
}

// ---------------------------------------------------------------------------------------------
// The functions.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Random,
    Truncate,
    TruncateSha256,
    Uppercase,
    Lowercase,
    Replace,
    Sha256,
    Base64,
    DecodeBase64,
    Hex,
    DecodeHex,
    UnixTime,
    UnixTimeMillis,
    Timestamp,
    Uuid,
    Glob,
    Printf,
}

const FUNCS: &[(&str, Func)] = &[
    ("random", Func::Random),
    ("truncate", Func::Truncate),
    ("truncate_sha256", Func::TruncateSha256),
    ("uppercase", Func::Uppercase),
    ("lowercase", Func::Lowercase),
    ("replace", Func::Replace),
    ("sha256", Func::Sha256),
    ("base64", Func::Base64),
    ("decode_base64", Func::DecodeBase64),
    ("hex", Func::Hex),
    ("decode_hex", Func::DecodeHex),
    ("unix_time", Func::UnixTime),
    ("unix_time_millis", Func::UnixTimeMillis),
    ("timestamp", Func::Timestamp),
    ("uuid", Func::Uuid),
    ("glob", Func::Glob),
    ("printf", Func::Printf),
];

impl Func {
    fn by_name(name: &str) -> Option<Self> {
        FUNCS.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
    }

    fn name(self) -> &'static str {
        FUNCS
            .iter()
            .find(|&&(_, f)| f == self)
            .map_or("", |&(n, _)| n)
    }

    /// The parameters; `printf`'s are its format and then any number of values.
    fn params(self) -> &'static [Ty] {
        match self {
            Self::Random => &[Ty::Int],
            Self::Truncate | Self::TruncateSha256 => &[Ty::Int, Ty::Str],
            Self::Replace => &[Ty::Str, Ty::Str, Ty::Str],
            Self::Glob => &[Ty::Str, Ty::Str],
            Self::Uppercase
            | Self::Lowercase
            | Self::Sha256
            | Self::Base64
            | Self::DecodeBase64
            | Self::Hex
            | Self::DecodeHex
            | Self::Timestamp
            | Self::Printf => &[Ty::Str],
            Self::UnixTime | Self::UnixTimeMillis | Self::Uuid => &[],
        }
    }

    /// Runs the function on arguments of the types [`Func::params`] says.
    fn apply(self, args: Vec<Value>) -> Result<Value, String> {
        let mut ints = Vec::new();
        let mut strs = Vec::new();
        let mut rest = Vec::new();
        for (i, value) in args.into_iter().enumerate() {
            match (self, value) {
                (Self::Printf, value) if i > 0 => rest.push(value),
                (_, Value::Int(n)) => ints.push(n),
                (_, Value::Str(s)) => strs.push(s),
                (_, value) => rest.push(value),
            }
        }
        let int = |i: usize| ints.get(i).copied().unwrap_or(0);
        let s = |i: usize| strs.get(i).map_or(&[][..], Vec::as_slice);
        let str_value = |bytes: Vec<u8>| Ok(Value::Str(bytes));
        match self {
            Self::Random => str_value(random_base62(int(0))?),
            Self::Truncate => {
                let max = int(0);
                if max <= 0 {
                    return Err(format!("max length must be > 0 but was {max}"));
                }
                str_value(s(0)[..s(0).len().min(len_usize(max))].to_vec())
            }
            Self::TruncateSha256 => {
                let max = int(0);
                if max <= 8 {
                    return Err(format!("max length must be > 8 but was {max}"));
                }
                let text = s(0);
                let max = len_usize(max);
                if text.len() <= max {
                    return str_value(text.to_vec());
                }
                let cut = max - 8;
                let mut out = text[..cut].to_vec();
                out.extend_from_slice(&sha256_hex(&text[cut..]).as_bytes()[..8]);
                str_value(out)
            }
            Self::Uppercase => str_value(map_case(s(0), true)),
            Self::Lowercase => str_value(map_case(s(0), false)),
            Self::Replace => str_value(replace_all(s(2), s(0), s(1))),
            Self::Sha256 => str_value(sha256_hex(s(0)).into_bytes()),
            Self::Base64 => str_value(
                base64::engine::general_purpose::STANDARD
                    .encode(s(0))
                    .into_bytes(),
            ),
            Self::DecodeBase64 => str_value(decode_base64(s(0))?),
            Self::Hex => str_value(hex(s(0)).into_bytes()),
            Self::DecodeHex => str_value(decode_hex(s(0))?),
            Self::UnixTime => str_value(now().as_secs().to_string().into_bytes()),
            Self::UnixTimeMillis => str_value(now().as_millis().to_string().into_bytes()),
            Self::Timestamp => str_value(format_time(s(0), now())),
            Self::Uuid => {
                let b = random_bytes(16)?;
                let h = hex(&b);
                str_value(
                    format!(
                        "{}-{}-{}-{}-{}",
                        &h[..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..]
                    )
                    .into_bytes(),
                )
            }
            Self::Glob => Ok(Value::Bool(glob(s(0), s(1)))),
            Self::Printf => str_value(printf(s(0), &rest)?),
        }
    }
}

/// A positive `i64` as a length (saturating where `usize` is narrower).
fn len_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn random_bytes(n: usize) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0; n];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "failed to read random bytes".to_owned())?;
    Ok(bytes)
}

/// The largest `random` length: more is surely a mistake, and would take that much memory.
const RANDOM_MAX: i64 = 1 << 20;

/// `go-secure-stdlib/base62.Random`: bytes below 248 (4 × 62) pick a character, the rest are
/// dropped so that each character is equally likely.
fn random_base62(length: i64) -> Result<Vec<u8>, String> {
    const CHARSET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if length < 0 {
        return Err(format!("length must be >= 0 but was {length}"));
    }
    if length > RANDOM_MAX {
        return Err(format!(
            "length must be at most {RANDOM_MAX} but was {length}"
        ));
    }
    let length = len_usize(length);
    let mut out = Vec::with_capacity(length);
    while out.len() < length {
        for b in random_bytes(length + length / 4 + 1)? {
            if b < 248 {
                out.push(CHARSET[usize::from(b % 62)]);
                if out.len() == length {
                    break;
                }
            }
        }
    }
    Ok(out)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Go's `hex.DecodeString`; the error names the offset, not the byte (data stays out of errors).
fn decode_hex(text: &[u8]) -> Result<Vec<u8>, String> {
    let digit = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(text.len() / 2);
    for (i, pair) in text.chunks(2).enumerate() {
        let hi = digit(pair[0]).ok_or_else(|| invalid_hex(2 * i))?;
        let Some(&low) = pair.get(1) else {
            return Err("encoding/hex: odd length hex string".to_owned());
        };
        let lo = digit(low).ok_or_else(|| invalid_hex(2 * i + 1))?;
        out.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
    }
    Ok(out)
}

fn invalid_hex(offset: usize) -> String {
    format!("encoding/hex: invalid byte at offset {offset}")
}

/// Go's `base64.StdEncoding.DecodeString`: padding required, `\r` and `\n` ignored, spare bits
/// of the last character allowed.
fn decode_base64(text: &[u8]) -> Result<Vec<u8>, String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    let clean: Vec<u8> = text
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    ENGINE.decode(&clean).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol(at, _) => at,
            base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
                clean.len() / 4 * 4
            }
        };
        format!("illegal base64 data at input byte {at}")
    })
}

/// Go's `strings.ToUpper`/`ToLower`: each character by its simple case mapping; a byte that is
/// not UTF-8 becomes U+FFFD, as Go's `strings.Map` makes it.
fn map_case(text: &[u8], upper: bool) -> Vec<u8> {
    if text.is_ascii() {
        return if upper {
            text.to_ascii_uppercase()
        } else {
            text.to_ascii_lowercase()
        };
    }
    let mut out = String::with_capacity(text.len());
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            out.push(simple_case(c, upper));
        }
        for _ in chunk.invalid() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out.into_bytes()
}

/// One character's simple (one-to-one) case mapping, as Go's `unicode.ToUpper`/`ToLower`. Rust
/// gives the full mapping: where that is more than one character (`ß` → `SS`), Go keeps the
/// character, except `İ`, whose simple lower case is `i`. (Greek letters with a iota subscript,
/// e.g. `ᾳ`, have a one-character simple upper case Rust does not give; they stay as they are.)
fn simple_case(c: char, upper: bool) -> char {
    if !upper && c == '\u{130}' {
        return 'i';
    }
    let mut mapped = if upper {
        c.to_uppercase().collect::<Vec<_>>()
    } else {
        c.to_lowercase().collect::<Vec<_>>()
    };
    if mapped.len() == 1 {
        mapped.remove(0)
    } else {
        c
    }
}

/// Go's `strings.ReplaceAll`; an empty `find` matches before each character and at the end.
fn replace_all(text: &[u8], find: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    if find.is_empty() {
        out.extend_from_slice(with);
        for chunk in text.utf8_chunks() {
            for c in chunk.valid().chars() {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                out.extend_from_slice(with);
            }
            for &b in chunk.invalid() {
                out.push(b);
                out.extend_from_slice(with);
            }
        }
        return out;
    }
    let mut at = 0;
    while at < text.len() {
        if text[at..].starts_with(find) {
            out.extend_from_slice(with);
            at += find.len();
        } else {
            out.push(text[at]);
            at += 1;
        }
    }
    out
}

/// `github.com/ryanuber/go-glob` v1.0.0 (OpenBao's): `*` matches any run of bytes; nothing
/// else is special.
fn glob(pattern: &[u8], subject: &[u8]) -> bool {
    if pattern.is_empty() {
        return subject.is_empty();
    }
    if pattern == b"*" {
        return true;
    }
    let parts: Vec<&[u8]> = pattern.split(|&b| b == b'*').collect();
    if parts.len() == 1 {
        return subject == pattern;
    }
    let leading = pattern.starts_with(b"*");
    let trailing = pattern.ends_with(b"*");
    let end = parts.len() - 1;
    let mut subject = subject;
    for (i, part) in parts[..end].iter().enumerate() {
        let found = find_bytes(subject, part);
        match (i, found) {
            (0, Some(0)) => {}
            (0, _) if leading => {}
            (0, _) | (_, None) => return false,
            _ => {}
        }
        let at = found.unwrap_or(0);
        subject = &subject[at + part.len()..];
    }
    trailing || subject.ends_with(parts[end])
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// printf.

/// Go's `fmt.Sprintf` for the verbs a name needs. Where Go would print a `%!` complaint into the
/// result (a wrong type, a missing or extra argument, an unknown verb), this is an error.
fn printf(format: &[u8], args: &[Value]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(format.len());
    let mut args = args.iter();
    let mut used = 0;
    let mut i = 0;
    while i < format.len() {
        if format[i] != b'%' {
            out.push(format[i]);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        while let Some(&flag) = format.get(i) {
            match flag {
                b'-' => spec.minus = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'0' => spec.zero = true,
                b'#' => return Err("the # flag is not supported".to_owned()),
                _ => break,
            }
            i += 1;
        }
        let number = |i: &mut usize| -> Option<usize> {
            let start = *i;
            while format.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            std::str::from_utf8(&format[start..*i]).ok()?.parse().ok()
        };
        if format.get(i) == Some(&b'*') {
            return Err("a * width or precision is not supported".to_owned());
        }
        spec.width = number(&mut i);
        if format.get(i) == Some(&b'.') {
            i += 1;
            if format.get(i) == Some(&b'*') {
                return Err("a * width or precision is not supported".to_owned());
            }
            spec.precision = Some(number(&mut i).unwrap_or(0));
        }
        let Some(verb) = format[i..]
            .utf8_chunks()
            .next()
            .and_then(|c| c.valid().chars().next())
        else {
            return Err("the format ends in the middle of a verb".to_owned());
        };
        i += verb.len_utf8();
        if verb == '%' {
            out.push(b'%');
            continue;
        }
        if !"svdxXt".contains(verb) {
            return Err(format!("verb %{verb} is not supported"));
        }
        let Some(arg) = args.next() else {
            return Err(format!(
                "the format has more verbs than arguments (%{verb} has none)"
            ));
        };
        used += 1;
        let body = match (verb, arg) {
            ('s' | 'v', Value::Str(s)) => spec.string(s),
            ('d' | 'v', Value::Int(n)) => spec.integer(*n, 10, false),
            ('x', Value::Int(n)) => spec.integer(*n, 16, false),
            ('X', Value::Int(n)) => spec.integer(*n, 16, true),
            ('x', Value::Str(s)) => spec.hex_string(s, false),
            ('X', Value::Str(s)) => spec.hex_string(s, true),
            ('t' | 'v', Value::Bool(b)) => spec.pad(if *b { b"true" } else { b"false" }, 0, false),
            (verb, arg) => {
                return Err(format!(
                    "verb %{verb} cannot format argument {used} (a {})",
                    arg.type_name()
                ));
            }
        };
        out.extend_from_slice(&body);
    }
    let extra = args.count();
    if extra > 0 {
        return Err(format!(
            "the format has fewer verbs ({used}) than arguments ({})",
            used + extra
        ));
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Characters as Go counts them for a width: each byte that is not UTF-8 is one.
fn rune_count(bytes: &[u8]) -> usize {
    bytes
        .utf8_chunks()
        .map(|c| c.valid().chars().count() + c.invalid().len())
        .sum()
}

impl Spec {
    /// Pads `body` to the width: with spaces, on the right for `-`; with zeros after the sign
    /// (the first `sign` bytes) for `0` unless `-`.
    fn pad(&self, body: &[u8], sign: usize, zeros_allowed: bool) -> Vec<u8> {
        let count = rune_count(body);
        let Some(width) = self.width.filter(|&w| w > count) else {
            return body.to_vec();
        };
        let fill = width - count;
        let mut out = Vec::with_capacity(body.len() + fill);
        if self.minus {
            out.extend_from_slice(body);
            out.resize(out.len() + fill, b' ');
        } else if self.zero && zeros_allowed {
            out.extend_from_slice(&body[..sign]);
            out.resize(out.len() + fill, b'0');
            out.extend_from_slice(&body[sign..]);
        } else {
            out.resize(fill, b' ');
            out.extend_from_slice(body);
        }
        out
    }

    fn string(&self, s: &[u8]) -> Vec<u8> {
        let s = match self.precision {
            Some(p) => {
                let mut end = 0;
                let mut taken = 0;
                for chunk in s.utf8_chunks() {
                    for c in chunk.valid().chars() {
                        if taken == p {
                            break;
                        }
                        end += c.len_utf8();
                        taken += 1;
                    }
                    for _ in chunk.invalid() {
                        if taken == p {
                            break;
                        }
                        end += 1;
                        taken += 1;
                    }
                }
                &s[..end]
            }
            None => s,
        };
        self.pad(s, 0, true)
    }

    fn hex_string(&self, s: &[u8], upper: bool) -> Vec<u8> {
        let s = &s[..self.precision.map_or(s.len(), |p| p.min(s.len()))];
        let mut h = hex(s);
        if upper {
            h.make_ascii_uppercase();
        }
        self.pad(h.as_bytes(), 0, true)
    }

    fn integer(&self, n: i64, radix: u32, upper: bool) -> Vec<u8> {
        let magnitude = n.unsigned_abs();
        let mut digits = match radix {
            16 if upper => format!("{magnitude:X}"),
            16 => format!("{magnitude:x}"),
            _ => magnitude.to_string(),
        };
        if let Some(p) = self.precision {
            if p == 0 && n == 0 {
                digits.clear();
            } else if digits.len() < p {
                digits.insert_str(0, &"0".repeat(p - digits.len()));
            }
        }
        let sign = if n < 0 {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        };
        let body = format!("{sign}{digits}");
        self.pad(body.as_bytes(), sign.len(), self.precision.is_none())
    }
}

// ---------------------------------------------------------------------------------------------
// timestamp: Go's time layouts, for a time in UTC.

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The layout's elements (Go's `time` package, `nextStdChunk`), longest first where one is a
/// prefix of another. `Jan` and `Mon` count only when no lower-case letter follows.
const ELEMENTS: &[&str] = &[
    "January",
    "Jan",
    "Monday",
    "Mon",
    "MST",
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "002",
    "15",
    "1",
    "2006",
    "2",
    "__2",
    "_2",
    "3",
    "4",
    "5",
    "PM",
    "pm",
    "-070000",
    "-07:00:00",
    "-0700",
    "-07:00",
    "-07",
    "Z070000",
    "Z07:00:00",
    "Z0700",
    "Z07:00",
    "Z07",
];

/// Formats `since_epoch` (UTC) in a Go layout such as `2006-01-02T15:04:05Z07:00`.
fn format_time(layout: &[u8], since_epoch: std::time::Duration) -> Vec<u8> {
    let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    let nanos = since_epoch.subsec_nanos();
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = crate::civil::civil_from_days(days);
    let (hour, minute, second) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
    let weekday = usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0);
    let year_day = days - crate::civil::days_from_civil(year, 1, 1) + 1;
    let month_index = usize::try_from(month - 1).unwrap_or(0);
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };

    let mut out = Vec::with_capacity(layout.len() + 16);
    let mut i = 0;
    while i < layout.len() {
        let rest = &layout[i..];
        // Fractional seconds: `.000`/`,000` (fixed) or `.999`/`,999` (trailing zeros dropped),
        // when no digit follows the run.
        if matches!(rest[0], b'.' | b',') && matches!(rest.get(1), Some(b'0' | b'9')) {
            let digit = rest[1];
            let run = rest[1..].iter().take_while(|&&b| b == digit).count();
            if !rest.get(1 + run).is_some_and(u8::is_ascii_digit) {
                let all = format!("{nanos:09}");
                let mut frac = all[..run.min(9)].to_owned();
                if digit == b'9' {
                    frac.truncate(frac.trim_end_matches('0').len());
                }
                if digit == b'0' || !frac.is_empty() {
                    out.push(rest[0]);
                    out.extend_from_slice(frac.as_bytes());
                }
                i += 1 + run;
                continue;
            }
        }
        // `_2006` is an underscore and the year, not `_2` (the day) and `006`.
        if rest.starts_with(b"_2006") {
            out.push(b'_');
            i += 1;
            continue;
        }
        let element = ELEMENTS.iter().find(|e| {
            rest.starts_with(e.as_bytes())
                && !(matches!(**e, "Jan" | "Mon")
                    && rest.get(3).is_some_and(u8::is_ascii_lowercase))
        });
        let Some(element) = element else {
            out.push(rest[0]);
            i += 1;
            continue;
        };
        let text = match *element {
            "January" => MONTHS[month_index].to_owned(),
            "Jan" => MONTHS[month_index][..3].to_owned(),
            "Monday" => DAYS[weekday].to_owned(),
            "Mon" => DAYS[weekday][..3].to_owned(),
            "MST" => "UTC".to_owned(),
            "01" => format!("{month:02}"),
            "1" => month.to_string(),
            "02" => format!("{day:02}"),
            "_2" => format!("{day:>2}"),
            "2" => day.to_string(),
            "002" => format!("{year_day:03}"),
            "__2" => format!("{year_day:>3}"),
            "15" => format!("{hour:02}"),
            "03" => format!("{hour12:02}"),
            "3" => hour12.to_string(),
            "04" => format!("{minute:02}"),
            "4" => minute.to_string(),
            "05" => format!("{second:02}"),
            "5" => second.to_string(),
            "2006" => format!("{year:04}"),
            "06" => format!("{:02}", year.rem_euclid(100)),
            "PM" => if hour >= 12 { "PM" } else { "AM" }.to_owned(),
            "pm" => if hour >= 12 { "pm" } else { "am" }.to_owned(),
            "-070000" => "+000000".to_owned(),
            "-07:00:00" => "+00:00:00".to_owned(),
            "-0700" => "+0000".to_owned(),
            "-07:00" => "+00:00".to_owned(),
            "-07" => "+00".to_owned(),
            // The Z forms print Z for UTC.
            _ => "Z".to_owned(),
        };
        out.extend_from_slice(text.as_bytes());
        i += element.len();
    }
    out
}
