//! `cargo xtask bench --only stream`: the stream engine's AWS requests per 1,000 records of
//! 1 KB at batch sizes 1, 10, 100 and 1,000, its throughput against the seed's design (one
//! object and one counter update per record) on the same emulator in the same run, and bytes
//! stored per record with and without compression.

use std::collections::BTreeMap;
use std::time::Instant;

use adf_acceptance::request_counter::RequestCounter;
use adf_acceptance::{Emulator, unique_name};
use adf_stream::{Partitioning, Record, Stream, TopicConfig};
use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;

const RECORDS: usize = 1_000;
const RECORD_BYTES: usize = 1_024;

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

pub fn run() -> Result<()> {
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
