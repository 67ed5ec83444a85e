//! `adf_workflow_tables`' schema and its plan-time checks.

use tfplug::{
    Attribute, AttributePath, Block, Check, Diagnostics, Dynamic, IntoDynamic, Nesting, ObjectReader, Schema, Type,
    Value,
};

use super::{DEFAULT_MAX_RECEIVE_COUNT, DEFAULT_RETENTION, DEFAULT_VISIBILITY_TIMEOUT, Names, max_name_len};

use crate::resources::driver::attributes::{check_kms_key_arn, output, outputs_of, tags_and_id};
use crate::resources::driver::timeouts_block;

pub(super) fn schema() -> Schema {
    Schema::new(
        0,
        Block::new(
            "Everything the ActiveDataFlow workflow worker needs: an SQS job queue with a dead-letter queue, and \
             DynamoDB tables for run contexts, run statuses (with a sparse index of in-flight runs for the \
             reconciler) and join coordination (with TTL). Encryption at rest is always on.",
        )
        .attribute(
            Attribute::required(
                "name",
                Type::String,
                "Prefix of every name: `<name>-jobs`, `<name>-jobs-dlq`, `<name>-contexts`, `<name>-statuses`, \
             `<name>-coordination`. Letters, digits, `-` and `_`; at most 71 characters (66 with `fifo`). \
             Changing it replaces everything.",
            )
            .requires_replace(),
        )
        .attribute(
            Attribute::with_default(
                "fifo",
                Type::Bool,
                "Make the queues FIFO (`.fifo` names, ordered per message group). Changing it replaces everything. \
                 Default `false`.",
                false.into_dynamic(),
            )
            .requires_replace(),
        )
        .defaulted(
            "max_receive_count",
            Type::Number,
            "Deliveries of a job before SQS moves it to the dead-letter queue, 1 to 1000. Default `5`.",
            DEFAULT_MAX_RECEIVE_COUNT,
        )
        .check(Check::Range(1, 1000))
        .defaulted(
            "visibility_timeout_seconds",
            Type::Number,
            "Seconds a received job stays hidden from other workers, 0 to 43200 (12 h). Lambda requires it to be \
             at least the `adf_workflow`'s `timeout`; AWS advises six times. A polling worker sets its own \
             visibility when it receives and extends it while a node runs. Default `1800` (six times the \
             worker's default 300 s).",
            DEFAULT_VISIBILITY_TIMEOUT,
        )
        .check(Check::Range(0, 43_200))
        .defaulted(
            "message_retention_seconds",
            Type::Number,
            "Seconds SQS keeps an unprocessed job, 60 to 1209600 (14 days). Default `345600` (4 days). The \
             dead-letter queue always keeps jobs 14 days.",
            DEFAULT_RETENTION,
        )
        .check(Check::Range(60, 1_209_600))
        .defaulted(
            "billing_mode",
            Type::String,
            "`PAY_PER_REQUEST` (default) or `PROVISIONED` for the three tables.",
            "PAY_PER_REQUEST",
        )
        .optional(
            "read_capacity",
            Type::Number,
            "Read capacity units per table and index; required with `PROVISIONED`, not allowed otherwise.",
        )
        .check(Check::Range(1, 40_000))
        .optional(
            "write_capacity",
            Type::Number,
            "Write capacity units per table and index; required with `PROVISIONED`, not allowed otherwise.",
        )
        .check(Check::Range(1, 40_000))
        .defaulted(
            "point_in_time_recovery",
            Type::Bool,
            "Enable DynamoDB point-in-time recovery on the three tables. Default `false`.",
            false,
        )
        .optional(
            "kms_key_arn",
            Type::String,
            "ARN of a customer managed KMS key for the queues and tables. When null, SQS-managed and AWS owned \
             keys encrypt at rest.",
        )
        .attributes(tags_and_id())
        .attributes(outputs_of("queue", "the job queue", &["name", "url", "arn"]))
        .attributes(outputs_of("dlq", "the dead-letter queue", &["name", "url", "arn"]))
        .attribute(output("contexts_table_name", "Contexts table name (hash key `runId`, range key `key`)."))
        .attribute(output("contexts_table_arn", "Contexts table ARN."))
        .attribute(output("statuses_table_name", "Statuses table name (hash key `runId`)."))
        .attribute(output("statuses_table_arn", "Statuses table ARN."))
        .attribute(output(
            "stalled_runs_index_name",
            "Keys-only index of the statuses table over in-flight runs: hash key `active` (string, set only \
             while a run is in flight), range key `lastUpdated` (number, epoch milliseconds). The reconciler \
             queries it instead of scanning.",
        ))
        .attribute(output("coordination_table_name", "Coordination table name (hash key `key`, TTL on `ttl`)."))
        .attribute(output("coordination_table_arn", "Coordination table ARN."))
        .attribute(output(
            "worker_policy_json",
            "Least-privilege IAM policy for a worker: exactly the SQS and DynamoDB actions the workflow runtime \
             calls, on the job queue, the contexts and statuses tables and the stalled-runs index (and the KMS \
             key, when set). SQS moves failed jobs to the dead-letter queue itself, and the worker never touches \
             the coordination table, so neither is named.",
        ))
        .block("timeouts", Nesting::Single, timeouts_block("10m")),
    )
}

pub(super) fn validate_config(config: &Dynamic) -> Diagnostics {
    let o = ObjectReader::new(config);
    let root = AttributePath::root();
    let mut d = Diagnostics::new();
    let fifo = d.take(o.get::<Value<bool>>("fifo")).unwrap_or_default().known_or(false);
    if let Some(Value::Known(name)) = d.take(o.get::<Value<String>>("name")) {
        let max = max_name_len(fifo);
        if name.is_empty() || name.len() > max {
            d.error_at(
                root.attr("name"),
                "Invalid name",
                format!(
                    "name must be 1 to {max} characters so that the queue name {:?} fits SQS's 80; got {}.",
                    Names::new(&name, fifo).dlq,
                    name.len()
                ),
            );
        }
        if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            d.error_at(
                root.attr("name"),
                "Invalid name",
                format!("name may hold only letters, digits, '-' and '_'; found {c:?}."),
            );
        }
    }

    let mode = d.take(o.get::<Value<String>>("billing_mode")).unwrap_or_default();
    let read = d.take(o.get::<Value<i64>>("read_capacity")).unwrap_or_default();
    let write = d.take(o.get::<Value<i64>>("write_capacity")).unwrap_or_default();
    // Unknown values (a module's variables while validating) are checked once known.
    let pay_per_request = match &mode {
        Value::Known(m) if m == "PROVISIONED" => {
            for (attr, v) in [("read_capacity", &read), ("write_capacity", &write)] {
                if v.is_null() {
                    d.error_at(
                        root.attr(attr),
                        format!("Missing {attr}"),
                        "PROVISIONED billing needs read_capacity and write_capacity.",
                    );
                }
            }
            false
        }
        Value::Known(m) if m == "PAY_PER_REQUEST" => true,
        Value::Null => true,
        Value::Known(other) => {
            d.error_at(
                root.attr("billing_mode"),
                "Invalid billing_mode",
                format!("Expected \"PAY_PER_REQUEST\" or \"PROVISIONED\", got {other:?}."),
            );
            false
        }
        Value::Unknown => false,
    };
    if pay_per_request {
        for (attr, v) in [("read_capacity", &read), ("write_capacity", &write)] {
            if matches!(v, Value::Known(_)) {
                d.error_at(
                    root.attr(attr),
                    format!("Unexpected {attr}"),
                    format!("{attr} applies only to billing_mode = \"PROVISIONED\"."),
                );
            }
        }
    }
    check_kms_key_arn(&mut d, config, " Aliases and key ids would show as drift.");
    d
}
