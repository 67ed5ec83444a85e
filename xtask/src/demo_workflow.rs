//! The demo's workflow part: an order (validate -> [charge, reserve] -> ship) started with the
//! Rust client and run by the deployed worker zip under the local Lambda runner, fed SQS
//! batches the way Lambda's event source mapping feeds it (`adf_acceptance::event_source`).

use std::path::Path;
use std::time::{Duration, Instant};

use adf_acceptance::lambda_runner::{LambdaRunner, deployed};
use adf_acceptance::{Emulator, sdk_config};
use adf_workflow::client::Client;
use adf_workflow::queue::Queue;
use adf_workflow::store::{Store, Tables};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Runs one order through the deployed worker `function`; `config` is the resource's
/// `client_config` output.
pub async fn exercise(emu: &Emulator, zip: &Path, function: &str, config: &Value) -> Result<()> {
    let field = |k: &str| config[k].as_str().map(str::to_string).with_context(|| format!("client_config.{k}"));
    let sdk = sdk_config(emu.endpoint()).await;
    let tables = Tables { contexts: field("contexts_table")?, statuses: field("statuses_table")? };
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = field("queue_url")?;
    let client =
        Client::new(Store::new(aws_sdk_dynamodb::Client::new(&sdk), tables), Queue::new(sqs.clone(), &queue_url));
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let runner = LambdaRunner::start(&deployed(&lambda, function, zip, emu.endpoint()).await?).await?;

    let before = emu.request_count();
    let started = Instant::now();
    let input = json!({"order": 1001, "amount": 30, "items": ["book", "lamp"]});
    let run = client.start("order", &input).await?;
    println!("==> started run {run} of blueprint order with {input}");
    let mut invocations = 0;
    loop {
        if adf_acceptance::event_source::deliver_batch(&runner, &sqs, &queue_url).await? > 0 {
            invocations += 1;
        }
        let status = client.status(&run).await?.context("no such run")?;
        if status.status != "running" {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("run {run} still running after 60 s");
        }
    }
    let status = client.status(&run).await?.context("no such run")?;
    for node in ["validate", "charge", "reserve", "ship", "refund"] {
        let state = match status.done.get(node) {
            Some(c) if c.failed => format!("failed (action {})", c.action),
            Some(c) => format!(
                "done (action {}, then {})",
                c.action,
                if c.taken.is_empty() { "-".into() } else { c.taken.join(", ") }
            ),
            None => "not run".into(),
        };
        println!("    {node:<9} {state}");
    }
    let output = client.output(&run).await?.unwrap_or(Value::Null);
    println!(
        "==> run {run}: {} in {:.1} s, {} worker invocation(s), {} AWS requests; output {output}",
        status.status,
        started.elapsed().as_secs_f64(),
        invocations,
        emu.request_count() - before
    );
    if status.status != "succeeded" {
        bail!("the order run ended {}: {:?}", status.status, status.error);
    }
    Ok(())
}
