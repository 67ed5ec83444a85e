//! A managed Lambda function: its log group, its least-privilege execution role (or the user's),
//! code, configuration, reserved concurrency, Function URL and tags, converged in that order
//! with Lambda's waiters. `adf_function` deploys one; so do `adf_stream_topic` (the stream
//! Lambda) and `adf_workflow` (the worker), through [`deploy`] and [`remove`].

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use super::lambda::{
    AsyncInvoke, Config, CorsSpec, DEFAULT_LOG_LEVEL, ImageSettings, Logging, Observed, ObservedUrl, Vpc,
};
use super::{AwsClients, AwsError, Owner, iam, lambda, logs};

/// Tag marking the function and role this layer made; its value is the owning instance's id.
pub const OWNER_TAG: &str = "adf:function";
/// Retention values CloudWatch Logs accepts (0: never expire).
pub const RETENTION_DAYS: [i64; 23] =
    [0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// Where the code comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Code {
    /// A local zip (from `package` or `filename`).
    Zip(PathBuf),
    /// A zip in S3.
    S3 {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
    /// A container image.
    Image(String),
}

/// The Function URL the user asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct UrlSpec {
    pub auth_type: String,
    pub cors: Option<CorsSpec>,
}

/// What a wholly known plan asks for.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub code: Code,
    pub source_code_hash: Option<String>,
    pub config: Config,
    pub reserved_concurrency: Option<i64>,
    /// Retries and destinations of asynchronous invocations; None: Lambda's defaults.
    pub async_invoke: Option<AsyncInvoke>,
    pub log_retention_days: i64,
    pub role_arn: Option<String>,
    pub policy_statements: Option<String>,
    pub publish: bool,
    pub url: Option<UrlSpec>,
    pub tags_all: BTreeMap<String, String>,
}

impl Code {
    /// Where a zip in S3 or an image is, so a move is a code update; a local zip has none (its
    /// hash decides).
    fn location(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        match self {
            Code::Zip(_) => (None, None, None),
            Code::S3 { bucket, key } => (Some(bucket), Some(key), None),
            Code::Image(uri) => (None, None, Some(uri)),
        }
    }
}

/// What the function was before an update.
#[derive(Clone, Debug, Default)]
pub struct Prior {
    /// Where its code came from, when known.
    pub code: Option<Code>,
    /// The version last published.
    pub version: Option<String>,
}

/// Deploys a function that another resource manages (the stream topic's Lambda, the workflow
/// worker): the same log group, role, code, URL and tags as `adf_function`, never published.
/// `exists` is false on create.
pub async fn deploy(aws: &AwsClients, spec: &Spec, owner: &Owner, exists: bool) -> Result<Observed, AwsError> {
    let prior = exists.then(Prior::default);
    Ok(converge(aws, spec, owner, prior.as_ref()).await?.0)
}

/// Deletes function `name`, its log group and its managed role when `owner` owns them; what is
/// gone already is fine. Someone else's function keeps all three.
pub async fn remove(aws: &AwsClients, name: &str, owner: &Owner) -> Result<(), AwsError> {
    if !ours_or_gone(aws, name, owner).await? {
        return Ok(());
    }
    lambda::delete(&aws.lambda, name).await?;
    logs::delete(&aws.logs, &logs::group_name(name)).await?;
    iam::delete(&aws.iam, name, owner).await
}

/// Whether function `name` is gone or carries `owner`'s tag: only then may it, and what hangs
/// off it, be deleted.
pub async fn ours_or_gone(aws: &AwsClients, name: &str, owner: &Owner) -> Result<bool, AwsError> {
    let ours = lambda::observe(&aws.lambda, name).await?.is_none_or(|o| owner.owns(&o.tags));
    if !ours {
        tracing::warn!(function = name, "not deleting a Lambda function that another owner tagged");
    }
    Ok(ours)
}

/// Reads the function and its log retention; None when the function is gone.
pub async fn observe(aws: &AwsClients, name: &str) -> Result<Option<(Observed, Option<i64>)>, AwsError> {
    let Some(o) = lambda::observe(&aws.lambda, name).await? else { return Ok(None) };
    let retention = logs::describe(&aws.logs, &logs::group_name(name)).await?.map(|(_, days)| days);
    Ok(Some((o, retention)))
}

/// The function name in a function ARN (`arn:<partition>:lambda:<region>:<account>:function:<name>`).
pub fn name_in_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(6)
}

/// The API Gateway invoke ARN of a function.
pub fn invoke_arn(function_arn: &str) -> String {
    // arn:<partition>:lambda:<region>:<account>:function:<name>
    let parts: Vec<&str> = function_arn.split(':').collect();
    let (partition, region) = (parts.get(1).copied().unwrap_or("aws"), parts.get(3).copied().unwrap_or_default());
    format!("arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations")
}

/// Converges the function to the plan: log group, role, code, configuration, concurrency,
/// URL, tags. `prior` is None on create.
pub async fn converge(
    aws: &AwsClients,
    spec: &Spec,
    owner: &Owner,
    prior: Option<&Prior>,
) -> Result<(Observed, String), AwsError> {
    // Ownership is checked before touching anything: someone else's function keeps its log
    // group's retention and its role.
    let existing = lambda::observe(&aws.lambda, &spec.name).await?;
    if let Some(existing) = &existing {
        owner.check("Lambda function", &spec.name, &existing.tags)?;
    }
    let group = logs::group_name(&spec.name);
    let group_arn = logs::ensure(&aws.logs, &group, spec.log_retention_days, &spec.tags_all).await?;
    let role_arn = match &spec.role_arn {
        Some(arn) => arn.clone(),
        None => {
            let extra = spec.policy_statements.as_deref();
            iam::ensure(&aws.iam, &spec.name, owner, &group_arn, extra, &spec.tags_all).await?
        }
    };
    // Created on create, and on an update after it disappeared.
    let created = match existing {
        None => lambda::create(&aws.lambda, spec, owner, &role_arn).await?,
        Some(_) => false,
    };
    lambda::wait_ready(&aws.lambda, &spec.name).await?;
    let current = lambda::observe(&aws.lambda, &spec.name)
        .await?
        .ok_or(AwsError::Vanished { kind: "Lambda function", target: spec.name.clone() })?;
    let mut version = prior.and_then(|p| p.version.clone());
    if !created {
        let code_changed = spec.source_code_hash.as_ref().is_some_and(|h| *h != current.code_sha256)
            || current.config.architecture != spec.config.architecture
            || prior.and_then(|p| p.code.as_ref()).is_some_and(|c| c.location() != spec.code.location());
        if code_changed {
            lambda::update_code(&aws.lambda, spec).await?;
        }
        let config_changed = current.config.differs(&spec.config) || current.role != role_arn;
        if config_changed {
            lambda::update_configuration(&aws.lambda, spec, &role_arn).await?;
        }
        if spec.publish && (code_changed || config_changed) {
            version = Some(lambda::publish(&aws.lambda, &spec.name).await?);
        }
    } else if spec.publish {
        version = Some(lambda::publish(&aws.lambda, &spec.name).await?);
    }
    if spec.role_arn.is_some() {
        // The user brought a role: a managed one left from before is no longer needed.
        iam::delete(&aws.iam, &spec.name, owner).await?;
    }
    if current.reserved_concurrency != spec.reserved_concurrency {
        lambda::set_concurrency(&aws.lambda, &spec.name, spec.reserved_concurrency).await?;
    }
    if current.async_invoke != spec.async_invoke {
        lambda::set_async_invoke(&aws.lambda, &spec.name, spec.async_invoke.as_ref()).await?;
    }
    lambda::sync_url(&aws.lambda, &spec.name, current.url.as_ref(), spec.url.as_ref()).await?;
    lambda::sync_tags(&aws.lambda, spec, owner, &current.arn, &current.tags).await?;
    let observed = lambda::observe(&aws.lambda, &spec.name)
        .await?
        .ok_or(AwsError::Vanished { kind: "Lambda function", target: spec.name.clone() })?;
    Ok((observed, version.unwrap_or_else(|| "$LATEST".into())))
}
