//! Developer tasks. `cargo xtask --help` lists them.

mod bench;
mod bench_lambda;
mod bench_scale;
mod bench_storage;
mod bench_stream;
mod bench_stream_lambda;
mod bench_workflow;
mod demo;
mod demo_stream;
mod demo_workflow;
mod fuzz;
mod module_docs;
mod release;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "terraform-provider-adf developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the provider, start moto, apply the quickstart, exercise it, show the result, destroy.
    Demo {
        /// Keep the resources and the emulator until Enter is pressed.
        #[arg(long)]
        keep: bool,
    },
    /// Install what the tests need (moto, OpenTofu), build the provider, run every test with
    /// `ADF_TF` (else terraform on PATH, else OpenTofu); with both CLIs and no filter, OpenTofu
    /// also runs every resource's lifecycle test, the quickstart and the modules' tests.
    Test {
        /// Extra arguments for `cargo test`, after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// The local AWS emulator.
    Emulator {
        #[command(subcommand)]
        action: EmulatorAction,
    },
    /// Regenerate docs/ from the schemas (or, with --check, fail when they are stale).
    Docs {
        /// Only check.
        #[arg(long)]
        check: bool,
    },
    /// Regenerate the input and output tables of modules/*/README.md (or, with --check, fail
    /// when they are stale).
    ModuleDocs {
        /// Only check.
        #[arg(long)]
        check: bool,
    },
    /// Measure the provider (start-up, size, memory) and Lambda packaging against their peers.
    Bench {
        /// Runs per measurement.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Only `provider`, `lambda`, `stream` (`stream-commits`: its contending producers
        /// alone), `workflow`, `storage` or `scale`.
        #[arg(long)]
        only: Option<String>,
        /// How many `adf_workflow_tables` and how many `adf_function` the scale benchmark plans.
        #[arg(long, default_value_t = 100)]
        resources: usize,
    },
    /// Fuzz DynamicValue decoding and every RPC of the provider server (cargo-fuzz targets in
    /// fuzz/), print the executions, and keep the minimized regression corpus the tests replay.
    Fuzz {
        /// Executions per target.
        #[arg(long, default_value_t = 1_000_000)]
        runs: u64,
        /// Only `dynamic_value` or `provider_rpc`.
        #[arg(long)]
        only: Option<String>,
    },
    /// Build the Lambda zips released with the provider (`adf-stream-lambda.zip` from
    /// `runtime/stream`, `adf-workflow-worker.zip` from `runtime/workflow`) and place them beside
    /// the provider binary, where `adf_stream_topic` and `adf_workflow` find them: what a release
    /// archive ships. Builds the provider and installs the Lambda build tools first, as `test`
    /// does.
    RuntimeZips {
        /// Copy them into this directory instead (and build no provider).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Build with this Cargo profile of the workspace (default `release`; the release
        /// ships `dist`).
        #[arg(long)]
        profile: Option<String>,
    },
    /// Write the release artifacts the registries take: per target a zip of the optimized
    /// provider (pinning the runtime zips it carries), the manifest, SHA256SUMS, its signature
    /// (the key in ADF_RELEASE_GPG_KEY) and the public key.
    Release(release::Options),
}

#[derive(Subcommand)]
enum EmulatorAction {
    /// Install moto server (pinned) into .cache/moto-venv.
    Install,
    /// Start moto on a free port and wait for Ctrl-C.
    Start,
}

fn main() -> Result<()> {
    let root = adf_acceptance::repo_root();
    match Cli::parse().task {
        Task::Demo { keep } => demo::run(&root, keep),
        Task::Test { args } => test(&root, &args),
        Task::Emulator { action: EmulatorAction::Install } => {
            let server = adf_acceptance::emulator::install(&root)?;
            println!("moto server: {}", server.display());
            Ok(())
        }
        Task::Emulator { action: EmulatorAction::Start } => {
            adf_acceptance::emulator::install(&root)?;
            let emu = adf_acceptance::Emulator::start()?;
            println!(
                "moto is serving at {}\nexport AWS_ENDPOINT_URL={}\nPress Enter to stop.",
                emu.endpoint(),
                emu.endpoint()
            );
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            Ok(())
        }
        Task::Docs { check } => docs(&root, check),
        Task::ModuleDocs { check } => module_docs::run(&root, check),
        Task::RuntimeZips { out, profile } => {
            if std::env::var_os(BUILD_TOOLS_ON_PATH).is_none() {
                // Run by hand: install the build tools as `test` does, then run this again
                // with them on PATH.
                return place_runtime_zips(&root, out.as_deref(), profile.as_deref());
            }
            for zip in adf_acceptance::runtime_zips::ALL {
                let placed = match &out {
                    Some(dir) => {
                        std::fs::create_dir_all(dir)?;
                        let built = adf_acceptance::runtime_zips::build(&zip, profile.as_deref())?;
                        std::fs::copy(&built.path, dir.join(zip.zip_name))?;
                        dir.join(zip.zip_name)
                    }
                    None => adf_acceptance::runtime_zips::place(&zip)?,
                };
                println!("{}", placed.display());
            }
            Ok(())
        }
        Task::Release(options) => release::run(&root, &options),
        Task::Fuzz { runs, only } => fuzz::run(&root, runs, only.as_deref()),
        Task::Bench { runs, only, resources } => match only.as_deref() {
            Some("provider") => bench::run(&root, runs),
            Some("lambda") => bench_lambda::run(&root, runs),
            Some("stream") => bench_stream::run(false).and_then(|()| stream_lambda_bench(&root, runs)),
            Some("stream-commits") => bench_stream::run(true),
            Some("workflow") => bench_workflow::run(),
            Some("storage") => bench_storage::run(),
            Some("scale") => bench_scale::run(&root, resources),
            None => bench::run(&root, runs)
                .and_then(|()| bench_stream::run(false))
                .and_then(|()| stream_lambda_bench(&root, runs))
                .and_then(|()| bench_workflow::run())
                .and_then(|()| bench_storage::run())
                .and_then(|()| bench_lambda::run(&root, runs))
                .and_then(|()| bench_scale::run(&root, resources)),
            Some(other) => bail!(
                "unknown benchmark {other:?}: provider, lambda, stream, stream-commits, workflow, storage or scale"
            ),
        },
    }
}

/// Runs `cargo` with `args` in `root`, failing on a non-zero exit.
fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(root)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Builds the provider and the runtime zips beside it, and the released ones (profile
/// `dist`), then measures the stream Lambda's, side by side.
fn stream_lambda_bench(root: &Path, runs: usize) -> Result<()> {
    place_runtime_zips(root, None, None)?;
    let name = adf_acceptance::runtime_zips::STREAM_LAMBDA.zip_name;
    let dist = target_dir(root).join("dist-runtime-zips");
    place_runtime_zips(root, Some(&dist), Some(release::DIST_PROFILE))?;
    let zips = [
        ("release profile (tests)", target_dir(root).join("debug").join(name)),
        ("dist profile (released)", dist.join(name)),
    ];
    bench_stream_lambda::run(&zips, runs)
}

/// Set when `xtask runtime-zips` runs with the Lambda build tools on PATH.
const BUILD_TOOLS_ON_PATH: &str = "ADF_XTASK_BUILD_TOOLS";

/// Builds the runtime zips into `out`, else beside the provider binary (which it builds first):
/// installs the Lambda build tools, then runs `xtask runtime-zips` with them on PATH. A first
/// cold build of each takes minutes; later ones hit the package cache.
fn place_runtime_zips(root: &Path, out: Option<&Path>, profile: Option<&str>) -> Result<()> {
    if out.is_none() {
        cargo(root, &["build", "--package", "terraform-provider-adf"])?;
    }
    adf_acceptance::tools::ensure_languages()?;
    let build_tools = adf_acceptance::tools::install_build_tools(root)?;
    println!("==> building the Lambda zips released with the provider (stream Lambda, workflow worker)");
    let debug = target_dir(root).join("debug");
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("runtime-zips");
    if let Some(dir) = out {
        cmd.arg("--out").arg(dir);
    }
    if let Some(p) = profile {
        cmd.arg("--profile").arg(p);
    }
    let status = cmd
        .env("PATH", adf_acceptance::tools::path_with(&build_tools))
        .env(BUILD_TOOLS_ON_PATH, "1")
        .env("ADF_PROVIDER_DIR", &debug)
        .env("ADF_PACKAGE_CACHE", debug.join("adf-package-cache"))
        .status()
        .context("running xtask runtime-zips")?;
    if !status.success() {
        bail!("building the runtime zips failed ({status})");
    }
    Ok(())
}

/// The cargo target directory (`CARGO_TARGET_DIR` or `<root>/target`).
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

fn test(root: &Path, extra: &[String]) -> Result<()> {
    adf_acceptance::tools::ensure_languages()?;
    let tofu = adf_acceptance::tools::install_tofu(root)?;
    let terraform = adf_acceptance::terraform::find_on_path("terraform");
    for cli in terraform.iter().chain([&tofu]) {
        println!("==> {} ({})", adf_acceptance::terraform::cli_version(cli)?, cli.display());
    }
    let cli = adf_acceptance::terraform::cli()?;
    println!("==> every test runs with {}", cli.display());
    // Both CLIs at hand (and no filter, no ADF_TF): OpenTofu also runs every resource's
    // lifecycle test, the quickstart and the modules' tests (the install tests run every CLI).
    let second = terraform.is_some() && extra.is_empty() && std::env::var_os("ADF_TF").is_none();
    println!("==> installing the emulator (moto server, pinned)");
    adf_acceptance::emulator::install(root)?;
    println!("==> installing Redis and PostgreSQL (Debian packages, when missing) for the storage tests");
    adf_acceptance::redis::ensure_installed()?;
    adf_acceptance::postgres::ensure_installed()?;
    println!(
        "==> installing Apache Kafka {} (jars from Maven Central) for the Kafka topic tests",
        adf_acceptance::kafka::KAFKA_VERSION
    );
    adf_acceptance::kafka::ensure_installed(root)?;
    println!("==> installing the Lambda build tools (Go, Ruby, cargo-zigbuild + ziglang, pinned)");
    let build_tools = adf_acceptance::tools::install_build_tools(root)?;
    println!("==> building the provider");
    place_runtime_zips(root, None, None)?;
    println!("==> running every test");
    // Every test binary runs even after one fails, so a red run shows every failure.
    let mut args = vec!["test", "--workspace", "--no-fail-fast"];
    if !extra.is_empty() {
        args.push("--");
        args.extend(extra.iter().map(String::as_str));
    }
    let (mut passed, mut failed, mut ok) = cargo_test(root, &build_tools, &args, None)?;
    if second {
        println!("==> with OpenTofu (ADF_TF=tofu): every resource's lifecycle test, the quickstart and the modules");
        // The whole workspace, filtered: `--package adf-acceptance` alone would unify features
        // differently and rebuild the AWS SDK crates.
        let args = ["test", "--workspace", "--no-fail-fast", "--tests", "--", "lifecycle", "quickstart", "modules"];
        let (p, f, o) = cargo_test(root, &build_tools, &args, Some("tofu"))?;
        (passed, failed, ok) = (passed + p, failed + f, ok && o);
    }
    if extra.is_empty() {
        println!("==> the workflow invariants with DynamoDB on dynalite (atomic without our launcher's lock)");
        let (p, f, o) = workflow_invariants_on_dynalite(root)?;
        (passed, failed, ok) = (passed + p, failed + f, ok && o);
    }
    // One closing line for the whole run: the last binary cargo runs may have no tests.
    println!("{passed} passed, {failed} failed");
    if !ok {
        bail!("cargo test failed");
    }
    if passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

/// Runs `cargo <args>` with the build tools on PATH (and `ADF_TF=<tf>`), echoing its output;
/// returns the tests passed and failed and whether it succeeded.
fn cargo_test(root: &Path, build_tools: &Path, args: &[&str], tf: Option<&str>) -> Result<(u64, u64, bool)> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args).current_dir(root).env("PATH", adf_acceptance::tools::path_with(build_tools));
    if let Some(tf) = tf {
        cmd.env("ADF_TF", tf);
    }
    run_tests(cmd, &format!("cargo {}", args.join(" ")))
}

/// The workflow's invariants once more with DynamoDB on dynalite and SQS on moto: the test
/// binary the workspace pass built (`cargo test --no-run` names it), run directly, because
/// `--test invariants` would also run the stream's.
fn workflow_invariants_on_dynalite(root: &Path) -> Result<(u64, u64, bool)> {
    adf_acceptance::dynalite::ensure_installed(root)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["test", "--workspace", "--test", "invariants", "--no-run", "--message-format=json"])
        .current_dir(root)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo test --no-run")?;
    let binary = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| {
            m["package_id"].as_str().is_some_and(|p| p.contains("runtime/workflow"))
                && m["target"]["name"] == "invariants"
        })
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo built no invariants test binary for runtime/workflow")?;
    let mut cmd = Command::new(&binary);
    cmd.current_dir(root.join("runtime/workflow")).env(adf_acceptance::dynalite::DYNAMODB_ENV, "dynalite");
    run_tests(cmd, &binary.display().to_string())
}

/// Runs `cmd` (a test run), echoing its output; returns the tests passed and failed and
/// whether it succeeded.
fn run_tests(mut cmd: Command, what: &str) -> Result<(u64, u64, bool)> {
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().with_context(|| format!("running {what}"))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in std::io::BufReader::new(child.stdout.take().context("stdout")?).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        println!("{what} failed ({status})");
    }
    Ok((passed, failed, status.success()))
}

/// The number before `label` in a `test result:` line ("ok. 7 passed; 0 failed; ...").
fn count(line: &str, label: &str) -> u64 {
    line.split(';')
        .find_map(|part| {
            part.trim().trim_start_matches("ok. ").trim_start_matches("FAILED. ").strip_suffix(label.trim_start())
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn docs(root: &Path, check: bool) -> Result<()> {
    let mut stale = Vec::new();
    for (path, content) in adf::docs::render_all(root)? {
        let full = root.join(&path);
        if std::fs::read_to_string(&full).ok().as_deref() == Some(content.as_str()) {
            continue;
        }
        if check {
            stale.push(path.display().to_string());
        } else {
            if let Some(dir) = full.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&full, content)?;
            println!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        bail!("stale docs, run `cargo xtask docs`: {}", stale.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn test_result_lines_are_summed() {
        let line = "ok. 7 passed; 2 failed; 0 ignored; 0 measured; 1 filtered out; finished in 0.1s";
        assert_eq!(count(line, " passed"), 7);
        assert_eq!(count(line, " failed"), 2);
        assert_eq!(count("FAILED. 3 passed; 1 failed; 0 ignored", " failed"), 1);
    }
}
