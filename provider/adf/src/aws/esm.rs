//! The SQS event source mapping that feeds the job queue to the worker: partial batch
//! responses (`ReportBatchItemFailures`), batch size, maximum concurrency, enabled.

use std::time::{Duration, Instant};

use aws_sdk_lambda::Client;
use aws_sdk_lambda::types::{FunctionResponseType, ScalingConfig};

use super::error::{AwsError, Sent, Target, call};

/// How long to keep retrying a create while the function's new role propagates through IAM.
const IAM_PROPAGATION: Duration = Duration::from_secs(120);
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// SQS batches larger than this need a batching window of at least one second.
const UNWINDOWED_BATCH: i64 = 10;

/// What the mapping should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EsmSpec {
    /// The worker function's name.
    pub function: String,
    /// The job queue's ARN.
    pub queue_arn: String,
    /// Messages per invocation.
    pub batch_size: i64,
    /// Concurrent invocations at most (2 to 1000), or Lambda's default.
    pub maximum_concurrency: Option<i64>,
    /// Whether Lambda polls the queue.
    pub enabled: bool,
}

impl EsmSpec {
    fn fifo(&self) -> bool {
        self.queue_arn.ends_with(".fifo")
    }

    /// The batching window: FIFO queues take none; standard queues need one second above ten
    /// messages a batch.
    pub fn batching_window(&self) -> Option<i32> {
        if self.fifo() { None } else { Some(i32::from(self.batch_size > UNWINDOWED_BATCH)) }
    }
}

/// A mapping as Lambda reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EsmState {
    /// Its id.
    pub uuid: String,
    /// The queue it polls.
    pub queue_arn: String,
    /// Messages per invocation.
    pub batch_size: i64,
    /// Its maximum concurrency, when set.
    pub maximum_concurrency: Option<i64>,
    /// `Enabled`, `Disabled`, `Creating`, `Updating`, ...
    pub state: String,
    /// Whether the function reports partial batch failures.
    pub report_failures: bool,
}

impl EsmState {
    /// Enabled or not; None while it is being created, updated or deleted.
    pub fn enabled(&self) -> Option<bool> {
        match self.state.as_str() {
            "Enabled" | "Enabling" => Some(true),
            "Disabled" | "Disabling" => Some(false),
            _ => None,
        }
    }

    fn settled(&self) -> bool {
        matches!(self.state.as_str(), "Enabled" | "Disabled")
    }
}

fn state_of(c: &aws_sdk_lambda::types::EventSourceMappingConfiguration) -> EsmState {
    EsmState {
        uuid: c.uuid.clone().unwrap_or_default(),
        queue_arn: c.event_source_arn.clone().unwrap_or_default(),
        batch_size: c.batch_size.map_or(0, i64::from),
        maximum_concurrency: c.scaling_config.as_ref().and_then(|s| s.maximum_concurrency).map(i64::from),
        state: c.state.clone().unwrap_or_default(),
        report_failures: c.function_response_types().contains(&FunctionResponseType::ReportBatchItemFailures),
    }
}

/// The SQS mappings of function `function`.
pub async fn list(lambda: &Client, function: &str) -> Result<Vec<EsmState>, AwsError> {
    let target = format!("event source mappings of function {function}");
    let mut found = Vec::new();
    let mut marker = None;
    loop {
        let out = match lambda.list_event_source_mappings().function_name(function).set_marker(marker).send().await {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(found),
            Err(e) => return Err(call("ListEventSourceMappings", &target, &e)),
        };
        found.extend(
            out.event_source_mappings().iter().map(state_of).filter(|m| m.queue_arn.split(':').nth(2) == Some("sqs")),
        );
        marker = out.next_marker;
        if marker.is_none() {
            return Ok(found);
        }
    }
}

/// The worker's mapping: the one with id `uuid` if it still exists, else the first on an SQS
/// queue.
pub async fn find(lambda: &Client, function: &str, uuid: Option<&str>) -> Result<Option<EsmState>, AwsError> {
    let all = list(lambda, function).await?;
    let by_id = uuid.and_then(|u| all.iter().find(|m| m.uuid == u).cloned());
    Ok(by_id.or_else(|| all.into_iter().next()))
}

async fn get(lambda: &Client, uuid: &str) -> Result<Option<EsmState>, AwsError> {
    match lambda.get_event_source_mapping().uuid(uuid).send().await {
        Ok(c) => Ok(Some(EsmState {
            uuid: c.uuid.unwrap_or_default(),
            queue_arn: c.event_source_arn.unwrap_or_default(),
            batch_size: c.batch_size.map_or(0, i64::from),
            maximum_concurrency: c.scaling_config.and_then(|s| s.maximum_concurrency).map(i64::from),
            state: c.state.unwrap_or_default(),
            report_failures: c
                .function_response_types
                .unwrap_or_default()
                .contains(&FunctionResponseType::ReportBatchItemFailures),
        })),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(call("GetEventSourceMapping", Target::mapping(uuid), &e)),
    }
}

/// Waits until the mapping has settled (Enabled or Disabled); Lambda refuses changes meanwhile.
async fn settle(lambda: &Client, uuid: &str) -> Result<EsmState, AwsError> {
    let mut pause = FIRST_PAUSE;
    loop {
        match get(lambda, uuid).await? {
            Some(m) if m.settled() => return Ok(m),
            Some(_) => {}
            None => {
                return Err(AwsError::Invalid(format!(
                    "event source mapping {uuid} disappeared while being configured; apply again"
                )));
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

fn is_iam_propagation(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("execution role") && (m.contains("permission") || m.contains("not authorized"))
}

fn scaling(max: Option<i64>) -> ScalingConfig {
    ScalingConfig::builder().set_maximum_concurrency(max.and_then(|m| i32::try_from(m).ok())).build()
}

async fn create(lambda: &Client, spec: &EsmSpec) -> Result<EsmState, AwsError> {
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        let out = lambda
            .create_event_source_mapping()
            .function_name(&spec.function)
            .event_source_arn(&spec.queue_arn)
            .batch_size(i32::try_from(spec.batch_size).unwrap_or(10))
            .enabled(spec.enabled)
            .function_response_types(FunctionResponseType::ReportBatchItemFailures)
            .set_maximum_batching_window_in_seconds(spec.batching_window())
            .set_scaling_config(spec.maximum_concurrency.map(|m| scaling(Some(m))))
            .send()
            .await;
        match out {
            Ok(c) => return settle(lambda, c.uuid.as_deref().unwrap_or_default()).await,
            Err(e) => {
                let text = adf_common::error_chain(&e);
                let retryable = e.as_service_error().is_some_and(|s| s.is_invalid_parameter_value_exception())
                    && is_iam_propagation(&text);
                if !retryable || started.elapsed() > IAM_PROPAGATION {
                    return Err(call(
                        "CreateEventSourceMapping",
                        format_args!("function {} on {}", spec.function, spec.queue_arn),
                        &e,
                    ));
                }
                tracing::info!(function = %spec.function, "the role cannot read the queue yet; retrying while IAM propagates");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

/// Deletes mapping `uuid`; one already gone is fine.
pub async fn delete(lambda: &Client, uuid: &str) -> Result<(), AwsError> {
    match lambda.delete_event_source_mapping().uuid(uuid).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
        Err(e) => Err(call("DeleteEventSourceMapping", Target::mapping(uuid), &e)),
    }
}

/// Makes the function's mappings exactly one, on `spec.queue_arn`, configured as `spec`: a
/// mapping on another queue (the tables changed) is deleted and a new one created. Returns it.
pub async fn ensure(lambda: &Client, spec: &EsmSpec, uuid: Option<&str>) -> Result<EsmState, AwsError> {
    let all = list(lambda, &spec.function).await?;
    let keep = all
        .iter()
        .filter(|m| m.queue_arn == spec.queue_arn)
        .find(|m| uuid.is_none_or(|u| m.uuid == u))
        .or_else(|| all.iter().find(|m| m.queue_arn == spec.queue_arn))
        .cloned();
    for stale in all.iter().filter(|m| keep.as_ref().is_none_or(|k| k.uuid != m.uuid)) {
        tracing::info!(uuid = %stale.uuid, queue = %stale.queue_arn, "deleting an event source mapping the workflow no longer uses");
        delete(lambda, &stale.uuid).await?;
    }
    let Some(current) = keep else {
        return create(lambda, spec).await;
    };
    let current = if current.settled() { current } else { settle(lambda, &current.uuid).await? };
    let same = current.batch_size == spec.batch_size
        && current.maximum_concurrency == spec.maximum_concurrency
        && current.enabled() == Some(spec.enabled)
        && current.report_failures;
    if same {
        return Ok(current);
    }
    lambda
        .update_event_source_mapping()
        .uuid(&current.uuid)
        .batch_size(i32::try_from(spec.batch_size).unwrap_or(10))
        .enabled(spec.enabled)
        .function_response_types(FunctionResponseType::ReportBatchItemFailures)
        .set_maximum_batching_window_in_seconds(spec.batching_window())
        .scaling_config(scaling(spec.maximum_concurrency))
        .send()
        .await
        .at(Target::mapping(&current.uuid))?;
    settle(lambda, &current.uuid).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(queue: &str, batch: i64) -> EsmSpec {
        EsmSpec {
            function: "adf-workflow-orders".into(),
            queue_arn: queue.into(),
            batch_size: batch,
            maximum_concurrency: None,
            enabled: true,
        }
    }

    #[test]
    fn large_standard_batches_get_a_one_second_window_and_fifo_none() {
        assert_eq!(spec("arn:aws:sqs:r:1:q", 10).batching_window(), Some(0));
        assert_eq!(spec("arn:aws:sqs:r:1:q", 11).batching_window(), Some(1));
        assert_eq!(spec("arn:aws:sqs:r:1:q.fifo", 10).batching_window(), None);
    }

    #[test]
    fn transitional_states_are_not_read_as_disabled() {
        let m = |s: &str| EsmState { state: s.into(), ..EsmState::default() };
        assert_eq!(m("Enabled").enabled(), Some(true));
        assert_eq!(m("Disabling").enabled(), Some(false));
        assert_eq!(m("Creating").enabled(), None);
        assert!(!m("Updating").settled());
    }

    #[test]
    fn iam_propagation_is_recognised() {
        assert!(is_iam_propagation(
            "The provided execution role does not have permissions to call ReceiveMessage on SQS"
        ));
        assert!(!is_iam_propagation("Queue visibility timeout: 30 seconds is less than Function timeout"));
    }
}
