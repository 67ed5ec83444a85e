//! `adf_function_alias` against the emulator with the real CLI and provider binaries: the
//! example (an alias following a published function) applied, an empty second plan, import, a
//! new version with a weighted canary, drift, disappears, destroy, and plan-time diagnostics.

use adf_acceptance::{
    Emulator, PROVIDER_BLOCK as PROVIDER, Workspace, bootstrap_zip, example_import_args, repo_root, sdk_config,
    set_attributes, unique_name,
};
use anyhow::{Context, Result, ensure};

const ADDRESS: &str = "adf_function_alias.live";

/// The example with a unique function deploying `f.zip` with `GREETING = greeting`, and
/// `settings` set on the alias.
fn example(function: &str, greeting: &str, settings: &[&str]) -> Result<String> {
    let path = repo_root().join("examples/terraform/resources/adf_function_alias/resource.tf");
    let hcl = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let from = hcl.find("# Every change").context("no function")?;
    let hcl = hcl[from..].replace("\"orders-api\"", &format!("\"{function}\"")).replace(
        "package = adf_lambda_package.api",
        &format!(
            "filename    = \"f.zip\"\n  runtime     = \"provided.al2023\"\n  handler     = \"bootstrap\"\n  \
             environment = {{ GREETING = \"{greeting}\" }}"
        ),
    );
    let mut lines: Vec<String> = hcl.lines().map(str::to_string).collect();
    let alias = lines.iter().position(|l| l.starts_with("resource \"adf_function_alias\"")).context("no alias")?;
    let mut tail = lines.split_off(alias);
    set_attributes(&mut tail, settings);
    lines.extend(tail);
    Ok(format!("{PROVIDER}\n{}\n", lines.join("\n")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_alias_follows_versions_canary_import_drift_disappears_destroy() -> Result<()> {
    let emu = Emulator::start()?;
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(emu.endpoint()).await);
    let function = unique_name("aliased");
    let ws = Workspace::new(emu.endpoint())?;
    std::fs::write(ws.path().join("f.zip"), bootstrap_zip()?)?;

    // 1. The example: the alias names the first published version.
    ws.write(&example(&function, "one", &[])?)?;
    ws.apply()?;
    let a = lambda.get_alias().function_name(&function).name("live").send().await?;
    assert_eq!(a.function_version(), Some("1"));
    assert_eq!(a.description(), Some("What callers invoke"));
    let state = ws.state_values(ADDRESS)?;
    assert_eq!(state["arn"].as_str(), a.alias_arn());
    assert!(state["arn"].as_str().is_some_and(|arn| arn.ends_with(&format!(":function:{function}:live"))));

    // 2. An empty second plan; import (the example's import.sh) gives the state back.
    ws.assert_empty_plan()?;
    ws.run(&["state", "rm", ADDRESS])?.ok()?;
    let args = example_import_args("adf_function_alias", &format!("{function}:live"))?;
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("-no-color");
    ws.run(&args)?.ok()?;
    let imported = ws.state_values(ADDRESS)?;
    for k in ["name", "function_version", "description", "arn", "invoke_arn"] {
        assert_eq!(imported[k], state[k], "{k}");
    }
    ws.assert_empty_plan()?;

    // 3. A new version: the alias follows it, keeping a quarter of invocations on version 1.
    ws.write(&example(&function, "two", &["routing = { \"1\" = 0.25 }"])?)?;
    ws.apply()?;
    let a = lambda.get_alias().function_name(&function).name("live").send().await?;
    assert_eq!(a.function_version(), Some("2"));
    let weights = a.routing_config().and_then(|r| r.additional_version_weights()).context("routing")?;
    assert_eq!(weights.get("1"), Some(&0.25));
    ws.assert_empty_plan()?;

    // 4. Drift: a description changed behind Terraform's back is planned back.
    lambda.update_alias().function_name(&function).name("live").description("hand-edited").send().await?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("\"hand-edited\" -> \"What callers invoke\""), "{}", plan.stdout);
    ws.apply()?;
    ws.assert_empty_plan()?;

    // 5. Disappears: the next apply makes the alias again.
    lambda.delete_alias().function_name(&function).name("live").send().await?;
    let plan = ws.plan_code()?;
    assert!(plan.stdout.contains("will be updated in-place"), "{}", plan.stdout);
    ws.apply()?;
    ensure!(lambda.get_alias().function_name(&function).name("live").send().await.is_ok(), "made again");
    ws.assert_empty_plan()?;

    // 6. Destroy.
    ws.destroy()?;
    ensure!(lambda.get_function().function_name(&function).send().await.is_err(), "the function is gone");
    Ok(())
}

#[test]
fn bad_input_is_a_plan_time_diagnostic_on_the_attribute() -> Result<()> {
    let ws = Workspace::new("http://127.0.0.1:9")?;
    let f = "{ arn = \"arn:aws:lambda:us-east-1:123456789012:function:f\", name = \"f\" }";
    for (settings, message, attribute) in [
        ("name = \"42\"\n  function_version = \"1\"", "not only digits", "name"),
        ("name = \"live\"\n  function_version = \"2\"\n  routing = { \"2\" = 0.5 }", "must differ", "routing"),
        (
            "name = \"live\"\n  function_version = \"2\"\n  routing = { \"1\" = 1.5 }",
            "is not between 0 and 1",
            "routing",
        ),
        (
            "name = \"live\"\n  function_version = \"2\"\n  routing = { \"1\" = 0.1, \"3\" = 0.1 }",
            "at most one",
            "routing",
        ),
    ] {
        ws.write(&format!(
            "{PROVIDER}\nresource \"adf_function_alias\" \"a\" {{\n  function = {f}\n  {settings}\n}}\n"
        ))?;
        ws.assert_plan_error(message, attribute)?;
    }
    Ok(())
}
