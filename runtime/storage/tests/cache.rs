//! One cache conformance suite, run on memory, DynamoDB in the emulator, a real Redis server,
//! and Redis in front of DynamoDB; then what only Redis or two tiers do (AUTH, TLS, prefixes,
//! refills with the time left).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use adf_acceptance::redis::RedisServer;
use adf_acceptance::{Emulator, unique_name};
use adf_storage::cache::dynamo::DynamoCache;
use adf_storage::cache::memory::MemoryCache;
use adf_storage::cache::redis::{RedisCache, RedisOptions};
use adf_storage::cache::tiered::TieredCache;
use adf_storage::cache::{Cache, CacheBackend};
use adf_storage::contract::{Binding, CACHE_TABLE, StoreKind};
use adf_storage::{Result as StorageResult, StorageError};
use anyhow::{Context, Result, ensure};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;

const MINUTE: Duration = Duration::from_secs(60);

/// A cache table in a new emulator.
struct Table {
    _emu: Emulator,
    ddb: aws_sdk_dynamodb::Client,
    name: String,
}

impl Table {
    async fn new() -> Result<Self> {
        let emu = Emulator::start()?;
        let sdk = adf_acceptance::sdk_config(emu.endpoint()).await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let name = unique_name("cache");
        CACHE_TABLE.create(&ddb, &name).await.map_err(anyhow::Error::msg)?;
        Ok(Self { _emu: emu, ddb, name })
    }

    fn backend(&self) -> Arc<DynamoCache> {
        Arc::new(DynamoCache::new(self.ddb.clone(), &self.name))
    }

    /// Writes `key` straight to the table, expiring at `exp` (epoch seconds).
    async fn put_raw(&self, key: &str, value: &[u8], exp: i64) -> Result<()> {
        self.ddb
            .put_item()
            .table_name(&self.name)
            .item("k", AttributeValue::S(key.into()))
            .item("v", AttributeValue::B(Blob::new(value)))
            .item("exp", AttributeValue::N(exp.to_string()))
            .send()
            .await?;
        Ok(())
    }

    /// The `exp` of `key`'s item, if it has one.
    async fn exp(&self, key: &str) -> Result<Option<i64>> {
        let out = self.ddb.get_item().table_name(&self.name).key("k", AttributeValue::S(key.into())).send().await?;
        Ok(out.item.and_then(|i| i.get("exp").and_then(|e| e.as_n().ok()).and_then(|n| n.parse().ok())))
    }
}

async fn redis_backend(server: &RedisServer) -> Result<Arc<RedisCache>> {
    let options =
        RedisOptions { url: server.url(), auth_token: Some(server.password().into()), ..RedisOptions::default() };
    Ok(Arc::new(RedisCache::connect(&options).await?))
}

/// A plain connection to `server`, to look behind the cache.
async fn raw(server: &RedisServer) -> Result<redis::aio::MultiplexedConnection> {
    let url = server.url().replacen("redis://", &format!("redis://:{}@", server.password()), 1);
    Ok(redis::Client::open(url)?.get_multiplexed_async_connection().await?)
}

fn epoch_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// How a backend shows expiry in the suite.
enum Expiry<'a> {
    /// Put with a 1 s TTL and watch the value go.
    Wait,
    /// Write an item already past its `exp` to this table, which DynamoDB has not deleted yet.
    PastItem(&'a Table),
}

/// What every backend must do.
async fn conformance(backend: Arc<dyn CacheBackend>, expiry: Expiry<'_>) -> Result<()> {
    let cache = Cache::new(backend.clone());
    let key = unique_name("conf");

    // Miss, put and get, overwrite, delete.
    ensure!(cache.get(&key).await?.is_none());
    ensure!(cache.get_text(&key).await?.is_none());
    cache.put(&key, "one", MINUTE).await?;
    ensure!(cache.get_text(&key).await?.as_deref() == Some("one"));
    cache.put(&key, "uno", MINUTE).await?;
    ensure!(cache.get(&key).await? == Some(Bytes::from_static(b"uno")));
    let hit = backend.get_with_ttl(&key).await?.context("a live value")?;
    let ttl = hit.ttl.context("a value put with a TTL has one")?;
    // DynamoDB keeps expiry to the second, rounded up.
    ensure!(ttl > Duration::from_secs(55) && ttl <= Duration::from_secs(61), "{ttl:?} left of 60 s");
    cache.delete(&key).await?;
    cache.delete(&key).await?;
    ensure!(cache.get(&key).await?.is_none());

    // Every byte value round-trips; JSON and text decode or say why not.
    let all: Vec<u8> = (0..=255).collect();
    cache.put(&key, all.clone(), MINUTE).await?;
    ensure!(cache.get(&key).await?.as_deref() == Some(all.as_slice()));
    ensure!(matches!(cache.get_text(&key).await, Err(StorageError::Decode { what: "text", .. })));
    cache.put_json(&key, &serde_json::json!({ "a": [1, 2] }), MINUTE).await?;
    ensure!(cache.get_json::<serde_json::Value>(&key).await? == Some(serde_json::json!({ "a": [1, 2] })));

    // Bad inputs are refused before the store sees them.
    let long = "k".repeat(513);
    let e = cache.put(&long, "v", MINUTE).await;
    ensure!(matches!(e, Err(StorageError::TooLarge { what: "key", size: 513, limit: 512 })), "{e:?}");
    ensure!(matches!(cache.get(&long).await, Err(StorageError::TooLarge { what: "key", .. })));
    ensure!(matches!(cache.get("").await, Err(StorageError::Invalid { what: "key", .. })));
    for ttl in [Duration::ZERO, Duration::from_millis(500), Duration::from_secs(366 * 24 * 3600)] {
        let e = cache.put(&key, "v", ttl).await;
        ensure!(matches!(e, Err(StorageError::Invalid { what: "ttl", .. })), "{ttl:?}: {e:?}");
    }
    let e = cache.get_or_insert_with(&key, Duration::ZERO, || async { Ok("never") }).await;
    ensure!(matches!(e, Err(StorageError::Invalid { what: "ttl", .. })), "{e:?}");

    single_flight(&cache).await?;

    match expiry {
        Expiry::Wait => {
            let key = unique_name("short");
            let put = Instant::now();
            cache.put(&key, "brief", Duration::from_secs(1)).await?;
            ensure!(cache.get(&key).await?.is_some(), "gone right after the put");
            let gone = loop {
                if cache.get(&key).await?.is_none() {
                    break put.elapsed();
                }
                ensure!(put.elapsed() < Duration::from_secs(5), "a 1 s value still there after 5 s");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            ensure!(gone >= Duration::from_millis(900), "a 1 s value gone after {gone:?}");
        }
        Expiry::PastItem(table) => {
            let key = unique_name("past");
            table.put_raw(&key, b"stale", epoch_seconds() - 10).await?;
            ensure!(table.exp(&key).await?.is_some(), "the emulator deleted the expired item");
            ensure!(cache.get(&key).await?.is_none(), "an item past its exp was returned");
            ensure!(backend.get_with_ttl(&key).await?.is_none());
        }
    }
    Ok(())
}

/// `get_or_insert_with`: 20 concurrent callers (clones of one cache) compute once and all get
/// that value, which is then cached; a failure reaches every caller and is not cached.
async fn single_flight(cache: &Cache) -> Result<()> {
    let key = unique_name("flight");
    let calls = AtomicUsize::new(0);
    let compute = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        // Let the other callers arrive while this one computes.
        tokio::task::yield_now().await;
        Ok::<_, StorageError>(Bytes::from_static(b"computed"))
    };
    let callers = (0..20).map(|_| {
        let cache = cache.clone();
        let key = key.clone();
        async move { cache.get_or_insert_with(&key, MINUTE, compute).await }
    });
    let values = futures::future::join_all(callers).await.into_iter().collect::<StorageResult<Vec<_>>>()?;
    ensure!(values.len() == 20 && values.iter().all(|v| v == "computed"), "{values:?}");
    ensure!(calls.load(Ordering::SeqCst) == 1, "computed {} times", calls.load(Ordering::SeqCst));
    ensure!(cache.get(&key).await? == Some(Bytes::from_static(b"computed")));
    let again = cache.get_or_insert_with(&key, MINUTE, || async { Ok("recomputed") }).await?;
    ensure!(again == "computed" && calls.load(Ordering::SeqCst) == 1);

    let key = unique_name("failing");
    let failures = AtomicUsize::new(0);
    let failing = || async {
        failures.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        Err::<Bytes, _>(StorageError::Throttled("upstream said slow down".into()))
    };
    let callers = (0..20).map(|_| cache.get_or_insert_with(&key, MINUTE, failing));
    for outcome in futures::future::join_all(callers).await {
        ensure!(matches!(&outcome, Err(StorageError::Throttled(m)) if m == "upstream said slow down"), "{outcome:?}");
    }
    ensure!(failures.load(Ordering::SeqCst) == 1, "failed {} times", failures.load(Ordering::SeqCst));
    ensure!(cache.get(&key).await?.is_none(), "a failure was cached");
    let recovered = cache.get_or_insert_with(&key, MINUTE, || async { Ok("fine now") }).await?;
    ensure!(recovered == "fine now");
    Ok(())
}

#[tokio::test]
async fn memory_conforms() -> Result<()> {
    conformance(Arc::new(MemoryCache::default()), Expiry::Wait).await
}

#[tokio::test]
async fn dynamodb_conforms_and_refuses_values_over_an_item() -> Result<()> {
    let table = Table::new().await?;
    conformance(table.backend(), Expiry::PastItem(&table)).await?;
    let cache = Cache::new(table.backend());
    let e = cache.put("big", vec![0u8; 381 * 1024], MINUTE).await;
    ensure!(matches!(e, Err(StorageError::TooLarge { what: "value", .. })), "{e:?}");
    Ok(())
}

#[tokio::test]
async fn redis_conforms() -> Result<()> {
    let server = RedisServer::start()?;
    conformance(redis_backend(&server).await?, Expiry::Wait).await
}

#[tokio::test]
async fn tiered_conforms() -> Result<()> {
    let (server, table) = (RedisServer::start()?, Table::new().await?);
    let tiered = TieredCache::new(redis_backend(&server).await?, table.backend());
    conformance(Arc::new(tiered), Expiry::PastItem(&table)).await
}

#[tokio::test]
async fn tiered_refills_redis_from_dynamodb_for_the_time_left() -> Result<()> {
    let (server, table) = (RedisServer::start()?, Table::new().await?);
    let (front, back) = (redis_backend(&server).await?, table.backend());
    let cache = Cache::new(Arc::new(TieredCache::new(front, back.clone())));
    let mut raw = raw(&server).await?;

    back.put("only-in-dynamodb", Bytes::from_static(b"durable"), Duration::from_secs(30)).await?;
    let exp = table.exp("only-in-dynamodb").await?.context("exp")?;
    let left_ms =
        exp * 1000 - i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis())?;
    let before: Option<Vec<u8>> = redis::cmd("GET").arg("only-in-dynamodb").query_async(&mut raw).await?;
    ensure!(before.is_none(), "the value was in Redis before the read");

    ensure!(cache.get("only-in-dynamodb").await? == Some(Bytes::from_static(b"durable")));
    let (value, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
        .cmd("GET")
        .arg("only-in-dynamodb")
        .cmd("PTTL")
        .arg("only-in-dynamodb")
        .query_async(&mut raw)
        .await?;
    ensure!(value.as_deref() == Some(&b"durable"[..]), "not refilled: {value:?}");
    ensure!(pttl > left_ms - 5_000 && pttl <= left_ms, "Redis keeps it {pttl} ms; DynamoDB had {left_ms} ms left");

    // An expired item is neither returned nor copied to Redis.
    table.put_raw("expired", b"stale", epoch_seconds() - 1).await?;
    ensure!(cache.get("expired").await?.is_none());
    let copied: Option<Vec<u8>> = redis::cmd("GET").arg("expired").query_async(&mut raw).await?;
    ensure!(copied.is_none(), "an expired item was copied to Redis");
    Ok(())
}

#[tokio::test]
async fn a_binding_with_a_redis_url_and_a_table_writes_both_tiers() -> Result<()> {
    let (server, table) = (RedisServer::start()?, Table::new().await?);
    let binding = Binding {
        kind: Some(StoreKind::Cache),
        name: "pages".into(),
        table: Some(table.name.clone()),
        redis_url: Some(server.url()),
        redis_auth_token: Some(server.password().into()),
        ..Binding::default()
    };
    let cache = Cache::from_binding(&binding, &table.ddb).await?;
    cache.put("page:1", "<html>", MINUTE).await?;
    ensure!(table.exp("page:1").await?.is_some(), "not written to DynamoDB");
    let in_redis: Option<String> = redis::cmd("GET").arg("page:1").query_async(&mut raw(&server).await?).await?;
    ensure!(in_redis.as_deref() == Some("<html>"), "{in_redis:?}");
    cache.delete("page:1").await?;
    ensure!(table.exp("page:1").await?.is_none(), "not deleted from DynamoDB");

    let dynamo_only = Binding { redis_url: None, redis_auth_token: None, ..binding.clone() };
    let cache = Cache::from_binding(&dynamo_only, &table.ddb).await?;
    cache.put("page:2", "two", MINUTE).await?;
    ensure!(table.exp("page:2").await?.is_some());

    let neither = Binding { table: None, redis_url: None, ..binding };
    let e = Cache::from_binding(&neither, &table.ddb).await.map(|_| ());
    ensure!(matches!(&e, Err(StorageError::Binding(m)) if m.contains("neither")), "{e:?}");
    Ok(())
}

#[tokio::test]
async fn a_wrong_or_missing_auth_token_is_access_denied_without_the_token() -> Result<()> {
    let server = RedisServer::start()?;
    let wrong = RedisOptions { url: server.url(), auth_token: Some("not-the-token".into()), ..RedisOptions::default() };
    let started = Instant::now();
    let e = RedisCache::connect(&wrong).await.map(|_| ());
    let Err(StorageError::AccessDenied(message)) = &e else { anyhow::bail!("expected access denied, got {e:?}") };
    ensure!(message.contains("AUTH token") && message.contains("127.0.0.1:"), "{message}");
    ensure!(!message.contains("not-the-token"), "the token is in the error: {message}");
    ensure!(started.elapsed() < Duration::from_secs(10), "refusal took {:?}", started.elapsed());
    ensure!(!format!("{wrong:?}").contains("not-the-token"), "the token is in the options' Debug");

    let missing = RedisOptions { url: server.url(), ..RedisOptions::default() };
    let e = async { RedisCache::connect(&missing).await?.get("k").await }.await;
    ensure!(matches!(&e, Err(StorageError::AccessDenied(m)) if m.contains("AUTH token")), "{e:?}");
    Ok(())
}

#[tokio::test]
async fn a_key_prefix_keeps_caches_apart_on_one_server() -> Result<()> {
    let server = RedisServer::start()?;
    let options = |prefix: &str| RedisOptions {
        url: server.url(),
        auth_token: Some(server.password().into()),
        key_prefix: prefix.into(),
        ..RedisOptions::default()
    };
    let a = Cache::new(Arc::new(RedisCache::connect(&options("a:")).await?));
    let b = Cache::new(Arc::new(RedisCache::connect(&options("b:")).await?));
    a.put("k", "from a", MINUTE).await?;
    ensure!(b.get("k").await?.is_none());
    let stored: Option<String> = redis::cmd("GET").arg("a:k").query_async(&mut raw(&server).await?).await?;
    ensure!(stored.as_deref() == Some("from a"), "{stored:?}");
    Ok(())
}

#[tokio::test]
async fn rediss_speaks_tls_and_checks_the_certificate() -> Result<()> {
    let server = RedisServer::start_tls()?;
    let url = server.tls_url().context("a TLS port")?;
    let trusted = RedisOptions {
        url: url.clone(),
        auth_token: Some(server.password().into()),
        root_ca_pem: server.ca_pem().map(|p| p.as_bytes().to_vec()),
        ..RedisOptions::default()
    };
    let cache = Cache::new(Arc::new(RedisCache::connect(&trusted).await?));
    cache.put("over-tls", "secret", MINUTE).await?;
    ensure!(cache.get_text("over-tls").await?.as_deref() == Some("secret"));

    // The system's roots do not include the test CA.
    let untrusted = RedisOptions { root_ca_pem: None, ..trusted.clone() };
    let e = RedisCache::connect(&untrusted).await.map(|_| ());
    ensure!(matches!(&e, Err(StorageError::Backend(m)) if m.to_lowercase().contains("certificate")), "{e:?}");

    let plain = RedisOptions { url: server.url(), ..trusted };
    let e = RedisCache::connect(&plain).await.map(|_| ());
    ensure!(matches!(e, Err(StorageError::Invalid { what: "root_ca_pem", .. })), "{e:?}");
    Ok(())
}
