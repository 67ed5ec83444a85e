//! `cargo xtask bench`: what the provider adds to every Terraform command, measured side by
//! side in one run (this machine is noisy: compare ratios, not seconds) against plain Terraform
//! and against a minimal Go provider on terraform-plugin-framework (`xtask/go-floor-provider`,
//! built here from the Go module proxy): the floor that Terraform's plugin machinery imposes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hyper_util::rt::TokioIo;
use tfplug::proto::plugin as gp;
use tfplug::proto::tfplugin6 as pb;

const BASELINE: &str = r#"
resource "terraform_data" "a" {
  input = "a"
}

resource "terraform_data" "b" {
  input = terraform_data.a.output
}
"#;

const WITH_GO: &str = r#"
terraform {
  required_providers {
    floor = { source = "adf-bench/floor" }
  }
}

resource "terraform_data" "a" {
  input = "a"
}

resource "floor_thing" "t" {
  input = terraform_data.a.output
}
"#;

const WITH_ADF: &str = r#"
terraform {
  required_providers {
    adf = { source = "activedataflow/adf" }
  }
}

provider "adf" {
  region                      = "us-east-1"
  skip_credentials_validation = true
}

resource "terraform_data" "a" {
  input = "a"
}

resource "adf_workflow_tables" "flow" {
  name = "bench"
}
"#;

/// The Go provider's source, relative to the repository root.
const GO_FLOOR: &str = "xtask/go-floor-provider";

pub fn run(root: &Path, runs: usize) -> Result<()> {
    println!("==> building the provider as released (the dist profile)");
    crate::cargo(root, &["build", "--profile", crate::release::DIST_PROFILE, "--package", "terraform-provider-adf"])?;
    let release = crate::target_dir(root).join(crate::release::DIST_PROFILE);
    let binary = release.join("terraform-provider-adf");
    let size = std::fs::metadata(&binary)?.len();
    let go_dir = crate::target_dir(root).join("go-floor-provider");
    let go_binary = build_go_floor(root, &go_dir)?;
    let go_size = std::fs::metadata(&go_binary)?.len();
    let terraform = adf_acceptance::terraform::cli()?;

    let baseline = workdir("baseline", BASELINE, &[])?;
    let with_go = workdir("with-go", WITH_GO, &[("adf-bench/floor", &go_dir)])?;
    let with_adf = workdir("with-adf", WITH_ADF, &[("activedataflow/adf", &release)])?;
    let mut table = Vec::new();
    for args in [&["validate"][..], &["providers", "schema", "-json"][..]] {
        let (mut plain, mut go, mut ours) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            plain.push(time_terraform(&terraform, &baseline, args)?);
            go.push(time_terraform(&terraform, &with_go, args)?);
            ours.push(time_terraform(&terraform, &with_adf, args)?);
        }
        let cli = terraform.file_name().map_or("terraform".into(), |n| n.to_string_lossy().into_owned());
        table.push((format!("{cli} {}", args.join(" ")), median(&mut plain), median(&mut go), median(&mut ours)));
    }

    let runtime = tokio::runtime::Runtime::new()?;
    let mut handshakes = Vec::new();
    let mut schemas = Vec::new();
    let mut peak_kib = 0;
    for _ in 0..runs {
        let s = runtime.block_on(start_and_measure(&binary))?;
        handshakes.push(s.handshake);
        schemas.push(s.schema);
        peak_kib = peak_kib.max(s.peak_rss_kib);
    }

    println!(
        "\n| measurement ({runs} runs, median) | plain | with the Go floor provider | with adf | adf overhead / Go \
         overhead |"
    );
    println!("|---|---|---|---|---|");
    for (what, plain, go, ours) in &table {
        let overhead = |d: &Duration| d.as_secs_f64() - plain.as_secs_f64();
        println!(
            "| {what} | {:.0} ms | {:.0} ms | {:.0} ms | {:.2} |",
            ms(*plain),
            ms(*go),
            ms(*ours),
            overhead(ours) / overhead(go)
        );
    }
    println!("\n| provider process | value |");
    println!("|---|---|");
    println!("| release binary size | {:.1} MiB ({size} bytes) |", mib(size));
    println!(
        "| the Go floor provider's binary (`-trimpath -ldflags='-s -w'`) | {:.1} MiB ({go_size} bytes) |",
        mib(go_size)
    );
    println!("| start to handshake line (median) | {:.1} ms |", ms(median(&mut handshakes)));
    println!("| GetProviderSchema round trip (median) | {:.2} ms |", ms(median(&mut schemas)));
    println!("| peak RSS (VmHWM, max over runs) | {:.1} MiB |", peak_kib as f64 / 1024.0);
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// Builds the Go floor provider into `out` as `terraform-provider-floor`, stripped as
/// HashiCorp's releases are; returns its path.
fn build_go_floor(root: &Path, out: &Path) -> Result<PathBuf> {
    println!("==> building the Go floor provider (terraform-plugin-framework, from the Go module proxy)");
    let binary = out.join("terraform-provider-floor");
    let status = Command::new("go")
        .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(root.join(GO_FLOOR))
        .status()
        .context("running go build (Go >= 1.25 on PATH)")?;
    if !status.success() {
        bail!("go build in {GO_FLOOR} failed ({status})");
    }
    Ok(binary)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// A working directory holding `hcl`, with a CLI config whose dev overrides map each
/// provider source to the directory of its binary.
fn workdir(name: &str, hcl: &str, overrides: &[(&str, &Path)]) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("adf-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("main.tf"), hcl)?;
    let lines: String =
        overrides.iter().map(|(source, bin)| format!("    \"{source}\" = \"{}\"\n", bin.display())).collect();
    let rc = format!("provider_installation {{\n  dev_overrides {{\n{lines}  }}\n  direct {{}}\n}}\n");
    std::fs::write(dir.join("cli.tfrc"), rc)?;
    Ok(dir)
}

fn time_terraform(terraform: &Path, dir: &Path, args: &[&str]) -> Result<Duration> {
    let start = Instant::now();
    let out = Command::new(terraform)
        .args(args)
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", dir.join("cli.tfrc"))
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("terraform {} in {} failed:\n{}", args.join(" "), dir.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

struct Startup {
    handshake: Duration,
    schema: Duration,
    peak_rss_kib: u64,
}

/// Starts the provider as Terraform does (without TLS), asks for its schema over gRPC,
/// reads its peak RSS, and shuts it down through `GRPCController.Shutdown`.
async fn start_and_measure(binary: &Path) -> Result<Startup> {
    let start = Instant::now();
    let mut child = Command::new(binary)
        .env(tfplug::MAGIC_COOKIE_KEY, tfplug::MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "6")
        .env_remove("PLUGIN_CLIENT_CERT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let handshake = start.elapsed();
    let parts: Vec<String> = line.trim().split('|').map(str::to_string).collect();
    if parts.len() < 6 || parts[2] != "unix" {
        bail!("unexpected handshake line {line:?}");
    }
    let socket = parts[3].clone();
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move { tokio::net::UnixStream::connect(socket).await.map(TokioIo::new) }
        }))
        .await?;
    let mut client = pb::provider_client::ProviderClient::new(channel.clone());
    let t = Instant::now();
    client.get_provider_schema(pb::get_provider_schema::Request {}).await?;
    let schema = t.elapsed();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
    let peak_rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmHWM")?;
    gp::grpc_controller_client::GrpcControllerClient::new(channel).shutdown(gp::Empty {}).await?;
    child.wait()?;
    Ok(Startup { handshake, schema, peak_rss_kib })
}
