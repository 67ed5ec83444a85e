//! `adf_function`: a Lambda function with a managed execution role, its log group and an
//! optional Function URL (`AWS_IAM` auth unless the user writes `NONE`).

mod schema;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tfplug::{ApplyRequest, Diagnostic, Diagnostics, Dynamic, IntoDynamic, ObjectReader, Plan, PlanRequest, Value};

use self::schema::{schema, validate_config};
use super::driver::{Failure, Kind, Managed};
use super::released_zip::file_sha256;
use crate::aws::function::{
    self, Code, Config, CorsSpec, OWNER_TAG, Observed, ObservedUrl, Prior, Spec, UrlSpec, invoke_arn,
};
use crate::aws::logs;
use crate::config::AdfData;

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
        config: Config {
            runtime: opt("runtime")?,
            handler: opt("handler")?,
            architecture: opt("architecture")?.unwrap_or_else(|| "x86_64".into()),
            memory: o.get("memory_size")?,
            timeout: o.get("timeout")?,
            environment: o.get::<Value<BTreeMap<String, String>>>("environment")?.known_or(BTreeMap::new()),
        },
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
    let environment = if o.config.environment.is_empty() && prior.get("environment").is_null() {
        Dynamic::Null
    } else {
        o.config.environment.clone().into_dynamic()
    };
    for (k, val) in [
        ("source_code_hash", o.code_sha256.clone().into_dynamic()),
        ("runtime", o.config.runtime.clone().into_dynamic()),
        ("handler", o.config.handler.clone().into_dynamic()),
        ("architecture", o.config.architecture.clone().into_dynamic()),
        ("memory_size", o.config.memory.into_dynamic()),
        ("timeout", o.config.timeout.into_dynamic()),
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
mod tests;
