//! `cargo xtask bench --only stream`: the stream engine's AWS requests per 1,000 records of
//! 1 KB at batch sizes 1, 10, 100 and 1,000, its throughput against the seed's design (one
//! object and one counter update per record) on the same emulator in the same run, and bytes
//! stored per record with and without compression; and multi-partition segments: 64 partitions
//! at 100 randomly keyed records per request, one segment per request against one per
//! partition reached; and producers committing at once (`--only stream-commits` alone).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use adf_acceptance::request_counter::RequestCounter;
use adf_acceptance::{Emulator, unique_name};
use adf_stream::{Partitioning, Record, Stream, TopicConfig};
use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;

const RECORDS: usize = 1_000;
const RECORD_BYTES: usize = 1_024;
/// Produces each contending producer makes, and their records.
const COMMITS_EACH: usize = 10;
const CONTENTION_BATCH: usize = 10;

struct Clients {
    s3: aws_sdk_s3::Client,
    ddb: aws_sdk_dynamodb::Client,
}

async fn topic(c: &Clients, compress: bool) -> Result<TopicConfig> {
    let name = unique_name("bench");
    let t = TopicConfig {
        name: name.clone(),
        partitions: 1,
        bucket: name.clone(),
        prefix: String::new(),
        table: name,
        retention_days: 7,
        compress,
    };
    Stream::new(c.s3.clone(), c.ddb.clone(), t.clone()).create_storage().await?;
    Ok(t)
}

/// 1 KB of JSON-like text that compresses the way real events do.
fn value(i: usize) -> Bytes {
    let mut v = format!("{{\"order\":{i},\"customer\":\"c-{}\",\"items\":[", i % 97);
    while v.len() < RECORD_BYTES - 2 {
        v.push_str(&format!("{{\"sku\":\"sku-{}\",\"qty\":{}}},", (i * 7) % 1000, i % 5));
    }
    v.truncate(RECORD_BYTES - 2);
    v.push_str("]}");
    Bytes::from(v)
}

fn per_thousand(counts: &BTreeMap<String, u64>, records: usize) -> String {
    counts.iter().map(|(k, n)| format!("{k} {:.1}", *n as f64 * 1000.0 / records as f64)).collect::<Vec<_>>().join(", ")
}

async fn stored_bytes(c: &Clients, bucket: &str) -> Result<i64> {
    let out = c.s3.list_objects_v2().bucket(bucket).send().await?;
    Ok(out.contents().iter().filter_map(|o| o.size()).sum())
}

/// The seed's produce: one counter update and one object per record.
async fn seed_produce(c: &Clients, t: &TopicConfig) -> Result<()> {
    for i in 0..RECORDS {
        let out = c
            .ddb
            .update_item()
            .table_name(&t.table)
            .key("pk", AttributeValue::S("counter".into()))
            .key("sk", AttributeValue::N("0".into()))
            .update_expression("ADD n :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await?;
        let offset = out.attributes().and_then(|a| a.get("n")).and_then(|v| v.as_n().ok()).cloned().unwrap_or_default();
        c.s3.put_object().bucket(&t.bucket).key(format!("{}/{offset}", t.name)).body(value(i).into()).send().await?;
    }
    Ok(())
}

/// Records in the multi-partition rows.
const MULTI_RECORDS: usize = 10_000;
/// Partitions of the multi-partition topic.
const MULTI_PARTITIONS: u32 = 64;

/// The same 10,000 randomly keyed records over 64 partitions, 100 per request: produced as one
/// segment per request (`produce_many`), and as one segment per partition each request reaches
/// (how a producer had to send them before); then 1,000 per request in one segment each. After
/// each, one partition is read back.
async fn multi_partition(c: &Clients, counter: &RequestCounter) -> Result<()> {
    println!(
        "\n| {MULTI_PARTITIONS} partitions, random keys | records per request | S3 PUT per record | DynamoDB write requests per record | DynamoDB items written per record | DynamoDB write units per record | produce records/s | consume one partition: S3 GET per record | DynamoDB reads per record | bytes fetched per record |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (per_request, one_segment) in [(100, true), (100, false), (1000, true)] {
        // xorshift: random keys, the same in every row.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let requests: Vec<Vec<Record>> = (0..MULTI_RECORDS / per_request)
            .map(|r| {
                (0..per_request)
                    .map(|i| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let key = Bytes::from(format!("user-{}", seed % 1_000_000));
                        Record { key: Some(key), value: value(r * per_request + i), timestamp: 0 }
                    })
                    .collect()
            })
            .collect();
        let mut t = topic(c, true).await?;
        t.partitions = MULTI_PARTITIONS;
        let stream = Stream::new(c.s3.clone(), c.ddb.clone(), t.clone());
        counter.reset();
        let (start, mut items, mut commits) = (Instant::now(), 0usize, 0usize);
        for records in &requests {
            let batches = stream.by_key(records.clone());
            // Each produce writes its log entry and the head item.
            if one_segment {
                (items, commits) = (items + 2, commits + 1);
                stream.produce_many(batches, None).await?;
            } else {
                for (p, records) in batches {
                    (items, commits) = (items + 2, commits + 1);
                    stream.produce(Partitioning::Partition(p), records).await?;
                }
            }
        }
        let rate = MULTI_RECORDS as f64 / start.elapsed().as_secs_f64();
        let produced = counter.snapshot();
        counter.reset();
        let (mut offset, mut read, mut high) = (0, 0usize, 1);
        while offset < high {
            let batch = stream.consume(0, offset, 1000, 8 << 20).await?;
            (offset, high, read) = (batch.next_offset, batch.high_watermark, read + batch.records.len());
        }
        let consumed = counter.snapshot();
        let fetched: u64 =
            stream.log().await?.iter().flat_map(|e| &e.parts).filter(|s| s.partition == 0).map(|s| s.len).sum();
        let log_units = log_write_units(c, &t.table).await?;
        // Every commit updates the head item: billed at its size (its last, the largest).
        let head = c
            .ddb
            .get_item()
            .table_name(&t.table)
            .key("pk", AttributeValue::S("head".into()))
            .key("sk", AttributeValue::N("0".into()))
            .send()
            .await?;
        let head_units = tx_write_units(head.item().map_or(0, item_bytes)) * commits;
        let per =
            |counts: &BTreeMap<String, u64>, op: &str, n: usize| counts.get(op).copied().unwrap_or(0) as f64 / n as f64;
        println!(
            "| {} | {per_request} | {:.3} | {:.3} | {:.3} | {:.3} | {rate:.0} | {:.3} | {:.3} | {:.0} |",
            if one_segment { "one segment per request (`produce_many`)" } else { "one segment per partition reached" },
            per(&produced, "S3.PutObject", MULTI_RECORDS),
            per(&produced, "DynamoDB.TransactWriteItems", MULTI_RECORDS),
            items as f64 / MULTI_RECORDS as f64,
            (head_units + log_units) as f64 / MULTI_RECORDS as f64,
            per(&consumed, "S3.GetObject", read),
            per(&consumed, "DynamoDB.GetItem", read) + per(&consumed, "DynamoDB.Query", read),
            fetched as f64 / read as f64,
        );
    }
    Ok(())
}

/// Producers committing at once, each to a partition of its own: every commit moves the head
/// item and appends to the log, so they contend however disjoint their partitions are.
async fn contention(c: &Clients, counter: &RequestCounter) -> Result<()> {
    println!(
        "\n| producers at once, a partition each | commits/s | TransactWriteItems per commit | GetItem per commit | produce p50 / p99 |"
    );
    println!("|---|---|---|---|---|");
    for producers in [1u32, 4, 16] {
        let mut t = topic(c, true).await?;
        t.partitions = 16;
        let stream = std::sync::Arc::new(Stream::new(c.s3.clone(), c.ddb.clone(), t));
        counter.reset();
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for p in 0..producers {
            let stream = stream.clone();
            tasks.spawn(async move {
                let mut took = Vec::with_capacity(COMMITS_EACH);
                for b in 0..COMMITS_EACH {
                    let records = (0..CONTENTION_BATCH)
                        .map(|i| Record { key: None, value: value(b * CONTENTION_BATCH + i), timestamp: 0 })
                        .collect();
                    let begun = Instant::now();
                    stream.produce(Partitioning::Partition(p), records).await?;
                    took.push(begun.elapsed());
                }
                anyhow::Ok(took)
            });
        }
        let mut took = Vec::new();
        while let Some(done) = tasks.join_next().await {
            took.extend(done??);
        }
        let elapsed = start.elapsed().as_secs_f64();
        let counts = counter.snapshot();
        let commits = took.len();
        took.sort();
        let per = |op: &str| counts.get(op).copied().unwrap_or(0) as f64 / commits as f64;
        println!(
            "| {producers} | {:.1} | {:.2} | {:.2} | {:?} / {:?} |",
            commits as f64 / elapsed,
            per("DynamoDB.TransactWriteItems"),
            per("DynamoDB.GetItem"),
            took[commits / 2],
            took[(commits * 99 / 100).min(commits - 1)],
        );
    }
    Ok(())
}

/// An item's size as DynamoDB bills it: each attribute's name and value (a number's digits
/// in half, plus one).
fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    let value = |v: &AttributeValue| match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        _ => 0,
    };
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// The write units of a transaction's write of an item of `bytes`: two per kilobyte begun.
fn tx_write_units(bytes: usize) -> usize {
    2 * bytes.div_ceil(1024)
}

/// The write units the topic's log entries cost, from their stored sizes.
async fn log_write_units(c: &Clients, table: &str) -> Result<usize> {
    let mut units = 0;
    let mut pages = c
        .ddb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("log".into()))
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        units += tx_write_units(item_bytes(&item?));
    }
    Ok(units)
}

/// The engine's figures; with `commits_only`, only the contending producers'.
pub fn run(commits_only: bool) -> Result<()> {
    let root = adf_acceptance::repo_root();
    adf_acceptance::emulator::install(&root)?;
    let emu = Emulator::start()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let counter = RequestCounter::default();
        let config = adf_acceptance::sdk_config(emu.endpoint()).await;
        let c = Clients {
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config).force_path_style(true).interceptor(counter.clone()).build(),
            ),
            ddb: aws_sdk_dynamodb::Client::from_conf(aws_sdk_dynamodb::config::Builder::from(&config).interceptor(counter.clone()).build()),
        };
        contention(&c, &counter).await?;
        if commits_only {
            return Ok(());
        }
        println!("\n| batch size | produce: requests per 1,000 records | consume: requests per 1,000 records | produce records/s |");
        println!("|---|---|---|---|");
        let mut adf_100_rate = 0.0;
        for batch in [1usize, 10, 100, 1000] {
            let t = topic(&c, true).await?;
            let stream = Stream::new(c.s3.clone(), c.ddb.clone(), t);
            counter.reset();
            let start = Instant::now();
            for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(batch) {
                let records = chunk.iter().map(|i| Record { key: None, value: value(*i), timestamp: 0 }).collect();
                stream.produce(Partitioning::Partition(0), records).await?;
            }
            let rate = RECORDS as f64 / start.elapsed().as_secs_f64();
            if batch == 100 {
                adf_100_rate = rate;
            }
            let produced = counter.snapshot();
            counter.reset();
            let mut offset = 0;
            while offset < RECORDS as u64 {
                offset = stream.consume(0, offset, 1000, 8 << 20).await?.next_offset;
            }
            let consumed = counter.snapshot();
            println!("| {batch} | {} | {} | {rate:.0} |", per_thousand(&produced, RECORDS), per_thousand(&consumed, RECORDS));
        }

        let t = topic(&c, false).await?;
        counter.reset();
        let start = Instant::now();
        seed_produce(&c, &t).await?;
        let seed_rate = RECORDS as f64 / start.elapsed().as_secs_f64();
        let seed = counter.snapshot();
        println!("\n| design | produce requests per 1,000 records | produce records/s |");
        println!("|---|---|---|");
        println!("| seed (object + counter per record) | {} | {seed_rate:.0} |", per_thousand(&seed, RECORDS));
        println!("| adf-stream, batch 100 | see above | {adf_100_rate:.0} ({:.1}x) |", adf_100_rate / seed_rate);

        multi_partition(&c, &counter).await?;

        println!("\n| compression | bytes stored per 1 KB record (batch 100) |");
        println!("|---|---|");
        for compress in [true, false] {
            let t = topic(&c, compress).await?;
            let stream = Stream::new(c.s3.clone(), c.ddb.clone(), t.clone());
            for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(100) {
                let records = chunk.iter().map(|i| Record { key: None, value: value(*i), timestamp: 0 }).collect();
                stream.produce(Partitioning::Partition(0), records).await?;
            }
            let bytes = stored_bytes(&c, &t.bucket).await?;
            println!("| {} | {:.0} |", if compress { "zstd" } else { "none" }, bytes as f64 / RECORDS as f64);
        }
        Ok(())
    })
}
