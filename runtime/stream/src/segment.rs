//! The segment format: one S3 object holds one produced batch.
//!
//! ```text
//! header (32 bytes, little endian)
//!   magic "ADFS" | version u8 = 1 | flags u8 (bit 0: zstd) | reserved u16
//!   count u32 | raw_len u32 | stored_len u32 | crc32 of stored payload u32 | first timestamp i64
//! index: count x u32, each record's byte position in the raw payload
//! payload (zstd when flagged): per record
//!   timestamp i64 | key_len u32 (u32::MAX: no key) | key | value_len u32 | value
//! ```
//!
//! Offsets are not stored: a segment's records are numbered from the base offset the commit
//! assigned, so a segment whose commit lost a race is simply committed again at a later base.
//! The index lets a reader start at any record of the segment without parsing those before it.

use bytes::Bytes;

use crate::StreamError;

const MAGIC: &[u8; 4] = b"ADFS";
const VERSION: u8 = 1;
const FLAG_ZSTD: u8 = 1;
const HEADER_LEN: usize = 32;
/// zstd level: fast, and fixed so that equal batches give equal objects.
const ZSTD_LEVEL: i32 = 3;

/// One record to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Partitioning key; records with the same key keep their order.
    pub key: Option<Bytes>,
    /// Payload.
    pub value: Bytes,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// Encodes `records` as a segment, compressed with zstd when `compress`.
pub fn encode(records: &[Record], compress: bool) -> Result<Vec<u8>, StreamError> {
    let mut raw =
        Vec::with_capacity(records.iter().map(|r| 16 + r.value.len() + r.key.as_ref().map_or(0, Bytes::len)).sum());
    let mut index = Vec::with_capacity(records.len() * 4);
    for r in records {
        index.extend_from_slice(&u32::try_from(raw.len()).map_err(|_| StreamError::TooLarge("segment"))?.to_le_bytes());
        raw.extend_from_slice(&r.timestamp.to_le_bytes());
        match &r.key {
            Some(k) => {
                raw.extend_from_slice(&u32::try_from(k.len()).map_err(|_| StreamError::TooLarge("key"))?.to_le_bytes());
                raw.extend_from_slice(k);
            }
            None => raw.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
        raw.extend_from_slice(&u32::try_from(r.value.len()).map_err(|_| StreamError::TooLarge("value"))?.to_le_bytes());
        raw.extend_from_slice(&r.value);
    }
    let stored =
        if compress { zstd::bulk::compress(&raw, ZSTD_LEVEL).map_err(StreamError::Codec)? } else { raw.clone() };
    let mut out = Vec::with_capacity(HEADER_LEN + index.len() + stored.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(if compress { FLAG_ZSTD } else { 0 });
    out.extend_from_slice(&[0, 0]);
    let len = |n: usize| u32::try_from(n).map_err(|_| StreamError::TooLarge("segment"));
    out.extend_from_slice(&len(records.len())?.to_le_bytes());
    out.extend_from_slice(&len(raw.len())?.to_le_bytes());
    out.extend_from_slice(&len(stored.len())?.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&stored).to_le_bytes());
    out.extend_from_slice(&records.first().map_or(0, |r| r.timestamp).to_le_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&stored);
    Ok(out)
}

/// Decodes the records of a segment from record `skip` on.
pub fn decode(data: &[u8], skip: usize) -> Result<Vec<Record>, StreamError> {
    let bad = |why: &str| StreamError::Corrupt(why.to_string());
    if data.len() < HEADER_LEN || &data[..4] != MAGIC {
        return Err(bad("not a segment"));
    }
    if data[4] != VERSION {
        return Err(bad("unknown segment version"));
    }
    let u32_at = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as usize;
    let (count, raw_len, stored_len, crc) = (u32_at(8), u32_at(12), u32_at(16), u32_at(20));
    let index_end = HEADER_LEN + count * 4;
    if data.len() != index_end + stored_len {
        return Err(bad("truncated segment"));
    }
    let stored = &data[index_end..];
    if crc32fast::hash(stored) as usize != crc {
        return Err(bad("checksum mismatch"));
    }
    let raw = if data[5] & FLAG_ZSTD != 0 {
        zstd::bulk::decompress(stored, raw_len).map_err(StreamError::Codec)?
    } else {
        stored.to_vec()
    };
    let mut out = Vec::with_capacity(count.saturating_sub(skip));
    for i in skip..count {
        let mut pos = u32_at(HEADER_LEN + i * 4);
        let take = |pos: &mut usize, n: usize| -> Result<&[u8], StreamError> {
            let s = raw.get(*pos..*pos + n).ok_or_else(|| bad("record out of bounds"))?;
            *pos += n;
            Ok(s)
        };
        let ts = i64::from_le_bytes(take(&mut pos, 8)?.try_into().map_err(|_| bad("timestamp"))?);
        let key_len = u32::from_le_bytes(take(&mut pos, 4)?.try_into().map_err(|_| bad("key length"))?);
        let key =
            if key_len == u32::MAX { None } else { Some(Bytes::copy_from_slice(take(&mut pos, key_len as usize)?)) };
        let value_len = u32::from_le_bytes(take(&mut pos, 4)?.try_into().map_err(|_| bad("value length"))?) as usize;
        let value = Bytes::copy_from_slice(take(&mut pos, value_len)?);
        out.push(Record { key, value, timestamp: ts });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                key: (i % 3 != 0).then(|| Bytes::from(format!("k{}", i % 5))),
                value: Bytes::from(format!("{{\"order\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 50))),
                timestamp: 1_700_000_000_000 + i as i64,
            })
            .collect()
    }

    #[test]
    fn round_trips_with_and_without_compression_from_any_record() {
        let rs = records(100);
        for compress in [true, false] {
            let seg = encode(&rs, compress).expect("encode");
            assert_eq!(decode(&seg, 0).expect("decode"), rs);
            assert_eq!(decode(&seg, 57).expect("decode"), rs[57..].to_vec());
            assert!(decode(&seg, 100).expect("decode").is_empty());
        }
    }

    #[test]
    fn compression_shrinks_repetitive_records() {
        let rs = records(100);
        let (z, plain) = (encode(&rs, true).expect("z"), encode(&rs, false).expect("plain"));
        assert!(z.len() * 2 < plain.len(), "{} vs {}", z.len(), plain.len());
    }

    #[test]
    fn damage_is_detected_not_decoded() {
        let mut seg = encode(&records(10), true).expect("encode");
        let last = seg.len() - 1;
        seg[last] ^= 0xff;
        assert!(matches!(decode(&seg, 0), Err(StreamError::Corrupt(_))));
        assert!(matches!(decode(&seg[..20], 0), Err(StreamError::Corrupt(_))));
    }
}
