//! `adf_object_bucket`: an object bucket as `adf_storage::Objects` reads it: private (all four
//! public access blocks, owner-enforced ownership), encrypted, TLS-only, with a lifecycle rule
//! (expiry, aborting incomplete multipart uploads), optional versioning, and CORS for browsers
//! uploading through presigned URLs.

use std::collections::BTreeMap;
use std::time::Duration;

use adf_storage::contract::{Binding, StoreKind, object_bucket_name as bucket_name};
use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Check, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting,
    ObjectReader, Plan, PlanRequest, Schema, Type, Value,
};

use super::driver::attributes::{check_kms_key_arn, check_name, output, tags_and_id};
use super::driver::bindings::{binding_outputs, set_binding_outputs, validate_store_name};
use super::driver::{Failure, Imported, Kind, Managed, model, timeouts_block};
use crate::aws::s3::{self, Cors, Rule, Storage};
use crate::aws::{AwsClients, AwsError, Owner, Ownership, imported_owner, untagged};
use crate::config::AdfData;

/// Tag marking the bucket this resource made; its value is the bucket's `name`.
const OWNER_TAG: &str = "adf:object-bucket";
const DEFAULT_ABORT_DAYS: i64 = 7;

fn rule_id(name: &str) -> String {
    format!("adf-objects-{name}")
}

/// `cors` as the plan has it.
#[derive(Clone, Debug, Deserialize)]
struct CorsModel {
    allow_origins: Vec<String>,
    allow_methods: Vec<String>,
    allow_headers: Vec<String>,
    expose_headers: Vec<String>,
    max_age_seconds: Option<i64>,
}

/// What a wholly known plan asks for.
#[derive(Clone, Debug, Deserialize)]
struct Spec {
    name: String,
    versioning: bool,
    cors: Option<CorsModel>,
    expire_after_days: Option<i64>,
    abort_incomplete_upload_days: i64,
    kms_key_arn: Option<String>,
    force_destroy: bool,
    #[serde(default)]
    tags_all: BTreeMap<String, String>,
}

impl Spec {
    fn storage(&self, bucket: &str, owner: &Owner, tls_only: bool) -> Storage {
        Storage {
            bucket: bucket.to_string(),
            managed: true,
            rule: Rule {
                id: rule_id(&self.name),
                prefix: String::new(),
                expiration_days: self.expire_after_days,
                abort_incomplete_upload_days: Some(self.abort_incomplete_upload_days),
            },
            kms_key_arn: self.kms_key_arn.clone(),
            tags: owner.tagged(&self.tags_all),
            tls_only,
        }
    }

    fn cors(&self) -> Option<Cors> {
        self.cors.clone().map(|c| Cors {
            allow_origins: c.allow_origins,
            allow_methods: c.allow_methods,
            allow_headers: c.allow_headers,
            expose_headers: c.expose_headers,
            max_age_seconds: c.max_age_seconds,
        })
    }
}

fn set_outputs(state: &mut Dynamic, name: &str, bucket: &str, partition: &str, kms_key_arn: Option<String>) {
    state.set("bucket_name", bucket.into_dynamic());
    state.set("bucket_arn", s3::bucket_arn(partition, bucket).into_dynamic());
    let b = Binding {
        kind: Some(StoreKind::Object),
        name: name.to_string(),
        bucket: Some(bucket.to_string()),
        bucket_arn: Some(s3::bucket_arn(partition, bucket)),
        kms_key_arn,
        ..Binding::default()
    };
    set_binding_outputs(state, &b);
}

fn schema() -> Schema {
    let list = |name: &str, description: &str, default: &[&str]| {
        Attribute::with_default(
            name,
            Type::list(Type::String),
            description,
            default.iter().map(|s| s.to_string()).collect::<Vec<_>>().into_dynamic(),
        )
    };
    let cors = Attribute::nested(
        "cors",
        "CORS for browsers uploading and downloading through presigned URLs. Omit for none.",
        vec![
            Attribute::required(
                "allow_origins",
                Type::list(Type::String),
                "Origins allowed, such as `https://example.com`.",
            ),
            list("allow_methods", "Methods allowed. Default `[\"GET\", \"PUT\", \"HEAD\"]`.", &["GET", "PUT", "HEAD"]),
            list("allow_headers", "Request headers allowed. Default `[\"*\"]`.", &["*"]),
            list(
                "expose_headers",
                "Response headers browsers may read. Default `[\"ETag\"]` (multipart needs it).",
                &["ETag"],
            ),
            Attribute::with_default(
                "max_age_seconds",
                Type::Number,
                "Seconds a browser may cache the preflight answer. Default `3600`.",
                3600i64.into_dynamic(),
            ),
        ],
    );
    Schema::new(
        0,
        Block::new(
            "An object bucket for `adf_storage::Objects` (R2's shape, on S3): `adf-objects-<name>-<account>`, \
             private (all four public access blocks, bucket-owner-enforced ownership), encrypted (SSE-S3, or SSE-KMS \
             with `kms_key_arn`), refusing requests without TLS, with a lifecycle rule that aborts incomplete \
             multipart uploads and optionally expires objects, optional versioning, and CORS for browser uploads.",
        )
        .attribute(
            Attribute::required(
                "name",
                Type::String,
                "Bucket name within the account: lowercase letters, digits and `-`, at most 40 characters. \
                 Changing it replaces the bucket.",
            )
            .requires_replace(),
        )
        .defaulted("versioning", Type::Bool, "Keep every version of every object. Default `false`.", false)
        .attribute(cors)
        .optional("expire_after_days", Type::Number, "Days after which objects expire. Null: never.")
        .check(Check::Range(1, 36_500))
        .defaulted(
            "abort_incomplete_upload_days",
            Type::Number,
            "Days after which an incomplete multipart upload is aborted and its parts deleted. Default `7`.",
            DEFAULT_ABORT_DAYS,
        )
        .check(Check::Range(1, 365))
        .optional("kms_key_arn", Type::String, "ARN of a customer managed KMS key (SSE-KMS). Null: SSE-S3.")
        .defaulted(
            "force_destroy",
            Type::Bool,
            "Delete every object (and version) on destroy. Default `false`: destroy refuses while objects remain.",
            false,
        )
        .attributes(tags_and_id())
        .attribute(output("bucket_name", "The bucket, `adf-objects-<name>-<account>`."))
        .attribute(output("bucket_arn", "The bucket's ARN."))
        .attributes(binding_outputs("the bucket", false))
        .block("timeouts", Nesting::Single, timeouts_block("10m")),
    )
}

fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    check_name(&mut d, config, "bucket", validate_store_name);
    check_kms_key_arn(&mut d, config, "");
    let cors = config.get("cors");
    if let Ok(Value::Known(origins)) = ObjectReader::new(cors).get::<Value<Vec<String>>>("allow_origins")
        && origins.is_empty()
    {
        d.error_at(
            AttributePath::root().attr("cors"),
            "No CORS origin",
            "List at least one origin, such as \"https://example.com\", or remove `cors`.",
        );
    }
    if let Ok(Value::Known(methods)) = ObjectReader::new(cors).get::<Value<Vec<String>>>("allow_methods") {
        for m in methods.iter().filter(|m| !["GET", "PUT", "POST", "DELETE", "HEAD"].contains(&m.as_str())) {
            d.error_at(
                AttributePath::root().attr("cors"),
                "Invalid CORS method",
                format!("{m:?}: S3 allows GET, PUT, POST, DELETE and HEAD."),
            );
        }
    }
    d
}

/// What AWS shows of the bucket.
struct Observed {
    bucket: String,
    versioning: bool,
    cors: Option<Cors>,
    rule: Option<Rule>,
    tags: BTreeMap<String, String>,
}

async fn observe(aws: &AwsClients, name: &str, bucket: String) -> Result<Option<Observed>, AwsError> {
    if !s3::exists(&aws.s3, &bucket).await? {
        return Ok(None);
    }
    Ok(Some(Observed {
        versioning: s3::versioning(&aws.s3, &bucket).await?,
        cors: s3::cors(&aws.s3, &bucket).await?,
        rule: s3::rule(&aws.s3, &bucket, &rule_id(name)).await?,
        tags: s3::tags(&aws.s3, &bucket).await?,
        bucket,
    }))
}

fn cors_value(c: &Cors) -> Dynamic {
    Dynamic::object([
        ("allow_origins", c.allow_origins.clone().into_dynamic()),
        ("allow_methods", c.allow_methods.clone().into_dynamic()),
        ("allow_headers", c.allow_headers.clone().into_dynamic()),
        ("expose_headers", c.expose_headers.clone().into_dynamic()),
        ("max_age_seconds", c.max_age_seconds.into_dynamic()),
    ])
}

fn observed_state(prior: &Dynamic, name: &str, partition: &str, o: &Observed) -> Dynamic {
    let mut v = prior.clone();
    let kms = match prior.get("kms_key_arn") {
        Dynamic::String(k) => Some(k.clone()),
        _ => None,
    };
    for (k, val) in [
        ("name", name.into_dynamic()),
        ("versioning", o.versioning.into_dynamic()),
        ("cors", o.cors.as_ref().map_or(Dynamic::Null, cors_value)),
        ("expire_after_days", o.rule.as_ref().and_then(|r| r.expiration_days).into_dynamic()),
        (
            "abort_incomplete_upload_days",
            o.rule.as_ref().and_then(|r| r.abort_incomplete_upload_days).unwrap_or(DEFAULT_ABORT_DAYS).into_dynamic(),
        ),
        ("kms_key_arn", kms.clone().into_dynamic()),
        ("tags_all", untagged(OWNER_TAG, &o.tags).into_dynamic()),
    ] {
        v.set(k, val);
    }
    if v.get("force_destroy").is_null() {
        v.set("force_destroy", false.into_dynamic());
    }
    set_outputs(&mut v, name, &o.bucket, partition, kms);
    v
}

async fn bucket_of(data: &AdfData, name: &str) -> Result<String, AwsError> {
    Ok(bucket_name(name, &data.account_id().await.map_err(AwsError::Invalid)?))
}

async fn observe_named(data: &AdfData, name: &str) -> Result<Option<Observed>, AwsError> {
    observe(&data.aws, name, bucket_of(data, name).await?).await
}

/// The `adf_object_bucket` resource.
#[derive(Debug, Default)]
pub struct ObjectBucket;

#[async_trait]
impl Managed for ObjectBucket {
    const KIND: Kind = Kind::new("adf_object_bucket", Duration::from_secs(10 * 60), schema, validate_config);

    async fn plan(&self, _data: Option<&AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        if !req.prior.is_null() && req.prior.get("kms_key_arn") != plan.planned.get("kms_key_arn") {
            for k in ["binding", "client_config", "policy_json", "read_policy_json"] {
                plan.planned.set(k, Dynamic::Unknown);
            }
        }
        Diagnostics::new()
    }

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure> {
        let spec = model::<Spec>(&req.planned)?;
        let (aws, owner) = (&data.aws, owner.owner(OWNER_TAG));
        let bucket = bucket_of(data, &spec.name).await?;
        s3::ensure(aws, &spec.storage(&bucket, &owner, !aws.s3_plain_http()), &owner).await?;
        s3::put_versioning(&aws.s3, &bucket, spec.versioning).await?;
        s3::put_cors(&aws.s3, &bucket, spec.cors().as_ref()).await?;
        let mut state = req.planned.clone();
        set_outputs(&mut state, &spec.name, &bucket, &aws.partition, spec.kms_key_arn.clone());
        Ok(state)
    }

    async fn observe(&self, data: &AdfData, name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        Ok(observe_named(data, name).await?.map(|o| observed_state(prior, name, &data.aws.partition, &o)))
    }

    async fn remove(&self, data: &AdfData, name: &str, state: &Dynamic, owner: &Ownership) -> Result<(), Failure> {
        let spec = model::<Spec>(state)?;
        let owner = owner.owner(OWNER_TAG);
        let bucket = bucket_of(data, name).await?;
        let storage = spec.storage(&bucket, &owner, true);
        s3::check_deletable(&data.aws.s3, &storage, spec.force_destroy, "objects").await?;
        Ok(s3::delete(&data.aws.s3, &storage, &owner, spec.force_destroy).await?)
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        if let Err(m) = validate_store_name(id) {
            let mut d = Diagnostics::new();
            d.error_at(AttributePath::root(), format!("importing {} ({id}): invalid id", Self::KIND.type_name), m);
            return Err(d.into());
        }
        match observe_named(data, id).await? {
            Some(o) => {
                let owner = imported_owner(OWNER_TAG, "S3 bucket", &o.bucket, &o.tags)?;
                let value = observed_state(&Dynamic::object([("name", id.into())]), id, &data.aws.partition, &o);
                Ok(Imported { value, owner })
            }
            None => Err(Diagnostic::error(
                format!("importing {} ({id})", Self::KIND.type_name),
                format!("no bucket {} exists", bucket_of(data, id).await?),
            )
            .into()),
        }
    }
}
