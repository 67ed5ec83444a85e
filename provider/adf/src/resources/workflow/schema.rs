//! `adf_workflow`'s schema and its plan-time checks.

use std::collections::BTreeSet;

use adf_workflow::contract::RECONCILE_EVENT;
use tfplug::{
    Attribute, AttributePath, Block, Check, Diagnostics, Dynamic, Nesting, ObjectReader, Schema, Type, Value,
};

use super::blueprints::{self, CheckOptions};
use super::{DEFAULT_WORKER_TIMEOUT, MAX_BATCH, MAX_FIFO_BATCH, MAX_NAME, TABLE_FIELDS, tables_type};
use crate::resources::driver::attributes::{check_name, runtime_function, runtime_function_outputs, tags_and_id};
use crate::resources::driver::timeouts_block;

pub(super) fn schema() -> Schema {
    let tables_doc = TABLE_FIELDS.iter().map(|(k, d)| format!("`{k}` ({d})")).collect::<Vec<_>>().join(", ");
    Schema::new(
        0,
        Block::new(
            "A workflow: the worker released with the provider (or one of yours, with custom node types) deployed \
             as a Lambda on the job queue of an `adf_workflow_tables`, and its blueprints. Every blueprint is \
             parsed and linted at plan time by the runtime's own linter (cycles, unknown node types, edges to \
             missing nodes, joins that could wait forever, bad durations and params), each problem an error on \
             `blueprints[\"<name>\"]` naming the node; its content-hash version is known at plan time. Apply \
             stores each blueprint version where the runtime reads it and points the blueprint's `current` \
             version at it: runs already in flight stay pinned to the version they started on, which is kept. \
             An SQS event source mapping (with partial batch responses) feeds the queue to the worker, whose \
             role may touch only that queue, the contexts and statuses tables and the stalled-runs index (and \
             the functions in `invoke_function_arns`). An optional EventBridge schedule runs the reconciler, \
             which resumes stalled runs. Deploy one `adf_workflow` per `adf_workflow_tables`.",
        )
        .attribute(
            Attribute::required(
                "name",
                Type::String,
                "Workflow name: 1 to 41 letters, digits, `-` and `_`. It names the worker `adf-workflow-<name>`, \
                 its role `adf-workflow-<name>-role` and the schedule `adf-workflow-<name>-reconcile`. Changing it \
                 replaces the workflow.",
            )
            .requires_replace(),
        )
        .required(
            "tables",
            tables_type(),
            &format!(
                "The queue and tables to run on: write `tables = adf_workflow_tables.<x>` (the extra attributes \
                 are ignored), or an object with {tables_doc}. Changing them moves the worker (its mapping is \
                 recreated on the new queue and the blueprints are stored in the new contexts table)."
            ),
        )
        .required(
            "blueprints",
            Type::map(Type::String),
            "Blueprints by name (1 to 100 letters, digits, `-`, `_`, `.`): JSON, usually \
             `jsonencode({ nodes = {...}, edges = [...] })`. A change stores a new version and makes it current \
             (in place); runs in flight finish on theirs. A blueprint removed from the map has its `current` \
             pointer deleted (no new runs); its versions stay for runs in flight.",
        )
        .defaulted(
            "batch_size",
            Type::Number,
            "Jobs per worker invocation, 1 to 10000 (at most 10 on a FIFO queue); above 10, Lambda waits up to \
             one second to fill a batch. Default `10`.",
            10i64,
        )
        .check(Check::Range(1, MAX_BATCH))
        .optional(
            "maximum_concurrency",
            Type::Number,
            "Concurrent worker invocations the queue may drive, 2 to 1000. When null, Lambda scales up to the \
             account's concurrency.",
        )
        .check(Check::Range(2, 1000))
        .defaulted(
            "reconcile_every_minutes",
            Type::Number,
            &format!(
                "Run the reconciler every N minutes, 1 to 1440 (default 5): an EventBridge rule invokes the \
                 worker with `{RECONCILE_EVENT}`, which resumes runs stalled for 5 minutes (a worker that died \
                 mid-run, a subflow's lost wake-up). `0` turns the schedule off: then stalled runs wait for \
                 `adf workflow reconcile`."
            ),
            5i64,
        )
        .check(Check::Range(0, 1440))
        .defaulted(
            "enabled",
            Type::Bool,
            "Whether Lambda polls the queue (the event source mapping's `Enabled`). Set `false` to pause the \
             workflow: jobs wait in the queue. Default `true`.",
            true,
        )
        .attributes(runtime_function(
            "the worker",
            512,
            DEFAULT_WORKER_TIMEOUT,
            " Nodes run within one invocation (a node's own `timeout` defaults to 5 minutes). Lambda requires \
             the queue's visibility timeout to be at least this: raise `visibility_timeout_seconds` of \
             the `adf_workflow_tables` (AWS suggests six times the function timeout).",
        ))
        .optional(
            "worker_zip",
            Type::String,
            "Path to a worker zip of your own, x86_64 (for example `adf_lambda_package.worker.output_path`, \
             built from a crate using `adf-workflow` that registers custom node types). Blueprints may then use \
             node types the provider does not know; everything else is still checked. When null, the worker \
             released with the provider is deployed. An import cannot know this path: set it, and the next \
             apply redeploys your zip.",
        )
        .optional(
            "invoke_function_arns",
            Type::list(Type::String),
            "ARNs of the Lambda functions the blueprints' `lambda` nodes invoke: the worker's role may call \
             `lambda:InvokeFunction` on exactly these (add `<arn>:*` for qualified calls). A `lambda` node \
             whose function is not listed gets a plan warning. Default: none.",
        )
        .optional(
            "http_allowed_networks",
            Type::list(Type::String),
            "Networks (`169.254.170.2/32`) or addresses that `http` nodes may reach although blocked by \
             default: link-local addresses (169.254.0.0/16, fe80::/10, including the instance metadata \
             service at 169.254.169.254 and fd00:ec2::254) and, on Lambda, loopback. Default: none.",
        )
        .attributes(tags_and_id())
        .attributes(runtime_function_outputs("the worker", ", `adf-workflow-<name>`"))
        .computed(
            "event_source_mapping_uuid",
            Type::String,
            "The id of the SQS event source mapping that feeds the queue to the worker.",
        )
        .computed(
            "blueprint_versions",
            Type::map(Type::String),
            "The content-hash version of each blueprint, known at plan time: what runs started now pin. A \
             version changed outside Terraform shows here as drift.",
        )
        .computed(
            "client_config",
            Type::map(Type::String),
            "What a client that starts and watches runs needs: `queue_url`, `contexts_table`, \
             `statuses_table` and `region`.",
        )
        .block("timeouts", Nesting::Single, timeouts_block("15m")),
    )
}

pub(super) fn validate_name(name: &str) -> Result<(), String> {
    let ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if name.is_empty() || name.len() > MAX_NAME || !ok {
        return Err(format!(
            "Expected 1 to {MAX_NAME} letters, digits, '-' and '_' (it names the function, its role and its \
             EventBridge rule), got {name:?}."
        ));
    }
    Ok(())
}

/// The blueprints' checks: JSON, lint (every problem an error at `blueprints["name"]`), size, and node
/// timeouts against `worker_timeout` (the one `validate_config` read).
fn validate_blueprints(config: &Dynamic, worker_timeout: Option<i64>) -> Diagnostics {
    let mut d = Diagnostics::new();
    let Dynamic::Map(bps) = config.get("blueprints") else {
        return d;
    };
    let arns = match ObjectReader::new(config).get::<Value<Vec<String>>>("invoke_function_arns") {
        Ok(Value::Known(a)) => Some(a),
        Ok(Value::Null) => Some(Vec::new()),
        _ => None,
    };
    let deployed: BTreeSet<String> = bps.keys().cloned().collect();
    let opts = CheckOptions {
        custom_nodes: !config.get("worker_zip").is_null(),
        invoke_arns: arns.as_deref(),
        deployed: Some(&deployed),
        worker_timeout,
    };
    for (name, text) in bps {
        if let Dynamic::String(text) = text {
            d.extend(blueprints::check(name, text, &opts).1);
        }
    }
    d.extend(blueprints::check_calls(bps));
    d
}

pub(super) fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    let o = ObjectReader::new(config);
    let root = AttributePath::root();
    check_name(&mut d, config, "workflow", validate_name);
    let t = o.object("tables");
    let timeout = match d.take(o.get::<Value<i64>>("timeout")) {
        Some(Value::Known(t)) => Some(t),
        Some(Value::Null) => Some(DEFAULT_WORKER_TIMEOUT),
        _ => None,
    };
    let visibility = d.take(t.get::<Value<i64>>("visibility_timeout_seconds")).and_then(Value::into_known);
    if let (Some(timeout), Some(visibility)) = (timeout, visibility)
        && timeout > visibility
    {
        d.error_at(
            root.attr("timeout"),
            "Worker timeout above the queue's visibility timeout",
            format!(
                "The worker's timeout is {timeout} s but the job queue hides a received job for only {visibility} \
                 s: Lambda refuses such an event source mapping (a job would reappear while still running). \
                 Raise visibility_timeout_seconds of the adf_workflow_tables to at least {timeout} (AWS suggests \
                 {}), or lower timeout.",
                timeout * 6
            ),
        );
    }
    let queue_arn = d.take(t.get::<Value<String>>("queue_arn")).and_then(Value::into_known);
    let batch = d.take(o.get::<Value<i64>>("batch_size")).and_then(Value::into_known);
    if let (Some(q), Some(b)) = (queue_arn, batch)
        && q.ends_with(".fifo")
        && b > MAX_FIFO_BATCH
    {
        d.error_at(
            root.attr("batch_size"),
            "Invalid batch_size",
            format!("A FIFO queue delivers at most {MAX_FIFO_BATCH} jobs per batch, got {b}."),
        );
    }
    if let Dynamic::List(arns) = config.get("invoke_function_arns") {
        for (i, a) in arns.iter().enumerate() {
            if let Dynamic::String(a) = a
                && !(a.starts_with("arn:") && a.contains(":lambda:") && a.contains(":function:"))
            {
                d.error_at(
                    root.attr("invoke_function_arns").index(i64::try_from(i).unwrap_or(0)),
                    "Invalid function ARN",
                    format!("Expected a Lambda function ARN (arn:aws:lambda:region:account:function:name), got {a:?}."),
                );
            }
        }
    }
    if let Dynamic::List(networks) = config.get("http_allowed_networks") {
        for (i, n) in networks.iter().enumerate() {
            if let Dynamic::String(n) = n
                && let Err(e) = adf_workflow::egress::Egress::parse_networks(n)
            {
                d.error_at(
                    root.attr("http_allowed_networks").index(i64::try_from(i).unwrap_or(0)),
                    "Invalid network",
                    format!("{e}."),
                );
            }
        }
    }
    d.extend(validate_blueprints(config, timeout));
    d
}
