//! The stream's invariants against a real emulator (moto server, or `ADF_TEST_ENDPOINT`):
//! every acknowledged record read exactly once with dense offsets and per-key order under
//! concurrent producers; no gap or visible batch from a produce killed before its commit; a
//! sequenced batch appended once however its answer is lost or retried, with 10% of AWS calls
//! failing too; expired offsets answered out of range; a polling consumer never skips; group
//! commits survive a restart and never go backwards; a long poll answers when a record
//! arrives, naming its partition, and not before.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

mod common;

use std::sync::atomic::Ordering::SeqCst;

use adf_acceptance::faults::{Fault, Faults};
use adf_stream::{Consumed, Partitioning, Record, Sequenced, Stream, StreamError};
use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use common::Fixture;

fn record(key: &str, value: String) -> Record {
    Record { key: Some(Bytes::from(key.to_string())), value: Bytes::from(value), timestamp: 0 }
}

/// Reads partition `p` from 0 to its high watermark.
async fn read_all(stream: &Stream, p: u32) -> Result<Vec<Consumed>> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let b = stream.consume(p, offset, 500, 1 << 20).await?;
        out.extend(b.records);
        if b.next_offset >= b.high_watermark {
            return Ok(out);
        }
        offset = b.next_offset;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_producers_every_acknowledged_record_once_dense_and_ordered_per_key() -> Result<()> {
    const PRODUCERS: usize = 8;
    const RECORDS: usize = 2_000;
    const BATCH: usize = 100;
    let fx = Fixture::new(4).await?;
    let stream = Arc::new(fx.stream());
    let mut tasks = Vec::new();
    for producer in 0..PRODUCERS {
        let stream = Arc::clone(&stream);
        tasks.push(tokio::spawn(async move {
            let key = format!("producer-{producer}");
            let mut acked = Vec::new();
            for chunk in 0..RECORDS / BATCH {
                let batch = (0..BATCH).map(|i| record(&key, format!("{producer}:{}", chunk * BATCH + i))).collect();
                let p = stream.produce(Partitioning::ByKey, batch).await?;
                acked.push(p);
            }
            Ok::<_, StreamError>(acked)
        }));
    }
    let mut acked = 0u64;
    for t in tasks {
        acked += t.await??.iter().map(|p| p.count).sum::<u64>();
    }
    assert_eq!(acked, (PRODUCERS * RECORDS) as u64);

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for p in 0..4 {
        let records = read_all(&stream, p).await?;
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as u64, "offsets in partition {p} are dense and unique");
        }
        // Order per key: each producer's sequence numbers rise by one.
        let mut last: BTreeMap<String, i64> = BTreeMap::new();
        for r in &records {
            let text = String::from_utf8_lossy(&r.value).into_owned();
            let (producer, seq) = text.split_once(':').expect("value");
            let seq: i64 = seq.parse()?;
            let prev = last.insert(producer.to_string(), seq).unwrap_or(-1);
            assert_eq!(seq, prev + 1, "order kept for key {producer}");
            *seen.entry(text).or_default() += 1;
        }
        total += records.len();
    }
    assert_eq!(total, PRODUCERS * RECORDS, "every acknowledged record is read");
    assert!(seen.values().all(|n| *n == 1), "and read exactly once");
    Ok(())
}

/// Segment objects of the topic's partition `p`.
async fn objects(fx: &Fixture, p: u32) -> Result<usize> {
    let prefix = format!("segments/{}/{p}/", fx.topic.name);
    let out = fx.s3.list_objects_v2().bucket(&fx.topic.bucket).prefix(prefix).send().await?;
    Ok(out.contents().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_produce_aborted_after_its_segment_put_leaves_no_gap_and_nothing_visible_to_a_polling_consumer() -> Result<()>
{
    let fx = Fixture::new(1).await?;
    let stream = Arc::new(fx.stream());
    // The doomed producer's commits never get an answer: it dies holding a written segment.
    let hang = Faults::new(|c| (c.operation == "TransactWriteItems").then_some(Fault::Hang));
    let doomed = fx.stream_with(&hang);
    stream.produce(Partitioning::Partition(0), vec![record("a", "1".into()), record("a", "2".into())]).await?;
    let polling = {
        let stream = Arc::clone(&stream);
        tokio::spawn(async move {
            let (mut next, mut seen) = (0u64, Vec::new());
            while seen.len() < 12 {
                let b = stream.consume(0, next, 100, 1 << 20).await?;
                seen.extend(b.records.iter().map(|r| (r.offset, String::from_utf8_lossy(&r.value).into_owned())));
                next = b.next_offset;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Ok::<_, StreamError>(seen)
        })
    };
    let before = objects(&fx, 0).await?;
    let dying = tokio::spawn(async move {
        doomed
            .produce(Partitioning::Partition(0), vec![record("x", "doomed-1".into()), record("x", "doomed-2".into())])
            .await
    });
    // Kill it once its segment is in S3 and its commit is on the wire.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while objects(&fx, 0).await? == before || hang.injected() == 0 {
        anyhow::ensure!(std::time::Instant::now() < deadline, "the doomed produce never wrote its segment");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    dying.abort();
    assert!(dying.await.is_err_and(|e| e.is_cancelled()), "the produce was killed, not finished");
    for i in 3..=12 {
        stream.produce(Partitioning::Partition(0), vec![record("a", i.to_string())]).await?;
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(120), polling).await???;
    let expected: Vec<(u64, String)> = (0..12).map(|o| (o, (o + 1).to_string())).collect();
    assert_eq!(seen, expected, "dense offsets, and nothing of the killed batch");
    assert_eq!(objects(&fx, 0).await?, 12, "11 committed segments and the killed one's, which nothing references");
    assert_eq!(stream.high_watermark(0).await?, 12);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequenced_batch_whose_commit_answer_was_lost_is_appended_once() -> Result<()> {
    let fx = Fixture::new(1).await?;
    // DynamoDB applies the first commit, and its answer is lost; the SDK sends it again.
    let lose_first = |fault| {
        let left = std::sync::atomic::AtomicU32::new(1);
        Faults::new(move |c| {
            let first =
                c.operation == "TransactWriteItems" && left.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok();
            first.then_some(fault)
        })
    };
    let batch = || vec![record("k", "a".into()), record("k", "b".into())];

    // Without a sequence the retry cannot know: the batch is appended twice. This is the fault.
    let faults = lose_first(Fault::LoseAnswer);
    let plain = fx.stream_with(&faults).produce(Partitioning::Partition(0), batch()).await?;
    assert_eq!(faults.injected(), 1);
    assert_eq!((plain.base_offset, fx.stream().high_watermark(0).await?), (2, 4), "appended twice");

    let faults = lose_first(Fault::LoseAnswer);
    let once = Sequenced { producer: "p-1".into(), sequence: 0 };
    let got = fx.stream_with(&faults).produce_sequenced(Partitioning::Partition(0), batch(), Some(&once)).await?;
    assert_eq!(faults.injected(), 1);
    assert_eq!((got.base_offset, got.count), (4, 2), "its own offsets, from the attempt that was applied");
    assert_eq!(fx.stream().high_watermark(0).await?, 6, "appended once");

    // The client retries the whole request: the original offsets, nothing appended.
    let again = fx.stream().produce_sequenced(Partitioning::Partition(0), batch(), Some(&once)).await?;
    assert_eq!((again.base_offset, again.count, again.duplicate), (4, 2, true));
    assert_eq!(fx.stream().high_watermark(0).await?, 6);
    // One object for the twice-appended batch, one for the sequenced one: the retry's own
    // segment was removed.
    assert_eq!(objects(&fx, 0).await?, 2);

    // The next number appends; a gap or an old number is refused and writes nothing.
    let next = Sequenced { sequence: 1, ..once.clone() };
    let third = fx.stream().produce_sequenced(Partitioning::Partition(0), batch(), Some(&next)).await?;
    assert_eq!((third.base_offset, third.duplicate), (6, false));
    for sequence in [0, 5] {
        let wrong = Sequenced { sequence, ..once.clone() };
        let err = fx.stream().produce_sequenced(Partitioning::Partition(0), batch(), Some(&wrong)).await;
        assert!(matches!(err, Err(StreamError::Sequence { .. })), "{sequence}: {err:?}");
    }
    let values: Vec<String> =
        read_all(&fx.stream(), 0).await?.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect();
    assert_eq!(values, ["a", "b", "a", "b", "a", "b", "a", "b"]);
    assert_eq!(objects(&fx, 0).await?, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_ten_percent_of_aws_calls_failing_sequenced_producers_lose_and_duplicate_nothing() -> Result<()> {
    const PRODUCERS: usize = 4;
    const BATCHES: u64 = 15;
    let fx = Fixture::new(2).await?;
    let faults = Faults::random(10, 12);
    let stream = Arc::new(fx.stream_with(&faults));
    let mut tasks = Vec::new();
    for producer in 0..PRODUCERS {
        let stream = Arc::clone(&stream);
        tasks.push(tokio::spawn(async move {
            let (key, mut errors) = (format!("producer-{producer}"), 0u32);
            for sequence in 0..BATCHES {
                let sq = Sequenced { producer: key.clone(), sequence };
                let batch: Vec<Record> =
                    (0..20).map(|i| record(&key, format!("{producer}:{}", sequence * 20 + i))).collect();
                // As a client does: the same batch with the same number until it is acknowledged.
                loop {
                    match stream.produce_sequenced(Partitioning::ByKey, batch.clone(), Some(&sq)).await {
                        Ok(_) => break,
                        Err(StreamError::Busy { .. } | StreamError::Aws { .. } | StreamError::Contended(_)) => {
                            errors += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok::<_, StreamError>(errors)
        }));
    }
    let mut errors = 0;
    for t in tasks {
        errors += t.await??;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for p in 0..2 {
        let mut offset = 0;
        let mut records = Vec::new();
        loop {
            match stream.consume(p, offset, 500, 1 << 20).await {
                Ok(b) => {
                    records.extend(b.records);
                    if b.next_offset >= b.high_watermark {
                        break;
                    }
                    offset = b.next_offset;
                }
                Err(StreamError::Busy { .. } | StreamError::Aws { .. }) => errors += 1,
                Err(e) => return Err(e.into()),
            }
        }
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as u64, "dense offsets in partition {p}");
            *seen.entry(String::from_utf8_lossy(&r.value).into_owned()).or_default() += 1;
        }
    }
    println!("faults injected: {} ({}); errors that reached the caller: {errors}", faults.injected(), faults.summary());
    assert!(faults.injected() > 20, "the faults were real: {}", faults.injected());
    assert_eq!(seen.len(), PRODUCERS * BATCHES as usize * 20, "nothing lost");
    assert!(seen.values().all(|n| *n == 1), "nothing duplicated");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_retention_removed_are_out_of_range_with_the_earliest_kept() -> Result<()> {
    let fx = Fixture::new(1).await?;
    let stream = fx.stream();
    for b in 0..4 {
        stream.produce(Partitioning::Partition(0), (0..5).map(|i| record("k", format!("{b}:{i}"))).collect()).await?;
    }
    // The log's TTL removed the first segment's entry.
    fx.ddb
        .delete_item()
        .table_name(&fx.topic.table)
        .key("pk", AttributeValue::S("log".into()))
        .key("sk", AttributeValue::N("1".into()))
        .send()
        .await?;
    let err = stream.consume(0, 2, 100, 1 << 20).await.expect_err("expired");
    assert!(matches!(err, StreamError::OutOfRange { partition: 0, offset: 2, earliest: 5 }), "{err}");
    // The bucket's lifecycle removed the second segment's object before the TTL its entry.
    let listed = fx.s3.list_objects_v2().bucket(&fx.topic.bucket).prefix("segments/").send().await?;
    let mut keys: Vec<String> = listed.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect();
    keys.sort();
    // Keys start with the time they were written: the second is the second segment's.
    fx.s3.delete_object().bucket(&fx.topic.bucket).key(&keys[1]).send().await?;
    let err = stream.consume(0, 5, 100, 1 << 20).await.expect_err("expired");
    assert!(matches!(err, StreamError::OutOfRange { offset: 5, earliest: 10, .. }), "{err}");
    let b = stream.consume(0, 10, 100, 1 << 20).await?;
    assert_eq!((b.records.first().map(|r| r.offset), b.next_offset), (Some(10), 20));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_polling_during_concurrent_produces_never_skips_an_offset() -> Result<()> {
    let fx = Fixture::new(1).await?;
    let stream = Arc::new(fx.stream());
    let producers: Vec<_> = (0..4)
        .map(|w| {
            let stream = Arc::clone(&stream);
            tokio::spawn(async move {
                for b in 0..15 {
                    let batch = (0..20).map(|i| record(&format!("w{w}"), format!("{w}:{b}:{i}"))).collect();
                    stream.produce(Partitioning::Partition(0), batch).await?;
                }
                Ok::<_, StreamError>(())
            })
        })
        .collect();
    let poll = async {
        let mut next = 0u64;
        let mut offsets = Vec::new();
        while offsets.len() < 4 * 15 * 20 {
            let b = stream.consume(0, next, 37, 1 << 20).await?;
            offsets.extend(b.records.iter().map(|r| r.offset));
            next = b.next_offset;
            if b.records.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        Ok::<_, StreamError>(offsets)
    };
    // A producer that fails would leave the consumer waiting: bound the wait.
    let offsets = tokio::time::timeout(std::time::Duration::from_secs(180), poll).await??;
    for p in producers {
        p.await??;
    }
    assert_eq!(offsets, (0..1200).collect::<Vec<u64>>(), "every offset, in order, none skipped");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commits_survive_a_restart_and_never_move_backwards() -> Result<()> {
    let fx = Fixture::new(2).await?;
    let stream = fx.stream();
    let batch = (0..60).map(|i| record("k", i.to_string())).collect();
    let p = stream.produce(Partitioning::Partition(1), batch).await?.partition;
    stream.commit("billing", p, 50).await?;
    let err = stream.commit("billing", p, 40).await.expect_err("backwards");
    assert!(matches!(err, StreamError::Stale { committed: 50, .. }), "{err}");
    assert!(matches!(stream.commit("billing", p, 61).await, Err(StreamError::Invalid(_))), "past the high watermark");

    let restarted = fx.stream();
    assert_eq!(restarted.committed("billing", p).await?, Some(50));
    assert_eq!(restarted.committed("audit", p).await?, None);
    let b = restarted.consume(p, 50, 100, 1 << 20).await?;
    assert_eq!(b.records.first().map(|r| r.offset), Some(50));
    assert_eq!(b.next_offset, 60);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_bad_requests_are_clear_errors() -> Result<()> {
    let fx = Fixture::new(2).await?;
    let stream = fx.stream();
    let big = Record { key: None, value: Bytes::from(vec![0u8; adf_stream::MAX_RECORD_BYTES + 1]), timestamp: 0 };
    assert!(matches!(stream.produce(Partitioning::ByKey, vec![big]).await, Err(StreamError::TooLarge("record"))));
    assert!(matches!(stream.produce(Partitioning::ByKey, Vec::new()).await, Err(StreamError::Invalid(_))));
    assert!(matches!(
        stream.produce(Partitioning::Partition(2), vec![record("k", "v".into())]).await,
        Err(StreamError::Invalid(_))
    ));
    assert!(
        matches!(stream.consume(0, 5, 10, 100).await, Err(StreamError::Invalid(_))),
        "offset past the high watermark"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_answers_when_a_record_arrives_and_names_only_its_partition() -> Result<()> {
    let fx = Fixture::new(3).await?;
    let stream = Arc::new(fx.stream());
    stream.produce(Partitioning::Partition(0), vec![record("k", "before".into())]).await?;
    // Partition 0 has a record past offset 0 already: no wait.
    let ready = stream.wait_for_records(&[(0, 0), (1, 0)], std::time::Duration::from_secs(5)).await?;
    assert_eq!(ready, [0]);
    // Nothing past the high watermarks: empty once the wait runs out.
    let started = std::time::Instant::now();
    let ready = stream.wait_for_records(&[(0, 1), (1, 0)], std::time::Duration::from_millis(400)).await?;
    assert!(ready.is_empty() && started.elapsed() >= std::time::Duration::from_millis(350), "{ready:?}");
    // A record produced while waiting ends the wait, for its partition only.
    let waiting = {
        let stream = Arc::clone(&stream);
        tokio::spawn(async move {
            stream.wait_for_records(&[(0, 1), (1, 0), (2, 0)], std::time::Duration::from_secs(15)).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the wait ended before any record came");
    let sent = std::time::Instant::now();
    stream.produce(Partitioning::Partition(2), vec![record("k", "awaited".into())]).await?;
    assert_eq!(waiting.await??, [2]);
    assert!(sent.elapsed() < std::time::Duration::from_secs(5), "{:?}", sent.elapsed());
    let hws = stream.high_watermarks(&[0, 1, 2]).await?;
    assert_eq!((hws[&0], hws[&1], hws[&2]), (1, 0, 1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_partition_produces_commit_every_partition_at_once_dense_and_ordered_per_key() -> Result<()> {
    const PRODUCERS: usize = 4;
    const REQUESTS: usize = 10;
    const PER_REQUEST: usize = 100;
    const PARTITIONS: u32 = 16;
    let fx = Fixture::new(PARTITIONS).await?;
    let stream = Arc::new(fx.stream());
    let mut tasks = Vec::new();
    for producer in 0..PRODUCERS {
        let stream = Arc::clone(&stream);
        tasks.push(tokio::spawn(async move {
            let mut acked = 0;
            for request in 0..REQUESTS {
                // Keys of this producer, so that order per key is order per producer and key.
                let records = (0..PER_REQUEST)
                    .map(|i| {
                        let n = request * PER_REQUEST + i;
                        record(&format!("{producer}-{}", n % 37), format!("{producer}-{}:{n}", n % 37))
                    })
                    .collect();
                let batches = stream.by_key(records);
                let reached = batches.len();
                let produced = stream.produce_many(batches, None).await?;
                assert_eq!(produced.len(), reached, "one answer per partition reached");
                acked += produced.iter().map(|p| p.count).sum::<u64>();
            }
            Ok::<_, StreamError>(acked)
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await??;
    }
    assert_eq!(acked, (PRODUCERS * REQUESTS * PER_REQUEST) as u64);
    // One object per request, each holding many partitions' sections.
    let listed = fx.s3.list_objects_v2().bucket(&fx.topic.bucket).prefix("segments/").send().await?;
    assert_eq!(listed.contents().len(), PRODUCERS * REQUESTS, "one segment object per produce");

    let mut seen: HashMap<String, usize> = HashMap::new();
    for p in 0..PARTITIONS {
        let records = read_all(&stream, p).await?;
        let mut last: BTreeMap<String, i64> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as u64, "offsets in partition {p} are dense and unique");
            assert_eq!(
                stream.partition_for(r.key.as_deref().unwrap_or_default()),
                p,
                "a record in its key's partition"
            );
            let text = String::from_utf8_lossy(&r.value).into_owned();
            let (key, n) = text.split_once(':').expect("value");
            let n: i64 = n.parse()?;
            let prev = last.insert(key.to_string(), n).unwrap_or(-1);
            assert!(n > prev, "order kept for key {key}: {n} after {prev}");
            *seen.entry(text).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), PRODUCERS * REQUESTS * PER_REQUEST, "every acknowledged record is read");
    assert!(seen.values().all(|n| *n == 1), "and read exactly once");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_is_read_from_its_own_section_without_the_others_bytes() -> Result<()> {
    let fx = Fixture::new(4).await?;
    let stream = fx.stream();
    let batches: Vec<(u32, Vec<Record>)> =
        (0..4).map(|p| (p, (0..20).map(|i| record("k", format!("p{p}-{i}-{}", "x".repeat(64)))).collect())).collect();
    let produced = stream.produce_many(batches, None).await?;
    assert_eq!(
        produced.iter().map(|p| (p.partition, p.base_offset, p.count)).collect::<Vec<_>>(),
        [(0, 0, 20), (1, 0, 20), (2, 0, 20), (3, 0, 20)]
    );
    // Damage every byte of the object outside partition 2's section: partition 2 still reads,
    // so its consumer fetched only its range; the others are corrupt, not misread.
    let entries = stream.log().await?;
    assert_eq!(entries.len(), 1, "one log entry for the produce, whatever its partitions");
    let object = &entries[0].object;
    let section = entries[0].parts.iter().find(|s| s.partition == 2).expect("partition 2's section");
    let (at, len) = (section.at as usize, section.len as usize);
    let body = fx.s3.get_object().bucket(&fx.topic.bucket).key(object.as_str()).send().await?.body.collect().await?;
    let mut damaged = body.to_vec();
    assert!(at > 0 && at + len < damaged.len(), "a section inside a larger object");
    for (i, b) in damaged.iter_mut().enumerate() {
        if !(at..at + len).contains(&i) {
            *b ^= 0x5a;
        }
    }
    fx.s3.put_object().bucket(&fx.topic.bucket).key(object.as_str()).body(damaged.into()).send().await?;
    let read = read_all(&stream, 2).await?;
    assert_eq!(read.len(), 20);
    assert!(read.iter().all(|r| r.value.starts_with(b"p2-")));
    for p in [0, 1, 3] {
        let err = stream.consume(p, 0, 100, 1 << 20).await.expect_err("damaged");
        assert!(matches!(err, StreamError::Corrupt(_)), "partition {p}: {err}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sequenced_multi_partition_produce_is_appended_once_with_its_first_offsets() -> Result<()> {
    let fx = Fixture::new(4).await?;
    let stream = fx.stream();
    stream.produce(Partitioning::Partition(1), vec![record("k", "before".into())]).await?;
    let batch =
        || vec![(1, vec![record("a", "a1".into()), record("a", "a2".into())]), (3, vec![record("b", "b1".into())])];
    let first = Sequenced { producer: "multi".into(), sequence: 0 };
    let got = stream.produce_many(batch(), Some(&first)).await?;
    let placed = |ps: &[adf_stream::Produced]| {
        ps.iter().map(|p| (p.partition, p.base_offset, p.count, p.duplicate)).collect::<Vec<_>>()
    };
    assert_eq!(placed(&got), [(1, 1, 2, false), (3, 0, 1, false)]);
    // Sent again (its answer lost, say): the first answer, nothing appended.
    let again = stream.produce_many(batch(), Some(&first)).await?;
    assert_eq!(placed(&again), [(1, 1, 2, true), (3, 0, 1, true)]);
    assert_eq!(stream.high_watermarks(&[1, 3]).await?, HashMap::from([(1, 3), (3, 1)]));
    // One sequence for the whole topic: the next number appends, a gap is refused.
    let skipped = stream.produce_many(batch(), Some(&Sequenced { sequence: 5, ..first.clone() })).await;
    let Err(StreamError::Sequence { place, .. }) = skipped else { panic!("{skipped:?}") };
    assert_eq!(place, format!("topic {}", fx.topic.name));
    let next = stream.produce_many(batch(), Some(&Sequenced { sequence: 1, ..first.clone() })).await?;
    assert_eq!(placed(&next), [(1, 3, 2, false), (3, 1, 1, false)]);
    // Bad requests are refused before anything is written.
    for bad in
        [vec![(1, vec![])], vec![(1, batch()[0].1.clone()), (1, batch()[0].1.clone())], vec![(9, batch()[0].1.clone())]]
    {
        assert!(matches!(stream.produce_many(bad, None).await, Err(StreamError::Invalid(_))));
    }
    assert_eq!(stream.high_watermarks(&[1, 3]).await?, HashMap::from([(1, 5), (3, 2)]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_starting_at_any_offset_finds_it_in_the_log() -> Result<()> {
    const PARTITIONS: u32 = 4;
    let fx = Fixture::new(PARTITIONS).await?;
    let stream = fx.stream();
    // Single-partition produces, many partitions' at once, and runs of one partition: each
    // partition's sections are spread over the log with others' entries between them.
    let mut expected: Vec<Vec<String>> = vec![Vec::new(); PARTITIONS as usize];
    for round in 0..12u32 {
        let reach: Vec<u32> = match round % 3 {
            0 => vec![round % PARTITIONS],
            1 => (0..PARTITIONS).collect(),
            _ => vec![1, 3],
        };
        let batches = reach
            .iter()
            .map(|p| (*p, (0..3).map(|i| record("k", format!("p{p}-r{round}-{i}"))).collect::<Vec<_>>()))
            .collect::<Vec<_>>();
        for (p, records) in &batches {
            expected[*p as usize].extend(records.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()));
        }
        stream.produce_many(batches, None).await?;
    }
    assert_eq!(stream.log().await?.len(), 12, "a log entry per produce");
    for p in 0..PARTITIONS {
        let want = &expected[p as usize];
        for (offset, value) in want.iter().enumerate() {
            // A new engine each time: no resume point, so the log is searched.
            let fresh = fx.stream();
            let b = fresh.consume(p, offset as u64, 1, 1 << 20).await?;
            let got: Vec<(u64, String)> =
                b.records.iter().map(|r| (r.offset, String::from_utf8_lossy(&r.value).into_owned())).collect();
            assert_eq!(got, [(offset as u64, value.clone())], "partition {p} at {offset}");
            assert_eq!((b.next_offset, b.high_watermark), (offset as u64 + 1, want.len() as u64));
        }
        let all: Vec<String> =
            read_all(&stream, p).await?.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect();
        assert_eq!(&all, want, "partition {p} read on from resume points");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_indexed_per_partition_by_an_earlier_build_reads_on_into_the_log() -> Result<()> {
    let fx = Fixture::new(2).await?;
    let stream = fx.stream();
    for b in 0..3 {
        stream
            .produce(Partitioning::Partition(0), (0..4).map(|i| record("k", format!("old-{b}-{i}"))).collect())
            .await?;
    }
    // Rewrite the index as builds before the log kept it: an entry per partition's section
    // (`seg#<p>`/<base>), and a head item with the watermarks alone.
    let table = &fx.topic.table;
    for entry in stream.log().await? {
        for s in entry.parts {
            fx.ddb
                .put_item()
                .table_name(table)
                .item("pk", AttributeValue::S(format!("seg#{}", s.partition)))
                .item("sk", AttributeValue::N(s.base.to_string()))
                .item("object", AttributeValue::S(entry.object.clone()))
                .item("count", AttributeValue::N(s.count.to_string()))
                .item("at", AttributeValue::N(s.at.to_string()))
                .item("bytes", AttributeValue::N(s.len.to_string()))
                .send()
                .await?;
        }
        fx.ddb
            .delete_item()
            .table_name(table)
            .key("pk", AttributeValue::S("log".into()))
            .key("sk", AttributeValue::N(entry.seq.to_string()))
            .send()
            .await?;
    }
    fx.ddb
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S("head".into()))
        .key("sk", AttributeValue::N("0".into()))
        .update_expression("REMOVE #n, l0")
        .expression_attribute_names("#n", "n")
        .send()
        .await?;
    // This build appends after the earlier build's offsets, in the log.
    let upgraded = fx.stream();
    let produced =
        upgraded.produce(Partitioning::Partition(0), (0..4).map(|i| record("k", format!("new-{i}"))).collect()).await?;
    assert_eq!((produced.base_offset, produced.count), (12, 4));
    let values: Vec<String> =
        read_all(&upgraded, 0).await?.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect();
    assert_eq!(values.len(), 16);
    assert_eq!((values[0].as_str(), values[11].as_str(), values[12].as_str()), ("old-0-0", "old-2-3", "new-0"));
    // From the middle of the earlier build's entries, across into the log.
    let b = fx.stream().consume(0, 6, 100, 1 << 20).await?;
    assert_eq!(b.records.iter().map(|r| r.offset).collect::<Vec<_>>(), (6..16).collect::<Vec<_>>());
    Ok(())
}
