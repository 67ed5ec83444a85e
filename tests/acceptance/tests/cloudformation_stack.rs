//! `adf_cloudformation_stack` against the emulator with the real CLI and provider binaries: a
//! stack applied and waited for, its outputs, an empty second plan, import, a parameter update,
//! drift shown in the plan, a failed update and a failed creation named by the resource that
//! failed (and the next apply completing), disappears, destroy, someone else's stack left
//! alone; and the plan-time diagnostics. moto's CloudFormation is patched by the test launcher
//! to report stacks changing, record per-resource events, roll back failures and detect drift
//! (see `tools/moto_server.py`).

use adf_acceptance::{Emulator, PROVIDER_BLOCK as PROVIDER, Workspace, example_import_args, sdk_config, unique_name};
use anyhow::{Context, Result, bail, ensure};
use aws_sdk_cloudformation::types::Stack;

const OWNER_TAG: &str = "adf:cloudformation-stack";

/// A stack holding one queue named `queue`, whose visibility timeout is the `Visibility`
/// parameter (given `visibility`), plus `extra` resources (JSON members).
fn config(stack: &str, queue: &str, visibility: u32, extra: &str) -> String {
    format!(
        r#"{PROVIDER}
resource "adf_cloudformation_stack" "alerts" {{
  name = "{stack}"
  template_body = jsonencode({{
    Parameters = {{ Visibility = {{ Type = "Number", Default = "30" }} }}
    Resources = merge({{
      Queue = {{
        Type       = "AWS::SQS::Queue"
        Properties = {{ QueueName = "{queue}", VisibilityTimeout = {{ Ref = "Visibility" }} }}
      }}
    }}, {{ {extra} }})
    Outputs = {{
      QueueUrl = {{ Value = {{ Ref = "Queue" }} }}
      QueueArn = {{ Value = {{ "Fn::GetAtt" = ["Queue", "Arn"] }} }}
    }}
  }})
  parameters = {{ Visibility = "{visibility}" }}
  tags       = {{ team = "orders" }}
}}

output "queue_url" {{
  value = adf_cloudformation_stack.alerts.outputs["QueueUrl"]
}}
"#
    )
}

/// A bucket resource named `bucket`, as an `extra` of [`config`].
fn bucket(bucket: &str) -> String {
    format!(r#"Bucket = {{ Type = "AWS::S3::Bucket", Properties = {{ BucketName = "{bucket}" }} }}"#)
}

struct Aws {
    cf: aws_sdk_cloudformation::Client,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
}

impl Aws {
    async fn new(endpoint: &str) -> Self {
        let sdk = sdk_config(endpoint).await;
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
        Self { cf: aws_sdk_cloudformation::Client::new(&sdk), sqs: aws_sdk_sqs::Client::new(&sdk), s3 }
    }

    /// The stack named `name`, unless there is none.
    async fn find(&self, name: &str) -> Result<Option<Stack>> {
        match self.cf.describe_stacks().stack_name(name).send().await {
            Ok(out) => Ok(out.stacks().first().cloned()),
            Err(e) if format!("{:?}", e).contains("does not exist") => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, name: &str) -> Result<Stack> {
        self.find(name).await?.with_context(|| format!("no stack {name}"))
    }

    /// The queue's visibility timeout, or None when it does not exist.
    async fn visibility(&self, queue: &str) -> Result<Option<String>> {
        let Ok(url) = self.sqs.get_queue_url().queue_name(queue).send().await else { return Ok(None) };
        let url = url.queue_url().context("queue url")?;
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
            .send()
            .await?;
        Ok(attrs.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)).cloned())
    }

    async fn set_visibility(&self, queue: &str, seconds: &str) -> Result<()> {
        let url = self.sqs.get_queue_url().queue_name(queue).send().await?.queue_url.context("queue url")?;
        let attr = aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout;
        self.sqs.set_queue_attributes().queue_url(url).attributes(attr, seconds).send().await?;
        Ok(())
    }
}

fn status(s: &Stack) -> &str {
    s.stack_status().map(|s| s.as_str()).unwrap_or_default()
}

fn output<'a>(s: &'a Stack, key: &str) -> Option<&'a str> {
    s.outputs().iter().find(|o| o.output_key() == Some(key)).and_then(|o| o.output_value())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_lifecycle_outputs_import_update_drift_failure_disappears_destroy() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let (name, queue, taken) = (unique_name("orders"), unique_name("orders-q"), unique_name("taken"));
    let ws = Workspace::new(emu.endpoint())?;

    // 1. Made and waited for (the patched emulator reports CREATE_IN_PROGRESS first), with
    //    the parameter, the tags (ours included) and the outputs.
    ws.write(&config(&name, &queue, 40, ""))?;
    ws.apply()?;
    let s = aws.get(&name).await?;
    assert_eq!(status(&s), "CREATE_COMPLETE");
    assert_eq!(aws.visibility(&queue).await?.as_deref(), Some("40"), "the parameter reached the queue");
    let state = ws.state_values("adf_cloudformation_stack.alerts")?;
    let tag = |k: &str| s.tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string);
    assert_eq!(tag(OWNER_TAG).as_deref(), state["owner_id"].as_str(), "owner tag");
    assert_eq!(tag("team").as_deref(), Some("orders"));
    assert_eq!(state["arn"], s.stack_id().context("stack id")?);
    let url = output(&s, "QueueUrl").context("QueueUrl output")?;
    assert!(url.ends_with(&queue), "{url}");
    assert_eq!(state["outputs"]["QueueUrl"], url);
    assert!(state["outputs"]["QueueArn"].as_str().is_some_and(|a| a.ends_with(&format!(":{queue}"))), "{state}");
    assert_eq!(state["drifted_resources"], serde_json::json!({}));
    let shown = ws.run(&["output", "-raw", "queue_url"])?.ok()?;
    assert_eq!(shown.stdout.trim(), url, "the output reads the stack's");

    // 2. An empty second plan; import (the example's import.sh) gives the applied state.
    ws.assert_empty_plan()?;
    ws.run(&["state", "rm", "adf_cloudformation_stack.alerts"])?.ok()?;
    let args = example_import_args("adf_cloudformation_stack", &name)?;
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("-no-color");
    ws.run(&args)?.ok()?;
    assert_eq!(ws.state_values("adf_cloudformation_stack.alerts")?, state, "the imported state is the applied one");
    ws.assert_empty_plan()?;

    // 3. A parameter changed: one update, waited for, reaching the queue.
    ws.write(&config(&name, &queue, 50, ""))?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("1 to change, 0 to destroy"), "{}", plan.stdout);
    ws.apply()?;
    assert_eq!(status(&aws.get(&name).await?), "UPDATE_COMPLETE");
    assert_eq!(aws.visibility(&queue).await?.as_deref(), Some("50"));
    ws.assert_empty_plan()?;

    // 4. Drift: the queue changed behind the stack's back shows in the plan, with the property,
    //    and stays shown after an apply (CloudFormation cannot put it back). Put back by hand,
    //    the plan is empty again.
    aws.set_visibility(&queue, "90").await?;
    let plan = ws.plan_code()?;
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("MODIFIED: /VisibilityTimeout expected 50, actual 90"), "{}", plan.stdout);
    ws.apply()?;
    let drifted = ws.state_values("adf_cloudformation_stack.alerts")?["drifted_resources"].clone();
    assert!(drifted["Queue"].as_str().is_some_and(|d| d.starts_with("MODIFIED")), "{drifted}");
    aws.set_visibility(&queue, "50").await?;
    ws.assert_empty_plan()?;
    ws.apply()?;
    assert_eq!(ws.state_values("adf_cloudformation_stack.alerts")?["drifted_resources"], serde_json::json!({}));

    // 5. A failed update names the resource and CloudFormation's reason; the stack rolls back
    //    and keeps its state, so going back to the last configuration plans nothing.
    aws.s3.create_bucket().bucket(&taken).send().await?;
    ws.write(&config(&name, &queue, 50, &bucket(&taken)))?;
    let out = ws.run(&["apply", "-auto-approve", "-no-color"])?;
    ensure!(out.code != 0, "the update should fail:\n{}", out.stdout);
    for part in [
        format!("updating adf_cloudformation_stack ({name})"),
        "UPDATE_ROLLBACK_COMPLETE".to_string(),
        "Bucket (AWS::S3::Bucket) CREATE_FAILED".to_string(),
        "BucketAlreadyExists".to_string(),
    ] {
        let one_line = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(one_line.contains(&part), "{part:?} not in:\n{}", out.stderr);
    }
    assert_eq!(status(&aws.get(&name).await?), "UPDATE_ROLLBACK_COMPLETE");
    ws.write(&config(&name, &queue, 50, ""))?;
    ws.assert_empty_plan()?;

    // 6. Disappears: the next apply makes it again.
    let arn = state["arn"].as_str().context("arn")?.to_string();
    aws.cf.delete_stack().stack_name(&name).send().await?;
    ensure!(aws.visibility(&queue).await?.is_none(), "the stack took its queue");
    let plan = ws.plan_code()?;
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    ws.apply()?;
    let again = aws.get(&name).await?;
    assert_ne!(again.stack_id(), Some(arn.as_str()), "a new stack");
    assert_eq!(aws.visibility(&queue).await?.as_deref(), Some("50"));
    ws.assert_empty_plan()?;

    // 7. Destroy deletes the stack and what it made.
    ws.destroy()?;
    ensure!(aws.find(&name).await?.is_none(), "stack deleted");
    ensure!(aws.visibility(&queue).await?.is_none(), "queue deleted");
    Ok(())
}

/// A creation that fails names the failed resource and rolls back, leaving no stack; once the
/// cause is gone the next apply completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_creation_names_the_resource_and_the_next_apply_completes() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let (name, queue, taken) = (unique_name("billing"), unique_name("billing-q"), unique_name("taken"));
    aws.s3.create_bucket().bucket(&taken).send().await?;
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&config(&name, &queue, 30, &bucket(&taken)))?;
    let out = ws.run(&["apply", "-auto-approve", "-no-color"])?;
    ensure!(out.code != 0, "the creation should fail:\n{}", out.stdout);
    let one_line = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    for part in [
        format!("creating adf_cloudformation_stack ({name})"),
        "ROLLBACK_COMPLETE".to_string(),
        "Bucket (AWS::S3::Bucket) CREATE_FAILED".to_string(),
        "The requested bucket name is not available".to_string(),
    ] {
        assert!(one_line.contains(&part), "{part:?} not in:\n{}", out.stderr);
    }
    ensure!(aws.find(&name).await?.is_none(), "the rolled back stack was deleted");
    ensure!(aws.visibility(&queue).await?.is_none(), "the queue was rolled back");

    aws.s3.delete_bucket().bucket(&taken).send().await?;
    ws.apply()?;
    assert_eq!(status(&aws.get(&name).await?), "CREATE_COMPLETE");
    aws.s3.head_bucket().bucket(&taken).send().await.context("the stack made the bucket")?;
    ws.assert_empty_plan()?;
    ws.destroy()?;
    ensure!(aws.find(&name).await?.is_none(), "stack deleted");
    Ok(())
}

/// A stack of that name that another owner made is refused, and left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_made_outside_terraform_is_refused_and_left_alone() -> Result<()> {
    let emu = Emulator::start()?;
    let aws = Aws::new(emu.endpoint()).await;
    let (name, queue) = (unique_name("theirs"), unique_name("theirs-q"));
    let template = format!(
        r#"{{"Resources": {{"Queue": {{"Type": "AWS::SQS::Queue", "Properties": {{"QueueName": "{queue}"}}}}}}}}"#
    );
    aws.cf.create_stack().stack_name(&name).template_body(template).send().await?;
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&config(&name, &queue, 30, ""))?;
    let out = ws.run(&["apply", "-auto-approve", "-no-color"])?;
    ensure!(out.code != 0, "applied over someone else's stack");
    assert!(
        out.stderr.contains("creating adf_cloudformation_stack") && out.stderr.contains("already exists"),
        "{}",
        out.stderr
    );
    let import = ws.run(&["import", "-no-color", "adf_cloudformation_stack.alerts", &name])?;
    ensure!(import.code != 0 && import.stderr.contains("did not make it"), "{}", import.stderr);
    ensure!(aws.find(&name).await?.is_some(), "their stack stays");
    Ok(())
}

#[test]
fn invalid_attributes_fail_at_plan_with_the_attribute_path() -> Result<()> {
    let ws = Workspace::new("http://127.0.0.1:1")?;
    ws.write(&format!(
        r#"{PROVIDER}
resource "adf_cloudformation_stack" "bad_name" {{
  name          = "9lives"
  template_body = jsonencode({{ Resources = {{ Q = {{ Type = "AWS::SQS::Queue" }} }} }})
  capabilities  = ["CAPABILITY_ROOT"]
}}

resource "adf_cloudformation_stack" "both" {{
  name          = "both"
  template_body = jsonencode({{ Resources = {{ Q = {{ Type = "AWS::SQS::Queue" }} }} }})
  template_url  = "https://templates.s3.amazonaws.com/q.json"
}}

resource "adf_cloudformation_stack" "params" {{
  name          = "params"
  template_body = jsonencode({{ Parameters = {{ Env = {{ Type = "String" }} }}, Resources = {{ Q = {{ Type = "AWS::SQS::Queue" }} }} }})
  parameters    = {{ Colour = "red" }}
}}

resource "adf_cloudformation_stack" "broken" {{
  name          = "broken"
  template_body = "{{ \"Resources\": "
}}
"#
    ))?;
    let errors = ws.plan_errors()?;
    for (message, attribute) in [
        ("Invalid stack name", "name"),
        ("Invalid capability", "capabilities"),
        ("Conflicting template", "template_url"),
        ("declares no parameter \"Colour\"", "parameters"),
        ("parameter \"Env\" has no default", "parameters"),
        ("not valid JSON", "template_body"),
    ] {
        if !errors.iter().any(|(m, code)| m.contains(message) && code.trim_start().starts_with(attribute)) {
            bail!("no plan error {message:?} at {attribute}: {errors:?}");
        }
    }
    Ok(())
}
