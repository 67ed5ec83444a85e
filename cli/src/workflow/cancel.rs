//! `adf workflow cancel`: ends a running run as `cancelled`; jobs already running finish, and
//! no node starts after this.

use anyhow::Result;
use clap::Args;

use super::Conn;
use crate::output;

#[derive(Debug, Args)]
pub struct Cancel {
    /// The run id.
    run: String,
}

impl Cancel {
    pub async fn run(self, conn: &Conn) -> Result<()> {
        let run = &self.run;
        if conn.client().cancel(run).await? {
            return output::line(&format!("cancelled {run}"));
        }
        match conn.store().status(run).await? {
            Some(s) => anyhow::bail!("{}", not_running(run, &s.status)),
            None => anyhow::bail!("no run {run}"),
        }
    }
}

fn not_running(run: &str, status: &str) -> String {
    format!("run {run} is not running: it {}", if status == "cancelled" { "was cancelled already" } else { status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_says_how_the_run_ended() {
        assert_eq!(not_running("r1", "succeeded"), "run r1 is not running: it succeeded");
        assert_eq!(not_running("r1", "cancelled"), "run r1 is not running: it was cancelled already");
    }
}
