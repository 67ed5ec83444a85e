//! Delivers the producer's batches, one request at a time: each request carries every batch
//! that is ready (up to the API's limits), for however many partitions, as one segment; so a
//! partition keeps the order records were sent in, and a flush of many partitions costs one
//! request.
//!
//! Every request is sequenced (a producer id of this sender's own and the request's number, for
//! the whole topic), so the stream appends it at most once however often it is retried.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::accumulator::Batch;
use crate::{Client, Error, NewRecord, RecordMetadata};

/// Whoever waits for one record.
pub(crate) type Ticket = oneshot::Sender<Result<RecordMetadata, Error>>;

/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The most records the API takes in one request.
const API_MAX_RECORDS: usize = 10_000;
/// The request-body bytes the sender puts in one request: under the API's 6 MB, with room
/// for each record's `"partition":n,`.
const REQUEST_BYTES: usize = 5 * 1024 * 1024;
/// JSON bytes a record's partition adds.
const PARTITION_BYTES: usize = 18;
/// The most partitions the API takes in one request.
const API_MAX_PARTITIONS: usize = 96;
/// The largest record value the API takes: a batch holding a larger one goes alone, so that
/// its refusal is its own.
const API_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// What the sender does next.
pub(crate) enum Job {
    /// Deliver a batch.
    Deliver(Batch<Ticket>),
    /// Signal once everything queued before has been answered.
    Barrier(oneshot::Sender<()>),
}

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retry {
    /// Attempts after the first.
    pub retries: u32,
    /// The pause before the first retry; it doubles each time, up to [`MAX_BACKOFF`].
    pub backoff: Duration,
}

impl Retry {
    /// The pause before retry number `n` (0 for the first).
    pub fn pause(&self, n: u32) -> Duration {
        self.backoff.saturating_mul(1 << n.min(16)).min(MAX_BACKOFF)
    }
}

/// This sender's place in its producer sequence.
#[derive(Debug)]
struct Sequence {
    producer: String,
    next: u64,
}

impl Sequence {
    fn fresh() -> Self {
        Self { producer: uuid::Uuid::new_v4().simple().to_string(), next: 0 }
    }

    /// Moves on after a request's final answer. A request that was appended takes its number;
    /// one that was refused does not. After an error that leaves the outcome unknown, or a
    /// sequence the stream does not accept, the next request starts a new producer (the
    /// stream cannot tell whether the number is taken).
    fn after(&mut self, result: &Result<crate::Produced, Error>) {
        match result {
            Ok(_) => self.next += 1,
            Err(e) if e.is_retryable() || matches!(e, Error::Conflict(_) | Error::Decode(_)) => *self = Self::fresh(),
            Err(_) => {}
        }
    }
}

/// Batches that go in one request.
#[derive(Default)]
struct Request {
    batches: Vec<Batch<Ticket>>,
    records: usize,
    bytes: usize,
    partitions: BTreeSet<u32>,
    /// Holds a record the API may refuse alone.
    alone: bool,
}

impl Request {
    /// Adds `batch` when it fits; hands it back when not.
    fn add(&mut self, batch: Batch<Ticket>) -> Result<(), Batch<Ticket>> {
        let alone = batch.records.iter().any(|r| r.value.len() > API_MAX_RECORD_BYTES);
        let bytes = batch.bytes + batch.records.len() * PARTITION_BYTES;
        let partitions = self.partitions.len() + usize::from(!self.partitions.contains(&batch.partition));
        let fits = self.batches.is_empty()
            || (!alone
                && !self.alone
                && self.records + batch.records.len() <= API_MAX_RECORDS
                && self.bytes + bytes <= REQUEST_BYTES
                && partitions <= API_MAX_PARTITIONS);
        if !fits {
            return Err(batch);
        }
        self.alone |= alone;
        self.records += batch.records.len();
        self.bytes += bytes;
        self.partitions.insert(batch.partition);
        self.batches.push(batch);
        Ok(())
    }
}

/// Runs the jobs until the producer closes.
pub(crate) async fn run(client: Client, retry: Retry, mut jobs: mpsc::Receiver<Job>) {
    let mut sequence = Sequence::fresh();
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        match job {
            Job::Deliver(batch) => {
                let mut request = Request::default();
                let _ = request.add(batch);
                // Whatever else is ready rides along, up to the limits.
                while let Ok(job) = jobs.try_recv() {
                    match job {
                        Job::Deliver(batch) => {
                            if let Err(batch) = request.add(batch) {
                                next = Some(Job::Deliver(batch));
                                break;
                            }
                        }
                        barrier @ Job::Barrier(_) => {
                            next = Some(barrier);
                            break;
                        }
                    }
                }
                deliver(&client, retry, &mut sequence, request.batches).await;
            }
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

async fn deliver(client: &Client, retry: Retry, sequence: &mut Sequence, batches: Vec<Batch<Ticket>>) {
    let mut records = Vec::new();
    let mut tickets = Vec::new();
    for batch in batches {
        records.extend(batch.records.into_iter().map(|r: NewRecord| r.to_partition(batch.partition)));
        tickets.extend(batch.tickets);
    }
    let mut attempt = 0;
    let numbered = Some((sequence.producer.as_str(), sequence.next));
    let result = loop {
        match client.produce_sequenced(&records, None, numbered).await {
            Err(e) if e.is_retryable() && attempt < retry.retries => {
                tokio::time::sleep(retry.pause(attempt).max(e.retry_after().unwrap_or_default())).await;
                attempt += 1;
            }
            other => break other,
        }
    };
    sequence.after(&result);
    answer(tickets, result);
}

/// Tells every waiting sender where its record went, or why it did not.
fn answer(tickets: Vec<Ticket>, result: Result<crate::Produced, Error>) {
    match result {
        Ok(p) if p.records.len() == tickets.len() => {
            for (ticket, placed) in tickets.into_iter().zip(p.records) {
                let _ = ticket.send(Ok(placed));
            }
        }
        Ok(p) => {
            let e = Error::Decode(format!("{} offsets for a batch of {} records", p.records.len(), tickets.len()));
            tickets.into_iter().for_each(|t| drop(t.send(Err(e.clone()))));
        }
        Err(e) => tickets.into_iter().for_each(|t| drop(t.send(Err(e.clone())))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Produced;

    fn produced(places: &[(u32, u64)]) -> Produced {
        let records = places.iter().map(|&(partition, offset)| RecordMetadata { partition, offset }).collect();
        Produced { records, duplicate: false }
    }

    fn batch(partition: u32, values: &[&str]) -> Batch<Ticket> {
        let records: Vec<NewRecord> = values.iter().map(|v| NewRecord::new(None, *v)).collect();
        let bytes = records.iter().map(|r| r.value.len() + 12).sum();
        let tickets = records.iter().map(|_| oneshot::channel().0).collect();
        Batch { partition, records, tickets, bytes }
    }

    #[test]
    fn a_request_takes_batches_up_to_the_apis_limits() {
        let mut r = Request::default();
        for p in 0..API_MAX_PARTITIONS as u32 {
            assert!(r.add(batch(p, &["v"])).is_ok());
        }
        assert!(r.add(batch(3, &["again"])).is_ok(), "a partition already in the request adds none");
        assert!(r.add(batch(200, &["v"])).is_err(), "one partition too many");

        let big = "x".repeat(API_MAX_RECORD_BYTES + 1);
        let mut r = Request::default();
        assert!(r.add(batch(0, &["v"])).is_ok());
        assert!(r.add(batch(1, &[&big])).is_err(), "a record the API may refuse goes alone");
        let mut alone = Request::default();
        assert!(alone.add(batch(1, &[&big])).is_ok());
        assert!(alone.add(batch(0, &["v"])).is_err());

        let mut r = Request::default();
        let half = "y".repeat(REQUEST_BYTES / 2);
        assert!(r.add(batch(0, &[&half])).is_ok());
        assert!(r.add(batch(1, &[&half])).is_err(), "over the request's bytes");
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let retry = Retry { retries: 10, backoff: Duration::from_millis(100) };
        let pauses: Vec<u128> = (0..8).map(|n| retry.pause(n).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(retry.pause(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn the_sequence_moves_on_an_append_and_restarts_after_an_unknown_outcome() {
        let mut s = Sequence::fresh();
        let first = s.producer.clone();
        s.after(&Ok(produced(&[(0, 0)])));
        assert_eq!((s.producer.as_str(), s.next), (first.as_str(), 1));
        s.after(&Err(Error::TooLarge("record".into())));
        assert_eq!((s.producer.as_str(), s.next), (first.as_str(), 1), "a refused batch takes no number");
        s.after(&Err(Error::Server { status: 500, message: "lost".into() }));
        assert_ne!(s.producer, first);
        assert_eq!(s.next, 0);
    }

    #[test]
    fn each_record_gets_its_own_offset_or_the_batchs_error() {
        let (tickets, waiting): (Vec<_>, Vec<_>) = (0..3).map(|_| oneshot::channel()).unzip();
        answer(tickets, Ok(produced(&[(2, 10), (2, 11), (2, 12)])));
        let got: Vec<_> = waiting.into_iter().map(|mut w| w.try_recv().ok()).collect();
        let offsets: Vec<_> = (10..13).map(|offset| Some(Ok(RecordMetadata { partition: 2, offset }))).collect();
        assert_eq!(got, offsets);

        let (tickets, waiting): (Vec<_>, Vec<_>) = (0..2).map(|_| oneshot::channel()).unzip();
        answer(tickets, Err(Error::TooLarge("record".into())));
        for mut w in waiting {
            assert_eq!(w.try_recv().ok(), Some(Err(Error::TooLarge("record".into()))));
        }

        let (tickets, mut waiting): (Vec<_>, Vec<_>) = (0..2).map(|_| oneshot::channel()).unzip();
        answer(tickets, Ok(produced(&[(0, 0)])));
        assert!(matches!(waiting[0].try_recv(), Ok(Err(Error::Decode(_)))));
    }
}
