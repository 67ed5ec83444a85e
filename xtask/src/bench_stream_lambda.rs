//! `cargo xtask bench --only stream`, the deployed part: the stream Lambda's zip size and init
//! duration (bootstrap start to its first Runtime API call, under the local runner), records
//! per second produced over HTTP with the client through that Lambda, and the latency from
//! producing a record to a tailing consumer reading it: long polls beside a 1 s poll loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adf_acceptance::function_url::FunctionUrlServer;
use adf_acceptance::lambda_runner::{FunctionSpec, LambdaRunner, LogControls};
use adf_acceptance::{Emulator, unique_name};
use adf_stream::{Stream, TopicConfig};
use adf_stream_client::{Auth, Client, NewRecord, Producer, ProducerConfig};
use anyhow::{Context, Result};

const RECORDS: usize = 5_000;
/// Records timed from produce to consume, in each tail mode.
const LATENCY_SAMPLES: usize = 100;

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
        logging: LogControls::default(),
    };
    Ok((spec, name))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The `q` quantile (0 to 1) of `v`.
fn quantile(v: &[Duration], q: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn now_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

/// How a tailing reader waits once caught up.
#[derive(Clone, Copy)]
enum Tail {
    /// Long polls of up to 20 s.
    LongPoll,
    /// An empty answer, then a sleep of this long (the CLI's former `--poll-interval 1s`).
    Sleep(Duration),
}

/// Produces [`LATENCY_SAMPLES`] records to partition 0, one every 50 to 150 ms, each carrying
/// its send time, while a reader tails the partition; returns each record's produce-to-read
/// time and the requests the reader sent.
async fn tail_latency(client: &Client, tail: Tail) -> Result<(Vec<Duration>, usize)> {
    let start = client.describe().await?.partitions.first().map_or(0, |p| p.high_watermark);
    let reader = {
        let client = client.clone();
        tokio::spawn(async move {
            let (mut offset, mut latencies, mut requests) = (start, Vec::new(), 0usize);
            while latencies.len() < LATENCY_SAMPLES {
                let wait = match tail {
                    Tail::LongPoll => Duration::from_secs(20),
                    Tail::Sleep(_) => Duration::ZERO,
                };
                let fetched = client.consume(0, offset, 100, wait).await?;
                requests += 1;
                let seen = now_ns();
                for r in &fetched.records {
                    let sent: u128 = r.value.parse().context("a send time")?;
                    latencies.push(Duration::from_nanos(u64::try_from(seen.saturating_sub(sent)).unwrap_or(u64::MAX)));
                }
                offset = fetched.next_offset;
                if let (Tail::Sleep(pause), true) = (tail, fetched.records.is_empty()) {
                    tokio::time::sleep(pause).await;
                }
            }
            anyhow::Ok((latencies, requests))
        })
    };
    for i in 0..LATENCY_SAMPLES as u64 {
        // Spread over the poll interval, so sends do not line up with the reader's polls.
        tokio::time::sleep(Duration::from_millis(50 + i * 37 % 100)).await;
        client.produce(&[NewRecord::new(None, now_ns().to_string())], Some(0)).await?;
    }
    reader.await?
}

/// A zip's size, init duration (median) and produce rate with its HTTP requests.
struct Measured {
    size: u64,
    init: Duration,
    rate: f64,
    produce_requests: usize,
}

/// Serves `zip` on a fresh topic and measures it.
async fn measure(emu: &Emulator, zip: &Path, runs: usize) -> Result<(Measured, FunctionSpec, String)> {
    let size = std::fs::metadata(zip).with_context(|| zip.display().to_string())?.len();
    let (spec, topic) = serve(emu, zip).await?;
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
    let m = Measured { size, init: median(inits), rate, produce_requests: url.requests() };
    Ok((m, spec, topic))
}

/// Measures each of `zips` (a label and a path) side by side; the tail latency on the last.
pub fn run(zips: &[(&str, PathBuf)], runs: usize) -> Result<()> {
    let emu = Emulator::start()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let mut measured = Vec::new();
        let mut last = None;
        for (_, zip) in zips {
            let (m, spec, topic) = measure(&emu, zip, runs).await?;
            measured.push(m);
            last = Some((spec, topic));
        }
        let (spec, topic) = last.context("no zip to measure")?;

        // Tail latency, with two execution environments: a long poll holds one, produces use
        // the other (as Lambda scales out).
        let runner = Arc::new(LambdaRunner::start_many(&spec, 2).await?);
        let url = FunctionUrlServer::start(Arc::clone(&runner)).await?;
        let client = Client::new(&url.url(), &topic, Auth::static_credentials("test", "test", None, "us-east-1"))?;
        let mut tails = Vec::new();
        for (label, tail) in [("long poll (`wait_ms`)", Tail::LongPoll), ("1 s poll loop", Tail::Sleep(Duration::from_secs(1)))] {
            let (latencies, requests) = tail_latency(&client, tail).await?;
            tails.push((label, quantile(&latencies, 0.5), quantile(&latencies, 0.99), requests));
        }
        let row = |f: &dyn Fn(&Measured) -> String| measured.iter().map(f).collect::<Vec<_>>().join(" | ");
        let labels: Vec<&str> = zips.iter().map(|(l, _)| *l).collect();
        println!("\n| stream Lambda | {} |", labels.join(" | "));
        println!("|---|{}", "---|".repeat(labels.len()));
        println!("| zip size | {} |", row(&|m| format!("{:.0} KB", m.size as f64 / 1024.0)));
        println!(
            "| init duration (median of {}) | {} |",
            runs.max(1),
            row(&|m| format!("{:.1} ms", m.init.as_secs_f64() * 1000.0))
        );
        println!(
            "| produce over HTTP, client batches of 500, one local Lambda instance | {} |",
            row(&|m| format!("{:.0} records/s ({} HTTP requests for {RECORDS} records)", m.rate, m.produce_requests))
        );
        println!(
            "\n| produce-to-consume over HTTP ({}), one record every 50 to 150 ms, {LATENCY_SAMPLES} records | p50 | p99 | reader requests |",
            labels.last().copied().unwrap_or_default()
        );
        println!("|---|---|---|---|");
        for (label, p50, p99, requests) in tails {
            println!("| {label} | {:.0} ms | {:.0} ms | {requests} |", p50.as_secs_f64() * 1000.0, p99.as_secs_f64() * 1000.0);
        }
        Ok(())
    })
}
