//! `adf_stream_topic`: a Kafka-like topic on S3 segments and DynamoDB offsets, served over
//! HTTP by the stream Lambda behind a Function URL (`AWS_IAM` auth unless the user opts out).

mod schema;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use adf_common::contract::EnvSettings;
use adf_stream::TopicConfig;
use adf_stream::contract::{TABLE, segments_prefix};
use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{
    ApplyRequest, AttributePath, Diagnostic, Diagnostics, Dynamic, IntoDynamic, ObjectReader, Plan, PlanRequest, Value,
};

use self::schema::{schema, validate_config, validate_name};
use super::driver::attributes::{partition_change, plan_function_names, public_url_warning};
use super::driver::{Failure, Imported, Kind, Managed, model, with_outputs};
use super::released_zip::{STREAM_LAMBDA, file_sha256};
use crate::aws::dynamodb::{self, Billing, TableSpec};
use crate::aws::function::{self, Code, Config, Spec as FunctionSpec, UrlSpec};
use crate::aws::s3::{self, Storage};
use crate::aws::{AwsClients, AwsError, Owner, Ownership, imported_owner, logs, partition_of_arn, untagged};
use crate::config::AdfData;
use crate::runtimes::{StreamArns, statements_json, stream_environment, stream_statements};

/// Tag marking the bucket and table this resource made; its value is the topic name.
const OWNER_TAG: &str = "adf:stream-topic";
/// The most partitions a topic may have.
const MAX_PARTITIONS: i64 = 1024;
/// The longest name that keeps the managed bucket `adf-stream-<name>-<account>` within 63.
const MAX_NAME: usize = 39;
/// The prefix in a user's bucket unless `prefix` says otherwise.
const DEFAULT_USER_PREFIX: &str = "adf-streams/";

/// The names derived from the topic name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Names {
    function: String,
    table: String,
}

impl Names {
    fn new(topic: &str) -> Self {
        Self { function: format!("adf-stream-{topic}"), table: format!("adf-stream-{topic}") }
    }
}

/// The bucket this resource creates for `topic` in `account` (bucket names are global).
fn managed_bucket_name(topic: &str, account: &str) -> String {
    format!("adf-stream-{topic}-{account}")
}

/// What a wholly known plan asks for.
#[derive(Clone, Debug, Deserialize)]
struct Spec {
    name: String,
    partitions: i64,
    retention_days: i64,
    compression: bool,
    /// The user's bucket; None: a managed one.
    bucket: Option<String>,
    #[serde(default)]
    prefix: String,
    kms_key_arn: Option<String>,
    auth_type: String,
    memory_size: i64,
    timeout: i64,
    log_retention_days: i64,
    lambda_zip: Option<String>,
    #[serde(default)]
    tags_all: BTreeMap<String, String>,
}

impl Spec {
    fn names(&self) -> Names {
        Names::new(&self.name)
    }

    fn storage(&self, bucket_name: &str, owner: &Owner, tls_only: bool) -> Storage {
        Storage {
            tls_only,
            bucket: bucket_name.to_string(),
            managed: self.bucket.is_none(),
            rule: s3::Rule {
                id: rule_id(&self.name),
                prefix: segments_prefix(&self.prefix, &self.name),
                expiration_days: Some(self.retention_days + s3::EXPIRY_MARGIN_DAYS),
                abort_incomplete_upload_days: None,
            },
            kms_key_arn: self.kms_key_arn.clone(),
            tags: owner.tagged(&self.tags_all),
        }
    }

    fn table(&self, owner: &Owner) -> TableSpec {
        TableSpec {
            name: self.names().table,
            schema: TABLE,
            billing: Billing::PayPerRequest,
            kms_key_arn: self.kms_key_arn.clone(),
            pitr: false,
            tags: owner.tagged(&self.tags_all),
        }
    }

    /// The Lambda's settings: how `adf-stream-lambda` learns its topic.
    fn topic(&self, bucket_name: &str) -> TopicConfig {
        TopicConfig {
            name: self.name.clone(),
            partitions: u32::try_from(self.partitions).unwrap_or(1),
            bucket: bucket_name.to_string(),
            prefix: self.prefix.clone(),
            table: self.names().table,
            retention_days: u32::try_from(self.retention_days).unwrap_or(1),
            compress: self.compression,
        }
    }

    fn zip(&self) -> Result<PathBuf, String> {
        match &self.lambda_zip {
            Some(z) => Ok(PathBuf::from(z)),
            None => STREAM_LAMBDA.locate(),
        }
    }

    fn function(&self, bucket_name: &str, table_arn: &str, zip: PathBuf) -> FunctionSpec {
        // The table's ARN, from AWS, carries the partition the bucket is in.
        let bucket_arn = s3::bucket_arn(partition_of_arn(table_arn).unwrap_or("aws"), bucket_name);
        let statements = statements_json(stream_statements(&StreamArns {
            segments: &format!("{bucket_arn}/{}*", segments_prefix(&self.prefix, &self.name)),
            table: table_arn,
            kms_key: self.kms_key_arn.as_deref(),
        }));
        FunctionSpec {
            name: self.names().function,
            source_code_hash: file_sha256(&zip),
            code: Code::Zip(zip),
            config: Config::bootstrap(self.memory_size, self.timeout, stream_environment(&self.topic(bucket_name))),
            reserved_concurrency: None,
            async_invoke: None,
            log_retention_days: self.log_retention_days,
            role_arn: None,
            policy_statements: Some(statements),
            publish: false,
            url: Some(UrlSpec { auth_type: self.auth_type.clone(), cors: None }),
            tags_all: self.tags_all.clone(),
        }
    }
}

fn rule_id(topic: &str) -> String {
    format!("adf-stream-{topic}")
}

/// Everything AWS shows about a topic.
struct Observed {
    function: function::Observed,
    table_arn: String,
    bucket: String,
    log_retention: Option<i64>,
    lifecycle_days: Option<i64>,
    bucket_owned: bool,
}

async fn observe(aws: &AwsClients, name: &str) -> Result<Option<Observed>, AwsError> {
    let names = Names::new(name);
    let Some((function, log_retention)) = function::observe(aws, &names.function).await? else {
        return Ok(None);
    };
    let Some(table) = dynamodb::describe(&aws.dynamodb, &names.table).await? else {
        return Ok(None);
    };
    let bucket_name = function.config.environment.get(TopicConfig::BUCKET).cloned().unwrap_or_default();
    if bucket_name.is_empty() || !s3::exists(&aws.s3, &bucket_name).await? {
        return Ok(None);
    }
    // The managed bucket carries an owner tag; a bucket of the user's does not.
    let bucket_owned = s3::tags(&aws.s3, &bucket_name).await?.contains_key(OWNER_TAG);
    let lifecycle_days = s3::rule(&aws.s3, &bucket_name, &rule_id(name))
        .await?
        .and_then(|r| r.expiration_days)
        .map(|d| d - s3::EXPIRY_MARGIN_DAYS);
    Ok(Some(Observed {
        function,
        table_arn: table.arn,
        bucket: bucket_name,
        log_retention,
        lifecycle_days,
        bucket_owned,
    }))
}

/// The state Read reports: what AWS shows, plus what only the configuration knows.
fn observed_state(prior: &Dynamic, name: &str, o: &Observed) -> Dynamic {
    let mut v = prior.clone();
    // The settings the Lambda runs with, read back through the runtime's own contract.
    let topic = TopicConfig::from_map(&o.function.config.environment).ok();
    let names = Names::new(name);
    let tags_all = untagged(function::OWNER_TAG, &o.function.tags);
    // A bucket of the user's is named in `bucket`; the managed one carries our owner tag.
    let bucket = if o.bucket_owned { Dynamic::Null } else { o.bucket.clone().into_dynamic() };
    for (k, val) in [
        ("partitions", topic.as_ref().map(|t| i64::from(t.partitions)).into_dynamic()),
        ("retention_days", o.lifecycle_days.unwrap_or(0).into_dynamic()),
        ("compression", topic.as_ref().is_none_or(|t| t.compress).into_dynamic()),
        ("bucket", bucket),
        ("prefix", topic.as_ref().map(|t| t.prefix.clone()).unwrap_or_default().into_dynamic()),
        ("auth_type", o.function.url.as_ref().map(|u| u.auth_type.clone()).into_dynamic()),
        ("endpoint", o.function.url.as_ref().map(|u| u.url.clone()).into_dynamic()),
        ("memory_size", o.function.config.memory.into_dynamic()),
        ("timeout", o.function.config.timeout.into_dynamic()),
        ("log_retention_days", o.log_retention.into_dynamic()),
        ("bucket_name", o.bucket.clone().into_dynamic()),
        ("table_name", names.table.into_dynamic()),
        ("table_arn", o.table_arn.clone().into_dynamic()),
        ("function_name", names.function.clone().into_dynamic()),
        ("function_arn", o.function.arn.clone().into_dynamic()),
        ("role_arn", o.function.role.clone().into_dynamic()),
        ("log_group_name", logs::group_name(&names.function).into_dynamic()),
        ("source_code_hash", o.function.code_sha256.clone().into_dynamic()),
        ("tags_all", tags_all.into_dynamic()),
    ] {
        v.set(k, val);
    }
    if v.get("force_destroy").is_null() {
        v.set("force_destroy", false.into_dynamic());
    }
    v
}

/// Creates or updates the table, bucket and Lambda; returns the state's computed outputs. The
/// table comes first: CreateTable is atomic, so of two applies racing for a name one goes on.
async fn converge(
    aws: &AwsClients,
    spec: &Spec,
    bucket_name: &str,
    owner: &Ownership,
    exists: bool,
) -> Result<Dynamic, AwsError> {
    let zip = spec.zip().map_err(AwsError::Invalid)?;
    let topic_owner = owner.owner(OWNER_TAG);
    let table = dynamodb::ensure(&aws.dynamodb, &spec.table(&topic_owner), &topic_owner).await?;
    s3::ensure(aws, &spec.storage(bucket_name, &topic_owner, !aws.s3_plain_http()), &topic_owner).await?;
    let function_owner = owner.owner(function::OWNER_TAG);
    let f = function::deploy(aws, &spec.function(bucket_name, &table.arn, zip), &function_owner, exists).await?;
    let names = spec.names();
    Ok(Dynamic::object([
        ("endpoint", f.url.map(|u| u.url).into_dynamic()),
        ("bucket_name", bucket_name.into_dynamic()),
        ("prefix", spec.prefix.clone().into_dynamic()),
        ("table_name", names.table.into_dynamic()),
        ("table_arn", table.arn.into_dynamic()),
        ("function_name", names.function.clone().into_dynamic()),
        ("function_arn", f.arn.into_dynamic()),
        ("role_arn", f.role.into_dynamic()),
        ("log_group_name", logs::group_name(&names.function).into_dynamic()),
        ("source_code_hash", f.code_sha256.into_dynamic()),
    ]))
}

/// The `adf_stream_topic` resource.
#[derive(Debug, Default)]
pub struct StreamTopic;

#[async_trait]
impl Managed for StreamTopic {
    const KIND: Kind = Kind::new("adf_stream_topic", Duration::from_secs(15 * 60), schema, validate_config);

    async fn plan(&self, data: Option<&AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        let mut d = Diagnostics::new();
        if let Dynamic::String(name) = plan.planned.get("name").clone() {
            let names = Names::new(&name);
            plan.planned.set("table_name", names.table.into_dynamic());
            plan_function_names(&mut plan.planned, names.function);
        }
        match (req.config.get("prefix"), req.config.get("bucket")) {
            (Dynamic::Null, Dynamic::Null) => plan.planned.set("prefix", "".into()),
            (Dynamic::Null, Dynamic::String(_)) => plan.planned.set("prefix", DEFAULT_USER_PREFIX.into()),
            _ => {}
        }
        if req.prior.is_null() && data.is_some_and(|d| d.aws.s3_plain_http()) {
            d.push(Diagnostic::warning(
                "No TLS-only bucket policy on a plain-HTTP S3 endpoint",
                "S3 is reached over http:// (a local emulator), where a policy denying requests without TLS would \
                 refuse every request; the managed bucket gets it only on an https:// endpoint.",
            ));
        }
        if let Dynamic::String(b) = req.config.get("bucket") {
            plan.planned.set("bucket_name", b.clone().into_dynamic());
        }
        let at = AttributePath::root().attr("auth_type");
        if let Some(w) = public_url_warning(&plan.planned, plan.planned.get("auth_type"), req.prior.get("endpoint"), at)
        {
            d.push(w);
        }
        // The code: a new zip (a new provider release) is an in-place update.
        let hash = STREAM_LAMBDA.planned_hash(req.config.get("lambda_zip"), &mut d);
        plan.planned.set("source_code_hash", hash);
        let partitions = |v: &Dynamic| ObjectReader::new(v).get::<Value<i64>>("partitions").ok()?.into_known();
        if let (Some(prior), Some(planned)) = (partitions(&req.prior), partitions(&plan.planned)) {
            d.extend(partition_change(prior, planned));
        }
        d
    }

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure> {
        let spec = model::<Spec>(&req.planned)?;
        let bucket_name = bucket_name(data, &spec, &req.planned).await?;
        let outputs = converge(&data.aws, &spec, &bucket_name, owner, !req.prior.value.is_null()).await?;
        Ok(with_outputs(&req.planned, outputs))
    }

    async fn observe(&self, data: &AdfData, name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        Ok(observe(&data.aws, name).await?.map(|o| observed_state(prior, name, &o)))
    }

    async fn remove(&self, data: &AdfData, _name: &str, state: &Dynamic, owner: &Ownership) -> Result<(), Failure> {
        let spec = model::<Spec>(state)?;
        // A create that failed half way saved no bucket name when it was to be derived.
        let bucket_name = bucket_name(data, &spec, state).await?;
        let force_destroy = ObjectReader::new(state).get::<Value<bool>>("force_destroy")?.known_or(false);
        let (aws, topic_owner) = (&data.aws, owner.owner(OWNER_TAG));
        let storage = spec.storage(&bucket_name, &topic_owner, true);
        // Refuse before touching anything, so a refused destroy loses nothing.
        s3::check_deletable(&aws.s3, &storage, force_destroy, "segments").await?;
        function::remove(aws, &spec.names().function, &owner.owner(function::OWNER_TAG)).await?;
        dynamodb::delete(&aws.dynamodb, &spec.names().table, &topic_owner).await?;
        Ok(s3::delete(&aws.s3, &storage, &topic_owner, force_destroy).await?)
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        if let Err(m) = validate_name(id) {
            return Err(Diagnostic::error(format!("importing {} ({id}): invalid id", Self::KIND.type_name), m).into());
        }
        let Some(o) = observe(&data.aws, id).await? else {
            return Err(AwsError::Invalid("no such topic (its function, table or bucket is missing)".into()).into());
        };
        let function = Names::new(id).function;
        let owner = imported_owner(function::OWNER_TAG, "Lambda function", &function, &o.function.tags)?;
        Ok(Imported { value: observed_state(&Dynamic::object([("name", id.into())]), id, &o), owner })
    }
}

/// The bucket of a topic: the user's, the one a plan or state names, else the managed one's name.
async fn bucket_name(data: &AdfData, spec: &Spec, planned: &Dynamic) -> Result<String, AwsError> {
    Ok(match (&spec.bucket, planned.get("bucket_name")) {
        (Some(b), _) => b.clone(),
        (None, Dynamic::String(b)) => b.clone(),
        (None, _) => managed_bucket_name(&spec.name, &data.account_id().await.map_err(AwsError::Invalid)?),
    })
}

/// The stream Lambda that a wholly known plan of `adf_stream_topic` deploys on `bucket_name`
/// and the table `table_arn` (its environment and role statements are the runtime's contract,
/// filled in), deploying the zip at `zip`. Public so the runtime's own tests can check what
/// the provider gives it.
pub fn stream_function(
    planned: &Dynamic,
    bucket_name: &str,
    table_arn: &str,
    zip: PathBuf,
) -> Result<FunctionSpec, Diagnostics> {
    Ok(model::<Spec>(planned)?.function(bucket_name, table_arn, zip))
}

#[cfg(test)]
mod tests;
