//! The quickstart's bot: a Rust Lambda that uses the stores bound to it (`bindings` on
//! `adf_function`) through `adf_storage::Storage::from_env()`. No table or bucket name, no
//! policy in here: the binding brings both.
//!
//! Events: `{"op": "kv"}`, `{"op": "presign", "key": k}`, `{"op": "head", "key": k}`,
//! `{"op": "multipart", "key": k, "mib": n}`, `{"op": "cache", "key": k}`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use adf_storage::kv::{ListOptions, PutOptions};
use adf_storage::object::Metadata;
use adf_storage::{Storage, StorageError};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// How often the cache computed a value in this execution environment.
static COMPUTED: AtomicUsize = AtomicUsize::new(0);

async fn handle(storage: &Storage, event: Value) -> Result<Value, StorageError> {
    let key = event["key"].as_str().unwrap_or("demo/object.bin");
    match event["op"].as_str().unwrap_or_default() {
        "kv" => {
            let kv = storage.kv("sessions")?;
            for (i, user) in ["ada", "grace", "linus"].iter().enumerate() {
                let options = PutOptions::ttl(3600).metadata(json!({ "n": i }));
                kv.put_json(&format!("user:{user}"), &json!({ "name": user }), options).await?;
            }
            let page = kv.list(ListOptions { prefix: Some("user:".into()), ..ListOptions::default() }).await?;
            let ada: Option<Value> = kv.get_json("user:ada").await?;
            let keys: Vec<&str> = page.keys.iter().map(|k| k.name.as_str()).collect();
            Ok(json!({ "keys": keys, "complete": page.list_complete, "ada": ada }))
        }
        "presign" => {
            let uploads = storage.objects("uploads")?;
            let put = uploads.presign_put(key, Duration::from_secs(300)).await?;
            let get = uploads.presign_get(key, Duration::from_secs(300)).await?;
            Ok(json!({ "put": put.as_str(), "get": get.as_str() }))
        }
        "head" => {
            let info = storage.objects("uploads")?.head(key).await?;
            Ok(json!({ "size": info.as_ref().map(|i| i.size), "etag": info.and_then(|i| i.etag) }))
        }
        "multipart" => {
            let uploads = storage.objects("uploads")?;
            let mib = event["mib"].as_u64().unwrap_or(12) as usize;
            let upload = uploads.create_multipart(key, Metadata::default()).await?;
            let mut parts = Vec::new();
            for (i, chunk) in vec![7u8; mib << 20].chunks(5 << 20).enumerate() {
                parts.push(upload.upload_part(i as u32 + 1, chunk.to_vec()).await?);
            }
            let count = parts.len();
            upload.complete(parts).await?;
            let size = uploads.head(key).await?.map(|i| i.size);
            Ok(json!({ "parts": count, "size": size }))
        }
        "cache" => {
            let cache = storage.cache("cache").await?;
            let value = cache
                .get_or_insert_with(key, Duration::from_secs(600), || async {
                    COMPUTED.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, StorageError>(format!("expensive answer for {key}"))
                })
                .await?;
            let value = String::from_utf8_lossy(&value).into_owned();
            Ok(json!({ "value": value, "computed": COMPUTED.load(Ordering::SeqCst) }))
        }
        other => Err(StorageError::invalid("op", format!("{other:?}: expected kv, presign, head, multipart or cache"))),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let storage = Storage::from_env().await?;
    let storage = &storage;
    lambda_runtime::run(service_fn(move |e: LambdaEvent<Value>| async move {
        handle(storage, e.payload).await.map_err(Error::from)
    }))
    .await
}
