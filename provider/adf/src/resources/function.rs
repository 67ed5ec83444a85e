//! `adf_function`: a Lambda function with a managed execution role, its log group and an
//! optional Function URL (`AWS_IAM` auth unless the user writes `NONE`).

pub(crate) mod api;
pub(crate) mod logs;
pub(crate) mod role;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Ctx, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting,
    ObjectReader, Plan, PlanRequest, Resource, Schema, State, Type, Value,
};

pub(crate) use self::api::{CorsSpec, Observed};
use super::common::{
    Op, failed, plan_tags_all, read_tags, tags_all_attribute, tags_attribute, timeout, timeouts_block, validate_tags,
    validate_timeouts, within,
};
use super::released_zip::file_sha256;
use crate::aws::AwsClients;
use crate::config::AdfData;

const TYPE: &str = "adf_function";
/// Tag marking the function and role this resource made; its value is the function name.
pub(crate) const OWNER_TAG: &str = "adf:function";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Retention values CloudWatch Logs accepts (0: never expire).
pub(crate) const RETENTION_DAYS: [i64; 23] =
    [0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// Why an AWS step of this resource failed.
#[derive(Debug, thiserror::Error)]
pub enum FnError {
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
    /// Something of that name exists and another owner made it.
    #[error(
        "{kind} {target} already exists and is not managed by this resource (it lacks the tag {OWNER_TAG}={owner}); \
         delete it, import the function, or choose another name"
    )]
    NotOwned {
        /// What it is.
        kind: &'static str,
        /// Its name.
        target: String,
        /// The expected owner tag value.
        owner: String,
    },
    /// It disappeared while being configured.
    #[error("{kind} {target} disappeared while being configured; apply again")]
    Vanished {
        /// What it is.
        kind: &'static str,
        /// Its name.
        target: String,
    },
}

/// Where the code comes from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Code {
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
pub(crate) struct UrlSpec {
    pub(crate) auth_type: String,
    pub(crate) cors: Option<CorsSpec>,
}

/// What a wholly known plan asks for.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub(crate) name: String,
    pub(crate) code: Code,
    pub(crate) source_code_hash: Option<String>,
    pub(crate) runtime: Option<String>,
    pub(crate) handler: Option<String>,
    pub(crate) architecture: String,
    pub(crate) memory: i64,
    pub(crate) timeout: i64,
    pub(crate) environment: BTreeMap<String, String>,
    pub(crate) reserved_concurrency: Option<i64>,
    pub(crate) log_retention_days: i64,
    pub(crate) role_arn: Option<String>,
    pub(crate) policy_statements: Option<String>,
    pub(crate) publish: bool,
    pub(crate) url: Option<UrlSpec>,
    pub(crate) tags_all: BTreeMap<String, String>,
}

fn package_type() -> Type {
    Type::object([
        ("output_path", Type::String),
        ("source_code_hash", Type::String),
        ("architecture", Type::String),
        ("runtime", Type::String),
        ("handler", Type::String),
    ])
}

fn schema() -> Schema {
    let out = |name: &str, description: &str| Attribute::computed(name, Type::String, description).stable();
    let cors = Attribute::nested(
        "cors",
        "CORS for browsers calling the URL.",
        vec![
            Attribute::optional(
                "allow_origins",
                Type::list(Type::String),
                "Origins allowed, such as `https://example.com`.",
            ),
            Attribute::optional("allow_methods", Type::list(Type::String), "HTTP methods allowed, such as `GET`."),
            Attribute::optional("allow_headers", Type::list(Type::String), "Request headers allowed."),
            Attribute::optional("max_age", Type::Number, "Seconds a browser may cache the preflight answer."),
        ],
    );
    let function_url = Attribute::nested(
        "function_url",
        "A Function URL for the function. Omit for none.",
        vec![
            Attribute::with_default(
                "auth_type",
                Type::String,
                "`AWS_IAM` (default: callers sign requests with SigV4) or `NONE` (public; the provider adds the \
                 resource policy that allows it).",
                "AWS_IAM".into(),
            ),
            cors,
            Attribute::computed("url", Type::String, "The URL, such as `https://<id>.lambda-url.<region>.on.aws/`.")
                .stable(),
        ],
    );
    Schema::new(
        0,
        Block::new(
            "A Lambda function with a managed least-privilege execution role, its CloudWatch log group and an \
             optional Function URL. Code and configuration are updated one after the other, with Lambda's \
             waiters, so a configuration change never races a code update.",
        )
        .attribute(
            Attribute::required(
                "name",
                Type::String,
                "Function name: letters, digits, `-` and `_`, at most 64 characters.",
            )
            .requires_replace(),
        )
        .attribute(Attribute::optional(
            "package",
            package_type(),
            "The code as built by `adf_lambda_package` (write `package = adf_lambda_package.x`). Sets the \
             runtime, handler, architecture and source_code_hash. One of package, filename, s3_bucket or image_uri.",
        ))
        .attribute(Attribute::optional("filename", Type::String, "Path of a local zip to deploy."))
        .attribute(Attribute::optional_computed(
            "source_code_hash",
            Type::String,
            "Base64 SHA-256 of the zip, as Lambda's `CodeSha256`; the code is updated when it changes. Taken from \
             `package` or computed from `filename` when not set.",
        ))
        .attribute(Attribute::optional("s3_bucket", Type::String, "Bucket of a zip in S3 (with `s3_key`)."))
        .attribute(Attribute::optional("s3_key", Type::String, "Key of a zip in S3."))
        .attribute(Attribute::optional("image_uri", Type::String, "URI of a container image in ECR."))
        .attribute(Attribute::optional_computed(
            "runtime",
            Type::String,
            "Lambda runtime, such as `provided.al2023`; from `package` when not set.",
        ))
        .attribute(Attribute::optional_computed(
            "handler",
            Type::String,
            "Handler; from `package` when not set (`bootstrap` for Rust and Go).",
        ))
        .attribute(Attribute::optional_computed(
            "architecture",
            Type::String,
            "`x86_64` or `arm64`; from `package` when not set, else `x86_64`.",
        ))
        .attribute(Attribute::with_default(
            "memory_size",
            Type::Number,
            "Memory in MB, 128 to 10240. Default `128`.",
            128i64.into_dynamic(),
        ))
        .attribute(Attribute::with_default(
            "timeout",
            Type::Number,
            "Timeout in seconds, 1 to 900. Default `3`.",
            3i64.into_dynamic(),
        ))
        .attribute(Attribute::optional("environment", Type::map(Type::String), "Environment variables."))
        .attribute(Attribute::optional(
            "reserved_concurrency",
            Type::Number,
            "Reserved concurrent executions; null leaves the function unreserved.",
        ))
        .attribute(Attribute::with_default(
            "log_retention_days",
            Type::Number,
            "Days CloudWatch keeps the function's logs (0: forever). Default `14`.",
            14i64.into_dynamic(),
        ))
        .attribute(Attribute::optional_computed(
            "role_arn",
            Type::String,
            "An execution role to use instead of the managed one. When null the provider manages \
             `<name>-role`: Lambda's trust policy, writing to this function's log group only, plus \
             `policy_statements`.",
        ))
        .attribute(Attribute::optional(
            "policy_statements",
            Type::String,
            "A JSON array of IAM statements added to the managed role, such as `jsonencode([{ Effect = \"Allow\", \
             Action = [\"sqs:SendMessage\"], Resource = [aws_sqs_queue.q.arn] }])`.",
        ))
        .attribute(Attribute::with_default(
            "publish",
            Type::Bool,
            "Publish a numbered version on every change. Default `false` (`version` stays `$LATEST`).",
            false.into_dynamic(),
        ))
        .attribute(function_url)
        .attribute(tags_attribute())
        .attribute(tags_all_attribute())
        .attribute(out("id", "Same as `name`."))
        .attribute(out("arn", "Function ARN."))
        .attribute(out("invoke_arn", "ARN for API Gateway integrations."))
        .attribute(Attribute::computed("version", Type::String, "`$LATEST`, or the last published version."))
        .attribute(out("log_group_name", "The CloudWatch log group, `/aws/lambda/<name>`."))
        .block("timeouts", Nesting::Single, timeouts_block("15m")),
    )
}

fn validate_config(config: &Dynamic) -> Diagnostics {
    let o = ObjectReader::new(config);
    let root = AttributePath::root();
    let mut d = Diagnostics::new();
    if let Some(Value::Known(name)) = d.take(o.get::<Value<String>>("name")) {
        let bad = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'));
        if name.is_empty() || name.len() > 64 || bad.is_some() {
            d.error_at(root.attr("name"), "Invalid name", "Function names are 1 to 64 letters, digits, '-' or '_'.");
        }
    }
    let mut range = |attr: &str, lo: i64, hi: i64| {
        if let Some(Value::Known(n)) = d.take(o.get::<Value<i64>>(attr))
            && !(lo..=hi).contains(&n)
        {
            d.error_at(root.attr(attr), format!("Invalid {attr}"), format!("{attr} must be {lo} to {hi}; got {n}."));
        }
    };
    range("memory_size", 128, 10_240);
    range("timeout", 1, 900);
    range("reserved_concurrency", 0, 100_000);
    if let Some(Value::Known(days)) = d.take(o.get::<Value<i64>>("log_retention_days"))
        && !RETENTION_DAYS.contains(&days)
    {
        d.error_at(
            root.attr("log_retention_days"),
            "Invalid log_retention_days",
            format!("CloudWatch accepts {RETENTION_DAYS:?}; got {days}."),
        );
    }
    if let Some(Value::Known(a)) = d.take(o.get::<Value<String>>("architecture"))
        && !["x86_64", "arm64"].contains(&a.as_str())
    {
        d.error_at(
            root.attr("architecture"),
            "Invalid architecture",
            format!("Expected \"x86_64\" or \"arm64\", got {a:?}."),
        );
    }
    let sources: Vec<&str> =
        ["package", "filename", "s3_bucket", "image_uri"].into_iter().filter(|k| !config.get(k).is_null()).collect();
    if sources.len() > 1 {
        d.error_at(root.attr(sources[1]), "Conflicting code sources", format!("Set only one of {sources:?}."));
    } else if sources.is_empty() && !config.is_null() {
        d.error_at(root.clone(), "Missing code", "Set package, filename, s3_bucket (with s3_key) or image_uri.");
    }
    if !config.get("s3_bucket").is_null() && config.get("s3_key").is_null() {
        d.error_at(root.attr("s3_key"), "Missing s3_key", "s3_bucket needs s3_key.");
    }
    let url = o.object("function_url");
    if let Some(Value::Known(auth)) = d.take(url.get::<Value<String>>("auth_type"))
        && !["AWS_IAM", "NONE"].contains(&auth.as_str())
    {
        d.error_at(
            url.path().attr("auth_type"),
            "Invalid auth_type",
            format!("Expected \"AWS_IAM\" or \"NONE\", got {auth:?}."),
        );
    }
    if let Some(Value::Known(p)) = d.take(o.get::<Value<String>>("policy_statements")) {
        match serde_json::from_str::<serde_json::Value>(&p) {
            Ok(serde_json::Value::Array(_)) => {}
            _ => d.error_at(
                root.attr("policy_statements"),
                "Invalid policy_statements",
                "Expected a JSON array of IAM statements, such as jsonencode([{ Effect = \"Allow\", ... }]).",
            ),
        }
    }
    if let Some(Value::Known(tags)) = d.take(o.get::<Value<BTreeMap<String, String>>>("tags")) {
        d.extend(validate_tags(&tags, &root.attr("tags")));
    }
    d.extend(validate_timeouts(config));
    d
}

impl Spec {
    fn read(v: &Dynamic) -> Result<Self, Diagnostics> {
        let o = ObjectReader::new(v);
        let opt = |k: &str| -> Result<Option<String>, Diagnostics> { Ok(o.get::<Value<String>>(k)?.into_known()) };
        let code = if let Some(path) = o.object("package").get::<Value<String>>("output_path")?.into_known() {
            Code::Zip(PathBuf::from(path))
        } else if let Some(f) = opt("filename")? {
            Code::Zip(PathBuf::from(f))
        } else if let (Some(bucket), Some(key)) = (opt("s3_bucket")?, opt("s3_key")?) {
            Code::S3 { bucket, key }
        } else if let Some(uri) = opt("image_uri")? {
            Code::Image(uri)
        } else {
            return Err(Diagnostic::error("Missing code", "Set package, filename, s3_bucket or image_uri.").into());
        };
        let url = if o.object("function_url").is_null() {
            None
        } else {
            let u = o.object("function_url");
            let c = u.object("cors");
            Some(UrlSpec {
                auth_type: u.get::<Value<String>>("auth_type")?.known_or("AWS_IAM".into()),
                cors: if c.is_null() {
                    None
                } else {
                    Some(CorsSpec {
                        allow_origins: c.get::<Value<Vec<String>>>("allow_origins")?.known_or(Vec::new()),
                        allow_methods: c.get::<Value<Vec<String>>>("allow_methods")?.known_or(Vec::new()),
                        allow_headers: c.get::<Value<Vec<String>>>("allow_headers")?.known_or(Vec::new()),
                        max_age: c.get::<Value<i64>>("max_age")?.into_known(),
                    })
                },
            })
        };
        Ok(Self {
            name: o.get("name")?,
            code,
            source_code_hash: opt("source_code_hash")?,
            runtime: opt("runtime")?,
            handler: opt("handler")?,
            architecture: opt("architecture")?.unwrap_or_else(|| "x86_64".into()),
            memory: o.get("memory_size")?,
            timeout: o.get("timeout")?,
            environment: o.get::<Value<BTreeMap<String, String>>>("environment")?.known_or(BTreeMap::new()),
            reserved_concurrency: o.get::<Value<i64>>("reserved_concurrency")?.into_known(),
            log_retention_days: o.get("log_retention_days")?,
            role_arn: opt("role_arn")?,
            policy_statements: opt("policy_statements")?,
            publish: o.get("publish")?,
            url,
            tags_all: o.get::<Value<BTreeMap<String, String>>>("tags_all")?.known_or(BTreeMap::new()),
        })
    }
}

/// The API Gateway invoke ARN of a function.
fn invoke_arn(function_arn: &str) -> String {
    // arn:<partition>:lambda:<region>:<account>:function:<name>
    let parts: Vec<&str> = function_arn.split(':').collect();
    let (partition, region) = (parts.get(1).copied().unwrap_or("aws"), parts.get(3).copied().unwrap_or_default());
    format!("arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations")
}

fn url_value(u: &api::ObservedUrl) -> Dynamic {
    let cors = u.cors.as_ref().map_or(Dynamic::Null, |c| {
        Dynamic::object([
            ("allow_origins", c.allow_origins.clone().into_dynamic()),
            ("allow_methods", c.allow_methods.clone().into_dynamic()),
            ("allow_headers", c.allow_headers.clone().into_dynamic()),
            ("max_age", c.max_age.into_dynamic()),
        ])
    });
    Dynamic::object([
        ("auth_type", u.auth_type.clone().into_dynamic()),
        ("cors", cors),
        ("url", u.url.clone().into_dynamic()),
    ])
}

/// The state Read reports: what Lambda shows, plus what only the configuration knows.
fn observed_state(
    prior: &Dynamic,
    o: &Observed,
    retention: Option<i64>,
    default_tags: &BTreeMap<String, String>,
) -> Dynamic {
    let mut v = prior.clone();
    let name = match prior.get("name") {
        Dynamic::String(s) => s.clone(),
        _ => String::new(),
    };
    let tags_all: BTreeMap<String, String> =
        o.tags.iter().filter(|(k, _)| *k != OWNER_TAG).map(|(k, v)| (k.clone(), v.clone())).collect();
    let tags = read_tags(prior, &tags_all, default_tags);
    let environment = if o.environment.is_empty() && prior.get("environment").is_null() {
        Dynamic::Null
    } else {
        o.environment.clone().into_dynamic()
    };
    for (k, val) in [
        ("id", name.clone().into_dynamic()),
        ("source_code_hash", o.code_sha256.clone().into_dynamic()),
        ("runtime", o.runtime.clone().into_dynamic()),
        ("handler", o.handler.clone().into_dynamic()),
        ("architecture", o.architecture.clone().into_dynamic()),
        ("memory_size", o.memory.into_dynamic()),
        ("timeout", o.timeout.into_dynamic()),
        ("environment", environment),
        ("reserved_concurrency", o.reserved_concurrency.into_dynamic()),
        ("log_retention_days", retention.into_dynamic()),
        ("role_arn", o.role.clone().into_dynamic()),
        ("function_url", o.url.as_ref().map_or(Dynamic::Null, url_value)),
        ("tags", tags),
        ("tags_all", tags_all.into_dynamic()),
        ("arn", o.arn.clone().into_dynamic()),
        ("invoke_arn", invoke_arn(&o.arn).into_dynamic()),
        ("log_group_name", logs::group_name(&name).into_dynamic()),
    ] {
        v.set(k, val);
    }
    if v.get("version").is_null() || *v.get("version") == Dynamic::Unknown {
        v.set("version", "$LATEST".into());
    }
    if v.get("publish").is_null() {
        v.set("publish", false.into_dynamic());
    }
    v
}

/// The `adf_function` resource.
#[derive(Debug, Default)]
pub struct Function;

impl Function {
    /// Deploys a function that another resource manages (the stream topic's Lambda, the
    /// workflow worker): the same log group, role, code, URL and tags as `adf_function`,
    /// never published. `exists` is false on create.
    pub(crate) async fn deploy(aws: &AwsClients, spec: &Spec, exists: bool) -> Result<Observed, FnError> {
        let prior = exists.then_some(&Dynamic::Null);
        Ok(Self::converge(aws, spec, prior).await?.0)
    }

    /// Deletes function `name`, its log group and its managed role; what is gone already is fine.
    pub(crate) async fn remove(aws: &AwsClients, name: &str) -> Result<(), FnError> {
        api::delete(&aws.lambda, name).await?;
        logs::delete(&aws.logs, &logs::group_name(name)).await?;
        role::delete(&aws.iam, name).await
    }

    /// Converges the function to the plan: log group, role, code, configuration, concurrency,
    /// URL, tags. `prior` is None on create.
    async fn converge(aws: &AwsClients, spec: &Spec, prior: Option<&Dynamic>) -> Result<(Observed, String), FnError> {
        let group = logs::group_name(&spec.name);
        let group_arn = logs::ensure(&aws.logs, &group, spec.log_retention_days, &spec.tags_all).await?;
        let role_arn = match &spec.role_arn {
            Some(arn) => arn.clone(),
            None => {
                role::ensure(&aws.iam, &spec.name, &group_arn, spec.policy_statements.as_deref(), &spec.tags_all)
                    .await?
            }
        };
        let created = match prior {
            None => api::create(&aws.lambda, spec, &role_arn).await?,
            Some(_) => false,
        };
        api::wait_ready(&aws.lambda, &spec.name).await?;
        let current = api::observe(&aws.lambda, &spec.name)
            .await?
            .ok_or(FnError::Vanished { kind: "Lambda function", target: spec.name.clone() })?;
        let mut version = prior.and_then(|p| match p.get("version") {
            Dynamic::String(s) => Some(s.clone()),
            _ => None,
        });
        if !created {
            let moved = |k: &str| prior.is_some_and(|p| p.get(k) != &code_field(&spec.code, k));
            let code_changed = spec.source_code_hash.as_ref().is_some_and(|h| *h != current.code_sha256)
                || current.architecture != spec.architecture
                || ["s3_bucket", "s3_key", "image_uri"].into_iter().any(moved);
            if code_changed {
                api::update_code(&aws.lambda, spec).await?;
            }
            let config_changed = current.memory != spec.memory
                || current.timeout != spec.timeout
                || current.environment != spec.environment
                || current.role != role_arn
                || (spec.runtime.is_some() && current.runtime != spec.runtime)
                || (spec.handler.is_some() && current.handler != spec.handler);
            if config_changed {
                api::update_configuration(&aws.lambda, spec, &role_arn).await?;
            }
            if spec.publish && (code_changed || config_changed) {
                version = Some(api::publish(&aws.lambda, &spec.name).await?);
            }
        } else if spec.publish {
            version = Some(api::publish(&aws.lambda, &spec.name).await?);
        }
        if spec.role_arn.is_some() {
            // The user brought a role: a managed one left from before is no longer needed.
            role::delete(&aws.iam, &spec.name).await?;
        }
        if current.reserved_concurrency != spec.reserved_concurrency {
            api::set_concurrency(&aws.lambda, &spec.name, spec.reserved_concurrency).await?;
        }
        api::sync_url(&aws.lambda, &spec.name, current.url.as_ref(), spec.url.as_ref()).await?;
        api::sync_tags(&aws.lambda, spec, &current.arn, &current.tags).await?;
        let observed = api::observe(&aws.lambda, &spec.name)
            .await?
            .ok_or(FnError::Vanished { kind: "Lambda function", target: spec.name.clone() })?;
        Ok((observed, version.unwrap_or_else(|| "$LATEST".into())))
    }

    async fn apply(&self, ctx: &Ctx<AdfData>, req: ApplyRequest, op: Op) -> Result<State, Diagnostics> {
        let data = ctx.data()?;
        let mut spec = Spec::read(&req.planned)?;
        // Only a role the user wrote is theirs; a computed role_arn is the managed one.
        spec.role_arn = ObjectReader::new(&req.config).get::<Value<String>>("role_arn")?.into_known();
        let prior = (!req.prior.value.is_null()).then_some(&req.prior.value);
        let limit = timeout(&req.planned, op, DEFAULT_TIMEOUT);
        let (o, version) = within(limit, op, TYPE, &spec.name, async {
            Self::converge(&data.aws, &spec, prior).await.map_err(|e| failed(op.verb(), TYPE, &spec.name, e))
        })
        .await?;
        let mut v = req.planned;
        for (k, val) in [
            ("id", spec.name.clone().into_dynamic()),
            ("arn", o.arn.clone().into_dynamic()),
            ("invoke_arn", invoke_arn(&o.arn).into_dynamic()),
            ("role_arn", o.role.clone().into_dynamic()),
            ("version", version.into_dynamic()),
            ("log_group_name", logs::group_name(&spec.name).into_dynamic()),
            ("source_code_hash", o.code_sha256.clone().into_dynamic()),
            ("runtime", o.runtime.clone().into_dynamic()),
            ("handler", o.handler.clone().into_dynamic()),
            ("architecture", o.architecture.clone().into_dynamic()),
        ] {
            if matches!(v.get(k), Dynamic::Unknown) || matches!(k, "arn" | "invoke_arn" | "id" | "role_arn" | "version")
            {
                v.set(k, val);
            }
        }
        if let (Some(u), Dynamic::Map(_)) = (&o.url, v.get("function_url").clone()) {
            let mut url = v.get("function_url").clone();
            url.set("url", u.url.clone().into_dynamic());
            v.set("function_url", url);
        }
        Ok(State::new(v))
    }
}

/// The value of code attribute `k` (`s3_bucket`, `s3_key` or `image_uri`) for `code`.
fn code_field(code: &Code, k: &str) -> Dynamic {
    match (code, k) {
        (Code::S3 { bucket, .. }, "s3_bucket") => bucket.as_str().into(),
        (Code::S3 { key, .. }, "s3_key") => key.as_str().into(),
        (Code::Image(uri), "image_uri") => uri.as_str().into(),
        _ => Dynamic::Null,
    }
}

#[async_trait]
impl Resource<AdfData> for Function {
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
        let default_tags = ctx.data().map(|d| d.default_tags.clone()).unwrap_or_default();
        plan_tags_all(&mut plan.planned, &req.config, &default_tags);
        let package = req.config.get("package").clone();
        for k in ["source_code_hash", "runtime", "handler", "architecture"] {
            if !req.config.get(k).is_null() {
                continue;
            }
            let from_package = package.get(k);
            let value = match (&package, k) {
                (Dynamic::Map(_), _) => from_package.clone(),
                (Dynamic::Unknown, _) => Dynamic::Unknown,
                (_, "source_code_hash") => match req.config.get("filename") {
                    Dynamic::String(f) => file_sha256(std::path::Path::new(f)).into_dynamic(),
                    Dynamic::Unknown => Dynamic::Unknown,
                    _ => Dynamic::Null,
                },
                (_, "architecture") => "x86_64".into(),
                _ => req.prior.get(k).clone(),
            };
            // Null means "whatever AWS has": keep the prior value, or learn it at apply.
            let value = if value.is_null() {
                if req.prior.is_null() { Dynamic::Unknown } else { req.prior.get(k).clone() }
            } else {
                value
            };
            plan.planned.set(k, value);
        }
        if let Dynamic::String(name) = plan.planned.get("name").clone() {
            plan.planned.set("id", name.clone().into_dynamic());
            plan.planned.set("log_group_name", logs::group_name(&name).into_dynamic());
        }
        if req.prior.is_null() {
            plan.planned.set(
                "version",
                if plan.planned.get("publish") == &Dynamic::Bool(true) { Dynamic::Unknown } else { "$LATEST".into() },
            );
        } else if plan.planned.get("publish") == &Dynamic::Bool(false) {
            plan.planned.set("version", "$LATEST".into());
        }
        Diagnostics::new()
    }

    async fn create(&self, ctx: &Ctx<AdfData>, req: ApplyRequest) -> Result<State, Diagnostics> {
        self.apply(ctx, req, Op::Create).await
    }

    async fn read(&self, ctx: &Ctx<AdfData>, state: State) -> Result<Option<State>, Diagnostics> {
        let data = ctx.data()?;
        let name: String = ObjectReader::new(&state.value).get("name")?;
        let observed = api::observe(&data.aws.lambda, &name).await.map_err(|e| failed("reading", TYPE, &name, e))?;
        let Some(o) = observed else {
            tracing::info!(name, "function is gone; removing {TYPE} from state");
            return Ok(None);
        };
        let retention = logs::describe(&data.aws.logs, &logs::group_name(&name))
            .await
            .map_err(|e| failed("reading", TYPE, &name, e))?
            .map(|(_, days)| days);
        Ok(Some(State {
            value: observed_state(&state.value, &o, retention, &data.default_tags),
            private: state.private,
        }))
    }

    async fn update(&self, ctx: &Ctx<AdfData>, req: ApplyRequest) -> Result<State, Diagnostics> {
        self.apply(ctx, req, Op::Update).await
    }

    async fn delete(&self, ctx: &Ctx<AdfData>, state: State) -> Result<(), Diagnostics> {
        let data = ctx.data()?;
        let name: String = ObjectReader::new(&state.value).get("name")?;
        let limit = timeout(&state.value, Op::Delete, DEFAULT_TIMEOUT);
        within(limit, Op::Delete, TYPE, &name, async {
            Self::remove(&data.aws, &name).await.map_err(|e| failed(Op::Delete.verb(), TYPE, &name, e))
        })
        .await
    }

    async fn import(&self, ctx: &Ctx<AdfData>, id: &str) -> Result<State, Diagnostics> {
        let data = ctx.data()?;
        match api::observe(&data.aws.lambda, id).await.map_err(|e| failed("importing", TYPE, id, e))? {
            Some(_) => Ok(State::new(Dynamic::object([
                ("name", id.into()),
                ("memory_size", Dynamic::Null),
                ("publish", false.into_dynamic()),
            ]))),
            None => Err(failed("importing", TYPE, id, "no such function")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_at(d: &Diagnostics) -> Vec<String> {
        d.0.iter().map(|d| d.attribute.as_ref().map(ToString::to_string).unwrap_or_default()).collect()
    }

    #[test]
    fn limits_are_plan_time_errors_on_their_attribute() {
        let c = Dynamic::object([
            ("name", "api".into()),
            ("filename", "x.zip".into()),
            ("memory_size", 64i64.into_dynamic()),
            ("timeout", 901i64.into_dynamic()),
            ("log_retention_days", 2i64.into_dynamic()),
        ]);
        assert_eq!(errors_at(&validate_config(&c)), ["memory_size", "timeout", "log_retention_days"]);
    }

    #[test]
    fn exactly_one_code_source() {
        let none = Dynamic::object([("name", "api".into())]);
        assert_eq!(errors_at(&validate_config(&none)), [""]);
        let two = Dynamic::object([("name", "api".into()), ("filename", "a.zip".into()), ("image_uri", "x".into())]);
        assert_eq!(errors_at(&validate_config(&two)), ["image_uri"]);
    }

    #[test]
    fn url_auth_and_policy_statements_are_checked() {
        let c = Dynamic::object([
            ("name", "api".into()),
            ("filename", "a.zip".into()),
            ("function_url", Dynamic::object([("auth_type", "OPEN".into())])),
            ("policy_statements", "{}".into()),
        ]);
        assert_eq!(errors_at(&validate_config(&c)), ["function_url.auth_type", "policy_statements"]);
    }

    #[test]
    fn invoke_arns_follow_the_function_arn() {
        assert_eq!(
            invoke_arn("arn:aws:lambda:eu-west-1:1:function:api"),
            "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:1:function:api/invocations"
        );
    }
}
