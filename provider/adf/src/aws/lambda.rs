//! Lambda calls for `adf_function`: create (retried while IAM propagates), code and
//! configuration updates one after the other with the waiters, concurrency, the Function URL,
//! tags, and reading it all back.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_lambda::Client;
use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    ApplicationLogLevel, Architecture as LambdaArch, Cors, DeadLetterConfig, Environment, EphemeralStorage,
    FunctionCode, FunctionUrlAuthType, ImageConfig, LogFormat, LoggingConfig, PackageType, Runtime, SystemLogLevel,
    TracingConfig, TracingMode, VpcConfig,
};

use super::error::{AwsError, Sent, Target, call};
use super::function::{Code, Spec, UrlSpec};
use super::{Owner, TagChanges, poll};

/// How long Lambda may take to make a function active or finish an update.
const STATE_WAIT: Duration = Duration::from_secs(15 * 60);
/// How long to keep retrying a create while a new role propagates through IAM.
const IAM_PROPAGATION: Duration = Duration::from_secs(120);
/// The first pause between those retries; it doubles up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(500);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(10);
/// The statement that opens a `NONE`-auth Function URL to the public.
const PUBLIC_URL_STATEMENT: &str = "FunctionURLAllowPublicAccess";

/// A function's configuration: what a plan asks for and what Lambda reports alike.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// Runtime, when a zip function (None in a plan: Lambda's or the package's).
    pub runtime: Option<String>,
    /// Handler (None in a plan: as it is).
    pub handler: Option<String>,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// MB.
    pub memory: i64,
    /// Seconds.
    pub timeout: i64,
    /// Environment variables.
    pub environment: BTreeMap<String, String>,
    /// MB of `/tmp`.
    pub ephemeral_storage: i64,
    /// X-Ray: `PassThrough` or `Active`.
    pub tracing: String,
    /// Layer version ARNs, in order.
    pub layers: Vec<String>,
    /// The VPC the function reaches, when any.
    pub vpc: Option<Vpc>,
    /// What overrides the image's own settings (image functions only).
    pub image: Option<ImageSettings>,
    /// The format and levels of the function's logs.
    pub logging: Logging,
    /// The SQS queue or SNS topic ARN that asynchronous events go to once their retries are
    /// spent, when any.
    pub dead_letter: Option<String>,
}

/// How the function logs to its log group (`/aws/lambda/<name>`): Lambda's `LoggingConfig`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logging {
    /// `Text` or `JSON`.
    pub format: String,
    /// With JSON, the lowest level of the function's own lines that is kept.
    pub application_level: Option<String>,
    /// With JSON, the lowest level of Lambda's platform lines that is kept.
    pub system_level: Option<String>,
}

/// The level Lambda gives JSON logs when none is named.
pub const DEFAULT_LOG_LEVEL: &str = "INFO";

impl Default for Logging {
    fn default() -> Self {
        Self { format: "Text".into(), application_level: None, system_level: None }
    }
}

impl Logging {
    /// What Lambda reports for this setting: JSON without levels gets Lambda's [`DEFAULT_LOG_LEVEL`].
    pub fn as_lambda_reports(mut self) -> Self {
        if self.format == "JSON" {
            self.application_level.get_or_insert_with(|| DEFAULT_LOG_LEVEL.into());
            self.system_level.get_or_insert_with(|| DEFAULT_LOG_LEVEL.into());
        }
        self
    }
}

/// The subnets and security groups a function's network interfaces use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vpc {
    /// Subnet ids.
    pub subnet_ids: Vec<String>,
    /// Security group ids.
    pub security_group_ids: Vec<String>,
}

/// A container image's command, entry point and working directory, as the function overrides
/// them (empty: the image's own).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageSettings {
    /// `CMD`.
    pub command: Vec<String>,
    /// `ENTRYPOINT`.
    pub entry_point: Vec<String>,
    /// `WORKDIR`.
    pub working_directory: Option<String>,
}

/// Actions the execution role needs for X-Ray: they take no resource, so `*` is all there is.
const XRAY_ACTIONS: [&str; 2] = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"];
/// Actions the execution role needs to attach the function to a VPC, as AWS's
/// `AWSLambdaVPCAccessExecutionRole` lists them: the interfaces do not exist before Lambda makes
/// them, and the `Describe` calls take no resource.
const VPC_ACTIONS: [&str; 6] = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
];

impl Config {
    /// A custom-runtime (`provided.al2023`) x86_64 function with a `bootstrap`, as the runtimes
    /// released with the provider are.
    pub fn bootstrap(memory: i64, timeout: i64, environment: BTreeMap<String, String>) -> Self {
        Self {
            runtime: Some("provided.al2023".into()),
            handler: Some("bootstrap".into()),
            architecture: "x86_64".into(),
            memory,
            timeout,
            environment,
            ephemeral_storage: DEFAULT_EPHEMERAL_STORAGE,
            tracing: PASS_THROUGH.into(),
            layers: Vec::new(),
            vpc: None,
            image: None,
            logging: Logging::default(),
            dead_letter: None,
        }
    }

    /// The statements the execution role needs for this configuration: X-Ray when tracing is
    /// `Active`, network interfaces in a VPC, and sending to the dead-letter target.
    pub fn role_statements(&self) -> Vec<serde_json::Value> {
        let allow = |actions: &[&str]| serde_json::json!({ "Effect": "Allow", "Action": actions, "Resource": "*" });
        let mut statements = Vec::new();
        if self.tracing == "Active" {
            statements.push(allow(&XRAY_ACTIONS));
        }
        if self.vpc.is_some() {
            statements.push(allow(&VPC_ACTIONS));
        }
        statements.extend(self.dead_letter.as_deref().and_then(delivery_statement));
        statements
    }

    /// Whether Lambda must update the configuration to match `wanted` (runtime and handler
    /// only when `wanted` names them).
    pub fn differs(&self, wanted: &Config) -> bool {
        self.memory != wanted.memory
            || self.timeout != wanted.timeout
            || self.environment != wanted.environment
            || self.ephemeral_storage != wanted.ephemeral_storage
            || self.tracing != wanted.tracing
            || self.layers != wanted.layers
            || self.vpc != wanted.vpc
            || self.image != wanted.image
            || self.logging != wanted.logging
            || self.dead_letter != wanted.dead_letter
            || (wanted.runtime.is_some() && self.runtime != wanted.runtime)
            || (wanted.handler.is_some() && self.handler != wanted.handler)
    }
}

/// What Lambda reports about a function.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Function ARN (unqualified).
    pub arn: String,
    /// Execution role ARN.
    pub role: String,
    /// Its configuration.
    pub config: Config,
    /// Base64 SHA-256 of the deployed code.
    pub code_sha256: String,
    /// Reserved concurrency, when set.
    pub reserved_concurrency: Option<i64>,
    /// How asynchronous invocations are retried and where their results go, when set.
    pub async_invoke: Option<AsyncInvoke>,
    /// The Function URL, when configured.
    pub url: Option<ObservedUrl>,
    /// Tags, the owner tag included.
    pub tags: BTreeMap<String, String>,
}

/// How Lambda retries asynchronous invocations and where it sends their outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AsyncInvoke {
    /// Retries after a failure, 0 to 2 (Lambda's default: 2).
    pub maximum_retry_attempts: Option<i64>,
    /// Seconds an event may wait, 60 to 21600 (Lambda's default: 21600).
    pub maximum_event_age_seconds: Option<i64>,
    /// Where successful results go: an SQS queue, SNS topic, Lambda function or event bus ARN.
    pub on_success: Option<String>,
    /// Where failed events go (after the retries): the same kinds of ARN.
    pub on_failure: Option<String>,
}

impl AsyncInvoke {
    /// The statements the execution role needs to deliver to the destinations: the one action
    /// each kind of target takes, on exactly that ARN.
    pub fn role_statements(&self) -> Vec<serde_json::Value> {
        [&self.on_success, &self.on_failure].into_iter().flatten().filter_map(|arn| delivery_statement(arn)).collect()
    }
}

/// The statement that lets the function deliver to `arn`: the one action its kind of target
/// takes, on exactly that ARN; None for a kind no delivery goes to.
fn delivery_statement(arn: &str) -> Option<serde_json::Value> {
    let action = match arn.split(':').nth(2)? {
        "sqs" => "sqs:SendMessage",
        "sns" => "sns:Publish",
        "lambda" => "lambda:InvokeFunction",
        "events" => "events:PutEvents",
        _ => return None,
    };
    Some(serde_json::json!({ "Effect": "Allow", "Action": [action], "Resource": [arn] }))
}

/// A Function URL as Lambda reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedUrl {
    /// The URL.
    pub url: String,
    /// `AWS_IAM` or `NONE`.
    pub auth_type: String,
    /// CORS, when set.
    pub cors: Option<CorsSpec>,
}

/// CORS settings of a Function URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsSpec {
    /// Allowed origins.
    pub allow_origins: Vec<String>,
    /// Allowed methods.
    pub allow_methods: Vec<String>,
    /// Allowed headers.
    pub allow_headers: Vec<String>,
    /// Seconds browsers may cache the preflight.
    pub max_age: Option<i64>,
}

/// `/tmp` when the function does not say (MB).
pub const DEFAULT_EPHEMERAL_STORAGE: i64 = 512;
/// Tracing when the function does not say.
pub const PASS_THROUGH: &str = "PassThrough";

/// Reads the function; None when it does not exist.
pub async fn observe(lambda: &Client, name: &str) -> Result<Option<Observed>, AwsError> {
    let out = match lambda.get_function().function_name(name).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(None),
        Err(e) => return Err(call("GetFunction", Target::function(name), &e)),
    };
    let Some(c) = out.configuration else { return Ok(None) };
    let url = match lambda.get_function_url_config().function_name(name).send().await {
        Ok(u) => Some(ObservedUrl {
            url: u.function_url,
            auth_type: u.auth_type.as_str().to_string(),
            cors: u.cors.map(|c| CorsSpec {
                allow_origins: c.allow_origins.unwrap_or_default(),
                allow_methods: c.allow_methods.unwrap_or_default(),
                allow_headers: c.allow_headers.unwrap_or_default(),
                max_age: c.max_age.map(i64::from),
            }),
        }),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => None,
        Err(e) => return Err(call("GetFunctionUrlConfig", Target::function(name), &e)),
    };
    let async_invoke = match lambda.get_function_event_invoke_config().function_name(name).send().await {
        Ok(a) => {
            let destination = |d: Option<&aws_sdk_lambda::types::DestinationConfig>, success: bool| {
                d.and_then(|d| if success { d.on_success()?.destination() } else { d.on_failure()?.destination() })
                    .map(str::to_string)
            };
            Some(AsyncInvoke {
                maximum_retry_attempts: a.maximum_retry_attempts.map(i64::from),
                maximum_event_age_seconds: a.maximum_event_age_in_seconds.map(i64::from),
                on_success: destination(a.destination_config.as_ref(), true),
                on_failure: destination(a.destination_config.as_ref(), false),
            })
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => None,
        Err(e) => return Err(call("GetFunctionEventInvokeConfig", Target::function(name), &e)),
    };
    Ok(Some(Observed {
        arn: c.function_arn.unwrap_or_default(),
        role: c.role.unwrap_or_default(),
        config: Config {
            runtime: c.runtime.map(|r| r.as_str().to_string()),
            handler: c.handler,
            architecture: c
                .architectures
                .and_then(|a| a.first().map(|a| a.as_str().to_string()))
                .unwrap_or_else(|| "x86_64".into()),
            memory: i64::from(c.memory_size.unwrap_or(128)),
            timeout: i64::from(c.timeout.unwrap_or(3)),
            environment: c.environment.and_then(|e| e.variables).unwrap_or_default().into_iter().collect(),
            ephemeral_storage: c.ephemeral_storage.map_or(DEFAULT_EPHEMERAL_STORAGE, |e| i64::from(e.size)),
            tracing: c
                .tracing_config
                .and_then(|t| t.mode)
                .map_or_else(|| PASS_THROUGH.into(), |m| m.as_str().to_string()),
            layers: c.layers.unwrap_or_default().into_iter().filter_map(|l| l.arn).collect(),
            vpc: c.vpc_config.and_then(|v| {
                let subnet_ids = v.subnet_ids.unwrap_or_default();
                (!subnet_ids.is_empty())
                    .then(|| Vpc { subnet_ids, security_group_ids: v.security_group_ids.unwrap_or_default() })
            }),
            image: c
                .image_config_response
                .and_then(|r| r.image_config)
                .map(|i| ImageSettings {
                    command: i.command.unwrap_or_default(),
                    entry_point: i.entry_point.unwrap_or_default(),
                    working_directory: i.working_directory.filter(|w| !w.is_empty()),
                })
                .filter(|i| *i != ImageSettings::default()),
            // An emulator that keeps no logging settings reports Lambda's default.
            logging: c.logging_config.map_or_else(Logging::default, |l| Logging {
                format: l.log_format.map_or_else(|| "Text".into(), |f| f.as_str().to_string()),
                application_level: l.application_log_level.map(|v| v.as_str().to_string()),
                system_level: l.system_log_level.map(|v| v.as_str().to_string()),
            }),
            dead_letter: c.dead_letter_config.and_then(|d| d.target_arn).filter(|arn| !arn.is_empty()),
        },
        code_sha256: c.code_sha256.unwrap_or_default(),
        reserved_concurrency: out.concurrency.and_then(|c| c.reserved_concurrent_executions).map(i64::from),
        async_invoke,
        url,
        tags: out.tags.unwrap_or_default().into_iter().collect(),
    }))
}

async fn code(spec: &Spec) -> Result<FunctionCode, AwsError> {
    Ok(match &spec.code {
        Code::Zip(path) => {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| AwsError::Invalid(format!("reading the package {}: {e}", path.display())))?;
            FunctionCode::builder().zip_file(Blob::new(bytes)).build()
        }
        Code::S3 { bucket, key } => FunctionCode::builder().s3_bucket(bucket).s3_key(key).build(),
        Code::Image(uri) => FunctionCode::builder().image_uri(uri).build(),
    })
}

fn environment(spec: &Spec) -> Environment {
    Environment::builder().set_variables(Some(spec.config.environment.clone().into_iter().collect())).build()
}

/// The VPC settings to send: empty lists detach the function.
fn vpc(config: &Config) -> VpcConfig {
    let v = config.vpc.clone().unwrap_or_default();
    VpcConfig::builder().set_subnet_ids(Some(v.subnet_ids)).set_security_group_ids(Some(v.security_group_ids)).build()
}

/// The image overrides to send (image functions only): empty clears them.
fn image_config(config: &Config) -> ImageConfig {
    let i = config.image.clone().unwrap_or_default();
    ImageConfig::builder()
        .set_command(Some(i.command))
        .set_entry_point(Some(i.entry_point))
        .set_working_directory(i.working_directory)
        .build()
}

fn ephemeral_storage(config: &Config) -> Result<EphemeralStorage, AwsError> {
    EphemeralStorage::builder()
        .size(i32::try_from(config.ephemeral_storage).unwrap_or(512))
        .build()
        .map_err(|e| AwsError::Invalid(e.to_string()))
}

fn tracing_config(config: &Config) -> TracingConfig {
    TracingConfig::builder().mode(TracingMode::from(config.tracing.as_str())).build()
}

/// The log format and levels to send; the log group stays Lambda's default, the function's own.
fn logging_config(config: &Config) -> LoggingConfig {
    let l = &config.logging;
    LoggingConfig::builder()
        .log_format(LogFormat::from(l.format.as_str()))
        .set_application_log_level(l.application_level.as_deref().map(ApplicationLogLevel::from))
        .set_system_log_level(l.system_level.as_deref().map(SystemLogLevel::from))
        .build()
}

/// The dead-letter target to send: an empty ARN removes it.
fn dead_letter_config(config: &Config) -> DeadLetterConfig {
    DeadLetterConfig::builder().target_arn(config.dead_letter.clone().unwrap_or_default()).build()
}

fn is_iam_propagation(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("cannot be assumed")
        || m.contains("role") && (m.contains("not authorized") || m.contains("does not exist"))
}

/// Creates the function tagged with `owner`, retrying with backoff while the role propagates.
/// Returns false when a function of that name already exists and `owner` owns it.
pub async fn create(lambda: &Client, spec: &Spec, owner: &Owner, role_arn: &str) -> Result<bool, AwsError> {
    let code = code(spec).await?;
    let tags: HashMap<String, String> = owner.tagged(&spec.tags_all).into_iter().collect();
    let started = std::time::Instant::now();
    poll(FIRST_RETRY_PAUSE, MAX_RETRY_PAUSE, || async {
        let mut req = lambda
            .create_function()
            .function_name(&spec.name)
            .role(role_arn)
            .code(code.clone())
            .memory_size(i32::try_from(spec.config.memory).unwrap_or(128))
            .timeout(i32::try_from(spec.config.timeout).unwrap_or(3))
            .environment(environment(spec))
            .ephemeral_storage(ephemeral_storage(&spec.config)?)
            .tracing_config(tracing_config(&spec.config))
            .logging_config(logging_config(&spec.config))
            .set_dead_letter_config(spec.config.dead_letter.is_some().then(|| dead_letter_config(&spec.config)))
            .set_layers(Some(spec.config.layers.clone()))
            .set_vpc_config(spec.config.vpc.is_some().then(|| vpc(&spec.config)))
            .architectures(LambdaArch::from(spec.config.architecture.as_str()))
            .publish(spec.publish)
            .set_tags(Some(tags.clone()));
        req = match &spec.code {
            Code::Image(_) => req
                .package_type(PackageType::Image)
                .set_image_config(spec.config.image.is_some().then(|| image_config(&spec.config))),
            _ => req
                .package_type(PackageType::Zip)
                .set_runtime(spec.config.runtime.as_deref().map(Runtime::from))
                .set_handler(spec.config.handler.clone()),
        };
        match req.send().await {
            Ok(_) => {
                owner.made_one();
                Ok(Some(true))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_conflict_exception()) => {
                // Made by someone else since we looked: ours only if it carries our tag.
                let tags = observe(lambda, &spec.name).await?.map(|o| o.tags).unwrap_or_default();
                owner.check("Lambda function", &spec.name, &tags)?;
                Ok(Some(false))
            }
            Err(e) => {
                let text = adf_common::error_chain(&e);
                let retryable = e.as_service_error().is_some_and(|s| s.is_invalid_parameter_value_exception())
                    && is_iam_propagation(&text);
                if !retryable || started.elapsed() > IAM_PROPAGATION {
                    return Err(call("CreateFunction", Target::function(&spec.name), &e));
                }
                tracing::info!(function = %spec.name, "role not assumable yet; retrying while IAM propagates");
                Ok(None)
            }
        }
    })
    .await
}

/// Waits until the function is active and its last update finished.
pub async fn wait_ready(lambda: &Client, name: &str) -> Result<(), AwsError> {
    lambda
        .wait_until_function_active_v2()
        .function_name(name)
        .wait(STATE_WAIT)
        .await
        .map_err(|e| AwsError::other("waiting for Active", format!("function {name}"), adf_common::error_chain(&e)))?;
    lambda.wait_until_function_updated_v2().function_name(name).wait(STATE_WAIT).await.map_err(|e| {
        AwsError::other("waiting for the update", format!("function {name}"), adf_common::error_chain(&e))
    })?;
    Ok(())
}

/// Deploys new code, then waits for it before anything else may change.
pub async fn update_code(lambda: &Client, spec: &Spec) -> Result<(), AwsError> {
    let mut req = lambda
        .update_function_code()
        .function_name(&spec.name)
        .architectures(LambdaArch::from(spec.config.architecture.as_str()))
        .publish(spec.publish);
    req = match code(spec).await? {
        c if c.zip_file.is_some() => req.set_zip_file(c.zip_file),
        c if c.image_uri.is_some() => req.set_image_uri(c.image_uri),
        c => req.set_s3_bucket(c.s3_bucket).set_s3_key(c.s3_key),
    };
    req.send().await.at(Target::function(&spec.name))?;
    wait_ready(lambda, &spec.name).await
}

/// Sets the configuration (never while a code update runs: callers wait first).
pub async fn update_configuration(lambda: &Client, spec: &Spec, role_arn: &str) -> Result<(), AwsError> {
    let mut req = lambda
        .update_function_configuration()
        .function_name(&spec.name)
        .role(role_arn)
        .memory_size(i32::try_from(spec.config.memory).unwrap_or(128))
        .timeout(i32::try_from(spec.config.timeout).unwrap_or(3))
        .environment(environment(spec))
        .ephemeral_storage(ephemeral_storage(&spec.config)?)
        .tracing_config(tracing_config(&spec.config))
        .logging_config(logging_config(&spec.config))
        .dead_letter_config(dead_letter_config(&spec.config))
        .set_layers(Some(spec.config.layers.clone()))
        .vpc_config(vpc(&spec.config));
    req = match spec.code {
        Code::Image(_) => req.image_config(image_config(&spec.config)),
        _ => {
            req.set_runtime(spec.config.runtime.as_deref().map(Runtime::from)).set_handler(spec.config.handler.clone())
        }
    };
    req.send().await.at(Target::function(&spec.name))?;
    wait_ready(lambda, &spec.name).await
}

/// Sets (or, with None, deletes) how asynchronous invocations are retried and delivered.
pub async fn set_async_invoke(lambda: &Client, name: &str, wanted: Option<&AsyncInvoke>) -> Result<(), AwsError> {
    use aws_sdk_lambda::types::{DestinationConfig, OnFailure, OnSuccess};
    let Some(w) = wanted else {
        return match lambda.delete_function_event_invoke_config().function_name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(call("DeleteFunctionEventInvokeConfig", Target::function(name), &e)),
        };
    };
    let destinations = DestinationConfig::builder()
        .set_on_success(w.on_success.as_ref().map(|d| OnSuccess::builder().destination(d).build()))
        .set_on_failure(w.on_failure.as_ref().map(|d| OnFailure::builder().destination(d).build()))
        .build();
    lambda
        .put_function_event_invoke_config()
        .function_name(name)
        .set_maximum_retry_attempts(w.maximum_retry_attempts.and_then(|n| i32::try_from(n).ok()))
        .set_maximum_event_age_in_seconds(w.maximum_event_age_seconds.and_then(|n| i32::try_from(n).ok()))
        .destination_config(destinations)
        .send()
        .await
        .at(Target::function(name))?;
    Ok(())
}

/// Sets or clears reserved concurrency.
pub async fn set_concurrency(lambda: &Client, name: &str, reserved: Option<i64>) -> Result<(), AwsError> {
    match reserved {
        Some(n) => {
            lambda
                .put_function_concurrency()
                .function_name(name)
                .reserved_concurrent_executions(i32::try_from(n).unwrap_or(0))
                .send()
                .await
                .at(Target::function(name))?;
        }
        None => {
            lambda.delete_function_concurrency().function_name(name).send().await.at(Target::function(name))?;
        }
    }
    Ok(())
}

fn cors(c: &CorsSpec) -> Cors {
    Cors::builder()
        .set_allow_origins(Some(c.allow_origins.clone()))
        .set_allow_methods(Some(c.allow_methods.clone()))
        .set_allow_headers(Some(c.allow_headers.clone()))
        .set_max_age(c.max_age.and_then(|m| i32::try_from(m).ok()))
        .build()
}

/// Makes the Function URL match `wanted` (creating, updating or deleting it); returns the URL.
pub async fn sync_url(
    lambda: &Client,
    name: &str,
    current: Option<&ObservedUrl>,
    wanted: Option<&UrlSpec>,
) -> Result<Option<String>, AwsError> {
    let Some(w) = wanted else {
        if current.is_some() {
            lambda.delete_function_url_config().function_name(name).send().await.at(Target::function(name))?;
            remove_statement(lambda, name, PUBLIC_URL_STATEMENT).await?;
        }
        return Ok(None);
    };
    let auth = FunctionUrlAuthType::from(w.auth_type.as_str());
    let url = match current {
        Some(c) if c.auth_type == w.auth_type && c.cors == w.cors => c.url.clone(),
        Some(_) => {
            lambda
                .update_function_url_config()
                .function_name(name)
                .auth_type(auth)
                .set_cors(Some(w.cors.as_ref().map(cors).unwrap_or_else(|| Cors::builder().build())))
                .send()
                .await
                .at(Target::function(name))?
                .function_url
        }
        None => {
            lambda
                .create_function_url_config()
                .function_name(name)
                .auth_type(auth)
                .set_cors(w.cors.as_ref().map(cors))
                .send()
                .await
                .at(Target::function(name))?
                .function_url
        }
    };
    if w.auth_type == "NONE" {
        // A public URL also needs a resource policy that lets anyone invoke it through the URL.
        let public = lambda
            .add_permission()
            .statement_id(PUBLIC_URL_STATEMENT)
            .action("lambda:InvokeFunctionUrl")
            .principal("*")
            .function_url_auth_type(FunctionUrlAuthType::None);
        add_statement(public, name).await?;
    } else {
        remove_statement(lambda, name, PUBLIC_URL_STATEMENT).await?;
    }
    Ok(Some(url))
}

/// Sends an `AddPermission` for function `name`; a statement of that id already there is fine.
async fn add_statement(
    req: aws_sdk_lambda::operation::add_permission::builders::AddPermissionFluentBuilder,
    name: &str,
) -> Result<(), AwsError> {
    match req.function_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_conflict_exception()) => Ok(()),
        Err(e) => Err(call("AddPermission", Target::function(name), &e)),
    }
}

/// Lets `principal` (a service) invoke function `name` when calling from `source_arn`, under
/// statement `statement`.
pub async fn allow_invoke(
    lambda: &Client,
    name: &str,
    statement: &str,
    principal: &str,
    source_arn: &str,
) -> Result<(), AwsError> {
    let req = lambda
        .add_permission()
        .statement_id(statement)
        .action("lambda:InvokeFunction")
        .principal(principal)
        .source_arn(source_arn);
    add_statement(req, name).await
}

/// Takes statement `statement` off function `name`'s policy; one gone already (or a function
/// gone) is fine.
pub async fn remove_statement(lambda: &Client, name: &str, statement: &str) -> Result<(), AwsError> {
    match lambda.remove_permission().function_name(name).statement_id(statement).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
        Err(e) => Err(call("RemovePermission", Target::function(name), &e)),
    }
}

/// Makes the function's tags `wanted` plus the owner tag.
pub async fn sync_tags(
    lambda: &Client,
    spec: &Spec,
    owner: &Owner,
    arn: &str,
    current: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let wanted = owner.tagged(&spec.tags_all);
    let changes = TagChanges::new(current, &wanted);
    if !changes.stale.is_empty() {
        lambda
            .untag_resource()
            .resource(arn)
            .set_tag_keys(Some(changes.stale))
            .send()
            .await
            .at(Target::function(&spec.name))?;
    }
    if !changes.set.is_empty() {
        lambda
            .tag_resource()
            .resource(arn)
            .set_tags(Some(changes.set.into_iter().collect()))
            .send()
            .await
            .at(Target::function(&spec.name))?;
    }
    Ok(())
}

/// An alias: a name for a version, optionally sending a share of invocations to a second one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Alias {
    /// The version it names (`$LATEST` or a number).
    pub function_version: String,
    /// Its description.
    pub description: Option<String>,
    /// Another version and the share of invocations (0 to 1) it gets.
    pub additional_version_weights: BTreeMap<String, f64>,
    /// Its ARN (`<function ARN>:<alias>`), when read.
    pub arn: String,
}

/// Alias `alias` of function `function`; None when either is gone.
pub async fn get_alias(lambda: &Client, function: &str, alias: &str) -> Result<Option<Alias>, AwsError> {
    match lambda.get_alias().function_name(function).name(alias).send().await {
        Ok(a) => Ok(Some(Alias {
            function_version: a.function_version.unwrap_or_default(),
            description: a.description.filter(|d| !d.is_empty()),
            additional_version_weights: a
                .routing_config
                .and_then(|r| r.additional_version_weights)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            arn: a.alias_arn.unwrap_or_default(),
        })),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(call("GetAlias", format_args!("alias {alias} of function {function}"), &e)),
    }
}

/// Creates alias `alias` as `wanted` (an alias of that name already there is an error: it is
/// someone else's), or updates it when `exists`. Returns it as Lambda has it then.
pub async fn put_alias(
    lambda: &Client,
    function: &str,
    alias: &str,
    wanted: &Alias,
    exists: bool,
) -> Result<Alias, AwsError> {
    let routing = aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
        .set_additional_version_weights(Some(wanted.additional_version_weights.clone().into_iter().collect()))
        .build();
    let target = format!("alias {alias} of function {function}");
    if exists {
        lambda
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(&wanted.function_version)
            .description(wanted.description.clone().unwrap_or_default())
            .routing_config(routing)
            .send()
            .await
            .at(&target)?;
    } else {
        lambda
            .create_alias()
            .function_name(function)
            .name(alias)
            .function_version(&wanted.function_version)
            .set_description(wanted.description.clone())
            .routing_config(routing)
            .send()
            .await
            .at(&target)?;
    }
    get_alias(lambda, function, alias).await?.ok_or(AwsError::Vanished { kind: "alias", target })
}

/// Deletes alias `alias`; one already gone is fine.
pub async fn delete_alias(lambda: &Client, function: &str, alias: &str) -> Result<(), AwsError> {
    match lambda.delete_alias().function_name(function).name(alias).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
        Err(e) => Err(call("DeleteAlias", format_args!("alias {alias} of function {function}"), &e)),
    }
}

/// Publishes a version of the current code and configuration.
pub async fn publish(lambda: &Client, name: &str) -> Result<String, AwsError> {
    let out = lambda.publish_version().function_name(name).send().await.at(Target::function(name))?;
    Ok(out.version.unwrap_or_else(|| "$LATEST".into()))
}

/// Deletes the function; one already gone is fine.
pub async fn delete(lambda: &Client, name: &str) -> Result<(), AwsError> {
    match lambda.delete_function().function_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
        Err(e) => Err(call("DeleteFunction", Target::function(name), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_propagation_errors_are_recognised() {
        assert!(is_iam_propagation("The role defined for the function cannot be assumed by Lambda."));
        assert!(!is_iam_propagation("Unzipped size must be smaller than 262144000 bytes"));
    }

    #[test]
    fn a_dead_letter_target_gets_its_one_action_on_exactly_its_arn() {
        let mut config = Config::bootstrap(128, 3, BTreeMap::new());
        assert!(config.role_statements().is_empty());
        config.dead_letter = Some("arn:aws:sns:eu-west-1:1:failed".into());
        let statements = config.role_statements();
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0]["Action"], serde_json::json!(["sns:Publish"]));
        assert_eq!(statements[0]["Resource"], serde_json::json!(["arn:aws:sns:eu-west-1:1:failed"]));
    }
}
