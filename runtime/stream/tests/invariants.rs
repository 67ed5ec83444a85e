//! The stream's invariants against a real emulator (moto server, or `ADF_TEST_ENDPOINT`):
//! every acknowledged record read exactly once with dense offsets and per-key order under
//! concurrent producers; no gap or visible batch from a producer that died before its commit;
//! a polling consumer never skips; group commits survive a restart and never go backwards.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

mod common;

use adf_stream::{Consumed, Partitioning, Record, Stream, StreamError};
use anyhow::Result;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_dies_before_its_commit_leaves_no_gap_and_nothing_visible() -> Result<()> {
    let fx = Fixture::new(1).await?;
    let stream = fx.stream();
    stream.produce(Partitioning::Partition(0), vec![record("a", "1".into()), record("a", "2".into())]).await?;
    // The dead producer: its segment reached S3, its commit never happened.
    fx.s3
        .put_object()
        .bucket(&fx.topic.bucket)
        .key(format!("segments/{}/0/dead.seg", fx.topic.name))
        .body(Bytes::from_static(b"ADFS partial batch").into())
        .send()
        .await?;
    stream.produce(Partitioning::Partition(0), vec![record("a", "3".into())]).await?;
    let records = read_all(&stream, 0).await?;
    let values: Vec<String> = records.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect();
    assert_eq!(values, ["1", "2", "3"]);
    assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 1, 2]);
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
