//! `adf_kafka_topic`: a Kafka topic on MSK (IAM authentication) or any broker, managed through
//! the Kafka admin protocol: partitions that only grow, a replication factor fixed at create,
//! and topic configs (`retention.ms`, ...) whose drift shows in the plan.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tfplug::{
    ApplyRequest, Attribute, AttributePath, Block, Check, Diagnostic, Diagnostics, Dynamic, IntoDynamic, Nesting,
    ObjectReader, Plan, PlanRequest, Schema, Type, Value,
};

use super::driver::attributes::{check_name, output, partition_change};
use super::driver::{Failure, Imported, Kind, Managed, model, timeouts_block};
use crate::aws::kafka::{self, Admin, Authentication, Connection, TopicSpec, TopicState};
use crate::aws::{AwsError, Ownership};
use crate::config::AdfData;

/// The marker under which a create records that the topic may exist (a lost answer), so
/// the failed create is saved and the next apply replaces it. Topics carry no tags.
const OWNER_TAG: &str = "adf:kafka-topic";
/// Kafka's longest topic name.
const MAX_NAME: usize = 249;
/// Topic configs of Kafka 3.x and 4.x; another key is a warning (the broker refuses keys it
/// does not know at apply).
const TOPIC_CONFIGS: [&str; 34] = [
    "cleanup.policy",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.ms",
];

/// What a wholly known plan asks for.
#[derive(Debug, Deserialize)]
struct Spec {
    name: String,
    bootstrap_servers: Vec<String>,
    authentication: String,
    partitions: i64,
    /// Unknown on create when the configuration leaves it to the broker.
    replication_factor: Value<i64>,
    #[serde(default)]
    config: Option<BTreeMap<String, String>>,
}

impl Spec {
    fn connection(&self) -> Connection {
        connection(self.bootstrap_servers.clone(), &self.authentication)
    }

    fn topic(&self) -> TopicSpec {
        TopicSpec {
            name: self.name.clone(),
            partitions: i32::try_from(self.partitions).unwrap_or(i32::MAX),
            replication_factor: self
                .replication_factor
                .clone()
                .into_known()
                .map(|r| i16::try_from(r).unwrap_or(i16::MAX)),
            config: self.config.clone().unwrap_or_default(),
        }
    }
}

fn connection(bootstrap_servers: Vec<String>, authentication: &str) -> Connection {
    Connection {
        bootstrap_servers,
        authentication: Authentication::parse(authentication).unwrap_or(Authentication::Iam),
    }
}

fn schema() -> Schema {
    Schema::new(
        0,
        Block::new(
            "A Kafka topic, on an MSK cluster (IAM authentication, the default) or any Kafka broker, managed \
             through the Kafka admin protocol. Partitions only grow; the replication factor is fixed when the topic \
             is made; `config` holds the topic's own settings, and settings changed outside Terraform show in the \
             plan.",
        )
        .attribute(
            Attribute::required(
                "name",
                Type::String,
                "Topic name: letters, digits, `.`, `_` and `-`, up to 249 characters. Changing it replaces the \
                 topic (and its records).",
            )
            .requires_replace(),
        )
        .required(
            "bootstrap_servers",
            Type::list(Type::String),
            "Brokers to connect to, as `host:port`, such as an MSK cluster's IAM bootstrap brokers (port 9098). \
             Changing them reconnects; the topic stays.",
        )
        .defaulted(
            "authentication",
            Type::String,
            "`IAM` (default: MSK IAM access control, SASL over TLS signed with the provider's AWS credentials; the \
             caller needs `kafka-cluster:Connect`, `CreateTopic`, `DescribeTopic`, `AlterTopic`, `DeleteTopic`, \
             `DescribeTopicDynamicConfiguration` and `AlterTopicDynamicConfiguration` on the cluster and topic), `TLS` (TLS without client authentication) or `NONE` \
             (plaintext, for a local or private broker).",
            "IAM",
        )
        .check(Check::OneOf(&Authentication::NAMES))
        .required(
            "partitions",
            Type::Number,
            "Partition count. It can grow (keys then map to other partitions) but never shrink.",
        )
        .check(Check::Range(1, 200_000))
        .optional_computed(
            "replication_factor",
            Type::Number,
            "Replicas of each partition. Null: the broker's `default.replication.factor`. Fixed once the topic \
             exists.",
        )
        .check(Check::Range(1, 32))
        .optional(
            "config",
            Type::map(Type::String),
            "Topic configs, such as `{ \"retention.ms\" = \"86400000\", \"cleanup.policy\" = \"compact\" }`. Keys \
             not set here take the broker's defaults; a key set outside Terraform shows as drift and is removed on \
             apply.",
        )
        .attribute(output("id", "Same as `name`."))
        .block("timeouts", Nesting::Single, timeouts_block("2m")),
    )
}

/// Checks a Kafka topic name.
fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("{name:?} must be 1 to {MAX_NAME} characters."));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a topic name Kafka accepts."));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(format!("{name:?} may hold only letters, digits, `.`, `_` and `-`."));
    }
    Ok(())
}

/// Checks a `host:port` bootstrap server.
fn validate_server(server: &str) -> Result<(), String> {
    let Some((host, port)) = server.rsplit_once(':') else {
        return Err(format!("{server:?} is not `host:port`."));
    };
    if host.is_empty() || host.contains(['/', ' ', ',']) {
        return Err(format!("{server:?} has no valid host: write `host:port`, without a scheme."));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{server:?} has no valid port.")),
    }
}

fn validate_config(config: &Dynamic) -> Diagnostics {
    let mut d = Diagnostics::new();
    let root = AttributePath::root();
    check_name(&mut d, config, "topic", validate_topic_name);
    if let Dynamic::List(servers) = config.get("bootstrap_servers") {
        if servers.is_empty() {
            d.error_at(root.attr("bootstrap_servers"), "No bootstrap servers", "Name at least one broker.");
        }
        for (i, s) in (0i64..).zip(servers) {
            if let Dynamic::String(s) = s
                && let Err(m) = validate_server(s)
            {
                d.error_at(root.attr("bootstrap_servers").index(i), "Invalid bootstrap server", m);
            }
        }
    }
    if let Dynamic::Map(configs) = config.get("config") {
        for key in configs.keys() {
            if !TOPIC_CONFIGS.contains(&key.as_str()) {
                d.push(
                    Diagnostic::warning(
                        "Unknown topic config",
                        format!(
                            "{key:?} is not a topic config of Kafka 3.x or 4.x; the broker refuses keys it does not \
                             know when the plan is applied. Known keys include retention.ms, retention.bytes, \
                             cleanup.policy, segment.ms, min.insync.replicas and max.message.bytes."
                        ),
                    )
                    .at(root.attr("config").key(key)),
                );
            }
        }
    }
    d
}

/// The state Read reports: what the cluster shows over `prior`.
fn observed_state(prior: &Dynamic, t: &TopicState) -> Dynamic {
    let mut v = prior.clone();
    let config = if t.config.is_empty() && prior.get("config").is_null() {
        Dynamic::Null
    } else {
        t.config.clone().into_dynamic()
    };
    v.set("partitions", i64::from(t.partitions).into_dynamic());
    v.set("replication_factor", i64::from(t.replication_factor).into_dynamic());
    v.set("config", config);
    v
}

/// Runs `work` with a client connected for `state`'s brokers, closing it after.
async fn with_admin<T>(
    data: &AdfData,
    c: &Connection,
    work: impl AsyncFnOnce(&Admin) -> Result<T, AwsError>,
) -> Result<T, AwsError> {
    let admin = kafka::connect(c, &data.aws.sdk).await?;
    let result = work(&admin).await;
    admin.close().await;
    result
}

/// The connection a state describes.
fn connection_of(state: &Dynamic) -> Result<Connection, Failure> {
    let r = ObjectReader::new(state);
    let servers = r.get::<Value<Vec<String>>>("bootstrap_servers")?.known_or(Vec::new());
    let auth = r.get::<Value<String>>("authentication")?.known_or("IAM".into());
    Ok(connection(servers, &auth))
}

/// An import id: `[none|tls|iam://]host:port[,host:port...]/topic`.
fn parse_import_id(id: &str) -> Result<(Connection, String), String> {
    let usage = "The import id is `<scheme>://<host:port>[,<host:port>...]/<topic>`, the scheme being `iam` \
                 (default), `tls` or `none`, such as `iam://b-1.orders.kafka.us-east-1.amazonaws.com:9098/orders`.";
    let (auth, rest) = match id.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_uppercase(), rest),
        None => ("IAM".to_string(), id),
    };
    if Authentication::parse(&auth).is_none() {
        return Err(format!("unknown scheme {:?}. {usage}", auth.to_ascii_lowercase()));
    }
    let Some((servers, topic)) = rest.rsplit_once('/') else { return Err(usage.to_string()) };
    let servers: Vec<String> = servers.split(',').map(str::to_string).collect();
    for s in &servers {
        validate_server(s).map_err(|m| format!("{m} {usage}"))?;
    }
    validate_topic_name(topic)?;
    Ok((connection(servers, &auth), topic.to_string()))
}

/// The `adf_kafka_topic` resource.
#[derive(Debug, Default)]
pub struct KafkaTopic;

#[async_trait]
impl Managed for KafkaTopic {
    const KIND: Kind = Kind::new("adf_kafka_topic", Duration::from_secs(2 * 60), schema, validate_config);

    async fn plan(&self, _data: Option<&AdfData>, req: &PlanRequest, plan: &mut Plan) -> Diagnostics {
        let mut d = Diagnostics::new();
        // A new name replaces the topic: then anything goes.
        if req.prior.get("name") != plan.planned.get("name") {
            return d;
        }
        let number = |v: &Dynamic, k: &str| ObjectReader::new(v).get::<Value<i64>>(k).ok()?.into_known();
        if let (Some(prior), Some(planned)) = (number(&req.prior, "partitions"), number(&plan.planned, "partitions")) {
            d.extend(partition_change(prior, planned));
        }
        if let (Some(prior), Some(planned)) =
            (number(&req.prior, "replication_factor"), number(&plan.planned, "replication_factor"))
            && prior != planned
        {
            d.error_at(
                AttributePath::root().attr("replication_factor"),
                "The replication factor is fixed",
                format!(
                    "The topic has {prior} replicas per partition. Kafka changes that only by reassigning partitions \
                     (kafka-reassign-partitions), which this provider does not do; keep {prior}, or create a new \
                     topic and move producers and consumers to it."
                ),
            );
        }
        d
    }

    async fn converge(&self, data: &AdfData, req: &ApplyRequest, owner: &Ownership) -> Result<Dynamic, Failure> {
        let spec = model::<Spec>(&req.planned)?;
        let topic = spec.topic();
        let creating = req.prior.value.is_null();
        let state = with_admin(data, &spec.connection(), async |admin| match admin.describe(&topic.name).await? {
            // New, or read found it gone (then made again under this instance).
            None => {
                admin.create(&topic).await.inspect_err(|e| {
                    // An answer lost after the broker made it: saved, so the next apply replaces it.
                    if e.is_retryable() {
                        owner.owner(OWNER_TAG).made_one();
                    }
                })
            }
            Some(_) if creating => Err(AwsError::AlreadyExists {
                op: "CreateTopics",
                target: format!("Kafka topic {}", topic.name),
                cause: "the topic exists already; import it, or choose another name".into(),
            }),
            Some(current) => {
                admin.update(&topic, &current).await?;
                Ok(TopicState { partitions: topic.partitions, config: topic.config.clone(), ..current })
            }
        })
        .await?;
        let mut v = req.planned.clone();
        v.set("replication_factor", i64::from(state.replication_factor).into_dynamic());
        Ok(v)
    }

    async fn observe(&self, data: &AdfData, name: &str, prior: &Dynamic) -> Result<Option<Dynamic>, Failure> {
        let found = with_admin(data, &connection_of(prior)?, async |admin| admin.describe(name).await).await?;
        Ok(found.map(|t| observed_state(prior, &t)))
    }

    async fn remove(&self, data: &AdfData, name: &str, state: &Dynamic, _owner: &Ownership) -> Result<(), Failure> {
        Ok(with_admin(data, &connection_of(state)?, async |admin| admin.delete(name).await).await?)
    }

    async fn import(&self, data: &AdfData, id: &str) -> Result<Imported, Failure> {
        let (c, name) = parse_import_id(id)
            .map_err(|m| Diagnostic::error(format!("importing {} ({id}): invalid id", Self::KIND.type_name), m))?;
        let Some(t) = with_admin(data, &c, async |admin| admin.describe(&name).await).await? else {
            return Err(
                AwsError::Invalid(format!("no topic {name} exists on {}", c.bootstrap_servers.join(","))).into()
            );
        };
        let auth = Authentication::NAMES
            .into_iter()
            .find(|n| Authentication::parse(n) == Some(c.authentication))
            .unwrap_or("IAM");
        let prior = Dynamic::object([
            ("name", name.as_str().into()),
            ("bootstrap_servers", c.bootstrap_servers.clone().into_dynamic()),
            ("authentication", auth.into()),
        ]);
        // A topic carries no tags: the importing instance owns it from now on.
        Ok(Imported { value: observed_state(&prior, &t), owner: name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka() {
        for ok in ["orders", "a.b_c-D9", &"t".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"t".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn import_ids_carry_the_brokers_and_the_scheme() {
        let (c, topic) = parse_import_id("none://127.0.0.1:9092,127.0.0.1:9093/orders").expect("valid");
        assert_eq!(topic, "orders");
        assert_eq!(c.bootstrap_servers, ["127.0.0.1:9092", "127.0.0.1:9093"]);
        assert_eq!(c.authentication, Authentication::None);
        let (c, _) = parse_import_id("b-1.x.kafka.us-east-1.amazonaws.com:9098/orders").expect("valid");
        assert_eq!(c.authentication, Authentication::Iam);
        for bad in ["orders", "ftp://h:1/orders", "h/orders", "h:1/", "h:1/a b"] {
            assert!(parse_import_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_input_is_a_diagnostic_at_the_attribute() {
        let config = Dynamic::object([
            ("name", "bad name".into()),
            ("bootstrap_servers", vec!["broker".to_string(), "h:9092".into()].into_dynamic()),
            ("authentication", "SCRAM".into()),
            ("partitions", 0i64.into_dynamic()),
            ("config", Dynamic::Map([("retention.msx".to_string(), "1".into())].into())),
        ]);
        let d = KafkaTopic::KIND.checks(&config);
        let at = |severity| -> Vec<String> {
            d.0.iter()
                .filter(|d| d.severity == severity)
                .filter_map(|d| d.attribute.as_ref().map(ToString::to_string))
                .collect()
        };
        let mut errors = at(tfplug::Severity::Error);
        errors.sort();
        assert_eq!(errors, ["authentication", "bootstrap_servers[0]", "name", "partitions"]);
        assert_eq!(at(tfplug::Severity::Warning), ["config[\"retention.msx\"]"]);
    }

    #[test]
    fn read_keeps_an_empty_config_and_shows_configs_set_outside() {
        let t = TopicState { partitions: 3, replication_factor: 1, config: BTreeMap::new() };
        let prior = Dynamic::object([("name", "t".into()), ("config", Dynamic::Null)]);
        assert_eq!(observed_state(&prior, &t).get("config"), &Dynamic::Null);
        let t = TopicState { config: [("retention.ms".to_string(), "5".to_string())].into(), ..t };
        let v = observed_state(&prior, &t);
        assert_eq!(v.get("config").get("retention.ms"), &Dynamic::from("5"));
        assert_eq!(v.get("partitions"), &3i64.into_dynamic());
    }
}
