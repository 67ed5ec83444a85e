//! `adf_function`'s schema and its plan-time checks.

use tfplug::{
    Attribute, AttributePath, Block, Check, Diagnostics, Dynamic, Nesting, ObjectReader, Schema, Type, Value,
};

use crate::resources::driver::attributes::{LOG_RETENTION_DAYS, MEMORY_SIZE, TIMEOUT, cors, output, tags_and_id};
use crate::resources::driver::bindings::binding_type;
use crate::resources::driver::timeouts_block;

pub(super) fn package_type() -> Type {
    Type::object([
        ("output_path", Type::String),
        ("source_code_hash", Type::String),
        ("architecture", Type::String),
        ("runtime", Type::String),
        ("handler", Type::String),
    ])
}

pub(super) fn schema() -> Schema {
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
            cors("CORS for browsers calling the URL."),
            Attribute::computed("url", Type::String, "The URL, such as `https://<id>.lambda-url.<region>.on.aws/`.")
                .stable(),
        ],
    );
    let vpc_config = Attribute::nested(
        "vpc_config",
        "Attach the function to a VPC. The managed role may then manage its network interfaces (the \
         `ec2:*NetworkInterface*` actions of AWS's `AWSLambdaVPCAccessExecutionRole`).",
        vec![
            Attribute::required("subnet_ids", Type::list(Type::String), "Subnets, such as `subnet-0abc`."),
            Attribute::required("security_group_ids", Type::list(Type::String), "Security groups, such as `sg-0abc`."),
        ],
    );
    let image_config = Attribute::nested(
        "image_config",
        "Overrides of the container image's settings (with `image_uri` only).",
        vec![
            Attribute::optional("command", Type::list(Type::String), "Replaces the image's `CMD`."),
            Attribute::optional("entry_point", Type::list(Type::String), "Replaces the image's `ENTRYPOINT`."),
            Attribute::optional("working_directory", Type::String, "Replaces the image's `WORKDIR`."),
        ],
    );
    let async_invoke = Attribute::nested(
        "async_invoke",
        "Asynchronous invocations (events from S3, SNS, EventBridge, `InvocationType=Event`): retries, the \
         longest an event waits, and destinations for results. The managed role may deliver to each destination \
         (`sqs:SendMessage`, `sns:Publish`, `lambda:InvokeFunction` or `events:PutEvents` on exactly that ARN). \
         `on_failure` takes the place of a dead-letter queue.",
        vec![
            Attribute::optional(
                "maximum_retry_attempts",
                Type::Number,
                "Retries after an error, 0 to 2 (Lambda's default: 2).",
            )
            .check(Check::Range(0, 2)),
            Attribute::optional(
                "maximum_event_age_seconds",
                Type::Number,
                "Seconds an event may wait to be processed, 60 to 21600 (Lambda's default: 21600).",
            )
            .check(Check::Range(60, 21_600)),
            Attribute::optional(
                "on_success",
                Type::String,
                "Where successful results go: an SQS queue, SNS topic, Lambda function or EventBridge bus ARN.",
            ),
            Attribute::optional(
                "on_failure",
                Type::String,
                "Where events go when the retries are spent or they are too old: the same kinds of ARN.",
            ),
        ],
    );
    let logging = Attribute::nested(
        "logging",
        "The format and levels of the function's logs in its log group. Omit for Lambda's default, plain text \
         with every line kept.",
        vec![
            Attribute::with_default(
                "log_format",
                Type::String,
                "`Text` (default) or `JSON`. With `JSON`, Lambda writes its own lines as JSON objects and sets \
                 `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL` for the function's runtime to follow \
                 (adf's own runtimes and `lambda_runtime::tracing::init_default_subscriber` do).",
                "Text".into(),
            )
            .check(Check::OneOf(&["Text", "JSON"])),
            Attribute::optional(
                "application_log_level",
                Type::String,
                "With `JSON`: the lowest level of the function's lines that is kept, `TRACE`, `DEBUG`, `INFO` \
                 (Lambda's default), `WARN`, `ERROR` or `FATAL`.",
            )
            .check(Check::OneOf(&APPLICATION_LOG_LEVELS)),
            Attribute::optional(
                "system_log_level",
                Type::String,
                "With `JSON`: the lowest level of Lambda's platform lines that is kept, `DEBUG`, `INFO` (Lambda's \
                 default) or `WARN`.",
            )
            .check(Check::OneOf(&SYSTEM_LOG_LEVELS)),
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
        .optional(
            "package",
            package_type(),
            "The code as built by `adf_lambda_package` (write `package = adf_lambda_package.x`). Sets the \
             runtime, handler, architecture and source_code_hash. One of package, filename, s3_bucket or image_uri.",
        )
        .optional("filename", Type::String, "Path of a local zip to deploy.")
        .optional_computed(
            "source_code_hash",
            Type::String,
            "Base64 SHA-256 of the zip, as Lambda's `CodeSha256`; the code is updated when it changes. Taken from \
             `package` or computed from `filename` when not set.",
        )
        .optional("s3_bucket", Type::String, "Bucket of a zip in S3 (with `s3_key`).")
        .optional("s3_key", Type::String, "Key of a zip in S3.")
        .optional("image_uri", Type::String, "URI of a container image in ECR.")
        .optional_computed(
            "runtime",
            Type::String,
            "Lambda runtime, such as `provided.al2023`; from `package` when not set.",
        )
        .optional_computed(
            "handler",
            Type::String,
            "Handler; from `package` when not set (`bootstrap` for Rust and Go).",
        )
        .optional_computed(
            "architecture",
            Type::String,
            "`x86_64` or `arm64`; from `package` when not set, else `x86_64`.",
        )
        .check(Check::OneOf(&["x86_64", "arm64"]))
        .defaulted("memory_size", Type::Number, "Memory in MB, 128 to 10240. Default `128`.", 128i64)
        .check(MEMORY_SIZE)
        .defaulted("timeout", Type::Number, "Timeout in seconds, 1 to 900. Default `3`.", 3i64)
        .check(TIMEOUT)
        .optional("environment", Type::map(Type::String), "Environment variables.")
        .optional(
            "reserved_concurrency",
            Type::Number,
            "Reserved concurrent executions; null leaves the function unreserved.",
        )
        .check(Check::Range(0, 100_000))
        .defaulted(
            "log_retention_days",
            Type::Number,
            "Days CloudWatch keeps the function's logs (0: forever). Default `14`.",
            14i64,
        )
        .check(LOG_RETENTION_DAYS)
        .optional_computed(
            "role_arn",
            Type::String,
            "An execution role to use instead of the managed one. When null the provider manages \
             `<name>-role`: Lambda's trust policy, writing to this function's log group only, plus \
             `policy_statements`.",
        )
        .optional(
            "policy_statements",
            Type::String,
            "A JSON array of IAM statements added to the managed role, such as `jsonencode([{ Effect = \"Allow\", \
             Action = [\"sqs:SendMessage\"], Resource = [aws_sqs_queue.q.arn] }])`.",
        )
        .optional(
            "bindings",
            Type::map(binding_type()),
            "Stores the function uses, by the name its code asks for: `{ sessions = adf_kv_namespace.s.binding }`. \
             Each adds least-privilege IAM on exactly that table or bucket to the managed role (read-only with \
             `merge(x.binding, { access = \"read\" })`) and its settings to `ADF_STORAGE_BINDINGS`, which \
             `adf_storage::Storage::from_env` reads. Removing a binding removes both.",
        )
        .defaulted(
            "publish",
            Type::Bool,
            "Publish a numbered version on every change. Default `false` (`version` stays `$LATEST`).",
            false,
        )
        .defaulted("ephemeral_storage", Type::Number, "MB of `/tmp`, 512 to 10240. Default `512`.", 512i64)
        .check(Check::Range(512, 10240))
        .defaulted(
            "tracing",
            Type::String,
            "AWS X-Ray: `PassThrough` (default) or `Active`. With `Active` the managed role may send traces \
             (`xray:PutTraceSegments` and `xray:PutTelemetryRecords`, which take no resource).",
            "PassThrough",
        )
        .check(Check::OneOf(&["PassThrough", "Active"]))
        .optional("layers", Type::list(Type::String), "Layer version ARNs, at most 5, applied in order.")
        .attribute(vpc_config)
        .attribute(image_config)
        .attribute(async_invoke)
        .optional(
            "dead_letter_target",
            Type::String,
            "An SQS queue or SNS topic ARN that asynchronous events go to once their retries are spent, with \
             the event alone. The managed role may send to exactly that ARN (`sqs:SendMessage` or `sns:Publish`). \
             `async_invoke.on_failure` is the newer way, with the error in the record.",
        )
        .attribute(logging)
        .attribute(function_url)
        .attributes(tags_and_id())
        .attribute(output("arn", "Function ARN."))
        .attribute(output("invoke_arn", "ARN for API Gateway integrations."))
        .computed("version", Type::String, "`$LATEST`, or the last published version.")
        .attribute(output("log_group_name", "The CloudWatch log group, `/aws/lambda/<name>`."))
        .block("timeouts", Nesting::Single, timeouts_block("15m")),
    )
}

/// Levels of the function's own JSON log lines, as Lambda names them.
const APPLICATION_LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
/// Levels of Lambda's platform log lines.
const SYSTEM_LOG_LEVELS: [&str; 3] = ["DEBUG", "INFO", "WARN"];

/// Whether `arn` names a layer version: `arn:<partition>:lambda:<region>:<account>:layer:<name>:<version>`.
fn is_layer_version_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 8
        && parts[0] == "arn"
        && parts[2] == "lambda"
        && parts[5] == "layer"
        && !parts[6].is_empty()
        && parts[7].parse::<u64>().is_ok()
}

/// Whether `path` is a zip file to deploy: it exists and starts with a zip's signature.
fn check_zip(path: &std::path::Path) -> Result<(), String> {
    use std::io::Read;
    let mut head = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    match read {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "{} does not exist (relative paths start at the directory Terraform runs in; use \
             \"${{path.module}}/...\").",
            path.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(format!("{} is not a zip file.", path.display()))
        }
        Err(e) => Err(format!("{} cannot be read: {e}.", path.display())),
        Ok(()) if head != *b"PK\x03\x04" && head != *b"PK\x05\x06" => {
            Err(format!("{} is not a zip file (Lambda deploys a .zip archive).", path.display()))
        }
        Ok(()) => Ok(()),
    }
}

pub(super) fn validate_config(config: &Dynamic) -> Diagnostics {
    let o = ObjectReader::new(config);
    let root = AttributePath::root();
    let mut d = Diagnostics::new();
    if let Some(Value::Known(name)) = d.take(o.get::<Value<String>>("name")) {
        let bad = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'));
        if name.is_empty() || name.len() > 64 || bad.is_some() {
            d.error_at(root.attr("name"), "Invalid name", "Function names are 1 to 64 letters, digits, '-' or '_'.");
        }
    }
    let sources: Vec<&str> =
        ["package", "filename", "s3_bucket", "image_uri"].into_iter().filter(|k| !config.get(k).is_null()).collect();
    if sources.len() > 1 {
        d.error_at(root.attr(sources[1]), "Conflicting code sources", format!("Set only one of {sources:?}."));
    } else if sources.is_empty() && !config.is_null() {
        d.error_at(root.clone(), "Missing code", "Set package, filename, s3_bucket (with s3_key) or image_uri.");
    }
    if let Dynamic::String(f) = config.get("filename")
        && let Err(why) = check_zip(std::path::Path::new(f))
    {
        d.error_at(root.attr("filename"), "Invalid filename", why);
    }
    if !config.get("s3_bucket").is_null() && config.get("s3_key").is_null() {
        d.error_at(root.attr("s3_key"), "Missing s3_key", "s3_bucket needs s3_key.");
    }
    if let Dynamic::List(layers) = config.get("layers") {
        if layers.len() > 5 {
            d.error_at(
                root.attr("layers"),
                "Too many layers",
                format!("Lambda takes at most 5; got {}.", layers.len()),
            );
        }
        for (i, layer) in (0i64..).zip(layers) {
            if let Dynamic::String(arn) = layer
                && !is_layer_version_arn(arn)
            {
                d.error_at(
                    root.attr("layers").index(i),
                    "Invalid layer",
                    format!(
                        "{arn:?} is not a layer version ARN (arn:aws:lambda:<region>:<account>:layer:<name>:<version>)."
                    ),
                );
            }
        }
    }
    for which in ["on_success", "on_failure"] {
        if let Dynamic::String(arn) = config.get("async_invoke").get(which)
            && !matches!(arn.split(':').nth(2), Some("sqs" | "sns" | "lambda" | "events"))
        {
            d.error_at(
                root.attr("async_invoke").attr(which),
                "Invalid destination",
                format!("{arn:?} is not the ARN of an SQS queue, SNS topic, Lambda function or EventBridge bus."),
            );
        }
    }
    if let Dynamic::String(arn) = config.get("dead_letter_target")
        && !matches!(arn.split(':').nth(2), Some("sqs" | "sns"))
    {
        d.error_at(
            root.attr("dead_letter_target"),
            "Invalid dead-letter target",
            format!("{arn:?} is not the ARN of an SQS queue or SNS topic."),
        );
    }
    let logging = config.get("logging");
    let json_or_unknown = matches!(logging.get("log_format"), Dynamic::Unknown)
        || matches!(logging.get("log_format"), Dynamic::String(f) if f == "JSON");
    if !json_or_unknown {
        for level in ["application_log_level", "system_log_level"] {
            if !logging.get(level).is_null() {
                d.error_at(
                    root.attr("logging").attr(level),
                    "Log level needs JSON",
                    "Lambda filters by level only JSON logs: set log_format = \"JSON\" or remove the level.",
                );
            }
        }
    }
    if !config.get("image_config").is_null() && config.get("image_uri").is_null() && !config.is_null() {
        d.error_at(
            root.attr("image_config"),
            "image_config needs image_uri",
            "Only a container image has a command, entry point and working directory to override.",
        );
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
    validate_bindings(&mut d, config);
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

/// Errors at `bindings["name"]...` for a name IAM cannot carry, an unknown kind or access, and
/// an `environment` that sets the bindings' own variable.
fn validate_bindings(d: &mut Diagnostics, config: &Dynamic) {
    let Dynamic::Map(bindings) = config.get("bindings") else { return };
    let at = AttributePath::root().attr("bindings");
    for (name, b) in bindings {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            d.error_at(
                at.clone(),
                "Invalid binding name",
                format!("{name:?}: use letters, digits, `-` and `_` (the code asks for the store by this name)."),
            );
        }
        for (field, allowed) in [("access", &["read", "write"][..]), ("kind", &["kv", "object", "cache"][..])] {
            if let Dynamic::String(v) = b.get(field)
                && !allowed.contains(&v.as_str())
            {
                // The CLIs point no further than the attribute into a map of objects.
                d.error_at(
                    at.clone(),
                    format!("Invalid binding {field}"),
                    format!("bindings[{name:?}].{field} is {v:?}: expected one of {allowed:?}."),
                );
            }
        }
        if matches!(b, Dynamic::Map(_)) && b.get("kind").is_null() {
            d.error_at(
                at.clone(),
                "Not a binding",
                "Bind a store's `binding` output, such as adf_kv_namespace.sessions.binding.",
            );
        }
    }
    if let Dynamic::Map(env) = config.get("environment")
        && env.contains_key(adf_storage::contract::BINDINGS_ENV)
        && !bindings.is_empty()
    {
        d.error_at(
            AttributePath::root().attr("environment").key(adf_storage::contract::BINDINGS_ENV),
            "Conflicting environment variable",
            "bindings sets this variable; remove it from environment.",
        );
    }
}
