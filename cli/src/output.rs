//! Standard output, with write errors as errors rather than panics.

use std::io::Write;

/// Writes `line` and a newline to standard output.
pub fn line(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    Ok(())
}

/// Whether `e` comes from writing to a pipe whose reader has gone.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_broken_pipes_are_broken_pipes() {
        let pipe = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe)).context("printing");
        assert!(is_broken_pipe(&pipe));
        assert!(!is_broken_pipe(&anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::NotFound))));
        assert!(!is_broken_pipe(&anyhow::anyhow!("broken pipe")));
    }
}
