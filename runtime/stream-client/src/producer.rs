//! A batching producer: `send` queues a record at once and returns a future of where it went;
//! a background task gathers records into per-partition batches (see [`accumulator`]) and one
//! sender sends them, one request at a time, each request carrying every batch that is ready,
//! for many partitions at once (see [`sender`]).

mod accumulator;
mod sender;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::accumulator::{Accumulator, Limits};
use self::sender::{Job, Retry, Ticket};
use crate::{Client, Error, NewRecord, RecordMetadata};

/// The most records the API takes in one batch.
const API_MAX_RECORDS: usize = 10_000;
/// The largest request body the API takes (Lambda's 6 MB payload limit).
const API_MAX_BYTES: usize = 6 * 1024 * 1024;
/// Batches queued per partition before the producer waits for the sender.
const QUEUED_BATCHES: usize = 4;

/// How a [`Producer`] batches and retries.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// How long a batch waits for more records after its first (5 ms).
    pub linger: Duration,
    /// The most records in a batch (500; at most 10,000).
    pub batch_size: usize,
    /// The most request bytes in a batch (1 MiB; at most 6 MiB). A larger record goes alone.
    pub max_batch_bytes: usize,
    /// How many times a batch is sent again after a 5xx, 429 or transport error (3).
    pub retries: u32,
    /// The pause before the first retry, doubling after each (100 ms).
    pub retry_backoff: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(5),
            batch_size: 500,
            max_batch_bytes: 1024 * 1024,
            retries: 3,
            retry_backoff: Duration::from_millis(100),
        }
    }
}

enum Command {
    Send(NewRecord, Ticket),
    Flush(oneshot::Sender<()>),
}

/// Where a sent record went, once its batch is acknowledged; owns nothing of the call that
/// made it.
#[derive(Debug)]
pub struct Delivery(oneshot::Receiver<Result<RecordMetadata, Error>>);

impl Future for Delivery {
    type Output = Result<RecordMetadata, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|answer| answer.unwrap_or(Err(Error::Closed)))
    }
}

/// Sends records in batches, one request in flight, which carries the batches of every
/// partition that are ready.
///
/// Delivery is exactly once: a request that failed with a 5xx, 429 or transport error is sent
/// again (up to `retries` times) with the same producer id and sequence, so if an attempt that
/// seemed to fail had in fact been written, the stream answers its original offsets instead of
/// appending it twice. Records of a key keep their order, retries included.
pub struct Producer {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl Producer {
    /// A producer for `client`'s topic; reads the partition count with one `describe`.
    /// Must be called inside a Tokio runtime.
    pub async fn new(client: Client, config: ProducerConfig) -> Result<Self, Error> {
        if !(1..=API_MAX_RECORDS).contains(&config.batch_size) {
            return Err(Error::Usage(format!("batch_size must be 1 to {API_MAX_RECORDS}")));
        }
        if !(1..=API_MAX_BYTES).contains(&config.max_batch_bytes) {
            return Err(Error::Usage(format!("max_batch_bytes must be 1 to {API_MAX_BYTES}")));
        }
        let partitions = u32::try_from(client.describe().await?.partitions.len()).unwrap_or(u32::MAX);
        if partitions == 0 {
            return Err(Error::Decode(format!("topic {} has no partitions", client.topic())));
        }
        let limits =
            Limits { linger: config.linger, batch_size: config.batch_size, max_batch_bytes: config.max_batch_bytes };
        let retry = Retry { retries: config.retries, backoff: config.retry_backoff };
        let (commands, queue) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(Accumulator::new(limits, partitions), queue, client, retry, partitions));
        Ok(Self { commands, task })
    }

    /// Queues a record now (calls on one producer keep their order within a partition) and
    /// returns its [`Delivery`], which resolves to its partition and offset. The queue is
    /// unbounded: await deliveries to bound what is in flight.
    pub fn send(&self, key: Option<&str>, value: impl Into<String>) -> Delivery {
        let (ticket, answer) = oneshot::channel();
        // If the producer is closed, the ticket is dropped with the command: `Closed`.
        let _ = self.commands.send(Command::Send(NewRecord::new(key, value), ticket));
        Delivery(answer)
    }

    /// Sends every queued record now and waits until each has its answer.
    pub async fn flush(&self) -> Result<(), Error> {
        let (done, flushed) = oneshot::channel();
        self.commands.send(Command::Flush(done)).map_err(|_| Error::Closed)?;
        flushed.await.map_err(|_| Error::Closed)
    }

    /// Sends every queued record, waits for their answers and stops the background tasks.
    pub async fn close(self) -> Result<(), Error> {
        let Self { commands, task } = self;
        drop(commands);
        task.await.map_err(|e| Error::Usage(format!("the producer task failed: {e}")))
    }
}

/// The background task: accumulates, closes batches on time, hands them to the sender.
async fn run(
    mut acc: Accumulator<Ticket>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    client: Client,
    retry: Retry,
    partitions: u32,
) {
    let (queue, jobs) = mpsc::channel(QUEUED_BATCHES * partitions as usize);
    let sender = tokio::spawn(sender::run(client, retry, jobs));
    loop {
        let command = match acc.next_deadline() {
            Some(deadline) => tokio::select! {
                c = commands.recv() => Some(c),
                () = tokio::time::sleep_until(Instant::from_std(deadline)) => None,
            },
            None => Some(commands.recv().await),
        };
        let closed = match command {
            None => acc.expired(std::time::Instant::now()),
            Some(Some(Command::Send(record, ticket))) => acc.add(record, ticket, std::time::Instant::now()),
            Some(Some(Command::Flush(done))) => {
                dispatch(&queue, acc.drain()).await;
                let (barrier, passed) = oneshot::channel();
                let _ = queue.send(Job::Barrier(barrier)).await;
                // Wait elsewhere, so records sent meanwhile keep being batched.
                tokio::spawn(async move {
                    let _ = passed.await;
                    let _ = done.send(());
                });
                continue;
            }
            Some(None) => {
                dispatch(&queue, acc.drain()).await;
                break;
            }
        };
        dispatch(&queue, closed).await;
    }
    drop(queue);
    let _ = sender.await;
}

/// Queues batches for the sender; a batch that cannot be queued answers `Closed`.
async fn dispatch(queue: &mpsc::Sender<Job>, batches: Vec<accumulator::Batch<Ticket>>) {
    for batch in batches {
        if let Err(mpsc::error::SendError(Job::Deliver(batch))) = queue.send(Job::Deliver(batch)).await {
            batch.tickets.into_iter().for_each(|t| drop(t.send(Err(Error::Closed))));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::partition_for;
    use crate::test_server::{FakeTopic, TestServer};

    /// A producer of topic `t` on a fake server, and the fake.
    async fn producer(
        partitions: u32,
        failures: &[u16],
        config: ProducerConfig,
    ) -> (Producer, Arc<FakeTopic>, TestServer) {
        let topic = FakeTopic::new(partitions, failures);
        let fake = Arc::clone(&topic);
        let server = TestServer::start(move |r| fake.handle(r)).await;
        let client = Client::new(&server.url, "t", crate::Auth::None).expect("client");
        (Producer::new(client, config).await.expect("producer"), topic, server)
    }

    /// Each produce request's records per partition.
    fn produce_requests(server: &TestServer) -> Vec<std::collections::BTreeMap<u64, usize>> {
        let seen = server.seen();
        let produces = seen.iter().filter(|r| r.target.ends_with("/produce"));
        produces
            .map(|r| {
                let mut per_partition = std::collections::BTreeMap::new();
                for record in r.body["records"].as_array().into_iter().flatten() {
                    *per_partition.entry(record["partition"].as_u64().unwrap_or(99)).or_insert(0) += 1;
                }
                per_partition
            })
            .collect()
    }

    /// Two keys on different partitions of a topic of `partitions`.
    fn keys_on_two_partitions(partitions: u32) -> (String, String) {
        let a = "key-0".to_string();
        let b =
            (1..).map(|i| format!("key-{i}")).find(|k| partition_for(k, partitions) != partition_for(&a, partitions));
        (a, b.expect("a second partition"))
    }

    #[tokio::test]
    async fn records_are_batched_per_partition_in_order_with_dense_offsets() -> Result<(), Error> {
        let config = ProducerConfig { linger: Duration::from_secs(3600), batch_size: 10, ..ProducerConfig::default() };
        let (producer, topic, server) = producer(4, &[], config).await;
        let (a, b) = keys_on_two_partitions(4);
        let sends: Vec<_> = (0..30)
            .map(|i| {
                let key = if i % 6 == 0 { &b } else { &a };
                (key.clone(), i, producer.send(Some(key), format!("v{i}")))
            })
            .collect();
        producer.flush().await?;
        let (pa, pb) = (partition_for(&a, 4), partition_for(&b, 4));
        let mut next = std::collections::BTreeMap::new();
        for (key, i, sent) in sends {
            let meta = sent.await?;
            assert_eq!(meta.partition, partition_for(&key, 4));
            let expected = next.entry(meta.partition).or_insert(0);
            assert_eq!(meta.offset, *expected, "record {i}");
            *expected += 1;
            assert_eq!(topic.values(meta.partition)[meta.offset as usize], (Some(key), format!("v{i}")));
        }
        // 25 records of `a` (batches of 10, 10 and 5, flushed) and 5 of `b` (one flushed batch):
        // every batch was ready when the sender first looked, so one request carries them all.
        let (pa, pb) = (u64::from(pa), u64::from(pb));
        assert_eq!(produce_requests(&server), [std::collections::BTreeMap::from([(pa, 25), (pb, 5)])]);
        producer.close().await
    }

    #[tokio::test]
    async fn a_batch_is_sent_after_lingering_without_a_flush() -> Result<(), Error> {
        // Long enough that both records are queued before the batch closes.
        let config = ProducerConfig { linger: Duration::from_millis(200), ..ProducerConfig::default() };
        let (producer, _, server) = producer(1, &[], config).await;
        let first = producer.send(None, "a");
        let second = producer.send(None, "b");
        assert_eq!((first.await?.offset, second.await?.offset), (0, 1));
        assert_eq!(produce_requests(&server), [std::collections::BTreeMap::from([(0, 2)])]);
        producer.close().await
    }

    #[tokio::test]
    async fn server_errors_are_retried_and_retries_are_bounded() -> Result<(), Error> {
        let config =
            ProducerConfig { retries: 2, retry_backoff: Duration::from_millis(1), ..ProducerConfig::default() };
        let (producer, topic, server) = producer(1, &[500, 503, 500, 429], config).await;
        // Three attempts all fail; the next record's two attempts end with a success.
        assert_eq!(
            producer.send(None, "lost").await,
            Err(Error::Server { status: 500, message: "failing with 500".into() })
        );
        assert_eq!(producer.send(None, "kept").await?, RecordMetadata { partition: 0, offset: 0 });
        assert_eq!(produce_requests(&server).len(), 5);
        assert_eq!(topic.values(0), [(None, "kept".to_string())]);
        producer.close().await
    }

    #[tokio::test]
    async fn errors_a_retry_cannot_fix_are_not_retried() -> Result<(), Error> {
        let (producer, _, server) = producer(1, &[413], ProducerConfig::default()).await;
        assert!(matches!(producer.send(None, "big").await, Err(Error::TooLarge(_))));
        assert_eq!(produce_requests(&server).len(), 1);
        producer.close().await
    }

    #[tokio::test]
    async fn close_delivers_what_was_queued() -> Result<(), Error> {
        let config = ProducerConfig { linger: Duration::from_secs(3600), ..ProducerConfig::default() };
        let (producer, topic, _server) = producer(2, &[], config).await;
        let sent: Vec<_> = (0..7).map(|i| producer.send(None, i.to_string())).collect();
        producer.close().await?;
        let mut delivered = Vec::new();
        for s in sent {
            delivered.push(s.await?);
        }
        assert_eq!(delivered.len(), 7);
        assert_eq!(topic.values(0).len() + topic.values(1).len(), 7);
        Ok(())
    }

    #[tokio::test]
    async fn impossible_limits_are_refused() {
        let client = Client::new("http://127.0.0.1:9/", "t", crate::Auth::None).expect("client");
        for config in [
            ProducerConfig { batch_size: 0, ..ProducerConfig::default() },
            ProducerConfig { batch_size: 10_001, ..ProducerConfig::default() },
            ProducerConfig { max_batch_bytes: 7 * 1024 * 1024, ..ProducerConfig::default() },
        ] {
            assert!(matches!(Producer::new(client.clone(), config).await, Err(Error::Usage(_))));
        }
    }
}
