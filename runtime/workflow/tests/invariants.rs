//! The workflow invariants against the emulator: a completion recorded once under duplicate
//! delivery, joins firing once, no run lost by a killed worker (SQS redelivery, and the
//! reconciler for a worker killed between steps), retries with backoff then the fallback,
//! cancel, a context larger than one DynamoDB item, small outputs inline in their completion
//! and a run ended in the same write as its last completion, and the blueprint catalog (runs
//! pinned to a version finish on it after a new one is deployed).

mod common;

use std::time::Duration;

use adf_acceptance::Emulator;
use adf_acceptance::faults::Faults;
use adf_workflow::blueprint::Blueprint;
use adf_workflow::catalog::Current;
use adf_workflow::engine::{Completion, DEFAULT_ACTION};
use adf_workflow::queue::Job;
use adf_workflow::reconciler;
use adf_workflow::store::{Finish, Recorded, Store, Tables, now_ms};
use adf_workflow::worker::{Outcome, WorkerConfig};
use anyhow::{Context, Result};
use common::Fixture;
use serde_json::json;

const CHAIN: &str = r#"{
    "nodes": {"a": {"uses": "count"}, "b": {"uses": "count"}, "c": {"uses": "count"}},
    "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]
}"#;

fn fan_in(join: &str) -> String {
    format!(
        r#"{{
        "nodes": {{
            "validate": {{"uses": "count"}},
            "charge": {{"uses": "count", "params": {{"output": {{"paid": 30}}}}}},
            "reserve": {{"uses": "count", "params": {{"output": {{"reserved": true}}}}}},
            "notify": {{"uses": "count"}},
            "ship": {{"uses": "count", "join": "{join}"}}
        }},
        "edges": [
            {{"from": "validate", "to": "charge"}}, {{"from": "validate", "to": "reserve"}},
            {{"from": "validate", "to": "notify"}},
            {{"from": "charge", "to": "ship"}}, {{"from": "reserve", "to": "ship"}}, {{"from": "notify", "to": "ship"}}
        ]
    }}"#
    )
}

/// A successful completion that took the edges to `taken`.
fn done(taken: &[&str]) -> Completion {
    Completion { action: DEFAULT_ACTION.into(), taken: taken.iter().map(|t| t.to_string()).collect(), failed: false }
}

/// Receives the next job of the queue (waiting for it).
async fn next_job(fx: &Fixture) -> Result<(Job, String)> {
    for _ in 0..20 {
        if let Some(r) = fx.queue.receive(1, Duration::from_secs(1), Duration::from_secs(30)).await?.pop() {
            return Ok((r.job.map_err(anyhow::Error::msg)?, r.receipt));
        }
    }
    anyhow::bail!("no job arrived")
}

/// Messages on the job queue: visible, in flight and delayed.
async fn queued(fx: &Fixture) -> Result<u64> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let names = [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
        A::ApproximateNumberOfMessagesDelayed,
    ];
    let out =
        fx.sqs.get_queue_attributes().queue_url(&fx.queue_url).set_attribute_names(Some(names.to_vec())).send().await?;
    let attrs = out.attributes().cloned().unwrap_or_default();
    Ok(names.iter().filter_map(|n| attrs.get(n)?.parse::<u64>().ok()).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_delivery_records_the_completion_once() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy("chain", CHAIN).await?;
    let run = fx.client().start("chain", &json!({"order": 1})).await?;
    // Deliver a's job twice at once, as SQS may; only one completion is recorded, so b is
    // dispatched once.
    let (job, receipt) = next_job(&fx).await?;
    let worker = fx.worker(WorkerConfig { max_continuations: 1, ..WorkerConfig::default() });
    let (x, y) = tokio::join!(worker.handle(job.clone(), None), worker.handle(job.clone(), None));
    let outcomes = [x?, y?];
    assert!(outcomes.iter().any(|o| matches!(o, Outcome::Done { .. })), "{outcomes:?}");
    assert!(
        outcomes.iter().any(|o| matches!(o, Outcome::Dropped(why) if why.contains("completed already"))),
        "{outcomes:?}"
    );
    // Execution is at least once: both deliveries ran a's body; only one completion counted.
    assert_eq!(fx.log.runs_of("a"), 2, "each delivery of a running run's job runs the node's body");
    fx.queue.delete(&[receipt]).await?;
    // And once more through SQS, on purpose, after the run moved on.
    fx.queue.send(&[(job, Duration::ZERO)]).await?;
    let poller = fx.poller(worker, 4);
    let status = fx.finished(&run, 30).await?;
    poller.stop().await?;
    assert_eq!(status.status, "succeeded");
    assert_eq!(fx.log.runs_of("b"), 1, "b ran once: the duplicate of a dispatched nothing");
    // The late duplicate runs a's body again only if the run was still running when it came.
    let a_runs = fx.log.runs_of("a");
    assert!((2..=3).contains(&a_runs), "a's body ran {a_runs} times for 3 deliveries");
    println!("a's body ran {a_runs} times for 3 deliveries; its completion was recorded once");
    assert_eq!(fx.log.runs_of("c"), 1);
    assert_eq!(status.done.len(), 3);
    assert_eq!(fx.client().output(&run).await?, Some(json!({"order": 1})));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joins_fire_once_all_after_every_predecessor_any_after_the_first() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy("all", &fan_in("all")).await?;
    fx.deploy("any", &fan_in("any")).await?;
    let worker = fx.worker(WorkerConfig::default());
    // 24 slots: three long polls under way at once.
    let poller = fx.poller(worker, 24);
    let all = fx.client().start("all", &json!({})).await?;
    let s = fx.finished(&all, 30).await?;
    assert_eq!(s.status, "succeeded");
    assert_eq!(fx.log.runs_of("ship"), 1);
    assert_eq!(
        fx.client().output(&all).await?,
        Some(json!({"charge": {"paid": 30}, "notify": {}, "reserve": {"reserved": true}}))
    );
    let ship = fx.log.times_of("ship")[0];
    for pred in ["charge", "reserve", "notify"] {
        assert!(fx.log.times_of(pred)[0] <= ship, "{pred} ran before ship");
    }

    let any = fx.client().start("any", &json!({})).await?;
    let s = fx.finished(&any, 30).await?;
    poller.stop().await?;
    // Later predecessors arrive after ship was dispatched: no second firing, no error.
    assert_eq!(s.status, "succeeded", "{:?}", s.error);
    assert_eq!(fx.log.runs_of("ship"), 2, "once per run");
    assert_eq!(s.done.len(), 5);
    assert!(s.done.values().all(|c| !c.failed));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_node_loses_no_run() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy(
        "slow",
        r#"{"nodes": {"a": {"uses": "count"}, "b": {"uses": "slow", "params": {"ms": 2500}}, "c": {"uses": "count"}},
            "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]}"#,
    )
    .await?;
    let run = fx.client().start("slow", &json!({})).await?;
    let config = WorkerConfig { max_continuations: 1, heartbeat: Duration::from_secs(1), ..WorkerConfig::default() };
    let first = fx.poller(fx.worker(config.clone()), 2);
    // Kill the worker while b runs: its message is not deleted and comes back.
    for _ in 0..100 {
        if fx.log.runs_of("b") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fx.log.runs_of("b"), 1, "b started");
    first.kill();
    let second = fx.poller(fx.worker(config), 2);
    let s = fx.finished(&run, 60).await?;
    second.stop().await?;
    assert_eq!(s.status, "succeeded");
    assert_eq!(fx.log.runs_of("b"), 2, "b ran again after the kill");
    assert_eq!(fx.log.runs_of("c"), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_ten_percent_of_aws_calls_failing_every_run_ends_once_with_the_right_output() -> Result<()> {
    const RUNS: usize = 10;
    let emu = Emulator::start()?;
    let config = adf_acceptance::sdk_config(emu.endpoint()).await;
    let faults = Faults::random(10, 41);
    faults.arm(false);
    let fx = Fixture::on(emu, &faults.wrap(&config), None).await?;
    fx.deploy("chain", CHAIN).await?;
    fx.deploy("all", &fan_in("all")).await?;
    let client = fx.client();
    let mut runs = Vec::new();
    for i in 0..RUNS {
        runs.push(("chain", client.start("chain", &json!({"order": i})).await?));
        runs.push(("all", client.start("all", &json!({})).await?));
    }
    // The workers run through the faults: every DynamoDB and SQS call may be throttled,
    // refused, or applied with its answer lost.
    faults.arm(true);
    let config = WorkerConfig { heartbeat: Duration::from_secs(1), ..WorkerConfig::default() };
    let pollers = [fx.poller(fx.worker(config.clone()), 4), fx.poller(fx.worker(config), 4)];
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let (mut reconciled, mut polls) = (0, 0u32);
    let mut waiting = runs.clone();
    while !waiting.is_empty() {
        polls += 1;
        anyhow::ensure!(std::time::Instant::now() < deadline, "{} runs never ended: {waiting:?}", waiting.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut still = Vec::new();
        for (kind, run) in waiting {
            match client.status(&run).await {
                Ok(Some(s)) if s.status != "running" => {}
                _ => still.push((kind, run)),
            }
        }
        waiting = still;
        // What a stalled run needs comes from the reconciler, as on schedule.
        let due = polls % 20 == 0;
        if due
            && !waiting.is_empty()
            && reconciler::reconcile(&fx.store, &fx.queue, Duration::from_secs(20)).await.is_ok()
        {
            reconciled += 1;
        }
    }
    for p in pollers {
        p.stop().await?;
    }
    faults.arm(false);
    for (kind, run) in &runs {
        let s = client.status(run).await?.context("status")?;
        assert_eq!(s.status, "succeeded", "{kind} {run}: {:?}", s.error);
        assert_eq!(s.done.len(), s.total, "{kind} {run}: every node's completion, once each");
        let output = client.output(run).await?;
        if *kind == "all" {
            let joined = json!({"charge": {"paid": 30}, "notify": {}, "reserve": {"reserved": true}});
            assert_eq!(output, Some(joined), "the join saw each predecessor once");
        }
    }
    let bodies: usize =
        ["a", "b", "c", "validate", "charge", "reserve", "notify", "ship"].iter().map(|n| fx.log.runs_of(n)).sum();
    println!(
        "faults injected: {} ({}); node bodies run: {bodies} for {} nodes (at least once); reconciler passes: {reconciled}",
        faults.injected(),
        faults.summary(),
        RUNS * 8
    );
    // About 150 calls for the 20 runs: the seeded draws give at least 10 faults among them.
    assert!(faults.injected() >= 10, "the faults were real: {}", faults.injected());
    assert!(fx.log.runs_of("ship") >= RUNS && bodies >= RUNS * 8);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reconciler_resumes_runs_stopped_between_steps() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy("all", &fan_in("all")).await?;
    let client = fx.client();
    // Killed after recording validate, before sending its successors.
    let stopped_early = client.start("all", &json!({})).await?;
    let (job, receipt) = next_job(&fx).await?;
    assert!(matches!(
        fx.store.complete(&job.run, "validate", &done(&["charge", "reserve", "notify"]), &json!(null), 5, None).await?,
        Recorded::New(..)
    ));
    fx.queue.delete(&[receipt]).await?;
    // Killed after recording the last node, before marking the run succeeded.
    let late = client.start("all", &json!({})).await?;
    let (job, receipt) = next_job(&fx).await?;
    fx.queue.delete(&[receipt]).await?;
    for (node, taken) in [
        ("validate", &["charge", "reserve", "notify"][..]),
        ("charge", &["ship"]),
        ("reserve", &["ship"]),
        ("notify", &["ship"]),
        ("ship", &[]),
    ] {
        fx.store.complete(&job.run, node, &done(taken), &json!({"node": node}), 5, None).await?;
    }
    assert_eq!(job.run, late);
    assert_eq!(client.status(&late).await?.context("late")?.status, "running");

    // Nothing moves until the reconciler runs: both are stalled in the index.
    let report = reconciler::reconcile(&fx.store, &fx.queue, Duration::ZERO).await?;
    assert_eq!((report.stalled, report.resumed_jobs, report.finished), (2, 3, 1), "{report:?}");
    assert_eq!(client.status(&late).await?.context("late")?.status, "succeeded");
    let poller = fx.poller(fx.worker(WorkerConfig::default()), 8);
    let s = fx.finished(&stopped_early, 30).await?;
    poller.stop().await?;
    assert_eq!(s.status, "succeeded");
    assert_eq!(fx.log.runs_of("ship"), 1);
    // A finished run leaves the index.
    assert!(fx.store.stalled(now_ms() + 60_000).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stalled_index_is_paged_through() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy("chain", CHAIN).await?;
    let mut runs = Vec::new();
    for _ in 0..23 {
        runs.push(fx.client().start("chain", &json!({})).await?);
    }
    let mut found = fx.store.stalled_paged(now_ms() + 1, Some(2)).await?;
    found.sort();
    runs.sort();
    assert_eq!(found, runs, "every page of every shard");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_back_off_then_the_fallback_runs() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy(
        "pay",
        r#"{"nodes": {
                "charge": {"uses": "flaky", "max_retries": 2, "retry_delay": "1s", "fallback": "refund"},
                "refund": {"uses": "count"},
                "done": {"uses": "count"}
            },
            "edges": [{"from": "charge", "to": "done"}, {"from": "refund", "to": "done"}]}"#,
    )
    .await?;
    let run = fx.client().start("pay", &json!({"amount": 30})).await?;
    let poller = fx.poller(fx.worker(WorkerConfig::default()), 4);
    let s = fx.finished(&run, 60).await?;
    poller.stop().await?;
    let tries = fx.log.times_of("charge");
    assert_eq!(tries.len(), 3, "the first attempt and two retries");
    let (first, second) = (tries[1] - tries[0], tries[2] - tries[1]);
    assert!(first >= 1000 && second >= 2000, "backoff doubles: {first} ms then {second} ms");
    assert_eq!(fx.log.runs_of("refund"), 1);
    assert_eq!(s.status, "succeeded", "{:?}", s.error);
    assert!(s.done["charge"].failed);
    let refund_input =
        fx.store.outputs(&run, &s.outputs, &["refund".to_string()]).await?.remove("refund").context("refund")?;
    assert_eq!(refund_input["input"], json!({"amount": 30}));
    assert!(refund_input["error"].as_str().is_some_and(|e| e.contains("after 3 attempt(s)")), "{refund_input}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_stops_a_run() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy(
        "nap",
        r#"{"nodes": {"a": {"uses": "count"}, "nap": {"uses": "sleep", "params": {"duration": "2s"}}, "b": {"uses": "count"}},
            "edges": [{"from": "a", "to": "nap"}, {"from": "nap", "to": "b"}]}"#,
    )
    .await?;
    let client = fx.client();
    let run = client.start("nap", &json!({})).await?;
    let poller = fx.poller(fx.worker(WorkerConfig::default()), 4);
    for _ in 0..100 {
        if fx.log.runs_of("a") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The sleeping node's job waits on the queue, delayed.
    for _ in 0..100 {
        if queued(&fx).await? > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(queued(&fx).await? > 0, "the sleeping job is not on the queue");
    assert!(client.cancel(&run).await?, "cancelled while sleeping");
    assert!(!client.cancel(&run).await?, "only once");
    // The sleeping job wakes after 2 s and is dropped (deleted): the queue drains, and only then
    // is "b never ran" a fact rather than a matter of not having waited long enough.
    let started = std::time::Instant::now();
    while queued(&fx).await? > 0 {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "the woken job was never handled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    poller.stop().await?;
    let s = client.status(&run).await?.context("run")?;
    assert_eq!(s.status, "cancelled");
    assert_eq!(fx.log.runs_of("b"), 0);
    assert!(!s.done.contains_key("nap"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_context_larger_than_one_item_runs_and_one_value_too_large_is_a_clear_error() -> Result<()> {
    let fx = Fixture::new().await?;
    // 25 outputs of 30 KB: 750 KB of context, almost twice DynamoDB's item limit.
    let nodes: Vec<String> =
        (0..25).map(|i| format!(r#""n{i}": {{"uses": "big", "params": {{"bytes": 30000}}}}"#)).collect();
    let edges: Vec<String> = (1..25).map(|i| format!(r#"{{"from": "n{}", "to": "n{i}"}}"#, i - 1)).collect();
    fx.deploy("wide", &format!(r#"{{"nodes": {{{}}}, "edges": [{}]}}"#, nodes.join(","), edges.join(","))).await?;
    fx.deploy("huge", r#"{"nodes": {"h": {"uses": "big", "params": {"bytes": 500000}}}}"#).await?;
    let poller = fx.poller(fx.worker(WorkerConfig::default()), 4);
    let wide = fx.client().start("wide", &json!({})).await?;
    let s = fx.finished(&wide, 60).await?;
    assert_eq!(s.status, "succeeded", "{:?}", s.error);
    assert_eq!(s.done.len(), 25);
    let huge = fx.client().start("huge", &json!({})).await?;
    let s = fx.finished(&huge, 30).await?;
    poller.stop().await?;
    assert_eq!(s.status, "failed");
    let error = s.error.unwrap_or_default();
    assert!(error.contains("node h") && error.contains("at most") && error.contains("S3"), "{error}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn small_outputs_ride_in_their_completion_and_large_ones_in_the_contexts_table() -> Result<()> {
    let fx = Fixture::new().await?;
    // Four nodes share the inline budget: 1 KB each. `large` is over it, and so is the join's
    // output (its input, which holds `large`'s).
    fx.deploy(
        "mixed",
        r#"{"nodes": {
                "validate": {"uses": "count"},
                "large": {"uses": "big", "params": {"bytes": 2000}},
                "small": {"uses": "count", "params": {"output": {"paid": 30}}},
                "ship": {"uses": "count", "join": "all"}
            },
            "edges": [{"from": "validate", "to": "large"}, {"from": "validate", "to": "small"},
                      {"from": "large", "to": "ship"}, {"from": "small", "to": "ship"}]}"#,
    )
    .await?;
    let poller = fx.poller(fx.worker(WorkerConfig::default()), 4);
    let run = fx.client().start("mixed", &json!({})).await?;
    let s = fx.finished(&run, 30).await?;
    poller.stop().await?;
    assert_eq!(s.status, "succeeded", "{:?}", s.error);
    assert_eq!(s.outputs.keys().collect::<Vec<_>>(), ["small", "validate"], "inline: the small outputs only");
    assert_eq!(s.outputs["small"], json!({"paid": 30}));
    let out = fx.client().output(&run).await?.context("the run's output")?;
    assert_eq!(out["small"], json!({"paid": 30}), "the join read the inline output");
    assert_eq!(out["large"].as_str().map(str::len), Some(2000), "and the stored one");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_completion_ends_its_run_in_the_same_write_only_after_the_completions_it_expected() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy("chain", CHAIN).await?;
    let run = fx.client().start("chain", &json!({})).await?;
    let (_, receipt) = next_job(&fx).await?;
    fx.queue.delete(&[receipt]).await?;
    assert!(matches!(fx.store.complete(&run, "a", &done(&["b"]), &json!(1), 3, None).await?, Recorded::New(..)));
    // A worker that believed b was the last, with no completion before it: b is recorded alone.
    let stale = Finish { status: "succeeded", output_node: "b", after: 0 };
    let b = fx.store.complete(&run, "b", &done(&["c"]), &json!(2), 3, Some(stale)).await?;
    assert!(matches!(&b, Recorded::New(d, _) if d.len() == 2), "{b:?}");
    assert_eq!(fx.client().status(&run).await?.context("run")?.status, "running");
    let last = Finish { status: "succeeded", output_node: "c", after: 2 };
    let c = fx.store.complete(&run, "c", &done(&[]), &json!(3), 3, Some(last)).await?;
    assert_eq!(c, Recorded::Finished { parent: None });
    let s = fx.client().status(&run).await?.context("run")?;
    assert_eq!((s.status.as_str(), s.output_node.as_deref(), s.done.len()), ("succeeded", Some("c"), 3));
    assert_eq!(fx.client().output(&run).await?, Some(json!(3)));
    assert!(!fx.store.stalled(now_ms() + 60_000).await?.contains(&run), "the finish took the run off the index");
    let again = fx.store.complete(&run, "c", &done(&[]), &json!(3), 3, Some(last)).await?;
    assert_eq!(again, Recorded::NotRunning);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_that_keeps_failing_goes_to_the_dlq_after_max_receive_count() -> Result<()> {
    let emu = adf_acceptance::Emulator::start()?;
    let config = adf_acceptance::sdk_config(emu.endpoint()).await;
    let fx = Fixture::on(emu, &config, Some(2)).await?;
    fx.sqs.send_message().queue_url(&fx.queue_url).message_body("{\"not\": \"a job\"}").send().await?;
    let poller = fx.poller(fx.worker(WorkerConfig::default()), 2);
    let dlq = fx.dlq_url.clone().context("dlq")?;
    let mut moved = 0;
    for _ in 0..40 {
        let got = fx.sqs.receive_message().queue_url(&dlq).wait_time_seconds(1).send().await?;
        moved += got.messages().len();
        if moved > 0 {
            break;
        }
    }
    let stats = poller.stop().await?;
    assert_eq!(moved, 1, "the message reached the DLQ");
    assert!(stats.left >= 2, "received twice and never deleted: {stats:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subflow_completes_its_parent_node_with_its_output() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy(
        "inner",
        r#"{"nodes": {"x": {"uses": "transform", "params": {"template": {"doubled": "$.n"}}}, "y": {"uses": "count"}},
            "edges": [{"from": "x", "to": "y"}]}"#,
    )
    .await?;
    fx.deploy(
        "outer",
        r#"{"nodes": {"start": {"uses": "count"}, "child": {"uses": "subflow", "params": {"blueprint": "inner"}}, "end": {"uses": "count"}},
            "edges": [{"from": "start", "to": "child"}, {"from": "child", "to": "end"}]}"#,
    )
    .await?;
    let run = fx.client().start("outer", &json!({"n": 21})).await?;
    let poller = fx.poller(fx.worker(WorkerConfig::default()), 4);
    let s = fx.finished(&run, 30).await?;
    poller.stop().await?;
    assert_eq!(s.status, "succeeded", "{:?}", s.error);
    let child = fx.client().status(&format!("{run}.child")).await?.context("child run")?;
    assert_eq!(child.status, "succeeded");
    assert_eq!(child.parent, Some((run.clone(), "child".to_string())));
    assert_eq!(fx.client().output(&run).await?, Some(json!({"doubled": 21})));
    assert_eq!(fx.log.runs_of("end"), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_not_yet_due_goes_back_to_the_queue_without_running() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy("pay", r#"{"nodes": {"charge": {"uses": "count"}}, "edges": []}"#).await?;
    let run = fx.client().start("pay", &json!({})).await?;
    let (job, receipt) = next_job(&fx).await?;
    fx.queue.delete(&[receipt]).await?;
    let worker = fx.worker(WorkerConfig::default());
    // A retry 20 minutes out comes back from SQS after 15: it must wait again, not run.
    let due = now_ms() + 20 * 60 * 1000;
    let early = Job { attempt: 1, not_before: Some(due), ..job.clone() };
    assert_eq!(worker.handle(early, None).await?, Outcome::Requeued);
    assert_eq!(fx.log.runs_of("charge"), 0, "a retry that is not due ran");
    let s = fx.client().status(&run).await?.context("run")?;
    assert!(s.last_updated >= due, "the run is not kept fresh until the retry is due");
    let due_now = Job { attempt: 1, not_before: Some(now_ms() - 1), ..job };
    assert!(matches!(worker.handle(due_now, None).await?, Outcome::Done { .. }));
    assert_eq!(fx.log.runs_of("charge"), 1);
    assert_eq!(fx.client().status(&run).await?.context("run")?.status, "succeeded");
    Ok(())
}

const INNER: &str = r#"{"nodes": {"x": {"uses": "transform", "params": {"template": {"doubled": "$.n"}}}, "y": {"uses": "count"}},
    "edges": [{"from": "x", "to": "y"}]}"#;

const OUTER: &str = r#"{"nodes": {"start": {"uses": "count"}, "child": {"uses": "subflow", "params": {"blueprint": "inner"}}, "end": {"uses": "count"}},
    "edges": [{"from": "start", "to": "child"}, {"from": "child", "to": "end"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_subflow_wake_up_is_recovered_by_the_reconciler_without_running_the_child_again() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy("inner", INNER).await?;
    fx.deploy("outer", OUTER).await?;
    let run = fx.client().start("outer", &json!({"n": 21})).await?;
    let worker = fx.worker(WorkerConfig::default());
    // By hand, one job at a time: the parent's start and subflow node, then the whole child,
    // whose last step sends the parent's wake-up.
    for expected in [run.clone(), format!("{run}.child")] {
        let (job, receipt) = next_job(&fx).await?;
        assert_eq!(job.run, expected);
        worker.handle(job, None).await?;
        fx.queue.delete(&[receipt]).await?;
    }
    assert_eq!(fx.client().status(&format!("{run}.child")).await?.context("child")?.status, "succeeded");
    // The wake-up is lost: received and deleted, never handled (a worker killed with it).
    let (wake, receipt) = next_job(&fx).await?;
    assert_eq!((wake.run.as_str(), wake.node.as_str()), (run.as_str(), "child"));
    fx.queue.delete(&[receipt]).await?;
    assert_eq!(fx.client().status(&run).await?.context("parent")?.status, "running");

    // The parent waits at most SUBFLOW_WAIT unchecked: the reconciler finds it stalled now,
    // since nothing woke it, but not before.
    let report = reconciler::reconcile(&fx.store, &fx.queue, Duration::ZERO).await?;
    assert_eq!(report.stalled, 0, "the parent is left alone while it waits: {report:?}");
    let waited = adf_workflow::worker::SUBFLOW_WAIT + Duration::from_secs(1);
    let later = now_ms() + i64::try_from(waited.as_millis())?;
    let stalled = fx.store.stalled(later).await?;
    assert_eq!(stalled, std::slice::from_ref(&run), "only the waiting parent is stalled once SUBFLOW_WAIT has passed");
    fx.store.touch(&run, now_ms() - 1).await?; // as it stands once SUBFLOW_WAIT has passed
    let report = reconciler::reconcile(&fx.store, &fx.queue, Duration::ZERO).await?;
    assert_eq!((report.stalled, report.resumed_jobs), (1, 1), "{report:?}");

    let poller = fx.poller(worker, 4);
    let s = fx.finished(&run, 30).await?;
    poller.stop().await?;
    assert_eq!(s.status, "succeeded", "{:?}", s.error);
    assert_eq!(fx.client().output(&run).await?, Some(json!({"doubled": 21})));
    assert_eq!(fx.log.runs_of("y"), 1, "the child ran once");
    assert_eq!(fx.log.runs_of("end"), 1);
    assert!(fx.client().status(&format!("{run}.child.1")).await?.is_none(), "no second child was started");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_subflow_goes_through_the_parents_retries_and_fallback_and_up_to_the_grandparent() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy("pay", r#"{"nodes": {"charge": {"uses": "flaky"}}, "edges": []}"#).await?;
    // The parent retries its subflow once (a new child), then falls back.
    fx.deploy(
        "checkout",
        r#"{"nodes": {
                "pay": {"uses": "subflow", "params": {"blueprint": "pay"}, "max_retries": 1, "retry_delay": "1s", "fallback": "refund"},
                "refund": {"uses": "count"}
            },
            "edges": []}"#,
    )
    .await?;
    // Without a fallback, the failure climbs: the grandparent's node fails too.
    fx.deploy("strict", r#"{"nodes": {"pay": {"uses": "subflow", "params": {"blueprint": "pay"}}}, "edges": []}"#)
        .await?;
    fx.deploy(
        "order",
        r#"{"nodes": {"checkout": {"uses": "subflow", "params": {"blueprint": "strict"}}}, "edges": []}"#,
    )
    .await?;

    let checkout = fx.client().start("checkout", &json!({"amount": 30})).await?;
    let order = fx.client().start("order", &json!({"amount": 40})).await?;
    let poller = fx.poller(fx.worker(WorkerConfig::default()), 4);
    let c = fx.finished(&checkout, 60).await?;
    let o = fx.finished(&order, 60).await?;
    poller.stop().await?;

    assert_eq!(c.status, "succeeded", "the fallback ran: {:?}", c.error);
    assert!(c.done["pay"].failed);
    assert_eq!(fx.log.runs_of("refund"), 1);
    for child in [format!("{checkout}.pay"), format!("{checkout}.pay.1")] {
        let s = fx.client().status(&child).await?.with_context(|| format!("{child}: one child per attempt"))?;
        assert_eq!(s.status, "failed");
    }
    let refund =
        fx.store.outputs(&checkout, &c.outputs, &["refund".to_string()]).await?.remove("refund").context("refund")?;
    assert!(
        refund["error"].as_str().is_some_and(|e| e.contains("after 2 attempt(s)") && e.contains("subflow")),
        "{refund}"
    );

    assert_eq!(o.status, "failed");
    let why = o.error.unwrap_or_default();
    assert!(why.contains(&format!("subflow {order}.checkout failed")), "{why}");
    let strict = fx.client().status(&format!("{order}.checkout")).await?.context("the parent")?;
    assert_eq!(strict.status, "failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inputs_pull_from_the_run_input_and_earlier_outputs() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy(
        "refs",
        r#"{"nodes": {
                "a": {"uses": "count", "params": {"output": {"total": 5}}},
                "b": {"uses": "count"},
                "c": {"uses": "count", "inputs": {"order": "input.order", "total": "a.total"}}
            },
            "edges": [{"from": "a", "to": "b", "transform": {"seen": "$.total"}}, {"from": "b", "to": "c"}]}"#,
    )
    .await?;
    let run = fx.client().start("refs", &json!({"order": 7})).await?;
    let poller = fx.poller(fx.worker(WorkerConfig::default()), 2);
    fx.finished(&run, 30).await?;
    poller.stop().await?;
    assert_eq!(fx.client().output(&run).await?, Some(json!({"seen": 5, "order": 7, "total": 5})));
    Ok(())
}

const CHAIN_OF_FOUR: &str = r#"{
    "nodes": {"a": {"uses": "count"}, "b": {"uses": "count"}, "c": {"uses": "count"}, "d": {"uses": "count"}},
    "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "d"}]
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_pinned_to_a_version_finishes_on_it_after_another_is_deployed() -> Result<()> {
    let fx = Fixture::new().await?;
    let store = &fx.store;
    let names = vec!["chain".to_string(), "refund".to_string()];
    assert!(store.current(&names).await?.is_empty(), "nothing deployed yet");
    let v1_bp = Blueprint::from_json(CHAIN)?;
    let v1 = store.deploy("orders", "chain", &v1_bp, CHAIN).await?;
    assert_eq!(v1, v1_bp.version());
    let found = store.current(&names).await?;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found.get("chain"), Some(&Current { version: v1.clone(), source: Some(CHAIN.to_string()) }));
    assert_eq!(store.current_version("chain").await?, v1);

    // A run starts on v1; v2 is deployed before any node runs.
    let run = fx.client().start("chain", &json!({"order": 7})).await?;
    let v2 = store.deploy("orders", "chain", &Blueprint::from_json(CHAIN_OF_FOUR)?, CHAIN_OF_FOUR).await?;
    assert_ne!(v1, v2);
    assert_eq!(store.current(&names).await?.get("chain").map(|c| c.version.clone()), Some(v2.clone()));
    assert_eq!(store.canonical("chain", &v1).await?, v1_bp.canonical_json(), "v1 is kept");
    let poller = fx.poller(fx.worker(WorkerConfig::default()), 4);
    let status = fx.finished(&run, 30).await?;
    poller.stop().await?;
    assert_eq!((status.status.as_str(), status.version.as_str(), status.done.len()), ("succeeded", v1.as_str(), 3));
    assert_eq!(fx.log.runs_of("d"), 0, "the run never saw v2's node");

    // A version item is written once: deploying the same version again leaves it as it was.
    let key = |version: &str| {
        std::collections::HashMap::from([
            ("runId".to_string(), aws_sdk_dynamodb::types::AttributeValue::S("blueprint#chain".into())),
            ("key".to_string(), aws_sdk_dynamodb::types::AttributeValue::S(version.into())),
        ])
    };
    let contexts = store.tables().contexts.clone();
    fx.ddb
        .update_item()
        .table_name(&contexts)
        .set_key(Some(key(&v1)))
        .update_expression("SET marker = :m")
        .expression_attribute_values(":m", aws_sdk_dynamodb::types::AttributeValue::S("kept".into()))
        .send()
        .await?;
    assert_eq!(store.deploy("orders", "chain", &v1_bp, CHAIN).await?, v1);
    let item = fx.ddb.get_item().table_name(&contexts).set_key(Some(key(&v1))).send().await?.item.context("v1")?;
    assert!(item.contains_key("marker") && item.contains_key("json"), "{item:?}");
    assert_eq!(store.current_version("chain").await?, v1);

    // The workflow's record of its blueprints.
    assert_eq!(store.index("orders").await?, None);
    store.put_index("orders", &names).await?;
    assert_eq!(store.index("orders").await?, Some(names.clone()));
    store.delete_index("orders").await?;
    assert_eq!(store.index("orders").await?, None);
    store.delete_index("orders").await?;

    // Only the workflow that deployed a blueprint deletes its current item; versions stay.
    assert!(!store.delete_current("billing", "chain").await?, "another workflow's delete is refused");
    assert_eq!(store.current_version("chain").await?, v1);
    assert!(store.delete_current("orders", "chain").await?);
    assert!(store.current(&names).await?.is_empty());
    assert!(store.delete_current("orders", "chain").await?, "a missing item is fine");
    assert_eq!(
        store.blueprint("chain", &v2).await?.canonical_json(),
        Blueprint::from_json(CHAIN_OF_FOUR)?.canonical_json()
    );
    // A blueprint stored without an owner may be deleted by any workflow.
    store.put_blueprint("refund", &v1_bp).await?;
    assert_eq!(store.current(&names).await?.get("refund"), Some(&Current { version: v1.clone(), source: None }));
    assert!(store.delete_current("billing", "refund").await?);

    // Tables that are gone: nothing is current, nothing is recorded, deletes are fine.
    let gone =
        Store::new(fx.ddb.clone(), Tables { contexts: "gone-contexts".into(), statuses: "gone-statuses".into() });
    assert!(gone.current(&names).await?.is_empty());
    assert_eq!(gone.index("orders").await?, None);
    assert!(gone.delete_current("orders", "chain").await?);
    gone.delete_index("orders").await?;
    Ok(())
}

/// A Lambda invocation's deadline: a ready successor runs in process only when its whole
/// timeout fits before it (a node that only computes needs no room); otherwise it is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_successor_continues_in_process_only_when_its_timeout_fits_the_deadline() -> Result<()> {
    let fx = Fixture::new().await?;
    fx.deploy(
        "steps",
        r#"{"nodes": {"a": {"uses": "count"}, "b": {"uses": "count", "timeout": "30s"}, "c": {"uses": "pass"}},
            "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]}"#,
    )
    .await?;
    let run = fx.client().start("steps", &json!({})).await?;
    let (job, receipt) = next_job(&fx).await?;
    fx.queue.delete(&[receipt]).await?;
    let worker = fx.worker(WorkerConfig { continue_for: Duration::MAX, ..WorkerConfig::default() });
    // 10 s left: b's 30 s timeout does not fit, so b goes to the queue, not run here.
    let soon = std::time::Instant::now() + Duration::from_secs(10);
    assert_eq!(worker.handle_until(job, None, Some(soon)).await?, Outcome::Done { nodes: 1 });
    assert_eq!((fx.log.runs_of("a"), fx.log.runs_of("b")), (1, 0));
    let (job, receipt) = next_job(&fx).await?;
    fx.queue.delete(&[receipt]).await?;
    assert_eq!(job.node, "b");
    assert_eq!(fx.client().status(&run).await?.context("run")?.status, "running");
    // A fresh invocation with 60 s: b runs, and c (a pass) continues in process.
    let later = std::time::Instant::now() + Duration::from_secs(60);
    assert_eq!(worker.handle_until(job, None, Some(later)).await?, Outcome::Done { nodes: 2 });
    assert_eq!(fx.log.runs_of("b"), 1);
    assert_eq!(fx.client().status(&run).await?.context("run")?.status, "succeeded");
    Ok(())
}
