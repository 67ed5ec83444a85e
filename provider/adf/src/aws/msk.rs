//! MSK clusters, serverless or provisioned, through the MSK API: created tagged with their
//! owner and waited for until ACTIVE; a provisioned cluster's brokers grown, retyped, given
//! more storage or upgraded one operation at a time (MSK runs one at a time, each naming the
//! cluster version it starts from); deleted only when the owner's, and waited for until gone.
//! Clients authenticate with IAM (the only choice on serverless), over TLS.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_kafka::Client;
use aws_sdk_kafka::types::{
    BrokerEbsVolumeInfo, BrokerNodeGroupInfo, ClientAuthentication, ClientBroker, EbsStorageInfo, EncryptionInTransit,
    EncryptionInfo, Iam, ProvisionedRequest, Sasl, ServerlessClientAuthentication, ServerlessRequest, ServerlessSasl,
    StorageInfo, VpcConfig,
};

use super::error::{AwsError, Sent, Target, call};
use super::{Owner, TagChanges, poll};

/// What the services layer calls a cluster in errors.
const KIND: &str = "MSK cluster";
/// The first pause between two looks at a cluster that is changing; it doubles up to
/// [`MAX_POLL`]. MSK takes minutes for anything, an emulator a moment.
const FIRST_POLL: Duration = Duration::from_millis(200);
/// The longest pause between two looks.
const MAX_POLL: Duration = Duration::from_secs(30);

/// The brokers of a provisioned cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Brokers {
    /// Apache Kafka version, such as `3.6.0`.
    pub kafka_version: String,
    /// Broker instance type, such as `kafka.m7g.large`.
    pub instance_type: String,
    /// How many brokers: a multiple of the number of subnets.
    pub count: i32,
    /// EBS storage per broker, in GiB.
    pub volume_size: i32,
}

/// What a plan asks of a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The cluster name.
    pub name: String,
    /// The brokers when provisioned; None: serverless.
    pub provisioned: Option<Brokers>,
    /// Subnets the cluster's endpoints live in (one per availability zone).
    pub subnet_ids: Vec<String>,
    /// Security groups of those endpoints.
    pub security_group_ids: Vec<String>,
    /// Tags, the owner tag included.
    pub tags: BTreeMap<String, String>,
}

/// A cluster as MSK describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterState {
    /// Its ARN.
    pub arn: String,
    /// `CREATING`, `ACTIVE`, `UPDATING`, `FAILED`...
    pub state: String,
    /// Why it is in that state, when MSK says.
    pub state_reason: Option<String>,
    /// The version the next operation must name.
    pub current_version: String,
    /// The brokers when provisioned.
    pub provisioned: Option<Brokers>,
    /// Its subnets.
    pub subnet_ids: Vec<String>,
    /// Its security groups.
    pub security_group_ids: Vec<String>,
    /// Tags, the owner tag included.
    pub tags: BTreeMap<String, String>,
}

impl ClusterState {
    fn of(c: &aws_sdk_kafka::types::Cluster) -> Self {
        let (provisioned, subnets, groups) = match (c.provisioned(), c.serverless()) {
            (Some(p), _) => {
                let info = p.broker_node_group_info();
                let brokers = Brokers {
                    kafka_version: p
                        .current_broker_software_info()
                        .and_then(|s| s.kafka_version())
                        .unwrap_or_default()
                        .to_string(),
                    instance_type: info.and_then(|i| i.instance_type()).unwrap_or_default().to_string(),
                    count: p.number_of_broker_nodes().unwrap_or_default(),
                    volume_size: info
                        .and_then(|i| i.storage_info())
                        .and_then(|s| s.ebs_storage_info())
                        .and_then(|e| e.volume_size())
                        .unwrap_or_default(),
                };
                let subnets = info.map(|i| i.client_subnets().to_vec()).unwrap_or_default();
                let groups = info.map(|i| i.security_groups().to_vec()).unwrap_or_default();
                (Some(brokers), subnets, groups)
            }
            (None, Some(s)) => {
                let subnets = s.vpc_configs().iter().flat_map(|v| v.subnet_ids().iter().cloned()).collect();
                let groups = s.vpc_configs().iter().flat_map(|v| v.security_group_ids().iter().cloned()).collect();
                (None, subnets, groups)
            }
            (None, None) => (None, Vec::new(), Vec::new()),
        };
        Self {
            arn: c.cluster_arn().unwrap_or_default().to_string(),
            state: c.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
            state_reason: c.state_info().and_then(|i| i.message()).map(str::to_string),
            current_version: c.current_version().unwrap_or_default().to_string(),
            provisioned,
            subnet_ids: subnets,
            security_group_ids: groups,
            tags: c.tags().map(|t| t.clone().into_iter().collect()).unwrap_or_default(),
        }
    }
}

/// The cluster named `name`, or None when there is none.
pub async fn find(msk: &Client, name: &str) -> Result<Option<ClusterState>, AwsError> {
    let mut token = None;
    loop {
        let out = msk
            .list_clusters_v2()
            .cluster_name_filter(name)
            .set_next_token(token)
            .send()
            .await
            .at(Target::cluster(name))?;
        if let Some(c) = out.cluster_info_list().iter().find(|c| c.cluster_name() == Some(name)) {
            // The list is a summary; the description is what the cluster is now.
            return describe(msk, name, c.cluster_arn().unwrap_or_default()).await;
        }
        match out.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(None),
        }
    }
}

/// Cluster `arn` (named `name` in errors), or None when it does not exist.
async fn describe(msk: &Client, name: &str, arn: &str) -> Result<Option<ClusterState>, AwsError> {
    match msk.describe_cluster_v2().cluster_arn(arn).send().await {
        Ok(out) => Ok(out.cluster_info().map(ClusterState::of)),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(None),
        Err(e) => Err(call("DescribeClusterV2", Target::cluster(name), &e)),
    }
}

/// Waits until cluster `arn` is ACTIVE again; an error when it fails or disappears.
async fn wait_active(msk: &Client, name: &str, arn: &str) -> Result<ClusterState, AwsError> {
    poll(FIRST_POLL, MAX_POLL, || async {
        let c =
            describe(msk, name, arn).await?.ok_or_else(|| AwsError::Vanished { kind: KIND, target: name.into() })?;
        match c.state.as_str() {
            "ACTIVE" => Ok(Some(c)),
            "FAILED" | "DELETING" => {
                let why = c.state_reason.as_deref().unwrap_or("MSK gives no reason");
                Err(AwsError::other("waiting for ACTIVE", format!("{KIND} {name}"), format!("{}: {why}", c.state)))
            }
            _ => {
                tracing::debug!(cluster = name, state = %c.state, "waiting for the cluster to be ACTIVE");
                Ok(None)
            }
        }
    })
    .await
}

fn client_authentication() -> ClientAuthentication {
    ClientAuthentication::builder().sasl(Sasl::builder().iam(Iam::builder().enabled(true).build()).build()).build()
}

fn storage(volume_size: i32) -> StorageInfo {
    StorageInfo::builder().ebs_storage_info(EbsStorageInfo::builder().volume_size(volume_size).build()).build()
}

/// Creates the cluster tagged with `owner` (`spec.tags` carry it) or takes the one `owner`
/// owns, waits for it, then converges brokers and tags to `spec`. Returns it, ACTIVE.
pub async fn ensure(msk: &Client, spec: &ClusterSpec, owner: &Owner) -> Result<ClusterState, AwsError> {
    let name = spec.name.as_str();
    let current = match find(msk, name).await? {
        Some(c) => c,
        None => {
            let arn = create(msk, spec).await?;
            owner.made_one();
            describe(msk, name, &arn).await?.ok_or_else(|| AwsError::Vanished { kind: KIND, target: name.into() })?
        }
    };
    owner.check(KIND, name, &current.tags)?;
    let mut current = wait_active(msk, name, &current.arn).await?;
    if let (Some(want), Some(have)) = (&spec.provisioned, current.provisioned.clone()) {
        current = converge_brokers(msk, name, &current, want, &have).await?;
    }
    let changes = TagChanges::new(&current.tags, &spec.tags);
    if changes.stale.is_empty() && changes.set.is_empty() {
        return Ok(current);
    }
    if !changes.stale.is_empty() {
        let keys = Some(changes.stale);
        msk.untag_resource().resource_arn(&current.arn).set_tag_keys(keys).send().await.at(Target::cluster(name))?;
    }
    if !changes.set.is_empty() {
        let tags: HashMap<String, String> = changes.set.into_iter().collect();
        msk.tag_resource().resource_arn(&current.arn).set_tags(Some(tags)).send().await.at(Target::cluster(name))?;
    }
    describe(msk, name, &current.arn).await?.ok_or_else(|| AwsError::Vanished { kind: KIND, target: name.into() })
}

async fn create(msk: &Client, spec: &ClusterSpec) -> Result<String, AwsError> {
    let name = spec.name.as_str();
    let mut req = msk.create_cluster_v2().cluster_name(name).set_tags(Some(spec.tags.clone().into_iter().collect()));
    req = match &spec.provisioned {
        Some(b) => req.provisioned(
            ProvisionedRequest::builder()
                .kafka_version(&b.kafka_version)
                .number_of_broker_nodes(b.count)
                .broker_node_group_info(
                    BrokerNodeGroupInfo::builder()
                        .instance_type(&b.instance_type)
                        .set_client_subnets(Some(spec.subnet_ids.clone()))
                        .set_security_groups(Some(spec.security_group_ids.clone()))
                        .storage_info(storage(b.volume_size))
                        .build(),
                )
                .client_authentication(client_authentication())
                // TLS only between clients and brokers, and between brokers.
                .encryption_info(
                    EncryptionInfo::builder()
                        .encryption_in_transit(
                            EncryptionInTransit::builder().client_broker(ClientBroker::Tls).in_cluster(true).build(),
                        )
                        .build(),
                )
                .build(),
        ),
        None => req.serverless(
            ServerlessRequest::builder()
                .vpc_configs(
                    VpcConfig::builder()
                        .set_subnet_ids(Some(spec.subnet_ids.clone()))
                        .set_security_group_ids(Some(spec.security_group_ids.clone()))
                        .build(),
                )
                .client_authentication(
                    ServerlessClientAuthentication::builder()
                        .sasl(ServerlessSasl::builder().iam(Iam::builder().enabled(true).build()).build())
                        .build(),
                )
                .build(),
        ),
    };
    let out = req.send().await.map_err(|e| call("CreateClusterV2", Target::cluster(name), &e))?;
    out.cluster_arn.ok_or_else(|| AwsError::other("CreateClusterV2", Target::cluster(name), "MSK returned no ARN"))
}

/// The operations that take a provisioned cluster from `have` to `want`, in the order MSK
/// takes them: the version first (new instance types may need it), then the type, the storage
/// and the broker count.
fn broker_changes(have: &Brokers, want: &Brokers) -> Vec<BrokerChange> {
    let mut changes = Vec::new();
    if have.kafka_version != want.kafka_version {
        changes.push(BrokerChange::Version(want.kafka_version.clone()));
    }
    if have.instance_type != want.instance_type {
        changes.push(BrokerChange::InstanceType(want.instance_type.clone()));
    }
    if have.volume_size != want.volume_size {
        changes.push(BrokerChange::VolumeSize(want.volume_size));
    }
    if have.count != want.count {
        changes.push(BrokerChange::Count(want.count));
    }
    changes
}

/// One MSK operation on a provisioned cluster's brokers.
#[derive(Clone, Debug, PartialEq, Eq)]
enum BrokerChange {
    Version(String),
    InstanceType(String),
    VolumeSize(i32),
    Count(i32),
}

async fn converge_brokers(
    msk: &Client,
    name: &str,
    current: &ClusterState,
    want: &Brokers,
    have: &Brokers,
) -> Result<ClusterState, AwsError> {
    let mut current = current.clone();
    for change in broker_changes(have, want) {
        let (arn, version, target) = (current.arn.as_str(), current.current_version.as_str(), Target::cluster(name));
        match change {
            BrokerChange::Version(v) => {
                let req = msk.update_cluster_kafka_version().cluster_arn(arn).current_version(version);
                req.target_kafka_version(v).send().await.at(target)?;
            }
            BrokerChange::InstanceType(t) => {
                let req = msk.update_broker_type().cluster_arn(arn).current_version(version);
                req.target_instance_type(t).send().await.at(target)?;
            }
            BrokerChange::VolumeSize(size) => {
                let all = BrokerEbsVolumeInfo::builder().kafka_broker_node_id("All").volume_size_gb(size).build();
                let req = msk.update_broker_storage().cluster_arn(arn).current_version(version);
                req.target_broker_ebs_volume_info(all).send().await.at(target)?;
            }
            BrokerChange::Count(n) => {
                let req = msk.update_broker_count().cluster_arn(arn).current_version(version);
                req.target_number_of_broker_nodes(n).send().await.at(target)?;
            }
        }
        current = wait_active(msk, name, &current.arn).await?;
    }
    Ok(current)
}

/// The IAM bootstrap brokers (`host:port`, SASL/IAM over TLS) of cluster `arn`.
pub async fn bootstrap_brokers(msk: &Client, name: &str, arn: &str) -> Result<Vec<String>, AwsError> {
    let out = msk.get_bootstrap_brokers().cluster_arn(arn).send().await.at(Target::cluster(name))?;
    let brokers = out.bootstrap_broker_string_sasl_iam.unwrap_or_default();
    Ok(brokers.split(',').map(str::trim).filter(|b| !b.is_empty()).map(str::to_string).collect())
}

/// Deletes cluster `name` when `owner` owns it, and waits until it is gone; one already gone,
/// or someone else's, is left alone.
pub async fn delete(msk: &Client, name: &str, owner: &Owner) -> Result<(), AwsError> {
    let arn = match find(msk, name).await? {
        Some(c) if owner.owns(&c.tags) => c.arn,
        Some(_) => {
            tracing::warn!(cluster = name, "not deleting an MSK cluster that another owner tagged");
            return Ok(());
        }
        None => return Ok(()),
    };
    match msk.delete_cluster().cluster_arn(&arn).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => return Ok(()),
        Err(e) => return Err(call("DeleteCluster", Target::cluster(name), &e)),
    }
    poll(FIRST_POLL, MAX_POLL, || async { Ok(describe(msk, name, &arn).await?.is_none().then_some(())) }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(version: &str, instance: &str, count: i32, volume: i32) -> Brokers {
        Brokers { kafka_version: version.into(), instance_type: instance.into(), count, volume_size: volume }
    }

    #[test]
    fn broker_changes_come_one_operation_each_version_first() {
        let have = brokers("3.5.1", "kafka.m7g.large", 3, 100);
        assert_eq!(broker_changes(&have, &have), []);
        let want = brokers("3.6.0", "kafka.m7g.xlarge", 6, 200);
        assert_eq!(
            broker_changes(&have, &want),
            [
                BrokerChange::Version("3.6.0".into()),
                BrokerChange::InstanceType("kafka.m7g.xlarge".into()),
                BrokerChange::VolumeSize(200),
                BrokerChange::Count(6),
            ]
        );
    }

    #[test]
    fn a_description_reads_as_the_spec_wrote_it() {
        use aws_sdk_kafka::types::{BrokerSoftwareInfo, Cluster, ClusterState as MskState, Provisioned, Serverless};
        let provisioned = Cluster::builder()
            .cluster_arn("arn:aws:kafka:us-east-1:1:cluster/events/x")
            .state(MskState::Active)
            .current_version("K1")
            .provisioned(
                Provisioned::builder()
                    .number_of_broker_nodes(3)
                    .current_broker_software_info(BrokerSoftwareInfo::builder().kafka_version("3.6.0").build())
                    .broker_node_group_info(
                        BrokerNodeGroupInfo::builder()
                            .instance_type("kafka.m7g.large")
                            .client_subnets("subnet-a")
                            .security_groups("sg-1")
                            .storage_info(storage(100))
                            .build(),
                    )
                    .build(),
            )
            .build();
        let c = ClusterState::of(&provisioned);
        assert_eq!(c.state, "ACTIVE");
        assert_eq!(c.provisioned, Some(brokers("3.6.0", "kafka.m7g.large", 3, 100)));
        assert_eq!((c.subnet_ids, c.security_group_ids), (vec!["subnet-a".into()], vec!["sg-1".into()]));
        let serverless = Cluster::builder()
            .serverless(
                Serverless::builder()
                    .vpc_configs(VpcConfig::builder().subnet_ids("subnet-a").subnet_ids("subnet-b").build())
                    .build(),
            )
            .build();
        let c = ClusterState::of(&serverless);
        assert_eq!((c.provisioned, c.subnet_ids.len()), (None, 2));
    }
}
