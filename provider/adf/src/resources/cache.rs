//! `adf_cache`: a cache as `adf_storage::Cache` reads it: a DynamoDB table with TTL, an
//! existing ElastiCache / Valkey endpoint, or both (Redis in front of DynamoDB).

use std::collections::BTreeMap;
use std::time::Duration;

use adf_storage::contract::{Binding, CACHE_TABLE, StoreKind, cache_table_name as table_name};
use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting,
    ObjectReader, Plan, PlanRequest, Schema, Type, Value,
};

use super::driver::attributes::{check_kms_key_arn, check_name, tags_and_id};
use super::driver::bindings::{binding_outputs, set_binding_outputs, validate_store_name};
use super::driver::{Failure, Imported, Kind, Managed, model, timeouts_block};
use crate::aws::dynamodb::{self, Billing, TableSpec};
use crate::aws::{AwsError, Owner, Ownership, imported_owner, untagged};
use crate::config::AdfData;

/// Tag marking the table this resource made; its value is the cache name.
const OWNER_TAG: &str = "adf:cache";

/// What a wholly known plan asks for.
#[derive(Clone, Debug, Deserialize)]
struct Spec {
    name: String,
    dynamodb: bool,
    redis_endpoint: Option<String>,
    redis_auth_token: Option<String>,
    redis_tls: bool,
    kms_key_arn: Option<String>,
    #[serde(default)]
    tags_all: BTreeMap<String, String>,
}

impl Spec {
    fn table(&self, owner: &Owner) -> TableSpec {
        TableSpec {
            name: table_name(&self.name),
            schema: CACHE_TABLE,
            billing: Billing::PayPerRequest,
            kms_key_arn: self.kms_key_arn.clone(),
            pitr: false,
            tags: owner.tagged(&self.tags_all),
        }
    }

    /// The Redis URL: the endpoint as written when it has a scheme, else `rediss://` (or
    /// `redis://` without `redis_tls`) in front of it.
    fn redis_url(&self) -> Option<String> {
        self.redis_endpoint.as_ref().map(|e| {
            if e.contains("://") {
                e.clone()
            } else {
                format!("{}://{e}", if self.redis_tls { "rediss" } else { "redis" })
            }
        })
    }

    fn binding(&self, table_arn: Option<&str>) -> Binding {
        Binding {
            kind: Some(StoreKind::Cache),
            name: self.name.clone(),
            table: table_arn.map(|_| table_name(&self.name)),
            table_arn: table_arn.map(str::to_string),
            kms_key_arn: self.kms_key_arn.clone(),
            redis_url: self.redis_url(),
            redis_auth_token: self.redis_auth_token.clone(),
            ..Binding::default()
        }
    }
}

fn set_outputs(state: &mut Dynamic, spec: &Spec, table_arn: Option<&str>) {
    state.set("table_name", table_arn.map(|_| table_name(&spec.name)).into_dynamic());
    state.set("table_arn", table_arn.map(str::to_string).into_dynamic());
    set_binding_outputs(state, &spec.binding(table_arn));
}

fn schema() -> Schema {
    Schema::new(
        0,
        Block::new(
            "A cache for `adf_storage::Cache`: a DynamoDB table `adf-cache-<name>` with TTL (entries past their TTL \
             are never returned, even before DynamoDB deletes them), an existing ElastiCache / Valkey endpoint, or \
             both: Redis in front, DynamoDB behind it (a miss in Redis reads DynamoDB and refills Redis for the \
             remaining TTL). Concurrent misses on one key in a process compute the value once.",
        )
        .attribute(
            Attribute::required(
                "name",
                Type::String,
                "Cache name: lowercase letters, digits and `-`, at most 40 characters. Changing it replaces the cache.",
            )
            .requires_replace(),
        )
        .optional(
            "redis_endpoint",
            Type::String,
            "An existing ElastiCache / Valkey endpoint, `host:port` (such as the replication group's primary \
             endpoint) or a `redis://` / `rediss://` URL. Null: DynamoDB only.",
        )
        .attribute(
            Attribute::optional(
                "redis_auth_token",
                Type::String,
                "The cluster's AUTH token, when it has one. Sensitive: kept out of plans and logs.",
            )
            .sensitive(),
        )
        .defaulted(
            "redis_tls",
            Type::Bool,
            "Connect with TLS (`rediss://`) when `redis_endpoint` has no scheme, as ElastiCache with in-transit \
             encryption requires. Default `true`.",
            true,
        )
        .optional_computed(
            "dynamodb",
            Type::Bool,
            "Keep entries in the DynamoDB table. Default: `true` without `redis_endpoint`, `false` with one; `true` \
             with a `redis_endpoint` makes a two-tier cache that survives a Redis flush.",
        )
        .optional(
            "kms_key_arn",
            Type::String,
            "ARN of a customer managed KMS key for the table. Null: an AWS owned key.",
        )
        .attributes(tags_and_id())
        .attribute(Attribute::computed("table_name", Type::String, "The table, `adf-cache-<name>`; null without one."))
        .attribute(Attribute::computed("table_arn", Type::String, "The table's ARN; null without one."))
        .attributes(binding_outputs("the cache", true))
        .block("timeouts", Nesting::Single, timeouts_block("10m")),
    )
}

fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    check_name(&mut d, config, "cache", validate_store_name);
    check_kms_key_arn(&mut d, config, "");
    let o = ObjectReader::new(config);
    if o.get::<Value<bool>>("dynamodb").ok() == Some(Value::Known(false)) && config.get("redis_endpoint").is_null() {
        d.error_at(
            AttributePath::root().attr("dynamodb"),
            "A cache needs somewhere to keep entries",
            "Set redis_endpoint, or leave dynamodb at its default (true without redis_endpoint).",
        );
    }
    if let Ok(Value::Known(e)) = o.get::<Value<String>>("redis_endpoint") {
        let rest = e.split_once("://").map_or(e.as_str(), |(scheme, rest)| {
            if !matches!(scheme, "redis" | "rediss") {
                d.error_at(
                    AttributePath::root().attr("redis_endpoint"),
                    "Invalid redis_endpoint",
                    format!("{e:?}: the scheme must be redis:// or rediss://"),
                );
            }
            rest
        });
        let port = rest.rsplit_once(':').map(|(_, p)| p.trim_end_matches('/'));
        if port.is_none_or(|p| p.parse::<u16>().is_err()) {
            d.error_at(
                AttributePath::root().attr("redis_endpoint"),
                "Invalid redis_endpoint",
                format!("{e:?}: expected host:port, such as \"master.x.use1.cache.amazonaws.com:6379\""),
            );
        }
    }
    d
}

/// The `adf_cache` resource.
#[derive(Debug, Default)]
pub struct Cache;

#[async_trait]
impl Managed for Cache {
    const KIND: Kind = Kind::new("adf_cache", Duration::from_secs(10 * 60), schema, validate_config);

    async fn plan(&self, _data: Option<&AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        // Null means the default, whatever the prior state says.
        if req.config.get("dynamodb").is_null() {
            let dynamodb = match req.config.get("redis_endpoint") {
                Dynamic::Unknown => Dynamic::Unknown,
                e => e.is_null().into_dynamic(),
            };
            plan.planned.set("dynamodb", dynamodb);
        }
        let changed = |k: &str| req.prior.is_null() || req.prior.get(k) != plan.planned.get(k);
        let keys = ["dynamodb", "redis_endpoint", "redis_auth_token", "redis_tls", "kms_key_arn"];
        if keys.iter().any(|k| changed(k)) {
            for k in ["binding", "client_config", "policy_json", "read_policy_json", "table_name", "table_arn"] {
                plan.planned.set(k, Dynamic::Unknown);
            }
        } else {
            for k in ["table_name", "table_arn"] {
                plan.planned.set(k, req.prior.get(k).clone());
            }
        }
        Diagnostics::new()
    }

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure> {
        let spec = model::<Spec>(&req.planned)?;
        let (ddb, owner) = (&data.aws.dynamodb, owner.owner(OWNER_TAG));
        let table = if spec.dynamodb {
            Some(dynamodb::ensure(ddb, &spec.table(&owner), &owner).await?.arn)
        } else {
            dynamodb::delete(ddb, &table_name(&spec.name), &owner).await?;
            None
        };
        let mut state = req.planned.clone();
        set_outputs(&mut state, &spec, table.as_deref());
        Ok(state)
    }

    async fn observe(&self, data: &AdfData, name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        let spec = model::<Spec>(prior)?;
        if !spec.dynamodb {
            // Only the configuration knows a Redis endpoint: there is nothing in AWS to read.
            return Ok(Some(prior.clone()));
        }
        let Some(table) = dynamodb::describe(&data.aws.dynamodb, &table_name(name)).await? else { return Ok(None) };
        let mut v = prior.clone();
        v.set("kms_key_arn", table.kms_key_arn.clone().into_dynamic());
        v.set("tags_all", untagged(OWNER_TAG, &table.tags).into_dynamic());
        let spec = Spec { kms_key_arn: table.kms_key_arn, ..spec };
        set_outputs(&mut v, &spec, Some(&table.arn));
        Ok(Some(v))
    }

    async fn remove(&self, data: &AdfData, name: &str, _state: &Dynamic, owner: &Ownership) -> Result<(), Failure> {
        Ok(dynamodb::delete(&data.aws.dynamodb, &table_name(name), &owner.owner(OWNER_TAG)).await?)
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        if let Err(m) = validate_store_name(id) {
            let mut d = Diagnostics::new();
            d.error_at(AttributePath::root(), format!("importing {} ({id}): invalid id", Self::KIND.type_name), m);
            return Err(d.into());
        }
        let Some(table) = dynamodb::describe(&data.aws.dynamodb, &table_name(id)).await? else {
            return Err(Diagnostic::error(
                format!("importing {} ({id})", Self::KIND.type_name),
                format!(
                    "no table {} exists. A Redis-only cache has nothing in AWS to import: declare it instead.",
                    table_name(id)
                ),
            )
            .into());
        };
        let owner = imported_owner(OWNER_TAG, "DynamoDB table", &table_name(id), &table.tags)?;
        let prior = Dynamic::object([
            ("name", id.into()),
            ("dynamodb", true.into_dynamic()),
            ("redis_tls", true.into_dynamic()),
            ("redis_endpoint", Dynamic::Null),
            ("redis_auth_token", Dynamic::Null),
            ("kms_key_arn", Dynamic::Null),
        ]);
        match self.observe(data, id, &prior).await? {
            Some(value) => Ok(Imported { value, owner }),
            None => Err(AwsError::Invalid(format!("table {} vanished", table_name(id))).into()),
        }
    }
}
