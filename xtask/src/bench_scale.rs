//! `cargo xtask bench --only scale [--runs N]`: N `adf_workflow_tables` and N `adf_function`
//! in one configuration, applied, planned again (a refresh of everything) and destroyed with
//! the real CLI against the emulator. For each phase: wall time and the AWS requests per
//! resource, counted by a proxy in front of the emulator, split by service and operation.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use adf_acceptance::counting_proxy::CountingProxy;
use adf_acceptance::{Emulator, PROVIDER_BLOCK, Workspace};
use anyhow::{Result, bail};

/// The configuration: `n` of each resource.
fn config(n: usize) -> String {
    format!(
        "{PROVIDER_BLOCK}
resource \"adf_workflow_tables\" \"t\" {{
  count = {n}
  name  = \"scale-${{count.index}}\"
}}

resource \"adf_function\" \"f\" {{
  count    = {n}
  name     = \"scale-fn-${{count.index}}\"
  filename = \"f.zip\"
  runtime  = \"provided.al2023\"
  handler  = \"bootstrap\"
}}
"
    )
}

/// Requests no one resource sends (the provider's credential check at configure).
const SHARED: &str = "(provider)";

/// Which resource type sends requests of operation `op` (`service.Operation`) here.
fn owner(op: &str) -> &'static str {
    match op.split('.').next() {
        Some("dynamodb" | "sqs") => "adf_workflow_tables",
        Some("lambda" | "logs" | "iam") => "adf_function",
        _ => SHARED,
    }
}

/// One phase's figures.
struct Phase {
    name: &'static str,
    took: Duration,
    requests: BTreeMap<String, u64>,
}

pub fn run(root: &Path, n: usize) -> Result<()> {
    let n = n.max(1);
    crate::cargo(root, &["build", "--package", "terraform-provider-adf"])?;
    adf_acceptance::emulator::install(root)?;
    let rt = tokio::runtime::Runtime::new()?;
    let emu = Emulator::start()?;
    let proxy = rt.block_on(CountingProxy::start(emu.endpoint()))?;
    let ws = Workspace::new(proxy.endpoint())?;
    ws.write(&config(n))?;
    std::fs::write(ws.path().join("f.zip"), adf_acceptance::bootstrap_zip()?)?;
    println!("==> {n} adf_workflow_tables and {n} adf_function ({} resources), with {}", 2 * n, ws_cli());

    let mut phases = Vec::new();
    for (name, args) in [
        ("apply", &["apply", "-auto-approve", "-no-color"][..]),
        ("plan (refresh)", &["plan", "-detailed-exitcode", "-no-color"][..]),
        ("destroy", &["destroy", "-auto-approve", "-no-color"][..]),
    ] {
        proxy.take();
        let start = Instant::now();
        let out = ws.run(args)?;
        let took = start.elapsed();
        if out.code != 0 {
            bail!("{name} failed ({}):\n{}\n{}", out.code, out.stdout, out.stderr);
        }
        phases.push(Phase { name, took, requests: proxy.take() });
    }

    let resources = (2 * n) as f64;
    println!("\n| phase | wall time | AWS requests | per resource |");
    println!("|---|---|---|---|");
    for p in &phases {
        let total: u64 = p.requests.values().sum();
        println!("| {} | {:.1} s | {total} | {:.1} |", p.name, p.took.as_secs_f64(), total as f64 / resources);
    }
    for p in &phases {
        println!("\n{}: requests per instance of the resource that sends them, by operation:", p.name);
        let mut ops: Vec<_> = p.requests.iter().collect();
        ops.sort_by(|a, b| owner(a.0).cmp(owner(b.0)).then(b.1.cmp(a.1)).then(a.0.cmp(b.0)));
        for (op, count) in ops {
            let per = if owner(op) == SHARED { "in all" } else { "each" };
            let count = if owner(op) == SHARED { *count as f64 } else { *count as f64 / n as f64 };
            println!("  {:<20} {op:<40} {count:>7.2} {per}", owner(op));
        }
    }
    Ok(())
}

fn ws_cli() -> String {
    adf_acceptance::terraform::cli()
        .ok()
        .and_then(|c| adf_acceptance::terraform::cli_version(&c).ok())
        .unwrap_or_else(|| "the CLI".into())
}
