//! The HCL modules in `modules/`: each module's own `terraform test` / `tofu test` files (real
//! applies against moto, plan-only checks with a mocked provider) run by the CLI in use, and
//! `fmt` and `validate` over the modules and examples. The test files fix their resource
//! names: each test starts its own moto.

use std::path::{Path, PathBuf};

use adf_acceptance::{Emulator, Workspace};
use anyhow::{Context, Result, bail, ensure};

/// What `test` printed: the run blocks that passed and failed, and the closing line's counts.
#[derive(Debug, Default, PartialEq)]
struct TestReport {
    passed_runs: Vec<String>,
    failed_runs: Vec<String>,
    summary: Option<(usize, usize)>,
}

impl TestReport {
    /// Reads `run "name"... pass` lines and the closing `Success! N passed, M failed.` (or
    /// `Failure! ...`) line, as Terraform and OpenTofu print them.
    fn parse(stdout: &str) -> Self {
        let mut report = Self::default();
        for line in stdout.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("run \"")
                && let Some((name, status)) = rest.split_once("\"... ")
            {
                match status.trim() {
                    "pass" => report.passed_runs.push(name.to_string()),
                    "fail" | "error" => report.failed_runs.push(name.to_string()),
                    _ => {}
                }
            } else if let Some(counts) = line.strip_prefix("Success! ").or_else(|| line.strip_prefix("Failure! ")) {
                let number = |label: &str| {
                    counts
                        .split(',')
                        .find_map(|part| part.trim().trim_end_matches('.').strip_suffix(label)?.trim().parse().ok())
                };
                report.summary = number(" passed").zip(number(" failed"));
            }
        }
        report
    }
}

/// Runs `init` and `test` in a copy of `modules/<name>` against a fresh moto, and checks that
/// exactly `runs` run blocks passed and none failed.
fn module_tests_pass(name: &str, runs: usize) -> Result<()> {
    let emu = Emulator::start()?;
    let dir = format!("modules/{name}");
    let ws = Workspace::new(emu.endpoint())?.with_repo_dirs(&[&dir])?;
    ws.init(&[])?;
    let out = ws.run(&["test", "-no-color"])?;
    let report = TestReport::parse(&out.stdout);
    let context = || format!("{dir}: test exited {}\n--- stdout\n{}\n--- stderr\n{}", out.code, out.stdout, out.stderr);
    ensure!(out.code == 0, context());
    ensure!(report.failed_runs.is_empty(), "failed runs {:?}\n{}", report.failed_runs, context());
    ensure!(
        report.passed_runs.len() == runs,
        "{} runs passed, expected {runs}\n{}",
        report.passed_runs.len(),
        context()
    );
    ensure!(
        report.summary == Some((runs, 0)),
        "closing line {:?}, expected {runs} passed\n{}",
        report.summary,
        context()
    );
    Ok(())
}

#[test]
fn modules_workflow_tests_pass() -> Result<()> {
    // apply.tftest.hcl: 2 applies; variables.tftest.hcl: 6 plans with a mocked provider.
    module_tests_pass("workflow", 8)
}

#[test]
fn modules_stream_tests_pass() -> Result<()> {
    // apply.tftest.hcl: 2 applies; variables.tftest.hcl: 4 plans with a mocked provider.
    module_tests_pass("stream", 6)
}

#[test]
fn modules_function_tests_pass() -> Result<()> {
    // apply.tftest.hcl: 2 applies (a Ruby build); variables.tftest.hcl: 6 plans.
    module_tests_pass("function", 8)
}

/// `dir` and the directories under it, `depth` levels down at most, that hold `.tf` files.
fn configurations(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<()> {
    let mut has_tf = false;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() && depth > 0 {
            configurations(&path, depth - 1, found)?;
        } else if path.extension().is_some_and(|e| e == "tf") {
            has_tf = true;
        }
    }
    if has_tf {
        found.push(dir.to_path_buf());
    }
    Ok(())
}

#[test]
fn modules_hcl_is_formatted_and_valid() -> Result<()> {
    // validate reaches no AWS endpoint. Commands run in the copy of modules/; its parent holds
    // both trees.
    let ws = Workspace::new("http://127.0.0.1:9")?.with_repo_dirs(&["examples/terraform", "modules"])?;
    let top = ws.path().parent().context("workspace root")?.to_path_buf();
    // The quickstart's bot reaches runtime/storage by a relative path dependency.
    adf_acceptance::storage_bot::link_to_repo(&top.join("examples/terraform/quickstart"))?;
    for tree in ["modules", "examples/terraform"] {
        ws.run_in(&top, &["fmt", "-check", "-recursive", "-diff", "-no-color", tree])?
            .ok()
            .with_context(|| format!("{tree} is not formatted: run `terraform fmt -recursive {tree}`"))?;
    }

    // Every module and its examples, the root modules in examples/terraform, and the registry
    // docs' snippets below it, made whole.
    let mut dirs = Vec::new();
    configurations(&top.join("modules"), usize::MAX, &mut dirs)?;
    configurations(&top.join("examples/terraform"), 1, &mut dirs)?;
    complete_snippets(&top.join("examples/terraform"), &mut dirs)?;
    dirs.sort();
    let names: Vec<String> = dirs.iter().map(|d| d.strip_prefix(&top).unwrap_or(d).display().to_string()).collect();
    for expected in [
        "modules/function",
        "modules/stream/examples/basic",
        "examples/terraform/quickstart",
        "examples/terraform/resources/adf_workflow",
        "examples/terraform/data-sources/adf_lambda_package",
    ] {
        ensure!(names.iter().any(|n| n == expected), "{expected} not among {names:?}");
    }
    for (dir, name) in dirs.iter().zip(&names) {
        ws.init_in(dir, &["-backend=false"]).with_context(|| format!("init in {name}"))?;
        let out = ws.run_in(dir, &["validate", "-no-color"])?;
        if out.code != 0 || !out.stdout.contains("The configuration is valid") {
            bail!("{name} is not valid (exit {})\n{}\n{}", out.code, out.stdout, out.stderr);
        }
    }
    Ok(())
}

/// The registry docs' snippets (`resources/<type>/`, `data-sources/<type>/` under `examples`,
/// in the workspace's copy), completed so that they validate: the provider's source, and a
/// stub Rust and Go package in each source directory they name. Adds them to `found`.
fn complete_snippets(examples: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    const SOURCE: &str = "terraform {\n  required_providers {\n    adf = { source = \"activedataflow/adf\" }\n  }\n}\n";
    for kind in ["resources", "data-sources"] {
        for entry in std::fs::read_dir(examples.join(kind))? {
            let dir = entry?.path();
            let mut text = String::new();
            for file in std::fs::read_dir(&dir)? {
                let path = file?.path();
                if path.extension().is_some_and(|e| e == "tf") {
                    text.push_str(&std::fs::read_to_string(&path)?);
                }
            }
            if text.is_empty() {
                continue;
            }
            std::fs::write(dir.join("versions.tf"), SOURCE)?;
            for placeholder in text.split("${path.module}/").skip(1).filter_map(|rest| rest.split('"').next()) {
                let stub = dir.join(placeholder);
                std::fs::create_dir_all(stub.join("src"))?;
                std::fs::write(
                    stub.join("Cargo.toml"),
                    "[package]\nname = \"stub\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
                )?;
                std::fs::write(stub.join("src/main.rs"), "fn main() {}\n")?;
                std::fs::write(stub.join("go.mod"), "module stub\n\ngo 1.21\n")?;
                std::fs::write(stub.join("main.go"), "package main\n\nfunc main() {}\n")?;
            }
            found.push(dir);
        }
    }
    Ok(())
}

#[test]
fn modules_test_reports_are_read_from_both_clis() {
    let terraform = "tests/apply.tftest.hcl... in progress\n  run \"creates\"... pass\n  run \"updates\"... fail\n\
                     tests/apply.tftest.hcl... tearing down\ntests/apply.tftest.hcl... fail\n\nFailure! 1 passed, 1 failed.\n";
    assert_eq!(
        TestReport::parse(terraform),
        TestReport { passed_runs: vec!["creates".into()], failed_runs: vec!["updates".into()], summary: Some((1, 1)) }
    );
    let tofu = "tests/variables.tftest.hcl... pass\n  run \"a\"... pass\n  run \"b\"... pass\n\nSuccess! 2 passed, 0 failed.\n";
    assert_eq!(
        TestReport::parse(tofu),
        TestReport { passed_runs: vec!["a".into(), "b".into()], failed_runs: vec![], summary: Some((2, 0)) }
    );
    assert_eq!(TestReport::parse("Error: Failed to load plugin schemas\n"), TestReport::default());
}
