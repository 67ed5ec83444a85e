//! The provider binary as Terraform and people meet it: the schema Terraform reads, the hint
//! when run by hand, and `--debug` reattach.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use adf_acceptance::Workspace;
use adf_acceptance::terraform::provider_dir;
use anyhow::{Context, Result};

#[test]
fn terraform_reads_the_schema_with_a_description_on_every_attribute() -> Result<()> {
    let ws = Workspace::new("http://127.0.0.1:9")?;
    ws.write("terraform {\n  required_providers {\n    adf = { source = \"activedataflow/adf\" }\n  }\n}\n")?;
    let out = ws.run(&["providers", "schema", "-json"])?.ok()?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout)?;
    let p = &v["provider_schemas"][adf_acceptance::terraform::provider_address()?.as_str()];
    let mut blocks = vec![("provider".to_string(), p["provider"]["block"].clone())];
    let resource = &p["resource_schemas"]["adf_workflow_tables"];
    assert!(resource.is_object(), "adf_workflow_tables is listed");
    blocks.push(("adf_workflow_tables".to_string(), resource["block"].clone()));
    let mut checked = 0;
    while let Some((at, block)) = blocks.pop() {
        for (name, attr) in block["attributes"].as_object().into_iter().flatten() {
            let d = attr["description"].as_str().unwrap_or_default();
            assert!(!d.trim().is_empty(), "{at}.{name} has no description");
            checked += 1;
        }
        for (name, nested) in block["block_types"].as_object().into_iter().flatten() {
            blocks.push((format!("{at}.{name}"), nested["block"].clone()));
        }
    }
    assert!(checked > 40, "only {checked} attributes seen");
    assert_eq!(p["provider"]["block"]["attributes"]["secret_key"]["sensitive"], true);
    Ok(())
}

#[test]
fn run_by_hand_it_prints_a_hint_and_fails() -> Result<()> {
    let out =
        Command::new(provider_dir()?.join("terraform-provider-adf")).env_remove("TF_PLUGIN_MAGIC_COOKIE").output()?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("plugin for Terraform and OpenTofu"), "{stderr}");
    assert!(stderr.contains("--debug"), "{stderr}");
    Ok(())
}

#[test]
fn debug_mode_serves_terraform_through_tf_reattach_providers() -> Result<()> {
    let mut child = Command::new(provider_dir()?.join("terraform-provider-adf"))
        .arg("--debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let reattach = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.trim().strip_prefix("TF_REATTACH_PROVIDERS='").map(|r| r.trim_end_matches('\'').to_string()))
        .context("no TF_REATTACH_PROVIDERS line")?;
    let parsed: serde_json::Value = serde_json::from_str(&reattach)?;
    // Under both registry hosts: Terraform reads `activedataflow/adf` as registry.terraform.io/…,
    // OpenTofu as registry.opentofu.org/….
    for host in ["registry.terraform.io", "registry.opentofu.org"] {
        assert_eq!(parsed[format!("{host}/activedataflow/adf")]["ProtocolVersion"], 6, "{reattach}");
    }

    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("main.tf"),
        "terraform {\n  required_providers {\n    adf = { source = \"activedataflow/adf\" }\n  }\n}\n",
    )?;
    let out = Command::new(adf_acceptance::terraform::cli()?)
        .args(["providers", "schema", "-json"])
        .current_dir(dir.path())
        .env("TF_REATTACH_PROVIDERS", &reattach)
        .env("CHECKPOINT_DISABLE", "1")
        .output()?;
    let _ = child.kill();
    let _ = child.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("adf_workflow_tables"));
    Ok(())
}
