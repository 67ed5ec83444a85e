//! The long-running worker (EC2, ECS, a laptop): receives ten jobs per request whenever a
//! slot is free (one long poll per ten slots), admits them with one read of their runs, runs
//! up to `concurrency` at once, deletes finished ones ten per request, rides out a failed
//! receive with a pause (up to five in a row), and on shutdown stops receiving, lets in-flight
//! jobs finish for a grace period, then releases the rest to other workers.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{Semaphore, mpsc};

use crate::worker::{Admission, Lease, Outcome, Worker, WorkerError};

/// Finished jobs wait this long for others to share their delete request.
const DELETE_LINGER: Duration = Duration::from_millis(20);

/// How the poller receives and stops.
#[derive(Clone, Debug)]
pub struct PollerConfig {
    /// Jobs running at once.
    pub concurrency: usize,
    /// Long-poll wait for an empty queue.
    pub wait: Duration,
    /// How long a received job stays hidden (the heartbeat extends it while its node runs).
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

#[derive(Default)]
struct Shared {
    stats: Mutex<PollStats>,
    in_flight: Mutex<BTreeSet<String>>,
}

impl Shared {
    fn count(&self, f: impl FnOnce(&mut PollStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    fn flight(&self, receipt: &str, on: bool) {
        if let Ok(mut f) = self.in_flight.lock() {
            if on {
                f.insert(receipt.to_string());
            } else {
                f.remove(receipt);
            }
        }
    }
}

/// Receives in a row that may fail before a receiver gives up. The SDK's own retries are spent
/// by then, so a failure is worth a pause; a queue that stays out of reach (deleted, no
/// permission) stops the poller with its error.
const RECEIVE_ATTEMPTS: u32 = 5;
/// The pause after a first failed receive; it doubles with each failure in a row.
const RECEIVE_PAUSE: Duration = Duration::from_millis(500);
/// Jobs one receive request takes at most (SQS's limit).
const RECEIVE_BATCH: usize = 10;

/// Runs until `shutdown` resolves, then drains as described above. Above ten slots, several
/// long polls are under way at once (one per ten slots), so receiving keeps up with the jobs.
pub async fn run(
    worker: Arc<Worker>,
    config: PollerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<PollStats, WorkerError> {
    let (finished, to_delete) = mpsc::unbounded_channel::<String>();
    let deleter = tokio::spawn(delete_in_batches(Arc::clone(&worker), to_delete));
    let poll = Poll {
        slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
        shared: Arc::new(Shared::default()),
        tasks: Mutex::new(tokio::task::JoinSet::new()),
        batch: i32::try_from(config.concurrency.clamp(1, RECEIVE_BATCH)).unwrap_or(10),
        worker,
        finished,
        config,
    };
    let shutdown = Box::pin(shutdown).shared();
    let receivers = poll.config.concurrency.div_ceil(RECEIVE_BATCH).max(1);
    futures::future::try_join_all((0..receivers).map(|_| poll.receive(shutdown.clone()))).await?;
    // Shutdown: finish what runs, within the grace period; release the rest.
    let Poll { worker, shared, tasks, finished, config, .. } = poll;
    let mut tasks = tasks.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let drained = tokio::time::timeout(config.grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tasks.abort_all();
        let left: Vec<String> = shared.in_flight.lock().map(|f| f.iter().cloned().collect()).unwrap_or_default();
        for receipt in &left {
            release(&worker, receipt).await;
        }
        shared.count(|s| s.left += left.len());
    }
    drop(finished);
    let _ = deleter.await;
    Ok(shared.stats.lock().map(|s| s.clone()).unwrap_or_default())
}

/// What the receivers of one poller share.
struct Poll {
    worker: Arc<Worker>,
    config: PollerConfig,
    slots: Arc<Semaphore>,
    shared: Arc<Shared>,
    tasks: Mutex<tokio::task::JoinSet<()>>,
    finished: mpsc::UnboundedSender<String>,
    batch: i32,
}

impl Poll {
    /// One receiver: receives whenever a slot is free, admits the jobs and starts them, until
    /// `shutdown`.
    async fn receive(&self, mut shutdown: impl Future<Output = ()> + Unpin) -> Result<(), WorkerError> {
        let worker = &self.worker;
        let mut failures = 0u32;
        loop {
            // Receive only when a slot is free; take up to `concurrency` (at most ten): the
            // extra ones wait for slots, never longer than a node takes.
            let free = tokio::select! {
                () = &mut shutdown => return Ok(()),
                p = Arc::clone(&self.slots).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return Ok(()),
                },
            };
            drop(free);
            let receive = worker.queue().receive(self.batch, self.config.wait, self.config.visibility);
            tokio::pin!(receive);
            let received = tokio::select! {
                r = &mut receive => match r {
                    Ok(received) => {
                        failures = 0;
                        received
                    }
                    Err(e) if failures + 1 < RECEIVE_ATTEMPTS => {
                        failures += 1;
                        tracing::warn!(error = %e, failures, "receiving jobs failed; trying again");
                        tokio::select! {
                            () = tokio::time::sleep(RECEIVE_PAUSE * 2u32.pow(failures - 1)) => continue,
                            () = &mut shutdown => return Ok(()),
                        }
                    }
                    Err(e) => return Err(e.into()),
                },
                () = &mut shutdown => {
                    // A long poll under way may still be handed jobs: take them and give them
                    // back at once rather than leave them hidden for the visibility timeout.
                    for r in receive.await.unwrap_or_default() {
                        release(worker, &r.receipt).await;
                    }
                    return Ok(());
                }
            };
            if let Ok(mut t) = self.tasks.lock() {
                while t.try_join_next().is_some() {}
            }
            if received.is_empty() {
                continue;
            }
            self.start(received).await;
        }
    }

    /// Admits received jobs with one read of their runs and starts each on a task that waits
    /// for a slot.
    async fn start(&self, received: Vec<crate::queue::Received>) {
        let shared = &self.shared;
        shared.count(|s| s.received += received.len());
        let mut jobs = Vec::new();
        for r in received {
            match r.job {
                Ok(job) => {
                    shared.flight(&r.receipt, true);
                    jobs.push((job, Some(Lease { receipt: r.receipt })));
                }
                Err(why) => {
                    // Never deleted: after max_receive_count SQS moves it to the DLQ.
                    tracing::error!(%why, "a message that is not a job");
                    shared.count(|s| s.left += 1);
                }
            }
        }
        let receipts: Vec<String> = jobs.iter().filter_map(|(_, l)| l.as_ref().map(|l| l.receipt.clone())).collect();
        let admitted = match self.worker.admit(jobs).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "reading the runs of received jobs; SQS delivers them again");
                for r in &receipts {
                    shared.flight(r, false);
                }
                shared.count(|s| s.left += receipts.len());
                return;
            }
        };
        let Ok(mut tasks) = self.tasks.lock() else {
            return;
        };
        for (a, receipt) in admitted.into_iter().zip(receipts) {
            let (w, sh, slots, done) =
                (Arc::clone(&self.worker), Arc::clone(shared), Arc::clone(&self.slots), self.finished.clone());
            tasks.spawn(async move {
                let result = match a {
                    Admission::Drop(why) => Ok(Outcome::Dropped(why)),
                    Admission::Run(job, lease) => {
                        let Ok(_slot) = slots.acquire_owned().await else {
                            return;
                        };
                        w.handle(job, lease).await
                    }
                };
                match result {
                    Ok(outcome) => {
                        if let Outcome::Done { nodes } = outcome {
                            sh.count(|s| s.nodes += nodes);
                        }
                        let _ = done.send(receipt.clone());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "job failed; SQS delivers it again");
                        sh.count(|s| s.left += 1);
                    }
                }
                sh.flight(&receipt, false);
            });
        }
    }
}

/// Makes a received job visible again for other workers.
async fn release(worker: &Worker, receipt: &str) {
    if let Err(e) = worker.queue().extend(receipt, Duration::ZERO).await {
        tracing::warn!(error = %e, "releasing a job at shutdown; it reappears after its visibility timeout");
    }
}

/// Deletes finished jobs ten per request, waiting briefly for a batch to fill.
async fn delete_in_batches(worker: Arc<Worker>, mut finished: mpsc::UnboundedReceiver<String>) {
    while let Some(first) = finished.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + DELETE_LINGER;
        while batch.len() < 10 {
            match tokio::time::timeout_at(deadline, finished.recv()).await {
                Ok(Some(r)) => batch.push(r),
                Ok(None) | Err(_) => break,
            }
        }
        if let Err(e) = worker.queue().delete(&batch).await {
            tracing::warn!(error = %e, "deleting finished jobs; they come back and are recognised as done");
        }
    }
}
