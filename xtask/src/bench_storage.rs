//! `cargo xtask bench --only storage`: the storage connector, side by side in one run on the
//! emulator (and a real Redis): AWS requests per KV operation, the facade's time over the raw
//! SDK call, a 100 MB multipart upload against one PUT, cache hits on Redis against DynamoDB,
//! and what a 1 MB KV value spilled to S3 costs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adf_acceptance::request_counter::RequestCounter;
use adf_acceptance::{Emulator, sdk_config, unique_name};
use adf_storage::cache::CacheBackend;
use adf_storage::cache::dynamo::DynamoCache;
use adf_storage::cache::redis::{RedisCache, RedisOptions};
use adf_storage::contract::{CACHE_TABLE, KV_TABLE};
use adf_storage::kv::dynamo::{Blobs, DynamoKv};
use adf_storage::kv::{Kv, ListOptions, PutOptions};
use adf_storage::object::{Metadata, Objects};
use anyhow::{Context, Result, ensure};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use bytes::Bytes;

/// Keys listed in the listing measurement.
const LIST_KEYS: usize = 10_000;
/// Timed repetitions of each single operation.
const REPS: usize = 200;
/// The multipart object, MiB.
const MULTIPART_MIB: usize = 100;

pub fn run() -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(bench())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn p99(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() * 99 / 100).copied().unwrap_or_default()
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The counted requests since the last reset, as `Operation ×n` text.
fn requests(counter: &RequestCounter) -> (u64, String) {
    let snap = counter.snapshot();
    counter.reset();
    let total = snap.values().sum();
    (total, snap.iter().map(|(k, v)| format!("{k} ×{v}")).collect::<Vec<_>>().join(", "))
}

async fn bench() -> Result<()> {
    let emu = Emulator::start()?;
    let sdk = sdk_config(emu.endpoint()).await;
    let counter = RequestCounter::default();
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(counter.clone()).build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).interceptor(counter.clone()).build(),
    );
    let table = unique_name("kvbench");
    KV_TABLE.create(&ddb, &table).await.map_err(anyhow::Error::msg)?;
    s3.create_bucket().bucket(&table).send().await?;
    let blobs = Blobs { s3: s3.clone(), bucket: table.clone() };
    let kv = Kv::new(Arc::new(DynamoKv::new(ddb.clone(), &table, "bench", Some(blobs))));

    // 1. Requests per operation.
    println!("\n| KV operation | AWS requests | by operation |\n|---|---|---|");
    counter.reset();
    kv.put("user:1", vec![b'x'; 100], PutOptions::ttl(3600)).await?;
    let (n, by) = requests(&counter);
    println!("| put (100 B, with TTL) | {n} | {by} |");
    ensure!(n == 1, "a put took {n} requests");
    kv.get("user:1").await?.context("user:1")?;
    let (n, by) = requests(&counter);
    println!("| get | {n} | {by} |");
    ensure!(n == 1, "a get took {n} requests");
    load_keys(&ddb, &table, LIST_KEYS).await?;
    counter.reset();
    let (mut listed, mut pages, mut cursor) = (0, 0, None);
    loop {
        let page = kv.list(ListOptions { prefix: Some("key:".into()), limit: Some(1000), cursor }).await?;
        listed += page.keys.len();
        pages += 1;
        if page.list_complete {
            break;
        }
        cursor = page.cursor;
    }
    let (n, by) = requests(&counter);
    println!("| list {listed} keys, 1,000 a page ({pages} pages) | {n} | {by} |");
    ensure!(listed == LIST_KEYS && n <= 11, "listing {listed} keys took {n} Query pages");

    // 2. The facade against the raw SDK call, alternated so both see the same noise.
    let key = HashMap::from([
        ("ns".to_string(), AttributeValue::S("bench".into())),
        ("k".to_string(), AttributeValue::S("raw".into())),
    ]);
    let (mut raw_get, mut kv_get, mut raw_put, mut kv_put) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..REPS {
        let t = Instant::now();
        let mut item = key.clone();
        item.insert("v".into(), AttributeValue::B(vec![b'x'; 100].into()));
        item.insert("size".into(), AttributeValue::N("100".into()));
        ddb.put_item().table_name(&table).set_item(Some(item)).send().await?;
        raw_put.push(ms(t));
        let t = Instant::now();
        kv.put(&format!("user:{i}"), vec![b'x'; 100], PutOptions::default()).await?;
        kv_put.push(ms(t));
        let t = Instant::now();
        ddb.get_item().table_name(&table).set_key(Some(key.clone())).consistent_read(true).send().await?;
        raw_get.push(ms(t));
        let t = Instant::now();
        kv.get(&format!("user:{i}")).await?;
        kv_get.push(ms(t));
    }
    println!("\n| {REPS} runs, median | raw SDK | adf_storage::Kv | ratio |\n|---|---|---|---|");
    for (what, raw, ours) in
        [("GetItem / get", &mut raw_get, &mut kv_get), ("PutItem / put", &mut raw_put, &mut kv_put)]
    {
        let (r, o) = (median(raw), median(ours));
        println!("| {what} | {r:.2} ms | {o:.2} ms | {:.3}× |", o / r);
    }

    // 3. A 1 MB value spilled to S3.
    counter.reset();
    let big = Bytes::from(vec![7u8; 1 << 20]);
    kv.put("big", big.clone(), PutOptions::default()).await?;
    let (put_n, put_by) = requests(&counter);
    ensure!(kv.get("big").await? == Some(big.clone()), "the spilled value did not come back");
    let (get_n, get_by) = requests(&counter);
    let item = ddb
        .get_item()
        .table_name(&table)
        .key("ns", AttributeValue::S("bench".into()))
        .key("k", AttributeValue::S("big".into()))
        .send()
        .await?
        .item
        .context("the item")?;
    let item_bytes: usize = item.iter().map(|(k, v)| k.len() + v.as_s().map_or(8, String::len)).sum();
    counter.reset();
    println!("\n| 1 MiB KV value (spilled to S3) | requests | bytes |\n|---|---|---|");
    println!("| put | {put_n} ({put_by}) | S3 object {} B + item ~{item_bytes} B |", big.len());
    println!("| get | {get_n} ({get_by}) | {} B |", big.len());

    // 4. 100 MB: one PUT against a multipart upload (8 MiB parts, 8 at once).
    let objects = Objects::s3(&table, &sdk)?;
    let body = Bytes::from(vec![3u8; MULTIPART_MIB << 20]);
    let t = Instant::now();
    objects.put("one-put.bin", body.clone(), Default::default()).await?;
    let single = t.elapsed();
    let t = Instant::now();
    let chunks = body.chunks(1 << 20).map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c))).collect::<Vec<_>>();
    objects.put_multipart("multipart.bin", futures::stream::iter(chunks), Metadata::default(), 8 << 20, |_| {}).await?;
    let multi = t.elapsed();
    let mbps = |d: Duration| MULTIPART_MIB as f64 / d.as_secs_f64();
    println!("\n| {MULTIPART_MIB} MiB object | time | MiB/s |\n|---|---|---|");
    println!("| one PUT | {:.2} s | {:.1} |", single.as_secs_f64(), mbps(single));
    println!("| multipart, 8 MiB parts, 8 at once | {:.2} s | {:.1} |", multi.as_secs_f64(), mbps(multi));
    println!("| ratio (multipart / one PUT) | {:.2}× | |", multi.as_secs_f64() / single.as_secs_f64());

    // 5. Cache hits: Redis against DynamoDB.
    let redis_server = adf_acceptance::redis::RedisServer::start()?;
    let redis = RedisCache::connect(&RedisOptions {
        url: redis_server.url(),
        auth_token: Some(redis_server.password().to_string()),
        ..RedisOptions::default()
    })
    .await?;
    let cache_table = unique_name("cachebench");
    CACHE_TABLE.create(&ddb, &cache_table).await.map_err(anyhow::Error::msg)?;
    let dynamo = DynamoCache::new(ddb.clone(), &cache_table);
    let value = Bytes::from(vec![b'v'; 1024]);
    let backends: [(&str, &dyn CacheBackend); 2] = [("Redis", &redis), ("DynamoDB", &dynamo)];
    let mut hits: Vec<Vec<f64>> = vec![Vec::new(), Vec::new()];
    for (_, b) in &backends {
        b.put("hot", value.clone(), Duration::from_secs(600)).await?;
    }
    for _ in 0..REPS {
        for (i, (_, b)) in backends.iter().enumerate() {
            let t = Instant::now();
            ensure!(b.get("hot").await?.is_some(), "a cache miss");
            hits[i].push(ms(t));
        }
    }
    println!("\n| cache hit, 1 KiB, {REPS} runs | p50 | p99 |\n|---|---|---|");
    for (i, (name, _)) in backends.iter().enumerate() {
        println!("| {name} | {:.3} ms | {:.3} ms |", median(&mut hits[i]), p99(&mut hits[i]));
    }
    Ok(())
}

/// Writes `n` small items `key:<i>` into the namespace "bench", 25 per BatchWriteItem.
async fn load_keys(ddb: &aws_sdk_dynamodb::Client, table: &str, n: usize) -> Result<()> {
    let items: Vec<WriteRequest> = (0..n)
        .map(|i| {
            let item = HashMap::from([
                ("ns".to_string(), AttributeValue::S("bench".into())),
                ("k".to_string(), AttributeValue::S(format!("key:{i:05}"))),
                ("v".to_string(), AttributeValue::B(vec![b'x'; 100].into())),
                ("size".to_string(), AttributeValue::N("100".into())),
            ]);
            PutRequest::builder().set_item(Some(item)).build().map(|p| WriteRequest::builder().put_request(p).build())
        })
        .collect::<Result<_, _>>()?;
    for chunk in items.chunks(25) {
        let mut pending = chunk.to_vec();
        while !pending.is_empty() {
            let out = ddb.batch_write_item().request_items(table, pending).send().await?;
            pending = out.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
        }
    }
    Ok(())
}
