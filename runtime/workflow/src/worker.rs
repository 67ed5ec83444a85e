//! The worker: runs a job's node, records its completion once, and moves the run on. A
//! successor that becomes ready runs straight away in the same worker (no SQS round trip; the
//! run's state is durable after each completion); the others go to the queue in batches.
//!
//! Failures retry with backoff through SQS delays, then enter the node's fallback or fail the
//! run. A sleeping node is re-queued with a delay, so nothing is held while it waits.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::{Value, json};

use crate::blueprint::Blueprint;
use crate::builtins;
use crate::client::{child_run, finish_run, start_run, wake_parent};
use crate::engine::{self, Completion, DEFAULT_ACTION};
use crate::node::{Effect, NodeContext, NodeError, NodeResult, Services};
use adf_common::metrics::{Metrics, Unit};

/// The CloudWatch namespace of the worker's metrics.
pub const METRICS_NAMESPACE: &str = "ADF/Workflow";
use crate::queue::{Job, MAX_DELAY, Queue, QueueError};
use crate::store::{Finish, Outputs, Recorded, Store, StoreError, now_ms};

/// A parent run waiting on a subflow is left alone by the reconciler this long; then the
/// reconciler sends its node again, which finds the child ended if its wake-up was lost.
pub const SUBFLOW_WAIT: Duration = Duration::from_secs(600);

/// Time kept before an invocation's deadline to queue what is left and answer.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// Why a job could not be handled (its message stays on the queue and comes back).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// DynamoDB.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// SQS.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What became of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its node (and the successors run in process) completed, or it was a duplicate.
    Done {
        /// Nodes run in this call.
        nodes: usize,
    },
    /// It was queued again: a retry, a sleep, or a wait for a subflow.
    Requeued,
    /// It was dropped: its run is no longer running, or the job is malformed.
    Dropped(String),
}

/// How far a worker goes by itself.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The most nodes one job continues into in process before the rest goes through SQS.
    pub max_continuations: usize,
    /// How long one job may continue in process. On Lambda the invocation's deadline bounds
    /// it too (see [`Worker::handle_until`]).
    pub continue_for: Duration,
    /// Interval of the heartbeat that keeps a running node's message hidden and its run fresh.
    pub heartbeat: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self { max_continuations: 1000, continue_for: Duration::from_secs(60), heartbeat: Duration::from_secs(20) }
    }
}

/// Runs jobs.
pub struct Worker {
    store: Store,
    queue: Queue,
    services: Services,
    config: WorkerConfig,
    blueprints: Mutex<HashMap<String, Arc<Blueprint>>>,
    metrics: Metrics,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Whether a received job runs.
#[derive(Debug)]
pub enum Admission {
    /// Its run is running.
    Run(Job, Option<Lease>),
    /// Its run is not: why.
    Drop(String),
}

/// A message to keep hidden while its node runs.
#[derive(Clone, Debug)]
pub struct Lease {
    /// Its receipt handle.
    pub receipt: String,
}

impl Worker {
    /// A worker on `store` and `queue` with the nodes in `services.registry`.
    pub fn new(store: Store, queue: Queue, services: Services, config: WorkerConfig) -> Self {
        Self { store, queue, services, config, blueprints: Mutex::new(HashMap::new()), metrics: Metrics::off() }
    }

    /// The same worker emitting each node run's duration and outcome to `metrics` (namespace
    /// [`METRICS_NAMESPACE`]).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The run state.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The job queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    async fn blueprint(&self, name: &str, version: &str) -> Result<Arc<Blueprint>, StoreError> {
        let key = format!("{name}@{version}");
        if let Some(bp) = self.blueprints.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(bp);
        }
        let bp = Arc::new(self.store.blueprint(name, version).await?);
        if let Ok(mut m) = self.blueprints.lock() {
            m.insert(key, Arc::clone(&bp));
        }
        Ok(bp)
    }

    /// Sorts jobs received together with one read of their runs' states: jobs of runs that
    /// are no longer running are dropped (a cancel starts nothing new).
    pub async fn admit(&self, jobs: Vec<(Job, Option<Lease>)>) -> Result<Vec<Admission>, WorkerError> {
        let mut runs: Vec<String> = jobs.iter().map(|(j, _)| j.run.clone()).collect();
        runs.sort();
        runs.dedup();
        let states = self.store.run_states(&runs).await?;
        Ok(jobs
            .into_iter()
            .map(|(job, lease)| match states.get(&job.run).map(String::as_str) {
                Some("running") => Admission::Run(job, lease),
                Some(other) => Admission::Drop(format!("run {} is {other}", job.run)),
                None => Admission::Drop(format!("run {} does not exist", job.run)),
            })
            .collect())
    }

    /// [`Worker::admit`], then every admitted job at once, each within `deadline` (see
    /// [`Worker::handle_until`]).
    pub async fn handle_batch(
        &self,
        jobs: Vec<(Job, Option<Lease>)>,
        deadline: Option<Instant>,
    ) -> Vec<Result<Outcome, WorkerError>> {
        let count = jobs.len();
        let admitted = match self.admit(jobs).await {
            Ok(a) => a,
            Err(e) => {
                let text = e.to_string();
                return (0..count)
                    .map(|_| {
                        Err(WorkerError::Store(StoreError::Corrupt { what: "run states".into(), cause: text.clone() }))
                    })
                    .collect();
            }
        };
        let work = admitted.into_iter().map(|a| async move {
            match a {
                Admission::Run(job, lease) => self.handle_until(job, lease, deadline).await,
                Admission::Drop(why) => Ok(Outcome::Dropped(why)),
            }
        });
        futures::future::join_all(work).await
    }

    /// Runs `job`, then the successors it makes ready, in process while the budget lasts.
    pub async fn handle(&self, job: Job, lease: Option<Lease>) -> Result<Outcome, WorkerError> {
        self.handle_until(job, lease, None).await
    }

    /// [`Worker::handle`] in an invocation that ends at `deadline` (a Lambda's, from its
    /// context): a ready successor runs in process only when its whole timeout (for a node that
    /// only computes, none) still fits before the deadline, less [`DEADLINE_MARGIN`]; otherwise
    /// it goes to the queue, so no node is cut off by the end of the invocation.
    pub async fn handle_until(
        &self,
        job: Job,
        lease: Option<Lease>,
        deadline: Option<Instant>,
    ) -> Result<Outcome, WorkerError> {
        let started = Instant::now();
        let mut nodes = 0;
        let mut next = Some(job);
        let mut lease = lease;
        // The run's completions as the last step recorded them: the step that can only be the
        // run's last ends it in the same write.
        let mut known = None;
        while let Some(job) = next.take() {
            let bp = match self.blueprint(&job.bp, &job.v).await {
                Ok(bp) => bp,
                Err(e @ StoreError::NoBlueprint(_)) => {
                    tracing::error!(run = %job.run, error = %e, "dropping a job whose blueprint does not exist");
                    return Ok(Outcome::Dropped(e.to_string()));
                }
                // Anything else may pass: the job comes back.
                Err(e) => return Err(e.into()),
            };
            match self.step(&bp, job, lease.take(), known.take()).await? {
                Step::Continue(j, done) => {
                    known = Some(done);
                    nodes += 1;
                    let needs = bp.nodes.get(&j.node).map_or(Duration::ZERO, |n| {
                        if builtins::INSTANT.contains(&n.uses.as_str()) { Duration::ZERO } else { n.timeout() }
                    });
                    let room = needs + DEADLINE_MARGIN;
                    let fits = deadline.is_none_or(|d| Instant::now() + room <= d);
                    if nodes >= self.config.max_continuations || started.elapsed() >= self.config.continue_for || !fits
                    {
                        self.queue.send(&[(j, Duration::ZERO)]).await?;
                    } else {
                        next = Some(j);
                    }
                }
                Step::End => nodes += 1,
                Step::Requeued => return Ok(if nodes == 0 { Outcome::Requeued } else { Outcome::Done { nodes } }),
                Step::Dropped(why) => {
                    return Ok(if nodes == 0 { Outcome::Dropped(why) } else { Outcome::Done { nodes } });
                }
            }
        }
        Ok(Outcome::Done { nodes })
    }

    async fn step(
        &self,
        bp: &Blueprint,
        job: Job,
        lease: Option<Lease>,
        known: Option<engine::Done>,
    ) -> Result<Step, WorkerError> {
        let Some(spec) = bp.nodes.get(&job.node) else {
            return Ok(Step::Dropped(format!("blueprint {}@{} has no node {}", job.bp, job.v, job.node)));
        };
        let now = now_ms();
        if let Some(at) = job.not_before
            && now < at
        {
            return self.requeue_until(job, at).await;
        }
        let (result, input) = if let Some(wake) = job.wake_at {
            if now < wake {
                return self.requeue_until(job, wake).await;
            }
            (Ok(NodeResult::output(job.input.clone().unwrap_or(Value::Null))), Value::Null)
        } else {
            let input = self.input_for(bp, &job).await?;
            let input = self.with_inputs(&job.run, &spec.inputs, input).await?;
            let node = self.services.registry.get(&spec.uses);
            let cx = NodeContext {
                run_id: &job.run,
                node_id: &job.node,
                params: &spec.params,
                input: input.clone(),
                attempt: job.attempt,
                services: &self.services,
            };
            let run = async {
                match node {
                    Some(n) => {
                        match tokio::time::timeout(spec.timeout(), AssertUnwindSafe(n.run(cx)).catch_unwind()).await {
                            Ok(Ok(r)) => r,
                            Ok(Err(_)) => Err(NodeError::Fatal(format!("node type {} panicked", spec.uses))),
                            Err(_) => Err(NodeError::Retryable(format!("timed out after {:?}", spec.timeout()))),
                        }
                    }
                    None => Err(NodeError::Fatal(format!("unknown node type {:?}", spec.uses))),
                }
            };
            let started = Instant::now();
            let result = self.with_heartbeat(&job.run, lease.as_ref(), run).await;
            let outcome = if result.is_ok() { "NodeSucceeded" } else { "NodeFailed" };
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            self.metrics.emit(&[(outcome, 1.0, Unit::Count), ("NodeDuration", ms, Unit::Milliseconds)]).await;
            if let Err(e) = &result {
                return self.fail(bp, job, input, e).await;
            }
            (result, input)
        };
        let Ok(r) = result else {
            return Ok(Step::End);
        };
        match r.effect {
            Effect::Sleep(d) => {
                let wake = now_ms() + i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                self.requeue_until(Job { wake_at: Some(wake), input: Some(r.output), ..job }, wake).await
            }
            Effect::Subflow { blueprint, input: child_input } => {
                self.subflow(bp, job, input, &blueprint, &child_input).await
            }
            Effect::Done => {
                let action = r.action.as_deref().unwrap_or(DEFAULT_ACTION);
                self.complete(bp, &job, r.output, action, known).await
            }
        }
    }

    /// A subflow node: starts this attempt's child run, or, once the child has ended (a
    /// wake-up from it, or the reconciler re-checking a parent that waited too long),
    /// completes with its output or fails through the node's own retries and fallback.
    async fn subflow(
        &self,
        bp: &Blueprint,
        job: Job,
        input: Value,
        blueprint: &str,
        child_input: &Value,
    ) -> Result<Step, WorkerError> {
        let child = child_run(&job.run, &job.node, job.attempt);
        let wait_until = now_ms() + i64::try_from(SUBFLOW_WAIT.as_millis()).unwrap_or(0);
        let Some(status) = self.store.status(&child).await? else {
            start_run(&self.store, &self.queue, &child, blueprint, child_input, Some((&job.run, &job.node))).await?;
            self.store.touch(&job.run, wait_until).await?;
            return Ok(Step::Requeued);
        };
        match status.status.as_str() {
            "running" => {
                self.store.touch(&job.run, wait_until).await?;
                Ok(Step::Requeued)
            }
            "succeeded" => {
                let output = match &status.output_node {
                    Some(n) => self
                        .store
                        .outputs(&child, &status.outputs, std::slice::from_ref(n))
                        .await?
                        .remove(n)
                        .unwrap_or(Value::Null),
                    None => Value::Null,
                };
                self.complete(bp, &job, output, DEFAULT_ACTION, None).await
            }
            other => {
                let why = format!("subflow {child} {other}: {}", status.error.as_deref().unwrap_or("no reason given"));
                // A failed child may succeed when started again; a cancelled one was stopped
                // on purpose.
                let error = if other == "failed" { NodeError::Retryable(why) } else { NodeError::Fatal(why) };
                self.fail(bp, job, input, &error).await
            }
        }
    }

    /// Runs `work` with a heartbeat every `config.heartbeat`: the message stays hidden and the
    /// run fresh (so the reconciler leaves it alone) however long the node takes.
    async fn with_heartbeat<T>(&self, run: &str, lease: Option<&Lease>, work: impl Future<Output = T>) -> T {
        let (queue, store, every) = (self.queue.clone(), self.store.clone(), self.config.heartbeat);
        let (run, lease) = (run.to_string(), lease.cloned());
        let beat = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Some(l) = &lease
                    && let Err(e) = queue.extend(&l.receipt, every * 3).await
                {
                    tracing::warn!(run, error = %e, "heartbeat could not extend the message");
                }
                if let Err(e) = store.touch(&run, now_ms()).await {
                    tracing::warn!(run, error = %e, "heartbeat could not touch the run");
                }
            }
        });
        // Dropped with the work too (a worker task aborted mid-node), like a killed process.
        let _stop = AbortOnDrop(beat);
        work.await
    }

    /// Sends `job` back to the queue to run at `at` (epoch ms; SQS holds a message for 15
    /// minutes at most, so a later time takes several steps) and keeps its run fresh until then.
    async fn requeue_until(&self, job: Job, at: i64) -> Result<Step, WorkerError> {
        let left = Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0));
        self.store.touch(&job.run, at).await?;
        self.queue.send(&[(job, left)]).await?;
        Ok(Step::Requeued)
    }

    /// The node's input: carried by the job, or read (a large input, a start node's).
    async fn input_for(&self, bp: &Blueprint, job: &Job) -> Result<Value, WorkerError> {
        if let Some(i) = &job.input {
            return Ok(i.clone());
        }
        if bp.start_nodes().contains(&job.node.as_str()) {
            return Ok(self.store.input(&job.run).await?);
        }
        let (done, inline) = self.store.status(&job.run).await?.map(|s| (s.done, s.outputs)).unwrap_or_default();
        let preds: Vec<String> = engine::arrivals(bp, &job.node, &done).into_iter().map(str::to_string).collect();
        let outputs = self.store.outputs(&job.run, &inline, &preds).await?;
        Ok(engine::join_input(bp, &job.node, &done, &outputs))
    }

    /// Adds the node's `inputs` (`input.<path>` or `<node>.<path>`) to its input object.
    async fn with_inputs(
        &self,
        run: &str,
        refs: &std::collections::BTreeMap<String, String>,
        input: Value,
    ) -> Result<Value, WorkerError> {
        if refs.is_empty() {
            return Ok(input);
        }
        // The linter checked the references; one that does not parse reads as null.
        let parsed: Vec<(&String, &str, String)> = refs
            .iter()
            .filter_map(|(name, r)| crate::expr::split_reference(r).ok().map(|(s, p)| (name, s, p)))
            .collect();
        let nodes: Vec<String> = parsed.iter().map(|(_, s, _)| s.to_string()).filter(|s| s != "input").collect();
        let inline = if nodes.is_empty() {
            Outputs::new()
        } else {
            self.store.status(run).await?.map(|s| s.outputs).unwrap_or_default()
        };
        let mut sources = self.store.outputs(run, &inline, &nodes).await?;
        if parsed.iter().any(|(_, s, _)| *s == "input") {
            sources.insert("input".into(), self.store.input(run).await?);
        }
        let mut obj = match input {
            Value::Object(o) => o,
            Value::Null => serde_json::Map::new(),
            other => serde_json::Map::from_iter([("input".to_string(), other)]),
        };
        for (name, source, path) in parsed {
            let v = sources.get(source).and_then(|v| crate::expr::path(v, &path)).cloned().unwrap_or(Value::Null);
            obj.insert(name.clone(), v);
        }
        Ok(Value::Object(obj))
    }

    /// Records the completion once, then dispatches what it made ready. When `known` (the
    /// run's completions as this worker last recorded them) shows this is the run's last
    /// completion, the same write ends the run.
    async fn complete(
        &self,
        bp: &Blueprint,
        job: &Job,
        output: Value,
        action: &str,
        known: Option<engine::Done>,
    ) -> Result<Step, WorkerError> {
        let taken = match engine::taken_edges(bp, &job.node, action, &output) {
            Ok(t) => t,
            Err(e) => {
                let error = NodeError::Fatal(format!("choosing edges: {e}"));
                return self.fail(bp, job.clone(), output, &error).await;
            }
        };
        let c = Completion {
            action: action.to_string(),
            taken: taken.iter().map(|(t, _)| t.clone()).collect(),
            failed: false,
        };
        let last = known.and_then(|before| last_completion(bp, before, &job.node, &c));
        let finish = last.map(|(status, after)| Finish { status, output_node: &job.node, after });
        let recorded = self.store.complete(&job.run, &job.node, &c, &output, bp.nodes.len(), finish).await;
        let (done, inline) = match recorded {
            Ok(Recorded::New(done, inline)) => (done, inline),
            Ok(Recorded::Finished { parent }) => {
                if let Some((parent, node)) = parent {
                    wake_parent(&self.store, &self.queue, &job.run, &parent, &node).await?;
                }
                return Ok(Step::End);
            }
            Ok(Recorded::Duplicate) => {
                return Ok(Step::Dropped(format!("node {} of run {} completed already", job.node, job.run)));
            }
            Ok(Recorded::NotRunning) => return Ok(Step::Dropped(format!("run {} is no longer running", job.run))),
            Err(e @ StoreError::TooLarge { .. }) => {
                let input = job.input.clone().unwrap_or(Value::Null);
                return self.fail(bp, job.clone(), input, &NodeError::Fatal(e.to_string())).await;
            }
            Err(e) => return Err(e.into()),
        };
        let mut jobs = Vec::new();
        for t in engine::dispatches(bp, &job.node, &done) {
            let input = if engine::is_join(bp, &t) {
                let others: Vec<String> = engine::arrivals(bp, &t, &done)
                    .into_iter()
                    .filter(|p| *p != job.node)
                    .map(str::to_string)
                    .collect();
                let mut outputs = self.store.outputs(&job.run, &inline, &others).await?;
                outputs.insert(job.node.clone(), output.clone());
                engine::join_input(bp, &t, &done, &outputs)
            } else {
                taken.iter().find(|(to, _)| *to == t).map_or(Value::Null, |(_, d)| d.clone())
            };
            jobs.push(Job::new(&job.run, &t, &job.bp, &job.v, Some(input)));
        }
        self.advance(bp, job, done, jobs, &job.node).await
    }

    /// Finishes the run when nothing is pending; otherwise continues into the first job and
    /// queues the rest.
    async fn advance(
        &self,
        bp: &Blueprint,
        job: &Job,
        done: engine::Done,
        mut jobs: Vec<Job>,
        last: &str,
    ) -> Result<Step, WorkerError> {
        if engine::pending(bp, &done).is_empty() {
            finish_run(&self.store, &self.queue, &job.run, engine::outcome(&done), None, Some(last)).await?;
            return Ok(Step::End);
        }
        if jobs.is_empty() {
            return Ok(Step::End);
        }
        let first = jobs.remove(0);
        let rest: Vec<(Job, Duration)> = jobs.into_iter().map(|j| (j, Duration::ZERO)).collect();
        self.queue.send(&rest).await?;
        Ok(Step::Continue(first, done))
    }

    /// A failed attempt: retry with backoff, else the fallback, else the run fails.
    async fn fail(&self, bp: &Blueprint, job: Job, input: Value, error: &NodeError) -> Result<Step, WorkerError> {
        let Some(spec) = bp.nodes.get(&job.node) else {
            return Ok(Step::End);
        };
        if matches!(error, NodeError::Retryable(_)) && job.attempt < spec.max_retries {
            let pause = spec.retry_pause(job.attempt + 1);
            tracing::info!(run = %job.run, node = %job.node, attempt = job.attempt + 1, ?pause, %error, "retrying");
            let (again, at) = next_attempt(job, input, pause, now_ms());
            return self.requeue_until(again, at).await;
        }
        let message = format!("node {} failed after {} attempt(s): {error}", job.node, job.attempt + 1);
        tracing::warn!(run = %job.run, "{message}");
        let taken: Vec<String> = spec.fallback.iter().cloned().collect();
        let c = Completion { action: "error".into(), taken: taken.clone(), failed: true };
        let done = match self.store.complete(&job.run, &job.node, &c, &Value::Null, bp.nodes.len(), None).await? {
            Recorded::New(done, _) => done,
            _ => return Ok(Step::Dropped(format!("node {} of run {} was settled already", job.node, job.run))),
        };
        if taken.is_empty() {
            finish_run(&self.store, &self.queue, &job.run, "failed", Some(&message), None).await?;
            return Ok(Step::End);
        }
        let fallback_input = json!({ "error": message, "node": job.node, "input": input });
        let jobs = taken.iter().map(|f| Job::new(&job.run, f, &job.bp, &job.v, Some(fallback_input.clone()))).collect();
        self.advance(bp, &job, done, jobs, &job.node).await
    }
}

/// The job of the attempt after `job` once `pause` has passed, and when it runs (epoch ms).
/// Past SQS's longest delay it carries that time, so that it waits again when it comes back
/// early, rather than running before its delay is over.
fn next_attempt(job: Job, input: Value, pause: Duration, now: i64) -> (Job, i64) {
    let at = now.saturating_add(i64::try_from(pause.as_millis()).unwrap_or(i64::MAX));
    let not_before = (pause > MAX_DELAY).then_some(at);
    (Job { attempt: job.attempt + 1, input: Some(input), not_before, ..job }, at)
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether completion `c` of `node`, recorded after the completions `before`, leaves nothing
/// pending: then the run's outcome and how many completions it has before this one.
fn last_completion(
    bp: &Blueprint,
    mut before: engine::Done,
    node: &str,
    c: &Completion,
) -> Option<(&'static str, usize)> {
    let count = before.len();
    if before.insert(node.to_string(), c.clone()).is_some() {
        return None;
    }
    engine::pending(bp, &before).is_empty().then(|| (engine::outcome(&before), count))
}

/// What one step of a job led to.
enum Step {
    /// Run this job next, in process; the run's completions as this step left them.
    Continue(Job, engine::Done),
    /// Nothing more for this job.
    End,
    /// It went back to the queue.
    Requeued,
    /// Nothing to do.
    Dropped(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_past_fifteen_minutes_waits_in_steps_and_a_shorter_one_in_one_delay() {
        let job = Job::new("r", "charge", "pay", "v1", None);
        let (short, at) = next_attempt(job.clone(), json!(1), Duration::from_secs(60), 1_000);
        assert_eq!((short.attempt, short.not_before, at), (1, None, 61_000));
        assert_eq!(short.input, Some(json!(1)));
        let (long, at) = next_attempt(job, json!(1), Duration::from_secs(3600), 1_000);
        assert_eq!((long.attempt, long.not_before, at), (1, Some(3_601_000), 3_601_000));
    }
}
