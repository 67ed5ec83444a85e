//! `adf stream`: a topic's records through its Function URL.

mod consume;
mod describe;
mod produce;
mod tail;

use adf_stream_client::{Auth, Client};
use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};

/// `adf stream` and the options every stream command takes.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// The topic's Function URL (the `url` output of its Terraform resource).
    #[arg(long, env = "ADF_STREAM_URL", global = true)]
    url: Option<String>,
    /// The topic's name.
    #[arg(long, env = "ADF_STREAM_TOPIC", global = true)]
    topic: Option<String>,
    /// How requests are authenticated: `iam` signs them with SigV4 using the standard AWS
    /// credential chain and region; `none` for a Function URL whose auth type is NONE.
    #[arg(long, value_enum, default_value_t = AuthKind::Iam, global = true)]
    auth: AuthKind,
    #[command(subcommand)]
    command: StreamCommand,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum AuthKind {
    Iam,
    None,
}

#[derive(Debug, Subcommand)]
enum StreamCommand {
    /// Produce records: the values given, or one record per line of standard input.
    Produce(produce::Produce),
    /// Print records as JSON lines, from an offset or a consumer group's committed offset.
    Consume(consume::Consume),
    /// Print the last records of every partition, and with -f follow new ones.
    Tail(tail::Tail),
    /// Print the topic's partitions and their high watermarks.
    Describe(describe::Describe),
}

/// Runs one stream command.
pub async fn run(args: StreamArgs) -> Result<()> {
    let client = connect(&args).await?;
    match args.command {
        StreamCommand::Produce(c) => c.run(client).await,
        StreamCommand::Consume(c) => c.run(client).await,
        StreamCommand::Tail(c) => c.run(client).await,
        StreamCommand::Describe(c) => c.run(client).await,
    }
}

/// Tells standard error about the offsets `consumer` skipped because retention removed them.
fn report_expired(consumer: &mut adf_stream_client::Consumer) {
    for e in consumer.take_expired() {
        eprintln!(
            "note: partition {}: offsets {}..{} are past retention; reading goes on from {}",
            e.partition, e.from, e.to, e.to
        );
    }
}

async fn connect(args: &StreamArgs) -> Result<Client> {
    let Some(url) = &args.url else { anyhow::bail!("no topic URL: pass --url or set ADF_STREAM_URL") };
    let Some(topic) = &args.topic else { anyhow::bail!("no topic: pass --topic or set ADF_STREAM_TOPIC") };
    let auth = match args.auth {
        AuthKind::Iam => Auth::from_env().await?,
        AuthKind::None => Auth::None,
    };
    Ok(Client::new(url, topic, auth)?)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Top {
        #[command(flatten)]
        stream: StreamArgs,
    }

    #[test]
    fn common_options_go_before_or_after_the_command() -> Result<(), clap::Error> {
        let parsed = Top::try_parse_from(["adf", "describe", "--url", "http://h/", "--topic", "t", "--auth", "none"])?;
        assert_eq!(parsed.stream.url.as_deref(), Some("http://h/"));
        assert_eq!(parsed.stream.auth, AuthKind::None);
        let parsed = Top::try_parse_from(["adf", "--topic", "t", "describe"])?;
        assert_eq!((parsed.stream.topic.as_deref(), parsed.stream.auth), (Some("t"), AuthKind::Iam));
        Ok(())
    }

    #[test]
    fn unknown_auth_kinds_are_refused() {
        assert!(Top::try_parse_from(["adf", "--auth", "basic", "describe"]).is_err());
    }
}
