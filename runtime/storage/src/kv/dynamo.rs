//! A KV namespace in its DynamoDB table ([`crate::contract::KV_TABLE`]): one item per key
//! under the namespace's partition, so `get` is one `GetItem`, `put` one `PutItem`, and a
//! prefix listing `Query` pages. A value too large for an item goes to the namespace's bucket
//! under [`crate::contract::kv_blob_prefix`], written before the item that points at it and
//! deleted when a put or delete replaces that item.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{Entry, KvBackend, ListKey, ListPage, Write, cursor_after, expired, metadata_json};
use crate::contract::{KV_TABLE, kv_blob_prefix};
use crate::error::{Result, StorageError};

/// The largest value kept in the item itself: DynamoDB items hold 400 KB, including the key
/// (up to 512 bytes), the metadata (up to 1 KiB) and the attribute names.
pub const INLINE_LIMIT: usize = 380 * 1024;

const V: &str = "v";
const BLOB: &str = "blob";
const MD: &str = "md";
const SIZE: &str = "size";

/// The bucket holding a namespace's large values.
#[derive(Clone, Debug)]
pub struct Blobs {
    /// S3 client.
    pub s3: aws_sdk_s3::Client,
    /// Bucket name.
    pub bucket: String,
}

/// A namespace on DynamoDB (and S3 for large values).
#[derive(Clone, Debug)]
pub struct DynamoKv {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    namespace: String,
    blobs: Option<Blobs>,
}

fn ns_attr() -> &'static str {
    KV_TABLE.hash.name
}

fn key_attr() -> &'static str {
    KV_TABLE.range.map_or("k", |k| k.name)
}

fn exp_attr() -> &'static str {
    KV_TABLE.ttl.unwrap_or("exp")
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

impl DynamoKv {
    /// Namespace `namespace` in `table`, with large values in `blobs` when there is a bucket.
    pub fn new(
        ddb: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        namespace: impl Into<String>,
        blobs: Option<Blobs>,
    ) -> Self {
        Self { ddb, table: table.into(), namespace: namespace.into(), blobs }
    }

    fn key(&self, key: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (ns_attr().to_string(), AttributeValue::S(self.namespace.clone())),
            (key_attr().to_string(), AttributeValue::S(key.to_string())),
        ])
    }

    /// A new object key for a large value of `key`: unique per put, so a replaced value's
    /// object is never the new one.
    fn blob_key(&self, key: &str) -> String {
        let digest = Sha256::digest(key.as_bytes());
        let hash: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        format!("{}{hash}-{nanos:x}", kv_blob_prefix(&self.namespace))
    }

    async fn entry(&self, item: &HashMap<String, AttributeValue>, now: i64) -> Result<Option<Entry>> {
        let expiration = number(item, exp_attr());
        if expired(expiration, now) {
            return Ok(None);
        }
        let value = match (item.get(V).and_then(|v| v.as_b().ok()), text(item, BLOB)) {
            (Some(b), _) => Bytes::copy_from_slice(b.as_ref()),
            (None, Some(blob)) => self.read_blob(blob).await?,
            (None, None) => Bytes::new(),
        };
        Ok(Some(Entry { value, metadata: text(item, MD).map(metadata_json), expiration }))
    }

    fn blobs(&self, size: usize) -> Result<&Blobs> {
        self.blobs.as_ref().ok_or(StorageError::TooLarge {
            what: "value (this namespace has no bucket for large values)",
            size,
            limit: INLINE_LIMIT,
        })
    }

    async fn read_blob(&self, blob: &str) -> Result<Bytes> {
        let b = self.blobs(0)?;
        let out =
            b.s3.get_object()
                .bucket(&b.bucket)
                .key(blob)
                .send()
                .await
                .map_err(|e| StorageError::sdk("GetObject", &e))?;
        let body = out.body.collect().await.map_err(|e| StorageError::Backend(format!("reading {blob}: {e}")))?;
        Ok(body.into_bytes())
    }

    async fn delete_blob(&self, old: Option<&HashMap<String, AttributeValue>>) -> Result<()> {
        let (Some(blob), Some(b)) = (old.and_then(|i| text(i, BLOB)), &self.blobs) else { return Ok(()) };
        b.s3.delete_object()
            .bucket(&b.bucket)
            .key(blob)
            .send()
            .await
            .map_err(|e| StorageError::sdk("DeleteObject", &e))?;
        Ok(())
    }
}

#[async_trait]
impl KvBackend for DynamoKv {
    async fn get(&self, key: &str, now: i64) -> Result<Option<Entry>> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StorageError::sdk("GetItem", &e))?;
        match out.item {
            Some(item) => self.entry(&item, now).await,
            None => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[String], now: i64) -> Result<Vec<Option<Entry>>> {
        let mut wanted: Vec<HashMap<String, AttributeValue>> = keys.iter().map(|k| self.key(k)).collect();
        wanted.dedup();
        let mut found: HashMap<String, HashMap<String, AttributeValue>> = HashMap::new();
        let mut delay = Duration::from_millis(25);
        while !wanted.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut wanted)))
                .consistent_read(true)
                .build()
                .map_err(|e| StorageError::Backend(e.to_string()))?;
            let out = self
                .ddb
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| StorageError::sdk("BatchGetItem", &e))?;
            for item in out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                if let Some(k) = text(&item, key_attr()) {
                    found.insert(k.to_string(), item);
                }
            }
            if let Some(rest) = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                wanted = rest.keys;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
        let mut entries = Vec::with_capacity(keys.len());
        for k in keys {
            entries.push(match found.get(k) {
                Some(item) => self.entry(item, now).await?,
                None => None,
            });
        }
        Ok(entries)
    }

    async fn put(&self, w: Write) -> Result<()> {
        let mut item = self.key(&w.key);
        let size = w.value.len();
        let blob = if size > INLINE_LIMIT {
            let b = self.blobs(size)?;
            let blob = self.blob_key(&w.key);
            b.s3.put_object()
                .bucket(&b.bucket)
                .key(&blob)
                .body(w.value.clone().into())
                .send()
                .await
                .map_err(|e| StorageError::sdk("PutObject", &e))?;
            item.insert(BLOB.into(), AttributeValue::S(blob.clone()));
            Some(blob)
        } else {
            item.insert(V.into(), AttributeValue::B(Blob::new(w.value.to_vec())));
            None
        };
        item.insert(SIZE.into(), AttributeValue::N(size.to_string()));
        if let Some(e) = w.expiration {
            item.insert(exp_attr().into(), AttributeValue::N(e.to_string()));
        }
        if let Some(m) = w.metadata {
            item.insert(MD.into(), AttributeValue::S(m));
        }
        let put = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| StorageError::sdk("PutItem", &e));
        match put {
            Ok(out) => self.delete_blob(out.attributes.as_ref()).await,
            Err(e) => {
                // The item still points at the old value: the new object is nobody's.
                if let (Some(blob), Some(b)) = (blob, &self.blobs) {
                    let _ = b.s3.delete_object().bucket(&b.bucket).key(blob).send().await;
                }
                Err(e)
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let out = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key(key)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| StorageError::sdk("DeleteItem", &e))?;
        self.delete_blob(out.attributes.as_ref()).await
    }

    async fn list(&self, prefix: &str, limit: usize, after: Option<&str>, now: i64) -> Result<ListPage> {
        let mut keys = Vec::new();
        let mut start = after.map(|a| self.key(a));
        let condition = if prefix.is_empty() { "#ns = :ns" } else { "#ns = :ns AND begins_with(#k, :p)" };
        loop {
            let mut q = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .filter_expression("attribute_not_exists(#exp) OR #exp > :now")
                .projection_expression("#k, #exp, #md")
                .expression_attribute_names("#ns", ns_attr())
                .expression_attribute_names("#k", key_attr())
                .expression_attribute_names("#exp", exp_attr())
                .expression_attribute_names("#md", MD)
                .expression_attribute_values(":ns", AttributeValue::S(self.namespace.clone()))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .limit((limit - keys.len()) as i32)
                .set_exclusive_start_key(start.take());
            if !prefix.is_empty() {
                q = q.expression_attribute_values(":p", AttributeValue::S(prefix.to_string()));
            }
            let out = q.send().await.map_err(|e| StorageError::sdk("Query", &e))?;
            for item in out.items.unwrap_or_default() {
                let expiration = number(&item, exp_attr());
                // The filter already dropped expired items; the clock may have moved since.
                if let (Some(name), false) = (text(&item, key_attr()), expired(expiration, now)) {
                    keys.push(ListKey {
                        name: name.to_string(),
                        expiration,
                        metadata: text(&item, MD).map(metadata_json),
                    });
                }
            }
            let last = out.last_evaluated_key.and_then(|k| text(&k, key_attr()).map(str::to_string));
            match last {
                // A page the filter shortened: go on until the limit or the end.
                Some(last) if keys.len() < limit => start = Some(self.key(&last)),
                Some(last) => return Ok(ListPage { keys, list_complete: false, cursor: Some(cursor_after(&last)) }),
                None => return Ok(ListPage { keys, list_complete: true, cursor: None }),
            }
        }
    }
}
