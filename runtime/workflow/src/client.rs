//! Starting runs, reading their status and result, cancelling and waiting for them.

use std::time::Duration;

use serde_json::Value;

use crate::queue::{Job, Queue};
use crate::store::{Ended, RunStatus, Store};
use crate::worker::WorkerError;

/// Starts run `run` of the current version of blueprint `name` with `input`: the status item
/// (pinning the version), then the start nodes' jobs. Starting the same id twice starts once.
pub async fn start_run(
    store: &Store,
    queue: &Queue,
    run: &str,
    name: &str,
    input: &Value,
    parent: Option<(&str, &str)>,
) -> Result<String, WorkerError> {
    let version = store.current_version(name).await?;
    let bp = store.blueprint(name, &version).await?;
    if store.create_run(run, name, &bp, input, parent).await? {
        let jobs: Vec<(Job, Duration)> = bp
            .start_nodes()
            .into_iter()
            .map(|n| (Job::new(run, n, name, &version, Some(input.clone())), Duration::ZERO))
            .collect();
        queue.send(&jobs).await?;
    }
    Ok(version)
}

/// The run id of the subflow that `attempt` of `node` in `run` starts: each retry of the node
/// starts a child of its own.
pub fn child_run(run: &str, node: &str, attempt: u32) -> String {
    if attempt == 0 { format!("{run}.{node}") } else { format!("{run}.{node}.{attempt}") }
}

/// Ends `run` with `status` (when it is still running) and, if it is a subflow, wakes its
/// parent (see [`wake_parent`]).
pub(crate) async fn finish_run(
    store: &Store,
    queue: &Queue,
    run: &str,
    status: &str,
    error: Option<&str>,
    output_node: Option<&str>,
) -> Result<(), WorkerError> {
    match store.finish(run, status, error, output_node).await? {
        Ended::Now { parent: Some((parent, node)) } => wake_parent(store, queue, run, &parent, &node).await,
        _ => Ok(()),
    }
}

/// Wakes the parent of subflow `run`, which has just ended: sends the parent's `node` again, on
/// the attempt that started this child. That node finds the child ended and completes or
/// fails; sent twice, it is recorded once.
pub(crate) async fn wake_parent(
    store: &Store,
    queue: &Queue,
    run: &str,
    parent: &str,
    node: &str,
) -> Result<(), WorkerError> {
    let Some(p) = store.status(parent).await? else {
        return Ok(());
    };
    if p.status != "running" {
        return Ok(());
    }
    let attempt = run
        .strip_prefix(&format!("{parent}.{node}"))
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let job = Job { attempt, ..Job::new(parent, node, &p.blueprint, &p.version, None) };
    queue.send(&[(job, Duration::ZERO)]).await?;
    Ok(())
}

/// A new run id: time-ordered, unique enough for concurrent starts.
pub fn new_run_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}-{:x}", nanos, std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Starts, inspects and cancels runs.
#[derive(Clone, Debug)]
pub struct Client {
    store: Store,
    queue: Queue,
}

impl Client {
    /// A client on the workflow's tables and queue.
    pub fn new(store: Store, queue: Queue) -> Self {
        Self { store, queue }
    }

    /// Starts blueprint `name` with `input`; returns the run id.
    pub async fn start(&self, name: &str, input: &Value) -> Result<String, WorkerError> {
        let run = new_run_id();
        start_run(&self.store, &self.queue, &run, name, input, None).await?;
        Ok(run)
    }

    /// The run's status; None when there is no such run.
    pub async fn status(&self, run: &str) -> Result<Option<RunStatus>, WorkerError> {
        Ok(self.store.status(run).await?)
    }

    /// The run's output (the last node's), once it succeeded.
    pub async fn output(&self, run: &str) -> Result<Option<Value>, WorkerError> {
        let Some(status) = self.store.status(run).await? else {
            return Ok(None);
        };
        match (status.status.as_str(), status.output_node) {
            ("succeeded", Some(node)) => {
                Ok(self.store.outputs(run, &status.outputs, std::slice::from_ref(&node)).await?.remove(&node))
            }
            _ => Ok(None),
        }
    }

    /// Cancels a running run: no job starts after this; false when it was not running.
    pub async fn cancel(&self, run: &str) -> Result<bool, WorkerError> {
        Ok(self.store.cancel(run).await?)
    }

    /// Polls until the run leaves `running`, calling `progress` with each new status.
    pub async fn wait(
        &self,
        run: &str,
        every: Duration,
        timeout: Duration,
        mut progress: impl FnMut(&RunStatus),
    ) -> Result<Option<RunStatus>, WorkerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = usize::MAX;
        loop {
            let Some(status) = self.store.status(run).await? else {
                return Ok(None);
            };
            if status.done.len() != seen || status.status != "running" {
                seen = status.done.len();
                progress(&status);
            }
            if status.status != "running" || tokio::time::Instant::now() >= deadline {
                return Ok(Some(status));
            }
            tokio::time::sleep(every).await;
        }
    }
}
