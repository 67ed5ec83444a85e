//! Kafka topics through the Kafka admin protocol ([`krafka`]): on MSK with IAM (SASL
//! `AWS_MSK_IAM` over TLS, signed with the provider's AWS credentials), or on any broker in
//! plaintext or TLS. Each operation opens one client for its bootstrap servers and closes it.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use aws_types::SdkConfig;
use krafka::Kafka;
use krafka::admin::{
    AdminClient, ConfigOp, ConfigResource, CreatePartitionsOptions, CreateTopicsOptions, DeleteTopicsOptions,
    DescribeConfigsOptions, DescribeTopicsOptions, IncrementalAlterConfigsOptions, NewTopic, TopicDescription,
};
use krafka::auth::{AuthConfig, AwsMskIamCredentials, TlsConfig};
use krafka::error::{ErrorCode, KrafkaError};

use super::AwsError;

/// How the provider talks to the brokers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// Plaintext, no authentication (a local or private broker).
    None,
    /// TLS, no client authentication.
    Tls,
    /// MSK IAM: SASL `AWS_MSK_IAM` over TLS, signed with the provider's credentials.
    Iam,
}

impl Authentication {
    /// The values the `authentication` attribute takes.
    pub const NAMES: [&'static str; 3] = ["NONE", "TLS", "IAM"];

    /// From `NONE`, `TLS` or `IAM`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "NONE" => Some(Self::None),
            "TLS" => Some(Self::Tls),
            "IAM" => Some(Self::Iam),
            _ => None,
        }
    }
}

/// Where the brokers are and how to reach them.
#[derive(Clone, Debug)]
pub struct Connection {
    /// `host:port` of one or more brokers.
    pub bootstrap_servers: Vec<String>,
    /// How to authenticate.
    pub authentication: Authentication,
}

/// A topic as it should be.
#[derive(Clone, Debug)]
pub struct TopicSpec {
    /// The topic name.
    pub name: String,
    /// The partition count.
    pub partitions: i32,
    /// Replicas per partition; None: the broker's `default.replication.factor`.
    pub replication_factor: Option<i16>,
    /// Topic configs set on the topic (overriding the broker's defaults).
    pub config: BTreeMap<String, String>,
}

/// A topic as the cluster has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicState {
    /// The partition count.
    pub partitions: i32,
    /// Replicas of the first partition.
    pub replication_factor: i16,
    /// The configs set on the topic itself (source `DYNAMIC_TOPIC_CONFIG`), not the defaults.
    pub config: BTreeMap<String, String>,
}

/// `DescribeConfigs`' source for a config set on the topic.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
/// How long one admin call may take, retries included.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a new or deleted topic may take to show in every broker's metadata.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected admin client; closed on [`Admin::close`].
pub struct Admin {
    client: AdminClient,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

/// Connects to `c`'s brokers, signing IAM authentication with `sdk`'s credentials and region.
pub async fn connect(c: &Connection, sdk: &SdkConfig) -> Result<Admin, AwsError> {
    let servers = c.bootstrap_servers.join(",");
    let security = match c.authentication {
        Authentication::None => AuthConfig::plaintext(),
        Authentication::Tls => AuthConfig::ssl(TlsConfig::default()),
        Authentication::Iam => {
            let region = sdk.region().map(ToString::to_string).ok_or_else(|| {
                AwsError::Invalid("IAM authentication to MSK signs for a region: set region in the provider".into())
            })?;
            let provider = sdk.credentials_provider().ok_or_else(|| {
                AwsError::Invalid("IAM authentication to MSK needs AWS credentials, and none are configured".into())
            })?;
            AuthConfig::aws_msk_iam_provider(move || {
                let (provider, region) = (provider.clone(), region.clone());
                async move {
                    let creds = provider
                        .provide_credentials()
                        .await
                        .map_err(|e| KrafkaError::auth_with_source("loading AWS credentials for MSK IAM", e))?;
                    let mut c = AwsMskIamCredentials::new(creds.access_key_id(), creds.secret_access_key(), region);
                    if let Some(token) = creds.session_token() {
                        c = c.with_session_token(token);
                    }
                    Ok(c)
                }
            })
        }
    };
    let kafka = Kafka::builder(servers.clone())
        .client_id("terraform-provider-adf")
        .security(security)
        .connect_timeout(Duration::from_secs(10))
        .request_timeout(CALL_TIMEOUT)
        .connect()
        .await
        .map_err(|e| failed("connecting to", &format!("Kafka brokers {servers}"), &e))?;
    Ok(Admin { client: kafka.admin().default_api_timeout(CALL_TIMEOUT) })
}

impl Admin {
    /// Closes the connections.
    pub async fn close(self) {
        let _ = self.client.close().await;
    }

    /// Creates the topic with its configs in one request; an existing topic is
    /// [`AwsError::AlreadyExists`]. Returns once the brokers' metadata shows it.
    pub async fn create(&self, spec: &TopicSpec) -> Result<TopicState, AwsError> {
        let target = target(&spec.name);
        let mut topic = NewTopic::new(&spec.name, spec.partitions, spec.replication_factor.unwrap_or(-1))
            .map_err(|e| AwsError::Invalid(format!("{target}: {e}")))?;
        for (k, v) in &spec.config {
            topic = topic.with_config(k, v);
        }
        let results = self
            .client
            .create_topics([topic], CreateTopicsOptions::default())
            .await
            .map_err(|e| failed("CreateTopics", &target, &e))?;
        one(results, &spec.name).map_err(|e| match broker_code(&e) {
            Some(ErrorCode::TopicAlreadyExists) => AwsError::AlreadyExists {
                op: "CreateTopics",
                target: target.clone(),
                cause: format!("{e}; import it, or choose another name"),
            },
            _ => failed("CreateTopics", &target, &e),
        })?;
        self.settle(&spec.name, true).await?;
        self.describe(&spec.name).await?.ok_or(AwsError::Vanished { kind: "Kafka topic", target: spec.name.clone() })
    }

    /// The topic as the cluster has it; None when it does not exist.
    pub async fn describe(&self, name: &str) -> Result<Option<TopicState>, AwsError> {
        let target = target(name);
        let Some(topic) = self.find(name).await? else { return Ok(None) };
        let resource = ConfigResource::topic(name);
        let configs = self
            .client
            .describe_configs([resource.clone()], DescribeConfigsOptions::default())
            .await
            .map_err(|e| failed("DescribeConfigs", &target, &e))?;
        let entries = match configs.into_iter().find(|(r, _)| *r == resource).map(|(_, e)| e) {
            Some(Ok(entries)) => entries,
            Some(Err(e)) if broker_code(&e) == Some(ErrorCode::UnknownTopicOrPartition) => return Ok(None),
            Some(Err(e)) => return Err(failed("DescribeConfigs", &target, &e)),
            None => {
                return Err(AwsError::Invalid(format!("DescribeConfigs {target}: the broker did not answer for it")));
            }
        };
        let config = entries
            .into_iter()
            .filter(|e| e.config_source == DYNAMIC_TOPIC_CONFIG)
            .filter_map(|e| Some((e.name, e.value?)))
            .collect();
        let partitions = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        let replication_factor =
            topic.partitions.first().map_or(0, |p| i16::try_from(p.replicas.len()).unwrap_or(i16::MAX));
        Ok(Some(TopicState { partitions, replication_factor, config }))
    }

    /// Makes the topic `current` match `spec`: more partitions, and configs set or removed.
    /// Fewer partitions, or another replication factor, is an error (the plan refuses both).
    pub async fn update(&self, spec: &TopicSpec, current: &TopicState) -> Result<(), AwsError> {
        let target = target(&spec.name);
        if spec.partitions < current.partitions {
            return Err(AwsError::Invalid(format!(
                "{target} has {} partitions and Kafka cannot remove partitions (asked for {})",
                current.partitions, spec.partitions
            )));
        }
        let changes = config_changes(&current.config, &spec.config);
        if !changes.is_empty() {
            let resource = ConfigResource::topic(&spec.name);
            let results = self
                .client
                .incremental_alter_configs([(resource.clone(), changes)], IncrementalAlterConfigsOptions::default())
                .await
                .map_err(|e| failed("IncrementalAlterConfigs", &target, &e))?;
            match results.into_iter().find(|(r, _)| *r == resource).map(|(_, r)| r) {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(failed("IncrementalAlterConfigs", &target, &e)),
                None => {
                    return Err(AwsError::Invalid(format!(
                        "IncrementalAlterConfigs {target}: the broker did not answer for it"
                    )));
                }
            }
        }
        if spec.partitions > current.partitions {
            let results = self
                .client
                .create_partitions([(spec.name.as_str(), spec.partitions)], CreatePartitionsOptions::default())
                .await
                .map_err(|e| failed("CreatePartitions", &target, &e))?;
            one(results, &spec.name).map_err(|e| failed("CreatePartitions", &target, &e))?;
        }
        Ok(())
    }

    /// Deletes the topic and waits until the brokers' metadata no longer shows it; one that
    /// is gone already is fine.
    pub async fn delete(&self, name: &str) -> Result<(), AwsError> {
        let target = target(name);
        let results = self
            .client
            .delete_topics([name], DeleteTopicsOptions::default())
            .await
            .map_err(|e| failed("DeleteTopics", &target, &e))?;
        match one(results, name) {
            Ok(()) => self.settle(name, false).await,
            Err(e) if broker_code(&e) == Some(ErrorCode::UnknownTopicOrPartition) => Ok(()),
            Err(e) => Err(failed("DeleteTopics", &target, &e)),
        }
    }

    /// The topic's partitions from the brokers' metadata; None when it does not exist.
    async fn find(&self, name: &str) -> Result<Option<TopicDescription>, AwsError> {
        let described = self
            .client
            .describe_topics([name], DescribeTopicsOptions::default())
            .await
            .map_err(|e| failed("DescribeTopics", &target(name), &e))?;
        match one(described, name) {
            Ok(t) => Ok(Some(t)),
            Err(e) if broker_code(&e) == Some(ErrorCode::UnknownTopicOrPartition) => Ok(None),
            Err(e) => Err(failed("DescribeTopics", &target(name), &e)),
        }
    }

    /// Waits until the topic's existence in the metadata is `exists`.
    async fn settle(&self, name: &str, exists: bool) -> Result<(), AwsError> {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            let found = self.find(name).await?.is_some_and(|t| !t.partitions.is_empty());
            if found == exists {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let state = if exists { "appear" } else { "go" };
                return Err(AwsError::Call {
                    op: "DescribeTopics",
                    target: target(name),
                    cause: format!("the topic did not {state} in the brokers' metadata within {SETTLE_TIMEOUT:?}"),
                    retryable: true,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The config operations that turn `current` into `wanted`: set what differs, delete what
/// `wanted` lacks (the topic then takes the broker's default).
pub fn config_changes(current: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> Vec<ConfigOp> {
    let set = wanted.iter().filter(|(k, v)| current.get(*k) != Some(*v)).map(|(k, v)| ConfigOp::set(k, v));
    let delete = current.keys().filter(|k| !wanted.contains_key(*k)).map(ConfigOp::delete);
    set.chain(delete).collect()
}

fn target(name: &str) -> String {
    format!("Kafka topic {name}")
}

/// The one per-topic result of a call about `name`.
fn one<T>(results: std::collections::HashMap<String, Result<T, KrafkaError>>, name: &str) -> Result<T, KrafkaError> {
    results
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, r)| r)
        .unwrap_or_else(|| Err(KrafkaError::illegal_state(format!("the broker did not answer for topic {name}"))))
}

fn broker_code(e: &KrafkaError) -> Option<ErrorCode> {
    match e {
        KrafkaError::Broker { code, .. } => Some(*code),
        _ => None,
    }
}

/// A failed Kafka call as the services layer's error.
fn failed(op: &'static str, target: &str, e: &KrafkaError) -> AwsError {
    AwsError::Call { op, target: target.to_string(), cause: e.to_string(), retryable: e.is_retriable() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn config_changes_set_what_differs_and_delete_what_is_not_wanted() {
        let current = map(&[("retention.ms", "1000"), ("cleanup.policy", "compact"), ("segment.ms", "60000")]);
        let wanted = map(&[("retention.ms", "2000"), ("segment.ms", "60000"), ("max.message.bytes", "2048")]);
        let ops = config_changes(&current, &wanted);
        assert_eq!(
            ops,
            vec![
                ConfigOp::set("max.message.bytes", "2048"),
                ConfigOp::set("retention.ms", "2000"),
                ConfigOp::delete("cleanup.policy"),
            ]
        );
        assert!(config_changes(&wanted, &wanted).is_empty());
    }

    #[test]
    fn authentication_names_parse() {
        for n in Authentication::NAMES {
            assert!(Authentication::parse(n).is_some(), "{n}");
        }
        assert_eq!(Authentication::parse("iam"), None);
    }
}
