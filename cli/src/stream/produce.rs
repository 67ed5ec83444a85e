//! `adf stream produce`: records from arguments or standard input, through a batching
//! producer, with each record's partition and offset printed in input order.

use std::collections::BTreeSet;

use adf_stream_client::{Client, Delivery, Producer, ProducerConfig};
use anyhow::{Context, Result};
use clap::Args;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::output;

/// Records sent but not printed yet before reading more input waits.
const IN_FLIGHT: usize = 10_000;

#[derive(Debug, Args)]
pub struct Produce {
    /// The values to produce; without any, each line of standard input is one record.
    values: Vec<String>,
    /// The key of every record: records with one key go to one partition, in order.
    #[arg(long)]
    key: Option<String>,
    /// Print one summary line instead of `partition offset` for each record.
    #[arg(long, short)]
    quiet: bool,
}

impl Produce {
    pub async fn run(self, client: Client) -> Result<()> {
        let producer = Producer::new(client, ProducerConfig::default()).await?;
        let (deliveries, pending) = mpsc::channel::<Delivery>(IN_FLIGHT);
        let printer = tokio::spawn(print(pending, self.quiet));
        let key = self.key.as_deref();
        if self.values.is_empty() {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Some(line) = lines.next_line().await.context("reading standard input")? {
                if deliveries.send(producer.send(key, line)).await.is_err() {
                    break; // The printer stopped at a failed record; its error follows.
                }
            }
        } else {
            for value in self.values {
                if deliveries.send(producer.send(key, value)).await.is_err() {
                    break;
                }
            }
        }
        drop(deliveries);
        let printed = printer.await.context("the printer task failed")?;
        producer.close().await?;
        printed
    }
}

/// Prints each record's place in input order; stops at the first record that failed.
async fn print(mut pending: mpsc::Receiver<Delivery>, quiet: bool) -> Result<()> {
    let (mut count, mut partitions) = (0u64, BTreeSet::new());
    while let Some(delivery) = pending.recv().await {
        let m = delivery.await.with_context(|| format!("record {} failed", count + 1))?;
        if !quiet {
            output::line(&format!("{} {}", m.partition, m.offset))?;
        }
        count += 1;
        partitions.insert(m.partition);
    }
    if quiet {
        output::line(&summary(count, &partitions))?;
    }
    Ok(())
}

fn summary(count: u64, partitions: &BTreeSet<u32>) -> String {
    let list: Vec<String> = partitions.iter().map(ToString::to_string).collect();
    let records = if count == 1 { "record" } else { "records" };
    match list.len() {
        0 => format!("produced {count} {records}"),
        1 => format!("produced {count} {records} to partition {}", list.join("")),
        _ => format!("produced {count} {records} to partitions {}", list.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_partitions() {
        assert_eq!(summary(0, &BTreeSet::new()), "produced 0 records");
        assert_eq!(summary(1, &BTreeSet::from([2])), "produced 1 record to partition 2");
        assert_eq!(summary(5, &BTreeSet::from([3, 0])), "produced 5 records to partitions 0, 3");
    }
}
