//! Schema parts and plan checks that several resources share: tags, the settings and outputs
//! of the Lambda function a resource deploys for its runtime, Lambda's limits, names and KMS
//! key ARNs.

use tfplug::{
    Attribute, AttributePath, Check, Diagnostic, Diagnostics, Dynamic, IntoDynamic, ObjectReader, Type, Value,
};

use crate::aws::function::{CorsSpec, RETENTION_DAYS};
use crate::aws::logs;

/// A string output that keeps its prior value in plans once known.
pub fn output(name: &str, description: &str) -> Attribute {
    Attribute::computed(name, Type::String, description).stable()
}

/// The `tags` attribute.
fn tags_attribute() -> Attribute {
    Attribute::optional("tags", Type::map(Type::String), "Tags for the AWS resources this creates.")
}

/// The `tags_all` attribute: `tags` merged over the provider's `default_tags`.
fn tags_all_attribute() -> Attribute {
    Attribute::computed(
        "tags_all",
        Type::map(Type::String),
        "All tags applied: the provider's `default_tags` merged with `tags` (which win).",
    )
}

/// Outputs `<prefix>_<part>` of one AWS resource, described "Name of `what`." and so on; parts
/// are `name`, `url` and `arn`.
pub fn outputs_of(prefix: &str, what: &str, parts: &[&str]) -> Vec<Attribute> {
    let label = |part: &str| match part {
        "url" => "URL".to_string(),
        "arn" => "ARN".to_string(),
        _ => capitalized(part),
    };
    parts.iter().map(|p| output(&format!("{prefix}_{p}"), &format!("{} of {what}.", label(p)))).collect()
}

/// An error at `name` (summary "Invalid `what` name") when `valid` refuses its known value.
pub fn check_name(d: &mut Diagnostics, config: &Dynamic, what: &str, valid: fn(&str) -> Result<(), String>) {
    if let Some(Value::Known(name)) = d.take(ObjectReader::new(config).get::<Value<String>>("name"))
        && let Err(m) = valid(&name)
    {
        d.error_at(AttributePath::root().attr("name"), format!("Invalid {what} name"), m);
    }
}

/// The `cors` attribute of a Function URL or an HTTP API.
pub fn cors(description: &str) -> Attribute {
    Attribute::nested(
        "cors",
        description,
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
    )
}

/// A [`cors`] attribute as a wholly known plan has it.
#[derive(Debug, serde::Deserialize)]
pub struct Cors {
    #[serde(default)]
    allow_origins: Vec<String>,
    #[serde(default)]
    allow_methods: Vec<String>,
    #[serde(default)]
    allow_headers: Vec<String>,
    max_age: Option<i64>,
}

impl Cors {
    /// What the services layer sets.
    pub fn into_spec(self) -> CorsSpec {
        CorsSpec {
            allow_origins: self.allow_origins,
            allow_methods: self.allow_methods,
            allow_headers: self.allow_headers,
            max_age: self.max_age,
        }
    }
}

/// The [`cors`] attribute's value for CORS as AWS reports it; an empty list AWS reports is null
/// unless `prior` (the attribute's prior value) has it empty.
pub fn cors_value(c: &CorsSpec, prior: &Dynamic) -> Dynamic {
    let list = |name: &'static str, l: &Vec<String>| {
        let value = if l.is_empty() && prior.get(name).is_null() { Dynamic::Null } else { l.clone().into_dynamic() };
        (name, value)
    };
    Dynamic::object([
        list("allow_origins", &c.allow_origins),
        list("allow_methods", &c.allow_methods),
        list("allow_headers", &c.allow_headers),
        ("max_age", c.max_age.into_dynamic()),
    ])
}

/// `tags`, `tags_all` and `id` (the name), as every managed resource has them.
pub fn tags_and_id() -> [Attribute; 3] {
    [tags_attribute(), tags_all_attribute(), output("id", "Same as `name`.")]
}

/// Lambda's memory range, MB.
pub const MEMORY_SIZE: Check = Check::Range(128, 10_240);
/// Lambda's timeout range, seconds.
pub const TIMEOUT: Check = Check::Range(1, 900);
/// The retention values CloudWatch Logs accepts.
pub const LOG_RETENTION_DAYS: Check = Check::AnyOf(&RETENTION_DAYS);
/// Function URL auth types.
pub const AUTH_TYPE: Check = Check::OneOf(&["AWS_IAM", "NONE"]);

/// The settings of the function a resource deploys for a runtime (`noun`: "the worker"):
/// `memory_size`, `timeout` (`timeout_note`, a sentence, says what bounds it) and
/// `log_retention_days`.
pub fn runtime_function(noun: &str, memory: i64, timeout: i64, timeout_note: &str) -> [Attribute; 3] {
    [
        Attribute::with_default(
            "memory_size",
            Type::Number,
            &format!("Memory of {noun} in MB, 128 to 10240. Default `{memory}`."),
            memory.into_dynamic(),
        )
        .check(MEMORY_SIZE),
        Attribute::with_default(
            "timeout",
            Type::Number,
            &format!("Timeout of {noun} in seconds, 1 to 900.{timeout_note} Default `{timeout}`."),
            timeout.into_dynamic(),
        )
        .check(TIMEOUT),
        Attribute::with_default(
            "log_retention_days",
            Type::Number,
            &format!(
                "Retention of {noun}'s log group (a CloudWatch value: 1, 3, 5, 7, 14, 30, ...; 0 never expires). \
                 Default `30`."
            ),
            30i64.into_dynamic(),
        )
        .check(LOG_RETENTION_DAYS),
    ]
}
/// Plans the `function_name` and `log_group_name` of [`runtime_function_outputs`] for the
/// function named `function`.
pub fn plan_function_names(planned: &mut Dynamic, function: String) {
    planned.set("log_group_name", logs::group_name(&function).into_dynamic());
    planned.set("function_name", function.into_dynamic());
}

/// The outputs of the function a resource deploys for a runtime: its name, ARN, role, log group
/// and the hash of the deployed zip.
pub fn runtime_function_outputs(noun: &str, name_note: &str) -> [Attribute; 5] {
    [
        output("function_name", &format!("The name of {noun}'s function{name_note}.")),
        output("function_arn", &format!("The ARN of {noun}'s function.")),
        output("role_arn", &format!("{}'s least-privilege execution role.", capitalized(noun))),
        output("log_group_name", &format!("{}'s log group.", capitalized(noun))),
        Attribute::computed(
            "source_code_hash",
            Type::String,
            &format!(
                "Base64 SHA-256 of {noun}'s deployed zip; a new provider release shows here as an in-place update."
            ),
        ),
    ]
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// An error at `kms_key_arn` unless it is a key ARN (`note` may say why aliases will not do).
/// A warning at `at` when the planned Function URL's `auth_type` is `NONE`: anyone may invoke
/// the function of `planned` (its `name`) at `url`, once known.
pub fn public_url_warning(
    planned: &Dynamic,
    auth_type: &Dynamic,
    url: &Dynamic,
    at: AttributePath,
) -> Option<Diagnostic> {
    if auth_type != &Dynamic::String("NONE".into()) {
        return None;
    }
    let address = match url {
        Dynamic::String(u) => u.clone(),
        _ => "its Function URL (known after apply)".into(),
    };
    let name = match planned.get("name") {
        Dynamic::String(n) => n.clone(),
        _ => "the function".into(),
    };
    Some(
        Diagnostic::warning(
            "Public Function URL",
            format!(
                "auth_type = \"NONE\": anyone on the internet can invoke {name} at {address}, without signing the \
                 request, and each call is billed to this account. Use \"AWS_IAM\" (the default) unless the \
                 function checks callers itself."
            ),
        )
        .at(at),
    )
}

pub fn check_kms_key_arn(d: &mut Diagnostics, config: &Dynamic, note: &str) {
    if let Some(Value::Known(k)) = d.take(ObjectReader::new(config).get::<Value<String>>("kms_key_arn"))
        && !(k.starts_with("arn:") && k.contains(":kms:"))
    {
        d.error_at(
            AttributePath::root().attr("kms_key_arn"),
            "Invalid kms_key_arn",
            format!("Expected a KMS key ARN (arn:aws:kms:region:account:key/id), got {k:?}.{note}"),
        );
    }
}

/// The diagnostics of a change of a topic's `partitions` from `prior` to `planned`: fewer is an
/// error, more a warning that keys move.
pub fn partition_change(prior: i64, planned: i64) -> Diagnostics {
    let mut d = Diagnostics::new();
    if planned < prior {
        d.error_at(
            AttributePath::root().attr("partitions"),
            "Partitions cannot decrease",
            format!(
                "The topic has {prior} partitions; going down to {planned} would drop partitions and the order of \
                 the keys mapped to them. Keep {prior} or more, or create a new topic and move consumers to it."
            ),
        );
    } else if planned > prior {
        d.push(
            Diagnostic::warning(
                "Keys will map to other partitions",
                format!(
                    "Going from {prior} to {planned} partitions changes which partition a key hashes to. Records \
                     already stored keep their offsets; order per key holds within records produced after the change."
                ),
            )
            .at(AttributePath::root().attr("partitions")),
        );
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_grow_with_a_warning_and_never_shrink() {
        let shrink = partition_change(4, 2);
        assert!(shrink.has_errors());
        assert_eq!(shrink.0[0].attribute, Some(AttributePath::root().attr("partitions")));
        let grow = partition_change(4, 8);
        assert!(!grow.has_errors());
        assert_eq!(grow.0.len(), 1);
        assert!(partition_change(4, 4).is_empty());
    }
}
