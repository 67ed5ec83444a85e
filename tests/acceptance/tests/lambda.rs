//! `adf_lambda_package` and `adf_function` on the emulator with the real terraform and
//! provider: build, deploy, run the deployed zip under the local Lambda runner, an empty second
//! plan, touch without change, a source change that updates code only, import, destroy; Go for
//! both architectures, Ruby; and the plan-time diagnostics.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use adf_acceptance::lambda_runner::{LambdaRunner, deployed};
use adf_acceptance::{Emulator, Workspace, bootstrap_zip, copy_tree, repo_root, script_zip, sdk_config, unique_name};
use anyhow::{Context, Result};

use adf_acceptance::PROVIDER_BLOCK as PROVIDER;

/// A copy of the quickstart's Rust hello world that a test may edit.
fn hello_world_copy() -> Result<(tempfile::TempDir, PathBuf)> {
    let tmp = tempfile::tempdir()?;
    let to = tmp.path().join("hello");
    copy_tree(&repo_root().join("examples/terraform/quickstart/hello"), &to)?;
    Ok((tmp, to))
}

fn event(name: &str) -> Result<serde_json::Value> {
    let path = repo_root().join("tests/acceptance/fixtures/events").join(name);
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

/// The attributes of `address` that the saved plan changes.
fn changed_attributes(ws: &Workspace, address: &str) -> Result<BTreeSet<String>> {
    ws.run(&["plan", "-out=tfplan", "-no-color"])?.ok()?;
    let plan: serde_json::Value = serde_json::from_str(&ws.run(&["show", "-json", "tfplan"])?.ok()?.stdout)?;
    let change = plan["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["address"] == address)
        .with_context(|| format!("{address} is not in the plan"))?;
    let (before, after, unknown) =
        (&change["change"]["before"], &change["change"]["after"], &change["change"]["after_unknown"]);
    let keys: BTreeSet<String> = before.as_object().into_iter().flatten().map(|(k, _)| k.clone()).collect();
    Ok(keys.into_iter().filter(|k| before[k] != after[k] || unknown[k] == true).collect())
}

fn function_hcl(source: &Path, extra_package: &str, extra_function: &str) -> String {
    format!(
        r#"{PROVIDER}
resource "adf_lambda_package" "hello" {{
  source_dir = "{}"
  language   = "rust"
  {extra_package}
}}

resource "adf_function" "hello" {{
  name         = var.name
  package      = adf_lambda_package.hello
  memory_size  = 256
  environment  = {{ GREETING = "hi" }}
  function_url = {{}}
  {extra_function}
}}

variable "name" {{
  type = string
}}
"#,
        source.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_rust_function_builds_deploys_runs_updates_code_imports_destroys() -> Result<()> {
    let emu = Emulator::start()?;
    let name = unique_name("hello");
    let (_tmp, source) = hello_world_copy()?;
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&function_hcl(&source, "", ""))?;
    std::fs::write(ws.path().join("terraform.tfvars"), format!("name = \"{name}\"\n"))?;
    ws.apply()?;
    ws.assert_empty_plan()?;

    let config = sdk_config(emu.endpoint()).await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let iam = aws_sdk_iam_policy(&config, &name).await?;
    assert!(
        iam.contains(&format!("/aws/lambda/{name}")) && !iam.contains("\"*\""),
        "least-privilege logs policy: {iam}"
    );
    let f = lambda.get_function().function_name(&name).send().await?;
    let c = f.configuration().context("configuration")?;
    assert_eq!(c.runtime().map(|r| r.as_str()), Some("provided.al2023"));
    assert_eq!(c.handler(), Some("bootstrap"));
    assert_eq!(c.memory_size(), Some(256));
    let url = lambda.get_function_url_config().function_name(&name).send().await?;
    assert_eq!(url.auth_type().as_str(), "AWS_IAM", "Function URLs default to IAM auth");

    // The deployed zip answers a Function URL event and an SQS batch under the runner.
    let package = ws.state_values("adf_lambda_package.hello")?;
    let zip = PathBuf::from(package["output_path"].as_str().context("output_path")?);
    let runner = LambdaRunner::start(&deployed(&lambda, &name, &zip, emu.endpoint()).await?).await?;
    let http = runner.invoke(&event("function-url.json")?).await?;
    assert_eq!(http["statusCode"], 200);
    assert_eq!(http["body"], "hi from rust at /topics/orders/produce");
    let sqs = runner.invoke(&event("sqs-batch.json")?).await?;
    assert_eq!(sqs["message"], "hi from rust");
    assert_eq!(sqs["input"]["Records"].as_array().map(Vec::len), Some(2));
    assert!(runner.init_duration().is_some_and(|d| d.as_millis() < 10_000), "init {:?}", runner.init_duration());
    drop(runner);

    // Touching a file without changing its bytes plans nothing.
    let main = source.join("src/main.rs");
    let text = std::fs::read_to_string(&main)?;
    std::fs::write(&main, &text)?;
    ws.assert_empty_plan()?;

    // Changing a source file rebuilds and updates the function's code and nothing else.
    std::fs::write(&main, text.replace("from rust", "from Rust"))?;
    let changed = changed_attributes(&ws, "adf_function.hello")?;
    let allowed: BTreeSet<String> = ["package", "source_code_hash"].into_iter().map(String::from).collect();
    assert!(changed.is_subset(&allowed) && !changed.is_empty(), "changed: {changed:?}");
    let before = c.code_sha256().unwrap_or_default().to_string();
    ws.apply()?;
    let after = lambda.get_function().function_name(&name).send().await?;
    let after = after.configuration().context("configuration")?;
    assert_ne!(after.code_sha256().unwrap_or_default(), before);
    assert_eq!(after.memory_size(), Some(256));
    ws.assert_empty_plan()?;
    let package = ws.state_values("adf_lambda_package.hello")?;
    let zip = PathBuf::from(package["output_path"].as_str().context("output_path")?);
    let runner = LambdaRunner::start(&deployed(&lambda, &name, &zip, emu.endpoint()).await?).await?;
    assert_eq!(runner.invoke(&serde_json::json!({})).await?["message"], "hi from Rust");
    drop(runner);

    // Import gives the same state (package is configuration only, as filename is in hashicorp/aws).
    let applied = ws.state_values("adf_function.hello")?;
    ws.run(&["state", "rm", "adf_function.hello"])?.ok()?;
    ws.run(&["import", "-no-color", "adf_function.hello", &name])?.ok()?;
    let mut imported = ws.state_values("adf_function.hello")?;
    imported["package"] = applied["package"].clone();
    assert_eq!(imported, applied);

    // A public URL plans with a warning on auth_type that names the URL.
    ws.write(&function_hcl(&source, "", "").replace("function_url = {}", "function_url = { auth_type = \"NONE\" }"))?;
    let (code, lines) = ws.plan_json()?;
    assert_eq!(code, 2, "{lines:?}");
    let warning = lines
        .iter()
        .find(|l| l["type"] == "diagnostic" && l["diagnostic"]["summary"] == "Public Function URL")
        .with_context(|| format!("no public URL warning: {lines:?}"))?;
    let public = applied["function_url"]["url"].as_str().context("function_url.url")?;
    assert_eq!(warning["diagnostic"]["severity"], "warning");
    assert!(warning["diagnostic"]["detail"].as_str().is_some_and(|d| d.contains(public)), "{warning}");

    ws.destroy()?;
    assert!(lambda.get_function().function_name(&name).send().await.is_err(), "function deleted");
    let role = aws_sdk_iam::Client::new(&config).get_role().role_name(format!("{name}-role")).send().await;
    assert!(role.is_err(), "managed role deleted");
    Ok(())
}

/// The managed role's log policy document.
async fn aws_sdk_iam_policy(config: &aws_config::SdkConfig, function: &str) -> Result<String> {
    let iam = aws_sdk_iam::Client::new(config);
    let p = iam.get_role_policy().role_name(format!("{function}-role")).policy_name("adf-logs").send().await?;
    // IAM returns policy documents URL-encoded.
    Ok(percent_encoding::percent_decode_str(&p.policy_document).decode_utf8_lossy().into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_for_both_architectures_and_ruby_deploy_touch_update_and_import() -> Result<()> {
    let emu = Emulator::start()?;
    let name = unique_name("poly");
    let sources = tempfile::tempdir()?;
    let fixtures = sources.path();
    for f in ["hello-go", "hello-ruby"] {
        copy_tree(&repo_root().join("tests/acceptance/fixtures").join(f), &fixtures.join(f))?;
    }
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&format!(
        r#"{PROVIDER}
resource "adf_lambda_package" "go" {{
  for_each     = toset(["x86_64", "arm64"])
  source_dir   = "{go}"
  language     = "go"
  architecture = each.key
}}

resource "adf_function" "go" {{
  for_each = adf_lambda_package.go
  name     = "{name}-go-${{each.key}}"
  package  = each.value
}}

resource "adf_lambda_package" "ruby" {{
  source_dir = "{ruby}"
  language   = "ruby"
}}

resource "adf_function" "ruby" {{
  name    = "{name}-ruby"
  package = adf_lambda_package.ruby
}}
"#,
        go = fixtures.join("hello-go").display(),
        ruby = fixtures.join("hello-ruby").display(),
    ))?;
    ws.apply()?;
    ws.assert_empty_plan()?;

    let lambda = aws_sdk_lambda::Client::new(&sdk_config(emu.endpoint()).await);
    for arch in ["x86_64", "arm64"] {
        let f = lambda.get_function().function_name(format!("{name}-go-{arch}")).send().await?;
        let c = f.configuration().context("configuration")?;
        assert_eq!(c.architectures().first().map(|a| a.as_str()), Some(arch));
    }
    let ruby = lambda.get_function().function_name(format!("{name}-ruby")).send().await?;
    let ruby = ruby.configuration().context("configuration")?;
    assert_eq!((ruby.runtime().map(|r| r.as_str()), ruby.handler()), (Some("ruby3.3"), Some("function.handler")));

    // The x86_64 Go binary runs under the local runner.
    let package = ws.state_values("adf_lambda_package.go[\"x86_64\"]")?;
    let zip = PathBuf::from(package["output_path"].as_str().context("output_path")?);
    let runner =
        LambdaRunner::start(&deployed(&lambda, &format!("{name}-go-x86_64"), &zip, emu.endpoint()).await?).await?;
    let answer = runner.invoke(&serde_json::json!({"ping": 1})).await?;
    assert_eq!(answer["message"], "hello from go on amd64");
    drop(runner);

    // A touch without change plans nothing, for Go and Ruby alike.
    for file in ["hello-go/main.go", "hello-ruby/lib/greeting.rb"] {
        let path = fixtures.join(file);
        std::fs::write(&path, std::fs::read(&path)?)?;
    }
    ws.assert_empty_plan()?;

    // A source change updates code only: both Go functions and the Ruby one.
    for (file, from, to) in
        [("hello-go/main.go", "from go on", "from Go on"), ("hello-ruby/lib/greeting.rb", "from ruby", "from Ruby")]
    {
        let path = fixtures.join(file);
        std::fs::write(&path, std::fs::read_to_string(&path)?.replace(from, to))?;
    }
    let allowed: BTreeSet<String> = ["package", "source_code_hash"].into_iter().map(String::from).collect();
    for address in ["adf_function.go[\"x86_64\"]", "adf_function.go[\"arm64\"]", "adf_function.ruby"] {
        let changed = changed_attributes(&ws, address)?;
        assert!(changed.is_subset(&allowed) && !changed.is_empty(), "{address} changed: {changed:?}");
    }
    ws.apply()?;
    ws.assert_empty_plan()?;

    // Import gives the applied state back (package is configuration only).
    for (address, function) in
        [("adf_function.go[\"arm64\"]", format!("{name}-go-arm64")), ("adf_function.ruby", format!("{name}-ruby"))]
    {
        let applied = ws.state_values(address)?;
        ws.run(&["state", "rm", address])?.ok()?;
        ws.run(&["import", "-no-color", address, &function])?.ok()?;
        let mut imported = ws.state_values(address)?;
        imported["package"] = applied["package"].clone();
        assert_eq!(imported, applied, "{address}");
    }
    ws.destroy()?;
    Ok(())
}

#[test]
fn bad_input_is_a_plan_time_diagnostic_on_the_attribute() -> Result<()> {
    let ws = Workspace::new("http://127.0.0.1:9")?;
    let fixtures = repo_root().join("tests/acceptance/fixtures");
    let go = fixtures.join("hello-go").display().to_string();
    let rust = repo_root().join("examples/terraform/quickstart/hello").display().to_string();
    let cases = [
        ("source_dir = \"/nonexistent/api\"\n  language = \"go\"".to_string(), "does not exist", "source_dir"),
        (format!("source_dir = \"{go}\"\n  language = \"python\""), "Invalid language", "language"),
        (
            format!("source_dir = \"{rust}\"\n  language = \"rust\"\n  architecture = \"arm64\""),
            "rustup target add aarch64-unknown-linux-gnu",
            "architecture",
        ),
    ];
    for (body, message, attribute) in cases {
        ws.write(&format!("{PROVIDER}\nresource \"adf_lambda_package\" \"p\" {{\n  {body}\n}}\n"))?;
        ws.assert_plan_error(message, attribute)?;
    }
    for (setting, message) in [
        ("memory_size = 64", "memory_size must be 128 to 10240"),
        ("timeout = 901", "timeout must be 1 to 900"),
        ("ephemeral_storage = 100", "ephemeral_storage must be 512 to 10240"),
        ("tracing = \"On\"", "Expected \"PassThrough\" or \"Active\""),
        ("layers = [\"deps\"]", "is not a layer version ARN"),
        ("image_config = { command = [\"x\"] }", "Only a container image"),
        ("logging = { application_log_level = \"DEBUG\" }", "Lambda filters by level only JSON logs"),
        ("logging = { log_format = \"json\" }", "Expected \"Text\" or \"JSON\""),
        ("dead_letter_target = \"arn:aws:lambda:us-east-1:123456789012:function:f\"", "not the ARN of an SQS queue"),
    ] {
        ws.write(&format!(
            "{PROVIDER}\nresource \"adf_function\" \"f\" {{\n  name = \"f\"\n  filename = \"f.zip\"\n  {setting}\n}}\n"
        ))?;
        ws.assert_plan_error(message, setting.split(' ').next().unwrap_or_default())?;
    }
    // A filename that is missing, or not a zip, is an error on it at plan, not at apply.
    std::fs::write(ws.path().join("notes.txt"), "not a zip")?;
    for (file, message) in [("missing.zip", "missing.zip does not exist"), ("notes.txt", "notes.txt is not a zip file")]
    {
        ws.write(&format!(
            "{PROVIDER}\nresource \"adf_function\" \"f\" {{\n  name = \"f\"\n  filename = \"{file}\"\n}}\n"
        ))?;
        ws.assert_plan_error(message, "filename")?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_drift_is_planned_and_repaired_and_a_deleted_function_is_recreated() -> Result<()> {
    let emu = Emulator::start()?;
    let name = unique_name("drift");
    let go = repo_root().join("tests/acceptance/fixtures/hello-go");
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&format!(
        r#"{PROVIDER}
resource "adf_lambda_package" "go" {{
  source_dir = "{}"
  language   = "go"
}}

resource "adf_function" "f" {{
  name               = "{name}"
  package            = adf_lambda_package.go
  timeout            = 10
  log_retention_days = 30
  tags               = {{ team = "data" }}
}}
"#,
        go.display()
    ))?;
    ws.apply()?;
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(emu.endpoint()).await);

    lambda.update_function_configuration().function_name(&name).timeout(99).memory_size(1024).send().await?;
    let plan = ws.plan_code()?;
    assert_eq!(plan.code, 2);
    assert!(plan.stdout.contains("timeout") && plan.stdout.contains("99 -> 10"), "{}", plan.stdout);
    assert!(plan.stdout.contains("memory_size") && plan.stdout.contains("1024 -> 128"), "{}", plan.stdout);
    ws.apply()?;
    let c = lambda.get_function().function_name(&name).send().await?;
    assert_eq!(c.configuration().and_then(|c| c.timeout()), Some(10));
    ws.assert_empty_plan()?;

    lambda.delete_function().function_name(&name).send().await?;
    let (code, lines) = ws.plan_json()?;
    assert_eq!(code, 2);
    assert!(
        lines.iter().any(|l| l["type"] == "planned_change" && l["change"]["action"] == "update"),
        "the deleted function is planned to be made again, its log group and role kept"
    );
    ws.apply()?;
    ws.assert_empty_plan()?;
    ws.destroy()?;
    Ok(())
}

/// Layers, X-Ray tracing, a larger `/tmp`, a VPC and an on-failure destination: applied, their
/// permissions on the managed role, an empty second plan, import, an update that detaches the
/// VPC, the destination and a layer (and takes the permissions back), drift, destroy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_tracing_storage_and_a_vpc_are_applied_imported_updated_and_drift_shows() -> Result<()> {
    let emu = Emulator::start()?;
    let name = unique_name("parity");
    let config = sdk_config(emu.endpoint()).await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let zip = bootstrap_zip()?;
    let mut layers = Vec::new();
    for layer in ["deps", "more-deps"] {
        let out = lambda
            .publish_layer_version()
            .layer_name(format!("{name}-{layer}"))
            .content(aws_sdk_lambda::types::LayerVersionContentInput::builder().zip_file(zip.clone().into()).build())
            .send()
            .await?;
        layers.push(out.layer_version_arn.context("layer version arn")?);
    }
    let ws = Workspace::new(emu.endpoint())?;
    std::fs::write(ws.path().join("f.zip"), &zip)?;
    let hcl = |settings: &str| {
        format!(
            "{PROVIDER}\nresource \"adf_function\" \"f\" {{\n  name = \"{name}\"\n  filename = \"f.zip\"\n  \
             runtime = \"provided.al2023\"\n  handler = \"bootstrap\"\n  {settings}\n}}\n"
        )
    };
    let sqs = aws_sdk_sqs::Client::new(&config);
    let failed = sqs.create_queue().queue_name(format!("{name}-failed")).send().await?.queue_url.context("url")?;
    let failed = format!(
        "arn:aws:sqs:{}:123456789012:{}",
        adf_acceptance::REGION,
        failed.rsplit('/').next().unwrap_or_default()
    );
    let all = format!(
        "layers = {layers:?}\n  tracing = \"Active\"\n  ephemeral_storage = 2048\n  \
         vpc_config = {{\n    subnet_ids = [\"subnet-0a1b\", \"subnet-2c3d\"]\n    security_group_ids = [\"sg-0123\"]\n  }}\n  \
         async_invoke = {{ maximum_retry_attempts = 1, on_failure = \"{failed}\" }}"
    );
    ws.write(&hcl(&all))?;
    ws.apply()?;
    let c = lambda.get_function().function_name(&name).send().await?.configuration.context("configuration")?;
    let applied: Vec<&str> = c.layers().iter().filter_map(|l| l.arn()).collect();
    assert_eq!(applied, layers.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(c.tracing_config().and_then(|t| t.mode()).map(|m| m.as_str()), Some("Active"));
    assert_eq!(c.ephemeral_storage().map(|e| e.size()), Some(2048));
    assert_eq!(c.vpc_config().map(|v| v.subnet_ids().to_vec()), Some(vec!["subnet-0a1b".into(), "subnet-2c3d".into()]));
    let extra = extra_policy(&config, &name).await?.context("the managed role's extra policy")?;
    assert!(extra.contains("xray:PutTraceSegments") && extra.contains("ec2:CreateNetworkInterface"), "{extra}");
    assert!(extra.contains("sqs:SendMessage") && extra.contains(&failed), "delivers to its destination: {extra}");
    let invoke = lambda.get_function_event_invoke_config().function_name(&name).send().await?;
    assert_eq!(invoke.maximum_retry_attempts(), Some(1));
    let on_failure = invoke.destination_config().and_then(|d| d.on_failure()).and_then(|f| f.destination());
    assert_eq!(on_failure, Some(failed.as_str()));

    // An empty second plan; import gives the applied state back.
    ws.assert_empty_plan()?;
    let state = ws.state_values("adf_function.f")?;
    ws.run(&["state", "rm", "adf_function.f"])?.ok()?;
    ws.run(&["import", "-no-color", "adf_function.f", &name])?.ok()?;
    let imported = ws.state_values("adf_function.f")?;
    for k in ["layers", "tracing", "ephemeral_storage", "vpc_config", "async_invoke"] {
        assert_eq!(imported[k], state[k], "{k} imported");
    }
    // Only the configuration knows the zip's path.
    assert_eq!(changed_attributes(&ws, "adf_function.f")?, BTreeSet::from(["filename".to_string()]));
    ws.apply()?;
    ws.assert_empty_plan()?;

    // Drift: a layer added behind Terraform's back shows in the plan and apply takes it out.
    let mut more = layers.clone();
    more.reverse();
    lambda.update_function_configuration().function_name(&name).set_layers(Some(more)).send().await?;
    let plan = ws.plan_code()?;
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("layers"), "{}", plan.stdout);
    ws.apply()?;
    ws.assert_empty_plan()?;

    // Update in place: no VPC, no destination, one layer, pass-through tracing and a smaller
    // `/tmp`; the network, queue and X-Ray permissions go with them.
    ws.write(&hcl(&format!("layers = [{:?}]\n  tracing = \"PassThrough\"\n  ephemeral_storage = 1024", layers[1])))?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("1 to change, 0 to destroy"), "{}", plan.stdout);
    ws.apply()?;
    let c = lambda.get_function().function_name(&name).send().await?.configuration.context("configuration")?;
    assert_eq!(c.layers().iter().filter_map(|l| l.arn()).collect::<Vec<_>>(), [layers[1].as_str()]);
    assert!(c.vpc_config().is_none_or(|v| v.subnet_ids().is_empty()), "{:?}", c.vpc_config());
    let extra = extra_policy(&config, &name).await?;
    assert!(extra.is_none(), "nothing needs an extra permission now: {extra:?}");
    assert_eq!(c.tracing_config().and_then(|t| t.mode()).map(|m| m.as_str()), Some("PassThrough"));
    assert_eq!(c.ephemeral_storage().map(|e| e.size()), Some(1024));
    let invoke = lambda.get_function_event_invoke_config().function_name(&name).send().await;
    assert!(invoke.is_err(), "the async invoke settings are deleted: {invoke:?}");
    ws.assert_empty_plan()?;
    ws.destroy()?;
    Ok(())
}

/// JSON logs at chosen levels and a dead-letter queue: applied, the queue permission on the
/// managed role, an empty second plan, import, drift in both, an update that takes both away
/// (and the permission with them), destroy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_and_a_dead_letter_queue_are_applied_imported_drift_shows_and_they_are_removed() -> Result<()> {
    use aws_sdk_lambda::types::{DeadLetterConfig, LogFormat, LoggingConfig};
    let emu = Emulator::start()?;
    let name = unique_name("logs");
    let config = sdk_config(emu.endpoint()).await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let ws = Workspace::new(emu.endpoint())?;
    // A function that says which logging controls Lambda gave it.
    let zip = ws.path().join("f.zip");
    std::fs::write(&zip, script_zip("echo \"format=$AWS_LAMBDA_LOG_FORMAT level=$AWS_LAMBDA_LOG_LEVEL\"\n")?)?;
    let hcl = |settings: &str| {
        format!(
            "{PROVIDER}\nresource \"adf_function\" \"f\" {{\n  name = \"{name}\"\n  filename = \"f.zip\"\n  \
             runtime = \"provided.al2023\"\n  handler = \"bootstrap\"\n  {settings}\n}}\n"
        )
    };
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await?.queue_url.context("url")?;
    let dlq =
        format!("arn:aws:sqs:{}:123456789012:{}", adf_acceptance::REGION, url.rsplit('/').next().unwrap_or_default());
    ws.write(&hcl(&format!(
        "dead_letter_target = \"{dlq}\"\n  logging = {{ log_format = \"JSON\", application_log_level = \"DEBUG\" }}"
    )))?;
    ws.apply()?;
    let c = lambda.get_function().function_name(&name).send().await?.configuration.context("configuration")?;
    let logging = c.logging_config().context("logging config")?;
    assert_eq!(logging.log_format().map(|f| f.as_str()), Some("JSON"));
    assert_eq!(logging.application_log_level().map(|l| l.as_str()), Some("DEBUG"));
    assert_eq!(logging.system_log_level().map(|l| l.as_str()), Some("INFO"), "Lambda's default");
    assert_eq!(c.dead_letter_config().and_then(|d| d.target_arn()), Some(dlq.as_str()));
    // Run as Lambda runs it, the function gets JSON logs at DEBUG in its environment.
    let runner = LambdaRunner::start(&deployed(&lambda, &name, &zip, emu.endpoint()).await?).await?;
    let said = runner.output_line(|l| l.starts_with("format="), Duration::from_secs(10)).await?;
    assert_eq!(said, "format=JSON level=DEBUG");
    drop(runner);
    let extra = extra_policy(&config, &name).await?.context("the managed role's extra policy")?;
    assert!(extra.contains("sqs:SendMessage") && extra.contains(&dlq), "sends to its dead-letter queue: {extra}");
    ws.assert_empty_plan()?;

    let state = ws.state_values("adf_function.f")?;
    ws.run(&["state", "rm", "adf_function.f"])?.ok()?;
    ws.run(&["import", "-no-color", "adf_function.f", &name])?.ok()?;
    let imported = ws.state_values("adf_function.f")?;
    assert_eq!(imported["dead_letter_target"], state["dead_letter_target"]);
    assert_eq!(imported["logging"]["application_log_level"], "DEBUG");
    // Only the configuration knows the zip's path; the system level Lambda defaulted reads as unset.
    assert_eq!(changed_attributes(&ws, "adf_function.f")?, BTreeSet::from(["filename".to_string()]));
    ws.apply()?;
    ws.assert_empty_plan()?;

    // Drift: text logs and no dead-letter queue, set behind Terraform's back.
    lambda
        .update_function_configuration()
        .function_name(&name)
        .logging_config(LoggingConfig::builder().log_format(LogFormat::Text).build())
        .dead_letter_config(DeadLetterConfig::builder().target_arn("").build())
        .send()
        .await?;
    let changed = changed_attributes(&ws, "adf_function.f")?;
    assert_eq!(changed, BTreeSet::from(["dead_letter_target".to_string(), "logging".to_string()]));
    ws.apply()?;
    let c = lambda.get_function().function_name(&name).send().await?.configuration.context("configuration")?;
    assert_eq!(c.logging_config().and_then(|l| l.log_format()).map(|f| f.as_str()), Some("JSON"), "repaired");
    assert_eq!(c.dead_letter_config().and_then(|d| d.target_arn()), Some(dlq.as_str()), "repaired");
    ws.assert_empty_plan()?;

    // Both go, and the queue permission with them.
    ws.write(&hcl(""))?;
    ws.apply()?;
    let c = lambda.get_function().function_name(&name).send().await?.configuration.context("configuration")?;
    assert_eq!(c.logging_config().and_then(|l| l.log_format()).map(|f| f.as_str()), Some("Text"));
    assert!(c.dead_letter_config().and_then(|d| d.target_arn()).is_none_or(str::is_empty), "{c:?}");
    let runner = LambdaRunner::start(&deployed(&lambda, &name, &zip, emu.endpoint()).await?).await?;
    let said = runner.output_line(|l| l.starts_with("format="), Duration::from_secs(10)).await?;
    assert_eq!(said, "format=Text level=", "no level with text logs");
    drop(runner);
    let extra = extra_policy(&config, &name).await?;
    assert!(extra.as_deref().is_none_or(|p| !p.contains("sqs:")), "{extra:?}");
    ws.assert_empty_plan()?;
    ws.destroy()?;
    Ok(())
}

/// A Ruby handler written inline (`files`, as the seed's `function_code`): packaged with the
/// runtime and handler it names, deployed, an empty second plan, an edit that updates the code
/// only, destroy; and the plan-time errors of inline sources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_ruby_files_package_deploy_and_update() -> Result<()> {
    let emu = Emulator::start()?;
    let name = unique_name("inline");
    let ws = Workspace::new(emu.endpoint())?;
    let hcl = |greeting: &str| {
        format!(
            r#"{PROVIDER}
resource "adf_lambda_package" "inline" {{
  language = "ruby"
  files = {{
    "function.rb" = <<-RUBY
      require_relative "lib/greeting"
      def handler(event:, context:)
        {{ message: greeting }}
      end
    RUBY
    "lib/greeting.rb" = "def greeting = '{greeting}'\n"
  }}
}}

resource "adf_function" "inline" {{
  name    = "{name}"
  package = adf_lambda_package.inline
}}
"#
        )
    };
    ws.write(&hcl("hello"))?;
    ws.apply()?;
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(emu.endpoint()).await);
    let f = lambda.get_function().function_name(&name).send().await?;
    let c = f.configuration().context("configuration")?;
    assert_eq!((c.runtime().map(|r| r.as_str()), c.handler()), (Some("ruby3.3"), Some("function.handler")));
    let package = ws.state_values("adf_lambda_package.inline")?;
    let zip = PathBuf::from(package["output_path"].as_str().context("output_path")?);
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip)?)?;
    let mut greeting = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("lib/greeting.rb")?, &mut greeting)?;
    assert_eq!(greeting, "def greeting = 'hello'\n");
    ws.assert_empty_plan()?;

    ws.write(&hcl("bonjour"))?;
    let changed = changed_attributes(&ws, "adf_function.inline")?;
    let allowed: BTreeSet<String> = ["package", "source_code_hash"].into_iter().map(String::from).collect();
    assert!(changed.is_subset(&allowed) && !changed.is_empty(), "changed: {changed:?}");
    ws.apply()?;
    let after = lambda.get_function().function_name(&name).send().await?;
    assert_ne!(after.configuration().and_then(|c| c.code_sha256()), c.code_sha256(), "new code");
    ws.assert_empty_plan()?;
    ws.destroy()?;

    for (body, message) in [
        ("language = \"go\"\n  files = { \"main.go\" = \"package main\" }", "Inline sources are for Ruby"),
        ("language = \"ruby\"\n  files = { \"../x.rb\" = \"\" }", "is not a relative path inside the package"),
        ("language = \"ruby\"\n  source_dir = \".\"\n  files = { \"a.rb\" = \"\" }", "Set source_dir or files"),
    ] {
        ws.write(&format!("{PROVIDER}\nresource \"adf_lambda_package\" \"p\" {{\n  {body}\n}}\n"))?;
        ws.assert_plan_error(message, "files")?;
    }
    Ok(())
}

/// The managed role's extra inline policy (URL-decoded), when it has one.
async fn extra_policy(config: &aws_config::SdkConfig, function: &str) -> Result<Option<String>> {
    let iam = aws_sdk_iam::Client::new(config);
    match iam.get_role_policy().role_name(format!("{function}-role")).policy_name("adf-extra").send().await {
        Ok(p) => Ok(Some(percent_encoding::percent_decode_str(&p.policy_document).decode_utf8_lossy().into_owned())),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A function of the same name that is not ours: the create fails naming it, before touching
/// its log group or making a role, and the function is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_over_someone_elses_function_touches_nothing() -> Result<()> {
    let emu = Emulator::start()?;
    let name = unique_name("theirs");
    let config = sdk_config(emu.endpoint()).await;
    let (lambda, iam) = (aws_sdk_lambda::Client::new(&config), aws_sdk_iam::Client::new(&config));
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = iam.create_role().role_name(format!("{name}-theirs")).assume_role_policy_document(trust).send().await?;
    let role_arn = role.role().map(|r| r.arn().to_string()).context("role arn")?;
    let zip = bootstrap_zip()?;
    lambda
        .create_function()
        .function_name(&name)
        .role(&role_arn)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(zip.clone().into()).build())
        .send()
        .await?;
    let group = format!("/aws/lambda/{name}");
    logs.create_log_group().log_group_name(&group).send().await?;
    logs.put_retention_policy().log_group_name(&group).retention_in_days(7).send().await?;

    let ws = Workspace::new(emu.endpoint())?;
    std::fs::write(ws.path().join("f.zip"), &zip)?;
    ws.write(&format!(
        "{PROVIDER}\nresource \"adf_function\" \"f\" {{\n  name = \"{name}\"\n  filename = \"f.zip\"\n  runtime = \"provided.al2023\"\n  \
         handler = \"bootstrap\"\n  log_retention_days = 30\n}}\n"
    ))?;
    let out = ws.run(&["apply", "-auto-approve", "-no-color"])?;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let err = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(err.contains(&format!("creating adf_function ({name})")), "{err}");
    assert!(err.contains("already exists and was not made by this provider"), "{err}");
    let groups = logs.describe_log_groups().log_group_name_prefix(&group).send().await?;
    let retention = groups.log_groups().iter().find(|g| g.log_group_name() == Some(group.as_str()));
    assert_eq!(retention.and_then(|g| g.retention_in_days()), Some(7), "their log group's retention changed");
    assert!(iam.get_role().role_name(format!("{name}-role")).send().await.is_err(), "a managed role was made");
    let theirs = lambda.get_function().function_name(&name).send().await?;
    assert_eq!(theirs.configuration().and_then(|c| c.role()), Some(role_arn.as_str()));
    assert!(ws.state_list()?.is_empty(), "nothing recorded");
    Ok(())
}
