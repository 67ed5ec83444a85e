//! `adf`: the ActiveDataFlow command line. `adf stream ...` produces to and reads from a
//! stream topic through its Function URL; `adf workflow ...` starts, follows and cancels
//! workflow runs on their queue and tables; `adf kv`, `adf object` and `adf cache` read and
//! write the stores of `adf_kv_namespace`, `adf_object_bucket` and `adf_cache`; see
//! `docs/cli.md`.

mod output;
mod storage;
mod stream;
mod workflow;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ActiveDataFlow on the command line.
#[derive(Debug, Parser)]
#[command(name = "adf", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Produce to, consume from and describe a stream topic.
    Stream(stream::StreamArgs),
    /// Start, follow and cancel workflow runs; find and resume stalled ones.
    Workflow(workflow::WorkflowArgs),
    /// Get, put, delete and list the keys of a KV namespace.
    Kv(storage::kv::KvArgs),
    /// Upload, download, list and delete objects of a bucket; presign URLs.
    Object(storage::object::ObjectArgs),
    /// Get, put and delete the values of a cache.
    Cache(storage::cache::CacheArgs),
}

/// A failure that exits with `code` rather than 1 (`adf workflow wait` on a timeout).
#[derive(Debug)]
pub struct Exit {
    /// The exit code.
    pub code: u8,
    /// What to print after `adf: `.
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Stream(args) => stream::run(args).await,
        Command::Workflow(args) => workflow::run(args).await,
        Command::Kv(args) => storage::kv::run(args).await,
        Command::Object(args) => storage::object::run(args).await,
        Command::Cache(args) => storage::cache::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`adf stream consume | head`) is how the reader says it has enough.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("adf: {}", format!("{e:#}").replace('\n', " "));
            e.downcast_ref::<Exit>().map_or(ExitCode::FAILURE, |exit| ExitCode::from(exit.code))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
