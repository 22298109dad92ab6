//! Secrets the process knows of right now (a database connection's root password, the password
//! of a user being created), kept out of every log line and panic message: each is replaced by
//! `[redacted]`. A secret is known while its guard lives.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::sync::RecoveringMutex;

/// What a secret is shown as instead.
pub(crate) const REDACTED: &str = "[redacted]";

static SECRETS: RecoveringMutex<Vec<(u64, String)>> = RecoveringMutex::new(Vec::new());
/// How many secrets are held: every log line reads it, and a backend plugin holds none, so
/// the request path takes no lock for this.
static HELD: AtomicUsize = AtomicUsize::new(0);
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Keeps a secret out of logs and panics until dropped.
#[derive(Debug)]
pub(crate) struct Hidden(Option<u64>);

impl Drop for Hidden {
    fn drop(&mut self) {
        if let Some(id) = self.0 {
            let mut secrets = SECRETS.lock();
            secrets.retain(|(known, _)| *known != id);
            HELD.store(secrets.len(), Ordering::Release);
        }
    }
}

/// Keeps `secret` out of every log line and panic message while the guard lives. An empty
/// secret hides nothing.
pub(crate) fn hide(secret: &str) -> Hidden {
    if secret.is_empty() {
        return Hidden(None);
    }
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut secrets = SECRETS.lock();
    secrets.push((id, secret.to_owned()));
    HELD.store(secrets.len(), Ordering::Release);
    Hidden(Some(id))
}

/// `text` with every known secret replaced; `None` when there was nothing to replace.
pub(crate) fn redact(text: &str) -> Option<String> {
    if HELD.load(Ordering::Acquire) == 0 {
        return None;
    }
    let secrets = SECRETS.lock();
    let mut found = secrets
        .iter()
        .filter(|(_, s)| text.contains(s.as_str()))
        .peekable();
    found.peek()?;
    // The longest first: a secret that contains another is replaced whole.
    let mut longest: Vec<&str> = found.map(|(_, s)| s.as_str()).collect();
    longest.sort_by_key(|s| std::cmp::Reverse(s.len()));
    Some(longest.into_iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret, REDACTED)
    }))
}

/// The JSON line from `start` on in `out` with every known secret replaced, as JSON escapes
/// it (a secret with a quote or a backslash in it is escaped in the line).
pub(crate) fn redact_json_tail(out: &mut Vec<u8>, start: usize) {
    if HELD.load(Ordering::Acquire) == 0 {
        return;
    }
    let Ok(line) = std::str::from_utf8(&out[start..]) else {
        return;
    };
    let escaped: Vec<(u64, String)> = SECRETS
        .lock()
        .iter()
        .map(|(id, s)| {
            let quoted = serde_json::to_string(s).unwrap_or_default();
            (*id, quoted[1..quoted.len().saturating_sub(1)].to_owned())
        })
        .collect();
    let mut text = line.to_owned();
    let mut changed = false;
    let mut by_length: Vec<&String> = escaped.iter().map(|(_, s)| s).collect();
    by_length.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in by_length {
        if !secret.is_empty() && text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), REDACTED);
            changed = true;
        }
    }
    if changed {
        out.truncate(start);
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_secret_is_redacted_while_its_guard_lives() {
        let marker = "mask-test-7d1e-LEAK";
        assert_eq!(redact(&format!("a {marker} b")), None);
        {
            let _hidden = hide(marker);
            assert_eq!(
                redact(&format!("a {marker} b {marker}")).as_deref(),
                Some("a [redacted] b [redacted]")
            );
            // Inside a JSON line, escaped or not.
            let mut out = b"earlier line\n".to_vec();
            let start = out.len();
            out.extend_from_slice(format!("{{\"@message\":\"x {marker}\"}}").as_bytes());
            redact_json_tail(&mut out, start);
            assert_eq!(out, b"earlier line\n{\"@message\":\"x [redacted]\"}");
        }
        assert_eq!(redact(&format!("a {marker} b")), None, "the guard is gone");
    }

    #[test]
    fn a_secret_with_json_specials_is_redacted_as_escaped() {
        let secret = "q\"uo\\te-mask-test-LEAK";
        let _hidden = hide(secret);
        let mut out = Vec::new();
        out.extend_from_slice(
            format!(
                "{{\"@message\":{}}}",
                serde_json::to_string(secret).unwrap()
            )
            .as_bytes(),
        );
        redact_json_tail(&mut out, 0);
        assert_eq!(out, b"{\"@message\":\"[redacted]\"}");
    }

    #[test]
    fn the_longer_of_two_overlapping_secrets_goes_whole() {
        let short = "overlap-LEAK";
        let long = "overlap-LEAK-and-more";
        let (_a, _b) = (hide(short), hide(long));
        assert_eq!(redact(long).as_deref(), Some("[redacted]"));
    }
}
