//! The reconciler: finds runs whose state has not moved for a while through the stalled-runs
//! index (a query per shard, every page, never a scan) and sends again the jobs they still
//! need. Completions are recorded once, so a job sent twice does no harm.

use std::time::Duration;

use crate::blueprint::Blueprint;
use crate::client::finish_run;
use crate::engine;
use crate::queue::{Job, Queue};
use crate::store::{Store, now_ms};
use crate::worker::WorkerError;

/// What a reconcile pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Stalled runs found.
    pub stalled: usize,
    /// Jobs sent again.
    pub resumed_jobs: usize,
    /// Runs found finished (a worker stopped between the last completion and the status).
    pub finished: usize,
}

/// Resumes every run in flight whose last change is older than `older_than`.
pub async fn reconcile(store: &Store, queue: &Queue, older_than: Duration) -> Result<Report, WorkerError> {
    let before = now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(0);
    let mut report = Report::default();
    for run in store.stalled(before).await? {
        report.stalled += 1;
        let Some(status) = store.status(&run).await? else {
            continue;
        };
        if status.status != "running" {
            continue;
        }
        let bp: Blueprint = store.blueprint(&status.blueprint, &status.version).await?;
        let runnable = engine::runnable(&bp, &status.done);
        if engine::pending(&bp, &status.done).is_empty() {
            // The run's output is its end node's, when it has one (a worker that stopped here
            // knew which node ended it; the record does not).
            let (result, output) = (engine::outcome(&status.done), engine::end_node(&status.done));
            finish_run(store, queue, &run, result, None, output).await?;
            report.finished += 1;
            continue;
        }
        // Inputs are read by the worker (jobs without one): the run's input for a start node,
        // the predecessors' outputs otherwise.
        let jobs: Vec<(Job, Duration)> = runnable
            .iter()
            .map(|n| (Job::new(&run, n, &status.blueprint, &status.version, None), Duration::ZERO))
            .collect();
        report.resumed_jobs += jobs.len();
        queue.send(&jobs).await?;
        store.touch(&run, now_ms()).await?;
    }
    Ok(report)
}
