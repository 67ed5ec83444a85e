//! What the provider gives the worker it deploys, read back through this runtime's own
//! contract: a name that differs on either side fails here, not on AWS.

use std::collections::BTreeMap;
use std::path::PathBuf;

use adf::resources::workflow::worker_function;
use adf_common::contract::{EnvSettings, missing_grants};
use adf_workflow::contract::{STALLED_INDEX, WORKER_ACCESS, WorkerResource, WorkerSettings};
use serde_json::Value as Json;
use tfplug::{Dynamic, IntoDynamic};

const QUEUE_URL: &str = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders-jobs";
const QUEUE_ARN: &str = "arn:aws:sqs:eu-west-1:123456789012:orders-jobs";
const CONTEXTS_ARN: &str = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders-contexts";
const STATUSES_ARN: &str = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders-statuses";
const KMS_KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd";
const CHARGE: &str = "arn:aws:lambda:eu-west-1:123456789012:function:charge";

/// A wholly known plan of `adf_workflow`, as Terraform sends it to apply.
fn planned() -> Dynamic {
    let tables = Dynamic::object([
        ("queue_url", QUEUE_URL.into()),
        ("queue_arn", QUEUE_ARN.into()),
        ("visibility_timeout_seconds", 1800i64.into_dynamic()),
        ("contexts_table_name", "orders-contexts".into()),
        ("contexts_table_arn", CONTEXTS_ARN.into()),
        ("statuses_table_name", "orders-statuses".into()),
        ("statuses_table_arn", STATUSES_ARN.into()),
        ("kms_key_arn", KMS_KEY.into()),
    ]);
    Dynamic::object([
        ("name", "orders".into()),
        ("tables", tables),
        ("blueprints", Dynamic::object([("order", r#"{"nodes":{"a":{"uses":"pass"}},"edges":[]}"#.into())])),
        ("batch_size", 10i64.into_dynamic()),
        ("maximum_concurrency", Dynamic::Null),
        ("reconcile_every_minutes", 5i64.into_dynamic()),
        ("enabled", true.into_dynamic()),
        ("memory_size", 512i64.into_dynamic()),
        ("timeout", 300i64.into_dynamic()),
        ("log_retention_days", 14i64.into_dynamic()),
        ("worker_zip", Dynamic::Null),
        ("invoke_function_arns", vec![CHARGE.to_string()].into_dynamic()),
        ("tags_all", BTreeMap::from([("team".to_string(), "a".to_string())]).into_dynamic()),
    ])
}

#[test]
fn the_worker_reads_every_variable_the_provider_writes() {
    let f = worker_function(&planned(), PathBuf::from("adf-workflow-worker.zip")).expect("the plan reads");
    let settings = WorkerSettings::from_map(&f.config.environment).expect("every variable the worker needs is set");
    assert_eq!(
        settings,
        WorkerSettings {
            queue_url: QUEUE_URL.into(),
            contexts_table: "orders-contexts".into(),
            statuses_table: "orders-statuses".into(),
        }
    );
    assert_eq!(f.config.environment, settings.to_env(), "the provider writes nothing the worker does not read");
}

#[test]
fn the_role_grants_each_action_the_worker_calls_on_exactly_its_resources() {
    let f = worker_function(&planned(), PathBuf::from("adf-workflow-worker.zip")).expect("the plan reads");
    let statements: Vec<Json> =
        serde_json::from_str(f.policy_statements.as_deref().expect("statements")).expect("a JSON array");
    assert_eq!(statements.len(), WORKER_ACCESS.len(), "{statements:?}");
    let problems = missing_grants(&statements, WORKER_ACCESS, |r| match r {
        WorkerResource::JobQueue => vec![QUEUE_ARN.to_string()],
        WorkerResource::RunTables => vec![CONTEXTS_ARN.to_string(), STATUSES_ARN.to_string()],
        WorkerResource::StalledRunsIndex => vec![format!("{STATUSES_ARN}/index/{STALLED_INDEX}")],
        WorkerResource::InvokedFunctions => vec![CHARGE.to_string()],
        WorkerResource::KmsKey => vec![KMS_KEY.to_string()],
    });
    assert!(problems.is_empty(), "{problems:?}");
}
