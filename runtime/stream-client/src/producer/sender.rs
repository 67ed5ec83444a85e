//! Delivers one partition's batches, one at a time so a partition keeps the order records were
//! sent in, retrying what may succeed on a second try.
//!
//! Every batch is sequenced (a producer id of this sender's own and the batch's number), so
//! the stream appends it at most once however often it is retried.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::accumulator::Batch;
use crate::{Client, Error, RecordMetadata};

/// Whoever waits for one record.
pub(crate) type Ticket = oneshot::Sender<Result<RecordMetadata, Error>>;

/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a partition's sender does next.
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

/// This sender's place in its producer sequence on the partition.
#[derive(Debug)]
struct Sequence {
    producer: String,
    next: u64,
}

impl Sequence {
    fn fresh() -> Self {
        Self { producer: uuid::Uuid::new_v4().simple().to_string(), next: 0 }
    }

    /// Moves on after a batch's final answer. A batch that was appended takes its number; one
    /// that was refused does not. After an error that leaves the outcome unknown, or a
    /// sequence the stream does not accept, the next batch starts a new producer (the
    /// stream cannot tell whether the number is taken).
    fn after(&mut self, result: &Result<crate::Produced, Error>) {
        match result {
            Ok(_) => self.next += 1,
            Err(e) if e.is_retryable() || matches!(e, Error::Conflict(_) | Error::Decode(_)) => *self = Self::fresh(),
            Err(_) => {}
        }
    }
}

/// Runs the jobs of one partition until the producer closes.
pub(crate) async fn run(client: Client, retry: Retry, mut jobs: mpsc::Receiver<Job>) {
    let mut sequence = Sequence::fresh();
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Deliver(batch) => deliver(&client, retry, &mut sequence, batch).await,
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

async fn deliver(client: &Client, retry: Retry, sequence: &mut Sequence, batch: Batch<Ticket>) {
    let mut attempt = 0;
    let numbered = Some((sequence.producer.as_str(), sequence.next));
    let result = loop {
        match client.produce_sequenced(&batch.records, Some(batch.partition), numbered).await {
            Err(e) if e.is_retryable() && attempt < retry.retries => {
                tokio::time::sleep(retry.pause(attempt).max(e.retry_after().unwrap_or_default())).await;
                attempt += 1;
            }
            other => break other,
        }
    };
    sequence.after(&result);
    answer(batch.tickets, result);
}

/// Tells every waiting sender where its record went, or why it did not.
fn answer(tickets: Vec<Ticket>, result: Result<crate::Produced, Error>) {
    match result {
        Ok(p) if p.offsets.len() == tickets.len() => {
            for (ticket, offset) in tickets.into_iter().zip(p.offsets) {
                let _ = ticket.send(Ok(RecordMetadata { partition: p.partition, offset }));
            }
        }
        Ok(p) => {
            let e = Error::Decode(format!("{} offsets for a batch of {} records", p.offsets.len(), tickets.len()));
            tickets.into_iter().for_each(|t| drop(t.send(Err(e.clone()))));
        }
        Err(e) => tickets.into_iter().for_each(|t| drop(t.send(Err(e.clone())))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Produced;

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
        s.after(&Ok(Produced { partition: 0, offset: 0, offsets: vec![0], duplicate: false }));
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
        answer(tickets, Ok(Produced { partition: 2, offset: 10, offsets: vec![10, 11, 12], duplicate: false }));
        let got: Vec<_> = waiting.into_iter().map(|mut w| w.try_recv().ok()).collect();
        let offsets: Vec<_> = (10..13).map(|offset| Some(Ok(RecordMetadata { partition: 2, offset }))).collect();
        assert_eq!(got, offsets);

        let (tickets, waiting): (Vec<_>, Vec<_>) = (0..2).map(|_| oneshot::channel()).unzip();
        answer(tickets, Err(Error::TooLarge("record".into())));
        for mut w in waiting {
            assert_eq!(w.try_recv().ok(), Some(Err(Error::TooLarge("record".into()))));
        }

        let (tickets, mut waiting): (Vec<_>, Vec<_>) = (0..2).map(|_| oneshot::channel()).unzip();
        answer(tickets, Ok(Produced { partition: 0, offset: 0, offsets: vec![0], duplicate: false }));
        assert!(matches!(waiting[0].try_recv(), Ok(Err(Error::Decode(_)))));
    }
}
