//! Rust: a release build of one binary, shipped as `bootstrap`, linked against Lambda's glibc.

use std::path::Path;
use std::process::Command;

use crate::toolchain::{LAMBDA_GLIBC, RustLinker, Toolchain};
use crate::{Entry, PackageError, PackageSpec, entry_from, run};

/// Builds the binary and returns the archive entries.
pub fn build(spec: &PackageSpec, toolchain: &Toolchain, _work: &Path) -> Result<Vec<Entry>, PackageError> {
    let bin = binary_name(spec)?;
    let manifest = spec.source_dir.join("Cargo.toml");
    // One target dir for every package: dependencies compile once per toolchain and target.
    let target_dir = spec.cache_dir.join("cargo-target");
    let triple = spec.architecture.rust_target();
    let mut cmd = match &toolchain.rust_linker {
        Some(RustLinker::Zigbuild(zigbuild)) => {
            let mut c = Command::new(zigbuild);
            c.arg("zigbuild").arg("--target").arg(format!("{triple}.{LAMBDA_GLIBC}"));
            c
        }
        _ => {
            let mut c = Command::new("cargo");
            c.arg("build").arg("--target").arg(triple);
            c
        }
    };
    cmd.arg("--release")
        .arg("--bin")
        .arg(&bin)
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    if spec.source_dir.join("Cargo.lock").is_file() {
        cmd.arg("--locked");
    }
    // Paths of this machine must not end up in the binary: remap them so that the same
    // sources and toolchain give the same bytes anywhere.
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_default();
    let source = spec.source_dir.canonicalize().unwrap_or_else(|_| spec.source_dir.clone());
    cmd.env(
        "RUSTFLAGS",
        format!("--remap-path-prefix={}=/build --remap-path-prefix={}=/cargo", source.display(), cargo_home.display()),
    )
    .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
    .env("CARGO_TERM_COLOR", "never");
    run(&mut cmd)?;
    let built = target_dir.join(triple).join("release").join(&bin);
    Ok(vec![entry_from(&built, "bootstrap", 0o755)?])
}

/// The binary to ship: the one named in `binary`, or the package's only binary.
fn binary_name(spec: &PackageSpec) -> Result<String, PackageError> {
    let out = Command::new("cargo")
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(spec.source_dir.join("Cargo.toml"))
        .output()
        .map_err(PackageError::io("running cargo metadata"))?;
    if !out.status.success() {
        return Err(PackageError::BuildFailed {
            command: "cargo metadata".into(),
            tail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| PackageError::Io { context: "reading cargo metadata".into(), source: std::io::Error::other(e) })?;
    let bins: Vec<String> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")))
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    match (&spec.binary, bins.as_slice()) {
        (Some(b), _) if bins.contains(b) => Ok(b.clone()),
        (Some(b), _) => Err(PackageError::Binary(format!("the package has no binary {b:?}; it has {bins:?}"))),
        (None, [only]) => Ok(only.clone()),
        (None, []) => Err(PackageError::Binary("the package has no binary target".into())),
        (None, many) => Err(PackageError::Binary(format!("the package has several binaries {many:?}: set binary"))),
    }
}
