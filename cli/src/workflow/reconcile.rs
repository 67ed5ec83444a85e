//! `adf workflow reconcile`: one reconciler pass, as the scheduled reconciler does it: every
//! stalled run gets the jobs it still needs sent again (a completion is recorded once, so a job
//! sent twice does no harm), and a run with nothing left to run is finished.

use std::time::Duration;

use adf_workflow::reconciler::{self, Report};
use anyhow::Result;
use clap::Args;

use super::Conn;
use crate::output;

#[derive(Debug, Args)]
pub struct Reconcile {
    /// Resume the runs in flight whose last change is older than this: `0s`, `30s`, `5m`.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    older_than: Duration,
}

impl Reconcile {
    pub async fn run(self, conn: &Conn) -> Result<()> {
        let report = reconciler::reconcile(conn.store(), conn.queue()?, self.older_than).await?;
        output::line(&summary(&report, self.older_than))
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary(r: &Report, older_than: Duration) -> String {
    if r.stalled == 0 {
        return format!("no runs stalled for more than {}", humantime::format_duration(older_than));
    }
    format!(
        "{}: {} sent again, {} found finished",
        plural(r.stalled, "stalled run", "stalled runs"),
        plural(r.resumed_jobs, "job", "jobs"),
        plural(r.finished, "run", "runs"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_is_one_line() {
        let minute = Duration::from_secs(60);
        assert_eq!(summary(&Report::default(), minute), "no runs stalled for more than 1m");
        let r = Report { stalled: 1, resumed_jobs: 1, finished: 0 };
        assert_eq!(summary(&r, minute), "1 stalled run: 1 job sent again, 0 runs found finished");
        let r = Report { stalled: 3, resumed_jobs: 4, finished: 1 };
        assert_eq!(summary(&r, minute), "3 stalled runs: 4 jobs sent again, 1 run found finished");
    }
}
