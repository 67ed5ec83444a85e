//! The run state in DynamoDB, on the tables of `adf_workflow_tables`.
//!
//! - statuses (`runId`): one item per run: blueprint and version, `status`, `active` (a shard,
//!   set only while running, which puts the run in the sparse `stalled-runs` index), and
//!   `lastUpdated` (epoch milliseconds, always a number), `nodes` (every completion: action,
//!   edges taken, failed, and a small output inline). A completion is one conditional
//!   `UpdateItem` that records it exactly once, checks the run is still running, and returns
//!   the whole map: joins are decided from it, with no counter to double-count. When the
//!   worker knows it is the run's last completion, the same write ends the run.
//! - contexts (`runId`, `key`): the run's input and each node's output that is too large to
//!   be inline, one item per key, so a run is not capped at 400 KB; blueprints under
//!   `blueprint#<name>` ([`crate::catalog`]).
//!
//! Inline outputs share [`INLINE_OUTPUTS_BYTES`] per run, because every later completion
//! rewrites the whole item (and DynamoDB bills a write by the item's size).
//!
//! The tables' keys are [`crate::contract`]'s.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use adf_common::error_chain;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use serde_json::Value;

use crate::blueprint::Blueprint;
use crate::contract::{CONTEXTS, STATUSES};
use crate::engine::{Completion, Done};

pub use crate::contract::STALLED_INDEX;
/// `active` takes one of this many values, so in-flight runs spread over index partitions.
pub const SHARDS: u32 = 4;
/// The largest JSON value stored in one context item (DynamoDB's item limit is 400 KB).
pub const MAX_VALUE_BYTES: usize = 350 * 1024;
/// Inputs up to this size live in the run's status item; larger ones in the contexts table.
const INLINE_INPUT_BYTES: usize = 16 * 1024;
/// The bytes of output JSON a run's completions may carry inline, shared equally by its nodes.
pub const INLINE_OUTPUTS_BYTES: usize = 16 * 1024;
/// The largest output one completion carries inline, however few nodes share the budget.
const INLINE_OUTPUT_BYTES: usize = 1024;
/// BatchGetItem reads at most this many keys per request.
const BATCH_GET_KEYS: usize = 100;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A DynamoDB call failed.
    #[error("DynamoDB {op} on {table}: {cause}")]
    Aws {
        /// The operation.
        op: &'static str,
        /// The table.
        table: String,
        /// The SDK error.
        cause: String,
    },
    /// A value over the item limit.
    #[error(
        "{what} of run {run} is {bytes} bytes of JSON; one context value is at most {MAX_VALUE_BYTES} bytes \
         (DynamoDB's 400 KB item limit): store large data in S3 and pass its key"
    )]
    TooLarge {
        /// What it was.
        what: String,
        /// The run.
        run: String,
        /// Its size.
        bytes: usize,
    },
    /// Stored data that does not parse.
    #[error("corrupt {what}: {cause}")]
    Corrupt {
        /// What.
        what: String,
        /// Why.
        cause: String,
    },
    /// No such blueprint.
    #[error("no blueprint {0}: deploy it with adf_workflow (or Store::put_blueprint)")]
    NoBlueprint(String),
}

pub(crate) fn aws<E: std::error::Error + 'static>(
    op: &'static str,
    table: &str,
) -> impl FnOnce(aws_sdk_dynamodb::error::SdkError<E>) -> StoreError {
    let table = table.to_string();
    move |e| StoreError::Aws { op, table, cause: error_chain(&e) }
}

/// Whether `e` says the table does not exist.
pub(crate) fn is_missing_table<E>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some("ResourceNotFoundException")
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The `active` shard of a run.
pub fn shard(run: &str) -> String {
    let sum: u32 = run.bytes().map(u32::from).sum();
    (sum % SHARDS).to_string()
}

/// Where the tables are.
#[derive(Clone, Debug)]
pub struct Tables {
    /// Contexts table name.
    pub contexts: String,
    /// Statuses table name.
    pub statuses: String,
}

/// Node outputs recorded inline with their completions, by node.
pub type Outputs = BTreeMap<String, Value>;

/// The most output JSON one completion of a blueprint of `nodes` nodes carries inline.
pub fn inline_output_limit(nodes: usize) -> usize {
    (INLINE_OUTPUTS_BYTES / nodes.max(1)).min(INLINE_OUTPUT_BYTES)
}

/// A run's status item.
#[derive(Clone, Debug, PartialEq)]
pub struct RunStatus {
    /// The run.
    pub run_id: String,
    /// Blueprint name.
    pub blueprint: String,
    /// Pinned blueprint version.
    pub version: String,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// Completions so far.
    pub done: Done,
    /// The outputs recorded inline with them (the others are in the contexts table).
    pub outputs: Outputs,
    /// Nodes in the blueprint.
    pub total: usize,
    /// Last change, epoch ms.
    pub last_updated: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// The node whose output is the run's output.
    pub output_node: Option<String>,
    /// The run and node waiting for this one (a subflow).
    pub parent: Option<(String, String)>,
}

/// What ending a run found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Ended now; the run and node waiting for it, if it is a subflow.
    Now {
        /// The parent run and node.
        parent: Option<(String, String)>,
    },
    /// It was not running.
    NotRunning,
}

/// What recording a completion found.
#[derive(Clone, Debug, PartialEq)]
pub enum Recorded {
    /// Recorded now; the run's completions right after, and their inline outputs.
    New(Done, Outputs),
    /// Recorded now, and the same write ended the run (see [`Finish`]); the run and node
    /// waiting for it, if it is a subflow.
    Finished {
        /// The parent run and node.
        parent: Option<(String, String)>,
    },
    /// The node had completed already (a duplicate delivery).
    Duplicate,
    /// The run is not running (cancelled, failed or finished).
    NotRunning,
}

/// Ending the run in the same write as a completion that the worker expects to be its last:
/// the write applies only when the run has exactly `after` completions before it, so that the
/// outcome decided from them holds.
#[derive(Clone, Copy, Debug)]
pub struct Finish<'a> {
    /// `succeeded` or `failed`.
    pub status: &'a str,
    /// The node whose output is the run's.
    pub output_node: &'a str,
    /// The completions the run has before this one.
    pub after: usize,
}

/// The run state.
#[derive(Clone, Debug)]
pub struct Store {
    ddb: Client,
    tables: Tables,
}

/// The completions in `item`, and the outputs inline with them (`o`, JSON text; a completion
/// without one has its output in the contexts table, or none).
fn parse_done(item: &HashMap<String, AttributeValue>) -> Result<(Done, Outputs), StoreError> {
    let (mut done, mut outputs) = (Done::new(), Outputs::new());
    let Some(AttributeValue::M(nodes)) = item.get("nodes") else {
        return Ok((done, outputs));
    };
    for (k, v) in nodes {
        let m = v
            .as_m()
            .map_err(|_| StoreError::Corrupt { what: format!("completion of {k}"), cause: "not a map".into() })?;
        let text = |key: &str| m.get(key).and_then(|v| v.as_s().ok()).cloned();
        let taken = m
            .get("t")
            .and_then(|v| v.as_l().ok())
            .map_or_else(Vec::new, |l| l.iter().filter_map(|x| x.as_s().ok().cloned()).collect());
        let failed = m.get("f").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
        if let Some(o) = text("o") {
            outputs.insert(k.clone(), parse_json(&format!("the output of node {k}"), &o)?);
        }
        done.insert(k.clone(), Completion { action: text("a").unwrap_or_default(), taken, failed });
    }
    Ok((done, outputs))
}

fn completion_value(c: &Completion, inline: Option<String>) -> AttributeValue {
    let mut m = HashMap::from([
        ("a".to_string(), s(&c.action)),
        ("t".to_string(), AttributeValue::L(c.taken.iter().map(s).collect())),
    ]);
    if c.failed {
        m.insert("f".into(), AttributeValue::Bool(true));
    }
    if let Some(text) = inline {
        m.insert("o".into(), s(text));
    }
    AttributeValue::M(m)
}

fn parse_status(item: &HashMap<String, AttributeValue>) -> Result<RunStatus, StoreError> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let num = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
    let parent = match item.get("parent").and_then(|v| v.as_m().ok()) {
        Some(p) => {
            let get = |k: &str| p.get(k).and_then(|v| v.as_s().ok()).cloned();
            get("run").zip(get("node"))
        }
        None => None,
    };
    let (done, outputs) = parse_done(item)?;
    Ok(RunStatus {
        run_id: text("runId").unwrap_or_default(),
        blueprint: text("blueprint").unwrap_or_default(),
        version: text("version").unwrap_or_default(),
        status: text("status").unwrap_or_default(),
        done,
        outputs,
        total: usize::try_from(num("total").unwrap_or(0)).unwrap_or(0),
        last_updated: num("lastUpdated").unwrap_or(0),
        error: text("error"),
        output_node: text("outputNode"),
        parent,
    })
}

fn json_text(what: &str, run: &str, v: &Value) -> Result<String, StoreError> {
    let text = v.to_string();
    if text.len() > MAX_VALUE_BYTES {
        return Err(StoreError::TooLarge { what: what.to_string(), run: run.to_string(), bytes: text.len() });
    }
    Ok(text)
}

fn parse_json(what: &str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt { what: what.to_string(), cause: e.to_string() })
}

/// The contexts key of a node's output that is not inline.
fn output_key(node: &str) -> String {
    format!("out:{node}")
}

pub(crate) fn is_condition_failed<E>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

impl Store {
    /// A store on `tables`.
    pub fn new(ddb: Client, tables: Tables) -> Self {
        Self { ddb, tables }
    }

    /// Creates the contexts and statuses tables as `adf_workflow_tables` makes them (on
    /// demand, the stalled-runs index: [`CONTEXTS`] and [`STATUSES`]), for use without Terraform
    /// and in tests.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        for (schema, table) in [(&CONTEXTS, &self.tables.contexts), (&STATUSES, &self.tables.statuses)] {
            schema.create(&self.ddb, table).await.map_err(|cause| StoreError::Aws {
                op: "CreateTable",
                table: table.clone(),
                cause,
            })?;
        }
        Ok(())
    }

    /// The table names.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The DynamoDB client.
    pub(crate) fn ddb(&self) -> &Client {
        &self.ddb
    }

    /// Creates run `run` (once: a second call with the same id changes nothing and returns
    /// false).
    pub async fn create_run(
        &self,
        run: &str,
        name: &str,
        bp: &Blueprint,
        input: &Value,
        parent: Option<(&str, &str)>,
    ) -> Result<bool, StoreError> {
        let t = &self.tables.statuses;
        let input_text = json_text("input", run, input)?;
        let now = now_ms();
        let mut req = self
            .ddb
            .put_item()
            .table_name(t)
            .item("runId", s(run))
            .item("blueprint", s(name))
            .item("version", s(bp.version()))
            .item("status", s("running"))
            .item("active", s(shard(run)))
            .item("lastUpdated", n(now))
            .item("started", n(now))
            .item("total", n(i64::try_from(bp.nodes.len()).unwrap_or(0)))
            .item("nodes", AttributeValue::M(HashMap::new()))
            .condition_expression("attribute_not_exists(runId)");
        if input_text.len() <= INLINE_INPUT_BYTES {
            req = req.item("input", s(&input_text));
        } else {
            self.put_value(run, "input", &input_text).await?;
        }
        if let Some((prun, pnode)) = parent {
            req = req
                .item("parent", AttributeValue::M(HashMap::from([("run".into(), s(prun)), ("node".into(), s(pnode))])));
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(aws("PutItem", t)(e)),
        }
    }

    async fn put_value(&self, run: &str, key: &str, text: &str) -> Result<(), StoreError> {
        let t = &self.tables.contexts;
        self.ddb
            .put_item()
            .table_name(t)
            .item("runId", s(run))
            .item("key", s(key))
            .item("v", s(text))
            .send()
            .await
            .map_err(aws("PutItem", t))?;
        Ok(())
    }

    /// The run's input.
    pub async fn input(&self, run: &str) -> Result<Value, StoreError> {
        let t = &self.tables.statuses;
        let out = self
            .ddb
            .get_item()
            .table_name(t)
            .key("runId", s(run))
            .projection_expression("#i")
            .expression_attribute_names("#i", "input")
            .send()
            .await
            .map_err(aws("GetItem", t))?;
        if let Some(text) = out.item.as_ref().and_then(|i| i.get("input")).and_then(|v| v.as_s().ok()) {
            return parse_json("input", text);
        }
        Ok(self.values(run, &["input".to_string()]).await?.remove("input").unwrap_or(Value::Null))
    }

    /// The outputs of `nodes` (absent ones are null): those in `inline` (a status's or a
    /// completion's) from there, the rest in as few requests as BatchGetItem allows (none when
    /// every one is inline).
    pub async fn outputs(
        &self,
        run: &str,
        inline: &Outputs,
        nodes: &[String],
    ) -> Result<BTreeMap<String, Value>, StoreError> {
        let stored: Vec<String> = nodes.iter().filter(|n| !inline.contains_key(*n)).map(|n| output_key(n)).collect();
        let mut found = if stored.is_empty() { BTreeMap::new() } else { self.values(run, &stored).await? };
        Ok(nodes
            .iter()
            .map(|n| {
                let v = inline.get(n).cloned().or_else(|| found.remove(&output_key(n)));
                (n.clone(), v.unwrap_or(Value::Null))
            })
            .collect())
    }

    async fn values(&self, run: &str, keys: &[String]) -> Result<BTreeMap<String, Value>, StoreError> {
        let keys = keys.iter().map(|k| HashMap::from([("runId".to_string(), s(run)), ("key".to_string(), s(k))]));
        let mut found = BTreeMap::new();
        // Boxed: the SDK's futures are deep, and every caller's state machine would carry them.
        for item in Box::pin(self.batch_get(&self.tables.contexts, keys.collect(), None)).await? {
            let key = item.get("key").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            if let Some(text) = item.get("v").and_then(|v| v.as_s().ok()) {
                found.insert(key.clone(), parse_json(&key, text)?);
            }
        }
        Ok(found)
    }

    /// Reads `keys` of `table` (with `projection` of names `#p0`.. if given), as many keys to
    /// a request as BatchGetItem takes, retrying unprocessed keys.
    async fn batch_get(
        &self,
        table: &str,
        keys: Vec<HashMap<String, AttributeValue>>,
        projection: Option<&[&str]>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let items = Box::pin(self.batch_get_or_missing(table, keys, projection, false)).await?;
        Ok(items.unwrap_or_default())
    }

    /// [`Store::batch_get`]; with `missing_ok`, None when the table does not exist.
    pub(crate) async fn batch_get_or_missing(
        &self,
        table: &str,
        keys: Vec<HashMap<String, AttributeValue>>,
        projection: Option<&[&str]>,
        missing_ok: bool,
    ) -> Result<Option<Vec<HashMap<String, AttributeValue>>>, StoreError> {
        let mut items = Vec::new();
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            let mut request = KeysAndAttributes::builder().consistent_read(true).set_keys(Some(chunk.to_vec()));
            if let Some(names) = projection {
                let placeholders: Vec<String> = (0..names.len()).map(|i| format!("#p{i}")).collect();
                request = request.projection_expression(placeholders.join(", "));
                for (p, n) in placeholders.iter().zip(names) {
                    request = request.expression_attribute_names(p, *n);
                }
            }
            let request =
                request.build().map_err(|e| StoreError::Corrupt { what: "request".into(), cause: e.to_string() })?;
            let mut pending = Some(HashMap::from([(table.to_string(), request)]));
            while let Some(unread) = pending.take().filter(|p| !p.is_empty()) {
                let out = match self.ddb.batch_get_item().set_request_items(Some(unread)).send().await {
                    Ok(out) => out,
                    Err(e) if missing_ok && is_missing_table(&e) => return Ok(None),
                    Err(e) => return Err(aws("BatchGetItem", table)(e)),
                };
                items.extend(out.responses.unwrap_or_default().remove(table).unwrap_or_default());
                pending = out.unprocessed_keys;
            }
        }
        Ok(Some(items))
    }

    /// Records `node`'s completion exactly once, if the run is still running, with its output:
    /// inline when it fits [`inline_output_limit`] of the blueprint's `nodes` (null always, so
    /// that reading it takes no request), else first in the contexts table (a retried node
    /// overwrites its own). With `finish`, the same write ends
    /// the run if it has the completions expected; if not, the completion is recorded alone.
    pub async fn complete(
        &self,
        run: &str,
        node: &str,
        c: &Completion,
        output: &Value,
        nodes: usize,
        finish: Option<Finish<'_>>,
    ) -> Result<Recorded, StoreError> {
        let text = json_text(&format!("the output of node {node}"), run, output)?;
        let inline = if output.is_null() || text.len() <= inline_output_limit(nodes) {
            Some(text)
        } else {
            self.put_value(run, &output_key(node), &text).await?;
            None
        };
        self.record(run, node, completion_value(c, inline), finish).await
    }

    async fn record(
        &self,
        run: &str,
        node: &str,
        completion: AttributeValue,
        finish: Option<Finish<'_>>,
    ) -> Result<Recorded, StoreError> {
        let t = &self.tables.statuses;
        let mut set = vec!["#nodes.#n = :c", "lastUpdated = :now"];
        let mut condition = String::from("attribute_not_exists(#nodes.#n) AND #s = :running");
        let mut req = self
            .ddb
            .update_item()
            .table_name(t)
            .key("runId", s(run))
            .expression_attribute_names("#nodes", "nodes")
            .expression_attribute_names("#n", node)
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":c", completion.clone())
            .expression_attribute_values(":now", n(now_ms()))
            .expression_attribute_values(":running", s("running"))
            .return_values(ReturnValue::AllNew);
        if let Some(f) = finish {
            set.extend(["#s = :status", "finished = :now", "outputNode = :out"]);
            condition.push_str(" AND size(#nodes) = :after");
            req = req
                .expression_attribute_values(":status", s(f.status))
                .expression_attribute_values(":out", s(f.output_node))
                .expression_attribute_values(":after", n(i64::try_from(f.after).unwrap_or(i64::MAX)));
        }
        let remove = if finish.is_some() { " REMOVE active" } else { "" };
        let r = req
            .update_expression(format!("SET {}{remove}", set.join(", ")))
            .condition_expression(condition)
            .send()
            .await;
        match r {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                if finish.is_some() {
                    return Ok(Recorded::Finished { parent: parse_status(&item)?.parent });
                }
                let (done, outputs) = parse_done(&item)?;
                Ok(Recorded::New(done, outputs))
            }
            Err(e) if is_condition_failed(&e) => {
                // Only on this path: tell a duplicate from a run that stopped, or from one
                // whose completions are not those a finish expected.
                match self.status(run).await? {
                    Some(st) if st.status == "running" && st.done.contains_key(node) => Ok(Recorded::Duplicate),
                    Some(st) if st.status == "running" && finish.is_some() => {
                        Box::pin(self.record(run, node, completion, None)).await
                    }
                    Some(st) if st.status == "running" => Err(StoreError::Corrupt {
                        what: format!("run {run}"),
                        cause: "the completion was refused although the run is running".into(),
                    }),
                    _ => Ok(Recorded::NotRunning),
                }
            }
            Err(e) => Err(aws("UpdateItem", t)(e)),
        }
    }

    /// Ends a running run with `status` (`succeeded`, `failed`, `cancelled`).
    pub async fn finish(
        &self,
        run: &str,
        status: &str,
        error: Option<&str>,
        output_node: Option<&str>,
    ) -> Result<Ended, StoreError> {
        let t = &self.tables.statuses;
        let mut set = vec!["#s = :status", "finished = :now", "lastUpdated = :now"];
        let mut req = self
            .ddb
            .update_item()
            .table_name(t)
            .key("runId", s(run))
            .condition_expression("#s = :running")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":status", s(status))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":now", n(now_ms()));
        if let Some(e) = error {
            set.push("#e = :error");
            req = req.expression_attribute_names("#e", "error").expression_attribute_values(":error", s(e));
        }
        if let Some(o) = output_node {
            set.push("outputNode = :out");
            req = req.expression_attribute_values(":out", s(o));
        }
        let r = req
            .update_expression(format!("SET {} REMOVE active", set.join(", ")))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match r {
            Ok(out) => Ok(Ended::Now { parent: parse_status(&out.attributes.unwrap_or_default())?.parent }),
            Err(e) if is_condition_failed(&e) => Ok(Ended::NotRunning),
            Err(e) => Err(aws("UpdateItem", t)(e)),
        }
    }

    /// Marks a running run as alive until `until` (epoch ms): a heartbeat, a sleep, a retry's
    /// delay, a subflow's wait. The reconciler leaves it alone until then.
    pub async fn touch(&self, run: &str, until: i64) -> Result<(), StoreError> {
        let t = &self.tables.statuses;
        let r = self
            .ddb
            .update_item()
            .table_name(t)
            .key("runId", s(run))
            .update_expression("SET lastUpdated = :t")
            .condition_expression("#s = :running")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":t", n(until))
            .expression_attribute_values(":running", s("running"))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(aws("UpdateItem", t)(e)),
        }
    }

    /// Run `run`'s status, if it exists.
    pub async fn status(&self, run: &str) -> Result<Option<RunStatus>, StoreError> {
        let t = &self.tables.statuses;
        let out = self
            .ddb
            .get_item()
            .table_name(t)
            .key("runId", s(run))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws("GetItem", t))?;
        out.item.as_ref().map(parse_status).transpose()
    }

    /// The `status` of each of `runs` that exists, in as few requests as BatchGetItem allows.
    pub async fn run_states(&self, runs: &[String]) -> Result<BTreeMap<String, String>, StoreError> {
        let keys = runs.iter().map(|r| HashMap::from([("runId".to_string(), s(r))])).collect();
        let items = Box::pin(self.batch_get(&self.tables.statuses, keys, Some(&["runId", "status"]))).await?;
        Ok(items
            .iter()
            .map(|item| {
                let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                (text("runId"), text("status"))
            })
            .collect())
    }

    /// Cancels a running run; false when it was not running.
    pub async fn cancel(&self, run: &str) -> Result<bool, StoreError> {
        Ok(matches!(self.finish(run, "cancelled", None, None).await?, Ended::Now { .. }))
    }

    /// Runs still in flight whose last change is older than `before` (epoch ms), from the
    /// stalled-runs index (a query per shard, every page; never a scan).
    pub async fn stalled(&self, before: i64) -> Result<Vec<String>, StoreError> {
        self.stalled_paged(before, None).await
    }

    /// [`Store::stalled`] with at most `page` items per request (to exercise paging).
    pub async fn stalled_paged(&self, before: i64, page: Option<i32>) -> Result<Vec<String>, StoreError> {
        let t = &self.tables.statuses;
        let mut runs = Vec::new();
        for shard in 0..SHARDS {
            let mut start = None;
            loop {
                let out = self
                    .ddb
                    .query()
                    .table_name(t)
                    .index_name(STALLED_INDEX)
                    .key_condition_expression("active = :a AND lastUpdated < :before")
                    .expression_attribute_values(":a", s(shard.to_string()))
                    .expression_attribute_values(":before", n(before))
                    .set_limit(page)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(aws("Query", t))?;
                runs.extend(
                    out.items
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|i| i.get("runId").and_then(|v| v.as_s().ok()).cloned()),
                );
                start = out.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_round_trip_through_attribute_values() {
        let c = Completion { action: "ok".into(), taken: vec!["a".into(), "b".into()], failed: true };
        let item = HashMap::from([(
            "nodes".to_string(),
            AttributeValue::M(HashMap::from([("n".to_string(), completion_value(&c, None))])),
        )]);
        let (done, outputs) = parse_done(&item).expect("parse");
        assert_eq!((done.get("n"), outputs.get("n")), (Some(&c), None));
        let inline = completion_value(&c, Some(r#"{"ok":1}"#.into()));
        let item =
            HashMap::from([("nodes".to_string(), AttributeValue::M(HashMap::from([("n".to_string(), inline)])))]);
        let (done, outputs) = parse_done(&item).expect("parse");
        assert_eq!((done.get("n"), outputs.get("n")), (Some(&c), Some(&serde_json::json!({"ok": 1}))));
    }

    #[test]
    fn the_inline_budget_is_shared_by_the_nodes_and_capped_per_output() {
        assert_eq!(inline_output_limit(1), INLINE_OUTPUT_BYTES);
        assert_eq!(inline_output_limit(0), INLINE_OUTPUT_BYTES);
        assert_eq!(inline_output_limit(64), INLINE_OUTPUTS_BYTES / 64);
        assert!((1..2000).all(|n| inline_output_limit(n) * n <= INLINE_OUTPUTS_BYTES));
    }

    #[test]
    fn shards_are_stable_and_bounded() {
        assert_eq!(shard("run-1"), shard("run-1"));
        assert!((0..SHARDS).map(|s| s.to_string()).any(|s| s == shard("abc")));
    }

    #[test]
    fn values_over_the_item_limit_are_refused_with_the_node() {
        let big = Value::String("x".repeat(MAX_VALUE_BYTES));
        let e = json_text("the output of node charge", "r1", &big).expect_err("too large");
        assert!(e.to_string().contains("node charge"), "{e}");
    }
}
