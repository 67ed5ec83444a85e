//! Go: a static `bootstrap` for `provided.al2023`, built reproducibly.

use std::path::Path;
use std::process::Command;

use crate::toolchain::Toolchain;
use crate::{Entry, PackageError, PackageSpec, entry_from, run};

/// Builds `bootstrap` in `work` and returns the archive entries.
pub fn build(spec: &PackageSpec, _toolchain: &Toolchain, work: &Path) -> Result<Vec<Entry>, PackageError> {
    let out = work.join("bootstrap");
    let mut cmd = Command::new("go");
    cmd.current_dir(&spec.source_dir)
        .args(["build", "-trimpath", "-buildvcs=false", "-tags", "lambda.norpc", "-ldflags", "-s -w -buildid=", "-o"])
        .arg(&out)
        .arg(".")
        .env("GOOS", "linux")
        .env("GOARCH", spec.architecture.goarch())
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local");
    run(&mut cmd)?;
    Ok(vec![entry_from(&out, "bootstrap", 0o755)?])
}
