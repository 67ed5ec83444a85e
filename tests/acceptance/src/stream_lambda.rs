//! The stream Lambda zip "released with the provider": built from `runtime/stream` by our own
//! packager and placed beside the provider binary, where `adf_stream_topic` looks for it.

use std::path::PathBuf;

use adf_packager::{Architecture, Language, PackageSpec};
use anyhow::{Context, Result};

/// The file name the provider looks for beside its binary.
pub const ZIP_NAME: &str = "adf-stream-lambda.zip";

/// Builds the stream Lambda (cached by source hash), copies it beside the provider binary and
/// returns that path. The first build compiles the AWS SDK for Lambda's glibc: minutes.
pub fn zip() -> Result<PathBuf> {
    // One build at a time in this process: parallel tests would each start one.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let spec = PackageSpec {
        source_dir: crate::repo_root().join("runtime/stream"),
        language: Language::Rust,
        architecture: Architecture::X86_64,
        binary: Some("adf-stream-lambda".into()),
        handler: None,
        excludes: vec!["tests/".into()],
        cache_dir: crate::package_cache(),
    };
    let built = adf_packager::build(&spec).context("building the stream Lambda")?;
    let target = crate::terraform::provider_dir()?.join(ZIP_NAME);
    let same = crate::lambda_runner::code_sha256(&target).is_ok_and(|h| h == built.source_code_hash);
    if !same {
        // Tests run in parallel: write aside, then rename into place atomically.
        let tmp = target.with_extension(format!("zip.{}", std::process::id()));
        std::fs::copy(&built.path, &tmp)?;
        std::fs::rename(&tmp, &target)?;
    }
    Ok(target)
}
