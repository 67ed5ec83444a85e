//! adf-storage: the storage connector a function reaches its bound stores through.
//!
//! ```ignore
//! let storage = adf_storage::Storage::from_env().await?;
//! storage.kv("sessions")?.put("user:123", value, PutOptions::ttl(3600)).await?;
//! ```
//!
//! - [`kv`]: KV namespaces on DynamoDB, large values in S3 (Cloudflare KV's shape);
//! - [`object`]: objects on S3 through `object_store` (R2's shape where it adds to it);
//! - [`cache`]: a cache on DynamoDB TTL, Redis / Valkey, or both in two tiers;
//! - [`sql`]: SQL on PostgreSQL (RDS, Aurora) through a small pool, optionally with IAM auth;
//! - [`metrics`]: CloudWatch embedded metric format on stdout;
//! - [`contract`]: what the provider binds (tables, the bindings variable, IAM actions).
//!
//! KV, objects and the cache have in-memory backends for tests (SQL runs against a real
//! PostgreSQL); every operation fails with
//! [`StorageError`].

#[cfg(feature = "stores")]
pub mod cache;
pub mod contract;
#[cfg(feature = "stores")]
mod encoding;
pub mod error;
#[cfg(feature = "stores")]
pub mod kv;
#[cfg(feature = "stores")]
pub mod metrics;
#[cfg(feature = "stores")]
pub mod object;
#[cfg(feature = "stores")]
pub mod sql;

#[cfg(feature = "stores")]
pub use crate::cache::Cache;
pub use crate::contract::{AccessLevel, Binding, Bindings, StoreKind};
pub use crate::error::{Result, StorageError};
#[cfg(feature = "stores")]
pub use crate::kv::{Kv, ListOptions, PutOptions};
#[cfg(feature = "stores")]
pub use crate::object::Objects;
#[cfg(feature = "stores")]
pub use crate::storage::Storage;

#[cfg(feature = "stores")]
mod storage;
