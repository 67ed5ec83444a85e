//! Acceptance-test harness: a moto server the project installed itself (or the endpoint in
//! `ADF_TEST_ENDPOINT`), the real `terraform` (or `tofu`) binary driving the real provider
//! binary through a `dev_overrides` CLI config (or installing it from release artifacts laid
//! out as a mirror), and AWS SDK clients to check the results.

pub mod counting_proxy;
pub mod dynalite;
pub mod emulator;
pub mod event_source;
pub mod faults;
pub mod function_url;
pub mod https_mirror;
pub mod kafka;
pub mod lambda_runner;
pub mod postgres;
pub mod redis;
pub mod release;
pub mod request_counter;
pub mod runtime_zips;
pub mod storage_bot;
pub mod terraform;
pub mod test_ca;
pub mod tools;

pub use emulator::Emulator;
pub use terraform::{TfOutput, Workspace, copy_tree};

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Sets each of `settings` (`key = value` lines) in an HCL block's `lines`: replacing the line
/// that sets `key`, else added after the block's first line.
pub fn set_attributes(lines: &mut Vec<String>, settings: &[&str]) {
    for setting in settings {
        let key = setting.split('=').next().unwrap_or_default().trim();
        match lines.iter_mut().find(|l| l.trim_start().split([' ', '=']).next() == Some(key)) {
            Some(line) => *line = format!("  {setting}"),
            None => lines.insert(1.min(lines.len()), format!("  {setting}")),
        }
    }
}

/// The arguments of the `terraform import` line in the example `import.sh` of `resource_type`,
/// with the id (its last word) replaced by `id`.
pub fn example_import_args(resource_type: &str, id: &str) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    let path = repo_root().join(format!("examples/terraform/resources/{resource_type}/import.sh"));
    let script = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let line = script.lines().find(|l| l.starts_with("terraform import")).context("no import line")?;
    let mut words: Vec<String> = line.split_whitespace().skip(1).map(str::to_string).collect();
    if let Some(last) = words.last_mut() {
        *last = id.to_string();
    }
    Ok(words)
}

/// A zip holding an executable `bootstrap` shell script that does nothing: a function
/// deployed, never run.
pub fn bootstrap_zip() -> anyhow::Result<Vec<u8>> {
    script_zip("")
}

/// A zip whose executable `bootstrap` is a shell script running `commands`.
pub fn script_zip(commands: &str) -> anyhow::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("bootstrap", zip::write::SimpleFileOptions::default().unix_permissions(0o755))?;
    std::io::Write::write_all(&mut w, format!("#!/bin/sh\n{commands}").as_bytes())?;
    Ok(w.finish()?.into_inner())
}

/// A name no other test (or earlier run against a shared endpoint) uses: `<prefix>-<unique>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}-{:x}{:x}{}", std::process::id() % 0xfff, nanos % 0xffff, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The package cache the tests share, so a fixture is built once per run and machine.
pub fn package_cache() -> PathBuf {
    std::env::var_os("ADF_PACKAGE_CACHE").map_or_else(
        || {
            std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().and_then(|p| p.parent()).map(|t| t.join("adf-package-cache")))
                .unwrap_or_else(|| std::env::temp_dir().join("adf-package-cache"))
        },
        PathBuf::from,
    )
}

/// A configuration header that requires the provider and configures it from the environment
/// (`AWS_ENDPOINT_URL`, credentials and region that [`Workspace`] sets).
pub const PROVIDER_BLOCK: &str = r#"
terraform {
  required_providers {
    adf = { source = "activedataflow/adf" }
  }
}

provider "adf" {}
"#;

/// A command for `program` that reaches the emulator at `endpoint` only: the test credentials
/// and region, no AWS config or credentials files (`scratch` is a directory to name a missing
/// one in), no instance metadata, and nothing else of this process's environment but `PATH`.
pub fn emulator_command(
    program: impl AsRef<std::ffi::OsStr>,
    endpoint: &str,
    scratch: &std::path::Path,
) -> tokio::process::Command {
    let missing = scratch.join("no-aws-files");
    let mut command = tokio::process::Command::new(program);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("AWS_CONFIG_FILE", &missing)
        .env("AWS_SHARED_CREDENTIALS_FILE", &missing)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

/// Region the tests use.
pub const REGION: &str = "us-east-1";

/// SDK clients pointed at `endpoint`, with the static test credentials.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new("test", "test", None, None, "acceptance"))
        .load()
        .await
}
