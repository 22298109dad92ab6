//! Table tests that check every case: [`Table`] records each case's outcome, and
//! [`Table::finish`] fails once at the end, listing every failing case with what it got and
//! what it expected. A table that stopped at its first failure would hide the others, and a
//! change that breaks five cases would take five runs to see.

use std::fmt::Debug;

/// Long values (a 16 MiB body, a 10,000-key list) are clipped to this many characters in the
/// report, so one failing case cannot bury the others.
const CLIP: usize = 400;

/// Clips `text` to [`CLIP`] characters, saying how long it was.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(CLIP) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text.to_owned(),
    }
}

/// `Ok` when `got == expected`, else "got …, expected …" (both clipped).
pub fn expect_eq<T: PartialEq + Debug + ?Sized>(got: &T, expected: &T) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!(
            "got {}, expected {}",
            clip(&format!("{got:?}")),
            clip(&format!("{expected:?}"))
        ))
    }
}

/// `Ok` when `ok`, else `Err(detail())`.
pub fn expect(ok: bool, detail: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(detail()) }
}

/// The outcomes of one table's cases.
#[must_use = "a table only fails in `finish`"]
pub struct Table {
    name: &'static str,
    cases: usize,
    failures: Vec<(String, String)>,
}

impl Table {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            cases: 0,
            failures: Vec::new(),
        }
    }

    /// Records one case: passed on `Ok`, failed with the explanation on `Err`.
    pub fn case(&mut self, case: impl Into<String>, result: Result<(), String>) {
        self.cases += 1;
        if let Err(why) = result {
            self.failures.push((case.into(), why));
        }
    }

    /// Records one case that passes when `got == expected`.
    pub fn check<T: PartialEq + Debug + ?Sized>(
        &mut self,
        case: impl Into<String>,
        got: &T,
        expected: &T,
    ) {
        self.case(case, expect_eq(got, expected));
    }

    /// Cases recorded so far.
    pub fn cases(&self) -> usize {
        self.cases
    }

    /// The failures so far, as `(case, explanation)`.
    pub fn failures(&self) -> &[(String, String)] {
        &self.failures
    }

    /// Prints the count, then panics listing every failing case if there is one.
    pub fn finish(self) {
        eprintln!(
            "{} table: {} cases, {} failed",
            self.name,
            self.cases,
            self.failures.len()
        );
        if !self.failures.is_empty() {
            panic!("{}", self.report());
        }
    }

    /// The failure report: one entry per failing case.
    pub fn report(&self) -> String {
        let mut text = format!(
            "{} of {} cases of the {} table failed:",
            self.failures.len(),
            self.cases,
            self.name
        );
        for (case, why) in &self.failures {
            text.push_str(&format!("\n  - {case}: {why}"));
        }
        text
    }
}
