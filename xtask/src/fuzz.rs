//! `cargo xtask fuzz`: runs each cargo-fuzz target of `fuzz/` for a number of executions from
//! its regression corpus, prints the counts, and keeps the minimized corpus in
//! `fuzz/corpus/<target>`, which `provider/adf/tests/fuzz_corpus.rs` replays in every test run.
//!
//! cargo-fuzz (pinned) is installed under `.cache/cargo-fuzz` (or `ADF_CARGO_FUZZ_ROOT`). It
//! builds with the stable toolchain (`RUSTC_BOOTSTRAP=1` lets it pass libFuzzer's flags) and
//! without a sanitizer: the workspace forbids unsafe code, and a panic or an abort is what a
//! target reports.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The targets, in `fuzz/fuzz_targets/`.
pub const TARGETS: &[&str] = &["dynamic_value", "provider_rpc"];
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The longest input tried: Terraform values in these RPCs are small.
const MAX_LEN: u32 = 4096;

/// Runs every target (or `only`) for `runs` executions.
pub fn run(root: &Path, runs: u64, only: Option<&str>) -> Result<()> {
    let targets: Vec<&str> = TARGETS.iter().copied().filter(|t| only.is_none_or(|o| o == *t)).collect();
    if targets.is_empty() {
        bail!("unknown fuzz target {only:?}: {}", TARGETS.join(" or "));
    }
    let cargo_fuzz = install(root)?;
    let target_dir = super::target_dir(root).join("fuzz");
    let fuzz_dir = root.join("fuzz");
    let mut summary = Vec::new();
    for target in targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        let work = tempfile::Builder::new().prefix(&format!("adf-fuzz-{target}-")).tempdir()?;
        for entry in std::fs::read_dir(&corpus).with_context(|| format!("reading {}", corpus.display()))? {
            let entry = entry?;
            std::fs::copy(entry.path(), work.path().join(entry.file_name()))?;
        }
        println!("==> fuzzing {target}: {runs} executions from {} inputs", std::fs::read_dir(work.path())?.count());
        let out = fuzz_command(&cargo_fuzz, &fuzz_dir, &target_dir, "run")
            .arg(target)
            .arg(work.path())
            .args(["--", &format!("-runs={runs}"), &format!("-max_len={MAX_LEN}"), "-print_final_stats=1"])
            .output()
            .context("running cargo fuzz")?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            bail!(
                "{target} found a crash (artifact under fuzz/artifacts/{target}):\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let executed = stat(&log, "stat::number_of_executed_units:").context("no final stats")?;
        // Keep the smallest set of inputs that covers what this run reached.
        let status = fuzz_command(&cargo_fuzz, &fuzz_dir, &target_dir, "cmin").arg(target).arg(work.path()).status()?;
        if !status.success() {
            bail!("cargo fuzz cmin {target} failed ({status})");
        }
        for entry in std::fs::read_dir(&corpus)? {
            let entry = entry?;
            if !entry.file_name().to_string_lossy().starts_with("seed-") {
                std::fs::remove_file(entry.path())?;
            }
        }
        let mut kept = 0;
        for entry in std::fs::read_dir(work.path())? {
            let entry = entry?;
            let dest = corpus.join(entry.file_name());
            if !dest.exists() {
                std::fs::copy(entry.path(), dest)?;
                kept += 1;
            }
        }
        summary.push(format!("{target}: {executed} executions, 0 panics, 0 aborts; corpus {kept} inputs kept"));
    }
    for line in summary {
        println!("{line}");
    }
    Ok(())
}

/// `cargo fuzz <sub>` with the build options every run shares (release, no sanitizer).
fn fuzz_command(cargo_fuzz: &Path, fuzz_dir: &Path, target_dir: &Path, sub: &str) -> Command {
    let mut c = Command::new(cargo_fuzz);
    c.current_dir(fuzz_dir).env("RUSTC_BOOTSTRAP", "1").env("CARGO_TARGET_DIR", target_dir);
    c.args([sub, "--sanitizer", "none", "--release"]);
    c
}

/// The number after `label` in libFuzzer's final stats.
fn stat(log: &str, label: &str) -> Option<u64> {
    log.lines().find_map(|l| l.trim().strip_prefix(label)).and_then(|n| n.trim().parse().ok())
}

/// cargo-fuzz, pinned, installed once.
fn install(root: &Path) -> Result<std::path::PathBuf> {
    let dir = adf_acceptance::tools::venv_dir(root, "cargo-fuzz", "ADF_CARGO_FUZZ_ROOT");
    let bin = dir.join("bin/cargo-fuzz");
    let installed = Command::new(&bin).arg("--version").output().ok();
    if installed.is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ_VERSION)) {
        return Ok(bin);
    }
    println!("==> installing cargo-fuzz {CARGO_FUZZ_VERSION}");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION, "--root"])
        .arg(&dir)
        .status()?;
    if !status.success() {
        bail!("installing cargo-fuzz failed ({status})");
    }
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_stats_are_read() {
        let log =
            "#1000000\tDONE   cov: 812 ft: 2301\nstat::number_of_executed_units: 1000000\nstat::peak_rss_mb: 61\n";
        assert_eq!(stat(log, "stat::number_of_executed_units:"), Some(1_000_000));
        assert_eq!(stat(log, "stat::new_units_added:"), None);
    }
}
