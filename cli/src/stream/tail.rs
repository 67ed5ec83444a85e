//! `adf stream tail`: the last records of every partition, then with `-f` new ones as they
//! come, until Ctrl-C.

use std::time::Duration;

use adf_stream_client::{Client, Consumer, ConsumerConfig, Start};
use anyhow::Result;
use clap::Args;

use crate::output;

#[derive(Debug, Args)]
pub struct Tail {
    /// Keep printing new records as they come, until Ctrl-C (long polls: no sleep between them).
    #[arg(short, long)]
    follow: bool,
    /// Records of each partition to print first; 0 starts at the high watermark.
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: u64,
    /// Start at the beginning of every partition instead of the last --lines records.
    #[arg(long, conflicts_with = "lines")]
    from_beginning: bool,
    /// How long one long poll waits for new records before asking again, with --follow (at
    /// most 20s).
    #[arg(long, default_value = "20s", value_parser = parse_wait)]
    wait: Duration,
}

impl Tail {
    pub async fn run(self, client: Client) -> Result<()> {
        let start = if self.from_beginning { Start::Beginning } else { Start::Last(self.lines) };
        let wait = self.follow.then_some(self.wait);
        let config = ConsumerConfig { start, wait, ..ConsumerConfig::default() };
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

/// A duration from 1ms to 20s.
fn parse_wait(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() || d > Duration::from_secs(20) {
        return Err(format!("{s} is not from 1ms to 20s"));
    }
    Ok(d)
}
