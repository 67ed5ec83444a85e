//! The built `adf workflow` against a moto server: tables and a queue as `adf_workflow_tables`
//! makes them, a blueprint of `pass` nodes, and a worker polling in process while the commands
//! run as separate processes (settings from the environment, or from a `--config` file).

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use adf_acceptance::{Emulator, unique_name};
use adf_workflow::blueprint::Blueprint;
use adf_workflow::node::{Registry, Services};
use adf_workflow::poller::{self, PollStats, PollerConfig};
use adf_workflow::queue::Queue;
use adf_workflow::store::{Store, Tables};
use adf_workflow::worker::{Worker, WorkerConfig, WorkerError};
use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use tokio::sync::oneshot;

const CHAIN: &str = r#"{
    "nodes": {"validate": {"uses": "pass"}, "charge": {"uses": "pass"}, "ship": {"uses": "pass"}},
    "edges": [{"from": "validate", "to": "charge"}, {"from": "charge", "to": "ship"}]
}"#;

/// A workflow's tables and queue on a fresh emulator.
struct Workflow {
    emu: Emulator,
    store: Store,
    queue: Queue,
    queue_url: String,
    dir: tempfile::TempDir,
}

/// A worker polling on its own task until stopped.
struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<PollStats, WorkerError>>,
}

impl Running {
    async fn stop(self) -> Result<PollStats> {
        let _ = self.stop.send(());
        Ok(self.task.await??)
    }
}

impl Workflow {
    async fn new() -> Result<Self> {
        let emu = Emulator::start()?;
        let config = adf_acceptance::sdk_config(emu.endpoint()).await;
        let name = unique_name("wf");
        let tables = Tables { contexts: format!("{name}-contexts"), statuses: format!("{name}-statuses") };
        let store = Store::new(aws_sdk_dynamodb::Client::new(&config), tables);
        store.create_tables().await?;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let queue_url =
            sqs.create_queue().queue_name(format!("{name}-jobs")).send().await?.queue_url.context("queue url")?;
        let queue = Queue::new(sqs, &queue_url);
        store.put_blueprint("order", &Blueprint::from_json(CHAIN)?).await?;
        Ok(Self { emu, store, queue, queue_url, dir: tempfile::tempdir()? })
    }

    /// Runs `adf workflow ARGS` with the emulator's endpoint, test credentials and `env`.
    async fn adf_with(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
        let mut command =
            adf_acceptance::emulator_command(env!("CARGO_BIN_EXE_adf"), self.emu.endpoint(), self.dir.path());
        command.arg("workflow").args(args).envs(env.iter().copied()).stdin(std::process::Stdio::null());
        Ok(command.output().await?)
    }

    /// Runs `adf workflow ARGS` with the queue and tables from the environment.
    async fn adf(&self, args: &[&str]) -> Result<Output> {
        let tables = self.store.tables();
        let env = [
            ("ADF_QUEUE_URL", self.queue_url.as_str()),
            ("ADF_CONTEXTS_TABLE", tables.contexts.as_str()),
            ("ADF_STATUSES_TABLE", tables.statuses.as_str()),
        ];
        self.adf_with(args, &env).await
    }

    /// What `terraform output -json client_config` prints, in a file.
    fn config_file(&self) -> Result<String> {
        let tables = self.store.tables();
        let config = json!({
            "queue_url": self.queue_url,
            "contexts_table": tables.contexts,
            "statuses_table": tables.statuses,
            "region": adf_acceptance::REGION,
        });
        let path = self.dir.path().join("wf.json");
        std::fs::write(&path, config.to_string())?;
        Ok(path.to_string_lossy().into_owned())
    }

    fn worker(&self) -> Running {
        let services = Services {
            lambda: None,
            http: adf_workflow::egress::HttpClient::new(adf_workflow::egress::Egress::default()),
            registry: Registry::with_builtins(),
        };
        let worker = Arc::new(Worker::new(self.store.clone(), self.queue.clone(), services, WorkerConfig::default()));
        let config = PollerConfig {
            concurrency: 4,
            wait: Duration::from_secs(1),
            visibility: Duration::from_secs(10),
            grace: Duration::from_secs(5),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            poller::run(worker, config, async {
                let _ = stopped.await;
            })
            .await
        });
        Running { stop, task }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Checks the exit code, showing both streams when it is not the one expected.
fn expect(o: &Output, code: i32, what: &str) -> Result<()> {
    ensure!(
        o.status.code() == Some(code),
        "{what}: exit {:?}, not {code}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    Ok(())
}

/// A one-line `adf: ...` error with exit code `code`, last on standard error (after `wait`'s
/// progress lines).
fn expect_error(o: &Output, code: i32, what: &str, contains: &str) -> Result<()> {
    expect(o, code, what)?;
    let err = stderr(o);
    let last = err.lines().last().unwrap_or_default();
    ensure!(last.starts_with("adf: ") && err.matches("adf: ").count() == 1, "{what}: {err}");
    ensure!(last.contains(contains), "{what}: {err} does not say {contains:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_starts_succeeds_and_cannot_be_cancelled_after() -> Result<()> {
    let wf = Workflow::new().await?;
    let start = wf.adf(&["start", "--blueprint", "order", "--input", r#"{"order": 42}"#]).await?;
    expect(&start, 0, "start")?;
    let run = stdout(&start).trim().to_string();
    ensure!(!run.is_empty() && !run.contains(char::is_whitespace), "start printed {:?}", stdout(&start));

    // No worker yet: the run waits at its first node.
    let status = wf.adf(&["status", &run]).await?;
    expect(&status, 0, "status")?;
    let text = stdout(&status);
    ensure!(text.contains("status     running") && text.contains("nodes      0/3 done"), "{text}");
    ensure!(text.contains("blueprint  order@"), "{text}");

    // Waiting with no worker times out with exit code 3.
    let timeout = wf.adf(&["wait", &run, "--timeout", "1s", "--interval", "200ms"]).await?;
    expect_error(&timeout, 3, "wait without a worker", "still running after 1s: 0/3 nodes done")?;

    // The settings may come from the client_config file instead of the environment.
    let config = wf.config_file()?;
    let worker = wf.worker();
    let waited =
        wf.adf_with(&["--config", &config, "wait", &run, "--interval", "200ms", "--timeout", "60s"], &[]).await?;
    expect(&waited, 0, "wait")?;
    let text = stdout(&waited);
    ensure!(text.contains("status     succeeded") && text.contains("nodes      3/3 done"), "{text}");
    ensure!(text.contains(r#"output     {"order":42}"#), "{text}");
    // Not a terminal: a progress line per change, the last one complete.
    ensure!(stderr(&waited).lines().last() == Some("succeeded 3/3 nodes done"), "{}", stderr(&waited));

    let json = wf.adf(&["status", &run, "--json"]).await?;
    expect(&json, 0, "status --json")?;
    let v: Value = serde_json::from_str(&stdout(&json))?;
    ensure!(v["status"] == "succeeded" && v["done"] == 3 && v["total"] == 3, "{v}");
    ensure!(v["output"] == json!({"order": 42}) && v["nodes"]["ship"]["action"] == "default", "{v}");

    let cancel = wf.adf(&["cancel", &run]).await?;
    expect_error(&cancel, 1, "cancel after the end", "is not running: it succeeded")?;
    worker.stop().await?;

    // A run cancelled while no worker runs ends as cancelled; waiting for it exits 1.
    let start = wf.adf_with(&["--config", &config, "start", "-b", "order"], &[]).await?;
    expect(&start, 0, "start with --config")?;
    let run = stdout(&start).trim().to_string();
    let cancel = wf.adf(&["cancel", &run]).await?;
    expect(&cancel, 0, "cancel")?;
    ensure!(stdout(&cancel).trim() == format!("cancelled {run}"), "{}", stdout(&cancel));
    let waited = wf.adf(&["wait", &run]).await?;
    expect_error(&waited, 1, "wait for a cancelled run", "was cancelled")?;
    ensure!(stdout(&waited).contains("status     cancelled"), "{}", stdout(&waited));

    let missing = wf.adf(&["status", "no-such-run"]).await?;
    expect_error(&missing, 1, "status of no run", "no run no-such-run")?;
    let missing = wf.adf(&["start", "--blueprint", "refund"]).await?;
    expect_error(&missing, 1, "start of no blueprint", "no blueprint refund")?;
    let bad = wf.adf(&["start", "--blueprint", "order", "--input", "{order"]).await?;
    expect_error(&bad, 1, "start with bad input", "not JSON")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_a_worker_is_listed_stalled_and_reconciled() -> Result<()> {
    let wf = Workflow::new().await?;
    let none = wf.adf(&["runs", "--stalled", "--older-than", "0s"]).await?;
    expect(&none, 0, "runs with none stalled")?;
    ensure!(stdout(&none).trim() == "no runs stalled for more than 0s", "{}", stdout(&none));

    let start = wf.adf(&["start", "--blueprint", "order"]).await?;
    expect(&start, 0, "start")?;
    let run = stdout(&start).trim().to_string();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let runs = wf.adf(&["runs", "--stalled", "--older-than", "0s"]).await?;
    expect(&runs, 0, "runs --stalled")?;
    let text = stdout(&runs);
    let lines: Vec<&str> = text.lines().collect();
    ensure!(lines.len() == 2 && lines[0].starts_with("RUN "), "{text}");
    ensure!(lines[1].starts_with(&run) && lines[1].contains(" order@") && lines[1].contains(" 0/3 "), "{text}");
    let recent = wf.adf(&["runs", "--stalled"]).await?;
    ensure!(stdout(&recent).trim() == "no runs stalled for more than 5m", "{}", stdout(&recent));
    let json = wf.adf(&["runs", "--stalled", "--older-than", "0s", "--json"]).await?;
    let v: Value = serde_json::from_str(&stdout(&json))?;
    ensure!(v[0]["run_id"] == run.as_str() && v[0]["total"] == 3, "{v}");

    let reconcile = wf.adf(&["reconcile", "--older-than", "0s"]).await?;
    expect(&reconcile, 0, "reconcile")?;
    let text = stdout(&reconcile);
    ensure!(text.trim() == "1 stalled run: 1 job sent again, 0 runs found finished", "{text}");
    // The start job is on the queue twice now (start and reconcile): the run completes once.
    let worker = wf.worker();
    let waited = wf.adf(&["wait", &run, "--interval", "200ms", "--timeout", "60s"]).await?;
    expect(&waited, 0, "wait after reconcile")?;
    worker.stop().await?;

    // Reconcile needs the queue; the error says where to set it.
    let tables = wf.store.tables();
    let env = [("ADF_CONTEXTS_TABLE", tables.contexts.as_str()), ("ADF_STATUSES_TABLE", tables.statuses.as_str())];
    let no_queue = wf.adf_with(&["reconcile"], &env).await?;
    expect_error(&no_queue, 1, "reconcile without a queue", "ADF_QUEUE_URL")?;
    let no_tables = wf.adf_with(&["status", &run], &[]).await?;
    expect_error(&no_tables, 1, "status without tables", "--contexts-table")?;
    Ok(())
}
