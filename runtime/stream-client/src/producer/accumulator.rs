//! Gathers records into per-partition batches, as Kafka producers do: a batch closes when it
//! holds `batch_size` records, when the next record would take it over `max_batch_bytes`, or
//! `linger` after its first record. Keyed records go to their key's partition; keyless ones
//! join the batch of a "sticky" partition that moves on each time its batch closes, so they
//! spread round-robin one batch at a time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::NewRecord;
use crate::partitioner::partition_for;

/// JSON bytes a batch's envelope (`{"partition":n,"records":[...]}`) adds to its records.
const ENVELOPE_BYTES: usize = 40;

/// When batches close.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// How long a batch waits for more records.
    pub linger: Duration,
    /// The most records in a batch.
    pub batch_size: usize,
    /// The most request-body bytes in a batch (a single larger record goes alone).
    pub max_batch_bytes: usize,
}

/// A closed batch: records for one partition, each with the ticket of whoever waits for it.
#[derive(Debug)]
pub(crate) struct Batch<T> {
    pub partition: u32,
    pub records: Vec<NewRecord>,
    pub tickets: Vec<T>,
    /// Its request-body bytes, envelope included.
    pub bytes: usize,
}

struct Open<T> {
    batch: Batch<T>,
    deadline: Instant,
}

/// Open batches of every partition.
pub(crate) struct Accumulator<T> {
    limits: Limits,
    partitions: u32,
    sticky: u32,
    open: BTreeMap<u32, Open<T>>,
}

impl<T> Accumulator<T> {
    /// An accumulator for a topic of `partitions` partitions.
    pub fn new(limits: Limits, partitions: u32) -> Self {
        Self { limits, partitions: partitions.max(1), sticky: 0, open: BTreeMap::new() }
    }

    /// Adds a record at time `now`; the batches that closed.
    pub fn add(&mut self, record: NewRecord, ticket: T, now: Instant) -> Vec<Batch<T>> {
        let partition = record.key.as_deref().map_or(self.sticky, |k| partition_for(k, self.partitions));
        let size = serde_json::to_vec(&record).map_or(0, |v| v.len()) + 1;
        let mut closed = Vec::new();
        if self.open.get(&partition).is_some_and(|o| o.batch.bytes + size > self.limits.max_batch_bytes) {
            closed.extend(self.close(partition));
        }
        let open = self.open.entry(partition).or_insert_with(|| Open {
            batch: Batch { partition, records: Vec::new(), tickets: Vec::new(), bytes: ENVELOPE_BYTES },
            deadline: now + self.limits.linger,
        });
        open.batch.records.push(record);
        open.batch.tickets.push(ticket);
        open.batch.bytes += size;
        if open.batch.records.len() >= self.limits.batch_size || open.batch.bytes >= self.limits.max_batch_bytes {
            closed.extend(self.close(partition));
        }
        closed
    }

    /// Closes the batches that have lingered until `now`.
    pub fn expired(&mut self, now: Instant) -> Vec<Batch<T>> {
        let due: Vec<u32> = self.open.iter().filter(|(_, o)| o.deadline <= now).map(|(p, _)| *p).collect();
        due.into_iter().filter_map(|p| self.close(p)).collect()
    }

    /// Closes every open batch.
    pub fn drain(&mut self) -> Vec<Batch<T>> {
        let all: Vec<u32> = self.open.keys().copied().collect();
        all.into_iter().filter_map(|p| self.close(p)).collect()
    }

    /// When the oldest open batch stops lingering.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|o| o.deadline).min()
    }

    fn close(&mut self, partition: u32) -> Option<Batch<T>> {
        if partition == self.sticky {
            self.sticky = (self.sticky + 1) % self.partitions;
        }
        self.open.remove(&partition).map(|o| o.batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(batch_size: usize, max_batch_bytes: usize) -> Limits {
        Limits { linger: Duration::from_millis(5), batch_size, max_batch_bytes }
    }

    fn shape(batches: &[Batch<usize>]) -> Vec<(u32, Vec<usize>)> {
        batches.iter().map(|b| (b.partition, b.tickets.clone())).collect()
    }

    #[test]
    fn a_batch_closes_at_batch_size_records() {
        let mut acc = Accumulator::new(limits(3, 1 << 20), 1);
        let now = Instant::now();
        let mut closed = Vec::new();
        for i in 0..7 {
            closed.extend(acc.add(NewRecord::new(Some("k"), "v"), i, now));
        }
        assert_eq!(shape(&closed), [(0, vec![0, 1, 2]), (0, vec![3, 4, 5])]);
        assert_eq!(shape(&acc.drain()), [(0, vec![6])]);
        assert!(acc.drain().is_empty());
    }

    #[test]
    fn a_batch_closes_before_the_record_that_would_take_it_over_the_byte_limit() {
        // Each record is 24 JSON bytes plus a comma: {"key":"k","value":"vv"}
        let mut acc = Accumulator::new(limits(100, ENVELOPE_BYTES + 60), 1);
        let now = Instant::now();
        let mut closed = Vec::new();
        for i in 0..5 {
            closed.extend(acc.add(NewRecord::new(Some("k"), "vv"), i, now));
        }
        assert_eq!(shape(&closed), [(0, vec![0, 1]), (0, vec![2, 3])]);
        let big = "x".repeat(500);
        let closed = acc.add(NewRecord::new(Some("k"), big), 5, now);
        assert_eq!(shape(&closed), [(0, vec![4]), (0, vec![5])], "a record over the limit goes alone");
    }

    #[test]
    fn batches_close_after_lingering() {
        let mut acc = Accumulator::new(limits(100, 1 << 20), 4);
        let start = Instant::now();
        assert_eq!(acc.next_deadline(), None);
        assert!(acc.add(NewRecord::new(Some("a"), "v"), 0, start).is_empty());
        let later = start + Duration::from_millis(3);
        assert!(acc.add(NewRecord::new(Some("b"), "v"), 1, later).is_empty());
        assert_eq!(acc.next_deadline(), Some(start + Duration::from_millis(5)));
        assert!(acc.expired(start + Duration::from_millis(4)).is_empty());
        let first = acc.expired(start + Duration::from_millis(5));
        let (pa, pb) = (partition_for("a", 4), partition_for("b", 4));
        assert_ne!(pa, pb, "the test wants keys on two partitions");
        assert_eq!(shape(&first), [(pa, vec![0])]);
        assert_eq!(acc.next_deadline(), Some(later + Duration::from_millis(5)));
        assert_eq!(shape(&acc.expired(later + Duration::from_millis(5))), [(pb, vec![1])]);
        assert_eq!(acc.next_deadline(), None);
    }

    #[test]
    fn keyed_records_go_to_their_keys_partition() {
        let mut acc = Accumulator::new(limits(1, 1 << 20), 8);
        let now = Instant::now();
        for i in 0..50 {
            let key = format!("key-{i}");
            let closed = acc.add(NewRecord::new(Some(&key), "v"), i, now);
            assert_eq!(shape(&closed), [(partition_for(&key, 8), vec![i])]);
        }
    }

    #[test]
    fn keyless_records_move_to_the_next_partition_with_each_batch() {
        let mut acc = Accumulator::new(limits(2, 1 << 20), 3);
        let now = Instant::now();
        let mut closed = Vec::new();
        for i in 0..8 {
            closed.extend(acc.add(NewRecord::new(None, "v"), i, now));
        }
        closed.extend(acc.drain());
        assert_eq!(shape(&closed), [(0, vec![0, 1]), (1, vec![2, 3]), (2, vec![4, 5]), (0, vec![6, 7])]);
    }
}
