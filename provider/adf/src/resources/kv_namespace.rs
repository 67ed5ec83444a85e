//! `adf_kv_namespace`: a KV namespace as `adf_storage::Kv` reads it: a DynamoDB table (the
//! namespace as partition key, keys as sort key, TTL, encryption, optional point-in-time
//! recovery) and, with `large_values`, a private encrypted bucket for values over an item's
//! size.

use std::collections::BTreeMap;
use std::time::Duration;

use adf_storage::contract::{
    Binding, KV_TABLE, StoreKind, kv_blob_prefix, kv_bucket_name as managed_bucket_name, kv_table_name as table_name,
};
use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting, Plan,
    PlanRequest, Schema, Type,
};

use super::driver::attributes::{check_kms_key_arn, check_name, output, tags_and_id};
use super::driver::bindings::{binding_outputs, set_binding_outputs, validate_store_name};
use super::driver::{Failure, Imported, Kind, Managed, model, timeouts_block};
use crate::aws::dynamodb::{self, Billing, TableSpec};
use crate::aws::s3::{self, Rule, Storage};
use crate::aws::{AwsClients, AwsError, Owner, Ownership, imported_owner, partition_of_arn, untagged};
use crate::config::AdfData;

/// Tag marking the table and bucket this resource made; its value is the namespace name.
const OWNER_TAG: &str = "adf:kv-namespace";
/// Incomplete uploads of large values are aborted after a day.
const ABORT_UPLOADS_DAYS: i64 = 1;

/// What a wholly known plan asks for.
#[derive(Clone, Debug, Deserialize)]
struct Spec {
    name: String,
    large_values: bool,
    point_in_time_recovery: bool,
    kms_key_arn: Option<String>,
    force_destroy: bool,
    #[serde(default)]
    tags_all: BTreeMap<String, String>,
}

impl Spec {
    fn table(&self, owner: &Owner) -> TableSpec {
        TableSpec {
            name: table_name(&self.name),
            schema: KV_TABLE,
            billing: Billing::PayPerRequest,
            kms_key_arn: self.kms_key_arn.clone(),
            pitr: self.point_in_time_recovery,
            tags: owner.tagged(&self.tags_all),
        }
    }

    fn storage(&self, bucket: &str, owner: &Owner, tls_only: bool) -> Storage {
        Storage {
            bucket: bucket.to_string(),
            managed: true,
            rule: Rule {
                id: format!("adf-kv-{}", self.name),
                prefix: kv_blob_prefix(&self.name),
                expiration_days: None,
                abort_incomplete_upload_days: Some(ABORT_UPLOADS_DAYS),
            },
            kms_key_arn: self.kms_key_arn.clone(),
            tags: owner.tagged(&self.tags_all),
            tls_only,
        }
    }
}

fn binding(name: &str, table_arn: &str, bucket: Option<&str>, kms_key_arn: Option<String>) -> Binding {
    // The table's ARN, from AWS, carries the partition the bucket is in.
    let partition = partition_of_arn(table_arn).unwrap_or("aws");
    Binding {
        kind: Some(StoreKind::Kv),
        name: name.to_string(),
        table: Some(table_name(name)),
        table_arn: Some(table_arn.to_string()),
        bucket: bucket.map(str::to_string),
        bucket_arn: bucket.map(|b| s3::bucket_arn(partition, b)),
        kms_key_arn,
        ..Binding::default()
    }
}

/// Sets every output from the table's ARN and the bucket, if any.
fn set_outputs(state: &mut Dynamic, name: &str, table_arn: &str, bucket: Option<&str>, kms: Option<String>) {
    state.set("table_name", table_name(name).into_dynamic());
    state.set("table_arn", table_arn.into_dynamic());
    state.set("bucket_name", bucket.map(str::to_string).into_dynamic());
    let binding = binding(name, table_arn, bucket, kms);
    state.set("bucket_arn", binding.bucket_arn.clone().into_dynamic());
    set_binding_outputs(state, &binding);
}

fn schema() -> Schema {
    Schema::new(
        0,
        Block::new(
            "A KV namespace (Cloudflare Workers KV's shape) for `adf_storage::Kv`: a DynamoDB table `adf-kv-<name>` \
             with the namespace as partition key and keys as sort key, so a prefix listing is a `Query`; TTL on \
             `exp` (expired keys are never returned, even before DynamoDB deletes them); encryption at rest always \
             on. With `large_values`, values over an item's 400 KB (up to 25 MiB) go to a private, encrypted, \
             TLS-only bucket.",
        )
        .attribute(
            Attribute::required(
                "name",
                Type::String,
                "Namespace name: lowercase letters, digits and `-`, at most 40 characters. Changing it replaces the \
                 namespace.",
            )
            .requires_replace(),
        )
        .defaulted(
            "large_values",
            Type::Bool,
            "Keep values over 380 KiB (up to 25 MiB) in a managed bucket `adf-kv-<name>-<account>`. Without it \
             such a put fails with a clear error. Turning it off deletes the bucket (refused while it holds values, \
             unless `force_destroy`). Default `false`.",
            false,
        )
        .defaulted(
            "point_in_time_recovery",
            Type::Bool,
            "Enable DynamoDB point-in-time recovery. Default `false`.",
            false,
        )
        .optional(
            "kms_key_arn",
            Type::String,
            "ARN of a customer managed KMS key for the table and bucket. When null, AWS owned keys (DynamoDB) and \
             SSE-S3 encrypt at rest.",
        )
        .defaulted(
            "force_destroy",
            Type::Bool,
            "Delete the bucket's large values on destroy. Default `false`: destroy refuses while any remain.",
            false,
        )
        .attributes(tags_and_id())
        .attribute(output("table_name", "The table, `adf-kv-<name>`."))
        .attribute(output("table_arn", "The table's ARN."))
        .attribute(Attribute::computed("bucket_name", Type::String, "The large-value bucket; null without one."))
        .attribute(Attribute::computed("bucket_arn", Type::String, "The large-value bucket's ARN; null without one."))
        .attributes(binding_outputs("the namespace", false))
        .block("timeouts", Nesting::Single, timeouts_block("10m")),
    )
}

fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    check_name(&mut d, config, "namespace", validate_store_name);
    check_kms_key_arn(&mut d, config, "");
    d
}

/// What AWS shows of a namespace.
struct Observed {
    table: dynamodb::TableState,
    bucket: Option<String>,
}

async fn observe(aws: &AwsClients, data: &AdfData, name: &str) -> Result<Option<Observed>, Failure> {
    let Some(table) = dynamodb::describe(&aws.dynamodb, &table_name(name)).await? else { return Ok(None) };
    let bucket = managed_bucket_name(name, &data.account_id().await.map_err(AwsError::Invalid)?);
    let bucket = s3::exists(&aws.s3, &bucket).await?.then_some(bucket);
    Ok(Some(Observed { table, bucket }))
}

fn observed_state(prior: &Dynamic, name: &str, o: &Observed) -> Dynamic {
    let mut v = prior.clone();
    let tags_all = untagged(OWNER_TAG, &o.table.tags);
    for (k, val) in [
        ("name", name.into_dynamic()),
        ("large_values", o.bucket.is_some().into_dynamic()),
        ("point_in_time_recovery", o.table.pitr.into_dynamic()),
        ("kms_key_arn", o.table.kms_key_arn.clone().into_dynamic()),
        ("tags_all", tags_all.into_dynamic()),
    ] {
        v.set(k, val);
    }
    if v.get("force_destroy").is_null() {
        v.set("force_destroy", false.into_dynamic());
    }
    set_outputs(&mut v, name, &o.table.arn, o.bucket.as_deref(), o.table.kms_key_arn.clone());
    v
}

/// Deletes the managed bucket unless it holds values and `force_destroy` is off.
async fn remove_bucket(aws: &AwsClients, spec: &Spec, bucket: &str, owner: &Owner) -> Result<(), AwsError> {
    let storage = spec.storage(bucket, owner, true);
    s3::check_deletable(&aws.s3, &storage, spec.force_destroy, "large values").await?;
    s3::delete(&aws.s3, &storage, owner, spec.force_destroy).await
}

/// The `adf_kv_namespace` resource.
#[derive(Debug, Default)]
pub struct KvNamespace;

#[async_trait]
impl Managed for KvNamespace {
    const KIND: Kind = Kind::new("adf_kv_namespace", Duration::from_secs(10 * 60), schema, validate_config);

    async fn plan(&self, _data: Option<&AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        if let Dynamic::String(name) = plan.planned.get("name").clone() {
            plan.planned.set("table_name", table_name(&name).into_dynamic());
        }
        let changed = |k: &str| req.prior.is_null() || req.prior.get(k) != plan.planned.get(k);
        if changed("large_values") || changed("kms_key_arn") {
            for k in ["binding", "client_config", "policy_json", "read_policy_json", "bucket_name", "bucket_arn"] {
                plan.planned.set(k, Dynamic::Unknown);
            }
            if plan.planned.get("large_values") == &Dynamic::Bool(false) {
                plan.planned.set("bucket_name", Dynamic::Null);
                plan.planned.set("bucket_arn", Dynamic::Null);
            }
        } else {
            for k in ["bucket_name", "bucket_arn"] {
                plan.planned.set(k, req.prior.get(k).clone());
            }
        }
        Diagnostics::new()
    }

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure> {
        let spec = model::<Spec>(&req.planned)?;
        let (aws, owner) = (&data.aws, owner.owner(OWNER_TAG));
        // The table first: CreateTable is atomic, so of two applies racing for a name one goes on.
        let table = dynamodb::ensure(&aws.dynamodb, &spec.table(&owner), &owner).await?;
        let bucket = managed_bucket_name(&spec.name, &data.account_id().await.map_err(AwsError::Invalid)?);
        if spec.large_values {
            s3::ensure(aws, &spec.storage(&bucket, &owner, !aws.s3_plain_http()), &owner).await?;
        } else if s3::exists(&aws.s3, &bucket).await? {
            remove_bucket(aws, &spec, &bucket, &owner).await?;
        }
        let mut state = req.planned.clone();
        let bucket = spec.large_values.then_some(bucket);
        set_outputs(&mut state, &spec.name, &table.arn, bucket.as_deref(), spec.kms_key_arn.clone());
        Ok(state)
    }

    async fn observe(&self, data: &AdfData, name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        Ok(observe(&data.aws, data, name).await?.map(|o| observed_state(prior, name, &o)))
    }

    async fn remove(&self, data: &AdfData, _name: &str, state: &Dynamic, owner: &Ownership) -> Result<(), Failure> {
        let spec = model::<Spec>(state)?;
        let owner = owner.owner(OWNER_TAG);
        // Refuse before touching anything, so a refused destroy loses nothing. (A create that
        // failed half way saved no bucket name: it is derived.)
        if spec.large_values {
            let bucket = managed_bucket_name(&spec.name, &data.account_id().await.map_err(AwsError::Invalid)?);
            remove_bucket(&data.aws, &spec, &bucket, &owner).await?;
        }
        Ok(dynamodb::delete(&data.aws.dynamodb, &table_name(&spec.name), &owner).await?)
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        if let Err(m) = validate_store_name(id) {
            let mut d = Diagnostics::new();
            d.error_at(AttributePath::root(), format!("importing {} ({id}): invalid id", Self::KIND.type_name), m);
            return Err(d.into());
        }
        let prior = Dynamic::object([("name", id.into())]);
        match observe(&data.aws, data, id).await? {
            Some(o) => {
                let owner = imported_owner(OWNER_TAG, "DynamoDB table", &table_name(id), &o.table.tags)?;
                Ok(Imported { value: observed_state(&prior, id, &o), owner })
            }
            None => Err(Diagnostic::error(
                format!("importing {} ({id})", Self::KIND.type_name),
                format!("no table {} exists", table_name(id)),
            )
            .into()),
        }
    }
}
