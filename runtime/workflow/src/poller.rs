//! The long-running worker (EC2, ECS, a laptop): receives jobs ten at a time, runs up to
//! `concurrency` at once, deletes them in batches, and on shutdown stops receiving, lets
//! in-flight jobs finish for a grace period, then releases the rest to other workers.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::queue::QueueError;
use crate::worker::{Lease, Outcome, Worker, WorkerError};

/// How the poller receives and stops.
#[derive(Clone, Debug)]
pub struct PollerConfig {
    /// Jobs running at once.
    pub concurrency: usize,
    /// Long-poll wait for an empty queue.
    pub wait: Duration,
    /// How long a received job stays hidden (the heartbeat extends it).
    pub visibility: Duration,
    /// How long in-flight jobs may finish after shutdown is asked.
    pub grace: Duration,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            wait: Duration::from_secs(20),
            visibility: Duration::from_secs(60),
            grace: Duration::from_secs(25),
        }
    }
}

/// What a poller did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollStats {
    /// Jobs received.
    pub received: usize,
    /// Nodes run (continuations included).
    pub nodes: usize,
    /// Jobs left for redelivery (errors, malformed, released at shutdown).
    pub left: usize,
}

/// Runs until `shutdown` resolves, then drains as described above.
pub async fn run(
    worker: Arc<Worker>,
    config: PollerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<PollStats, WorkerError> {
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let stats = Arc::new(Mutex::new(PollStats::default()));
    let in_flight: Arc<Mutex<BTreeSet<String>>> = Arc::new(Mutex::new(BTreeSet::new()));
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let free = slots.available_permits().clamp(1, 10);
        let permits = tokio::select! {
            () = &mut shutdown => break,
            p = Arc::clone(&slots).acquire_many_owned(u32::try_from(free).unwrap_or(1)) => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let received = tokio::select! {
            () = &mut shutdown => break,
            r = worker.queue().receive(i32::try_from(free).unwrap_or(1), config.wait, config.visibility) => r?,
        };
        while tasks.try_join_next().is_some() {}
        if received.is_empty() {
            continue;
        }
        if let Ok(mut s) = stats.lock() {
            s.received += received.len();
        }
        let (w, st, fl) = (Arc::clone(&worker), Arc::clone(&stats), Arc::clone(&in_flight));
        tasks.spawn(async move {
            let _permits = permits;
            let mut jobs = Vec::new();
            let mut receipts = Vec::new();
            for r in received {
                match r.job {
                    Ok(job) => {
                        if let Ok(mut f) = fl.lock() {
                            f.insert(r.receipt.clone());
                        }
                        receipts.push(r.receipt.clone());
                        jobs.push((job, Some(Lease { receipt: r.receipt })));
                    }
                    Err(why) => {
                        // Never deleted: after max_receive_count SQS moves it to the DLQ.
                        tracing::error!(%why, "a message that is not a job");
                        if let Ok(mut s) = st.lock() {
                            s.left += 1;
                        }
                    }
                }
            }
            let results = w.handle_batch(jobs).await;
            let mut delete = Vec::new();
            for (receipt, result) in receipts.iter().zip(results) {
                match result {
                    Ok(outcome) => {
                        if let (Outcome::Done { nodes }, Ok(mut s)) = (&outcome, st.lock()) {
                            s.nodes += nodes;
                        }
                        delete.push(receipt.clone());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "job failed; SQS delivers it again");
                        if let Ok(mut s) = st.lock() {
                            s.left += 1;
                        }
                    }
                }
            }
            if let Err(e) = w.queue().delete(&delete).await {
                tracing::warn!(error = %e, "deleting finished jobs; they come back and are recognised as done");
            }
            if let Ok(mut f) = fl.lock() {
                for r in &receipts {
                    f.remove(r);
                }
            }
        });
    }
    // Shutdown: finish what runs, within the grace period; release the rest.
    let drained = tokio::time::timeout(config.grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tasks.abort_all();
        let left: Vec<String> = in_flight.lock().map(|f| f.iter().cloned().collect()).unwrap_or_default();
        for receipt in &left {
            release(&worker, receipt).await;
        }
        if let Ok(mut s) = stats.lock() {
            s.left += left.len();
        }
    }
    Ok(stats.lock().map(|s| s.clone()).unwrap_or_default())
}

async fn release(worker: &Worker, receipt: &str) {
    let r: Result<(), QueueError> = worker.queue().extend(receipt, Duration::ZERO).await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "releasing a job at shutdown; it reappears after its visibility timeout");
    }
}
