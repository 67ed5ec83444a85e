//! `examples/terraform/quickstart` as README.md gives it (built on `modules/`): init, apply, an
//! empty second plan, the outputs, the bot using its bound stores, destroy. `cargo xtask test` runs it with Terraform and with
//! OpenTofu.

use adf_acceptance::{Emulator, Workspace, unique_name};
use anyhow::{Context, Result};

#[test]
fn quickstart_applies_plans_nothing_more_and_destroys() -> Result<()> {
    let emu = Emulator::start()?;
    // The quickstart uses modules/ by relative path: keep the repository's layout.
    let ws = Workspace::new(emu.endpoint())?.with_repo_dirs(&["modules", "examples/terraform/quickstart"])?;
    adf_acceptance::storage_bot::link_to_repo(ws.path())?;
    ws.init(&[])?;
    // moto cannot run Lambda code: keep the worker off the queue, as the demo does.
    let name = unique_name("qs");
    std::fs::write(ws.path().join("test.auto.tfvars"), format!("worker_on_queue = false\nname = \"{name}\"\n"))?;
    ws.apply()?;
    ws.assert_empty_plan()?;

    let outputs: serde_json::Value = serde_json::from_str(&ws.run(&["output", "-json"])?.ok()?.stdout)?;
    for key in [
        "queue_url",
        "hello_url",
        "hello_zip",
        "orders_endpoint",
        "orders_function",
        "workflow_function",
        "bot_function",
        "bot_zip",
        "uploads_bucket",
    ] {
        let value = outputs[key]["value"].as_str().with_context(|| format!("output {key}: {outputs}"))?;
        assert!(!value.is_empty(), "output {key} is empty");
    }
    assert_eq!(outputs["tables"]["value"]["contexts"], format!("{name}-contexts"));

    // The bot, from its deployed zip under the local runner, uses the stores bound to it.
    let bot_zip = outputs["bot_zip"]["value"].as_str().context("bot_zip")?.to_string();
    let bot = outputs["bot_function"]["value"].as_str().context("bot_function")?.to_string();
    let steps = tokio::runtime::Runtime::new()?.block_on(adf_acceptance::storage_bot::exercise(
        &emu,
        std::path::Path::new(&bot_zip),
        &bot,
    ))?;
    assert_eq!(steps.len(), 4, "{steps:?}");

    ws.destroy()?;
    assert!(ws.state_list()?.is_empty(), "destroy left {:?}", ws.state_list()?);
    Ok(())
}
