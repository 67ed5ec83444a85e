//! `adf_function`: a Lambda function with a managed execution role, its log group and an
//! optional Function URL (`AWS_IAM` auth unless the user writes `NONE`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting,
    ObjectReader, Plan, PlanRequest, Schema, Type, Value,
};

use super::driver::{
    Failure, Kind, Managed, check_range, tags_all_attribute, tags_attribute, timeouts_block, validate_function_settings,
};
use super::released_zip::file_sha256;
use crate::aws::function::{self, Code, CorsSpec, OWNER_TAG, Observed, ObservedUrl, Prior, Spec, UrlSpec, invoke_arn};
use crate::aws::logs;
use crate::config::AdfData;

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
    let mut d = validate_function_settings(config);
    if let Some(Value::Known(name)) = d.take(o.get::<Value<String>>("name")) {
        let bad = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'));
        if name.is_empty() || name.len() > 64 || bad.is_some() {
            d.error_at(root.attr("name"), "Invalid name", "Function names are 1 to 64 letters, digits, '-' or '_'.");
        }
    }
    check_range(&mut d, config, "reserved_concurrency", (0, 100_000), "reserved_concurrency");
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
    d
}

/// The function a wholly known plan asks for.
fn read_spec(v: &Dynamic) -> Result<Spec, Diagnostics> {
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
    Ok(Spec {
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

fn url_value(u: &ObservedUrl) -> Dynamic {
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
fn observed_state(prior: &Dynamic, o: &Observed, retention: Option<i64>) -> Dynamic {
    let mut v = prior.clone();
    let name = match prior.get("name") {
        Dynamic::String(s) => s.clone(),
        _ => String::new(),
    };
    let tags_all = crate::aws::Owner::new(OWNER_TAG, &name).untagged(&o.tags);
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

/// What the function was before this apply, from the prior state; None on create.
fn prior_of(prior: &Dynamic) -> Option<Prior> {
    if prior.is_null() {
        return None;
    }
    let text = |k: &str| match prior.get(k) {
        Dynamic::String(s) => Some(s.clone()),
        _ => None,
    };
    let code = match (text("s3_bucket"), text("s3_key"), text("image_uri")) {
        (Some(bucket), Some(key), _) => Code::S3 { bucket, key },
        (_, _, Some(uri)) => Code::Image(uri),
        _ => Code::Zip(PathBuf::new()),
    };
    Some(Prior { code: Some(code), version: text("version") })
}

#[async_trait]
impl Managed for Function {
    const KIND: Kind = Kind::new("adf_function", Duration::from_secs(15 * 60), schema, validate_config);

    async fn plan(&self, _data: Option<&AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
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

    async fn converge(&self, data: &AdfData, req: &ApplyRequest) -> Result<Dynamic, Failure> {
        let mut spec = read_spec(&req.planned)?;
        // Only a role the user wrote is theirs; a computed role_arn is the managed one.
        spec.role_arn = ObjectReader::new(&req.config).get::<Value<String>>("role_arn")?.into_known();
        let (o, version) = function::converge(&data.aws, &spec, prior_of(&req.prior.value).as_ref()).await?;
        let mut v = req.planned.clone();
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
        Ok(v)
    }

    async fn observe(&self, data: &AdfData, name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        let observed = function::observe(&data.aws, name).await?;
        Ok(observed.map(|(o, retention)| observed_state(prior, &o, retention)))
    }

    async fn remove(&self, data: &AdfData, name: &str, _state: &Dynamic) -> Result<(), Failure> {
        Ok(function::remove(&data.aws, name).await?)
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Dynamic, Failure> {
        match function::observe(&data.aws, id).await? {
            Some(_) => Ok(Dynamic::object([
                ("name", id.into()),
                ("memory_size", Dynamic::Null),
                ("publish", false.into_dynamic()),
            ])),
            None => Err(crate::aws::AwsError::Invalid("no such function".into()).into()),
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
