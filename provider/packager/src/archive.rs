//! Reproducible zips: entries sorted by name, every time 1980-01-01 00:00, mode 0755 for
//! executables and 0644 for the rest, deflate at a fixed level, no extra fields.

use std::io::{Cursor, Write};

use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// One file of an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the zip, `/`-separated.
    pub name: String,
    /// Content.
    pub data: Vec<u8>,
    /// Unix mode: 0o755 or 0o644.
    pub mode: u32,
}

/// The deflate level: fixed so that the same inputs give the same bytes.
const LEVEL: i64 = 6;

/// Writes `entries` as a zip whose bytes depend only on names, contents and modes.
pub fn write_zip(mut entries: Vec<Entry>) -> std::io::Result<Vec<u8>> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for e in entries {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(LEVEL))
            .last_modified_time(DateTime::default())
            .unix_permissions(e.mode)
            .large_file(false);
        zip.start_file(e.name, options)?;
        zip.write_all(&e.data)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Base64 of the SHA-256 of `zip`: exactly Lambda's `CodeSha256`.
pub fn code_sha256(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(zip))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn entries() -> Vec<Entry> {
        vec![
            Entry { name: "lib/util.rb".into(), data: b"puts 1".to_vec(), mode: 0o644 },
            Entry { name: "bootstrap".into(), data: vec![0x7f, b'E', b'L', b'F', 1, 2, 3], mode: 0o755 },
        ]
    }

    #[test]
    fn same_entries_in_any_order_give_the_same_bytes() {
        let a = write_zip(entries()).expect("zip");
        let mut reversed = entries();
        reversed.reverse();
        let b = write_zip(reversed).expect("zip");
        assert_eq!(a, b);
        assert_eq!(code_sha256(&a), code_sha256(&b));
    }

    #[test]
    fn entries_keep_modes_sorted_names_and_a_fixed_time() {
        let zip = write_zip(entries()).expect("zip");
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).expect("read");
        let names: Vec<String> = archive.file_names().map(str::to_string).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names.len(), 2);
        let mut f = archive.by_name("bootstrap").expect("bootstrap");
        assert_eq!(f.unix_mode().map(|m| m & 0o777), Some(0o755));
        assert_eq!(f.last_modified().map(|t| (t.year(), t.month(), t.day())), Some((1980, 1, 1)));
        assert!(f.extra_data().is_none_or(<[u8]>::is_empty), "no extra fields");
        let mut data = Vec::new();
        f.read_to_end(&mut data).expect("read");
        assert_eq!(data, vec![0x7f, b'E', b'L', b'F', 1, 2, 3]);
        drop(f);
        assert_eq!(archive.by_name("lib/util.rb").expect("rb").unix_mode().map(|m| m & 0o777), Some(0o644));
    }

    #[test]
    fn the_hash_is_base64_sha256() {
        assert_eq!(code_sha256(b""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }
}
