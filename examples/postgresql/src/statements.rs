//! Statements as the Go plugin reads them: each of a role's statements may be base64, a JSON
//! array of strings, or text to split on `;`; `{{name}}`-style placeholders are replaced as
//! plain text (quoting is the statement's own); a statement with the word `END` outside its
//! quoted text (a `DO $$ ... END $$` block, a function body) runs whole.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The queries in one of a role's statements (`strutil.ParseArbitraryStringSlice(stmt, ";")`,
/// each trimmed, the empty ones dropped).
pub(crate) fn split(statement: &str) -> Vec<String> {
    let trimmed = statement.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    // Whole-string base64 first, then a JSON array of strings; else `;`-separated text.
    let decoded = STANDARD
        .decode(trimmed)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let input = decoded.as_deref().unwrap_or(trimmed);
    let pieces: Vec<String> = match serde_json::from_str::<Option<Vec<String>>>(input) {
        Ok(list) => list.unwrap_or_default(),
        Err(_) => input.trim().split(';').map(str::to_owned).collect(),
    };
    pieces
        .into_iter()
        .map(|piece| piece.trim().to_owned())
        .filter(|piece| !piece.is_empty())
        .collect()
}

/// Whether `statement` runs whole rather than split: it has the word `END` (case-sensitive,
/// between word boundaries) once quoted text is taken out.
///
/// The Go plugin means to take out every `"..."` and `'...'` phrase, but each removal starts
/// again from the original text, so only the last phrase found is taken out (double-quoted
/// ones are found first, then single-quoted). That is kept: a statement must split the same
/// way in both plugins.
pub(crate) fn runs_whole(statement: &str) -> bool {
    let mut phrases = quoted(statement, '"');
    phrases.extend(quoted(statement, '\''));
    let without = match phrases.last() {
        Some(last) => statement.replace(last, ""),
        None => statement.to_owned(),
    };
    has_word(&without, "END")
}

/// The non-overlapping `q...q` phrases of `text`, shortest first, left to right (Go's
/// `regexp` `(".*?")` does not cross a newline: `.` does not match one).
fn quoted(text: &str, q: char) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find(q) {
        let after = &rest[start + q.len_utf8()..];
        match after.find([q, '\n']) {
            Some(end) if after[end..].starts_with(q) => {
                let phrase_end = start + q.len_utf8() + end + q.len_utf8();
                found.push(&text[offset + start..offset + phrase_end]);
                offset += phrase_end;
                rest = &text[offset..];
            }
            // A newline first: no phrase starts here; look from the next character.
            Some(_) => {
                offset += start + q.len_utf8();
                rest = &text[offset..];
            }
            None => break,
        }
    }
    found
}

/// Whether `word` stands in `text` between word boundaries (`\bword\b` in Go's RE2: a word
/// character is ASCII `[0-9A-Za-z_]`).
fn has_word(text: &str, word: &str) -> bool {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    text.match_indices(word).any(|(at, _)| {
        !is_word(text[..at].chars().next_back()) && !is_word(text[at + word.len()..].chars().next())
    })
}

/// `query` with each `{{key}}` replaced by its value, as plain text.
pub(crate) fn fill(query: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(query.to_owned(), |query, (key, value)| {
        query.replace(&format!("{{{{{key}}}}}"), value)
    })
}

/// Go's layout `2006-01-02 15:04:05-0700` of a time, in UTC: `2026-12-03 05:10:00+0000`. A
/// missing time is Go's zero time, `0001-01-01 00:00:00+0000`.
pub(crate) fn expiration(at: Option<SystemTime>) -> String {
    let Some(at) = at else {
        return "0001-01-01 00:00:00+0000".to_owned();
    };
    let seconds = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}+0000",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An identifier quoted for PostgreSQL: in double quotes, a double quote doubled, and cut at a
/// NUL (which PostgreSQL cannot hold), as the Go plugin's `QuoteIdentifier`.
pub(crate) fn quote_identifier(name: &str) -> String {
    let name = name.split('\0').next().unwrap_or_default();
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn statements_split_as_the_go_plugin_splits_them() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("empty", "  ", &[]),
            (
                "semicolons",
                "CREATE ROLE \"{{name}}\"; GRANT x TO \"{{name}}\";",
                &["CREATE ROLE \"{{name}}\"", "GRANT x TO \"{{name}}\""],
            ),
            ("JSON array", r#"["A; B", "C"]"#, &["A; B", "C"]),
            // base64 of `X;Y`.
            ("base64", "WDtZ", &["X", "Y"]),
            ("base64 of a JSON array", "WyJQOyBRIl0=", &["P; Q"]),
            ("JSON null", "null", &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(split(input), *expected, "{name}");
        }
    }

    #[test]
    fn a_statement_with_end_outside_quotes_runs_whole() {
        let cases = [
            ("DO $$ BEGIN CREATE ROLE x; END $$;", true),
            ("CREATE ROLE x; GRANT y TO x;", false),
            ("ALTER ROLE x APPEND; -- no END word here? yes: END", true),
            ("SELECT 'END';", false),
            ("SELECT \"END\";", false),
            // Only the last quoted phrase is taken out, as in Go.
            ("SELECT 'END', 'other';", true),
            ("SELECT APPENDED, ENDING, _END;", false),
            ("end $$;", false),
        ];
        for (statement, whole) in cases {
            assert_eq!(runs_whole(statement), whole, "{statement}");
        }
    }

    #[test]
    fn placeholders_are_replaced_as_text() {
        assert_eq!(
            fill(
                "CREATE ROLE \"{{name}}\" WITH PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
                &[
                    ("name", "v-a"),
                    ("password", "p'w"),
                    ("expiration", "2026-01-01")
                ]
            ),
            "CREATE ROLE \"v-a\" WITH PASSWORD 'p'w' VALID UNTIL '2026-01-01';"
        );
    }

    #[test]
    fn expirations_are_in_gos_layout_in_utc() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_274_600);
        assert_eq!(expiration(Some(at)), "2026-12-03 05:10:00+0000");
        assert_eq!(expiration(None), "0001-01-01 00:00:00+0000");
        assert_eq!(
            expiration(Some(SystemTime::UNIX_EPOCH)),
            "1970-01-01 00:00:00+0000"
        );
    }

    #[test]
    fn identifiers_are_quoted_and_cut_at_nul() {
        assert_eq!(quote_identifier("v-x"), "\"v-x\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_identifier("a\0b"), "\"a\"");
    }
}
