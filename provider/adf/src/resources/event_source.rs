//! `adf_event_source`: an event source mapping that feeds a function from an SQS queue, a
//! DynamoDB stream or a Kinesis stream, in batches with partial batch responses, and lets the
//! function's managed role read exactly that source.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Check, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting,
    ObjectReader, Plan, PlanRequest, Schema, Type, Value,
};

use super::driver::attributes::output;
use super::driver::{Failure, Imported, Kind, Managed, model, timeouts_block};
use crate::aws::esm::{self, EsmSpec, EsmState, SourceKind};
use crate::aws::function::{OWNER_TAG as FUNCTION_TAG, name_in_arn};
use crate::aws::{AwsError, Ownership};
use crate::config::AdfData;

/// Records per batch when the configuration does not say: Lambda's defaults.
const QUEUE_BATCH: i64 = 10;
const STREAM_BATCH: i64 = 100;

#[derive(Debug, Deserialize)]
struct Model {
    function: FunctionRef,
    source_arn: String,
    batch_size: i64,
    batching_window_seconds: Value<i64>,
    starting_position: Option<String>,
    report_batch_item_failures: bool,
    maximum_concurrency: Option<i64>,
    enabled: bool,
}

#[derive(Debug, Deserialize)]
struct FunctionRef {
    name: String,
}

impl Model {
    fn spec(self) -> EsmSpec {
        EsmSpec {
            function: self.function.name,
            source_arn: self.source_arn,
            batch_size: self.batch_size,
            batching_window: self.batching_window_seconds.into_known(),
            starting_position: self.starting_position,
            report_failures: self.report_batch_item_failures,
            maximum_concurrency: self.maximum_concurrency,
            enabled: self.enabled,
        }
    }
}

fn schema() -> Schema {
    Schema::new(
        0,
        Block::new(
            "Feeds a function from an SQS queue, a DynamoDB stream or a Kinesis stream (a Lambda event source \
             mapping), in batches, with partial batch responses on by default. When the function uses its managed \
             role, that role may read exactly this source (an inline policy, removed with the mapping); with \
             `role_arn` on the function, grant the read actions yourself.",
        )
        .attribute(
            Attribute::required(
                "function",
                Type::object([("arn", Type::String), ("name", Type::String)]),
                "The function to feed: write `adf_function.x` (its `name` and `arn` are read).",
            )
            .requires_replace(),
        )
        .attribute(
            Attribute::required(
                "source_arn",
                Type::String,
                "The queue's or stream's ARN: an SQS queue, a DynamoDB table's stream (`stream_arn`), or a Kinesis \
                 data stream.",
            )
            .requires_replace(),
        )
        .optional_computed(
            "batch_size",
            Type::Number,
            "Records per invocation, 1 to 10000 (a FIFO queue: at most 10). Default 10 for a queue, 100 for a stream.",
        )
        .check(Check::Range(1, 10_000))
        .optional_computed(
            "batching_window_seconds",
            Type::Number,
            "Seconds to gather a batch, 0 to 300. Default: none, except 1 for a standard queue with batches over 10 \
             (Lambda's minimum there).",
        )
        .check(Check::Range(0, 300))
        .attribute(
            Attribute::optional_computed(
                "starting_position",
                Type::String,
                "Streams only: `LATEST` (default) or `TRIM_HORIZON` (the oldest record kept).",
            )
            .requires_replace()
            .check(Check::OneOf(&["LATEST", "TRIM_HORIZON"])),
        )
        .defaulted(
            "report_batch_item_failures",
            Type::Bool,
            "The function answers `batchItemFailures`, so only the records it names are retried. Default `true`.",
            true,
        )
        .optional(
            "maximum_concurrency",
            Type::Number,
            "Queues only: concurrent invocations at most, 2 to 1000. Null: Lambda's scaling.",
        )
        .check(Check::Range(2, 1000))
        .defaulted("enabled", Type::Bool, "Whether Lambda polls the source. Default `true`.", true)
        .computed("name", Type::String, "`<function>/<queue or stream>`.")
        .attribute(output("id", "Same as `name`."))
        .attribute(output("uuid", "The mapping's id; import with it."))
        .block("timeouts", Nesting::Single, timeouts_block("5m")),
    )
}

fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    let o = ObjectReader::new(config);
    let root = AttributePath::root();
    let Some(Value::Known(arn)) = d.take(o.get::<Value<String>>("source_arn")) else { return d };
    let Some(kind) = SourceKind::of(&arn) else {
        d.error_at(
            root.attr("source_arn"),
            "Not an event source",
            format!("{arn:?} is not the ARN of an SQS queue, a DynamoDB stream or a Kinesis stream."),
        );
        return d;
    };
    let known = |d: &mut Diagnostics, k: &str| d.take(o.get::<Value<i64>>(k)).and_then(Value::into_known);
    let batch = known(&mut d, "batch_size");
    let window = known(&mut d, "batching_window_seconds");
    let fifo = arn.ends_with(".fifo");
    if kind.is_stream() {
        if !config.get("maximum_concurrency").is_null() {
            d.error_at(
                root.attr("maximum_concurrency"),
                "Queues only",
                "maximum_concurrency applies to SQS queues; a stream's concurrency follows its shards.",
            );
        }
    } else if !config.get("starting_position").is_null() {
        d.error_at(root.attr("starting_position"), "Streams only", "A queue has no starting position.");
    } else if fifo && batch.is_some_and(|b| b > 10) {
        d.error_at(root.attr("batch_size"), "Batch too large", "A FIFO queue delivers at most 10 messages a batch.");
    } else if fifo && window.is_some_and(|w| w > 0) {
        d.error_at(root.attr("batching_window_seconds"), "No window on FIFO", "A FIFO queue takes no batching window.");
    } else if batch.is_some_and(|b| b > QUEUE_BATCH) && window == Some(0) {
        d.error_at(
            root.attr("batching_window_seconds"),
            "Window needed",
            "Lambda needs a batching window of at least 1 second for queue batches over 10 messages.",
        );
    }
    d
}

/// `<function>/<queue or stream name>`.
fn name_of(function: &str, source_arn: &str) -> String {
    let short = match SourceKind::of(source_arn) {
        Some(SourceKind::Sqs) => source_arn.rsplit(':').next(),
        Some(SourceKind::DynamoDbStream | SourceKind::Kinesis) => source_arn.split('/').nth(1),
        None => None,
    };
    format!("{function}/{}", short.unwrap_or(source_arn))
}

/// The state Read reports.
fn observed_state(prior: &Dynamic, m: &EsmState) -> Dynamic {
    let mut v = prior.clone();
    let function = name_in_arn(&m.function_arn).unwrap_or_default().to_string();
    for (k, val) in [
        (
            "function",
            Dynamic::object([
                ("arn", m.function_arn.clone().into_dynamic()),
                ("name", function.clone().into_dynamic()),
            ]),
        ),
        ("source_arn", m.source_arn.clone().into_dynamic()),
        ("batch_size", m.batch_size.into_dynamic()),
        ("batching_window_seconds", m.batching_window.into_dynamic()),
        ("starting_position", m.starting_position.clone().into_dynamic()),
        ("report_batch_item_failures", m.report_failures.into_dynamic()),
        ("maximum_concurrency", m.maximum_concurrency.into_dynamic()),
        ("enabled", m.enabled().unwrap_or(true).into_dynamic()),
        ("name", name_of(&function, &m.source_arn).into_dynamic()),
        ("uuid", m.uuid.clone().into_dynamic()),
    ] {
        v.set(k, val);
    }
    v
}

fn uuid_of(state: &Dynamic) -> Option<String> {
    match state.get("uuid") {
        Dynamic::String(u) => Some(u.clone()),
        _ => None,
    }
}

/// The `adf_event_source` resource.
#[derive(Debug, Default)]
pub struct EventSource;

#[async_trait]
impl Managed for EventSource {
    const KIND: Kind = Kind::new("adf_event_source", Duration::from_secs(5 * 60), schema, validate_config);

    async fn plan(&self, _data: Option<&AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        let function = req.config.get("function").get("name").clone();
        let kind = match req.config.get("source_arn") {
            Dynamic::String(arn) => SourceKind::of(arn),
            _ => None,
        };
        if let (Dynamic::String(f), Dynamic::String(arn)) = (&function, req.config.get("source_arn")) {
            plan.planned.set("name", name_of(f, arn).into_dynamic());
            plan.planned.set("id", name_of(f, arn).into_dynamic());
        }
        if req.config.get("batch_size").is_null() && req.prior.is_null() {
            let default = match kind {
                Some(k) if k.is_stream() => STREAM_BATCH.into_dynamic(),
                Some(_) => QUEUE_BATCH.into_dynamic(),
                None => Dynamic::Unknown,
            };
            plan.planned.set("batch_size", default);
        }
        if req.config.get("starting_position").is_null() && req.prior.is_null() {
            let default = match kind {
                Some(k) if k.is_stream() => "LATEST".into(),
                Some(_) => Dynamic::Null,
                None => Dynamic::Unknown,
            };
            plan.planned.set("starting_position", default);
        }
        Diagnostics::new()
    }

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, _owner: &Ownership) -> Result<Dynamic, Failure> {
        let spec = model::<Model>(&req.planned)?.spec();
        let kind = SourceKind::of(&spec.source_arn).ok_or_else(|| AwsError::Invalid("not an event source".into()))?;
        let prior = uuid_of(&req.prior.value);
        let m = esm::attach(&data.aws, &spec, kind, prior.as_deref(), FUNCTION_TAG).await?;
        let mut state = req.planned.clone();
        state.set("uuid", m.uuid.clone().into_dynamic());
        state.set("batching_window_seconds", m.batching_window.into_dynamic());
        Ok(state)
    }

    async fn observe(&self, data: &AdfData, _name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        let Some(uuid) = uuid_of(prior) else { return Ok(None) };
        Ok(esm::get(&data.aws.lambda, &uuid).await?.map(|m| observed_state(prior, &m)))
    }

    async fn remove(&self, data: &AdfData, _name: &str, state: &Dynamic, _owner: &Ownership) -> Result<(), Failure> {
        let (Some(uuid), Dynamic::String(function), Dynamic::String(source)) =
            (uuid_of(state), state.get("function").get("name"), state.get("source_arn"))
        else {
            return Ok(());
        };
        Ok(esm::detach(&data.aws, &uuid, function, source).await?)
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        let Some(m) = esm::get(&data.aws.lambda, id).await? else {
            return Err(Diagnostic::error(
                format!("importing {} ({id})", Self::KIND.type_name),
                format!("no event source mapping has the id {id}"),
            )
            .into());
        };
        let value = observed_state(&Dynamic::object([("uuid", id.into())]), &m);
        // A mapping carries no owner tag: the importing instance owns it from now on.
        Ok(Imported { value, owner: id.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_well() {
        assert_eq!(name_of("worker", "arn:aws:sqs:us-east-1:1:jobs"), "worker/jobs");
        assert_eq!(name_of("worker", "arn:aws:kinesis:us-east-1:1:stream/clicks"), "worker/clicks");
        let stream = "arn:aws:dynamodb:us-east-1:1:table/orders/stream/2026-12-01T00:00:00.000";
        assert_eq!(name_of("worker", stream), "worker/orders");
    }

    #[test]
    fn bad_input_is_a_diagnostic_at_the_attribute() {
        let at = |pairs: Vec<(&str, Dynamic)>| -> Vec<String> {
            let d = EventSource::KIND.checks(&Dynamic::object(pairs));
            d.0.iter().filter_map(|d| d.attribute.as_ref().map(ToString::to_string)).collect()
        };
        let queue = || ("source_arn", Dynamic::from("arn:aws:sqs:us-east-1:1:jobs"));
        let kinesis = || ("source_arn", Dynamic::from("arn:aws:kinesis:us-east-1:1:stream/clicks"));
        assert_eq!(at(vec![("source_arn", "arn:aws:s3:::b".into())]), ["source_arn"]);
        assert_eq!(at(vec![queue(), ("starting_position", "LATEST".into())]), ["starting_position"]);
        assert_eq!(at(vec![kinesis(), ("maximum_concurrency", 5i64.into_dynamic())]), ["maximum_concurrency"]);
        let window =
            vec![queue(), ("batch_size", 100i64.into_dynamic()), ("batching_window_seconds", 0i64.into_dynamic())];
        assert_eq!(at(window), ["batching_window_seconds"]);
        let fifo = ("source_arn", Dynamic::from("arn:aws:sqs:us-east-1:1:jobs.fifo"));
        assert_eq!(at(vec![fifo, ("batch_size", 20i64.into_dynamic())]), ["batch_size"]);
        assert_eq!(at(vec![kinesis(), ("starting_position", "OLDEST".into())]), ["starting_position"]);
    }
}
