//! What the provider gives the stream Lambda it deploys, read back through this runtime's own
//! contract: a name that differs on either side fails here, not on AWS.

use std::collections::BTreeMap;
use std::path::PathBuf;

use adf::resources::stream_topic::stream_function;
use adf_common::contract::{EnvSettings, missing_grants};
use adf_stream::TopicConfig;
use adf_stream::contract::{LAMBDA_ACCESS, LambdaResource, segments_prefix};
use serde_json::Value as Json;
use tfplug::{Dynamic, IntoDynamic};

const TABLE_ARN: &str = "arn:aws:dynamodb:eu-west-1:123456789012:table/adf-stream-clicks";
const KMS_KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd";

/// A wholly known plan of `adf_stream_topic` on a bucket of the user's, as Terraform sends it.
fn planned() -> Dynamic {
    Dynamic::object([
        ("name", "clicks".into()),
        ("partitions", 4i64.into_dynamic()),
        ("retention_days", 30i64.into_dynamic()),
        ("compression", false.into_dynamic()),
        ("bucket", "data-lake".into()),
        ("prefix", "streams/".into()),
        ("kms_key_arn", KMS_KEY.into()),
        ("auth_type", "AWS_IAM".into()),
        ("memory_size", 512i64.into_dynamic()),
        ("timeout", 30i64.into_dynamic()),
        ("log_retention_days", 14i64.into_dynamic()),
        ("lambda_zip", Dynamic::Null),
        ("tags_all", BTreeMap::<String, String>::new().into_dynamic()),
    ])
}

#[test]
fn the_lambda_reads_every_variable_the_provider_writes() {
    let f = stream_function(&planned(), "data-lake", TABLE_ARN, PathBuf::from("adf-stream-lambda.zip")).expect("plan");
    let topic = TopicConfig::from_map(&f.config.environment).expect("every variable the Lambda needs is set");
    assert_eq!(
        (topic.name.as_str(), topic.partitions, topic.bucket.as_str(), topic.prefix.as_str()),
        ("clicks", 4, "data-lake", "streams/")
    );
    assert_eq!((topic.table.as_str(), topic.retention_days, topic.compress), ("adf-stream-clicks", 30, false));
    assert_eq!(f.config.environment, topic.to_env(), "the provider writes nothing the Lambda does not read");
}

#[test]
fn the_role_grants_each_action_the_lambda_calls_on_exactly_its_segments_and_table() {
    let f = stream_function(&planned(), "data-lake", TABLE_ARN, PathBuf::from("adf-stream-lambda.zip")).expect("plan");
    let statements: Vec<Json> =
        serde_json::from_str(f.policy_statements.as_deref().expect("statements")).expect("a JSON array");
    assert_eq!(statements.len(), LAMBDA_ACCESS.len(), "{statements:?}");
    let problems = missing_grants(&statements, LAMBDA_ACCESS, |r| match r {
        // Exactly where the engine writes this topic's segments.
        LambdaResource::Segments => vec![format!("arn:aws:s3:::data-lake/{}*", segments_prefix("streams/", "clicks"))],
        LambdaResource::Table => vec![TABLE_ARN.to_string()],
        LambdaResource::KmsKey => vec![KMS_KEY.to_string()],
    });
    assert!(problems.is_empty(), "{problems:?}");
}
