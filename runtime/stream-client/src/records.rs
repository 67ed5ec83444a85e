//! What the API takes and answers.

use serde::{Deserialize, Serialize};

/// A record to produce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewRecord {
    /// The partition it must go to; without one, its key's (or, keyless, the request's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// Records with the same key go to the same partition and keep their order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The value, stored as this text.
    pub value: String,
}

impl NewRecord {
    /// A record with an optional key.
    pub fn new(key: Option<&str>, value: impl Into<String>) -> Self {
        Self { partition: None, key: key.map(str::to_string), value: value.into() }
    }

    /// The same record, bound for `partition`.
    pub fn to_partition(self, partition: u32) -> Self {
        Self { partition: Some(partition), ..self }
    }
}

/// Where a produced request's records went: one segment, dense offsets in each partition.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Produced {
    /// Each record's partition and offset, in the order sent.
    pub records: Vec<RecordMetadata>,
    /// A sequenced request that had been appended before: these are its original offsets.
    #[serde(default)]
    pub duplicate: bool,
}

impl Produced {
    /// The records' offsets, in the order sent.
    pub fn offsets(&self) -> Vec<u64> {
        self.records.iter().map(|r| r.offset).collect()
    }
}

/// Where one produced record went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: u32,
    /// Its offset in the partition.
    pub offset: u64,
}

/// A consumed record. Serializes as `{"partition","offset","timestamp","key","value"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The partition (filled in by the client; the API answers per partition).
    #[serde(default)]
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// When it was produced, in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Its key.
    pub key: Option<String>,
    /// Its value.
    pub value: String,
}

/// One consume's answer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Fetched {
    /// Records in offset order.
    pub records: Vec<Record>,
    /// The offset to ask for next.
    pub next_offset: u64,
    /// The partition's high watermark when read.
    pub high_watermark: u64,
}

impl Fetched {
    /// Marks every record with `partition`.
    pub(crate) fn with_partition(mut self, partition: u32) -> Self {
        for r in &mut self.records {
            r.partition = partition;
        }
        self
    }
}

/// A group commit's answer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Committed {
    /// The group.
    pub group: String,
    /// The partition.
    pub partition: u32,
    /// The committed offset: the next one the group reads.
    pub committed: u64,
}

/// A topic's partitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// The topic.
    pub topic: String,
    /// Every partition, in order.
    pub partitions: Vec<PartitionInfo>,
}

/// One partition of a [`Description`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// The partition.
    pub partition: u32,
    /// The offset the next record will get.
    pub high_watermark: u64,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keyless_records_send_no_key() {
        assert_eq!(serde_json::to_value(NewRecord::new(None, "v")).ok(), Some(json!({"value": "v"})));
        assert_eq!(serde_json::to_value(NewRecord::new(Some("k"), "v")).ok(), Some(json!({"key": "k", "value": "v"})));
    }

    #[test]
    fn fetched_records_carry_their_partition_and_print_in_order() -> Result<(), serde_json::Error> {
        let answer = json!({"partition": 3, "records": [{"offset": 7, "timestamp": 1, "key": null, "value": "v"}],
                            "next_offset": 8, "high_watermark": 9});
        let fetched = serde_json::from_value::<Fetched>(answer)?.with_partition(3);
        assert_eq!(
            serde_json::to_string(&fetched.records[0])?,
            r#"{"partition":3,"offset":7,"timestamp":1,"key":null,"value":"v"}"#
        );
        Ok(())
    }
}
