//! `adf_workflow`: the workflow worker released with the provider (or one of the user's),
//! deployed as a Lambda on the job queue of an `adf_workflow_tables`, with its blueprints
//! checked at plan time and stored where the runtime reads them, an SQS event source mapping
//! and an optional reconcile schedule.

mod blueprints;
mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use adf_workflow::contract::{RECONCILE_EVENT, WorkerSettings};
use adf_workflow::store::{Store, Tables};
use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{ApplyRequest, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Plan, PlanRequest, Type};

use self::schema::{schema, validate_config, validate_name};
use super::driver::attributes::plan_function_names;
use super::driver::{Failure, Imported, Kind, Managed, model, with_outputs};
use super::released_zip::{WORKFLOW_WORKER, file_sha256};
use crate::aws::esm::{self, EsmSpec, EsmState};
use crate::aws::function::{self, Code, Config, Spec as FunctionSpec};
use crate::aws::{
    AwsClients, AwsError, Owner, Ownership, dynamodb, events as schedule, iam, imported_owner, logs, sqs, untagged,
};
use crate::config::AdfData;
use crate::runtimes::{
    WorkerArns, invoke_arns, statements_json, worker_allowed_networks, worker_environment, worker_statements,
};

/// The longest name that keeps `adf-workflow-<name>-reconcile` within EventBridge's 64.
pub(crate) const MAX_NAME: usize = 41;
/// Lambda's limits on an SQS event source mapping.
const MAX_BATCH: i64 = 10_000;
const MAX_FIFO_BATCH: i64 = 10;
/// The worker's timeout unless `timeout` says otherwise.
const DEFAULT_WORKER_TIMEOUT: i64 = 300;

/// The string in `d`, if it is one.
fn string(d: &Dynamic) -> Option<String> {
    match d {
        Dynamic::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The EventBridge rule that runs the reconciler of workflow `name`.
fn rule_name(name: &str) -> String {
    format!("adf-workflow-{name}-reconcile")
}

/// The schedule that sends workflow `name`'s worker the runtime's reconcile event.
fn reconcile_schedule(name: &str) -> schedule::Schedule {
    schedule::Schedule {
        rule: rule_name(name),
        function: function_name(name),
        input: RECONCILE_EVENT,
        statement_id: "adf-workflow-reconcile",
    }
}

/// The worker function of workflow `name`.
fn function_name(name: &str) -> String {
    format!("adf-workflow-{name}")
}

/// The attributes of `tables`: what the worker needs of an `adf_workflow_tables`.
pub(crate) const TABLE_FIELDS: [(&str, &str); 8] = [
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

pub(crate) fn tables_type() -> Type {
    Type::object(
        TABLE_FIELDS
            .iter()
            .map(|(k, _)| (*k, if *k == "visibility_timeout_seconds" { Type::Number } else { Type::String })),
    )
}

/// The queue and tables the worker runs on.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
struct TablesRef {
    queue_url: String,
    queue_arn: String,
    #[serde(rename = "visibility_timeout_seconds")]
    visibility_timeout: i64,
    #[serde(rename = "contexts_table_name")]
    contexts: String,
    #[serde(rename = "contexts_table_arn")]
    contexts_arn: String,
    #[serde(rename = "statuses_table_name")]
    statuses: String,
    #[serde(rename = "statuses_table_arn")]
    statuses_arn: String,
    kms_key_arn: Option<String>,
}

impl TablesRef {
    fn settings(&self) -> WorkerSettings {
        WorkerSettings {
            queue_url: self.queue_url.clone(),
            contexts_table: self.contexts.clone(),
            statuses_table: self.statuses.clone(),
        }
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
#[derive(Clone, Debug, Deserialize)]
struct Spec {
    name: String,
    tables: TablesRef,
    blueprints: BTreeMap<String, String>,
    batch_size: i64,
    maximum_concurrency: Option<i64>,
    reconcile_every_minutes: i64,
    enabled: bool,
    memory_size: i64,
    timeout: i64,
    log_retention_days: i64,
    worker_zip: Option<String>,
    #[serde(default)]
    invoke_function_arns: Vec<String>,
    #[serde(default)]
    http_allowed_networks: Vec<String>,
    #[serde(default)]
    tags_all: BTreeMap<String, String>,
}

impl Spec {
    fn function_name(&self) -> String {
        function_name(&self.name)
    }

    fn zip(&self) -> Result<PathBuf, String> {
        match &self.worker_zip {
            Some(z) => Ok(PathBuf::from(z)),
            None => WORKFLOW_WORKER.locate(),
        }
    }

    fn statements(&self) -> String {
        statements_json(worker_statements(&WorkerArns {
            queue: &self.tables.queue_arn,
            contexts: &self.tables.contexts_arn,
            statuses: &self.tables.statuses_arn,
            invoke: &self.invoke_function_arns,
            kms_key: self.tables.kms_key_arn.as_deref(),
        }))
    }

    fn function(&self, zip: PathBuf) -> FunctionSpec {
        FunctionSpec {
            name: self.function_name(),
            source_code_hash: file_sha256(&zip),
            code: Code::Zip(zip),
            config: Config::bootstrap(
                self.memory_size,
                self.timeout,
                worker_environment(&self.tables.settings(), &self.http_allowed_networks),
            ),
            reserved_concurrency: None,
            async_invoke: None,
            log_retention_days: self.log_retention_days,
            role_arn: None,
            policy_statements: Some(self.statements()),
            publish: false,
            url: None,
            tags_all: self.tags_all.clone(),
        }
    }

    fn esm(&self) -> EsmSpec {
        EsmSpec::queue(
            self.function_name(),
            self.tables.queue_arn.clone(),
            self.batch_size,
            self.maximum_concurrency,
            self.enabled,
        )
    }
}

/// Everything AWS shows about a workflow.
struct Observed {
    function: function::Observed,
    log_retention: Option<i64>,
    esm: Option<EsmState>,
    schedule: Option<i64>,
    invoke_arns: Vec<String>,
    tables: Dynamic,
    blueprints: Dynamic,
    current: BTreeMap<String, adf_workflow::catalog::Current>,
}

/// The function ARNs the worker's role may invoke, from its inline policy.
async fn granted_invokes(aws: &AwsClients, function: &str) -> Result<Vec<String>, AwsError> {
    Ok(iam::extra_policy(&aws.iam, function).await?.map(|doc| invoke_arns(&doc)).unwrap_or_default())
}

/// The `tables` value: the prior one with what the worker shows (its environment, its mapping's
/// queue), or, when there is none (an import) or the worker moved, what the queue and tables
/// say.
async fn observe_tables(
    aws: &AwsClients,
    prior: &Dynamic,
    env: &BTreeMap<String, String>,
    esm: Option<&EsmState>,
) -> Result<Dynamic, AwsError> {
    let var = |k: &str| env.get(k).cloned().unwrap_or_default();
    let (queue_url, contexts, statuses) =
        (var(WorkerSettings::QUEUE_URL), var(WorkerSettings::CONTEXTS_TABLE), var(WorkerSettings::STATUSES_TABLE));
    let moved = prior.get("queue_url") != &Dynamic::String(queue_url.clone())
        || prior.get("contexts_table_name") != &Dynamic::String(contexts.clone())
        || prior.get("statuses_table_name") != &Dynamic::String(statuses.clone());
    if !moved {
        let mut v = prior.clone();
        if let Some(m) = esm {
            v.set("queue_arn", m.source_arn.clone().into_dynamic());
        }
        return Ok(v);
    }
    let queue = sqs::describe(&aws.sqs, &queue_url, &queue_url).await?.unwrap_or_default();
    let c = dynamodb::describe(&aws.dynamodb, &contexts).await?;
    let s = dynamodb::describe(&aws.dynamodb, &statuses).await?;
    let kms = c.as_ref().and_then(|c| c.kms_key_arn.clone());
    Ok(TablesRef {
        queue_arn: esm.map_or(queue.arn, |m| m.source_arn.clone()),
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

async fn observe(aws: &AwsClients, name: &str, prior: &Dynamic) -> Result<Option<Observed>, AwsError> {
    let function_name = function_name(name);
    let Some((function, log_retention)) = function::observe(aws, &function_name).await? else {
        return Ok(None);
    };
    let uuid = match prior.get("event_source_mapping_uuid") {
        Dynamic::String(u) => Some(u.clone()),
        _ => None,
    };
    let esm = esm::find(&aws.lambda, &function_name, uuid.as_deref()).await?;
    let schedule = schedule::observe(&aws.events, &reconcile_schedule(name), &function.arn).await?;
    let invoke_arns = granted_invokes(aws, &function_name).await?;
    let tables = observe_tables(aws, prior.get("tables"), &function.config.environment, esm.as_ref()).await?;
    let contexts = string(tables.get("contexts_table_name")).unwrap_or_default();
    let store = blueprint_store(aws, &contexts);
    // The blueprints: the configured ones, or (an import) those the workflow recorded.
    let (names, from_config) = match prior.get("blueprints") {
        Dynamic::Map(m) => (m.keys().cloned().collect::<Vec<_>>(), true),
        _ if contexts.is_empty() => (Vec::new(), false),
        _ => (store.index(name).await?.unwrap_or_default(), false),
    };
    let current = if contexts.is_empty() { BTreeMap::new() } else { store.current(&names).await? };
    let blueprints = if from_config {
        prior.get("blueprints").clone()
    } else {
        let mut m = BTreeMap::new();
        for (n, c) in &current {
            let text = match &c.source {
                Some(s) => s.clone(),
                None => store.canonical(n, &c.version).await?,
            };
            m.insert(n.clone(), text.into_dynamic());
        }
        Dynamic::Map(m)
    };
    Ok(Some(Observed { function, log_retention, esm, schedule, invoke_arns, tables, blueprints, current }))
}

/// The state Read reports: what AWS shows, plus what only the configuration knows.
fn observed_state(prior: &Dynamic, name: &str, o: &Observed, region: &str) -> Dynamic {
    let mut v = prior.clone();
    let function = function_name(name);
    let tags_all = untagged(function::OWNER_TAG, &o.function.tags);
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
    // An empty list and no list deploy alike: keep the one configured.
    let networks = match worker_allowed_networks(&o.function.config.environment) {
        Some(n) => n.into_dynamic(),
        None if matches!(prior.get("http_allowed_networks"), Dynamic::List(_)) => Dynamic::List(Vec::new()),
        None => Dynamic::Null,
    };
    for (k, val) in [
        ("name", name.into_dynamic()),
        ("tables", o.tables.clone()),
        ("blueprints", o.blueprints.clone()),
        ("batch_size", batch),
        ("maximum_concurrency", concurrency),
        ("enabled", enabled),
        // No schedule reads as 0, "off": a deleted one shows in the plan as 0 -> 5.
        ("reconcile_every_minutes", o.schedule.unwrap_or(0).into_dynamic()),
        ("memory_size", o.function.config.memory.into_dynamic()),
        ("timeout", o.function.config.timeout.into_dynamic()),
        ("log_retention_days", o.log_retention.into_dynamic()),
        ("invoke_function_arns", invoke),
        ("http_allowed_networks", networks),
        ("function_name", function.clone().into_dynamic()),
        ("function_arn", o.function.arn.clone().into_dynamic()),
        ("role_arn", o.function.role.clone().into_dynamic()),
        ("log_group_name", logs::group_name(&function).into_dynamic()),
        ("event_source_mapping_uuid", uuid),
        ("blueprint_versions", versions.into_dynamic()),
        ("client_config", client_config(&o.tables, region)),
        ("source_code_hash", o.function.code_sha256.clone().into_dynamic()),
        ("tags_all", tags_all.into_dynamic()),
    ] {
        v.set(k, val);
    }
    v
}

/// Creates or updates the worker, blueprints, mapping and schedule; returns the computed
/// outputs.
async fn converge(
    aws: &AwsClients,
    spec: &Spec,
    prior: &Dynamic,
    owner: &Owner,
    exists: bool,
) -> Result<Dynamic, AwsError> {
    let zip = spec.zip().map_err(AwsError::Invalid)?;
    let f = function::deploy(aws, &spec.function(zip), owner, exists).await?;
    // Blueprints before the mapping: a job never finds its blueprint missing.
    let prior_names: BTreeSet<String> = match prior.get("blueprints") {
        Dynamic::Map(m) => m.keys().cloned().collect(),
        _ => BTreeSet::new(),
    };
    let prior_table = string(prior.get("tables").get("contexts_table_name")).filter(|t| !t.is_empty());
    let store = Store::new(aws.dynamodb.clone(), spec.tables.settings().tables());
    let old =
        prior_table.filter(|t| *t != spec.tables.contexts).map(|t| (blueprint_store(aws, &t), prior_names.clone()));
    let versions = blueprints::sync(&store, &spec.name, &spec.blueprints, &prior_names, old).await?;
    let uuid = match prior.get("event_source_mapping_uuid") {
        Dynamic::String(u) => Some(u.clone()),
        _ => None,
    };
    let mapping = esm::ensure(&aws.lambda, &spec.esm(), uuid.as_deref()).await?;
    let reconcile = reconcile_schedule(&spec.name);
    match spec.reconcile_every_minutes {
        minutes @ 1.. => {
            let tags = owner.tagged(&spec.tags_all);
            let description = format!(
                "Reconciles stalled runs of workflow worker {}; managed by terraform-provider-adf",
                spec.function_name()
            );
            schedule::ensure(aws, &reconcile, minutes, &description, &f.arn, &tags).await?;
        }
        _ => schedule::remove(aws, &reconcile).await?,
    }
    let function = spec.function_name();
    let region = aws.sdk.region().map(ToString::to_string).unwrap_or_default();
    Ok(Dynamic::object([
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
/// `current` pointers (their versions stay, for runs in flight); nothing when another owner's
/// worker holds the name.
async fn remove(aws: &AwsClients, name: &str, state: &Dynamic, owner: &Owner) -> Result<(), AwsError> {
    let function = function_name(name);
    if !function::ours_or_gone(aws, &function, owner).await? {
        return Ok(());
    }
    for m in esm::list(&aws.lambda, &function).await? {
        esm::delete(&aws.lambda, &m.uuid).await?;
    }
    schedule::remove(aws, &reconcile_schedule(name)).await?;
    function::remove(aws, &function, owner).await?;
    let Some(table) = string(state.get("tables").get("contexts_table_name")).filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let mut names: BTreeSet<String> = match state.get("blueprints") {
        Dynamic::Map(m) => m.keys().cloned().collect(),
        _ => BTreeSet::new(),
    };
    let store = blueprint_store(aws, &table);
    names.extend(store.index(name).await?.unwrap_or_default());
    for n in &names {
        store.delete_current(name, n).await?;
    }
    Ok(store.delete_index(name).await?)
}

/// The runtime's store over contexts table `contexts`, for the blueprints kept there.
fn blueprint_store(aws: &AwsClients, contexts: &str) -> Store {
    Store::new(aws.dynamodb.clone(), Tables { contexts: contexts.to_string(), statuses: String::new() })
}

/// The `adf_workflow` resource.
#[derive(Debug, Default)]
pub struct Workflow;

#[async_trait]
impl Managed for Workflow {
    const KIND: Kind = Kind::new("adf_workflow", Duration::from_secs(15 * 60), schema, validate_config);

    async fn plan(&self, data: Option<&AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        if let Dynamic::String(name) = plan.planned.get("name").clone() {
            plan_function_names(&mut plan.planned, function_name(&name));
        }
        let mut d = Diagnostics::new();
        // The code: a new zip (a new provider release) is an in-place update.
        let hash = WORKFLOW_WORKER.planned_hash(req.config.get("worker_zip"), &mut d);
        plan.planned.set("source_code_hash", hash);
        // Versions are content hashes: known as soon as the blueprints are.
        let versions = blueprints::planned_versions(plan.planned.get("blueprints"));
        plan.planned.set("blueprint_versions", versions);
        let region = data.and_then(|d| d.aws.sdk.region().map(ToString::to_string)).unwrap_or_default();
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

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure> {
        let spec = model::<Spec>(&req.planned)?;
        let (prior, owner) = (&req.prior.value, owner.owner(function::OWNER_TAG));
        let outputs = converge(&data.aws, &spec, prior, &owner, !prior.is_null()).await?;
        Ok(with_outputs(&req.planned, outputs))
    }

    async fn observe(&self, data: &AdfData, name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        let region = data.aws.sdk.region().map(ToString::to_string).unwrap_or_default();
        Ok(observe(&data.aws, name, prior).await?.map(|o| observed_state(prior, name, &o, &region)))
    }

    async fn remove(&self, data: &AdfData, name: &str, state: &Dynamic, owner: &Ownership) -> Result<(), Failure> {
        Ok(remove(&data.aws, name, state, &owner.owner(function::OWNER_TAG)).await?)
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        if let Err(m) = validate_name(id) {
            return Err(Diagnostic::error(format!("importing {} ({id}): invalid id", Self::KIND.type_name), m).into());
        }
        let prior = Dynamic::object([("name", id.into())]);
        let region = data.aws.sdk.region().map(ToString::to_string).unwrap_or_default();
        match observe(&data.aws, id, &prior).await? {
            Some(o) => {
                let owner =
                    imported_owner(function::OWNER_TAG, "Lambda function", &function_name(id), &o.function.tags)?;
                Ok(Imported { value: observed_state(&prior, id, &o, &region), owner })
            }
            None => Err(AwsError::Invalid(format!("no worker function {}", function_name(id))).into()),
        }
    }
}

/// The worker function that a wholly known plan of `adf_workflow` deploys (its environment
/// and role statements are the runtime's contract, filled in), deploying the zip at `zip`.
/// Public so the runtime's own tests can check what the provider gives it.
pub fn worker_function(planned: &Dynamic, zip: PathBuf) -> Result<FunctionSpec, Diagnostics> {
    Ok(model::<Spec>(planned)?.function(zip))
}

#[cfg(test)]
mod tests;
