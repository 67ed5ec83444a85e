//! One KV conformance suite, run on the memory backend and on DynamoDB + S3 in the emulator.

use std::collections::HashMap;
use std::sync::Arc;

use adf_acceptance::{Emulator, unique_name};
use adf_storage::kv::dynamo::{Blobs, DynamoKv, INLINE_LIMIT};
use adf_storage::kv::{Kv, KvBackend, ListOptions, PutOptions, Write, now_seconds};
use adf_storage::{StorageError, contract};
use anyhow::{Context, Result, ensure};
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;

/// A namespace on the emulator: its table, a bucket for large values, and the clients.
struct Dynamo {
    _emu: Emulator,
    ddb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    table: String,
    bucket: String,
}

impl Dynamo {
    async fn new() -> Result<Self> {
        let emu = Emulator::start()?;
        let sdk = adf_acceptance::sdk_config(emu.endpoint()).await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
        let table = unique_name("kv");
        contract::KV_TABLE.create(&ddb, &table).await.map_err(anyhow::Error::msg)?;
        s3.create_bucket().bucket(&table).send().await?;
        Ok(Self { _emu: emu, ddb, s3, bucket: table.clone(), table })
    }

    fn backend(&self, namespace: &str, with_bucket: bool) -> DynamoKv {
        let blobs = with_bucket.then(|| Blobs { s3: self.s3.clone(), bucket: self.bucket.clone() });
        DynamoKv::new(self.ddb.clone(), &self.table, namespace, blobs)
    }

    async fn objects(&self) -> Result<Vec<String>> {
        let out = self.s3.list_objects_v2().bucket(&self.bucket).send().await?;
        Ok(out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect())
    }
}

/// What every backend must do.
async fn conformance(backend: Arc<dyn KvBackend>) -> Result<()> {
    let kv = Kv::new(backend.clone());
    ensure!(kv.get("missing").await?.is_none());
    kv.put("user:1", "one", PutOptions::default()).await?;
    ensure!(kv.get_text("user:1").await?.as_deref() == Some("one"));
    kv.put("user:1", "uno", PutOptions::ttl(3600).metadata(serde_json::json!({ "lang": "it" }))).await?;
    let e = kv.get_with_metadata("user:1").await?.context("user:1")?;
    ensure!(e.value == Bytes::from_static(b"uno"), "{e:?}");
    ensure!(e.metadata == Some(serde_json::json!({ "lang": "it" })), "{e:?}");
    let exp = e.expiration.context("expiration")?;
    ensure!((exp - now_seconds() - 3600).abs() <= 5, "expires at {exp}");
    kv.put_json("cfg", &serde_json::json!({ "a": [1, 2] }), PutOptions::default()).await?;
    ensure!(kv.get_json::<serde_json::Value>("cfg").await? == Some(serde_json::json!({ "a": [1, 2] })));
    ensure!(matches!(kv.get_text("cfg").await, Ok(Some(_))));
    kv.put("bin", vec![0xff, 0xfe], PutOptions::default()).await?;
    ensure!(matches!(kv.get_text("bin").await, Err(StorageError::Decode { what: "text", .. })));

    // get_many keeps the order it was asked in, with None for what is missing.
    let many = kv.get_many(&["cfg", "nope", "user:1"]).await?;
    ensure!(many.len() == 3 && many[1].is_none(), "{many:?}");
    ensure!(many[2].as_ref().map(|e| e.value.clone()) == Some(Bytes::from_static(b"uno")));

    kv.delete("user:1").await?;
    kv.delete("user:1").await?;
    ensure!(kv.get("user:1").await?.is_none());

    // An entry already expired, which the store has not removed yet, is never returned.
    let past = now_seconds() - 10;
    let write = |key: &str, expiration| Write {
        key: key.into(),
        value: Bytes::from_static(b"old"),
        expiration,
        metadata: None,
    };
    backend.put(write("gone", Some(past))).await?;
    ensure!(kv.get("gone").await?.is_none());
    ensure!(kv.get_many(&["gone"]).await?[0].is_none());

    // Listing: prefix, limit, cursor; expired keys left out without ending the list early.
    for i in 0..25 {
        if i % 3 == 0 {
            backend.put(write(&format!("list/{i:02}"), Some(past))).await?;
        } else {
            kv.put(&format!("list/{i:02}"), format!("{i}"), PutOptions::default().metadata(serde_json::json!(i)))
                .await?;
        }
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = kv.list(ListOptions { prefix: Some("list/".into()), limit: Some(5), cursor }).await?;
        pages += 1;
        ensure!(page.keys.len() <= 5);
        ensure!(page.list_complete == page.cursor.is_none(), "{page:?}");
        seen.extend(page.keys.iter().map(|k| (k.name.clone(), k.metadata.clone())));
        if page.list_complete {
            break;
        }
        cursor = page.cursor;
        ensure!(pages < 10, "the list does not end");
    }
    let live: Vec<(String, Option<serde_json::Value>)> =
        (0..25).filter(|i| i % 3 != 0).map(|i| (format!("list/{i:02}"), Some(serde_json::json!(i)))).collect();
    ensure!(seen == live, "listed {seen:?}");
    let all = kv.list(ListOptions::default()).await?;
    ensure!(all.list_complete && all.keys.iter().all(|k| k.name != "gone"), "{all:?}");

    // Bad input is a typed error and writes nothing.
    let long = "k".repeat(513);
    ensure!(matches!(kv.put(&long, "v", PutOptions::default()).await, Err(StorageError::TooLarge { what: "key", .. })));
    ensure!(matches!(
        kv.put("t", "v", PutOptions::ttl(30)).await,
        Err(StorageError::Invalid { what: "expiration_ttl", .. })
    ));
    let fat = serde_json::json!("m".repeat(1100));
    ensure!(matches!(
        kv.put("m", "v", PutOptions::default().metadata(fat)).await,
        Err(StorageError::TooLarge { what: "metadata", .. })
    ));
    ensure!(kv.get("t").await?.is_none() && kv.get("m").await?.is_none());
    ensure!(matches!(
        kv.list(ListOptions { limit: Some(1001), ..ListOptions::default() }).await,
        Err(StorageError::Invalid { what: "limit", .. })
    ));
    Ok(())
}

#[tokio::test]
async fn kv_conformance_in_memory() -> Result<()> {
    conformance(Arc::new(adf_storage::kv::memory::MemoryKv::default())).await
}

#[tokio::test]
async fn kv_conformance_on_dynamodb() -> Result<()> {
    let d = Dynamo::new().await?;
    conformance(Arc::new(d.backend("ns", true))).await?;
    // Namespaces share nothing, even in one table.
    let other = Kv::new(Arc::new(d.backend("other", true)));
    ensure!(other.list(ListOptions::default()).await?.keys.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_item_past_its_ttl_that_dynamodb_still_holds_is_not_returned() -> Result<()> {
    let d = Dynamo::new().await?;
    let kv = Kv::new(Arc::new(d.backend("ns", false)));
    // Written with the SDK, as DynamoDB keeps it until its TTL sweep (up to days later).
    let item = HashMap::from([
        ("ns".to_string(), AttributeValue::S("ns".into())),
        ("k".to_string(), AttributeValue::S("stale".into())),
        ("v".to_string(), AttributeValue::B(b"stale".to_vec().into())),
        ("exp".to_string(), AttributeValue::N((now_seconds() - 3600).to_string())),
    ]);
    d.ddb.put_item().table_name(&d.table).set_item(Some(item)).send().await?;
    let raw = d.ddb.scan().table_name(&d.table).send().await?;
    ensure!(raw.count() == 1, "the emulator removed the item itself");
    ensure!(kv.get("stale").await?.is_none());
    ensure!(kv.get_many(&["stale"]).await?[0].is_none());
    let page = kv.list(ListOptions::default()).await?;
    ensure!(page.keys.is_empty() && page.list_complete, "{page:?}");
    Ok(())
}

#[tokio::test]
async fn large_values_go_to_the_bucket_and_leave_with_their_key() -> Result<()> {
    let d = Dynamo::new().await?;
    let kv = Kv::new(Arc::new(d.backend("ns", true)));
    let big = Bytes::from((0..INLINE_LIMIT + 1000).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    kv.put("big", big.clone(), PutOptions::default()).await?;
    ensure!(kv.get("big").await? == Some(big.clone()));
    let first = d.objects().await?;
    ensure!(first.len() == 1 && first[0].starts_with("kv/ns/"), "{first:?}");
    // Replaced by another large value: the old object goes.
    kv.put("big", big.slice(1..), PutOptions::default()).await?;
    let second = d.objects().await?;
    ensure!(second.len() == 1 && second != first, "{second:?}");
    // Replaced by a small value, then deleted: nothing is left behind.
    kv.put("big", "small", PutOptions::default()).await?;
    ensure!(d.objects().await?.is_empty());
    kv.put("big", big.clone(), PutOptions::default()).await?;
    kv.delete("big").await?;
    ensure!(d.objects().await?.is_empty() && kv.get("big").await?.is_none());
    // 25 MiB is the limit.
    let max = Bytes::from(vec![7u8; adf_storage::kv::MAX_VALUE_BYTES]);
    kv.put("max", max.clone(), PutOptions::default()).await?;
    ensure!(kv.get("max").await?.map(|v| v.len()) == Some(max.len()));

    // Without a bucket, a large value is a clear error and nothing is written.
    let bare = Kv::new(Arc::new(d.backend("bare", false)));
    let e = bare.put("big", big, PutOptions::default()).await.expect_err("no bucket");
    ensure!(matches!(e, StorageError::TooLarge { .. }), "{e}");
    ensure!(e.to_string().contains("no bucket for large values"), "{e}");
    ensure!(bare.get("big").await?.is_none());
    Ok(())
}
