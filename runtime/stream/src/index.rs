//! The topic's index in its table: the head item and the log of committed segment objects.
//!
//! - `head`/0: `h<p>`, partition p's high watermark; `l<p>`, the log sequence of p's last
//!   section; `n`, the log's last sequence.
//! - `log`/<n>: the n-th committed segment object: `object` (its S3 key), `parts`
//!   (`p:base:count:at:len,...`, a section per partition it holds), `after` (every
//!   partition's high watermark once it was committed, comma-separated, partition 0 first) and
//!   `expires`. One item per produce, whatever the partitions it reaches.
//! - `seg#<p>`/<base>: one entry per partition's section, as builds before the log wrote
//!   them; read where the log has nothing, never written.
//!
//! A partition's section holding offset `o` is in the first log entry whose `after` for the
//! partition is past `o`: `after` only grows with the sequence, so a search finds it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::{Produced, Stream, StreamError, aws, n, num, s};

/// Log entries one query reads while a consumer reads on (DynamoDB returns only those with its
/// partition's section).
const LOG_SCAN: i32 = 256;
/// Queries a consumer reading on makes before searching the log instead.
const LOG_SCAN_QUERIES: usize = 4;
/// Entries of the legacy index read per query.
const LEGACY_PAGE: i32 = 16;

/// The head item's key.
pub(crate) const HEAD: &str = "head";
/// The log entries' key.
pub(crate) const LOG: &str = "log";

/// The head item's attribute holding partition `p`'s high watermark.
pub(crate) fn hw_attr(p: u32) -> String {
    format!("h{p}")
}

/// The head item's attribute holding the log sequence of partition `p`'s last section.
pub(crate) fn last_attr(p: u32) -> String {
    format!("l{p}")
}

/// The head item, read once: the log's last sequence and every partition's watermark.
#[derive(Debug, Default)]
pub(crate) struct Head {
    /// The log's last sequence (0 before the first log entry).
    pub(crate) n: u64,
    hw: HashMap<u32, u64>,
    last: HashMap<u32, u64>,
}

impl Head {
    pub(crate) fn from_item(item: &HashMap<String, AttributeValue>) -> Self {
        let mut head = Head { n: num(item, "n").unwrap_or(0), ..Head::default() };
        for (k, v) in item {
            let value = v.as_n().ok().and_then(|v| v.parse::<u64>().ok());
            let (map, p) = match k.split_at_checked(1) {
                Some(("h", p)) => (&mut head.hw, p),
                Some(("l", p)) => (&mut head.last, p),
                _ => continue,
            };
            if let (Ok(p), Some(value)) = (p.parse::<u32>(), value) {
                map.insert(p, value);
            }
        }
        head
    }

    /// Partition `p`'s high watermark (0 before its first record).
    pub(crate) fn hw(&self, p: u32) -> u64 {
        self.hw.get(&p).copied().unwrap_or(0)
    }
}

/// One partition's records in a segment object: bytes `at..at + len`, themselves a segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Section {
    /// The partition.
    pub partition: u32,
    /// Its first record's offset.
    pub base: u64,
    /// Its records.
    pub count: u64,
    /// Where its bytes start in the object.
    pub at: u64,
    /// How many bytes it has.
    pub len: u64,
}

impl Section {
    /// `p:base:count:at:len`, as a log entry's `parts` holds it.
    fn encode(&self) -> String {
        format!("{}:{}:{}:{}:{}", self.partition, self.base, self.count, self.at, self.len)
    }

    fn parse(text: &str) -> Option<Section> {
        match *fields(text)? {
            [p, base, count, at, len] => Some(Section { partition: u32::try_from(p).ok()?, base, count, at, len }),
            _ => None,
        }
    }
}

/// `sections` as a log entry's (and a sequenced producer's item's) `parts`.
pub(crate) fn encode_parts(sections: &[Section]) -> String {
    sections.iter().map(Section::encode).collect::<Vec<_>>().join(",")
}

/// The answer a sequenced producer's item records in `parts`: a section per partition, as
/// [`encode_parts`] writes them, or `p:base:count` as builds before the log did.
pub(crate) fn produced(parts: &str) -> Option<Vec<Produced>> {
    parts
        .split(',')
        .map(|part| match *fields(part)? {
            [p, base_offset, count] | [p, base_offset, count, _, _] => {
                Some(Produced { partition: u32::try_from(p).ok()?, base_offset, count, duplicate: true })
            }
            _ => None,
        })
        .collect()
}

/// The numbers of a colon-separated part.
fn fields(part: &str) -> Option<Vec<u64>> {
    part.split(':').map(|f| f.parse().ok()).collect()
}

/// Where a consumer finds a run of a partition's records: a section of an object.
#[derive(Clone, Debug)]
pub(crate) struct Indexed {
    pub(crate) base: u64,
    pub(crate) count: u64,
    pub(crate) object: String,
    /// The section's bytes in the object (`at`, `len`); `None` for the whole object.
    pub(crate) range: Option<(u64, u64)>,
    /// The log entry naming it; `None` for a legacy `seg#<p>` entry.
    pub(crate) seq: Option<u64>,
}

impl Indexed {
    /// The offset after its records.
    pub(crate) fn end(&self) -> u64 {
        self.base + self.count
    }
}

/// A log entry: a committed segment object and the watermarks it left.
#[derive(Debug)]
pub struct LogEntry {
    /// Its sequence in the log, from 1.
    pub seq: u64,
    /// The segment object's key.
    pub object: String,
    /// The object's sections, a partition each.
    pub parts: Vec<Section>,
    after: Vec<u64>,
}

impl LogEntry {
    fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, StreamError> {
        let corrupt = || StreamError::Corrupt(format!("log entry {:?}", item.get("sk")));
        let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).ok_or_else(corrupt);
        let parts = text("parts")?.split(',').map(Section::parse).collect::<Option<Vec<_>>>().ok_or_else(corrupt)?;
        let after =
            text("after")?.split(',').map(|w| w.parse().ok()).collect::<Option<Vec<u64>>>().ok_or_else(corrupt)?;
        Ok(LogEntry { seq: num(item, "sk").ok_or_else(corrupt)?, object: text("object")?.clone(), parts, after })
    }

    /// Partition `p`'s high watermark once this entry was committed (0 for a partition the
    /// topic did not have yet).
    fn after(&self, p: u32) -> u64 {
        self.after.get(p as usize).copied().unwrap_or(0)
    }

    /// Partition `p`'s section of this entry's object, if it has one.
    fn section(&self, p: u32) -> Option<Indexed> {
        self.parts.iter().find(|s| s.partition == p).map(|s| Indexed {
            base: s.base,
            count: s.count,
            object: self.object.clone(),
            range: Some((s.at, s.len)),
            seq: Some(self.seq),
        })
    }
}

/// The `after` attribute of a log entry committing `sections` onto `head`: every partition's
/// watermark, `partitions` of them, comma-separated.
pub(crate) fn after(head: &Head, sections: &[Section], partitions: u32) -> String {
    (0..partitions)
        .map(|p| {
            let added: u64 = sections.iter().filter(|s| s.partition == p).map(|s| s.count).sum();
            (head.hw(p) + added).to_string()
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Stream {
    /// The head item: one consistent `GetItem`.
    pub(crate) async fn head(&self) -> Result<Head, StreamError> {
        Ok(self.item(HEAD, 0).await?.as_ref().map(Head::from_item).unwrap_or_default())
    }

    /// The whole log, in order, as far as retention kept it: what tools and tests inspect.
    pub async fn log(&self) -> Result<Vec<LogEntry>, StreamError> {
        let mut pages = self
            .ddb
            .query()
            .table_name(&self.topic.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(LOG))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut entries = Vec::new();
        while let Some(item) = pages.next().await {
            entries.push(LogEntry::from_item(&item.map_err(aws("Query"))?)?);
        }
        Ok(entries)
    }

    /// Log entry `seq`; `None` when retention (the TTL) removed it.
    async fn log_entry(&self, seq: u64) -> Result<Option<LogEntry>, StreamError> {
        self.item(LOG, seq).await?.as_ref().map(LogEntry::from_item).transpose()
    }

    /// Partition `p`'s sections in log entries `from..=to`, read [`LOG_SCAN`] entries a
    /// query and filtered to `p`'s by DynamoDB, until a query finds some or
    /// [`LOG_SCAN_QUERIES`] found none; and the sequence after the last entry read.
    async fn log_sections(&self, p: u32, from: u64, to: u64) -> Result<(Vec<Indexed>, u64), StreamError> {
        let mut start = from;
        for _ in 0..LOG_SCAN_QUERIES {
            if start > to {
                break;
            }
            // `parts` is `p:base:count:at:len,...`: `p`'s section begins it or follows a comma.
            let out = self
                .ddb
                .query()
                .table_name(&self.topic.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .filter_expression("begins_with(#parts, :first) OR contains(#parts, :later)")
                .expression_attribute_names("#parts", "parts")
                .expression_attribute_values(":pk", s(LOG))
                .expression_attribute_values(":from", n(start))
                .expression_attribute_values(":to", n(to))
                .expression_attribute_values(":first", s(format!("{p}:")))
                .expression_attribute_values(":later", s(format!(",{p}:")))
                .consistent_read(true)
                .limit(LOG_SCAN)
                .send()
                .await
                .map_err(aws("Query"))?;
            let found = out
                .items()
                .iter()
                .map(LogEntry::from_item)
                .filter_map(|e| e.map(|e| e.section(p)).transpose())
                .collect::<Result<Vec<_>, _>>()?;
            // Entries up to the last one read hold nothing of `p` but what was found.
            start = match out.last_evaluated_key().and_then(|k| num(k, "sk")) {
                Some(last) => last + 1,
                None => to + 1,
            };
            if !found.is_empty() {
                return Ok((found, start));
            }
        }
        Ok((Vec::new(), start))
    }

    /// The first log entry still kept whose watermark for `p` is past `offset`: the one
    /// holding `offset` unless retention removed it. Gallops back from `p`'s last section,
    /// then bisects, so a reader near the end pays a read or two; `None` when the log holds
    /// nothing of `p` past `offset`.
    async fn seek(&self, p: u32, offset: u64, head: &Head) -> Result<Option<LogEntry>, StreamError> {
        let Some(&top) = head.last.get(&p) else { return Ok(None) };
        let Some(mut found) = self.log_entry(top).await?.filter(|e| e.after(p) > offset) else {
            return Ok(None);
        };
        // `below` is 0 or a sequence whose entry is gone or not past `offset`.
        let (mut below, mut step) = (0u64, 1u64);
        while found.seq - below > 1 {
            let probe = if below == 0 && found.seq > step { found.seq - step } else { below + (found.seq - below) / 2 };
            match self.log_entry(probe).await?.filter(|e| e.after(p) > offset) {
                Some(entry) => {
                    found = entry;
                    step *= 2;
                }
                None => below = probe,
            }
        }
        Ok(Some(found))
    }

    /// Partition `p`'s sections from the one holding `next`, in order (empty when none is
    /// kept). `from` is where the log is read from when known (the sequence after the last
    /// section read); it is moved past what this read.
    pub(crate) async fn sections_at(
        &self,
        p: u32,
        next: u64,
        head: &Head,
        from: &mut Option<u64>,
    ) -> Result<Vec<Indexed>, StreamError> {
        if let Some(start) = from.filter(|f| *f <= head.n) {
            let (mut found, after) = self.log_sections(p, start, head.n).await?;
            *from = Some(after);
            found.retain(|i| i.end() > next);
            if found.first().is_some_and(|i| i.base <= next) {
                return Ok(found);
            }
        }
        if let Some(entry) = self.seek(p, next, head).await?
            && let Some(section) = entry.section(p).filter(|i| i.base <= next)
        {
            *from = Some(entry.seq + 1);
            return Ok(vec![section]);
        }
        *from = None;
        self.legacy_sections(p, next, head.hw(p)).await
    }

    /// `p`'s sections at or after `from` whose objects may still exist, the log's first,
    /// then the legacy index's: what an out-of-range answer names the earliest of.
    pub(crate) async fn sections_after(&self, p: u32, from: u64, head: &Head) -> Result<Vec<Indexed>, StreamError> {
        if let Some(entry) = self.seek(p, from, head).await? {
            let (mut found, _) = self.log_sections(p, entry.seq, head.n).await?;
            found.retain(|i| i.end() > from);
            if !found.is_empty() {
                return Ok(found);
            }
        }
        self.legacy_sections(p, from, head.hw(p)).await
    }

    /// From the legacy index (`seg#<p>`): the entry holding `next` and those after it, up to
    /// a page, or the entries after `next` when none holds it.
    async fn legacy_sections(&self, p: u32, next: u64, hw: u64) -> Result<Vec<Indexed>, StreamError> {
        if next >= hw {
            return Ok(Vec::new());
        }
        let mut found = self.legacy_page(p, "sk <= :o", &[(":o", next)], false, 1).await?;
        found.retain(|i| i.end() > next);
        let after = found.last().map_or(next, Indexed::end);
        if after < hw {
            let rest = [(":o", after), (":hw", hw - 1)];
            found.extend(self.legacy_page(p, "sk BETWEEN :o AND :hw", &rest, true, LEGACY_PAGE).await?);
        }
        Ok(found)
    }

    /// Legacy (`seg#<p>`) entries of partition `p` matching `cond`, ascending or descending, at
    /// most `limit`.
    async fn legacy_page(
        &self,
        p: u32,
        cond: &str,
        values: &[(&str, u64)],
        forward: bool,
        limit: i32,
    ) -> Result<Vec<Indexed>, StreamError> {
        let mut q = self
            .ddb
            .query()
            .table_name(&self.topic.table)
            .key_condition_expression(format!("pk = :pk AND {cond}"))
            .expression_attribute_values(":pk", s(format!("seg#{p}")))
            .scan_index_forward(forward)
            .consistent_read(true)
            .limit(limit);
        for (k, v) in values {
            q = q.expression_attribute_values(*k, n(*v));
        }
        let out = q.send().await.map_err(aws("Query"))?;
        Ok(out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i| {
                let object = i.get("object").and_then(|v| v.as_s().ok())?.clone();
                let range = num(i, "at").zip(num(i, "bytes"));
                Some(Indexed { base: num(i, "sk")?, object, count: num(i, "count")?, range, seq: None })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn the_head_reads_watermarks_and_last_sections_and_ignores_the_rest() {
        let head = Head::from_item(&item(&[
            ("pk", s(HEAD)),
            ("sk", n(0)),
            ("n", n(7)),
            ("h0", n(40)),
            ("h3", n(9)),
            ("l3", n(7)),
            ("hx", n(1)),
        ]));
        assert_eq!((head.n, head.hw(0), head.hw(3), head.hw(1)), (7, 40, 9, 0));
        assert_eq!(head.last.get(&3), Some(&7));
        assert_eq!(head.hw.len(), 2, "hx is no partition");
    }

    #[test]
    fn a_log_entry_round_trips_and_names_each_partitions_section() -> Result<(), StreamError> {
        let head = Head::from_item(&item(&[("h1", n(5))]));
        let parts = [
            Section { partition: 1, base: 5, count: 3, at: 0, len: 40 },
            Section { partition: 2, base: 0, count: 2, at: 40, len: 30 },
        ];
        let entry = LogEntry::from_item(&item(&[
            ("sk", n(4)),
            ("object", s("t/m/x.seg")),
            ("parts", s(encode_parts(&parts))),
            ("after", s(after(&head, &parts, 3))),
        ]))?;
        assert_eq!((entry.after(0), entry.after(1), entry.after(2), entry.after(9)), (0, 8, 2, 0));
        let one = entry.section(1).expect("partition 1");
        assert_eq!((one.base, one.end(), one.range, one.seq), (5, 8, Some((0, 40)), Some(4)));
        assert!(entry.section(0).is_none());
        Ok(())
    }

    #[test]
    fn a_producer_item_reads_in_the_logs_form_and_the_earlier_builds() {
        let both = produced("3:10:2:0:40,5:0:1").expect("five fields and three");
        let places: Vec<_> = both.iter().map(|p| (p.partition, p.base_offset, p.count, p.duplicate)).collect();
        assert_eq!(places, [(3, 10, 2, true), (5, 0, 1, true)]);
        for bad in ["", "3:10", "3:10:2:0", "3:10:2:0:40:1", "3:x:2", "4294967296:0:1"] {
            assert!(produced(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_damaged_log_entry_is_corrupt_not_misread() {
        for (parts, after) in [("1:5:3:0", "0,8"), ("1:5:3:0:40:9", "0,8"), ("1:5:3:0:40", "0,x"), ("", "0")] {
            let entry = LogEntry::from_item(&item(&[
                ("sk", n(1)),
                ("object", s("o")),
                ("parts", s(parts)),
                ("after", s(after)),
            ]));
            assert!(matches!(entry, Err(StreamError::Corrupt(_))), "{parts} / {after}");
        }
    }
}
