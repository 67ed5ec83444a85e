//! The runtimes' `tracing` subscriber off Lambda: plain text (no ANSI colours), level from
//! `RUST_LOG` (`info` when unset or unreadable). A second call, or a subscriber set already, is
//! harmless. On Lambda the runtimes use `lambda_runtime`'s, which follows the function's
//! logging controls (`AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

fn filter() -> EnvFilter {
    EnvFilter::builder().with_default_directive(LevelFilter::INFO.into()).from_env_lossy()
}

/// Logs to stderr with timestamps: a binary that runs anywhere (the workflow worker, a
/// poller, a CLI).
pub fn init_stderr() {
    let _ =
        tracing_subscriber::fmt().with_ansi(false).with_writer(std::io::stderr).with_env_filter(filter()).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialising_twice_is_harmless() {
        init_stderr();
        init_stderr();
    }
}
