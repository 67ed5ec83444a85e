//! A workflow's tables and queue on a fresh emulator (the layout `adf_workflow_tables` makes),
//! a worker on them, and test node types that count their runs. With `ADF_TEST_DYNAMODB=dynalite`
//! the tables are on a dynalite server of their own and moto serves SQS.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use adf_acceptance::dynalite::{self, Dynalite};
use adf_acceptance::{Emulator, unique_name};
use adf_workflow::blueprint::Blueprint;
use adf_workflow::client::Client;
use adf_workflow::node::{Node, NodeContext, NodeError, NodeResult, Registry, Services};
use adf_workflow::poller::{self, PollStats, PollerConfig};
use adf_workflow::queue::Queue;
use adf_workflow::store::{RunStatus, Store, Tables};
use adf_workflow::worker::{Worker, WorkerConfig};
use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use tokio::sync::oneshot;

pub struct Fixture {
    _emu: Emulator,
    _dynalite: Option<Dynalite>,
    pub ddb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub dlq_url: Option<String>,
    pub store: Store,
    pub queue: Queue,
    pub log: Log,
}

/// Every node run by the test node types: (node id, attempt, epoch ms).
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<(String, u32, i64)>>>);

impl Log {
    pub fn runs_of(&self, node: &str) -> usize {
        self.0.lock().map(|l| l.iter().filter(|(n, _, _)| n == node).count()).unwrap_or(0)
    }

    pub fn times_of(&self, node: &str) -> Vec<i64> {
        self.0.lock().map(|l| l.iter().filter(|(n, _, _)| n == node).map(|(_, _, t)| *t).collect()).unwrap_or_default()
    }

    fn record(&self, node: &str, attempt: u32) {
        if let Ok(mut l) = self.0.lock() {
            l.push((node.to_string(), attempt, adf_workflow::store::now_ms()));
        }
    }
}

/// `count`: logs its run and passes its input on (with `params.output` if set).
struct Count(Log);

#[async_trait]
impl Node for Count {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        self.0.record(cx.node_id, cx.attempt);
        Ok(NodeResult::output(cx.params.get("output").cloned().unwrap_or(cx.input)))
    }
}

/// `flaky`: logs its run and fails (retryably).
struct Flaky(Log);

#[async_trait]
impl Node for Flaky {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        self.0.record(cx.node_id, cx.attempt);
        Err(NodeError::Retryable("the payment service is down".into()))
    }
}

/// `slow`: logs its run, then takes `params.ms` milliseconds.
struct Slow(Log);

#[async_trait]
impl Node for Slow {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        self.0.record(cx.node_id, cx.attempt);
        let ms = cx.params.get("ms").and_then(serde_json::Value::as_u64).unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(NodeResult::output(cx.input))
    }
}

/// `big`: outputs `params.bytes` bytes of text.
struct Big;

#[async_trait]
impl Node for Big {
    async fn run(&self, cx: NodeContext<'_>) -> Result<NodeResult, NodeError> {
        let n = cx.params.get("bytes").and_then(serde_json::Value::as_u64).unwrap_or(1000);
        Ok(NodeResult::output(serde_json::Value::String("x".repeat(usize::try_from(n).unwrap_or(0)))))
    }
}

impl Fixture {
    pub async fn new() -> Result<Self> {
        let emu = Emulator::start()?;
        let config = adf_acceptance::sdk_config(emu.endpoint()).await;
        Self::on(emu, &config, None).await
    }

    /// On `emu`, with clients from `config` (a bench passes an interceptor), and a DLQ after
    /// `max_receive` deliveries when given.
    pub async fn on(emu: Emulator, config: &aws_config::SdkConfig, max_receive: Option<u32>) -> Result<Self> {
        let dynalite = if dynalite::wanted() { Some(Dynalite::start()?) } else { None };
        let ddb = match &dynalite {
            Some(d) => aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(config).endpoint_url(d.endpoint()).build(),
            ),
            None => aws_sdk_dynamodb::Client::new(config),
        };
        let sqs = aws_sdk_sqs::Client::new(config);
        let name = unique_name("wf");
        let store = Store::new(
            ddb.clone(),
            Tables { contexts: format!("{name}-contexts"), statuses: format!("{name}-statuses") },
        );
        store.create_tables().await?;
        let mut q = sqs.create_queue().queue_name(format!("{name}-jobs"));
        let mut dlq_url = None;
        if let Some(max) = max_receive {
            let dlq = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await?;
            let url = dlq.queue_url.context("dlq url")?;
            let arn = sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await?
                .attributes
                .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
                .context("dlq arn")?;
            let redrive = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max}).to_string();
            q = q.attributes(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy, redrive);
            dlq_url = Some(url);
        }
        let queue_url = q.send().await?.queue_url.context("queue url")?;
        let queue = Queue::new(sqs.clone(), &queue_url);
        Ok(Self { _emu: emu, _dynalite: dynalite, ddb, sqs, queue_url, dlq_url, store, queue, log: Log::default() })
    }

    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_builtins();
        r.register("count", Count(self.log.clone()));
        r.register("flaky", Flaky(self.log.clone()));
        r.register("slow", Slow(self.log.clone()));
        r.register("big", Big);
        r
    }

    pub fn worker(&self, config: WorkerConfig) -> Arc<Worker> {
        let services = Services {
            lambda: None,
            http: adf_workflow::egress::HttpClient::new(adf_workflow::egress::Egress::default()),
            registry: self.registry(),
        };
        Arc::new(Worker::new(self.store.clone(), self.queue.clone(), services, config))
    }

    pub fn client(&self) -> Client {
        Client::new(self.store.clone(), self.queue.clone())
    }

    pub async fn deploy(&self, name: &str, json: &str) -> Result<String> {
        let bp = Blueprint::from_json(json)?;
        Ok(self.store.put_blueprint(name, &bp).await?)
    }

    /// A poller on its own task until the returned sender fires (or is dropped).
    pub fn poller(&self, worker: Arc<Worker>, concurrency: usize) -> Running {
        let (stop, stopped) = oneshot::channel::<()>();
        let config = PollerConfig {
            concurrency,
            wait: Duration::from_secs(1),
            visibility: Duration::from_secs(5),
            grace: Duration::from_secs(5),
        };
        let task = tokio::spawn(async move {
            poller::run(worker, config, async {
                let _ = stopped.await;
            })
            .await
        });
        Running { stop: Some(stop), task }
    }

    /// Waits until `run` leaves `running` (at most `secs`).
    pub async fn finished(&self, run: &str, secs: u64) -> Result<RunStatus> {
        let s = self
            .client()
            .wait(run, Duration::from_millis(200), Duration::from_secs(secs), |_| {})
            .await?
            .context("no such run")?;
        if s.status == "running" {
            bail!("run {run} still running after {secs} s: {} of {} nodes done", s.done.len(), s.total);
        }
        Ok(s)
    }
}

/// A poller running on a task.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<PollStats, adf_workflow::worker::WorkerError>>,
}

impl Running {
    /// Asks it to stop and waits for its stats.
    pub async fn stop(mut self) -> Result<PollStats> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        Ok((&mut self.task).await??)
    }

    /// Kills it: no cleanup, as with SIGKILL.
    pub fn kill(self) {
        self.task.abort();
    }
}
