//! Which partition a record goes to, chosen exactly as the stream Lambda chooses it.

/// The partition of `key`: CRC-32 of the key modulo the partition count, the stream's own
/// hash, so a batch the client sends to this partition is where the server would put it.
pub fn partition_for(key: &str, partitions: u32) -> u32 {
    crc32fast::hash(key.as_bytes()) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_with_crc32_like_the_server() {
        // CRC-32 (IEEE) of "a" is 0xe8b7be43.
        assert_eq!(partition_for("a", 1_000_000), 0xe8b7_be43 % 1_000_000);
        assert_eq!(partition_for("a", 7), 0xe8b7_be43 % 7);
        assert_eq!(partition_for("anything", 1), 0);
        assert_eq!(partition_for("anything", 0), 0);
    }

    #[test]
    fn keys_spread_over_every_partition() {
        let mut seen = [0u32; 4];
        for i in 0..400 {
            seen[partition_for(&format!("key-{i}"), 4) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
