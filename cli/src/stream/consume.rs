//! `adf stream consume`: records as JSON lines, from an offset or a group's committed offset.

use adf_stream_client::{Client, Consumer, ConsumerConfig, Start};
use anyhow::Result;
use clap::Args;

use crate::output;

/// The most records one request asks for (the API's limit).
const MAX_PER_REQUEST: u32 = 10_000;

#[derive(Debug, Args)]
pub struct Consume {
    /// The partition to read; every partition when omitted.
    #[arg(long)]
    partition: Option<u32>,
    /// The offset to start at (in every partition read); 0, or the group's committed offset
    /// with --group, when omitted.
    #[arg(long)]
    offset: Option<u64>,
    /// The most records to print.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    /// The consumer group: without --offset, reading starts at its committed offsets.
    #[arg(long)]
    group: Option<String>,
    /// After printing, commit the group's offsets past the printed records.
    #[arg(long, requires = "group")]
    commit: bool,
}

impl Consume {
    pub async fn run(self, client: Client) -> Result<()> {
        let start = match (self.offset, &self.group) {
            (Some(o), _) => Start::Offset(o),
            (None, Some(_)) => Start::Committed,
            (None, None) => Start::Beginning,
        };
        let config = ConsumerConfig {
            partitions: self.partition.map(|p| vec![p]),
            start,
            group: self.group,
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::new(client, config).await?;
        let mut printed = 0;
        while printed < self.limit {
            let batch = consumer.next_batch_max((self.limit - printed).min(MAX_PER_REQUEST)).await?;
            super::report_expired(&mut consumer);
            if batch.is_empty() {
                break;
            }
            for record in &batch {
                output::line(&serde_json::to_string(record)?)?;
            }
            printed += u32::try_from(batch.len()).unwrap_or(u32::MAX);
        }
        if self.commit {
            consumer.commit().await?;
        }
        Ok(())
    }
}
