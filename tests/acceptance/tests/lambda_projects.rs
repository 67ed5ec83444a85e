//! `adf_lambda_package` on the layouts real projects have, with the real CLI, provider and
//! emulator: a Cargo workspace whose two Lambdas share a path crate, a crate without a lock
//! file, Go Lambdas on aws-lambda-go for both architectures, and a Go workspace with a
//! `replace`. Each deploys, plans empty, rebuilds on a real change and on nothing else, and
//! runs under the local Lambda runner.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use adf_acceptance::PROVIDER_BLOCK as PROVIDER;
use adf_acceptance::lambda_runner::{LambdaRunner, deployed};
use adf_acceptance::{Emulator, Workspace, copy_tree, repo_root, sdk_config, unique_name};
use anyhow::{Context, Result, ensure};

/// The addresses the saved plan changes, each with the attributes it changes.
fn planned_changes(ws: &Workspace) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let (_, changes) = ws.resource_changes()?;
    let mut out = BTreeMap::new();
    for c in changes {
        if c["change"]["actions"] == serde_json::json!(["no-op"]) {
            continue;
        }
        let (before, after, unknown) = (&c["change"]["before"], &c["change"]["after"], &c["change"]["after_unknown"]);
        let keys = before.as_object().into_iter().flatten().map(|(k, _)| k.clone());
        let changed = keys.filter(|k| before[k] != after[k] || unknown[k] == true).collect();
        out.insert(c["address"].as_str().unwrap_or_default().to_string(), changed);
    }
    Ok(out)
}

/// Invokes the function `name` (deployed from `package`'s zip) under the local runner.
async fn invoke(ws: &Workspace, emu: &Emulator, package: &str, name: &str) -> Result<serde_json::Value> {
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(emu.endpoint()).await);
    let zip = PathBuf::from(ws.state_values(package)?["output_path"].as_str().context("output_path")?.to_string());
    let runner = LambdaRunner::start(&deployed(&lambda, name, &zip, emu.endpoint()).await?).await?;
    runner.invoke(&serde_json::json!({"ping": 1})).await
}

/// Every file under `dir` with its bytes and modification time.
fn listing(dir: &Path) -> Result<BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let meta = e.metadata()?;
            if meta.is_dir() {
                dirs.push(e.path());
            } else {
                out.insert(e.path(), (std::fs::read(e.path())?, meta.modified()?));
            }
        }
    }
    Ok(out)
}

/// A workspace made from the quickstart's hello world: `apps/a` and `apps/b` take their
/// greeting from `libs/greeting`; `apps/c` does not. Its lock is the hello world's, extended
/// to the members, so the dependencies are the ones other tests have compiled.
fn rust_workspace(root: &Path) -> Result<()> {
    let hello = repo_root().join("examples/terraform/quickstart/hello");
    let manifest = std::fs::read_to_string(hello.join("Cargo.toml"))?;
    let main = std::fs::read_to_string(hello.join("src/main.rs"))?;
    let manifest = manifest.replace("[workspace]\n", "");
    for (app, shared) in [("a", true), ("b", true), ("c", false)] {
        let dir = root.join("apps").join(app);
        std::fs::create_dir_all(dir.join("src"))?;
        let mut m = manifest.replace("name = \"hello\"", &format!("name = \"{app}\""));
        let mut code = main.clone();
        if shared {
            m.push_str("greeting = { path = \"../../libs/greeting\" }\n");
            code = code.replace("\"hello\".to_string()", "greeting::word().to_string()");
            ensure!(code != main, "the hello world no longer defaults its greeting to \"hello\"");
        }
        std::fs::write(dir.join("Cargo.toml"), m)?;
        std::fs::write(dir.join("src/main.rs"), code)?;
    }
    let lib = root.join("libs/greeting");
    std::fs::create_dir_all(lib.join("src"))?;
    std::fs::write(
        lib.join("Cargo.toml"),
        "[package]\nname = \"greeting\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )?;
    std::fs::write(lib.join("src/lib.rs"), "pub fn word() -> &'static str { \"shared hello\" }\n")?;
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"apps/*\", \"libs/greeting\"]\n",
    )?;
    std::fs::copy(hello.join("Cargo.lock"), root.join("Cargo.lock"))?;
    let out =
        std::process::Command::new("cargo").args(["metadata", "--format-version", "1"]).current_dir(root).output()?;
    ensure!(out.status.success(), "extending the lock: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_workspace_with_a_shared_crate_and_a_crate_without_a_lock_deploy_and_rebuild_on_their_own_inputs()
-> Result<()> {
    let emu = Emulator::start()?;
    let name = unique_name("ws");
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("ws");
    rust_workspace(&root)?;
    let lockless = tmp.path().join("lockless");
    copy_tree(&repo_root().join("tests/acceptance/fixtures/hello-lockless"), &lockless)?;
    ensure!(!lockless.join("Cargo.lock").exists(), "the fixture must have no lock");
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&format!(
        r#"{PROVIDER}
resource "adf_lambda_package" "app" {{
  for_each   = toset(["a", "b", "c"])
  source_dir = "{root}/apps/${{each.key}}"
  language   = "rust"
}}

resource "adf_function" "app" {{
  for_each = adf_lambda_package.app
  name     = "{name}-${{each.key}}"
  package  = each.value
}}

resource "adf_lambda_package" "lockless" {{
  source_dir = "{lockless}"
  language   = "rust"
}}

resource "adf_function" "lockless" {{
  name    = "{name}-lockless"
  package = adf_lambda_package.lockless
}}
"#,
        root = root.display(),
        lockless = lockless.display(),
    ))?;
    let untouched = listing(&lockless)?;
    ws.apply()?;
    ws.assert_empty_plan()?;
    assert_eq!(listing(&lockless)?, untouched, "apply wrote into the crate without a lock");
    let parts = ws.state_values("adf_lambda_package.app[\"a\"]")?["inputs"].clone();
    for part in ["crate a", "crate greeting", "Cargo.lock", "toolchain", "workspace"] {
        assert!(parts.get(part).is_some(), "inputs lack {part:?}: {parts}");
    }

    let answer = invoke(&ws, &emu, "adf_lambda_package.app[\"a\"]", &format!("{name}-a")).await?;
    assert_eq!(answer["message"], "shared hello from rust");
    let answer = invoke(&ws, &emu, "adf_lambda_package.lockless", &format!("{name}-lockless")).await?;
    assert_eq!(answer["message"], "hello from a crate without a lock");

    // A change in the shared crate updates a and b (code only) and nothing else; the plan
    // names the part that changed.
    let lib = root.join("libs/greeting/src/lib.rs");
    std::fs::write(&lib, std::fs::read_to_string(&lib)?.replace("shared hello", "shared hi"))?;
    let changes = planned_changes(&ws)?;
    let addresses: BTreeSet<&str> = changes.keys().map(String::as_str).collect();
    let expected = [
        "adf_function.app[\"a\"]",
        "adf_function.app[\"b\"]",
        "adf_lambda_package.app[\"a\"]",
        "adf_lambda_package.app[\"b\"]",
    ];
    assert_eq!(addresses, expected.into_iter().collect(), "{changes:?}");
    let code_only: BTreeSet<String> = ["package", "source_code_hash"].into_iter().map(String::from).collect();
    assert!(changes["adf_function.app[\"a\"]"].is_subset(&code_only), "{changes:?}");
    let (_, plan) = ws.resource_changes()?;
    let package_a = plan.iter().find(|c| c["address"] == "adf_lambda_package.app[\"a\"]").context("package a")?;
    let (before, after) = (&package_a["change"]["before"]["inputs"], &package_a["change"]["after"]["inputs"]);
    assert_ne!(before["crate greeting"], after["crate greeting"]);
    assert_eq!(before["crate a"], after["crate a"], "only the shared crate changed");
    ws.apply()?;
    ws.assert_empty_plan()?;
    let answer = invoke(&ws, &emu, "adf_lambda_package.app[\"b\"]", &format!("{name}-b")).await?;
    assert_eq!(answer["message"], "shared hi from rust");
    assert_eq!(listing(&lockless)?, untouched);
    ws.destroy()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_lambdas_on_aws_lambda_go_and_a_go_workspace_with_a_replace_deploy_and_rebuild_on_their_own_inputs()
-> Result<()> {
    let emu = Emulator::start()?;
    let name = unique_name("gosdk");
    let tmp = tempfile::tempdir()?;
    for f in ["hello-go-sdk", "go-workspace"] {
        copy_tree(&repo_root().join("tests/acceptance/fixtures").join(f), &tmp.path().join(f))?;
    }
    let (sdk, gows) = (tmp.path().join("hello-go-sdk"), tmp.path().join("go-workspace"));
    let ws = Workspace::new(emu.endpoint())?;
    ws.write(&format!(
        r#"{PROVIDER}
resource "adf_lambda_package" "sdk" {{
  for_each     = toset(["x86_64", "arm64"])
  source_dir   = "{sdk}"
  language     = "go"
  architecture = each.key
}}

resource "adf_function" "sdk" {{
  for_each = adf_lambda_package.sdk
  name     = "{name}-${{each.key}}"
  package  = each.value
}}

resource "adf_lambda_package" "api" {{
  source_dir = "{gows}/api"
  language   = "go"
}}

resource "adf_function" "api" {{
  name    = "{name}-api"
  package = adf_lambda_package.api
}}
"#,
        sdk = sdk.display(),
        gows = gows.display(),
    ))?;
    let untouched = (listing(&sdk)?, listing(&gows)?);
    ws.apply()?;
    ws.assert_empty_plan()?;
    assert!(untouched == (listing(&sdk)?, listing(&gows)?), "apply rewrote go.mod, go.sum or go.work.sum");
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(emu.endpoint()).await);
    for arch in ["x86_64", "arm64"] {
        let f = lambda.get_function().function_name(format!("{name}-{arch}")).send().await?;
        let c = f.configuration().context("configuration")?;
        assert_eq!(c.architectures().first().map(|a| a.as_str()), Some(arch));
    }
    let answer = invoke(&ws, &emu, "adf_lambda_package.sdk[\"x86_64\"]", &format!("{name}-x86_64")).await?;
    assert_eq!(answer["message"], "hello from aws-lambda-go on amd64");
    let answer = invoke(&ws, &emu, "adf_lambda_package.api", &format!("{name}-api")).await?;
    assert_eq!(answer["message"], "hello api from the greet module");

    // The replaced module is an input of api alone.
    let greet = gows.join("greet/greet.go");
    std::fs::write(&greet, std::fs::read_to_string(&greet)?.replace("hello ", "hi "))?;
    let changes = planned_changes(&ws)?;
    let addresses: BTreeSet<&str> = changes.keys().map(String::as_str).collect();
    assert_eq!(addresses, ["adf_function.api", "adf_lambda_package.api"].into_iter().collect(), "{changes:?}");
    ws.apply()?;
    ws.assert_empty_plan()?;
    let answer = invoke(&ws, &emu, "adf_lambda_package.api", &format!("{name}-api")).await?;
    assert_eq!(answer["message"], "hi api from the greet module");
    ws.destroy()?;
    Ok(())
}

#[test]
fn zig_missing_and_an_unchosen_workspace_member_are_plan_time_diagnostics() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("ws");
    rust_workspace(&root)?;
    let hello = repo_root().join("examples/terraform/quickstart/hello");
    let without_zig = Workspace::new("http://127.0.0.1:9")?.with_env("CARGO_ZIGBUILD_ZIG_PATH", "/nonexistent/zig");
    let ws = Workspace::new("http://127.0.0.1:9")?;
    let cases = [
        (&without_zig, hello.display().to_string(), "", "finds no zig", "language"),
        // No `package` attribute to point at: the diagnostic points at the resource.
        (&ws, root.display().to_string(), "", "set package", "resource \"adf_lambda_package\""),
        (&ws, root.display().to_string(), "package = \"d\"", "no package \"d\"", "package"),
    ];
    for (ws, dir, extra, message, attribute) in cases {
        ws.write(&format!(
            "{PROVIDER}\nresource \"adf_lambda_package\" \"p\" {{\n  source_dir = \"{dir}\"\n  language = \"rust\"\n  {extra}\n}}\n"
        ))?;
        ws.assert_plan_error(message, attribute)?;
    }
    Ok(())
}
