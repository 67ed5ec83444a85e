//! The demo: build the provider, start moto, apply the quickstart, use what it made, destroy.

use std::path::Path;

use adf_acceptance::{Emulator, Workspace, sdk_config};
use anyhow::{Context, Result, bail};

pub fn run(root: &Path, keep: bool) -> Result<()> {
    println!("==> building terraform-provider-adf");
    crate::cargo(root, &["build", "--package", "terraform-provider-adf"])?;
    println!("==> installing the emulator and the Lambda build tools (pinned)");
    adf_acceptance::emulator::install(root)?;
    adf_acceptance::tools::ensure_languages()?;
    let build_tools = adf_acceptance::tools::install_build_tools(root)?;
    adf_acceptance::tools::install_tofu(root)?;
    crate::place_runtime_zips(root, None, None)?;
    let cli = adf_acceptance::terraform::cli()?;
    println!("==> {} ({})", adf_acceptance::terraform::cli_version(&cli)?, cli.display());
    println!("==> starting the local AWS emulator (moto server)");
    let emu = Emulator::start()?;
    println!("    {}", emu.endpoint());

    let ws = Workspace::with_provider(emu.endpoint(), &crate::target_dir(root).join("debug"))?
        .with_env("PATH", &adf_acceptance::tools::path_with(&build_tools).to_string_lossy())
        .with_repo_dirs(&["modules", "examples/terraform/quickstart"])?;
    adf_acceptance::storage_bot::link_to_repo(ws.path())?;
    ws.init(&[])?;
    // moto cannot run Lambda code: the demo feeds the deployed worker itself.
    std::fs::write(ws.path().join("demo.auto.tfvars"), "worker_on_queue = false\n")?;
    println!("==> terraform apply examples/terraform/quickstart");
    let applied = ws.apply()?;
    print_tail(&applied.stdout, 30);
    if ws.plan_code()?.code != 0 {
        bail!("the plan after apply is not empty");
    }
    println!("==> a second plan is empty");

    let outputs: serde_json::Value = serde_json::from_str(&ws.run(&["output", "-json"])?.ok()?.stdout)?;
    let zip = outputs["hello_zip"]["value"].as_str().context("hello_zip output")?.to_string();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(invoke_hello(root, emu.endpoint(), Path::new(&zip)))?;
    let orders = outputs["orders_function"]["value"].as_str().context("orders_function output")?.to_string();
    let stream_zip = crate::target_dir(root).join("debug").join(adf_acceptance::runtime_zips::STREAM_LAMBDA.zip_name);
    runtime.block_on(crate::demo_stream::exercise(&emu, &stream_zip, &orders, "quickstart-orders"))?;
    let worker = outputs["workflow_function"]["value"].as_str().context("workflow_function output")?.to_string();
    let worker_zip = crate::target_dir(root).join("debug").join(adf_acceptance::runtime_zips::WORKFLOW_WORKER.zip_name);
    runtime.block_on(crate::demo_workflow::exercise(
        &emu,
        &worker_zip,
        &worker,
        &outputs["workflow_client"]["value"],
    ))?;
    let bot = outputs["bot_function"]["value"].as_str().context("bot_function output")?.to_string();
    let bot_zip = outputs["bot_zip"]["value"].as_str().context("bot_zip output")?.to_string();
    println!("==> {bot} (the deployed zip, run locally) with its bound KV namespace, bucket and cache");
    for step in runtime.block_on(adf_acceptance::storage_bot::exercise(&emu, Path::new(&bot_zip), &bot))? {
        println!("    {:<68} {:>4} AWS requests  {}", step.label, step.requests, step.answer);
    }

    if keep {
        println!("\nResources kept at {} (AWS_ENDPOINT_URL). Press Enter to destroy and stop.", emu.endpoint());
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
    }
    println!("==> terraform destroy");
    ws.destroy()?;
    println!("==> done: {} AWS requests served by the emulator during the demo", emu.request_count());
    Ok(())
}

/// Runs the deployed hello function locally and calls it with a Function URL event.
async fn invoke_hello(root: &Path, endpoint: &str, zip: &Path) -> Result<()> {
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(endpoint).await);
    let spec = adf_acceptance::lambda_runner::deployed(&lambda, "quickstart-hello", zip, endpoint).await?;
    let runner = adf_acceptance::lambda_runner::LambdaRunner::start(&spec).await?;
    let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("tests/acceptance/fixtures/events/function-url.json"),
    )?)?;
    let answer = runner.invoke(&event).await?;
    println!(
        "==> quickstart-hello (the deployed zip, run locally): HTTP {} {:?}, init {:.1} ms",
        answer["statusCode"],
        answer["body"].as_str().unwrap_or_default(),
        runner.init_duration().map(|d| d.as_secs_f64() * 1000.0).unwrap_or_default()
    );
    if answer["statusCode"] != 200 {
        bail!("the function did not answer 200");
    }
    Ok(())
}

fn print_tail(text: &str, lines: usize) {
    let all: Vec<&str> = text.lines().collect();
    for l in &all[all.len().saturating_sub(lines)..] {
        println!("    {l}");
    }
}
