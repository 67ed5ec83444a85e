//! `adf_kafka_topic` against a real single-node Kafka broker (KRaft, Apache Kafka's jars from
//! Maven Central) with the real CLI and provider binaries: create with configs, an empty second
//! plan, import, update (partitions grow, configs set and removed), drift, disappears, plan-time
//! refusals, a name taken outside Terraform, a broker that is down, and destroy. Topics are
//! checked with an independent admin client.

use std::collections::BTreeMap;

use adf_acceptance::kafka::KafkaBroker;
use adf_acceptance::{Emulator, PROVIDER_BLOCK as PROVIDER, Workspace, repo_root, unique_name};
use anyhow::{Context, Result, bail, ensure};
use krafka::Kafka;
use krafka::admin::{AdminClient, ConfigOp, ConfigResource, DescribeConfigsOptions, DescribeTopicsOptions, NewTopic};

const ADDRESS: &str = "adf_kafka_topic.orders";

/// The topic `name` on `bootstrap`, with `settings` lines in its block.
fn config(name: &str, bootstrap: &str, settings: &[&str]) -> String {
    format!(
        "{PROVIDER}\nresource \"adf_kafka_topic\" \"orders\" {{\n  name              = \"{name}\"\n  \
         bootstrap_servers = [\"{bootstrap}\"]\n  authentication    = \"NONE\"\n{}\n}}\n",
        settings.iter().map(|s| format!("  {s}")).collect::<Vec<_>>().join("\n")
    )
}

/// What the broker says of a topic: partitions, replicas per partition, and its own configs.
struct Seen {
    partitions: usize,
    replicas: usize,
    config: BTreeMap<String, String>,
}

async fn admin(bootstrap: &str) -> Result<AdminClient> {
    Ok(Kafka::builder(bootstrap).client_id("adf-acceptance").connect().await?.admin())
}

async fn seen(admin: &AdminClient, name: &str) -> Result<Option<Seen>> {
    let mut described = admin.describe_topics([name], DescribeTopicsOptions::default()).await?;
    let Ok(topic) = described.remove(name).context("no answer for the topic")? else { return Ok(None) };
    let resource = ConfigResource::topic(name);
    let mut configs = admin.describe_configs([resource.clone()], DescribeConfigsOptions::default()).await?;
    let entries = configs.remove(&resource).context("no configs")??;
    Ok(Some(Seen {
        partitions: topic.partitions.len(),
        replicas: topic.partitions.first().map_or(0, |p| p.replicas.len()),
        config: entries.into_iter().filter(|e| e.config_source == 1).filter_map(|e| Some((e.name, e.value?))).collect(),
    }))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_on_a_real_broker_import_update_drift_disappears_destroy() -> Result<()> {
    let emu = Emulator::start()?;
    let mut broker = KafkaBroker::start(&repo_root())?;
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap).await?;
    let name = unique_name("orders");
    let ws = Workspace::new(emu.endpoint())?;

    // 1. Create with configs; the replication factor comes from the broker.
    let created = ["partitions = 3", "config = { \"retention.ms\" = \"3600000\", \"cleanup.policy\" = \"delete\" }"];
    ws.write(&config(&name, &bootstrap, &created))?;
    ws.apply()?;
    let t = seen(&admin, &name).await?.context("topic made")?;
    assert_eq!((t.partitions, t.replicas), (3, 1));
    assert_eq!(t.config, map(&[("cleanup.policy", "delete"), ("retention.ms", "3600000")]));
    let state = ws.state_values(ADDRESS)?;
    assert_eq!(state["replication_factor"], 1);
    assert_eq!(state["id"], name.as_str());

    // 2. A second plan is empty; so is one after state rm + import.
    ws.assert_empty_plan()?;
    ws.run(&["state", "rm", ADDRESS])?.ok()?;
    ws.run(&["import", "-no-color", ADDRESS, &format!("none://{bootstrap}/{name}")])?.ok()?;
    let imported = ws.state_values(ADDRESS)?;
    for key in ["name", "bootstrap_servers", "authentication", "partitions", "replication_factor", "config"] {
        assert_eq!(imported[key], state[key], "imported {key}");
    }
    ws.assert_empty_plan()?;

    // 3. Update in place: more partitions, one config changed, one removed, one added.
    let updated = ["partitions = 5", "config = { \"retention.ms\" = \"7200000\", \"segment.ms\" = \"600000\" }"];
    ws.write(&config(&name, &bootstrap, &updated))?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("1 to change, 0 to destroy"), "{}", plan.stdout);
    assert!(plan.stdout.contains("Keys will map to other partitions"), "{}", plan.stdout);
    ws.apply()?;
    let t = seen(&admin, &name).await?.context("topic")?;
    assert_eq!(t.partitions, 5);
    assert_eq!(t.config, map(&[("retention.ms", "7200000"), ("segment.ms", "600000")]));
    ws.assert_empty_plan()?;

    // 4. Drift: a config changed and one added outside Terraform show in the plan; apply puts
    //    them back.
    let resource = ConfigResource::topic(&name);
    let ops = vec![ConfigOp::set("retention.ms", "1000"), ConfigOp::set("max.message.bytes", "2048")];
    let altered = admin.incremental_alter_configs([(resource.clone(), ops)], Default::default()).await?;
    altered.into_values().try_for_each(|r| r)?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("\"1000\" -> \"7200000\""), "{}", plan.stdout);
    assert!(plan.stdout.contains("\"max.message.bytes\" = \"2048\" -> null"), "{}", plan.stdout);
    ws.apply()?;
    let t = seen(&admin, &name).await?.context("topic")?;
    assert_eq!(t.config, map(&[("retention.ms", "7200000"), ("segment.ms", "600000")]));
    ws.assert_empty_plan()?;

    // 5. Refused at plan time, with nothing touched: fewer partitions, another replication factor.
    ws.write(&config(&name, &bootstrap, &["partitions = 2"]))?;
    ws.assert_plan_error("Partitions cannot decrease", "partitions")?;
    ws.write(&config(&name, &bootstrap, &["partitions = 5", "replication_factor = 3"]))?;
    ws.assert_plan_error("The replication factor is fixed", "replication_factor")?;
    ensure!(seen(&admin, &name).await?.context("topic")?.partitions == 5, "a refused plan changes nothing");

    // 6. Disappears: the plan shows it, and the next apply makes it again.
    ws.write(&config(&name, &bootstrap, &updated))?;
    admin.delete_topics([name.as_str()], Default::default()).await?.into_values().try_for_each(|r| r)?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("will be updated in-place"), "{}", plan.stdout);
    ws.apply()?;
    let t = seen(&admin, &name).await?.context("topic made again")?;
    assert_eq!((t.partitions, t.config.len()), (5, 2));
    ws.assert_empty_plan()?;

    // 7. A broker that is down: the plan fails naming the resource and the brokers, and the
    //    state is kept for when it is back.
    broker.stop();
    let down = ws.run(&["plan", "-no-color"])?;
    assert_ne!(down.code, 0);
    assert!(down.stderr.contains(&format!("reading adf_kafka_topic ({name})")), "{}", down.stderr);
    assert!(down.stderr.contains("Kafka brokers"), "{}", down.stderr);
    ensure!(ws.state_list()?.contains(&ADDRESS.to_string()), "the state is kept");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_taken_outside_terraform_is_refused_and_destroy_deletes_only_ours() -> Result<()> {
    let emu = Emulator::start()?;
    let broker = KafkaBroker::start(&repo_root())?;
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap).await?;
    let (theirs, ours) = (unique_name("theirs"), unique_name("ours"));
    let made = admin.create_topics([NewTopic::new(&theirs, 2, 1)?], Default::default()).await?;
    made.into_values().try_for_each(|r| r)?;
    let ws = Workspace::new(emu.endpoint())?;

    ws.write(&config(&theirs, &bootstrap, &["partitions = 4"]))?;
    let refused = ws.run(&["apply", "-auto-approve", "-no-color"])?;
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains(&format!("creating adf_kafka_topic ({theirs})")), "{}", refused.stderr);
    assert!(refused.stderr.contains("import it"), "{}", refused.stderr);
    ensure!(ws.state_list()?.is_empty(), "nothing saved");
    assert_eq!(seen(&admin, &theirs).await?.context("theirs")?.partitions, 2, "theirs is untouched");

    ws.write(&config(&ours, &bootstrap, &["partitions = 1"]))?;
    ws.apply()?;
    ensure!(seen(&admin, &ours).await?.is_some(), "ours made");
    ws.destroy()?;
    ensure!(seen(&admin, &ours).await?.is_none(), "ours deleted");
    ensure!(seen(&admin, &theirs).await?.is_some(), "theirs kept");
    Ok(())
}

#[test]
fn invalid_attributes_fail_at_plan_with_the_attribute_path() -> Result<()> {
    let ws = Workspace::new("http://127.0.0.1:1")?;
    ws.write(&format!(
        "{PROVIDER}\nresource \"adf_kafka_topic\" \"t\" {{\n  name = \"bad name\"\n  bootstrap_servers = \
         [\"kafka://broker\"]\n  authentication = \"SCRAM\"\n  partitions = 0\n  replication_factor = 99\n}}\n"
    ))?;
    let errors = ws.plan_errors()?;
    for attr in ["name", "bootstrap_servers", "authentication", "partitions", "replication_factor"] {
        if !errors.iter().any(|(_, code)| code.trim_start().starts_with(attr)) {
            bail!("no plan error at {attr}: {errors:?}");
        }
    }
    Ok(())
}
