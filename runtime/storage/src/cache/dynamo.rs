//! A cache in a DynamoDB table ([`crate::contract::CACHE_TABLE`]): one item per key holding
//! `v` (the value, binary) and `exp` (when it expires, epoch seconds, rounded up), which the
//! table's TTL deletes some time after. Reads skip an item past its `exp` whether or not
//! DynamoDB has deleted it yet.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;

use super::{CacheBackend, Hit, now_millis};
use crate::contract::CACHE_TABLE;
use crate::error::{Result, StorageError};

/// The largest value: an item holds 400 KB including the key and the attribute names.
pub const MAX_VALUE_BYTES: usize = crate::kv::dynamo::INLINE_LIMIT;

const V: &str = "v";

fn key_attr() -> &'static str {
    CACHE_TABLE.hash.name
}

fn exp_attr() -> &'static str {
    CACHE_TABLE.ttl.unwrap_or("exp")
}

/// A cache on a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoCache {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoCache {
    /// The cache in `table`, reached through `ddb`.
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { ddb, table: table.into() }
    }

    fn key(key: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([(key_attr().to_string(), AttributeValue::S(key.to_string()))])
    }
}

/// The value and remaining time of `item` at `now` (epoch milliseconds), unless expired.
fn hit(item: &HashMap<String, AttributeValue>, now: i64) -> Result<Option<Hit>> {
    let ttl = match item.get(exp_attr()) {
        Some(exp) => {
            let exp: i64 = exp.as_n().ok().and_then(|n| n.parse().ok()).ok_or_else(|| StorageError::Decode {
                what: "cache item",
                reason: format!("`{}` is not a number of epoch seconds: {exp:?}", exp_attr()),
            })?;
            let left = exp.saturating_mul(1000).saturating_sub(now);
            if left <= 0 {
                return Ok(None);
            }
            Some(Duration::from_millis(left.unsigned_abs()))
        }
        None => None,
    };
    let value = item
        .get(V)
        .and_then(|v| v.as_b().ok())
        .ok_or_else(|| StorageError::Decode { what: "cache item", reason: format!("no binary `{V}` attribute") })?;
    Ok(Some(Hit { value: Bytes::copy_from_slice(value.as_ref()), ttl }))
}

#[async_trait]
impl CacheBackend for DynamoCache {
    async fn get_with_ttl(&self, key: &str) -> Result<Option<Hit>> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StorageError::sdk("GetItem", &e))?;
        match out.item {
            Some(item) => hit(&item, now_millis()),
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(StorageError::TooLarge { what: "value", size: value.len(), limit: MAX_VALUE_BYTES });
        }
        let ttl_millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let exp = now_millis().saturating_add(ttl_millis).saturating_add(999) / 1000;
        let mut item = Self::key(key);
        item.insert(V.into(), AttributeValue::B(Blob::new(value.to_vec())));
        item.insert(exp_attr().into(), AttributeValue::N(exp.to_string()));
        self.ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StorageError::sdk("PutItem", &e))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.ddb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key)))
            .send()
            .await
            .map_err(|e| StorageError::sdk("DeleteItem", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(exp: Option<&str>) -> HashMap<String, AttributeValue> {
        let mut item = DynamoCache::key("k");
        item.insert(V.into(), AttributeValue::B(Blob::new(b"v".to_vec())));
        if let Some(exp) = exp {
            item.insert(exp_attr().into(), AttributeValue::N(exp.into()));
        }
        item
    }

    #[test]
    fn an_item_at_or_past_its_exp_is_a_miss_and_a_live_one_has_its_remaining_time() -> Result<()> {
        let now = 1_000_000_500;
        assert_eq!(hit(&item(Some("1000000")), now)?, None);
        assert_eq!(hit(&item(Some("999999")), now)?, None);
        let live = hit(&item(Some("1000002")), now)?;
        assert_eq!(live, Some(Hit { value: Bytes::from_static(b"v"), ttl: Some(Duration::from_millis(1500)) }));
        assert_eq!(hit(&item(None), now)?.and_then(|h| h.ttl), None);
        assert!(matches!(hit(&item(Some("soon")), now), Err(StorageError::Decode { .. })));
        Ok(())
    }
}
