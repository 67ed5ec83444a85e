//! Two tiers: a fast cache (Redis) in front of a durable one (DynamoDB). Reads try the front
//! and, on a miss, the back, copying what they find to the front for the time it has left;
//! writes and deletes go to the back first, so the front never holds what the back lost.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{CacheBackend, Hit};
use crate::error::Result;

/// A cache in front of another.
#[derive(Clone, Debug)]
pub struct TieredCache {
    front: Arc<dyn CacheBackend>,
    back: Arc<dyn CacheBackend>,
}

impl TieredCache {
    /// `front` (read first, refilled from `back`) before `back` (written first).
    pub fn new(front: Arc<dyn CacheBackend>, back: Arc<dyn CacheBackend>) -> Self {
        Self { front, back }
    }

    /// The back's value under `key`, copied to the front for its remaining time (a value
    /// without an expiry is not copied: the front would keep it for ever).
    async fn refill(&self, key: &str) -> Result<Option<Hit>> {
        let Some(hit) = self.back.get_with_ttl(key).await? else { return Ok(None) };
        if let Some(ttl) = hit.ttl {
            self.front.put(key, hit.value.clone(), ttl).await?;
        }
        Ok(Some(hit))
    }
}

#[async_trait]
impl CacheBackend for TieredCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        if let Some(v) = self.front.get(key).await? {
            return Ok(Some(v));
        }
        Ok(self.refill(key).await?.map(|h| h.value))
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<Hit>> {
        if let Some(hit) = self.front.get_with_ttl(key).await? {
            return Ok(Some(hit));
        }
        self.refill(key).await
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        self.back.put(key, value.clone(), ttl).await?;
        self.front.put(key, value, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.back.delete(key).await?;
        self.front.delete(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::memory::MemoryCache;

    #[tokio::test]
    async fn a_miss_in_front_is_refilled_from_the_back_for_the_time_left() -> Result<()> {
        let (front, back) = (Arc::new(MemoryCache::default()), Arc::new(MemoryCache::default()));
        let tiered = TieredCache::new(front.clone(), back.clone());
        back.put("k", Bytes::from_static(b"v"), Duration::from_secs(30)).await?;
        assert_eq!(front.get("k").await?, None);
        assert_eq!(tiered.get("k").await?, Some(Bytes::from_static(b"v")));
        let refilled = front.get_with_ttl("k").await?.and_then(|h| h.ttl).unwrap_or_default();
        assert!(refilled > Duration::from_secs(25) && refilled <= Duration::from_secs(30), "{refilled:?}");
        tiered.delete("k").await?;
        assert_eq!((front.get("k").await?, back.get("k").await?), (None, None));
        Ok(())
    }
}
