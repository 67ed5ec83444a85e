//! The Lambda zips "released with the provider": the stream Lambda (`runtime/stream`) and the
//! workflow worker (`runtime/workflow`), built by our own packager and placed beside the
//! provider binary, where `adf_stream_topic` and `adf_workflow` look for them.

use std::path::PathBuf;

use adf_packager::{Language, PackageSpec};
use anyhow::{Context, Result};

/// One released zip: the crate it is built from, its binary, its file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeZip {
    /// The crate's directory, from the repository root.
    pub source_dir: &'static str,
    /// The binary packaged as `bootstrap`.
    pub binary: &'static str,
    /// The file name the provider looks for beside its binary.
    pub zip_name: &'static str,
}

/// `adf-stream-lambda.zip`, deployed by `adf_stream_topic`.
pub const STREAM_LAMBDA: RuntimeZip =
    RuntimeZip { source_dir: "runtime/stream", binary: "adf-stream-lambda", zip_name: "adf-stream-lambda.zip" };

/// `adf-workflow-worker.zip`, deployed by `adf_workflow`.
pub const WORKFLOW_WORKER: RuntimeZip =
    RuntimeZip { source_dir: "runtime/workflow", binary: "adf-workflow-worker", zip_name: "adf-workflow-worker.zip" };

/// Every zip released with the provider.
pub const ALL: [RuntimeZip; 2] = [STREAM_LAMBDA, WORKFLOW_WORKER];

/// Builds the stream Lambda and places it beside the provider binary; returns that path.
pub fn stream_lambda() -> Result<PathBuf> {
    place(&STREAM_LAMBDA)
}

/// Builds the workflow worker and places it beside the provider binary; returns that path.
pub fn workflow_worker() -> Result<PathBuf> {
    place(&WORKFLOW_WORKER)
}

/// Builds `zip` with the workspace's Cargo `profile` (default `release`; cached by source hash;
/// the first build compiles the AWS SDK for Lambda's glibc: minutes) and returns the built
/// artifact: its path in the package cache and hash.
pub fn build(zip: &RuntimeZip, profile: Option<&str>) -> Result<adf_packager::Artifact> {
    let spec = PackageSpec {
        binary: Some(zip.binary.into()),
        profile: profile.map(String::from),
        excludes: vec!["tests/".into()],
        ..PackageSpec::new(crate::repo_root().join(zip.source_dir), Language::Rust, crate::package_cache())
    };
    adf_packager::build(&spec).with_context(|| format!("building {}", zip.zip_name))
}

/// Builds `zip`, copies it beside the provider binary and returns that path.
pub fn place(zip: &RuntimeZip) -> Result<PathBuf> {
    // One build at a time in this process: parallel tests would each start one.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let built = build(zip, None)?;
    let target = crate::terraform::provider_dir()?.join(zip.zip_name);
    let same = crate::lambda_runner::code_sha256(&target).is_ok_and(|h| h == built.source_code_hash);
    if !same {
        // Tests run in parallel: write aside, then rename into place atomically.
        let tmp = target.with_extension(format!("zip.{}", std::process::id()));
        std::fs::copy(&built.path, &tmp)?;
        std::fs::rename(&tmp, &target)?;
    }
    Ok(target)
}
