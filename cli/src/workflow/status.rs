//! `adf workflow status`: a run's blueprint, status, completed nodes, error and output, as text
//! or JSON. `wait` prints its final status the same way.

use std::time::Duration;

use adf_workflow::store::{RunStatus, now_ms};
use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use super::Conn;
use crate::output;

#[derive(Debug, Args)]
pub struct Status {
    /// The run id (what `adf workflow start` printed).
    run: String,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl Status {
    pub async fn run(self, conn: &Conn) -> Result<()> {
        let (status, out) = read(conn, &self.run).await?;
        output::line(&render(&status, out.as_ref(), self.json, now_ms()))
    }
}

/// The run's status, and its output when it succeeded.
pub async fn read(conn: &Conn, run: &str) -> Result<(RunStatus, Option<Value>)> {
    let Some(status) = conn.store().status(run).await? else { anyhow::bail!("no run {run}") };
    let out = output(conn, &status).await?;
    Ok((status, out))
}

/// The run's output (its output node's), when it succeeded.
pub async fn output(conn: &Conn, status: &RunStatus) -> Result<Option<Value>> {
    Ok(match (status.status.as_str(), &status.output_node) {
        ("succeeded", Some(node)) => {
            conn.store().outputs(&status.run_id, &status.outputs, std::slice::from_ref(node)).await?.remove(node)
        }
        _ => None,
    })
}

/// Text or JSON, as `--json` asks.
pub fn render(status: &RunStatus, out: Option<&Value>, as_json: bool, now: i64) -> String {
    if as_json { to_json(status, out).to_string() } else { text(status, out, now) }
}

/// `done/total`.
pub fn progress(status: &RunStatus) -> String {
    format!("{}/{}", status.done.len(), status.total)
}

/// How long ago `then` (epoch ms) was: `5m 3s ago`, `just now`, or `in 2m` for a time ahead (a
/// run holding itself alive through a sleep or a retry's delay).
pub fn age(then: i64, now: i64) -> String {
    let secs = |ms: i64| Duration::from_secs(u64::try_from(ms / 1000).unwrap_or(0));
    match now - then {
        d if d >= 1000 => format!("{} ago", humantime::format_duration(secs(d))),
        d if d > -1000 => "just now".into(),
        d => format!("in {}", humantime::format_duration(secs(-d))),
    }
}

fn text(s: &RunStatus, out: Option<&Value>, now: i64) -> String {
    let mut rows = vec![
        format!("run        {}", s.run_id),
        format!("blueprint  {}@{}", s.blueprint, s.version),
        format!("status     {}", s.status),
        format!("nodes      {} done", progress(s)),
    ];
    let width = s.done.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    let action_width = s.done.values().map(|c| c.action.chars().count()).max().unwrap_or(0);
    for (node, c) in &s.done {
        let row = if c.failed {
            format!("  {node:<width$}  {:<action_width$}  failed", c.action)
        } else {
            format!("  {node:<width$}  {}", c.action)
        };
        rows.push(row);
    }
    if let Some((run, node)) = &s.parent {
        rows.push(format!("parent     {run} (node {node})"));
    }
    rows.push(format!("updated    {}", age(s.last_updated, now)));
    if let Some(e) = &s.error {
        rows.push(format!("error      {e}"));
    }
    if let Some(o) = out {
        rows.push(format!("output     {o}"));
    }
    rows.join("\n")
}

fn to_json(s: &RunStatus, out: Option<&Value>) -> Value {
    let nodes: serde_json::Map<String, Value> = s
        .done
        .iter()
        .map(|(node, c)| (node.clone(), json!({"action": c.action, "taken": c.taken, "failed": c.failed})))
        .collect();
    json!({
        "run_id": s.run_id,
        "blueprint": s.blueprint,
        "version": s.version,
        "status": s.status,
        "done": s.done.len(),
        "total": s.total,
        "nodes": nodes,
        "last_updated": s.last_updated,
        "error": s.error,
        "output": out,
        "parent": s.parent.as_ref().map(|(run, node)| json!({"run": run, "node": node})),
    })
}

#[cfg(test)]
pub mod tests {
    use adf_workflow::engine::{Completion, Done};

    use super::*;

    /// A status of run `18f3-1-0` of `order`, last updated at 1000 s.
    pub fn status(state: &str, done: &[(&str, &str, bool)], total: usize) -> RunStatus {
        let done: Done = done
            .iter()
            .map(|(n, a, f)| ((*n).to_string(), Completion { action: (*a).into(), taken: vec![], failed: *f }))
            .collect();
        RunStatus {
            run_id: "18f3-1-0".into(),
            blueprint: "order".into(),
            version: "5c1e0a9d2b7f4e61".into(),
            status: state.into(),
            done,
            outputs: Default::default(),
            total,
            last_updated: 1_000_000,
            error: None,
            output_node: None,
            parent: None,
        }
    }

    #[test]
    fn a_running_run_shows_its_completed_nodes() {
        let s = status("running", &[("validate", "default", false), ("charge", "declined", true)], 4);
        let want = "run        18f3-1-0\n\
                    blueprint  order@5c1e0a9d2b7f4e61\n\
                    status     running\n\
                    nodes      2/4 done\n  \
                    charge    declined  failed\n  \
                    validate  default\n\
                    updated    1m 5s ago";
        assert_eq!(render(&s, None, false, 1_065_500), want);
    }

    #[test]
    fn a_finished_run_shows_its_error_or_output() {
        let mut s = status("failed", &[], 2);
        s.error = Some("node charge failed: declined".into());
        s.parent = Some(("p1".into(), "pay".into()));
        let text = render(&s, None, false, 1_000_000);
        assert!(
            text.ends_with("parent     p1 (node pay)\nupdated    just now\nerror      node charge failed: declined")
        );
        let s = status("succeeded", &[("a", "default", false)], 1);
        let text = render(&s, Some(&json!({"paid": 30})), false, 1_000_000);
        assert!(text.ends_with("output     {\"paid\":30}"), "{text}");
    }

    #[test]
    fn json_has_every_field() -> Result<()> {
        let s = status("succeeded", &[("a", "default", false)], 1);
        let v: Value = serde_json::from_str(&render(&s, Some(&json!(7)), true, 0))?;
        assert_eq!(
            v,
            json!({
                "run_id": "18f3-1-0", "blueprint": "order", "version": "5c1e0a9d2b7f4e61",
                "status": "succeeded", "done": 1, "total": 1,
                "nodes": {"a": {"action": "default", "taken": [], "failed": false}},
                "last_updated": 1_000_000, "error": null, "output": 7, "parent": null,
            })
        );
        Ok(())
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(0, 300_400), "5m ago");
        assert_eq!(age(0, 999), "just now");
        assert_eq!(age(120_000, 0), "in 2m");
        assert_eq!(age(0, 3_723_000), "1h 2m 3s ago");
    }
}
