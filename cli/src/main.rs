//! `adf`: the ActiveDataFlow command line. `adf stream ...` produces to and reads from a
//! stream topic through its Function URL; see `docs/cli.md`.

mod output;
mod stream;

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
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Stream(args) => stream::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`adf stream consume | head`) is how the reader says it has enough.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("adf: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
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
