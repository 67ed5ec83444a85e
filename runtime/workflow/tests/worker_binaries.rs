//! The `adf-workflow-worker` binary in its two modes against the emulator: as a Lambda under
//! the local Lambda runner (SQS batches with partial batch failures, the reconcile schedule
//! event), and as a poller that finishes its in-flight node on SIGTERM before exiting.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use adf_acceptance::lambda_runner::{FunctionSpec, LambdaRunner, LogControls};
use adf_acceptance::{Emulator, unique_name};
use adf_workflow::blueprint::Blueprint;
use adf_workflow::client::Client;
use adf_workflow::queue::{Job, Queue};
use adf_workflow::store::{Store, Tables};
use anyhow::{Context, Result};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_adf-workflow-worker");

struct Setup {
    _emu: Emulator,
    endpoint: String,
    tables: Tables,
    queue_url: String,
    client: Client,
    store: Store,
    queue: Queue,
}

async fn setup() -> Result<Setup> {
    let emu = Emulator::start()?;
    let endpoint = emu.endpoint().to_string();
    let config = adf_acceptance::sdk_config(&endpoint).await;
    let name = unique_name("bin");
    let tables = Tables { contexts: format!("{name}-contexts"), statuses: format!("{name}-statuses") };
    let store = Store::new(aws_sdk_dynamodb::Client::new(&config), tables.clone());
    store.create_tables().await?;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue_url = sqs.create_queue().queue_name(format!("{name}-jobs")).send().await?.queue_url.context("url")?;
    let queue = Queue::new(sqs, &queue_url);
    let client = Client::new(store.clone(), queue.clone());
    Ok(Setup { _emu: emu, endpoint, tables, queue_url, client, store, queue })
}

fn environment(s: &Setup) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ADF_QUEUE_URL".to_string(), s.queue_url.clone()),
        ("ADF_CONTEXTS_TABLE".to_string(), s.tables.contexts.clone()),
        ("ADF_STATUSES_TABLE".to_string(), s.tables.statuses.clone()),
    ])
}

/// The worker binary as a poller on the setup's queue and tables, against the emulator.
fn poller(s: &Setup) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BINARY);
    c.envs(environment(s))
        .env("AWS_ENDPOINT_URL", &s.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .kill_on_drop(true);
    c
}

/// The worker binary zipped as `bootstrap`, the way a Lambda package holds it.
fn zip_of(binary: &Path, dir: &Path) -> Result<std::path::PathBuf> {
    let path = dir.join("worker.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path)?);
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    zip.start_file("bootstrap", options)?;
    zip.write_all(&std::fs::read(binary)?)?;
    zip.finish()?;
    Ok(path)
}

fn sqs_event(records: &[(&str, String)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "x",
                               "ApproximateFirstReceiveTimestamp": "1"},
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs", "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

const CHAIN: &str = r#"{"nodes": {"a": {"uses": "pass"}, "b": {"uses": "transform", "params": {"template": {"total": "$.amount"}}}},
                       "edges": [{"from": "a", "to": "b"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_a_lambda_it_reports_only_the_failed_jobs_and_reconciles_on_schedule() -> Result<()> {
    let s = setup().await?;
    s.store.put_blueprint("chain", &Blueprint::from_json(CHAIN)?).await?;
    let run = s.client.start("chain", &json!({"amount": 42})).await?;
    let first = s.queue.receive(1, Duration::from_secs(2), Duration::from_secs(30)).await?.pop().context("job")?;
    let job = first.job.map_err(anyhow::Error::msg)?;
    s.queue.delete(&[first.receipt]).await?;
    let cancelled = s.client.start("chain", &json!({})).await?;
    s.client.cancel(&cancelled).await?;
    let dropped = Job::new(&cancelled, "a", "chain", &job.v, Some(json!({})));

    let dir = tempfile::tempdir()?;
    let spec = FunctionSpec {
        zip: zip_of(Path::new(BINARY), dir.path())?,
        environment: environment(&s),
        name: "adf-workflow-test".into(),
        arn: "arn:aws:lambda:us-east-1:123456789012:function:adf-workflow-test".into(),
        memory_mb: 512,
        endpoint: s.endpoint.clone(),
        // JSON logs at WARN, as Lambda passes them when `logging` asks for it.
        logging: LogControls { json: true, level: Some("WARN".into()) },
    };
    let runner = LambdaRunner::start(&spec).await?;
    let event = sqs_event(&[
        ("good", serde_json::to_string(&job)?),
        ("garbage", "{\"not\": \"a job\"}".into()),
        ("cancelled", serde_json::to_string(&dropped)?),
    ]);
    let answer = runner.invoke(&event).await?;
    assert_eq!(answer["batchItemFailures"], json!([{"itemIdentifier": "garbage"}]), "{answer}");
    // Lambda's logging controls hold: the garbage is logged as a JSON line at ERROR, and
    // nothing below WARN is logged.
    let line = runner.output_line(|l| l.contains("not a job"), Duration::from_secs(5)).await?;
    let logged: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))?;
    assert_eq!(logged["level"], "ERROR", "{line}");
    let levels: Vec<serde_json::Value> = runner
        .output()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|l| l.get("level").cloned())
        .collect();
    assert!(levels.iter().all(|l| l == "WARN" || l == "ERROR"), "{levels:?}");
    // The good job ran a, then b in the same invocation.
    let status = s.client.status(&run).await?.context("run")?;
    assert_eq!(status.status, "succeeded", "{status:?}");
    assert_eq!(s.client.output(&run).await?, Some(json!({"total": 42})));

    // The schedule's event: a run stalled before its first job was taken is resumed.
    let stalled = s.client.start("chain", &json!({})).await?;
    let taken = s.queue.receive(1, Duration::from_secs(2), Duration::from_secs(30)).await?.pop().context("job")?;
    s.queue.delete(&[taken.receipt]).await?;
    let report = runner.invoke(&json!({"reconcile": true, "older_than_seconds": 0})).await?;
    assert_eq!(report["resumed_jobs"], 1, "{report}");
    let resumed =
        s.queue.receive(1, Duration::from_secs(2), Duration::from_secs(30)).await?.pop().context("resumed")?;
    assert_eq!(resumed.job.map_err(anyhow::Error::msg)?.run, stalled);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_a_poller_it_finishes_the_node_in_flight_on_sigterm() -> Result<()> {
    let s = setup().await?;
    // A slow HTTP service: the node is in flight when SIGTERM arrives.
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            axum::Json(json!({"ok": true}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let bp = format!(
        r#"{{"nodes": {{"call": {{"uses": "http", "params": {{"url": "http://{addr}/slow"}}}}, "after": {{"uses": "pass"}}}},
            "edges": [{{"from": "call", "to": "after"}}]}}"#
    );
    s.store.put_blueprint("slow", &Blueprint::from_json(&bp)?).await?;
    let run = s.client.start("slow", &json!({})).await?;
    let mut child = poller(&s).spawn()?;
    // Wait until the node is in flight (its message taken), then ask the poller to stop.
    let started = Instant::now();
    loop {
        let attrs = aws_sdk_sqs::Client::new(&adf_acceptance::sdk_config(&s.endpoint).await)
            .get_queue_attributes()
            .queue_url(&s.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await?;
        let in_flight = attrs
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible).cloned()
            })
            .unwrap_or_default();
        if in_flight == "1" || started.elapsed() > Duration::from_secs(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = child.id().context("pid")?;
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status()?;
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    assert!(exit.success(), "exit {exit:?}");
    let status = s.client.status(&run).await?.context("run")?;
    assert_eq!(status.status, "succeeded", "the node in flight finished before the exit: {status:?}");
    Ok(())
}

/// How many runs the kill tests start: `ADF_KILL_RUNS`, 10 by default (the full size, 50, is
/// a long run: `ADF_KILL_RUNS=50 cargo xtask test -- --test worker_binaries sigkilled`).
fn kill_runs() -> usize {
    std::env::var("ADF_KILL_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(10)
}

/// A local service whose `/slow` answers `{"n": 1}` after 150 ms, so that nodes calling it are
/// in flight long enough to be killed; and a chain and a fan-out with a join that call it.
async fn kill_blueprints(s: &Setup) -> Result<()> {
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            axum::Json(json!({"n": 1}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let slow = format!(r#"{{"uses": "http", "params": {{"url": "http://{addr}/slow"}}}}"#);
    let chain = format!(
        r#"{{"nodes": {{"a": {{"uses": "pass"}}, "b": {slow}, "c": {{"uses": "pass"}},
                        "d": {{"uses": "transform", "params": {{"template": {{"total": "$.body.n"}}}}}}}},
            "edges": [{{"from": "a", "to": "b"}}, {{"from": "b", "to": "c"}}, {{"from": "c", "to": "d"}}]}}"#
    );
    let fan = format!(
        r#"{{"nodes": {{"v": {{"uses": "pass"}}, "x": {slow}, "y": {slow}, "z": {{"uses": "pass"}},
                        "j": {{"uses": "pass", "join": "all"}}}},
            "edges": [{{"from": "v", "to": "x"}}, {{"from": "v", "to": "y"}}, {{"from": "v", "to": "z"}},
                      {{"from": "x", "to": "j"}}, {{"from": "y", "to": "j"}}, {{"from": "z", "to": "j"}}]}}"#
    );
    s.store.put_blueprint("chain", &Blueprint::from_json(&chain)?).await?;
    s.store.put_blueprint("fan", &Blueprint::from_json(&fan)?).await?;
    Ok(())
}

/// Starts `n` runs, chains and fan-outs in turn.
async fn start_runs(s: &Setup, n: usize) -> Result<Vec<(&'static str, String)>> {
    let mut runs = Vec::new();
    for i in 0..n {
        let kind = if i % 2 == 0 { "chain" } else { "fan" };
        runs.push((kind, s.client.start(kind, &json!({"i": i})).await?));
    }
    Ok(runs)
}

/// The runs still running, with the nodes they completed; the reconciler is run first when
/// `reconcile`, as on schedule.
async fn unfinished(s: &Setup, runs: &[(&'static str, String)], reconcile: bool) -> Result<Vec<String>> {
    if reconcile {
        adf_workflow::reconciler::reconcile(&s.store, &s.queue, Duration::from_secs(3)).await?;
    }
    let mut left = Vec::new();
    for (kind, run) in runs {
        match s.client.status(run).await? {
            Some(st) if st.status != "running" => {}
            Some(st) => left.push(format!("{kind} {run}: done {:?}", st.done.keys().collect::<Vec<_>>())),
            None => left.push(format!("{kind} {run}: no status")),
        }
    }
    Ok(left)
}

/// Waits until every run has ended, with the reconciler every 5 seconds, as on schedule.
async fn until_finished(s: &Setup, runs: &[(&'static str, String)], deadline: Instant) -> Result<()> {
    for round in 1u32.. {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let left = unfinished(s, runs, round % 5 == 0).await?;
        if left.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "unfinished: {left:#?}");
    }
    Ok(())
}

/// The end of a kill test: every run succeeded, and some of the kills of `what` landed while
/// work was in flight (`landed`).
async fn survived(s: &Setup, runs: &[(&'static str, String)], what: &str, kills: u32, landed: u32) -> Result<()> {
    assert_all_succeeded(s, runs).await?;
    println!("{} runs survived {kills} SIGKILLs of the {what}, {landed} of them with work in flight", runs.len());
    assert!(landed > 0, "some kills landed with work in flight");
    Ok(())
}

/// Every run succeeded with each node completed once, and the output its blueprint makes.
async fn assert_all_succeeded(s: &Setup, runs: &[(&'static str, String)]) -> Result<()> {
    for (kind, run) in runs {
        let st = s.client.status(run).await?.context("status")?;
        assert_eq!(st.status, "succeeded", "{kind} {run}: {:?}", st.error);
        assert_eq!(st.done.len(), st.total, "{kind} {run}: each node's completion, once");
        let output = s.client.output(run).await?.context("output")?;
        match *kind {
            "chain" => assert_eq!(output, json!({"total": 1}), "{run}"),
            _ => {
                let keys: Vec<&String> = output.as_object().map(|o| o.keys().collect()).unwrap_or_default();
                assert_eq!(keys, ["x", "y", "z"], "{run}: the join saw each predecessor once");
            }
        }
    }
    Ok(())
}

/// Messages taken from the queue and not yet deleted.
async fn in_flight(s: &Setup) -> Result<u64> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let sqs = aws_sdk_sqs::Client::new(&adf_acceptance::sdk_config(&s.endpoint).await);
    let out = sqs
        .get_queue_attributes()
        .queue_url(&s.queue_url)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?;
    Ok(out.attributes().and_then(|a| a.get(&A::ApproximateNumberOfMessagesNotVisible)?.parse().ok()).unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_sigkilled_at_random_points_loses_and_duplicates_nothing() -> Result<()> {
    const MAX_KILLS: u32 = 40;
    let s = setup().await?;
    kill_blueprints(&s).await?;
    let runs = start_runs(&s, kill_runs()).await?;
    let mut rng = fastrand::Rng::with_seed(7);
    let (mut kills, mut mid_job) = (0u32, 0u32);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut child = poller(&s).env("ADF_CONCURRENCY", "4").env("ADF_VISIBILITY_TIMEOUT", "2").spawn()?;
        if kills == MAX_KILLS {
            // The last poller lives until every run has ended.
            let left = until_finished(&s, &runs, deadline).await;
            child.start_kill()?;
            child.wait().await?;
            left?;
            break;
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(100..800))).await;
        // A fast machine may finish a batch of runs before a fixed delay ends: when runs are
        // left, wait (briefly) for a job in flight, so the kill lands in the middle of work.
        let mut busy = in_flight(&s).await? > 0;
        let until = Instant::now() + Duration::from_secs(3);
        while !busy && Instant::now() < until && !unfinished(&s, &runs, false).await?.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            busy = in_flight(&s).await? > 0;
        }
        child.start_kill()?; // SIGKILL: no shutdown, no cleanup
        child.wait().await?;
        kills += 1;
        mid_job += u32::from(busy);
        if unfinished(&s, &runs, kills % 5 == 0).await?.is_empty() {
            break;
        }
    }
    survived(&s, &runs, "poller", kills, mid_job).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_bootstrap_sigkilled_mid_invocation_loses_and_duplicates_nothing() -> Result<()> {
    const MAX_KILLS: u32 = 40;
    let s = setup().await?;
    kill_blueprints(&s).await?;
    // As with an event source mapping, a batch whose invocation died comes back after the
    // queue's visibility timeout (short, so that the test is; a batch that outlives it is
    // delivered again, which the worker must also survive).
    let sqs = aws_sdk_sqs::Client::new(&adf_acceptance::sdk_config(&s.endpoint).await);
    sqs.set_queue_attributes()
        .queue_url(&s.queue_url)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "5")
        .send()
        .await?;
    let runs = start_runs(&s, kill_runs()).await?;
    let dir = tempfile::tempdir()?;
    let mut environment = environment(&s);
    environment.insert("ADF_HTTP_ALLOWED_NETWORKS".into(), "127.0.0.1/32".into());
    let spec = FunctionSpec {
        zip: zip_of(Path::new(BINARY), dir.path())?,
        environment,
        name: "adf-workflow-kill".into(),
        arn: "arn:aws:lambda:us-east-1:123456789012:function:adf-workflow-kill".into(),
        memory_mb: 512,
        endpoint: s.endpoint.clone(),
        logging: LogControls::default(),
    };
    let mut rng = fastrand::Rng::with_seed(11);
    let (mut kills, mut cut) = (0u32, 0u32);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let runner = std::sync::Arc::new(LambdaRunner::start(&spec).await?);
        let delivering = {
            let (runner, sqs, url) = (std::sync::Arc::clone(&runner), sqs.clone(), s.queue_url.clone());
            // As Lambda's poller does, it goes on after a failed batch (whose messages come
            // back) until the environment is replaced.
            tokio::spawn(async move {
                loop {
                    if adf_acceptance::event_source::deliver_batch(&runner, &sqs, &url).await.is_err() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
        };
        if kills == MAX_KILLS {
            // The last execution environment lives until every run has ended.
            let left = until_finished(&s, &runs, deadline).await;
            delivering.abort();
            left?;
            break;
        }
        // Wait for an invocation in flight, then kill at a random point of it.
        let waited = Instant::now();
        while runner.in_flight() == 0 && waited.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(0..400))).await;
        cut += u32::from(runner.kill()? > 0);
        kills += 1;
        delivering.abort();
        let _ = delivering.await;
        drop(runner);
        if unfinished(&s, &runs, kills % 5 == 0).await?.is_empty() {
            break;
        }
    }
    survived(&s, &runs, "Lambda bootstrap", kills, cut).await
}
