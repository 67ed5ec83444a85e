//! `adf_function`: a Lambda function with a managed execution role, its log group and an
//! optional Function URL (`AWS_IAM` auth unless the user writes `NONE`).

mod schema;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use adf_common::contract::EnvSettings;
use adf_storage::contract::{BINDINGS_ENV, Binding, Bindings, binding_statements};
use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{
    ApplyRequest, AttributePath, Diagnostic, Diagnostics, Dynamic, IntoDynamic, ObjectReader, Plan, PlanRequest, Value,
};

use self::schema::{schema, validate_config};
use super::driver::attributes::{Cors, cors_value, public_url_warning};
use super::driver::bindings::binding_value;
use super::driver::{Failure, Imported, Kind, Managed, model};
use super::released_zip::file_sha256;
use crate::aws::function::{
    self, AsyncInvoke, Code, Config, DEFAULT_LOG_LEVEL, ImageSettings, Logging, OWNER_TAG, Observed, ObservedUrl,
    Prior, Spec, UrlSpec, Vpc, invoke_arn,
};
use crate::aws::{Ownership, logs};
use crate::config::AdfData;

/// `adf_function` as a wholly known plan has it (computed attributes may still be unknown).
#[derive(Debug, Deserialize)]
struct Model {
    name: String,
    package: Option<Package>,
    filename: Option<String>,
    s3_bucket: Option<String>,
    s3_key: Option<String>,
    image_uri: Option<String>,
    source_code_hash: Value<String>,
    runtime: Value<String>,
    handler: Value<String>,
    architecture: Value<String>,
    memory_size: i64,
    timeout: i64,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    reserved_concurrency: Option<i64>,
    log_retention_days: i64,
    policy_statements: Option<String>,
    #[serde(default)]
    bindings: Option<BTreeMap<String, Binding>>,
    publish: bool,
    ephemeral_storage: i64,
    tracing: String,
    layers: Option<Vec<String>>,
    vpc_config: Option<VpcModel>,
    image_config: Option<ImageModel>,
    async_invoke: Option<AsyncModel>,
    dead_letter_target: Option<String>,
    logging: Option<LoggingModel>,
    function_url: Option<UrlModel>,
    #[serde(default)]
    tags_all: BTreeMap<String, String>,
}

/// The part of an `adf_lambda_package` that `package` reads.
#[derive(Debug, Deserialize)]
struct Package {
    output_path: Value<String>,
}

#[derive(Debug, Deserialize)]
struct VpcModel {
    subnet_ids: Vec<String>,
    security_group_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ImageModel {
    command: Option<Vec<String>>,
    entry_point: Option<Vec<String>>,
    working_directory: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AsyncModel {
    maximum_retry_attempts: Option<i64>,
    maximum_event_age_seconds: Option<i64>,
    on_success: Option<String>,
    on_failure: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LoggingModel {
    log_format: String,
    application_log_level: Option<String>,
    system_log_level: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UrlModel {
    auth_type: Value<String>,
    cors: Option<Cors>,
}

impl Model {
    /// Where the code comes from: `package`, `filename`, `s3_bucket` + `s3_key` or `image_uri`.
    fn code(&self) -> Result<Code, Diagnostics> {
        let package = self.package.as_ref().and_then(|p| p.output_path.clone().into_known());
        Ok(match (package.or_else(|| self.filename.clone()), &self.s3_bucket, &self.s3_key, &self.image_uri) {
            (Some(path), ..) => Code::Zip(PathBuf::from(path)),
            (None, Some(bucket), Some(key), _) => Code::S3 { bucket: bucket.clone(), key: key.clone() },
            (None, _, _, Some(uri)) => Code::Image(uri.clone()),
            _ => return Err(Diagnostic::error("Missing code", "Set package, filename, s3_bucket or image_uri.").into()),
        })
    }

    /// The function the services layer deploys.
    fn spec(self) -> Result<Spec, Diagnostics> {
        let code = self.code()?;
        let url = self
            .function_url
            .map(|u| UrlSpec { auth_type: u.auth_type.known_or("AWS_IAM".into()), cors: u.cors.map(Cors::into_spec) });
        // Bindings: their settings join the environment, their statements the managed role.
        let bindings = self.bindings.unwrap_or_default();
        let mut environment = self.environment;
        environment.extend(Bindings(bindings.clone()).to_env());
        let config = Config {
            runtime: self.runtime.into_known(),
            handler: self.handler.into_known(),
            architecture: self.architecture.known_or("x86_64".into()),
            memory: self.memory_size,
            timeout: self.timeout,
            environment,
            ephemeral_storage: self.ephemeral_storage,
            tracing: self.tracing,
            layers: self.layers.unwrap_or_default(),
            vpc: self.vpc_config.map(|v| Vpc { subnet_ids: v.subnet_ids, security_group_ids: v.security_group_ids }),
            image: self
                .image_config
                .map(|i| ImageSettings {
                    command: i.command.unwrap_or_default(),
                    entry_point: i.entry_point.unwrap_or_default(),
                    working_directory: i.working_directory,
                })
                .filter(|i| *i != ImageSettings::default()),
            logging: self
                .logging
                .map_or_else(Logging::default, |l| Logging {
                    format: l.log_format,
                    application_level: l.application_log_level,
                    system_level: l.system_log_level,
                })
                .as_lambda_reports(),
            dead_letter: self.dead_letter_target,
        };
        let async_invoke = self.async_invoke.map(|a| AsyncInvoke {
            maximum_retry_attempts: a.maximum_retry_attempts,
            maximum_event_age_seconds: a.maximum_event_age_seconds,
            on_success: a.on_success,
            on_failure: a.on_failure,
        });
        let mut more = binding_statements(&bindings);
        more.extend(config.role_statements());
        more.extend(async_invoke.iter().flat_map(AsyncInvoke::role_statements));
        let policy_statements = with_statements(self.policy_statements, more)?;
        Ok(Spec {
            name: self.name,
            code,
            source_code_hash: self.source_code_hash.into_known(),
            config,
            reserved_concurrency: self.reserved_concurrency,
            async_invoke,
            log_retention_days: self.log_retention_days,
            // Only a role the user wrote is theirs: the caller reads it from the configuration.
            role_arn: None,
            policy_statements,
            publish: self.publish,
            url,
            tags_all: self.tags_all,
        })
    }
}

/// `user` (a JSON array of statements, or none) with `more` appended.
fn with_statements(user: Option<String>, more: Vec<serde_json::Value>) -> Result<Option<String>, Diagnostics> {
    if more.is_empty() {
        return Ok(user);
    }
    let mut all: Vec<serde_json::Value> = match &user {
        Some(text) => serde_json::from_str(text).map_err(|e| {
            Diagnostics::from(Diagnostic::error("Invalid policy_statements", format!("Not a JSON array: {e}")))
        })?,
        None => Vec::new(),
    };
    all.extend(more);
    Ok(Some(serde_json::Value::Array(all).to_string()))
}

/// The `function_url` value for the URL Lambda reports; `prior` is the attribute's prior value.
fn url_value(u: &ObservedUrl, prior: &Dynamic) -> Dynamic {
    Dynamic::object([
        ("auth_type", u.auth_type.clone().into_dynamic()),
        ("cors", u.cors.as_ref().map_or(Dynamic::Null, |c| cors_value(c, prior.get("cors")))),
        ("url", u.url.clone().into_dynamic()),
    ])
}

fn async_value(a: &AsyncInvoke) -> Dynamic {
    Dynamic::object([
        ("maximum_retry_attempts", a.maximum_retry_attempts.into_dynamic()),
        ("maximum_event_age_seconds", a.maximum_event_age_seconds.into_dynamic()),
        ("on_success", a.on_success.clone().into_dynamic()),
        ("on_failure", a.on_failure.clone().into_dynamic()),
    ])
}

fn vpc_value(v: &Vpc) -> Dynamic {
    Dynamic::object([
        ("subnet_ids", v.subnet_ids.clone().into_dynamic()),
        ("security_group_ids", v.security_group_ids.clone().into_dynamic()),
    ])
}

/// An empty list reads as null, as a configuration that leaves it out has it.
fn image_value(i: &ImageSettings) -> Dynamic {
    let list = |l: &Vec<String>| if l.is_empty() { Dynamic::Null } else { l.clone().into_dynamic() };
    Dynamic::object([
        ("command", list(&i.command)),
        ("entry_point", list(&i.entry_point)),
        ("working_directory", i.working_directory.clone().into_dynamic()),
    ])
}

/// The `logging` value for what Lambda reports: null for Lambda's default when the prior has
/// none, and a level left out where the prior left it out and Lambda reports its default.
fn logging_value(l: &Logging, prior: &Dynamic) -> Dynamic {
    if *l == Logging::default() && prior.is_null() {
        return Dynamic::Null;
    }
    let level = |observed: &Option<String>, k: &str| match observed {
        Some(v) if v == DEFAULT_LOG_LEVEL && prior.get(k).is_null() => Dynamic::Null,
        v => v.clone().into_dynamic(),
    };
    Dynamic::object([
        ("log_format", l.format.clone().into_dynamic()),
        ("application_log_level", level(&l.application_level, "application_log_level")),
        ("system_log_level", level(&l.system_level, "system_log_level")),
    ])
}

/// The state Read reports: what Lambda shows, plus what only the configuration knows.
fn observed_state(prior: &Dynamic, o: &Observed, retention: Option<i64>) -> Dynamic {
    let mut v = prior.clone();
    let name = match prior.get("name") {
        Dynamic::String(s) => s.clone(),
        _ => String::new(),
    };
    let tags_all = crate::aws::untagged(OWNER_TAG, &o.tags);
    // The bindings travel in one variable of their own: read them back from it.
    let mut env = o.config.environment.clone();
    let bindings = Bindings::from_map(&env).map(|b| b.0).unwrap_or_default();
    env.remove(BINDINGS_ENV);
    let environment =
        if env.is_empty() && prior.get("environment").is_null() { Dynamic::Null } else { env.into_dynamic() };
    let bindings = if bindings.is_empty() && prior.get("bindings").is_null() {
        Dynamic::Null
    } else {
        Dynamic::Map(bindings.iter().map(|(k, b)| (k.clone(), binding_value(b))).collect())
    };
    let layers = if o.config.layers.is_empty() && prior.get("layers").is_null() {
        Dynamic::Null
    } else {
        o.config.layers.clone().into_dynamic()
    };
    for (k, val) in [
        ("source_code_hash", o.code_sha256.clone().into_dynamic()),
        ("runtime", o.config.runtime.clone().into_dynamic()),
        ("handler", o.config.handler.clone().into_dynamic()),
        ("architecture", o.config.architecture.clone().into_dynamic()),
        ("memory_size", o.config.memory.into_dynamic()),
        ("timeout", o.config.timeout.into_dynamic()),
        ("environment", environment),
        ("bindings", bindings),
        ("reserved_concurrency", o.reserved_concurrency.into_dynamic()),
        ("async_invoke", o.async_invoke.as_ref().map_or(Dynamic::Null, async_value)),
        ("ephemeral_storage", o.config.ephemeral_storage.into_dynamic()),
        ("tracing", o.config.tracing.clone().into_dynamic()),
        ("layers", layers),
        ("vpc_config", o.config.vpc.as_ref().map_or(Dynamic::Null, vpc_value)),
        ("image_config", o.config.image.as_ref().map_or(Dynamic::Null, image_value)),
        ("logging", logging_value(&o.config.logging, prior.get("logging"))),
        ("dead_letter_target", o.config.dead_letter.clone().into_dynamic()),
        ("log_retention_days", retention.into_dynamic()),
        ("role_arn", o.role.clone().into_dynamic()),
        ("function_url", o.url.as_ref().map_or(Dynamic::Null, |u| url_value(u, prior.get("function_url")))),
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
            plan.planned.set("log_group_name", logs::group_name(&name).into_dynamic());
        }
        let mut d = Diagnostics::new();
        if !req.config.get("role_arn").is_null()
            && matches!(req.config.get("bindings"), Dynamic::Map(b) if !b.is_empty())
        {
            d.push(Diagnostic::warning(
                "Bindings do not change a role you bring",
                "With role_arn set, the provider adds no IAM statements for bindings: grant each store's \
                 policy_json (or read_policy_json) to that role yourself.",
            ));
        }
        let url = plan.planned.get("function_url");
        let at = AttributePath::root().attr("function_url").attr("auth_type");
        if let Some(w) =
            public_url_warning(&plan.planned, url.get("auth_type"), req.prior.get("function_url").get("url"), at)
        {
            d.push(w);
        }
        if req.prior.is_null() {
            plan.planned.set(
                "version",
                if plan.planned.get("publish") == &Dynamic::Bool(true) { Dynamic::Unknown } else { "$LATEST".into() },
            );
        } else if plan.planned.get("publish") == &Dynamic::Bool(false) {
            plan.planned.set("version", "$LATEST".into());
        }
        d
    }

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure> {
        let mut spec = model::<Model>(&req.planned)?.spec()?;
        // A computed role_arn is the managed role's.
        spec.role_arn = ObjectReader::new(&req.config).get::<Value<String>>("role_arn")?.into_known();
        let prior = prior_of(&req.prior.value);
        let (o, version) = function::converge(&data.aws, &spec, &owner.owner(OWNER_TAG), prior.as_ref()).await?;
        let mut v = req.planned.clone();
        for (k, val) in [
            ("arn", o.arn.clone().into_dynamic()),
            ("invoke_arn", invoke_arn(&o.arn).into_dynamic()),
            ("role_arn", o.role.clone().into_dynamic()),
            ("version", version.into_dynamic()),
            ("log_group_name", logs::group_name(&spec.name).into_dynamic()),
            ("source_code_hash", o.code_sha256.clone().into_dynamic()),
            ("runtime", o.config.runtime.clone().into_dynamic()),
            ("handler", o.config.handler.clone().into_dynamic()),
            ("architecture", o.config.architecture.clone().into_dynamic()),
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

    async fn remove(&self, data: &AdfData, name: &str, _state: &Dynamic, owner: &Ownership) -> Result<(), Failure> {
        Ok(function::remove(&data.aws, name, &owner.owner(OWNER_TAG)).await?)
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        match function::observe(&data.aws, id).await? {
            Some((o, _)) => Ok(Imported {
                value: Dynamic::object([
                    ("name", id.into()),
                    ("memory_size", Dynamic::Null),
                    ("publish", false.into_dynamic()),
                ]),
                owner: crate::aws::imported_owner(OWNER_TAG, "Lambda function", id, &o.tags)?,
            }),
            None => Err(crate::aws::AwsError::Invalid("no such function".into()).into()),
        }
    }
}

#[cfg(test)]
mod tests;
