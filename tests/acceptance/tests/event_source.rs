//! `adf_event_source` against the emulator with the real CLI and provider binaries: a function
//! fed by an SQS queue, a DynamoDB stream and a Kinesis stream (the example), what Lambda and
//! IAM hold checked, an empty second plan, import by the mapping's id, update, drift,
//! disappears, destroy, and plan-time diagnostics.

use std::collections::BTreeMap;

use adf_acceptance::{
    Emulator, PROVIDER_BLOCK as PROVIDER, Workspace, bootstrap_zip, example_import_args, repo_root, sdk_config,
    set_attributes, unique_name,
};
use anyhow::{Context, Result, ensure};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, StreamSpecification,
    StreamViewType,
};

/// The example, its sources replaced by ours and the function deploying `f.zip`, with
/// `settings` set on the queue's mapping.
fn example(function: &str, arns: &[String; 3], settings: &[&str]) -> Result<String> {
    let path = repo_root().join("examples/terraform/resources/adf_event_source/resource.tf");
    let hcl = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let [queue, stream, kinesis] = arns;
    // The function deploys a zip here, not a package.
    let from = hcl.find("resource \"adf_function\"").context("no function")?;
    let hcl = hcl[from..]
        .replace("\"orders-worker\"", &format!("\"{function}\""))
        .replace(
            "package = adf_lambda_package.worker",
            "filename = \"f.zip\"\n  runtime  = \"provided.al2023\"\n  handler  = \"bootstrap\"",
        )
        .replace("\"arn:aws:sqs:eu-west-1:123456789012:orders-jobs\"", &format!("{queue:?}"))
        .replace(
            "\"arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-12-01T00:00:00.000\"",
            &format!("{stream:?}"),
        )
        .replace("\"arn:aws:kinesis:eu-west-1:123456789012:stream/clicks\"", &format!("{kinesis:?}"));
    // The first block with these settings is the queue's mapping.
    let mut lines: Vec<String> = hcl.lines().map(str::to_string).collect();
    set_attributes(&mut lines, settings);
    let hcl = lines.join("\n");
    Ok(format!("{PROVIDER}\n{hcl}"))
}

/// The function's mappings by source ARN.
async fn mappings(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
) -> Result<BTreeMap<String, aws_sdk_lambda::types::EventSourceMappingConfiguration>> {
    let out = lambda.list_event_source_mappings().function_name(function).send().await?;
    Ok(out
        .event_source_mappings()
        .iter()
        .map(|m| (m.event_source_arn().unwrap_or_default().to_string(), m.clone()))
        .collect())
}

/// The managed role's inline policies that let it read a source, by name.
async fn read_policies(iam: &aws_sdk_iam::Client, function: &str) -> Result<BTreeMap<String, String>> {
    let role = format!("{function}-role");
    let mut out = BTreeMap::new();
    for name in iam.list_role_policies().role_name(&role).send().await?.policy_names() {
        if name.starts_with("adf-source-") {
            let doc = iam.get_role_policy().role_name(&role).policy_name(name).send().await?.policy_document;
            out.insert(name.clone(), percent_encoding::percent_decode_str(&doc).decode_utf8_lossy().into_owned());
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_queue_table_and_kinesis_streams_import_update_drift_disappears_destroy() -> Result<()> {
    let emu = Emulator::start()?;
    let config = sdk_config(emu.endpoint()).await;
    let (lambda, iam) = (aws_sdk_lambda::Client::new(&config), aws_sdk_iam::Client::new(&config));
    let function = unique_name("worker");

    // The sources, made outside Terraform.
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue_url = sqs.create_queue().queue_name(unique_name("jobs")).send().await?.queue_url.context("url")?;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?;
    let queue = attrs.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)).cloned();
    let queue = queue.context("queue arn")?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = dynamodb
        .create_table()
        .table_name(unique_name("orders"))
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build()?,
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build()?)
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder().stream_enabled(true).stream_view_type(StreamViewType::NewImage).build()?,
        )
        .send()
        .await?;
    let stream = table.table_description().and_then(|t| t.latest_stream_arn()).context("stream arn")?.to_string();
    let kinesis = aws_sdk_kinesis::Client::new(&config);
    let clicks = unique_name("clicks");
    kinesis.create_stream().stream_name(&clicks).shard_count(1).send().await?;
    let kinesis_arn = kinesis.describe_stream_summary().stream_name(&clicks).send().await?;
    let kinesis_arn = kinesis_arn.stream_description_summary().map(|s| s.stream_arn().to_string()).context("arn")?;
    let arns = [queue.clone(), stream.clone(), kinesis_arn.clone()];

    let ws = Workspace::new(emu.endpoint())?;
    std::fs::write(ws.path().join("f.zip"), bootstrap_zip()?)?;

    // 1. Apply the example: three mappings, each readable by the managed role alone.
    ws.write(&example(&function, &arns, &[])?)?;
    ws.apply()?;
    let m = mappings(&lambda, &function).await?;
    assert_eq!(m.len(), 3, "{m:?}");
    let q = &m[&queue];
    assert_eq!((q.batch_size(), q.maximum_batching_window_in_seconds()), (Some(50), Some(5)));
    assert_eq!(q.scaling_config().and_then(|s| s.maximum_concurrency()), Some(5));
    assert_eq!(q.function_response_types(), [aws_sdk_lambda::types::FunctionResponseType::ReportBatchItemFailures]);
    assert_eq!(m[&stream].starting_position().map(|p| p.as_str()), Some("TRIM_HORIZON"));
    assert_eq!(m[&stream].batch_size(), Some(100));
    assert_eq!(m[&kinesis_arn].starting_position().map(|p| p.as_str()), Some("LATEST"));
    let policies = read_policies(&iam, &function).await?;
    assert_eq!(policies.len(), 3, "{policies:?}");
    for (arn, action) in
        [(&queue, "sqs:ReceiveMessage"), (&stream, "dynamodb:GetRecords"), (&kinesis_arn, "kinesis:GetRecords")]
    {
        let doc =
            policies.values().find(|d| d.contains(arn.as_str())).with_context(|| format!("no policy on {arn}"))?;
        let doc: serde_json::Value = serde_json::from_str(doc)?;
        assert_eq!(doc["Statement"][0]["Resource"], serde_json::json!([arn]), "exactly this source");
        assert!(doc["Statement"][0]["Action"].as_array().is_some_and(|a| a.contains(&action.into())), "{doc}");
    }
    let state = ws.state_values("adf_event_source.jobs")?;
    assert_eq!(state["name"], format!("{function}/{}", queue.rsplit(':').next().unwrap_or_default()));

    // 2. An empty second plan; import by the mapping's id (the example's import.sh) gives the
    //    applied state back.
    ws.assert_empty_plan()?;
    let uuid = state["uuid"].as_str().context("uuid")?.to_string();
    ws.run(&["state", "rm", "adf_event_source.jobs"])?.ok()?;
    let args = example_import_args("adf_event_source", &uuid)?;
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("-no-color");
    ws.run(&args)?.ok()?;
    let imported = ws.state_values("adf_event_source.jobs")?;
    for k in
        ["function", "source_arn", "batch_size", "batching_window_seconds", "maximum_concurrency", "enabled", "name"]
    {
        assert_eq!(imported[k], state[k], "{k}");
    }
    ws.assert_empty_plan()?;

    // 3. Update in place: a bigger batch, paused.
    ws.write(&example(&function, &arns, &["batch_size = 200", "enabled = false"])?)?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("1 to change, 0 to destroy"), "{}", plan.stdout);
    ws.apply()?;
    let q = lambda.get_event_source_mapping().uuid(&uuid).send().await?;
    assert_eq!((q.batch_size(), q.state()), (Some(200), Some("Disabled")));
    ws.assert_empty_plan()?;

    // 4. Drift: a batch size changed behind Terraform's back is planned back.
    lambda.update_event_source_mapping().uuid(&uuid).batch_size(7).send().await?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("7 -> 200"), "{}", plan.stdout);
    ws.apply()?;
    ws.assert_empty_plan()?;

    // 5. Disappears: the next apply makes the mapping again.
    lambda.delete_event_source_mapping().uuid(&uuid).send().await?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("will be updated in-place"), "{}", plan.stdout);
    ws.apply()?;
    let again = ws.state_values("adf_event_source.jobs")?["uuid"].as_str().unwrap_or_default().to_string();
    ensure!(!again.is_empty() && again != uuid, "a new mapping");
    ws.assert_empty_plan()?;

    // 6. Destroy: the mappings and their read policies go.
    ws.destroy()?;
    ensure!(mappings(&lambda, &function).await.map(|m| m.is_empty()).unwrap_or(true), "mappings left");
    ensure!(iam.get_role().role_name(format!("{function}-role")).send().await.is_err(), "the role is gone too");
    Ok(())
}

#[test]
fn bad_input_is_a_plan_time_diagnostic_on_the_attribute() -> Result<()> {
    let ws = Workspace::new("http://127.0.0.1:9")?;
    let f = "{ arn = \"arn:aws:lambda:us-east-1:123456789012:function:f\", name = \"f\" }";
    let queue = "arn:aws:sqs:us-east-1:123456789012:jobs";
    let kinesis = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks";
    for (source, settings, message, attribute) in [
        ("arn:aws:s3:::bucket", "", "is not the ARN of an SQS queue", "source_arn"),
        (queue, "starting_position = \"LATEST\"", "A queue has no starting position", "starting_position"),
        (queue, "batch_size = 100\n  batching_window_seconds = 0", "at least 1 second", "batching_window_seconds"),
        (kinesis, "maximum_concurrency = 5", "a stream's concurrency follows its shards", "maximum_concurrency"),
        (kinesis, "batch_size = 0", "batch_size must be 1 to 10000", "batch_size"),
    ] {
        ws.write(&format!(
            "{PROVIDER}\nresource \"adf_event_source\" \"e\" {{\n  function = {f}\n  source_arn = \"{source}\"\n  {settings}\n}}\n"
        ))?;
        ws.assert_plan_error(message, attribute)?;
    }
    Ok(())
}
