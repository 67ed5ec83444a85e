//! Event source mappings: a queue (SQS) or a stream (DynamoDB Streams, Kinesis) feeding a
//! function in batches, with partial batch responses (`ReportBatchItemFailures`), batch size,
//! batching window, starting position (streams), maximum concurrency (SQS) and enabled. The
//! workflow worker's job queue is one; `adf_event_source` makes any.

use std::time::{Duration, Instant};

use aws_sdk_lambda::Client;
use aws_sdk_lambda::types::{EventSourcePosition, FunctionResponseType, ScalingConfig};

use super::error::{AwsError, Sent, Target, call};
use super::{AwsClients, iam, lambda};

/// How long to keep retrying a create while the function's new role propagates through IAM.
const IAM_PROPAGATION: Duration = Duration::from_secs(120);
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// SQS batches larger than this need a batching window of at least one second.
const UNWINDOWED_BATCH: i64 = 10;

/// What feeds a mapping, from its ARN's service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// An SQS queue.
    Sqs,
    /// A DynamoDB table's stream.
    DynamoDbStream,
    /// A Kinesis data stream.
    Kinesis,
}

impl SourceKind {
    /// The kind of source `arn` names; None for anything else.
    pub fn of(arn: &str) -> Option<Self> {
        let mut fields = arn.split(':');
        let (Some("arn"), Some(_), Some(service)) = (fields.next(), fields.next(), fields.next()) else { return None };
        let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
        match service {
            "sqs" if !resource.is_empty() => Some(Self::Sqs),
            "dynamodb" if resource.starts_with("table/") && resource.contains("/stream/") => Some(Self::DynamoDbStream),
            "kinesis" if resource.starts_with("stream/") => Some(Self::Kinesis),
            _ => None,
        }
    }

    /// Whether records come from a stream (with a starting position and shards).
    pub fn is_stream(self) -> bool {
        self != Self::Sqs
    }

    /// What the function's execution role must be allowed to do on the source, as Lambda's
    /// poller calls it with that role.
    pub fn read_actions(self) -> &'static [&'static str] {
        match self {
            Self::Sqs => {
                &["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
            }
            Self::DynamoDbStream => {
                &["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
            }
            Self::Kinesis => &[
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
                "kinesis:ListShards",
                "kinesis:SubscribeToShard",
            ],
        }
    }
}

/// What the mapping should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EsmSpec {
    /// The function's name.
    pub function: String,
    /// The queue's or stream's ARN.
    pub source_arn: String,
    /// Records per invocation.
    pub batch_size: i64,
    /// Seconds to gather a batch; None: none for streams and FIFO queues, and for a standard
    /// queue one second above ten messages a batch (Lambda's minimum there), else none.
    pub batching_window: Option<i64>,
    /// `LATEST` or `TRIM_HORIZON`, for streams.
    pub starting_position: Option<String>,
    /// Whether the function reports partial batch failures.
    pub report_failures: bool,
    /// Concurrent invocations at most (2 to 1000, SQS), or Lambda's default.
    pub maximum_concurrency: Option<i64>,
    /// Whether Lambda polls the source.
    pub enabled: bool,
}

impl EsmSpec {
    /// The worker's mapping on a job queue: partial batch responses, the default window.
    pub fn queue(
        function: String,
        queue_arn: String,
        batch_size: i64,
        maximum_concurrency: Option<i64>,
        enabled: bool,
    ) -> Self {
        Self {
            function,
            source_arn: queue_arn,
            batch_size,
            batching_window: None,
            starting_position: None,
            report_failures: true,
            maximum_concurrency,
            enabled,
        }
    }

    fn fifo(&self) -> bool {
        self.source_arn.ends_with(".fifo")
    }

    /// The batching window sent: the one asked for, else the default (see [`Self::batching_window`]).
    pub fn window(&self) -> Option<i32> {
        match self.batching_window {
            Some(w) => i32::try_from(w).ok(),
            None if self.fifo() || SourceKind::of(&self.source_arn).is_some_and(SourceKind::is_stream) => None,
            None => Some(i32::from(self.batch_size > UNWINDOWED_BATCH)),
        }
    }

    fn response_types(&self) -> Vec<FunctionResponseType> {
        if self.report_failures { vec![FunctionResponseType::ReportBatchItemFailures] } else { Vec::new() }
    }
}

/// A mapping as Lambda reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EsmState {
    /// Its id.
    pub uuid: String,
    /// The function's ARN.
    pub function_arn: String,
    /// The queue or stream it polls.
    pub source_arn: String,
    /// Records per invocation.
    pub batch_size: i64,
    /// Seconds it gathers a batch.
    pub batching_window: i64,
    /// Where it started reading a stream.
    pub starting_position: Option<String>,
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
        function_arn: c.function_arn.clone().unwrap_or_default(),
        source_arn: c.event_source_arn.clone().unwrap_or_default(),
        batch_size: c.batch_size.map_or(0, i64::from),
        batching_window: c.maximum_batching_window_in_seconds.map_or(0, i64::from),
        starting_position: c.starting_position.as_ref().map(|p| p.as_str().to_string()),
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
            out.event_source_mappings().iter().map(state_of).filter(|m| m.source_arn.split(':').nth(2) == Some("sqs")),
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

/// Mapping `uuid`; None when it is gone.
pub async fn get(lambda: &Client, uuid: &str) -> Result<Option<EsmState>, AwsError> {
    match lambda.get_event_source_mapping().uuid(uuid).send().await {
        Ok(c) => Ok(Some(EsmState {
            uuid: c.uuid.unwrap_or_default(),
            function_arn: c.function_arn.unwrap_or_default(),
            source_arn: c.event_source_arn.unwrap_or_default(),
            batch_size: c.batch_size.map_or(0, i64::from),
            batching_window: c.maximum_batching_window_in_seconds.map_or(0, i64::from),
            starting_position: c.starting_position.map(|p| p.as_str().to_string()),
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
            .event_source_arn(&spec.source_arn)
            .batch_size(i32::try_from(spec.batch_size).unwrap_or(10))
            .enabled(spec.enabled)
            .set_function_response_types(Some(spec.response_types()))
            .set_maximum_batching_window_in_seconds(spec.window())
            .set_starting_position(spec.starting_position.as_deref().map(EventSourcePosition::from))
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
                        format_args!("function {} on {}", spec.function, spec.source_arn),
                        &e,
                    ));
                }
                tracing::info!(function = %spec.function, "the role cannot read the source yet; retrying while IAM propagates");
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

/// Makes the function's SQS mappings exactly one, on `spec.source_arn`, configured as `spec`: a
/// mapping on another queue (the tables changed) is deleted and a new one created. Returns it.
pub async fn ensure(lambda: &Client, spec: &EsmSpec, uuid: Option<&str>) -> Result<EsmState, AwsError> {
    let all = list(lambda, &spec.function).await?;
    let keep = all
        .iter()
        .filter(|m| m.source_arn == spec.source_arn)
        .find(|m| uuid.is_none_or(|u| m.uuid == u))
        .or_else(|| all.iter().find(|m| m.source_arn == spec.source_arn))
        .cloned();
    for stale in all.iter().filter(|m| keep.as_ref().is_none_or(|k| k.uuid != m.uuid)) {
        tracing::info!(uuid = %stale.uuid, queue = %stale.source_arn, "deleting an event source mapping the workflow no longer uses");
        delete(lambda, &stale.uuid).await?;
    }
    match keep {
        Some(current) => update(lambda, spec, current).await,
        None => create(lambda, spec).await,
    }
}

/// Makes mapping `uuid` (when it still exists) match `spec`, else creates one. Returns it.
pub async fn converge(lambda: &Client, spec: &EsmSpec, uuid: Option<&str>) -> Result<EsmState, AwsError> {
    let current = match uuid {
        Some(u) => get(lambda, u).await?,
        None => None,
    };
    match current {
        Some(current) => update(lambda, spec, current).await,
        None => create(lambda, spec).await,
    }
}

/// The inline policy on the function's managed role that lets Lambda read `source_arn`.
pub fn read_policy_name(source_arn: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(source_arn.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("adf-source-{hex}")
}

/// Connects `spec.source_arn` to `spec.function`: first lets the function's managed role read
/// the source (a role the user brought is left as it is), then makes or updates mapping `uuid`.
/// `function_tag` marks a role an `adf_function` manages.
pub async fn attach(
    aws: &AwsClients,
    spec: &EsmSpec,
    kind: SourceKind,
    uuid: Option<&str>,
    function_tag: &str,
) -> Result<EsmState, AwsError> {
    let function = lambda::observe(&aws.lambda, &spec.function)
        .await?
        .ok_or_else(|| AwsError::Invalid(format!("function {} does not exist", spec.function)))?;
    let policy = read_policy_name(&spec.source_arn);
    let actions = kind.read_actions();
    iam::grant_managed(&aws.iam, &spec.function, &function.role, function_tag, &policy, actions, &spec.source_arn)
        .await?;
    converge(&aws.lambda, spec, uuid).await
}

/// Deletes mapping `uuid`, then the read permission [`attach`] gave the function's role.
pub async fn detach(aws: &AwsClients, uuid: &str, function: &str, source_arn: &str) -> Result<(), AwsError> {
    delete(&aws.lambda, uuid).await?;
    iam::revoke_managed(&aws.iam, function, &read_policy_name(source_arn)).await
}

/// Updates `current` to `spec` when they differ, once it has settled.
async fn update(lambda: &Client, spec: &EsmSpec, current: EsmState) -> Result<EsmState, AwsError> {
    let current = if current.settled() { current } else { settle(lambda, &current.uuid).await? };
    let same = current.batch_size == spec.batch_size
        && current.maximum_concurrency == spec.maximum_concurrency
        && current.enabled() == Some(spec.enabled)
        && current.report_failures == spec.report_failures
        && spec.batching_window.is_none_or(|w| w == current.batching_window);
    if same {
        return Ok(current);
    }
    lambda
        .update_event_source_mapping()
        .uuid(&current.uuid)
        .batch_size(i32::try_from(spec.batch_size).unwrap_or(10))
        .enabled(spec.enabled)
        .set_function_response_types(Some(spec.response_types()))
        .set_maximum_batching_window_in_seconds(spec.window())
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
        EsmSpec::queue("adf-workflow-orders".into(), queue.into(), batch, None, true)
    }

    #[test]
    fn large_standard_batches_get_a_one_second_window_and_fifo_and_streams_none() {
        assert_eq!(spec("arn:aws:sqs:r:1:q", 10).window(), Some(0));
        assert_eq!(spec("arn:aws:sqs:r:1:q", 11).window(), Some(1));
        assert_eq!(spec("arn:aws:sqs:r:1:q.fifo", 10).window(), None);
        assert_eq!(spec("arn:aws:kinesis:r:1:stream/s", 100).window(), None);
        let asked = EsmSpec { batching_window: Some(30), ..spec("arn:aws:sqs:r:1:q", 100) };
        assert_eq!(asked.window(), Some(30));
    }

    #[test]
    fn sources_are_known_by_their_arn() {
        assert_eq!(SourceKind::of("arn:aws:sqs:us-east-1:1:jobs"), Some(SourceKind::Sqs));
        let stream = "arn:aws:dynamodb:us-east-1:1:table/orders/stream/2026-12-01T00:00:00.000";
        assert_eq!(SourceKind::of(stream), Some(SourceKind::DynamoDbStream));
        assert_eq!(SourceKind::of("arn:aws:kinesis:us-east-1:1:stream/clicks"), Some(SourceKind::Kinesis));
        assert_eq!(SourceKind::of("arn:aws:dynamodb:us-east-1:1:table/orders"), None, "a table, not its stream");
        assert_eq!(SourceKind::of("arn:aws:s3:::bucket"), None);
        assert!(SourceKind::Kinesis.read_actions().iter().all(|a| a.starts_with("kinesis:")));
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
