//! The demo's stream part: 10,000 records produced with the Rust client through the deployed
//! stream Lambda (its zip run by the local Lambda runner behind a local Function URL, since
//! moto cannot run Lambda code), consumed back, with the AWS requests they cost.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use adf_acceptance::function_url::FunctionUrlServer;
use adf_acceptance::lambda_runner::{LambdaRunner, deployed};
use adf_acceptance::{Emulator, sdk_config};
use adf_stream_client::{Auth, Client, Consumer, ConsumerConfig, Producer, ProducerConfig};
use anyhow::{Result, bail};

const RECORDS: usize = 10_000;

/// Produces and consumes through the deployed function `function`, serving topic `topic`.
pub async fn exercise(emu: &Emulator, zip: &Path, function: &str, topic: &str) -> Result<()> {
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(emu.endpoint()).await);
    let spec = deployed(&lambda, function, zip, emu.endpoint()).await?;
    let runner = Arc::new(LambdaRunner::start(&spec).await?);
    let url = FunctionUrlServer::start(Arc::clone(&runner)).await?;
    println!("==> {function} (the deployed zip, run locally) serves topic {topic} at {}", url.url());
    let auth = Auth::static_credentials("test", "test", None, adf_acceptance::REGION);
    let client = Client::new(&url.url(), topic, auth)?;

    let before = emu.request_count();
    let started = Instant::now();
    let producer = Producer::new(client.clone(), ProducerConfig::default()).await?;
    let acks: Vec<_> = (0..RECORDS)
        .map(|i| {
            producer.send(Some(&format!("customer-{}", i % 100)), format!("{{\"order\":{i},\"total\":{}}}", i % 997))
        })
        .collect();
    producer.flush().await?;
    let mut placed = HashSet::new();
    for ack in acks {
        let m = ack.await?;
        placed.insert((m.partition, m.offset));
    }
    producer.close().await?;
    let produce_secs = started.elapsed().as_secs_f64();
    let produce_requests = emu.request_count() - before;
    let produce_calls = url.requests();
    if placed.len() != RECORDS {
        bail!("{} distinct (partition, offset) pairs for {RECORDS} records", placed.len());
    }
    println!(
        "==> produced {RECORDS} records with the client in {produce_calls} HTTP requests ({:.1} s): \
         {produce_requests} AWS requests ({:.2} per record), every record with its own offset",
        produce_secs,
        produce_requests as f64 / RECORDS as f64
    );

    let before = emu.request_count();
    let mut consumer =
        Consumer::new(client.clone(), ConsumerConfig { limit: 1000, ..ConsumerConfig::default() }).await?;
    let mut consumed = 0usize;
    let mut seen = HashSet::new();
    loop {
        let batch = consumer.next_batch().await?;
        if batch.is_empty() {
            break;
        }
        consumed += batch.len();
        seen.extend(batch.iter().map(|r| (r.partition, r.offset)));
    }
    let consume_requests = emu.request_count() - before;
    if consumed != RECORDS || seen != placed {
        bail!("consumed {consumed} records ({} distinct) of {RECORDS} produced", seen.len());
    }
    let description = client.describe().await?;
    let watermarks: Vec<String> =
        description.partitions.iter().map(|p| format!("p{}={}", p.partition, p.high_watermark)).collect();
    println!(
        "==> consumed all {consumed} records back, exactly once: {consume_requests} AWS requests ({:.3} per record); \
         high watermarks {}",
        consume_requests as f64 / RECORDS as f64,
        watermarks.join(" ")
    );
    println!(
        "==> {} of {} HTTP requests were SigV4-signed; stream Lambda init {:.1} ms",
        url.signed_requests(),
        url.requests(),
        runner.init_duration().map(|d| d.as_secs_f64() * 1000.0).unwrap_or_default()
    );
    Ok(())
}
