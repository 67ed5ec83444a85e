//! `adf workflow runs --stalled`: runs in flight whose state has not changed for a while, from
//! the statuses table's sparse stalled-runs index (a query per shard, never a scan), with each
//! run's status read to show its blueprint, progress and age.

use std::time::Duration;

use adf_workflow::store::{RunStatus, Store, now_ms};
use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::{Conn, status};
use crate::output;

/// Status reads in flight at once.
const CONCURRENT_READS: usize = 16;

#[derive(Debug, Args)]
pub struct Runs {
    /// List the runs in flight whose last change is older than --older-than (required: every
    /// run could only be listed by scanning the table).
    #[arg(long, required = true)]
    stalled: bool,
    /// How long a run's state must have stood still: `0s`, `30s`, `5m`, `1h`.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    older_than: Duration,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

impl Runs {
    pub async fn run(self, conn: &Conn) -> Result<()> {
        let now = now_ms();
        let before = now - i64::try_from(self.older_than.as_millis()).unwrap_or(i64::MAX);
        let ids = conn.store().stalled(before).await?;
        let mut runs = statuses(conn.store(), ids).await?;
        // The index is sparse, but a run may have finished since the query.
        runs.retain(|s| s.status == "running");
        runs.sort_by(|a, b| a.last_updated.cmp(&b.last_updated).then_with(|| a.run_id.cmp(&b.run_id)));
        let text = if self.json { to_json(&runs) } else { table(&runs, self.older_than, now) };
        output::line(&text)
    }
}

/// The statuses of `ids` that still exist, `CONCURRENT_READS` at a time.
async fn statuses(store: &Store, ids: Vec<String>) -> Result<Vec<RunStatus>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CONCURRENT_READS) {
        let mut reads = tokio::task::JoinSet::new();
        for id in chunk {
            let (store, id) = (store.clone(), id.clone());
            reads.spawn(async move { store.status(&id).await });
        }
        while let Some(read) = reads.join_next().await {
            found.extend(read??);
        }
    }
    Ok(found)
}

fn table(runs: &[RunStatus], older_than: Duration, now: i64) -> String {
    if runs.is_empty() {
        return format!("no runs stalled for more than {}", humantime::format_duration(older_than));
    }
    let rows: Vec<[String; 4]> = runs
        .iter()
        .map(|s| {
            [
                s.run_id.clone(),
                format!("{}@{}", s.blueprint, s.version),
                status::progress(s),
                status::age(s.last_updated, now),
            ]
        })
        .collect();
    let header = ["RUN", "BLUEPRINT", "NODES", "UPDATED"].map(String::from);
    let width = |i: usize| rows.iter().chain([&header]).map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    std::iter::once(&header)
        .chain(&rows)
        .map(|[run, bp, nodes, age]| format!("{run:<w0$}  {bp:<w1$}  {nodes:<w2$}  {age}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn to_json(runs: &[RunStatus]) -> String {
    let items: Vec<_> = runs
        .iter()
        .map(|s| {
            json!({
                "run_id": s.run_id, "blueprint": s.blueprint, "version": s.version,
                "done": s.done.len(), "total": s.total, "last_updated": s.last_updated,
            })
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::parse_args;
    use crate::workflow::status::tests::status;

    #[test]
    fn only_stalled_runs_can_be_listed() -> Result<(), clap::Error> {
        assert!(parse_args::<Runs>(&["runs"]).is_err());
        let r = parse_args::<Runs>(&["runs", "--stalled"])?;
        assert_eq!(r.older_than, Duration::from_secs(300));
        let r = parse_args::<Runs>(&["runs", "--stalled", "--older-than", "0s"])?;
        assert_eq!(r.older_than, Duration::ZERO);
        Ok(())
    }

    #[test]
    fn the_table_has_a_row_per_run() {
        let mut a = status("running", &[("validate", "default", false)], 4);
        a.run_id = "18f3-1-0".into();
        let mut b = status("running", &[], 2);
        (b.run_id, b.blueprint, b.version, b.last_updated) =
            ("18f4-1-1".into(), "refund".into(), "ab".into(), 1_290_000);
        let want = "RUN       BLUEPRINT               NODES  UPDATED\n\
                    18f3-1-0  order@5c1e0a9d2b7f4e61  1/4    6m 40s ago\n\
                    18f4-1-1  refund@ab               0/2    1m 50s ago";
        assert_eq!(table(&[a, b], Duration::from_secs(300), 1_400_000), want);
        assert_eq!(table(&[], Duration::from_secs(300), 0), "no runs stalled for more than 5m");
    }

    #[test]
    fn json_is_an_array_of_runs() -> Result<()> {
        let v: serde_json::Value = serde_json::from_str(&to_json(&[status("running", &[], 3)]))?;
        assert_eq!(
            v,
            json!([{"run_id": "18f3-1-0", "blueprint": "order", "version": "5c1e0a9d2b7f4e61",
                    "done": 0, "total": 3, "last_updated": 1_000_000}])
        );
        Ok(())
    }
}
