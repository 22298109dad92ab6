#![allow(clippy::unwrap_used)]

use super::*;

/// The data every table case renders with.
fn data() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("DisplayName".to_owned(), "display-name-long".to_owned()),
        ("RoleName".to_owned(), "role".to_owned()),
        ("Empty".to_owned(), String::new()),
    ])
}

/// Parses and renders; an error as its text.
fn run(text: &str) -> Result<String, String> {
    Template::parse(text)
        .and_then(|t| t.render(&data()))
        .map_err(|e| e.to_string())
}

/// Each case's output or error text as Go's `sdk/helper/template` gives it for the same
/// template and a `map[string]string` of the same data (OpenBao sdk v2.6.2, Go 1.26).
const SAME_AS_GO: &[(&str, &str, Result<&str, &str>)] = &[
    (
        "truncate_shorter",
        "{{ .DisplayName | truncate 7 }}",
        Ok("display"),
    ),
    (
        "truncate_longer_than_value",
        "{{ .RoleName | truncate 8 }}",
        Ok("role"),
    ),
    (
        "truncate_bytes_not_chars",
        "{{ \"héllo\" | truncate 3 | hex }}",
        Ok("68c3a9"),
    ),
    (
        "truncate_zero",
        "{{ .DisplayName | truncate 0 }}",
        Err(
            "unable to apply template: template: template:1:18: executing \"template\" at <truncate 0>: error calling truncate: max length must be > 0 but was 0",
        ),
    ),
    (
        "truncate_negative",
        "{{ .DisplayName | truncate -1 }}",
        Err(
            "unable to apply template: template: template:1:18: executing \"template\" at <truncate -1>: error calling truncate: max length must be > 0 but was -1",
        ),
    ),
    (
        "truncate_string_length",
        "{{ .DisplayName | truncate \"a\" }}",
        Err(
            "unable to apply template: template: template:1:27: executing \"template\" at <\"a\">: expected integer; found \"a\"",
        ),
    ),
    (
        "truncate_too_few_args",
        "{{ truncate 3 }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <truncate>: wrong number of args for truncate: want 2 got 1",
        ),
    ),
    (
        "truncate_too_many_args",
        "{{ truncate 3 .DisplayName .RoleName }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <truncate>: wrong number of args for truncate: want 2 got 3",
        ),
    ),
    (
        "truncate_sha256_cuts",
        "{{ .DisplayName | truncate_sha256 10 }}",
        Ok("di468d983c"),
    ),
    (
        "truncate_sha256_fits",
        "{{ .RoleName | truncate_sha256 10 }}",
        Ok("role"),
    ),
    (
        "truncate_sha256_exact",
        "{{ \"123456789\" | truncate_sha256 9 }}",
        Ok("123456789"),
    ),
    (
        "truncate_sha256_nine",
        "{{ .DisplayName | truncate_sha256 9 }}",
        Ok("d752ea7eb"),
    ),
    (
        "truncate_sha256_eight",
        "{{ .DisplayName | truncate_sha256 8 }}",
        Err(
            "unable to apply template: template: template:1:18: executing \"template\" at <truncate_sha256 8>: error calling truncate_sha256: max length must be > 8 but was 8",
        ),
    ),
    (
        "uppercase",
        "{{ .DisplayName | uppercase }}",
        Ok("DISPLAY-NAME-LONG"),
    ),
    (
        "lowercase",
        "{{ \"MiXeD-Ünï\" | lowercase }}",
        Ok("mixed-ünï"),
    ),
    (
        "uppercase_unicode",
        "{{ \"straße ǆ é\" | uppercase }}",
        Ok("STRAßE Ǆ É"),
    ),
    ("lowercase_dotted_i", "{{ \"İ\" | lowercase }}", Ok("i")),
    (
        "uppercase_invalid_utf8",
        "{{ \"\\xffé\" | uppercase | hex }}",
        Ok("efbfbdc389"),
    ),
    (
        "uppercase_int",
        "{{ uppercase 5 }}",
        Err(
            "unable to apply template: template: template:1:13: executing \"template\" at <5>: expected string; found 5",
        ),
    ),
    (
        "replace_piped",
        "{{ .DisplayName | replace \"-\" \"_\" }}",
        Ok("display_name_long"),
    ),
    (
        "replace_direct",
        "{{ replace \"-\" \"\" .DisplayName }}",
        Ok("displaynamelong"),
    ),
    (
        "replace_empty_find",
        "{{ replace \"\" \"-\" \"héy\" }}",
        Ok("-h-é-y-"),
    ),
    (
        "sha256",
        "{{ .DisplayName | sha256 }}",
        Ok("ecf471185e8931f0ad84d51b9e830db3783b166b3bd1d120b56fe6cde4fb301a"),
    ),
    (
        "sha256_empty",
        "{{ .Empty | sha256 }}",
        Ok("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ),
    (
        "base64",
        "{{ .DisplayName | base64 }}",
        Ok("ZGlzcGxheS1uYW1lLWxvbmc="),
    ),
    ("base64_empty", "{{ \"\" | base64 }}", Ok("")),
    (
        "decode_base64",
        "{{ \"ZGlzcGxheS1uYW1lLWxvbmc=\" | decode_base64 }}",
        Ok("display-name-long"),
    ),
    (
        "decode_base64_newlines",
        "{{ \"YW\\nJj\" | decode_base64 }}",
        Ok("abc"),
    ),
    (
        "decode_base64_short",
        "{{ \"abc\" | decode_base64 }}",
        Err(
            "unable to apply template: template: template:1:11: executing \"template\" at <decode_base64>: error calling decode_base64: illegal base64 data at input byte 0",
        ),
    ),
    (
        "decode_base64_bad_byte",
        "{{ \"ab$d\" | decode_base64 }}",
        Err(
            "unable to apply template: template: template:1:12: executing \"template\" at <decode_base64>: error calling decode_base64: illegal base64 data at input byte 2",
        ),
    ),
    ("hex", "{{ \"héllo\" | hex }}", Ok("68c3a96c6c6f")),
    ("decode_hex", "{{ \"726f6c65\" | decode_hex }}", Ok("role")),
    (
        "decode_hex_upper",
        "{{ \"726F6C65\" | decode_hex }}",
        Ok("role"),
    ),
    (
        "decode_hex_odd",
        "{{ \"abc\" | decode_hex }}",
        Err(
            "unable to apply template: template: template:1:11: executing \"template\" at <decode_hex>: error calling decode_hex: encoding/hex: odd length hex string",
        ),
    ),
    ("random_zero", "{{ random 0 }}x", Ok("x")),
    (
        "random_string_arg",
        "{{ random \"3\" }}",
        Err(
            "unable to apply template: template: template:1:10: executing \"template\" at <\"3\">: expected integer; found \"3\"",
        ),
    ),
    (
        "unix_time_args",
        "{{ unix_time 3 }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <unix_time>: wrong number of args for unix_time: want 0 got 1",
        ),
    ),
    (
        "glob_prefix",
        "{{ glob \"dis*\" .DisplayName }}",
        Ok("true"),
    ),
    (
        "glob_prefix_miss",
        "{{ glob \"a*\" .DisplayName }}",
        Ok("false"),
    ),
    (
        "glob_piped",
        "{{ .DisplayName | glob \"*long\" }}",
        Ok("true"),
    ),
    (
        "glob_table",
        "{{ glob \"a*a\" \"a\" }}|{{ glob \"a*a\" \"aa\" }}|{{ glob \"*a*\" \"xay\" }}|{{ glob \"a**b\" \"ab\" }}|{{ glob \"\" \"x\" }}|{{ glob \"\" \"\" }}|{{ glob \"x\" \"x\" }}|{{ glob \"*b\" \"ab\" }}|{{ glob \"a*\" \"\" }}|{{ glob \"*\" \"\" }}|{{ glob \"a*b*c\" \"aXbYc\" }}|{{ glob \"a*b*c\" \"acb\" }}",
        Ok("false|true|true|true|false|true|true|true|false|true|true|false"),
    ),
    (
        "glob_into_truncate",
        "{{ glob \"a*\" \"abc\" | truncate 2 }}",
        Err(
            "unable to apply template: template: template:1:30: executing \"template\" at <2>: wrong type for value; expected string; got bool",
        ),
    ),
    (
        "if_glob",
        "{{ if glob \"dis*\" .DisplayName }}yes{{ else }}no{{ end }}",
        Ok("yes"),
    ),
    (
        "if_else_if",
        "{{ if .Empty }}a{{ else if 0 }}b{{ else if \"x\" }}c{{ else }}d{{ end }}",
        Ok("c"),
    ),
    ("if_false", "{{ if false }}a{{ end }}b", Ok("b")),
    (
        "printf_verbs",
        "{{ printf \"%05s|%-5s|%5.2s|%05d|%x|%6x|%X|%5v|%-6v|%.3d|%+d|% d|%x|%t|%%\" \"ab\" \"é\" \"héllo\" -42 \"hi\" \"hi\" 255 true false 7 5 5 -255 true }}",
        Ok("000ab|é    |   hé|-0042|6869|  6869|FF| true|false |007|+5| 5|-ff|true|%"),
    ),
    (
        "printf_widths",
        "{{ printf \"%3d|%-3d|%03d|%-05d|%.0d|%v\" -3 -3 -3 3 0 7 }}",
        Ok(" -3|-3 |-03|3    ||7"),
    ),
    (
        "printf_piped_last",
        "{{ .DisplayName | printf \"%s-%s\" \"x\" }}",
        Ok("x-display-name-long"),
    ),
    (
        "printf_no_args",
        "{{ printf }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <printf>: wrong number of args for printf: want at least 1 got 0",
        ),
    ),
    (
        "printf_function_arg",
        "{{ printf \"%s\" uuid | truncate 0 }}",
        Err(
            "unable to apply template: template: template:1:22: executing \"template\" at <truncate 0>: error calling truncate: max length must be > 0 but was 0",
        ),
    ),
    (
        "chain",
        "{{ .DisplayName | uppercase | lowercase | truncate 4 }}",
        Ok("disp"),
    ),
    (
        "parens",
        "{{ (.DisplayName | truncate 4) | uppercase }}",
        Ok("DISP"),
    ),
    (
        "parens_as_arg",
        "{{ uppercase (truncate 3 .DisplayName) }}",
        Ok("DIS"),
    ),
    (
        "nested_parens",
        "{{ printf \"%s.%s\" ((.RoleName)) (replace \"-\" \"\" (.DisplayName | truncate 7)) }}",
        Ok("role.display"),
    ),
    (
        "trailing_pipe",
        "{{ .DisplayName | }}",
        Ok("display-name-long"),
    ),
    (
        "error_in_parens",
        "{{ printf \"%s\" (.DisplayName | truncate 0) }}",
        Err(
            "unable to apply template: template: template:1:31: executing \"template\" at <truncate 0>: error calling truncate: max length must be > 0 but was 0",
        ),
    ),
    (
        "pipe_int_into_string",
        "{{ 5 | truncate 3 }}",
        Err(
            "unable to apply template: template: template:1:16: executing \"template\" at <3>: wrong type for value; expected string; got int",
        ),
    ),
    (
        "string_escapes",
        "{{ \"\\u00e9\\U0001F600\\141\\a\\b\\f\\v\\\\\\\"\\x41\\t\" | hex }}",
        Ok("c3a9f09f98806107080c0b5c224109"),
    ),
    ("raw_string", "{{ `raw\\n\"x\"` }}", Ok("raw\\n\"x\"")),
    ("raw_string_drops_cr", "{{ `a\rb` | hex }}", Ok("6162")),
    (
        "integers",
        "{{ 0x_1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }} {{ -3 }} {{ +3 }} {{ 0 }}",
        Ok("31 15 15 5 1000 -3 3 0"),
    ),
    ("bools", "{{ true }} {{ false }}", Ok("true false")),
    (
        "bad_escape",
        "{{ \"\\z\" }}",
        Err("unable to parse template: template: template:1: invalid syntax"),
    ),
    (
        "bad_escape_quote",
        "{{ \"\\'\" }}",
        Err("unable to parse template: template: template:1: invalid syntax"),
    ),
    (
        "bad_octal",
        "{{ \"\\400\" }}",
        Err("unable to parse template: template: template:1: invalid syntax"),
    ),
    (
        "bad_surrogate",
        "{{ \"\\ud800\" }}",
        Err("unable to parse template: template: template:1: invalid syntax"),
    ),
    (
        "bad_underscores",
        "{{ 1__0 }}",
        Err("unable to parse template: template: template:1: illegal number syntax: \"1__0\""),
    ),
    (
        "overflow",
        "{{ 99999999999999999999 }}",
        Err(
            "unable to parse template: template: template:1: integer overflow: \"99999999999999999999\"",
        ),
    ),
    (
        "bad_number",
        "{{ 3x }}",
        Err("unable to parse template: template: template:1: bad number syntax: \"3x\""),
    ),
    (
        "literal_with_args",
        "{{ \"a\" \"b\" }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <\"a\">: can't give argument to non-function \"a\"",
        ),
    ),
    (
        "literal_second_stage",
        "{{ \"a\" | \"b\" }}",
        Err(
            "unable to parse template: template: template:1: non executable command in pipeline stage 2",
        ),
    ),
    (
        "literal_field",
        "{{ \"a\".b }}",
        Err(
            "unable to parse template: template: template:1: unexpected . after term \"\\\"a\\\"\"",
        ),
    ),
    ("text_only", "plain text", Ok("plain text")),
    ("two_actions", "{{ \"a\" }}{{ \"b\" }}", Ok("ab")),
    ("trim_left", "a  {{- \"b\" }}  c", Ok("ab  c")),
    ("trim_right", "a  {{ \"b\" -}}  c", Ok("a  bc")),
    ("trim_both_newlines", "a \n\t {{- \"b\" -}} \n c", Ok("abc")),
    ("minus_number_not_trim", "{{-3}}", Ok("-3")),
    ("trim_before_number", "{{- 3 -}}", Ok("3")),
    ("comment", "x{{/* a comment */}}y", Ok("xy")),
    ("comment_trimmed", "x  {{- /* c */ -}}  y", Ok("xy")),
    (
        "comment_with_spaces_inside_braces",
        "{{ /* c */ }}",
        Err("unable to parse template: template: template:1: unexpected \"/\" in command"),
    ),
    (
        "comment_then_value",
        "{{/* c */ 3 }}",
        Err(
            "unable to parse template: template: template:1: comment ends before closing delimiter",
        ),
    ),
    (
        "unclosed_comment",
        "{{/* c }}",
        Err("unable to parse template: template: template:1: unclosed comment"),
    ),
    (
        "multiline_action",
        "{{ .DisplayName\n| truncate 3 }}",
        Ok("dis"),
    ),
    (
        "error_on_second_line",
        "a\nb {{ .DisplayName | truncate 0 }}",
        Err(
            "unable to apply template: template: template:2:20: executing \"template\" at <truncate 0>: error calling truncate: max length must be > 0 but was 0",
        ),
    ),
    ("close_braces_in_text", "}} x", Ok("}} x")),
    (
        "unknown_function",
        "{{ foo }}",
        Err("unable to parse template: template: template:1: function \"foo\" not defined"),
    ),
    (
        "unknown_function_later",
        "{{ .DisplayName | foo 3 }}",
        Err("unable to parse template: template: template:1: function \"foo\" not defined"),
    ),
    (
        "empty_action",
        "{{}}",
        Err("unable to parse template: template: template:1: missing value for command"),
    ),
    (
        "leading_pipe",
        "{{ | .DisplayName }}",
        Err("unable to parse template: template: template:1: unexpected \"|\" in command"),
    ),
    (
        "unclosed_action",
        "x{{ .DisplayName",
        Err("unable to parse template: template: template:1: unclosed action"),
    ),
    (
        "unclosed_action_multiline",
        "{{ .DisplayName\n\n",
        Err(
            "unable to parse template: template: template:3: unclosed action started at template:1",
        ),
    ),
    (
        "unterminated_string",
        "{{ \"abc }}",
        Err("unable to parse template: template: template:1: unterminated quoted string"),
    ),
    (
        "unterminated_raw",
        "{{ `abc }}",
        Err("unable to parse template: template: template:1: unterminated raw quoted string"),
    ),
    (
        "unclosed_paren",
        "{{ ( \"a\" }}",
        Err("unable to parse template: template: template:1: unclosed left paren"),
    ),
    (
        "unexpected_paren",
        "{{ \"a\" ) }}",
        Err("unable to parse template: template: template:1: unexpected right paren"),
    ),
    (
        "empty_parens",
        "{{ ( ) }}",
        Err(
            "unable to parse template: template: template:1: missing value for parenthesized pipeline",
        ),
    ),
    (
        "bad_character",
        "{{ a@ }}",
        Err("unable to parse template: template: template:1: bad character U+0040 '@'"),
    ),
    (
        "unexpected_char",
        "{{ , }}",
        Err("unable to parse template: template: template:1: unexpected \",\" in command"),
    ),
    (
        "if_without_value",
        "{{ if }}x{{ end }}",
        Err("unable to parse template: template: template:1: missing value for if"),
    ),
    (
        "if_without_end",
        "{{ if true }}x",
        Err("unable to parse template: template: template:1: unexpected EOF"),
    ),
    (
        "end_alone",
        "{{ end }}",
        Err("unable to parse template: template: template:1: unexpected {{end}}"),
    ),
    (
        "else_alone",
        "{{ else }}",
        Err("unable to parse template: template: template:1: unexpected {{else}}"),
    ),
    (
        "keyword_as_arg",
        "{{ printf \"%s\" end }}",
        Err("unable to parse template: template: template:1: unexpected <end> in operand"),
    ),
    (
        "unrecognized",
        "{{ \u{1} }}",
        Err(
            "unable to parse template: template: template:1: unrecognized character in action: U+0001",
        ),
    ),
    (
        "field_with_args",
        "{{ .DisplayName 3 }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <.DisplayName>: DisplayName is not a method but has arguments",
        ),
    ),
    (
        "field_after_pipe",
        "{{ \"a\" | .DisplayName }}",
        Err(
            "unable to apply template: template: template:1:9: executing \"template\" at <.DisplayName>: DisplayName is not a method but has arguments",
        ),
    ),
];

#[test]
fn renders_and_fails_as_go_does() {
    let mut wrong = Vec::new();
    for (name, text, want) in SAME_AS_GO {
        let got = run(text);
        if got.as_deref().map_err(String::as_str) != *want {
            wrong.push(format!("{name}: {text:?}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cases differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Where this module means to differ from Go, and what it does instead.
const NOT_AS_GO: &[(&str, &str, Result<&str, &str>)] = &[
    // Go prints `%!s(MISSING)!` into the name; a complaint in a user name helps nobody.
    (
        "printf_missing_argument",
        "{{ \"%s!\" | printf }}",
        Err(
            "unable to apply template: template: template:1:11: executing \"template\" at <printf>: error calling printf: the format has more verbs than arguments (%s has none)",
        ),
    ),
    // Go: `a%!(EXTRA string=b)`.
    (
        "printf_extra_argument",
        "{{ printf \"a\" \"b\" }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <printf \"a\" \"b\">: error calling printf: the format has fewer verbs (0) than arguments (1)",
        ),
    ),
    // Go: `%!d(string=display-name-long)`, the value in the name.
    (
        "printf_wrong_type",
        "{{ printf \"%d\" .DisplayName }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <printf \"%d\" .DisplayName>: error calling printf: verb %d cannot format argument 1 (a string)",
        ),
    ),
    // Go: `%!q(string=a)`.
    (
        "printf_unsupported_verb",
        "{{ printf \"%q\" \"a\" }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <printf \"%q\" \"a\">: error calling printf: verb %q is not supported",
        ),
    ),
    // Go: `%!(NOVERB)`.
    (
        "printf_lone_percent",
        "{{ printf \"50%\" }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <printf \"50%\">: error calling printf: the format ends in the middle of a verb",
        ),
    ),
    // Go names the last node it visited inside the parentheses (`<1>`, at 1:20).
    (
        "computed_argument_of_wrong_type",
        "{{ truncate (random 1) \"abc\" }}",
        Err(
            "unable to apply template: template: template:1:13: executing \"template\" at <(random 1)>: wrong type for value; expected int; got string",
        ),
    ),
    // Go, given a map: `<no value>`; given the plugins' struct: `can't evaluate field Foo in
    // type dbplugin.UsernameMetadata`. Here: Go's text for a map with `missingkey=error`.
    (
        "unknown_field",
        "{{ .Foo }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <.Foo>: map has no entry for key \"Foo\"",
        ),
    ),
    (
        "unknown_field_piped",
        "{{ .Foo | truncate 3 }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <.Foo>: map has no entry for key \"Foo\"",
        ),
    ),
    // Go: a panic's text, `runtime error: makeslice: cap out of range`.
    (
        "random_negative",
        "{{ random -1 }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <random -1>: error calling random: length must be >= 0 but was -1",
        ),
    ),
    // Go has no bound.
    (
        "random_huge",
        "{{ random 1048577 }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <random 1048577>: error calling random: length must be at most 1048576 but was 1048577",
        ),
    ),
    // Go: `encoding/hex: invalid byte: U+007A 'z'`, a character of the data.
    (
        "decode_hex_invalid_byte",
        "{{ \"7z\" | decode_hex }}",
        Err(
            "unable to apply template: template: template:1:10: executing \"template\" at <decode_hex>: error calling decode_hex: encoding/hex: invalid byte at offset 1",
        ),
    ),
    // Go writes the bytes out; a user name that is not UTF-8 fails at the database anyway.
    (
        "not_utf8",
        "{{ \"é\" | truncate 1 }}",
        Err(
            "unable to apply template: template: template:1:3: executing \"template\" at <{{\"é\" | truncate 1}}>: the value is not valid UTF-8 (a truncate may have cut a character in two)",
        ),
    ),
    // Go runs these; this module does not have them.
    (
        "range",
        "{{ range .X }}{{ end }}",
        Err(
            "unable to parse template: template: template:1: {{range}} is not supported by this template implementation",
        ),
    ),
    (
        "builtin_len",
        "{{ len .DisplayName }}",
        Err(
            "unable to parse template: template: template:1: function \"len\" (a text/template builtin) is not supported by this template implementation",
        ),
    ),
    (
        "dot",
        "{{ . }}",
        Err(
            "unable to parse template: template: template:1: `.` alone (the whole data) is not supported: name a field, e.g. .RoleName",
        ),
    ),
    (
        "variable",
        "{{ $x := 1 }}",
        Err("unable to parse template: template: template:1: variables ($x) are not supported"),
    ),
    (
        "chained_field",
        "{{ .DisplayName.Foo }}",
        Err(
            "unable to parse template: template: template:1: a field of a value (.DisplayName.Foo...) is not supported: data values are strings",
        ),
    ),
    (
        "float",
        "{{ 1.5 }}",
        Err(
            "unable to parse template: template: template:1: floating-point and complex constants are not supported: \"1.5\"",
        ),
    ),
    (
        "char_constant",
        "{{ 'a' }}",
        Err(
            "unable to parse template: template: template:1: character constants are not supported: 'a'",
        ),
    ),
    (
        "nil",
        "{{ nil }}",
        Err("unable to parse template: template: template:1: nil is not supported"),
    ),
];

#[test]
fn differs_from_go_where_it_means_to() {
    let mut wrong = Vec::new();
    for (name, text, want) in NOT_AS_GO {
        let got = run(text);
        if got.as_deref().map_err(String::as_str) != *want {
            wrong.push(format!("{name}: {text:?}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cases differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Go's `time.Unix(secs, nanos).UTC().Format(layout)` for these (Go 1.26).
const TIMES: &[(u64, u32, &str, &str)] = &[
    (0, 0, "2006-01-02T15:04:05Z07:00", "1970-01-01T00:00:00Z"),
    (0, 0, "2006-01-02 15:04:05-0700", "1970-01-01 00:00:00+0000"),
    (
        0,
        0,
        "Mon Jan _2 15:04:05.000 MST 2006",
        "Thu Jan  1 00:00:00.000 UTC 1970",
    ),
    (
        0,
        0,
        "Monday January 2 3:4:5 PM pm 06 1 01 002 __2 _2006",
        "Thursday January 1 12:0:0 AM am 70 1 01 001   1 _1970",
    ),
    (
        0,
        0,
        "15h04m05s .999999999 ,999 .000000 .99 Z07 Z0700 Z07:00:00 -07 -07:00 -070000 -07:00:00",
        "00h00m00s   .000000  Z Z Z +00 +00:00 +000000 +00:00:00",
    ),
    (
        0,
        0,
        "Janet Month 20060102150405",
        "Janet Month 19700101000000",
    ),
    (
        1796291787,
        826842000,
        "2006-01-02T15:04:05Z07:00",
        "2026-12-03T09:56:27Z",
    ),
    (
        1796291787,
        826842000,
        "2006-01-02 15:04:05-0700",
        "2026-12-03 09:56:27+0000",
    ),
    (
        1796291787,
        826842000,
        "Mon Jan _2 15:04:05.000 MST 2006",
        "Thu Dec  3 09:56:27.826 UTC 2026",
    ),
    (
        1796291787,
        826842000,
        "Monday January 2 3:4:5 PM pm 06 1 01 002 __2 _2006",
        "Thursday December 3 9:56:27 AM am 26 12 12 337 337 _2026",
    ),
    (
        1796291787,
        826842000,
        "15h04m05s .999999999 ,999 .000000 .99 Z07 Z0700 Z07:00:00 -07 -07:00 -070000 -07:00:00",
        "09h56m27s .826842 ,826 .826842 .82 Z Z Z +00 +00:00 +000000 +00:00:00",
    ),
    (
        1796291787,
        826842000,
        "Janet Month 20060102150405",
        "Janet Month 20261203095627",
    ),
    (
        951782400,
        5,
        "2006-01-02T15:04:05Z07:00",
        "2000-02-29T00:00:00Z",
    ),
    (
        951782400,
        5,
        "2006-01-02 15:04:05-0700",
        "2000-02-29 00:00:00+0000",
    ),
    (
        951782400,
        5,
        "Mon Jan _2 15:04:05.000 MST 2006",
        "Tue Feb 29 00:00:00.000 UTC 2000",
    ),
    (
        951782400,
        5,
        "Monday January 2 3:4:5 PM pm 06 1 01 002 __2 _2006",
        "Tuesday February 29 12:0:0 AM am 00 2 02 060  60 _2000",
    ),
    (
        951782400,
        5,
        "15h04m05s .999999999 ,999 .000000 .99 Z07 Z0700 Z07:00:00 -07 -07:00 -070000 -07:00:00",
        "00h00m00s .000000005  .000000  Z Z Z +00 +00:00 +000000 +00:00:00",
    ),
    (
        951782400,
        5,
        "Janet Month 20060102150405",
        "Janet Month 20000229000000",
    ),
    (
        4102444799,
        999999999,
        "2006-01-02T15:04:05Z07:00",
        "2099-12-31T23:59:59Z",
    ),
    (
        4102444799,
        999999999,
        "2006-01-02 15:04:05-0700",
        "2099-12-31 23:59:59+0000",
    ),
    (
        4102444799,
        999999999,
        "Mon Jan _2 15:04:05.000 MST 2006",
        "Thu Dec 31 23:59:59.999 UTC 2099",
    ),
    (
        4102444799,
        999999999,
        "Monday January 2 3:4:5 PM pm 06 1 01 002 __2 _2006",
        "Thursday December 31 11:59:59 PM pm 99 12 12 365 365 _2099",
    ),
    (
        4102444799,
        999999999,
        "15h04m05s .999999999 ,999 .000000 .99 Z07 Z0700 Z07:00:00 -07 -07:00 -070000 -07:00:00",
        "23h59m59s .999999999 ,999 .999999 .99 Z Z Z +00 +00:00 +000000 +00:00:00",
    ),
    (
        4102444799,
        999999999,
        "Janet Month 20060102150405",
        "Janet Month 20991231235959",
    ),
    (
        1700000000,
        120000000,
        "2006-01-02T15:04:05Z07:00",
        "2023-11-14T22:13:20Z",
    ),
    (
        1700000000,
        120000000,
        "2006-01-02 15:04:05-0700",
        "2023-11-14 22:13:20+0000",
    ),
    (
        1700000000,
        120000000,
        "Mon Jan _2 15:04:05.000 MST 2006",
        "Tue Nov 14 22:13:20.120 UTC 2023",
    ),
    (
        1700000000,
        120000000,
        "Monday January 2 3:4:5 PM pm 06 1 01 002 __2 _2006",
        "Tuesday November 14 10:13:20 PM pm 23 11 11 318 318 _2023",
    ),
    (
        1700000000,
        120000000,
        "15h04m05s .999999999 ,999 .000000 .99 Z07 Z0700 Z07:00:00 -07 -07:00 -070000 -07:00:00",
        "22h13m20s .12 ,12 .120000 .12 Z Z Z +00 +00:00 +000000 +00:00:00",
    ),
    (
        1700000000,
        120000000,
        "Janet Month 20060102150405",
        "Janet Month 20231114221320",
    ),
];

#[test]
fn formats_time_layouts_as_go_does() {
    let mut wrong = Vec::new();
    for &(secs, nanos, layout, want) in TIMES {
        let got = format_time(layout.as_bytes(), std::time::Duration::new(secs, nanos));
        if got != want.as_bytes() {
            wrong.push(format!(
                "{secs}.{nanos:09} {layout:?}\n  want {want:?}\n  got  {:?}",
                String::from_utf8_lossy(&got)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `v-<display ≤8>-<role ≤8>-<20 base62>-<unix seconds>`, at most 63 bytes.
fn check_default_shape(name: &str, display: &str, role: &str, before: u64, after: u64) {
    assert!(name.len() <= 63, "{name}");
    let rest = name.strip_prefix("v-").unwrap_or_else(|| panic!("{name}"));
    let display = &display[..display.len().min(8)];
    let role = &role[..role.len().min(8)];
    let rest = rest
        .strip_prefix(&format!("{display}-{role}-"))
        .unwrap_or_else(|| panic!("{name}"));
    let (random, time) = rest.split_at(20);
    assert!(is_base62(random), "{name}");
    let time: u64 = time
        .strip_prefix('-')
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{name}"));
    assert!((before..=after).contains(&time), "{name}");
}

const POSTGRES_DEFAULT: &str = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}"#;

#[test]
fn renders_postgresqls_default_template_in_its_shape() {
    let template = Template::parse(POSTGRES_DEFAULT).unwrap();
    for (case, display, role) in [
        (
            "long names are cut to 8",
            "token-approle-ci",
            "readonly-analytics",
        ),
        ("short names are kept", "ci", "ro"),
        ("empty, as the plugin checks it at initialize", "", ""),
    ] {
        let data = BTreeMap::from([
            ("DisplayName".to_owned(), display.to_owned()),
            ("RoleName".to_owned(), role.to_owned()),
        ]);
        let before = now().as_secs();
        let name = template.render(&data).unwrap();
        let after = now().as_secs();
        eprintln!("{case}: {name}");
        check_default_shape(&name, display, role, before, after);
    }
}

#[test]
fn truncates_the_whole_name_to_63_bytes() {
    let template = Template::parse(
        r#"{{ printf "%s-%s-%s" .DisplayName (random 40) (unix_time) | truncate 63 }}"#,
    )
    .unwrap();
    let data = BTreeMap::from([("DisplayName".to_owned(), "d".repeat(30))]);
    let name = template.render(&data).unwrap();
    assert_eq!(name.len(), 63);
    assert!(name.starts_with(&format!("{}-", "d".repeat(30))));
    assert!(is_base62(&name[31..63]), "{name}");
}

#[test]
fn random_is_base62_of_the_length_asked() {
    for n in [1, 2, 20, 62, 300] {
        let template = Template::parse(&format!("{{{{ random {n} }}}}")).unwrap();
        let out = template.render(&BTreeMap::new()).unwrap();
        assert_eq!(out.len(), n, "{out}");
        assert!(is_base62(&out), "{out}");
    }
    // Over many draws every character of the alphabet shows up, and nothing else.
    let template = Template::parse("{{ random 5000 }}").unwrap();
    let out = template.render(&BTreeMap::new()).unwrap();
    let seen: std::collections::BTreeSet<u8> = out.bytes().collect();
    assert_eq!(seen.len(), 62);
    assert!(is_base62(&out));
}

#[test]
fn rendering_twice_draws_new_random_values() {
    let template = Template::parse(POSTGRES_DEFAULT).unwrap();
    let data = data();
    let first = template.render(&data).unwrap();
    let second = template.render(&data).unwrap();
    assert_ne!(first, second);
    let uuid = Template::parse("{{ uuid }}").unwrap();
    assert_ne!(uuid.render(&data).unwrap(), uuid.render(&data).unwrap());
}

#[test]
fn uuid_is_16_random_bytes_in_hex_groups() {
    let out = run("{{ uuid }}").unwrap();
    assert_eq!(out.len(), 36, "{out}");
    for (i, c) in out.char_indices() {
        if [8, 13, 18, 23].contains(&i) {
            assert_eq!(c, '-', "{out}");
        } else {
            assert!(matches!(c, '0'..='9' | 'a'..='f'), "{out}");
        }
    }
}

#[test]
fn unix_time_is_now_in_seconds_and_milliseconds() {
    let before = now();
    let out = run("{{ unix_time }} {{ unix_time_millis }}").unwrap();
    let after = now();
    let (secs, millis) = out.split_once(' ').unwrap();
    let secs: u64 = secs.parse().unwrap();
    let millis: u128 = millis.parse().unwrap();
    assert!((before.as_secs()..=after.as_secs()).contains(&secs));
    assert!((before.as_millis()..=after.as_millis()).contains(&millis));
}

#[test]
fn timestamp_is_now_in_the_layout() {
    let before = now().as_secs();
    let out = run(r#"{{ timestamp "2006-01-02T15:04:05Z07:00" }}"#).unwrap();
    let after = now().as_secs();
    let formats: Vec<String> = (before..=after)
        .map(|s| {
            let f = format_time(
                b"2006-01-02T15:04:05Z07:00",
                std::time::Duration::from_secs(s),
            );
            String::from_utf8(f).unwrap()
        })
        .collect();
    assert!(formats.contains(&out), "{out} not in {formats:?}");
}

#[test]
fn an_empty_template_is_missing() {
    let err = Template::parse("").unwrap_err();
    assert_eq!(err, TemplateError::Missing);
    assert_eq!(err.to_string(), "missing template");
    // White space alone is a template (Go too): it renders as itself.
    assert_eq!(run(" ").unwrap(), " ");
}

#[test]
fn errors_say_where_in_their_fields() {
    let err = Template::parse("a\n{{ .RoleName | truncate 0 }}")
        .unwrap()
        .render(&data())
        .unwrap_err();
    assert_eq!(
        err,
        TemplateError::Render {
            line: 2,
            column: 15,
            context: "truncate 0".to_owned(),
            message: "error calling truncate: max length must be > 0 but was 0".to_owned(),
        }
    );
    let err = Template::parse("a\n\n{{ foo }}").unwrap_err();
    assert_eq!(
        err,
        TemplateError::Parse {
            line: 3,
            message: "function \"foo\" not defined".to_owned(),
        }
    );
}

#[test]
fn errors_never_carry_the_datas_values() {
    let secret = "s3cr3t-Zq";
    let data = BTreeMap::from([("DisplayName".to_owned(), secret.to_owned())]);
    for (case, text) in [
        ("hex", "{{ .DisplayName | decode_hex }}"),
        ("base64", "{{ .DisplayName | decode_base64 }}"),
        ("printf type", r#"{{ printf "%d" .DisplayName }}"#),
        ("printf extra", r#"{{ printf "x" .DisplayName }}"#),
        ("truncate", "{{ .DisplayName | truncate 0 }}"),
        ("into an int", "{{ truncate .DisplayName .DisplayName }}"),
        (
            "not utf-8",
            r#"{{ printf "%sé" .DisplayName | truncate 10 }}"#,
        ),
        ("field with args", r#"{{ "x" | .DisplayName }}"#),
    ] {
        let err = Template::parse(text).unwrap().render(&data).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("s3cr3t"), "{case}: {text}");
        assert!(!text.contains("Zq"), "{case}: {text}");
    }
}

#[test]
fn a_template_is_shared_between_threads() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<Template>();
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    error::<TemplateError>();
}

#[test]
fn glob_matches_as_go_glob_does() {
    // The algorithm of github.com/ryanuber/go-glob v1.0.0 (OpenBao's), at its corners.
    for (pattern, subject, want) in [
        ("", "", true),
        ("", "x", false),
        ("*", "", true),
        ("*", "anything", true),
        ("abc", "abc", true),
        ("abc", "abcd", false),
        ("a*", "abc", true),
        ("*c", "abc", true),
        ("a*c", "abc", true),
        ("a*c", "ac", true),
        ("a*a", "a", false),
        ("a*b*c", "a-b-c", true),
        ("a*b*c", "a-c-b", false),
        ("*b*", "abc", true),
        ("a**c", "ac", true),
        ("release/*", "release/1.2", true),
        ("release/*", "main", false),
    ] {
        assert_eq!(
            glob(pattern.as_bytes(), subject.as_bytes()),
            want,
            "glob {pattern:?} {subject:?}"
        );
    }
}

/// A template is an operator's text and a panic aborts the plugin: every prefix of every table
/// case, and every case with one character taken out, parses or renders to a result.
#[test]
fn broken_templates_fail_without_panicking() {
    let texts = SAME_AS_GO
        .iter()
        .chain(NOT_AS_GO)
        .map(|(_, text, _)| *text)
        .chain([POSTGRES_DEFAULT]);
    let mut tried = 0;
    for text in texts {
        let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        for &cut in &cuts {
            let prefix = &text[..cut];
            let next = text[cut..].chars().next().map_or(0, char::len_utf8);
            let without = format!("{}{}", prefix, &text[cut + next..]);
            for variant in [prefix, without.as_str()] {
                let _ = std::panic::catch_unwind(|| run(variant))
                    .unwrap_or_else(|_| panic!("panicked on {variant:?}"));
                tried += 1;
            }
        }
    }
    assert!(tried > 5000, "{tried}");
}
