//! `adf_kafka_cluster`: an MSK cluster, serverless (the default) or provisioned, with IAM
//! authentication over TLS. Its `bootstrap_brokers` feed `adf_kafka_topic`. A provisioned
//! cluster's version, broker type, storage and broker count change in place, one MSK
//! operation at a time; the rest replaces the cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Check, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting,
    ObjectReader, Plan, PlanRequest, Schema, Type, Value,
};

use super::driver::attributes::{check_name, output, tags_and_id};
use super::driver::{Failure, Imported, Kind, Managed, model, timeouts_block};
use crate::aws::msk::{self, Brokers, ClusterSpec, ClusterState};
use crate::aws::{AwsError, Owner, Ownership, imported_owner, untagged};
use crate::config::AdfData;

/// Tag marking the cluster this resource made; its value is the instance's owner id.
const OWNER_TAG: &str = "adf:kafka-cluster";
/// EBS storage per broker unless set, in GiB (MSK's console default).
const DEFAULT_VOLUME_SIZE: i64 = 100;

/// What a wholly known plan asks for.
#[derive(Clone, Debug, Deserialize)]
struct Spec {
    name: String,
    subnet_ids: Vec<String>,
    security_group_ids: Vec<String>,
    provisioned: Option<ProvisionedModel>,
    #[serde(default)]
    tags_all: BTreeMap<String, String>,
}

/// The `provisioned` attribute.
#[derive(Clone, Debug, Deserialize)]
struct ProvisionedModel {
    kafka_version: String,
    instance_type: String,
    broker_count: i64,
    volume_size: i64,
}

impl Spec {
    fn cluster(&self, owner: &Owner) -> ClusterSpec {
        ClusterSpec {
            name: self.name.clone(),
            provisioned: self.provisioned.as_ref().map(|p| Brokers {
                kafka_version: p.kafka_version.clone(),
                instance_type: p.instance_type.clone(),
                count: i32::try_from(p.broker_count).unwrap_or(i32::MAX),
                volume_size: i32::try_from(p.volume_size).unwrap_or(i32::MAX),
            }),
            subnet_ids: self.subnet_ids.clone(),
            security_group_ids: self.security_group_ids.clone(),
            tags: owner.tagged(&self.tags_all),
        }
    }
}

fn schema() -> Schema {
    let provisioned = Attribute::nested(
        "provisioned",
        "Brokers you size yourself. Omit for MSK Serverless, which sizes itself and bills by use. Adding or \
         removing this block replaces the cluster.",
        vec![
            Attribute::required(
                "kafka_version",
                Type::String,
                "Apache Kafka version, such as `3.6.0`. Upgrades in place.",
            ),
            Attribute::required(
                "instance_type",
                Type::String,
                "Broker instance type, such as `kafka.m7g.large`. Changes in place, one broker at a time.",
            ),
            Attribute::required(
                "broker_count",
                Type::Number,
                "How many brokers: a multiple of the number of subnets. It can grow in place, never shrink.",
            )
            .check(Check::Range(1, 30)),
            Attribute::with_default(
                "volume_size",
                Type::Number,
                "EBS storage per broker in GiB (default 100). It can grow in place, never shrink.",
                DEFAULT_VOLUME_SIZE.into_dynamic(),
            )
            .check(Check::Range(1, 16_384)),
        ],
    );
    Schema::new(
        0,
        Block::new(
            "An Amazon MSK cluster, serverless (the default) or provisioned. Clients authenticate with IAM over \
             TLS: give its `bootstrap_brokers` to `adf_kafka_topic` (with `authentication = \"IAM\"`) and to \
             producers and consumers whose role may `kafka-cluster:Connect`.",
        )
        .attribute(
            Attribute::required(
                "name",
                Type::String,
                "Cluster name: letters, digits and `-`, starting with a letter, at most 64 characters. Changing it \
                 replaces the cluster.",
            )
            .requires_replace(),
        )
        .attribute(
            Attribute::required(
                "subnet_ids",
                Type::list(Type::String),
                "Subnets for the brokers' endpoints, in 2 or 3 availability zones (2 to 5 for serverless). \
                 Changing them replaces the cluster.",
            )
            .requires_replace(),
        )
        .attribute(
            Attribute::required(
                "security_group_ids",
                Type::list(Type::String),
                "Security groups that decide who may reach the brokers (1 to 5). Changing them replaces the cluster.",
            )
            .requires_replace(),
        )
        .attribute(provisioned)
        .attributes(tags_and_id())
        .attribute(output("arn", "The cluster's ARN."))
        .attribute(
            Attribute::computed(
                "bootstrap_brokers",
                Type::list(Type::String),
                "The brokers to connect to with IAM over TLS (port 9098), as `host:port`.",
            )
            .stable(),
        )
        .block("timeouts", Nesting::Single, timeouts_block("120m")),
    )
}

/// Checks an MSK cluster name.
fn validate_cluster_name(name: &str) -> Result<(), String> {
    let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !(1..=64).contains(&name.len())
        || !starts_with_letter
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(format!("{name:?} must be 1 to 64 letters, digits and `-`, starting with a letter."));
    }
    Ok(())
}

fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    let root = AttributePath::root();
    check_name(&mut d, config, "cluster", validate_cluster_name);
    let r = ObjectReader::new(config);
    let provisioned = r.object("provisioned");
    let serverless = provisioned.is_null();
    // How many items a known list holds (its items may still be unknown).
    let count = |name: &str| match config.get(name) {
        Dynamic::List(items) => Some(items.len()),
        _ => None,
    };
    if let Some(subnets) = count("subnet_ids") {
        let (lo, hi) = if serverless { (2, 5) } else { (2, 3) };
        if !(lo..=hi).contains(&subnets) {
            let kind = if serverless { "A serverless cluster" } else { "A provisioned cluster" };
            d.error_at(
                root.attr("subnet_ids"),
                "Wrong number of subnets",
                format!("{kind} takes {lo} to {hi} subnets, each in its own availability zone; got {subnets}."),
            );
        }
        if let Ok(Value::Known(brokers)) = provisioned.get::<Value<i64>>("broker_count")
            && subnets > 0
            && brokers % subnets as i64 != 0
        {
            d.error_at(
                root.attr("provisioned").attr("broker_count"),
                "Brokers must spread evenly",
                format!(
                    "MSK puts the same number of brokers in each subnet: {brokers} brokers do not divide over \
                     {subnets} subnets."
                ),
            );
        }
    }
    if let Some(groups) = count("security_group_ids")
        && !(1..=5).contains(&groups)
    {
        d.error_at(
            root.attr("security_group_ids"),
            "Wrong number of security groups",
            format!("A cluster takes 1 to 5 security groups; got {groups}."),
        );
    }
    d
}

/// The `provisioned` value of `brokers`.
fn provisioned_value(brokers: Option<&Brokers>) -> Dynamic {
    brokers.map_or(Dynamic::Null, |b| {
        Dynamic::object([
            ("kafka_version", b.kafka_version.clone().into_dynamic()),
            ("instance_type", b.instance_type.clone().into_dynamic()),
            ("broker_count", i64::from(b.count).into_dynamic()),
            ("volume_size", i64::from(b.volume_size).into_dynamic()),
        ])
    })
}

/// The state Read reports: what MSK shows. `brokers` are the bootstrap brokers, when known.
fn observed_state(prior: &Dynamic, name: &str, c: &ClusterState, brokers: Option<Vec<String>>) -> Dynamic {
    let mut v = prior.clone();
    for (k, val) in [
        ("name", name.into_dynamic()),
        ("subnet_ids", c.subnet_ids.clone().into_dynamic()),
        ("security_group_ids", c.security_group_ids.clone().into_dynamic()),
        ("provisioned", provisioned_value(c.provisioned.as_ref())),
        ("tags_all", untagged(OWNER_TAG, &c.tags).into_dynamic()),
        ("arn", c.arn.clone().into_dynamic()),
    ] {
        v.set(k, val);
    }
    if let Some(brokers) = brokers {
        v.set("bootstrap_brokers", brokers.into_dynamic());
    }
    v
}

/// Cluster `c` (named `name`) as Read and import report it, with its brokers.
async fn observed(data: &AdfData, name: &str, c: &ClusterState, prior: &Dynamic) -> Result<Dynamic, AwsError> {
    // Only an active cluster names its brokers; while it changes, the last ones known stand.
    let brokers = match c.state.as_str() {
        "ACTIVE" => Some(msk::bootstrap_brokers(&data.aws.kafka, name, &c.arn).await?),
        _ => None,
    };
    Ok(observed_state(prior, name, c, brokers))
}

/// An error at `attr` of `provisioned` when it would shrink from `prior` to `planned`.
fn check_growth(d: &mut Diagnostics, attr: &str, (prior, planned): (i64, i64), unit: &str, why: &str) {
    if planned < prior {
        d.error_at(
            AttributePath::root().attr("provisioned").attr(attr),
            format!("{attr} cannot shrink"),
            format!("The cluster has {prior}{unit}; MSK cannot go down to {planned}{unit}: {why}."),
        );
    }
}

/// The `adf_kafka_cluster` resource.
#[derive(Debug, Default)]
pub struct KafkaCluster;

#[async_trait]
impl Managed for KafkaCluster {
    const KIND: Kind = Kind::new("adf_kafka_cluster", Duration::from_secs(120 * 60), schema, validate_config);

    async fn plan(&self, _data: Option<&AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        let mut d = Diagnostics::new();
        if req.prior.is_null() || plan.planned.is_null() {
            return d;
        }
        // A replacement (a new name, subnets or security groups): then anything goes.
        if !plan.requires_replace.is_empty() {
            return d;
        }
        let (prior, planned) = (req.prior.get("provisioned"), plan.planned.get("provisioned"));
        // Serverless and provisioned are different kinds of cluster.
        if prior.is_null() != planned.is_null() {
            plan.requires_replace.push(AttributePath::root().attr("provisioned"));
            return d;
        }
        let number = |v: &Dynamic, k: &str| ObjectReader::new(v).get::<Value<i64>>(k).ok()?.into_known();
        let pair = |k: &str| Some((number(prior, k)?, number(planned, k)?));
        let (brokers, volume) = (pair("broker_count"), pair("volume_size"));
        if let Some(brokers) = brokers {
            check_growth(&mut d, "broker_count", brokers, " brokers", "keep them, or make a new cluster");
        }
        if let Some(volume) = volume {
            check_growth(&mut d, "volume_size", volume, " GiB per broker", "EBS volumes only grow");
        }
        if brokers.is_some_and(|(from, to)| from != to) {
            // More brokers, more bootstrap brokers.
            plan.planned.set("bootstrap_brokers", Dynamic::Unknown);
        }
        d
    }

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure> {
        let spec = model::<Spec>(&req.planned)?;
        let owner = owner.owner(OWNER_TAG);
        let c = msk::ensure(&data.aws.kafka, &spec.cluster(&owner), &owner).await?;
        let brokers = msk::bootstrap_brokers(&data.aws.kafka, &spec.name, &c.arn).await?;
        let mut state = req.planned.clone();
        state.set("arn", c.arn.into_dynamic());
        state.set("bootstrap_brokers", brokers.into_dynamic());
        Ok(state)
    }

    async fn observe(&self, data: &AdfData, name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        let Some(c) = msk::find(&data.aws.kafka, name).await? else { return Ok(None) };
        Ok(Some(observed(data, name, &c, prior).await?))
    }

    async fn remove(&self, data: &AdfData, name: &str, _state: &Dynamic, owner: &Ownership) -> Result<(), Failure> {
        Ok(msk::delete(&data.aws.kafka, name, &owner.owner(OWNER_TAG)).await?)
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        if let Err(m) = validate_cluster_name(id) {
            let mut d = Diagnostics::new();
            d.error_at(AttributePath::root(), format!("importing {} ({id}): invalid id", Self::KIND.type_name), m);
            return Err(d.into());
        }
        let Some(c) = msk::find(&data.aws.kafka, id).await? else {
            return Err(Diagnostic::error(
                format!("importing {} ({id})", Self::KIND.type_name),
                format!("no MSK cluster named {id} exists"),
            )
            .into());
        };
        let owner = imported_owner(OWNER_TAG, "MSK cluster", id, &c.tags)?;
        let value = observed(data, id, &c, &Dynamic::object([("name", id.into())])).await?;
        Ok(Imported { value, owner })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(subnets: usize, provisioned: Option<i64>) -> Dynamic {
        let subnets: Vec<String> = (0..subnets).map(|i| format!("subnet-{i}")).collect();
        let provisioned = provisioned.map_or(Dynamic::Null, |count| {
            Dynamic::object([
                ("kafka_version", "3.6.0".into()),
                ("instance_type", "kafka.m7g.large".into()),
                ("broker_count", count.into_dynamic()),
                ("volume_size", 100i64.into_dynamic()),
            ])
        });
        Dynamic::object([
            ("name", "events".into()),
            ("subnet_ids", subnets.into_dynamic()),
            ("security_group_ids", vec!["sg-1".to_string()].into_dynamic()),
            ("provisioned", provisioned),
        ])
    }

    fn errors_at(d: &Diagnostics) -> Vec<AttributePath> {
        d.0.iter().filter_map(|d| d.attribute.clone()).collect()
    }

    #[test]
    fn cluster_names_follow_msk() {
        for ok in ["e", "events-1", &format!("a{}", "b".repeat(63))] {
            assert!(validate_cluster_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1events", "ev_ents", "ev ents", &"a".repeat(65)] {
            assert!(validate_cluster_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subnets_and_brokers_are_checked_at_plan_time() {
        assert!(KafkaCluster::KIND.checks(&config(2, None)).0.is_empty());
        assert!(KafkaCluster::KIND.checks(&config(3, Some(6))).0.is_empty());
        let root = AttributePath::root();
        assert_eq!(errors_at(&KafkaCluster::KIND.checks(&config(1, None))), [root.attr("subnet_ids")]);
        assert_eq!(errors_at(&KafkaCluster::KIND.checks(&config(4, Some(4)))), [root.attr("subnet_ids")]);
        assert_eq!(
            errors_at(&KafkaCluster::KIND.checks(&config(2, Some(3)))),
            [root.attr("provisioned").attr("broker_count")]
        );
        let mut bad = config(2, None);
        bad.set("name", "9lives".into());
        bad.set("security_group_ids", Vec::<String>::new().into_dynamic());
        assert_eq!(errors_at(&KafkaCluster::KIND.checks(&bad)), [root.attr("name"), root.attr("security_group_ids")]);
    }

    #[test]
    fn a_description_reads_as_the_configuration_wrote_it() {
        let c = ClusterState {
            arn: "arn:aws:kafka:us-east-1:1:cluster/events/x".into(),
            state: "ACTIVE".into(),
            provisioned: Some(Brokers {
                kafka_version: "3.6.0".into(),
                instance_type: "kafka.m7g.large".into(),
                count: 2,
                volume_size: 100,
            }),
            subnet_ids: vec!["subnet-0".into(), "subnet-1".into()],
            security_group_ids: vec!["sg-1".into()],
            tags: BTreeMap::from([(OWNER_TAG.to_string(), "me".to_string())]),
            ..ClusterState::default()
        };
        let v = observed_state(&config(2, Some(2)), "events", &c, Some(vec!["b-1:9098".into()]));
        for k in ["name", "subnet_ids", "security_group_ids", "provisioned"] {
            assert_eq!(v.get(k), config(2, Some(2)).get(k), "{k}");
        }
        assert_eq!(v.get("tags_all"), &BTreeMap::<String, String>::new().into_dynamic(), "the owner tag is ours");
        assert_eq!(v.get("bootstrap_brokers"), &vec!["b-1:9098".to_string()].into_dynamic());
    }
}
