//! `adf_workflow`: the workflow worker released with the provider (or one of the user's),
//! deployed as a Lambda on the job queue of an `adf_workflow_tables`, with its blueprints
//! checked at plan time and stored where the runtime reads them, an SQS event source mapping
//! and an optional reconcile schedule.

mod blueprints;
mod esm;
mod policy;
mod schedule;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use adf_workflow::store::Tables;
use async_trait::async_trait;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Ctx, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting,
    ObjectReader, Plan, PlanRequest, Resource, Schema, State, Type, Value,
};

use self::blueprints::CheckOptions;
use self::esm::{EsmSpec, EsmState};
use super::common::{
    Op, failed, plan_tags_all, read_tags, tags_all_attribute, tags_attribute, timeout, timeouts_block, validate_tags,
    validate_timeouts, within,
};
use super::function::{Code, FnError, Function, Spec as FunctionSpec, logs, role};
use super::released_zip::{WORKFLOW_WORKER, file_sha256};
use super::workflow_tables::{AwsError, queues, tables};
use crate::aws::{AwsClients, error_text};
use crate::config::AdfData;

const TYPE: &str = "adf_workflow";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The longest name that keeps `adf-workflow-<name>-reconcile` within EventBridge's 64.
pub(crate) const MAX_NAME: usize = 41;
/// Lambda's limits on an SQS event source mapping.
const MAX_BATCH: i64 = 10_000;
const MAX_FIFO_BATCH: i64 = 10;
/// The worker's timeout unless `timeout` says otherwise.
const DEFAULT_WORKER_TIMEOUT: i64 = 300;

/// Why an AWS step of this resource failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// An AWS call failed.
    #[error("{op} {target}: {cause}")]
    Call {
        /// The API operation.
        op: &'static str,
        /// What it was about.
        target: String,
        /// The SDK error with its causes.
        cause: String,
    },
    /// Input that could not be turned into a request.
    #[error("{0}")]
    Build(String),
    /// The worker function.
    #[error(transparent)]
    Function(#[from] FnError),
    /// Reading the queue or a table.
    #[error(transparent)]
    Tables(#[from] AwsError),
    /// Storing or reading a blueprint with the runtime's store.
    #[error(transparent)]
    Store(#[from] adf_workflow::store::StoreError),
}

/// The string in `d`, if it is one.
fn string(d: &Dynamic) -> Option<String> {
    match d {
        Dynamic::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The worker function of workflow `name`.
fn function_name(name: &str) -> String {
    format!("adf-workflow-{name}")
}

/// The attributes of `tables`: what the worker needs of an `adf_workflow_tables`.
const TABLE_FIELDS: [(&str, &str); 8] = [
    ("queue_url", "The job queue's URL."),
    ("queue_arn", "The job queue's ARN."),
    (
        "visibility_timeout_seconds",
        "The job queue's visibility timeout; Lambda requires it to be at least the worker's `timeout`.",
    ),
    ("contexts_table_name", "The contexts table's name."),
    ("contexts_table_arn", "The contexts table's ARN."),
    ("statuses_table_name", "The statuses table's name."),
    ("statuses_table_arn", "The statuses table's ARN."),
    ("kms_key_arn", "The customer managed KMS key of the queue and tables, or null."),
];

fn tables_type() -> Type {
    Type::object(
        TABLE_FIELDS
            .iter()
            .map(|(k, _)| (*k, if *k == "visibility_timeout_seconds" { Type::Number } else { Type::String })),
    )
}

/// The queue and tables the worker runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TablesRef {
    queue_url: String,
    queue_arn: String,
    visibility_timeout: i64,
    contexts: String,
    contexts_arn: String,
    statuses: String,
    statuses_arn: String,
    kms_key_arn: Option<String>,
}

impl TablesRef {
    fn read(o: &ObjectReader<'_>) -> Result<Self, Diagnostics> {
        Ok(Self {
            queue_url: o.get("queue_url")?,
            queue_arn: o.get("queue_arn")?,
            visibility_timeout: o.get("visibility_timeout_seconds")?,
            contexts: o.get("contexts_table_name")?,
            contexts_arn: o.get("contexts_table_arn")?,
            statuses: o.get("statuses_table_name")?,
            statuses_arn: o.get("statuses_table_arn")?,
            kms_key_arn: o.get::<Value<String>>("kms_key_arn")?.into_known(),
        })
    }

    fn runtime(&self) -> Tables {
        Tables { contexts: self.contexts.clone(), statuses: self.statuses.clone() }
    }

    fn value(&self) -> Dynamic {
        Dynamic::object([
            ("queue_url", self.queue_url.clone().into_dynamic()),
            ("queue_arn", self.queue_arn.clone().into_dynamic()),
            ("visibility_timeout_seconds", self.visibility_timeout.into_dynamic()),
            ("contexts_table_name", self.contexts.clone().into_dynamic()),
            ("contexts_table_arn", self.contexts_arn.clone().into_dynamic()),
            ("statuses_table_name", self.statuses.clone().into_dynamic()),
            ("statuses_table_arn", self.statuses_arn.clone().into_dynamic()),
            ("kms_key_arn", self.kms_key_arn.clone().into_dynamic()),
        ])
    }
}

/// What a client of the workflow needs, as the `client_config` output: unknown while any of
/// it is.
fn client_config(tables: &Dynamic, region: &str) -> Dynamic {
    let mut m = BTreeMap::from([("region".to_string(), Dynamic::String(region.to_string()))]);
    for (out, field) in [
        ("queue_url", "queue_url"),
        ("contexts_table", "contexts_table_name"),
        ("statuses_table", "statuses_table_name"),
    ] {
        match tables.get(field) {
            Dynamic::String(s) => m.insert(out.to_string(), s.clone().into_dynamic()),
            _ => return Dynamic::Unknown,
        };
    }
    Dynamic::Map(m)
}

/// What a wholly known plan asks for.
#[derive(Clone, Debug)]
struct Spec {
    name: String,
    tables: TablesRef,
    blueprints: BTreeMap<String, String>,
    batch_size: i64,
    maximum_concurrency: Option<i64>,
    reconcile_every_minutes: Option<i64>,
    enabled: bool,
    memory_size: i64,
    timeout: i64,
    log_retention_days: i64,
    worker_zip: Option<String>,
    invoke_function_arns: Vec<String>,
    tags_all: BTreeMap<String, String>,
}

impl Spec {
    fn read(v: &Dynamic) -> Result<Self, Diagnostics> {
        let o = ObjectReader::new(v);
        let opt_num = |k: &str| -> Result<Option<i64>, Diagnostics> { Ok(o.get::<Value<i64>>(k)?.into_known()) };
        Ok(Self {
            name: o.get("name")?,
            tables: TablesRef::read(&o.object("tables"))?,
            blueprints: o.get("blueprints")?,
            batch_size: o.get("batch_size")?,
            maximum_concurrency: opt_num("maximum_concurrency")?,
            reconcile_every_minutes: opt_num("reconcile_every_minutes")?,
            enabled: o.get("enabled")?,
            memory_size: o.get("memory_size")?,
            timeout: o.get("timeout")?,
            log_retention_days: o.get("log_retention_days")?,
            worker_zip: o.get::<Value<String>>("worker_zip")?.into_known(),
            invoke_function_arns: o.get::<Value<Vec<String>>>("invoke_function_arns")?.known_or(Vec::new()),
            tags_all: o.get::<Value<BTreeMap<String, String>>>("tags_all")?.known_or(BTreeMap::new()),
        })
    }

    fn function_name(&self) -> String {
        function_name(&self.name)
    }

    /// The worker's environment: how `adf-workflow-worker` finds its queue and tables.
    fn environment(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("ADF_QUEUE_URL".to_string(), self.tables.queue_url.clone()),
            ("ADF_CONTEXTS_TABLE".to_string(), self.tables.contexts.clone()),
            ("ADF_STATUSES_TABLE".to_string(), self.tables.statuses.clone()),
        ])
    }

    fn zip(&self) -> Result<PathBuf, String> {
        match &self.worker_zip {
            Some(z) => Ok(PathBuf::from(z)),
            None => WORKFLOW_WORKER.locate(),
        }
    }

    fn statements(&self) -> String {
        policy::statements(&policy::Grants {
            queue: &self.tables.queue_arn,
            contexts: &self.tables.contexts_arn,
            statuses: &self.tables.statuses_arn,
            invoke: &self.invoke_function_arns,
            kms_key: self.tables.kms_key_arn.as_deref(),
        })
    }

    fn function(&self, zip: PathBuf) -> FunctionSpec {
        FunctionSpec {
            name: self.function_name(),
            source_code_hash: file_sha256(&zip),
            code: Code::Zip(zip),
            runtime: Some("provided.al2023".into()),
            handler: Some("bootstrap".into()),
            architecture: "x86_64".into(),
            memory: self.memory_size,
            timeout: self.timeout,
            environment: self.environment(),
            reserved_concurrency: None,
            log_retention_days: self.log_retention_days,
            role_arn: None,
            policy_statements: Some(self.statements()),
            publish: false,
            url: None,
            tags_all: self.tags_all.clone(),
        }
    }

    fn esm(&self) -> EsmSpec {
        EsmSpec {
            function: self.function_name(),
            queue_arn: self.tables.queue_arn.clone(),
            batch_size: self.batch_size,
            maximum_concurrency: self.maximum_concurrency,
            enabled: self.enabled,
        }
    }
}

fn schema() -> Schema {
    let out = |name: &str, description: &str| Attribute::computed(name, Type::String, description).stable();
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
        .attribute(Attribute::required(
            "tables",
            tables_type(),
            &format!(
                "The queue and tables to run on: write `tables = adf_workflow_tables.<x>` (the extra attributes \
                 are ignored), or an object with {tables_doc}. Changing them moves the worker (its mapping is \
                 recreated on the new queue and the blueprints are stored in the new contexts table)."
            ),
        ))
        .attribute(Attribute::required(
            "blueprints",
            Type::map(Type::String),
            "Blueprints by name (1 to 100 letters, digits, `-`, `_`, `.`): JSON, usually \
             `jsonencode({ nodes = {...}, edges = [...] })`. A change stores a new version and makes it current \
             (in place); runs in flight finish on theirs. A blueprint removed from the map has its `current` \
             pointer deleted (no new runs); its versions stay for runs in flight.",
        ))
        .attribute(Attribute::with_default(
            "batch_size",
            Type::Number,
            "Jobs per worker invocation, 1 to 10000 (at most 10 on a FIFO queue); above 10, Lambda waits up to \
             one second to fill a batch. Default `10`.",
            10i64.into_dynamic(),
        ))
        .attribute(Attribute::optional(
            "maximum_concurrency",
            Type::Number,
            "Concurrent worker invocations the queue may drive, 2 to 1000. When null, Lambda scales up to the \
             account's concurrency.",
        ))
        .attribute(Attribute::optional(
            "reconcile_every_minutes",
            Type::Number,
            "Run the reconciler every N minutes, 1 to 1440: an EventBridge rule invokes the worker with \
             `{\"reconcile\":true}`, which resumes runs stalled for 5 minutes (a worker that died mid-run). \
             When null, no schedule.",
        ))
        .attribute(Attribute::with_default(
            "enabled",
            Type::Bool,
            "Whether Lambda polls the queue (the event source mapping's `Enabled`). Set `false` to pause the \
             workflow: jobs wait in the queue. Default `true`.",
            true.into_dynamic(),
        ))
        .attribute(Attribute::with_default(
            "memory_size",
            Type::Number,
            "Memory of the worker in MB, 128 to 10240. Default `512`.",
            512i64.into_dynamic(),
        ))
        .attribute(Attribute::with_default(
            "timeout",
            Type::Number,
            "Timeout of one worker invocation in seconds, 1 to 900; nodes run within it (a node's own \
             `timeout` defaults to 5 minutes). Lambda requires the queue's visibility timeout to be at least \
             this: raise `visibility_timeout_seconds` of the `adf_workflow_tables` (AWS suggests six times the \
             function timeout). Default `300`.",
            DEFAULT_WORKER_TIMEOUT.into_dynamic(),
        ))
        .attribute(Attribute::with_default(
            "log_retention_days",
            Type::Number,
            "Retention of the worker's log group (a CloudWatch value: 1, 3, 5, 7, 14, 30, ...; 0 never expires). \
             Default `30`.",
            30i64.into_dynamic(),
        ))
        .attribute(Attribute::optional(
            "worker_zip",
            Type::String,
            "Path to a worker zip of your own, x86_64 (for example `adf_lambda_package.worker.output_path`, \
             built from a crate using `adf-workflow` that registers custom node types). Blueprints may then use \
             node types the provider does not know; everything else is still checked. When null, the worker \
             released with the provider is deployed. An import cannot know this path: set it, and the next \
             apply redeploys your zip.",
        ))
        .attribute(Attribute::optional(
            "invoke_function_arns",
            Type::list(Type::String),
            "ARNs of the Lambda functions the blueprints' `lambda` nodes invoke: the worker's role may call \
             `lambda:InvokeFunction` on exactly these (add `<arn>:*` for qualified calls). A `lambda` node \
             whose function is not listed gets a plan warning. Default: none.",
        ))
        .attribute(tags_attribute())
        .attribute(tags_all_attribute())
        .attribute(out("id", "Same as `name`."))
        .attribute(out("function_name", "The worker function, `adf-workflow-<name>`."))
        .attribute(out("function_arn", "The worker function's ARN."))
        .attribute(out("role_arn", "The worker's least-privilege execution role."))
        .attribute(out("log_group_name", "The worker's log group."))
        .attribute(Attribute::computed(
            "event_source_mapping_uuid",
            Type::String,
            "The id of the SQS event source mapping that feeds the queue to the worker.",
        ))
        .attribute(Attribute::computed(
            "blueprint_versions",
            Type::map(Type::String),
            "The content-hash version of each blueprint, known at plan time: what runs started now pin. A \
             version changed outside Terraform shows here as drift.",
        ))
        .attribute(Attribute::computed(
            "client_config",
            Type::map(Type::String),
            "What a client that starts and watches runs needs: `queue_url`, `contexts_table`, \
             `statuses_table` and `region`.",
        ))
        .attribute(Attribute::computed(
            "source_code_hash",
            Type::String,
            "Base64 SHA-256 of the deployed worker zip; a new provider release shows here as an in-place update.",
        ))
        .block("timeouts", Nesting::Single, timeouts_block("15m")),
    )
}

fn validate_name(name: &str) -> Result<(), String> {
    let ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if name.is_empty() || name.len() > MAX_NAME || !ok {
        return Err(format!(
            "Expected 1 to {MAX_NAME} letters, digits, '-' and '_' (it names the function, its role and its \
             EventBridge rule), got {name:?}."
        ));
    }
    Ok(())
}

/// The blueprints' checks: JSON, lint (every problem an error at `blueprints["name"]`), size.
fn validate_blueprints(config: &Dynamic) -> Diagnostics {
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
    };
    for (name, text) in bps {
        if let Dynamic::String(text) = text {
            d.extend(blueprints::check(name, text, &opts).1);
        }
    }
    d
}

fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    let o = ObjectReader::new(config);
    let root = AttributePath::root();
    if let Some(Value::Known(name)) = d.take(o.get::<Value<String>>("name"))
        && let Err(m) = validate_name(&name)
    {
        d.error_at(root.attr("name"), "Invalid workflow name", m);
    }
    let mut range = |k: &str, lo: i64, hi: i64, what: &str| {
        if let Some(Value::Known(v)) = d.take(o.get::<Value<i64>>(k))
            && !(lo..=hi).contains(&v)
        {
            d.error_at(root.attr(k), format!("Invalid {k}"), format!("{what}, got {v}."));
        }
    };
    range("batch_size", 1, MAX_BATCH, "An SQS batch holds 1 to 10000 jobs");
    range("maximum_concurrency", 2, 1000, "Lambda's maximum concurrency for SQS is 2 to 1000");
    range("reconcile_every_minutes", 1, 1440, "The reconciler runs every 1 to 1440 minutes");
    range("memory_size", 128, 10_240, "Lambda memory is 128 to 10240 MB");
    range("timeout", 1, 900, "Lambda timeouts are 1 to 900 seconds");
    if let Some(Value::Known(days)) = d.take(o.get::<Value<i64>>("log_retention_days"))
        && !super::function::RETENTION_DAYS.contains(&days)
    {
        d.error_at(
            root.attr("log_retention_days"),
            "Invalid log_retention_days",
            format!("Expected one of CloudWatch's values {:?}, got {days}.", super::function::RETENTION_DAYS),
        );
    }
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
    d.extend(validate_blueprints(config));
    if let Some(Value::Known(tags)) = d.take(o.get::<Value<BTreeMap<String, String>>>("tags")) {
        d.extend(validate_tags(&tags, &root.attr("tags")));
    }
    d.extend(validate_timeouts(config));
    d
}

/// Everything AWS shows about a workflow.
struct Observed {
    function: super::function::Observed,
    log_retention: Option<i64>,
    esm: Option<EsmState>,
    schedule: Option<i64>,
    invoke_arns: Vec<String>,
    tables: Dynamic,
    blueprints: Dynamic,
    current: BTreeMap<String, blueprints::Current>,
}

/// The function ARNs the worker's role may invoke, from its inline policy.
async fn granted_invokes(aws: &AwsClients, function: &str) -> Result<Vec<String>, WorkflowError> {
    let role = role::managed_role_name(function);
    match aws.iam.get_role_policy().role_name(&role).policy_name(role::EXTRA_POLICY).send().await {
        Ok(p) => {
            let doc = percent_encoding::percent_decode_str(&p.policy_document).decode_utf8_lossy().to_string();
            Ok(policy::invoke_arns(&doc))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(Vec::new()),
        Err(e) => {
            Err(WorkflowError::Call { op: "GetRolePolicy", target: format!("IAM role {role}"), cause: error_text(&e) })
        }
    }
}

/// The `tables` value: the prior one with what the worker shows (its environment, its mapping's
/// queue), or, when there is none (an import) or the worker moved, what the queue and tables
/// say.
async fn observe_tables(
    aws: &AwsClients,
    prior: &Dynamic,
    env: &BTreeMap<String, String>,
    esm: Option<&EsmState>,
) -> Result<Dynamic, WorkflowError> {
    let var = |k: &str| env.get(k).cloned().unwrap_or_default();
    let (queue_url, contexts, statuses) = (var("ADF_QUEUE_URL"), var("ADF_CONTEXTS_TABLE"), var("ADF_STATUSES_TABLE"));
    let moved = prior.get("queue_url") != &Dynamic::String(queue_url.clone())
        || prior.get("contexts_table_name") != &Dynamic::String(contexts.clone())
        || prior.get("statuses_table_name") != &Dynamic::String(statuses.clone());
    if !moved {
        let mut v = prior.clone();
        if let Some(m) = esm {
            v.set("queue_arn", m.queue_arn.clone().into_dynamic());
        }
        return Ok(v);
    }
    let queue = queues::describe(&aws.sqs, &queue_url, &queue_url).await?.unwrap_or_default();
    let c = tables::describe(&aws.dynamodb, &contexts).await?;
    let s = tables::describe(&aws.dynamodb, &statuses).await?;
    let kms = c.as_ref().and_then(|c| c.kms_key_arn.clone());
    Ok(TablesRef {
        queue_arn: esm.map_or(queue.arn, |m| m.queue_arn.clone()),
        queue_url,
        visibility_timeout: queue.visibility_timeout.unwrap_or(0),
        contexts,
        contexts_arn: c.map(|c| c.arn).unwrap_or_default(),
        statuses,
        statuses_arn: s.map(|s| s.arn).unwrap_or_default(),
        kms_key_arn: kms,
    }
    .value())
}

async fn observe(aws: &AwsClients, name: &str, prior: &Dynamic) -> Result<Option<Observed>, WorkflowError> {
    let function_name = function_name(name);
    let Some(function) = super::function::api::observe(&aws.lambda, &function_name).await? else {
        return Ok(None);
    };
    let uuid = match prior.get("event_source_mapping_uuid") {
        Dynamic::String(u) => Some(u.clone()),
        _ => None,
    };
    let esm = esm::find(&aws.lambda, &function_name, uuid.as_deref()).await?;
    let schedule = schedule::observe(&aws.events, &schedule::rule_name(name), &function.arn).await?;
    let invoke_arns = granted_invokes(aws, &function_name).await?;
    let log_retention = logs::describe(&aws.logs, &logs::group_name(&function_name)).await?.map(|(_, d)| d);
    let tables = observe_tables(aws, prior.get("tables"), &function.environment, esm.as_ref()).await?;
    let contexts = string(tables.get("contexts_table_name")).unwrap_or_default();
    // The blueprints: the configured ones, or (an import) those the workflow recorded.
    let (names, from_config) = match prior.get("blueprints") {
        Dynamic::Map(m) => (m.keys().cloned().collect::<Vec<_>>(), true),
        _ if contexts.is_empty() => (Vec::new(), false),
        _ => (blueprints::index(&aws.dynamodb, &contexts, name).await?.unwrap_or_default(), false),
    };
    let current = if contexts.is_empty() {
        BTreeMap::new()
    } else {
        blueprints::current(&aws.dynamodb, &contexts, &names).await?
    };
    let blueprints = if from_config {
        prior.get("blueprints").clone()
    } else {
        let runtime = Tables {
            contexts: contexts.clone(),
            statuses: string(tables.get("statuses_table_name")).unwrap_or_default(),
        };
        let mut m = BTreeMap::new();
        for (n, c) in &current {
            let text = match &c.source {
                Some(s) => s.clone(),
                None => blueprints::canonical(&aws.dynamodb, &runtime, n, &c.version).await?,
            };
            m.insert(n.clone(), text.into_dynamic());
        }
        Dynamic::Map(m)
    };
    Ok(Some(Observed { function, log_retention, esm, schedule, invoke_arns, tables, blueprints, current }))
}

/// The state Read reports: what AWS shows, plus what only the configuration knows.
fn observed_state(
    prior: &Dynamic,
    name: &str,
    o: &Observed,
    default_tags: &BTreeMap<String, String>,
    region: &str,
) -> Dynamic {
    let mut v = prior.clone();
    let function = function_name(name);
    let tags_all: BTreeMap<String, String> = o
        .function
        .tags
        .iter()
        .filter(|(k, _)| *k != super::function::OWNER_TAG)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let versions: BTreeMap<String, String> = match &o.blueprints {
        Dynamic::Map(m) => m.keys().filter_map(|k| o.current.get(k).map(|c| (k.clone(), c.version.clone()))).collect(),
        _ => BTreeMap::new(),
    };
    // A missing mapping leaves batch_size and enabled null, so the plan recreates it.
    let (batch, concurrency, enabled, uuid) = match &o.esm {
        Some(m) => (
            m.batch_size.into_dynamic(),
            m.maximum_concurrency.into_dynamic(),
            m.enabled().map_or_else(|| prior.get("enabled").clone(), IntoDynamic::into_dynamic),
            m.uuid.clone().into_dynamic(),
        ),
        None => (Dynamic::Null, Dynamic::Null, Dynamic::Null, Dynamic::Null),
    };
    let invoke = if o.invoke_arns.is_empty() && !matches!(prior.get("invoke_function_arns"), Dynamic::List(_)) {
        Dynamic::Null
    } else {
        o.invoke_arns.clone().into_dynamic()
    };
    for (k, val) in [
        ("id", name.into_dynamic()),
        ("name", name.into_dynamic()),
        ("tables", o.tables.clone()),
        ("blueprints", o.blueprints.clone()),
        ("batch_size", batch),
        ("maximum_concurrency", concurrency),
        ("enabled", enabled),
        ("reconcile_every_minutes", o.schedule.into_dynamic()),
        ("memory_size", o.function.memory.into_dynamic()),
        ("timeout", o.function.timeout.into_dynamic()),
        ("log_retention_days", o.log_retention.into_dynamic()),
        ("invoke_function_arns", invoke),
        ("function_name", function.clone().into_dynamic()),
        ("function_arn", o.function.arn.clone().into_dynamic()),
        ("role_arn", o.function.role.clone().into_dynamic()),
        ("log_group_name", logs::group_name(&function).into_dynamic()),
        ("event_source_mapping_uuid", uuid),
        ("blueprint_versions", versions.into_dynamic()),
        ("client_config", client_config(&o.tables, region)),
        ("source_code_hash", o.function.code_sha256.clone().into_dynamic()),
        ("tags", read_tags(prior, &tags_all, default_tags)),
        ("tags_all", tags_all.into_dynamic()),
    ] {
        v.set(k, val);
    }
    v
}

/// Stores every blueprint whose `current` item is not already this text, deletes the `current`
/// pointers of blueprints no longer deployed, and records the names. Returns the versions.
async fn sync_blueprints(
    aws: &AwsClients,
    spec: &Spec,
    prior: &Dynamic,
) -> Result<BTreeMap<String, String>, WorkflowError> {
    let ddb = &aws.dynamodb;
    let table = &spec.tables.contexts;
    let names: Vec<String> = spec.blueprints.keys().cloned().collect();
    let current = blueprints::current(ddb, table, &names).await?;
    let mut versions = BTreeMap::new();
    for (name, text) in &spec.blueprints {
        let want = blueprints::version(text)
            .ok_or_else(|| WorkflowError::Build(format!("blueprint {name:?} is not a valid blueprint")))?;
        let stored = current.get(name).is_some_and(|c| c.version == want && c.source.as_deref() == Some(text));
        let version =
            if stored { want } else { blueprints::put(ddb, &spec.tables.runtime(), &spec.name, name, text).await? };
        versions.insert(name.clone(), version);
    }
    let prior_names: BTreeSet<String> = match prior.get("blueprints") {
        Dynamic::Map(m) => m.keys().cloned().collect(),
        _ => BTreeSet::new(),
    };
    let prior_table = string(prior.get("tables").get("contexts_table_name"));
    let recorded = blueprints::index(ddb, table, &spec.name).await?;
    let mut gone: BTreeSet<String> = recorded.clone().unwrap_or_default().into_iter().collect();
    if prior_table.as_deref() == Some(table.as_str()) {
        gone.extend(prior_names.iter().cloned());
    } else if let Some(old) = prior_table.filter(|t| !t.is_empty()) {
        // The workflow moved to other tables: the old ones start no more runs of its blueprints.
        for n in &prior_names {
            blueprints::delete_current(ddb, &old, &spec.name, n).await?;
        }
        blueprints::delete_index(ddb, &old, &spec.name).await?;
    }
    for n in gone.iter().filter(|n| !spec.blueprints.contains_key(*n)) {
        blueprints::delete_current(ddb, table, &spec.name, n).await?;
    }
    if recorded.as_ref() != Some(&names) {
        blueprints::put_index(ddb, table, &spec.name, &names).await?;
    }
    Ok(versions)
}

/// Creates or updates the worker, blueprints, mapping and schedule; returns the computed
/// outputs.
async fn converge(aws: &AwsClients, spec: &Spec, prior: &Dynamic, exists: bool) -> Result<Dynamic, WorkflowError> {
    let zip = spec.zip().map_err(WorkflowError::Build)?;
    let f = Function::deploy(aws, &spec.function(zip), exists).await?;
    // Blueprints before the mapping: a job never finds its blueprint missing.
    let versions = sync_blueprints(aws, spec, prior).await?;
    let uuid = match prior.get("event_source_mapping_uuid") {
        Dynamic::String(u) => Some(u.clone()),
        _ => None,
    };
    let mapping = esm::ensure(&aws.lambda, &spec.esm(), uuid.as_deref()).await?;
    let rule = schedule::rule_name(&spec.name);
    match spec.reconcile_every_minutes {
        Some(minutes) => {
            let mut tags = spec.tags_all.clone();
            tags.insert(super::function::OWNER_TAG.to_string(), spec.function_name());
            schedule::ensure(aws, &rule, minutes, &spec.function_name(), &f.arn, &tags).await?;
        }
        None => schedule::remove(aws, &rule, &spec.function_name()).await?,
    }
    let function = spec.function_name();
    let region = aws.sdk.region().map(ToString::to_string).unwrap_or_default();
    Ok(Dynamic::object([
        ("id", spec.name.clone().into_dynamic()),
        ("function_name", function.clone().into_dynamic()),
        ("function_arn", f.arn.into_dynamic()),
        ("role_arn", f.role.into_dynamic()),
        ("log_group_name", logs::group_name(&function).into_dynamic()),
        ("event_source_mapping_uuid", mapping.uuid.into_dynamic()),
        ("blueprint_versions", versions.into_dynamic()),
        ("client_config", client_config(&spec.tables.value(), &region)),
        ("source_code_hash", f.code_sha256.into_dynamic()),
    ]))
}

/// Deletes the mapping, the schedule, the worker (with its role and logs) and the blueprints'
/// `current` pointers (their versions stay, for runs in flight).
async fn remove(aws: &AwsClients, name: &str, state: &Dynamic) -> Result<(), WorkflowError> {
    let function = function_name(name);
    for m in esm::list(&aws.lambda, &function).await? {
        esm::delete(&aws.lambda, &m.uuid).await?;
    }
    schedule::remove(aws, &schedule::rule_name(name), &function).await?;
    Function::remove(aws, &function).await?;
    let Some(table) = string(state.get("tables").get("contexts_table_name")).filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let mut names: BTreeSet<String> = match state.get("blueprints") {
        Dynamic::Map(m) => m.keys().cloned().collect(),
        _ => BTreeSet::new(),
    };
    names.extend(blueprints::index(&aws.dynamodb, &table, name).await?.unwrap_or_default());
    for n in &names {
        blueprints::delete_current(&aws.dynamodb, &table, name, n).await?;
    }
    blueprints::delete_index(&aws.dynamodb, &table, name).await
}

/// The `adf_workflow` resource.
#[derive(Debug, Default)]
pub struct Workflow;

impl Workflow {
    async fn apply(&self, ctx: &Ctx<AdfData>, req: ApplyRequest, op: Op) -> Result<State, Diagnostics> {
        let data = ctx.data()?;
        let spec = Spec::read(&req.planned)?;
        let limit = timeout(&req.planned, op, DEFAULT_TIMEOUT);
        let outputs = within(limit, op, TYPE, &spec.name, async {
            converge(&data.aws, &spec, &req.prior.value, op == Op::Update)
                .await
                .map_err(|e| failed(op.verb(), TYPE, &spec.name, e))
        })
        .await?;
        let mut v = req.planned;
        if let Dynamic::Map(m) = outputs {
            for (k, val) in m {
                v.set(&k, val);
            }
        }
        Ok(State::new(v))
    }
}

#[async_trait]
impl Resource<AdfData> for Workflow {
    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, config: &Dynamic) -> Diagnostics {
        validate_config(config)
    }

    async fn modify_plan(&self, ctx: &Ctx<AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        let mut d = Diagnostics::new();
        let default_tags = ctx.data().map(|d| d.default_tags.clone()).unwrap_or_default();
        plan_tags_all(&mut plan.planned, &req.config, &default_tags);
        if let Dynamic::String(name) = plan.planned.get("name").clone() {
            let function = function_name(&name);
            plan.planned.set("id", name.into_dynamic());
            plan.planned.set("log_group_name", logs::group_name(&function).into_dynamic());
            plan.planned.set("function_name", function.into_dynamic());
        }
        // The code: a new zip (a new provider release) is an in-place update.
        let hash = WORKFLOW_WORKER.planned_hash(req.config.get("worker_zip"), &mut d);
        plan.planned.set("source_code_hash", hash);
        // Versions are content hashes: known as soon as the blueprints are.
        let versions = match plan.planned.get("blueprints") {
            Dynamic::Map(m) if !m.values().any(Dynamic::has_unknown) => Dynamic::Map(
                m.iter()
                    .filter_map(|(k, v)| match v {
                        Dynamic::String(text) => blueprints::version(text).map(|ver| (k.clone(), ver.into_dynamic())),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => Dynamic::Unknown,
        };
        plan.planned.set("blueprint_versions", versions);
        let region = ctx.data().ok().and_then(|d| d.aws.sdk.region().map(ToString::to_string)).unwrap_or_default();
        let config = client_config(plan.planned.get("tables"), &region);
        plan.planned.set("client_config", config);
        // The mapping stays while the queue does.
        let queue = |v: &Dynamic| match v.get("tables").get("queue_arn") {
            Dynamic::String(q) => Some(q.clone()),
            _ => None,
        };
        let same_queue = queue(&req.prior).is_some() && queue(&req.prior) == queue(&plan.planned);
        let uuid = match req.prior.get("event_source_mapping_uuid") {
            Dynamic::String(u) if same_queue => u.clone().into_dynamic(),
            _ => Dynamic::Unknown,
        };
        plan.planned.set("event_source_mapping_uuid", uuid);
        d
    }

    async fn create(&self, ctx: &Ctx<AdfData>, req: ApplyRequest) -> Result<State, Diagnostics> {
        self.apply(ctx, req, Op::Create).await
    }

    async fn read(&self, ctx: &Ctx<AdfData>, state: State) -> Result<Option<State>, Diagnostics> {
        let data = ctx.data()?;
        let name: String = ObjectReader::new(&state.value).get("name")?;
        let region = data.aws.sdk.region().map(ToString::to_string).unwrap_or_default();
        match observe(&data.aws, &name, &state.value).await.map_err(|e| failed("reading", TYPE, &name, e))? {
            Some(o) => Ok(Some(State {
                value: observed_state(&state.value, &name, &o, &data.default_tags, &region),
                private: state.private,
            })),
            None => {
                tracing::info!(name, "the worker function is gone; removing {TYPE} from state");
                Ok(None)
            }
        }
    }

    async fn update(&self, ctx: &Ctx<AdfData>, req: ApplyRequest) -> Result<State, Diagnostics> {
        self.apply(ctx, req, Op::Update).await
    }

    async fn delete(&self, ctx: &Ctx<AdfData>, state: State) -> Result<(), Diagnostics> {
        let data = ctx.data()?;
        let name: String = ObjectReader::new(&state.value).get("name")?;
        let limit = timeout(&state.value, Op::Delete, DEFAULT_TIMEOUT);
        within(limit, Op::Delete, TYPE, &name, async {
            remove(&data.aws, &name, &state.value).await.map_err(|e| failed(Op::Delete.verb(), TYPE, &name, e))
        })
        .await
    }

    async fn import(&self, ctx: &Ctx<AdfData>, id: &str) -> Result<State, Diagnostics> {
        let data = ctx.data()?;
        if let Err(m) = validate_name(id) {
            return Err(Diagnostic::error(format!("importing {TYPE} ({id}): invalid id"), m).into());
        }
        let prior = Dynamic::object([("name", id.into())]);
        let region = data.aws.sdk.region().map(ToString::to_string).unwrap_or_default();
        match observe(&data.aws, id, &prior).await.map_err(|e| failed("importing", TYPE, id, e))? {
            Some(o) => Ok(State::new(observed_state(&prior, id, &o, &data.default_tags, &region))),
            None => Err(failed("importing", TYPE, id, format!("no worker function {}", function_name(id)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str =
        r#"{"nodes":{"charge":{"uses":"pass"},"ship":{"uses":"pass"}},"edges":[{"from":"charge","to":"ship"}]}"#;

    fn errors_at(d: &Diagnostics) -> Vec<String> {
        d.0.iter()
            .filter(|d| d.severity == tfplug::Severity::Error)
            .map(|d| d.attribute.as_ref().map(ToString::to_string).unwrap_or_default())
            .collect()
    }

    fn tables(visibility: i64, queue: &str) -> Dynamic {
        TablesRef {
            queue_url: "https://sqs.eu-west-1.amazonaws.com/1/orders-jobs".into(),
            queue_arn: queue.into(),
            visibility_timeout: visibility,
            contexts: "orders-contexts".into(),
            contexts_arn: "arn:aws:dynamodb:eu-west-1:1:table/orders-contexts".into(),
            statuses: "orders-statuses".into(),
            statuses_arn: "arn:aws:dynamodb:eu-west-1:1:table/orders-statuses".into(),
            kms_key_arn: None,
        }
        .value()
    }

    fn config(extra: Vec<(&'static str, Dynamic)>) -> Dynamic {
        let mut c = Dynamic::object([
            ("name", "orders".into()),
            ("tables", tables(1800, "arn:aws:sqs:eu-west-1:1:orders-jobs")),
            ("blueprints", Dynamic::object([("order", ORDER.into())])),
        ]);
        for (k, v) in extra {
            c.set(k, v);
        }
        c
    }

    #[test]
    fn a_valid_configuration_has_no_diagnostics() {
        let d = validate_config(&config(vec![]));
        assert!(d.is_empty(), "{d}");
    }

    #[test]
    fn limits_are_plan_time_errors_on_their_attribute() {
        let c = config(vec![
            ("name", "orders.v1".into()),
            ("batch_size", 10_001i64.into_dynamic()),
            ("maximum_concurrency", 1i64.into_dynamic()),
            ("reconcile_every_minutes", 0i64.into_dynamic()),
            ("memory_size", 64i64.into_dynamic()),
            ("log_retention_days", 2i64.into_dynamic()),
            ("invoke_function_arns", vec!["charge".to_string()].into_dynamic()),
        ]);
        assert_eq!(
            errors_at(&validate_config(&c)),
            [
                "name",
                "batch_size",
                "maximum_concurrency",
                "reconcile_every_minutes",
                "memory_size",
                "log_retention_days",
                "invoke_function_arns[0]"
            ]
        );
        assert!(validate_name(&"a".repeat(MAX_NAME)).is_ok());
        assert!(validate_name(&"a".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn the_timeout_must_fit_the_queues_visibility_timeout() {
        let c = config(vec![("tables", tables(60, "arn:aws:sqs:eu-west-1:1:orders-jobs"))]);
        let d = validate_config(&c);
        assert_eq!(errors_at(&d), ["timeout"]);
        assert!(d.0[0].detail.contains("visibility_timeout_seconds"), "{d}");
        let ok = config(vec![("tables", tables(60, "arn:x")), ("timeout", 60i64.into_dynamic())]);
        assert!(validate_config(&ok).is_empty());
    }

    #[test]
    fn fifo_queues_take_ten_jobs_a_batch() {
        let c = config(vec![
            ("tables", tables(1800, "arn:aws:sqs:eu-west-1:1:orders-jobs.fifo")),
            ("batch_size", 11i64.into_dynamic()),
        ]);
        assert_eq!(errors_at(&validate_config(&c)), ["batch_size"]);
    }

    #[test]
    fn unknown_values_pass_validation() {
        let c = Dynamic::object([
            ("name", Dynamic::Unknown),
            ("tables", Dynamic::Unknown),
            ("blueprints", Dynamic::object([("order", Dynamic::Unknown)])),
            ("batch_size", Dynamic::Unknown),
        ]);
        assert!(validate_config(&c).is_empty());
    }

    #[test]
    fn blueprint_problems_are_errors_at_the_blueprint_naming_it_and_the_node() {
        let bad = r#"{"nodes":{"a":{"uses":"pass"},"b":{"uses":"nope"}},"edges":[{"from":"a","to":"b"},{"from":"b","to":"ghost"}]}"#;
        let c = config(vec![("blueprints", Dynamic::object([("order", ORDER.into()), ("refund", bad.into())]))]);
        let d = validate_config(&c);
        assert_eq!(errors_at(&d), ["blueprints[\"refund\"]", "blueprints[\"refund\"]"]);
        let text: Vec<String> = d.0.iter().map(|d| format!("{} | {}", d.summary, d.detail)).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("\"refund\"") && t.contains("node \"b\"") && t.contains("unknown node type")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.contains("\"ghost\" is not a node")), "{text:?}");
        // With a worker of one's own, the unknown type is a custom node; the bad edge is still an error.
        let custom = config(vec![
            ("blueprints", Dynamic::object([("refund", bad.into())])),
            ("worker_zip", "worker.zip".into()),
        ]);
        assert_eq!(errors_at(&validate_config(&custom)), ["blueprints[\"refund\"]"]);
    }

    fn spec() -> Spec {
        let mut planned = config(vec![
            ("batch_size", 20i64.into_dynamic()),
            ("enabled", true.into_dynamic()),
            ("memory_size", 512i64.into_dynamic()),
            ("timeout", 300i64.into_dynamic()),
            ("log_retention_days", 30i64.into_dynamic()),
            ("invoke_function_arns", vec!["arn:aws:lambda:eu-west-1:1:function:charge".to_string()].into_dynamic()),
        ]);
        planned.set("tags_all", Dynamic::Null);
        Spec::read(&planned).expect("spec")
    }

    #[test]
    fn the_worker_gets_its_queue_and_tables_and_no_url() {
        let s = spec();
        let f = s.function(PathBuf::from("/none.zip"));
        assert_eq!(f.name, "adf-workflow-orders");
        assert_eq!(f.runtime.as_deref(), Some("provided.al2023"));
        assert_eq!(f.handler.as_deref(), Some("bootstrap"));
        assert!(f.url.is_none());
        assert_eq!(
            f.environment,
            BTreeMap::from([
                ("ADF_CONTEXTS_TABLE".to_string(), "orders-contexts".to_string()),
                ("ADF_QUEUE_URL".to_string(), "https://sqs.eu-west-1.amazonaws.com/1/orders-jobs".to_string()),
                ("ADF_STATUSES_TABLE".to_string(), "orders-statuses".to_string()),
            ])
        );
        let statements = f.policy_statements.expect("statements");
        assert!(statements.contains("arn:aws:sqs:eu-west-1:1:orders-jobs"), "{statements}");
        assert!(statements.contains("table/orders-contexts") && statements.contains("table/orders-statuses"));
        assert!(statements.contains("orders-statuses/index/stalled-runs"), "{statements}");
        assert!(statements.contains("function:charge"), "{statements}");
        assert!(!statements.contains('*'), "{statements}");
        let m = s.esm();
        assert_eq!((m.batch_size, m.batching_window(), m.enabled), (20, Some(1), true));
    }

    #[test]
    fn client_config_is_unknown_until_the_tables_are_known() {
        let c = client_config(&tables(60, "arn:q"), "eu-west-1");
        assert_eq!(c.get("statuses_table"), &Dynamic::from("orders-statuses"));
        assert_eq!(c.get("region"), &Dynamic::from("eu-west-1"));
        let mut partial = tables(60, "arn:q");
        partial.set("queue_url", Dynamic::Unknown);
        assert_eq!(client_config(&partial, "eu-west-1"), Dynamic::Unknown);
        assert_eq!(client_config(&Dynamic::Unknown, "eu-west-1"), Dynamic::Unknown);
    }

    #[test]
    fn the_schema_takes_a_whole_adf_workflow_tables() {
        let s = schema();
        let tables = s.block.find("tables").expect("tables");
        let Type::Object(fields) = &tables.ty else { panic!("tables is an object") };
        let theirs = <super::super::workflow_tables::WorkflowTables as Resource<AdfData>>::schema(
            &super::super::workflow_tables::WorkflowTables,
        );
        for (k, ty) in fields {
            let attr = theirs.block.find(k).unwrap_or_else(|| panic!("adf_workflow_tables has no {k}"));
            assert_eq!(&attr.ty, ty, "{k}");
        }
    }
}
