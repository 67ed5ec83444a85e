//! What the stores share about bytes: opaque list cursors, and values read as text or JSON.

use base64::Engine;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StorageError};

/// The opaque cursor for a page that ended at `key`.
pub(crate) fn cursor_after(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

/// The key a cursor from [`cursor_after`] ended at; `store` names who returned it.
pub(crate) fn key_of_cursor(cursor: &str, store: &str) -> Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| StorageError::invalid("cursor", format!("not a cursor this {store} returned")))
}

/// Refuses an empty key, or one over `limit` bytes.
pub(crate) fn check_key(key: &str, limit: usize) -> Result<()> {
    if key.is_empty() {
        return Err(StorageError::invalid("key", "a key cannot be empty"));
    }
    if key.len() > limit {
        return Err(StorageError::TooLarge { what: "key", size: key.len(), limit });
    }
    Ok(())
}

/// A value as UTF-8 text.
pub(crate) fn text(value: &[u8]) -> Result<String> {
    String::from_utf8(value.to_vec()).map_err(|e| StorageError::Decode { what: "text", reason: e.to_string() })
}

/// A value parsed as JSON.
pub(crate) fn json<T: DeserializeOwned>(value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| StorageError::Decode { what: "JSON", reason: e.to_string() })
}

/// `value` as JSON bytes.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StorageError::Decode { what: "JSON", reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() -> Result<()> {
        assert_eq!(key_of_cursor(&cursor_after("user:ü/1"), "namespace")?, "user:ü/1");
        let e = key_of_cursor("%%%", "bucket").expect_err("garbage");
        assert!(matches!(e, StorageError::Invalid { what: "cursor", .. }) && e.to_string().contains("bucket"), "{e}");
        Ok(())
    }

    #[test]
    fn bad_text_and_json_are_decode_errors() {
        assert!(matches!(text(&[0xff]), Err(StorageError::Decode { what: "text", .. })));
        assert!(matches!(json::<serde_json::Value>(b"{"), Err(StorageError::Decode { what: "JSON", .. })));
    }
}
