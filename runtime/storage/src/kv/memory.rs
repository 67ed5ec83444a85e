//! A KV namespace in process memory, for tests of code that uses KV.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Entry, KvBackend, ListKey, ListPage, Write, cursor_after, expired, metadata_json};
use crate::error::{Result, StorageError};

/// Entries in a sorted map.
#[derive(Debug, Default)]
pub struct MemoryKv {
    entries: Mutex<BTreeMap<String, Write>>,
}

impl MemoryKv {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Write>>> {
        self.entries.lock().map_err(|_| StorageError::Backend("memory KV lock poisoned".into()))
    }
}

fn entry(w: &Write) -> Entry {
    Entry { value: w.value.clone(), metadata: w.metadata.as_deref().map(metadata_json), expiration: w.expiration }
}

#[async_trait]
impl KvBackend for MemoryKv {
    async fn get(&self, key: &str, now: i64) -> Result<Option<Entry>> {
        Ok(self.lock()?.get(key).filter(|w| !expired(w.expiration, now)).map(entry))
    }

    async fn get_many(&self, keys: &[String], now: i64) -> Result<Vec<Option<Entry>>> {
        let map = self.lock()?;
        Ok(keys.iter().map(|k| map.get(k).filter(|w| !expired(w.expiration, now)).map(entry)).collect())
    }

    async fn put(&self, write: Write) -> Result<()> {
        self.lock()?.insert(write.key.clone(), write);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.lock()?.remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str, limit: usize, after: Option<&str>, now: i64) -> Result<ListPage> {
        let map = self.lock()?;
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        let mut live = map
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, w)| !expired(w.expiration, now));
        let keys: Vec<ListKey> = live
            .by_ref()
            .take(limit)
            .map(|(k, w)| ListKey {
                name: k.clone(),
                expiration: w.expiration,
                metadata: w.metadata.as_deref().map(metadata_json),
            })
            .collect();
        let list_complete = live.next().is_none();
        let cursor = if list_complete { None } else { keys.last().map(|k| cursor_after(&k.name)) };
        Ok(ListPage { keys, list_complete, cursor })
    }
}
