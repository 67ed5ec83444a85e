//! `adf_workflow_tables` against the emulator with the real terraform and provider binaries:
//! lifecycle (apply, empty plan, refresh, import, update, replace, destroy), drift, disappears,
//! a create that fails half way (saved tainted), two applies racing for one name, default
//! tags, and plan-time diagnostics.

use adf_acceptance::{Emulator, Workspace, example_import_args, repo_root, sdk_config, set_attributes, unique_name};
use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::BillingMode;
use aws_sdk_sqs::types::QueueAttributeName;

use adf_acceptance::PROVIDER_BLOCK as PROVIDER;

const ADDRESS: &str = "adf_workflow_tables.example";
/// moto does not check that the key exists; it records it (at create time: its UpdateTable
/// ignores a change of encryption key).
const KMS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/0b5b3c38-1f38-4c2b-9a54-3a1f2b6c9d10";

fn example_resource(name: &str) -> Result<String> {
    let path = repo_root().join("examples/terraform/resources/adf_workflow_tables/resource.tf");
    let hcl = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(hcl.replace("\"orders\"", &format!("\"{name}\"")))
}

struct Aws {
    sqs: aws_sdk_sqs::Client,
    ddb: aws_sdk_dynamodb::Client,
}

impl Aws {
    async fn new(endpoint: &str) -> Self {
        let c = sdk_config(endpoint).await;
        Self { sqs: aws_sdk_sqs::Client::new(&c), ddb: aws_sdk_dynamodb::Client::new(&c) }
    }

    async fn queue_names(&self, prefix: &str) -> Result<Vec<String>> {
        let out = self.sqs.list_queues().queue_name_prefix(prefix).send().await?;
        let mut names: Vec<String> =
            out.queue_urls().iter().filter_map(|u| u.rsplit('/').next().map(str::to_string)).collect();
        names.sort();
        Ok(names)
    }

    async fn table_names(&self, prefix: &str) -> Result<Vec<String>> {
        let out = self.ddb.list_tables().send().await?;
        Ok(out.table_names().iter().filter(|t| t.starts_with(&format!("{prefix}-"))).cloned().collect())
    }

    async fn queue_attribute(&self, name: &str, attr: QueueAttributeName) -> Result<String> {
        let url = self.sqs.get_queue_url().queue_name(name).send().await?.queue_url.unwrap_or_default();
        let out = self.sqs.get_queue_attributes().queue_url(url).attribute_names(attr.clone()).send().await?;
        out.attributes.and_then(|a| a.get(&attr).cloned()).context("attribute missing")
    }

    async fn set_visibility(&self, name: &str, seconds: u32) -> Result<()> {
        let url = self.sqs.get_queue_url().queue_name(name).send().await?.queue_url.unwrap_or_default();
        self.sqs
            .set_queue_attributes()
            .queue_url(url)
            .attributes(QueueAttributeName::VisibilityTimeout, seconds.to_string())
            .send()
            .await?;
        Ok(())
    }
}

/// The example resource named `name`, with `settings` (`key = value` lines) set or overridden.
fn config(name: &str, settings: &[&str]) -> Result<String> {
    let mut lines: Vec<String> = example_resource(name)?.lines().map(str::to_string).collect();
    set_attributes(&mut lines, settings);
    Ok(format!("{PROVIDER}\n{}\n", lines.join("\n")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_apply_import_update_replace_destroy() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let name = unique_name("life");
    let ws = Workspace::new(emu.endpoint())?;

    // 1. apply
    ws.write(&config(&name, &[])?)?;
    ws.apply()?;
    assert_eq!(aws.queue_names(&name).await?, vec![format!("{name}-jobs"), format!("{name}-jobs-dlq")]);
    assert_eq!(aws.table_names(&name).await?.len(), 3);
    let applied = ws.state_values(ADDRESS)?;
    assert_eq!(applied["max_receive_count"], 5);
    assert_eq!(applied["visibility_timeout_seconds"], 120);
    assert_eq!(applied["tags_all"]["team"], "data");
    assert!(applied["worker_policy_json"].as_str().unwrap_or_default().contains(&format!("{name}-statuses")));
    let ttl = aws.ddb.describe_time_to_live().table_name(format!("{name}-coordination")).send().await?;
    assert_eq!(ttl.time_to_live_description().and_then(|d| d.attribute_name()), Some("ttl"));

    // 2. a second plan is empty; 3. so is one after a refresh
    ws.assert_empty_plan()?;
    ws.run(&["apply", "-refresh-only", "-auto-approve", "-no-color"])?.ok()?;
    ws.assert_empty_plan()?;

    // 4. state rm + import (the example import.sh) gives the same state
    ws.run(&["state", "rm", ADDRESS])?.ok()?;
    let import = example_import_args("adf_workflow_tables", &name)?;
    let mut args: Vec<&str> = import.iter().map(String::as_str).collect();
    args.push("-no-color");
    ws.run(&args)?.ok()?;
    let imported = ws.state_values(ADDRESS)?;
    assert_eq!(imported, applied, "imported state differs from the applied state");
    ws.assert_empty_plan()?;

    // 5a. update in place: queue settings, billing, recovery, tags
    ws.write(&config(
        &name,
        &[
            "max_receive_count = 9",
            "message_retention_seconds = 600",
            "billing_mode = \"PROVISIONED\"",
            "read_capacity = 2",
            "write_capacity = 3",
            "point_in_time_recovery = true",
        ],
    )?)?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("1 to change, 0 to destroy"), "{}", plan.stdout);
    ws.apply()?;
    let redrive = aws.queue_attribute(&format!("{name}-jobs"), QueueAttributeName::RedrivePolicy).await?;
    assert!(redrive.contains('9'), "{redrive}");
    let table = aws.ddb.describe_table().table_name(format!("{name}-statuses")).send().await?;
    let table = table.table().context("table")?;
    assert_eq!(table.billing_mode_summary().and_then(|b| b.billing_mode()), Some(&BillingMode::Provisioned));
    assert_eq!(table.provisioned_throughput().and_then(|t| t.write_capacity_units()), Some(3));

    ws.assert_empty_plan()?;

    // 5b. replace: fifo cannot change in place
    ws.write(&config(&name, &["fifo = true"])?)?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("must be replaced"), "{}", plan.stdout);
    ws.apply()?;
    assert_eq!(
        aws.queue_names(&name).await?,
        vec![format!("{name}-jobs-dlq.fifo"), format!("{name}-jobs.fifo")],
        "old queues must be gone, FIFO ones present"
    );
    ws.assert_empty_plan()?;

    // 6. destroy removes every queue and table
    ws.destroy()?;
    assert!(aws.queue_names(&name).await?.is_empty());
    assert!(aws.table_names(&name).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_planned_and_repaired() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let name = unique_name("drift");
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&config(&name, &[])?)?;
    ws.apply()?;

    aws.set_visibility(&format!("{name}-jobs"), 7).await?;
    let plan = ws.plan_code()?;
    assert_eq!(plan.code, 2, "drift must show in the plan:\n{}", plan.stdout);
    assert!(plan.stdout.contains("visibility_timeout_seconds") && plan.stdout.contains("7 -> 120"), "{}", plan.stdout);
    ws.apply()?;
    assert_eq!(aws.queue_attribute(&format!("{name}-jobs"), QueueAttributeName::VisibilityTimeout).await?, "120");
    ws.assert_empty_plan()?;
    ws.destroy()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disappears_then_apply_recreates_what_is_missing_and_keeps_the_rest() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let name = unique_name("gone");
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&config(&name, &[])?)?;
    ws.apply()?;
    let (_, owner) = saved_instance(&ws)?;
    let queue_url = aws.sqs.get_queue_url().queue_name(format!("{name}-jobs")).send().await?.queue_url;

    aws.ddb.delete_table().table_name(format!("{name}-statuses")).send().await?;
    let (code, lines) = ws.plan_json()?;
    assert_eq!(code, 2);
    let planned_update = lines.iter().any(|l| {
        l["type"] == "planned_change" && l["change"]["resource"]["addr"] == ADDRESS && l["change"]["action"] == "update"
    });
    assert!(planned_update, "the plan must update {ADDRESS} to recreate the table: {lines:?}");
    ws.apply()?;
    assert_eq!(aws.table_names(&name).await?.len(), 3);
    let kept = aws.sqs.get_queue_url().queue_name(format!("{name}-jobs")).send().await?.queue_url;
    assert_eq!(kept, queue_url, "the queues are kept, not replaced");
    assert_eq!(aws.owner_tags(&name).await?, vec![Some(owner); 5], "the same instance owns all five");
    ws.assert_empty_plan()?;
    ws.destroy()?;
    Ok(())
}

/// The instance in `ws`'s state file: its status (`tainted` or none) and its owner id.
fn saved_instance(ws: &Workspace) -> Result<(Option<String>, String)> {
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.path().join("terraform.tfstate"))?)?;
    let resources = state["resources"].as_array().cloned().unwrap_or_default();
    let r = resources.iter().find(|r| r["type"] == "adf_workflow_tables").context("no resource in the state")?;
    let instance = &r["instances"][0];
    let owner = instance["attributes"]["owner_id"].as_str().context("no owner id")?.to_string();
    Ok((instance["status"].as_str().map(str::to_string), owner))
}

impl Aws {
    /// The `adf:workflow-tables` owner tag of each queue and table named `name-...`.
    async fn owner_tags(&self, name: &str) -> Result<Vec<Option<String>>> {
        let mut owners = Vec::new();
        for q in self.queue_names(name).await? {
            let url = self.sqs.get_queue_url().queue_name(&q).send().await?.queue_url.unwrap_or_default();
            let tags = self.sqs.list_queue_tags().queue_url(url).send().await?.tags.unwrap_or_default();
            owners.push(tags.get(OWNER_TAG).cloned());
        }
        for t in self.table_names(name).await? {
            let arn = self.ddb.describe_table().table_name(&t).send().await?.table.and_then(|t| t.table_arn);
            let tags = self.ddb.list_tags_of_resource().resource_arn(arn.unwrap_or_default()).send().await?;
            owners.push(tags.tags().iter().find(|t| t.key() == OWNER_TAG).map(|t| t.value().to_string()));
        }
        Ok(owners)
    }

    /// Makes a table of `name` that no resource owns.
    async fn create_foreign_table(&self, name: &str) -> Result<()> {
        let key = aws_sdk_dynamodb::types::KeySchemaElement::builder()
            .attribute_name("pk")
            .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
            .build()?;
        let attr = aws_sdk_dynamodb::types::AttributeDefinition::builder()
            .attribute_name("pk")
            .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
            .build()?;
        self.ddb
            .create_table()
            .table_name(name)
            .key_schema(key)
            .attribute_definitions(attr)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await?;
        Ok(())
    }
}

const OWNER_TAG: &str = "adf:workflow-tables";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_fails_half_way_is_saved_tainted_and_replaced_by_the_next_apply() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let name = unique_name("half");
    // A table of the same name that this resource does not own stops the create half way,
    // after the contexts table (and perhaps the statuses table) was made.
    let foreign = format!("{name}-coordination");
    aws.create_foreign_table(&foreign).await?;

    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&config(&name, &[])?)?;
    let failed = ws.run(&["apply", "-auto-approve", "-no-color"])?;
    assert_eq!(failed.code, 1);
    assert!(
        failed.stderr.contains(&format!("creating adf_workflow_tables ({name})"))
            && failed.stderr.contains("was not made by this provider"),
        "{}",
        failed.stderr
    );
    let (status, first_owner) = saved_instance(&ws)?;
    assert_eq!(status.as_deref(), Some("tainted"), "what the failed create made is saved, tainted");
    assert!(aws.table_names(&name).await?.contains(&format!("{name}-contexts")));

    // The next plan replaces it; applying it while the foreign table is still there deletes
    // what the first attempt made, never the foreign table, and fails the same way.
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("is tainted, so must be replaced"), "{}", plan.stdout);
    let again = ws.run(&["apply", "-auto-approve", "-no-color"])?;
    assert_eq!(again.code, 1, "{}", again.stdout);
    let (status, second_owner) = saved_instance(&ws).with_context(|| again.stderr.clone())?;
    assert_eq!(status.as_deref(), Some("tainted"));
    assert_ne!(first_owner, second_owner, "a replacement is a new instance");
    let owners = aws.owner_tags(&name).await?;
    assert!(owners.contains(&None), "the foreign table survives: {owners:?}");
    assert!(!owners.contains(&Some(first_owner)), "the first attempt's pieces are deleted: {owners:?}");

    // Without the foreign table the next apply completes the replacement.
    aws.ddb.delete_table().table_name(&foreign).send().await?;
    ws.apply()?;
    let (status, owner) = saved_instance(&ws)?;
    assert_eq!(status, None, "no longer tainted");
    assert_eq!(aws.queue_names(&name).await?.len(), 2, "nothing duplicated");
    assert_eq!(aws.table_names(&name).await?.len(), 3);
    assert_eq!(aws.owner_tags(&name).await?, vec![Some(owner); 5], "every piece carries the instance's owner id");
    ws.assert_empty_plan()?;
    ws.destroy()?;
    assert!(aws.table_names(&name).await?.is_empty(), "nothing orphaned");
    assert!(aws.queue_names(&name).await?.is_empty(), "nothing orphaned");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applies_racing_for_the_same_names_one_wins_and_nothing_is_orphaned() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    for round in 0..3 {
        let name = unique_name(&format!("race{round}"));
        let (a, b) = (Workspace::new(emu.endpoint())?, Workspace::new(emu.endpoint())?);
        for ws in [&a, &b] {
            ws.write(&config(&name, &[])?)?;
        }
        let (ra, rb) = std::thread::scope(|s| {
            let ta = s.spawn(|| a.run(&["apply", "-auto-approve", "-no-color"]));
            let tb = s.spawn(|| b.run(&["apply", "-auto-approve", "-no-color"]));
            (ta.join().expect("apply a"), tb.join().expect("apply b"))
        });
        let (ra, rb) = (ra?, rb?);
        let (winner, loser, lost) = match (ra.code, rb.code) {
            (0, 1) => (&a, &b, rb),
            (1, 0) => (&b, &a, ra),
            codes => bail!(
                "round {round}: exactly one apply must win, got exit codes {codes:?}\n{}\n{}",
                ra.stderr,
                rb.stderr
            ),
        };
        assert!(
            lost.stderr.contains(&format!("creating adf_workflow_tables ({name})"))
                && lost.stderr.contains("belongs to another resource instance"),
            "round {round}: the loser's error must say whose the name is:\n{}",
            lost.stderr
        );
        assert!(loser.state_list()?.is_empty(), "round {round}: the loser made nothing, so saved nothing");
        let (_, owner) = saved_instance(winner)?;
        assert_eq!(aws.owner_tags(&name).await?, vec![Some(owner); 5], "round {round}: all five are the winner's");
        // The loser's destroy touches nothing; the winner's removes everything.
        loser.destroy()?;
        assert_eq!(aws.table_names(&name).await?.len(), 3);
        winner.assert_empty_plan()?;
        winner.destroy()?;
        assert!(aws.table_names(&name).await?.is_empty(), "round {round}: nothing orphaned");
        assert!(aws.queue_names(&name).await?.is_empty(), "round {round}: nothing orphaned");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_tags_and_a_kms_key_reach_every_queue_and_table() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let name = unique_name("tags");
    let ws = Workspace::new(emu.endpoint())?;
    let provider = PROVIDER.replace(
        "provider \"adf\" {}",
        &format!(
            "provider \"adf\" {{\n  endpoints {{\n    dynamodb = \"{e}\"\n    sqs = \"{e}\"\n    sts = \"{e}\"\n  }}\n  \
             default_tags {{\n    tags = {{ owner = \"platform\", team = \"default\" }}\n  }}\n}}",
            e = emu.endpoint()
        ),
    );
    let resource = example_resource(&name)?.replacen('\n', &format!("\n  kms_key_arn = \"{KMS_KEY}\"\n"), 1);
    ws.write(&format!("{provider}\n{resource}"))?;
    ws.apply()?;
    let state = ws.state_values(ADDRESS)?;
    assert!(state["worker_policy_json"].as_str().unwrap_or_default().contains(KMS_KEY));
    let kms = aws.queue_attribute(&format!("{name}-jobs"), QueueAttributeName::KmsMasterKeyId).await?;
    assert_eq!(kms, KMS_KEY);
    let table = aws.ddb.describe_table().table_name(format!("{name}-coordination")).send().await?;
    let sse = table.table().and_then(|t| t.sse_description()).and_then(|s| s.kms_master_key_arn());
    assert_eq!(sse, Some(KMS_KEY));
    assert_eq!(state["tags_all"], serde_json::json!({ "owner": "platform", "team": "data" }));
    let arn = state["contexts_table_arn"].as_str().context("arn")?.to_string();
    let tags = aws.ddb.list_tags_of_resource().resource_arn(arn).send().await?;
    let owner = tags.tags().iter().find(|t| t.key() == "owner").map(|t| t.value().to_string());
    assert_eq!(owner.as_deref(), Some("platform"));
    ws.assert_empty_plan()?;
    ws.destroy()?;
    Ok(())
}

#[test]
fn invalid_attributes_fail_at_plan_with_the_attribute_path() -> Result<()> {
    // No emulator needed: validation runs before any AWS call.
    let ws = Workspace::new("http://127.0.0.1:9")?;
    let hcl = format!(
        "{PROVIDER}\nresource \"adf_workflow_tables\" \"bad\" {{\n  name = \"ok\"\n  visibility_timeout_seconds = 50000\n  \
         max_receive_count = 0\n}}\n"
    );
    let count_line = hcl.lines().position(|l| l.contains("max_receive_count")).context("line")? + 1;
    ws.write(&hcl)?;
    let diags = ws.plan_error_diagnostics()?;
    let find = |summary: &str| diags.iter().find(|d| d["summary"] == summary).cloned();
    let Some(visibility) = find("Invalid visibility_timeout_seconds") else {
        bail!("no visibility diagnostic: {diags:?}")
    };
    assert!(
        visibility["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("visibility_timeout_seconds must be 0 to 43200; got 50000.")
    );
    assert!(visibility["snippet"]["code"].as_str().unwrap_or_default().contains("visibility_timeout_seconds = 50000"));
    let Some(count) = find("Invalid max_receive_count") else { bail!("no max_receive_count diagnostic: {diags:?}") };
    assert!(count["snippet"]["code"].as_str().unwrap_or_default().contains("max_receive_count = 0"));
    assert_eq!(count["range"]["start"]["line"], count_line);
    Ok(())
}

#[test]
fn no_credentials_at_all_read_as_sentences_with_what_to_set_and_no_sdk_debug_output() -> Result<()> {
    // No variables, no shared files (an empty home), no instance metadata: nothing to find.
    let home = tempfile::tempdir()?;
    let mut ws = Workspace::new("http://127.0.0.1:9")?
        .with_env("HOME", &home.path().display().to_string())
        .with_env("AWS_EC2_METADATA_DISABLED", "true");
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"] {
        ws = ws.without_env(key);
    }
    ws.write(&format!("{PROVIDER}\nresource \"adf_workflow_tables\" \"t\" {{\n  name = \"creds\"\n}}\n"))?;
    let out = ws.run(&["plan", "-no-color"])?;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let text = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("No valid AWS credentials"), "{text}");
    assert!(text.contains("no AWS credentials were found: the SDK looked in the environment"), "the cause: {text}");
    assert!(text.contains("Set access_key and secret_key or profile"), "what to do: {text}");
    for debug in ["DispatchFailure", "ConnectorError", "FailedToLoadToken", "Some(", " { ", "dispatch failure"] {
        assert!(!text.contains(debug), "no Rust Debug output ({debug}): {text}");
    }
    Ok(())
}

#[test]
fn bad_credentials_are_a_configure_diagnostic_that_says_what_to_set() -> Result<()> {
    let ws = Workspace::new("http://127.0.0.1:9")?;
    ws.write(&format!(
        "{}\nresource \"adf_workflow_tables\" \"t\" {{\n  name = \"creds\"\n}}\n",
        PROVIDER.replace("provider \"adf\" {}", "provider \"adf\" {\n  max_retries = 0\n}")
    ))?;
    let out = ws.run(&["plan", "-no-color"])?;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("No valid AWS credentials"), "{}", out.stderr);
    assert!(out.stderr.contains("skip_credentials_validation"), "{}", out.stderr);
    Ok(())
}
