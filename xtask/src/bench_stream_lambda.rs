//! `cargo xtask bench --only stream`, the deployed part: the stream Lambda's zip size and init
//! duration (bootstrap start to its first Runtime API call, under the local runner), and
//! records per second produced over HTTP with the client through that Lambda.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adf_acceptance::function_url::FunctionUrlServer;
use adf_acceptance::lambda_runner::{FunctionSpec, LambdaRunner};
use adf_acceptance::{Emulator, unique_name};
use adf_stream::{Stream, TopicConfig};
use adf_stream_client::{Auth, Client, Producer, ProducerConfig};
use anyhow::{Context, Result};

const RECORDS: usize = 5_000;

/// A fresh topic's storage and the runner spec serving it from `zip`.
async fn serve(emu: &Emulator, zip: &Path) -> Result<(FunctionSpec, String)> {
    let config = adf_acceptance::sdk_config(emu.endpoint()).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    let name = unique_name("lambda");
    let topic = TopicConfig {
        name: name.clone(),
        partitions: 4,
        bucket: name.clone(),
        prefix: String::new(),
        table: name.clone(),
        retention_days: 7,
        compress: true,
    };
    Stream::new(s3, aws_sdk_dynamodb::Client::new(&config), topic.clone()).create_storage().await?;
    let environment = [
        ("ADF_TOPIC", name.clone()),
        ("ADF_PARTITIONS", "4".into()),
        ("ADF_BUCKET", name.clone()),
        ("ADF_PREFIX", String::new()),
        ("ADF_TABLE", name.clone()),
        ("ADF_RETENTION_DAYS", "7".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let spec = FunctionSpec {
        zip: zip.to_path_buf(),
        environment,
        name: format!("adf-stream-{name}"),
        arn: format!("arn:aws:lambda:us-east-1:123456789012:function:adf-stream-{name}"),
        memory_mb: 512,
        endpoint: emu.endpoint().to_string(),
    };
    Ok((spec, name))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn run(zip: &Path, runs: usize) -> Result<()> {
    let emu = Emulator::start()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let size = std::fs::metadata(zip).with_context(|| zip.display().to_string())?.len();
        let (spec, topic) = serve(&emu, zip).await?;
        let auth = Auth::static_credentials("test", "test", None, "us-east-1");
        let mut inits = Vec::new();
        for _ in 0..runs.max(1) {
            let runner = Arc::new(LambdaRunner::start(&spec).await?);
            let url = FunctionUrlServer::start(Arc::clone(&runner)).await?;
            // The first request waits for init; the runner records when bootstrap asked for it.
            Client::new(&url.url(), &topic, auth.clone())?.describe().await?;
            inits.push(runner.init_duration().context("no init recorded")?);
        }
        let runner = Arc::new(LambdaRunner::start(&spec).await?);
        let url = FunctionUrlServer::start(Arc::clone(&runner)).await?;
        let client = Client::new(&url.url(), &topic, auth)?;
        let producer = Producer::new(client, ProducerConfig::default()).await?;
        let started = Instant::now();
        let acks: Vec<_> = (0..RECORDS).map(|i| producer.send(Some(&format!("k{}", i % 64)), "x".repeat(1024))).collect();
        producer.flush().await?;
        for a in acks {
            a.await?;
        }
        let rate = RECORDS as f64 / started.elapsed().as_secs_f64();
        println!("\n| stream Lambda | figure |");
        println!("|---|---|");
        println!("| zip size | {:.0} KB |", size as f64 / 1024.0);
        println!("| init duration (median of {}) | {:.1} ms |", inits.len(), median(inits).as_secs_f64() * 1000.0);
        println!(
            "| produce over HTTP, client batches of 500, one local Lambda instance | {rate:.0} records/s ({} HTTP requests for {RECORDS} records) |",
            url.requests()
        );
        Ok(())
    })
}
