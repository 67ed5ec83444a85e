//! The workflow runtime's contract with whoever deploys it (the provider's
//! `adf_workflow_tables` and `adf_workflow`): the tables and their keys, the environment the
//! worker reads, and the IAM statements the worker needs.

use std::collections::BTreeMap;

use adf_common::contract::{Access, EnvError, EnvSettings, IndexSchema, Key, TableSchema, required};

use crate::store::Tables;

/// The sparse index of in-flight runs on the statuses table (hash `active`, range
/// `lastUpdated`).
pub const STALLED_INDEX: &str = "stalled-runs";

/// The contexts table: a run's input and node outputs, one item per key, and the blueprint
/// catalog ([`crate::catalog`]).
pub const CONTEXTS: TableSchema =
    TableSchema { hash: Key::s("runId"), range: Some(Key::s("key")), index: None, ttl: None };

/// The statuses table: one item per run, in the sparse [`STALLED_INDEX`] while it runs (`active`
/// is a shard, `lastUpdated` epoch milliseconds).
pub const STATUSES: TableSchema = TableSchema {
    hash: Key::s("runId"),
    range: None,
    index: Some(IndexSchema { name: STALLED_INDEX, hash: Key::s("active"), range: Some(Key::n("lastUpdated")) }),
    ttl: None,
};

/// The coordination table (`key`, TTL `ttl`). The runtime does not use it today: joins are
/// decided from the completions recorded in the statuses table.
pub const COORDINATION: TableSchema = TableSchema { hash: Key::s("key"), range: None, index: None, ttl: Some("ttl") };

/// The key of the event that makes the worker Lambda run the reconciler (optionally with
/// `older_than_seconds`).
pub const RECONCILE_KEY: &str = "reconcile";
/// The event a schedule sends the worker Lambda to run the reconciler.
pub const RECONCILE_EVENT: &str = r#"{"reconcile":true}"#;

/// The variable holding the poller's concurrency (default 8; not set on Lambda).
pub const CONCURRENCY_ENV: &str = "ADF_CONCURRENCY";

/// The variable holding, in seconds, how long a job the poller received stays hidden from
/// other workers before its node's heartbeat extends it (default 60; not set on Lambda, where
/// the queue's own visibility timeout applies). A job whose worker died comes back after it.
pub const VISIBILITY_ENV: &str = "ADF_VISIBILITY_TIMEOUT";

/// The variable holding the networks `http` nodes may reach although the egress policy blocks
/// them (link-local, metadata, loopback on Lambda), comma-separated (`169.254.170.2/32`);
/// unset: none. See [`crate::egress`].
pub const HTTP_ALLOWED_NETWORKS_ENV: &str = "ADF_HTTP_ALLOWED_NETWORKS";

/// Where the worker (binary) finds its queue and tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    /// The job queue's URL.
    pub queue_url: String,
    /// The contexts table's name.
    pub contexts_table: String,
    /// The statuses table's name.
    pub statuses_table: String,
}

impl WorkerSettings {
    /// The variable holding [`WorkerSettings::queue_url`].
    pub const QUEUE_URL: &'static str = "ADF_QUEUE_URL";
    /// The variable holding [`WorkerSettings::contexts_table`].
    pub const CONTEXTS_TABLE: &'static str = "ADF_CONTEXTS_TABLE";
    /// The variable holding [`WorkerSettings::statuses_table`].
    pub const STATUSES_TABLE: &'static str = "ADF_STATUSES_TABLE";

    /// The two run tables.
    pub fn tables(&self) -> Tables {
        Tables { contexts: self.contexts_table.clone(), statuses: self.statuses_table.clone() }
    }
}

impl EnvSettings for WorkerSettings {
    fn to_env(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (Self::QUEUE_URL.to_string(), self.queue_url.clone()),
            (Self::CONTEXTS_TABLE.to_string(), self.contexts_table.clone()),
            (Self::STATUSES_TABLE.to_string(), self.statuses_table.clone()),
        ])
    }

    fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        Ok(Self {
            contexts_table: required(get, Self::CONTEXTS_TABLE)?,
            statuses_table: required(get, Self::STATUSES_TABLE)?,
            queue_url: required(get, Self::QUEUE_URL)?,
        })
    }
}

/// What the worker's statements name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerResource {
    /// The job queue (never the dead-letter queue: SQS moves failed jobs itself).
    JobQueue,
    /// The contexts and statuses tables (never the coordination table).
    RunTables,
    /// The statuses table's [`STALLED_INDEX`] (`<statuses ARN>/index/stalled-runs`).
    StalledRunsIndex,
    /// The functions `lambda` nodes invoke (none: the statement is left out).
    InvokedFunctions,
    /// The customer managed KMS key of the queue and tables (none: left out).
    KmsKey,
}

/// The `Sid` of the statement granting `lambda:InvokeFunction`; the provider reads the
/// granted ARNs back from it.
pub const INVOKE_SID: &str = "InvokeFunctions";

/// What the worker (as a Lambda on the queue, or as a poller), the client and the reconciler
/// call, and so what their role needs:
///
/// - `JobQueue`: `sqs:SendMessage` (`SendMessageBatch`: start nodes, successors, retries,
///   subflows, the reconciler), `sqs:ReceiveMessage` (the poller's `ReceiveMessage`; the event
///   source mapping polls with the function's role), `sqs:DeleteMessage` (`DeleteMessageBatch`
///   after a job; the event source mapping deletes a batch's successes),
///   `sqs:ChangeMessageVisibility` (the heartbeat that keeps a running node's message hidden),
///   `sqs:GetQueueAttributes` (the event source mapping reads the queue's attributes with the
///   function's role; the runtime itself never calls it). The URL is configured, so no
///   `GetQueueUrl`.
/// - `RunTables` (contexts and statuses): `dynamodb:GetItem` (a run's status and input, a
///   blueprint's current version and a version), `dynamodb:PutItem` (a new run, conditional; a
///   node's output too large to be inline, or a large input), `dynamodb:UpdateItem` (a
///   completion, finishing, cancelling, the heartbeat's touch, all conditional),
///   `dynamodb:BatchGetItem` (node outputs, run states). No transaction (`ConditionCheckItem`), delete, batch write or scan;
///   the only query is on the index.
/// - `StalledRunsIndex`: `dynamodb:Query` (the reconciler and `adf workflow runs --stalled`).
/// - `InvokeFunctions`: `lambda:InvokeFunction` (the `lambda` node, and `map` over it).
/// - `EncryptionKey`: `kms:Decrypt` and `kms:GenerateDataKey`, to receive from and send to a
///   queue, and read and write tables, encrypted with a customer managed key.
pub const WORKER_ACCESS: &[Access<WorkerResource>] = &[
    Access {
        sid: "JobQueue",
        resource: WorkerResource::JobQueue,
        actions: &[
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
            "sqs:SendMessage",
        ],
    },
    Access {
        sid: "RunTables",
        resource: WorkerResource::RunTables,
        actions: &["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
    },
    Access { sid: "StalledRunsIndex", resource: WorkerResource::StalledRunsIndex, actions: &["dynamodb:Query"] },
    Access { sid: INVOKE_SID, resource: WorkerResource::InvokedFunctions, actions: &["lambda:InvokeFunction"] },
    Access { sid: "EncryptionKey", resource: WorkerResource::KmsKey, actions: &["kms:Decrypt", "kms:GenerateDataKey"] },
];

#[cfg(test)]
mod tests {
    use adf_common::contract::{AttrType, statements};
    use aws_sdk_dynamodb::error::BuildError;
    use aws_sdk_dynamodb::types::KeyType;

    use super::*;

    #[test]
    fn the_reconcile_event_carries_its_key() {
        let event: serde_json::Value = serde_json::from_str(RECONCILE_EVENT).unwrap_or_default();
        assert!(event.get(RECONCILE_KEY).is_some(), "{RECONCILE_EVENT}");
    }

    #[test]
    fn settings_round_trip_through_the_environment() {
        let s = WorkerSettings {
            queue_url: "https://sqs.eu-west-1.amazonaws.com/1/orders-jobs".into(),
            contexts_table: "orders-contexts".into(),
            statuses_table: "orders-statuses".into(),
        };
        let env = s.to_env();
        assert_eq!(
            env.keys().map(String::as_str).collect::<Vec<_>>(),
            ["ADF_CONTEXTS_TABLE", "ADF_QUEUE_URL", "ADF_STATUSES_TABLE"]
        );
        assert_eq!(WorkerSettings::from_map(&env), Ok(s.clone()));
        let tables = s.tables();
        assert_eq!((tables.contexts.as_str(), tables.statuses.as_str()), ("orders-contexts", "orders-statuses"));
    }

    #[test]
    fn a_missing_variable_is_named() {
        for name in [WorkerSettings::QUEUE_URL, WorkerSettings::CONTEXTS_TABLE, WorkerSettings::STATUSES_TABLE] {
            let mut env = BTreeMap::from([
                ("ADF_QUEUE_URL".to_string(), "q".to_string()),
                ("ADF_CONTEXTS_TABLE".to_string(), "c".to_string()),
                ("ADF_STATUSES_TABLE".to_string(), "s".to_string()),
            ]);
            env.remove(name);
            let e = WorkerSettings::from_map(&env).expect_err("missing");
            assert_eq!(e, EnvError::Missing(name));
            assert_eq!(e.to_string(), format!("{name} is not set"));
        }
    }

    #[test]
    fn the_tables_are_as_the_store_uses_them() -> Result<(), BuildError> {
        let keys = |t: &TableSchema| -> Result<Vec<(String, KeyType)>, BuildError> {
            Ok(t.key_schema()?.iter().map(|k| (k.attribute_name().to_string(), k.key_type().clone())).collect())
        };
        assert_eq!(keys(&CONTEXTS)?, [("runId".into(), KeyType::Hash), ("key".into(), KeyType::Range)]);
        assert_eq!(keys(&STATUSES)?, [("runId".into(), KeyType::Hash)]);
        assert_eq!(keys(&COORDINATION)?, [("key".into(), KeyType::Hash)]);
        assert_eq!(COORDINATION.ttl, Some("ttl"));
        let defs: Vec<String> =
            STATUSES.attribute_definitions()?.iter().map(|d| d.attribute_name().to_string()).collect();
        assert_eq!(defs, ["runId", "active", "lastUpdated"]);
        let index = STATUSES.global_secondary_index(None)?.map(|i| i.index_name().to_string());
        assert_eq!(index.as_deref(), Some("stalled-runs"));
        assert_eq!(STATUSES.index.and_then(|i| i.range).map(|k| k.ty), Some(AttrType::N));
        Ok(())
    }

    fn arns(r: WorkerResource) -> Vec<String> {
        match r {
            WorkerResource::JobQueue => vec!["arn:aws:sqs:eu-west-1:1:orders-jobs".into()],
            WorkerResource::RunTables => vec![
                "arn:aws:dynamodb:eu-west-1:1:table/orders-contexts".into(),
                "arn:aws:dynamodb:eu-west-1:1:table/orders-statuses".into(),
            ],
            WorkerResource::StalledRunsIndex => {
                vec![format!("arn:aws:dynamodb:eu-west-1:1:table/orders-statuses/index/{STALLED_INDEX}")]
            }
            WorkerResource::InvokedFunctions | WorkerResource::KmsKey => Vec::new(),
        }
    }

    #[test]
    fn statements_name_only_what_the_worker_touches() {
        let s = statements(WORKER_ACCESS, arns);
        let sids: Vec<&str> = s.iter().filter_map(|s| s["Sid"].as_str()).collect();
        assert_eq!(sids, ["JobQueue", "RunTables", "StalledRunsIndex"]);
        let doc = serde_json::Value::Array(s).to_string();
        assert!(!doc.contains('*'), "no wildcard action or resource: {doc}");
        for absent in ["lambda:", "kms:", "DeleteItem", "Scan", "BatchWriteItem", "GetQueueUrl", "ConditionCheckItem"] {
            assert!(!doc.contains(absent), "{absent}: {doc}");
        }
        let all = statements(WORKER_ACCESS, |r| match r {
            WorkerResource::InvokedFunctions => vec!["arn:aws:lambda:eu-west-1:1:function:charge".into()],
            WorkerResource::KmsKey => vec!["arn:aws:kms:eu-west-1:1:key/k".into()],
            other => arns(other),
        });
        let invoke = all.iter().find(|s| s["Sid"] == INVOKE_SID).map(|s| s["Action"].clone());
        assert_eq!(invoke, Some(serde_json::json!(["lambda:InvokeFunction"])));
        assert_eq!(all.len(), 5);
    }
}
