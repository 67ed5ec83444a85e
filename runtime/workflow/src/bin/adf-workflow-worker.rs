//! The workflow worker: a Lambda on the job queue (when started by the Lambda runtime), or a
//! long-running poller (anywhere else) that stops gracefully on SIGTERM or Ctrl-C.
//!
//! Environment ([`WorkerSettings`]): `ADF_QUEUE_URL`, `ADF_CONTEXTS_TABLE`,
//! `ADF_STATUSES_TABLE`, `ADF_HTTP_ALLOWED_NETWORKS` (see `adf_workflow::egress`); the poller
//! also reads `ADF_CONCURRENCY` (default 8) and `ADF_VISIBILITY_TIMEOUT` (seconds, default 60). AWS settings
//! come from the usual chain, so `AWS_ENDPOINT_URL` points it at an emulator.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use adf_common::contract::EnvSettings;
use adf_workflow::contract::{CONCURRENCY_ENV, HTTP_ALLOWED_NETWORKS_ENV, VISIBILITY_ENV, WorkerSettings};
use adf_workflow::egress::{Egress, HttpClient};
use adf_workflow::node::{Registry, Services};
use adf_workflow::poller::{self, PollerConfig};
use adf_workflow::queue::Queue;
use adf_workflow::store::Store;
use adf_workflow::worker::{Worker, WorkerConfig};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let on_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    if on_lambda {
        // Lambda's logging controls: JSON lines and the level when the function asks for them.
        lambda_runtime::tracing::init_default_subscriber();
    } else {
        adf_common::logging::init_stderr();
    }
    let settings = WorkerSettings::from_env()?;
    let sdk = adf_common::sdk::load().await;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), settings.tables());
    let queue_url = settings.queue_url.clone();
    let queue = Queue::new(aws_sdk_sqs::Client::new(&sdk), settings.queue_url);
    let allow = match std::env::var(HTTP_ALLOWED_NETWORKS_ENV) {
        Ok(text) => Egress::parse_networks(&text).map_err(|e| format!("{HTTP_ALLOWED_NETWORKS_ENV}: {e}"))?,
        Err(_) => Vec::new(),
    };
    let egress = if on_lambda { Egress::lambda(allow) } else { Egress { allow, ..Egress::default() } };
    let services = Services {
        lambda: Some(aws_sdk_lambda::Client::new(&sdk)),
        http: HttpClient::new(egress),
        registry: Registry::with_builtins(),
    };
    // On Lambda the invocation's deadline, from its context, bounds how far a job continues in
    // process (each ready successor only if its timeout fits); the rest goes through the queue.
    let config = if on_lambda {
        WorkerConfig { continue_for: Duration::MAX, ..WorkerConfig::default() }
    } else {
        WorkerConfig::default()
    };
    // Node durations and outcomes: EMF lines on stdout on Lambda (no API call), off elsewhere
    // unless ADF_METRICS says otherwise.
    let metrics = adf_common::metrics::Metrics::from_env(adf_workflow::worker::METRICS_NAMESPACE, &sdk)
        .with_dimension("Queue", settings_queue_name(&queue_url));
    let worker = Arc::new(Worker::new(store, queue, services, config).with_metrics(metrics));
    if on_lambda {
        let w = Arc::clone(&worker);
        return lambda_runtime::run(lambda_runtime::service_fn(
            move |e: lambda_runtime::LambdaEvent<serde_json::Value>| {
                let w = Arc::clone(&w);
                let left = e.context.deadline().duration_since(SystemTime::now()).unwrap_or_default();
                let deadline = Some(Instant::now() + left);
                async move {
                    adf_workflow::lambda::handle(&w, e.payload, deadline).await.map_err(|e| Error::from(e.to_string()))
                }
            },
        ))
        .await;
    }
    let defaults = PollerConfig::default();
    let concurrency = std::env::var(CONCURRENCY_ENV).ok().and_then(|c| c.parse().ok()).unwrap_or(defaults.concurrency);
    let visibility = std::env::var(VISIBILITY_ENV).ok().and_then(|c| c.parse().ok()).map(Duration::from_secs);
    let config = PollerConfig { concurrency, visibility: visibility.unwrap_or(defaults.visibility), ..defaults };
    let stats = poller::run(worker, config, shutdown()).await?;
    tracing::info!(?stats, "stopped");
    Ok(())
}

/// The queue's name: the last segment of its URL.
fn settings_queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
