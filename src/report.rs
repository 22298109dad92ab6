//! One line for an error and its causes, as the operator and the server read it.

use std::error::Error;

/// `error`'s text, then each cause's after `: `, skipping a cause whose text the line already
/// holds (some errors put their cause in their own text, and tonic's transport errors wrap an
/// error that says the same again).
pub(crate) fn report(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn causes_follow_in_order_and_repeats_are_skipped() {
        let inner = Layer("connection refused", None);
        let middle = Layer("transport error", Some(Box::new(inner)));
        let outer = Layer("cannot dial", Some(Box::new(middle)));
        assert_eq!(
            report(&outer),
            "cannot dial: transport error: connection refused"
        );
        let repeats = Layer(
            "cannot dial: connection refused",
            Some(Box::new(Layer("connection refused", None))),
        );
        assert_eq!(report(&repeats), "cannot dial: connection refused");
        assert_eq!(report(&Layer("alone", None)), "alone");
    }
}
