//! Storage operation metrics: the shared [`adf_common::metrics`] emitter (CloudWatch embedded
//! metric format on Lambda), namespace `ADF/Storage`. Each operation of a store reached
//! through [`crate::Storage`] emits `Operations` (1), `Latency` (ms) and, when it fails,
//! `Errors` (1), with the dimensions `Binding` and `Operation` (such as `KvGet`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

pub use adf_common::metrics::{METRICS_ENV, Metrics, Unit};

use crate::cache::{CacheBackend, Hit};
use crate::error::Result;
use crate::kv::{Entry, KvBackend, ListPage, Write};

/// The namespace storage metrics go to.
pub const NAMESPACE: &str = "ADF/Storage";

/// Runs `op`, then emits its count, latency and failure under dimension `Operation` = `name`.
pub(crate) async fn measured<T>(metrics: &Metrics, name: &str, op: impl Future<Output = Result<T>>) -> Result<T> {
    if !metrics.enabled() {
        return op.await;
    }
    let started = Instant::now();
    let result = op.await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let failed = if result.is_err() { 1.0 } else { 0.0 };
    metrics
        .clone()
        .with_dimension("Operation", name)
        .emit(&[("Operations", 1.0, Unit::Count), ("Latency", ms, Unit::Milliseconds), ("Errors", failed, Unit::Count)])
        .await;
    result
}

/// A store backend whose every operation is measured.
#[derive(Debug)]
pub(crate) struct Measured<B: ?Sized> {
    metrics: Metrics,
    inner: Arc<B>,
}

impl<B: ?Sized> Measured<B> {
    /// `inner`, measured into `metrics`.
    pub(crate) fn new(inner: Arc<B>, metrics: Metrics) -> Self {
        Self { metrics, inner }
    }
}

#[async_trait]
impl KvBackend for Measured<dyn KvBackend> {
    async fn get(&self, key: &str, now: i64) -> Result<Option<Entry>> {
        measured(&self.metrics, "KvGet", self.inner.get(key, now)).await
    }

    async fn get_many(&self, keys: &[String], now: i64) -> Result<Vec<Option<Entry>>> {
        measured(&self.metrics, "KvGetMany", self.inner.get_many(keys, now)).await
    }

    async fn put(&self, write: Write) -> Result<()> {
        measured(&self.metrics, "KvPut", self.inner.put(write)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        measured(&self.metrics, "KvDelete", self.inner.delete(key)).await
    }

    async fn list(&self, prefix: &str, limit: usize, after: Option<&str>, now: i64) -> Result<ListPage> {
        measured(&self.metrics, "KvList", self.inner.list(prefix, limit, after, now)).await
    }
}

#[async_trait]
impl CacheBackend for Measured<dyn CacheBackend> {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        measured(&self.metrics, "CacheGet", self.inner.get(key)).await
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<Hit>> {
        measured(&self.metrics, "CacheGet", self.inner.get_with_ttl(key)).await
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        measured(&self.metrics, "CachePut", self.inner.put(key, value, ttl)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        measured(&self.metrics, "CacheDelete", self.inner.delete(key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Kv, PutOptions};
    use crate::{Cache, StorageError};

    #[tokio::test]
    async fn every_operation_is_counted_and_failures_are_errors() -> Result<()> {
        let metrics = Metrics::memory(NAMESPACE).with_dimension("Binding", "sessions");
        let backend: Arc<dyn KvBackend> = Arc::new(crate::kv::memory::MemoryKv::default());
        let kv = Kv::new(Arc::new(Measured::new(backend, metrics.clone())));
        kv.put("a", "1", PutOptions::default()).await?;
        kv.get("a").await?;
        let lines = metrics.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let put: serde_json::Value =
            serde_json::from_str(&lines[0]).map_err(|e| StorageError::Backend(e.to_string()))?;
        assert_eq!((put["Operation"].as_str(), put["Binding"].as_str()), (Some("KvPut"), Some("sessions")));
        assert_eq!((put["Operations"].as_f64(), put["Errors"].as_f64()), (Some(1.0), Some(0.0)));

        let cache_metrics = Metrics::memory(NAMESPACE);
        let cache = Cache::memory().measured(cache_metrics.clone());
        cache.put("k", "v", Duration::from_secs(60)).await?;
        assert!(cache.get("k").await?.is_some());
        assert_eq!(cache_metrics.lines().len(), 2);
        // Checked before it reaches the backend: no operation, no metric.
        assert!(cache.put("", "v", Duration::from_secs(60)).await.is_err());
        assert_eq!(cache_metrics.lines().len(), 2);
        Ok(())
    }

    #[tokio::test]
    async fn a_failed_operation_counts_as_an_error() {
        let metrics = Metrics::memory(NAMESPACE);
        let failed: Result<()> =
            measured(&metrics, "ObjectGet", async { Err(StorageError::NotFound("x".into())) }).await;
        assert!(failed.is_err());
        let line: serde_json::Value = serde_json::from_str(&metrics.lines()[0]).unwrap_or_default();
        assert_eq!(line["Errors"].as_f64(), Some(1.0));
    }
}
