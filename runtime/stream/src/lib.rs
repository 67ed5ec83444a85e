//! adf-stream: a Kafka-like topic on S3 segments and DynamoDB offsets.
//!
//! Guarantees:
//! - a produced batch becomes one segment object in S3, written *before* any offset is
//!   assigned, whether it holds one partition's records or many ([`Stream::produce_many`]: one
//!   section per partition, each read alone with a ranged GET); offsets are assigned by one
//!   DynamoDB transaction that advances the high watermark of every partition the batch
//!   reaches and appends the object, with its sections, to the topic's log: two items
//!   written per produce, whatever its partitions. So an acknowledged record is durable,
//!   offsets in a partition are dense and unique, and a producer that dies between the PUT
//!   and the commit leaves no gap and nothing visible;
//! - a consumer reads only below the high watermark it read first, and every log entry
//!   below it was written in the same transaction that moved it: no offset that becomes
//!   visible later can be skipped;
//! - a segment that cannot be read is an error (retried by the SDK), never silently dropped;
//! - consumer-group commits are conditional writes that never move backwards;
//! - a [`Sequenced`] batch (a producer id and a batch sequence, per partition as in Kafka's
//!   idempotent producer, or per topic for [`Stream::produce_many`]) is appended at most once:
//!   the commit transaction also moves the producer's last sequence, so a batch retried after
//!   an ambiguous commit is answered with its original offsets, never appended again;
//! - an offset that retention removed is [`StreamError::OutOfRange`], carrying the earliest
//!   offset still readable.
//!
//! Table layout (one table per topic, hash key `pk` string, range key `sk` number, TTL
//! `expires`: [`contract::TABLE`]): the head item and the log (`head`/0, `log`/<n>, and the
//! per-partition `seg#<p>`/<base> entries of earlier builds; see the `index` module);
//! `group#<g>#<p>`/0 holds `committed`; `producer#<id>#<p>`/0 (or `producer#<id>`/0 for a
//! topic-wide sequence) holds a producer's last `seq` with the `parts` it was given
//! (`p:base:count,...`) and its `object` (expiring with the log). Segment objects live under
//! [`contract::segments_prefix`].

pub mod contract;
pub mod http;
mod index;
mod segment;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use adf_common::metrics::{Metrics, Unit};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use bytes::Bytes;

use index::{Head, Indexed};
pub use index::{LogEntry, Section};
pub use segment::Record;

/// The CloudWatch namespace of the stream's metrics.
pub const METRICS_NAMESPACE: &str = "ADF/Stream";
/// The largest record value accepted.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// The longest consumer-group name.
pub const MAX_GROUP_LEN: usize = 128;

/// Checks a consumer-group name: 1 to [`MAX_GROUP_LEN`] letters, digits, `.`, `_` or `-` (it
/// is part of the group's key in the offsets table, where `#` separates fields).
pub fn check_group(group: &str) -> Result<(), StreamError> {
    check_name("group name", group)
}

/// Checks a name that becomes part of a key: 1 to [`MAX_GROUP_LEN`] of `[A-Za-z0-9._-]`.
fn check_name(what: &str, name: &str) -> Result<(), StreamError> {
    let ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if name.is_empty() || name.len() > MAX_GROUP_LEN || !ok {
        return Err(StreamError::Invalid(format!(
            "invalid {what} {name:?}: use 1 to {MAX_GROUP_LEN} letters, digits, '.', '_' or '-'"
        )));
    }
    Ok(())
}

/// A batch's place in its producer's sequence: a producer numbers the batches it sends to
/// each partition 0, 1, 2, ... and sends the next only once the last is acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequenced {
    /// The producer's id: 1 to 128 of `[A-Za-z0-9._-]`, unique to one producer.
    pub producer: String,
    /// The batch's number in this partition.
    pub sequence: u64,
}
/// The largest batch accepted: Lambda's 6 MB payload limit.
pub const MAX_BATCH_BYTES: usize = 6 * 1024 * 1024;
/// The most records in one batch.
pub const MAX_BATCH_RECORDS: usize = 10_000;
/// How long a produce keeps retrying its commit while other producers win the partition.
const COMMIT_DEADLINE: Duration = Duration::from_secs(60);
/// How often a long poll ([`Stream::wait_for_records`]) reads the high watermarks: the most it
/// adds to the produce-to-consume latency, for one consistent read of each partition's head
/// per poll.
pub const WAIT_POLL: Duration = Duration::from_millis(50);
/// The longest a long poll waits, well under the stream Lambda's timeout.
pub const MAX_WAIT: Duration = Duration::from_secs(20);
/// Upper bound of the random pause between commit attempts (full jitter, doubling from 2 ms).
const MAX_COMMIT_PAUSE_MS: u64 = 250;
/// The most partitions one [`Stream::produce_many`] reaches: the sections of one object, named
/// in one log entry.
pub const MAX_PRODUCE_PARTITIONS: usize = 96;

/// Why a stream operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A record, key or batch is over a limit.
    #[error("{0} is too large")]
    TooLarge(&'static str),
    /// A request broke a rule (empty batch, unknown partition, bad offset).
    #[error("{0}")]
    Invalid(String),
    /// A segment object could not be decoded.
    #[error("corrupt segment: {0}")]
    Corrupt(String),
    /// zstd failed.
    #[error("compression: {0}")]
    Codec(std::io::Error),
    /// An AWS call failed.
    #[error("{op}: {cause}")]
    Aws {
        /// The operation.
        op: &'static str,
        /// The SDK error with its causes.
        cause: String,
    },
    /// Too many producers raced for the same partition.
    #[error("partition {0} is contended; the batch was not written, retry it")]
    Contended(u32),
    /// AWS throttled a call or was unavailable, after the SDK's own retries: retry later.
    #[error("{op}: {cause}; retry later")]
    Busy {
        /// The operation.
        op: &'static str,
        /// The SDK error with its causes.
        cause: String,
    },
    /// The offset is older than the oldest record retention kept.
    #[error(
        "offset {offset} of partition {partition} is out of range: retention removed it; the earliest offset is {earliest}"
    )]
    OutOfRange {
        /// The partition.
        partition: u32,
        /// The offset asked for.
        offset: u64,
        /// The earliest offset still readable (the high watermark when none is).
        earliest: u64,
    },
    /// A sequenced batch does not follow its producer's last one.
    #[error("producer {producer} on {place}: {why}")]
    Sequence {
        /// The producer.
        producer: String,
        /// Where the sequence runs: `partition <p>`, or `topic <name>` for
        /// [`Stream::produce_many`].
        place: String,
        /// What the sequence should have been.
        why: String,
    },
    /// A group commit would move backwards.
    #[error("group {group} partition {partition} already committed {committed}; commits never go backwards")]
    Stale {
        /// The group.
        group: String,
        /// The partition.
        partition: u32,
        /// What is committed.
        committed: u64,
    },
}

/// AWS error codes that mean "too many requests" or "try again": [`StreamError::Busy`].
const BUSY_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "SlowDown",
    "ServiceUnavailable",
    "InternalServerError",
    "InternalError",
];

fn aws<E, R>(op: &'static str) -> impl FnOnce(SdkError<E, R>) -> StreamError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    move |e| {
        let busy = match &e {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
            _ => e.code().is_some_and(|c| BUSY_CODES.contains(&c)),
        };
        let cause = adf_common::error_chain(&e);
        if busy { StreamError::Busy { op, cause } } else { StreamError::Aws { op, cause } }
    }
}

/// Where a topic lives.
#[derive(Clone, Debug)]
pub struct TopicConfig {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: u32,
    /// Bucket of the segments.
    pub bucket: String,
    /// Key prefix inside the bucket (empty or ending in `/`).
    pub prefix: String,
    /// The offsets and index table.
    pub table: String,
    /// Days before log entries expire (the bucket's lifecycle expires the objects).
    pub retention_days: u32,
    /// zstd-compress segments.
    pub compress: bool,
}

/// Where to put a batch.
#[derive(Clone, Debug)]
pub enum Partitioning {
    /// This partition.
    Partition(u32),
    /// The partition of the first record's key (a stable hash), or round-robin without keys.
    ByKey,
}

/// A produced batch's place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Produced {
    /// Partition.
    pub partition: u32,
    /// Offset of the first record; the rest follow densely.
    pub base_offset: u64,
    /// Records written.
    pub count: u64,
    /// The batch had been committed before, by this producer with this sequence: these are
    /// the offsets it got then.
    pub duplicate: bool,
}

/// A consumed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumed {
    /// Its offset.
    pub offset: u64,
    /// Its key.
    pub key: Option<Bytes>,
    /// Its value.
    pub value: Bytes,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// What a consume returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Records in offset order.
    pub records: Vec<Consumed>,
    /// The offset to ask for next.
    pub next_offset: u64,
    /// The partition's high watermark when read.
    pub high_watermark: u64,
}

/// A topic's produce and consume engine.
#[derive(Debug)]
pub struct Stream {
    s3: aws_sdk_s3::Client,
    ddb: aws_sdk_dynamodb::Client,
    topic: TopicConfig,
    round_robin: AtomicU32,
    metrics: Metrics,
    /// Per partition, the offset its last read stopped at and the log sequence to read on
    /// from: a consumer reading on finds its next sections without searching the log.
    resume: Mutex<HashMap<u32, (u64, u64)>>,
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn num(item: &HashMap<String, AttributeValue>, k: &str) -> Option<u64> {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Stream {
    /// An engine for `topic` over the given clients.
    pub fn new(s3: aws_sdk_s3::Client, ddb: aws_sdk_dynamodb::Client, topic: TopicConfig) -> Self {
        Self { s3, ddb, topic, round_robin: AtomicU32::new(0), metrics: Metrics::off(), resume: Mutex::default() }
    }

    /// The same engine emitting its produce and consume counts, bytes and durations to
    /// `metrics` (namespace [`METRICS_NAMESPACE`]).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The topic.
    pub fn topic(&self) -> &TopicConfig {
        &self.topic
    }

    /// Creates the bucket and the table this engine expects ([`contract::TABLE`]: hash key
    /// `pk` string, range key `sk` number, on-demand; TTL left off), for use without Terraform
    /// and in tests. Both must not exist.
    pub async fn create_storage(&self) -> Result<(), StreamError> {
        let t = &self.topic;
        self.s3.create_bucket().bucket(&t.bucket).send().await.map_err(aws("CreateBucket"))?;
        contract::TABLE
            .create(&self.ddb, &t.table)
            .await
            .map_err(|cause| StreamError::Aws { op: "CreateTable", cause })?;
        Ok(())
    }

    /// The partition of `key`: a stable hash (CRC-32) modulo the partition count.
    pub fn partition_for(&self, key: &[u8]) -> u32 {
        crc32fast::hash(key) % self.topic.partitions.max(1)
    }

    fn check_partition(&self, p: u32) -> Result<(), StreamError> {
        if p >= self.topic.partitions {
            return Err(StreamError::Invalid(format!(
                "topic {} has partitions 0..{}; there is no partition {p}",
                self.topic.name, self.topic.partitions
            )));
        }
        Ok(())
    }

    /// Appends `records` to one partition as one segment. Returns where they went.
    pub async fn produce(&self, partitioning: Partitioning, records: Vec<Record>) -> Result<Produced, StreamError> {
        self.produce_sequenced(partitioning, records, None).await
    }

    /// As [`Stream::produce`], at most once for a [`Sequenced`] batch: a batch whose sequence
    /// its producer already committed to the partition is answered with the offsets it got
    /// then ([`Produced::duplicate`]) and not appended again.
    pub async fn produce_sequenced(
        &self,
        partitioning: Partitioning,
        records: Vec<Record>,
        sequenced: Option<&Sequenced>,
    ) -> Result<Produced, StreamError> {
        check_batch(records.iter())?;
        let partition = match partitioning {
            Partitioning::Partition(p) => p,
            Partitioning::ByKey => match &records[0].key {
                Some(k) => self.partition_for(k),
                // A retry must reach the partition the first attempt did.
                None if sequenced.is_some() => {
                    return Err(StreamError::Invalid("a sequenced batch needs a partition or a key".into()));
                }
                None => self.next_round_robin(),
            },
        };
        self.check_partition(partition)?;
        let scope = sequenced.map(|sq| Scope {
            item: format!("producer#{}#{partition}", sq.producer),
            place: format!("partition {partition}"),
            sq,
        });
        let mut produced = self.measured(vec![(partition, records)], scope).await?;
        Ok(produced.remove(0))
    }

    /// Appends records to many partitions at once (`batches`: each partition once, with its
    /// records in order) as one segment object, one section per partition, whose offsets are
    /// all committed in one transaction. Returns where each batch went, in the same order.
    ///
    /// A [`Sequenced`] call numbers the producer's calls to this topic 0, 1, 2, ... (one
    /// sequence for the whole topic, not one per partition), with the same at-most-once answer
    /// as [`Stream::produce_sequenced`]. At most [`MAX_PRODUCE_PARTITIONS`] partitions.
    pub async fn produce_many(
        &self,
        batches: Vec<(u32, Vec<Record>)>,
        sequenced: Option<&Sequenced>,
    ) -> Result<Vec<Produced>, StreamError> {
        if batches.len() > MAX_PRODUCE_PARTITIONS {
            return Err(StreamError::Invalid(format!(
                "a produce reaches at most {MAX_PRODUCE_PARTITIONS} partitions, not {}",
                batches.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for (p, records) in &batches {
            self.check_partition(*p)?;
            if records.is_empty() || !seen.insert(*p) {
                return Err(StreamError::Invalid(format!("partition {p} needs one non-empty batch")));
            }
        }
        check_batch(batches.iter().flat_map(|(_, r)| r))?;
        let scope = sequenced.map(|sq| Scope {
            item: format!("producer#{}", sq.producer),
            place: format!("topic {}", self.topic.name),
            sq,
        });
        self.measured(batches, scope).await
    }

    /// `records` grouped by their key's partition (keyless ones together, in the next
    /// round-robin partition), each partition once, in the order it first appears: what
    /// [`Stream::produce_many`] takes.
    pub fn by_key(&self, records: Vec<Record>) -> Vec<(u32, Vec<Record>)> {
        let mut keyless = None;
        let placed = records.into_iter().map(|r| {
            let p = match &r.key {
                Some(k) => self.partition_for(k),
                None => *keyless.get_or_insert_with(|| self.next_round_robin()),
            };
            (p, r)
        });
        group_by_partition(placed).0
    }

    /// The next partition of a keyless batch.
    pub fn next_round_robin(&self) -> u32 {
        self.round_robin.fetch_add(1, Ordering::Relaxed) % self.topic.partitions.max(1)
    }

    /// [`Stream::append`], with its metrics.
    async fn measured(
        &self,
        batches: Vec<(u32, Vec<Record>)>,
        scope: Option<Scope<'_>>,
    ) -> Result<Vec<Produced>, StreamError> {
        let started = std::time::Instant::now();
        let bytes: usize = batches.iter().flat_map(|(_, r)| r).map(record_bytes).sum();
        let produced = self.append(batches, scope).await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let count: u64 = produced.iter().map(|p| p.count).sum();
        self.metrics
            .emit(&[
                ("Produced", count as f64, Unit::Count),
                ("ProducedBytes", bytes as f64, Unit::Bytes),
                ("ProduceLatency", ms, Unit::Milliseconds),
            ])
            .await;
        Ok(produced)
    }

    /// Writes `batches` as one segment object, then commits their offsets, at most once for a
    /// sequenced producer's `scope`.
    async fn append(
        &self,
        mut batches: Vec<(u32, Vec<Record>)>,
        scope: Option<Scope<'_>>,
    ) -> Result<Vec<Produced>, StreamError> {
        if let Some(scope) = &scope {
            check_name("producer id", &scope.sq.producer)?;
        }
        let ts = now_ms();
        let mut body = Vec::new();
        let mut sections = Vec::with_capacity(batches.len());
        for (partition, records) in &mut batches {
            for r in records.iter_mut().filter(|r| r.timestamp == 0) {
                r.timestamp = ts;
            }
            let part = segment::encode(records, self.topic.compress)?;
            let at = body.len() as u64;
            body.extend_from_slice(&part);
            let (count, len) = (records.len() as u64, part.len() as u64);
            sections.push(Section { partition: *partition, base: 0, count, at, len });
        }
        // One partition's objects sit under its number, as they always have; others under `m/`.
        let dir = match sections.as_slice() {
            [one] => one.partition.to_string(),
            _ => "m".to_string(),
        };
        let key = format!(
            "{}{dir}/{:016x}-{:08x}.seg",
            contract::segments_prefix(&self.topic.prefix, &self.topic.name),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
            crc32fast::hash(&body) ^ std::process::id()
        );
        // 1. The segment is durable before any offset exists.
        self.s3
            .put_object()
            .bucket(&self.topic.bucket)
            .key(&key)
            .body(body.into())
            .content_type("application/vnd.adf.segment")
            .send()
            .await
            .map_err(aws("PutObject"))?;
        // 2. Offsets: advance the high watermarks and log the object in one transaction.
        let segment = Segment { key: &key, sections };
        let started = std::time::Instant::now();
        let random = std::collections::hash_map::RandomState::new();
        // The head a conflict returned: the next attempt commits onto it without reading it.
        let mut current = None;
        for attempt in 0u32.. {
            let head = match current.take() {
                Some(head) => head,
                None => self.head().await?,
            };
            match self.commit_segment(&segment, &head, scope.as_ref()).await {
                Ok(()) => {
                    return Ok(segment
                        .sections
                        .iter()
                        .map(|s| Produced {
                            partition: s.partition,
                            base_offset: head.hw(s.partition),
                            count: s.count,
                            duplicate: false,
                        })
                        .collect());
                }
                Err(Commit::Conflict(returned)) => {
                    if let Some(scope) = &scope
                        && let Some(answer) = self.settled(&segment, scope).await?
                    {
                        return answer;
                    }
                    if started.elapsed() >= COMMIT_DEADLINE {
                        break;
                    }
                    // Another producer won these bases; our segment is still valid at the next,
                    // which the conflict returned (else it is read again). The first retry goes
                    // at once; later ones after a full-jitter backoff, which spreads the
                    // contenders out.
                    current = returned;
                    if attempt == 0 && current.is_some() {
                        continue;
                    }
                    let cap = (2u64 << attempt.min(7)).min(MAX_COMMIT_PAUSE_MS);
                    let pause = std::hash::BuildHasher::hash_one(&random, (attempt, &key)) % cap;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                // Ambiguous: the commit may have happened, so the object must stay.
                Err(Commit::Failed(e)) => return Err(e),
            }
        }
        // Every attempt conflicted, so nothing references the object: remove it.
        self.discard(&key).await;
        Err(StreamError::Contended(segment.sections.first().map_or(0, |s| s.partition)))
    }

    /// After a conflict, what the producer's last committed batch says about `segment`: its
    /// earlier answer when it is this batch (committed by an attempt whose answer was lost, or
    /// by an earlier request), an error when the sequence does not follow, `None` when the
    /// conflict was another producer's and the commit should be tried again.
    async fn settled(
        &self,
        segment: &Segment<'_>,
        Scope { item, place, sq }: &Scope<'_>,
    ) -> Result<Option<Result<Vec<Produced>, StreamError>>, StreamError> {
        let item = self.item(item.as_str(), 0).await?.unwrap_or_default();
        let why = match num(&item, "seq") {
            Some(last) if last == sq.sequence => {
                let object = item.get("object").and_then(|v| v.as_s().ok());
                if object.is_none_or(|o| o != segment.key) {
                    self.discard(segment.key).await;
                }
                let parts = item.get("parts").and_then(|v| v.as_s().ok()).map_or("", String::as_str);
                let corrupt = || StreamError::Corrupt(format!("producer item {parts:?}"));
                return Ok(Some(index::produced(parts).ok_or_else(corrupt)));
            }
            Some(last) if last + 1 == sq.sequence => return Ok(None),
            None if sq.sequence == 0 => return Ok(None),
            Some(last) => format!("its last batch was {last}, so the next is {}, not {}", last + 1, sq.sequence),
            None => format!("it has no batch yet, so the first is 0, not {}", sq.sequence),
        };
        self.discard(segment.key).await;
        Ok(Some(Err(StreamError::Sequence { producer: sq.producer.clone(), place: place.clone(), why })))
    }

    /// The item at (`pk`, `sk`), read consistently; `None` when there is none.
    pub(crate) async fn item(
        &self,
        pk: impl Into<String>,
        sk: u64,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StreamError> {
        let get = self.ddb.get_item().table_name(&self.topic.table).key("pk", s(pk)).key("sk", n(sk));
        Ok(get.consistent_read(true).send().await.map_err(aws("GetItem"))?.item)
    }

    /// Removes a segment object that no index entry references (best effort: the bucket's
    /// lifecycle removes what is left).
    async fn discard(&self, key: &str) {
        let _ = self.s3.delete_object().bucket(&self.topic.bucket).key(key).send().await;
    }

    /// One transaction: every section's partition moves from its base in `head` (the head
    /// item, conditioned on each and on the log's last sequence), the object becomes the log's
    /// next entry, and a sequenced producer's last batch moves only from the one before.
    async fn commit_segment(&self, seg: &Segment<'_>, at: &Head, scope: Option<&Scope<'_>>) -> Result<(), Commit> {
        let t = &self.topic;
        let invalid = |e: aws_sdk_dynamodb::error::BuildError| Commit::Failed(StreamError::Invalid(e.to_string()));
        let expires = AttributeValue::N((now_ms() / 1000 + i64::from(t.retention_days) * 86_400).to_string());
        let seq = at.n + 1;
        let mut head = Update::builder()
            .table_name(&t.table)
            .key("pk", s(index::HEAD))
            .key("sk", n(0))
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":seq", n(seq))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut set = vec!["#n = :seq".to_string()];
        let mut conditions =
            vec![if at.n == 0 { "attribute_not_exists(#n)".to_string() } else { "#n = :last".to_string() }];
        if at.n > 0 {
            head = head.expression_attribute_values(":last", n(at.n));
        }
        let mut parts = Vec::with_capacity(seg.sections.len());
        for (i, sec) in seg.sections.iter().enumerate() {
            let base = at.hw(sec.partition);
            head = head
                .expression_attribute_names(format!("#h{i}"), index::hw_attr(sec.partition))
                .expression_attribute_names(format!("#l{i}"), index::last_attr(sec.partition))
                .expression_attribute_values(format!(":b{i}"), n(base))
                .expression_attribute_values(format!(":n{i}"), n(base + sec.count));
            set.push(format!("#h{i} = :n{i}, #l{i} = :seq"));
            // A build before the log moves `h<p>` alone: the watermark is conditioned too.
            conditions.push(if base == 0 {
                format!("(attribute_not_exists(#h{i}) OR #h{i} = :b{i})")
            } else {
                format!("#h{i} = :b{i}")
            });
            parts.push(Section { base, ..*sec });
        }
        let encoded = index::encode_parts(&parts);
        let log = Put::builder()
            .table_name(&t.table)
            .item("pk", s(index::LOG))
            .item("sk", n(seq))
            .item("object", s(seg.key))
            .item("parts", s(&encoded))
            .item("after", s(index::after(at, &parts, t.partitions)))
            .item("expires", expires.clone())
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(invalid)?;
        let mut tx = self.ddb.transact_write_items().transact_items(TransactWriteItem::builder().put(log).build());
        let head = head
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression(conditions.join(" AND "))
            .build()
            .map_err(invalid)?;
        tx = tx.transact_items(TransactWriteItem::builder().update(head).build());
        if let Some(Scope { item, sq, .. }) = scope {
            // The producer's last batch moves in the same transaction, only from the one before.
            let mut last = Put::builder()
                .table_name(&t.table)
                .item("pk", s(item))
                .item("sk", n(0))
                .item("seq", n(sq.sequence))
                .item("parts", s(encoded))
                .item("object", s(seg.key))
                .item("expires", expires)
                .expression_attribute_names("#seq", "seq");
            last = match sq.sequence.checked_sub(1) {
                None => last.condition_expression("attribute_not_exists(#seq)"),
                Some(prev) => last.condition_expression("#seq = :prev").expression_attribute_values(":prev", n(prev)),
            };
            tx = tx.transact_items(TransactWriteItem::builder().put(last.build().map_err(invalid)?).build());
        }
        match tx.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => {
                // The head update is the transaction's second item; a failed condition returns it.
                let reasons = match e.err() {
                    TransactWriteItemsError::TransactionCanceledException(c) => c.cancellation_reasons(),
                    _ => &[],
                };
                Err(Commit::Conflict(reasons.get(1).and_then(|r| r.item()).map(Head::from_item)))
            }
            Err(e) => Err(Commit::Failed(aws("TransactWriteItems")(e))),
        }
    }

    /// The partition's high watermark: the offset the next record will get.
    pub async fn high_watermark(&self, p: u32) -> Result<u64, StreamError> {
        Ok(self.high_watermarks(&[p]).await?.get(&p).copied().unwrap_or(0))
    }

    /// The high watermarks of `partitions`, read together: one consistent `GetItem` of the
    /// head item, which holds them all.
    pub async fn high_watermarks(&self, partitions: &[u32]) -> Result<HashMap<u32, u64>, StreamError> {
        for p in partitions {
            self.check_partition(*p)?;
        }
        let head = self.head().await?;
        Ok(partitions.iter().map(|p| (*p, head.hw(*p))).collect())
    }

    /// Waits up to `wait` for records past any of `positions` (partition, next offset to
    /// read): a long poll, reading the high watermarks every [`WAIT_POLL`]. Returns the
    /// partitions that have records there, empty when `wait` ran out first.
    pub async fn wait_for_records(&self, positions: &[(u32, u64)], wait: Duration) -> Result<Vec<u32>, StreamError> {
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        let partitions: Vec<u32> = positions.iter().map(|(p, _)| *p).collect();
        loop {
            let hws = self.high_watermarks(&partitions).await?;
            let ready: Vec<u32> = positions
                .iter()
                .filter(|(p, offset)| hws.get(p).is_some_and(|hw| hw > offset))
                .map(|(p, _)| *p)
                .collect();
            if !ready.is_empty() || tokio::time::Instant::now() + WAIT_POLL > deadline {
                return Ok(ready);
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// A segment's bytes (only its section's, with a ranged GET, when it has one); `None`
    /// when the bucket's lifecycle removed the object.
    async fn fetch(&self, entry: &Indexed) -> Result<Option<Vec<u8>>, StreamError> {
        let mut get = self.s3.get_object().bucket(&self.topic.bucket).key(&entry.object);
        if let Some((at, len)) = entry.range.filter(|(_, len)| *len > 0) {
            get = get.range(format!("bytes={at}-{}", at + len - 1));
        }
        let out = match get.send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(aws("GetObject")(e)),
        };
        let body =
            out.body.collect().await.map_err(|e| StreamError::Busy { op: "GetObject (body)", cause: e.to_string() })?;
        Ok(Some(body.to_vec()))
    }

    /// Reads records of partition `p` from `offset`, at most `max_records` and about
    /// `max_bytes` (at least one record is returned when there is one).
    pub async fn consume(
        &self,
        p: u32,
        offset: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Batch, StreamError> {
        let started = std::time::Instant::now();
        let batch = self.read(p, offset, max_records, max_bytes).await?;
        let bytes: usize = batch.records.iter().map(|r| r.value.len() + r.key.as_ref().map_or(0, |k| k.len())).sum();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        self.metrics
            .emit(&[
                ("Consumed", batch.records.len() as f64, Unit::Count),
                ("ConsumedBytes", bytes as f64, Unit::Bytes),
                ("ConsumeLatency", ms, Unit::Milliseconds),
            ])
            .await;
        Ok(batch)
    }

    async fn read(&self, p: u32, offset: u64, max_records: usize, max_bytes: usize) -> Result<Batch, StreamError> {
        self.check_partition(p)?;
        let head = self.head().await?;
        let hw = head.hw(p);
        if offset > hw {
            return Err(StreamError::Invalid(format!(
                "offset {offset} is past the high watermark {hw} of partition {p}"
            )));
        }
        let mut batch = Batch { records: Vec::new(), next_offset: offset, high_watermark: hw };
        if offset == hw || max_records == 0 {
            return Ok(batch);
        }
        // Where the last read of `p` stopped, if it stopped at `offset`.
        let mut from = self.lock_resume().get(&p).filter(|(o, _)| *o == offset).map(|(_, seq)| *seq);
        let mut bytes = 0usize;
        let mut next = offset;
        // Offsets are dense and logged in the transaction that made them, so a section that
        // is missing was expired by retention (the log's TTL or the bucket's lifecycle).
        'sections: while next < hw {
            let sections = self.sections_at(p, next, &head, &mut from).await?;
            if sections.first().is_none_or(|i| i.base > next) {
                if batch.records.is_empty() {
                    return Err(self.out_of_range(p, offset, next, &head).await?);
                }
                break;
            }
            for entry in sections {
                if entry.base > next {
                    // Retention removed what lies between: what was read stands.
                    break 'sections;
                }
                let Some(data) = self.fetch(&entry).await? else {
                    if batch.records.is_empty() {
                        return Err(self.out_of_range(p, offset, entry.end(), &head).await?);
                    }
                    break 'sections;
                };
                let skip = usize::try_from(next.saturating_sub(entry.base)).unwrap_or(usize::MAX);
                for (i, r) in segment::decode(&data, skip)?.into_iter().enumerate() {
                    let o = entry.base + skip as u64 + i as u64;
                    if o >= hw
                        || batch.records.len() >= max_records
                        || (bytes >= max_bytes && !batch.records.is_empty())
                    {
                        // Stopped inside this section: the next read starts from its entry.
                        from = entry.seq;
                        next = o.min(hw);
                        break 'sections;
                    }
                    bytes += r.value.len();
                    batch.records.push(Consumed { offset: o, key: r.key, value: r.value, timestamp: r.timestamp });
                }
                next = entry.end();
                if next >= hw {
                    break 'sections;
                }
            }
        }
        batch.next_offset = next;
        let mut resume = self.lock_resume();
        match from {
            Some(seq) => resume.insert(p, (next, seq)),
            None => resume.remove(&p),
        };
        Ok(batch)
    }

    /// The per-partition resume points, even if a reader panicked holding them (they are
    /// hints: a wrong one costs a search, never a wrong record).
    fn lock_resume(&self) -> std::sync::MutexGuard<'_, HashMap<u32, (u64, u64)>> {
        self.resume.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answer for `offset` when retention removed it: out of range, with the earliest
    /// offset at or after `from` whose segment is still indexed and stored (the high
    /// watermark when none is). Looks one index page ahead; past that, the earliest it names
    /// may itself turn out to be out of range, and the next read says so.
    async fn out_of_range(&self, p: u32, offset: u64, from: u64, head: &Head) -> Result<StreamError, StreamError> {
        let mut earliest = head.hw(p);
        if from < earliest {
            for entry in self.sections_after(p, from, head).await? {
                earliest = entry.end();
                let found = self.s3.head_object().bucket(&self.topic.bucket).key(&entry.object).send().await;
                match found {
                    Ok(_) => {
                        earliest = entry.base.max(from);
                        break;
                    }
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {}
                    Err(e) => return Err(aws("HeadObject")(e)),
                }
            }
        }
        Ok(StreamError::OutOfRange { partition: p, offset, earliest })
    }

    /// Commits `offset` (the next to read) for `group` on partition `p`; never backwards.
    pub async fn commit(&self, group: &str, p: u32, offset: u64) -> Result<(), StreamError> {
        check_group(group)?;
        let hw = self.high_watermark(p).await?;
        if offset > hw {
            return Err(StreamError::Invalid(format!("cannot commit {offset}: past the high watermark {hw}")));
        }
        let r = self
            .ddb
            .update_item()
            .table_name(&self.topic.table)
            .key("pk", s(format!("group#{group}#{p}")))
            .key("sk", n(0))
            .update_expression("SET committed = :o")
            .condition_expression("attribute_not_exists(committed) OR committed <= :o")
            .expression_attribute_values(":o", n(offset))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                let committed = self.committed(group, p).await?.unwrap_or(0);
                Err(StreamError::Stale { group: group.to_string(), partition: p, committed })
            }
            Err(e) => Err(aws("UpdateItem")(e)),
        }
    }

    /// The offset `group` committed on partition `p`, if any.
    pub async fn committed(&self, group: &str, p: u32) -> Result<Option<u64>, StreamError> {
        check_group(group)?;
        self.check_partition(p)?;
        Ok(self.item(format!("group#{group}#{p}"), 0).await?.as_ref().and_then(|i| num(i, "committed")))
    }
}

enum Commit {
    /// Another commit moved the head first: the head it left, when DynamoDB returned it.
    Conflict(Option<Head>),
    Failed(StreamError),
}

/// A sequenced producer's place: its item's key, where its sequence runs (for errors), and
/// its batch's number.
struct Scope<'a> {
    item: String,
    place: String,
    sq: &'a Sequenced,
}

/// A segment object written and waiting for its offsets: its sections' bases are set when
/// committed.
struct Segment<'a> {
    key: &'a str,
    sections: Vec<Section>,
}

/// Batches of records, each partition's once: what [`Stream::produce_many`] takes.
pub type Batches = Vec<(u32, Vec<Record>)>;

/// Records grouped by their partition, each partition once, in the order it first appears
/// (what [`Stream::produce_many`] takes); and each record's partition and rank within it, in
/// the order given.
fn group_by_partition(placed: impl IntoIterator<Item = (u32, Record)>) -> (Batches, Vec<(u32, u64)>) {
    let mut batches: Vec<(u32, Vec<Record>)> = Vec::new();
    let mut ranks = Vec::new();
    for (p, r) in placed {
        let i = batches.iter().position(|(bp, _)| *bp == p).unwrap_or_else(|| {
            batches.push((p, Vec::new()));
            batches.len() - 1
        });
        ranks.push((p, batches[i].1.len() as u64));
        batches[i].1.push(r);
    }
    (batches, ranks)
}

/// A record's counted bytes: value and key.
fn record_bytes(r: &Record) -> usize {
    r.value.len() + r.key.as_ref().map_or(0, Bytes::len)
}

/// Checks one produce's records against the limits: at least one, at most
/// [`MAX_BATCH_RECORDS`] and [`MAX_BATCH_BYTES`], none over [`MAX_RECORD_BYTES`].
fn check_batch<'a>(records: impl Iterator<Item = &'a Record>) -> Result<(), StreamError> {
    let (mut count, mut total) = (0usize, 0usize);
    for r in records {
        if r.value.len() > MAX_RECORD_BYTES {
            return Err(StreamError::TooLarge("record"));
        }
        count += 1;
        total += record_bytes(r);
    }
    if count == 0 {
        return Err(StreamError::Invalid("a batch needs at least one record".into()));
    }
    if count > MAX_BATCH_RECORDS {
        return Err(StreamError::TooLarge("batch (records)"));
    }
    if total > MAX_BATCH_BYTES {
        return Err(StreamError::TooLarge("batch (bytes)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_checked() {
        for good in ["billing", "svc.v2_a-1", &"g".repeat(MAX_GROUP_LEN)] {
            assert!(check_group(good).is_ok(), "{good}");
        }
        for bad in ["", "a#1", "a b", "a/b", &"g".repeat(MAX_GROUP_LEN + 1)] {
            assert!(matches!(check_group(bad), Err(StreamError::Invalid(_))), "{bad:?}");
        }
    }

    #[test]
    fn keys_map_to_stable_partitions() {
        let conf =
            aws_sdk_s3::Config::builder().behavior_version(aws_sdk_s3::config::BehaviorVersion::latest()).build();
        let ddb = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let stream = Stream::new(
            aws_sdk_s3::Client::from_conf(conf),
            aws_sdk_dynamodb::Client::from_conf(ddb),
            TopicConfig {
                name: "t".into(),
                partitions: 4,
                bucket: "b".into(),
                prefix: String::new(),
                table: "t".into(),
                retention_days: 1,
                compress: true,
            },
        );
        let p = stream.partition_for(b"customer-42");
        assert!(p < 4);
        assert_eq!(p, stream.partition_for(b"customer-42"));
        let spread: std::collections::BTreeSet<u32> =
            (0..100).map(|i| stream.partition_for(format!("k{i}").as_bytes())).collect();
        assert_eq!(spread.len(), 4);
    }
}
