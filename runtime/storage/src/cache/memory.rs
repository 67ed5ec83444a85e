//! A cache in process memory, for tests of code that uses a cache.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::{CacheBackend, Hit};
use crate::error::{Result, StorageError};

/// Values with the instant they expire; an expired value is dropped when read.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (Bytes, Instant)>>,
}

impl MemoryCache {
    fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, (Bytes, Instant)>>> {
        self.entries.lock().map_err(|_| StorageError::Backend("memory cache lock poisoned".into()))
    }
}

#[async_trait]
impl CacheBackend for MemoryCache {
    async fn get_with_ttl(&self, key: &str) -> Result<Option<Hit>> {
        let mut entries = self.lock()?;
        let now = Instant::now();
        match entries.get(key) {
            Some((value, expires)) if *expires > now => {
                Ok(Some(Hit { value: value.clone(), ttl: Some(*expires - now) }))
            }
            Some(_) => {
                entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        let expires = Instant::now()
            .checked_add(ttl)
            .ok_or_else(|| StorageError::invalid("ttl", format!("{ttl:?} is beyond this clock")))?;
        self.lock()?.insert(key.to_string(), (value, expires));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.lock()?.remove(key);
        Ok(())
    }
}
