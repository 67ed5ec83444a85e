//! DynamoDB tables converged to a spec: created when missing, adopted only when they carry the
//! owner tag, then billing, encryption, point-in-time recovery, TTL and tags set.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    BillingMode, GlobalSecondaryIndexUpdate, PointInTimeRecoverySpecification, PointInTimeRecoveryStatus,
    ProvisionedThroughput, SseSpecification, SseType, Tag, TimeToLiveSpecification, TimeToLiveStatus,
    UpdateGlobalSecondaryIndexAction,
};

use adf_common::contract::TableSchema;

use super::error::{AwsError, Sent, Target, call};
use super::{Owner, TagChanges};

/// How long one table may take to become active or to disappear, per wait.
const TABLE_WAIT: Duration = Duration::from_secs(30 * 60);

/// The billing mode and, when provisioned, capacities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Billing {
    /// On-demand.
    PayPerRequest,
    /// Provisioned read and write capacity units.
    Provisioned {
        /// Read capacity units.
        read: i64,
        /// Write capacity units.
        write: i64,
    },
}

/// What a table should be.
#[derive(Clone, Debug)]
pub struct TableSpec {
    /// Table name.
    pub name: String,
    /// Keys, index and TTL attribute: the contract of the runtime that reads the table.
    pub schema: TableSchema,
    /// Billing.
    pub billing: Billing,
    /// KMS key ARN; None means the AWS owned key.
    pub kms_key_arn: Option<String>,
    /// Point-in-time recovery.
    pub pitr: bool,
    /// Tags, the owner tag included.
    pub tags: BTreeMap<String, String>,
}

/// A table as DynamoDB describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct TableState {
    /// Table ARN.
    pub arn: String,
    /// Billing.
    pub billing: Billing,
    /// KMS key ARN when encrypted with a customer key.
    pub kms_key_arn: Option<String>,
    /// Point-in-time recovery enabled.
    pub pitr: bool,
    /// Tags, the owner tag included.
    pub tags: BTreeMap<String, String>,
}

fn throughput(b: &Billing) -> Option<ProvisionedThroughput> {
    match b {
        Billing::PayPerRequest => None,
        Billing::Provisioned { read, write } => {
            ProvisionedThroughput::builder().read_capacity_units(*read).write_capacity_units(*write).build().ok()
        }
    }
}

fn billing_mode(b: &Billing) -> BillingMode {
    match b {
        Billing::PayPerRequest => BillingMode::PayPerRequest,
        Billing::Provisioned { .. } => BillingMode::Provisioned,
    }
}

/// Describes table `name`; None when it does not exist.
pub async fn describe(ddb: &Client, name: &str) -> Result<Option<TableState>, AwsError> {
    let table = match ddb.describe_table().table_name(name).send().await {
        Ok(out) => match out.table {
            Some(t) => t,
            None => return Ok(None),
        },
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(None),
        Err(e) => return Err(call("DescribeTable", Target::table(name), &e)),
    };
    let arn = table.table_arn.clone().unwrap_or_default();
    let provisioned =
        table.billing_mode_summary.as_ref().and_then(|s| s.billing_mode.as_ref()) != Some(&BillingMode::PayPerRequest);
    let billing = match (&table.provisioned_throughput, provisioned) {
        (Some(t), true) => Billing::Provisioned {
            read: t.read_capacity_units.unwrap_or_default(),
            write: t.write_capacity_units.unwrap_or_default(),
        },
        _ => Billing::PayPerRequest,
    };
    let kms_key_arn = table
        .sse_description
        .as_ref()
        .filter(|s| s.sse_type.as_ref() == Some(&SseType::Kms))
        .and_then(|s| s.kms_master_key_arn.clone());
    let backups = ddb.describe_continuous_backups().table_name(name).send().await.at(Target::table(name))?;
    let pitr = backups
        .continuous_backups_description
        .and_then(|d| d.point_in_time_recovery_description)
        .and_then(|p| p.point_in_time_recovery_status)
        == Some(PointInTimeRecoveryStatus::Enabled);
    let tags = list_tags(ddb, name, &arn).await?;
    Ok(Some(TableState { arn, billing, kms_key_arn, pitr, tags }))
}

async fn list_tags(ddb: &Client, name: &str, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let mut tags = BTreeMap::new();
    let mut token = None;
    loop {
        let out =
            ddb.list_tags_of_resource().resource_arn(arn).set_next_token(token).send().await.at(Target::table(name))?;
        tags.extend(out.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)));
        token = out.next_token;
        if token.is_none() {
            return Ok(tags);
        }
    }
}

fn sse(kms: Option<&String>) -> SseSpecification {
    match kms {
        Some(k) => SseSpecification::builder().enabled(true).sse_type(SseType::Kms).kms_master_key_id(k).build(),
        None => SseSpecification::builder().enabled(false).build(),
    }
}

/// Creates the table; false when one of that name exists already.
async fn create(ddb: &Client, spec: &TableSpec) -> Result<bool, AwsError> {
    let mut req = ddb
        .create_table()
        .table_name(&spec.name)
        .billing_mode(billing_mode(&spec.billing))
        .set_provisioned_throughput(throughput(&spec.billing))
        .set_key_schema(Some(spec.schema.key_schema().map_err(AwsError::build)?))
        .set_attribute_definitions(Some(spec.schema.attribute_definitions().map_err(AwsError::build)?));
    if let Some(gsi) = spec.schema.global_secondary_index(throughput(&spec.billing)).map_err(AwsError::build)? {
        req = req.global_secondary_indexes(gsi);
    }
    if spec.kms_key_arn.is_some() {
        req = req.sse_specification(sse(spec.kms_key_arn.as_ref()));
    }
    for (k, v) in &spec.tags {
        req = req.tags(Tag::builder().key(k).value(v).build().map_err(AwsError::build)?);
    }
    match req.send().await {
        Ok(_) => Ok(true),
        // Created by a concurrent apply between our describe and create: its tags decide.
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => Ok(false),
        Err(e) => Err(call("CreateTable", Target::table(&spec.name), &e)),
    }
}

async fn wait_active(ddb: &Client, name: &str) -> Result<(), AwsError> {
    ddb.wait_until_table_exists()
        .table_name(name)
        .wait(TABLE_WAIT)
        .await
        .map(|_| ())
        .map_err(|e| AwsError::other("waiting for ACTIVE", name.to_string(), adf_common::error_chain(&e)))
}

/// Creates the table tagged with `owner` (`spec.tags` carry it), or takes the one `owner`
/// owns, then converges it to `spec`. CreateTable is atomic, so of two applies racing for a
/// name exactly one gets the table.
pub async fn ensure(ddb: &Client, spec: &TableSpec, owner: &Owner) -> Result<TableState, AwsError> {
    if describe(ddb, &spec.name).await?.is_none() && create(ddb, spec).await? {
        owner.made_one();
    }
    // Described once ACTIVE: a table being created answers some of the calls it takes.
    wait_active(ddb, &spec.name).await?;
    let current = describe(ddb, &spec.name)
        .await?
        .ok_or_else(|| AwsError::Vanished { kind: "DynamoDB table", target: spec.name.clone() })?;
    owner.check("DynamoDB table", &spec.name, &current.tags)?;
    converge(ddb, spec, &current).await?;
    describe(ddb, &spec.name)
        .await?
        .ok_or_else(|| AwsError::Vanished { kind: "DynamoDB table", target: spec.name.clone() })
}

async fn converge(ddb: &Client, spec: &TableSpec, current: &TableState) -> Result<(), AwsError> {
    let name = spec.name.as_str();
    if current.billing != spec.billing {
        let mut req = ddb
            .update_table()
            .table_name(name)
            .billing_mode(billing_mode(&spec.billing))
            .set_provisioned_throughput(throughput(&spec.billing));
        if let (Some(ix), Some(t)) = (&spec.schema.index, throughput(&spec.billing)) {
            let update = UpdateGlobalSecondaryIndexAction::builder()
                .index_name(ix.name)
                .provisioned_throughput(t)
                .build()
                .map_err(AwsError::build)?;
            req = req.global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().update(update).build());
        }
        req.send().await.map_err(|e| call("UpdateTable (billing)", Target::table(name), &e))?;
        wait_active(ddb, name).await?;
    }
    if current.kms_key_arn != spec.kms_key_arn {
        ddb.update_table()
            .table_name(name)
            .sse_specification(sse(spec.kms_key_arn.as_ref()))
            .send()
            .await
            .map_err(|e| call("UpdateTable (encryption)", Target::table(name), &e))?;
        wait_active(ddb, name).await?;
    }
    if current.pitr != spec.pitr {
        let pitr = PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(spec.pitr)
            .build()
            .map_err(AwsError::build)?;
        ddb.update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(pitr)
            .send()
            .await
            .at(Target::table(name))?;
    }
    if let Some(ttl) = spec.schema.ttl {
        ensure_ttl(ddb, name, ttl).await?;
    }
    sync_tags(ddb, name, &current.arn, &current.tags, &spec.tags).await
}

async fn ensure_ttl(ddb: &Client, name: &str, attribute: &str) -> Result<(), AwsError> {
    let out = ddb.describe_time_to_live().table_name(name).send().await.at(Target::table(name))?;
    let d = out.time_to_live_description;
    let on = d.as_ref().is_some_and(|d| {
        matches!(d.time_to_live_status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling))
            && d.attribute_name.as_deref() == Some(attribute)
    });
    if on {
        return Ok(());
    }
    let spec =
        TimeToLiveSpecification::builder().enabled(true).attribute_name(attribute).build().map_err(AwsError::build)?;
    ddb.update_time_to_live().table_name(name).time_to_live_specification(spec).send().await.at(Target::table(name))?;
    Ok(())
}

async fn sync_tags(
    ddb: &Client,
    name: &str,
    arn: &str,
    current: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let changes = TagChanges::new(current, wanted);
    if !changes.stale.is_empty() {
        ddb.untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(changes.stale))
            .send()
            .await
            .at(Target::table(name))?;
    }
    if !changes.set.is_empty() {
        let changed = changes.set.iter().map(|(k, v)| Tag::builder().key(k).value(v).build());
        let changed = changed.collect::<Result<Vec<_>, _>>().map_err(AwsError::build)?;
        ddb.tag_resource().resource_arn(arn).set_tags(Some(changed)).send().await.at(Target::table(name))?;
    }
    Ok(())
}

/// Deletes table `name` when `owner` owns it and waits until it is gone; a table already gone,
/// or someone else's, is left alone.
pub async fn delete(ddb: &Client, name: &str, owner: &Owner) -> Result<(), AwsError> {
    match describe(ddb, name).await? {
        Some(t) if owner.owns(&t.tags) => {}
        Some(_) => {
            tracing::warn!(table = name, "not deleting a DynamoDB table that another owner tagged");
            return Ok(());
        }
        None => return Ok(()),
    }
    match ddb.delete_table().table_name(name).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(()),
        Err(e) => return Err(call("DeleteTable", Target::table(name), &e)),
    }
    ddb.wait_until_table_not_exists()
        .table_name(name)
        .wait(TABLE_WAIT)
        .await
        .map(|_| ())
        .map_err(|e| AwsError::other("waiting for deletion", name.to_string(), adf_common::error_chain(&e)))
}
