//! `adf stream tail`: the last records of every partition, then with `-f` new ones as they
//! come, until Ctrl-C.

use std::time::Duration;

use adf_stream_client::{Client, Consumer, ConsumerConfig, Start};
use anyhow::Result;
use clap::Args;

use crate::output;

#[derive(Debug, Args)]
pub struct Tail {
    /// Keep polling every partition for new records until Ctrl-C.
    #[arg(short, long)]
    follow: bool,
    /// Records of each partition to print first; 0 starts at the high watermark.
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: u64,
    /// Start at the beginning of every partition instead of the last --lines records.
    #[arg(long, conflicts_with = "lines")]
    from_beginning: bool,
    /// How long to wait between polls once caught up, with --follow.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    poll_interval: Duration,
}

impl Tail {
    pub async fn run(self, client: Client) -> Result<()> {
        let start = if self.from_beginning { Start::Beginning } else { Start::Last(self.lines) };
        let poll_interval = self.follow.then_some(self.poll_interval);
        let config = ConsumerConfig { start, poll_interval, ..ConsumerConfig::default() };
        let mut consumer = Consumer::new(client, config).await?;
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        loop {
            tokio::select! {
                batch = consumer.next_batch() => {
                    let batch = batch?;
                    super::report_expired(&mut consumer);
                    if batch.is_empty() {
                        return Ok(());
                    }
                    for record in &batch {
                        output::line(&serde_json::to_string(record)?)?;
                    }
                }
                _ = &mut interrupted => return Ok(()),
            }
        }
    }
}
