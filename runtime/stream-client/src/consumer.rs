//! A consumer: reads one partition, several, or all of them, from an offset or from a consumer
//! group's committed offsets, and commits what it has returned.

use std::time::Duration;

use crate::{Client, Error, Record};

/// Where a [`Consumer`] starts in each partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// Offset 0 (or the oldest record retention kept).
    Beginning,
    /// The high watermark: only records produced from now on.
    End,
    /// The last `n` records of each partition.
    Last(u64),
    /// This offset in every partition read.
    Offset(u64),
    /// The group's committed offset (0 where it committed none). Needs a group.
    Committed,
}

/// What a [`Consumer`] reads and how.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The partitions to read; `None` for all of them.
    pub partitions: Option<Vec<u32>>,
    /// Where to start.
    pub start: Start,
    /// The consumer group that commits go to.
    pub group: Option<String>,
    /// Records asked for per request (1 to 10,000; 500).
    pub limit: u32,
    /// Commit the records returned by one `next_batch` when the next one is asked for.
    pub auto_commit: bool,
    /// When caught up, wait for new records (tail mode): long polls of up to this long each
    /// (at most 20 s), answered by the topic as soon as a record arrives, one request for all
    /// the partitions. `None` returns an empty batch instead.
    pub wait: Option<Duration>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self { partitions: None, start: Start::Beginning, group: None, limit: 500, auto_commit: false, wait: None }
    }
}

/// Where a consumer is in one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// At the group's committed offset, not read yet.
    Committed,
    /// The next offset to read.
    At(u64),
}

#[derive(Debug)]
struct Cursor {
    partition: u32,
    position: Position,
    /// Records were read since the last commit.
    unsaved: bool,
}

/// Offsets a [`Consumer`] skipped because retention had removed them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expired {
    /// The partition.
    pub partition: u32,
    /// The first offset skipped.
    pub from: u64,
    /// The offset reading went on from: the earliest one retention kept.
    pub to: u64,
}

/// Reads a topic batch by batch. An offset that retention removed is skipped to the earliest
/// one kept (as Kafka's `auto.offset.reset=earliest`), and reported by
/// [`Consumer::take_expired`].
#[derive(Debug)]
pub struct Consumer {
    client: Client,
    group: Option<String>,
    limit: u32,
    auto_commit: bool,
    wait: Option<Duration>,
    cursors: Vec<Cursor>,
    next: usize,
    expired: Vec<Expired>,
}

impl Consumer {
    /// A consumer of `client`'s topic; calls `describe` when it needs the partitions or their
    /// high watermarks.
    pub async fn new(client: Client, config: ConsumerConfig) -> Result<Self, Error> {
        if config.start == Start::Committed && config.group.is_none() {
            return Err(Error::Usage("starting from committed offsets needs a consumer group".into()));
        }
        if config.auto_commit && config.group.is_none() {
            return Err(Error::Usage("auto-commit needs a consumer group".into()));
        }
        let needs_describe = config.partitions.is_none() || matches!(config.start, Start::End | Start::Last(_));
        let described = if needs_describe { client.describe().await?.partitions } else { Vec::new() };
        let partitions = config.partitions.unwrap_or_else(|| described.iter().map(|p| p.partition).collect());
        let mut cursors = Vec::new();
        for partition in partitions {
            let high_watermark =
                || {
                    described.iter().find(|d| d.partition == partition).map(|d| d.high_watermark).ok_or_else(|| {
                        Error::NotFound(format!("topic {} has no partition {partition}", client.topic()))
                    })
                };
            let position = match config.start {
                Start::Beginning => Position::At(0),
                Start::Offset(o) => Position::At(o),
                Start::End => Position::At(high_watermark()?),
                Start::Last(n) => Position::At(high_watermark()?.saturating_sub(n)),
                Start::Committed => Position::Committed,
            };
            cursors.push(Cursor { partition, position, unsaved: false });
        }
        if cursors.is_empty() {
            return Err(Error::Usage("no partitions to read".into()));
        }
        let ConsumerConfig { group, limit, auto_commit, wait, .. } = config;
        Ok(Self { client, group, limit, auto_commit, wait, cursors, next: 0, expired: Vec::new() })
    }

    /// The next records of one partition, up to the configured limit. When every partition
    /// is caught up: waits for new records with long polls, else returns an empty batch.
    pub async fn next_batch(&mut self) -> Result<Vec<Record>, Error> {
        self.next_batch_max(self.limit).await
    }

    /// As [`Consumer::next_batch`], at most `max` records (1 to 10,000).
    pub async fn next_batch_max(&mut self, max: u32) -> Result<Vec<Record>, Error> {
        if self.auto_commit {
            self.commit().await?;
        }
        for _ in 0..self.cursors.len() {
            let i = self.next;
            self.next = (i + 1) % self.cursors.len();
            let records = self.fetch(i, max, Duration::ZERO).await?;
            if !records.is_empty() {
                return Ok(records);
            }
        }
        let Some(wait) = self.wait else { return Ok(Vec::new()) };
        // Caught up everywhere, and every position known now that each partition was read.
        loop {
            if let [_] = self.cursors.as_slice() {
                // One partition: the consume itself waits.
                let records = self.fetch(0, max, wait).await?;
                if !records.is_empty() {
                    return Ok(records);
                }
                continue;
            }
            // (cursor, partition, next offset) of every cursor.
            let positions: Vec<(usize, u32, u64)> = self
                .cursors
                .iter()
                .enumerate()
                .filter_map(|(i, c)| match c.position {
                    Position::At(o) => Some((i, c.partition, o)),
                    Position::Committed => None,
                })
                .collect();
            let after: Vec<(u32, u64)> = positions.iter().map(|(_, p, o)| (*p, *o)).collect();
            let described = self.client.describe_after(&after, wait).await?;
            for (i, partition, offset) in positions {
                let advanced =
                    described.partitions.iter().any(|d| d.partition == partition && d.high_watermark > offset);
                if advanced {
                    let records = self.fetch(i, max, Duration::ZERO).await?;
                    if !records.is_empty() {
                        return Ok(records);
                    }
                }
            }
        }
    }

    /// Commits, for the group, the next offset of every partition that returned records since
    /// the last commit.
    pub async fn commit(&mut self) -> Result<(), Error> {
        let Some(group) = &self.group else {
            return Err(Error::Usage("commit needs a consumer group".into()));
        };
        for cursor in &mut self.cursors {
            if let Position::At(offset) = cursor.position
                && cursor.unsaved
            {
                self.client.commit(group, cursor.partition, offset).await?;
                cursor.unsaved = false;
            }
        }
        Ok(())
    }

    /// The spans skipped because retention removed them since the last call.
    pub fn take_expired(&mut self) -> Vec<Expired> {
        std::mem::take(&mut self.expired)
    }

    /// The next records of cursor `i`, waiting up to `wait` for some at the high watermark.
    async fn fetch(&mut self, i: usize, max: u32, wait: Duration) -> Result<Vec<Record>, Error> {
        let Some(cursor) = self.cursors.get_mut(i) else { return Ok(Vec::new()) };
        let fetched = loop {
            let fetched = match (cursor.position, &self.group) {
                (Position::At(offset), _) => self.client.consume(cursor.partition, offset, max, wait).await,
                (Position::Committed, Some(group)) => {
                    self.client.group_consume(group, cursor.partition, max, wait).await
                }
                (Position::Committed, None) => {
                    return Err(Error::Usage("committed offsets need a consumer group".into()));
                }
            };
            match fetched {
                // Each answer names a later offset, so this ends.
                Err(Error::OutOfRange { offset, earliest, .. }) if earliest > offset => {
                    self.expired.push(Expired { partition: cursor.partition, from: offset, to: earliest });
                    cursor.position = Position::At(earliest);
                    // A group moves on too: its next commit names where reading went on.
                    cursor.unsaved = true;
                }
                other => break other?,
            }
        };
        cursor.unsaved |= !fetched.records.is_empty();
        cursor.position = Position::At(fetched.next_offset);
        Ok(fetched.records)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::Auth;
    use crate::test_server::{FakeTopic, TestServer};

    /// A topic `t` whose partition 0 holds a0..a4 and partition 1 holds b0..b2.
    async fn topic() -> (Client, TestServer) {
        let topic = FakeTopic::new(2, &[]);
        topic.fill(0, &["a0", "a1", "a2", "a3", "a4"]);
        topic.fill(1, &["b0", "b1", "b2"]);
        let server = TestServer::start(move |r| topic.handle(r)).await;
        (Client::new(&server.url, "t", Auth::None).expect("client"), server)
    }

    async fn drain(consumer: &mut Consumer) -> Result<Vec<(u32, u64, String)>, Error> {
        let mut out = Vec::new();
        loop {
            let batch = consumer.next_batch().await?;
            if batch.is_empty() {
                return Ok(out);
            }
            out.extend(batch.into_iter().map(|r| (r.partition, r.offset, r.value)));
        }
    }

    fn commits(server: &TestServer) -> Vec<serde_json::Value> {
        server.seen().into_iter().filter(|r| r.target.ends_with("/commit")).map(|r| r.body).collect()
    }

    #[tokio::test]
    async fn reads_every_partition_in_order_until_caught_up() -> Result<(), Error> {
        let (client, _server) = topic().await;
        let mut consumer = Consumer::new(client, ConsumerConfig { limit: 2, ..ConsumerConfig::default() }).await?;
        let mut got = drain(&mut consumer).await?;
        got.sort();
        let want: Vec<(u32, u64, String)> =
            (0..5).map(|o| (0, o, format!("a{o}"))).chain((0..3).map(|o| (1, o, format!("b{o}")))).collect();
        assert_eq!(got, want);
        Ok(())
    }

    #[tokio::test]
    async fn starts_at_an_offset_the_end_or_the_last_records() -> Result<(), Error> {
        let (client, _server) = topic().await;
        let start = |start| ConsumerConfig { start, ..ConsumerConfig::default() };
        let one = |start| ConsumerConfig { partitions: Some(vec![0]), start, ..ConsumerConfig::default() };
        assert_eq!(drain(&mut Consumer::new(client.clone(), one(Start::Offset(3))).await?).await?.len(), 2);
        assert!(drain(&mut Consumer::new(client.clone(), start(Start::End)).await?).await?.is_empty());
        let mut last = drain(&mut Consumer::new(client.clone(), start(Start::Last(2))).await?).await?;
        last.sort();
        let offsets: Vec<(u32, u64)> = last.iter().map(|(p, o, _)| (*p, *o)).collect();
        assert_eq!(offsets, [(0, 3), (0, 4), (1, 1), (1, 2)]);
        let unknown = Consumer::new(client, ConsumerConfig { partitions: Some(vec![7]), ..start(Start::End) }).await;
        assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");
        Ok(())
    }

    #[tokio::test]
    async fn commits_resume_a_group_where_it_stopped() -> Result<(), Error> {
        let (client, server) = topic().await;
        let group = |start| ConsumerConfig {
            partitions: Some(vec![0]),
            start,
            group: Some("g".into()),
            limit: 3,
            ..ConsumerConfig::default()
        };
        let mut first = Consumer::new(client.clone(), group(Start::Committed)).await?;
        assert_eq!(first.next_batch().await?.len(), 3);
        first.commit().await?;
        first.commit().await?;
        assert_eq!(commits(&server), [serde_json::json!({"partition": 0, "offset": 3})], "nothing new, no request");

        let mut second = Consumer::new(client.clone(), group(Start::Committed)).await?;
        let rest = drain(&mut second).await?;
        assert_eq!(rest.iter().map(|(_, o, _)| *o).collect::<Vec<_>>(), [3, 4]);
        assert!(server.seen().iter().any(|r| r.target.starts_with("/topics/t/groups/g/consume?partition=0")));

        let mut stale = Consumer::new(client, group(Start::Offset(0))).await?;
        stale.next_batch_max(1).await?;
        assert!(matches!(stale.commit().await, Err(Error::Conflict(_))));
        Ok(())
    }

    #[tokio::test]
    async fn auto_commit_commits_a_batch_when_the_next_is_asked_for() -> Result<(), Error> {
        let (client, server) = topic().await;
        let config = ConsumerConfig {
            partitions: Some(vec![1]),
            group: Some("g".into()),
            limit: 2,
            auto_commit: true,
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::new(client, config).await?;
        consumer.next_batch().await?;
        assert!(commits(&server).is_empty(), "not before the batch is processed");
        consumer.next_batch().await?;
        assert_eq!(commits(&server), [serde_json::json!({"partition": 1, "offset": 2})]);
        Ok(())
    }

    #[tokio::test]
    async fn commits_and_committed_starts_need_a_group() -> Result<(), Error> {
        let (client, _server) = topic().await;
        let committed = ConsumerConfig { start: Start::Committed, ..ConsumerConfig::default() };
        assert!(matches!(Consumer::new(client.clone(), committed).await, Err(Error::Usage(_))));
        let auto = ConsumerConfig { auto_commit: true, ..ConsumerConfig::default() };
        assert!(matches!(Consumer::new(client.clone(), auto).await, Err(Error::Usage(_))));
        let mut plain = Consumer::new(client, ConsumerConfig::default()).await?;
        assert!(matches!(plain.commit().await, Err(Error::Usage(_))));
        Ok(())
    }

    #[tokio::test]
    async fn offsets_retention_removed_are_skipped_to_the_earliest_kept_and_reported() -> Result<(), Error> {
        let server = TestServer::start(|r| {
            if r.target.contains("offset=0") {
                (410, serde_json::json!({"message": "gone", "offset": 0, "earliest_offset": 3}))
            } else {
                let record = serde_json::json!({"offset": 3, "timestamp": 1, "key": null, "value": "d"});
                (200, serde_json::json!({"records": [record], "next_offset": 4, "high_watermark": 4}))
            }
        })
        .await;
        let client = Client::new(&server.url, "t", Auth::None)?;
        let config = ConsumerConfig { partitions: Some(vec![0]), ..ConsumerConfig::default() };
        let mut consumer = Consumer::new(client, config).await?;
        let batch = consumer.next_batch().await?;
        assert_eq!(batch.iter().map(|r| (r.offset, r.value.as_str())).collect::<Vec<_>>(), [(3, "d")]);
        assert_eq!(consumer.take_expired(), [Expired { partition: 0, from: 0, to: 3 }]);
        assert!(consumer.take_expired().is_empty(), "reported once");
        Ok(())
    }

    #[tokio::test]
    async fn tail_mode_long_polls_every_partition_in_one_request() -> Result<(), Error> {
        let topic = FakeTopic::new(2, &[]);
        let fake = Arc::clone(&topic);
        let server = TestServer::start(move |r| fake.handle(r)).await;
        let client = Client::new(&server.url, "t", Auth::None)?;
        let config = ConsumerConfig { wait: Some(Duration::from_secs(5)), ..ConsumerConfig::default() };
        let mut consumer = Consumer::new(client, config).await?;
        let waiting = tokio::spawn(async move { consumer.next_batch().await });
        // Caught up: one long poll for both partitions at a time (this fake answers at once).
        let polls = |server: &TestServer| {
            server.seen().into_iter().filter(|r| r.target.starts_with("/topics/t?")).collect::<Vec<_>>()
        };
        while polls(&server).len() < 3 {
            tokio::task::yield_now().await;
        }
        assert!(polls(&server)[0].target.contains("after=0%3A0%2C1%3A0&wait_ms=5000"), "{}", polls(&server)[0].target);
        topic.fill(1, &["late"]);
        let batch = waiting.await.map_err(|e| Error::Usage(e.to_string()))??;
        assert_eq!(batch.iter().map(|r| (r.partition, r.value.as_str())).collect::<Vec<_>>(), [(1, "late")]);
        Ok(())
    }

    #[tokio::test]
    async fn one_partition_waits_in_the_consume_itself() -> Result<(), Error> {
        let topic = FakeTopic::new(1, &[]);
        let fake = Arc::clone(&topic);
        let server = TestServer::start(move |r| fake.handle(r)).await;
        let client = Client::new(&server.url, "t", Auth::None)?;
        let config = ConsumerConfig { wait: Some(Duration::from_millis(1500)), ..ConsumerConfig::default() };
        let mut consumer = Consumer::new(client, config).await?;
        let waiting = tokio::spawn(async move { consumer.next_batch().await });
        let waits = |server: &TestServer| server.seen().iter().filter(|r| r.target.contains("wait_ms=1500")).count();
        while waits(&server) < 2 {
            tokio::task::yield_now().await;
        }
        topic.fill(0, &["late"]);
        let batch = waiting.await.map_err(|e| Error::Usage(e.to_string()))??;
        assert_eq!(batch.iter().map(|r| r.value.as_str()).collect::<Vec<_>>(), ["late"]);
        Ok(())
    }
}
