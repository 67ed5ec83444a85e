//! `adf workflow wait`: follows a run until it leaves `running`, showing its progress on
//! standard error, then prints its final status as `status` does.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use adf_workflow::store::{RunStatus, now_ms};
use anyhow::Result;
use clap::Args;

use super::{Conn, status};
use crate::{Exit, output};

/// The exit code when the run is still running at the timeout.
pub const TIMEOUT_EXIT: u8 = 3;

#[derive(Debug, Args)]
pub struct Wait {
    /// The run id.
    run: String,
    /// How long to wait before giving up (exit code 3): `30s`, `10m`, `1h`.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The pause between reads of the run's status.
    #[arg(long, default_value = "1s", value_parser = interval)]
    interval: Duration,
    /// Print the final status as a JSON object (as `status --json`).
    #[arg(long)]
    json: bool,
}

fn interval(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("the interval must be longer than 0".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

impl Wait {
    pub async fn run(self, conn: &Conn) -> Result<()> {
        let stderr = std::io::stderr();
        let mut display = Progress::new(stderr.is_terminal(), stderr);
        let last = conn.client().wait(&self.run, self.interval, self.timeout, |s| display.show(s)).await;
        display.finish();
        let Some(last) = last? else { anyhow::bail!("no run {}", self.run) };
        let out = status::output(conn, &last).await?;
        output::line(&status::render(&last, out.as_ref(), self.json, now_ms()))?;
        verdict(&last, self.timeout)
    }
}

/// Ok when the run succeeded; otherwise the error that says how it ended.
fn verdict(s: &RunStatus, timeout: Duration) -> Result<()> {
    let run = &s.run_id;
    match s.status.as_str() {
        "succeeded" => Ok(()),
        "running" => Err(Exit {
            code: TIMEOUT_EXIT,
            message: format!(
                "run {run} still running after {}: {} nodes done",
                humantime::format_duration(timeout),
                status::progress(s)
            ),
        }
        .into()),
        "failed" => match &s.error {
            Some(e) => anyhow::bail!("run {run} failed: {e}"),
            None => anyhow::bail!("run {run} failed"),
        },
        "cancelled" => anyhow::bail!("run {run} was cancelled"),
        other => anyhow::bail!("run {run} ended as {other}"),
    }
}

/// The progress display: on a terminal one line rewritten in place, otherwise a line per
/// change. Write errors are ignored: progress is a courtesy, the final status is the result.
struct Progress<W: Write> {
    tty: bool,
    out: W,
    shown: bool,
}

impl<W: Write> Progress<W> {
    fn new(tty: bool, out: W) -> Self {
        Self { tty, out, shown: false }
    }

    fn show(&mut self, s: &RunStatus) {
        let line = format!("{} {} nodes done", s.status, status::progress(s));
        let _ = if self.tty { write!(self.out, "\r\x1b[K{line}") } else { writeln!(self.out, "{line}") };
        let _ = self.out.flush();
        self.shown = true;
    }

    fn finish(&mut self) {
        if self.tty && self.shown {
            let _ = writeln!(self.out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::parse_args;
    use crate::workflow::status::tests::status;

    #[test]
    fn durations_are_human() -> Result<(), clap::Error> {
        let w = parse_args::<Wait>(&["wait", "r1"])?;
        assert_eq!((w.timeout, w.interval), (Duration::from_secs(600), Duration::from_secs(1)));
        let w = parse_args::<Wait>(&["wait", "r1", "--timeout", "1h 30m", "--interval", "250ms"])?;
        assert_eq!((w.timeout, w.interval), (Duration::from_secs(5400), Duration::from_millis(250)));
        assert!(parse_args::<Wait>(&["wait", "r1", "--timeout", "soon"]).is_err());
        assert!(parse_args::<Wait>(&["wait", "r1", "--interval", "0s"]).is_err());
        Ok(())
    }

    #[test]
    fn a_terminal_gets_one_line_rewritten_and_a_pipe_a_line_per_change() {
        let steps = [status("running", &[], 2), status("running", &[("a", "default", false)], 2)];
        let mut tty = Progress::new(true, Vec::new());
        let mut pipe = Progress::new(false, Vec::new());
        for s in &steps {
            tty.show(s);
            pipe.show(s);
        }
        tty.finish();
        pipe.finish();
        assert_eq!(String::from_utf8_lossy(&tty.out), "\r\x1b[Krunning 0/2 nodes done\r\x1b[Krunning 1/2 nodes done\n");
        assert_eq!(String::from_utf8_lossy(&pipe.out), "running 0/2 nodes done\nrunning 1/2 nodes done\n");
    }

    #[test]
    fn the_verdict_says_how_the_run_ended() {
        let code = |r: &Result<()>| r.as_ref().err().map(|e| e.downcast_ref::<Exit>().map_or(1, |x| x.code));
        assert!(verdict(&status("succeeded", &[], 1), Duration::ZERO).is_ok());
        let mut failed = status("failed", &[], 1);
        failed.error = Some("node a failed: boom".into());
        let r = verdict(&failed, Duration::ZERO);
        assert_eq!(code(&r), Some(1));
        assert_eq!(r.expect_err("failed").to_string(), "run 18f3-1-0 failed: node a failed: boom");
        let r = verdict(&status("cancelled", &[], 1), Duration::ZERO);
        assert_eq!(r.expect_err("cancelled").to_string(), "run 18f3-1-0 was cancelled");
        let r = verdict(&status("running", &[("a", "default", false)], 3), Duration::from_secs(90));
        assert_eq!(code(&r), Some(TIMEOUT_EXIT));
        assert_eq!(r.expect_err("timeout").to_string(), "run 18f3-1-0 still running after 1m 30s: 1/3 nodes done");
    }
}
