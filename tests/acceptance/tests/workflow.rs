//! `adf_workflow` against the emulator with the real terraform and provider binaries: the
//! lifecycle of the example (apply, empty plan, blueprints where the runtime reads them, the
//! event source mapping, the schedule, a blueprint update that keeps the old version, import,
//! a blueprint removed, drift, destroy), bad blueprints failing the plan on the blueprint and
//! node, and a run through the deployed worker zip under the local Lambda runner.
//!
//! moto honours an event source mapping's `Enabled`: with it true, every SendMessage makes moto
//! receive the batch and try to invoke the function (which it cannot run), so jobs drift to the
//! dead-letter queue. These tests set `enabled = false` and feed the worker themselves.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use adf_acceptance::lambda_runner::{LambdaRunner, deployed};
use adf_acceptance::runtime_zips::workflow_worker;
use adf_acceptance::{Emulator, PROVIDER_BLOCK, Workspace, repo_root, sdk_config, unique_name};
use adf_workflow::client::Client;
use adf_workflow::queue::Queue;
use adf_workflow::store::{Store, Tables};
use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

const ADDRESS: &str = "adf_workflow.orders";

/// The example `resource.tf`, named `name`, paused (`enabled = false`), with `edits` applied.
fn example(name: &str, edits: &[(&str, &str)]) -> Result<String> {
    let path = repo_root().join("examples/terraform/resources/adf_workflow/resource.tf");
    let mut hcl = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    hcl = hcl.replace("= \"orders\"", &format!("= \"{name}\""));
    let paused = "  reconcile_every_minutes = 5\n";
    if !hcl.contains(paused) {
        bail!("the example changed: no reconcile_every_minutes line");
    }
    hcl = hcl.replace(paused, &format!("{paused}  enabled                 = false\n"));
    for (from, to) in edits {
        if !hcl.contains(from) {
            bail!("the example has no {from:?}");
        }
        hcl = hcl.replace(from, to);
    }
    Ok(format!("{PROVIDER_BLOCK}\n{hcl}"))
}

struct Aws {
    ddb: aws_sdk_dynamodb::Client,
    lambda: aws_sdk_lambda::Client,
    iam: aws_sdk_iam::Client,
    events: aws_sdk_eventbridge::Client,
}

impl Aws {
    async fn new(endpoint: &str) -> Self {
        let c = sdk_config(endpoint).await;
        Self {
            ddb: aws_sdk_dynamodb::Client::new(&c),
            lambda: aws_sdk_lambda::Client::new(&c),
            iam: aws_sdk_iam::Client::new(&c),
            events: aws_sdk_eventbridge::Client::new(&c),
        }
    }

    /// The item (`runId`, `key`) of the contexts table, if present.
    async fn item(&self, table: &str, run_id: &str, key: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .ddb
            .get_item()
            .table_name(table)
            .key("runId", AttributeValue::S(run_id.into()))
            .key("key", AttributeValue::S(key.into()))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item)
    }

    async fn current(&self, table: &str, blueprint: &str) -> Result<Option<String>> {
        Ok(self
            .item(table, &format!("blueprint#{blueprint}"), "current")
            .await?
            .and_then(|i| i.get("version").and_then(|v| v.as_s().ok()).cloned()))
    }

    async fn mappings(&self, function: &str) -> Result<Vec<aws_sdk_lambda::types::EventSourceMappingConfiguration>> {
        Ok(self
            .lambda
            .list_event_source_mappings()
            .function_name(function)
            .send()
            .await?
            .event_source_mappings
            .unwrap_or_default())
    }
}

fn versions(state: &Value) -> Value {
    state["blueprint_versions"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_apply_update_import_drift_destroy() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    workflow_worker()?;
    let name = unique_name("flow");
    let function = format!("adf-workflow-{name}");
    let contexts = format!("{name}-contexts");
    let rule = format!("adf-workflow-{name}-reconcile");
    let ws = Workspace::new(emu.endpoint())?;

    // 1. The plan knows every blueprint's version before anything exists.
    ws.write(&example(&name, &[])?)?;
    let (code, changes) = ws.resource_changes()?;
    assert_eq!(code, 2);
    let planned = changes.iter().find(|c| c["address"] == ADDRESS).context("no adf_workflow change")?;
    let planned_versions = planned["change"]["after"]["blueprint_versions"].clone();
    let order_v1 = planned_versions["order"].as_str().context("order version unknown at plan time")?.to_string();
    assert_eq!(order_v1.len(), 16, "{planned_versions}");
    assert!(planned_versions["refund"].is_string(), "{planned_versions}");

    // 2. apply: the worker, its blueprints where the runtime reads them, the mapping, the schedule.
    ws.apply()?;
    let applied = ws.state_values(ADDRESS)?;
    assert_eq!(versions(&applied), planned_versions);
    assert_eq!(applied["function_name"], function);
    assert_eq!(aws.current(&contexts, "order").await?.as_deref(), Some(order_v1.as_str()));
    let sdk = sdk_config(emu.endpoint()).await;
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        Tables { contexts: contexts.clone(), statuses: format!("{name}-statuses") },
    );
    assert_eq!(store.current_version("order").await?, order_v1, "the runtime reads the version the plan showed");
    let bp = store.blueprint("order", &order_v1).await?;
    assert_eq!(bp.version(), order_v1);
    assert_eq!(bp.start_nodes(), ["validate"]);

    let config = aws.lambda.get_function_configuration().function_name(&function).send().await?;
    let env = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    assert_eq!(env.get("ADF_CONTEXTS_TABLE"), Some(&contexts));
    assert_eq!(env.get("ADF_STATUSES_TABLE"), Some(&format!("{name}-statuses")));
    assert!(env.get("ADF_QUEUE_URL").is_some_and(|u| u.ends_with(&format!("{name}-jobs"))), "{env:?}");
    assert_eq!((config.timeout(), config.memory_size()), (Some(300), Some(512)));
    assert_eq!(config.handler(), Some("bootstrap"));
    assert!(aws.lambda.get_function_url_config().function_name(&function).send().await.is_err(), "no Function URL");
    assert_eq!(applied["client_config"]["contexts_table"], contexts);
    assert_eq!(applied["client_config"]["region"], adf_acceptance::REGION);

    let mappings = aws.mappings(&function).await?;
    assert_eq!(mappings.len(), 1, "{mappings:?}");
    let m = &mappings[0];
    assert_eq!(m.uuid(), applied["event_source_mapping_uuid"].as_str());
    assert_eq!(m.batch_size(), Some(10));
    assert_eq!(m.state(), Some("Disabled"));
    assert_eq!(m.scaling_config().and_then(|s| s.maximum_concurrency()), Some(5));
    assert_eq!(m.function_response_types(), [aws_sdk_lambda::types::FunctionResponseType::ReportBatchItemFailures]);
    assert!(m.event_source_arn().is_some_and(|a| a.ends_with(&format!(":{name}-jobs"))));

    let described = aws.events.describe_rule().name(&rule).send().await?;
    assert_eq!(described.schedule_expression(), Some("rate(5 minutes)"));
    let targets = aws.events.list_targets_by_rule().rule(&rule).send().await?;
    assert_eq!(targets.targets().len(), 1);
    assert_eq!(targets.targets()[0].input(), Some(adf_workflow::contract::RECONCILE_EVENT));
    assert_eq!(targets.targets()[0].arn(), applied["function_arn"].as_str().unwrap_or_default());
    let policy = aws.lambda.get_policy().function_name(&function).send().await?.policy.unwrap_or_default();
    assert!(policy.contains("events.amazonaws.com") && policy.contains(&rule), "{policy}");

    let role = format!("{function}-role");
    let extra = aws.iam.get_role_policy().role_name(&role).policy_name("adf-extra").send().await?;
    let doc = percent_encoding::percent_decode_str(&extra.policy_document).decode_utf8()?.to_string();
    assert!(doc.contains(&format!(":{name}-jobs\"")), "the queue: {doc}");
    assert!(doc.contains(&format!("table/{name}-contexts\"")) && doc.contains("/index/stalled-runs"), "{doc}");
    assert!(doc.contains("function:charge-card"), "{doc}");
    assert!(!doc.contains('*'), "no wildcard: {doc}");

    // 3. a second plan is empty
    ws.assert_empty_plan()?;

    // 4. a node changes: an in-place update to a new version; the old version stays for runs
    // in flight. The worker's http nodes may now reach one blocked address.
    let allow = "  maximum_concurrency     = 5\n  http_allowed_networks   = [\"169.254.170.2/32\"]\n";
    ws.write(&example(
        &name,
        &[("retry_delay = \"2s\"", "retry_delay = \"3s\""), ("  maximum_concurrency     = 5\n", allow)],
    )?)?;
    let (code, changes) = ws.resource_changes()?;
    assert_eq!(code, 2);
    let change = changes.iter().find(|c| c["address"] == ADDRESS).context("no adf_workflow change")?;
    assert_eq!(change["change"]["actions"], json!(["update"]), "{changes:?}");
    let order_v2 = change["change"]["after"]["blueprint_versions"]["order"].as_str().context("v2")?.to_string();
    assert_ne!(order_v2, order_v1);
    assert_eq!(change["change"]["after"]["blueprint_versions"]["refund"], planned_versions["refund"]);
    ws.apply()?;
    assert_eq!(aws.current(&contexts, "order").await?.as_deref(), Some(order_v2.as_str()));
    assert!(aws.item(&contexts, "blueprint#order", &order_v1).await?.is_some(), "the old version is kept");
    assert_eq!(aws.mappings(&function).await?[0].uuid(), applied["event_source_mapping_uuid"].as_str());
    let allowed = |config: aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput| {
        let env = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
        env.get(adf_workflow::contract::HTTP_ALLOWED_NETWORKS_ENV).cloned()
    };
    let config = aws.lambda.get_function_configuration().function_name(&function).send().await?;
    assert_eq!(allowed(config).as_deref(), Some("169.254.170.2/32"));
    ws.assert_empty_plan()?;
    let updated = ws.state_values(ADDRESS)?;

    // 5. state rm + import by name gives the same state and an empty plan
    ws.run(&["state", "rm", ADDRESS])?.ok()?;
    ws.run(&["import", "-no-color", ADDRESS, &name])?.ok()?;
    let imported = ws.state_values(ADDRESS)?;
    for k in [
        "tables",
        "blueprints",
        "blueprint_versions",
        "batch_size",
        "maximum_concurrency",
        "reconcile_every_minutes",
        "enabled",
        "memory_size",
        "timeout",
        "log_retention_days",
        "invoke_function_arns",
        "http_allowed_networks",
        "function_arn",
        "role_arn",
        "event_source_mapping_uuid",
        "client_config",
        "source_code_hash",
    ] {
        assert_eq!(imported[k], updated[k], "{k} differs after import");
    }
    ws.assert_empty_plan()?;

    // 6. drift: another version made current, the mapping resized, the schedule deleted
    aws.ddb
        .put_item()
        .table_name(&contexts)
        .item("runId", AttributeValue::S("blueprint#order".into()))
        .item("key", AttributeValue::S("current".into()))
        .item("version", AttributeValue::S(order_v1.clone()))
        .send()
        .await?;
    let uuid = updated["event_source_mapping_uuid"].as_str().unwrap_or_default().to_string();
    aws.lambda.update_event_source_mapping().uuid(&uuid).batch_size(3).send().await?;
    aws.events.remove_targets().rule(&rule).ids("worker").send().await?;
    aws.events.delete_rule().name(&rule).send().await?;
    let (code, changes) = ws.resource_changes()?;
    assert_eq!(code, 2);
    let change = changes.iter().find(|c| c["address"] == ADDRESS).context("no drift planned")?;
    let (before, after) = (&change["change"]["before"], &change["change"]["after"]);
    assert_eq!(
        (before["blueprint_versions"]["order"].clone(), after["blueprint_versions"]["order"].clone()),
        (json!(order_v1), json!(order_v2))
    );
    assert_eq!((before["batch_size"].clone(), after["batch_size"].clone()), (json!(3), json!(10)));
    assert_eq!(
        (before["reconcile_every_minutes"].clone(), after["reconcile_every_minutes"].clone()),
        (json!(0), json!(5))
    );
    ws.apply()?;
    assert_eq!(aws.current(&contexts, "order").await?.as_deref(), Some(order_v2.as_str()));
    assert_eq!(aws.mappings(&function).await?[0].batch_size(), Some(10));
    assert!(aws.events.describe_rule().name(&rule).send().await.is_ok());
    ws.assert_empty_plan()?;

    // 7. a blueprint removed from the map: no new runs (its current pointer goes), its versions stay
    let refund_v = planned_versions["refund"].as_str().unwrap_or_default().to_string();
    let without_refund = example(&name, &[("retry_delay = \"2s\"", "retry_delay = \"3s\"")])?;
    let start = without_refund.find("    refund = jsonencode({").context("refund blueprint")?;
    let end = start + without_refund[start..].find("    })\n").context("end of refund")? + "    })\n".len();
    ws.write(&format!("{}{}", &without_refund[..start], &without_refund[end..]))?;
    ws.apply()?;
    assert_eq!(aws.current(&contexts, "refund").await?, None);
    assert!(aws.item(&contexts, "blueprint#refund", &refund_v).await?.is_some());
    assert!(ws.state_values(ADDRESS)?["blueprint_versions"].get("refund").is_none());
    let config = aws.lambda.get_function_configuration().function_name(&function).send().await?;
    assert_eq!(allowed(config), None, "the allowed networks went with the attribute");
    ws.assert_empty_plan()?;

    // 8. destroy: the mapping, the rule, the function and role, the current pointers
    ws.destroy()?;
    assert!(aws.lambda.get_function().function_name(&function).send().await.is_err());
    assert!(aws.mappings(&function).await?.is_empty());
    assert!(aws.lambda.get_event_source_mapping().uuid(&uuid).send().await.is_err());
    assert!(aws.events.describe_rule().name(&rule).send().await.is_err());
    assert!(aws.iam.get_role().role_name(&role).send().await.is_err(), "the managed role outlived the workflow");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_pointers_go_with_the_workflow_and_the_versions_stay() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    workflow_worker()?;
    let name = unique_name("keep");
    let contexts = format!("{name}-contexts");
    let ws = Workspace::new(emu.endpoint())?;
    // The tables outlive the workflow: destroy only the workflow.
    ws.write(&example(&name, &[])?)?;
    ws.apply()?;
    let v = ws.state_values(ADDRESS)?["blueprint_versions"]["order"].as_str().unwrap_or_default().to_string();
    ws.run(&["destroy", "-auto-approve", "-no-color", &format!("-target={ADDRESS}")])?.ok()?;
    assert_eq!(aws.current(&contexts, "order").await?, None);
    assert_eq!(aws.current(&contexts, "refund").await?, None);
    assert!(aws.item(&contexts, &format!("workflow#{name}"), "blueprints").await?.is_none());
    assert!(aws.item(&contexts, "blueprint#order", &v).await?.is_some(), "versions stay for runs in flight");
    ws.destroy()?;
    Ok(())
}

/// Terraform's diagnostics as one line: its box drawing and wrapping removed.
fn unwrapped(stderr: &str) -> String {
    stderr.lines().map(|l| l.trim_start_matches('│').trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_blueprints_fail_the_plan_naming_blueprint_and_node() -> Result<()> {
    let emu = Emulator::start()?;
    let name = unique_name("bad");
    let ws = Workspace::new(emu.endpoint())?;
    let hcl = format!(
        r#"{PROVIDER_BLOCK}
resource "adf_workflow_tables" "flow" {{
  name                       = "{name}"
  visibility_timeout_seconds = 1800
}}

resource "adf_workflow" "orders" {{
  name   = "{name}"
  tables = adf_workflow_tables.flow
  blueprints = {{
    good    = jsonencode({{ nodes = {{ a = {{ uses = "pass" }} }} }})
    looping = jsonencode({{
      nodes = {{ start = {{ uses = "pass" }}, a = {{ uses = "pass" }}, b = {{ uses = "pass" }} }}
      edges = [{{ from = "start", to = "a" }}, {{ from = "a", to = "b" }}, {{ from = "b", to = "a" }}]
    }})
    typo = jsonencode({{
      nodes = {{ first = {{ uses = "pass" }}, second = {{ uses = "tranform" }} }}
      edges = [{{ from = "first", to = "second" }}]
    }})
    dangling = jsonencode({{
      nodes = {{ charge = {{ uses = "pass" }} }}
      edges = [{{ from = "charge", to = "ship" }}]
    }})
    ouroboros = jsonencode({{ nodes = {{ again = {{ uses = "subflow", params = {{ blueprint = "ouroboros" }} }} }} }})
    patient = jsonencode({{ nodes = {{ hold = {{ uses = "pass", timeout = "10m" }} }} }})
  }}
}}
"#
    );
    ws.write(&hcl)?;
    let out = ws.run(&["plan", "-no-color"])?;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let err = unwrapped(&out.stderr);
    for expected in [
        r#"Invalid blueprint "looping" at node "a""#,
        "cycle a -> b -> a",
        r#"Invalid blueprint "typo" at node "second""#,
        r#"unknown node type "tranform""#,
        r#"Invalid blueprint "dangling" at node "charge""#,
        r#""ship" is not a node"#,
        r#"Invalid blueprint "ouroboros" at node "again""#,
        r#"which leads back to "ouroboros" (ouroboros -> ouroboros)"#,
        r#"Invalid blueprint "patient" at node "hold""#,
        r#"longer than the worker's timeout of 300 s"#,
    ] {
        assert!(err.contains(expected), "{expected:?} missing:\n{}", out.stderr);
    }
    assert!(!err.contains(r#"blueprint "good""#), "{}", out.stderr);

    // A worker of one's own may bring node types; the cycle is still an error.
    let custom = hcl
        .replace("tables = adf_workflow_tables.flow", "tables = adf_workflow_tables.flow\n  worker_zip = \"mine.zip\"");
    ws.write(&custom)?;
    let out = ws.run(&["plan", "-no-color"])?;
    assert_eq!(out.code, 1);
    assert!(!out.stderr.contains("tranform"), "{}", out.stderr);
    assert!(unwrapped(&out.stderr).contains("cycle a -> b -> a"), "{}", out.stderr);

    // The worker's timeout must fit the queue's visibility timeout: known only once the tables
    // are planned, so checked in the plan, with valid blueprints.
    let good = hcl.find("    looping = ").context("looping")?;
    let end = hcl.rfind("  }\n}\n").context("end of blueprints")?;
    let only_good = format!("{}{}", &hcl[..good], &hcl[end..]);
    ws.write(&only_good.replace("visibility_timeout_seconds = 1800", "visibility_timeout_seconds = 60"))?;
    let out = ws.run(&["plan", "-no-color"])?;
    assert_eq!(out.code, 1);
    assert!(unwrapped(&out.stderr).contains("Worker timeout above the queue's visibility timeout"), "{}", out.stderr);
    Ok(())
}

/// Feeds the queue to the worker the way the event source mapping would, until `run` ends.
async fn drive(
    runner: &LambdaRunner,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    client: &Client,
    run: &str,
) -> Result<String> {
    let started = Instant::now();
    loop {
        adf_acceptance::event_source::deliver_batch(runner, sqs, queue_url).await?;
        let status = client.status(run).await?.context("no such run")?;
        if status.status != "running" {
            return Ok(status.status);
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("run {run} still running after 60 s");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_through_the_deployed_worker() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let zip = workflow_worker()?;
    let name = unique_name("run");
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&format!(
        r#"{PROVIDER_BLOCK}
# The minimal pair: each resource's defaults fit the other's (visibility 1800 s, timeout 300 s).
resource "adf_workflow_tables" "flow" {{
  name = "{name}"
}}

resource "adf_workflow" "orders" {{
  name    = "{name}"
  tables  = adf_workflow_tables.flow
  enabled = false
  blueprints = {{
    greet = jsonencode({{
      nodes = {{
        hello = {{ uses = "pass" }}
        shape = {{ uses = "transform", params = {{ template = {{ greeting = "$.name" }} }} }}
      }}
      edges = [{{ from = "hello", to = "shape" }}]
    }})
  }}
}}

output "client" {{
  value = adf_workflow.orders.client_config
}}
"#
    ))?;
    ws.apply()?;
    let outputs: Value = serde_json::from_str(&ws.run(&["output", "-json"])?.ok()?.stdout)?;
    let config = &outputs["client"]["value"];
    let field = |k: &str| config[k].as_str().map(str::to_string).with_context(|| format!("client_config.{k}"));
    let sdk = sdk_config(emu.endpoint()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = field("queue_url")?;
    let client = Client::new(
        Store::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            Tables { contexts: field("contexts_table")?, statuses: field("statuses_table")? },
        ),
        Queue::new(sqs.clone(), &queue_url),
    );
    let function = format!("adf-workflow-{name}");
    let runner = LambdaRunner::start(&deployed(&aws.lambda, &function, &zip, emu.endpoint()).await?).await?;

    let run = client.start("greet", &json!({"name": "ada"})).await?;
    assert_eq!(drive(&runner, &sqs, &queue_url, &client, &run).await?, "succeeded");
    assert_eq!(client.output(&run).await?, Some(json!({"greeting": "ada"})));

    // The schedule's event: the reconciler finds nothing stalled.
    let reconciled = runner.invoke(&json!({"reconcile": true})).await?;
    assert_eq!(reconciled["stalled"], 0, "{reconciled}");
    drop(runner);
    ws.destroy()?;
    Ok(())
}
