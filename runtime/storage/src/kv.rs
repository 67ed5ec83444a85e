//! KV namespaces, shaped like Cloudflare Workers KV: `get` (bytes, text, JSON), metadata,
//! expiring puts, prefix listing with a cursor, `get_many`.
//!
//! [`Kv`] checks every argument against the limits below and hands a [`Write`] to a
//! [`KvBackend`]: [`dynamo::DynamoKv`] (the namespace's table; large values in its bucket) or
//! [`memory::MemoryKv`]. Backends never return an expired entry, whether or not the store
//! has deleted it yet.

pub mod dynamo;
pub mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::encoding;
pub(crate) use crate::encoding::cursor_after;
use crate::error::{Result, StorageError};

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// The largest value, in bytes (25 MiB).
pub const MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;
/// The largest metadata, as serialized JSON, in bytes.
pub const MAX_METADATA_BYTES: usize = 1024;
/// The shortest `expiration_ttl`, and how far in the future an `expiration` must be.
pub const MIN_TTL_SECONDS: i64 = 60;
/// The most keys one `list` page returns (also the default).
pub const MAX_LIST_LIMIT: usize = 1000;
/// The most keys one `get_many` reads.
pub const MAX_GET_MANY: usize = 100;

/// How a value is written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PutOptions {
    /// When the key expires, in seconds since the epoch (at least 60 s from now).
    pub expiration: Option<i64>,
    /// Seconds from now until the key expires (at least 60).
    pub expiration_ttl: Option<i64>,
    /// Metadata stored with the key and returned by `get_with_metadata` and `list` (at most
    /// 1 KiB of JSON).
    pub metadata: Option<serde_json::Value>,
}

impl PutOptions {
    /// Expire `seconds` from now.
    pub fn ttl(seconds: i64) -> Self {
        Self { expiration_ttl: Some(seconds), ..Self::default() }
    }

    /// Expire at `epoch_seconds`.
    pub fn expires_at(epoch_seconds: i64) -> Self {
        Self { expiration: Some(epoch_seconds), ..Self::default() }
    }

    /// With `metadata`.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

/// A stored value with what was stored beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The value.
    pub value: Bytes,
    /// Its metadata, if any.
    pub metadata: Option<serde_json::Value>,
    /// When it expires (epoch seconds), if ever.
    pub expiration: Option<i64>,
}

/// Which keys to list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListOptions {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// At most this many keys (default and maximum 1,000).
    pub limit: Option<usize>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

/// A listed key.
#[derive(Clone, Debug, PartialEq)]
pub struct ListKey {
    /// The key.
    pub name: String,
    /// When it expires (epoch seconds), if ever.
    pub expiration: Option<i64>,
    /// Its metadata, if any.
    pub metadata: Option<serde_json::Value>,
}

/// One page of keys, in key order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListPage {
    /// The keys.
    pub keys: Vec<ListKey>,
    /// True when no keys follow.
    pub list_complete: bool,
    /// Pass as [`ListOptions::cursor`] for the next page; None when the list is complete.
    pub cursor: Option<String>,
}

/// A checked write: what a backend stores.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    /// The key (1 to 512 bytes).
    pub key: String,
    /// The value (at most 25 MiB).
    pub value: Bytes,
    /// Absolute expiry, epoch seconds.
    pub expiration: Option<i64>,
    /// Metadata as JSON text (at most 1 KiB).
    pub metadata: Option<String>,
}

/// Where KV entries live.
#[async_trait]
pub trait KvBackend: Send + Sync + std::fmt::Debug {
    /// The entry under `key`, unless absent or expired at `now` (epoch seconds).
    async fn get(&self, key: &str, now: i64) -> Result<Option<Entry>>;
    /// The entries under `keys` (at most 100), in that order.
    async fn get_many(&self, keys: &[String], now: i64) -> Result<Vec<Option<Entry>>>;
    /// Stores `write`, replacing what was there.
    async fn put(&self, write: Write) -> Result<()>;
    /// Removes `key`; absent is fine.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Up to `limit` live keys starting with `prefix`, after the key in `cursor`.
    async fn list(&self, prefix: &str, limit: usize, after: Option<&str>, now: i64) -> Result<ListPage>;
}

/// A KV namespace.
#[derive(Clone, Debug)]
pub struct Kv {
    backend: Arc<dyn KvBackend>,
}

/// Seconds since the epoch.
pub fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn check_key(key: &str) -> Result<()> {
    crate::encoding::check_key(key, MAX_KEY_BYTES)
}

impl Kv {
    /// A namespace on `backend`.
    pub fn new(backend: Arc<dyn KvBackend>) -> Self {
        Self { backend }
    }

    /// A namespace in memory (for tests of code that uses KV).
    pub fn memory() -> Self {
        Self::new(Arc::new(memory::MemoryKv::default()))
    }

    /// The value under `key`, or None.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.get_with_metadata(key).await?.map(|e| e.value))
    }

    /// The value under `key` as UTF-8 text.
    pub async fn get_text(&self, key: &str) -> Result<Option<String>> {
        self.get(key).await?.map(|b| encoding::text(&b)).transpose()
    }

    /// The value under `key` parsed as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get(key).await?.map(|b| encoding::json(&b)).transpose()
    }

    /// The value, metadata and expiry under `key`.
    pub async fn get_with_metadata(&self, key: &str) -> Result<Option<Entry>> {
        check_key(key)?;
        self.backend.get(key, now_seconds()).await
    }

    /// The values under `keys` (at most 100), in that order.
    pub async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Entry>>> {
        if keys.len() > MAX_GET_MANY {
            return Err(StorageError::invalid(
                "keys",
                format!("get_many reads at most {MAX_GET_MANY} keys, not {}", keys.len()),
            ));
        }
        for k in keys {
            check_key(k)?;
        }
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        self.backend.get_many(&keys, now_seconds()).await
    }

    /// Stores `value` under `key`.
    pub async fn put(&self, key: &str, value: impl Into<Bytes>, options: PutOptions) -> Result<()> {
        let write = Self::checked(key, value.into(), options, now_seconds())?;
        self.backend.put(write).await
    }

    /// Stores `value` as JSON under `key`.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T, options: PutOptions) -> Result<()> {
        self.put(key, crate::encoding::to_json(value)?, options).await
    }

    /// Removes `key` (and its large value); absent is fine.
    pub async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.backend.delete(key).await
    }

    /// A page of live keys in key order.
    pub async fn list(&self, options: ListOptions) -> Result<ListPage> {
        let limit = options.limit.unwrap_or(MAX_LIST_LIMIT);
        if limit == 0 || limit > MAX_LIST_LIMIT {
            return Err(StorageError::invalid("limit", format!("between 1 and {MAX_LIST_LIMIT}, not {limit}")));
        }
        let after = options.cursor.as_deref().map(|c| encoding::key_of_cursor(c, "namespace")).transpose()?;
        let prefix = options.prefix.unwrap_or_default();
        self.backend.list(&prefix, limit, after.as_deref(), now_seconds()).await
    }

    /// The write a backend stores for these arguments at `now`, or why they are refused.
    pub fn checked(key: &str, value: Bytes, options: PutOptions, now: i64) -> Result<Write> {
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(StorageError::TooLarge { what: "value", size: value.len(), limit: MAX_VALUE_BYTES });
        }
        let expiration = match (options.expiration, options.expiration_ttl) {
            (Some(_), Some(_)) => {
                return Err(StorageError::invalid("expiration", "set expiration or expiration_ttl, not both"));
            }
            (Some(at), None) if at < now + MIN_TTL_SECONDS => {
                return Err(StorageError::invalid(
                    "expiration",
                    format!("{at} is less than {MIN_TTL_SECONDS} s from now ({now})"),
                ));
            }
            (None, Some(ttl)) if ttl < MIN_TTL_SECONDS => {
                return Err(StorageError::invalid(
                    "expiration_ttl",
                    format!("{ttl} s is under the minimum of {MIN_TTL_SECONDS} s"),
                ));
            }
            (at, None) => at,
            (None, Some(ttl)) => Some(now + ttl),
        };
        let metadata = options.metadata.map(|m| m.to_string());
        if let Some(m) = &metadata
            && m.len() > MAX_METADATA_BYTES
        {
            return Err(StorageError::TooLarge { what: "metadata", size: m.len(), limit: MAX_METADATA_BYTES });
        }
        Ok(Write { key: key.to_string(), value, expiration, metadata })
    }
}

/// Whether an entry expiring at `expiration` is gone at `now`.
pub(crate) fn expired(expiration: Option<i64>, now: i64) -> bool {
    expiration.is_some_and(|e| e <= now)
}

/// Metadata text as JSON (text that does not parse is kept as a string).
pub(crate) fn metadata_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_typed_errors_that_say_what_is_wrong() {
        let now = 1_000_000;
        let e = Kv::checked(&"k".repeat(513), Bytes::new(), PutOptions::default(), now);
        assert!(matches!(e, Err(StorageError::TooLarge { what: "key", size: 513, limit: 512 })), "{e:?}");
        let e = Kv::checked("k", Bytes::new(), PutOptions::ttl(59), now);
        assert!(matches!(e, Err(StorageError::Invalid { what: "expiration_ttl", .. })), "{e:?}");
        let e = Kv::checked("k", Bytes::new(), PutOptions::expires_at(now + 30), now);
        assert!(matches!(e, Err(StorageError::Invalid { what: "expiration", .. })), "{e:?}");
        let big = serde_json::json!({ "x": "y".repeat(1100) });
        let e = Kv::checked("k", Bytes::new(), PutOptions::default().metadata(big), now);
        assert!(matches!(e, Err(StorageError::TooLarge { what: "metadata", .. })), "{e:?}");
        let e = Kv::checked("k", Bytes::from(vec![0; MAX_VALUE_BYTES + 1]), PutOptions::default(), now);
        assert!(matches!(e, Err(StorageError::TooLarge { what: "value", .. })), "{e:?}");
        let e = Kv::checked("", Bytes::new(), PutOptions::default(), now);
        assert!(matches!(e, Err(StorageError::Invalid { what: "key", .. })), "{e:?}");
    }

    #[test]
    fn a_ttl_becomes_an_absolute_expiration() -> Result<()> {
        let w =
            Kv::checked("k", Bytes::from_static(b"v"), PutOptions::ttl(60).metadata(serde_json::json!({"a": 1})), 100)?;
        assert_eq!(w.expiration, Some(160));
        assert_eq!(w.metadata.as_deref(), Some(r#"{"a":1}"#));
        Ok(())
    }
}
