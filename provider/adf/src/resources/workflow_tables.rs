//! `adf_workflow_tables`: the SQS job queue (with its dead-letter queue) and the DynamoDB
//! contexts, statuses and coordination tables that the workflow worker runs on.
//!
//! The smallest resource on the driver, and the worked example in `docs/development.md`: a
//! typed model read with serde, a schema, plan rules, and converge / observe / remove / import
//! written against the services layer.

mod schema;

use std::collections::BTreeMap;
use std::time::Duration;

use adf_workflow::contract::{CONTEXTS, COORDINATION, STALLED_INDEX, STATUSES};
use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName as QA;
use serde::Deserialize;
use tfplug::{ApplyRequest, Diagnostics, Dynamic, IntoDynamic, ObjectReader, Plan, PlanRequest, Value};

use self::schema::{schema, validate_config};
use super::driver::{Failure, Imported, Kind, Managed, model};
use crate::aws::dynamodb::{self, Billing, TableSpec, TableState};
use crate::aws::sqs::{self, QueueSpec, QueueState};
use crate::aws::{AwsClients, Owner, Ownership, imported_owner, untagged};
use crate::config::AdfData;
use crate::runtimes::{WorkerArns, policy_document, worker_statements};

/// Tag that marks the queues and tables this resource owns; its value is the instance's owner id.
const OWNER_TAG: &str = "adf:workflow-tables";
/// SQS queue names are at most 80 characters; ours add `-jobs-dlq` (and `.fifo`).
const MAX_QUEUE_NAME: usize = 80;
const DLQ_SUFFIX: &str = "-jobs-dlq";
/// The dead-letter queue keeps failed jobs as long as SQS allows: 14 days.
const DLQ_RETENTION_SECONDS: i64 = 1_209_600;

const DEFAULT_MAX_RECEIVE_COUNT: i64 = 5;
/// Six times `adf_workflow`'s default worker timeout (300 s), as AWS advises for a queue that feeds a
/// function, so the two resources with their defaults make a valid event source mapping.
const DEFAULT_VISIBILITY_TIMEOUT: i64 = 1800;
const DEFAULT_RETENTION: i64 = 345_600;

/// The names of everything this resource manages, derived from `name` and `fifo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The job queue.
    pub queue: String,
    /// The dead-letter queue.
    pub dlq: String,
    /// The contexts table.
    pub contexts: String,
    /// The statuses table.
    pub statuses: String,
    /// The coordination table.
    pub coordination: String,
}

impl Names {
    /// Names for prefix `name`.
    pub fn new(name: &str, fifo: bool) -> Self {
        let fifo = if fifo { ".fifo" } else { "" };
        Self {
            queue: format!("{name}-jobs{fifo}"),
            dlq: format!("{name}{DLQ_SUFFIX}{fifo}"),
            contexts: format!("{name}-contexts"),
            statuses: format!("{name}-statuses"),
            coordination: format!("{name}-coordination"),
        }
    }
}

/// The longest `name` that keeps every derived name within AWS limits.
fn max_name_len(fifo: bool) -> usize {
    MAX_QUEUE_NAME - DLQ_SUFFIX.len() - if fifo { ".fifo".len() } else { 0 }
}

/// `billing_mode`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum BillingMode {
    /// On demand.
    #[default]
    PayPerRequest,
    /// Provisioned capacity.
    Provisioned,
}

/// What a wholly known plan asks for.
#[derive(Clone, Debug, Deserialize, PartialEq)]
struct Spec {
    name: String,
    fifo: bool,
    max_receive_count: i64,
    #[serde(rename = "visibility_timeout_seconds")]
    visibility_timeout: i64,
    #[serde(rename = "message_retention_seconds")]
    retention: i64,
    billing_mode: BillingMode,
    read_capacity: Option<i64>,
    write_capacity: Option<i64>,
    #[serde(rename = "point_in_time_recovery")]
    pitr: bool,
    kms_key_arn: Option<String>,
    #[serde(default)]
    tags_all: Option<BTreeMap<String, String>>,
}

impl Spec {
    fn billing(&self) -> Billing {
        match (self.billing_mode, self.read_capacity, self.write_capacity) {
            (BillingMode::Provisioned, Some(read), Some(write)) => Billing::Provisioned { read, write },
            _ => Billing::PayPerRequest,
        }
    }

    fn names(&self) -> Names {
        Names::new(&self.name, self.fifo)
    }

    fn tags(&self, owner: &Owner) -> BTreeMap<String, String> {
        owner.tagged(&self.tags_all.clone().unwrap_or_default())
    }

    fn sse_attributes(&self) -> BTreeMap<QA, String> {
        let mut a = BTreeMap::new();
        match &self.kms_key_arn {
            Some(k) => {
                a.insert(QA::KmsMasterKeyId, k.clone());
            }
            None => {
                a.insert(QA::SqsManagedSseEnabled, "true".into());
            }
        }
        a
    }

    fn dlq(&self, owner: &Owner) -> QueueSpec {
        let mut attributes = self.sse_attributes();
        attributes.insert(QA::MessageRetentionPeriod, DLQ_RETENTION_SECONDS.to_string());
        QueueSpec { name: self.names().dlq, fifo: self.fifo, attributes, tags: self.tags(owner) }
    }

    fn queue(&self, dlq_arn: &str, owner: &Owner) -> QueueSpec {
        let mut attributes = self.sse_attributes();
        attributes.insert(QA::VisibilityTimeout, self.visibility_timeout.to_string());
        attributes.insert(QA::MessageRetentionPeriod, self.retention.to_string());
        let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.max_receive_count });
        attributes.insert(QA::RedrivePolicy, redrive.to_string());
        QueueSpec { name: self.names().queue, fifo: self.fifo, attributes, tags: self.tags(owner) }
    }

    fn tables(&self, owner: &Owner) -> [TableSpec; 3] {
        let n = self.names();
        let table = |name: String, schema| TableSpec {
            name,
            schema,
            billing: self.billing(),
            kms_key_arn: self.kms_key_arn.clone(),
            pitr: self.pitr,
            tags: self.tags(owner),
        };
        [table(n.contexts, CONTEXTS), table(n.statuses, STATUSES), table(n.coordination, COORDINATION)]
    }
}

/// Everything this resource manages, as AWS describes it.
#[derive(Clone, Debug)]
struct Observed {
    queue: QueueState,
    dlq: QueueState,
    tables: [TableState; 3],
}

/// The `adf_workflow_tables` resource.
#[derive(Debug, Default)]
pub struct WorkflowTables;

/// The value of `prior` unless one of `observed` differs from it; then that one, so that the
/// plan shows drift on any of the queues or tables.
fn drifted<T: PartialEq + Clone>(prior: Option<&T>, observed: &[T]) -> Option<T> {
    match prior {
        Some(p) => observed.iter().find(|v| *v != p).or(Some(p)).cloned(),
        None => observed.first().cloned(),
    }
}

/// Sets every computed output from what AWS reported.
fn set_outputs(state: &mut Dynamic, names: &Names, o: &Observed, kms_key_arn: Option<&str>) {
    let [contexts, statuses, coordination] = &o.tables;
    let s = |v: &str| Dynamic::String(v.to_string());
    for (k, v) in [
        ("queue_name", s(&names.queue)),
        ("queue_url", s(&o.queue.url)),
        ("queue_arn", s(&o.queue.arn)),
        ("dlq_name", s(&names.dlq)),
        ("dlq_url", s(&o.dlq.url)),
        ("dlq_arn", s(&o.dlq.arn)),
        ("contexts_table_name", s(&names.contexts)),
        ("contexts_table_arn", s(&contexts.arn)),
        ("statuses_table_name", s(&names.statuses)),
        ("statuses_table_arn", s(&statuses.arn)),
        ("stalled_runs_index_name", s(STALLED_INDEX)),
        ("coordination_table_name", s(&names.coordination)),
        ("coordination_table_arn", s(&coordination.arn)),
    ] {
        state.set(k, v);
    }
    state.set(
        "worker_policy_json",
        Dynamic::String(worker_policy(&o.queue.arn, &contexts.arn, &statuses.arn, kms_key_arn)),
    );
}

/// The least-privilege policy of a worker on these queues and tables: the runtime's own
/// statements. Only the job queue is named: SQS itself moves failed jobs to the dead-letter
/// queue.
fn worker_policy(queue: &str, contexts: &str, statuses: &str, kms_key: Option<&str>) -> String {
    policy_document(worker_statements(&WorkerArns { queue, contexts, statuses, invoke: &[], kms_key }))
}

/// The state Read reports: prior identity and settings replaced by what AWS shows.
fn observed_state(prior: &Dynamic, o: &Observed) -> Dynamic {
    let p = ObjectReader::new(prior);
    let name: String = p.get::<Value<String>>("name").ok().and_then(Value::into_known).unwrap_or_default();
    let fifo = p.get::<Value<bool>>("fifo").ok().and_then(Value::into_known).unwrap_or(false);
    let names = Names::new(&name, fifo);
    let num = |k: &str| p.get::<Value<i64>>(k).ok().and_then(Value::into_known);
    let prior_billing = match p.get::<Value<String>>("billing_mode").ok().and_then(Value::into_known).as_deref() {
        Some("PROVISIONED") => {
            num("read_capacity").zip(num("write_capacity")).map(|(read, write)| Billing::Provisioned { read, write })
        }
        Some(_) => Some(Billing::PayPerRequest),
        None => None,
    };
    let billing =
        drifted(prior_billing.as_ref(), &o.tables.clone().map(|t| t.billing)).unwrap_or(Billing::PayPerRequest);
    let pitr = p.get::<Value<bool>>("point_in_time_recovery").ok().and_then(Value::into_known);
    let pitr = drifted(pitr.as_ref(), &o.tables.clone().map(|t| t.pitr)).unwrap_or(false);
    let kms_prior = p.get::<Value<String>>("kms_key_arn").ok().map(Value::into_known);
    let mut kms_seen: Vec<Option<String>> = o.tables.iter().map(|t| t.kms_key_arn.clone()).collect();
    kms_seen.extend([o.queue.kms_key.clone(), o.dlq.kms_key.clone()]);
    let kms = drifted(kms_prior.as_ref(), &kms_seen).flatten();
    let tags_seen: Vec<BTreeMap<String, String>> = [&o.queue.tags, &o.dlq.tags]
        .into_iter()
        .chain(o.tables.iter().map(|t| &t.tags))
        .map(|t| untagged(OWNER_TAG, t))
        .collect();
    let prior_all = p.get::<Value<BTreeMap<String, String>>>("tags_all").ok().and_then(Value::into_known);
    let tags_all = drifted(prior_all.as_ref(), &tags_seen).unwrap_or_default();

    let (read, write) = match &billing {
        Billing::Provisioned { read, write } => (Some(*read), Some(*write)),
        Billing::PayPerRequest => (None, None),
    };
    let mut state = Dynamic::object([
        ("name", name.into_dynamic()),
        ("fifo", fifo.into_dynamic()),
        ("max_receive_count", o.queue.max_receive_count.into_dynamic()),
        ("visibility_timeout_seconds", o.queue.visibility_timeout.into_dynamic()),
        ("message_retention_seconds", o.queue.retention.into_dynamic()),
        (
            "billing_mode",
            match billing {
                Billing::PayPerRequest => "PAY_PER_REQUEST",
                Billing::Provisioned { .. } => "PROVISIONED",
            }
            .into(),
        ),
        ("read_capacity", read.into_dynamic()),
        ("write_capacity", write.into_dynamic()),
        ("point_in_time_recovery", pitr.into_dynamic()),
        ("kms_key_arn", kms.clone().into_dynamic()),
        ("tags_all", tags_all.into_dynamic()),
    ]);
    set_outputs(&mut state, &names, o, kms.as_deref());
    state
}

/// What AWS has of `names`; the queues at `urls` (the job queue's and the DLQ's) when the state
/// knows them.
async fn observe(
    aws: &AwsClients,
    names: &Names,
    urls: [Option<String>; 2],
) -> Result<Option<Observed>, crate::aws::AwsError> {
    let [queue_url, dlq_url] = urls;
    let queue = sqs::observe(&aws.sqs, &names.queue, queue_url.as_deref());
    let dlq = sqs::observe(&aws.sqs, &names.dlq, dlq_url.as_deref());
    let (queue, dlq, contexts, statuses, coordination) = tokio::try_join!(
        queue,
        dlq,
        dynamodb::describe(&aws.dynamodb, &names.contexts),
        dynamodb::describe(&aws.dynamodb, &names.statuses),
        dynamodb::describe(&aws.dynamodb, &names.coordination),
    )?;
    Ok(match (queue, dlq, contexts, statuses, coordination) {
        (Some(queue), Some(dlq), Some(c), Some(s), Some(k)) => Some(Observed { queue, dlq, tables: [c, s, k] }),
        _ => None,
    })
}

/// Creates or adopts, then converges, every queue and table to `spec`.
/// Converges everything, the contexts table first: CreateTable is atomic, so of two applies
/// racing for these names exactly one gets it and goes on, and the other stops having made
/// nothing.
async fn converge(aws: &AwsClients, spec: &Spec, owner: &Owner) -> Result<Observed, crate::aws::AwsError> {
    let [c, s, k] = spec.tables(owner);
    let c = dynamodb::ensure(&aws.dynamodb, &c, owner).await?;
    let (s, k) =
        tokio::try_join!(dynamodb::ensure(&aws.dynamodb, &s, owner), dynamodb::ensure(&aws.dynamodb, &k, owner))?;
    let dlq = sqs::ensure(&aws.sqs, &spec.dlq(owner), owner).await?;
    let queue = sqs::ensure(&aws.sqs, &spec.queue(&dlq.arn, owner), owner).await?;
    Ok(Observed { queue, dlq, tables: [c, s, k] })
}

/// The names in a state or plan.
fn names_of(v: &Dynamic) -> Names {
    let o = ObjectReader::new(v);
    let name = o.get::<Value<String>>("name").ok().and_then(Value::into_known).unwrap_or_default();
    Names::new(&name, o.get::<Value<bool>>("fifo").ok().and_then(Value::into_known).unwrap_or(false))
}

#[async_trait]
impl Managed for WorkflowTables {
    const KIND: Kind = Kind::new("adf_workflow_tables", Duration::from_secs(10 * 60), schema, validate_config);

    async fn plan(&self, _data: Option<&AdfData>, _req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        let o = ObjectReader::new(&plan.planned);
        let name = o.get::<Value<String>>("name").unwrap_or_default();
        let fifo = o.get::<Value<bool>>("fifo").unwrap_or_default();
        if let (Value::Known(name), Value::Known(fifo)) = (name, fifo) {
            let n = Names::new(&name, fifo);
            for (k, v) in [
                ("queue_name", n.queue),
                ("dlq_name", n.dlq),
                ("contexts_table_name", n.contexts),
                ("statuses_table_name", n.statuses),
                ("coordination_table_name", n.coordination),
                ("stalled_runs_index_name", STALLED_INDEX.to_string()),
            ] {
                plan.planned.set(k, v.into_dynamic());
            }
        }
        // The policy names ARNs: known once they exist, recomputed when the KMS key changes.
        let arn = |k: &str| match plan.planned.get(k) {
            Dynamic::String(s) => Some(s.clone()),
            _ => None,
        };
        let kms = match plan.planned.get("kms_key_arn") {
            Dynamic::Unknown => None,
            Dynamic::String(s) => Some(Some(s.clone())),
            _ => Some(None),
        };
        let policy = match (arn("queue_arn"), arn("contexts_table_arn"), arn("statuses_table_arn"), kms) {
            (Some(q), Some(c), Some(s), Some(kms)) => worker_policy(&q, &c, &s, kms.as_deref()).into_dynamic(),
            _ => Dynamic::Unknown,
        };
        plan.planned.set("worker_policy_json", policy);
        Diagnostics::new()
    }

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure> {
        let spec: Spec = model(&req.planned)?;
        let observed = converge(&data.aws, &spec, &owner.owner(OWNER_TAG)).await?;
        let mut state = req.planned.clone();
        set_outputs(&mut state, &spec.names(), &observed, spec.kms_key_arn.as_deref());
        Ok(state)
    }

    async fn observe(&self, data: &AdfData, _name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        let url = |k: &str| match prior.get(k) {
            Dynamic::String(u) => Some(u.clone()),
            _ => None,
        };
        let observed = observe(&data.aws, &names_of(prior), [url("queue_url"), url("dlq_url")]).await?;
        Ok(observed.map(|o| observed_state(prior, &o)))
    }

    async fn remove(&self, data: &AdfData, _name: &str, state: &Dynamic, owner: &Ownership) -> Result<(), Failure> {
        let (names, aws, owner) = (names_of(state), &data.aws, &owner.owner(OWNER_TAG));
        tokio::try_join!(
            sqs::delete(&aws.sqs, &names.queue, owner),
            sqs::delete(&aws.sqs, &names.dlq, owner),
            dynamodb::delete(&aws.dynamodb, &names.contexts, owner),
            dynamodb::delete(&aws.dynamodb, &names.statuses, owner),
            dynamodb::delete(&aws.dynamodb, &names.coordination, owner),
        )?;
        Ok(())
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        let bad = validate_config(&Dynamic::object([("name", id.into())]));
        if bad.has_errors() {
            return Err(tfplug::Diagnostic::error(
                format!("importing {} ({id}): invalid id", Self::KIND.type_name),
                format!("The import id is the resource's name. {bad}"),
            )
            .into());
        }
        for fifo in [false, true] {
            let queue = Names::new(id, fifo).queue;
            if let Some(url) = sqs::find(&data.aws.sqs, &queue).await? {
                let tags = sqs::describe(&data.aws.sqs, &queue, &url).await?.unwrap_or_default().tags;
                let owner = imported_owner(OWNER_TAG, "SQS queue", &queue, &tags)?;
                let value = Dynamic::object([("id", id.into()), ("name", id.into()), ("fifo", fifo.into_dynamic())]);
                return Ok(Imported { value, owner });
            }
        }
        let (queue, fifo_queue) = (Names::new(id, false).queue, Names::new(id, true).queue);
        Err(crate::aws::AwsError::Invalid(format!("no job queue {queue} or {fifo_queue} exists")).into())
    }
}

#[cfg(test)]
mod tests;
