//! `cargo xtask bench --only workflow`: AWS requests per node execution (split by operation)
//! on a chain of 10 and on a fan-out of 20 with a join, counted by an SDK interceptor on the
//! worker's clients; nodes per second for one poller at concurrency 1, 8 and 32 on a wide
//! (1 -> 50 -> 1) and a long (100 in a row) blueprint, and each emulator's ceiling, side by side
//! on moto alone (its DynamoDB serialized by our launcher) and with DynamoDB on dynalite; the
//! p50/p99 latency from start to completion of a 3-node run. Nodes are `pass`: they return at
//! once, as in the seed's measurement.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adf_acceptance::request_counter::RequestCounter;
use adf_acceptance::{Emulator, unique_name};
use adf_workflow::blueprint::Blueprint;
use adf_workflow::client::Client;
use adf_workflow::node::{Registry, Services};
use adf_workflow::poller::{self, PollerConfig};
use adf_workflow::queue::Queue;
use adf_workflow::store::{Store, Tables};
use adf_workflow::worker::{Worker, WorkerConfig};
use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::sync::oneshot;

/// A blueprint of `pass` nodes: `n0 -> n1 -> ... -> n{len-1}`.
fn chain(len: usize) -> Blueprint {
    let nodes: Vec<String> = (0..len).map(|i| format!(r#""n{i}": {{"uses": "pass"}}"#)).collect();
    let edges: Vec<String> = (1..len).map(|i| format!(r#"{{"from": "n{}", "to": "n{i}"}}"#, i - 1)).collect();
    parse(&nodes, &edges)
}

/// `source -> w0..w{width-1} -> join` (join all).
fn fan(width: usize) -> Blueprint {
    let mut nodes =
        vec![r#""source": {"uses": "pass"}"#.to_string(), r#""join": {"uses": "pass", "join": "all"}"#.into()];
    let mut edges = Vec::new();
    for i in 0..width {
        nodes.push(format!(r#""w{i}": {{"uses": "pass"}}"#));
        edges.push(format!(r#"{{"from": "source", "to": "w{i}"}}"#));
        edges.push(format!(r#"{{"from": "w{i}", "to": "join"}}"#));
    }
    parse(&nodes, &edges)
}

fn parse(nodes: &[String], edges: &[String]) -> Blueprint {
    Blueprint::from_json(&format!(r#"{{"nodes": {{{}}}, "edges": [{}]}}"#, nodes.join(","), edges.join(",")))
        .unwrap_or_else(|_| Blueprint { nodes: BTreeMap::new(), edges: Vec::new() })
}

/// A workflow's tables and queue, clients counted by `counter` for the worker, uncounted for
/// the driver.
struct Setup {
    worker_store: Store,
    worker_queue: Queue,
    client: Client,
}

/// On `emu`, with DynamoDB at `dynamodb` when given.
async fn setup(emu: &Emulator, dynamodb: Option<&str>, counter: &RequestCounter) -> Result<Setup> {
    let config = adf_acceptance::sdk_config(emu.endpoint()).await;
    let name = unique_name("bench");
    let tables = Tables { contexts: format!("{name}-contexts"), statuses: format!("{name}-statuses") };
    let ddb_config = || {
        let b = aws_sdk_dynamodb::config::Builder::from(&config);
        match dynamodb {
            Some(url) => b.endpoint_url(url),
            None => b,
        }
    };
    let plain_ddb = aws_sdk_dynamodb::Client::from_conf(ddb_config().build());
    let plain_sqs = aws_sdk_sqs::Client::new(&config);
    let store = Store::new(plain_ddb, tables.clone());
    store.create_tables().await?;
    let url = plain_sqs.create_queue().queue_name(format!("{name}-jobs")).send().await?.queue_url.context("queue")?;
    let counted_ddb = aws_sdk_dynamodb::Client::from_conf(ddb_config().interceptor(counter.clone()).build());
    let counted_sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&config).interceptor(counter.clone()).build(),
    );
    Ok(Setup {
        worker_store: Store::new(counted_ddb, tables),
        worker_queue: Queue::new(counted_sqs, &url),
        client: Client::new(store, Queue::new(plain_sqs, &url)),
    })
}

fn worker(s: &Setup) -> Arc<Worker> {
    let services = Services {
        lambda: None,
        http: adf_workflow::egress::HttpClient::new(adf_workflow::egress::Egress::default()),
        registry: Registry::with_builtins(),
    };
    Arc::new(Worker::new(s.worker_store.clone(), s.worker_queue.clone(), services, WorkerConfig::default()))
}

/// Runs `runs` runs of `bp` through one poller at `concurrency`, reading each run's status
/// `every` until it ends; returns the wall time.
async fn run_through(s: &Setup, bp: &Blueprint, runs: usize, concurrency: usize, every: Duration) -> Result<Duration> {
    let name = unique_name("bp");
    s.worker_store.put_blueprint(&name, bp).await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let config = PollerConfig { concurrency, wait: Duration::from_secs(1), ..PollerConfig::default() };
    let task = tokio::spawn(poller::run(worker(s), config, async {
        let _ = stopped.await;
    }));
    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..runs {
        ids.push(s.client.start(&name, &json!({"order": 1})).await?);
    }
    for id in &ids {
        let st = s.client.wait(id, every, Duration::from_secs(600), |_| {}).await?.context("run")?;
        if st.status != "succeeded" {
            bail!("run {id} ended {}: {:?}", st.status, st.error);
        }
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    task.await??;
    Ok(elapsed)
}

/// Runs timed for the latency of a 3-node run.
const LATENCY_RUNS: usize = 40;

/// Node completions per second with no worker and no queue: 8 runs of 100 nodes at once, each
/// completion one `UpdateItem` with its output inline (the floor of a node's cost).
async fn ceiling(store: &Store) -> Result<f64> {
    let bp = chain(100);
    let started = Instant::now();
    let writes = futures::future::join_all((0..8).map(|r| {
        let bp = bp.clone();
        async move {
            let run = unique_name("ceiling");
            store.create_run(&run, "ceiling", &bp, &json!({}), None).await?;
            for i in 0..100 {
                let node = format!("n{i}");
                let c = adf_workflow::engine::Completion { action: "default".into(), taken: vec![], failed: false };
                store.complete(&run, &node, &c, &json!({"order": r}), 100, None).await?;
            }
            Ok::<_, anyhow::Error>(())
        }
    }))
    .await;
    for w in writes {
        w?;
    }
    Ok(800.0 / started.elapsed().as_secs_f64())
}

/// Jobs the queue ceiling sends through.
const QUEUE_JOBS: usize = 800;

/// Jobs per second through `queue` alone: [`QUEUE_JOBS`] sent in batches of ten, then
/// received and deleted by 4 receivers at once, ten a request (what the wide shape asks of SQS).
async fn queue_ceiling(queue: &Queue) -> Result<f64> {
    let started = Instant::now();
    let jobs: Vec<_> = (0..QUEUE_JOBS)
        .map(|i| (adf_workflow::queue::Job::new("ceiling", &format!("n{i}"), "bp", "v", None), Duration::ZERO))
        .collect();
    queue.send(&jobs).await?;
    let left = std::sync::atomic::AtomicUsize::new(QUEUE_JOBS);
    let receivers = (0..4).map(|_| async {
        while left.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            let got = queue.receive(10, Duration::from_secs(1), Duration::from_secs(60)).await?;
            if got.is_empty() {
                continue;
            }
            left.fetch_sub(got.len(), std::sync::atomic::Ordering::SeqCst);
            queue.delete(&got.into_iter().map(|r| r.receipt).collect::<Vec<_>>()).await?;
        }
        Ok::<_, anyhow::Error>(())
    });
    for r in futures::future::join_all(receivers).await {
        r?;
    }
    Ok(QUEUE_JOBS as f64 / started.elapsed().as_secs_f64())
}

fn per_node(counts: &BTreeMap<String, u64>, nodes: usize) -> (String, f64) {
    let total: u64 = counts.values().sum();
    let split =
        counts.iter().map(|(k, n)| format!("{k} {:.2}", *n as f64 / nodes as f64)).collect::<Vec<_>>().join(", ");
    (split, total as f64 / nodes as f64)
}

pub fn run() -> Result<()> {
    let root = adf_acceptance::repo_root();
    adf_acceptance::emulator::install(&root)?;
    let emu = Emulator::start()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let counter = RequestCounter::default();
        let s = setup(&emu, None, &counter).await?;
        println!("\n| blueprint | AWS requests per node execution (worker) | total per node | seed (moto 5.2.5) |");
        println!("|---|---|---|---|");
        for (label, bp, seed) in [("chain of 10", chain(10), "11.1"), ("fan-out 20 + join", fan(20), "13.65")] {
            let nodes = bp.nodes.len();
            counter.reset();
            let name = unique_name("count");
            s.worker_store.put_blueprint(&name, &bp).await?;
            counter.reset();
            // Start (counted apart: the client's requests), then the worker alone.
            let id = s.client.start(&name, &json!({"order": 1})).await?;
            let (stop, stopped) = oneshot::channel::<()>();
            let config = PollerConfig { concurrency: 8, wait: Duration::from_secs(1), ..PollerConfig::default() };
            let task = tokio::spawn(poller::run(worker(&s), config, async {
                let _ = stopped.await;
            }));
            let mut finished = None;
            for _ in 0..3000 {
                let st = s.client.status(&id).await?.context("run")?;
                if st.status != "running" {
                    finished = Some(counter.snapshot());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = stop.send(());
            task.await??;
            let counts = finished.context("the run did not finish")?;
            // The poller's empty long polls after the run are not node work.
            let (split, total) = per_node(&counts, nodes);
            println!("| {label} | {split} | {total:.2} | {seed} |");
        }

        // The same on moto alone and with DynamoDB on dynalite, side by side.
        let dynalite = adf_acceptance::dynalite::Dynalite::start()?;
        let on_dynalite = setup(&emu, Some(dynalite.endpoint()), &RequestCounter::default()).await?;
        let setups = [&s, &on_dynalite];
        println!("\n| blueprint | concurrency | nodes/s, moto (DynamoDB serialized) | nodes/s, DynamoDB on dynalite |");
        println!("|---|---|---|---|");
        for (label, bp, runs) in [("wide 1 -> 50 -> 1", fan(50), 16usize), ("long 100 in a row", chain(100), 16)] {
            let nodes = bp.nodes.len() * runs;
            for concurrency in [1usize, 8, 32] {
                let mut rates = Vec::new();
                for setup in setups {
                    let t = run_through(setup, &bp, runs, concurrency, Duration::from_millis(20)).await?;
                    rates.push(format!("{:.0}", nodes as f64 / t.as_secs_f64()));
                }
                println!("| {label} ({runs} runs) | {concurrency} | {} |", rates.join(" | "));
            }
        }

        for (emulator, setup) in ["moto (DynamoDB serialized)", "DynamoDB on dynalite"].into_iter().zip(setups) {
            println!("\n{emulator}: ceiling {:.0} node completions/s", ceiling(&setup.worker_store).await?);
        }
        println!(
            "(the long shape's writes alone: one completion UpdateItem with its output inline, 8 runs of 100 at \
             once, no worker, no queue)"
        );
        println!(
            "\nmoto's SQS: {:.0} jobs/s through it ({QUEUE_JOBS} jobs sent, received and deleted in batches of ten, 4 \
             receivers, no worker, no DynamoDB)",
            queue_ceiling(&s.worker_queue).await?
        );

        for (emulator, setup) in ["moto (DynamoDB serialized)", "DynamoDB on dynalite"].into_iter().zip(setups) {
            let mut latencies = Vec::new();
            for _ in 0..LATENCY_RUNS {
                // Read every 5 ms: the figure is the run's, not the reader's interval.
                latencies.push(run_through(setup, &chain(3), 1, 8, Duration::from_millis(5)).await?);
            }
            latencies.sort();
            let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
            println!(
                "\n{emulator}: start -> completion of a 3-node run ({LATENCY_RUNS} runs, the poller already waiting): \
                 p50 {:.0} ms, p99 {:.0} ms",
                at(0.5),
                at(0.99)
            );
        }
        Ok(())
    })
}
