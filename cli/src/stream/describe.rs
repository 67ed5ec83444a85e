//! `adf stream describe`: partitions and high watermarks, as a table or JSON.

use adf_stream_client::{Client, Description};
use anyhow::Result;
use clap::Args;

use crate::output;

#[derive(Debug, Args)]
pub struct Describe {
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl Describe {
    pub async fn run(self, client: Client) -> Result<()> {
        let description = client.describe().await?;
        let text = if self.json { serde_json::to_string_pretty(&description)? } else { table(&description) };
        output::line(&text)
    }
}

/// `topic <name>`, then one row per partition and a total.
fn table(d: &Description) -> String {
    let total: u64 = d.partitions.iter().map(|p| p.high_watermark).sum();
    let mut rows = vec![format!("topic {}", d.topic), format!("{:<10} {:>15}", "PARTITION", "HIGH WATERMARK")];
    rows.extend(d.partitions.iter().map(|p| format!("{:<10} {:>15}", p.partition, p.high_watermark)));
    rows.push(format!("{:<10} {:>15}", "total", total));
    rows.join("\n")
}

#[cfg(test)]
mod tests {
    use adf_stream_client::PartitionInfo;

    use super::*;

    #[test]
    fn the_table_has_a_row_per_partition_and_a_total() {
        let d = Description {
            topic: "orders".into(),
            partitions: vec![
                PartitionInfo { partition: 0, high_watermark: 120 },
                PartitionInfo { partition: 1, high_watermark: 98 },
            ],
        };
        let want = "topic orders\n\
                    PARTITION   HIGH WATERMARK\n\
                    0                      120\n\
                    1                       98\n\
                    total                  218";
        assert_eq!(table(&d), want);
    }
}
