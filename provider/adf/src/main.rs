//! The provider binary Terraform and OpenTofu start.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Terraform reads plugin logs from stderr; TF_LOG_PROVIDER (or TF_LOG) sets how much.
    let level = std::env::var("TF_LOG_PROVIDER").or_else(|_| std::env::var("TF_LOG")).unwrap_or_default();
    let filter = match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "" | "off" => "warn",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!("adf={filter},tfplug={filter},warn")))
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("terraform-provider-adf: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(tfplug::run(adf::AdfProvider, adf::SOURCE))
}
