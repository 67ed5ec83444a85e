//! A cache: values under keys for a time to live, on DynamoDB (its TTL attribute), Redis /
//! Valkey, or Redis in front of DynamoDB.
//!
//! [`Cache`] checks every argument and hands it to a [`CacheBackend`]: [`memory::MemoryCache`],
//! [`dynamo::DynamoCache`], [`redis::RedisCache`] or [`tiered::TieredCache`]. Backends never
//! return an expired entry, whether or not the store has deleted it yet.
//! [`Cache::get_or_insert_with`] computes a missing value once per process however many callers
//! ask for it at the same time.

pub mod dynamo;
pub mod memory;
pub mod redis;
pub mod tiered;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::contract::Binding;
use crate::error::{Result, StorageError};

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// The shortest time to live.
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest time to live (365 days).
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A value found with the time it has left.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// The value.
    pub value: Bytes,
    /// How long until it expires; None when the store holds it without an expiry.
    pub ttl: Option<Duration>,
}

/// Where cached values live. Keys and TTLs arrive checked by [`Cache`].
#[async_trait]
pub trait CacheBackend: Send + Sync + std::fmt::Debug {
    /// The live value under `key`.
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.get_with_ttl(key).await?.map(|h| h.value))
    }
    /// The live value under `key` with its remaining time to live.
    async fn get_with_ttl(&self, key: &str) -> Result<Option<Hit>>;
    /// Stores `value` under `key` for `ttl`, replacing what was there.
    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()>;
    /// Removes `key`; absent is fine.
    async fn delete(&self, key: &str) -> Result<()>;
}

/// The outcome a computation in flight hands to the callers waiting for it.
type Outcome = Option<Result<Bytes>>;

#[derive(Debug)]
struct Inner {
    backend: Arc<dyn CacheBackend>,
    /// Computations in flight, by key: their callers wait on the channel.
    flights: Mutex<HashMap<String, watch::Receiver<Outcome>>>,
}

/// A cache. Cheap to clone; clones share the backend and the computations in flight.
#[derive(Clone, Debug)]
pub struct Cache {
    inner: Arc<Inner>,
}

fn check_key(key: &str) -> Result<()> {
    crate::encoding::check_key(key, MAX_KEY_BYTES)
}

fn check_ttl(ttl: Duration) -> Result<()> {
    if ttl < MIN_TTL || ttl > MAX_TTL {
        return Err(StorageError::invalid("ttl", format!("{ttl:?} is outside {MIN_TTL:?} to {MAX_TTL:?} (365 days)")));
    }
    Ok(())
}

/// The same error again, for each caller that waited on a failed computation.
fn same_error(e: &StorageError) -> StorageError {
    use StorageError as E;
    match e {
        E::NotFound(s) => E::NotFound(s.clone()),
        E::PreconditionFailed(s) => E::PreconditionFailed(s.clone()),
        E::TooLarge { what, size, limit } => E::TooLarge { what, size: *size, limit: *limit },
        E::Invalid { what, reason } => E::Invalid { what, reason: reason.clone() },
        E::Throttled(s) => E::Throttled(s.clone()),
        E::AccessDenied(s) => E::AccessDenied(s.clone()),
        E::Binding(s) => E::Binding(s.clone()),
        E::Decode { what, reason } => E::Decode { what, reason: reason.clone() },
        // Backend, and any kind added later, by its text.
        other => E::Backend(other.to_string()),
    }
}

/// A caller's part in a computation for one key.
enum Role {
    /// Nobody is computing: this caller does, and tells the others through the sender.
    Leader(watch::Sender<Outcome>),
    /// Another caller is computing: wait for its outcome.
    Follower(watch::Receiver<Outcome>),
}

/// Takes the leader's key out of the flights when it finishes or is dropped mid-way; the
/// followers of a leader dropped without an outcome see the channel close and try again.
struct Flight<'a> {
    inner: &'a Inner,
    key: &'a str,
    tx: watch::Sender<Outcome>,
}

impl Flight<'_> {
    fn finish(self, outcome: Result<Bytes>) -> Result<Bytes> {
        let shared = match &outcome {
            Ok(v) => Ok(v.clone()),
            Err(e) => Err(same_error(e)),
        };
        self.tx.send_replace(Some(shared));
        outcome
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut flights = self.inner.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if flights.get(self.key).is_some_and(|rx| rx.same_channel(&self.tx.subscribe())) {
            flights.remove(self.key);
        }
    }
}

impl Cache {
    /// A cache on `backend`.
    pub fn new(backend: Arc<dyn CacheBackend>) -> Self {
        Self { inner: Arc::new(Inner { backend, flights: Mutex::new(HashMap::new()) }) }
    }

    /// The same cache with every backend operation measured into `metrics`.
    pub fn measured(self, metrics: crate::metrics::Metrics) -> Self {
        Self::new(Arc::new(crate::metrics::Measured::new(Arc::clone(&self.inner.backend), metrics)))
    }

    /// A cache in process memory (for tests of code that uses a cache).
    pub fn memory() -> Self {
        Self::new(Arc::new(memory::MemoryCache::default()))
    }

    /// The cache `binding` names: Redis in front of its DynamoDB table when it has both a
    /// `redis_url` and a `table`, else the one it has. Connects to Redis now, so a wrong URL
    /// or AUTH token fails here.
    pub async fn from_binding(binding: &Binding, ddb: &aws_sdk_dynamodb::Client) -> Result<Self> {
        let redis = match &binding.redis_url {
            Some(url) => {
                let options = redis::RedisOptions {
                    url: url.clone(),
                    auth_token: binding.redis_auth_token.clone(),
                    ..redis::RedisOptions::default()
                };
                Some(Arc::new(redis::RedisCache::connect(&options).await?))
            }
            None => None,
        };
        let table = binding.table.clone().map(|t| Arc::new(dynamo::DynamoCache::new(ddb.clone(), t)));
        let backend: Arc<dyn CacheBackend> = match (redis, table) {
            (Some(front), Some(back)) => Arc::new(tiered::TieredCache::new(front, back)),
            (Some(redis), None) => redis,
            (None, Some(table)) => table,
            (None, None) => {
                return Err(StorageError::Binding(format!(
                    "cache binding {:?} has neither a table nor a redis_url",
                    binding.name
                )));
            }
        };
        Ok(Self::new(backend))
    }

    /// The value under `key`, or None when absent or expired.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        check_key(key)?;
        self.inner.backend.get(key).await
    }

    /// The value under `key` as UTF-8 text.
    pub async fn get_text(&self, key: &str) -> Result<Option<String>> {
        self.get(key).await?.map(|b| crate::encoding::text(&b)).transpose()
    }

    /// The value under `key` parsed as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get(key).await?.map(|b| crate::encoding::json(&b)).transpose()
    }

    /// Stores `value` under `key` for `ttl` (1 s to 365 days).
    pub async fn put(&self, key: &str, value: impl Into<Bytes>, ttl: Duration) -> Result<()> {
        check_key(key)?;
        check_ttl(ttl)?;
        self.inner.backend.put(key, value.into(), ttl).await
    }

    /// Stores `value` as JSON under `key` for `ttl`.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) -> Result<()> {
        self.put(key, crate::encoding::to_json(value)?, ttl).await
    }

    /// Removes `key`; absent is fine.
    pub async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.inner.backend.delete(key).await
    }

    /// The value under `key`; when there is none, `compute`s it and stores it for `ttl`.
    ///
    /// Callers in this process that ask for the same key while it is being read or computed
    /// wait for that one computation and get its value or its error. A failed computation (or
    /// store) is not cached: the next call tries again.
    pub async fn get_or_insert_with<F, Fut, T>(&self, key: &str, ttl: Duration, compute: F) -> Result<Bytes>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
        T: Into<Bytes>,
    {
        check_key(key)?;
        check_ttl(ttl)?;
        let flight = loop {
            match self.role(key) {
                Role::Leader(tx) => break Flight { inner: &self.inner, key, tx },
                Role::Follower(mut rx) => {
                    if let Ok(outcome) = rx.wait_for(Option::is_some).await
                        && let Some(result) = outcome.as_ref()
                    {
                        return match result {
                            Ok(v) => Ok(v.clone()),
                            Err(e) => Err(same_error(e)),
                        };
                    }
                    // The leader was dropped before it finished: take its place.
                }
            }
        };
        let outcome = async {
            if let Some(v) = self.inner.backend.get(key).await? {
                return Ok(v);
            }
            let value: Bytes = compute().await?.into();
            self.inner.backend.put(key, value.clone(), ttl).await?;
            Ok(value)
        }
        .await;
        flight.finish(outcome)
    }

    /// Joins the computation for `key` in flight, or starts one.
    fn role(&self, key: &str) -> Role {
        let mut flights = self.inner.flights.lock().unwrap_or_else(PoisonError::into_inner);
        match flights.get(key) {
            Some(rx) => Role::Follower(rx.clone()),
            None => {
                let (tx, rx) = watch::channel(None);
                flights.insert(key.to_string(), rx);
                Role::Leader(tx)
            }
        }
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn bad_keys_and_ttls_are_typed_errors() {
        assert!(matches!(check_key(&"k".repeat(513)), Err(StorageError::TooLarge { what: "key", size: 513, .. })));
        assert!(matches!(check_key(""), Err(StorageError::Invalid { what: "key", .. })));
        assert!(check_key(&"k".repeat(512)).is_ok());
        for ttl in [Duration::ZERO, Duration::from_millis(999), MAX_TTL + Duration::from_secs(1)] {
            assert!(matches!(check_ttl(ttl), Err(StorageError::Invalid { what: "ttl", .. })), "{ttl:?}");
        }
        assert!(check_ttl(MIN_TTL).is_ok() && check_ttl(MAX_TTL).is_ok());
    }

    #[test]
    fn a_shared_error_keeps_its_kind_and_text() {
        let errors = [
            StorageError::Throttled("slow down".into()),
            StorageError::TooLarge { what: "value", size: 2, limit: 1 },
            StorageError::Backend("boom".into()),
            StorageError::invalid("ttl", "zero"),
        ];
        for e in &errors {
            let again = same_error(e);
            assert_eq!(std::mem::discriminant(e), std::mem::discriminant(&again));
            assert_eq!(e.to_string(), again.to_string());
        }
    }

    #[tokio::test]
    async fn a_dropped_leader_hands_the_computation_to_a_waiting_caller() -> Result<()> {
        let cache = Cache::memory();
        let calls = AtomicUsize::new(0);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let leader = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_insert_with("k", MIN_TTL, || async move {
                        let _ = started_tx.send(());
                        std::future::pending::<Result<Bytes>>().await
                    })
                    .await
            })
        };
        started_rx.await.map_err(|e| StorageError::Backend(e.to_string()))?;
        let follower = cache.get_or_insert_with("k", MIN_TTL, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok("second")
        });
        tokio::pin!(follower);
        // The follower waits on the leader, then takes over once the leader is dropped.
        assert!(futures::poll!(follower.as_mut()).is_pending());
        leader.abort();
        assert_eq!(follower.await?, Bytes::from_static(b"second"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(cache.inner.flights.lock().unwrap_or_else(PoisonError::into_inner).is_empty());
        Ok(())
    }
}
