//! `adf_kafka_cluster` against the emulator with the real CLI and provider binaries: a serverless
//! and a provisioned cluster applied and waited for, an empty second plan, import, the brokers
//! grown, retyped, given more storage and upgraded in place, a shrink refused at plan time, a
//! switch to serverless planned as a replacement, drift, disappears, destroy; and the
//! plan-time diagnostics. moto's MSK is patched by the test launcher to leave CREATING and to
//! apply broker updates (see `tools/moto_server.py`).

use adf_acceptance::{Emulator, PROVIDER_BLOCK as PROVIDER, Workspace, example_import_args, sdk_config, unique_name};
use anyhow::{Context, Result, bail, ensure};
use aws_sdk_kafka::types::Cluster;

const OWNER_TAG: &str = "adf:kafka-cluster";

/// A serverless cluster and a provisioned one with `brokers`, over two subnets.
fn config(serverless: &str, provisioned: &str, brokers: &str) -> String {
    format!(
        r#"{PROVIDER}
resource "adf_kafka_cluster" "serverless" {{
  name               = "{serverless}"
  subnet_ids         = ["subnet-a", "subnet-b"]
  security_group_ids = ["sg-clients"]
}}

resource "adf_kafka_cluster" "orders" {{
  name               = "{provisioned}"
  subnet_ids         = ["subnet-a", "subnet-b"]
  security_group_ids = ["sg-clients"]
  provisioned = {{
    {brokers}
  }}
  tags = {{ team = "orders" }}
}}
"#
    )
}

const FIRST: &str = "kafka_version = \"3.6.0\"\n    instance_type = \"kafka.m7g.large\"\n    broker_count = 2";
const GROWN: &str = "kafka_version = \"3.7.x\"\n    instance_type = \"kafka.m7g.xlarge\"\n    broker_count = 4\n    \
                     volume_size = 200";

struct Msk {
    client: aws_sdk_kafka::Client,
}

impl Msk {
    /// The cluster named `name`, described.
    async fn find(&self, name: &str) -> Result<Option<Cluster>> {
        let list = self.client.list_clusters_v2().cluster_name_filter(name).send().await?;
        let Some(arn) = list.cluster_info_list().iter().find(|c| c.cluster_name() == Some(name)) else {
            return Ok(None);
        };
        let arn = arn.cluster_arn().context("arn")?;
        Ok(self.client.describe_cluster_v2().cluster_arn(arn).send().await?.cluster_info)
    }

    async fn get(&self, name: &str) -> Result<Cluster> {
        self.find(name).await?.with_context(|| format!("no cluster {name}"))
    }

    async fn iam_brokers(&self, arn: &str) -> Result<Vec<String>> {
        let out = self.client.get_bootstrap_brokers().cluster_arn(arn).send().await?;
        Ok(out.bootstrap_broker_string_sasl_iam().unwrap_or_default().split(',').map(str::to_string).collect())
    }
}

fn brokers_of(c: &Cluster) -> (String, String, i32, i32) {
    let p = c.provisioned().cloned().unwrap_or_else(|| aws_sdk_kafka::types::Provisioned::builder().build());
    let info = p.broker_node_group_info();
    (
        p.current_broker_software_info().and_then(|s| s.kafka_version()).unwrap_or_default().to_string(),
        info.and_then(|i| i.instance_type()).unwrap_or_default().to_string(),
        p.number_of_broker_nodes().unwrap_or_default(),
        info.and_then(|i| i.storage_info())
            .and_then(|s| s.ebs_storage_info())
            .and_then(|e| e.volume_size())
            .unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverless_and_provisioned_clusters_lifecycle_import_update_drift_disappears_destroy() -> Result<()> {
    let emu = Emulator::start()?;
    let msk = Msk { client: aws_sdk_kafka::Client::new(&sdk_config(emu.endpoint()).await) };
    let (serverless, orders) = (unique_name("sls"), unique_name("orders"));
    let ws = Workspace::new(emu.endpoint())?;

    // 1. Both made, waited for (moto's patched MSK reports CREATING once) and tagged as ours.
    ws.write(&config(&serverless, &orders, FIRST))?;
    ws.apply()?;
    let s = msk.get(&serverless).await?;
    assert_eq!(s.state().map(|s| s.as_str()), Some("ACTIVE"));
    let vpc = s.serverless().and_then(|v| v.vpc_configs().first()).context("serverless VPC config")?;
    assert_eq!(
        (vpc.subnet_ids(), vpc.security_group_ids()),
        (&["subnet-a".into(), "subnet-b".into()][..], &["sg-clients".into()][..])
    );
    let iam = s.serverless().and_then(|v| v.client_authentication()).and_then(|a| a.sasl()).and_then(|s| s.iam());
    assert_eq!(iam.and_then(|i| i.enabled()), Some(true), "IAM auth");
    let o = msk.get(&orders).await?;
    assert_eq!(brokers_of(&o), ("3.6.0".into(), "kafka.m7g.large".into(), 2, 100));
    let tls = o.provisioned().and_then(|p| p.encryption_info()).and_then(|e| e.encryption_in_transit());
    assert_eq!(tls.and_then(|t| t.client_broker()).map(|b| b.as_str()), Some("TLS"), "TLS only");
    let state = ws.state_values("adf_kafka_cluster.orders")?;
    let tags = o.tags().cloned().unwrap_or_default();
    assert_eq!(tags.get(OWNER_TAG).map(String::as_str), state["owner_id"].as_str(), "owner tag");
    assert_eq!(tags.get("team").map(String::as_str), Some("orders"));
    let arn = o.cluster_arn().context("arn")?.to_string();
    assert_eq!(state["arn"], arn.as_str());
    assert_eq!(state["bootstrap_brokers"], serde_json::json!(msk.iam_brokers(&arn).await?));
    assert_eq!(state["bootstrap_brokers"].as_array().map(Vec::len), Some(2));
    let sls_state = ws.state_values("adf_kafka_cluster.serverless")?;
    let sls_brokers = sls_state["bootstrap_brokers"][0].as_str().unwrap_or_default();
    assert!(sls_brokers.ends_with(":9098"), "{sls_state}");

    // 2. An empty second plan; import (the example's import.sh) gives the applied state.
    ws.assert_empty_plan()?;
    ws.run(&["state", "rm", "adf_kafka_cluster.orders"])?.ok()?;
    let args = example_import_args("adf_kafka_cluster", &orders)?;
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("-no-color");
    ws.run(&args)?.ok()?;
    assert_eq!(ws.state_values("adf_kafka_cluster.orders")?, state, "the imported state is the applied one");
    ws.assert_empty_plan()?;

    // 3. In place, one MSK operation each: version, broker type, storage, broker count; the
    //    bootstrap brokers follow the count.
    ws.write(&config(&serverless, &orders, GROWN))?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("1 to change, 0 to destroy"), "{}", plan.stdout);
    ws.apply()?;
    let o = msk.get(&orders).await?;
    assert_eq!(brokers_of(&o), ("3.7.x".into(), "kafka.m7g.xlarge".into(), 4, 200));
    assert_eq!(o.cluster_arn(), Some(arn.as_str()), "the same cluster");
    assert_eq!(ws.state_values("adf_kafka_cluster.orders")?["bootstrap_brokers"].as_array().map(Vec::len), Some(4));
    ws.assert_empty_plan()?;

    // 4. Brokers and storage never shrink: plan-time errors at the attributes, nothing touched.
    ws.write(&config(
        &serverless,
        &orders,
        &GROWN.replace("broker_count = 4", "broker_count = 2").replace("200", "150"),
    ))?;
    let errors = ws.plan_errors()?;
    for attr in ["broker_count", "volume_size"] {
        let at = format!("provisioned.{attr}");
        let shown = |(m, code): &(String, String)| {
            m.contains(&at) && m.contains("cannot shrink") && code.contains("provisioned")
        };
        ensure!(errors.iter().any(shown), "{attr}: {errors:?}");
    }

    // 5. Serverless to provisioned is another kind of cluster: a replacement.
    let switched = config(&serverless, &orders, GROWN).replacen(
        "  security_group_ids = [\"sg-clients\"]\n}",
        &format!("  security_group_ids = [\"sg-clients\"]\n  provisioned = {{\n    {FIRST}\n  }}\n}}"),
        1,
    );
    ws.write(&switched)?;
    let plan = ws.plan_code()?;
    assert!(
        plan.stdout.contains("must be replaced") && plan.stdout.contains("1 to add, 0 to change, 1 to destroy"),
        "{}",
        plan.stdout
    );
    ws.write(&config(&serverless, &orders, GROWN))?;

    // 6. Drift: a broker type set behind Terraform's back shows in the plan; apply repairs it.
    let version = o.current_version().context("current version")?;
    msk.client
        .update_broker_type()
        .cluster_arn(&arn)
        .current_version(version)
        .target_instance_type("kafka.m7g.2xlarge")
        .send()
        .await?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("\"kafka.m7g.2xlarge\" -> \"kafka.m7g.xlarge\""), "{}", plan.stdout);
    ws.apply()?;
    assert_eq!(brokers_of(&msk.get(&orders).await?).1, "kafka.m7g.xlarge");
    ws.assert_empty_plan()?;

    // 7. Disappears: the next apply makes it again.
    msk.client.delete_cluster().cluster_arn(&arn).send().await?;
    let plan = ws.plan_code()?;
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    ws.apply()?;
    let again = msk.get(&orders).await?;
    assert_ne!(again.cluster_arn(), Some(arn.as_str()), "a new cluster");
    assert_eq!(brokers_of(&again), ("3.7.x".into(), "kafka.m7g.xlarge".into(), 4, 200));
    ws.assert_empty_plan()?;

    // 8. Destroy deletes both.
    ws.destroy()?;
    ensure!(msk.find(&orders).await?.is_none() && msk.find(&serverless).await?.is_none(), "both deleted");
    Ok(())
}

/// A cluster of that name that another owner made is refused, and left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_made_outside_terraform_is_refused_and_left_alone() -> Result<()> {
    let emu = Emulator::start()?;
    let msk = Msk { client: aws_sdk_kafka::Client::new(&sdk_config(emu.endpoint()).await) };
    let name = unique_name("theirs");
    let vpc = aws_sdk_kafka::types::VpcConfig::builder().subnet_ids("subnet-a").subnet_ids("subnet-b").build();
    msk.client
        .create_cluster_v2()
        .cluster_name(&name)
        .serverless(aws_sdk_kafka::types::ServerlessRequest::builder().vpc_configs(vpc).build())
        .send()
        .await?;
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&format!(
        "{PROVIDER}\nresource \"adf_kafka_cluster\" \"c\" {{\n  name = \"{name}\"\n  subnet_ids = [\"subnet-a\", \"subnet-b\"]\n  \
         security_group_ids = [\"sg-1\"]\n}}\n"
    ))?;
    let out = ws.run(&["apply", "-auto-approve", "-no-color"])?;
    ensure!(out.code != 0, "applied over someone else's cluster");
    assert!(
        out.stderr.contains("creating adf_kafka_cluster") && out.stderr.contains("already exists"),
        "{}",
        out.stderr
    );
    ensure!(msk.find(&name).await?.is_some(), "their cluster stays");
    Ok(())
}

#[test]
fn invalid_attributes_fail_at_plan_with_the_attribute_path() -> Result<()> {
    let ws = Workspace::new("http://127.0.0.1:1")?;
    ws.write(&format!(
        "{PROVIDER}\nresource \"adf_kafka_cluster\" \"c\" {{\n  name = \"9lives\"\n  subnet_ids = [\"subnet-a\", \"subnet-b\", \"subnet-c\"]\n  \
         security_group_ids = []\n  provisioned = {{\n    kafka_version = \"3.6.0\"\n    instance_type = \"kafka.m7g.large\"\n    \
         broker_count = 4\n    volume_size = 0\n  }}\n}}\n"
    ))?;
    let errors = ws.plan_errors()?;
    for attr in ["name", "security_group_ids"] {
        if !errors.iter().any(|(_, code)| code.trim_start().starts_with(attr)) {
            bail!("no plan error at {attr}: {errors:?}");
        }
    }
    // Terraform points at a nested attribute's object; the detail names the attribute inside.
    for attr in ["provisioned.broker_count", "provisioned.volume_size"] {
        if !errors.iter().any(|(m, code)| m.contains(attr) && code.contains("provisioned")) {
            bail!("no plan error at {attr}: {errors:?}");
        }
    }
    Ok(())
}
