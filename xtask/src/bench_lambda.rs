//! `cargo xtask bench --only lambda`: Lambda packaging figures, side by side in one run.
//! - a clean build of the Rust hello world with adf-packager and with `cargo lambda build
//!   --release --output-format zip`, as a ratio, and whether each gives identical zips twice;
//! - a no-op `terraform plan` over a source tree of 100,000 files against one of 10 files;
//! - a cache hit: the same sources in another checkout, against the cold build;
//! - a Go Lambda on aws-lambda-go: build time, zip size, reproducibility;
//! - the hello world's zip size and init duration under the local Lambda runner.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use adf_acceptance::lambda_runner::{FunctionSpec, LambdaRunner, LogControls};
use adf_acceptance::{Workspace, tools};
use adf_packager::{Language, PackageSpec};
use anyhow::{Context, Result, bail};

fn hello_world(root: &Path) -> PathBuf {
    root.join("examples/terraform/quickstart/hello")
}

fn spec(source: &Path, language: Language, cache: &Path) -> PackageSpec {
    PackageSpec::new(source, language, cache)
}

/// One build of `source` into a new package cache: time, zip bytes, and the cache.
fn timed_build(source: &Path, language: Language) -> Result<(Duration, Vec<u8>, tempfile::TempDir)> {
    let cache = tempfile::tempdir()?;
    let start = Instant::now();
    let a = adf_packager::build(&spec(source, language, cache.path()))?;
    let took = start.elapsed();
    Ok((took, std::fs::read(&a.path)?, cache))
}

/// The hello world's sources from another checkout, with the package cache of a build of the
/// first: the time to the cached zip.
fn cache_hit(root: &Path, cache: &Path) -> Result<Duration> {
    let original = spec(&hello_world(root), Language::Rust, cache);
    let first = adf_packager::cached(&original, &adf_packager::input_hash(&original)?).context("not cached")?;
    let checkout = tempfile::tempdir()?;
    adf_acceptance::copy_tree(&hello_world(root), &checkout.path().join("hello"))?;
    let start = Instant::now();
    let second = adf_packager::build(&spec(&checkout.path().join("hello"), Language::Rust, cache))?;
    let hit = start.elapsed();
    if second.path != first.path {
        bail!("the second checkout missed the cache");
    }
    Ok(hit)
}

/// One clean `cargo lambda build --release --output-format zip`: time and zip bytes.
fn cargo_lambda_build(root: &Path, bin: &Path) -> Result<(Duration, Vec<u8>)> {
    let work = tempfile::tempdir()?;
    let src = work.path().join("hello");
    adf_acceptance::copy_tree(&hello_world(root), &src)?;
    let start = Instant::now();
    let out = Command::new("cargo")
        .args(["lambda", "build", "--release", "--output-format", "zip"])
        .current_dir(&src)
        .env("PATH", tools::path_with(bin))
        .env("CARGO_TARGET_DIR", work.path().join("target"))
        .output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("cargo lambda build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let zip = work.path().join("target/lambda/hello/bootstrap.zip");
    Ok((took, std::fs::read(&zip).with_context(|| zip.display().to_string())?))
}

/// A Go module with `files` extra data files.
fn source_tree(dir: &Path, files: usize) -> Result<()> {
    let go = dir.join("go.mod");
    std::fs::create_dir_all(dir.join("data"))?;
    std::fs::write(go, "module example.com/big\n\ngo 1.19\n")?;
    std::fs::write(dir.join("main.go"), "package main\n\nfunc main() {}\n")?;
    for i in 0..files {
        std::fs::write(dir.join("data").join(format!("f{i:05}.txt")), format!("record {i}\n").repeat(8))?;
    }
    Ok(())
}

/// Median wall time of `runs` no-op plans over a tree of `files` files.
fn noop_plan(root: &Path, files: usize, runs: usize) -> Result<Duration> {
    let tree = tempfile::tempdir()?;
    source_tree(tree.path(), files)?;
    let ws = Workspace::with_provider("http://127.0.0.1:9", &crate::target_dir(root).join("release"))?;
    ws.write(&format!(
        "terraform {{\n  required_providers {{\n    adf = {{ source = \"activedataflow/adf\" }}\n  }}\n}}\n\
         provider \"adf\" {{\n  region = \"us-east-1\"\n  skip_credentials_validation = true\n}}\n\
         resource \"adf_lambda_package\" \"big\" {{\n  source_dir = \"{}\"\n  language = \"go\"\n}}\n",
        tree.path().display()
    ))?;
    ws.apply()?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = ws.plan_code()?;
        times.push(start.elapsed());
        if out.code != 0 {
            bail!("the plan over {files} files is not empty:\n{}", out.stdout);
        }
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Set in the re-executed bench process once the tools are on its PATH.
const READY: &str = "ADF_BENCH_TOOLS_READY";

pub fn run(root: &Path, runs: usize) -> Result<()> {
    let bin = tools::venv_dir(root, "bench-tools", "ADF_BENCH_TOOLS_VENV").join("bin");
    if std::env::var_os(READY).is_none() {
        println!("==> installing build tools and cargo-lambda (pinned)");
        tools::ensure_languages()?;
        let mut reqs = tools::pins(root, "build-tools.txt")?;
        reqs.extend(tools::pins(root, "bench-tools.txt")?);
        let reqs: Vec<&str> = reqs.iter().map(String::as_str).collect();
        tools::venv_install(root, &tools::venv_dir(root, "bench-tools", "ADF_BENCH_TOOLS_VENV"), &reqs, None)?;
        crate::cargo(root, &["build", "--release", "--package", "terraform-provider-adf"])?;
        // adf-packager (here and in the provider) finds cargo-zigbuild on PATH: run the
        // measurements in a child that has the tools on its PATH.
        let status = Command::new(std::env::current_exe()?)
            .args(["bench", "--only", "lambda", "--runs", &runs.to_string()])
            .env("PATH", tools::path_with(&bin))
            .env(READY, "1")
            .status()?;
        if !status.success() {
            bail!("the Lambda benchmark failed ({status})");
        }
        return Ok(());
    }

    println!("==> two clean builds of the Rust hello world with each tool");
    let (adf1, zip1, cache1) = timed_build(&hello_world(root), Language::Rust)?;
    let (adf2, zip2, _) = timed_build(&hello_world(root), Language::Rust)?;
    let (cl1, czip1) = cargo_lambda_build(root, &bin)?;
    let (cl2, czip2) = cargo_lambda_build(root, &bin)?;

    println!("==> a cache hit: the hello world from another checkout, same package cache");
    let (cold, hit) = (adf1, cache_hit(root, cache1.path())?);

    println!("==> the Go Lambda on aws-lambda-go, twice from clean package caches");
    let go_sdk = root.join("tests/acceptance/fixtures/hello-go-sdk");
    let (go1, gozip1, _) = timed_build(&go_sdk, Language::Go)?;
    let (go2, gozip2, _) = timed_build(&go_sdk, Language::Go)?;

    println!("==> no-op plans over 10 and 100,000 source files");
    let small = noop_plan(root, 10, runs)?;
    let big = noop_plan(root, 100_000, runs)?;
    let tree = tempfile::tempdir()?;
    source_tree(tree.path(), 100_000)?;
    let cache = tempfile::tempdir()?;
    let hash_start = Instant::now();
    adf_packager::input_hash(&spec(tree.path(), Language::Go, cache.path()))?;
    let hash_big = hash_start.elapsed();

    println!("==> init duration of the hello world under the local Lambda runner");
    let rt = tokio::runtime::Runtime::new()?;
    let zip_file = tempfile::Builder::new().suffix(".zip").tempfile()?;
    std::fs::write(zip_file.path(), &zip1)?;
    let mut inits = Vec::new();
    for _ in 0..runs {
        let f = FunctionSpec {
            zip: zip_file.path().to_path_buf(),
            environment: Default::default(),
            name: "bench".into(),
            arn: "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
            memory_mb: 128,
            endpoint: "http://127.0.0.1:9".into(),
            logging: LogControls::default(),
        };
        let init = rt.block_on(async {
            let runner = LambdaRunner::start(&f).await?;
            runner.invoke(&serde_json::json!({})).await?;
            runner.init_duration().context("no init")
        })?;
        inits.push(init);
    }
    inits.sort();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "\n| Rust hello world, clean build | adf_lambda_package | cargo lambda build --release --output-format zip |"
    );
    println!("|---|---|---|");
    println!("| first build | {:.1} s | {:.1} s |", adf1.as_secs_f64(), cl1.as_secs_f64());
    println!("| second build | {:.1} s | {:.1} s |", adf2.as_secs_f64(), cl2.as_secs_f64());
    println!(
        "| time ratio (adf / cargo lambda, both runs) | {:.2} | 1.00 |",
        (adf1 + adf2).as_secs_f64() / (cl1 + cl2).as_secs_f64()
    );
    println!("| two clean builds byte-identical | {} | {} |", zip1 == zip2, czip1 == czip2);
    println!("| zip size | {} bytes | {} bytes |", zip1.len(), czip1.len());
    println!("\n| measurement | value |");
    println!("|---|---|");
    println!("| no-op `terraform plan`, 10 source files (median of {runs}) | {:.0} ms |", ms(small));
    println!("| no-op `terraform plan`, 100,000 source files (median of {runs}) | {:.0} ms |", ms(big));
    println!("| input hash of 100,000 files alone | {:.0} ms |", ms(hash_big));
    println!(
        "| cache hit (hello world from a second checkout, same cache) / cold build | {:.1} ms / {:.1} s = {:.4} |",
        ms(hit),
        cold.as_secs_f64(),
        hit.as_secs_f64() / cold.as_secs_f64()
    );
    println!(
        "| Go on aws-lambda-go: first build, second build (clean package cache, warm Go build cache) | {:.1} s, {:.1} s |",
        go1.as_secs_f64(),
        go2.as_secs_f64()
    );
    println!(
        "| Go on aws-lambda-go: zip size, two builds byte-identical | {} bytes, {} |",
        gozip1.len(),
        gozip1 == gozip2
    );
    println!("| hello world init duration (median of {runs}) | {:.1} ms |", ms(inits[inits.len() / 2]));
    Ok(())
}
