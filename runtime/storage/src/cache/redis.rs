//! A cache on Redis / Valkey through one multiplexed connection that reconnects by itself:
//! `SET key value PX ttl`, `GET`, `DEL`. `rediss://` URLs speak TLS (ElastiCache in-transit
//! encryption) with rustls; the AUTH token goes into the connection's password and is never
//! logged or put in an error.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, ErrorKind, IntoConnectionInfo, RedisError, TlsCertificates};

use super::{CacheBackend, Hit};
use crate::error::{Result, StorageError};

/// How long connecting (TCP, TLS, AUTH) may take, per attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times a failed connection is tried again before the error is returned.
const CONNECT_RETRIES: usize = 2;

/// Where a Redis / Valkey cache is and how to reach it.
#[derive(Clone, Default)]
pub struct RedisOptions {
    /// `redis://host:port[/db]`, or `rediss://…` for TLS; without the token.
    pub url: String,
    /// The AUTH token (password), when the server has one.
    pub auth_token: Option<String>,
    /// PEM certificates that a `rediss://` server's certificate must chain to, instead of the
    /// system's roots (a private CA).
    pub root_ca_pem: Option<Vec<u8>>,
    /// Put before every key, so caches can share a server.
    pub key_prefix: String,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &self.url)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "<redacted>"))
            .field("root_ca_pem", &self.root_ca_pem.as_ref().map(|_| "<set>"))
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// A cache on a Redis / Valkey server.
#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    /// `host:port`, for errors.
    server: String,
    prefix: String,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache").field("server", &self.server).field("prefix", &self.prefix).finish()
    }
}

/// The error for `op` on `server`: a refused AUTH token as [`StorageError::AccessDenied`].
fn failure(op: &str, server: &str, e: &RedisError) -> StorageError {
    if e.code() == Some("NOAUTH") {
        return StorageError::AccessDenied(format!(
            "redis {server}: {op}: the server wants an AUTH token and none was given (the binding's \
             redis_auth_token): {e}"
        ));
    }
    if e.kind() == ErrorKind::AuthenticationFailed || e.code() == Some("WRONGPASS") {
        return StorageError::AccessDenied(format!(
            "redis {server}: {op}: the server refused the AUTH token (the binding's redis_auth_token): {e}"
        ));
    }
    StorageError::Backend(format!("redis {server}: {op}: {}", adf_common::error_chain(e)))
}

/// rustls needs a process-wide crypto provider when the build has more than one: install
/// aws-lc-rs (the AWS SDK's) unless the program installed one already.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one first: either way there is one.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

impl RedisCache {
    /// Connects (and authenticates) to the server `options` name.
    pub async fn connect(options: &RedisOptions) -> Result<Self> {
        // The URL is not repeated in errors: it could carry a password.
        let info = options
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| StorageError::Binding(format!("redis_url is not a redis:// or rediss:// URL: {e}")))?;
        let server = info.addr().to_string();
        let info = match &options.auth_token {
            Some(token) => {
                let settings = info.redis_settings().clone().set_password(token);
                info.set_redis_settings(settings)
            }
            None => info,
        };
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        if tls {
            ensure_crypto_provider();
        }
        let client = match (&options.root_ca_pem, tls) {
            (Some(pem), true) => {
                Client::build_with_tls(info, TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) })
            }
            (Some(_), false) => {
                return Err(StorageError::invalid("root_ca_pem", "only a rediss:// URL uses TLS certificates"));
            }
            (None, _) => Client::open(info),
        }
        .map_err(|e| failure("configuring", &server, &e))?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(CONNECT_RETRIES)
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let conn =
            ConnectionManager::new_with_config(client, config).await.map_err(|e| failure("connecting", &server, &e))?;
        Ok(Self { conn, server, prefix: options.key_prefix.clone() })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl CacheBackend for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| failure("GET", &self.server, &e))?;
        Ok(value.map(Bytes::from))
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<Hit>> {
        let key = self.key(key);
        let (value, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(&key)
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| failure("GET and PTTL", &self.server, &e))?;
        // PTTL is -1 for a key without an expiry (as a run in one transaction, never -2 for a
        // key GET found).
        let ttl = u64::try_from(pttl).ok().map(Duration::from_millis);
        Ok(value.map(|v| Hit { value: Bytes::from(v), ttl }))
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value.as_ref())
            .arg("PX")
            .arg(millis)
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(|e| failure("SET", &self.server, &e))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(|e| failure("DEL", &self.server, &e))
    }
}
