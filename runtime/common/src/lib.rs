//! adf-common: what the runtimes share with each other and with the provider that deploys
//! them.
//!
//! - [`contract`]: the types a runtime describes its contract with (table schemas, the
//!   environment it reads, the IAM statements it needs); each runtime exports its own
//!   (`adf_workflow::contract`, `adf_stream::contract`) and the provider imports them;
//! - [`sdk`]: loading the AWS configuration, and the S3 path-style rule;
//! - [`logging`]: the runtimes' `tracing` subscribers;
//! - `metrics` (feature `metrics`): CloudWatch embedded metric format, used by every runtime;
//! - [`error_chain`]: an error and its causes on one line.

pub mod contract;
pub mod logging;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod sdk;

/// An error and its causes on one line, joined with `": "` (the SDK's own message is only
/// "service error"). A cause whose text the previous one already contains is left out: the
/// SDK's operation errors display their inner error, which is also their source.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut previous = text.clone();
    let mut source = e.source();
    while let Some(s) = source {
        let current = s.to_string();
        if !previous.contains(&current) {
            text.push_str(": ");
            text.push_str(&current);
        }
        previous = current;
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
        }
    }

    fn chain(texts: &[&'static str]) -> E {
        texts.iter().rev().fold(None, |inner, t| Some(E(t, inner.map(Box::new)))).unwrap_or(E("", None))
    }

    #[test]
    fn causes_follow_the_error_on_one_line() {
        assert_eq!(
            error_chain(&chain(&["dispatch failure", "io error", "connection refused"])),
            "dispatch failure: io error: connection refused"
        );
        assert_eq!(error_chain(&chain(&["alone"])), "alone");
    }

    #[test]
    fn a_cause_the_previous_text_already_says_is_left_out() {
        let e = chain(&[
            "service error",
            "ResourceNotFoundException: Requested resource not found",
            "ResourceNotFoundException: Requested resource not found",
        ]);
        assert_eq!(error_chain(&e), "service error: ResourceNotFoundException: Requested resource not found");
        let e = chain(&["timeout: deadline has elapsed", "deadline has elapsed", "", "os error 110"]);
        assert_eq!(error_chain(&e), "timeout: deadline has elapsed: os error 110");
    }

    #[test]
    fn a_repeated_text_further_down_is_kept() {
        // Only the immediately previous text counts: a cause that says more again is kept.
        let e = chain(&["a", "b", "a"]);
        assert_eq!(error_chain(&e), "a: b: a");
    }
}
